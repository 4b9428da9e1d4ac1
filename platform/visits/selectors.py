"""Reads on visits: receipts as the licensee API and the admin show them."""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Count, Exists, F, Max, Min, OuterRef, Prefetch, Q, QuerySet, Subquery
from django.shortcuts import get_object_or_404
from django.utils import timezone

from billing.payments.models import Shopper
from core.formatting import format_share
from ingest.models import Event
from stores.models import Bin, LayoutVersion, Store
from stores.selectors import layout_in_force
from visits import lifecycle
from visits.calibration import KEPT_RISKS, LEARN_AFTER_REVIEWS, RISK_SETTINGS, Calibration, RiskOption, with_risks
from visits.calibration import default as default_calibration
from visits.models import ReviewDecision, StoreCalibration, Visit, VisitLine
from visits.reasons import ReviewReasonCode, event_ids_of, reasons_of, reasons_served

CAMERA_TYPES = ("item.picked", "item.returned")
SCALE_TYPE = "shelf.weight_changed"
DEVICE_TYPE = "device.status"
EVIDENCE_MARGIN = timedelta(minutes=2)
EVIDENCE_LIMIT = 400
HEALTH_LOOKBACK = timedelta(days=1)
# A store's calibration learns from the visits of the last `LEARN_FROM`; again once `LEARN_AFTER_REVIEWS` more were
# decided by people, or after `LEARN_EVERY` with any: a licensee's reviews pay off the same day.
LEARN_FROM = timedelta(days=30)
LEARN_EVERY = timedelta(days=1)


def visit_list(
    *, store: Store, status: str | None = None, since: datetime | None = None, stream_id: int | None = None
) -> QuerySet[Visit]:
    """The store's visits as the licensee API lists them; `status` is a status the API serves
    (`visits.lifecycle.served_status`)."""
    visits = Visit.objects.filter(store=store)
    if status:
        visits = visits.filter(status__in=lifecycle.stored_statuses(status))
    if since:
        visits = visits.filter(entered_at__gte=since)
    if stream_id is not None:
        visits = visits.filter(session__in=Event.objects.filter(stream_id=stream_id).values("session"))
    return _with_receipt_parts(without_companions(visits)).order_by("-entered_at", "-pk")


def without_companions(visits: QuerySet[Visit]) -> QuerySet[Visit]:
    """These visits less the companions whose payer's visit is there (spec v1.1 groups): a group is one visit, its
    payer's, whose receipt holds every member's items. A companion whose payer never entered stays its own visit."""
    payer = Visit.unscoped.filter(
        tenant_id=OuterRef("tenant_id"), store_id=OuterRef("store_id"), session=OuterRef("group")
    )
    return visits.exclude(Q(group__gt="") & Exists(payer))


def visit_get(*, store: Store, session: str) -> Visit:
    """The visit of `session` as its receipt answers for it: a companion's is its group's, on the payer's visit."""
    visit = get_object_or_404(_with_receipt_parts(Visit.objects.filter(store=store)), session=session)
    if visit.group:
        return _with_receipt_parts(Visit.objects.filter(store=store, session=visit.group)).first() or visit
    return visit


def group_members(visit: Visit) -> list[Visit]:
    """The companions who came in on this payer's card (spec v1.1 groups), in the order they entered."""
    return list(Visit.objects.filter(store_id=visit.store_id, group=visit.session).order_by("entered_at", "session"))


def group_of(visit: Visit) -> dict[str, Any] | None:
    """Who the receipt is for: the payer and its companions; None for a shopper alone."""
    members = group_members(visit)
    if not members:
        return None
    return {
        "payer": visit.session,
        "members": [
            {
                "session": member.session,
                "entered_at": member.entered_at.isoformat() if member.entered_at else None,
                "exited_at": member.exited_at.isoformat() if member.exited_at else None,
            }
            for member in members
        ],
    }


def _with_receipt_parts(visits: QuerySet[Visit]) -> QuerySet[Visit]:
    return visits.prefetch_related(
        Prefetch("lines", queryset=VisitLine.objects.order_by("sku")),
        Prefetch("reviews", queryset=ReviewDecision.objects.select_related("reviewer").order_by("-decided_at")),
    )


def shopper_of(visit: Visit) -> Shopper | None:
    """The registered shopper whose entry token the visit came in with, found by the token's hash."""
    if not visit.shopper_token_hash:
        return None
    return Shopper.unscoped.filter(tenant_id=visit.tenant_id, token_hash=visit.shopper_token_hash).first()


def receipt(visit: Visit) -> dict[str, Any]:
    """The receipt of docs/event-stream.md ("Receipt") and docs/api.md, for one visit."""
    reviews = list(visit.reviews.all())
    review: dict[str, Any] | None = None
    if visit.review_reasons or reviews:
        decision = reviews[0] if reviews else None
        review = {
            **reasons_served(visit.review_reasons),
            "decision": decision.action if decision else None,
            "decided_by": decision.reviewer.get_username() if decision else None,
            "decided_at": decision.decided_at.isoformat() if decision else None,
        }
    return {
        "session": visit.session,
        "shopper": shopper.pk if (shopper := shopper_of(visit)) else None,
        "status": lifecycle.served_status(visit.status),
        "entered_at": visit.entered_at.isoformat() if visit.entered_at else None,
        "exited_at": visit.exited_at.isoformat() if visit.exited_at else None,
        "lines": [
            {
                "sku": line.sku,
                "name": line.name,
                "qty": line.qty,
                "unit_price": line.unit_price,
                "amount": line.amount,
                "tax": line.tax,
                "confidence": line.confidence,
                "events": list(line.evidence),
                "taken_by": list(line.taken_by),
            }
            for line in visit.lines.all()
        ],
        "group": group_of(visit),
        "subtotal": visit.subtotal,
        "tax": visit.tax,
        "total": visit.total,
        "currency": visit.currency or visit.store.currency,
        "payment": {
            "status": None if visit.payment_status == Visit.PaymentStatus.NONE else visit.payment_status,
            "reference": visit.payment_reference or None,
            "charged": visit.paid,
            "refunded": visit.refunded,
            "balance_due": visit.balance_due if visit.status == Visit.Status.PAYMENT_FAILED else 0,
            "failure": visit.payment_failure or None,
        },
        "review": review,
        "version": visit.cart_version,
    }


# --- The evidence a reviewer looks at -------------------------------------------------------------


@dataclass(frozen=True)
class BinInfo:
    """A bin of the layout in force at the visit's entry, as a reviewer needs it."""

    code: str
    sku: str
    name: str
    sensor: str | None
    unit_weight_g: float


@dataclass
class VisitEvidence:
    """A visit's events and what happened around them on the same bins, in time order.

    `own` are the events that name the visit (as the camera's candidate or one of its alternatives,
    or its own entry and exit) — a group payer's, those naming any member of the group; `cited` the ones its
    review reasons and cart lines point to; `bins`
    the bins involved, from the layout in force at entry; `device_health` what each device last
    reported in the day before the visit ended (devices without a report are absent: the engine
    takes them as working).
    """

    events: list[Event] = field(default_factory=list)
    own: set[str] = field(default_factory=set)
    cited: set[str] = field(default_factory=set)
    bins: dict[str, BinInfo] = field(default_factory=dict)
    layout: LayoutVersion | None = None
    device_health: dict[str, str] = field(default_factory=dict)
    left_out: int = 0


def _alternative_sessions(payload: Any) -> set[str]:
    alternatives = payload.get("alternatives") if isinstance(payload, dict) else None
    if not isinstance(alternatives, list):
        return set()
    return {str(a.get("session")) for a in alternatives if isinstance(a, dict) and a.get("session") is not None}


def _bin_of(event: Event) -> str | None:
    code = event.payload.get("bin") if isinstance(event.payload, dict) else None
    return code if isinstance(code, str) else None


def visit_evidence(*, visit: Visit, margin: timedelta = EVIDENCE_MARGIN, limit: int = EVIDENCE_LIMIT) -> VisitEvidence:
    """The visit's events, plus every camera and scale event on the bins involved within `margin` of them.

    A handful of queries whatever the visit's size: its own events; the camera events during its stay
    that name it as an alternative; the events its reasons and lines cite; the surroundings on those
    bins; the device reports. At most `limit` surrounding events are kept (the nearest in time).
    """
    store = visit.store
    events = Event.objects.filter(store=store)
    evidence = VisitEvidence()
    evidence.cited = {str(e) for line in visit.lines.all() for e in line.evidence}
    evidence.cited |= set(event_ids_of(visit.review_reasons))
    members = group_members(visit)
    sessions = {visit.session, *(member.session for member in members)}  # a group's events are its payer's
    core: dict[str, Event] = {e.event_id: e for e in events.filter(session__in=sorted(sessions))}
    start = min(
        [at for at in (visit.entered_at, *(m.entered_at for m in members)) if at is not None]
        or [e.ts for e in core.values()],
        default=None,
    )
    end = max(
        [at for at in (visit.exited_at or visit.last_event_at, *(m.exited_at for m in members)) if at is not None]
        or [e.ts for e in core.values()],
        default=None,
    )
    if start is not None and end is not None:
        naming = events.filter(
            type__in=CAMERA_TYPES, ts__gte=start, ts__lte=end, payload__has_key="alternatives"
        ).exclude(session__in=sorted(sessions))
        core.update({e.event_id: e for e in naming if sessions & _alternative_sessions(e.payload)})
    evidence.own = set(core)
    missing = evidence.cited - set(core)
    if missing:
        core.update({e.event_id: e for e in events.filter(event_id__in=sorted(missing))})

    anchors: dict[str, list[datetime]] = defaultdict(list)
    for event in core.values():
        code = _bin_of(event)
        if code and event.type in (*CAMERA_TYPES, SCALE_TYPE):
            anchors[code].append(event.ts)
    around: list[Event] = []
    if anchors:
        times = [at for ats in anchors.values() for at in ats]
        nearby = events.filter(
            type__in=(*CAMERA_TYPES, SCALE_TYPE),
            ts__gte=min(times) - margin,
            ts__lte=max(times) + margin,
            payload__bin__in=sorted(anchors),
        )

        def distance(event: Event) -> timedelta:
            return min(abs(event.ts - at) for at in anchors[_bin_of(event) or ""])

        around = [e for e in nearby if e.event_id not in core and _bin_of(e) in anchors and distance(e) <= margin]
        if len(around) > limit:
            evidence.left_out = len(around) - limit
            around = sorted(around, key=lambda e: (distance(e), e.event_id))[:limit]

    at = visit.entered_at or start or end
    evidence.layout = layout_in_force(store=store, at=at) if at is not None else None
    if evidence.layout is not None and anchors:
        rows = Bin.objects.filter(layout=evidence.layout, code__in=sorted(anchors)).values_list(
            "code", "sku", "product__name", "sensor__code", "product__unit_weight_g"
        )
        evidence.bins = {
            code: BinInfo(code, sku, name, sensor, float(weight)) for code, sku, name, sensor, weight in rows
        }

    devices = {e.device for e in [*core.values(), *around] if e.device}
    devices |= {b.sensor for b in evidence.bins.values() if b.sensor}
    reports: list[Event] = []
    if devices and start is not None and end is not None:
        reports = list(
            events.filter(type=DEVICE_TYPE, device__in=sorted(devices), ts__gte=start - margin, ts__lte=end + margin)
        )
    if end is not None:
        evidence.device_health = _device_health_at(events, at=end)
    everything = {e.event_id: e for e in [*core.values(), *around, *reports]}
    evidence.events = sorted(everything.values(), key=lambda e: (e.ts, e.event_id))
    return evidence


def _device_health_at(events: QuerySet[Event], *, at: datetime) -> dict[str, str]:
    """Device code → the status it last reported in the day up to `at` (two queries, bounded by the day)."""
    window = events.filter(type=DEVICE_TYPE, ts__gt=at - HEALTH_LOOKBACK, ts__lte=at)
    latest = window.values("device").annotate(last=Max("ts")).order_by().values_list("device", "last")
    condition = Q()
    for device, last in latest:
        condition |= Q(device=device, ts=last)
    if not condition:
        return {}
    health: dict[str, str] = {}
    for device, payload in window.filter(condition).order_by("ts", "event_id").values_list("device", "payload"):
        health[device] = str(payload.get("status", "unknown")) if isinstance(payload, dict) else "unknown"
    return health


# --- Review figures for the dashboard -------------------------------------------------------------


@dataclass(frozen=True)
class StoreReviewFigures:
    store_id: int
    settled: int
    sent_to_review: int
    waiting: int
    oldest_waiting_since: datetime | None
    median_to_decision: timedelta | None

    @property
    def review_rate(self) -> float | None:
        return self.sent_to_review / self.settled if self.settled else None


REVIEW_PERIOD = timedelta(days=7)  # the review figures of the dashboards and a store's page


def review_figures_by_store(*, since: datetime) -> dict[int, StoreReviewFigures]:
    """Per store: visits settled since `since` (by exit), how many of them went to a person, the median
    time from exit to the first decision, and what waits now. Three aggregate queries, whatever the volume
    (the decision times are fetched one row per decided visit to take their median portably)."""
    decided = ReviewDecision.objects.filter(visit=OuterRef("pk"))
    settled = {
        row["store_id"]: (row["settled"], row["sent"])
        for row in Visit.objects.filter(settled_at__isnull=False, exited_at__gte=since)
        .values("store_id")
        .annotate(
            settled=Count("id"),
            sent=Count("id", filter=Q(status=Visit.Status.NEEDS_REVIEW) | Q(Exists(decided))),
        )
        .order_by()
    }
    waiting = {
        row["store_id"]: (row["n"], row["oldest"])
        for row in Visit.objects.filter(status=Visit.Status.NEEDS_REVIEW)
        .values("store_id")
        .annotate(n=Count("id"), oldest=Min("exited_at"))
        .order_by()
    }
    durations: dict[int, list[float]] = defaultdict(list)
    first_decisions = (
        ReviewDecision.objects.filter(visit__exited_at__gte=since)
        .values("visit_id", "visit__store_id", "visit__exited_at")
        .annotate(first=Min("decided_at"))
        .order_by()
    )
    for row in first_decisions:
        durations[row["visit__store_id"]].append(max(0.0, (row["first"] - row["visit__exited_at"]).total_seconds()))
    figures = {}
    for store_id in sorted(set(settled) | set(waiting) | set(durations)):
        count, sent = settled.get(store_id, (0, 0))
        queue, oldest = waiting.get(store_id, (0, None))
        seconds = durations.get(store_id)
        figures[store_id] = StoreReviewFigures(
            store_id=store_id,
            settled=count,
            sent_to_review=sent,
            waiting=queue,
            oldest_waiting_since=oldest,
            median_to_decision=timedelta(seconds=statistics.median(seconds)) if seconds else None,
        )
    return figures


# --- Stores' calibrations -------------------------------------------------------------------------


def calibration_latest(*, store: Store) -> StoreCalibration | None:
    """The store's latest calibration, the one settling reads (None before the store's first)."""
    latest: StoreCalibration | None = StoreCalibration.objects.filter(store=store).order_by("-number").first()
    return latest


def calibration_history(*, store: Store) -> QuerySet[StoreCalibration]:
    """The store's calibrations, newest first."""
    return StoreCalibration.objects.filter(store=store).order_by("-number")


def calibration_model(row: StoreCalibration | None) -> Calibration:
    """What a stored calibration says (the default before a store's first)."""
    return Calibration.from_json(row.calibration) if row is not None else default_calibration()


def charge_limit(*, store: Store, latest: StoreCalibration | None) -> float:
    """The highest visit risk the store charges without a person now: its latest calibration's limit at the
    risk the store sets today (the risk itself before the store's first calibration)."""
    return calibration_model(latest).charge_limit(float(store.overcharge_risk))


def recent_visit_risks(*, store: Store) -> tuple[float, ...]:
    """The risks settling gave the store's latest settled visits (`KEPT_RISKS` at most), newest first: what a store
    not calibrated yet draws its charge limit from."""
    settled = Visit.objects.filter(store=store, risk__isnull=False).order_by("-settled_at", "-pk")
    return tuple(settled.values_list("risk", flat=True)[:KEPT_RISKS])


@dataclass(frozen=True)
class RiskOptions:
    """What each risk setting (`RISK_SETTINGS` and the store's own, lowest first) would do to the store's recent
    visits: drawn from the `visits` risks its latest calibration read (`learnt`), or — before it has drawn any —
    from the risks settling gave its latest settled visits."""

    risk: float  # the store's own setting
    visits: int
    learnt: bool
    options: tuple[RiskOption, ...]

    @property
    def current(self) -> RiskOption:
        return next(option for option in self.options if option.risk == self.risk)


def risk_options(*, store: Store, latest: StoreCalibration | None) -> RiskOptions:
    """What the store's risk setting, and the other usual ones, would do to its recent visits (`RiskOptions`)."""
    model = calibration_model(latest)
    learnt = bool(model.risks)
    if not learnt:
        model = with_risks(model, recent_visit_risks(store=store))
    risk = float(store.overcharge_risk)
    options = tuple(model.risk_option(setting) for setting in sorted({*RISK_SETTINGS, risk}))
    return RiskOptions(risk, len(model.risks), learnt, options)


def reviews_since(*, store: Store, since: datetime | None) -> int:
    """Visits of the store a person decided since `since` (all of them when None)."""
    decisions = ReviewDecision.objects.filter(visit__store=store)
    if since is not None:
        decisions = decisions.filter(decided_at__gt=since)
    return int(decisions.values("visit_id").distinct().count())


def stores_due_for_learning(*, now: datetime | None = None) -> list[tuple[int, int, int]]:
    """(store id, tenant id, number of its latest calibration — 0 for none) of every store, platform-wide, that has
    visits people decided since its latest calibration: `LEARN_AFTER_REVIEWS` of them, or any once that calibration
    is `LEARN_EVERY` old (or the store has none). A store's first day of reviews thus teaches its later visits the
    same day, not the next. One query: the decisions of the last `LEARN_FROM` (none older teaches anything), each
    against its store's latest calibration."""
    now = now or timezone.now()
    latest = StoreCalibration.objects.filter(store_id=OuterRef("visit__store_id")).order_by("-number")
    rows = (
        ReviewDecision.objects.filter(decided_at__gte=now - LEARN_FROM)
        .annotate(learnt_at=Subquery(latest.values("created_at")[:1]), number=Subquery(latest.values("number")[:1]))
        .filter(Q(learnt_at__isnull=True) | Q(decided_at__gt=F("learnt_at")))
        .values("visit__store_id", "tenant_id", "learnt_at", "number")
        .annotate(reviewed=Count("visit_id", distinct=True))
        .values_list("visit__store_id", "tenant_id", "learnt_at", "number", "reviewed")
        .order_by("visit__store_id")
    )
    return [
        (store_id, tenant_id, number or 0)
        for store_id, tenant_id, learnt_at, number, reviewed in rows
        if reviewed >= LEARN_AFTER_REVIEWS or learnt_at is None or learnt_at <= now - LEARN_EVERY
    ]


@dataclass(frozen=True)
class ReviewOutcomes:
    """What people did to the carts the engine proposed, over a store's visits decided in a period (each visit's
    latest decision): kept them as proposed, took off items the engine had put on the receipt (it would have
    overcharged), put on items it had missed, or voided the visit. A visit may both lose and gain items."""

    decided: int
    kept: int
    removed: int
    added: int
    voided: int


def review_outcomes(*, store: Store, since: datetime) -> ReviewOutcomes:
    """What people did to the carts the engine proposed, over the store's visits decided since `since`."""
    latest: dict[int, tuple[str, list[Any], list[Any]]] = {}
    decisions = ReviewDecision.objects.filter(visit__store=store, decided_at__gte=since).order_by("decided_at", "pk")
    for visit_id, action, before, after in decisions.values_list("visit_id", "action", "lines_before", "lines_after"):
        latest[visit_id] = (action, before, after)
    kept = removed = added = voided = 0
    for action, before, after in latest.values():
        if action == ReviewDecision.Action.VOID:
            voided += 1
            continue
        proposed, decided = _units(before), _units(after)
        kept += proposed == decided
        removed += any(qty > decided.get(sku, 0) for sku, qty in proposed.items())
        added += any(qty > proposed.get(sku, 0) for sku, qty in decided.items())
    return ReviewOutcomes(decided=len(latest), kept=kept, removed=removed, added=added, voided=voided)


def _units(lines: list[Any]) -> dict[str, int]:
    units: dict[str, int] = defaultdict(int)
    for line in lines:
        units[str(line["sku"])] += int(line["qty"])
    return {sku: qty for sku, qty in units.items() if qty}


# --- Where a store's reviews come from ------------------------------------------------------------

REVIEW_CAUSES_PERIOD = timedelta(days=30)  # the calibration page's "Where reviews come from"
# Bins without a scale that sent at least this share of a store's reviewed visits, and this many visits (one or two
# say nothing of a bin): the calibration page and the API advise scales under them.
ADVISE_SCALES_FROM = 0.25
ADVISE_SCALES_AFTER = 3
ADVISED_BINS = 3


@dataclass(frozen=True)
class BinReviewCauses:
    """One bin's part in a store's review: the visits sent to a person whose reasons name the bin (each once), and
    per kind of reason the visits it named the bin in."""

    bin: str
    visits: int
    by_reason: dict[ReviewReasonCode, int]
    has_scale: bool | None  # a scale under it in the store's current layout; None: not in that layout
    sku: str
    product: str
    share: float  # of all the store's visits sent to a person in the period

    @property
    def reasons_most_first(self) -> list[tuple[ReviewReasonCode, int]]:
        """Its kinds of reason with their visits, the one naming the bin in most first (`ReviewReasonCode`'s order
        on a tie)."""
        order = list(ReviewReasonCode)
        return sorted(self.by_reason.items(), key=lambda item: (-item[1], order.index(item[0])))

    @property
    def main_reason(self) -> ReviewReasonCode:
        """The kind of reason that named the bin in most visits."""
        return self.reasons_most_first[0][0]


@dataclass(frozen=True)
class ReviewCauses:
    """Where a store's visits sent to a person in a period come from: the bins their reasons name, most visits
    first (among equals, those without a scale); how many visits named a bin without a scale (in the current layout),
    and how many named no bin."""

    reviewed: int
    bins: list[BinReviewCauses]
    without_scale: int
    naming_no_bin: int


def review_causes_by_bin(*, store: Store, since: datetime) -> ReviewCauses:
    """The store's visits sent to a person that exited since `since`, by the bins their reasons name. One query over
    the visits (their reasons only), counted here; the bins' scales and products from the layout in force now."""
    layout = layout_in_force(store=store)
    bins_now = Bin.objects.filter(layout=layout) if layout is not None else Bin.objects.none()
    in_layout = {
        code: (sensor_id is not None, sku, name)
        for code, sensor_id, sku, name in bins_now.values_list("code", "sensor_id", "sku", "product__name")
    }
    reviewed = without_scale = naming_no_bin = 0
    visits_of: dict[str, int] = defaultdict(int)
    by_reason: dict[str, dict[ReviewReasonCode, int]] = defaultdict(lambda: defaultdict(int))
    sku_named: dict[str, str] = {}
    stored = (
        Visit.objects.filter(store=store, exited_at__gte=since)
        .exclude(review_reasons=[])
        .values_list("review_reasons", flat=True)
    )
    for stored_reasons in stored.iterator(chunk_size=2000):
        reviewed += 1
        naming = {(reason.bin, reason.code): reason.sku for reason in reasons_of(stored_reasons) if reason.bin}
        bins = {bin_code for bin_code, _ in naming}
        for (bin_code, code), sku in naming.items():
            by_reason[bin_code][code] += 1
            if sku:
                sku_named.setdefault(bin_code, sku)
        for bin_code in bins:
            visits_of[bin_code] += 1
        naming_no_bin += not bins
        without_scale += any(code in in_layout and not in_layout[code][0] for code in bins)
    rows = [
        BinReviewCauses(
            bin=code,
            visits=count,
            by_reason=dict(by_reason[code]),
            has_scale=in_layout[code][0] if code in in_layout else None,
            sku=in_layout[code][1] if code in in_layout else sku_named.get(code, ""),
            product=in_layout[code][2] if code in in_layout else sku_named.get(code, ""),
            share=count / reviewed,
        )
        for code, count in visits_of.items()
    ]
    rows.sort(key=lambda row: (-row.visits, row.has_scale is not False, row.bin))  # among equals, unweighed first
    return ReviewCauses(reviewed=reviewed, bins=rows, without_scale=without_scale, naming_no_bin=naming_no_bin)


def scale_advice(causes: ReviewCauses) -> str:
    """One sentence when bins without a scale send a large share of the reviewed visits: where a scale would help;
    "" otherwise. As the calibration page and the API's review causes give it."""
    if not causes.reviewed:
        return ""
    share = causes.without_scale / causes.reviewed
    unweighed = [row.bin for row in causes.bins if row.has_scale is False][:ADVISED_BINS]
    if share < ADVISE_SCALES_FROM or causes.without_scale < ADVISE_SCALES_AFTER or not unweighed:
        return ""
    return (
        f"Bins without a scale sent {format_share(share)} of reviewed visits: a scale under {_listed(unweighed)} "
        "would let the engine weigh those takes."
    )


def _listed(words: Sequence[str]) -> str:
    """Words as people list them: "A", "A and B", "A, B and C"."""
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} and {words[-1]}"
