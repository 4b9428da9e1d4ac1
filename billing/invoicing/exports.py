"""Finance's exports: invoices with their lines and credit notes, and usage per tenant and store, as CSV and XLSX.

Amounts appear twice: as a decimal in the currency's major unit (what people read and sum in a spreadsheet) and
as the integer minor units the platform keeps (what reconciles to the cent). CSV files are plain data, one
table each; the XLSX workbook has one sheet per table and totals per currency under the invoices.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import date
from decimal import Decimal
from typing import Any

from django.db.models import Count, Max, Min, Prefetch, Q, QuerySet, Sum

from billing.invoicing.models import CreditNote, DailyUsage, Invoice, InvoiceLine
from billing.invoicing.selectors import AGE_BUCKETS, Receivable
from catalog.currencies import from_minor
from core.spreadsheets import formula_safe_row

Table = tuple[list[str], list[list[Any]]]

INVOICE_HEADERS = [
    "number",
    "status",
    "tenant",
    "licensee",
    "period",
    "issued_on",
    "due_on",
    "paid_on",
    "currency",
    "subtotal",
    "tax",
    "total",
    "credited",
    "balance",
    "subtotal_minor",
    "tax_minor",
    "total_minor",
    "credited_minor",
    "balance_minor",
]
LINE_HEADERS = [
    "invoice",
    "status",
    "tenant",
    "period",
    "position",
    "kind",
    "description",
    "starts_on",
    "ends_on",
    "quantity",
    "unit",
    "unit_price_minor",
    "currency",
    "amount",
    "tax",
    "amount_minor",
    "tax_minor",
]
CREDIT_HEADERS = [
    "number",
    "invoice",
    "tenant",
    "issued_on",
    "reason",
    "currency",
    "subtotal",
    "tax",
    "total",
    "subtotal_minor",
    "tax_minor",
    "total_minor",
]
USAGE_HEADERS = [
    "tenant",
    "store",
    "store_name",
    "from",
    "to",
    "currency",
    "active_days",
    "visits_settled",
    "gross_sales",
    "refunds",
    "net_sales",
    "refunds_count",
    "sent_to_review",
    "review_rate",
    "decisions",
    "avg_seconds_to_decision",
    "gross_sales_minor",
    "refunds_minor",
]
MONEY_COLUMNS = {
    "subtotal",
    "tax",
    "total",
    "credited",
    "balance",
    "amount",
    "gross_sales",
    "refunds",
    "net_sales",
    "overdue",
    "0–30 days",
    "31–60 days",
    "61–90 days",
    "over 90 days",
}


def _money(amount: int, currency: str) -> Decimal:
    try:
        return from_minor(amount, currency)
    except ValueError:
        return Decimal(amount)


def _name(invoice: Invoice) -> str:
    return invoice.number or f"draft-{invoice.pk}"


def invoices_for_export(invoices: QuerySet[Invoice]) -> QuerySet[Invoice]:
    return (
        invoices.select_related("tenant")
        .prefetch_related(
            Prefetch("lines", queryset=InvoiceLine.unscoped.order_by("position")),
            Prefetch("credit_notes", queryset=CreditNote.unscoped.order_by("sequence")),
        )
        .order_by("period_start", "number", "pk")
    )


def invoice_table(invoices: Iterable[Invoice]) -> Table:
    rows = []
    for invoice in invoices:
        cur = invoice.currency
        credited = sum(note.total for note in invoice.credit_notes.all())
        balance = invoice.total - credited
        rows.append(
            [
                _name(invoice),
                invoice.status,
                invoice.tenant.slug,
                invoice.bill_to.get("name", invoice.tenant.name),
                invoice.period_label,
                invoice.issued_on,
                invoice.due_on,
                invoice.paid_on,
                cur,
                _money(invoice.subtotal, cur),
                _money(invoice.tax, cur),
                _money(invoice.total, cur),
                _money(credited, cur),
                _money(balance, cur),
                invoice.subtotal,
                invoice.tax,
                invoice.total,
                credited,
                balance,
            ]
        )
    return INVOICE_HEADERS, rows


def line_table(invoices: Iterable[Invoice]) -> Table:
    rows = []
    for invoice in invoices:
        cur = invoice.currency
        for line in invoice.lines.all():
            rows.append(
                [
                    _name(invoice),
                    invoice.status,
                    invoice.tenant.slug,
                    invoice.period_label,
                    line.position,
                    line.kind,
                    line.description,
                    line.starts_on,
                    line.ends_on,
                    line.quantity,
                    line.unit,
                    line.unit_price,
                    cur,
                    _money(line.amount, cur),
                    _money(line.tax, cur),
                    line.amount,
                    line.tax,
                ]
            )
    return LINE_HEADERS, rows


def credit_note_table(invoices: Iterable[Invoice]) -> Table:
    rows = []
    for invoice in invoices:
        for note in invoice.credit_notes.all():
            cur = note.currency
            rows.append(
                [
                    note.number,
                    _name(invoice),
                    invoice.tenant.slug,
                    note.issued_on,
                    note.reason,
                    cur,
                    _money(note.subtotal, cur),
                    _money(note.tax, cur),
                    _money(note.total, cur),
                    note.subtotal,
                    note.tax,
                    note.total,
                ]
            )
    return CREDIT_HEADERS, rows


def usage_table(usage: QuerySet[DailyUsage], *, by_day: bool = False) -> Table:
    """Usage per tenant and store over the rows given (or per day too, with `by_day`)."""
    keys = ["tenant__slug", "store__code", "store__name", "currency"] + (["day"] if by_day else [])
    grouped = (
        usage.values(*keys)
        .annotate(
            active_days=Count("id", filter=Q(store_active=True)),
            visits=Sum("visits_settled"),
            gross=Sum("gross_sales"),
            refunds_total=Sum("refunds"),
            refunds_n=Sum("refunds_count"),
            sent=Sum("sent_to_review"),
            decided=Sum("decisions"),
            seconds=Sum("decision_seconds"),
        )
        .order_by(*keys)
    )
    spans: dict[tuple[Any, ...], tuple[date, date]] = {}
    if not by_day:
        for row in usage.values("tenant__slug", "store__code").annotate(lo=Min("day"), hi=Max("day")).order_by():
            spans[(row["tenant__slug"], row["store__code"])] = (row["lo"], row["hi"])
    rows = []
    for row in grouped:
        cur = row["currency"]
        gross, refunds = row["gross"] or 0, row["refunds_total"] or 0
        visits, sent, decided = row["visits"] or 0, row["sent"] or 0, row["decided"] or 0
        low, high = (row["day"], row["day"]) if by_day else spans[(row["tenant__slug"], row["store__code"])]
        rows.append(
            [
                row["tenant__slug"],
                row["store__code"],
                row["store__name"],
                low,
                high,
                cur,
                row["active_days"],
                visits,
                _money(gross, cur),
                _money(refunds, cur),
                _money(gross - refunds, cur),
                row["refunds_n"] or 0,
                sent,
                round(sent / visits, 4) if visits else "",
                decided,
                round((row["seconds"] or 0) / decided) if decided else "",
                gross,
                refunds,
            ]
        )
    return USAGE_HEADERS, rows


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, date):
        return value.isoformat()
    return value


def to_csv(table: Table) -> bytes:
    headers, rows = table
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(headers)
    for row in rows:
        writer.writerow(formula_safe_row(_cell(value) for value in row))
    return buffer.getvalue().encode("utf-8")


def _currency_totals(table: Table) -> list[list[Any]]:
    """One row per currency under the invoices: the money columns summed (exactly, in minor units)."""
    headers, rows = table
    sums: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for row in rows:
        values = dict(zip(headers, row, strict=True))
        for header in headers:
            if header.endswith("_minor"):
                sums[values["currency"]][header] += int(values[header])
    totals = []
    for currency in sorted(sums):
        total: list[Any] = []
        for header in headers:
            if header == "number":
                total.append(f"TOTAL {currency}")
            elif header == "currency":
                total.append(currency)
            elif header.endswith("_minor"):
                total.append(sums[currency][header])
            elif header in MONEY_COLUMNS:
                total.append(_money(sums[currency][f"{header}_minor"], currency))
            else:
                total.append("")
        totals.append(total)
    return totals


def to_xlsx(sheets: Sequence[tuple[str, Table]], *, totals_on: str | None = None) -> bytes:
    """A workbook, one sheet per table (dates as dates, amounts as numbers with two decimals)."""
    from openpyxl import Workbook
    from openpyxl.styles import Font

    book = Workbook()
    book.remove(book.active)
    bold = Font(bold=True)
    for title, (headers, rows) in sheets:
        sheet = book.create_sheet(title=title[:31])
        sheet.append(headers)
        for cell in sheet[1]:
            cell.font = bold
        money_columns = [i for i, h in enumerate(headers, start=1) if h in MONEY_COLUMNS]
        extra = _currency_totals((headers, rows)) if title == totals_on else []
        for row in rows:
            sheet.append(formula_safe_row("" if v is None else v for v in row))
        for row in extra:
            sheet.append(row)
            for cell in sheet[sheet.max_row]:
                cell.font = bold
        for column in money_columns:
            for (cell,) in sheet.iter_rows(min_row=2, min_col=column, max_col=column):
                cell.number_format = "#,##0.00"
        sheet.freeze_panes = "A2"
        for index, header in enumerate(headers, start=1):
            width = 48 if header in ("description", "reason") else max(10, len(header) + 2)
            sheet.column_dimensions[sheet.cell(row=1, column=index).column_letter].width = width
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def invoices_xlsx(invoices: QuerySet[Invoice]) -> bytes:
    found = list(invoices_for_export(invoices))
    return to_xlsx(
        [
            ("Invoices", invoice_table(found)),
            ("Lines", line_table(found)),
            ("Credit notes", credit_note_table(found)),
        ],
        totals_on="Invoices",
    )


def invoices_csv(invoices: QuerySet[Invoice], *, table: str = "invoices") -> bytes:
    """One table as CSV: `invoices`, `lines` or `credit_notes`."""
    builders = {"invoices": invoice_table, "lines": line_table, "credit_notes": credit_note_table}
    if table not in builders:
        raise ValueError(f"table is one of {', '.join(builders)}")
    return to_csv(builders[table](list(invoices_for_export(invoices))))


def usage_xlsx(usage: QuerySet[DailyUsage]) -> bytes:
    return to_xlsx([("Usage by store", usage_table(usage)), ("Usage by day", usage_table(usage, by_day=True))])


def usage_csv(usage: QuerySet[DailyUsage], *, by_day: bool = False) -> bytes:
    return to_csv(usage_table(usage, by_day=by_day))


def receivables_table(rows: Sequence[Receivable], totals: dict[str, Receivable]) -> Table:
    """The receivables (`selectors.receivables`) and their totals per currency, amounts in major units."""
    headers = [
        "licensee",
        "currency",
        "invoices",
        *(label for _, _, label in AGE_BUCKETS),
        "total",
        "overdue",
        "oldest_issued_on",
    ]
    table = [
        [
            row.tenant_name,
            row.currency,
            row.invoices,
            *(_money(amount, row.currency) for amount in row.by_age),
            _money(row.total, row.currency),
            _money(row.overdue, row.currency),
            row.oldest_issued_on,
        ]
        for row in [*rows, *totals.values()]
    ]
    return headers, table
