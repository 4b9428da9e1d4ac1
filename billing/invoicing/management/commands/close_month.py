"""Close a month: one draft invoice per tenant on a plan (idempotent); `--finalise` also numbers the drafts."""

from __future__ import annotations

import json
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from billing.invoicing import services
from billing.invoicing.calculations import parse_month
from billing.invoicing.models import Invoice
from core import tenancy
from tenants.audit import Actor
from tenants.models import Tenant


class Command(BaseCommand):
    help = (
        "Build (or bring up to date) the draft invoices of a month, YYYY-MM. Closing twice changes nothing; "
        "finalised invoices are never touched. Prints a JSON summary."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("month", help="YYYY-MM")
        parser.add_argument("--tenant", action="append", default=[], help="Only this tenant (slug); repeatable.")
        parser.add_argument("--finalise", action="store_true", help="Also finalise the month's drafts (numbers).")
        parser.add_argument(
            "--no-usage", action="store_true", help="Use the usage rows as they are instead of deriving them anew."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            start, _ = parse_month(options["month"])
        except ValueError as error:
            raise CommandError(str(error)) from error
        actor = Actor.cli()
        with tenancy.platform_wide_scope():
            tenant_ids = None
            if options["tenant"]:
                found = dict(Tenant.objects.filter(slug__in=options["tenant"]).values_list("slug", "pk"))
                missing = sorted(set(options["tenant"]) - set(found))
                if missing:
                    raise CommandError(f"No tenant {', '.join(missing)}.")
                tenant_ids = list(found.values())
            result = services.month_close(
                actor=actor, period_start=start, tenant_ids=tenant_ids, recompute_usage=not options["no_usage"]
            )
            summary = result.as_dict()
            if options["finalise"]:
                drafts = Invoice.objects.filter(period_start=start, status=Invoice.Status.DRAFT)
                if tenant_ids is not None:
                    drafts = drafts.filter(tenant_id__in=tenant_ids)
                try:
                    done = services.invoices_finalise(actor=actor, invoices=list(drafts))
                except ValidationError as error:
                    raise CommandError(" ".join(error.messages)) from error
                summary["finalised"] = len(done)
                summary["numbers"] = [done[0].number, done[-1].number] if done else []
        self.stdout.write(json.dumps(summary, indent=2))
        if result.failed:
            raise CommandError(f"{len(result.failed)} tenant(s) not billed: see 'failed' above.")
