"""A store's calibration: curves learnt from labelled picks, the charge limit drawn from a risk, and a stack whose
confidences are squeezed under 0.9 learning to be read as well as one whose confidences mean what they say."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from ingest.validation import parse_timestamp
from visits.calibration import (
    RISK_BANDS,
    Calibration,
    ChargedVisit,
    DisputeOutcome,
    Evidence,
    RiskOption,
    Sample,
    VisitSample,
    charged_visits,
    default,
    fit,
    fit_risks,
    with_risks,
)
from visits.engine import infer_carts, labelled_samples, labelled_visits
from visits.perception import PerceptionStack, draw_stack
from visits.simulator import simulate
from visits.tests.test_pricing_and_simulator import CATALOG, LAYOUT, STORE, T0


def test_a_curve_follows_its_examples_where_it_has_many_and_the_prior_where_it_has_none() -> None:
    wrong_at_half = [Sample(Evidence.WEIGHED_CONTESTED, 0.52, n % 2 == 0, True) for n in range(200)]
    right_when_sure = [Sample(Evidence.WEIGHED_CONTESTED, 0.97, True, True) for _ in range(200)]
    learnt = fit(samples=wrong_at_half + right_when_sure)
    contested = learnt.curves[Evidence.WEIGHED_CONTESTED]
    assert contested(0.52) == pytest.approx(0.5, abs=0.03)
    assert contested(0.97) > 0.99
    assert learnt.curves[Evidence.CAMERA_ONLY] == default().curves[Evidence.CAMERA_ONLY]
    assert (learnt.samples, learnt.reviewed) == (400, 400)


def test_a_curve_never_falls_as_the_camera_grows_surer() -> None:
    # Examples that say the opposite of what the camera does: the curve pools them rather than bend down.
    samples = [Sample(Evidence.WEIGHED_ALONE, 0.3, True, True) for _ in range(50)]
    samples += [Sample(Evidence.WEIGHED_ALONE, 0.7, False, True) for _ in range(50)]
    curve = fit(samples=samples).curves[Evidence.WEIGHED_ALONE]
    values = [curve(step / 100) for step in range(101)]
    assert values == sorted(values)


def test_one_wrong_label_in_a_sparse_bin_borrows_strength_from_the_store_s_other_examples() -> None:
    # A stack right every time at every other margin: one wrong label among the ten at 0.62 is bad luck, not a dip
    # (fitted bin by bin towards the prior, that pick's risk was 2.3 %).
    others = [(n % 20 + 0.5) / 20 for n in range(400) if n % 20 != 12]
    samples = [Sample(Evidence.WEIGHED_CONTESTED, margin, True, True) for margin in others]
    samples += [Sample(Evidence.WEIGHED_CONTESTED, 0.62, n > 0, True) for n in range(10)]
    curve = fit(samples=samples).curves[Evidence.WEIGHED_CONTESTED]
    assert 1.0 - curve(0.62) < 0.01


def test_a_stack_surer_than_the_prior_at_every_margin_lifts_margins_it_has_few_examples_of() -> None:
    # Many right picks at middling margins and just two at 0.35: the bin with two follows the store, not the prior.
    samples = [Sample(Evidence.CAMERA_ONLY, 0.55 + (n % 8) / 20, True, True) for n in range(300)]
    samples += [Sample(Evidence.CAMERA_ONLY, 0.35, True, True) for _ in range(2)]
    curve = fit(samples=samples).curves[Evidence.CAMERA_ONLY]
    assert curve(0.35) > default().curves[Evidence.CAMERA_ONLY](0.35) + 0.2


def test_the_charge_limit_spends_the_risk_budget_on_the_least_risky_visits_first() -> None:
    calibration = with_risks(default(), [0.0] * 90 + [0.01] * 5 + [0.1] * 5)
    # 100 visits at 0.5 % may expect 0.5 overcharges: the five at 1 % (0.05) fit; the five at 10 % (0.5 more) do
    # not, and charging at 10 % would charge all five.
    assert calibration.charge_limit(0.005) == 0.01
    assert calibration.charge_limit(0.0055) == 0.1
    assert default().charge_limit(0.005) == 0.005  # nothing seen yet: no visit riskier than the risk itself


def test_a_risk_setting_says_what_it_sends_to_a_person_and_what_it_expects_overcharged() -> None:
    calibration = with_risks(default(), [0.0] * 90 + [0.01] * 5 + [0.1] * 5)
    # At 0.5 %: charged up to 1 %, the five at 10 % sent to a person; the five at 1 % expect 0.05 overcharges of 100.
    assert calibration.risk_option(0.005) == RiskOption(0.005, 0.01, 0.05, 0.0005)
    # At 0.55 %, all are charged and all ten risky visits expect 0.55 overcharges.
    assert calibration.risk_option(0.0055) == RiskOption(0.0055, 0.1, 0.0, 0.0055)
    # Visits of a risk that people found overcharged twice as often count at twice that: the ten risky visits expect
    # 1.1 overcharges, more than 0.55 % allows, and the five at 10 % go to a person again.
    doubled = replace(calibration, risk_ratios=tuple(2.0 if edge >= 0.01 else 1.0 for edge in RISK_BANDS))
    assert doubled.risk_option(0.005) == RiskOption(0.005, 0.01, 0.05, 0.001)
    assert doubled.risk_option(0.0055) == RiskOption(0.0055, 0.01, 0.05, 0.001)
    assert doubled.risk_option(0.02) == RiskOption(0.02, 0.1, 0.0, 0.011)
    assert default().risk_option(0.005) == RiskOption(0.005, 0.005, 0.0, 0.0)  # no visits: nothing to say


def test_visit_risks_that_people_found_too_high_let_the_limit_spend_the_budget() -> None:
    recent = with_risks(default(), [0.0] * 900 + [0.01] * 50 + [0.05] * 50)
    # 1,000 visits at 0.5 % may expect 5 overcharges: the fifty at 1 % (0.5) fit, the fifty at 5 % (2.5 more) too;
    assert recent.charge_limit(0.005) == 0.05
    tight = with_risks(default(), [0.0] * 900 + [0.03] * 50 + [0.08] * 50)
    assert tight.charge_limit(0.005) == 0.03  # 1.5 expected, then 4 more: over the budget
    # but of 200 decided visits at 8 %, expected to hold 16 overcharges, people found 2: these risks were too high.
    decided = [VisitSample(0.08, n < 2) for n in range(200)] + [VisitSample(0.03, False) for _ in range(20)]
    checked = fit_risks(tight, visits=decided)
    assert checked.overcharge(0.08) == pytest.approx(0.08 * (2 + 2) / (2 + 16), abs=1e-4)
    assert checked.charge_limit(0.005) == 0.08
    assert checked.overcharge(0.03) == pytest.approx(0.03 * 2 / (2 + 0.6), abs=1e-4)  # few expected: it barely moves
    assert checked.overcharge(0.001) == 0.001  # nothing decided there: the risk stands
    # Found as often as expected, nothing changes; found more often, the limit tightens.
    assert fit_risks(tight, visits=[VisitSample(0.08, n < 16) for n in range(200)]).charge_limit(0.005) == 0.03
    worse = fit_risks(recent, visits=[VisitSample(0.05, n < 30) for n in range(200)])
    assert worse.charge_limit(0.005) == 0.01


def test_disputes_people_upheld_under_the_charge_limit_raise_its_risks_and_never_lower_them() -> None:
    recent = with_risks(default(), [0.001] * 500 + [0.003] * 1000 + [0.03] * 20)
    # 1,520 visits at 0.5 % may expect 7.6 overcharges: 0.5 and 3 of the first two risks, and 0.6 of the twenty.
    assert recent.charge_limit(0.005) == 0.03
    decided = [VisitSample(0.03, False) for _ in range(20)]  # the twenty, decided by people, were all right
    checked = fit_risks(recent, visits=decided)
    # The thousand at 0.3 % were charged; shoppers disputed 12 and people upheld them: 3 expected, 12 at least real.
    charged = [ChargedVisit(0.003, 1.0 if n < 12 else 0.0) for n in range(1000)] + [ChargedVisit(0.001, 0.0)] * 500
    disputed = fit_risks(recent, visits=decided, charged=charged)
    # Twelve shown make at least 6.92 real ones at 95 % confidence (a Poisson lower bound): 2.3 times the 3 expected.
    assert disputed.overcharge(0.003) == pytest.approx(0.003 * 6.9242 / 3, abs=1e-5)
    # Counted at 0.69 % each, the thousand spend 6.9 of the budget's 7.6: the twenty at 3 % now go to a person.
    assert disputed.charge_limit(0.005) == 0.003 < checked.charge_limit(0.005) == 0.03
    # With fewer visits to share the budget, those over the risk by themselves are charged no more.
    assert replace(disputed, risks=(0.001,) * 50 + (0.003,) * 200).charge_limit(0.005) == 0.001
    # Not every overcharged shopper disputes: visits nobody disputed say nothing, and never lower a band's risks.
    assert disputed.overcharge(0.001) == checked.overcharge(0.001) == 0.001
    assert disputed.overcharge(0.03) == checked.overcharge(0.03) < 0.03
    assert disputed.dispute_support == ((0.0, 500, 0.0, 0.5), (0.002, 1000, 12.0, 3.0))
    assert fit_risks(recent, visits=decided, charged=[ChargedVisit(0.003, 0.0)] * 1000) == replace(
        checked, dispute_support=((0.002, 1000, 0.0, 3.0),)
    )


def test_a_dispute_refunded_unchecked_counts_as_the_share_of_checked_disputes_people_upheld() -> None:
    visits = [
        (0.01, DisputeOutcome.UPHELD),
        (0.01, DisputeOutcome.REJECTED),
        (0.02, DisputeOutcome.REJECTED),
        (0.03, DisputeOutcome.REFUNDED_UNCHECKED),
        (0.04, DisputeOutcome.NONE),
    ]
    # One upheld of three checked: with a Beta(1, 1) prior, (1 + 1) / (2 + 3).
    assert charged_visits(visits) == [
        ChargedVisit(0.01, 1.0),
        ChargedVisit(0.01, 0.0),
        ChargedVisit(0.02, 0.0),
        ChargedVisit(0.03, 0.4),
        ChargedVisit(0.04, 0.0),
    ]
    assert charged_visits([(0.01, DisputeOutcome.REFUNDED_UNCHECKED)]) == [ChargedVisit(0.01, 0.5)]


def test_a_calibration_is_kept_and_read_back_as_json_unchanged() -> None:
    learnt = with_risks(fit(samples=[Sample(Evidence.CAMERA_ONLY, 0.9, True, False)] * 10), [0.0, 0.02])
    learnt = fit_risks(
        learnt, visits=[VisitSample(0.02, False), VisitSample(0.3, True)], charged=[ChargedVisit(0.004, 0.4)] * 3
    )
    assert learnt.dispute_support
    again = Calibration.from_json(learnt.as_json())
    assert again.as_json() == learnt.as_json()
    assert again.probability(Evidence.CAMERA_ONLY, 0.9) == learnt.probability(Evidence.CAMERA_ONLY, 0.9)
    assert again.overcharge(0.3) == learnt.overcharge(0.3) != 0.3


def _auto_charged_share(stack: PerceptionStack, calibration: Calibration | None, day: int) -> tuple[float, dict]:
    simulation = simulate(
        layout=LAYOUT,
        catalog=CATALOG,
        profile="realistic",
        visits=300,
        start=T0 + timedelta(days=day),
        seed=500 + day,
        stack=stack,
    )
    events = [dict(e, _ts=parse_timestamp(e["ts"])) for e in simulation.events]
    carts = infer_carts(events=events, store=STORE, calibration=calibration)
    payers = [cart for cart in carts.values() if cart.payer is None]
    share = sum(cart.decision == "charge" for cart in payers) / len(payers)
    decided = {
        s: simulation.truth[s] for s, cart in carts.items() if cart.decision == "review" and s in simulation.truth
    }
    return share, {"carts": carts, "decided": decided, "events": events}


def _learn_for_days(stack: PerceptionStack, days: int) -> tuple[Calibration, int]:
    """What the store's calibration learning does: learn from every day's reviewed visits and unquestioned picks."""
    calibration: Calibration | None = None
    samples: list[Sample] = []
    visits: list[VisitSample] = []
    reviewed = 0
    for day in range(days):
        _, seen = _auto_charged_share(stack, calibration, day)
        reviewed += len(seen["decided"])
        samples += labelled_samples(carts=seen["carts"], decided=seen["decided"])
        calibration = fit(samples=samples, prior=calibration)
        again = infer_carts(events=seen["events"], store=STORE, calibration=calibration)
        visits += labelled_visits(carts=again, decided=seen["decided"])
        calibration = with_risks(calibration, (cart.risk for cart in again.values() if cart.payer is None))
        calibration = fit_risks(calibration, visits=visits)
    assert calibration is not None
    return calibration, reviewed


def test_a_stack_reporting_compressed_confidences_is_charged_as_often_as_a_calibrated_one_from_its_first_day() -> None:
    calibrated = draw_stack(family="calibrated", seed=7)
    compressed = replace(calibrated, family="compressed", ceiling=0.9)  # the same cameras, squeezed under 0.9
    test_day = 20
    # Read on its own scale (its surest picks say 0.9), the squeezed stack is as sure as the same cameras unsqueezed.
    cold_calibrated, _ = _auto_charged_share(calibrated, None, test_day)
    cold_compressed, _ = _auto_charged_share(compressed, None, test_day)
    assert cold_compressed >= cold_calibrated - 0.01, (cold_compressed, cold_calibrated)

    learnt_compressed, _ = _learn_for_days(compressed, 7)
    learnt_calibrated, _ = _learn_for_days(calibrated, 7)
    warm_compressed, _ = _auto_charged_share(compressed, learnt_compressed, test_day)
    warm_calibrated, _ = _auto_charged_share(calibrated, learnt_calibrated, test_day)
    assert warm_compressed >= warm_calibrated - 0.03, (warm_compressed, warm_calibrated)


def test_a_stack_understating_its_sure_picks_learns_to_be_charged_as_often_as_a_calibrated_one() -> None:
    calibrated = draw_stack(family="calibrated", seed=7)
    # The same cameras reporting a sure pick anywhere from 0.7 up: its top is 1.0, so no scale sets that right. Read
    # by what its plain picks say (`stack_sure_confidence`) it starts close to the calibrated one; its reviews do the
    # rest.
    diffident = replace(calibrated, family="diffident", confident=(0.7, 1.0), hesitant=(0.45, 0.7))
    test_day = 20

    cold_calibrated, _ = _auto_charged_share(calibrated, None, test_day)
    cold_diffident, _ = _auto_charged_share(diffident, None, test_day)
    assert cold_calibrated - 0.1 < cold_diffident < cold_calibrated, (cold_diffident, cold_calibrated)

    learnt_diffident, reviewed = _learn_for_days(diffident, 16)
    learnt_calibrated, _ = _learn_for_days(calibrated, 16)
    assert reviewed >= 150  # a couple of hundred visits people decided
    warm_diffident, _ = _auto_charged_share(diffident, learnt_diffident, test_day)
    warm_calibrated, _ = _auto_charged_share(calibrated, learnt_calibrated, test_day)
    assert warm_diffident >= warm_calibrated - 0.03, (warm_diffident, warm_calibrated)
    # Its reviews lift it more than the calibrated store's lift that one: they close the gap its reports open.
    assert warm_diffident - cold_diffident > warm_calibrated - cold_calibrated + 0.01, (
        cold_calibrated,
        cold_diffident,
        warm_calibrated,
        warm_diffident,
    )
