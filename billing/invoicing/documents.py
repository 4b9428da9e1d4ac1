"""Invoices and credit notes as PDF documents (WeasyPrint, from `templates/invoicing/invoice.html`)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.template.loader import render_to_string

from billing.invoicing.models import CreditNote, Invoice, InvoiceLine
from catalog.currencies import format_money

TEMPLATE = "invoicing/invoice.html"


def _rate(bps: int) -> str:
    return f"{(Decimal(bps) / 100).normalize():f} %" if bps else ""


def _period(invoice: Invoice) -> str:
    return f"{invoice.period_start:%-d %B %Y} – {invoice.period_end:%-d %B %Y}"


def invoice_context(invoice: Invoice) -> dict[str, Any]:
    money = lambda amount: format_money(amount, invoice.currency)  # noqa: E731
    credits = list(invoice.credit_notes.order_by("sequence")) if not invoice.is_draft else []
    credited = sum(note.total for note in credits)
    lines = list(invoice.lines.order_by("position"))
    service_credit = sum(line.amount for line in lines if line.kind == InvoiceLine.Kind.SERVICE_CREDIT)
    watermark = {"draft": "DRAFT", "void": "VOID"}.get(invoice.status, "")
    return {
        "doc": {
            "title": "Invoice",
            "number": invoice.number or f"draft of {invoice.period_label}",
            "issued_on": invoice.issued_on,
            "due_on": invoice.due_on,
            "period": _period(invoice),
            "currency": invoice.currency,
            "status": invoice.get_status_display() if invoice.status != Invoice.Status.FINALISED else "",
            "tax_label": invoice.tax_label or "Tax",
            "tax_rate": _rate(invoice.tax_rate_bps),
            "about": f"Use of the OpenAisle platform, {invoice.period_start:%B %Y}.",
            "watermark": watermark,
            "is_credit_note": False,
        },
        "issuer": invoice.issuer,
        "bill_to": invoice.bill_to,
        "lines": [
            {
                "position": line.position,
                "description": line.description,
                "quantity": f"{line.quantity:,} {line.unit}" if line.kind != "revenue_share" else "",
                "unit_price": money(line.unit_price) if line.kind != "revenue_share" else _rate(line.unit_price),
                "amount": money(line.amount),
                "tax": money(line.tax),
                "credit": line.kind == InvoiceLine.Kind.SERVICE_CREDIT,
            }
            for line in lines
        ],
        "totals": {
            "service_credit": money(service_credit) if service_credit else "",
            "subtotal": money(invoice.subtotal),
            "tax": money(invoice.tax),
            "total": money(invoice.total),
            "balance": money(invoice.total - credited) if credits else "",
        },
        "credits": [{"number": note.number, "total": money(note.total)} for note in credits],
    }


def credit_note_context(note: CreditNote) -> dict[str, Any]:
    invoice = note.invoice
    money = lambda amount: format_money(amount, note.currency)  # noqa: E731
    return {
        "doc": {
            "title": "Credit note",
            "number": note.number,
            "reference": invoice.number,
            "issued_on": note.issued_on,
            "due_on": None,
            "period": _period(invoice),
            "currency": note.currency,
            "status": "",
            "tax_label": invoice.tax_label or "Tax",
            "tax_rate": _rate(invoice.tax_rate_bps),
            "about": note.reason,
            "watermark": "",
            "is_credit_note": True,
        },
        "issuer": invoice.issuer,
        "bill_to": invoice.bill_to,
        "lines": [
            {
                "position": line.position,
                "description": line.description,
                "amount": money(line.amount),
                "tax": money(line.tax),
            }
            for line in note.lines.order_by("position")
        ],
        "totals": {"subtotal": money(note.subtotal), "tax": money(note.tax), "total": money(note.total), "balance": ""},
        "credits": [],
    }


def _pdf(html: str) -> bytes:
    from weasyprint import HTML  # imported when used: it loads Pango

    pdf: bytes = HTML(string=html).write_pdf()
    return pdf


def invoice_html(invoice: Invoice) -> str:
    return render_to_string(TEMPLATE, invoice_context(invoice))


def invoice_pdf(invoice: Invoice) -> bytes:
    return _pdf(invoice_html(invoice))


def credit_note_pdf(note: CreditNote) -> bytes:
    return _pdf(render_to_string(TEMPLATE, credit_note_context(note)))


def invoice_filename(invoice: Invoice) -> str:
    slug = invoice.bill_to.get("slug", "tenant")
    return f"{invoice.number or 'draft-' + str(invoice.pk)}-{slug}-{invoice.period_label}.pdf"


def credit_note_filename(note: CreditNote) -> str:
    return f"{note.number}.pdf"
