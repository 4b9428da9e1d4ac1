"""Settling visits: run the engine over a store's events, store carts, decide charge or review.

A visit is final once `session.ended` has arrived and the store's settling window has passed
since the exit — on the store's own event clock (the latest event it sent) or on the wall clock,
whichever is later, so that a batch upload of a past day settles at once and a quiet store's
last visits settle too. An event for a final visit reopens it: the cart is recomputed and the
difference becomes a charge instruction for payments.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import Max, Min
from django.utils import timezone

from catalog.models import Product, ProductPrice
from core import metrics
from core.bounded_json import UnreadableJSON
from core.tasks import enqueue_on_commit
from ingest.models import Event
from ingest.services import events_mark_unreadable
from stores.models import Bin as BinRow
from stores.models import LayoutVersion, Store
from visits import engine, pricing
from visits.models import ChargeInstruction, Visit, VisitLine

CONTEXT_MARGIN = timedelta(minutes=5)
UNREADABLE = "_unreadable"  # the key of an event read back from its columns only (its payload cannot be read)
SETTLE_BATCH = 500


def store_model(*, store: Store) -> engine.StoreModel:
    """The store's layout versions and its products' weights, as the engine reads them."""
    layouts = list(LayoutVersion.objects.filter(store=store).order_by("effective_from"))
    bins: dict[int, dict[str, engine.Bin]] = {layout.pk: {} for layout in layouts}
    rows = BinRow.objects.filter(layout__in=layouts).values_list(
        "layout_id", "code", "sku", "sensor__code", "fixture__code", "fixture__zone__code"
    )
    for layout_id, code, sku, sensor, fixture, zone in rows:
        bins[layout_id][code] = engine.Bin(code, sku, sensor, fixture, zone)
    products = {
        sku: engine.Product(sku, float(weight), float(tolerance))
        for sku, weight, tolerance in Product.objects.values_list("sku", "unit_weight_g", "weight_tolerance_g")
    }
    return engine.StoreModel([engine.Layout(layout.effective_from, bins[layout.pk]) for layout in layouts], products)


def _together_in_time(visits: Sequence[Visit]) -> list[list[Visit]]:
    """Visits split into groups that overlap in time, so that the engine reads only the events around each
    group (a batch of sessions can span weeks of a store's history)."""
    ordered = sorted(visits, key=lambda v: (v.entered_at or v.last_event_at or timezone.now(), v.pk))
    groups: list[list[Visit]] = []
    group_end: datetime | None = None
    for visit in ordered:
        start = visit.entered_at or visit.last_event_at
        end = visit.exited_at or visit.last_event_at or start
        if not groups or group_end is None or start is None or start > group_end + CONTEXT_MARGIN:
            groups.append([visit])
            group_end = end
        else:
            groups[-1].append(visit)
            if end is not None and (group_end is None or end > group_end):
                group_end = end
    return groups


def _events_around(store: Store, visits: Sequence[Visit]) -> list[dict[str, Any]]:
    """The store's events from just before the first of these visits began to just after the last ended,
    the entries and exits of every visit in the store during that time (who could have done what), and
    the devices' earlier health reports (a scale reported offline stays offline until it says otherwise)."""
    starts = [at for v in visits if (at := v.entered_at or v.last_event_at) is not None]
    ends = [at for v in visits if (at := v.exited_at or v.last_event_at) is not None]
    if not starts or not ends:
        return []
    since, until = min(starts) - CONTEXT_MARGIN, max(ends) + CONTEXT_MARGIN
    columns = ("ts", "payload", "event_id", "type", "session")
    rows = list(Event.objects.filter(store=store, ts__gte=since, ts__lte=until).values_list(*columns))
    overlapping = Visit.objects.filter(store=store, entered_at__lte=until).exclude(exited_at__lt=since)
    rows += (
        Event.objects.filter(
            store=store,
            type__in=("session.started", "session.ended"),
            session__in=overlapping.values("session"),
        )
        .exclude(ts__gte=since, ts__lte=until)
        .values_list(*columns)
    )
    rows += Event.objects.filter(store=store, type="device.status", ts__lt=since).values_list(*columns)
    return [_as_read(*row) for row in rows]


def _as_read(ts: datetime, payload: Any, event_id: str, kind: str, session: str | None) -> dict[str, Any]:
    """An event as the engine reads it; one whose stored payload cannot be read, as what its columns say of it."""
    if isinstance(payload, UnreadableJSON):
        return {UNREADABLE: payload.reason, "id": event_id, "type": kind, "session": session, "_ts": ts}
    return {**payload, "_ts": ts}


def _held_back(store: Store, visits: Sequence[Visit], events: list[dict[str, Any]]) -> dict[str, list[str]]:
    """Review reasons for the visits an unreadable event bears on: its own visit, or for an event of no visit (a
    scale, a device), the visits in the store at its time. The cart is worked out without it; a person decides."""
    unreadable = [event for event in events if UNREADABLE in event]
    if not unreadable:
        return {}
    events_mark_unreadable(store=store, events=unreadable)
    held: dict[str, list[str]] = defaultdict(list)
    for event in unreadable:
        reason = f"event of {event['_ts']:%Y-%m-%d %H:%M:%S} UTC cannot be read: {event[UNREADABLE]} ({event['id']})"
        for visit in visits:
            start, end = visit.entered_at or visit.last_event_at, visit.exited_at or visit.last_event_at
            around = (
                start is not None and end is not None and start - CONTEXT_MARGIN <= event["_ts"] <= end + CONTEXT_MARGIN
            )
            if event["session"] == visit.session or (event["session"] is None and around):
                held[visit.session].append(reason)
    return held


def prices_for(*, store: Store, skus: set[str]) -> dict[str, list[pricing.PriceVersion]]:
    """Price versions of these products in the store's currency, oldest first."""
    versions: dict[str, list[pricing.PriceVersion]] = defaultdict(list)
    rows = (
        ProductPrice.objects.filter(product__sku__in=skus, currency=store.currency)
        .order_by("product__sku", "effective_from")
        .values_list("product__sku", "effective_from", "unit_price", "tax_rate")
    )
    for sku, effective_from, unit_price, tax_rate in rows:
        versions[sku].append(pricing.PriceVersion(effective_from, unit_price, tax_rate))
    return versions


def store_clock(*, store: Store) -> datetime | None:
    """The store's own time: the latest event it has sent."""
    latest: datetime | None = Event.objects.filter(store=store).aggregate(at=Max("ts"))["at"]
    return latest


def due_for_settling(*, store: Store, now: datetime) -> list[Visit]:
    """Visits that have left and whose settling window has passed, on the store's clock or the wall clock."""
    window = timedelta(seconds=store.settling_window_seconds)
    clock = store_clock(store=store)
    latest = max(clock, now) if clock is not None else now
    visits = Visit.objects.filter(store=store, status=Visit.Status.SETTLING, exited_at__lte=latest - window)
    return list(visits.order_by("exited_at")[:SETTLE_BATCH])


@transaction.atomic
def visits_settle(*, store: Store, sessions: Sequence[str] | None = None, now: datetime | None = None) -> list[Visit]:
    """Compute and store the carts of the visits due (or of `sessions`, final or reopened) and decide each."""
    now = now or timezone.now()
    if sessions is None:
        chosen = due_for_settling(store=store, now=now)
    else:
        chosen = list(Visit.objects.filter(store=store, session__in=sessions))
    if not chosen:
        return []
    locked = Visit.objects.select_for_update(of=("self",), skip_locked=sessions is None)
    visits = list(locked.filter(pk__in=[v.pk for v in chosen]).order_by("pk"))
    if sessions is None:
        # Another worker may be settling some of these: skip the ones it holds, and any it settled meanwhile.
        visits = [visit for visit in visits if visit.status == Visit.Status.SETTLING]
        if not visits:
            return []
    model = store_model(store=store)
    carts: dict[str, engine.Cart] = {}
    held: dict[str, list[str]] = {}
    for group in _together_in_time(visits):
        events = _events_around(store, group)
        held |= _held_back(store, group, events)
        carts |= engine.infer_carts(
            events=[event for event in events if UNREADABLE not in event],
            store=model,
            auto_charge_threshold=float(store.auto_charge_threshold),
            sessions=[v.session for v in group],
        )
    skus = {line.sku for cart in carts.values() for line in cart.lines}
    prices = prices_for(store=store, skus=skus)
    names = dict(Product.objects.filter(sku__in=skus).values_list("sku", "name"))
    first_time = [visit for visit in visits if visit.settled_at is None]
    for visit in visits:
        cart = carts[visit.session]
        _store_cart(visit=visit, cart=cart, held=held.get(visit.session, []), prices=prices, names=names, now=now)
    metrics.count_visits_settled(statuses=[visit.status for visit in first_time])
    return visits


def _store_cart(
    *,
    visit: Visit,
    cart: engine.Cart,
    held: list[str],
    prices: dict[str, list[pricing.PriceVersion]],
    names: dict[str, str],
    now: datetime,
) -> None:
    priced = pricing.price_cart(cart.lines, prices=prices)
    reasons = (
        list(cart.reasons)
        + [f"{sku}: no price in {visit.store.currency} at that time" for sku in priced.unpriced]
        + held
    )
    final = visit.settled_at is not None
    if final and not _changed(visit, priced) and visit.review_reasons == reasons:
        return
    replace_lines(visit=visit, priced=priced, names=names, source=VisitLine.Source.ENGINE)
    visit.currency = visit.store.currency
    visit.subtotal, visit.tax, visit.total = priced.subtotal, priced.tax, priced.total
    visit.review_reasons = reasons
    visit.cart_version += 1
    visit.settled_at = visit.settled_at or now
    visit.updated_at = now
    if reasons:
        visit.status = Visit.Status.NEEDS_REVIEW
        enqueue_on_commit("notify.visit_needs_review", tenant_id=visit.tenant_id, visit_id=visit.pk)
    elif ChargeInstruction.objects.filter(visit=visit).exists():
        instruct_difference(visit, reason="late events changed the cart")
    else:
        instruct_first_charge(visit)
    visit.save()


def replace_lines(
    *,
    visit: Visit,
    priced: pricing.PricedCart,
    names: dict[str, str],
    source: str,
    evidence: dict[str, list[str]] | None = None,
) -> None:
    """Write a visit's cart lines anew from a priced cart (evidence from the lines, or given per sku)."""
    VisitLine.objects.filter(visit=visit).delete()
    VisitLine.objects.bulk_create(
        [
            VisitLine(
                tenant_id=visit.tenant_id,
                visit=visit,
                sku=line.sku,
                name=names.get(line.sku, line.sku),
                qty=line.qty,
                unit_price=line.unit_price,
                amount=line.amount,
                tax_rate=line.tax_rate,
                tax=line.tax,
                confidence=line.confidence,
                evidence=list(line.evidence) if evidence is None else evidence.get(line.sku, []),
                source=source,
            )
            for line in priced.lines
        ]
    )


def _changed(visit: Visit, priced: pricing.PricedCart) -> bool:
    current = sorted(VisitLine.objects.filter(visit=visit).values_list("sku", "qty"))
    return current != sorted((line.sku, line.qty) for line in priced.lines)


def _next_sequence(visit: Visit) -> int:
    last = ChargeInstruction.objects.filter(visit=visit).aggregate(n=Max("sequence"))["n"]
    return (last or 0) + 1


def instruct_first_charge(visit: Visit) -> None:
    """The cart is decided: capture its total, or release the hold when there is nothing to charge."""
    if visit.total > 0:
        kind, reason, status = ChargeInstruction.Kind.CAPTURE, "cart total", Visit.Status.CHARGED
    else:
        kind, reason, status = ChargeInstruction.Kind.RELEASE, "empty cart", Visit.Status.NO_CHARGE
    ChargeInstruction.objects.create(
        tenant_id=visit.tenant_id,
        visit=visit,
        sequence=_next_sequence(visit),
        kind=kind,
        amount=visit.total,
        currency=visit.currency,
        reason=reason,
    )
    visit.charged_total = visit.total
    visit.status = status
    _hand_to_payments(visit)


def instruct_difference(visit: Visit, *, reason: str) -> None:
    """A final visit's cart changed: charge the difference, or refund it.

    A visit whose payment failed (even if late events sent it to review since) stays failed while money is
    owed: its charge is retried (only failed visits are), and the difference is moved after it.
    """
    difference = visit.total - visit.charged_total
    if difference:
        ChargeInstruction.objects.create(
            tenant_id=visit.tenant_id,
            visit=visit,
            sequence=_next_sequence(visit),
            kind=ChargeInstruction.Kind.ADJUST,
            amount=difference,
            currency=visit.currency,
            reason=reason,
        )
    visit.charged_total = visit.total
    if visit.total > 0:
        failed = visit.payment_status == Visit.PaymentStatus.FAILED
        visit.status = Visit.Status.PAYMENT_FAILED if failed else Visit.Status.CHARGED
    else:
        visit.status = Visit.Status.REFUNDED if difference < 0 else Visit.Status.NO_CHARGE
    _hand_to_payments(visit)


def _hand_to_payments(visit: Visit) -> None:
    """Payments (billing) moves the money once this transaction commits."""
    enqueue_on_commit("payments.settle_visit", tenant_id=visit.tenant_id, visit_id=visit.pk)


def stores_with_visits_settling() -> list[int]:
    """Ids of the stores (platform-wide) that have visits waiting to settle."""
    return list(
        Visit.objects.filter(status=Visit.Status.SETTLING)
        .values("store_id")
        .annotate(first=Min("exited_at"))
        .values_list("store_id", flat=True)
    )
