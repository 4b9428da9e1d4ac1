"""Finance's exports from the command line: invoices (XLSX/CSV), usage (XLSX/CSV), one invoice as PDF."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db.models import Q

from billing.invoicing import documents, exports, selectors
from billing.invoicing.calculations import parse_month
from billing.invoicing.models import CreditNote, DailyUsage, Invoice
from core import tenancy
from tenants.models import Tenant


class Command(BaseCommand):
    help = (
        "export_billing invoices YYYY-MM [--tenant SLUG] [--status S] --format xlsx|csv [--table invoices|lines|"
        "credit_notes] -o FILE;  export_billing usage YYYY-MM [--tenant SLUG] --format xlsx|csv [--by-day] -o FILE;  "
        "export_billing pdf NUMBER -o FILE  (an invoice or credit-note number). -o - writes to stdout."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("what", choices=["invoices", "usage", "pdf"])
        parser.add_argument("subject", help="YYYY-MM (invoices, usage) or a document number (pdf)")
        parser.add_argument("--tenant", help="Only this tenant (slug).")
        parser.add_argument("--status", choices=[s for s, _ in Invoice.Status.choices])
        parser.add_argument("--format", choices=["xlsx", "csv"], default="xlsx")
        parser.add_argument("--table", choices=["invoices", "lines", "credit_notes"], default="invoices")
        parser.add_argument("--by-day", action="store_true", help="Usage per day rather than per store.")
        parser.add_argument("-o", "--output", required=True, help="File to write, or - for stdout.")

    def handle(self, *args: Any, **options: Any) -> None:
        with tenancy.platform_wide_scope():
            body = self._body(options)
        if options["output"] == "-":
            sys.stdout.buffer.write(body)
            return
        Path(options["output"]).write_bytes(body)
        self.stderr.write(f"Wrote {len(body):,} bytes to {options['output']}.")

    def _tenant_id(self, slug: str | None) -> int | None:
        if not slug:
            return None
        tenant = Tenant.objects.filter(slug=slug).first()
        if tenant is None:
            raise CommandError(f"No tenant {slug}.")
        return tenant.pk

    def _body(self, options: dict[str, Any]) -> bytes:
        what, subject = options["what"], options["subject"]
        if what == "pdf":
            invoice = Invoice.objects.filter(number=subject).first()
            if invoice is not None:
                return documents.invoice_pdf(invoice)
            note = CreditNote.objects.filter(number=subject).first()
            if note is not None:
                return documents.credit_note_pdf(note)
            raise CommandError(f"No invoice or credit note numbered {subject}.")
        try:
            start, end = parse_month(subject)
        except ValueError as error:
            raise CommandError(str(error)) from error
        tenant_id = self._tenant_id(options["tenant"])
        if what == "invoices":
            invoices = selectors.invoice_list(period=subject, tenant_id=tenant_id, status=options["status"])
            if options["format"] == "xlsx":
                return exports.invoices_xlsx(invoices)
            return exports.invoices_csv(invoices, table=options["table"])
        usage = DailyUsage.objects.filter(Q(day__gte=start) & Q(day__lte=end))
        if tenant_id is not None:
            usage = usage.filter(tenant_id=tenant_id)
        if options["format"] == "xlsx":
            return exports.usage_xlsx(usage)
        return exports.usage_csv(usage, by_day=options["by_day"])
