"""Daily usage per tenant, store and day, derived from visits, payments and review decisions.

Set-based: a handful of aggregate queries per store timezone (a day is the store's local date), whatever the
number of tenants, then one upsert of the rows and a delete of the rows of the range that no longer have a
source. Recomputing a range any number of times gives the same rows; nobody edits them by hand.

* visits settled, and of those sent to a person: by `Visit.settled_at`;
* gross sales: succeeded capture and charge attempts, by the day their outcome was recorded (`updated_at`);
* refunds (overcharge corrections, always after a charge): succeeded refund attempts, by the same rule;
* review decisions and their exit-to-decision time: by `ReviewDecision.decided_at`;
* a store is *active* on a day (and counts for the store fee) when its status is active and it existed that day,
  or when it had settled visits that day; a day that has not begun on the store's clock is not (a month's draft
  to date bills the days so far, not the whole month).

Only what differs is written: a recompute that finds the same figures leaves the rows (and their `computed_at`,
the time their figures last changed) as they were.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.db import connection, transaction
from django.db.models import Count, Exists, OuterRef, Q, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from billing.invoicing.models import DailyUsage
from billing.payments.models import PaymentAttempt
from catalog.bulk import uses_copy
from stores.models import Store
from visits.models import ReviewDecision, Visit

COLUMNS = (
    "tenant_id",
    "store_id",
    "day",
    "currency",
    "store_active",
    "visits_settled",
    "gross_sales",
    "refunds",
    "refunds_count",
    "sent_to_review",
    "decisions",
    "decision_seconds",
    "computed_at",
)
UPDATED = COLUMNS[3:]


@dataclass
class _Figures:
    visits_settled: int = 0
    sent_to_review: int = 0
    gross_sales: int = 0
    refunds: int = 0
    refunds_count: int = 0
    decisions: int = 0
    decision_seconds: int = 0


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def recompute(*, start: date, end: date, tenant_ids: Sequence[int] | None = None) -> int:
    """Recompute the usage rows of `start`..`end` (store-local dates, both included) for the tenants given, or
    for every tenant. Returns the number of rows written."""
    if end < start:
        raise ValueError("end is before start")
    now = timezone.now()
    stores = Store.unscoped.all()
    if tenant_ids is not None:
        stores = stores.filter(tenant_id__in=list(tenant_ids))
    store_info = {
        pk: (tenant_id, tz, currency, status, created_at)
        for pk, tenant_id, tz, currency, status, created_at in stores.values_list(
            "pk", "tenant_id", "timezone", "currency", "status", "created_at"
        )
    }
    zones: dict[str, list[int]] = defaultdict(list)
    for pk, (_tenant, tz, *_rest) in store_info.items():
        zones[tz].append(pk)
    figures: dict[tuple[int, date], _Figures] = defaultdict(_Figures)
    for tz_name in zones:
        _collect(figures, tz_name=tz_name, start=start, end=end, tenant_ids=tenant_ids)

    rows = []
    days = [start + timedelta(days=n) for n in range((end - start).days + 1)]
    for pk, (tenant_id, tz, currency, status, created_at) in store_info.items():
        created_on = timezone.localtime(created_at, _zone(tz)).date()
        today = timezone.localtime(now, _zone(tz)).date()
        for day in days:
            found = figures.get((pk, day))
            opened = status == Store.Status.ACTIVE and created_on <= day <= today
            active = opened or bool(found and found.visits_settled)
            if not active and found is None:
                continue
            f = found or _Figures()
            rows.append(
                (
                    tenant_id,
                    pk,
                    day,
                    currency,
                    active,
                    f.visits_settled,
                    f.gross_sales,
                    f.refunds,
                    f.refunds_count,
                    f.sent_to_review,
                    f.decisions,
                    f.decision_seconds,
                    now,
                )
            )
    with transaction.atomic():
        if uses_copy():
            _write_by_copy(rows, start=start, end=end, tenant_ids=tenant_ids)
        else:
            _write_by_orm(rows, start=start, end=end, tenant_ids=tenant_ids)
    return len(rows)


def _collect(
    figures: dict[tuple[int, date], _Figures],
    *,
    tz_name: str,
    start: date,
    end: date,
    tenant_ids: Sequence[int] | None,
) -> None:
    """Add the figures of the stores in one timezone to `figures`: four aggregate queries."""
    tz = _zone(tz_name)
    low = datetime.combine(start, time.min, tzinfo=tz)
    high = datetime.combine(end + timedelta(days=1), time.min, tzinfo=tz)
    scope: dict[str, Any] = {"tenant_id__in": list(tenant_ids)} if tenant_ids is not None else {}

    decided = ReviewDecision.unscoped.filter(visit=OuterRef("pk"))
    visits = (
        Visit.unscoped.filter(store__timezone=tz_name, settled_at__gte=low, settled_at__lt=high, **scope)
        .annotate(day=TruncDate("settled_at", tzinfo=tz))
        .values("store_id", "day")
        .annotate(n=Count("id"), sent=Count("id", filter=Q(status=Visit.Status.NEEDS_REVIEW) | Q(Exists(decided))))
        .order_by()
    )
    for row in visits:
        found = figures[(row["store_id"], row["day"])]
        found.visits_settled += row["n"]
        found.sent_to_review += row["sent"]

    Purpose = PaymentAttempt.Purpose
    money = (
        PaymentAttempt.unscoped.filter(
            visit__store__timezone=tz_name,
            state=PaymentAttempt.State.SUCCEEDED,
            purpose__in=[Purpose.CAPTURE, Purpose.CHARGE, Purpose.REFUND],
            updated_at__gte=low,
            updated_at__lt=high,
            **scope,
        )
        .annotate(day=TruncDate("updated_at", tzinfo=tz))
        .values("visit__store_id", "day", "purpose")
        .annotate(amount=Sum("amount"), n=Count("id"))
        .order_by()
    )
    for row in money:
        found = figures[(row["visit__store_id"], row["day"])]
        if row["purpose"] == Purpose.REFUND:
            found.refunds += row["amount"]
            found.refunds_count += row["n"]
        else:
            found.gross_sales += row["amount"]

    decisions = ReviewDecision.unscoped.filter(
        visit__store__timezone=tz_name, decided_at__gte=low, decided_at__lt=high, **scope
    ).values_list("visit__store_id", "decided_at", "visit__exited_at")
    for store_id, decided_at, exited_at in decisions.iterator(chunk_size=5000):
        found = figures[(store_id, timezone.localtime(decided_at, tz).date())]
        found.decisions += 1
        if exited_at is not None:
            found.decision_seconds += max(0, int((decided_at - exited_at).total_seconds()))


def _write_by_orm(rows: list[tuple[Any, ...]], *, start: date, end: date, tenant_ids: Sequence[int] | None) -> None:
    """Embedded mode (SQLite): compare with the stored rows; create, update and delete only what differs."""
    stored_rows = DailyUsage.unscoped.filter(day__gte=start, day__lte=end)
    if tenant_ids is not None:
        stored_rows = stored_rows.filter(tenant_id__in=list(tenant_ids))
    stored = {(u.tenant_id, u.store_id, u.day): u for u in stored_rows}
    figures = UPDATED[:-1]  # all but computed_at
    new, changed = [], []
    for row in rows:
        values = dict(zip(COLUMNS, row, strict=True))
        found = stored.pop((values["tenant_id"], values["store_id"], values["day"]), None)
        if found is None:
            new.append(DailyUsage(**values))
        elif any(getattr(found, name) != values[name] for name in figures):
            for name in UPDATED:
                setattr(found, name, values[name])
            changed.append(found)
    DailyUsage.unscoped.bulk_create(new, batch_size=2000)
    DailyUsage.unscoped.bulk_update(changed, list(UPDATED), batch_size=2000)
    DailyUsage.unscoped.filter(pk__in=[u.pk for u in stored.values()]).delete()


def _write_by_copy(
    rows: Iterable[tuple[Any, ...]], *, start: date, end: date, tenant_ids: Sequence[int] | None
) -> None:
    """COPY into a temporary table; one INSERT … ON CONFLICT that writes only new and changed rows (an unchanged
    row costs an index look-up, not a new row version); one DELETE of the range's rows that have no source."""
    table = DailyUsage._meta.db_table
    columns = ", ".join(COLUMNS)
    updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in UPDATED)
    figures = UPDATED[:-1]
    differs = (
        f"({', '.join(f'u.{c}' for c in figures)}) IS DISTINCT FROM ({', '.join(f'EXCLUDED.{c}' for c in figures)})"
    )
    scope = "AND u.tenant_id = ANY(%s)" if tenant_ids is not None else ""
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TEMPORARY TABLE IF NOT EXISTS invoicing_usage_stage ON COMMIT DELETE ROWS AS "  # noqa: S608 — ours
            f"SELECT {columns} FROM {table} WITH NO DATA"
        )
        cursor.execute("TRUNCATE invoicing_usage_stage")
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        for row in rows:
            writer.writerow(["t" if v is True else "f" if v is False else v for v in row])
        buffer.seek(0)
        cursor.cursor.copy_expert(f"COPY invoicing_usage_stage ({columns}) FROM STDIN WITH (FORMAT csv)", buffer)
        cursor.execute(
            f"INSERT INTO {table} AS u ({columns}) SELECT {columns} FROM invoicing_usage_stage "  # noqa: S608 — ours
            f"ON CONFLICT (tenant_id, store_id, day) DO UPDATE SET {updates} WHERE {differs}"
        )
        cursor.execute(
            f"DELETE FROM {table} AS u WHERE u.day BETWEEN %s AND %s {scope} AND NOT EXISTS ("  # noqa: S608 — ours
            "SELECT 1 FROM invoicing_usage_stage s "
            "WHERE s.tenant_id = u.tenant_id AND s.store_id = u.store_id AND s.day = u.day)",
            [start, end, *([list(tenant_ids)] if tenant_ids is not None else [])],
        )
