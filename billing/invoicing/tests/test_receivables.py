"""Finance in /ops/: its own dashboard, the receivables (unpaid issued invoices by licensee, currency and age) with
their export, and the exchange rate a month needs recorded through the interface, so a EUR store can be billed."""

from __future__ import annotations

import csv
import io
import re
from datetime import date, timedelta

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone
from openpyxl import load_workbook

from billing.invoicing import services
from billing.invoicing.models import ExchangeRate, Invoice, InvoiceLine
from billing.invoicing.tests.helpers import account, assign, at, make_plan, make_store, sale
from conftest import logged_in
from core import tenancy
from tenants.audit import Actor
from tenants.models import Tenant

SYSTEM = Actor.system()


@pytest.fixture
def month_of_sales(tenant_a: Tenant, tenant_b: Tenant, last_month: date) -> Tenant:
    """Alpha sells and is billed in USD; Bravo is billed in USD but its store sells in EUR; Charlie is billed in EUR."""
    charlie = Tenant.objects.create(name="Charlie Stores", slug="charlie")
    dollars, euros = make_plan(store_fee=31_000), make_plan("euro", currency="EUR", store_fee=31_000)
    for tenant, plan, billed_in, sells_in in (
        (tenant_a, dollars, "USD", "USD"),
        (tenant_b, dollars, "USD", "EUR"),
        (charlie, euros, "EUR", "EUR"),
    ):
        assign(tenant, plan, date(2025, 1, 1))
        account(tenant, currency=billed_in)
        sale(make_store(tenant, "S1", currency=sells_in), at=at(last_month.replace(day=5)), amount=50_000)
    return charlie


def _close(client: Client, month: date) -> str:
    response = client.post(
        "/ops/invoicing/invoice/close-month/", {"month": f"{month:%Y-%m}", "recompute_usage": "on"}, follow=True
    )
    return response.content.decode()


def test_finance_records_the_missing_rate_closes_the_month_and_sees_what_is_owed(
    finance: User, month_of_sales: Tenant, tenant_b: Tenant, last_month: date
) -> None:
    client = logged_in(finance)
    page = _close(client, last_month)
    assert "bravo: not billed — no exchange rate EUR→USD" in page
    form = f"/ops/invoicing/exchangerate/add/?month={last_month:%Y-%m}&amp;base=EUR&amp;quote=USD"
    assert form in page
    dashboard = client.get("/ops/").content.decode()
    assert "Receivables" in dashboard and form in dashboard and "Active tenants" not in dashboard
    assert f"Exchange rates {last_month:%B %Y} still needs" in dashboard  # "November 2026", not "2026-11"
    visible = " ".join(re.sub(r"<[^>]+>", " ", dashboard).split())
    assert f"{last_month:%B %Y} closed" in visible  # its KPI, after the close above

    prefilled = client.get(form.replace("&amp;", "&")).content.decode()
    assert f'value="{last_month:%Y-%m}"' in prefilled
    response = client.post(
        "/ops/invoicing/exchangerate/add/",
        {"month": f"{last_month:%Y-%m}", "base": "EUR", "quote": "USD", "rate": "1.10"},
    )
    assert response.status_code == 302
    assert "not billed" not in _close(client, last_month)
    drafts = list(Invoice.unscoped.filter(period_start=last_month, status=Invoice.Status.DRAFT))
    assert len(drafts) == 3
    bravo = next(d for d in drafts if d.tenant_id == tenant_b.pk)
    assert "at 1.1 USD/EUR" in " ".join(
        InvoiceLine.unscoped.filter(invoice=bravo).values_list("description", flat=True)
    )
    with tenancy.platform_wide_scope():
        issued = services.invoices_finalise(actor=SYSTEM, invoices=drafts)
    older = next(i for i in issued if i.tenant.slug == "alpha")
    Invoice.unscoped.filter(pk=older.pk).update(
        issued_on=timezone.localdate() - timedelta(days=45), due_on=timezone.localdate() - timedelta(days=15)
    )

    receivables = client.get("/ops/invoicing/invoice/receivables/")
    assert receivables.status_code == 200
    sections = {s["currency"]: s for s in receivables.context["sections"]}
    assert set(sections) == {"EUR", "USD"}
    usd = sections["USD"]
    assert [item["row"].tenant_name for item in usd["rows"]] == ["Alpha Markets", "Bravo Foods"]
    alpha = usd["rows"][0]
    assert alpha["by_age"][1] == alpha["total"] and alpha["overdue"] == alpha["total"]
    assert alpha["total"].startswith("$") and "." in alpha["total"]  # major units with the currency
    assert sections["EUR"]["total"].startswith("€")
    assert sections["EUR"]["rows"][0]["row"].tenant_name == "Charlie Stores"

    exported = client.get("/ops/invoicing/invoice/receivables.csv", {"currency": "USD"})
    rows = list(csv.DictReader(io.StringIO(exported.content.decode())))
    assert [r["licensee"] for r in rows] == ["Alpha Markets", "Bravo Foods", "Total"]
    assert {r["currency"] for r in rows} == {"USD"}
    total = older.total + next(i for i in issued if i.tenant.slug == "bravo").total
    assert rows[-1]["total"] == f"{total / 100:.2f}"
    book = load_workbook(io.BytesIO(client.get("/ops/invoicing/invoice/receivables.xlsx").content))
    assert [r[0] for r in book["Receivables"].iter_rows(min_row=2, values_only=True)] == [
        "Charlie Stores",
        "Alpha Markets",
        "Bravo Foods",
        "Total",
        "Total",
    ]


def test_paid_and_fully_credited_invoices_are_not_owed(finance: User, tenant_a: Tenant, last_month: date) -> None:
    assign(tenant_a, make_plan(store_fee=31_000), date(2025, 1, 1))
    account(tenant_a)
    sale(make_store(tenant_a, "S1"), at=at(last_month.replace(day=5)), amount=50_000)
    with tenancy.platform_wide_scope():
        services.month_close(actor=SYSTEM, period_start=last_month)
        invoice = services.invoice_finalise(actor=SYSTEM, invoice=Invoice.unscoped.get(tenant=tenant_a))
        assert logged_in(finance).get("/ops/invoicing/invoice/receivables/").context["sections"]
        services.invoice_mark_paid(actor=SYSTEM, invoice=invoice)
    page = logged_in(finance).get("/ops/invoicing/invoice/receivables/")
    assert page.context["sections"] == [] and "Nothing is owed" in page.content.decode()


@pytest.mark.parametrize(
    ("month", "rate", "error"),
    [("2026-13", "1.1", "YYYY-MM"), ("2026-01", "-1", "greater than or equal"), ("2026-01", "abc", "number")],
)
def test_a_bad_exchange_rate_is_refused_and_nothing_is_stored(finance: User, month: str, rate: str, error: str) -> None:
    response = logged_in(finance).post(
        "/ops/invoicing/exchangerate/add/", {"month": month, "base": "EUR", "quote": "USD", "rate": rate}
    )
    assert response.status_code == 200 and error in response.content.decode()
    assert not ExchangeRate.objects.exists()


def test_a_rate_of_a_currency_to_itself_is_refused(finance: User) -> None:
    response = logged_in(finance).post(
        "/ops/invoicing/exchangerate/add/", {"month": "2026-01", "base": "USD", "quote": "USD", "rate": "1"}
    )
    assert "Two different currencies" in response.content.decode()
    assert not ExchangeRate.objects.exists()


def test_operators_and_licensees_see_no_receivables_and_record_no_rates(
    operator: User, manager_a: User, tenant_b: Tenant
) -> None:
    client = logged_in(operator)
    assert client.get("/ops/invoicing/invoice/receivables/").status_code == 403
    assert client.get("/ops/invoicing/invoice/receivables.csv").status_code == 403
    rate = {"month": "2026-01", "base": "EUR", "quote": "USD", "rate": "1.1"}
    assert client.post("/ops/invoicing/exchangerate/add/", rate).status_code == 403
    assert "Active tenants" in client.get("/ops/").content.decode()  # the operators' console, not finance's
    licensee = logged_in(manager_a)
    assert licensee.get("/ops/invoicing/invoice/receivables/").status_code == 302
    assert licensee.post("/ops/invoicing/exchangerate/add/", rate).status_code == 302
    assert not ExchangeRate.objects.exists()


def test_receivables_export_is_csv_or_xlsx_only(finance: User) -> None:
    client = logged_in(finance)
    assert client.get("/ops/invoicing/invoice/receivables.pdf").status_code == 404
    assert client.get("/ops/invoicing/invoice/receivables/", {"currency": "XXX"}).context["currency"] == ""
