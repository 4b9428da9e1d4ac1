"""Issue 17's operator and finance in a real browser.

The operator drills into one tenant from the console: its stores, members and invoices, and suspends it. Finance
closes last month for a USD licensee, a EUR licensee and a USD licensee with a store selling in EUR: the month
asks for the EUR→USD rate, finance records it, closes again, finalises the invoices, reads the receivables in
both currencies and exports them and a PDF."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable
from datetime import date
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.utils import timezone
from playwright.sync_api import Page, expect

from billing.invoicing.calculations import previous_month
from billing.invoicing.models import Invoice
from billing.invoicing.tests.helpers import account, assign, at, make_plan, make_store, sale
from tenants.models import Tenant
from tests.browser.support import log_in
from tests.browser.test_finance import month_billed  # noqa: F401 — the fixture, used by the operator's test

Screenshot = Callable[[str], Path]
pytestmark = pytest.mark.browser


def _charts_drawn(page: Page) -> None:
    page.wait_for_function("() => [...document.querySelectorAll('canvas.chart')].every(c => c.width > 0)")


def test_an_operator_drills_into_a_tenant_and_suspends_it(
    page: Page,
    live_server,
    screenshot: Screenshot,
    operator: User,
    make_member: Callable[..., User],
    tenant_a: Tenant,
    month_billed: dict[str, Invoice],  # noqa: F811
) -> None:
    make_member("alice@alpha.test", tenant_a)
    log_in(page, f"{live_server.url}/ops/login/", operator)
    _charts_drawn(page)
    screenshot("operator-console")

    page.locator("#console-drilldown").get_by_role("link", name="Alpha Markets").click()
    links = page.locator("#console-tenant-links")
    expect(links).to_contain_text("Stores (2)")
    expect(page.locator("table", has_text="Bravo Foods")).to_have_count(0)  # this tenant's rows only
    _charts_drawn(page)
    screenshot("operator-tenant-console")

    links.get_by_role("link", name="Stores (2)").click()
    results = page.locator("#result_list")
    expect(results).to_contain_text("MAIN")
    expect(results).to_contain_text("DOCK")
    expect(results).not_to_contain_text("CITY")
    screenshot("operator-tenant-stores")
    page.go_back()

    links.get_by_role("link", name="Members (1)").click()
    expect(page.locator("#result_list")).to_contain_text("alice@alpha.test")
    page.go_back()

    links.get_by_role("link", name=re.compile(r"^Invoices \(")).click()
    results = page.locator("#result_list")
    expect(results).to_contain_text(month_billed["alpha"].number)
    expect(results).not_to_contain_text(month_billed["bravo"].number)
    page.go_back()

    page.locator("main, #content").first.get_by_role("link", name="Alpha Markets").last.click()
    expect(page).to_have_url(re.compile(r"/ops/tenants/tenant/\d+/change/"))
    expect(page.get_by_role("link", name="Suspend")).to_be_visible()
    expect(page.get_by_role("link", name="Reactivate")).to_have_count(0)
    screenshot("operator-tenant-page")
    page.get_by_role("link", name="Suspend").click()
    expect(page.get_by_text("Suspended: API calls, uploads and entry checks are refused.")).to_be_visible()
    expect(page.get_by_role("link", name="Reactivate")).to_be_visible()
    expect(page.get_by_role("link", name="Suspend")).to_have_count(0)
    screenshot("operator-tenant-suspended")
    tenant_a.refresh_from_db()
    assert tenant_a.status == Tenant.Status.SUSPENDED


@pytest.fixture
def two_currencies(tenant_a: Tenant, tenant_b: Tenant) -> date:
    """Last month: Alpha billed and selling in USD, Bravo in EUR, Charlie billed in USD with a store selling in EUR."""
    last = previous_month(timezone.localdate())[0]
    charlie = Tenant.objects.create(name="Charlie Stores", slug="charlie")
    dollars = make_plan(store_fee=30_000, visit_fee=5, revenue_share_bps=150)
    euros = make_plan("euro", currency="EUR", store_fee=28_000, visit_fee=5, revenue_share_bps=150)
    for tenant, plan, billed_in, sells_in in (
        (tenant_a, dollars, "USD", "USD"),
        (tenant_b, euros, "EUR", "EUR"),
        (charlie, dollars, "USD", "EUR"),
    ):
        assign(tenant, plan, date(2025, 1, 1))
        account(tenant, currency=billed_in, tax_rate_bps=2000)
        store = make_store(tenant, "S1", currency=sells_in)
        for day in range(1, 28, 2):
            sale(store, at=at(last.replace(day=day)), amount=3_000 + 125 * day)
    return last


def test_finance_closes_a_month_in_two_currencies(
    page: Page, live_server, screenshot: Screenshot, finance: User, two_currencies: date
) -> None:
    month = f"{two_currencies:%Y-%m}"
    log_in(page, f"{live_server.url}/ops/login/", finance)
    expect(page.get_by_text("Receivables").first).to_be_visible()
    expect(page.get_by_text(f"{two_currencies:%B %Y}", exact=True)).to_be_visible()
    screenshot("finance-dashboard-before-close")

    page.goto(f"{live_server.url}/ops/invoicing/invoice/")
    page.get_by_role("link", name="Close a month").click()
    page.fill('input[name="month"]', month)
    page.get_by_role("button", name="Close month").click()
    expect(page.get_by_text("charlie: not billed — no exchange rate EUR→USD")).to_be_visible()
    screenshot("finance-close-needs-rate")

    page.get_by_role("link", name="record the rate").first.click()
    expect(page.locator('input[name="month"]')).to_have_value(month)
    expect(page.locator('select[name="base"]')).to_have_value("EUR")
    expect(page.locator('select[name="quote"]')).to_have_value("USD")
    page.fill('input[name="rate"]', "1.0850")
    screenshot("finance-exchange-rate")
    page.get_by_role("button", name="Save rate").click()
    expect(page.locator("#result_list")).to_contain_text("1.085")

    page.goto(f"{live_server.url}/ops/invoicing/invoice/close-month/")
    page.fill('input[name="month"]', month)
    page.get_by_role("button", name="Close month").click()
    expect(page.get_by_text(re.compile(r"Closed .*: 1 draft\(s\) created, 0 updated, 2 unchanged"))).to_be_visible()
    expect(page.get_by_text("not billed")).to_have_count(0)

    for slug in ("alpha", "bravo", "charlie"):
        draft = Invoice.unscoped.get(tenant__slug=slug, period_start=two_currencies)
        page.goto(f"{live_server.url}/ops/invoicing/invoice/{draft.pk}/change/")
        page.get_by_role("link", name="Finalise").click()
        expect(page.get_by_text(re.compile(r"Finalised as OA-"))).to_be_visible()
    charlie = Invoice.unscoped.get(tenant__slug="charlie", period_start=two_currencies)
    expect(page.get_by_text(re.compile(r"at 1\.085 USD/EUR")).first).to_be_visible()
    screenshot("finance-invoice-converted")

    page.goto(f"{live_server.url}/ops/invoicing/invoice/")
    page.get_by_role("link", name="Receivables (unpaid, by age)").click()
    expect(page.locator("#receivables-USD")).to_contain_text("Alpha Markets")
    expect(page.locator("#receivables-USD")).to_contain_text("Charlie Stores")
    expect(page.locator("#receivables-EUR")).to_contain_text("Bravo Foods")
    expect(page.locator("#receivables-EUR")).to_contain_text("€")
    screenshot("finance-receivables")

    with page.expect_download() as download:
        page.locator("#receivables-csv").click()
    rows = list(csv.DictReader(io.StringIO(Path(download.value.path()).read_text())))
    assert [(r["licensee"], r["currency"]) for r in rows] == [
        ("Bravo Foods", "EUR"),
        ("Alpha Markets", "USD"),
        ("Charlie Stores", "USD"),
        ("Total", "EUR"),
        ("Total", "USD"),
    ]
    with page.expect_download() as pdf:
        page.goto(f"{live_server.url}/ops/invoicing/invoice/{charlie.pk}/change/")
        page.get_by_role("link", name="Download PDF").click()
    assert pdf.value.suggested_filename.startswith(charlie.number)

    page.goto(f"{live_server.url}/ops/")
    expect(page.get_by_text("closed", exact=True)).to_be_visible()
    screenshot("finance-dashboard-after-close")
