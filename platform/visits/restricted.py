"""Age-restricted products (catalog `min_age`, spec v1.1) outside the engine: the store's warning, seconds after a
pick that no ID check covers yet, and the list of restricted sales with their checks that regulators ask for.

The engine decides the visit (it goes to a person unless a passed check of whoever took the item proved the age);
this module only tells people in time and keeps the record.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.utils import timezone

from billing.webhooks.services import webhook_emit
from catalog.models import Product
from ingest.models import Event
from ingest.validation import FUTURE_TOLERANCE
from stores.models import Store
from visits import engine
from visits.models import Visit, VisitLine
from visits.settling import VISIT_SPAN, store_layouts

# A pick older than this when its visit is refreshed is not live (a back-filled or late upload): nobody is warned.
ALERT_WITHIN = timedelta(minutes=10)
UNVERIFIED = "restricted_item.unverified"


@dataclass(frozen=True)
class IdCheck:
    """An `id.checked` event of a visit: what staff found and with which device."""

    ts: datetime
    passed: bool
    min_age: int
    device: str
    event_id: str


def restricted_products() -> dict[str, tuple[str, int]]:
    """SKU -> (name, minimum age) of the tenant's age-restricted products."""
    rows = Product.objects.filter(min_age__isnull=False).values_list("sku", "name", "min_age")
    return {sku: (name, min_age) for sku, name, min_age in rows}


def id_checks(
    *, store: Store, sessions: Sequence[str], between: tuple[datetime, datetime] | None = None
) -> dict[str, list[IdCheck]]:
    """The ID checks of these visits, in time order; only those `between` these times when given (on PostgreSQL
    the day partitions of that time alone are read)."""
    checks: dict[str, list[IdCheck]] = defaultdict(list)
    rows = Event.objects.filter(store=store, session__in=sessions, type="id.checked").order_by("ts", "event_id")
    if between is not None:
        rows = rows.filter(ts__gte=between[0], ts__lte=between[1])
    for session, ts, device, event_id, payload in rows.values_list("session", "ts", "device", "event_id", "payload"):
        passed = isinstance(payload, dict) and payload.get("result") == "passed"
        age = payload.get("min_age") if isinstance(payload, dict) else None
        checks[session].append(IdCheck(ts, passed, age if isinstance(age, int) else 0, device, event_id))
    return checks


def proves(checks: Sequence[IdCheck], min_age: int) -> IdCheck | None:
    """The first passed check among `checks` that proves at least `min_age` (None when none does)."""
    return next((check for check in checks if check.passed and check.min_age >= min_age), None)


def restricted_picks_warn(*, store: Store, sessions: Sequence[str], now: datetime | None = None) -> list[str]:
    """Warn the licensee (webhook `restricted_item.unverified`) of each live pick of an age-restricted product by
    one of these visits that no passed ID check of that visit covers yet. Once per pick, whatever the number of
    calls (keyed on the pick's event id); a pick older than `ALERT_WITHIN` (a back-filled day) warns nobody.
    Returns the ids of the picks warned about."""
    products = restricted_products()
    if not products or not sessions:
        return []
    now = now or timezone.now()
    recent = (now - ALERT_WITHIN, now + FUTURE_TOLERANCE)  # the furthest ahead an event is accepted
    picks = list(
        Event.objects.filter(store=store, session__in=sessions, type="item.picked", ts__range=recent)
        .order_by("ts", "event_id")
        .values_list("session", "ts", "event_id", "payload")
    )
    if not picks:
        return []
    layouts = engine.StoreModel(store_layouts(store=store), {})
    around = (recent[0] - VISIT_SPAN, recent[1])  # a visit's check is within a visit's span of its picks
    checks = id_checks(store=store, sessions=sorted({session for session, *_ in picks}), between=around)
    warned = []
    for session, ts, event_id, payload in picks:
        sku = _picked_sku(payload, layouts, ts)
        if sku not in products or proves(checks.get(session, ()), products[sku][1]):
            continue
        name, min_age = products[sku]
        webhook_emit(
            tenant=store.tenant,
            event_type=UNVERIFIED,
            payload={
                "store": store.code,
                "session": session,
                "event_id": event_id,
                "bin": payload.get("bin"),
                "sku": sku,
                "name": name,
                "min_age": min_age,
                "picked_at": ts.isoformat(),
            },
            event_key=event_id,
        )
        warned.append(event_id)
    return warned


def _picked_sku(payload: Any, layouts: engine.StoreModel, ts: datetime) -> str | None:
    """The product a pick is of: the camera's word, else the product its bin held then."""
    if not isinstance(payload, dict):
        return None
    if isinstance(payload.get("sku"), str):
        return str(payload["sku"])
    bin_ = layouts.bin_at(str(payload.get("bin")), ts)
    return bin_.sku if bin_ else None


RESTRICTED_SALES_COLUMNS = (
    "store",
    "visit",
    "taken_by",
    "entered_at",
    "exited_at",
    "status",
    "sku",
    "product",
    "qty",
    "min_age",
    "id_check",
    "checked_age",
    "checked_at",
    "checked_with",
)


def restricted_sales(*, since: datetime, until: datetime, store: Store | None = None) -> Iterator[dict[str, Any]]:
    """Every line of an age-restricted product on a visit that left in [since, until), with the visit's ID check
    that proved the age (or its latest check, or none): what a regulator asks a licensee for."""
    products = restricted_products()
    lines = VisitLine.objects.filter(
        sku__in=list(products), visit__exited_at__gte=since, visit__exited_at__lt=until, qty__gt=0
    )
    if store is not None:
        lines = lines.filter(visit__store=store)
    ordered = lines.select_related("visit", "visit__store").order_by("visit__exited_at", "visit_id", "sku")
    chunk: list[VisitLine] = []
    for line in ordered.iterator(chunk_size=SALES_CHUNK):
        chunk.append(line)
        if len(chunk) == SALES_CHUNK:
            yield from _sales_rows(chunk, products)
            chunk = []
    yield from _sales_rows(chunk, products)


SALES_CHUNK = 2000


def _sales_rows(lines: list[VisitLine], products: dict[str, tuple[str, int]]) -> Iterator[dict[str, Any]]:
    sessions: dict[Store, set[str]] = defaultdict(set)
    for line in lines:
        sessions[line.visit.store].update(_takers(line))
    checks = {
        (visit_store.pk, session): found
        for visit_store, of_store in sessions.items()
        for session, found in id_checks(store=visit_store, sessions=sorted(of_store)).items()
    }
    for line in lines:
        visit: Visit = line.visit
        name, min_age = products[line.sku]
        check = _check_of(line, checks, min_age)
        yield {
            "store": visit.store.code,
            "visit": visit.session,
            "taken_by": ", ".join(line.taken_by),
            "entered_at": visit.entered_at.isoformat() if visit.entered_at else "",
            "exited_at": visit.exited_at.isoformat() if visit.exited_at else "",
            "status": visit.get_status_display(),
            "sku": line.sku,
            "product": name,
            "qty": line.qty,
            "min_age": min_age,
            "id_check": ("passed" if check.passed else "failed") if check else "none",
            "checked_age": check.min_age if check else "",
            "checked_at": check.ts.isoformat() if check else "",
            "checked_with": check.device if check else "",
        }


def _takers(line: VisitLine) -> list[str]:
    """Whose ID counts for a line: the members who took it, on a group's receipt (spec v1.1: a check of the payer
    covers the payer only), else the visit's own shopper."""
    return list(line.taken_by) or [line.visit.session]


def _check_of(line: VisitLine, checks: Mapping[tuple[int, str], list[IdCheck]], min_age: int) -> IdCheck | None:
    """The check a regulator reads for a line: each taker's check proving the age; the first taker with none such
    shows its latest check (or none) instead."""
    found: list[IdCheck] = []
    for session in _takers(line):
        of_taker = checks.get((line.visit.store_id, session), [])
        proving = proves(of_taker, min_age)
        if proving is None:
            return of_taker[-1] if of_taker else None
        found.append(proving)
    return found[0] if found else None
