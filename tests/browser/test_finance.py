"""Finance and operators in a real browser: closing the month's invoices, filtering last month, downloading the
PDF and the XLSX; the operator console with its charts and drill-down; a licensee manager's own invoices."""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.utils import timezone
from openpyxl import load_workbook
from playwright.sync_api import Locator, Page, expect
from pypdf import PdfReader

from billing.invoicing import services
from billing.invoicing.calculations import previous_month
from billing.invoicing.models import Invoice
from billing.invoicing.tests.helpers import account, assign, at, decide, make_plan, make_store, make_visit, sale
from core import tenancy
from tenants.audit import Actor
from tenants.models import Tenant
from tests.browser.support import log_in
from visits.models import Visit

Screenshot = Callable[[str], Path]
pytestmark = pytest.mark.browser


@pytest.fixture
def month_billed(tenant_a: Tenant, tenant_b: Tenant, operator: User) -> dict[str, Invoice]:
    """Last month's invoices of Alpha and Bravo, finalised, and activity in the last days for the console."""
    last = previous_month(timezone.localdate())[0]
    account(tenant_a, tax_rate_bps=2000, tax_id="GB 987 6543 21")
    version = make_plan(store_fee=30_000, visit_fee=5, revenue_share_bps=150, monthly_minimum=50_000)
    now = timezone.now().replace(minute=0, second=0, microsecond=0)
    for tenant, codes in ((tenant_a, ("MAIN", "DOCK")), (tenant_b, ("CITY",))):
        assign(tenant, version, date(2025, 1, 1))
        for code in codes:
            store = make_store(tenant, code)
            for day in range(1, 28, 3):
                sale(store, at=at(last.replace(day=day)), amount=4_000 + 250 * day, refund=500 if day == 7 else 0)
            for days_ago in range(14):
                for n in range(1 + (days_ago * 7 + len(code)) % 5):
                    sale(store, at=now - timedelta(days=days_ago, hours=n + 1), amount=1_500 + 100 * n)
            waiting = make_visit(store, settled_at=now - timedelta(hours=3), status=Visit.Status.NEEDS_REVIEW)
            decide(waiting, reviewer=operator, at=waiting.exited_at + timedelta(minutes=25))
    with tenancy.platform_wide_scope():
        services.month_close(actor=Actor.system(), period_start=last)
        issued = services.invoices_finalise(
            actor=Actor.system(), invoices=list(Invoice.unscoped.filter(period_start=last))
        )
        today = timezone.localdate()
        services.usage_recompute(start=today - timedelta(days=30), end=today)
    return {invoice.tenant.slug: invoice for invoice in issued}


DOWNLOADS = Path(__file__).resolve().parents[2] / "test-artifacts" / "downloads"


def _save(download, name: str) -> Path:  # type: ignore[no-untyped-def]
    DOWNLOADS.mkdir(parents=True, exist_ok=True)
    path = DOWNLOADS / name
    download.save_as(str(path))
    return path


def test_finance_filters_last_month_and_downloads_the_pdf_and_the_xlsx(
    page: Page, live_server, screenshot: Screenshot, finance: User, month_billed: dict[str, Invoice]
) -> None:
    alpha, bravo = month_billed["alpha"], month_billed["bravo"]
    log_in(page, f"{live_server.url}/ops/login/", finance)
    expect(page).to_have_url(f"{live_server.url}/ops/")
    page.get_by_role("link", name="Invoices", exact=True).first.click()
    expect(page).to_have_url(f"{live_server.url}/ops/invoicing/invoice/")

    page.locator("a", has_text="Filters").first.click()
    page.get_by_role("link", name=re.compile(r"^Last month")).click()

    expect(page).to_have_url(re.compile(r"\?period=last$"))
    results = page.locator("#result_list")
    expect(results).to_contain_text(alpha.number)
    expect(results).to_contain_text(bravo.number)
    expect(results).to_contain_text(f"{alpha.period_start:%Y-%m}")
    screenshot("finance-invoices-last-month")

    with page.expect_download() as pdf_download:
        results.locator("tr", has_text=alpha.number).get_by_role("link", name="PDF").click()
    pdf = _save(pdf_download.value, pdf_download.value.suggested_filename)
    assert pdf.name.startswith(alpha.number) and pdf.suffix == ".pdf"
    text = " ".join(PdfReader(pdf).pages[0].extract_text().split())
    assert alpha.number in text and "Alpha Markets Ltd" in text and "Total due" in text

    xlsx_link = page.locator("#export-xlsx")
    expect(xlsx_link).to_have_attribute("href", re.compile(r"period=last"))
    with page.expect_download() as xlsx_download:
        xlsx_link.click()
    xlsx = _save(xlsx_download.value, "invoices-last-month.xlsx")
    book = load_workbook(io.BytesIO(xlsx.read_bytes()))
    rows = list(book["Invoices"].iter_rows(values_only=True))
    numbers = sorted(str(r[0]) for r in rows[1:] if not str(r[0]).startswith("TOTAL"))
    assert numbers == sorted([alpha.number, bravo.number])
    total = next(r for r in rows if r[0] == "TOTAL USD")
    assert total[rows[0].index("total_minor")] == alpha.total + bravo.total

    page.get_by_role("link", name=alpha.number).first.click()
    expect(page.get_by_text(re.compile(r"^Store fee, Standard v1")).first).to_be_visible()
    expect(page.get_by_role("link", name="Issue a credit note")).to_be_visible()
    expect(page.get_by_role("link", name="Finalise")).to_have_count(0)  # it is already
    screenshot("finance-invoice-detail")


def _console_after_login(page: Page, site: str, user: User, *, heading: str) -> Locator:
    """Log in on the site's login page and land on its console: the heading, five charts, the event streams' one
    empty (none were sent)."""
    log_in(page, f"{site}login/", user)
    expect(page).to_have_url(site)
    console = page.locator("#console")
    expect(console.get_by_role("heading", name=heading)).to_be_visible()
    expect(console.locator("canvas.chart")).to_have_count(5)
    expect(console.locator('[data-chart-empty="Event streams received per day"]')).to_have_count(1)
    return console


def test_an_operator_opens_the_console_and_drills_down(
    page: Page, live_server, screenshot: Screenshot, operator: User, month_billed: dict[str, Invoice]
) -> None:
    console = _console_after_login(page, f"{live_server.url}/ops/", operator, heading="All tenants")
    for title in ("Visits settled per day", "Gross sales per day", "Review rate per day (%)", "Event streams received"):
        expect(console.get_by_text(title).first).to_be_visible()
    page.wait_for_function("() => [...document.querySelectorAll('canvas.chart')].every(c => c.width > 0)")
    expect(page.locator("#console-drilldown")).to_contain_text("Bravo Foods")
    screenshot("ops-console-all-tenants")

    page.locator("#console-drilldown").get_by_role("link", name="Alpha Markets").click()
    expect(page).to_have_url(re.compile(r"tenant=\d+"))
    expect(console.get_by_role("heading", name="Tenant Alpha Markets")).to_be_visible()
    drill = page.locator("#console-drilldown")
    expect(drill).to_contain_text("MAIN — Store MAIN")
    expect(drill).not_to_contain_text("CITY")
    screenshot("ops-console-tenant")

    drill.get_by_role("link", name="DOCK — Store DOCK").click()
    expect(console.get_by_role("heading", name="Store DOCK — Store DOCK")).to_be_visible()
    console.get_by_role("link", name="7 days").click()
    expect(page).to_have_url(re.compile(r"days=7"))
    expect(console.get_by_role("heading", name="Store DOCK — Store DOCK")).to_be_visible()
    screenshot("ops-console-store")


def test_a_manager_sees_their_own_console_and_downloads_their_invoice(
    page: Page, live_server, screenshot: Screenshot, manager_a: User, month_billed: dict[str, Invoice]
) -> None:
    console = _console_after_login(page, f"{live_server.url}/admin/", manager_a, heading="Your stores")
    expect(page.locator("#console-drilldown")).to_contain_text("MAIN — Store MAIN")
    assert "Bravo Foods" not in page.content() and "CITY" not in page.content()
    screenshot("admin-console-manager")

    console.get_by_role("link", name="Invoices").click()
    results = page.locator("#result_list")
    expect(results).to_contain_text(month_billed["alpha"].number)
    expect(results).not_to_contain_text(month_billed["bravo"].number)
    screenshot("admin-invoices-manager")
    with page.expect_download() as download:
        results.get_by_role("link", name="PDF").first.click()
    assert download.value.suggested_filename.startswith(month_billed["alpha"].number)
