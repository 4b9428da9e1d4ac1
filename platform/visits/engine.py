"""The cart engine: from a store's events to one cart per visit, by fusing cameras and shelf scales.

Pure functions over plain data — no ORM, no clock — so that the same events, in any order and
however often they arrive, give the same carts, and so that every rule can be tested directly.

How the evidence is read (spec/event-stream.md, "Meaning"):

* A camera action (`item.picked` / `item.returned`) says *who* (a session, with a confidence and
  alternatives) and *where* (a bin). A shelf weight change on the same bin within a few seconds
  says *what and how many*: k × the unit weight confirms k items of the product whose weight
  matches — which also catches a put-back into another product's bin and a camera `sku` that
  differs from the bin's product. When two actions on one bin are seconds apart, each takes the
  weight change that is the count its camera saw.
* On a bin whose scale works, a camera action with no matching weight change is weak evidence:
  nothing is charged for it; if the camera was sure, a person looks.
* Attribution the camera was unsure of (low confidence, or an alternative close behind) is never
  charged on the camera's word: charging someone for another shopper's item is the worst error
  there is. It is settled only by certain evidence — just one of the candidates was in the store;
  a put-back can only be made by someone holding the item, so a candidate who later puts that
  product back without having taken it otherwise took it, and a put-back the camera hesitated
  over belongs to the only candidate holding what the scale says came back. Otherwise a person
  looks at every candidate's visit.
* A weight change no camera saw is charged to the only shopper in the store, and a put-back no
  camera saw is credited to the only shopper holding that product. Otherwise any shopper in the
  store can have made it: a person looks at each of their visits, when they are few enough to ask
  (`FEW_ENOUGH_TO_ASK`), unless a later put-back settles it as above. Being seen elsewhere, or
  not being seen, proves nothing about who took an item, so it is never used to choose.
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
CLEAR_MARGIN = 0.3
ALTERNATIVE_WORTH_A_LOOK = 0.2
SURE_CAMERA = 0.9
ONLY_SHOPPER_CONFIDENCE = 0.97
# A weight change no camera saw, with more shoppers than this in the store, is not worth that many
# reviews: the item is left uncharged (a missed item) rather than sending every visit to a person.
FEW_ENOUGH_TO_ASK = 5
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


def _weighs_as_seen(action: _Action, weight: _Weight, store: StoreModel) -> bool:
    """Whether the weight change is exactly the `qty` items the camera saw, of the product it saw or the bin holds."""
    bin_ = store.bin_at(action.bin, action.ts)
    for sku in (action.sku, bin_.sku if bin_ else None):
        product = store.products.get(sku) if sku else None
        if product is not None and _units(weight.delta_g, product) == action.qty:
            return True
    return False


def _match_weights(actions: list[_Action], weights: list[_Weight], store: StoreModel) -> dict[str, _Weight]:
    """Pair each camera action with a weight change of its bin close in time, one-to-one.

    Pairs whose weight is the count the camera saw go first, then the nearest in time: when two
    shoppers take from one bin seconds apart, "two items" belongs with the camera that saw two.
    """
    by_bin: dict[str, list[_Weight]] = defaultdict(list)
    for weight in weights:
        by_bin[weight.bin].append(weight)
    pairs: list[tuple[bool, float, str, str, _Weight]] = []
    for action in actions:
        for weight in by_bin.get(action.bin, ()):
            if action.ts - WEIGHT_BEFORE <= weight.ts <= action.ts + WEIGHT_AFTER and (weight.delta_g < 0) == (
                action.sign > 0
            ):
                gap = abs((weight.ts - action.ts).total_seconds())
                agrees = _weighs_as_seen(action, weight, store)
                pairs.append((not agrees, gap, action.event_id, weight.event_id, weight))
    pairs.sort(key=lambda p: p[:4])
    matched: dict[str, _Weight] = {}
    used: set[str] = set()
    for _disagrees, _gap, action_id, weight_id, weight in pairs:
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


def _candidates(action: _Action) -> list[str]:
    """The visits the camera says may have done it: its best candidate, then alternatives worth a look."""
    return [action.session] + [s for s, c in action.alternatives if c >= ALTERNATIVE_WORTH_A_LOOK]


def _product_for(
    action: _Action, bin_: Bin, weight: _Weight | None, store: StoreModel, held: Mapping[str, int]
) -> tuple[str | None, int, bool]:
    """Which product moved and how many: the scale decides when there is one, else the camera.

    A pick is of the product the camera saw or the bin holds; a put-back can be of anything the
    shopper holds (an item put back into another product's bin). Among the products the weight
    matches, one that makes the count the camera saw goes first. The third value says the scale
    only roughly agreed with what the camera saw (a noisy weighing): then the line's confidence is
    capped so that it is charged only when everything else is sure.
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
    counts = []
    for sku in candidates:
        product = store.products.get(sku) if sku else None
        if product is not None and (count := _units(weight.delta_g, product)):
            counts.append((sku, count))
    for sku, count in counts:
        if count == action.qty:
            return sku, count, False
    if counts:
        return counts[0][0], counts[0][1], False
    seen = store.products.get(action.sku or bin_.sku)
    if seen is not None and _units(weight.delta_g, seen, slack=LOOSE_WEIGHT_SLACK) == action.qty:
        return seen.sku, action.qty, True
    return None, 0, False


@dataclass
class _Open:
    """Items that certainly moved (a scale weighed them) but whose taker is one of several visits."""

    event_id: str
    ts: datetime
    sku: str
    qty: int
    candidates: tuple[str, ...]
    evidence: tuple[str, ...]
    reason: str
    ask: tuple[str, ...]
    taken_by: str | None = None


class _Fusion:
    """Reads a store's camera actions and unattributed weight changes in time order, into movements."""

    def __init__(
        self,
        store: StoreModel,
        spans: Mapping[str, tuple[datetime, datetime | None]],
        reports: Sequence[tuple[datetime, str, str]],
        threshold: float,
    ) -> None:
        self.store, self.spans, self.reports, self.threshold = store, spans, reports, threshold
        self.findings = _Findings()
        self.held: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        self.open: list[_Open] = []

    def present(self, ts: datetime) -> list[str]:
        return sorted(s for s in self.spans if _present(self.spans, s, ts))

    def move(
        self, session: str, sku: str, qty: int, confidence: float, ts: datetime, evidence: tuple[str, ...]
    ) -> None:
        self.held[session][sku] += qty
        self.findings.movements.append(_Movement(session, sku, qty, confidence, ts, evidence))

    def may_hold(self, session: str) -> dict[str, int]:
        """What a visit holds for certain, plus what it may hold through items whose taker is still open."""
        holding = dict(self.held[session])
        for item in self.open:
            if item.taken_by is None and session in item.candidates:
                holding[item.sku] = holding.get(item.sku, 0) + item.qty
        return holding

    def open_for(self, session: str, sku: str) -> list[_Open]:
        return [o for o in self.open if o.taken_by is None and o.sku == sku and session in o.candidates]

    def close(self, item: _Open, session: str, confidence: float, because: str) -> None:
        """The taker of an open item is known now: `because` (an event id) could only be theirs if they took it."""
        item.taken_by = session
        self.move(session, item.sku, item.qty, confidence, item.ts, (*item.evidence, because))

    # -- camera actions ---------------------------------------------------------------------------------

    def action(self, action: _Action, weight: _Weight | None) -> None:
        findings = self.findings
        bin_ = self.store.bin_at(action.bin, action.ts)
        if bin_ is None:
            findings.flag(action.session, f"bin {action.bin} is not in the layout of that time ({action.event_id})")
            return
        scale = bin_.sensor is not None and _sensor_works(bin_.sensor, action.ts, self.reports)
        if scale and weight is None:
            if action.confidence >= SURE_CAMERA:
                findings.flag(
                    action.session,
                    f"a camera saw items move at bin {action.bin} but its scale did not ({action.event_id})",
                )
            return
        if not scale:
            weight = None
        attributed = self.who(action, bin_, weight, scale)
        if attributed is None:
            return
        session, attributed_confidence = attributed
        sku, qty, loose = _product_for(action, bin_, weight, self.store, self.may_hold(session))
        if sku is None or qty == 0:
            findings.flag(session, f"the weight at bin {action.bin} matches no product ({action.event_id})")
            return
        confidence = attributed_confidence if scale and not loose else min(attributed_confidence, SURE_CAMERA)
        evidence = (action.event_id, weight.event_id) if weight is not None else (action.event_id,)
        if action.sign < 0:
            self.explain_return(session, sku, qty, confidence, action.event_id)
        self.move(session, sku, action.sign * qty, confidence, action.ts, evidence)

    def who(self, action: _Action, bin_: Bin, weight: _Weight | None, scale: bool) -> tuple[str, float] | None:
        """Who an action is charged to and how sure we are, or None when it is left open or goes to a person.

        A hesitant camera is helped only by certain evidence: when just one of its candidates was in
        the store at that moment, it was that one; a put-back can only be made by someone who holds
        the item. Not being seen somewhere proves nothing, so it is never used to choose between shoppers.
        """
        if _clear(action, self.threshold if scale else SURE_CAMERA):
            return action.session, action.confidence
        candidates = _candidates(action)
        in_store = [s for s in candidates if _present(self.spans, s, action.ts)]
        if len(in_store) == 1 and len(candidates) > 1:
            return in_store[0], ONLY_SHOPPER_CONFIDENCE
        if weight is not None and self.present(action.ts) == [action.session]:
            return action.session, ONLY_SHOPPER_CONFIDENCE
        asked = tuple(sorted(in_store or candidates))
        reason = f"unsure who took or returned items at bin {action.bin} ({action.event_id})"
        if weight is not None and len(asked) > 1:
            if action.sign < 0:
                holder = self.only_holder(action, bin_, weight, asked)
                if holder is not None:
                    return holder, ONLY_SHOPPER_CONFIDENCE
            else:
                sku, qty, loose = _product_for(action, bin_, weight, self.store, {})
                if sku is not None and qty and not loose:
                    evidence = (action.event_id, weight.event_id)
                    self.open.append(_Open(action.event_id, action.ts, sku, qty, asked, evidence, reason, asked))
                    return None
        for session in asked:
            self.findings.flag(session, reason)
        return None

    def only_holder(self, action: _Action, bin_: Bin, weight: _Weight, candidates: Sequence[str]) -> str | None:
        """The one candidate who holds what the scale says came back (others neither hold nor may hold it)."""
        holders, possible = [], []
        for session in candidates:
            sku, qty, loose = _product_for(action, bin_, weight, self.store, self.may_hold(session))
            if sku is None or loose:
                continue
            if self.held[session].get(sku, 0) >= qty:
                holders.append(session)
            elif self.may_hold(session).get(sku, 0) > 0:
                possible.append(session)
        return holders[0] if len(holders) == 1 and not possible else None

    def explain_return(self, session: str, sku: str, qty: int, confidence: float, event_id: str) -> None:
        """A visit puts back more than it was known to hold: the one open item of that product it can have
        taken was its own (nobody puts back what they did not take).

        With two or more such items it stays open: the put-back says one was theirs, not which.
        """
        if self.held[session].get(sku, 0) >= qty:
            return
        candidates = self.open_for(session, sku)
        if len(candidates) == 1:
            self.close(candidates[0], session, confidence, event_id)

    # -- weight changes no camera saw ------------------------------------------------------------------

    def unseen(self, weight: _Weight) -> None:
        """Charge the only shopper who can have made it; else leave it open, to ask a person about."""
        bin_ = self.store.bin_at(weight.bin, weight.ts)
        product = self.store.products.get(bin_.sku) if bin_ else None
        if bin_ is None or product is None:
            return
        present = self.present(weight.ts)
        if weight.delta_g < 0:
            count = _units(weight.delta_g, product)
            if count == 0 or not present:
                return
            if len(present) == 1:
                self.move(present[0], product.sku, count, ONLY_SHOPPER_CONFIDENCE, weight.ts, (weight.event_id,))
                return
            reason = f"{count} × {product.sku} left bin {weight.bin} unseen by cameras ({weight.event_id})"
            ask = tuple(present) if len(present) <= FEW_ENOUGH_TO_ASK else ()
            self.open.append(
                _Open(weight.event_id, weight.ts, product.sku, count, tuple(present), (weight.event_id,), reason, ask)
            )
            return
        self.unseen_return(weight, bin_, present)

    def unseen_return(self, weight: _Weight, bin_: Bin, present: Sequence[str]) -> None:
        """Items came back that no camera saw: the weight says what; credited to the only one who held it.

        A weighing a little off still credits the only holder (a put-back can only lower the charge),
        once no product matches it exactly.
        """
        held = {sku for s in present for sku, n in self.held[s].items() if n > 0}
        products = [bin_.sku, *sorted(held - {bin_.sku})]
        for slack in (1.0, LOOSE_WEIGHT_SLACK):
            for sku in products:
                product = self.store.products.get(sku)
                count = _units(weight.delta_g, product, slack=slack) if product else 0
                holders = [s for s in present if self.held[s].get(sku, 0) >= count] if count else []
                if not holders:
                    continue
                maybe = [s for s in present if s not in holders and self.open_for(s, sku)]
                if len(holders) == 1 and not maybe:
                    self.move(holders[0], sku, -count, ONLY_SHOPPER_CONFIDENCE, weight.ts, (weight.event_id,))
                    return
                for session in holders + maybe:
                    self.findings.flag(
                        session, f"{count} × {sku} came back to bin {weight.bin} unseen ({weight.event_id})"
                    )
                return

    def finish(self) -> _Findings:
        """Items whose taker stayed open go to a person, with every visit that can have taken them."""
        for item in self.open:
            if item.taken_by is None:
                for session in item.ask:
                    self.findings.flag(session, item.reason)
        return self.findings


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
    matched = _match_weights(actions, weights, store)
    used_weights = {w.event_id for w in matched.values()}
    fusion = _Fusion(store, spans, reports, auto_charge_threshold)
    steps: list[tuple[datetime, str, _Action | _Weight]] = [(a.ts, a.event_id, a) for a in actions]
    steps += [(w.ts, w.event_id, w) for w in weights if w.event_id not in used_weights]
    for _ts, _id, step in sorted(steps, key=lambda s: (s[0], s[1])):
        if isinstance(step, _Action):
            fusion.action(step, matched.get(step.event_id))
        else:
            fusion.unseen(step)
    findings = fusion.finish()
    carts = _carts(findings, spans, auto_charge_threshold)
    wanted = set(sessions) if sessions is not None else set(spans) | {m.session for m in findings.movements}
    return {s: carts.get(s, Cart(s, (), "charge", ())) for s in sorted(wanted)}


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
