"""Seed the demo, run yesterday of two stores through the platform, and show where to look on one screen.

An operator and a finance user; two licensees (one selling in USD, one in EUR) with a manager and an API
key each; for each a catalog imported with the prices it has had since the start of the year
(`effective_from`), a store with a realistic layout, twenty shoppers' cards (one declines) and yesterday's
events uploaded as a store would, processed in-process when no broker is configured or by a worker this
command starts otherwise. With PostgreSQL or Redis the files kept (uploads, catalog files) go to moto's S3
server on 127.0.0.1, started like the Stripe stand-in, unless S3_BUCKET names a bucket. Then a refund, this
month's invoices (with an EUR→USD rate for the EUR licensee), and a screen with URLs, logins, a receipt, the
review queue and the invoices.

The terminal gets one line per phase; everything else — logs, Stripe calls, e-mails — goes to
var/demo.log. SIGTERM, SIGHUP and Ctrl-C stop it and everything it started (the Stripe and S3 stand-ins,
the worker, the server). Safe to run again: people and tenants are kept, passwords reset to the demo ones, a
fresh API key is issued, and another batch of yesterday's visits is added.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import IO, Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.contrib.auth.models import Group, User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser, OutputWrapper
from django.db import OperationalError, connection, transaction
from django.db.models import Count, Max, Q, Sum
from django.urls import reverse
from django.utils import timezone
from tqdm import tqdm

from billing.invoicing import calculations as invoice_calculations
from billing.invoicing import services as invoicing
from billing.invoicing.models import (
    BillingAccount,
    DailyUsage,
    ExchangeRate,
    Invoice,
    InvoiceLine,
    Plan,
    PlanAssignment,
    PlanVersion,
)
from billing.payments import refunds, shoppers
from billing.payments.models import PaymentAttempt
from billing.payments.stripe_standin import LocalStripe
from catalog import services as catalog_services
from catalog.currencies import format_money
from catalog.models import Product
from catalog.sample import sample_catalog_rows
from core import tenancy
from core.admin_sites import FINANCE_GROUP, OPERATOR_GROUP
from core.object_store_standin import LocalS3
from core.storage import default_storage_replaced
from disputes import services as dispute_services
from disputes.models import Dispute
from ingest import services as ingest_services
from ingest.models import Event, EventStream
from service_levels.selectors import tenant_service_levels_on_days
from service_levels.words import seconds, share
from stock import selectors as stock_selectors
from stock import services as stock_services
from stock import shrink
from stores import health
from stores import services as store_services
from stores.models import Device, Store
from stores.sample import sample_layout
from tenants import services
from tenants.audit import Actor
from tenants.models import Membership, Tenant
from visits import selectors as visit_selectors
from visits import services as visit_services
from visits.models import StoreCalibration, Visit, VisitLine
from visits.simulator import CatalogItem, Simulation, simulate

DEMO_PASSWORD = "open-aisle-demo"  # noqa: S105 — the demo's published login
DEMO_TENANTS = (
    ("northwind", "Northwind Grocers", "manager@northwind.test", "NW-001", "Northwind Market Street", "USD"),
    ("southgate", "Southgate Foods", "manager@southgate.test", "SG-001", "Southgate Station", "EUR"),
)
STORE_TIMEZONES = {"USD": "America/New_York", "EUR": "Europe/Paris"}
PLATFORM_STAFF = (("operator@openaisle.test", OPERATOR_GROUP), ("finance@openaisle.test", FINANCE_GROUP))
PRICES_SINCE = datetime(2026, 1, 1, tzinfo=UTC)
PROJECT_ROOT = Path(__file__).resolve().parents[4]
DEMO_SHOPPERS = 10
EUR_TO_USD = Decimal("1.0850")
# The demo plan's service promise: at least 90 % of visits settled without a person, a 10 % credit of the month's
# fees when missed. (Not a time to receipt: the demo uploads yesterday's visits today, a day after they left.)
PROMISES = invoice_calculations.Promises(without_person_bps=9_000, credit_bps=1_000)
# Every LOW_AT_OPENING-th bin opens at its low-stock level (a quarter of its capacity): staff restock it once a
# shopper takes from it, and it is still low at the end of the day if nobody did.
LOW_AT_OPENING = 8
# While serving, the demo's devices report this often: a third of the time after which a device reads as silent.
DEVICE_REPORT_SECONDS = settings.DEVICE_SILENT_AFTER_SECONDS // 3
# Of a store's visits in review, how many its manager leaves for whoever opens the demo to decide (at most half).
LEFT_TO_REVIEW = 4
STALL_SECONDS = 120  # a wait that sees nothing move for this long says so and goes on
POLL_SECONDS = 0.5
SWEEP_SECONDS = 10  # how often a wait does what the beat does: settle visits due, move money due
# A visit is where this demo needs it once it is in one of these: charged (Stripe collected the money), in the
# review queue, declined, refunded or with nothing to charge — not while it is being charged. A reviewed visit is
# charged only after a person decides, and a declined card is retried on a schedule: neither is waited for.
VISIT_DONE = Q(
    status__in=[
        Visit.Status.CHARGED,
        Visit.Status.NEEDS_REVIEW,
        Visit.Status.PAYMENT_FAILED,
        Visit.Status.NO_CHARGE,
        Visit.Status.REFUNDED,
    ]
)


class Command(BaseCommand):
    help = "Seed the demo, run yesterday of two stores through the platform, and show where to look."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--visits", type=int, default=120, help="Shopper visits per store in the day of events.")
        parser.add_argument(
            "--serve", metavar="HOST:PORT", help="Then serve the web app here, with the Stripe stand-in and workers."
        )
        parser.add_argument(
            "--stripe-port",
            type=int,
            default=8420,
            help="Where the Stripe stand-in listens (default 8420).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        screen = Screen(self.stdout)
        own_stripe = not (settings.STRIPE_API_BASE or os.environ.get("STRIPE_SECRET_KEY"))
        _require_free_ports(
            [
                *([options["stripe_port"]] if own_stripe else []),
                *([_port(options["serve"])] if options["serve"] else []),
            ]
        )
        if options["serve"] and not os.environ.get("PUBLIC_BASE_URL"):
            # The addresses it prints, and the receipts' links its worker writes, are where it serves.
            settings.PUBLIC_BASE_URL = os.environ["PUBLIC_BASE_URL"] = f"http://{options['serve']}"
        settings.VAR_DIR.mkdir(parents=True, exist_ok=True)
        log_path = settings.VAR_DIR / "demo.log"
        own_object_store = not (settings.EMBEDDED or settings.S3_BUCKET)
        mode = (
            "embedded: SQLite, tasks in-process"
            if settings.CELERY_TASK_ALWAYS_EAGER
            else f"{connection.vendor}, Redis and a Celery worker"
        ) + (", files in moto's S3 stand-in" if own_object_store else "")
        screen.line(f"OpenAisle demo ({mode}); the details go to {log_path}")
        try:
            with _stopped_by_signals(), log_path.open("a", encoding="utf-8") as log, _details_to(log):
                self._migrate(screen, log)
                with (
                    self._stripe(options["stripe_port"], own=own_stripe),
                    self._object_store(own=own_object_store),
                    self._workers(log),
                ):
                    demo = self._seed(screen)
                    self._run_yesterday(screen, demo, visits=options["visits"])
                    self._review(screen, demo)
                    self._stock(screen, demo)
                    self._refund_one(screen, demo)
                    self._dispute_one(screen, demo)
                    invoices = self._bill_this_month(screen, demo)
                    self._service_levels(screen, demo, invoices)
                    self._devices(screen, demo, serving=bool(options["serve"]))
                    Ready(screen=screen, demo=demo, invoices=invoices).show()
                    if options["serve"]:
                        _announce_when_listening(screen, _port(options["serve"]))
                        with _devices_keep_reporting(demo):
                            call_command("runserver", options["serve"], use_reloader=False, stdout=log, stderr=log)
        except (KeyboardInterrupt, SystemExit) as stop:
            screen.line("Stopped: the server, the stand-ins and the worker the demo started are stopped.")
            raise SystemExit(130 if isinstance(stop, KeyboardInterrupt) else stop.code) from None

    # --- phases ------------------------------------------------------------------------------------

    def _migrate(self, screen: Screen, log: IO[str]) -> None:
        from django.db.migrations.executor import MigrationExecutor

        if _database_created():
            screen.line(f"· database {connection.settings_dict['NAME']} created (it did not exist)")
        executor = MigrationExecutor(connection)
        pending = len(executor.migration_plan(executor.loader.graph.leaf_nodes()))
        with screen.phase("migrate", total=pending, unit="migration") as phase:
            counting = _CountingStream(log, marker="  Applying ", on_match=lambda: phase.advance(1))
            call_command("migrate", interactive=False, verbosity=1, stdout=counting, stderr=log)
            phase.done(f"{pending} migrations applied" if pending else "the database is up to date")

    def _seed(self, screen: Screen) -> Demo:
        actor = Actor.cli()
        demo = Demo()
        with screen.phase("seed", total=1 + len(DEMO_TENANTS) * (2 + DEMO_SHOPPERS), unit="step") as phase:
            with transaction.atomic():
                for email, group in PLATFORM_STAFF:
                    _demo_user(email).groups.add(Group.objects.get_or_create(name=group)[0])
                for slug, name, manager, *_ in DEMO_TENANTS:
                    tenant = self._tenant(actor, slug, name, manager)
                    demo.tenants.append(tenant)
                    demo.keys[slug] = services.api_key_issue(actor=actor, tenant=tenant, name="demo key").key
            phase.advance(1)
            for tenant, (_, _, _, code, store_name, currency) in zip(demo.tenants, DEMO_TENANTS, strict=True):
                with tenancy.tenant_scope(tenant.pk):
                    self._catalog(actor, tenant, currency)
                    phase.advance(1)
                    demo.stores.append(self._store(actor, tenant, code, store_name, currency))
                    phase.advance(1)
                    demo.tokens[code] = self._shoppers(actor, tenant, on_each=lambda: phase.advance(1))
            phase.done(
                f"{len(demo.tenants)} licensees, their catalogs, stores, layouts and "
                f"{DEMO_SHOPPERS * len(demo.tenants)} shoppers' cards"
            )
        return demo

    def _run_yesterday(self, screen: Screen, demo: Demo, *, visits: int) -> None:
        """Simulate yesterday in each store and upload it as the store would (a file, then late events), while
        following it through the pipeline: events, settling, charging."""
        actor = Actor.cli()
        demo.visits_before = Visit.unscoped.aggregate(last=Max("pk"))["last"] or 0
        streams_before = EventStream.unscoped.aggregate(last=Max("pk"))["last"] or 0
        uploads: list[tuple[Store, str, bytes]] = []
        for store in demo.stores:
            with tenancy.tenant_scope(store.tenant_id):
                uploads += self._simulate(store, demo, visits=visits)
        watch = PipelineWatch(
            screen=screen, demo=demo, lines=[body.count(b"\n") for *_, body in uploads], streams_before=streams_before
        )
        follower = threading.Thread(target=watch.follow, name="demo-progress", daemon=True)
        follower.start()
        try:
            for store, name, body in uploads:
                upload = SimpleUploadedFile(name, body, content_type="application/x-ndjson")
                with tenancy.tenant_scope(store.tenant_id):
                    ingest_services.stream_upload(actor=actor, store=store, upload=upload)
            watch.uploaded.set()
            while follower.is_alive():
                follower.join(0.5)
        finally:
            watch.stop.set()
        if watch.error is not None:
            raise watch.error

    def _review(self, screen: Screen, demo: Demo) -> None:
        """The first store's manager decides most of yesterday's review queue as a person watching each visit would
        (what its shopper, or its group, really took), leaving a few to try (`LEFT_TO_REVIEW`); the store then learns
        its calibration from those decisions, so that its calibration page shows what they taught."""
        store = demo.stores[0]
        with tenancy.tenant_scope(store.tenant_id):
            in_review = demo.visits_of(store).filter(status=Visit.Status.NEEDS_REVIEW, group="")
            waiting = list(in_review.order_by("exited_at", "pk"))
            deciding = waiting[: len(waiting) - min(LEFT_TO_REVIEW, (len(waiting) + 1) // 2)]
            with screen.phase("review", total=len(deciding) + 1, unit="step") as phase:
                actor = Actor(source="cli", user=User.objects.get(username=DEMO_TENANTS[0][2]))
                took = demo.took[store.code]
                for visit in deciding:
                    taken = sorted(took.get(visit.session, {}).items())
                    lines = [{"sku": sku, "qty": qty} for sku, qty in taken if qty]
                    with transaction.atomic():
                        visit_services.review_decide(
                            actor=actor,
                            visit=visit,
                            action="approve" if lines else "void",
                            cart_version=visit.cart_version,
                            lines=lines,
                            note="Demo: decided from the video.",
                        )
                    phase.advance(1)
                moving = PaymentAttempt.objects.filter(visit__in=deciding, state__in=["pending", "processing"])
                _wait_until(lambda: not moving.exists(), stalled=lambda: None)
                demo.calibration = visit_services.calibration_learn(store=store, actor=actor)
                phase.advance(1)
                left = len(waiting) - len(deciding)
                phase.done(
                    f"{store.code}: {len(deciding)} of yesterday's {len(waiting)} visits in review decided by its "
                    f"manager, {left} left for you; its calibration learnt from them"
                    if deciding
                    else f"{store.code}: {left} visits in review, left for you; its calibration learnt from the "
                    "picks that needed no person"
                )

    def _refund_one(self, screen: Screen, demo: Demo) -> None:
        """A store manager refunds one line of a charged visit: a damaged product."""
        store = demo.stores[0]
        with screen.phase("refund", total=1, unit="refund") as phase, tenancy.tenant_scope(store.tenant_id):
            visit = demo.visits_of(store).filter(status=Visit.Status.CHARGED, refunded=0).order_by("-total").first()
            line = VisitLine.objects.filter(visit=visit).order_by("sku").first() if visit else None
            if visit is None or line is None:
                phase.done("no charged visit to refund")
                return
            manager = User.objects.get(username=DEMO_TENANTS[0][2])
            refunds.visit_refund(
                actor=Actor(source="cli", user=manager),
                visit=visit,
                reason_code="damaged",
                lines=[{"sku": line.sku, "qty": 1}],
                note="Demo: the shopper reported a damaged item.",
            )
            moving = PaymentAttempt.objects.filter(visit=visit, state__in=["pending", "processing"])
            if not _wait_until(lambda: not moving.exists(), stalled=lambda: None):
                phase.done(f"visit {visit.session}: the refund is still being processed (see var/demo.log)")
                return
            visit.refresh_from_db()
            phase.advance(1)
            phase.done(
                f"{format_money(visit.refunded, visit.currency)} back to visit {visit.session} "
                f"(1 × {line.name}, damaged)"
            )
            demo.refunded = visit

    def _stock(self, screen: Screen, demo: Demo) -> None:
        """What a store manager replenishing shelves sees of the day: the staff's count of every bin at opening, a
        low-stock level on each bin at a quarter of its capacity (where staff restock it), the day's restocks, the
        bins low now and yesterday's shrink."""
        actor = Actor.cli()
        said = []
        with screen.phase("stock", total=len(demo.stores), unit="store") as phase:
            for store in demo.stores:
                opened, counts, capacities = demo.opening[store.code]
                with tenancy.tenant_scope(store.tenant_id):
                    rows = [{"bin": code, "units": units} for code, units in counts.items()]
                    stock_services.stock_take_record(actor=actor, store=store, at=opened, rows=rows)
                    levels = [{"bin": code, "units": capacity // 4} for code, capacity in capacities.items()]
                    stock_services.low_levels_set(actor=actor, store=store, levels=levels)
                    now = timezone.now()
                    demo.low[store.code] = [b.bin for b in stock_selectors.stock_at(store=store, at=now) if b.low]
                    restocks = Event.objects.filter(store=store, type="shelf.restocked", ts__gte=opened).count()
                    midnight = opened.replace(hour=0)
                    report = shrink.shrink_report(store=store, since=midnight, until=midnight + timedelta(days=1))
                demo.shrink_reports[store.code] = report
                said.append(
                    f"{store.code}: {len(counts)} bins counted at {opened:%H:%M}, {restocks} restocks, "
                    f"{len(demo.low[store.code])} bins low now, shrink {_units(report.units)} "
                    f"({format_money(report.value, report.currency)} {report.currency})"
                )
                phase.advance(1)
            phase.done("; ".join(said))

    def _devices(self, screen: Screen, demo: Demo, *, serving: bool) -> None:
        """The stores are open now: every device reports its status, as a live store's do between visits (the day
        uploaded was yesterday's, so without this every device would read as silent, or offline once the beat's
        sweep marks them)."""
        with screen.phase("devices", total=len(demo.stores), unit="store") as phase:
            _devices_report(demo)
            said = []
            for store in demo.stores:
                with tenancy.tenant_scope(store.tenant_id):

                    def online(store: Store = store) -> bool:
                        heard = health.store_device_health(store=store).values()
                        return all(h.key == health.ONLINE for h in heard)

                    _wait_until(online, stalled=lambda: None)
                    said.append(f"{store.code}: {health.summary(health.store_device_health(store=store))}")
                phase.advance(1)
            again = f", again every {DEVICE_REPORT_SECONDS // 60} min while the demo serves" if serving else ""
            phase.done("; ".join(said) + f" (reported now{again})")

    def _dispute_one(self, screen: Screen, demo: Demo) -> None:
        """A shopper disputes a line of a paid receipt; the store's policy decides it at once (refunded when within
        the store's auto-refund limit, to a person otherwise)."""
        store = demo.stores[0]
        with screen.phase("dispute", total=1, unit="dispute") as phase, tenancy.tenant_scope(store.tenant_id):
            paid = demo.visits_of(store).filter(
                status=Visit.Status.CHARGED, payment_status=Visit.PaymentStatus.SUCCEEDED, refunded=0
            )
            undisputed = paid.exclude(pk__in=Dispute.objects.values("visit_id"))
            line = VisitLine.objects.filter(visit__in=undisputed).order_by("amount", "pk").first()
            if line is None:
                phase.done("no paid receipt to dispute")
                return
            dispute = dispute_services.dispute_open(
                actor=Actor.system(),
                store=store,
                visit=line.visit,
                lines=[{"sku": line.sku, "qty": 1}],
                reason=Dispute.Reason.NOT_TAKEN,
                note="Demo: I did not take this.",
            )
            moving = PaymentAttempt.objects.filter(visit=line.visit, state__in=["pending", "processing"])
            settled = _wait_until(lambda: not moving.exists(), stalled=lambda: None)
            phase.advance(1)
            decided = (
                f"{dispute.get_status_display().lower()} by {dispute.get_decided_by_display().lower()}"
                if dispute.decided_by
                else "to a person (the dispute queue)"
            )
            phase.done(
                f"on visit {line.visit.session}: 1 × {line.name}, "
                f"{format_money(dispute.asked, dispute.currency)} {dispute.currency} — {decided}: "
                f"{dispute.decision_reason}" + ("" if settled else " (the refund is still being processed)")
            )
            demo.dispute = dispute

    def _bill_this_month(self, screen: Screen, demo: Demo) -> list[Invoice]:
        """Both licensees on the Standard plan (USD) from this month; an EUR→USD rate for the month, so that the
        EUR licensee's sales can be billed; this month's invoices brought up to date (drafts until month end)."""
        actor = Actor.cli()
        month = timezone.now().date().replace(day=1)
        with screen.phase("invoices", total=3, unit="step") as phase, tenancy.platform_wide_scope():
            plan, _ = Plan.objects.get_or_create(code="standard", defaults={"name": "Standard"})
            version = plan.versions.order_by("-number").first() or invoicing.plan_version_create(
                actor=actor,
                plan=plan,
                currency="USD",
                store_fee=49_900,
                visit_fee=5,
                revenue_share_bps=150,
                monthly_minimum=49_900,
                promises=PROMISES,
                note="Demo plan",
            )
            for tenant in demo.tenants:
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
                    invoicing.plan_assign(actor=actor, tenant=tenant, plan_version=version, starts_on=month)
            phase.advance(1)
            if not ExchangeRate.objects.filter(month=month, base="EUR", quote="USD").exists():
                invoicing.exchange_rate_set(actor=actor, month=month, base="EUR", quote="USD", rate=EUR_TO_USD)
            phase.advance(1)
            result = invoicing.month_close(actor=actor, period_start=month, tenant_ids=[t.pk for t in demo.tenants])
            phase.advance(1)
            invoices = list(
                Invoice.objects.filter(tenant__in=demo.tenants, period_start=result.period_start)
                .exclude(status=Invoice.Status.VOID)
                .select_related("tenant")
                .order_by("tenant__slug")
            )
            failed = "; ".join(f"{slug}: {why}" for slug, why in result.failed.items())
            phase.done(
                f"{month:%B %Y} to date, {len(invoices)} invoices" + (f" — not billed: {failed}" if failed else "")
            )
            return invoices

    def _service_levels(self, screen: Screen, demo: Demo, invoices: list[Invoice]) -> None:
        """Each licensee's service levels this month beside its plan's promises, and the credit its invoice gives
        for a promise missed."""
        month = timezone.now().date().replace(day=1)
        said = []
        with screen.phase("service", total=len(demo.tenants), unit="licensee") as phase:
            for tenant in demo.tenants:
                with tenancy.tenant_scope(tenant.pk):
                    levels = tenant_service_levels_on_days(first_day=month, last_day=timezone.now().date()).total
                    assigned = PlanAssignment.objects.filter(tenant=tenant).order_by("-starts_on").first()
                with tenancy.platform_wide_scope():
                    version = PlanVersion.objects.get(pk=assigned.plan_version_id) if assigned else None
                    credit = InvoiceLine.objects.filter(
                        invoice__in=[i for i in invoices if i.tenant_id == tenant.pk],
                        kind=InvoiceLine.Kind.SERVICE_CREDIT,
                    ).aggregate(amount=Sum("amount"))["amount"]
                promised = invoicing.promises_of(version) if version is not None else None
                missed = (
                    invoice_calculations.missed_promises(promised, invoicing.month_levels_of(levels))
                    if promised is not None
                    else []
                )
                currency = version.currency if version is not None else "USD"
                said.append(
                    f"{tenant.name}: {levels.visits} visits, {share(levels.settled_without_person)} settled without a "
                    f"person, p95 exit to receipt {seconds(levels.exit_to_receipt_s.p95)} (yesterday's, uploaded today)"
                    + (f" — missed: {'; '.join(missed)}" if missed else " — every promise kept")
                    + (f", credit {format_money(-credit, currency)} {currency} on the invoice" if credit else "")
                )
                demo.promises = invoice_calculations.promises_in_words(promised) if promised is not None else ""
                phase.advance(1)
            phase.done("\n           ".join(said))

    # --- seeding -----------------------------------------------------------------------------------

    def _tenant(self, actor: Actor, slug: str, name: str, manager_email: str) -> Tenant:
        tenant = Tenant.objects.filter(slug=slug).first() or services.tenant_create(actor=actor, name=name, slug=slug)
        _demo_user(manager_email)
        if not Membership.unscoped.filter(tenant=tenant, user__username=manager_email).exists():
            services.member_add(actor=actor, tenant=tenant, email=manager_email, role=Membership.Role.MANAGER)
        return tenant

    def _catalog(self, actor: Actor, tenant: Tenant, currency: str) -> None:
        """The catalog, with the prices the stores have sold at since the start of the year (a back-filled
        import: the simulated day is past)."""
        if not Product.objects.exists():
            catalog_services.catalog_import(
                actor=actor,
                tenant=tenant,
                rows=sample_catalog_rows(count=120, currency=currency),
                currency=currency,
                effective_from=PRICES_SINCE,
            )

    def _store(self, actor: Actor, tenant: Tenant, code: str, name: str, currency: str) -> Store:
        store = Store.objects.filter(code=code).first()
        if store is None:
            store = store_services.store_create(
                actor=actor,
                tenant=tenant,
                code=code,
                name=name,
                timezone=STORE_TIMEZONES[currency],
                currency=currency,
                address="1 Demo Way",
                status=Store.Status.ACTIVE,
            )
        if not store.layouts.exists():
            skus = list(Product.objects.order_by("sku").values_list("sku", flat=True))
            store_services.layout_publish(actor=actor, store=store, document=sample_layout(skus=skus))
        return store

    def _shoppers(self, actor: Actor, tenant: Tenant, *, on_each: Callable[[], None]) -> list[str]:
        """Register the demo shoppers' test cards; the last one's card is declined when charged."""
        tokens = []
        for number in range(DEMO_SHOPPERS):
            declines = number == DEMO_SHOPPERS - 1
            registered = shoppers.shopper_register(
                actor=actor,
                tenant=tenant,
                external_ref=f"{tenant.slug}-shopper-{number + 1:02d}",
                payment_method="pm_card_chargeCustomerFail" if declines else "pm_card_visa",
                email=f"shopper{number + 1:02d}@{tenant.slug}.test",
            )
            tokens.append(registered.entry_token)
            on_each()
        return tokens

    def _simulate(self, store: Store, demo: Demo, *, visits: int) -> list[tuple[Store, str, bytes]]:
        """Yesterday from 8:00 in the store's time zone, with realistic noise; each run of the demo its own batch
        (its own seed and event ids), so that a second run adds visits rather than duplicates."""
        layout = store.layouts.order_by("-effective_from").first()
        assert layout is not None
        catalog = {
            sku: CatalogItem(sku, float(weight), float(tolerance))
            for sku, weight, tolerance in Product.objects.values_list("sku", "unit_weight_g", "weight_tolerance_g")
        }
        yesterday = timezone.localtime(timezone.now(), ZoneInfo(store.timezone)).date() - timedelta(days=1)
        start = datetime.combine(yesterday, datetime.min.time().replace(hour=8), tzinfo=ZoneInfo(store.timezone))
        run = EventStream.objects.filter(store=store).count()
        bins = [item for fixture in layout.document["fixtures"] for item in fixture["bins"]]
        capacities = {item["code"]: int(item["capacity"]) for item in bins}
        shelves = random.Random(f"{store.code}:{run}")
        opening = {
            code: capacity // 4 if number % LOW_AT_OPENING == 0 else shelves.randint(capacity // 2, capacity)
            for number, (code, capacity) in enumerate(capacities.items())
        }
        demo.opening[store.code] = (start, opening, capacities)
        simulation: Simulation = simulate(
            layout=layout.document,
            catalog=catalog,
            profile="realistic",
            visits=visits,
            start=start,
            seed=run * 10 + demo.stores.index(store) + 1,
            shopper_tokens=demo.tokens[store.code],
            id_prefix=f"demo{run}",
            opening_stock=opening,
        )
        demo.day[store.code] = yesterday
        demo.took[store.code] = simulation.truth
        return [
            (store, f"{store.code}-{yesterday:%Y-%m-%d}-{run}-{number}.ndjson", body)
            for number, body in enumerate(simulation.uploads, start=1)
        ]

    # --- what the demo starts ----------------------------------------------------------------------

    @contextlib.contextmanager
    def _stripe(self, port: int, *, own: bool) -> Iterator[None]:
        """The Stripe stand-in on 127.0.0.1 (its customers kept in var/ between runs), unless Stripe is configured."""
        if not own:
            yield
            return
        with LocalStripe(port=port, state=settings.VAR_DIR / "localstripe.pickle") as standin:
            settings.STRIPE_API_BASE = os.environ["STRIPE_API_BASE"] = standin.base_url
            try:
                yield
            finally:
                settings.STRIPE_API_BASE = ""
                os.environ.pop("STRIPE_API_BASE", None)

    @contextlib.contextmanager
    def _object_store(self, *, own: bool) -> Iterator[None]:
        """moto's S3 server on 127.0.0.1 for the files this demo keeps (its worker and server read them there): with
        PostgreSQL and Redis no process reads another's disk, as on several machines. Its bucket lasts as long as
        the demo; the files are read while the demo processes them."""
        if not own:
            yield
            return
        with LocalS3() as store:
            os.environ.update(store.environment)
            default_storage_replaced(store.storage, bucket=store.bucket)
            try:
                yield
            finally:
                for name in store.environment:
                    os.environ.pop(name, None)

    @contextlib.contextmanager
    def _workers(self, log: IO[str]) -> Iterator[None]:
        """With a broker configured, a real worker for the length of the demo; otherwise tasks run in-process."""
        if settings.CELERY_TASK_ALWAYS_EAGER:
            yield
            return
        env = {**os.environ, "PYTHONPATH": f"{PROJECT_ROOT}:{PROJECT_ROOT / 'platform'}"}
        from config.celery import QUEUES

        queues = ",".join(QUEUES)
        command = [sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", queues, "--concurrency", "2"]
        # With its beat (-B): the periodic sweeps (settling, payment retries, usage) run as in production.
        beat = ["--beat", "--schedule", str(settings.VAR_DIR / "demo-beat-schedule")]
        worker = subprocess.Popen(  # noqa: S603 — our own worker command
            [*command, *beat, "--loglevel", "INFO"],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
        try:
            yield
        finally:
            _stop_process_group(worker)


# --- following the day through the pipeline -------------------------------------------------------


@dataclass
class Demo:
    """What the demo made, as the later phases and the ready screen need it."""

    tenants: list[Tenant] = field(default_factory=list)
    stores: list[Store] = field(default_factory=list)
    keys: dict[str, str] = field(default_factory=dict)
    tokens: dict[str, list[str]] = field(default_factory=dict)
    day: dict[str, date] = field(default_factory=dict)
    visits_before: int = 0
    refunded: Visit | None = None
    # Per store: when it opened yesterday, the units counted on each bin then and each bin's capacity.
    opening: dict[str, tuple[datetime, dict[str, int], dict[str, int]]] = field(default_factory=dict)
    low: dict[str, list[str]] = field(default_factory=dict)
    shrink_reports: dict[str, shrink.ShrinkReport] = field(default_factory=dict)
    dispute: Dispute | None = None
    promises: str = ""
    # Per store: what each visit's shopper really took, as a person watching the video would find it.
    took: dict[str, dict[str, dict[str, int]]] = field(default_factory=dict)
    calibration: StoreCalibration | None = None

    def visits_of(self, store: Store) -> Any:
        """This run's visits of the store."""
        return Visit.unscoped.filter(store=store, pk__gt=self.visits_before)


@dataclass
class PipelineWatch:
    """Follows the uploaded day on the terminal, one bar per phase: events read, visits settled, visits charged
    (or in review, or declined). Runs beside the uploads: in embedded mode an upload does all the work before
    it returns, so the streams are found by what is new (`streams_before`), in upload order."""

    screen: Screen
    demo: Demo
    lines: list[int]
    streams_before: int
    streams: list[int] = field(default_factory=list)
    uploaded: threading.Event = field(default_factory=threading.Event)
    stop: threading.Event = field(default_factory=threading.Event)
    error: BaseException | None = None

    def follow(self) -> None:
        try:
            self._events()
            expected = Event.unscoped.filter(stream_id__in=self.streams, type="session.started").count()
            self._visits("settle", expected, self._settled, "visits settled (their carts decided)")
            self._visits("charge", expected, self._charged, "")
        except BaseException as error:  # noqa: BLE001 — handed to the main thread, which raises it
            self.error = error
        finally:
            connection.close()

    def _events(self) -> None:
        total = sum(self.lines)
        with self.screen.phase("events", total=total, unit="line") as phase:
            outcome = _wait_until(lambda: self._read(phase), stalled=lambda: phase.stalled(), stop=self.stop)
            streams = EventStream.unscoped.filter(pk__in=self.streams)
            sums = streams.aggregate(accepted=Sum("accepted"), duplicates=Sum("duplicates"), rejected=Sum("rejected"))
            phase.done(
                f"{len(self.streams)} files, {total:,} lines: {sums['accepted'] or 0:,} accepted, "
                f"{sums['duplicates'] or 0:,} duplicates, {sums['rejected'] or 0:,} refused (malformed on purpose)"
                + ("" if outcome else " — still being read")
            )

    def _read(self, phase: Phase) -> bool:
        streams = list(
            EventStream.unscoped.filter(store__in=self.demo.stores, pk__gt=self.streams_before).order_by("pk")
        )
        self.streams = [stream.pk for stream in streams]
        phase.update(round(sum(lines * stream.progress for stream, lines in zip(streams, self.lines, strict=False))))
        # In embedded mode a file's visits are settled and charged before the next file is read: show them move.
        visits = Visit.unscoped.filter(store__in=self.demo.stores, pk__gt=self.demo.visits_before)
        phase.live(
            f"{visits.count()} visits, {self._settled(visits)} settled, {self._charged(visits)} charged or decided"
        )
        finished = [stream.status in (EventStream.Status.DONE, EventStream.Status.FAILED) for stream in streams]
        return len(streams) == len(self.lines) and all(finished)

    def _sweep(self) -> None:
        """Once the uploads have returned: in embedded mode they do the work themselves, and SQLite takes one
        writer at a time."""
        if self.uploaded.is_set():
            _sweep()

    def _settled(self, visits: Any) -> int:
        return int(visits.exclude(status__in=[Visit.Status.OPEN, Visit.Status.SETTLING]).count())

    def _charged(self, visits: Any) -> int:
        return int(visits.filter(VISIT_DONE).count())

    def _visits(self, name: str, expected: int, count: Callable[[Any], int], summary: str) -> None:
        visits = Visit.unscoped.filter(store__in=self.demo.stores, pk__gt=self.demo.visits_before)
        with self.screen.phase(name, total=expected, unit="visit") as phase:

            def there() -> bool:
                done = count(visits)
                phase.update(done)
                return done >= expected and visits.count() >= expected

            outcome = _wait_until(there, stalled=phase.stalled, stop=self.stop, sweep=self._sweep)
            if name == "charge":
                by_status = dict(visits.values_list("status").annotate(n=Count("id")).values_list("status", "n"))
                summary = ", ".join(
                    f"{by_status.get(status, 0)} {label}"
                    for status, label in [
                        (Visit.Status.CHARGED, "charged"),
                        (Visit.Status.AWAITING_PAYMENT, "being charged"),
                        (Visit.Status.NEEDS_REVIEW, "in review"),
                        (Visit.Status.PAYMENT_FAILED, "declined"),
                        (Visit.Status.NO_CHARGE, "with nothing to charge"),
                    ]
                )
            phase.done(f"{expected} {summary}" if name != "charge" else summary)
            if not outcome:
                phase.note("still moving in the background; the admin shows where each visit is")


def _wait_until(
    done: Callable[[], bool],
    *,
    stalled: Callable[[], None],
    stop: threading.Event | None = None,
    sweep: Callable[[], None] | None = None,
) -> bool:
    """Poll `done` until it is true (True), or until nothing has moved for STALL_SECONDS (False); `sweep` every
    SWEEP_SECONDS meanwhile. A poll that meets a busy SQLite database is tried again."""
    last_change = time.monotonic()
    last_sweep = last_change - SWEEP_SECONDS + 2  # the first sweep soon: what is left is most likely waiting for one
    previous: Any = None
    while stop is None or not stop.is_set():
        try:
            if done():
                return True
            if sweep is not None and time.monotonic() - last_sweep > SWEEP_SECONDS:
                sweep()
                last_sweep = time.monotonic()
        except OperationalError:
            pass
        marker = _progress_marker()
        if marker != previous:
            previous, last_change = marker, time.monotonic()
        elif time.monotonic() - last_change > STALL_SECONDS:
            stalled()
            return False
        time.sleep(POLL_SECONDS)
    return False


def _devices_report(demo: Demo) -> None:
    """Each device of the demo's stores says it is online, now: one push per store, as a live store sends."""
    now = timezone.now()
    stamp = now.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    for store in demo.stores:
        with tenancy.tenant_scope(store.tenant_id):
            codes = Device.objects.filter(store=store).order_by("code").values_list("code", flat=True)
            events = [
                {
                    "id": f"status-{now:%Y%m%d%H%M%S}-{code}",
                    "type": "device.status",
                    "ts": stamp,
                    "device": code,
                    "status": "online",
                }
                for code in codes
            ]
            ingest_services.events_push(actor=Actor.cli(), store=store, events=events)


@contextlib.contextmanager
def _devices_keep_reporting(demo: Demo) -> Iterator[None]:
    """While the demo serves, its devices report every DEVICE_REPORT_SECONDS (a third of the time after which a
    device reads as silent), so that the device pages stay as a live store's would."""
    stop = threading.Event()

    def report() -> None:
        while not stop.wait(DEVICE_REPORT_SECONDS):
            try:
                _devices_report(demo)
            except Exception:  # a missed report is retried at the next; the server goes on
                logging.getLogger(__name__).exception("The demo's devices could not report; trying again later")
            finally:
                connection.close()

    thread = threading.Thread(target=report, name="demo-devices", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()


def _database_created() -> bool:
    """PostgreSQL: create the database DATABASE_URL names when it does not exist yet, as a first run finds it."""
    if connection.vendor != "postgresql":
        return False
    try:
        connection.ensure_connection()
        return False
    except OperationalError as error:
        if "does not exist" not in str(error):
            raise
    import psycopg2
    from psycopg2 import sql

    params = {key: value for key, value in connection.get_connection_params().items() if key != "dbname"}
    maintenance = psycopg2.connect(dbname="postgres", **params)
    maintenance.autocommit = True
    try:
        with maintenance.cursor() as cursor:
            cursor.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(connection.settings_dict["NAME"])))
    finally:
        maintenance.close()
    return True


def _sweep() -> None:
    """What the beat sends every 30 to 60 s (settle the visits due, move the money due), sent now: a worker runs
    it, or in embedded mode (no beat) it runs here."""
    from billing.payments.tasks import sweep as payments_sweep
    from visits.tasks import settle_due

    settle_due.delay()
    payments_sweep.delay()


def _progress_marker() -> Any:
    """Something that changes whenever the pipeline moves: the latest visit change and stream progress."""
    try:
        visits = Visit.unscoped.aggregate(at=Max("updated_at"), n=Count("id"))
        streams = EventStream.unscoped.aggregate(done=Sum("bytes_done"))
        return (visits["at"], visits["n"], streams["done"])
    except OperationalError:
        return None


# --- the terminal ---------------------------------------------------------------------------------


class Screen:
    """What the person who ran the demo sees: one line per phase (a bar while it runs, on a terminal)."""

    def __init__(self, out: OutputWrapper) -> None:
        self.out = out
        self.started = time.monotonic()
        self.tty = bool(getattr(out, "isatty", lambda: False)())
        self.lock = threading.Lock()

    def line(self, text: str = "") -> None:
        with self.lock:
            self.out.write(text)
            self.out.flush()

    @contextlib.contextmanager
    def phase(self, name: str, *, total: int, unit: str) -> Iterator[Phase]:
        phase = Phase(self, name, total=total, unit=unit)
        try:
            yield phase
        finally:
            phase.close()

    def elapsed(self) -> str:
        seconds = round(time.monotonic() - self.started)
        return f"{seconds // 60} min {seconds % 60:02d} s" if seconds >= 60 else f"{seconds} s"


class Phase:
    def __init__(self, screen: Screen, name: str, *, total: int, unit: str) -> None:
        self.screen, self.name = screen, name
        self.started = time.monotonic()
        self.summary = ""
        self.notes: list[str] = []
        self.bar = tqdm(
            total=max(total, 1),
            desc=f"· {name:<8}",
            unit=unit,
            file=_TerminalStream(screen.out),
            disable=not screen.tty,
            leave=False,
            dynamic_ncols=True,
            mininterval=0.2,
        )

    def advance(self, steps: int) -> None:
        self.bar.update(steps)

    def update(self, done: int) -> None:
        self.bar.update(max(0, min(done, self.bar.total) - self.bar.n))

    def live(self, text: str) -> None:
        self.bar.set_postfix_str(text, refresh=True)

    def stalled(self) -> None:
        self.notes.append(f"nothing moved for {STALL_SECONDS} s; see var/demo.log")

    def note(self, text: str) -> None:
        self.notes.append(text)

    def done(self, summary: str) -> None:
        self.summary = summary

    def close(self) -> None:
        self.bar.close()
        took = time.monotonic() - self.started
        text = f"· {self.name:<8} {self.summary or 'stopped'}  ({took:.0f} s)"
        self.screen.line(text + "".join(f"\n           {note}" for note in self.notes))


class _TerminalStream:
    """tqdm writes partial lines; Django's OutputWrapper would end each with a newline."""

    def __init__(self, out: OutputWrapper) -> None:
        self.out = out
        self.encoding = getattr(out, "encoding", None) or "utf-8"  # tqdm draws its bar in ASCII without one

    def write(self, text: str) -> None:
        self.out.write(text, ending="")

    def flush(self) -> None:
        self.out.flush()


class _CountingStream:
    """Writes to `target`, calling `on_match` for each line that starts with `marker` (migrate's progress)."""

    def __init__(self, target: IO[str], *, marker: str, on_match: Callable[[], None]) -> None:
        self.target, self.marker, self.on_match = target, marker, on_match

    def write(self, text: str) -> int:
        if text.startswith(self.marker):
            self.on_match()
        return self.target.write(text)

    def flush(self) -> None:
        self.target.flush()


@dataclass
class Ready:
    """The one screen at the end: where to go, who to log in as, and what there is to see."""

    screen: Screen
    demo: Demo
    invoices: list[Invoice]

    def show(self) -> None:
        base = settings.PUBLIC_BASE_URL.rstrip("/")
        line = self.screen.line
        line()
        line(f"OpenAisle demo is ready ({self.screen.elapsed()}).  Password for every login: {DEMO_PASSWORD}")
        line(f"  Store admin   {base}/admin/    manager@northwind.test (USD)  ·  manager@southgate.test (EUR)")
        line(f"  Ops admin     {base}/ops/      operator@openaisle.test  ·  finance@openaisle.test")
        line(f"  API docs      {base}/api/v1/docs/   Northwind API key (shown once): {self.demo.keys['northwind']}")
        with tenancy.platform_wide_scope():
            for store in self.demo.stores:
                self._store(store, base)
            self._calibration(base)
            self._review_causes(base)
            self._shelves(base)
            self._receipt(base)
            self._dispute(base)
            self._invoices(base)
            self._service(base)

    def _store(self, store: Store, base: str) -> None:
        visits = self.demo.visits_of(store)
        counts = dict(visits.values_list("status").annotate(n=Count("id")).values_list("status", "n"))
        review = counts.get(Visit.Status.NEEDS_REVIEW, 0)
        declined = counts.get(Visit.Status.PAYMENT_FAILED, 0)
        self.screen.line(
            f"  {store.code}  {store.name} ({store.currency}), {self.demo.day[store.code]:%a %d %b}: "
            f"{sum(counts.values())} visits, {counts.get(Visit.Status.CHARGED, 0)} charged, "
            f"{counts.get(Visit.Status.AWAITING_PAYMENT, 0)} being charged, "
            f"{declined} declined, review queue {review} → {base}/admin/visits/visit/"
        )

    def _calibration(self, base: str) -> None:
        """What the first store learnt from the visits its manager decided, and where its calibration page is."""
        learnt = self.demo.calibration
        if learnt is None:
            return
        store = self.demo.stores[0]
        page = base + reverse("admin:visits_storecalibration_store", args=[store.pk])
        self.screen.line(
            f"  Calibration   {store.code}: learnt from {learnt.reviewed_visits} reviewed visits; "
            f"{learnt.auto_charge_share * 100:.1f} % of its visits charged without a person within its risk of "
            f"{learnt.overcharge_risk * 100:.1f} % → {page}"
        )

    def _review_causes(self, base: str) -> None:
        """Where the first store's reviews come from: the calibration page's advice on scales, or its busiest bin."""
        store = self.demo.stores[0]
        since = timezone.now() - visit_selectors.REVIEW_CAUSES_PERIOD
        causes = visit_selectors.review_causes_by_bin(store=store, since=since)
        if not causes.bins:
            return
        said = visit_selectors.scale_advice(causes) or (
            f"{causes.reviewed} visits sent to a person, the most over bin {causes.bins[0].bin} "
            f"({causes.bins[0].product})"
        )
        page = base + reverse("admin:visits_storecalibration_store", args=[store.pk])
        self.screen.line(f"  Reviews       {store.code}: {said} → {page}#review-causes")

    def _shelves(self, base: str) -> None:
        """The first store's shelves: its stock now, yesterday's shrink and the heat map of the day."""
        store = self.demo.stores[0]
        report = self.demo.shrink_reports.get(store.code)
        if report is None:
            return
        pages = ("store", "shrink", "heat_map")
        page, shrunk, heat = (base + reverse(f"admin:stock_stockcount_{name}", args=[store.pk]) for name in pages)
        day = f"from={self.demo.day[store.code]:%Y-%m-%d}&to={self.demo.day[store.code]:%Y-%m-%d}"
        low = self.demo.low.get(store.code, [])
        named = f" ({', '.join(low[:4])}{' …' if len(low) > 4 else ''})" if low else ""
        money = f"{format_money(report.value, report.currency)} {report.currency}"
        line = self.screen.line
        line(f"  Stock         {store.code}: {len(low)} bins low now{named} → {page}")
        line(f"  Shrink        {store.code} yesterday: {_units(report.units)}, {money} → {shrunk}?{day}")
        line(f"  Heat map      {store.code} yesterday's picks on the floor plan → {heat}?{day}")

    def _dispute(self, base: str) -> None:
        dispute = self.demo.dispute
        if dispute is None:
            return
        outcome = (
            f"{dispute.get_status_display().lower()} by {dispute.get_decided_by_display().lower()}"
            if dispute.decided_by
            else "waiting for a person"
        )
        self.screen.line(
            f"  A dispute     visit {dispute.visit.session}, {format_money(dispute.asked, dispute.currency)} "
            f"{dispute.currency}: {outcome} → {base}{reverse('admin:disputes_dispute_change', args=[dispute.pk])}"
        )

    def _service(self, base: str) -> None:
        if self.demo.promises:
            self.screen.line(f"  Promised      {self.demo.promises}")
        self.screen.line(
            f"  Service       {base}{reverse('admin:service_levels_servicelevel_changelist')} (managers)  ·  "
            f"{base}{reverse('ops:service_levels_servicelevel_changelist')} (operator)"
        )

    def _receipt(self, base: str) -> None:
        store = self.demo.stores[0]
        paid = self.demo.visits_of(store).filter(status=Visit.Status.CHARGED, refunded=0)
        receipt = paid.annotate(n=Count("lines")).filter(n__gte=2).order_by("-n", "session").first()
        if receipt is None:
            return
        money = receipt.currency
        self.screen.line(
            f"  A receipt     {store.code} visit {receipt.session}, paid {format_money(receipt.total, money)} {money}"
            f" → {base}/admin/visits/visit/{receipt.pk}/change/"
        )
        for item in VisitLine.unscoped.filter(visit=receipt).order_by("sku"):
            self.screen.line(f"                  {item.qty} × {item.name:<32} {format_money(item.amount, money):>10}")
        self.screen.line(
            f"                  {'tax':<36} {format_money(receipt.tax, money):>10}   "
            f"total {format_money(receipt.total, money)} {money}"
        )
        if self.demo.refunded is not None:
            refunded = self.demo.refunded
            self.screen.line(
                f"  A refund      {store.code} visit {refunded.session}: "
                f"{format_money(refunded.refunded, refunded.currency)} {refunded.currency} back (damaged item)"
            )

    def _invoices(self, base: str) -> None:
        for invoice in self.invoices:
            usage = DailyUsage.unscoped.filter(
                tenant=invoice.tenant, day__gte=invoice.period_start, day__lte=invoice.period_end
            ).aggregate(visits=Sum("visits_settled"), sales=Sum("gross_sales"))
            store = next(s for s in self.demo.stores if s.tenant_id == invoice.tenant_id)
            sales = format_money(usage["sales"] or 0, store.currency)
            pdf = reverse("ops:invoicing_invoice_pdf", args=[invoice.pk])
            self.screen.line(
                f"  Invoice       {invoice.tenant.name}, {invoice.period_start:%B %Y} to date ({invoice.status}): "
                f"{format_money(invoice.total, invoice.currency)} {invoice.currency} for {usage['visits'] or 0} "
                f"visits, sales {sales} {store.currency} → {base}{pdf} (finance)"
            )


# --- processes and signals ------------------------------------------------------------------------


@contextlib.contextmanager
def _details_to(log: IO[str]) -> Iterator[None]:
    """Logs, e-mails (the console backend) and anything printed go to `log` while the demo runs."""
    previous = {handler: handler.stream for handler in _stream_handlers()}
    for handler in previous:
        handler.setStream(log)
    try:
        with contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
            yield
    finally:
        for handler in _stream_handlers():  # also those made meanwhile (they took the redirected stderr)
            if handler.stream is log:
                handler.setStream(previous.get(handler, sys.stderr))


def _stream_handlers() -> list[logging.StreamHandler[Any]]:
    loggers = [logging.getLogger(), *logging.Logger.manager.loggerDict.values()]
    return [
        handler
        for logger in loggers
        if isinstance(logger, logging.Logger)
        for handler in logger.handlers
        if type(handler) is logging.StreamHandler
    ]


@contextlib.contextmanager
def _stopped_by_signals() -> Iterator[None]:
    """SIGTERM, SIGHUP and SIGINT (Ctrl-C, also when started as a background job, which ignores it) stop the demo
    so that what it started is stopped too; so does the end of the process that started it (`make` killed)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    previous = {number: signal.signal(number, stop) for number in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT)}
    parent, stopped = os.getppid(), threading.Event()

    def watch_parent() -> None:
        while not stopped.wait(1):
            if os.getppid() != parent:
                os.kill(os.getpid(), signal.SIGTERM)
                return

    threading.Thread(target=watch_parent, name="demo-parent-watch", daemon=True).start()
    try:
        yield
    finally:
        stopped.set()
        for number, handler in previous.items():
            signal.signal(number, handler)


def _stop_process_group(process: subprocess.Popen[Any]) -> None:
    """Stop a child started in its own session, and whatever it started: a warm stop, then a kill."""
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


def _announce_when_listening(screen: Screen, port: int) -> None:
    """Say where the demo is served once the server accepts connections (it starts after this)."""

    def announce() -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
                base = settings.PUBLIC_BASE_URL.rstrip("/")
                screen.line(f"Serving on {base}/ — Ctrl-C stops the server, the Stripe stand-in and the worker.")
                return
            time.sleep(0.2)

    threading.Thread(target=announce, name="demo-announce", daemon=True).start()


def _port(address: str) -> int:
    return int(address.rsplit(":", 1)[-1])


def _require_free_ports(ports: list[int]) -> None:
    """Refuse to start when a port the demo needs is taken (e.g. by an earlier demo still running)."""
    for port in ports:
        with socket.socket() as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                raise CommandError(
                    f"Port {port} on 127.0.0.1 is in use (an earlier demo still running?). Stop it, or choose "
                    "other ports: make demo PORT=8100 STRIPE_PORT=8120."
                ) from None


def _units(count: int) -> str:
    return f"{count} unit" if count == 1 else f"{count} units"


def _demo_user(email: str) -> User:
    user, _ = User.objects.get_or_create(username=email, defaults={"email": email})
    user.is_staff = True
    user.set_password(DEMO_PASSWORD)
    user.save()
    return user
