"""Seed the demo and run a day of a store through the platform; print where to look.

An operator and a finance user; two licensees with managers and API keys; for each a
catalog, a store with a realistic layout, and a day of shopper events uploaded and
processed (in-process when no broker is configured, by a worker this command starts
otherwise). Safe to run again: people and tenants are kept, passwords reset to the
demo ones, a fresh API key is issued, and a new day of events is added.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth.models import Group, User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandParser
from django.db import transaction
from django.db.models import Count
from django.urls import reverse
from django.utils import timezone
from tqdm import tqdm

from billing.invoicing import services as invoicing
from billing.invoicing.models import BillingAccount, Invoice, Plan, PlanAssignment
from billing.payments import services as payment_services
from billing.payments.models import PaymentAttempt
from billing.payments.stripe_standin import LocalStripe
from catalog import services as catalog_services
from catalog.currencies import format_money
from catalog.models import Product, ProductPrice
from catalog.sample import sample_catalog_rows
from core import tenancy
from core.admin_sites import FINANCE_GROUP, OPERATOR_GROUP
from ingest import services as ingest_services
from ingest.models import Event, EventStream
from stores import services as store_services
from stores.models import Store
from stores.sample import sample_layout
from tenants import services
from tenants.audit import Actor
from tenants.models import Membership, Tenant
from visits.models import ChargeInstruction, Visit, VisitLine
from visits.settling import due_for_settling
from visits.simulator import CatalogItem, simulate

DEMO_PASSWORD = "open-aisle-demo"  # noqa: S105 — the demo's published login
DEMO_TENANTS = (
    ("northwind", "Northwind Grocers", "manager@northwind.test", "NW-001", "Northwind Market Street", "USD"),
    ("southgate", "Southgate Foods", "manager@southgate.test", "SG-001", "Southgate Station", "EUR"),
)
PLATFORM_STAFF = (("operator@openaisle.test", OPERATOR_GROUP), ("finance@openaisle.test", FINANCE_GROUP))
LAYOUT_SINCE = datetime(2026, 1, 1, tzinfo=UTC)
PROJECT_ROOT = Path(__file__).resolve().parents[4]
DEMO_SHOPPERS = 20
DEMO_STRIPE_PORT = 8420


class Command(BaseCommand):
    help = "Seed the demo data, run a day of store events through the platform, and print where to look."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--visits", type=int, default=300, help="Shopper visits per store in the day of events.")
        parser.add_argument(
            "--serve", metavar="HOST:PORT", help="Then serve the web app here, with the Stripe stand-in and workers."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        actor = Actor.cli()
        keys: dict[str, str] = {}
        with transaction.atomic():
            for email, group in PLATFORM_STAFF:
                _demo_user(email).groups.add(Group.objects.get_or_create(name=group)[0])
            tenants = [self._tenant(actor, slug, name, manager) for slug, name, manager, *_ in DEMO_TENANTS]
            for tenant in tenants:
                keys[tenant.slug] = services.api_key_issue(actor=actor, tenant=tenant, name="demo key").key
        streams = []
        with self._stripe(), self._workers():
            for tenant, (_, _, _, code, store_name, currency) in zip(tenants, DEMO_TENANTS, strict=True):
                with tenancy.tenant_scope(tenant.pk):
                    store = self._store(actor, tenant, code, store_name, currency)
                    tokens = self._shoppers(actor, tenant)
                    streams += self._day_of_events(actor, store, visits=options["visits"], tokens=tokens)
            self._wait(streams)
            self._refund_one(streams)
            invoices = self._close_last_month(actor, tenants)
            self._print_summary(keys, streams)
            self._print_invoices(invoices)
            if options["serve"]:
                call_command("runserver", options["serve"], use_reloader=False)

    @contextlib.contextmanager
    def _stripe(self) -> Iterator[None]:
        """The Stripe stand-in on 127.0.0.1 (its customers kept in var/ between runs), unless Stripe is configured."""
        if settings.STRIPE_API_BASE or os.environ.get("STRIPE_SECRET_KEY"):
            yield
            return
        with LocalStripe(port=DEMO_STRIPE_PORT, state=settings.VAR_DIR / "localstripe.pickle") as standin:
            self.stdout.write(f"· Stripe stand-in (localstripe) on {standin.base_url}")
            settings.STRIPE_API_BASE = os.environ["STRIPE_API_BASE"] = standin.base_url
            try:
                yield
            finally:
                settings.STRIPE_API_BASE = ""
                os.environ.pop("STRIPE_API_BASE", None)

    def _shoppers(self, actor: Actor, tenant: Tenant) -> list[str]:
        """Register the demo shoppers' test cards; the last one's card is declined when charged."""
        self.stdout.write(f"· {tenant.name}: registering {DEMO_SHOPPERS} shoppers' cards with Stripe")
        tokens = []
        for number in range(DEMO_SHOPPERS):
            declines = number == DEMO_SHOPPERS - 1
            registered = payment_services.shopper_register(
                actor=actor,
                tenant=tenant,
                external_ref=f"{tenant.slug}-shopper-{number + 1:02d}",
                payment_method="pm_card_chargeCustomerFail" if declines else "pm_card_visa",
                email=f"shopper{number + 1:02d}@{tenant.slug}.test",
            )
            tokens.append(registered.entry_token)
        return tokens

    def _close_last_month(self, actor: Actor, tenants: list[Tenant]) -> list[Invoice]:
        """Both licensees on the Standard plan since the start of last month; last month closed and finalised."""
        first_of_this_month = timezone.now().date().replace(day=1)
        last_month = (first_of_this_month - timedelta(days=1)).replace(day=1)
        self.stdout.write(f"· closing {last_month:%Y-%m}: one invoice per licensee")
        with tenancy.platform_wide_scope():
            plan, _ = Plan.objects.get_or_create(code="standard", defaults={"name": "Standard"})
            version = plan.versions.order_by("-number").first() or invoicing.plan_version_create(
                actor=actor,
                plan=plan,
                currency="USD",
                store_fee=49_900,
                visit_fee=5,
                revenue_share_bps=150,
                monthly_minimum=99_900,
                note="Demo plan",
            )
            for tenant in tenants:
                BillingAccount.objects.get_or_create(
                    tenant=tenant,
                    defaults={
                        "legal_name": f"{tenant.name} Ltd",
                        "address": "1 Demo Way\nSpringfield",
                        "email": f"accounts@{tenant.slug}.test",
                        "currency": "USD",
                        "tax_rate_bps": 2000,
                        "tax_label": "VAT",
                    },
                )
                if not PlanAssignment.objects.filter(tenant=tenant).exists():
                    invoicing.plan_assign(actor=actor, tenant=tenant, plan_version=version, starts_on=last_month)
            result = invoicing.month_close(actor=actor, period_start=last_month, tenant_ids=[t.pk for t in tenants])
            drafts = list(Invoice.objects.filter(tenant__in=tenants, period_start=result.period_start, status="draft"))
            invoicing.invoices_finalise(actor=actor, invoices=drafts)
            # The dashboards read usage, which a beat job derives every few minutes; the demo's day is there now.
            invoicing.usage_recompute(start=last_month, end=timezone.now().date(), tenant_ids=[t.pk for t in tenants])
            return list(Invoice.objects.filter(tenant__in=tenants, period_start=result.period_start).order_by("pk"))

    def _print_invoices(self, invoices: list[Invoice]) -> None:
        base = settings.PUBLIC_BASE_URL.rstrip("/")
        for invoice in invoices:
            pdf = reverse("ops:invoicing_invoice_pdf", args=[invoice.pk])
            self.stdout.write(
                f"  Invoice {invoice.number or 'draft'} to {invoice.tenant.name}: "
                f"{format_money(invoice.total, invoice.currency)} ({invoice.status}) → PDF {base}{pdf} (finance login)"
            )

    def _refund_one(self, streams: list[EventStream]) -> None:
        """A store manager refunds one line of a charged visit: a damaged product."""
        store_ids = sorted({s.store_id for s in streams})
        if not store_ids:
            return
        with tenancy.platform_wide_scope():
            store = Store.objects.get(pk=store_ids[0])
        with tenancy.tenant_scope(store.tenant_id):
            visit = (
                Visit.objects.filter(store=store, status=Visit.Status.CHARGED, refunded=0, paid__gt=0)
                .order_by("-total")
                .first()
            )
            line = VisitLine.objects.filter(visit=visit).order_by("sku").first() if visit else None
            if visit is None or line is None:
                return
            manager = User.objects.get(username=DEMO_TENANTS[0][2])
            payment_services.visit_refund(
                actor=Actor(source="cli", user=manager),
                visit=visit,
                reason_code="damaged",
                lines=[{"sku": line.sku, "qty": 1}],
                note="Demo: the shopper reported a damaged item.",
            )
        self._wait_for_payments(store.tenant_id)

    def _tenant(self, actor: Actor, slug: str, name: str, manager_email: str) -> Tenant:
        tenant = Tenant.objects.filter(slug=slug).first() or services.tenant_create(actor=actor, name=name, slug=slug)
        _demo_user(manager_email)
        if not Membership.unscoped.filter(tenant=tenant, user__username=manager_email).exists():
            services.member_add(actor=actor, tenant=tenant, email=manager_email, role=Membership.Role.MANAGER)
        return tenant

    def _store(self, actor: Actor, tenant: Tenant, code: str, name: str, currency: str) -> Store:
        self.stdout.write(f"· {tenant.name}: catalog, store {code} and its layout")
        if not Product.objects.exists():
            catalog_services.catalog_import(
                actor=actor, tenant=tenant, rows=sample_catalog_rows(count=120, currency=currency), currency=currency
            )
            # The demo's stores have sold at these prices since the start of the year (the simulated day is past).
            ProductPrice.objects.update(effective_from=LAYOUT_SINCE)
        store = Store.objects.filter(code=code).first()
        if store is None:
            store = store_services.store_create(
                actor=actor,
                tenant=tenant,
                code=code,
                name=name,
                timezone="Europe/Paris" if currency == "EUR" else "America/New_York",
                currency=currency,
                address="1 Demo Way",
                status=Store.Status.ACTIVE,
            )
        if not store.layouts.exists():
            skus = list(Product.objects.order_by("sku").values_list("sku", flat=True))
            store_services.layout_publish(
                actor=actor, store=store, document=sample_layout(skus=skus), effective_from=LAYOUT_SINCE
            )
        return store

    def _day_of_events(self, actor: Actor, store: Store, *, visits: int, tokens: list[str]) -> list[EventStream]:
        """Simulate yesterday in the store (realistic noise); upload it as a store would: a file, then late events."""
        layout = store.layouts.order_by("-effective_from").first()
        assert layout is not None
        catalog = {
            sku: CatalogItem(sku, float(weight), float(tolerance))
            for sku, weight, tolerance in Product.objects.values_list("sku", "unit_weight_g", "weight_tolerance_g")
        }
        day = timezone.now().astimezone(UTC).replace(hour=8, minute=0, second=0, microsecond=0) - timedelta(days=1)
        run = EventStream.objects.filter(store=store).count()
        simulation = simulate(
            layout=layout.document,
            catalog=catalog,
            profile="realistic",
            visits=visits,
            start=day,
            seed=day.day + run,
            shopper_tokens=tokens,
        )
        streams = []
        for number, body in enumerate(simulation.uploads, start=1):
            lines = body.count(b"\n")
            self.stdout.write(f"· {store.code}: uploading {lines} event lines of {day:%Y-%m-%d} (file {number})")
            name = f"{store.code}-{day:%Y-%m-%d}-{run}-{number}.ndjson"
            upload = SimpleUploadedFile(name, body, content_type="application/x-ndjson")
            streams.append(ingest_services.stream_upload(actor=actor, store=store, upload=upload))
        return streams

    @contextlib.contextmanager
    def _workers(self) -> Iterator[None]:
        """With a broker configured, run a real worker for the length of the demo; otherwise tasks run in-process."""
        if settings.CELERY_TASK_ALWAYS_EAGER:
            yield
            return
        env = {**os.environ, "PYTHONPATH": f"{PROJECT_ROOT}:{PROJECT_ROOT / 'platform'}"}
        command = [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "config",
            "worker",
            "-Q",
            "ingest,visits,payments,default",
            "--concurrency",
            "2",
            "--loglevel",
            "WARNING",
        ]
        self.stdout.write("· starting a Celery worker (ingest, visits, payments, default)")
        worker = subprocess.Popen(command, cwd=PROJECT_ROOT, env=env)  # noqa: S603 — our own worker command
        try:
            yield
        finally:
            worker.terminate()
            worker.wait(timeout=60)

    def _wait(self, streams: list[EventStream], timeout: float = 600) -> None:
        """Until every stream is processed and its visits settled and paid, with a progress bar by stream."""
        deadline = time.monotonic() + timeout
        with (
            tenancy.platform_wide_scope(),
            tqdm(total=len(streams), desc="· processing streams", unit="stream", file=self.stdout, leave=True) as bar,
        ):
            for stream in streams:
                while not self._handed_on(stream):
                    if time.monotonic() > deadline:
                        self.stderr.write(
                            f"stream {stream.pk} is still {stream.status}; see /admin/ingest/eventstream/"
                        )
                        break
                    bar.set_postfix_str(f"{stream.store.code} {stream.progress:.0%}")
                    time.sleep(0.5)
                bar.update(1)
            for tenant_id in sorted({s.tenant_id for s in streams}):
                self._wait_for_payments(tenant_id, deadline=deadline)

    def _wait_for_payments(self, tenant_id: int, *, deadline: float | None = None) -> None:
        """Until no money is left to move for the tenant's settled visits (declines wait for their retry)."""
        deadline = deadline or time.monotonic() + 120
        with tenancy.tenant_scope(tenant_id):
            while time.monotonic() < deadline:
                moving = PaymentAttempt.objects.filter(state__in=["pending", "processing"]).exists()
                waiting = (
                    ChargeInstruction.objects.filter(state="pending")
                    .exclude(visit__status=Visit.Status.PAYMENT_FAILED)
                    .exists()
                )
                if not moving and not waiting:
                    return
                time.sleep(0.5)
        self.stderr.write("payments are still being processed; see /admin/visits/visit/")

    @staticmethod
    def _handed_on(stream: EventStream) -> bool:
        """The stream is processed and every visit it brought is up to date."""
        stream.refresh_from_db()
        if stream.status not in (EventStream.Status.DONE, EventStream.Status.FAILED):
            return False
        sessions = Event.objects.filter(stream=stream).exclude(session=None).values("session").distinct().count()
        if Visit.objects.filter(store_id=stream.store_id, events_count__gt=0).count() < sessions:
            return False
        return not due_for_settling(store=stream.store, now=timezone.now())

    def _print_summary(self, keys: dict[str, str], streams: list[EventStream]) -> None:
        base = settings.PUBLIC_BASE_URL.rstrip("/")
        out = self.stdout.write
        out(self.style.SUCCESS("\nOpenAisle demo is ready.\n"))
        out(f"  Operator admin   {base}/ops/     operator@openaisle.test / {DEMO_PASSWORD}")
        out(f"                                    finance@openaisle.test / {DEMO_PASSWORD}")
        out(f"  Store admin      {base}/admin/   manager@northwind.test / {DEMO_PASSWORD}  (or manager@southgate.test)")
        out(f"  API docs         {base}/api/v1/docs/")
        out(f"  Health           {base}/healthz  {base}/readyz")
        with tenancy.platform_wide_scope():
            for store_id in sorted({s.store_id for s in streams}):
                self._print_store(store_id, base)
            for stream in streams:
                visits = Visit.objects.filter(store_id=stream.store_id).count()
                out(
                    f"  {stream.store.code} events   {stream.status}: {stream.lines} lines, {stream.accepted} "
                    f"accepted, {stream.duplicates} duplicates, {stream.rejected} rejected; {visits} visits "
                    f"→ {base}/admin/ingest/eventstream/{stream.pk}/change/"
                )
        out(f"  Northwind API key (shown once):\n    {keys['northwind']}")
        out(f"  Try:  curl -H 'Authorization: Bearer {keys['northwind']}' {base}/api/v1/stores")

    def _print_store(self, store_id: int, base: str) -> None:
        store = Store.objects.get(pk=store_id)
        visits = Visit.objects.filter(store=store)
        counts = dict(visits.values_list("status").annotate(n=Count("id")).values_list("status", "n"))
        summary = ", ".join(f"{n} {status.replace('_', ' ')}" for status, n in sorted(counts.items()))
        self.stdout.write(f"  {store.code} visits    {summary}")
        layout = store.layouts.order_by("-effective_from").first()
        if layout is not None:
            self.stdout.write(f"  {store.code} floor plan {base}/admin/stores/layoutversion/{layout.pk}/change/")
        self.stdout.write(f"  {store.code} review queue ({counts.get('needs_review', 0)}): {base}/admin/visits/visit/")
        failed = visits.filter(status=Visit.Status.PAYMENT_FAILED)
        if failed.exists():
            owed = sum(visit.balance_due for visit in failed)
            self.stdout.write(
                f"  {store.code} payment failed: {failed.count()} visits, {format_money(owed, store.currency)} owed "
                f"(declined card; retried on a schedule) → {base}/admin/visits/visit/?status=payment_failed"
            )
        refunded = visits.filter(refunded__gt=0).first()
        if refunded is not None:
            amount = format_money(refunded.refunded, refunded.currency)
            self.stdout.write(
                f"  {store.code} refunded: visit {refunded.session}, {amount}"
                f" → {base}/admin/visits/visit/{refunded.pk}/change/"
            )
        paid = visits.filter(status=Visit.Status.CHARGED, payment_status="succeeded", refunded=0)
        receipt = paid.order_by("-total").first()
        if receipt is not None:
            lines = VisitLine.objects.filter(visit=receipt).order_by("sku")
            total = format_money(receipt.total, receipt.currency)
            self.stdout.write(
                f"  {store.code} a charged receipt: visit {receipt.session}, {total}, "
                f"paid ({receipt.payment_reference})"
            )
            for line in lines:
                self.stdout.write(f"      {line.qty} × {line.name} @ {format_money(line.unit_price, receipt.currency)}")
            self.stdout.write(f"      {base}/api/v1/stores/{store.code}/visits/{receipt.session}")


def _demo_user(email: str) -> User:
    user, _ = User.objects.get_or_create(username=email, defaults={"email": email})
    user.is_staff = True
    user.set_password(DEMO_PASSWORD)
    user.save()
    return user
