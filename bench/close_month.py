"""Benchmark: closing a month of licensee billing — 1,000 tenants × 5 stores × 30 days — on PostgreSQL.

Needs DATABASE_URL pointing at a migrated PostgreSQL database, best a throwaway one (the bench tenants, their
stores and audit entries stay between runs and are reused; their visits, payments, usage and invoices are
deleted at the start of each run):

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/openaisle_bench_close PYTHONPATH=.:platform \\
        python bench/close_month.py --tenants 1000 --stores 5 --visits-per-store-day 4

Sets up (not timed) April 2026 for every tenant: `--visits-per-store-day` settled visits per store and day with
their captures and receipts (2 % refunded later, 1 % decided by a reviewer), half the tenants changing plan on
the 16th (two prorated segments) to a plan that promises service levels (so that the close measures them and
credits the months that miss them), a third with tax, one in twenty with a store selling in EUR (an exchange
rate is set).
Then times, in one run:

* `close`: `close_month 2026-04` as the beat job runs it — usage derived from visits and payments, then one
  draft invoice per tenant (the figure asked for: seconds, invoices/s);
* `usage`: the usage derivation alone (rows/s);
* `build`: building the drafts from stored usage (first time, after deleting the drafts);
* `reclose`: closing again — nothing changes (the idempotent path, every draft compared);
* `finalise`: numbering every draft (gap-free, one transaction, one counter lock);
* `levels`: measuring the month's service levels of the tenants with promises alone (part of `close`);
* `baseline`: one SQL GROUP BY (tenant, day, currency) over the usage rows — the least a close must read.

Prints one JSON object.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import random
import sys
import time
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "platform")]
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django  # noqa: E402

django.setup()

from django.contrib.auth.models import User  # noqa: E402
from django.db import connection, models, transaction  # noqa: E402

from billing.invoicing import services  # noqa: E402
from billing.invoicing.calculations import Promises  # noqa: E402
from billing.invoicing.models import (  # noqa: E402
    BillingAccount,
    DailyUsage,
    ExchangeRate,
    Invoice,
    InvoiceLine,
    MonthClose,
    Plan,
    PlanAssignment,
)
from billing.payments.models import PaymentAttempt, Receipt  # noqa: E402
from core import tenancy  # noqa: E402
from stores.models import Store  # noqa: E402
from tenants.audit import Actor  # noqa: E402
from tenants.models import Tenant  # noqa: E402
from visits.models import ReviewDecision, Visit  # noqa: E402

PREFIX = "bench-close-"
MONTH = date(2026, 4, 1)
DAYS = 30
SYSTEM = Actor.cli()


def _value(field: models.Field, given: dict[str, Any]) -> Any:
    if field.attname in given:
        value = given[field.attname]
    elif field.name in given:
        value = given[field.name]
    else:
        value = field.get_default()
    if isinstance(field, models.JSONField):
        return json.dumps(value)
    if isinstance(value, bool):
        return "t" if value else "f"
    return "\\N" if value is None else value


def copy_rows(model: type[models.Model], rows: list[dict[str, Any]]) -> None:
    """COPY model rows, every column not given taking the model field's default (so new columns need no edit)."""
    fields = [f for f in model._meta.concrete_fields if not (f.primary_key and "id" not in rows[0])]
    columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")  # None is written \N, the NULL below
    for row in rows:
        writer.writerow([_value(f, row) for f in fields])
    buffer.seek(0)
    with connection.cursor() as cursor:
        cursor.cursor.copy_expert(
            f"COPY {model._meta.db_table} ({columns}) FROM STDIN WITH (FORMAT csv, NULL '\\N')", buffer
        )


def reserve_ids(model: type[models.Model], count: int) -> int:
    """Reserve `count` ids of the model's sequence; returns the first."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT setval(pg_get_serial_sequence(%s, 'id'), nextval(pg_get_serial_sequence(%s, 'id')) + %s - 1)",
            [model._meta.db_table, model._meta.db_table, count],
        )
        last = cursor.fetchone()[0]
    return int(last) - count + 1


def reset(tenant_ids: list[int]) -> None:
    """Delete what a previous run left for the bench tenants (not the tenants, stores or audit entries)."""
    with transaction.atomic(), connection.cursor() as cursor:
        for table in [
            m._meta.db_table for m in (InvoiceLine, Invoice, DailyUsage, PaymentAttempt, Receipt, ReviewDecision, Visit)
        ]:
            cursor.execute(f"DELETE FROM {table} WHERE tenant_id = ANY(%s)", [tenant_ids])  # noqa: S608
        MonthClose.objects.filter(period_start=MONTH).delete()


def setup(*, tenants: int, stores: int, visits_per_day: int, seed: int) -> dict[str, Any]:
    rng = random.Random(seed)
    started = time.perf_counter()
    existing = {t.slug: t for t in Tenant.objects.filter(slug__startswith=PREFIX)}
    new = [
        Tenant(name=f"Bench licensee {n:04d}", slug=f"{PREFIX}{n:04d}")
        for n in range(tenants)
        if f"{PREFIX}{n:04d}" not in existing
    ]
    Tenant.objects.bulk_create(new, batch_size=1000)
    bench = list(Tenant.objects.filter(slug__startswith=PREFIX).order_by("slug")[:tenants])
    tenant_ids = [t.pk for t in bench]
    reset(tenant_ids)

    have = set(Store.unscoped.filter(tenant_id__in=tenant_ids).values_list("tenant_id", "code"))
    long_ago = datetime(2025, 1, 1, tzinfo=UTC)
    Store.unscoped.bulk_create(
        [
            Store(
                tenant=t,
                code=f"S{s}",
                name=f"Store {s}",
                timezone=("UTC", "Europe/Paris", "America/New_York")[(t.pk + s) % 3],
                currency="EUR" if (i % 20 == 0 and s == 0) else "USD",
                status=Store.Status.ACTIVE,
                created_at=long_ago,
            )
            for i, t in enumerate(bench)
            for s in range(stores)
            if (t.pk, f"S{s}") not in have
        ],
        batch_size=2000,
    )

    standard, _ = Plan.objects.get_or_create(code="bench-standard", defaults={"name": "Bench standard"})
    premium, _ = Plan.objects.get_or_create(code="bench-assured", defaults={"name": "Bench assured"})
    v1 = standard.versions.first() or services.plan_version_create(
        actor=SYSTEM, plan=standard, currency="USD", store_fee=30_000, visit_fee=5, revenue_share_bps=150,
        monthly_minimum=100_000,
    )  # fmt: skip
    v2 = premium.versions.first() or services.plan_version_create(
        actor=SYSTEM, plan=premium, currency="USD", store_fee=60_000, visit_fee=3, revenue_share_bps=100,
        monthly_minimum=0,
        promises=Promises(without_person_bps=9_950, exit_to_receipt_p95_s=60, credit_bps=500),
    )  # fmt: skip
    PlanAssignment.unscoped.filter(tenant_id__in=tenant_ids).delete()
    BillingAccount.unscoped.filter(tenant_id__in=tenant_ids).delete()
    PlanAssignment.unscoped.bulk_create(
        [PlanAssignment(tenant=t, plan_version=v1, starts_on=date(2025, 1, 1)) for t in bench], batch_size=2000
    )
    with tenancy.platform_wide_scope():
        for t in bench[::2]:  # half change plan mid-month: two segments, each prorated by day
            services.plan_assign(actor=SYSTEM, tenant=t, plan_version=v2, starts_on=MONTH + timedelta(days=15))
    BillingAccount.unscoped.bulk_create(
        [
            BillingAccount(tenant=t, legal_name=f"{t.name} Ltd", currency="USD", tax_rate_bps=2000, tax_label="VAT")
            for t in bench[::3]
        ]
    )
    ExchangeRate.objects.update_or_create(month=MONTH, base="EUR", quote="USD", defaults={"rate": Decimal("1.085")})

    reviewer, _ = User.objects.get_or_create(username="bench-reviewer@openaisle.test")
    store_rows = list(Store.unscoped.filter(tenant_id__in=tenant_ids).values_list("pk", "tenant_id", "currency"))
    count = len(store_rows) * DAYS * visits_per_day
    visits: list[dict[str, Any]] = []
    attempts: list[dict[str, Any]] = []
    decisions: list[dict[str, Any]] = []
    receipts: list[dict[str, Any]] = []
    first_visit = reserve_ids(Visit, count) if count else 0
    first_attempt = reserve_ids(PaymentAttempt, count * 2) if count else 0
    vid, aid = first_visit, first_attempt
    for store_id, tenant_id, currency in store_rows:
        for day in range(DAYS):
            for n in range(visits_per_day):
                settled = datetime(2026, 4, 1, 9, tzinfo=UTC) + timedelta(days=day, minutes=37 * n + rng.randrange(30))
                total = rng.randrange(300, 9_000)
                reviewed = rng.random() < 0.01
                visits.append(
                    {
                        "id": vid,
                        "tenant_id": tenant_id,
                        "store_id": store_id,
                        "session": f"b-{vid}",
                        "status": Visit.Status.CHARGED,
                        "entered_at": settled - timedelta(minutes=14),
                        "exited_at": settled - timedelta(minutes=2),
                        "currency": currency,
                        "subtotal": total,
                        "total": total,
                        "charged_total": total,
                        "settled_at": settled,
                        "created_at": settled,
                        "updated_at": settled,
                    }
                )
                attempts.append(
                    {
                        "id": aid,
                        "tenant_id": tenant_id,
                        "visit_id": vid,
                        "purpose": "capture",
                        "amount": total,
                        "currency": currency,
                        "state": "succeeded",
                        "created_at": settled,
                        "updated_at": settled + timedelta(seconds=3),
                    }
                )
                aid += 1
                if rng.random() < 0.02:
                    attempts.append(
                        {
                            "id": aid,
                            "tenant_id": tenant_id,
                            "visit_id": vid,
                            "purpose": "refund",
                            "amount": total // 3,
                            "currency": currency,
                            "state": "succeeded",
                            "reason_code": "overcharge",
                            "created_at": settled,
                            "updated_at": settled + timedelta(hours=5),
                        }
                    )
                    aid += 1
                receipt_at = settled + timedelta(seconds=rng.uniform(1, 80))
                if reviewed:
                    decided = settled + timedelta(minutes=rng.randrange(5, 90))
                    receipt_at = decided + timedelta(seconds=2)
                    decisions.append(
                        {
                            "tenant_id": tenant_id,
                            "visit_id": vid,
                            "reviewer_id": reviewer.pk,
                            "action": "approve",
                            "lines_before": [],
                            "lines_after": [],
                            "decided_at": decided,
                        }
                    )
                receipts.append(
                    {
                        "tenant_id": tenant_id,
                        "visit_id": vid,
                        "cart_version": 1,
                        "total": total,
                        "currency": currency,
                        "issued_at": receipt_at,
                    }
                )
                vid += 1
    with transaction.atomic():
        for chunk in range(0, len(visits), 100_000):
            copy_rows(Visit, visits[chunk : chunk + 100_000])
        for chunk in range(0, len(attempts), 100_000):
            copy_rows(PaymentAttempt, attempts[chunk : chunk + 100_000])
        for chunk in range(0, len(receipts), 100_000):
            copy_rows(Receipt, receipts[chunk : chunk + 100_000])
        if decisions:
            copy_rows(ReviewDecision, decisions)
    with connection.cursor() as cursor:
        for model in (Store, Visit, PaymentAttempt, Receipt, ReviewDecision):
            cursor.execute(f"ANALYZE {model._meta.db_table}")
    return {
        "tenant_ids": tenant_ids,
        "assured_version": v2,
        "stores": len(store_rows),
        "visits": len(visits),
        "payment_attempts": len(attempts),
        "review_decisions": len(decisions),
        "setup_seconds": round(time.perf_counter() - started, 1),
    }


def timed(function: Any) -> tuple[float, Any]:
    started = time.perf_counter()
    result = function()
    return time.perf_counter() - started, result


def baseline() -> float:
    """The least a close must read: one GROUP BY over the month's usage rows, in SQL."""
    table = DailyUsage._meta.db_table
    with connection.cursor() as cursor:
        started = time.perf_counter()
        cursor.execute(
            f"SELECT tenant_id, day, currency, count(*) FILTER (WHERE store_active), sum(visits_settled), "  # noqa: S608
            f"sum(gross_sales), sum(refunds) FROM {table} WHERE day BETWEEN %s AND %s GROUP BY 1, 2, 3",
            [MONTH, MONTH + timedelta(days=DAYS - 1)],
        )
        cursor.fetchall()
        return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tenants", type=int, default=1000)
    parser.add_argument("--stores", type=int, default=5)
    parser.add_argument("--visits-per-store-day", type=int, default=4)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    if connection.vendor != "postgresql":
        sys.exit("This benchmark needs PostgreSQL: set DATABASE_URL=postgres://... (a migrated database).")

    made = setup(tenants=args.tenants, stores=args.stores, visits_per_day=args.visits_per_store_day, seed=args.seed)
    tenant_ids = made.pop("tenant_ids")
    period_end = MONTH + timedelta(days=DAYS - 1)
    with tenancy.platform_wide_scope():
        close_s, first = timed(lambda: services.month_close(actor=SYSTEM, period_start=MONTH))
        usage_s, usage_rows = timed(lambda: services.usage_recompute(start=MONTH, end=period_end))
        Invoice.unscoped.filter(tenant_id__in=tenant_ids, period_start=MONTH).delete()
        build_s, built = timed(lambda: services.month_close(actor=SYSTEM, period_start=MONTH, recompute_usage=False))
        reclose_s, again = timed(lambda: services.month_close(actor=SYSTEM, period_start=MONTH))
        drafts = list(Invoice.unscoped.filter(tenant_id__in=tenant_ids, period_start=MONTH, status="draft"))
        finalise_s, done = timed(lambda: services.invoices_finalise(actor=SYSTEM, invoices=drafts))
        promised = list(PlanAssignment.unscoped.filter(tenant_id__in=tenant_ids, plan_version=made["assured_version"]))
        levels_s, measured = timed(
            lambda: services.month_levels(start=MONTH, end=period_end, tenant_ids=[a.tenant_id for a in promised])
        )
    lines = InvoiceLine.unscoped.filter(invoice__in=drafts).count()
    credits = InvoiceLine.unscoped.filter(invoice__in=drafts, kind=InvoiceLine.Kind.SERVICE_CREDIT)
    invoices = len(first.created)
    base_s = baseline()
    result = {
        "benchmark": "close_month",
        "month": f"{MONTH:%Y-%m}",
        "tenants": args.tenants,
        "stores_per_tenant": args.stores,
        "days": DAYS,
        **{k: v for k, v in made.items() if k != "assured_version"},
        "usage_rows": usage_rows,
        "invoices": invoices,
        "invoice_lines": lines,
        "failed": first.failed,
        "close": {
            "seconds": round(close_s, 2),
            "invoices_per_s": round(invoices / close_s, 1),
            "includes": "usage derived from visits and payments, then the drafts",
        },
        "usage": {"seconds": round(usage_s, 2), "rows_per_s": round(usage_rows / usage_s)},
        "build": {"seconds": round(build_s, 2), "invoices_per_s": round(len(built.created) / build_s, 1)},
        "reclose": {
            "seconds": round(reclose_s, 2),
            "created": len(again.created),
            "updated": len(again.updated),
            "unchanged": len(again.unchanged),
        },
        "levels": {
            "seconds": round(levels_s, 2),
            "tenants_measured": len(measured),
            "service_credit_lines": credits.count(),
            "tenants_credited": credits.values("tenant_id").distinct().count(),
        },
        "finalise": {
            "seconds": round(finalise_s, 2),
            "invoices_per_s": round(len(done) / finalise_s, 1),
            "numbers": [done[0].number, done[-1].number] if done else [],
        },
        "baseline_group_by": {"seconds": round(base_s, 3), "build_vs_baseline": round(build_s / base_s, 1)},
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
