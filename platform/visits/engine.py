"""The cart engine: from a store's events to one cart per visit, by fusing cameras, scales and whereabouts.

Pure functions over plain data — no ORM, no clock — so that the same events, in any order and
however often they arrive, give the same carts, and so that every rule can be tested directly.

How the evidence is read (spec/event-stream.md, "Meaning"):

* **What moved** is the scale's word where a working scale sits under the bin: a weight change on
  the bin within a few seconds of a camera action, k × a unit weight, confirms k items of the
  product it matches (a put-back into another product's bin, a camera `sku` that differs from the
  bin's). Two actions seconds apart can share one change of their summed count (scales merge quick
  changes). A camera action no weight change confirms is a phantom, not charged — unless the
  scale has gone quiet (it missed two actions in a row), when the camera alone is read.
* **Who moved it** is a probability over the visits that could have, not a yes/no:
  - the camera's margin (its winner's confidence minus its runner-up's) read through the store's
    calibration (`visits.calibration`): what this stack's scores have meant in this store;
  - whereabouts: where each candidate was seen before and after (its own actions, its entry and
    exit) — a shopper who would have had to cross the store faster than anyone walks was not
    here, and one seen at this very spot moments before or after likely was;
  - busy hands: a candidate a camera gave an action at another bin seconds before or after was
    busy there, and less likely than a rival the camera lists whose hands were free (or than the
    winner, when the camera did not name it);
  - what each holds: only a visit holding the product can put one back;
  - groups (spec v1.1): members of one group are one payer, so doubt between them is no doubt.
  The only shopper in the store did it, whatever the camera says.
* **A weight change no camera saw** goes to the visit whose whereabouts put it at the bin, when one
  stands out; otherwise it stays open (a later put-back may settle it) and the few plausible
  visits are asked about, or, when too many could have, the item is left uncharged.
* **A visit's risk** is the probability that anything on its receipt is not its own. A visit is
  charged when its risk is within the store's charge limit (from the licensee's risk, see
  `Calibration.charge_limit`) and nothing on it is impossible to price or explain; otherwise a
  person looks, with the reasons.

Each attribution is returned with the visit (`Cart.attributions`), so that the store's calibration
can be learned from the visits that people decide (`labelled_samples`).
"""

from __future__ import annotations

import bisect
import heapq
import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from functools import cache, partial
from itertools import pairwise
from operator import attrgetter, itemgetter
from typing import Any, NamedTuple

from core.garbage import garbage_collection_paused
from core.versions import version_at
from visits.calibration import (
    KIND_TITLES,
    Calibration,
    Curve,
    Evidence,
    Sample,
    VisitSample,
    scale_taught,
    with_risks,
)
from visits.calibration import default as default_calibration
from visits.reasons import ReviewReason, ReviewReasonCode

UNSURE = ReviewReasonCode.UNSURE_TAKER

WEIGHT_BEFORE = timedelta(seconds=3)
WEIGHT_AFTER = timedelta(seconds=6)
# A store's scales may stamp their changes later (or earlier) than this: their timing is read from the store's own
# events — the delays of camera actions with one change of their bin within this search window.
SCALE_SEARCH_BEFORE = timedelta(seconds=10)
SCALE_SEARCH_AFTER = timedelta(seconds=30)
SCALE_TIMING_PAIRS = 30
SCALE_TIMING_SHARE = 0.95
SCALE_TIMING_PAD = timedelta(seconds=1.5)
LOOSE_WEIGHT_SLACK = 2.0
# A store's scales may weigh wider of the catalog than its tolerances (noise, a gain off): from this many weighings
# that make the count of the one camera action they go with, a weighing that matches no product exactly matches the
# product seen when within the `WEIGHING_SHARE` quantile of how far those were off, widened by `WEIGHING_PAD`.
WEIGHING_SHARE = 0.99
WEIGHING_PAD = 1.25
DEFAULT_RISK = 0.005
# A stack's confidence scale (`stack_confidence_scale`): in steps of this, off this many picks at least, never below.
SCALE_STEP = 0.05
SCALE_PICKS = 30
SCALE_FLOOR = 0.8
# A stack's ordinary sure pick (`stack_sure_confidence`): the `SURE_SHARE` quantile of the confidences of its picks that
# name no one else, on its scale. One below `SURE_READ` (the prior's "sure") is stretched to read as `SURE_READ`, from
# no lower than `SURE_FLOOR`: a stack that says 0.75 of what it is sure of means by 0.75 what another means by 0.95.
SURE_SHARE = 0.25
SURE_READ = 0.9
SURE_FLOOR = 0.6
# A stack names rivals (`stack_names_rivals`) when at least this share of its picks list one, off `SCALE_PICKS` picks at
# least: the tuned families' stacks name one in 13 to 32 % of their picks, a stack that never lists anyone in none.
RIVALS_NAMED_SHARE = 0.01
# Whereabouts: nobody crosses a store faster than this; a hand reaches this far; "moments" are this long.
FASTEST_WALK_M_S = 1.6
REACH_M = 1.5
MOMENTS_S = 20.0
SEEN_HERE = 3.0
SEEN_ELSEWHERE = 0.35
COULD_NOT_BE_HERE = 0.02
MOST_LIKELY_HERE = 20.0
LEAST_LIKELY_HERE = 0.05
WANDERING_M2_S = (0.2, 5.0)
# A candidate a camera gave an action at another bin within `BUSY_S` of this one was busy there: of the candidates
# the camera names (its winner, listed rivals in the store), the busy ones' chances are cut when one's hands were free;
# those it did not name are cut when busy; to `BUSY_SURELY` when the camera had no doubt of that other action.
BUSY_S = 15.0
BUSY_ELSEWHERE = 0.25
BUSY_SURELY = 0.1
# A rival the camera names for a take, whom a camera gave an action of its own at the same bin within `BUSY_S`, was at
# the bin for that one: its chance of this take is cut by this much. On the tuned families of both worlds (dev seeds),
# the winner of a doubtful take was right 91-92 % of the time with such a rival, against 70-76 % without.
AT_THE_BIN_FOR_ITS_OWN = 0.25
# A visit at least this likely to have made an action the camera was unsure of is told why, should it be reviewed;
# the visit charged for it is told when its doubt is at least `DOUBT_WORTH_NOTING`. A take others at least
# `MAY_HAVE_TAKEN` likely may have made stays doubtful until a put-back settles whose it was.
WORTH_ASKING = 0.15
DOUBT_WORTH_NOTING = 0.02
MAY_HAVE_TAKEN = 0.05
# A weight change no camera saw is asked of the visit at least this likely, by its whereabouts, to have taken it (at
# most one can be); none standing out, it stays uncharged rather than asking everyone present. On the tuned families,
# nine in ten of the visits asked from 0.9 had taken it (docs/visits.md). It is asked only when what it would recover
# (its price times that chance) is at least what the store says a person's look costs (`unseen_review_cost`).
UNSEEN_WORTH_ASKING = 0.9
# A scale that missed this many camera actions in a row, with no change in between, is read as offline.
QUIET_SCALE_MISSES = 2
# Staff putting stock on a shelf take this long after saying so: the scale's rises meanwhile are the restock.
RESTOCKING = timedelta(minutes=3)
# A store's gates and cameras keep clocks of their own, a second or two apart: a visit counts as in the store from this
# long before its entry was stamped to this long after its exit was (a take stamped just after its shopper's exit is
# theirs, not the one shopper left inside's).
GATE_CLOCK_SLACK = timedelta(seconds=2)
# A camera-only take of a bin by a visit within this long of its previous one there may be the same hand seen twice.
SEEN_TWICE = timedelta(seconds=8)
# A take only a camera saw, with nobody else in its view, that its calibration makes less likely than this, is
# read as imagined (the camera saw a hand move that took nothing): not charged, nobody asked.
LIKELY_PHANTOM = 0.5


@dataclass(frozen=True, slots=True)
class Product:
    sku: str
    unit_weight_g: float
    tolerance_g: float
    min_age: int = 0  # an age-restricted product (catalog `min_age`, spec v1.1): 18, 21, …
    unit_price: int = 0  # minor units, the price in force when the store is read (0: none known)


@dataclass(frozen=True, slots=True)
class Bin:
    code: str
    sku: str
    sensor: str | None
    fixture: str
    zone: str
    position: tuple[float, float] | None = None


@dataclass(frozen=True)
class Layout:
    """A layout version as the engine needs it: bins by code and gates' places, from `effective_from` on."""

    effective_from: datetime
    bins: Mapping[str, Bin]
    gates: Mapping[str, tuple[float, float]] = field(default_factory=dict)


@dataclass(frozen=True)
class StoreModel:
    """What the engine knows of the store: layout versions in time order, and the catalog's weights."""

    layouts: Sequence[Layout]
    products: Mapping[str, Product]
    _starts: list[datetime] = field(default_factory=list, repr=False)

    def __post_init__(self) -> None:
        self._starts.extend(layout.effective_from for layout in self.layouts)

    def layout_at(self, ts: datetime) -> Layout | None:
        """The layout in force at `ts`; a store's first layout also covers what came before it."""
        if len(self._starts) == 1:  # most stores: one layout, in force whenever
            return self.layouts[0]
        return version_at(self.layouts, self._starts, ts)

    def bin_at(self, code: str, ts: datetime) -> Bin | None:
        if len(self._starts) == 1:  # (`layout_at`, without a call: asked of every action)
            return self.layouts[0].bins.get(code)
        layout = self.layout_at(ts)
        return layout.bins.get(code) if layout else None

    def gate_at(self, code: str, ts: datetime) -> tuple[float, float] | None:
        if len(self._starts) == 1:  # (as `bin_at`: asked of every visit's entry and exit)
            return self.layouts[0].gates.get(code)
        layout = self.layout_at(ts)
        return layout.gates.get(code) if layout else None


def bin_positions(document: Mapping[str, Any]) -> dict[str, tuple[float, float]]:
    """Where each bin of a layout document stands: side by side along its fixture's longer side."""
    places: dict[str, tuple[float, float]] = {}
    for fixture in document.get("fixtures") or ():
        x, y = (float(v) for v in (fixture.get("position") or (0.0, 0.0))[:2])
        width, depth = (float(v) for v in (fixture.get("size") or (1.0, 1.0))[:2])
        bins = fixture.get("bins") or ()
        for index, item in enumerate(bins):
            share = (index + 0.5) / len(bins)
            along_width = width >= depth
            places[item["code"]] = (
                (round(x + share * width, 2), round(y + depth / 2, 2))
                if along_width
                else (round(x + width / 2, 2), round(y + share * depth, 2))
            )
    return places


def gate_positions(document: Mapping[str, Any]) -> dict[str, tuple[float, float]]:
    return {
        device["code"]: (float(device["position"][0]), float(device["position"][1]))
        for device in document.get("devices") or ()
        if device.get("kind") == "gate" and len(device.get("position") or ()) >= 2
    }


def layout_from_document(*, document: Mapping[str, Any], effective_from: datetime) -> Layout:
    """A layout version as the engine reads it, from the layout document (spec/store-api.md)."""
    places = bin_positions(document)
    bins = {
        item["code"]: Bin(
            item["code"], item["sku"], item.get("sensor"), fixture["code"], fixture["zone"], places.get(item["code"])
        )
        for fixture in document.get("fixtures") or ()
        for item in fixture.get("bins") or ()
    }
    return Layout(effective_from, bins, gate_positions(document))


def store_model_from_layout(
    *,
    layout: Mapping[str, Any],
    weights: Mapping[str, tuple[float, float]],
    since: datetime,
    ages: Mapping[str, int] | None = None,
) -> StoreModel:
    """A store with one layout document, products' (unit weight, tolerance) in grams and the minimum ages of the
    age-restricted ones."""
    ages = ages or {}
    products = {sku: Product(sku, unit, tolerance, ages.get(sku, 0)) for sku, (unit, tolerance) in weights.items()}
    return StoreModel([layout_from_document(document=layout, effective_from=since)], products)


@dataclass(frozen=True)
class CartLine:
    sku: str
    qty: int
    confidence: float
    first_seen: datetime
    evidence: tuple[str, ...]
    taken_by: tuple[str, ...] = ()  # on a group's cart, the members who took it (each its likeliest); else empty


class Attribution(NamedTuple):
    """A camera's claim about one action and what the engine made of it (what calibration learns from)."""

    event_id: str
    winner: str
    winner_payer: str
    sku: str
    qty: int
    sign: int
    evidence: Evidence
    margin: float
    assigned: str | None
    probability: float  # that the pick is `assigned`'s: who, and for a camera alone whether it happened at all
    certain: bool
    settled_by: str = ""
    rivals: bool = False  # the camera named others who may have made it


@dataclass(frozen=True)
class Cart:
    session: str
    lines: tuple[CartLine, ...]
    decision: str  # "charge" or "review"
    reasons: tuple[ReviewReason, ...]
    risk: float = 0.0
    payer: str | None = None
    attributions: tuple[Attribution, ...] = ()


# A day's actions, weight changes and sightings are read field by field many times over: slotted records (not named
# tuples, whose fields Python looks up by name on every read) keep that cheap.
@dataclass(slots=True)
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
    margin: float  # the confidence minus the runner-up's, on the stack's scale (`stack_confidence_scale`)
    # The confidence that someone it names made it, on the same scale: its winner's plus its rivals', at most 1.
    whether: float
    # Its winner's payer's margin over the likeliest other payer it names, on the same scale: the confidences it gave
    # the members of one group summed (`ConfidenceReading.payer_margin`). Who pays is what a pick decides.
    payer_margin: float
    seconds: float  # `ts` as seconds since the epoch, read once: whereabouts and busy hands are scanned by it
    in_layout: Bin | None  # its bin as the layout of its time has it (None: not in it), looked up once
    products: tuple[Product, ...]  # what it can have moved: the product its camera saw, the one its bin holds


@dataclass(slots=True)
class _Weight:
    event_id: str
    ts: datetime
    bin: str
    sensor: str
    delta_g: float
    seconds: float  # `ts` as seconds since the epoch, read once


@dataclass(slots=True)
class _Restock:
    """Staff put `qty` units on a bin (spec v1.1): the rise of its scale that follows is stock, not a put-back."""

    ts: datetime
    bin: str
    qty: int


@dataclass(slots=True)
class _Movement:
    """Items that moved for one payer: + taken, − put back; `risk` that it is not theirs. A take other payers may
    have made keeps their `chances` until a later put-back settles whose it was."""

    payer: str
    member: str
    sku: str
    qty: int
    risk: float
    ts: datetime
    evidence: tuple[str, ...]
    chances: dict[str, float] | None = None
    asked: ReviewReason | None = None  # an item no camera saw: what to ask if the visit goes to a person


class _Visits:
    """Who was in the store when, and who pays for whom."""

    def __init__(
        self,
        spans: dict[str, tuple[datetime, datetime | None]],
        payer_of: dict[str, str],
        gates: dict[str, list[tuple[datetime, str]]],
        checks: Mapping[str, list[tuple[bool, int]]] | None = None,
        strays: Mapping[str, str] | None = None,
    ) -> None:
        self.spans, self.payer_of, self.gates = spans, payer_of, gates
        self.checks = checks or {}
        self.strays = strays or {}  # companions whose `group` names no payer of the store: session -> that group
        self.members: dict[str, list[str]] = defaultdict(list)
        for member, payer in payer_of.items():
            self.members[payer].append(member)
        self._by_start = sorted(spans, key=lambda s: (spans[s][0], s))
        self._starts = [spans[s][0] - GATE_CLOCK_SLACK for s in self._by_start]
        self._last: datetime | None = None
        self._entered = 0
        self._inside: set[str] = set()
        self._leaving: list[tuple[datetime, str]] = []
        self._payers_inside: dict[str, int] = defaultdict(int)

    def payer(self, session: str) -> str:
        return self.payer_of.get(session, session)

    def old_enough(self, session: str, age: int) -> bool:
        """Whether staff checked this visit's ID (spec v1.1 `id.checked`) and it proved at least `age`."""
        return any(passed and proved >= age for passed, proved in self.checks.get(session, ()))

    def present(self, ts: datetime) -> set[str]:
        """The visits in the store at `ts`, give or take `GATE_CLOCK_SLACK` (not to be changed by the caller). Asked in
        time order (the engine reads a store's events in time order), it sweeps: visits enter as their start passes
        and leave once their end has."""
        if self._last is not None and ts < self._last:
            return {s for s in self._by_start[: bisect.bisect_right(self._starts, ts)] if self._inside_at(s, ts)}
        self._last = ts
        while self._entered < len(self._by_start) and self._starts[self._entered] <= ts:
            session = self._by_start[self._entered]
            self._inside.add(session)
            self._payers_inside[self.payer(session)] += 1
            end = self.spans[session][1]
            if end is not None:
                heapq.heappush(self._leaving, (end + GATE_CLOCK_SLACK, session))
            self._entered += 1
        while self._leaving and self._leaving[0][0] < ts:
            session = heapq.heappop(self._leaving)[1]
            self._inside.discard(session)
            payer = self.payer(session)
            self._payers_inside[payer] -= 1
            if not self._payers_inside[payer]:
                del self._payers_inside[payer]
        return self._inside

    def one_payer_present(self, ts: datetime, present: set[str]) -> bool:
        """Whether the visits in the store at `ts` (as `present` just said) all pay as one."""
        if ts == self._last:
            return len(self._payers_inside) == 1
        return len({self.payer(s) for s in present}) == 1

    def _inside_at(self, session: str, ts: datetime) -> bool:
        start, end = self.spans[session]
        return start - GATE_CLOCK_SLACK <= ts and (end is None or ts <= end + GATE_CLOCK_SLACK)


def stack_confidence_scale(confidences: Sequence[float]) -> float:
    """The confidence a stack gives the picks it is surest of: its highest, rounded up to `SCALE_STEP`, read off at
    least `SCALE_PICKS` picks (else 1.0). A vendor whose cameras never say more than 0.9 means by 0.9 what another
    means by 1.0: margins are read on the stack's own scale, so the store's curves — the prior's, before it has
    taught them anything — see a sure pick as sure. Rounded, so that one stack is read on one scale day after day
    (settling reads it once per run from the store's latest events: `settling.stack_habits`); too few picks, or one
    that says more than 0.95, leave the margins as they are, and so do two vendors' cameras in one store, the
    surer one's top counting. A stack whose surest picks say less than `SCALE_FLOOR` is not squeezed but unsure of
    everything: its margins are raised no more than from that floor."""
    if len(confidences) < SCALE_PICKS:
        return 1.0
    return max(SCALE_FLOOR, min(1.0, math.ceil(max(confidences) / SCALE_STEP - 1e-9) * SCALE_STEP))


def stack_sure_confidence(confidences: Sequence[float]) -> float:
    """What a stack says, on its own scale, of the picks it is sure of: of its picks that name no one else (the
    `confidences`), the `SURE_SHARE` quantile, rounded up to `SCALE_STEP` — `SURE_READ` or more (nothing to stretch)
    from fewer than `SCALE_PICKS`, never below `SURE_FLOOR`. A quarter: the hesitations a stack lists no rival for
    stay under it. A vendor whose sure picks say anywhere from 0.7 up has its plain picks read, before any review, as
    the sure picks they are, where its top (`stack_confidence_scale`) is at 1.0 and sets nothing right."""
    if len(confidences) < SCALE_PICKS:
        return SURE_READ
    ordered = sorted(confidences)
    quantile = ordered[int(SURE_SHARE * (len(ordered) - 1))]
    return max(SURE_FLOOR, min(SURE_READ, math.ceil(quantile / SCALE_STEP - 1e-9) * SCALE_STEP))


class ConfidenceReading(NamedTuple):
    """How a stack's confidences are read on the prior's terms: divided by its `top` (`stack_confidence_scale`), then
    stretched piecewise linearly so that its ordinary sure pick, `sure` on that scale (`stack_sure_confidence`), reads
    as `SURE_READ` — below it in proportion, above it up to 1.0."""

    top: float = 1.0
    sure: float = SURE_READ

    def read(self, confidence: float) -> float:
        scaled = min(1.0, confidence / self.top)
        if self.sure >= SURE_READ:
            return scaled
        if scaled <= self.sure:
            return scaled * SURE_READ / self.sure
        return SURE_READ + (scaled - self.sure) * (1.0 - SURE_READ) / (1.0 - self.sure)

    def margin(self, action: _Action) -> float:
        runner_up = self.read(action.alternatives[0][1]) if action.alternatives else 0.0
        return round(min(1.0, self.read(action.confidence) - runner_up), 4)

    def applied(self, action: _Action, payer_of: Mapping[str, str]) -> _Action:
        """The action with its confidences and margins read (of the confidences as its camera reported them)."""
        margin = self.margin(action)
        return replace(
            action,
            confidence=self.read(action.confidence),
            margin=margin,
            whether=self.read(action.whether),
            payer_margin=self.payer_margin(action, payer_of) if action.alternatives else margin,
        )

    def payer_margin(self, action: _Action, payer_of: Mapping[str, str]) -> float:
        """The margin of the winner's payer over the likeliest other payer an action naming others names, each payer's
        members' confidences summed (`payer_of`: member -> payer): a camera torn between members of one group is
        unsure which member made it, not whether their group did. Of `action`'s confidences as its camera reported
        them."""
        payer = payer_of.get(action.session, action.session)
        own, others = action.confidence, defaultdict[str, float](float)
        for session, confidence in action.alternatives:
            if session == action.session:
                continue
            rival = payer_of.get(session, session)
            if rival == payer:
                own += confidence
            else:
                others[rival] += confidence
        return round(min(1.0, self.read(own) - self.read(max(others.values(), default=0.0))), 4)


def _confidence_reading(actions: Sequence[_Action]) -> ConfidenceReading:
    """The reading these actions show: their top, then what their picks naming no one else say on it."""
    top = stack_confidence_scale([action.confidence for action in actions])
    lone = [min(1.0, action.confidence / top) for action in actions if action.sign > 0 and not action.alternatives]
    return ConfidenceReading(top, stack_sure_confidence(lone))


def _read(
    events: Iterable[Mapping[str, Any]], reading: ConfidenceReading | None, store: StoreModel
) -> tuple[list[_Action], list[_Weight], _Visits, list[tuple[datetime, str, str]], list[_Restock], ConfidenceReading]:
    """Split deduplicated, time-ordered events into camera actions (each with its bin in the `store`'s layout of its
    time), weight changes, visits, device reports and restocks; the actions' confidences and margins as the stack's
    confidence `reading` reads them (None: the one these events show), and that reading."""
    unique: dict[str, Mapping[str, Any]] = {}
    for event in events:
        unique.setdefault(event["id"], event)
    ordered = sorted(unique.values(), key=itemgetter("_ts", "id"))
    actions: list[_Action] = []
    weights: list[_Weight] = []
    entered: dict[str, datetime] = {}
    exited: dict[str, datetime] = {}
    payer_of: dict[str, str] = {}
    gates: dict[str, list[tuple[datetime, str]]] = defaultdict(list)
    reports: list[tuple[datetime, str, str]] = []
    restocks: list[_Restock] = []
    checks: dict[str, list[tuple[bool, int]]] = defaultdict(list)
    products_of = cache(partial(_products_of, store))  # a day's actions name a few hundred pairs
    for event in ordered:
        kind, ts = event["type"], event["_ts"]
        if kind in ("item.picked", "item.returned"):
            listed = event.get("alternatives")
            alternatives = (
                tuple(sorted(((a["session"], float(a["confidence"])) for a in listed), key=lambda a: (-a[1], a[0])))
                if listed
                else ()
            )
            confidence = float(event["confidence"])
            margin = round(confidence - (alternatives[0][1] if alternatives else 0.0), 4)
            in_layout = store.bin_at(event["bin"], ts)
            actions.append(
                _Action(
                    event["id"],
                    ts,
                    1 if kind == "item.picked" else -1,
                    event["session"],
                    event["bin"],
                    int(event.get("qty", 1)),
                    confidence,
                    alternatives,
                    event.get("sku"),
                    margin,
                    min(1.0, confidence + sum(c for _, c in alternatives)),
                    margin,
                    ts.timestamp(),
                    in_layout,
                    products_of(event.get("sku"), in_layout.sku if in_layout else None),
                )
            )
        elif kind == "shelf.weight_changed":
            weights.append(
                _Weight(event["id"], ts, event["bin"], event["device"], float(event["delta_g"]), ts.timestamp())
            )
        elif kind == "session.started":
            session = event["session"]
            entered[session] = min(ts, entered.get(session, ts))
            gates[session].append((ts, event.get("gate") or ""))
            if event.get("group") and event["group"] != session:
                payer_of[session] = event["group"]
        elif kind == "session.ended":
            session = event["session"]
            exited[session] = max(ts, exited.get(session, ts))
            gates[session].append((ts, event.get("gate") or ""))
        elif kind == "device.status":
            reports.append((ts, event["device"], event["status"]))
        elif kind == "id.checked":
            checks[event["session"]].append((event["result"] == "passed", int(event["min_age"])))
        elif kind == "shelf.restocked":
            restocks.append(_Restock(ts, event["bin"], int(event["qty"])))
    spans = {s: (entered[s], exited.get(s)) for s in entered}
    # A companion whose payer never entered (or is itself a companion) pays for itself, and is asked about.
    strays = {member: payer for member, payer in payer_of.items() if payer not in entered or payer in payer_of}
    payer_of = {member: payer for member, payer in payer_of.items() if member not in strays}
    reading = _confidence_reading(actions) if reading is None else reading
    if reading != ConfidenceReading():
        actions = [reading.applied(action, payer_of) for action in actions]
    elif payer_of:
        for action in actions:
            if action.alternatives:
                action.payer_margin = reading.payer_margin(action, payer_of)
    return actions, weights, _Visits(spans, payer_of, gates, checks, strays), reports, restocks, reading


@dataclass(frozen=True)
class ScaleTiming:
    """When a scale stamps the change that goes with a camera's action: from `before` ahead of it to `after` behind
    it, usually `typical` behind (the scale's lag, less any difference between the devices' clocks); read from
    `delays` camera actions with one change near them (none: the default)."""

    before: timedelta = WEIGHT_BEFORE
    after: timedelta = WEIGHT_AFTER
    typical: timedelta = timedelta(0)
    delays: int = 0


def read_scale_timing(
    *, cameras: Iterable[tuple[str, datetime, int]], scales: Iterable[tuple[str, datetime, int]]
) -> ScaleTiming:
    """The store's scale timing, read from its own events: each is (bin, time, +1 when items left the shelf, -1
    when they came back). A camera action with exactly one change of its bin and direction within the search
    window gives one delay; from `SCALE_TIMING_PAIRS` of them, the window widens to hold the middle
    `SCALE_TIMING_SHARE` of the delays (never narrower than the default: a store of quick scales is read as
    before), and pairs are sought nearest the median delay. Fewer delays: the default timing."""
    return _scale_timing(
        cameras=((bin_code, ts.timestamp(), direction) for bin_code, ts, direction in cameras),
        scales=((bin_code, ts.timestamp(), direction) for bin_code, ts, direction in scales),
    )


def _scale_timing(
    *, cameras: Iterable[tuple[str, float, int]], scales: Iterable[tuple[str, float, int]]
) -> ScaleTiming:
    """`read_scale_timing` of times given as seconds since the epoch (the engine has read them once already)."""
    by_bin: dict[tuple[str, int], list[float]] = defaultdict(list)
    for bin_code, seconds, direction in scales:
        by_bin[bin_code, direction].append(seconds)
    for stamps in by_bin.values():
        stamps.sort()
    earliest, latest = SCALE_SEARCH_BEFORE.total_seconds(), SCALE_SEARCH_AFTER.total_seconds()
    delays: list[float] = []
    for bin_code, now, direction in cameras:
        times = by_bin.get((bin_code, direction))
        if not times:
            continue
        first = bisect.bisect_left(times, now - earliest)
        last = bisect.bisect_right(times, now + latest, first)
        if last - first == 1:
            delays.append(times[first] - now)
    if len(delays) < SCALE_TIMING_PAIRS:
        return ScaleTiming()
    delays.sort()
    cut = (1.0 - SCALE_TIMING_SHARE) / 2
    low, high = delays[int(cut * len(delays))], delays[min(len(delays) - 1, int((1.0 - cut) * len(delays)))]
    pad = SCALE_TIMING_PAD.total_seconds()
    return ScaleTiming(
        before=max(WEIGHT_BEFORE, timedelta(seconds=min(earliest, pad - low))),
        after=max(WEIGHT_AFTER, timedelta(seconds=min(latest, high + pad))),
        typical=timedelta(seconds=delays[len(delays) // 2]),
        delays=len(delays),
    )


def _timing_of(actions: Sequence[_Action], weights: Sequence[_Weight]) -> ScaleTiming:
    return _scale_timing(
        cameras=[(a.bin, a.seconds, a.sign) for a in actions],
        scales=[(w.bin, w.seconds, -1 if w.delta_g > 0 else 1) for w in weights],
    )


# A new store's scales teach its cameras' lone picks once they have weighed this many of a kind (`StackHabits`).
SCALE_TAUGHT_PICKS = 30


@dataclass(frozen=True)
class StackHabits:
    """How a store's stack reports, read from its own events with no person's word: the scale its cameras give
    confidences on and what its sure picks say on it, its scales' timing, and — for each kind of camera-alone
    evidence — the curve its working scales taught (`scale_taught`), with how many picks taught it."""

    confidence_scale: float = 1.0
    scale_timing: ScaleTiming = field(default_factory=ScaleTiming)
    taught: Mapping[Evidence, Curve] = field(default_factory=dict)
    taught_from: Mapping[Evidence, int] = field(default_factory=dict)
    weighing_spread: float = 0.0  # how far its scales weigh off, per unit (`read_weighing_spread`; 0: unknown)
    sure_confidence: float = SURE_READ  # what its sure picks say on its scale (`stack_sure_confidence`)
    names_rivals: bool = False  # whether its cameras list the others who may have made a pick (`stack_names_rivals`)

    @property
    def confidence_reading(self) -> ConfidenceReading:
        return ConfidenceReading(self.confidence_scale, self.sure_confidence)

    def applied_to(self, calibration: Calibration) -> Calibration:
        """The calibration a store reads with: its own, or — while it has learnt nothing yet — the default with the
        curves its scales taught."""
        if calibration.has_learnt or not self.taught:
            return calibration
        return replace(calibration, curves={**calibration.curves, **self.taught})


@garbage_collection_paused()
def stack_habits(*, events: Iterable[Mapping[str, Any]], store: StoreModel) -> StackHabits:
    """The habits the store's events show (each with `_ts`): what `infer_carts` reads when it is given none, and what
    settling reads once per run from the store's latest events (`settling.stack_habits`)."""
    actions, weights, visits, reports, _, reading = _read(events, None, store)
    timing = _timing_of(actions, weights)
    matched, seen_together = _match_weights(actions, weights, store, timing, visits.payer_of)
    spread = read_weighing_spread(actions, matched, seen_together, store)
    weighed = _weighed_lone_picks(actions, weights, matched, seen_together, store, reports, spread)
    return _habits(reading, timing, weighed, spread, stack_names_rivals(actions))


def _habits(
    reading: ConfidenceReading,
    timing: ScaleTiming,
    weighed: Mapping[Evidence, list[Sample]],
    spread: float,
    names_rivals: bool,
) -> StackHabits:
    taught = {kind: scale_taught(picks) for kind, picks in weighed.items() if len(picks) >= SCALE_TAUGHT_PICKS}
    taught_from = {kind: len(weighed[kind]) for kind in taught}
    return StackHabits(reading.top, timing, taught, taught_from, spread, reading.sure, names_rivals)


def stack_names_rivals(actions: Sequence[_Action]) -> bool:
    """Whether a stack lists the others who may have made a pick: at least `RIVALS_NAMED_SHARE` of `actions` name one,
    off `SCALE_PICKS` at least (fewer say nothing: no). A camera-alone pick's doubt of who made it is then read from
    the rivals it names and the shoppers around (`_Fusion.who`), and its kind's curve only says whether it happened;
    a stack that names no one leaves that doubt unread, and the kind's curve keeps the whole of it."""
    if len(actions) < SCALE_PICKS:
        return False
    named = sum(1 for action in actions if action.alternatives)
    return named >= RIVALS_NAMED_SHARE * len(actions)


def read_weighing_spread(
    actions: Sequence[_Action], matched: Mapping[str, _Weight], seen_together: Mapping[str, int], store: StoreModel
) -> float:
    """How far the store's scales weigh from the catalog, per unit: of the weighings that go with one camera action
    and make its count of the product it saw, the `WEIGHING_SHARE` quantile of how far each was off (per unit, and
    per square root of the count as `_units` allows), widened by `WEIGHING_PAD`; 0 from fewer than
    `SCALE_TIMING_PAIRS` of them."""
    off: list[float] = []
    for action in actions:
        weight = matched.get(action.event_id)
        if weight is None or seen_together.get(weight.event_id, action.qty) != action.qty:
            continue
        bin_ = action.in_layout
        product = store.products.get(action.sku or bin_.sku) if bin_ else None
        if product is None or product.unit_weight_g <= 0:
            continue
        if round(abs(weight.delta_g) / product.unit_weight_g) == action.qty:
            grams_off = abs(abs(weight.delta_g) - action.qty * product.unit_weight_g)
            off.append(grams_off / (product.unit_weight_g * action.qty**0.5))
    if len(off) < SCALE_TIMING_PAIRS:
        return 0.0
    off.sort()
    return round(off[int(WEIGHING_SHARE * (len(off) - 1))] * WEIGHING_PAD, 4)


def _weighed_lone_picks(
    actions: Sequence[_Action],
    weights: Sequence[_Weight],
    matched: Mapping[str, _Weight],
    seen_together: Mapping[str, int],
    store: StoreModel,
    reports: Sequence[tuple[datetime, str, str]],
    spread: float,
) -> dict[Evidence, list[Sample]]:
    """The picks a working scale weighed (or would have: one that says nothing is a phantom), naming no one else, as
    the kind of evidence each would be with no scale, labelled by whether the scale confirmed it — its count too,
    for a camera that counted several, weighed as the engine weighs a pick: within the store's own `spread`
    (`read_weighing_spread`) where its scales weigh wider than the catalog's tolerance. What the store's scales say
    of how often its cameras imagine or miscount a take: the labels of the curves of camera-alone evidence, whoever
    took it. A pick its scale said nothing of while the scales of its whole fixture were silent too
    (`_silent_buses`) teaches nothing: a fixture's sensors share one bus, and a bus that drops silences them all."""
    watch = _ScaleWatch(reports)
    silenced = _silent_buses(actions, weights, matched, store)
    last_take: dict[tuple[str, str], datetime] = {}
    samples: dict[Evidence, list[Sample]] = defaultdict(list)
    # A day's lone picks hold a few dozen (kind, margin, label) triples among hundreds: one (immutable) sample each.
    made: dict[tuple[Evidence, float, bool], Sample] = {}
    for action in actions:
        bin_ = action.in_layout
        if bin_ is None:
            continue
        weight = matched.get(action.event_id)
        works = watch.heard(bin_.sensor, action.ts, weighed=weight is not None)
        if action.sign < 0:
            continue
        key = (action.session, action.bin)
        previous = last_take.get(key)
        last_take[key] = action.ts
        if not works or action.alternatives or action.event_id in silenced:
            continue
        if previous is not None and action.ts - previous <= SEEN_TWICE:
            kind = Evidence.CAMERA_REPEATED
        else:
            kind = Evidence.CAMERA_COUNTED if action.qty > 1 else Evidence.CAMERA_ONLY
        confirmed = weight is not None and (
            kind != Evidence.CAMERA_COUNTED
            or _weighs_as(seen_together.get(weight.event_id, action.qty), action.products, weight, spread)
        )
        sample = made.get((kind, action.margin, confirmed))
        if sample is None:
            sample = made[kind, action.margin, confirmed] = Sample(kind, action.margin, confirmed, False)
        samples[kind].append(sample)
    return samples


def _silent_buses(
    actions: Sequence[_Action], weights: Sequence[_Weight], matched: Mapping[str, _Weight], store: StoreModel
) -> set[str]:
    """The camera actions at a scale that no change went with, next to another such action at a scale of the same
    fixture (the one before it or after it there) with no change of any of the fixture's scales between the two: its
    sensor bus was down, which a scale's own misses show only after `QUIET_SCALE_MISSES` of them. A camera seldom
    imagines two takes in a row at one fixture; a bus that drops silences every action at it."""
    at_fixture: dict[str, list[_Action]] = defaultdict(list)
    for action in actions:
        bin_ = action.in_layout
        if bin_ is not None and bin_.sensor is not None:
            at_fixture[bin_.fixture].append(action)
    changes: dict[str, list[float]] = defaultdict(list)
    for weight in weights:  # in time order
        bin_ = store.bin_at(weight.bin, weight.ts)
        if bin_ is not None:
            changes[bin_.fixture].append(weight.seconds)
    silenced: set[str] = set()
    for fixture, in_order in at_fixture.items():
        stamps = changes.get(fixture, [])
        for earlier, later in pairwise(in_order):
            if earlier.event_id in matched or later.event_id in matched:
                continue
            first = bisect.bisect_left(stamps, earlier.seconds)
            if first == len(stamps) or stamps[first] > later.seconds:
                silenced |= {earlier.event_id, later.event_id}
    return silenced


def _units(delta_g: float, product: Product, *, slack: float = 1.0, spread: float = 0.0) -> int:
    """How many units of `product` a weight change of `delta_g` is (0 when it matches no whole number): within
    `slack` times its tolerance, or `spread` of its weight (the store's scales' own, `read_weighing_spread`)."""
    grams, unit = abs(delta_g), product.unit_weight_g
    count = round(grams / unit)
    if count == 0:
        return 0
    # (`max` and the square root written out: asked of every pair of action and change, most of them one unit.)
    allowed = slack * product.tolerance_g
    if spread * unit > allowed:
        allowed = spread * unit
    if count != 1:
        allowed *= count**0.5
    return count if abs(grams - count * unit) <= allowed else 0


def _products_of(store: StoreModel, seen: str | None, held: str | None) -> tuple[Product, ...]:
    """The products an action can have moved: the one its camera saw (`seen`), the one its bin holds (`held`)."""
    return tuple(
        product for sku in dict.fromkeys((seen, held)) if sku and (product := store.products.get(sku)) is not None
    )


def _weighs_as(
    count: int, products: Sequence[Product], weight: _Weight, spread: float = 0.0, slack: float = 1.0
) -> bool:
    """Whether the weight change is `count` items of one of `products` (within `slack` times their tolerances or
    `spread`, as `_units` allows)."""
    # A loop, not `any` over a generator (which costs more than the check): asked of every pair a day's scales offer.
    for product in products:  # noqa: SIM110
        if _units(weight.delta_g, product, slack=slack, spread=spread) == count:
            return True
    return False


def _match_weights(
    actions: list[_Action],
    weights: list[_Weight],
    store: StoreModel,
    timing: ScaleTiming,
    payer_of: Mapping[str, str],
) -> tuple[dict[str, _Weight], dict[str, int]]:
    """Pair camera actions with weight changes of their bin close in time (within the store's scale `timing`).

    One to one first — pairs whose weight is the count the camera saw, then those of an action the camera was sure
    happened (`_Action.whether`, read, at least `SURE_READ`), then the nearest to the usual delay (when two shoppers
    take from one bin seconds apart, "two items" belongs with the camera that saw two; a camera imagines takes where a
    shopper browses, moments from a real one, and a change stamped nearer the imagined one is still the real one's) —
    then an action left over joins a change already paired when together they make its count (a merged change),
    within twice the tolerance, as a noisy weighing still confirms a take (`_product_for`), or when it and the
    change's one action are a take and a put-back of one visit (a group's members' are one: `payer_of`) that the
    change is the net of (`_netted`).
    Returns the pairs, and per weight change the count of items its actions saw together.
    """
    changes = _ChangesByBin(weights, timing)
    typical = timing.typical
    pairs: list[tuple[bool, bool, float, str, str, _Action, _Weight]] = []
    for action in actions:
        ts, taken = action.ts, action.sign > 0
        for weight in changes.near(action):
            if (weight.delta_g < 0) == taken:
                gap = abs((weight.ts - ts - typical).total_seconds())
                agrees = _weighs_as(action.qty, action.products, weight)
                pairs.append(
                    (not agrees, action.whether < SURE_READ, gap, action.event_id, weight.event_id, action, weight)
                )
    pairs.sort()  # (no two pairs share both ids: their records are never compared)
    matched: dict[str, _Weight] = {}
    sharing: dict[str, list[_Action]] = {}
    seen_together: dict[str, int] = {}
    for disagrees, _whether, _gap, action_id, weight_id, action, weight in pairs:
        if action_id in matched:
            continue
        if weight_id not in sharing:
            matched[action_id] = weight
            sharing[weight_id] = [action]
            seen_together[weight_id] = action.qty
            continue
        together = sharing[weight_id]
        count = seen_together[weight_id] + action.qty
        same_product = all(a.products == action.products for a in together)
        leader = together[0]
        if (
            disagrees
            and same_product
            and leader.bin == action.bin
            and _weighs_as(count, leader.products, weight, slack=LOOSE_WEIGHT_SLACK)
        ):
            matched[action_id] = weight
            together.append(action)
            seen_together[weight_id] = count
    _join_put_backs(actions, changes, matched, sharing, payer_of)
    return matched, seen_together


class _ChangesByBin:
    """A day's weight changes by bin, in time order: those of an action's bin within the store's scale timing."""

    def __init__(self, weights: Sequence[_Weight], timing: ScaleTiming) -> None:
        self.by_bin: dict[str, list[_Weight]] = defaultdict(list)
        for weight in weights:  # in time order
            self.by_bin[weight.bin].append(weight)
        self.times = {code: [w.ts for w in changes] for code, changes in self.by_bin.items()}
        self.before, self.after = timing.before, timing.after

    def near(self, action: _Action) -> list[_Weight]:
        changes = self.by_bin.get(action.bin)
        if not changes:
            return []
        stamps = self.times[action.bin]
        first = bisect.bisect_left(stamps, action.ts - self.before)
        return changes[first : bisect.bisect_right(stamps, action.ts + self.after, first)]


def _join_put_backs(
    actions: Sequence[_Action],
    changes: _ChangesByBin,
    matched: dict[str, _Weight],
    sharing: Mapping[str, list[_Action]],
    payer_of: Mapping[str, str],
) -> None:
    """An action left over whose bin's change (`changes.near` it) went with one action of the same visit (or of a
    member of its group, `payer_of`) in the other direction, which the change alone does not weigh as: a shopper
    who took an item and put one back moments apart, which the scale settled into one change. When the change is what
    the two net to (`_netted`), each is paired with its part of it: a take and a put-back of one product weigh nothing
    together, and a put-back of another product the shopper held (a label reader's) weighs the difference. Else one
    of them read as imagined and the other as a weight that matches no product sent the visit to a person."""
    for action in actions:
        if action.event_id in matched:
            continue
        payer = payer_of.get(action.session, action.session)
        for weight in changes.near(action):
            together = sharing.get(weight.event_id)
            if together is None or len(together) != 1:
                continue
            other = together[0]
            if other.sign == action.sign or payer_of.get(other.session, other.session) != payer:
                continue
            take, put_back = (action, other) if action.sign > 0 else (other, action)
            parts = None if _weighs_as(other.qty, other.products, weight) else _netted(take, put_back, weight)
            if parts is not None:
                matched[take.event_id], matched[put_back.event_id] = parts
                together.append(action)
                break


def _netted(take: _Action, put_back: _Action, weight: _Weight) -> tuple[_Weight, _Weight] | None:
    """The change split into the take's part and the put-back's, when it is what a take of the count its camera saw
    and a put-back of its camera's count net to (of the products each camera saw or its bin holds, within twice
    their tolerances together), each part off by half of how far the change is: else None."""
    for taken in take.products:
        for returned in put_back.products:
            out, back = taken.unit_weight_g * take.qty, returned.unit_weight_g * put_back.qty
            off = weight.delta_g - (back - out)
            allowed = LOOSE_WEIGHT_SLACK * math.hypot(
                taken.tolerance_g * take.qty**0.5, returned.tolerance_g * put_back.qty**0.5
            )
            if abs(off) <= allowed:
                return replace(weight, delta_g=off / 2 - out), replace(weight, delta_g=off / 2 + back)
    return None


@dataclass(slots=True)
class _Sighting:
    ts: datetime
    seconds: float  # `ts` as seconds since the epoch
    place: tuple[float, float]
    event_id: str


# A sighting as `_Whereabouts.around` scans them: (seconds, session, x, y, event id).
_Seen = tuple[float, str, float, float, str]


def _wandering(tracks: Iterable[Sequence[_Sighting]]) -> float:
    """How fast shoppers' whereabouts spread (m²/s), read from the store's own visits: how far each sighting
    lies from the straight line between the one before and the one after, against the time between them."""
    squares = spans = 0.0
    for track in tracks:
        if len(track) < 3:  # a visit seen at its gates only
            continue
        gaps = [(later.ts - earlier.ts).total_seconds() for earlier, later in pairwise(track)]
        for before, middle, after, since, until in zip(track, track[1:], track[2:], gaps, gaps[1:], strict=False):
            if since <= 0 or until <= 0:
                continue
            (x0, y0), (x1, y1), (x2, y2) = before.place, middle.place, after.place
            share = since / (since + until)
            x, y = x0 + share * (x2 - x0), y0 + share * (y2 - y0)
            squares += (x1 - x) ** 2 + (y1 - y) ** 2
            spans += 2 * since * until / (since + until)
    low, high = WANDERING_M2_S
    return min(high, max(low, squares / spans)) if spans else 1.0


class _Whereabouts:
    """Where each visit was seen: its entry and exit gates and the actions a camera gave it without doubt."""

    def __init__(self, actions: Sequence[_Action], visits: _Visits, store: StoreModel) -> None:
        seen: dict[str, list[_Sighting]] = defaultdict(list)
        for session, passes in visits.gates.items():
            for ts, gate in passes:
                place = store.gate_at(gate, ts)
                if place is not None:
                    seen[session].append(_Sighting(ts, ts.timestamp(), place, ""))
        # Every camera action in time order (seconds, session, bin, id, how busy it keeps its visit's hands elsewhere);
        # one the camera had no doubt of whose it was also places its visit.
        self._actions: list[tuple[float, str, str, str, float]] = []
        for action in actions:
            surely = action.margin >= 0.5 * action.confidence
            bin_ = action.in_layout
            if surely and bin_ is not None and bin_.position is not None:
                seen[action.session].append(_Sighting(action.ts, action.seconds, bin_.position, action.event_id))
            busy = BUSY_SURELY if surely else BUSY_ELSEWHERE
            self._actions.append((action.seconds, action.session, action.bin, action.event_id, busy))
        self.seen = {session: sorted(s, key=attrgetter("ts")) for session, s in seen.items()}
        self._action_seconds = [row[0] for row in self._actions]
        # Each bin's camera actions in time order (seconds, session, id): who stood at a bin when.
        self._at_bin: dict[str, tuple[list[float], list[tuple[str, str]]]] = {}
        for seconds, session, bin_code, event_id, _busy in self._actions:
            times, whose = self._at_bin.setdefault(bin_code, ([], []))
            times.append(seconds)
            whose.append((session, event_id))
        self.times = {session: [s.ts for s in sightings] for session, sightings in self.seen.items()}
        everyone: list[_Seen] = [
            (s.seconds, session, s.place[0], s.place[1], s.event_id)
            for session, sightings in self.seen.items()
            for s in sightings
        ]
        everyone.sort()
        self._seconds = [row[0] for row in everyone]
        self._everyone = everyone
        places = [b.position for layout in store.layouts for b in layout.bins.values() if b.position is not None]
        places += [place for layout in store.layouts for place in layout.gates.values()]
        across = math.dist(min(places), max(places)) if places else 0.0
        if places:
            xs, ys = [p[0] for p in places], [p[1] for p in places]
            self.floor_area = max(1.0, (max(xs) - min(xs) + 2 * REACH_M) * (max(ys) - min(ys) + 2 * REACH_M))
        else:
            self.floor_area = 1.0
        self.wandering = _wandering(self.seen.values())
        # Seen longer ago than this, a shopper could be anywhere in the store by now: whereabouts say nothing.
        self.horizon = max(MOMENTS_S, (across + 2 * REACH_M) / FASTEST_WALK_M_S)

    def around(
        self, now: float, place: tuple[float, float] | None, exclude: str = "", among: set[str] | None = None
    ) -> dict[str, float]:
        """For each visit seen within the horizon of `now` (seconds since the epoch), not counting the event
        `exclude`: how much likelier it stood within reach of `place` then than a shopper about whom we know nothing
        (1.0). Nil if it would have had to walk faster than anyone does from where it was seen just before or to where
        it was seen just after; likelier if seen right there moments before or after, less likely if seen elsewhere
        then. Visits not in the answer were not seen lately (or are not `among` those asked about): whereabouts say
        nothing of them."""
        if place is None:
            return {}
        times = self._seconds
        low = bisect.bisect_left(times, now - self.horizon)
        middle = bisect.bisect_left(times, now, low)
        high = bisect.bisect_right(times, now + self.horizon, middle)
        excluded = exclude or None  # gates' sightings have no event
        before: dict[str, _Seen] = {}
        after: dict[str, _Seen] = {}
        everyone = self._everyone
        for row in everyone[low:middle]:
            if row[4] != excluded and (among is None or row[1] in among):
                before[row[1]] = row
        for row in everyone[middle:high]:
            if row[1] not in after and row[4] != excluded and (among is None or row[1] in among):
                after[row[1]] = row
        factors: dict[str, float] = {}
        px, py = place
        reach = 2 * REACH_M
        hypot = math.hypot
        # Each end in turn, written out (no loop over a pair): asked for every action with others about.
        for session in before.keys() | after.keys():
            first, last = before.get(session), after.get(session)
            factor = 1.0
            if first is not None:
                gap, metres = now - first[0], hypot(first[2] - px, first[3] - py)
                if metres - reach > FASTEST_WALK_M_S * gap:
                    factors[session] = COULD_NOT_BE_HERE
                    continue
                if gap <= MOMENTS_S:
                    factor *= SEEN_HERE if metres <= reach else SEEN_ELSEWHERE
            if last is not None:
                gap, metres = last[0] - now, hypot(last[2] - px, last[3] - py)
                if metres - reach > FASTEST_WALK_M_S * gap:
                    factors[session] = COULD_NOT_BE_HERE
                    continue
                if gap <= MOMENTS_S:
                    factor *= SEEN_HERE if metres <= reach else SEEN_ELSEWHERE
                if first is not None:
                    direct = hypot(last[2] - first[2], last[3] - first[3])
                    detour = hypot(px - first[2], py - first[3]) + hypot(last[2] - px, last[3] - py) - direct
                    if detour - reach > FASTEST_WALK_M_S * (last[0] - first[0]) - direct:
                        factor = COULD_NOT_BE_HERE
            factors[session] = factor
        return factors

    def busy_elsewhere(self, now: float, here: str, present: set[str], event: str = "") -> dict[str, float]:
        """The visits `present` a camera gave an action (other than `event`) at a bin other than `here` within
        `BUSY_S` of `now` (seconds since the epoch): their hands were busy there (a shopper at a bin takes from it; a
        bystander near one shopper's bin is at its own). Each with the factor its chance is cut by: `BUSY_SURELY` when
        the camera had no doubt whose that action was, else `BUSY_ELSEWHERE`."""
        seconds = self._action_seconds
        low = bisect.bisect_left(seconds, now - BUSY_S)
        high = bisect.bisect_right(seconds, now + BUSY_S, low)
        busy: dict[str, float] = {}
        for _seconds, session, bin_, event_id, factor in self._actions[low:high]:
            if bin_ != here and session in present and event_id != event and factor < busy.get(session, 1.0):
                busy[session] = factor
        return busy

    def at_the_bin_for_their_own(self, now: float, here: str, sessions: set[str], event: str) -> set[str]:
        """Those of `sessions` a camera gave an action (other than `event`) at bin `here` within `BUSY_S` of `now`."""
        times, whose = self._at_bin.get(here, ((), ()))
        low = bisect.bisect_left(times, now - BUSY_S)
        high = bisect.bisect_right(times, now + BUSY_S, low)
        return {session for session, event_id in whose[low:high] if session in sessions and event_id != event}

    def _neighbours(self, session: str, ts: datetime) -> tuple[_Sighting | None, _Sighting | None]:
        """The sightings of `session` just before and just after `ts`."""
        sightings = self.seen.get(session) or []
        index = bisect.bisect_left(self.times.get(session) or [], ts)
        return (sightings[index - 1] if index > 0 else None), (sightings[index] if index < len(sightings) else None)

    def density(self, session: str, place: tuple[float, float] | None, ts: datetime) -> float:
        """How much likelier `session` stood at `place` at `ts` than a shopper about whom we know nothing (1.0):
        nil where it could not have walked, else the density of where it could be — between where it was seen
        just before and just after, spreading with the time since (a Brownian bridge) — against the floor."""
        if place is None or session not in self.seen:
            return 1.0
        before, after = self._neighbours(session, ts)
        since = (ts - before.ts).total_seconds() if before else math.inf
        until = (after.ts - ts).total_seconds() if after else math.inf
        if before is not None and after is not None:
            span = since + until
            share = since / span if span else 0.0
            centre = (
                before.place[0] + share * (after.place[0] - before.place[0]),
                before.place[1] + share * (after.place[1] - before.place[1]),
            )
            spread = REACH_M**2 + self.wandering * (since * until / span if span else 0.0)
        else:
            sighting = before or after
            assert sighting is not None
            centre, spread = sighting.place, REACH_M**2 + self.wandering * min(since, until)
        if spread >= self.floor_area:
            return 1.0
        density = math.exp(-(math.dist(centre, place) ** 2) / (2 * spread)) / (2 * math.pi * spread)
        return min(MOST_LIKELY_HERE, max(LEAST_LIKELY_HERE, density * self.floor_area))


@dataclass
class _Open:
    """Items that certainly moved (a scale weighed them) but whose taker is one of several payers."""

    event_id: str
    ts: datetime
    sku: str
    qty: int
    chances: dict[str, float]  # payer -> probability
    members: dict[str, str]  # payer -> the member most likely
    evidence: tuple[str, ...]
    reason: ReviewReason
    taken_by: str | None = None


class _ScaleWatch:
    """Whether a bin's scale works, as the camera actions go by in time order: unless its latest report said
    otherwise, or it has missed `QUIET_SCALE_MISSES` actions in a row."""

    def __init__(self, reports: Sequence[tuple[datetime, str, str]]) -> None:
        # Each device's reports (in time order, as `reports` are): their times, and what each said.
        self.reports: dict[str, tuple[list[datetime], list[str]]] = {}
        for at, device, status in reports:
            times, statuses = self.reports.setdefault(device, ([], []))
            times.append(at)
            statuses.append(status)
        self.misses: dict[str, int] = {}

    def works(self, sensor: str | None, ts: datetime) -> bool:
        if sensor is None or self.misses.get(sensor, 0) >= QUIET_SCALE_MISSES:
            return False
        return self.reported_online(sensor, ts)

    def reported_online(self, sensor: str, ts: datetime) -> bool:
        """Whether the scale's latest report up to `ts` (if any) said it was online."""
        reported = self.reports.get(sensor)
        if reported is None:
            return True
        latest = bisect.bisect_right(reported[0], ts)
        return latest == 0 or reported[1][latest - 1] == "online"

    def heard(self, sensor: str | None, ts: datetime, *, weighed: bool) -> bool:
        """An action at the scale's bin at `ts`, a change going with it or none: whether the scale worked then. It did
        when a change went with the action (a quiet scale that speaks again is read from that change on); without
        one, as `works` said before this action is counted. Never while its latest report says it is offline."""
        if sensor is None:
            return False
        misses = self.misses.get(sensor, 0)
        self.misses[sensor] = 0 if weighed else misses + 1
        return (weighed or misses < QUIET_SCALE_MISSES) and self.reported_online(sensor, ts)


class _Fusion:
    """Reads a store's camera actions and unattributed weight changes in time order, into movements."""

    def __init__(
        self,
        store: StoreModel,
        visits: _Visits,
        reports: Sequence[tuple[datetime, str, str]],
        whereabouts: _Whereabouts,
        calibration: Calibration,
        seen_together: Mapping[str, int],
        timing: ScaleTiming,
        restocks: Sequence[_Restock] = (),
        weighing_spread: float = 0.0,
        names_rivals: bool = False,
        unseen_review_cost: int = 0,
    ) -> None:
        self.store, self.visits, self.timing, self.weighing_spread = store, visits, timing, weighing_spread
        self.names_rivals, self.unseen_review_cost = names_rivals, unseen_review_cost
        self.whereabouts, self.calibration, self.seen_together = whereabouts, calibration, seen_together
        self.movements: list[_Movement] = []
        self.doubts: dict[str, set[ReviewReason]] = defaultdict(set)
        self.must_ask: dict[str, set[ReviewReason]] = defaultdict(set)
        self.attributions: dict[str, Attribution] = {}
        self.held: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        self.doubtful: dict[str, list[_Movement]] = defaultdict(list)
        self.open: list[_Open] = []
        self.scales = _ScaleWatch(reports)
        self.camera_takes: dict[tuple[str, str], datetime] = {}
        self.restocks: dict[str, list[_Restock]] = defaultdict(list)
        for restock in restocks:
            self.restocks[restock.bin].append(restock)

    def flag(self, session: str, reason: ReviewReason) -> None:
        """A person must look at this visit, for this reason."""
        self.must_ask[self.visits.payer(session)].add(reason)

    def doubt(self, session: str, reason: ReviewReason) -> None:
        """Why this visit is not certain: shown to the person who looks at it, should its risk send it to one."""
        self.doubts[self.visits.payer(session)].add(reason)

    def move(
        self,
        payer: str,
        member: str,
        sku: str,
        qty: int,
        risk: float,
        ts: datetime,
        evidence: tuple[str, ...],
        chances: dict[str, float] | None = None,
    ) -> None:
        self.held[payer][sku] += qty
        movement = _Movement(payer, member, sku, qty, risk, ts, evidence, chances)
        self.movements.append(movement)
        if chances is not None:
            self.doubtful[sku].append(movement)

    def surely_held(self, payer: str, sku: str) -> int:
        """How many of `sku` the payer holds by movements nobody else may have made."""
        return self.held[payer].get(sku, 0) - sum(
            m.qty for m in self.doubtful.get(sku, ()) if m.payer == payer and m.chances is not None
        )

    def may_hold(self, payer: str) -> dict[str, int]:
        """What a payer holds for certain, plus what it may hold through items whose taker is still open."""
        holding = dict(self.held[payer])
        for item in self.open:
            if item.taken_by is None and item.chances.get(payer, 0.0) > 0:
                holding[item.sku] = holding.get(item.sku, 0) + item.qty
        return holding

    def camera_only(self, action: _Action) -> Evidence:
        """The kind of evidence a camera alone gives: a take of the same bin by the same visit moments after another
        may be the same hand seen twice; several items in one move are harder to count than one."""
        key = (action.session, action.bin)
        previous = self.camera_takes.get(key)
        if action.sign > 0:
            self.camera_takes[key] = action.ts
        if action.sign > 0 and previous is not None and action.ts - previous <= SEEN_TWICE:
            return Evidence.CAMERA_REPEATED
        return Evidence.CAMERA_COUNTED if action.qty > 1 else Evidence.CAMERA_ONLY

    # -- camera actions ---------------------------------------------------------------------------------

    def action(self, action: _Action, weight: _Weight | None) -> None:
        bin_ = action.in_layout
        if bin_ is None:
            text = f"bin {action.bin} is not in the layout of that time ({action.event_id})"
            code = ReviewReasonCode.BIN_NOT_IN_LAYOUT
            self.flag(action.session, ReviewReason(code, text, (action.event_id,), bin=action.bin))
            return
        scale = self.scales.heard(bin_.sensor, action.ts, weighed=weight is not None)
        if scale and weight is None:
            return
        if not scale:
            weight = None
        alone = self.camera_only(action) if weight is None else None
        unsure_alone = alone is not None and self.calibration.probability(alone, action.margin) < LIKELY_PHANTOM
        if unsure_alone and not action.alternatives and action.sign > 0:
            return  # a camera alone, unsure and with nobody else in view: more likely imagined than taken
        chances, members, evidence, certain = self.who(action, bin_, weight, alone)
        winner = self.visits.payer(action.session)
        payer = max(chances, key=lambda p: (chances[p], p == winner, p)) if len(chances) > 1 else next(iter(chances))
        member = members[payer]
        together = self.seen_together.get(weight.event_id, action.qty) if weight is not None else action.qty
        held = self.may_hold(payer) if action.sign < 0 else {}
        sku, qty = _product_for(action, bin_, weight, self.store, held, together, self.weighing_spread)
        risk = 1.0 - chances[payer]
        if weight is None:
            # Without a scale's word the camera may have imagined the take or miscounted it, whoever it was: ruling
            # other shoppers out settles who, not whether. Whether is the kind's doubt without the part for who, for a
            # stack that names rivals (`stack_names_rivals`): who is then read from them and the shoppers around. It is
            # read at the confidence that anyone named made it (`_Action.whether`): a camera torn between shoppers
            # splits its confidence among them, unsure who took, not whether.
            sure = self.calibration.happened if self.names_rivals else self.calibration.probability
            risk = max(risk, 1.0 - sure(evidence, action.whether))
        self.attributions[action.event_id] = Attribution(
            action.event_id,
            action.session,
            winner,
            sku or "",
            qty,
            action.sign,
            evidence,
            action.payer_margin,
            payer,
            round(1.0 - risk, 4),
            certain,
            rivals=bool(action.alternatives),
        )
        if sku is None or qty == 0:
            text = f"the weight at bin {action.bin} matches no product ({action.event_id})"
            code = ReviewReasonCode.WEIGHT_MATCHES_NO_PRODUCT
            self.flag(payer, ReviewReason(code, text, (action.event_id,), bin=action.bin))
            return
        ids = (action.event_id, weight.event_id) if weight is not None else (action.event_id,)
        if action.sign < 0:
            self.explain_return(payer, sku, qty, action.event_id)
            self.blame_return(action, chances, payer, sku)
            self.move(payer, member, sku, -qty, 0.0, action.ts, ids)
            return
        others = len(chances) > 1 and any(p != payer and c >= MAY_HAVE_TAKEN for p, c in chances.items())
        self.move(payer, member, sku, qty, risk, action.ts, ids, dict(chances) if others else None)
        self.note_doubt(action, chances, payer, sku)

    def who(
        self, action: _Action, bin_: Bin, weight: _Weight | None, alone: Evidence | None
    ) -> tuple[dict[str, float], dict[str, str], Evidence, bool]:
        """The chance that each payer made the action, the member most likely within each, the kind of evidence,
        and whether it is certain (one shopper — or one group — in the store). `alone` is the kind of evidence a
        camera without a scale gives (None when a scale weighed it). Payers whose chance is too small to matter
        (below `MAY_HAVE_TAKEN`) are left out of the answer; their share is still counted."""
        visits, where, payer_of = self.visits, self.whereabouts, self.visits.payer_of
        top_session, ts = action.session, action.ts
        present = visits.present(ts)
        if len(present) == 1 or visits.one_payer_present(ts, present):
            evidence = alone or Evidence.WEIGHED_ALONE
            member = top_session if top_session in present else min(present)
            payer = payer_of.get(member, member)
            return {payer: 1.0}, {payer: member}, evidence, True
        likely = where.around(action.seconds, bin_.position, action.event_id, present)
        if action.alternatives:
            alternatives = [(s, c) for s, c in action.alternatives if s != top_session]
            listed = {top_session, *[s for s, _ in alternatives]}
        else:  # most picks (and no comprehension to run for them)
            alternatives, listed = [], {top_session}
        named = listed & present
        busy = where.busy_elsewhere(action.seconds, action.bin, present, action.event_id)
        lone_and_busy = top_session in busy and len(named) == 1
        if lone_and_busy:
            weighed = Evidence.WEIGHED_BUSY
        else:
            weighed = (
                Evidence.WEIGHED_CONTESTED if self._contested(top_session, named, likely) else Evidence.WEIGHED_ALONE
            )
        evidence = alone or weighed
        # Who made a camera-alone pick is read as for a weighed one — contested where rivals are named or seen near,
        # a lone pick's where nobody is: the same cameras see the same shoppers — where the stack names rivals;
        # whether it happened is `action`'s floor. A stack naming no one reads both from the kind's curve.
        who_kind = weighed if alone is not None and self.names_rivals else evidence
        # A camera torn between members of one group is unsure which member made it, not whether their group did: its
        # curve is read at the group's margin over the likeliest other payer it names (`_Action.payer_margin`).
        top = self.calibration.probability(who_kind, action.payer_margin)
        rest = 1.0 - top
        unlisted = len(present) - len(named)
        listed_share = rest * (0.8 if unlisted else 1.0) if alternatives else 0.0
        share = (rest - listed_share) / unlisted if unlisted else 0.0
        # The sessions that stand apart: the listed ones, the ones seen lately, the top's companions. The rest of
        # the store is a crowd in which each shares the leftover doubt evenly.
        weights: dict[str, float] = {top_session: top}
        if alternatives:
            total_alt = sum(max(c, 0.01) for _, c in alternatives)
            for session, confidence in alternatives:
                weights[session] = listed_share * max(confidence, 0.01) / total_alt
        top_payer = payer_of.get(top_session, top_session)
        group = visits.members.get(top_payer) if payer_of else None
        companions = [s for s in (top_payer, *group) if s in present] if group else [top_payer] * (top_payer in present)
        for session in (*likely, *companions):
            if session not in listed:
                weights[session] = share
        # Whereabouts only count against a shopper here: one seen right there moments before is no likelier to have
        # made an action the cameras, which had it in view, gave to someone else.
        for session, factor in likely.items():
            if factor < 1.0:
                weights[session] *= factor
        # Of the candidates the camera names, one whose hands were busy at another bin is less likely than one whose
        # hands were free. A lone winner busy elsewhere keeps its chance: it may well take from two bins in quick
        # succession, and cutting it would only hand its chance to shoppers nobody saw there. The shoppers it did not
        # name (bar the winner's companions) are cut alike when busy: whoever acted unnamed had its hands here.
        if lone_and_busy:
            busy = {}  # a lone winner busy elsewhere may be a bystander at its own bin: its doubt is not narrowed
        if busy:
            busy_named = busy.keys() & named
            if len(named) > 1 and len(busy_named) < len(named):
                for session in busy_named:
                    weights[session] *= busy[session]
            for session, factor in busy.items():
                if session in weights and session not in named and session not in companions:
                    weights[session] *= factor
        # A rival with a take or put-back of its own at this bin moments apart stood there for that one.
        if alternatives and action.sign > 0 and len(named) > 1:
            rivals = named - {top_session}
            for session in where.at_the_bin_for_their_own(action.seconds, action.bin, rivals, action.event_id):
                weights[session] *= AT_THE_BIN_FOR_ITS_OWN
        # The present who stand apart: the named, and all the others among `weights` (whereabouts and companions
        # name only the present); the rest are the crowd.
        crowd = unlisted - (len(weights) - len(listed)) if share else 0
        # The crowd's busy members count for less of it.
        busy_crowd = sum(1.0 - f for s, f in busy.items() if s not in weights) if crowd and busy else 0.0
        if len(named) < len(listed):
            for session in listed - present:
                weights[session] *= COULD_NOT_BE_HERE
        if action.sign < 0 and crowd:
            self.join_crowd(weights, present, share, busy)
            crowd, busy_crowd = 0, 0.0
        if action.sign < 0:
            holders = self.holders(action, bin_, weight, {payer_of.get(s, s) for s in weights})
            for session in weights:
                weights[session] *= holders.get(payer_of.get(session, session), COULD_NOT_BE_HERE)
        total = sum(weights.values()) + share * (crowd - busy_crowd)
        if crowd and share / total >= MAY_HAVE_TAKEN:
            self.join_crowd(weights, present, share, busy)
        chances, members = self.by_payer(weights, total)
        return chances, members, evidence, False

    def _contested(self, top_session: str, named: set[str], likely: Mapping[str, float]) -> bool:
        """Whether more than one payer is a suspect: the winner's, those of the named visits present and those of the
        visits seen right there lately."""
        payer_of = self.visits.payer_of
        top_payer = payer_of.get(top_session, top_session)
        for session in named:
            if payer_of.get(session, session) != top_payer:
                return True
        for session, factor in likely.items():  # noqa: SIM110 — a loop: asked for every action with others about
            if factor > 1.0 and payer_of.get(session, session) != top_payer:
                return True
        return False

    @staticmethod
    def join_crowd(weights: dict[str, float], present: set[str], share: float, busy: Mapping[str, float]) -> None:
        """The shoppers present the camera did not name become candidates of their own, each with the crowd's `share`
        (cut for those busy at another bin)."""
        for session in busy.keys() - weights.keys():
            weights[session] = share * busy[session]
        weights |= dict.fromkeys((s for s in present if s not in weights), share)

    def by_payer(self, weights: Mapping[str, float], total: float) -> tuple[dict[str, float], dict[str, str]]:
        """Chances summed per payer (doubt between members of one group is no doubt), with the likeliest member;
        payers less likely than `MAY_HAVE_TAKEN` are left out."""
        total = total or 1.0
        payer_of = self.visits.payer_of
        if not payer_of or payer_of.keys().isdisjoint(weights):  # nobody here is a companion: each pays for itself
            # `_likely` in one pass: the likeliest's chance is the greatest weight's (dividing keeps the order).
            best = max(weights.values()) / total
            kept, themselves = {}, {}
            for session, weight in weights.items():
                chance = weight / total
                if chance >= MAY_HAVE_TAKEN or chance == best:
                    kept[session] = chance
                    themselves[session] = session
            return kept, themselves
        chances: dict[str, float] = {}
        members: dict[str, str] = {}
        for session, weight in sorted(weights.items()):
            payer = payer_of.get(session, session)
            chances[payer] = chances.get(payer, 0.0) + weight / total
            if payer not in members or weight > weights[members[payer]]:
                members[payer] = session
        kept = _likely(chances)
        return kept, {payer: members[payer] for payer in kept}

    def holders(self, action: _Action, bin_: Bin, weight: _Weight | None, payers: set[str]) -> dict[str, float]:
        """Only a payer holding what came back can have put it back: of `payers`, those holding it for certain,
        and at half the odds those that may hold it through an item still open; others are all but ruled out."""
        waiting = [item for item in self.open if item.taken_by is None]
        if weight is None:
            products = [(action.sku or bin_.sku, action.qty)]
        else:
            skus = {sku for payer in payers for sku, n in self.held[payer].items() if n > 0}
            skus |= {sku for sku in (action.sku, bin_.sku) if sku}
            skus |= {item.sku for item in waiting}
            catalog, delta_g = self.store.products, weight.delta_g
            products = [(sku, count) for sku in skus if sku in catalog and (count := _units(delta_g, catalog[sku]))]
        found: dict[str, float] = {}
        for payer in payers:
            holding = self.held[payer]
            for sku, count in products:
                if holding.get(sku, 0) >= count:
                    found[payer] = 1.0
                    break
        moved = {sku for sku, _ in products}
        for item in waiting:
            if item.sku in moved:
                for payer in item.chances.keys() & payers:
                    found.setdefault(payer, 0.5)
        return found

    def note_doubt(self, action: _Action, chances: Mapping[str, float], payer: str, sku: str) -> None:
        """Why a person may want to look at this action: noted on the payer charged for it when its doubt is worth
        a word, and on every other payer with a fair chance of having made it."""
        reason = None
        for other, chance in chances.items():
            if (other == payer and 1.0 - chance >= DOUBT_WORTH_NOTING) or (other != payer and chance >= WORTH_ASKING):
                reason = reason or _unsure_taker(action, sku)
                self.doubt(other, reason)

    def blame_return(self, action: _Action, chances: Mapping[str, float], payer: str, sku: str) -> None:
        """A put-back credited to one payer may have been another's: that one then pays for an item it returned."""
        for other, chance in chances.items():
            if other != payer and chance > 0.0 and self.held[other].get(sku, 0) > 0:
                self.movements.append(_Movement(other, other, sku, 0, chance, action.ts, (action.event_id,)))
                if chance >= WORTH_ASKING:
                    self.doubt(other, _unsure_taker(action, sku))

    def explain_return(self, payer: str, sku: str, qty: int, event_id: str) -> None:
        """A payer puts back more than it surely held: the one doubtful take of that product it may have made — a
        take the camera was unsure of, or one no camera saw — was its own (nobody puts back what they did not
        take). With two or more such takes, nothing is settled."""
        if self.surely_held(payer, sku) >= qty:
            return
        takes = [m for m in self.doubtful.get(sku, ()) if m.chances is not None and m.chances.get(payer, 0.0) > 0]
        items = [o for o in self.open if o.taken_by is None and o.sku == sku and o.chances.get(payer, 0.0) > 0]
        if len(takes) + len(items) != 1:
            return
        if items:
            item = items[0]
            item.taken_by = payer
            self.move(
                payer, item.members.get(payer, payer), item.sku, item.qty, 0.0, item.ts, (*item.evidence, event_id)
            )
            return
        self.settle_take(takes[0], payer, event_id)

    def settle_take(self, take: _Movement, payer: str, event_id: str) -> None:
        """A doubtful take turns out to be `payer`'s: it moves to that payer's cart, without doubt."""
        self.held[take.payer][take.sku] -= take.qty
        self.held[payer][take.sku] += take.qty
        camera = take.evidence[0]
        for session_doubts in self.doubts.values():
            session_doubts -= {
                r for r in session_doubts if r.code == ReviewReasonCode.UNSURE_TAKER and camera in r.event_ids
            }
        if take.payer != payer:
            take.member = payer
        take.payer, take.risk, take.chances = payer, 0.0, None
        if camera in self.attributions:
            self.attributions[camera] = self.attributions[camera]._replace(
                assigned=payer, probability=1.0, settled_by=event_id
            )

    # -- weight changes no camera saw ------------------------------------------------------------------

    def unseen(self, weight: _Weight) -> None:
        """A scale change no camera saw: the only shopper (or group) in the store took it; otherwise it stays open,
        with each visit's chance by its whereabouts, until a put-back settles it or `finish` decides. Who was there
        is asked of the moment the hand moved: the scale's usual delay before its stamp. A visit's whereabouts are
        where it could be between its sightings (`density`), likelier still if seen right there moments before or
        after and less if seen elsewhere then (`around`), and less again if a camera had its hands busy at another
        bin then (`busy_elsewhere`): the hand at this bin was someone's whose hands were free."""
        bin_ = self.store.bin_at(weight.bin, weight.ts)
        product = self.store.products.get(bin_.sku) if bin_ else None
        if bin_ is None or product is None or not self.scales.works(bin_.sensor, weight.ts):
            return
        moved = weight.ts - self.timing.typical
        present = self.visits.present(moved)
        if not present:
            return
        if weight.delta_g > 0:
            if not self.restocked(weight, product):
                self.unseen_return(weight, bin_, present)
            return
        count = _units(weight.delta_g, product)
        if count == 0:
            return
        payers = {self.visits.payer(s) for s in present}
        if len(payers) == 1:
            payer = payers.pop()
            member = min(present)
            self.move(payer, member, product.sku, count, 0.0, weight.ts, (weight.event_id,))
            return
        where, seconds = self.whereabouts, moved.timestamp()
        around = where.around(seconds, bin_.position)
        busy = where.busy_elsewhere(seconds, weight.bin, present)
        densities = {
            s: where.density(s, bin_.position, moved) * around.get(s, 1.0) * busy.get(s, 1.0)
            if around.get(s, 1.0) > COULD_NOT_BE_HERE
            else COULD_NOT_BE_HERE
            for s in present
        }
        chances, members = self.by_payer(densities, sum(densities.values()))
        reason = ReviewReason(
            ReviewReasonCode.UNSEEN_BIN_CHANGE,
            f"{count} × {product.sku} left bin {weight.bin} unseen by cameras ({weight.event_id})",
            (weight.event_id,),
            product.sku,
            weight.bin,
            qty=count,
        )
        self.open.append(
            _Open(weight.event_id, weight.ts, product.sku, count, chances, members, (weight.event_id,), reason)
        )

    def restocked(self, weight: _Weight, product: Product) -> bool:
        """Whether a rise no camera saw is (part of) a restock of its bin: staff said so shortly before or after, and
        the units the restock brought are not all accounted for yet. Its units are then taken off the restock."""
        count = _units(weight.delta_g, product, slack=LOOSE_WEIGHT_SLACK) or 1
        for restock in self.restocks.get(weight.bin, ()):
            if restock.ts - self.timing.after <= weight.ts <= restock.ts + RESTOCKING and restock.qty > 0:
                restock.qty = max(0, restock.qty - count)
                return True
        return False

    def unseen_return(self, weight: _Weight, bin_: Bin, present: Iterable[str]) -> None:
        """Items came back that no camera saw: the weight says what; credited to the only payer who held it.

        A weighing a little off still credits the only holder (a put-back can only lower the charge), once no
        product matches it exactly.
        """
        payers = sorted({self.visits.payer(s) for s in present})
        held = {sku for p in payers for sku, n in self.held[p].items() if n > 0}
        products = [bin_.sku, *sorted(held - {bin_.sku})]
        for slack in (1.0, LOOSE_WEIGHT_SLACK):
            for sku in products:
                product = self.store.products.get(sku)
                count = _units(weight.delta_g, product, slack=slack) if product else 0
                holders = [p for p in payers if self.held[p].get(sku, 0) >= count] if count else []
                if not holders:
                    continue
                maybe = [
                    p
                    for p in payers
                    if p not in holders
                    and any(o.taken_by is None and o.sku == sku and o.chances.get(p) for o in self.open)
                ]
                if len(holders) == 1 and not maybe:
                    self.move(holders[0], holders[0], sku, -count, 0.0, weight.ts, (weight.event_id,))
                    return
                for payer in holders + maybe:
                    text = f"{count} × {sku} came back to bin {weight.bin} unseen ({weight.event_id})"
                    code = ReviewReasonCode.UNSEEN_RETURN
                    self.flag(payer, ReviewReason(code, text, (weight.event_id,), sku, weight.bin, qty=count))
                return

    def finish(self) -> None:
        """Items whose taker stayed open go to the one payer whose whereabouts single it out, at the risk that it was
        someone else's, when what asking would recover — the items' price times that payer's chance — is at least
        what a person's look costs the store (`unseen_review_cost`); otherwise they are left uncharged (a missed item
        — an unexplained loss the store sees — never a wrong charge). Such an item is charged only with a visit whose
        risk it leaves within the limit; otherwise a person is asked about it (`_carts`)."""
        for item in self.open:
            if item.taken_by is not None:
                continue
            for payer, chance in item.chances.items():
                if chance >= UNSEEN_WORTH_ASKING and chance * self.worth(item) >= self.unseen_review_cost:
                    member, risk = item.members[payer], 1.0 - chance
                    self.movements.append(
                        _Movement(payer, member, item.sku, item.qty, risk, item.ts, item.evidence, asked=item.reason)
                    )

    def worth(self, item: _Open) -> int:
        """What an open item would bring if charged: its product's unit price times how many (minor units)."""
        product = self.store.products.get(item.sku)
        return (product.unit_price if product else 0) * item.qty


def _likely(chances: Mapping[str, float]) -> dict[str, float]:
    """The payers at least `MAY_HAVE_TAKEN` likely, and the likeliest whatever its chance."""
    best = max(chances.values())
    return {payer: chance for payer, chance in chances.items() if chance >= MAY_HAVE_TAKEN or chance == best}


def _product_for(
    action: _Action,
    bin_: Bin,
    weight: _Weight | None,
    store: StoreModel,
    held: Mapping[str, int],
    together: int | None = None,
    spread: float = 0.0,
) -> tuple[str | None, int]:
    """Which product moved and how many: the scale decides when there is one, else the camera.

    A pick is of the product the camera saw or the bin holds; a put-back can be of anything the
    shopper holds (an item put back into another product's bin). Among the products the weight
    matches, one that makes the count the camera saw goes first; a change several actions share
    (`together`: the count they saw between them) gives each action its own count. A noisy weighing
    that only roughly matches what the camera saw still confirms it: within twice the product's tolerance, or as
    far off as the store's scales weigh (`spread`, `read_weighing_spread`).
    """
    if weight is None:
        return (action.sku or bin_.sku), action.qty
    products = action.products if action.sign > 0 else _returnable(action, bin_, held, store)
    expected = together or action.qty
    first: tuple[str, int] | None = None  # the first product the weight is a whole number of
    for product in products:
        count = _units(weight.delta_g, product)
        if count and count == expected:
            return product.sku, action.qty if expected != action.qty else count
        if count and first is None:
            first = product.sku, count
    if first is not None:
        return first[0], first[1] if expected == action.qty else action.qty
    seen = store.products.get(action.sku or bin_.sku)
    if seen is not None and (count := _units(weight.delta_g, seen, slack=LOOSE_WEIGHT_SLACK, spread=spread)):
        return seen.sku, count if expected == action.qty else action.qty
    return None, 0


def _returnable(action: _Action, bin_: Bin, held: Mapping[str, int], store: StoreModel) -> list[Product]:
    """What a put-back can be of, in the order tried: the product seen and the bin's when the shopper holds them,
    anything else it holds, then the product seen and the bin's all the same."""
    in_cart = sorted(sku for sku, qty in held.items() if qty > 0)
    candidates = [sku for sku in (action.sku, bin_.sku) if sku in in_cart]
    candidates += [sku for sku in in_cart if sku not in candidates]
    candidates += [sku for sku in (action.sku, bin_.sku) if sku and sku not in candidates]
    return [product for sku in candidates if (product := store.products.get(sku)) is not None]


@garbage_collection_paused()  # a day's reading is many small objects and no cycles
def infer_carts(
    *,
    events: Iterable[Mapping[str, Any]],
    store: StoreModel,
    calibration: Calibration | None = None,
    risk: float = DEFAULT_RISK,
    sessions: Iterable[str] | None = None,
    habits: StackHabits | None = None,
    unseen_review_cost: int = 0,
) -> dict[str, Cart]:
    """The cart of every visit in `events` (or of `sessions` only), with the decision to charge or review.

    `events` are the store's raw events (each with `_ts`, its parsed timestamp) around these visits:
    the visits' own, and the other visits' and the scales' near the same bins and times. `risk` is the
    licensee's: at most this share of visits overcharged; `calibration` the store's (default: none yet).
    A group's items are on its payer's cart (each line says which member took it); members' carts are empty.
    `habits` are how the store's stack reports (`StackHabits`; default: what these events show); a store that has
    learnt no calibration yet reads with the curves its scales taught. `unseen_review_cost` is what a person's look
    at an item no camera saw costs the store (minor units): such an item is asked about only when its price times
    the chance of the visit singled out is at least that (0: always, `_Fusion.finish`).
    """
    calibration = calibration or default_calibration()
    actions, weights, visits, reports, restocks, reading = _read(
        events, habits.confidence_reading if habits else None, store
    )
    timing = habits.scale_timing if habits else _timing_of(actions, weights)
    matched, seen_together = _match_weights(actions, weights, store, timing, visits.payer_of)
    if habits is None:
        learns = not calibration.has_learnt  # a store that has learnt reads with its own curves
        spread = read_weighing_spread(actions, matched, seen_together, store)
        weighed = (
            _weighed_lone_picks(actions, weights, matched, seen_together, store, reports, spread) if learns else {}
        )
        habits = _habits(reading, timing, weighed, spread, stack_names_rivals(actions))
    calibration = habits.applied_to(calibration)
    used_weights = {w.event_id for w in matched.values()}
    whereabouts = _Whereabouts(actions, visits, store)
    fusion = _Fusion(
        store,
        visits,
        reports,
        whereabouts,
        calibration,
        seen_together,
        timing,
        restocks,
        habits.weighing_spread,
        habits.names_rivals,
        unseen_review_cost,
    )
    steps: list[_Action | _Weight] = [*actions, *(w for w in weights if w.event_id not in used_weights)]
    for step in sorted(steps, key=attrgetter("ts", "event_id")):
        if isinstance(step, _Action):
            fusion.action(step, matched.get(step.event_id))
        else:
            fusion.unseen(step)
    fusion.finish()
    carts = _carts(fusion, visits, calibration, risk, actions)
    wanted = set(sessions) if sessions is not None else set(carts)
    return {s: carts.get(s) or Cart(s, (), "charge", (), payer=visits.payer_of.get(s)) for s in sorted(wanted)}


def _carts(
    fusion: _Fusion, visits: _Visits, calibration: Calibration, risk: float, actions: Sequence[_Action]
) -> dict[str, Cart]:
    by_payer: dict[str, list[_Movement]] = defaultdict(list)
    for movement in fusion.movements:
        by_payer[movement.payer].append(movement)
    payers = (set(by_payer) | set(fusion.must_ask) | set(visits.spans)) - set(visits.payer_of)
    risks = {payer: 1.0 - math.prod(1.0 - m.risk for m in by_payer.get(payer, ())) for payer in payers}
    # A store's first visits, before its calibration has seen any, share the budget among themselves.
    limit = (calibration if calibration.risks else with_risks(calibration, risks.values())).charge_limit(risk)
    attributions: dict[str | None, list[Attribution]] = defaultdict(list)
    for attribution in fusion.attributions.values():
        attributions[attribution.assigned].append(attribution)
    carts: dict[str, Cart] = {}
    bins: dict[str, str] = {}  # camera event -> its bin, read once a visit is sent to a person for its risk alone
    for payer in sorted(payers):
        must_ask = set(fusion.must_ask.get(payer, ()))
        if payer not in visits.spans:
            must_ask.add(ReviewReason(ReviewReasonCode.NO_ENTRY, "no session.started for this visit"))
        if payer in visits.strays:
            named = visits.strays[payer]
            text = f"entered as a companion of {named}, who is no payer that entered: who pays?"
            must_ask.add(ReviewReason(ReviewReasonCode.COMPANION_WITHOUT_PAYER, text, session=named))
        movements = by_payer.get(payer, [])
        lines, cannot_charge = _lines(movements, fusion.store, visits, group=payer in visits.members)
        visit_risk = round(risks[payer], 6)
        charge = not must_ask and not cannot_charge and visit_risk <= limit
        asked = set() if charge else {m.asked for m in movements if m.asked is not None}
        if asked:  # what no camera saw is the person's to add, not on the receipt they check
            seen = [m for m in movements if m.asked is None]
            lines, cannot_charge = _lines(seen, fusion.store, visits, group=payer in visits.members)
            must_ask |= asked
        must_ask |= cannot_charge
        reasons = set() if charge else must_ask | set(fusion.doubts.get(payer, ()))
        if not charge and not reasons:
            bins = bins or {action.event_id: action.bin for action in actions}
            reasons = {_risk_over_limit(movements, visit_risk, fusion.attributions, bins)}
        decision = "charge" if charge else "review"
        in_order = _in_order(reasons) if reasons else ()
        carts[payer] = Cart(payer, tuple(lines), decision, in_order, visit_risk, None, tuple(attributions[payer]))
    for member, payer in visits.payer_of.items():
        decision = carts[payer].decision
        text = f"one of the group paid by {payer}: decided with it"
        with_payer = (
            () if decision == "charge" else (ReviewReason(ReviewReasonCode.DECIDED_WITH_GROUP, text, session=payer),)
        )
        carts[member] = Cart(member, (), decision, with_payer, 0.0, payer)
    return carts


def _risk_over_limit(
    movements: Sequence[_Movement],
    visit_risk: float,
    attributions: Mapping[str, Attribution],
    bins: Mapping[str, str],
) -> ReviewReason:
    """Why a visit goes to a person for its risk alone, naming the take that makes most of that risk: its product,
    its bin and what saw it — where to look, and (on the store's calibration page) which bins send visits to people."""
    said = f"something on this receipt may not be this shopper's (likelihood {visit_risk:.1%}"
    doubtful = [m for m in movements if m.risk > 0 and m.evidence]
    if not doubtful:
        return ReviewReason(ReviewReasonCode.RISK_OVER_LIMIT, f"{said})")
    least_sure = min(doubtful, key=lambda m: (-m.risk, m.ts, m.evidence))
    event_id = least_sure.evidence[0]
    bin_code = bins.get(event_id)
    attribution = attributions.get(event_id)
    where = f" at bin {bin_code}" if bin_code else ""
    seen = f" — {KIND_TITLES[attribution.evidence][0].lower()}" if attribution is not None else ""
    text = f"{said}; least sure: {least_sure.sku}{where}{seen})"
    return ReviewReason(ReviewReasonCode.RISK_OVER_LIMIT, text, (event_id,), least_sure.sku, bin_code)


def _lines(
    movements: Sequence[_Movement], store: StoreModel, visits: _Visits, *, group: bool
) -> tuple[list[CartLine], set[ReviewReason]]:
    """A payer's receipt lines from its `movements`, and what keeps them from being charged without a person: more
    of a product put back than taken, an age-restricted product no ID check covers."""
    by_sku: dict[str, list[_Movement]] = {}
    for movement in movements:
        if movement.qty:
            by_sku.setdefault(movement.sku, []).append(movement)
    lines: list[CartLine] = []
    cannot_charge: set[ReviewReason] = set()
    for sku in sorted(by_sku):
        moves = by_sku[sku]
        qty = moves[0].qty if len(moves) == 1 else sum(m.qty for m in moves)  # (most products: one take)
        if qty < 0:
            text = f"more {sku} put back than taken"
            cannot_charge.add(ReviewReason(ReviewReasonCode.MORE_RETURNED_THAN_TAKEN, text, sku=sku))
        if qty <= 0:
            continue
        product = store.products.get(sku)
        if product is not None and product.min_age:
            cannot_charge |= _unverified_ages(product, moves, visits)
        lines.append(_line(sku, qty, moves, group=group))
    return lines, cannot_charge


def _line(sku: str, qty: int, moves: Sequence[_Movement], *, group: bool) -> CartLine:
    """The receipt line of `qty` (> 0) items of a product, from the payer's `moves` of it: as sure as its least
    sure take; on a `group`'s cart, with the members who took it. One pass over the moves: a day has thousands."""
    if len(moves) == 1:  # most lines: one take
        take = moves[0]
        evidence_of = tuple(sorted(set(take.evidence)))
        return CartLine(sku, qty, round(1.0 - take.risk, 4), take.ts, evidence_of, (take.member,) if group else ())
    first_seen, risks = moves[0].ts, []
    evidence: set[str] = set()
    members: set[str] = set()
    for movement in moves:
        first_seen = min(first_seen, movement.ts)
        evidence.update(movement.evidence)
        if movement.qty > 0:
            risks.append(movement.risk)
            members.add(movement.member)
    confidence = round(1.0 - max(risks), 4)
    return CartLine(sku, qty, confidence, first_seen, tuple(sorted(evidence)), tuple(sorted(members)) if group else ())


def _in_order(reasons: Iterable[ReviewReason]) -> tuple[ReviewReason, ...]:
    """Reasons in the order of their sentences (as a person reads them, the same from one reading to the next)."""
    return tuple(sorted(reasons, key=lambda reason: (reason.text, reason.code)))


def _unsure_taker(action: _Action, sku: str) -> ReviewReason:
    text = f"unsure who took or returned items at bin {action.bin} ({action.event_id})"
    return ReviewReason(UNSURE, text, (action.event_id,), sku, action.bin)


def _unverified_ages(product: Product, moves: Sequence[_Movement], visits: _Visits) -> set[ReviewReason]:
    """An age-restricted product on a receipt needs a passed ID check of at least its age for whoever took it (the
    payer's check covers the payer only: each companion is checked for what they took) in these `moves` of it."""
    return {
        ReviewReason(
            ReviewReasonCode.AGE_UNVERIFIED,
            f"{product.sku} is for {product.min_age}+ and no ID check of {member} proved it",
            sku=product.sku,
            session=member,
        )
        for member in sorted({m.member for m in moves if m.qty > 0})
        if not visits.old_enough(member, product.min_age)
    }


# The reasons a visit the engine could have charged is sent to a person with: its risk, and an ID check staff owe.
CHARGEABLE_BUT_FOR = frozenset({UNSURE, ReviewReasonCode.RISK_OVER_LIMIT, ReviewReasonCode.AGE_UNVERIFIED})
CAMERA_ALONE = (Evidence.CAMERA_ONLY, Evidence.CAMERA_COUNTED, Evidence.CAMERA_REPEATED)


def labelled_samples(*, carts: Mapping[str, Cart], decided: Mapping[str, Mapping[str, int]]) -> list[Sample]:
    """Labelled attributions for calibration, from the camera winners' picks that the engine kept with them.

    `decided` is what people decided (payer session -> sku -> qty) for visits they reviewed. Where a person
    kept fewer of a product than the engine had put on the cart, the engine's least likely picks of it are
    the ones that were not the shopper's; the others were. A put-back that settles whose a doubtful take was
    labels it without a person. A lone shopper's picks teach nothing: the curves answer how often a camera's
    winner is right among others, and a lone shopper is right whatever its margin — counted in, such picks
    draw the curves towards "a middling margin is as good as a wide one". A visit sent to a person for what its
    cart cannot explain teaches nothing either: what the person took off it is most often that (an item put back
    on another product's shelf, say), not a pick made by someone else.
    """
    samples: list[Sample] = []
    for cart in carts.values():
        explained = all(reason.code in CHARGEABLE_BUT_FOR for reason in cart.reasons)
        picks: dict[str, list[Attribution]] = defaultdict(list)
        for attribution in cart.attributions:
            if attribution.sign > 0 and attribution.sku and attribution.assigned == cart.session:
                picks[attribution.sku].append(attribution)
            if attribution.settled_by and _teaches(attribution):
                right = attribution.winner_payer == cart.session
                samples.append(Sample(attribution.evidence, attribution.margin, right, False))
        engine_qty = {line.sku: line.qty for line in cart.lines}
        for sku, claims in picks.items():
            if cart.session in decided and explained:
                wrong = max(0, engine_qty.get(sku, 0) - decided[cart.session].get(sku, 0))
                for claim in sorted(claims, key=lambda a: (a.probability, a.event_id)):
                    if _teaches(claim):
                        samples.append(Sample(claim.evidence, claim.margin, wrong <= 0, True))
                    wrong -= claim.qty
    return samples


def _teaches(attribution: Attribution) -> bool:
    """Whether a labelled pick teaches its kind's curve. A camera-alone kind's curve says whether a pick naming no one
    happened (its margin is its confidence), and the engine reads it at the confidence a pick gives all it names
    (`_Action.whether`: for a lone pick, its confidence); a hesitation between shoppers is right or wrong for who made
    it, which the weighed curves answer. Counted in, hesitations — right nine times in ten at margins under 0.4 — held
    the curve there for the lone picks of middling confidence too, which in both worlds' tuned stacks are imagined
    every time (docs/visits.md)."""
    return not (attribution.rivals and attribution.evidence in CAMERA_ALONE)


def labelled_visits(*, carts: Mapping[str, Cart], decided: Mapping[str, Mapping[str, int]]) -> list[VisitSample]:
    """The visits people decided that the engine would have charged but for their risk (or an ID check), each with
    that risk and whether its cart charged more of a product than the person kept: what checks the visit risks the
    charge limit is drawn from. A visit sent to a person for what its cart cannot explain (an unseen change, a
    weight matching no product, more put back than taken, …) is never charged whatever its risk, and its cart is
    wrong more often than its risk says: it is left out."""
    return [
        VisitSample(cart.risk, any(line.qty > decided[session].get(line.sku, 0) for line in cart.lines))
        for session, cart in carts.items()
        if session in decided and cart.payer is None and all(r.code in CHARGEABLE_BUT_FOR for r in cart.reasons)
    ]
