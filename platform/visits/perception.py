"""Simulated perception stacks: how a licensee's cameras and scales report what shoppers do.

Every vendor's stack reads a store differently. Its cameras report confidences on their own scale
(some never above 0.9, some near 1 for everything), hesitate or not when shoppers stand close,
list bystanders as alternatives or never, and now and then switch two people's tracks so that the
wrong shopper becomes the confident winner — with the real one listed behind, or not at all. Its
scales lag, drift, merge two quick changes into one, and go offline, announced or silently.

A *family* is a kind of stack: the ranges its character is drawn from. Each seed draws one stack
of the family, so that the engine is measured on many stacks of a kind and never tuned to one.
Families are named so that benchmarks can keep some of them out of all tuning (`HELD_OUT`).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, replace


@dataclass(frozen=True)
class PerceptionStack:
    """One stack's character. Confidences are drawn as a share of `ceiling`, the most it ever reports.

    `reach_m` is how close a bystander must stand for the cameras to confuse them with the one acting
    (a hesitation, or a switch of tracks); `listing_reach_m` how close to be listed as an alternative.
    """

    family: str
    ceiling: float
    confident: tuple[float, float]
    hesitant: tuple[float, float]
    reach_m: float
    listing_reach_m: float
    lists_bystanders: float
    bystander_confidence: tuple[float, float]
    hesitates: float
    wrong_when_hesitant: float
    id_switch: float
    switch_lists_actor: float
    missed: float
    phantom_per_visit: float
    miscount: float
    reports_sku: float
    scale_lag_s: tuple[float, float]
    scale_noise: float
    drift_per_scale_hour: float
    merge_window_s: float
    outages: int
    reports_outages: float

    def confidence(self, rng: random.Random, band: tuple[float, float]) -> float:
        return round(self.ceiling * rng.uniform(*band), 3)


def _baseline(rng: random.Random, family: str) -> PerceptionStack:
    """A decent stack: confidences that mean what they say, bystanders listed, few track switches, fair scales.
    Every family departs from it in one respect, so that each shows what that departure costs."""
    reach = rng.uniform(1.2, 1.8)
    return PerceptionStack(
        family=family,
        ceiling=round(rng.uniform(0.97, 1.0), 3),
        confident=(0.94, 1.0),
        hesitant=(0.52, 0.78),
        reach_m=reach,
        listing_reach_m=reach,
        lists_bystanders=rng.uniform(0.6, 1.0),
        bystander_confidence=(0.02, 0.3),
        hesitates=rng.uniform(0.3, 0.5),
        wrong_when_hesitant=rng.uniform(0.2, 0.3),
        id_switch=rng.uniform(0.003, 0.01),
        switch_lists_actor=rng.uniform(0.6, 0.9),
        missed=rng.uniform(0.005, 0.02),
        phantom_per_visit=rng.uniform(0.03, 0.1),
        miscount=rng.uniform(0.0, 0.02),
        reports_sku=rng.uniform(0.0, 0.4),
        scale_lag_s=(0.3, rng.uniform(1.0, 1.8)),
        scale_noise=rng.uniform(0.005, 0.02),
        drift_per_scale_hour=rng.uniform(0.0, 0.05),
        merge_window_s=rng.uniform(0.5, 1.5),
        outages=rng.choice((0, 0, 1)),
        reports_outages=1.0,
    )


def _compressed(base: PerceptionStack, rng: random.Random) -> PerceptionStack:
    """Confidence that never exceeds about 0.9; everyone within a few metres listed; switches that often leave
    the real actor unlisted."""
    return replace(
        base,
        ceiling=round(rng.uniform(0.86, 0.91), 3),
        listing_reach_m=rng.uniform(2.0, 3.0),
        lists_bystanders=rng.uniform(0.85, 1.0),
        id_switch=rng.uniform(0.01, 0.02),
        switch_lists_actor=rng.uniform(0.2, 0.5),
    )


def _diffident(base: PerceptionStack, rng: random.Random) -> PerceptionStack:
    """Understates itself unevenly: a sure pick reported anywhere from about 0.7 of its ceiling up, a hesitation
    from 0.45 to 0.7. Its top is its ceiling, so reading it on its own scale changes little: only what the store's
    reviews teach tells its sure picks from its hesitations."""
    return replace(base, confident=(rng.uniform(0.65, 0.75), 1.0), hesitant=(0.45, 0.7))


def _switchy(base: PerceptionStack, rng: random.Random) -> PerceptionStack:
    """Tracking that often swaps people who pass close: a confident wrong winner, the real one often unlisted."""
    return replace(base, id_switch=rng.uniform(0.03, 0.07), switch_lists_actor=rng.uniform(0.1, 0.5))


def _overconfident(base: PerceptionStack, rng: random.Random) -> PerceptionStack:
    """Near-certain about everything, its hesitations included, with tiny confidences for the alternatives."""
    return replace(
        base,
        ceiling=round(rng.uniform(0.995, 1.0), 3),
        confident=(0.97, 1.0),
        hesitant=(0.8, 0.96),
        bystander_confidence=(0.005, 0.05),
    )


def _laggy_scales(base: PerceptionStack, rng: random.Random) -> PerceptionStack:
    """Good cameras over poor scales: late, noisy, drifting, merging quick changes, going offline silently."""
    return replace(
        base,
        scale_lag_s=(rng.uniform(0.5, 1.0), rng.uniform(2.5, 4.5)),
        scale_noise=rng.uniform(0.02, 0.04),
        drift_per_scale_hour=rng.uniform(0.1, 0.4),
        merge_window_s=rng.uniform(1.5, 3.0),
        outages=rng.choice((1, 2)),
        reports_outages=rng.uniform(0.0, 0.5),
    )


def _slow_scales(base: PerceptionStack, rng: random.Random) -> PerceptionStack:
    """Scales that settle late: each change stamped several seconds to a quarter of a minute after the hand moved
    (a slow load cell, or a clock of its own behind the cameras')."""
    return replace(base, scale_lag_s=(rng.uniform(3.0, 6.0), rng.uniform(9.0, 15.0)))


def _miscounting(base: PerceptionStack, rng: random.Random) -> PerceptionStack:
    """Cameras that miss actions, see phantom ones and miscount how many items moved."""
    return replace(
        base,
        missed=rng.uniform(0.04, 0.08),
        phantom_per_visit=rng.uniform(0.15, 0.3),
        miscount=rng.uniform(0.05, 0.12),
    )


def _silent(base: PerceptionStack, rng: random.Random) -> PerceptionStack:
    """A stack that never lists alternatives: one winner per action, whatever it thinks of the others."""
    return replace(base, lists_bystanders=0.0, switch_lists_actor=0.0)


# How each family departs from the baseline, in one respect.
DEPARTURES: dict[str, Callable[[PerceptionStack, random.Random], PerceptionStack]] = {
    "switchy": _switchy,
    "laggy_scales": _laggy_scales,
    "compressed": _compressed,
    "diffident": _diffident,
    "overconfident": _overconfident,
    "miscounting": _miscounting,
    "silent": _silent,
    "slow_scales": _slow_scales,
}


def _departing(name: str) -> Callable[[random.Random], PerceptionStack]:
    def draw(rng: random.Random) -> PerceptionStack:
        return DEPARTURES[name](_baseline(rng, name), rng)

    return draw


def _mixed(rng: random.Random) -> PerceptionStack:
    """Two or three departures at once, drawn per seed (a later one wins where two set the same trait): a real
    vendor's stack is rarely poor in one respect only, and the engine was never tuned on any combination."""
    stack = _baseline(rng, "mixed")
    for name in rng.sample(sorted(DEPARTURES), k=rng.choice((2, 3))):
        stack = DEPARTURES[name](stack, rng)
    return stack


def _perfect(rng: random.Random) -> PerceptionStack:
    """Every action seen once, attributed surely, weighed exactly: for demos and exact tests."""
    return replace(
        _baseline(rng, "perfect"),
        ceiling=1.0,
        confident=(0.95, 0.995),
        reach_m=0.0,
        listing_reach_m=0.0,
        lists_bystanders=0.0,
        hesitates=0.0,
        wrong_when_hesitant=0.0,
        id_switch=0.0,
        switch_lists_actor=0.0,
        missed=0.0,
        phantom_per_visit=0.0,
        miscount=0.0,
        reports_sku=0.2,
        scale_lag_s=(0.3, 1.5),
        scale_noise=0.0,
        drift_per_scale_hour=0.0,
        merge_window_s=0.0,
        outages=0,
    )


FAMILIES: dict[str, Callable[[random.Random], PerceptionStack]] = {
    "perfect": _perfect,
    "calibrated": lambda rng: _baseline(rng, "calibrated"),
    **{name: _departing(name) for name in DEPARTURES},
    "mixed": _mixed,
}
# Families no rule or constant of the engine was tuned on: the accuracy benchmark reports them apart.
HELD_OUT = ("compressed", "diffident", "overconfident", "miscounting", "silent", "slow_scales", "mixed")
TUNED = ("calibrated", "switchy", "laggy_scales")


def draw_stack(*, family: str, seed: int) -> PerceptionStack:
    """The stack of `family` that `seed` draws (the same for the same seed)."""
    return FAMILIES[family](random.Random(f"{family}:{seed}"))
