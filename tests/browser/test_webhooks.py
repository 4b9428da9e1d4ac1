"""Webhooks in a real browser: a manager registers an endpoint, copies its secret, sends a test event that a
real worker delivers to a receiver on 127.0.0.1, and reads the outcome in the delivery log."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from playwright.sync_api import Page, expect

from billing.webhooks.models import WebhookEndpoint
from billing.webhooks.tests.conftest import Receiver, receiver  # noqa: F401 — the fixture
from billing.webhooks.tests.test_signing import documented_verify
from tests.browser.support import log_in

Screenshot = Callable[[str], Path]


@pytest.mark.browser
def test_manager_registers_an_endpoint_and_sends_a_test_event(
    page: Page,
    live_server,
    screenshot: Screenshot,
    celery_worker: None,
    manager_a: User,
    receiver: Receiver,  # noqa: F811 — the fixture imported above
) -> None:
    log_in(page, f"{live_server.url}/admin/webhooks/webhookendpoint/add/", manager_a)
    expect(page).to_have_url(f"{live_server.url}/admin/webhooks/webhookendpoint/add/")
    page.fill('input[name="url"]', "not a url")
    page.get_by_role("button", name=re.compile("^Save$")).first.click()
    expect(page.get_by_text("is not a valid http(s) URL")).to_be_visible()
    assert not WebhookEndpoint.unscoped.exists()
    screenshot("admin-webhook-endpoint-bad-url")

    page.fill('input[name="url"]', receiver.url)
    page.fill('input[name="description"]', "Alpha's ERP")
    page.locator('input[name="event_types"][value="receipt.issued"]').check()
    page.get_by_role("button", name=re.compile("^Save and continue editing$")).click()
    secret = page.locator("#webhook-signing-secret")
    expect(secret).to_have_text(re.compile(r"^whsec_\S+$"))
    copied = secret.inner_text().strip()
    screenshot("admin-webhook-endpoint-secret")

    page.get_by_role("link", name=re.compile("Send test event")).click()
    page.get_by_role("button", name="Send test event").click()
    expect(page).to_have_url(re.compile(r"/admin/webhooks/webhookdelivery/\d+/change/"))
    (request,) = receiver.wait_for(1)
    assert documented_verify()(copied, request.headers["OpenAisle-Signature"], request.body)

    for _ in range(50):
        if page.get_by_text("Delivered", exact=True).count():
            break
        page.wait_for_timeout(200)
        page.reload()
    expect(page.get_by_text("Delivered", exact=True).first).to_be_visible()
    expect(page.get_by_text("If you can read this").first).to_be_visible()
    screenshot("admin-webhook-delivery-detail")

    page.goto(f"{live_server.url}/admin/webhooks/webhookdelivery/")
    expect(page.locator("#result_list")).to_contain_text("webhook.test")
    screenshot("admin-webhook-delivery-log")
