"""A store manager erases a shopper's personal data in the store admin, in a real browser (issue 21): the action
asks for confirmation, says why a shopper who owes money is not erased, and the list shows what is left."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from playwright.sync_api import Page, expect

from billing.payments import shoppers
from billing.payments.tests.support import decide_cart, open_visit, settle_payment
from core import tenancy
from stores.models import Store
from tenants.audit import Actor
from tenants.models import Tenant
from tests.browser.support import log_in

pytestmark = pytest.mark.browser


def _register(tenant: Tenant, ref: str, payment_method: str = "pm_card_visa") -> shoppers.RegisteredShopper:
    with tenancy.tenant_scope(tenant.pk):
        return shoppers.shopper_register(
            actor=Actor.system(),
            tenant=tenant,
            external_ref=ref,
            payment_method=payment_method,
            email=f"{ref}@example.com",
        )


def test_a_manager_erases_a_shopper_and_is_told_why_another_is_kept(
    page: Page,
    live_server: Any,
    screenshot: Callable[[str], Path],
    manager_a: User,
    tenant_a: Tenant,
    localstripe: Any,
) -> None:
    store = Store.unscoped.create(tenant=tenant_a, code="ER-1", name="Corner Shop", currency="USD", preauth_amount=5000)
    _register(tenant_a, "leaving-shopper")
    owing = _register(tenant_a, "owing-shopper", "pm_card_chargeCustomerFail")
    settle_payment(decide_cart(open_visit(store, owing.entry_token, "OWED"), [("COLA", 2, 199)]))
    base = live_server.url
    log_in(page, f"{base}/admin/payments/shopper/", manager_a)

    page.locator('input[name="_selected_action"]').first.check()
    page.locator('input[name="_selected_action"]').nth(1).check()
    page.select_option('select[name="action"]', "erase_personal_data")
    page.get_by_role("button", name="Run").click()

    expect(page.locator("#erase-shoppers")).to_contain_text("leaving-shopper@example.com")
    expect(page.get_by_text("This cannot be undone")).to_be_visible()
    screenshot("shopper-erasure-confirm")
    page.get_by_role("button", name="Erase the personal data of 2 shoppers").click()

    expect(page.get_by_text("owing-shopper was not erased: The shopper owes $3.98")).to_be_visible()
    expect(page.get_by_text("Erased the personal data of 1 shopper.")).to_be_visible()
    expect(page.locator("#result_list")).to_contain_text("Erased shopper")
    expect(page.locator("#result_list")).not_to_contain_text("leaving-shopper")
    screenshot("shopper-erasure-done")
