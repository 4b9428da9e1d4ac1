"""What the browser tests share: logging in through the login form, and reading the licensee API as a client would."""

from __future__ import annotations

import json
import urllib.request
from typing import Any

from django.contrib.auth.models import User
from playwright.sync_api import Page, expect

from conftest import PASSWORD


def log_in(page: Page, url: str, user: User) -> None:
    """Open `url` (a login page, or a page that sends anonymous visitors to one) and log in as `user`."""
    page.goto(url)
    expect(page.locator("#login-form")).to_be_visible()
    page.fill('input[name="username"]', user.get_username())
    page.fill('input[name="password"]', PASSWORD)
    page.click('#login-form button[type="submit"]')
    page.wait_for_load_state()


def api_get(url: str, key: str) -> tuple[int, dict[str, Any]]:
    """GET `url` with the API key `key`: the status and the JSON answer."""
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {key}", "Accept": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status, json.loads(response.read())
