"""Service levels in a real browser: a store manager reads the month so far with the plan's promise missed; an
operator sorts the tenants by share settled without a person and opens one."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.utils import timezone
from playwright.sync_api import Page, expect

from billing.invoicing import calculations as calc
from billing.invoicing.tests.helpers import assign, make_plan, make_store
from service_levels.tests.support import make_visits
from tenants.models import Tenant
from tests.browser.support import log_in

Screenshot = Callable[[str], Path]


@pytest.fixture
def levels(tenant_a: Tenant, tenant_b: Tenant) -> None:
    """This month so far: Alpha sends a third of its visits to a person, Bravo none; both promise 90 %."""
    promises = calc.Promises(without_person_bps=9_000, exit_to_receipt_p95_s=3_600, credit_bps=1_000)
    plan = make_plan("assured", promises=promises)
    for tenant in (tenant_a, tenant_b):
        assign(tenant, plan, date(2026, 1, 1))
    start = timezone.now().replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    span = max(timezone.now() - start - timedelta(minutes=10), timedelta(hours=1))
    make_visits(make_store(tenant_a, "A1"), count=90, start=start, span=span, seed=1, review_share=0.3)
    make_visits(make_store(tenant_a, "A2"), count=50, start=start, span=span, seed=2, review_share=0.2)
    make_visits(make_store(tenant_b, "B1"), count=70, start=start, span=span, seed=3, review_share=0.0)


@pytest.mark.browser
def test_a_manager_reads_service_levels_and_the_promise_missed(
    page: Page, live_server, screenshot: Screenshot, levels: None, manager_a: User
) -> None:
    log_in(page, f"{live_server.url}/admin/service_levels/servicelevel/", manager_a)
    expect(page.locator("#service-levels h1")).to_have_text("Service levels")
    expect(page.locator('tr[data-name="All stores of Alpha Markets"] td').nth(1)).to_have_text("140")
    expect(page.locator("#promises")).to_contain_text("missed")
    expect(page.locator("#levels-table")).not_to_contain_text("B1")
    screenshot("service-levels-manager")


@pytest.mark.browser
def test_an_operator_sorts_tenants_and_opens_one(
    page: Page, live_server, screenshot: Screenshot, levels: None, operator: User
) -> None:
    log_in(page, f"{live_server.url}/ops/service_levels/servicelevel/", operator)
    rows = page.locator("#levels-table tbody tr")
    page.get_by_role("link", name="Settled without a person").click()
    expect(rows.first).to_have_attribute("data-name", "Bravo Foods")  # highest share first
    page.get_by_role("link", name="Settled without a person").click()
    expect(rows.first).to_have_attribute("data-name", "Alpha Markets")  # and the other way
    expect(page.locator('tr[data-name="Alpha Markets"]')).to_contain_text("1 missed")
    screenshot("service-levels-ops")
    page.get_by_role("link", name="Alpha Markets").click()
    expect(page.locator("#service-levels h1")).to_have_text("Service levels of Alpha Markets")
    expect(page.locator('tr[data-name="A2 — Store A2"] td').nth(1)).to_have_text("50")
    screenshot("service-levels-ops-tenant")
