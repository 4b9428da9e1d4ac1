"""The front door in a real browser: three doors, the formats, an icon."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect


@pytest.mark.browser
def test_a_first_visitor_finds_their_way(page: Page, live_server, screenshot: Callable[[str], Path]) -> None:
    page.goto(f"{live_server.url}/")
    expect(page.get_by_role("heading", name="Store admin")).to_be_visible()
    expect(page.get_by_role("heading", name="Operations")).to_be_visible()
    expect(page.get_by_role("link", name="API reference")).to_be_visible()
    screenshot("landing")
    page.get_by_role("link", name="Sign in to operations").click()
    expect(page.locator("#login-form")).to_be_visible()
    expect(page.locator('link[rel="icon"]')).to_have_count(1)
