"""Settling visits: run the engine over a store's events, store carts, decide charge or review.

A visit is final once `session.ended` has arrived and the store's settling window has passed
since the exit — on the store's own event clock (the latest event it sent) or on the wall clock,
whichever is later, so that a batch upload of a past day settles at once and a quiet store's
last visits settle too. An event for a final visit reopens it: the cart is recomputed and the
difference becomes a charge instruction for payments.

The engine reads each visit with the store's latest calibration (`StoreCalibration`: what its stack's
scores mean there, and its recent visits' risks) and the licensee's overcharge risk: a visit is charged
when its risk — the chance that something on its receipt is not the shopper's, kept on the visit — fits
within the charge limit they give; otherwise it waits for a person. `visits.services.calibration_learn`
reads visits again the same way (`store_reading`, `events_by_group`, `read_carts`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Exists, Max, OuterRef, Q, Subquery
from django.utils import timezone

from catalog.models import Product, ProductPrice
from core import metrics
from core.bounded_json import UnreadableJSON
from core.tasks import enqueue_at_on_commit, enqueue_on_commit
from ingest.models import Event
from ingest.services import events_mark_unreadable
from ingest.validation import FUTURE_TOLERANCE, VISIT_SPAN
from stores.models import Device, LayoutVersion, Store
from visits import engine, lifecycle, pricing, selectors
from visits.calibration import Calibration, with_risks
from visits.models import ChargeInstruction, ReviewDecision, Visit, VisitLine
from visits.reasons import ReviewReason, ReviewReasonCode

CONTEXT_MARGIN = timedelta(minutes=5)
UNREADABLE = "_unreadable"  # the key of an event read back from its columns only (its payload cannot be read)
SETTLE_BATCH = 500
# A live visit is settled this long after its window ends, its settlings grouped to this step (few tasks per push).
SETTLE_MARGIN = timedelta(seconds=3)
SETTLE_STEP_SECONDS = 5
# A store not calibrated yet draws its charge limit from its settled visits' risks once it has this many.
COLD_POOL = 500
# How the store's stack reports (its cameras' confidence scale, its scales' timing) is read off its latest camera
# actions and scale changes up to the visits read, within a day (`stack_habits`).
HABITS_FROM_EVENTS = 4000
HABITS_LOOKBACK = timedelta(days=1)
HABIT_TYPES = ("item.picked", "item.returned", "shelf.weight_changed", "device.status")
# What settling (and a review) writes of a visit's cart; its status is `visits.lifecycle`'s to write.
CART_FIELDS = [
    "currency", "subtotal", "tax", "total", "charged_total", "review_reasons", "risk", "cart_version", "settled_at",
    "updated_at",
]  # fmt: skip


def store_layouts(*, store: Store) -> list[engine.Layout]:
    """The store's layout versions in time order (bins and gates where the layout document puts them)."""
    versions = LayoutVersion.objects.filter(store=store).order_by("effective_from")
    return [
        engine.layout_from_document(document=document, effective_from=effective_from)
        for document, effective_from in versions.values_list("document", "effective_from")
    ]


def store_model(*, store: Store) -> engine.StoreModel:
    """The store's layouts and its products' weights, age limits and unit prices, as the engine reads them: the
    price in the store's currency in force now (what an unseen item would recover, weighed against what a look
    costs; 0 for a product with no price there)."""
    layouts = store_layouts(store=store)
    versions: dict[str, list[pricing.PriceVersion]] = defaultdict(list)
    rows = ProductPrice.objects.filter(currency=store.currency).order_by("product__sku", "effective_from")
    for sku, *version in rows.values_list("product__sku", "effective_from", "unit_price", "tax_rate"):
        versions[sku].append(pricing.PriceVersion(*version))
    at = timezone.now()
    products = {
        sku: engine.Product(
            sku,
            float(weight),
            float(tolerance),
            min_age or 0,
            price.unit_price if (price := pricing.price_at(versions.get(sku, ()), at)) else 0,
        )
        for sku, weight, tolerance, min_age in Product.objects.values_list(
            "sku", "unit_weight_g", "weight_tolerance_g", "min_age"
        )
    }
    return engine.StoreModel(layouts, products)


@dataclass(frozen=True)
class Reading:
    """How a store's events are read now: its layouts and weights, its latest calibration, its licensee's risk,
    and — for a store whose calibration has not drawn its visits' risks yet — the risks of its recent visits; what
    a person's look at an item no camera saw costs it (`Store.unseen_item_review_cost`, minor units)."""

    model: engine.StoreModel
    calibration: Calibration
    risk: float
    recent_risks: tuple[float, ...] = ()
    habits: engine.StackHabits = field(default_factory=engine.StackHabits)
    unseen_review_cost: int = 0


def store_reading(*, store: Store, visits: Sequence[Visit]) -> Reading:
    """What the engine needs to read this store's visits, fetched once per settling (or learning) run.

    The charge limit comes from the risks of the store's recent visits: those its latest calibration drew, or,
    before it has any, those settling stored on its visits — from enough of them (`COLD_POOL`) on, they are the
    calibration's; with fewer, `read_store_carts` adds the risks of the visits it reads. How the store's stack
    reports is read up to the last of `visits` to end (`stack_habits`).
    """
    latest = selectors.calibration_latest(store=store)
    model = selectors.calibration_model(latest)
    recent: tuple[float, ...] = ()
    if not model.risks:
        recent = selectors.recent_visit_risks(store=store)
        if len(recent) >= COLD_POOL:
            model, recent = with_risks(model, recent), ()
    ends = [at for visit in visits if (at := visit.exited_at or visit.last_event_at) is not None]
    layouts_and_products = store_model(store=store)
    until = max(ends) + CONTEXT_MARGIN if ends else timezone.now()
    habits = stack_habits(store=store, until=until, model=layouts_and_products)
    return Reading(
        layouts_and_products, model, float(store.overcharge_risk), recent, habits, store.unseen_item_review_cost
    )


def stack_habits(*, store: Store, until: datetime, model: engine.StoreModel | None = None) -> engine.StackHabits:
    """How the store's stack reports (`engine.StackHabits`: its cameras' confidence scale, its scales' timing, what
    its scales taught of its cameras' lone picks), read off its latest camera actions, scale changes and device
    reports up to `until` (within `HABITS_LOOKBACK`, the partitions of that day and the one before). The same for
    every group of visits a settling run reads, however few events each has, and for a day uploaded whole, what the
    engine finds in that day's events."""
    latest = Event.objects.filter(
        store=store,
        type__in=HABIT_TYPES,
        ts__gt=until - HABITS_LOOKBACK,
        ts__lte=until,
    ).order_by("-ts")
    rows = latest.values_list("ts", "payload", "event_id", "type", "session")[:HABITS_FROM_EVENTS]
    events = [event for row in rows if UNREADABLE not in (event := _as_read(*row))]
    return engine.stack_habits(events=events, store=model or store_model(store=store))


VisitGroup = tuple[list[Visit], list[dict[str, Any]]]


def events_by_group(*, store: Store, visits: Sequence[Visit]) -> Iterator[VisitGroup]:
    """The visits in groups that overlap in time, each with the store's events around it (see `_events_around`)."""
    for group in _together_in_time(visits):
        yield group, _events_around(store, group)


def read_carts(*, groups: Iterable[VisitGroup], reading: Reading) -> dict[str, engine.Cart]:
    """The engine's cart of every visit of these groups, each group read from its own readable events."""
    carts: dict[str, engine.Cart] = {}
    for group, events in groups:
        carts |= engine.infer_carts(
            events=[event for event in events if UNREADABLE not in event],
            store=reading.model,
            calibration=reading.calibration,
            risk=reading.risk,
            sessions=[visit.session for visit in group],
            habits=reading.habits,
            unseen_review_cost=reading.unseen_review_cost,
        )
    return carts


def read_store_carts(*, groups: Sequence[VisitGroup], reading: Reading) -> dict[str, engine.Cart]:
    """The carts of these groups' visits, decided against one charge limit.

    The engine shares the risk budget among the visits it reads when the calibration has no visit risks of its
    own; a group is only the few visits in the store at one time, so for a store with few visits settled yet they
    are read twice: once for their risks, then with those (and the stored ones) as the pool of the charge limit.
    """
    if reading.calibration.risks:
        return read_carts(groups=groups, reading=reading)
    first = read_carts(groups=groups, reading=reading)
    pool = [*reading.recent_risks, *(cart.risk for cart in first.values() if cart.payer is None)]
    return read_carts(groups=groups, reading=replace(reading, calibration=with_risks(reading.calibration, pool)))


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
            ts__gte=since - VISIT_SPAN,
            ts__lte=until + VISIT_SPAN,
        )
        .exclude(ts__gte=since, ts__lte=until)
        .values_list(*columns)
    )
    rows += _device_reports_before(store, since, columns)
    return [_as_read(*row) for row in rows]


def _device_reports_before(store: Store, since: datetime, columns: tuple[str, ...]) -> list[tuple[Any, ...]]:
    """Each device's latest health report before `since` (the engine reads a device's status from its latest one).

    On PostgreSQL, where the events table holds months of reports in as many partitions, it is looked for where it
    can be: in the `VISIT_SPAN` before `since`; else at the time of the device's latest report as recorded on the
    device, when that is before `since`; only for a device that reported neither there nor then (silent for a day
    before `since`, heard again after it) through every partition before `since`. A device never heard to report
    has none."""
    reports = Event.objects.filter(store=store, type="device.status", ts__lt=since)
    if connection.vendor != "postgresql":
        return list(reports.values_list(*columns))
    rows = list(
        reports.filter(ts__gte=since - VISIT_SPAN)
        .order_by("device", "-ts")
        .distinct("device")
        .values_list(*columns, "device")
    )
    recorded = dict(
        Device.objects.filter(store=store, status_changed_at__isnull=False).values_list("code", "status_changed_at")
    )
    left = {code: at for code, at in recorded.items() if code not in {row[-1] for row in rows}}
    hinted = {code: at for code, at in left.items() if at < since - VISIT_SPAN}
    if hinted:
        at_hint = reports.filter(device__in=hinted, ts__in=set(hinted.values())).values_list(*columns, "device")
        rows += [row for row in at_hint if hinted[row[-1]] == row[0]]
        left = {code: at for code, at in left.items() if code not in {row[-1] for row in rows}}
    if left:
        latest = reports.filter(device=OuterRef("code")).order_by("-ts").values("ts")[:1]
        devices = Device.objects.filter(store=store, code__in=left).annotate(at=Subquery(latest))
        found = {(code, at) for code, at in devices.values_list("code", "at") if at is not None}
        if found:
            searched = reports.filter(ts__in={at for _, at in found}, device__in={code for code, _ in found})
            rows += [row for row in searched.values_list(*columns, "device") if (row[-1], row[0]) in found]
    return [row[:-1] for row in rows]


def _as_read(ts: datetime, payload: Any, event_id: str, kind: str, session: str | None) -> dict[str, Any]:
    """An event as the engine reads it; one whose stored payload cannot be read, as what its columns say of it."""
    if isinstance(payload, UnreadableJSON):
        return {UNREADABLE: payload.reason, "id": event_id, "type": kind, "session": session, "_ts": ts}
    return {**payload, "_ts": ts}


def _held_back(store: Store, visits: Sequence[Visit], events: list[dict[str, Any]]) -> dict[str, list[ReviewReason]]:
    """Review reasons for the visits an unreadable event bears on: its own visit, or for an event of no visit (a
    scale, a device), the visits in the store at its time. The cart is worked out without it; a person decides."""
    unreadable = [event for event in events if UNREADABLE in event]
    if not unreadable:
        return {}
    events_mark_unreadable(store=store, events=unreadable)
    held: dict[str, list[ReviewReason]] = defaultdict(list)
    for event in unreadable:
        text = f"event of {event['_ts']:%Y-%m-%d %H:%M:%S} UTC cannot be read: {event[UNREADABLE]} ({event['id']})"
        reason = ReviewReason(ReviewReasonCode.UNREADABLE_EVENT, text, (event["id"],))
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
    """The store's own time: the latest event it has sent. Looked for from when its devices were last heard of (ingest
    records it) to the furthest ahead an event is accepted, so that on PostgreSQL only the partitions of those days
    are read."""
    events = Event.objects.filter(store=store)
    heard = Device.objects.filter(store=store).aggregate(at=Max("last_seen_at"))["at"]
    if heard is not None:  # the store's devices were last heard of then: its latest event is then or after
        recent = events.filter(ts__gte=heard - VISIT_SPAN, ts__lte=timezone.now() + FUTURE_TOLERANCE)
        latest: datetime | None = recent.aggregate(at=Max("ts"))["at"]
        if latest is not None:
            return latest
    latest = events.aggregate(at=Max("ts"))["at"]
    return latest


def exit_timeout() -> timedelta:
    return timedelta(minutes=settings.VISIT_EXIT_TIMEOUT_MINUTES)


def visits_close_without_exit(*, store: Store, clock: datetime | None) -> int:
    """Close the open visits no exit arrived for and that have sent nothing for `VISIT_EXIT_TIMEOUT_MINUTES` on the
    store's own clock (the latest event it sent: a day uploaded late is not closed by the wall clock while its
    exits may still be in a chunk to come). Each is closed at its last event and settles like any other; a person
    checks a cart it holds (`EXIT_NOT_SEEN`). A group waiting for such a companion settles with it. Returns how many."""
    if clock is None:
        return 0
    silent = Visit.objects.filter(
        store=store, status=Visit.Status.OPEN, exited_at__isnull=True, last_event_at__lte=clock - exit_timeout()
    )
    closed = 0
    for visit in silent.order_by("last_event_at")[:SETTLE_BATCH]:
        try:
            lifecycle.exit_not_seen(visit)
        except lifecycle.StatusChanged:
            continue  # its events were read again meanwhile: it is someone else's to decide
        closed += 1
    return closed


def due_for_settling(*, store: Store, now: datetime) -> list[Visit]:
    """Visits that have left and whose settling window has passed, on the store's clock or the wall clock; a group's
    (spec v1.1) once its last member has left and that member's window has passed. Visits silent too long without an
    exit are closed first (`visits_close_without_exit`)."""
    window = timedelta(seconds=store.settling_window_seconds)
    clock = store_clock(store=store)
    visits_close_without_exit(store=store, clock=clock)
    latest = max(clock, now) if clock is not None else now
    visits = Visit.objects.filter(store=store, status=Visit.Status.SETTLING, exited_at__lte=latest - window)
    due = list(visits.order_by("exited_at")[:SETTLE_BATCH])
    with_companions = Visit.objects.filter(store=store, group__in=[visit.session for visit in due])
    grouped = {v.payer_session for v in due if v.group} | set(with_companions.values_list("group", flat=True))
    if not grouped:
        return due
    members = Visit.objects.filter(store=store).filter(Q(session__in=grouped) | Q(group__in=grouped))
    waiting = {
        member.payer_session
        for member in members.only("session", "group", "status", "exited_at")
        if member.status == Visit.Status.OPEN
        or (member.status == Visit.Status.SETTLING and (member.exited_at or latest) > latest - window)
    }
    return [visit for visit in due if visit.payer_session not in waiting]


def with_their_groups(*, store: Store, visits: Sequence[Visit]) -> list[Visit]:
    """These visits and the other members of their groups (spec v1.1): a group's cart is read, and settled, whole —
    but a member a person already decided is left as decided."""
    payers = {visit.payer_session for visit in visits}
    if not any(visit.group for visit in visits) and not Visit.objects.filter(store=store, group__in=payers).exists():
        return list(visits)
    chosen = {visit.pk for visit in visits}
    others = (
        Visit.objects.filter(store=store)
        .filter(Q(session__in=payers) | Q(group__in=payers))
        .exclude(pk__in=chosen)
        .exclude(Exists(ReviewDecision.objects.filter(visit=OuterRef("pk"))))
    )
    return [*visits, *others]


def settle_when_due(*, store: Store, sessions: Sequence[str], now: datetime | None = None) -> list[datetime]:
    """Send `visits.settle_store` for when the settling windows of these sessions' visits end, so that a live
    visit settles on time though no event (and no periodic sweep) follows it. Visits due already are settled by
    the settling ingest sends after a stream; a settling run early or twice finds nothing due and does nothing.
    Returns the times sent for, one per `SETTLE_STEP_SECONDS` step.
    """
    now = now or timezone.now()
    window = timedelta(seconds=store.settling_window_seconds)
    exits = Visit.objects.filter(
        store=store, session__in=sessions, status=Visit.Status.SETTLING, exited_at__isnull=False
    ).values_list("exited_at", flat=True)
    times = sorted({_step_up(exited_at + window + SETTLE_MARGIN) for exited_at in exits})
    due = [at for at in times if at > now]
    for at in due:
        enqueue_at_on_commit("visits.settle_store", eta=at, tenant_id=store.tenant_id, store_id=store.pk)
    return due


def _step_up(at: datetime) -> datetime:
    """`at` rounded up to the next whole step of `SETTLE_STEP_SECONDS`."""
    seconds = -(-at.timestamp() // SETTLE_STEP_SECONDS) * SETTLE_STEP_SECONDS
    return datetime.fromtimestamp(seconds, tz=at.tzinfo)


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
    chosen = with_their_groups(store=store, visits=chosen)
    locked = Visit.objects.select_for_update(of=("self",), skip_locked=sessions is None)
    visits = list(locked.filter(pk__in=[v.pk for v in chosen]).order_by("pk"))
    if sessions is None:
        # Another worker may be settling some of these: skip the ones it holds, and any it settled meanwhile (a group
        # whole: a member held elsewhere keeps its group for that worker).
        locked_here = {visit.pk for visit in visits}
        held_elsewhere = {visit.payer_session for visit in chosen if visit.pk not in locked_here}
        settling = {v.payer_session for v in visits if v.status == Visit.Status.SETTLING}
        visits = [visit for visit in visits if visit.payer_session in settling - held_elsewhere]
        if not visits:
            return []
    groups = list(events_by_group(store=store, visits=visits))
    held: dict[str, list[ReviewReason]] = defaultdict(list)
    for group, events in groups:
        for session, reasons in _held_back(store, group, events).items():
            held[session] += reasons
    carts = read_store_carts(groups=groups, reading=store_reading(store=store, visits=visits))
    for session, cart in carts.items():  # what bears on a companion's cart bears on its payer's
        if cart.payer is not None and session in held:
            held[cart.payer] += held.pop(session)
    skus = {line.sku for cart in carts.values() for line in cart.lines}
    prices = prices_for(store=store, skus=skus)
    names = dict(Product.objects.filter(sku__in=skus).values_list("sku", "name"))
    first_time = [visit for visit in visits if visit.settled_at is None]
    for visit in visits:
        cart = carts[visit.session]
        _store_cart(visit=visit, cart=cart, held=held.get(visit.session, []), prices=prices, names=names, now=now)
    metrics.count_visits_settled(statuses=[lifecycle.decision_of(visit) for visit in first_time])
    return visits


def _store_cart(
    *,
    visit: Visit,
    cart: engine.Cart,
    held: list[ReviewReason],
    prices: dict[str, list[pricing.PriceVersion]],
    names: dict[str, str],
    now: datetime,
) -> None:
    priced = pricing.price_cart(cart.lines, prices=prices)
    unpriced = [
        ReviewReason(ReviewReasonCode.NO_PRICE, f"{sku}: no price in {visit.store.currency} at that time", sku=sku)
        for sku in priced.unpriced
    ]
    no_exit = []
    if visit.exit_inferred and cart.lines:  # an empty cart has nothing to check
        text = (
            f"no exit was recorded: the visit was closed at its last event after "
            f"{settings.VISIT_EXIT_TIMEOUT_MINUTES} min without one"
        )
        no_exit.append(ReviewReason(ReviewReasonCode.EXIT_NOT_SEEN, text, session=visit.session))
    reasons = (
        [reason.as_json() for reason in (*cart.reasons, *unpriced, *held, *no_exit)]
        if cart.payer is None
        else []  # a companion's items are on its payer's receipt, reviewed and charged there
    )
    final = visit.settled_at is not None
    if final and not _changed(visit, priced) and visit.review_reasons == reasons:
        if visit.risk != cart.risk:
            visit.risk = cart.risk
            visit.save(update_fields=["risk"])
        return
    replace_lines(visit=visit, priced=priced, names=names, source=VisitLine.Source.ENGINE)
    visit.currency = visit.store.currency
    visit.subtotal, visit.tax, visit.total = priced.subtotal, priced.tax, priced.total
    visit.review_reasons = reasons
    visit.risk = cart.risk
    visit.cart_version += 1
    visit.settled_at = visit.settled_at or now
    visit.updated_at = now
    if reasons:
        lifecycle.sent_to_review(visit)
        enqueue_on_commit("notify.visit_needs_review", tenant_id=visit.tenant_id, visit_id=visit.pk)
    elif ChargeInstruction.objects.filter(visit=visit).exists():
        instruct_difference(visit, reason="late events changed the cart")
    else:
        instruct_first_charge(visit)
    visit.save(update_fields=CART_FIELDS)


def replace_lines(
    *,
    visit: Visit,
    priced: pricing.PricedCart,
    names: dict[str, str],
    source: str,
    evidence: dict[str, list[str]] | None = None,
    taken_by: dict[str, list[str]] | None = None,
) -> None:
    """Write a visit's cart lines anew from a priced cart (evidence and takers from the lines, or given per sku)."""
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
                taken_by=list(line.taken_by) if taken_by is None else taken_by.get(line.sku, []),
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
    """The cart is decided: capture its total, or release the hold when there is nothing to charge. The visit awaits
    its payment until payments records Stripe's answer (`visits.lifecycle`)."""
    if visit.total > 0:
        kind, reason = ChargeInstruction.Kind.CAPTURE, "cart total"
    else:
        kind, reason = ChargeInstruction.Kind.RELEASE, "empty cart"
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
    lifecycle.cart_decided(visit)
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
    lifecycle.cart_decided(visit)
    _hand_to_payments(visit)


def _hand_to_payments(visit: Visit) -> None:
    """Payments (billing) moves the money once this transaction commits."""
    enqueue_on_commit("payments.settle_visit", tenant_id=visit.tenant_id, visit_id=visit.pk)


def stores_with_visits_settling(*, now: datetime | None = None) -> list[int]:
    """Ids of the stores (platform-wide) that have visits waiting to settle, or open visits silent longer than the exit
    timeout on the wall clock (whether they are closed is judged on the store's clock, `visits_close_without_exit`)."""
    silent_since = (now or timezone.now()) - exit_timeout()
    waiting = Q(status=Visit.Status.SETTLING) | Q(
        status=Visit.Status.OPEN, exited_at__isnull=True, last_event_at__lte=silent_since
    )
    return list(Visit.objects.filter(waiting).values_list("store_id", flat=True).distinct())
