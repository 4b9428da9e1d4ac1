"""Pricing per line with tax rounded once; the simulator's clean day is read back exactly."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from ingest.validation import parse_timestamp
from stores.sample import STAFF_DEVICE, sample_layout
from visits.calibration import Calibration, Sample, fit
from visits.engine import (
    CAMERA_ALONE,
    CHARGEABLE_BUT_FOR,
    Cart,
    CartLine,
    ScaleTiming,
    infer_carts,
    labelled_samples,
    read_scale_timing,
    store_model_from_layout,
)
from visits.perception import FAMILIES, HELD_OUT, TUNED, draw_stack
from visits.pricing import PriceVersion, line_tax, price_cart
from visits.simulator import PROFILES, CatalogItem, Simulation, shopper_disputes, simulate

T0 = datetime(2026, 3, 2, 9, tzinfo=UTC)


@pytest.mark.parametrize(
    ("amount", "rate", "tax"),
    [
        (398, Decimal("8.25"), 33),
        (100, Decimal("8.5"), 9),
        (1, Decimal("50"), 1),
        (3, Decimal("50"), 2),
        (999, Decimal("0"), 0),
    ],
)
def test_tax_is_rounded_half_up_once_per_line(amount: int, rate: Decimal, tax: int) -> None:
    assert line_tax(amount=amount, tax_rate=rate) == tax


def test_a_line_is_priced_at_the_time_it_was_first_taken() -> None:
    prices = {
        "COLA": [
            PriceVersion(T0 - timedelta(days=1), 199, Decimal("8.25")),
            PriceVersion(T0 + timedelta(hours=1), 219, Decimal("8.25")),
        ]
    }
    before = price_cart([CartLine("COLA", 2, 0.99, T0, ("e1",))], prices=prices)
    after = price_cart([CartLine("COLA", 2, 0.99, T0 + timedelta(hours=2), ("e1",))], prices=prices)
    assert (before.subtotal, before.tax, before.total) == (398, 33, 431)
    assert after.lines[0].unit_price == 219
    unpriced = price_cart([CartLine("NEW", 1, 0.99, T0, ("e2",))], prices=prices)
    assert unpriced.unpriced == ("NEW",)
    assert unpriced.total == 0


SKUS = [f"SKU-{n:03d}" for n in range(1, 61)]
WEIGHTS = {sku: 100.0 + 37 * n for n, sku in enumerate(SKUS)}
CATALOG = {sku: CatalogItem(sku, w, max(2.0, 0.05 * w)) for sku, w in WEIGHTS.items()}
LAYOUT = sample_layout(skus=SKUS)
STORE = store_model_from_layout(
    layout=LAYOUT,
    weights={sku: (c.unit_weight_g, c.tolerance_g) for sku, c in CATALOG.items()},
    since=datetime(2026, 1, 1, tzinfo=UTC),
)


def _day(
    profile: str, seed: int, stack: str | None = None, calibration: Calibration | None = None
) -> tuple[dict[str, Cart], Simulation]:
    simulation = simulate(layout=LAYOUT, catalog=CATALOG, profile=profile, visits=120, start=T0, seed=seed, stack=stack)
    events = [dict(e, _ts=parse_timestamp(e["ts"])) for e in simulation.events]
    return infer_carts(events=events, store=STORE, calibration=calibration), simulation


def _learnt(profile: str, seeds: range, stack: str | None = None) -> Calibration:
    """The calibration a store has after some days whose reviewed visits people decided (here: rightly)."""
    samples: list[Sample] = []
    learnt = None
    for seed in seeds:
        carts, simulation = _day(profile, seed, stack, learnt)
        reviewed = {s for s, cart in carts.items() if cart.decision == "review"}
        samples += labelled_samples(
            carts=carts, decided={s: simulation.truth[s] for s in reviewed & set(simulation.truth)}
        )
        learnt = fit(samples=samples, prior=learnt)
    assert learnt is not None
    return learnt


def _by_payer(carts: dict[str, Cart], simulation: Simulation) -> dict[str, dict[str, int]]:
    merged: dict[str, Counter[str]] = {payer: Counter() for payer in simulation.truth}
    for session, cart in carts.items():
        merged[simulation.groups.get(session, session)].update({line.sku: line.qty for line in cart.lines})
    return {payer: dict(items) for payer, items in merged.items()}


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_clean_day_is_read_back_exactly_and_charged_once_the_store_has_learnt_its_stack(seed: int) -> None:
    carts, simulation = _day("clean", seed)
    assert set(carts) == set(simulation.truth)
    for session, expected in simulation.truth.items():
        assert {line.sku: line.qty for line in carts[session].lines} == expected
    # A new store does not yet know how well its cameras alone (no scale under the shelf) count several items, or
    # pick the taker among shoppers close by: those visits go to a person at first. Its first days' reviews teach
    # it; what is left is the rare visit with such a take — a count it has seen too few of yet, or a camera's pick
    # with a shopper seen right there — sent for its risk alone.
    cold = sum(cart.decision == "review" for cart in carts.values())
    carts, simulation = _day("clean", seed, calibration=_learnt("clean", range(seed * 10, seed * 10 + 5)))
    warm = [session for session, cart in carts.items() if cart.decision == "review"]
    assert len(warm) <= min(cold, len(carts) // 50), warm
    for session in warm:
        assert {reason.code for reason in carts[session].reasons} <= CHARGEABLE_BUT_FOR, session
        doubtful = [a for a in carts[session].attributions if a.qty > 1 or a.probability < 0.99]
        assert any(a.evidence in CAMERA_ALONE for a in doubtful), session


def _squeezed(event: dict[str, Any], factor: float) -> dict[str, Any]:
    """The event as a stack reporting every confidence `factor` times lower would send it."""
    if "confidence" not in event:
        return event
    listed = [dict(a, confidence=a["confidence"] * factor) for a in event.get("alternatives") or ()]
    return dict(event, confidence=event["confidence"] * factor, **({"alternatives": listed} if listed else {}))


def test_a_day_whose_confidences_are_squeezed_under_0_9_is_read_as_the_same_day() -> None:
    stack = replace(draw_stack(family="calibrated", seed=3), ceiling=1.0)
    simulation = simulate(
        layout=LAYOUT, catalog=CATALOG, profile="realistic", visits=120, start=T0, seed=3, stack=stack
    )
    events = [dict(e, _ts=parse_timestamp(e["ts"])) for e in simulation.events]
    reported = infer_carts(events=events, store=STORE)
    squeezed = infer_carts(events=[_squeezed(e, 0.9) for e in events], store=STORE)
    assert any(cart.decision == "review" for cart in reported.values())
    for session, cart in reported.items():
        assert (squeezed[session].lines, squeezed[session].decision) == (cart.lines, cart.decision), session
        assert squeezed[session].risk == pytest.approx(cart.risk, abs=1e-3)


def _stamped_late(event: dict[str, Any], seconds: float) -> dict[str, Any]:
    """The event as a store whose scales stamp their changes `seconds` later would send it."""
    if event["type"] != "shelf.weight_changed":
        return event
    return dict(event, _ts=event["_ts"] + timedelta(seconds=seconds))


@pytest.mark.parametrize("seconds", [-2.5, 9.0])
def test_a_day_whose_scales_stamp_their_changes_seconds_off_is_read_as_the_same_day(seconds: float) -> None:
    simulation = simulate(layout=LAYOUT, catalog=CATALOG, profile="realistic", visits=120, start=T0, seed=3)
    events = [dict(e, _ts=parse_timestamp(e["ts"])) for e in simulation.events]
    on_time = infer_carts(events=events, store=STORE)
    late = infer_carts(events=[_stamped_late(e, seconds) for e in events], store=STORE)
    assert any(cart.decision == "review" for cart in on_time.values())
    for session, cart in on_time.items():
        assert (late[session].lines, late[session].decision) == (cart.lines, cart.decision), session


def test_a_stores_scale_timing_is_read_from_its_own_delays_and_never_narrower_than_the_default() -> None:
    def timing(delays: list[float]) -> ScaleTiming:
        cameras = [(f"B{n}", T0 + timedelta(minutes=n), 1) for n in range(len(delays))]
        scales = [(f"B{n}", T0 + timedelta(minutes=n, seconds=delay), 1) for n, delay in enumerate(delays)]
        return read_scale_timing(cameras=cameras, scales=scales)

    assert timing([12.0] * 29) == ScaleTiming()  # too few to read anything from
    assert timing([0.5, 1.0, 1.5] * 20) == ScaleTiming(typical=timedelta(seconds=1), delays=60)
    slow = timing([8.0 + n / 10 for n in range(60)])  # 8 to 13.9 s late: the window holds all but the latest one
    assert slow.after == timedelta(seconds=13.8 + 1.5) and slow.before == ScaleTiming().before
    assert slow.typical == timedelta(seconds=11)
    early = timing([-6.0 + n / 100 for n in range(60)])  # stamped 5.41 to 6 s early
    assert early.before == timedelta(seconds=5.99 + 1.5) and early.after == ScaleTiming().after


@pytest.mark.parametrize("stack", ["calibrated", "compressed", "switchy", "miscounting"])
def test_noisy_days_never_overcharge_an_auto_charged_visit_much(stack: str) -> None:
    for profile in ("realistic", "crowded"):
        carts, simulation = _day(profile, 5, stack)
        got = _by_payer(carts, simulation)
        charged = [payer for payer in simulation.truth if carts[payer].decision == "charge"]
        over = [p for p in charged if any(qty > simulation.truth[p].get(sku, 0) for sku, qty in got[p].items())]
        assert len(over) <= max(1, len(charged) // 50), (profile, over)


def test_the_simulator_is_deterministic_and_noisy_as_profiled() -> None:
    one = simulate(layout=LAYOUT, catalog=CATALOG, profile="realistic", visits=80, start=T0, seed=9)
    two = simulate(layout=LAYOUT, catalog=CATALOG, profile="realistic", visits=80, start=T0, seed=9)
    assert one.uploads == two.uploads
    assert len(one.uploads) == 2
    lines = b"".join(one.uploads).splitlines()
    assert len(lines) > len({e["id"] for e in one.events})
    crowded = simulate(
        layout=LAYOUT, catalog=CATALOG, profile="crowded", visits=80, start=T0, seed=9, stack="laggy_scales"
    )
    assert crowded.price_changes
    assert crowded.sensor_outages
    assert set(PROFILES) == {"clean", "realistic", "crowded"}


def test_each_seed_draws_one_stack_of_its_family_and_families_differ_where_they_say() -> None:
    assert draw_stack(family="compressed", seed=4) == draw_stack(family="compressed", seed=4)
    assert draw_stack(family="compressed", seed=4) != draw_stack(family="compressed", seed=5)
    assert all(draw_stack(family="compressed", seed=n).ceiling <= 0.91 for n in range(20))
    assert all(draw_stack(family="calibrated", seed=n).ceiling >= 0.97 for n in range(20))
    assert all(draw_stack(family="silent", seed=n).lists_bystanders == 0 for n in range(20))
    assert not set(HELD_OUT) & set(TUNED)
    assert set(HELD_OUT) | set(TUNED) | {"perfect"} == set(FAMILIES)


def test_a_mixed_stack_departs_from_the_baseline_in_two_or_three_respects_drawn_per_seed() -> None:
    calibrated = {n: draw_stack(family="calibrated", seed=n) for n in range(40)}
    mixed = {n: draw_stack(family="mixed", seed=n) for n in range(40)}
    assert mixed[7] == draw_stack(family="mixed", seed=7)
    squeezed = [n for n, stack in mixed.items() if stack.ceiling <= 0.91]
    silent = [n for n, stack in mixed.items() if stack.lists_bystanders == 0]
    slow = [n for n, stack in mixed.items() if stack.scale_lag_s[0] >= 3.0]
    assert squeezed and silent and slow and set(squeezed) != set(silent)
    assert all(calibrated[n].ceiling >= 0.97 and calibrated[n].lists_bystanders > 0 for n in calibrated)
    assert "mixed" in HELD_OUT


def test_a_compressed_stack_never_reports_more_than_its_ceiling_and_a_silent_one_never_lists_anyone() -> None:
    compressed = simulate(
        layout=LAYOUT, catalog=CATALOG, profile="crowded", visits=80, start=T0, seed=3, stack="compressed"
    )
    silent = simulate(layout=LAYOUT, catalog=CATALOG, profile="crowded", visits=80, start=T0, seed=3, stack="silent")
    cameras = [e for e in compressed.events if e["type"] in ("item.picked", "item.returned")]
    assert max(e["confidence"] for e in cameras) <= compressed.stack.ceiling
    assert any(e.get("alternatives") for e in cameras)
    assert not any(e.get("alternatives") for e in silent.events)


def test_companions_enter_on_the_payers_token_and_their_items_are_the_payers() -> None:
    simulation = simulate(layout=LAYOUT, catalog=CATALOG, profile="crowded", visits=120, start=T0, seed=2)
    assert simulation.groups
    started = {e["session"]: e for e in simulation.events if e["type"] == "session.started"}
    for member, payer in simulation.groups.items():
        assert started[member]["group"] == payer
        assert started[member]["shopper"] == started[payer]["shopper"]
        assert member not in simulation.truth
    assert simulation.recoverable <= set(simulation.truth)
    cameras = {e["id"] for e in simulation.events if e["type"] in ("item.picked", "item.returned")}
    assert cameras <= set(simulation.actors)


def test_staff_check_most_shoppers_reaching_for_an_age_restricted_product_and_stop_the_young() -> None:
    ages = dict.fromkeys(SKUS[:8], 18)
    catalog = {
        sku: CatalogItem(item.sku, item.unit_weight_g, item.tolerance_g, ages.get(sku, 0))
        for sku, item in CATALOG.items()
    }
    simulation = simulate(layout=LAYOUT, catalog=catalog, profile="crowded", visits=400, start=T0, seed=4)
    checks = [e for e in simulation.events if e["type"] == "id.checked"]
    assert checks and {e["device"] for e in checks} == {STAFF_DEVICE}
    assert {e["min_age"] for e in checks} == {18}
    failed = {e["session"] for e in checks if e["result"] == "failed"}
    passed = {e["session"] for e in checks if e["result"] == "passed"}
    assert failed and passed and not failed & passed
    assert simulation.id_checks == dict.fromkeys(passed, 18) | dict.fromkeys(failed, 0)
    # Stopped by staff: a shopper too young takes nothing restricted (a group's truth is its payer's).
    for session in failed - set(simulation.groups):
        assert not set(simulation.truth.get(session, {})) & set(ages)
    takers = {
        simulation.groups.get(e["session"], e["session"])
        for e in simulation.events
        if e["type"] == "item.picked" and simulation.actors.get(e["id"]) and e.get("sku", "") in ages
    }
    checked_payers = {simulation.groups.get(s, s) for s in passed}
    assert takers - checked_payers, "some shoppers take one unchecked"
    assert len(takers & checked_payers) > len(takers - checked_payers)


def test_companions_put_back_items_another_member_of_their_group_took() -> None:
    simulation = simulate(
        layout=LAYOUT, catalog=CATALOG, profile="crowded", visits=400, start=T0, seed=7, stack="perfect"
    )
    product_of = {b["code"]: b["sku"] for fixture in LAYOUT["fixtures"] for b in fixture["bins"]}
    held: dict[str, Counter[str]] = {}
    handed_over = 0
    once = {e["id"]: e for e in simulation.events}  # the store sends some events twice
    for event in sorted(once.values(), key=lambda e: (e["ts"], e["id"])):
        if event["type"] not in ("item.picked", "item.returned"):
            continue
        session, sku = event["session"], event.get("sku") or product_of[event["bin"]]
        mine = held.setdefault(session, Counter())
        if event["type"] == "item.picked":
            mine[sku] += event.get("qty", 1)
        elif mine[sku] > 0:
            mine[sku] -= 1
        else:
            assert session in simulation.groups, "only a companion puts back what it never took"
            handed_over += 1
    assert handed_over
    assert all(qty > 0 for cart in simulation.truth.values() for qty in cart.values())


@pytest.mark.parametrize("seed", [4, 5])
def test_a_clean_day_of_families_is_read_back_exactly_on_the_payers_with_hand_overs_and_late_leavers(
    seed: int,
) -> None:
    """With groups on, a third of payers or more bring companions, who hand items over (one puts back what another
    took) and sometimes stay on after their payer has left; read with a perfect stack, every group's receipt is its
    truth, with the companions who took its lines."""
    simulation = simulate(layout=LAYOUT, catalog=CATALOG, profile="clean", visits=120, start=T0, seed=seed, groups=True)
    payers = set(simulation.groups.values())
    assert len(payers) >= 0.25 * len(simulation.truth) and simulation.hand_overs > 0
    exits = {e["session"]: parse_timestamp(e["ts"]) for e in simulation.events if e["type"] == "session.ended"}
    assert any(exits[member] > exits[payer] + timedelta(minutes=1) for member, payer in simulation.groups.items())
    events = [dict(e, _ts=parse_timestamp(e["ts"])) for e in simulation.events]
    carts = infer_carts(events=events, store=STORE)
    assert _by_payer(carts, simulation) == simulation.truth
    taken_by = {member for payer in payers for line in carts[payer].lines for member in line.taken_by}
    assert taken_by & set(simulation.groups)


def test_groups_off_leaves_a_day_as_it_was() -> None:
    plain = simulate(layout=LAYOUT, catalog=CATALOG, profile="realistic", visits=60, start=T0, seed=9)
    assert (
        plain.uploads
        == simulate(
            layout=LAYOUT, catalog=CATALOG, profile="realistic", visits=60, start=T0, seed=9, groups=False
        ).uploads
    )
    families = simulate(layout=LAYOUT, catalog=CATALOG, profile="realistic", visits=60, start=T0, seed=9, groups=True)
    assert len(set(families.groups.values())) > len(set(plain.groups.values()))


def test_shoppers_dispute_most_of_what_they_did_not_take_and_little_of_what_they_did() -> None:
    truth = {f"v{n}": {"SKU-001": 1} for n in range(2000)}
    overcharged = {payer: {"SKU-001": 1, "SKU-002": 2} for payer in list(truth)[:1000]}
    exact = {payer: {"SKU-001": 1} for payer in list(truth)[1000:]}
    disputed = shopper_disputes(truth=truth, charged=overcharged | exact, seed=5)
    assert disputed == shopper_disputes(truth=truth, charged=overcharged | exact, seed=5)
    caught = [payer for payer in overcharged if disputed.get(payer) == {"SKU-002": 2}]
    assert 0.6 < len(caught) / len(overcharged) < 0.8
    honest = [payer for payer in exact if payer in disputed]
    assert 0 < len(honest) < 30 and all(disputed[payer] == {"SKU-001": 1} for payer in honest)
