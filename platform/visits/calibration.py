"""A store's calibration: what its perception stack's camera scores mean, learned from its own visits.

A vendor's confidence is not our probability: one stack never reports more than 0.9, another says
0.99 of everything. For each kind of evidence (`Evidence`) a calibration holds a monotone curve from
the camera's *margin* (its winner's confidence minus its runner-up's) to the probability that the
winner really did it. It is learned from labelled examples (`Sample`):

* visits a person decided — the reviewer's cart says whether each camera winner took the item;
* cases that need no person — a put-back that settles who held it. (Not the only shopper in the store: it
  is right at any margin, which says nothing of how often a winner is right among others.)

Curves are fitted in two steps. First the prior curve is moved as a whole: an offset and a slope in margin
added to its log-odds (a logistic fit over all of the kind's examples, shrunk towards no change), so a stack
that squeezes or inflates its scores shifts every margin at once. Then isotonic regression (pool adjacent
violators) over binned margins, each bin shrunk towards that moved curve: sparse bins borrow strength from
all the examples without flattening the curve, and a store's first reviews move it gradually.

The licensee sets a *risk* — at most this share of visits overcharged — rather than a threshold.
A visit's risk is the probability that something on its receipt is not the shopper's; the engine
charges every visit whose risk is at most `charge_limit(risk)`, the highest cut-off at which the
expected overcharges of the charged visits stay within the budget over the store's recent visits,
and asks a person about the rest. The visit risks are checked against what people found in the visits they
decided (`fit_risks`); those under the limit are charged and never reviewed, so there the disputes of the
shoppers charged are the check: they can show that a band's risks are too low, never that they are too high,
since not every overcharged shopper disputes.

Pure functions over plain data; the store's calibration row (`visits.models.StoreCalibration`)
keeps one as JSON (`as_json` / `from_json`).
"""

from __future__ import annotations

import bisect
import math
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from itertools import pairwise
from typing import Any, NamedTuple

BINS = 20
TABLE_STEPS = 1000
# A bin of margin starts from the store's own curve (the prior moved by `_store_shift`) worth `PRIOR_WEIGHT` examples:
# one wrong label among ten no longer makes a bin's picks several times riskier than its neighbours'.
PRIOR_WEIGHT = 10.0
# The store's departure from the prior (an offset and a slope in log-odds) is shrunk towards none by a Gaussian prior
# of this precision: a handful of examples barely move it, a few hundred set it.
SHIFT_PRECISION = 1.0
NEWTON_STEPS = 8
MAX_STEP = 2.0
MAX_PROBABILITY = 0.9995
KEPT_RISKS = 2000
# The risk settings a store is shown the effect of on its recent visits, with its own (`Calibration.risk_option`).
RISK_SETTINGS = (0.001, 0.0025, 0.005, 0.01, 0.02)
# Visit risks are checked against what people decided in bands of risk (the lower edge of each). In a band, the
# overcharges found are weighed against those the risks expected with a prior worth `RISK_PRIOR_OVERCHARGES`
# expected overcharges that says "the risks are right": a band moves only once its visits expected several.
RISK_BANDS = (0.0, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5)
RISK_PRIOR_OVERCHARGES = 2.0
# What disputes show in a band of visits charged without a person is a floor (not every overcharged shopper
# disputes): the overcharges that, at this confidence, at least happen, given those shown (a Poisson lower bound).
FLOOR_CONFIDENCE = 0.95
# A store learns again once this many more of its visits were decided by people (or a day later with fewer).
LEARN_AFTER_REVIEWS = 25


class Evidence(StrEnum):
    """What backs a camera's attribution, besides the camera."""

    WEIGHED_ALONE = "weighed_alone"  # a scale weighed it; no one else listed or seen near
    WEIGHED_CONTESTED = "weighed_contested"  # a scale weighed it; others listed or seen near
    CAMERA_ONLY = "camera_only"  # no working scale: the camera alone says what and who
    CAMERA_COUNTED = "camera_counted"  # no working scale, and the camera counted several items in one move
    CAMERA_REPEATED = "camera_repeated"  # no working scale, the same visit at the same bin again moments later
    WEIGHED_BUSY = "weighed_busy"  # a scale weighed it; the winner, nobody else named, was busy at another bin


# Each kind of evidence in people's words: a title, and what it means (the calibration page, the review reasons).
KIND_TITLES = {
    Evidence.WEIGHED_ALONE: ("Scale agrees, nobody else near", "a scale weighed it; nobody else in view"),
    Evidence.WEIGHED_CONTESTED: ("Scale agrees, others near", "a scale weighed it; others listed or close"),
    Evidence.CAMERA_ONLY: ("Camera alone", "no working scale: the camera says what and who"),
    Evidence.CAMERA_COUNTED: ("Camera counted several", "no scale: the camera counted items in one move"),
    Evidence.CAMERA_REPEATED: ("Camera saw it twice", "no scale: the same shopper at the bin again"),
    Evidence.WEIGHED_BUSY: ("Scale agrees, winner busy", "a scale weighed it; winner busy at another bin"),
}


# The margins a curve's table holds its value at.
_TABLE_MARGINS = tuple(step / TABLE_STEPS for step in range(TABLE_STEPS + 1))


@dataclass(frozen=True)
class Curve:
    """Probability that the camera's winner did it, by margin: piecewise linear through (margin, p) points."""

    points: tuple[tuple[float, float], ...]
    _table: list[float] = field(default_factory=list, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Each margin reads the segment that ends at the first point at or past it: the table is filled a segment at
        # a time (a store's scales teach curves every day it is read).
        points, table = self.points, self._table
        margins = _TABLE_MARGINS
        start = bisect.bisect_right(margins, points[0][0])
        table += [points[0][1]] * start
        for (x0, y0), (x1, y1) in pairwise(points):
            end = bisect.bisect_right(margins, x1, start)
            table += [y0 + (y1 - y0) * (margin - x0) / (x1 - x0) for margin in margins[start:end]]
            start = end
        table += [points[-1][1]] * (len(margins) - start)

    def __call__(self, margin: float) -> float:
        if not 0.0 <= margin <= 1.0:  # (a comparison is cheaper than clamping every margin: most are within)
            margin = min(1.0, max(0.0, margin))
        return self._table[round(margin * TABLE_STEPS)]


@dataclass(frozen=True)
class Sample:
    """One labelled attribution: the kind of evidence, the camera's margin, and whether its winner did it."""

    evidence: Evidence
    margin: float
    correct: bool
    reviewed: bool


def _centre(index: int) -> float:
    return (index + 0.5) / BINS


# What we assume of a stack we know nothing about yet: a camera's winner by a wide margin is right, by none a coin
# flip; others standing close make it less sure; a camera alone can see a hand move that took nothing, counts
# several items in one move less surely than one, and may see one hand twice.
_PRIOR: dict[Evidence, Curve] = {
    Evidence.WEIGHED_ALONE: Curve(((0.0, 0.5), (0.5, 0.8), (0.8, 0.97), (0.9, 0.998), (1.0, 0.9995))),
    Evidence.WEIGHED_CONTESTED: Curve(((0.0, 0.5), (0.3, 0.75), (0.6, 0.9), (0.8, 0.97), (0.9, 0.99), (1.0, 0.995))),
    Evidence.CAMERA_ONLY: Curve(((0.0, 0.3), (0.5, 0.5), (0.9, 0.98), (1.0, 0.99))),
    Evidence.CAMERA_COUNTED: Curve(((0.0, 0.2), (0.5, 0.4), (0.9, 0.9), (1.0, 0.95))),
    Evidence.CAMERA_REPEATED: Curve(((0.0, 0.1), (0.5, 0.3), (0.9, 0.85), (1.0, 0.92))),
    Evidence.WEIGHED_BUSY: Curve(((0.0, 0.5), (0.5, 0.8), (0.8, 0.97), (0.9, 0.998), (1.0, 0.9995))),
}


@dataclass(frozen=True)
class VisitSample:
    """One visit a person decided: the risk the engine gave it, and whether its cart charged something not taken."""

    risk: float
    overcharged: bool


@dataclass(frozen=True)
class ChargedVisit:
    """A visit charged without a person: the risk the engine gives it, and the overcharge its shopper's disputes
    showed (`charged_visits`)."""

    risk: float
    overcharged: float


class DisputeOutcome(StrEnum):
    """What became of the disputes of a visit charged without a person, the strongest first."""

    UPHELD = "upheld"  # a person refunded some of it
    REFUNDED_UNCHECKED = "refunded_unchecked"  # refunded by the store's policy or at its deadline, nobody looking
    REJECTED = "rejected"  # a person refunded none of it
    NONE = "none"  # not disputed, or not decided yet, or refused by the policy (out of its window, not on the receipt)


def charged_visits(visits: Iterable[tuple[float, DisputeOutcome]]) -> list[ChargedVisit]:
    """Visits charged without a person, (risk, what became of their disputes), as what their disputes showed: an
    overcharge where a person upheld one; where one was refunded unchecked, the share of the disputes people checked
    that they upheld (a Beta(1, 1) mean: shoppers dispute lines they took too); nothing otherwise."""
    visits = list(visits)
    outcomes = Counter(outcome for _, outcome in visits)
    checked = outcomes[DisputeOutcome.UPHELD] + outcomes[DisputeOutcome.REJECTED]
    worth = {
        DisputeOutcome.UPHELD: 1.0,
        DisputeOutcome.REFUNDED_UNCHECKED: (1 + outcomes[DisputeOutcome.UPHELD]) / (2 + checked),
    }
    return [ChargedVisit(risk, worth.get(outcome, 0.0)) for risk, outcome in visits]


class RiskOption(NamedTuple):
    """What a risk setting does to a store's recent visits (`Calibration.risks`): the charge limit it gives, the
    share of those visits whose risk is over it (a person is asked about them), and the share expected overcharged
    among all of them — the risks of those charged, as the store's decided visits and disputes bore them out."""

    risk: float
    charge_limit: float
    sent_for_risk: float
    expected_overcharged: float


def _band(risk: float) -> int:
    return bisect.bisect_right(RISK_BANDS, risk) - 1


@dataclass(frozen=True)
class Calibration:
    curves: Mapping[Evidence, Curve]
    risks: tuple[float, ...] = ()
    samples: int = 0
    reviewed: int = 0
    support: Mapping[Evidence, tuple[tuple[float, int, int], ...]] = field(default_factory=dict)
    # Per band of visit risk (`RISK_BANDS`): how the overcharges people found compare with those the risks expected
    # (1.0: as expected), and what it was learnt from — (band's lower edge, visits, overcharged, expected).
    risk_ratios: tuple[float, ...] = ()
    risk_support: tuple[tuple[float, int, int, float], ...] = ()
    # Per band, what the disputes of the visits charged without a person showed — (band's lower edge, visits,
    # overcharges shown, expected).
    dispute_support: tuple[tuple[float, int, float, float], ...] = ()

    @property
    def has_learnt(self) -> bool:
        """Whether the store has taught this calibration anything (a labelled example of any kind)."""
        return bool(self.samples or self.support)

    def probability(self, evidence: Evidence, margin: float) -> float:
        return min(MAX_PROBABILITY, self.curves[evidence](margin))

    def happened(self, evidence: Evidence, margin: float) -> float:
        """For a kind of camera-alone evidence: the chance that its pick happened as counted, whoever made it. Its
        curve is the chance that the pick is right, which is that times the chance that its winner made it — the
        weighed contested prior's, as `scale_taught` puts it in — so that part is taken out again: who made it is
        what the engine reads from the shoppers around (`engine._Fusion.who`)."""
        return min(MAX_PROBABILITY, self.curves[evidence](margin) / _PRIOR[Evidence.WEIGHED_CONTESTED](margin))

    def overcharge(self, risk: float) -> float:
        """The chance that a visit the engine gives `risk` is overcharged, as this store's decided visits say."""
        if not self.risk_ratios:
            return risk
        return min(1.0, risk * self.risk_ratios[_band(risk)])

    def charge_limit(self, target: float) -> float:
        """The highest visit risk to charge at so that the charged visits' expected overcharges stay within
        `target` × visits, over the store's recent visits; never below the risk at which a visit is within `target`
        by itself (`_within_alone`). Every visit at or under the limit is charged, so visits of equal risk are
        counted together. A visit's expected overcharge is its risk as the store's decided visits and disputes have
        borne it out (`overcharge`)."""
        if not self.risks:
            return target
        budget = target * len(self.risks)
        spent, limit = 0.0, self._within_alone(target)
        for index, risk in enumerate(self.risks):
            spent += self.overcharge(risk)
            last_of_its_risk = index + 1 == len(self.risks) or self.risks[index + 1] != risk
            if last_of_its_risk:
                if spent > budget:
                    break
                limit = max(limit, risk)
        return limit

    def risk_option(self, target: float) -> RiskOption:
        """What setting the store's risk to `target` does to its recent visits (none: nothing is sent, nothing
        expected)."""
        limit = self.charge_limit(target)
        if not self.risks:
            return RiskOption(target, limit, 0.0, 0.0)
        charged = bisect.bisect_right(self.risks, limit)
        expected = sum(self.overcharge(risk) for risk in self.risks[:charged])
        visits = len(self.risks)
        return RiskOption(target, limit, round(1.0 - charged / visits, 4), round(expected / visits, 5))

    def _within_alone(self, target: float) -> float:
        """`target` itself, unless a recent visit at or under it is counted at more (`overcharge`): then the
        highest recent risk under that visit's."""
        below = 0.0
        for risk in self.risks:
            if risk > target:
                break
            if self.overcharge(risk) > target:
                return below
            below = risk
        return target

    def as_json(self) -> dict[str, Any]:
        return {
            "curves": {str(kind): [list(p) for p in curve.points] for kind, curve in self.curves.items()},
            "risks": list(self.risks),
            "samples": self.samples,
            "reviewed": self.reviewed,
            "support": {str(kind): [list(row) for row in rows] for kind, rows in self.support.items()},
            "risk_ratios": list(self.risk_ratios),
            "risk_support": [list(row) for row in self.risk_support],
            "dispute_support": [list(row) for row in self.dispute_support],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Calibration:
        curves = dict(_PRIOR)
        for kind, points in (data.get("curves") or {}).items():
            if kind in Evidence.__members__.values():
                curves[Evidence(kind)] = Curve(tuple((float(x), float(y)) for x, y in points))
        return cls(
            curves=curves,
            risks=tuple(sorted(float(r) for r in data.get("risks") or ())),
            samples=int(data.get("samples") or 0),
            reviewed=int(data.get("reviewed") or 0),
            support={
                Evidence(kind): tuple((float(m), int(n), int(c)) for m, n, c in rows)
                for kind, rows in (data.get("support") or {}).items()
                if kind in Evidence.__members__.values()
            },
            risk_ratios=tuple(float(r) for r in data.get("risk_ratios") or ())
            if len(data.get("risk_ratios") or ()) == len(RISK_BANDS)
            else (),
            risk_support=tuple(
                (float(edge), int(n), int(over), float(expected))
                for edge, n, over, expected in data.get("risk_support") or ()
            ),
            dispute_support=tuple(
                (float(edge), int(n), float(over), float(expected))
                for edge, n, over, expected in data.get("dispute_support") or ()
            ),
        )


def default() -> Calibration:
    """The calibration of a store that has taught us nothing yet."""
    return Calibration(curves=dict(_PRIOR))


def _pool_adjacent_violators(values: list[float], weights: list[float]) -> list[float]:
    """The non-decreasing sequence closest to `values` in weighted least squares."""
    blocks: list[list[float]] = []  # [mean, weight, count]
    for value, weight in zip(values, weights, strict=True):
        blocks.append([value, weight, 1])
        while len(blocks) > 1 and blocks[-2][0] > blocks[-1][0]:
            mean2, weight2, count2 = blocks.pop()
            mean1, weight1, count1 = blocks[-1]
            total = weight1 + weight2
            blocks[-1] = [(mean1 * weight1 + mean2 * weight2) / total, total, count1 + count2]
    fitted: list[float] = []
    for mean, _, count in blocks:
        fitted += [mean] * int(count)
    return fitted


def _logit(p: float) -> float:
    p = min(1.0 - 1e-4, max(1e-4, p))
    return math.log(p / (1.0 - p))


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x)) if x >= 0 else math.exp(x) / (1.0 + math.exp(x))


def _store_shift(samples: list[Sample], prior: Curve) -> tuple[float, float]:
    """How this store's stack departs from the prior: the offset and slope (in margin) added to the prior's
    log-odds that best explain the examples, each shrunk towards nothing (`SHIFT_PRECISION`); a few Newton steps."""
    # Examples of one margin and label count together: a store's thousands of picks hold a few hundred such pairs.
    pairs = Counter((s.margin, s.correct) for s in samples)
    offsets = [(_logit(prior(margin)), margin - 0.5, float(correct), n) for (margin, correct), n in pairs.items()]
    a = b = 0.0
    for _ in range(NEWTON_STEPS):
        ga, gb = -SHIFT_PRECISION * a, -SHIFT_PRECISION * b
        haa = hbb = SHIFT_PRECISION
        hab = 0.0
        for base, x, y, n in offsets:
            p = _sigmoid(base + a + b * x)
            w, residual = p * (1.0 - p) * n, (y - p) * n
            ga += residual
            gb += residual * x
            haa += w
            hab += w * x
            hbb += w * x * x
        det = haa * hbb - hab * hab
        # Steps bounded so that a store whose examples all agree cannot overshoot: the shrinkage ends them anyway.
        a += max(-MAX_STEP, min(MAX_STEP, (hbb * ga - hab * gb) / det))
        b += max(-MAX_STEP, min(MAX_STEP, (haa * gb - hab * ga) / det))
    return a, b


def _fit_curve(samples: list[Sample], prior: Curve) -> tuple[Curve, tuple[tuple[float, int, int], ...]]:
    points, support = _fitted_points(samples, prior)
    return Curve(points), support


def _fitted_points(
    samples: list[Sample], prior: Curve
) -> tuple[tuple[tuple[float, float], ...], tuple[tuple[float, int, int], ...]]:
    counts = [0] * BINS
    correct = [0] * BINS
    for sample in samples:
        index = min(BINS - 1, max(0, int(sample.margin * BINS)))
        counts[index] += 1
        correct[index] += sample.correct
    a, b = _store_shift(samples, prior)
    means, weights = [], []
    for index in range(BINS):
        centre = _centre(index)
        expected = _sigmoid(_logit(prior(centre)) + a + b * (centre - 0.5))
        weight = counts[index] + PRIOR_WEIGHT
        means.append((correct[index] + PRIOR_WEIGHT * expected) / weight)
        weights.append(weight)
    fitted = _pool_adjacent_violators(means, weights)
    points = tuple((round(_centre(index), 4), round(p, 5)) for index, p in enumerate(fitted))
    support = tuple((round(_centre(i), 4), counts[i], correct[i]) for i in range(BINS) if counts[i])
    return points, support


def scale_taught(samples: list[Sample]) -> Curve:
    """A camera-alone kind's curve for a store that has learnt nothing yet, taught by its own scales: how often its
    lone picks of each margin happen (`samples`: picks a working scale confirmed or not, all of one kind, fitted as
    any kind's examples are), times how often a weighed pick of that margin with others near is the winner's (the
    prior's: who took it is not the scale's to say, and a camera alone says nothing of who else stood close)."""
    kind = samples[0].evidence
    happens, _ = _fitted_points(samples, _PRIOR[kind])
    winner = _PRIOR[Evidence.WEIGHED_CONTESTED]
    return Curve(tuple((margin, round(p * winner(margin), 5)) for margin, p in happens))


def fit(
    *, samples: Iterable[Sample], prior: Calibration | None = None, taught: Mapping[Evidence, Curve] | None = None
) -> Calibration:
    """A calibration learned from labelled attributions. Each kind's curve moves from the prior's — or from the
    curve the store's scales `taught` it (`scale_taught`), where they did: what its reviews teach then refines
    what its scales did. A kind with no examples keeps `prior`'s curve (default: the prior, or what was taught)."""
    base = prior or default()
    start = {**_PRIOR, **(taught or {})}
    by_kind: dict[Evidence, list[Sample]] = {kind: [] for kind in Evidence}
    total = reviewed = 0
    for sample in samples:
        by_kind[sample.evidence].append(sample)
        total += 1
        reviewed += sample.reviewed
    curves: dict[Evidence, Curve] = {}
    support: dict[Evidence, tuple[tuple[float, int, int], ...]] = {}
    for kind in Evidence:
        if by_kind[kind]:
            curves[kind], support[kind] = _fit_curve(by_kind[kind], start[kind])
        else:
            curves[kind] = base.curves[kind] if kind in base.support else start.get(kind, base.curves[kind])
    return replace(base, curves=curves, samples=total, reviewed=reviewed, support=support)


def with_risks(calibration: Calibration, risks: Iterable[float]) -> Calibration:
    """The calibration with the visit risks that its charge limit is drawn from (the store's recent visits)."""
    kept = sorted(risks)
    if len(kept) > KEPT_RISKS:
        step = len(kept) / KEPT_RISKS
        kept = [kept[int(i * step)] for i in range(KEPT_RISKS)]
    return replace(calibration, risks=tuple(round(r, 6) for r in kept))


def fit_risks(
    calibration: Calibration, *, visits: Iterable[VisitSample], charged: Iterable[ChargedVisit] = ()
) -> Calibration:
    """The calibration with its visit risks checked against what people decided (`Calibration.overcharge`), and
    against the disputes of the visits charged without a person.

    Selection by risk is no bias among decided visits: every visit over the charge limit goes to a person, so
    within a band of risk the decided ones are the band's visits (and visits sent for other reasons — an age check,
    an unseen change — are decided at every risk). Per band, the overcharges found against those the risks
    expected, with a prior of `RISK_PRIOR_OVERCHARGES` expected ones saying the risks are right (a gamma-Poisson
    mean). The visits under the limit are charged, and only their shoppers' disputes check them: not every
    overcharged shopper disputes, so what disputes show is a floor: the overcharges that at least happen, at
    `FLOOR_CONFIDENCE`, given those shown, against those the risks expected. It raises a band's ratio where it is
    the higher and never lowers it.
    """
    reviewed = _band_counts((visit.risk, float(visit.overcharged)) for visit in visits)
    disputed = _band_counts((visit.risk, visit.overcharged) for visit in charged)
    ratios = tuple(
        round(max(_ratio(*reviewed[band][1:]), _floor(*disputed[band][1:])), 4) for band in range(len(RISK_BANDS))
    )
    return replace(
        calibration,
        risk_ratios=ratios,
        risk_support=tuple(
            (RISK_BANDS[band], n, int(over), round(expected, 4))
            for band, (n, over, expected) in enumerate(reviewed)
            if n
        ),
        dispute_support=tuple(
            (RISK_BANDS[band], n, round(over, 4), round(expected, 4))
            for band, (n, over, expected) in enumerate(disputed)
            if n
        ),
    )


def _band_counts(visits: Iterable[tuple[float, float]]) -> list[tuple[int, float, float]]:
    """Per band of risk: (visits, overcharges, overcharges the risks expected)."""
    counts = [0] * len(RISK_BANDS)
    overcharged = [0.0] * len(RISK_BANDS)
    expected = [0.0] * len(RISK_BANDS)
    for risk, over in visits:
        band = _band(risk)
        counts[band] += 1
        overcharged[band] += over
        expected[band] += risk
    return list(zip(counts, overcharged, expected, strict=True))


def _ratio(overcharged: float, expected: float) -> float:
    return (RISK_PRIOR_OVERCHARGES + overcharged) / (RISK_PRIOR_OVERCHARGES + expected)


def _floor(overcharged: float, expected: float) -> float:
    return _poisson_lower_bound(int(overcharged)) / expected if expected > 0 else 0.0


def _poisson_lower_bound(events: int) -> float:
    """The lowest Poisson mean under which `events` or more happen with a chance of at least 1 − `FLOOR_CONFIDENCE`
    (bisection on the tail: it grows with the mean)."""
    if events < 1:
        return 0.0
    low, high = 0.0, float(events)
    for _ in range(50):
        mean = (low + high) / 2
        fewer = sum(math.exp(n * math.log(mean) - mean - math.lgamma(n + 1)) for n in range(events)) if mean else 1.0
        low, high = (mean, high) if 1.0 - fewer < 1.0 - FLOOR_CONFIDENCE else (low, mean)
    return low
