"""Browser tests: Debian's Chromium driven by Playwright (sync API) against pytest-django's `live_server`.

The browser is started once per session; each test gets a fresh context (cookies, storage) and page.
Screenshots go to `test-artifacts/screenshots/` at the project root; the terminal summary says where.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from django.db import connections
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright

from stores.models import Store
from tenants.models import Tenant

# Playwright's sync API runs an asyncio event loop in the main thread; Django's ORM refuses to run
# "inside" it unless told otherwise. The fixtures' ORM calls are plain synchronous code, so this is safe.
os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-quic",
    "--disable-sync",
]
PROJECT_ROOT = Path(__file__).resolve().parents[2]
SCREENSHOT_DIR = PROJECT_ROOT / "test-artifacts" / "screenshots"
TIMEOUT_MS = 15_000

_taken: list[Path] = []  # screenshots saved in this session, for the terminal summary


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} is missing: the browser tests need Debian's Chromium. "
            "Install it with `bash deploy/install-system-packages.sh` (or `make system-packages`).",
            pytrace=False,
        )
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()
            # While Playwright's loop runs in this thread, Django keeps the thread's connections in a store of
            # their own (asgiref's Local goes by context once a loop is running), out of sight once Playwright
            # stops: one left open there kept the test database from being dropped at the end of the session.
            connections.close_all()


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    context = browser.new_context(viewport={"width": 1366, "height": 900}, locale="en-US")
    context.set_default_timeout(TIMEOUT_MS)
    yield context
    context.close()


@pytest.fixture
def page(context: BrowserContext) -> Page:
    return context.new_page()


@pytest.fixture
def screenshot(page: Page) -> Callable[[str], Path]:
    """`screenshot("admin-dashboard-manager")` saves a full-page PNG of the current page and returns its path."""
    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)

    def take(name: str) -> Path:
        path = SCREENSHOT_DIR / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        _taken.append(path)
        return path

    return take


@pytest.fixture
def store_a(tenant_a: Tenant, make_store_with_layout: Callable[..., Store]) -> Store:
    """Tenant A's store with a layout, as its manager has it once onboarded."""
    return make_store_with_layout(tenant_a)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not _taken:
        return
    count = len(set(_taken))
    terminalreporter.write_sep("-", "browser screenshots")
    terminalreporter.write_line(f"{count} screenshot(s) saved in {SCREENSHOT_DIR}")
