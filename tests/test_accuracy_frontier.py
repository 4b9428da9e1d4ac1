"""The accuracy benchmark's frontier (bench/accuracy.py `_frontier`): the review share that perfectly counted risks
would give with the engine's own order of the visits."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.append(str(Path(__file__).resolve().parents[1] / "bench"))  # after platform/: bench/ingest.py shadows ingest

from accuracy import _frontier


def test_visits_are_charged_lowest_risk_first_while_the_real_overcharges_stay_within_the_budget() -> None:
    visits = [(0.001, True, False)] * 6
    visits += [(0.01, True, True), (0.02, True, False), (0.3, True, True), (0.4, True, False)]

    assert _frontier(visits, 0.0) == 0.4  # the first overcharge is over a budget of none
    assert _frontier(visits, 0.1) == 0.2  # one overcharge in ten visits: the second is not charged
    assert _frontier(visits, 0.2) == 0.0


def test_visits_it_cannot_charge_are_asked_about_whatever_the_budget() -> None:
    visits = [(0.0, True, False), (0.0, False, False), (0.5, False, True), (0.001, True, False)]

    assert _frontier(visits, 1.0) == 0.5


def test_visits_of_equal_risk_are_charged_together_or_not_at_all() -> None:
    visits = [(0.001, True, False), (0.05, True, True), (0.05, True, False), (0.05, True, True), (0.1, True, False)]

    assert _frontier(visits, 0.2) == 0.8  # two overcharges at 0.05 are over a budget of one
    assert _frontier(visits, 0.4) == 0.0


def test_no_visits_ask_nothing() -> None:
    assert _frontier([], 0.005) == 0.0
