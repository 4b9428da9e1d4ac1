"""Service levels: how the platform served a store's shoppers over a period, read from the visits themselves.

A visit counts in the period its exit (`Visit.exited_at`) falls in. Per store or per tenant:

* **visits** — the visits that exited in the period (a group of shoppers on one card once, as its payer's);
* **settled without a person** — the share of them that settling made final (`settled_at`) with no person
  deciding and none waiting for one (a visit still settling or in the review queue is not);
* **exit to receipt** (p50, p95, seconds) — from the exit to the visit's first receipt (`billing.payments`
  `Receipt.issued_at`), over the visits that have one (those paid);
* **review time to decision** (p50, p95, seconds) — from the moment settling sent the visit to a person
  (`settled_at`) to the first decision, over the visits decided;
* **disputes** — the share of visits a shopper disputed (`disputes.selectors.visit_disputed`);
* **refunded** — the share of visits with any refund.

Times never count below zero (a store's clock running ahead of ours). A percentile interpolates linearly
between the two nearest values, as PostgreSQL's `percentile_cont` does: computed by the database there, from
the durations in Python in embedded mode (SQLite has no percentile function). Either way a handful of
aggregate queries, whatever the number of visits.
"""

from __future__ import annotations

import math
import zoneinfo
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from django.contrib.postgres.fields import ArrayField
from django.db import connection
from django.db.models import Aggregate, Count, Exists, F, FloatField, Func, OuterRef, Q, QuerySet, Subquery

from billing.payments.models import Receipt
from disputes.selectors import visit_disputed
from stores.models import Store
from visits.models import ReviewDecision, Visit
from visits.selectors import without_companions

FRACTIONS = (0.5, 0.95)
MAX_PERIOD = timedelta(days=366)


@dataclass(frozen=True)
class Percentiles:
    """Seconds at the median and the 95th percentile; None when nothing was measured."""

    p50: float | None = None
    p95: float | None = None
    measured: int = 0


@dataclass(frozen=True)
class ServiceLevels:
    visits: int = 0
    without_person: int = 0
    refunded_visits: int = 0
    disputed_visits: int = 0
    exit_to_receipt_s: Percentiles = Percentiles()
    review_time_to_decision_s: Percentiles = Percentiles()

    def _share(self, count: int | None) -> float | None:
        return count / self.visits if self.visits and count is not None else None

    @property
    def settled_without_person(self) -> float | None:
        return self._share(self.without_person)

    @property
    def refunded(self) -> float | None:
        return self._share(self.refunded_visits)

    @property
    def disputes(self) -> float | None:
        return self._share(self.disputed_visits)


def percentile_cont(values: Iterable[float], fraction: float) -> float | None:
    """The `fraction` percentile of `values`, interpolated like PostgreSQL's `percentile_cont`; None if empty."""
    ordered = sorted(values)
    if not ordered:
        return None
    position = fraction * (len(ordered) - 1)
    lower = math.floor(position)
    upper = min(lower + 1, len(ordered) - 1)
    return ordered[lower] + (ordered[upper] - ordered[lower]) * (position - lower)


# --- Periods -----------------------------------------------------------------------------------------------------


class PeriodError(ValueError):
    """A period that cannot be measured: its end before its start, or longer than a year."""


def check_period(start: datetime, end: datetime) -> None:
    if end <= start:
        raise PeriodError("The period must end after it starts.")
    if end - start > MAX_PERIOD:
        raise PeriodError("A period is at most 366 days.")


def exited_between(start: datetime, end: datetime) -> Q:
    """Visits that exited in [start, end)."""
    return Q(exited_at__gte=start, exited_at__lt=end)


def _zone(name: str) -> zoneinfo.ZoneInfo:
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return zoneinfo.ZoneInfo("UTC")


def exited_on_days(first_day: date, last_day: date, *, timezones: Iterable[str]) -> Q:
    """Visits that exited on the days `first_day`..`last_day` (both included) as their store's clock reads them:
    one condition per store time zone (an invoice's month is the store's own)."""
    condition = Q(pk__in=[])
    for name in sorted(set(timezones)):
        zone = _zone(name)
        low = datetime.combine(first_day, time.min, tzinfo=zone)
        high = datetime.combine(last_day + timedelta(days=1), time.min, tzinfo=zone)
        condition |= Q(store__timezone=name) & exited_between(low, high)
    return condition


# --- Measuring ---------------------------------------------------------------------------------------------------


class _Percentiles(Aggregate):
    """PostgreSQL: `percentile_cont(ARRAY[0.5, 0.95]) WITHIN GROUP (ORDER BY …)`, both in one pass."""

    function = "PERCENTILE_CONT"
    template = "%(function)s(ARRAY[%(fractions)s]) WITHIN GROUP (ORDER BY %(expressions)s)"

    def __init__(self, expression: Any) -> None:
        fractions = ", ".join(f"CAST({f} AS DOUBLE PRECISION)" for f in FRACTIONS)
        super().__init__(expression, fractions=fractions, output_field=ArrayField(FloatField()))


class _Seconds(Func):
    """PostgreSQL: seconds from the second expression to the first, never below zero."""

    arg_joiner = " - "
    template = "GREATEST(0, EXTRACT(EPOCH FROM (%(expressions)s)))"
    output_field = FloatField()


def _receipts() -> QuerySet[Receipt]:
    """The visit's receipts, first issued first (correlated with the visit being measured)."""
    receipts = Receipt.unscoped.filter(tenant_id=OuterRef("tenant_id"), visit_id=OuterRef("pk"))
    return receipts.order_by("issued_at")


def _decisions() -> QuerySet[ReviewDecision]:
    """The visit's review decisions, first taken first (correlated with the visit being measured)."""
    decisions = ReviewDecision.unscoped.filter(tenant_id=OuterRef("tenant_id"), visit_id=OuterRef("pk"))
    return decisions.order_by("decided_at")


def _seconds_to(rows: QuerySet[Any], *, at: str, since: str) -> Subquery:
    """PostgreSQL: seconds from the visit's `since` to the first row's `at`, clamped inside the subquery so that a
    visit without such a row stays NULL (GREATEST would read a NULL as nothing and answer 0)."""
    return Subquery(rows.annotate(seconds=_Seconds(F(at), OuterRef(since))).values("seconds")[:1])


def measure(*, visits: QuerySet[Visit], by: str) -> dict[int, ServiceLevels]:
    """Service levels of `visits` (already narrowed to a tenant or tenants and a period), grouped by `by`
    (`"store_id"` or `"tenant_id"`). Groups without visits are absent. A shoppers' group (spec v1.1) counts once, as
    its payer's visit: its companions' own visits charge nothing and are never reviewed."""
    visits = without_companions(visits)
    decided = Exists(ReviewDecision.unscoped.filter(tenant_id=OuterRef("tenant_id"), visit_id=OuterRef("pk")))
    without_person = Q(settled_at__isnull=False) & ~Q(status=Visit.Status.NEEDS_REVIEW) & ~Q(decided)
    counts: dict[str, Any] = {
        "n": Count("pk"),
        "without": Count("pk", filter=without_person),
        "refunded_n": Count("pk", filter=Q(refunded__gt=0)),
        "disputed_n": Count("pk", filter=Q(visit_disputed())),
    }
    postgres = connection.vendor == "postgresql"
    if postgres:
        to_receipt = _seconds_to(_receipts(), at="issued_at", since="exited_at")
        to_decision = _seconds_to(_decisions(), at="decided_at", since="settled_at")
        counts |= {
            "receipt_s": _Percentiles(to_receipt),
            "receipts": Count(to_receipt),
            "decision_s": _Percentiles(to_decision),
            "decisions": Count(to_decision),
        }
    rows = list(visits.values(by).annotate(**counts).order_by())
    durations = {} if postgres else _durations(visits, by=by)
    found = {}
    for row in rows:
        key = row[by]
        if postgres:
            receipt_s = _from_array(row["receipt_s"], row["receipts"])
            decision_s = _from_array(row["decision_s"], row["decisions"])
        else:
            receipt_s = _from_values(durations.get((key, "receipt"), []))
            decision_s = _from_values(durations.get((key, "decision"), []))
        found[key] = ServiceLevels(
            visits=row["n"],
            without_person=row["without"],
            refunded_visits=row["refunded_n"],
            disputed_visits=row["disputed_n"],
            exit_to_receipt_s=receipt_s,
            review_time_to_decision_s=decision_s,
        )
    return found


def _from_array(values: Sequence[float] | None, measured: int) -> Percentiles:
    if not values or not measured:
        return Percentiles()
    return Percentiles(p50=float(values[0]), p95=float(values[1]), measured=measured)


def _from_values(values: list[float]) -> Percentiles:
    return Percentiles(
        p50=percentile_cont(values, FRACTIONS[0]), p95=percentile_cont(values, FRACTIONS[1]), measured=len(values)
    )


def _durations(visits: QuerySet[Visit], *, by: str) -> dict[tuple[int, str], list[float]]:
    """Embedded mode: the exit-to-receipt and settled-to-decision seconds of every visit that has them."""
    rows = (
        visits.annotate(
            receipt_at=Subquery(_receipts().values("issued_at")[:1]),
            decided_at=Subquery(_decisions().values("decided_at")[:1]),
        )
        .filter(Q(receipt_at__isnull=False) | Q(decided_at__isnull=False))
        .values_list(by, "exited_at", "settled_at", "receipt_at", "decided_at")
    )
    found: dict[tuple[int, str], list[float]] = defaultdict(list)
    for key, exited_at, settled_at, receipt_at, decided_at in rows.iterator(chunk_size=5000):
        if receipt_at is not None and exited_at is not None:
            found[(key, "receipt")].append(max(0.0, (receipt_at - exited_at).total_seconds()))
        if decided_at is not None and settled_at is not None:
            found[(key, "decision")].append(max(0.0, (decided_at - settled_at).total_seconds()))
    return found


# --- What the API, the admin and invoicing ask ---------------------------------------------------------------------


def store_service_levels(*, store: Store, start: datetime, end: datetime) -> ServiceLevels:
    """One store's levels over [start, end)."""
    check_period(start, end)
    visits = Visit.objects.filter(exited_between(start, end), store=store)
    return measure(visits=visits, by="store_id").get(store.pk, ServiceLevels())


@dataclass(frozen=True)
class TenantServiceLevels:
    """A tenant's levels over a period, and each of its stores' (every store, those without visits too)."""

    total: ServiceLevels
    stores: list[tuple[Store, ServiceLevels]]


def tenant_service_levels(*, start: datetime, end: datetime) -> TenantServiceLevels:
    """The levels of the tenant in scope over [start, end), in total and per store."""
    check_period(start, end)
    return _tenant_levels(Visit.objects.filter(exited_between(start, end)))


def tenant_service_levels_on_days(*, first_day: date, last_day: date) -> TenantServiceLevels:
    """The levels of the tenant in scope on the store-local days `first_day`..`last_day`, in total and per store."""
    timezones = Store.objects.values_list("timezone", flat=True).distinct()
    return _tenant_levels(Visit.objects.filter(exited_on_days(first_day, last_day, timezones=timezones)))


def _tenant_levels(visits: QuerySet[Visit]) -> TenantServiceLevels:
    by_store = measure(visits=visits, by="store_id")
    total = next(iter(measure(visits=visits, by="tenant_id").values()), ServiceLevels())
    stores = [(store, by_store.get(store.pk, ServiceLevels())) for store in Store.objects.order_by("code")]
    return TenantServiceLevels(total=total, stores=stores)


def service_levels_by_tenant(
    *, first_day: date, last_day: date, tenant_ids: Sequence[int] | None = None
) -> dict[int, ServiceLevels]:
    """Platform-wide (operators, closing a month): each tenant's levels on its stores' local days
    `first_day`..`last_day`, for the tenants given or all. Tenants without visits are absent."""
    stores = Store.unscoped.all()
    visits = Visit.unscoped.all()
    if tenant_ids is not None:
        stores = stores.filter(tenant_id__in=list(tenant_ids))
        visits = visits.filter(tenant_id__in=list(tenant_ids))
    timezones = stores.values_list("timezone", flat=True).distinct()
    return measure(visits=visits.filter(exited_on_days(first_day, last_day, timezones=timezones)), by="tenant_id")
