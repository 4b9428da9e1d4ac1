"""Reads of licensee billing: invoices by period, tenant and status, and the figures of the consoles.

Console figures are aggregate queries (GROUP BY day, tenant or store) over the usage rows, event streams and
devices, through the scoped managers: on `/ops/` they run platform-wide, on `/admin/` in the member's tenant, so
a licensee's dashboard can only ever add up its own rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, TypeVar

from django.db.models import Count, Max, Model, Q, QuerySet, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from billing.invoicing.calculations import month_bounds, parse_month
from billing.invoicing.models import BillingAccount, DailyUsage, ExchangeRate, Invoice, PlanAssignment, PlanVersion
from ingest.models import EventStream, UnreadableEvent
from stores.models import Device, Store

Row = TypeVar("Row", bound=Model)


def invoice_list(
    *,
    period: str | None = None,
    tenant_id: int | None = None,
    status: str | None = None,
    include_drafts: bool = True,
) -> QuerySet[Invoice]:
    """Invoices of the scope, optionally of one month ("YYYY-MM"), tenant and status."""
    invoices = Invoice.objects.all()
    if period:
        start, _ = parse_month(period)
        invoices = invoices.filter(period_start=start)
    if tenant_id is not None:
        invoices = invoices.filter(tenant_id=tenant_id)
    if status:
        invoices = invoices.filter(status=status)
    if not include_drafts:
        invoices = invoices.exclude(status=Invoice.Status.DRAFT)
    return invoices.order_by("period_start", "number", "pk")


def usage_rows(
    *, start: date, end: date, tenant_id: int | None = None, store_id: int | None = None
) -> QuerySet[DailyUsage]:
    return _narrowed(DailyUsage.objects.filter(day__gte=start, day__lte=end), tenant_id, store_id)


def _narrowed(rows: QuerySet[Row], tenant_id: int | None, store_id: int | None) -> QuerySet[Row]:
    """The rows of one tenant, of one store, or both, where asked."""
    if tenant_id is not None:
        rows = rows.filter(tenant_id=tenant_id)
    if store_id is not None:
        rows = rows.filter(store_id=store_id)
    return rows


USAGE_SUMS = {
    "visits": Sum("visits_settled"),
    "gross": Sum("gross_sales"),
    "refunds": Sum("refunds"),
    "refunds_n": Sum("refunds_count"),
    "sent": Sum("sent_to_review"),
    "decisions": Sum("decisions"),
    "seconds": Sum("decision_seconds"),
    "active_days": Count("id", filter=Q(store_active=True)),
}


@dataclass
class Figures:
    """Usage summed over some rows, per sales currency for the money."""

    visits: int = 0
    sent: int = 0
    decisions: int = 0
    seconds: int = 0
    refunds_n: int = 0
    active_days: int = 0
    gross: dict[str, int] = field(default_factory=dict)
    refunds: dict[str, int] = field(default_factory=dict)
    computed_at: datetime | None = None

    def add(self, row: dict[str, Any]) -> None:
        self.visits += row["visits"] or 0
        self.sent += row["sent"] or 0
        self.decisions += row["decisions"] or 0
        self.seconds += row["seconds"] or 0
        self.refunds_n += row["refunds_n"] or 0
        self.active_days += row["active_days"] or 0
        currency = row["currency"]
        self.gross[currency] = self.gross.get(currency, 0) + (row["gross"] or 0)
        self.refunds[currency] = self.refunds.get(currency, 0) + (row["refunds"] or 0)

    @property
    def review_rate(self) -> float | None:
        return self.sent / self.visits if self.visits else None

    @property
    def mean_to_decision(self) -> timedelta | None:
        return timedelta(seconds=self.seconds / self.decisions) if self.decisions else None


def usage_by_day(rows: QuerySet[DailyUsage]) -> dict[date, Figures]:
    """Per day: one GROUP BY (day, currency)."""
    found: dict[date, Figures] = {}
    for row in rows.values("day", "currency").annotate(**USAGE_SUMS).order_by("day"):
        found.setdefault(row["day"], Figures()).add(row)
    return found


def usage_total(rows: QuerySet[DailyUsage]) -> Figures:
    total = Figures()
    for row in rows.values("currency").annotate(**USAGE_SUMS, last=Max("computed_at")).order_by():
        total.add(row)
        if total.computed_at is None or (row["last"] and row["last"] > total.computed_at):
            total.computed_at = row["last"]
    return total


def usage_by_tenant(rows: QuerySet[DailyUsage]) -> dict[int, Figures]:
    return _usage_by(rows, "tenant_id")


def usage_by_store(rows: QuerySet[DailyUsage]) -> dict[int, Figures]:
    return _usage_by(rows, "store_id")


def _usage_by(rows: QuerySet[DailyUsage], key: str) -> dict[int, Figures]:
    found: dict[int, Figures] = {}
    for row in rows.values(key, "currency").annotate(**USAGE_SUMS).order_by():
        found.setdefault(row[key], Figures()).add(row)
    return found


@dataclass
class StreamFigures:
    done: int = 0
    failed: int = 0
    open: int = 0
    backlog_bytes: int = 0


def _streams(since: datetime, tenant_id: int | None, store_id: int | None) -> QuerySet[EventStream]:
    return _narrowed(EventStream.objects.filter(created_at__gte=since), tenant_id, store_id)


STREAM_SUMS = {
    "done": Count("id", filter=Q(status=EventStream.Status.DONE)),
    "failed": Count("id", filter=Q(status=EventStream.Status.FAILED)),
    "open": Count("id", filter=Q(status__in=[EventStream.Status.QUEUED, EventStream.Status.PROCESSING])),
}


def streams_by_day(*, since: datetime, tenant_id: int | None = None, store_id: int | None = None) -> dict[date, Any]:
    """Event streams received per day (UTC), by how they ended."""
    rows = (
        _streams(since, tenant_id, store_id)
        .annotate(day=TruncDate("created_at"))
        .values("day")
        .annotate(**STREAM_SUMS)
        .order_by("day")
    )
    return {row["day"]: StreamFigures(done=row["done"], failed=row["failed"], open=row["open"]) for row in rows}


def ingest_backlog(*, group_by: str, tenant_id: int | None = None) -> dict[int, StreamFigures]:
    """Per tenant (or store): streams waiting or in progress now with their bytes still to read, and failed
    streams of the last 7 days."""
    streams = EventStream.objects.all()
    if tenant_id is not None:
        streams = streams.filter(tenant_id=tenant_id)
    since = timezone.now() - timedelta(days=7)
    rows = (
        streams.filter(
            Q(status__in=[EventStream.Status.QUEUED, EventStream.Status.PROCESSING])
            | Q(status=EventStream.Status.FAILED, created_at__gte=since)
        )
        .values(group_by)
        .annotate(
            failed=STREAM_SUMS["failed"],
            open=STREAM_SUMS["open"],
            total=Sum("bytes_total", filter=~Q(status=EventStream.Status.FAILED)),
            read=Sum("bytes_done", filter=~Q(status=EventStream.Status.FAILED)),
        )
        .order_by()
    )
    return {
        row[group_by]: StreamFigures(
            failed=row["failed"], open=row["open"], backlog_bytes=max(0, (row["total"] or 0) - (row["read"] or 0))
        )
        for row in rows
    }


def unreadable_events(*, tenant_id: int | None = None, store_id: int | None = None) -> int:
    """Stored events whose payload cannot be read back (ingest.UnreadableEvent)."""
    events = UnreadableEvent.objects.all()
    if tenant_id is not None:
        events = events.filter(tenant_id=tenant_id)
    if store_id is not None:
        events = events.filter(store_id=store_id)
    return int(events.count())


def devices_offline(*, group_by: str, tenant_id: int | None = None) -> dict[int, int]:
    """Per tenant (or store): devices whose last known health is offline."""
    devices = Device.objects.filter(status=Device.Health.OFFLINE)
    if tenant_id is not None:
        devices = devices.filter(tenant_id=tenant_id)
    return {row[group_by]: row["n"] for row in devices.values(group_by).annotate(n=Count("id")).order_by()}


def offline_devices(*, tenant_id: int | None = None, store_id: int | None = None, limit: int = 10) -> list[Device]:
    devices = Device.objects.filter(status=Device.Health.OFFLINE).select_related("store", "tenant")
    if tenant_id is not None:
        devices = devices.filter(tenant_id=tenant_id)
    if store_id is not None:
        devices = devices.filter(store_id=store_id)
    return list(devices.order_by("last_seen_at")[:limit])


def stores_of(tenant_id: int | None = None) -> QuerySet[Store]:
    stores = Store.objects.all()
    if tenant_id is not None:
        stores = stores.filter(tenant_id=tenant_id)
    return stores.order_by("code")


AGE_BUCKETS = ((0, 30, "0–30 days"), (31, 60, "31–60 days"), (61, 90, "61–90 days"), (91, None, "over 90 days"))


@dataclass
class Receivable:
    """What one licensee owes in one currency: its issued, unpaid invoices less their credit notes, by age since
    issue (`AGE_BUCKETS`), and how much of it is past its due date. Amounts in minor units."""

    tenant_id: int
    tenant_name: str
    currency: str
    invoices: int = 0
    by_age: list[int] = field(default_factory=lambda: [0] * len(AGE_BUCKETS))
    overdue: int = 0
    oldest_issued_on: date | None = None

    @property
    def total(self) -> int:
        return sum(self.by_age)


def receivables(*, today: date) -> list[Receivable]:
    """Issued invoices not yet paid (finalised, not void), per licensee and currency, aged on `today`."""
    invoices = (
        Invoice.objects.filter(status=Invoice.Status.FINALISED)
        .annotate(credited=Sum("credit_notes__total"))
        .values_list("tenant_id", "tenant__name", "currency", "total", "credited", "issued_on", "due_on")
        .order_by("currency", "tenant__name", "issued_on")
    )
    owed: dict[tuple[int, str], Receivable] = {}
    for tenant_id, name, code, total, credited, issued_on, due_on in invoices:
        amount = total - (credited or 0)
        if amount <= 0:
            continue
        row = owed.setdefault((tenant_id, code), Receivable(tenant_id, name, code))
        row.invoices += 1
        row.by_age[_age_bucket((today - (issued_on or today)).days)] += amount
        row.overdue += amount if due_on is not None and due_on < today else 0
        row.oldest_issued_on = row.oldest_issued_on or issued_on
    return list(owed.values())


def _age_bucket(days: int) -> int:
    return next(i for i, (_, last, _) in enumerate(AGE_BUCKETS) if last is None or days <= last)


def receivables_totals(rows: list[Receivable]) -> dict[str, Receivable]:
    """The receivables added up per currency (amounts in different currencies are never added together)."""
    totals: dict[str, Receivable] = {}
    for row in rows:
        total = totals.setdefault(row.currency, Receivable(0, "Total", row.currency))
        total.invoices += row.invoices
        total.by_age = [a + b for a, b in zip(total.by_age, row.by_age, strict=True)]
        total.overdue += row.overdue
    return dict(sorted(totals.items()))


def missing_exchange_rates(*, month: date) -> list[tuple[str, str]]:
    """(sales currency, billing currency) pairs a month's invoices need and that month has no rate for: stores that
    sold in another currency than their licensee is billed in."""
    billed_in = dict(BillingAccount.objects.values_list("tenant_id", "currency"))
    sold = DailyUsage.objects.filter(day__gte=month, day__lte=month_bounds(month.year, month.month)[1])
    needed = {
        (currency, billed_in[tenant_id])
        for tenant_id, currency in sold.values_list("tenant_id", "currency").distinct()
        if tenant_id in billed_in and billed_in[tenant_id] != currency
    }
    known = set(ExchangeRate.objects.filter(month=month).values_list("base", "quote"))
    return sorted(needed - known)


def plan_versions_on(*, day: date) -> dict[int, PlanVersion]:
    """Tenant id → the plan version it is on that day, for the tenants in scope that have one."""
    assignments = PlanAssignment.objects.filter(starts_on__lte=day).filter(
        Q(ends_on__isnull=True) | Q(ends_on__gte=day)
    )
    return {a.tenant_id: a.plan_version for a in assignments.select_related("plan_version__plan")}
