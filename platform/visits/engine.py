"""The cart engine: from a store's events to one cart per visit, by fusing cameras and shelf scales.

Pure functions over plain data — no ORM, no clock — so that the same events, in any order and
however often they arrive, give the same carts, and so that every rule can be tested directly.

How the evidence is read (spec/event-stream.md, "Meaning"):

* A camera action (`item.picked` / `item.returned`) says *who* (a session, with a confidence and
  alternatives) and *where* (a bin). A shelf weight change on the same bin within a few seconds
  says *what and how many*: k × the unit weight confirms k items of the product whose weight
  matches — which also catches a put-back into another product's bin and a camera `sku` that
  differs from the bin's product.
* On a bin whose scale works, a camera action with no matching weight change is weak evidence:
  nothing is charged for it; if the camera was sure, a person looks.
* A weight change no camera saw is attributed to the only shopper who can have made it (the only
  one in the store, or the only one seen at that fixture around then); otherwise a person looks.
* Attribution the camera was unsure of (low confidence, or an alternative close behind) is never
  charged automatically: charging someone for another shopper's item is the worst error there is.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

WEIGHT_BEFORE = timedelta(seconds=3)
WEIGHT_AFTER = timedelta(seconds=6)
NEAR_FIXTURE = timedelta(seconds=90)
CLEAR_MARGIN = 0.3
ALTERNATIVE_WORTH_A_LOOK = 0.2
SURE_CAMERA = 0.9
UNSEEN_BY_CAMERA_CONFIDENCE = 0.85
ONLY_SHOPPER_CONFIDENCE = 0.97
NEAR_ZONE_UNSEEN = timedelta(minutes=3)
FEW_ENOUGH_TO_ASK = 3
LOOSE_WEIGHT_SLACK = 2.0


@dataclass(frozen=True, slots=True)
class Product:
    sku: str
    unit_weight_g: float
    tolerance_g: float


@dataclass(frozen=True, slots=True)
class Bin:
    code: str
    sku: str
    sensor: str | None
    fixture: str
    zone: str


@dataclass(frozen=True)
class Layout:
    """A layout version as the engine needs it: bins by code, from `effective_from` on."""

    effective_from: datetime
    bins: Mapping[str, Bin]


@dataclass(frozen=True)
class StoreModel:
    """What the engine knows of the store: layout versions in time order, and the catalog's weights."""

    layouts: Sequence[Layout]
    products: Mapping[str, Product]
    _starts: list[datetime] = field(default_factory=list, repr=False)

    def __post_init__(self) -> None:
        self._starts.extend(layout.effective_from for layout in self.layouts)

    def bin_at(self, code: str, ts: datetime) -> Bin | None:
        index = bisect.bisect_right(self._starts, ts) - 1
        return self.layouts[index].bins.get(code) if index >= 0 else None


@dataclass(frozen=True)
class CartLine:
    sku: str
    qty: int
    confidence: float
    first_seen: datetime
    evidence: tuple[str, ...]


@dataclass(frozen=True)
class Cart:
    session: str
    lines: tuple[CartLine, ...]
    decision: str  # "charge" or "review"
    reasons: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class _Action:
    event_id: str
    ts: datetime
    sign: int  # +1 picked, -1 returned
    session: str
    bin: str
    qty: int
    confidence: float
    alternatives: tuple[tuple[str, float], ...]
    sku: str | None


@dataclass(frozen=True, slots=True)
class _Weight:
    event_id: str
    ts: datetime
    bin: str
    sensor: str
    delta_g: float


@dataclass
class _Movement:
    """Items that moved for one session: + taken, − put back."""

    session: str
    sku: str
    qty: int
    confidence: float
    ts: datetime
    evidence: tuple[str, ...]


@dataclass
class _Findings:
    movements: list[_Movement] = field(default_factory=list)
    reasons: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))

    def flag(self, session: str, reason: str) -> None:
        self.reasons[session].add(reason)


def _read(
    events: Iterable[Mapping[str, Any]],
) -> tuple[list[_Action], list[_Weight], dict[str, tuple[datetime, datetime | None]], list[tuple[datetime, str, str]]]:
    """Split deduplicated, time-ordered events into camera actions, weight changes, visit spans, device reports."""
    unique: dict[str, Mapping[str, Any]] = {}
    for event in events:
        unique.setdefault(event["id"], event)
    ordered = sorted(unique.values(), key=lambda e: (e["_ts"], e["id"]))
    actions: list[_Action] = []
    weights: list[_Weight] = []
    entered: dict[str, datetime] = {}
    exited: dict[str, datetime] = {}
    reports: list[tuple[datetime, str, str]] = []
    for event in ordered:
        kind, ts = event["type"], event["_ts"]
        if kind in ("item.picked", "item.returned"):
            alternatives = tuple(
                sorted(
                    ((a["session"], float(a["confidence"])) for a in event.get("alternatives") or []),
                    key=lambda a: (-a[1], a[0]),
                )
            )
            actions.append(
                _Action(
                    event_id=event["id"],
                    ts=ts,
                    sign=1 if kind == "item.picked" else -1,
                    session=event["session"],
                    bin=event["bin"],
                    qty=int(event.get("qty", 1)),
                    confidence=float(event["confidence"]),
                    alternatives=alternatives,
                    sku=event.get("sku"),
                )
            )
        elif kind == "shelf.weight_changed":
            weights.append(_Weight(event["id"], ts, event["bin"], event["device"], float(event["delta_g"])))
        elif kind == "session.started":
            entered[event["session"]] = min(ts, entered.get(event["session"], ts))
        elif kind == "session.ended":
            exited[event["session"]] = max(ts, exited.get(event["session"], ts))
        elif kind == "device.status":
            reports.append((ts, event["device"], event["status"]))
    spans = {s: (entered[s], exited.get(s)) for s in entered}
    return actions, weights, spans, reports


def _sensor_works(sensor: str, ts: datetime, reports: Sequence[tuple[datetime, str, str]]) -> bool:
    """A scale counts as working at `ts` unless its latest report before then said offline or degraded."""
    latest = "online"
    for at, device, status in reports:
        if at > ts:
            break
        if device == sensor:
            latest = status
    return latest == "online"


def _units(delta_g: float, product: Product, *, slack: float = 1.0) -> int:
    """How many units of `product` a weight change of `delta_g` is (0 when it matches no whole number)."""
    count = round(abs(delta_g) / product.unit_weight_g)
    if count == 0:
        return 0
    allowed = slack * product.tolerance_g * max(1.0, count**0.5)
    return count if abs(abs(delta_g) - count * product.unit_weight_g) <= allowed else 0


def _match_weights(actions: list[_Action], weights: list[_Weight], store: StoreModel) -> dict[str, _Weight]:
    """Pair each camera action with the weight change of its bin nearest in time (one-to-one, by time)."""
    by_bin: dict[str, list[_Weight]] = defaultdict(list)
    for weight in weights:
        by_bin[weight.bin].append(weight)
    pairs: list[tuple[float, str, str, _Action, _Weight]] = []
    for action in actions:
        for weight in by_bin.get(action.bin, ()):
            if action.ts - WEIGHT_BEFORE <= weight.ts <= action.ts + WEIGHT_AFTER and (weight.delta_g < 0) == (
                action.sign > 0
            ):
                gap = abs((weight.ts - action.ts).total_seconds())
                pairs.append((gap, action.event_id, weight.event_id, action, weight))
    pairs.sort(key=lambda p: (p[0], p[1], p[2]))
    matched: dict[str, _Weight] = {}
    used: set[str] = set()
    for _gap, action_id, weight_id, _action, weight in pairs:
        if action_id in matched or weight_id in used:
            continue
        matched[action_id] = weight
        used.add(weight_id)
    return matched


def _clear(action: _Action, threshold: float) -> bool:
    runner_up = action.alternatives[0][1] if action.alternatives else 0.0
    return action.confidence >= threshold and action.confidence - runner_up >= CLEAR_MARGIN


def _present(spans: Mapping[str, tuple[datetime, datetime | None]], session: str, ts: datetime) -> bool:
    span = spans.get(session)
    return span is not None and span[0] <= ts and (span[1] is None or ts <= span[1])


def _who(
    action: _Action, threshold: float, spans: Mapping[str, tuple[datetime, datetime | None]], findings: _Findings
) -> tuple[str, float] | None:
    """Who an action is charged to and how sure we are, or None when it must go to a person.

    A hesitant camera is helped only by certain evidence: when just one of its candidates was in
    the store at that moment, it was that one. Not being seen somewhere proves nothing, so it is
    never used to choose between shoppers.
    """
    if _clear(action, threshold):
        return action.session, action.confidence
    candidates = [action.session] + [s for s, c in action.alternatives if c >= ALTERNATIVE_WORTH_A_LOOK]
    in_store = [s for s in candidates if _present(spans, s, action.ts)]
    if len(in_store) == 1 and len(candidates) > 1:
        return in_store[0], ONLY_SHOPPER_CONFIDENCE
    reason = f"unsure who took or returned items at bin {action.bin} ({action.event_id})"
    for session in in_store or candidates:
        findings.flag(session, reason)
    return None


def _product_for(
    action: _Action, bin_: Bin, weight: _Weight | None, store: StoreModel, held: Mapping[str, int]
) -> tuple[str | None, int, bool]:
    """Which product moved and how many: the scale decides when there is one, else the camera.

    The third value says the scale only roughly agreed with what the camera saw (a noisy weighing):
    then the line's confidence is capped so that it is charged only when everything else is sure.
    """
    if action.sign > 0:
        candidates = [action.sku, bin_.sku] if action.sku and action.sku != bin_.sku else [bin_.sku]
    else:
        in_cart = sorted(sku for sku, qty in held.items() if qty > 0)
        candidates = [sku for sku in (action.sku, bin_.sku) if sku in in_cart]
        candidates += [sku for sku in in_cart if sku not in candidates]
        candidates += [sku for sku in (action.sku, bin_.sku) if sku and sku not in candidates]
    if weight is None:
        return (action.sku or bin_.sku), action.qty, False
    for sku in candidates:
        product = store.products.get(sku)
        if product is not None and (count := _units(weight.delta_g, product)):
            return sku, count, False
    seen = store.products.get(action.sku or bin_.sku)
    if seen is not None and _units(weight.delta_g, seen, slack=LOOSE_WEIGHT_SLACK) == action.qty:
        return seen.sku, action.qty, True
    return None, 0, False


def infer_carts(
    *,
    events: Iterable[Mapping[str, Any]],
    store: StoreModel,
    auto_charge_threshold: float,
    sessions: Iterable[str] | None = None,
) -> dict[str, Cart]:
    """The cart of every visit in `events` (or of `sessions` only), with the decision to charge or review.

    `events` are the store's raw events (each with `_ts`, its parsed timestamp) around these visits:
    the visits' own, and the other visits' and the scales' near the same bins and times.
    """
    actions, weights, spans, reports = _read(events)
    findings = _Findings()
    matched = _match_weights(actions, weights, store)
    used_weights = {w.event_id for w in matched.values()}
    held: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))

    for action in actions:
        bin_ = store.bin_at(action.bin, action.ts)
        if bin_ is None:
            findings.flag(action.session, f"bin {action.bin} is not in the layout of that time ({action.event_id})")
            continue
        scale = bin_.sensor is not None and _sensor_works(bin_.sensor, action.ts, reports)
        weight = matched.get(action.event_id)
        if scale and weight is None:
            if action.confidence >= SURE_CAMERA:
                findings.flag(
                    action.session,
                    f"a camera saw items move at bin {action.bin} but its scale did not ({action.event_id})",
                )
            continue
        attributed = _who(action, SURE_CAMERA if not scale else auto_charge_threshold, spans, findings)
        if attributed is None:
            continue
        session, attributed_confidence = attributed
        sku, qty, loose = _product_for(action, bin_, weight if scale else None, store, held[session])
        if sku is None or qty == 0:
            findings.flag(session, f"the weight at bin {action.bin} matches no product ({action.event_id})")
            continue
        confidence = attributed_confidence if scale and not loose else min(attributed_confidence, SURE_CAMERA)
        evidence = (action.event_id, weight.event_id) if weight is not None and scale else (action.event_id,)
        held[session][sku] += action.sign * qty
        findings.movements.append(_Movement(session, sku, action.sign * qty, confidence, action.ts, evidence))

    _attribute_unseen(weights, used_weights, actions, spans, store, findings, held)
    carts = _carts(findings, spans, auto_charge_threshold)
    wanted = set(sessions) if sessions is not None else set(spans) | {m.session for m in findings.movements}
    return {s: carts.get(s, Cart(s, (), "charge", ())) for s in sorted(wanted)}


def _seen_around(
    actions: list[_Action],
    present: list[str],
    store: StoreModel,
    ts: datetime,
    within: timedelta,
    *,
    fixture: str | None = None,
    zone: str | None = None,
) -> list[str]:
    """Visits in the store that a camera saw at this fixture (or zone) within `within` of `ts`."""
    found = set()
    for action in actions:
        if action.session not in present or abs(action.ts - ts) > within:
            continue
        bin_ = store.bin_at(action.bin, action.ts)
        if bin_ is not None and (bin_.fixture == fixture if fixture else bin_.zone == zone):
            found.add(action.session)
    return sorted(found)


def _attribute_unseen(
    weights: list[_Weight],
    used: set[str],
    actions: list[_Action],
    spans: Mapping[str, tuple[datetime, datetime | None]],
    store: StoreModel,
    findings: _Findings,
    held: dict[str, dict[str, int]],
) -> None:
    """Weight changes no camera saw: charge the only shopper who can have made them, else ask a person."""
    for weight in weights:
        if weight.event_id in used:
            continue
        bin_ = store.bin_at(weight.bin, weight.ts)
        product = store.products.get(bin_.sku) if bin_ else None
        if bin_ is None or product is None:
            continue
        present = sorted(
            s for s, (start, end) in spans.items() if start <= weight.ts and (end is None or weight.ts <= end)
        )
        nearby = _seen_around(actions, present, store, weight.ts, NEAR_FIXTURE, fixture=bin_.fixture) or _seen_around(
            actions, present, store, weight.ts, NEAR_ZONE_UNSEEN, zone=bin_.zone
        )
        if weight.delta_g < 0:
            count = _units(weight.delta_g, product)
            if count == 0:
                continue
            if len(present) == 1:
                session, confidence = present[0], ONLY_SHOPPER_CONFIDENCE
            elif len(nearby) == 1:
                session, confidence = nearby[0], UNSEEN_BY_CAMERA_CONFIDENCE
            else:
                for session in present if len(present) <= FEW_ENOUGH_TO_ASK else nearby:
                    findings.flag(
                        session, f"{count} × {product.sku} left bin {weight.bin} unseen by cameras ({weight.event_id})"
                    )
                continue
            held[session][product.sku] += count
            findings.movements.append(_Movement(session, product.sku, count, confidence, weight.ts, (weight.event_id,)))
        else:
            holders = [s for s in (nearby if len(present) > 1 else present) if held[s].get(product.sku, 0) > 0]
            count = _units(weight.delta_g, product)
            if len(holders) == 1 and count:
                held[holders[0]][product.sku] -= count
                findings.movements.append(
                    _Movement(
                        holders[0], product.sku, -count, UNSEEN_BY_CAMERA_CONFIDENCE, weight.ts, (weight.event_id,)
                    )
                )
            elif count:
                for session in holders:
                    findings.flag(
                        session, f"{count} × {product.sku} came back to bin {weight.bin} unseen ({weight.event_id})"
                    )


def _carts(
    findings: _Findings, spans: Mapping[str, tuple[datetime, datetime | None]], threshold: float
) -> dict[str, Cart]:
    by_session: dict[str, list[_Movement]] = defaultdict(list)
    for movement in findings.movements:
        by_session[movement.session].append(movement)
    carts: dict[str, Cart] = {}
    for session in sorted(set(by_session) | set(findings.reasons) | set(spans)):
        reasons = set(findings.reasons.get(session, ()))
        if session not in spans:
            reasons.add("no session.started for this visit")
        lines = []
        by_sku: dict[str, list[_Movement]] = defaultdict(list)
        for movement in by_session.get(session, []):
            by_sku[movement.sku].append(movement)
        for sku in sorted(by_sku):
            moves = by_sku[sku]
            qty = sum(m.qty for m in moves)
            if qty < 0:
                reasons.add(f"more {sku} put back than taken")
            if qty <= 0:
                continue
            confidence = min(m.confidence for m in moves)
            if confidence < threshold:
                reasons.add(f"{sku}: confidence {confidence:.2f} is under the store's {threshold:.2f}")
            evidence = tuple(sorted({e for m in moves for e in m.evidence}))
            lines.append(CartLine(sku, qty, round(confidence, 4), min(m.ts for m in moves), evidence))
        carts[session] = Cart(session, tuple(lines), "review" if reasons else "charge", tuple(sorted(reasons)))
    return carts
