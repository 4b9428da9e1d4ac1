"""The cart engine, rule by rule, without a database."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from visits.engine import Bin, Layout, Product, StoreModel, infer_carts

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
PRODUCTS = {
    "COLA": Product("COLA", 345.0, 12.0),
    "CHIPS": Product("CHIPS", 160.0, 8.0),
    "SOAP": Product("SOAP", 300.0, 10.0),
    "GUM": Product("GUM", 20.0, 2.0),
}
BINS = {
    "B-COLA": Bin("B-COLA", "COLA", "W-COLA", "F1", "Z1"),
    "B-CHIPS": Bin("B-CHIPS", "CHIPS", "W-CHIPS", "F1", "Z1"),
    "B-SOAP": Bin("B-SOAP", "SOAP", None, "F2", "Z2"),
    "B-GUM": Bin("B-GUM", "GUM", "W-GUM", "F2", "Z2"),
}
STORE = StoreModel([Layout(datetime(2026, 1, 1, tzinfo=UTC), BINS)], PRODUCTS)


class Script:
    """Builds a store's events second by second."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def add(self, second: float, kind: str, **fields: Any) -> str:
        event_id = f"e{len(self.events) + 1}"
        self.events.append({"id": event_id, "type": kind, "_ts": T0 + timedelta(seconds=second), **fields})
        return event_id

    def visit(self, session: str, enter: float, leave: float) -> None:
        self.add(enter, "session.started", session=session, shopper=f"tok-{session}", gate="IN")
        self.add(leave, "session.ended", session=session, gate="OUT")

    def pick(
        self, second: float, session: str, bin_: str, *, qty: int = 1, confidence: float = 0.97, **extra: Any
    ) -> str:
        return self.add(
            second, "item.picked", session=session, bin=bin_, device="CAM", qty=qty, confidence=confidence, **extra
        )

    def put_back(
        self, second: float, session: str, bin_: str, *, qty: int = 1, confidence: float = 0.97, **extra: Any
    ) -> str:
        return self.add(
            second, "item.returned", session=session, bin=bin_, device="CAM", qty=qty, confidence=confidence, **extra
        )

    def weigh(self, second: float, bin_: str, grams: float) -> str:
        return self.add(second, "shelf.weight_changed", bin=bin_, device=BINS[bin_].sensor, delta_g=grams)

    def carts(self, threshold: float = 0.9) -> dict:
        return infer_carts(events=self.events, store=STORE, auto_charge_threshold=threshold)


def items(cart) -> dict[str, int]:
    return {line.sku: line.qty for line in cart.lines}


def test_a_pick_confirmed_by_the_scale_is_charged_with_its_evidence() -> None:
    s = Script()
    s.visit("A", 0, 100)
    pick = s.pick(10, "A", "B-COLA")
    weight = s.weigh(11, "B-COLA", -346)
    cart = s.carts()["A"]
    assert items(cart) == {"COLA": 1}
    assert cart.decision == "charge"
    assert cart.lines[0].evidence == tuple(sorted((pick, weight)))


def test_the_scale_says_how_many() -> None:
    s = Script()
    s.visit("A", 0, 100)
    s.pick(10, "A", "B-CHIPS", qty=1)
    s.weigh(11, "B-CHIPS", -322)
    assert items(s.carts()["A"]) == {"CHIPS": 2}


def test_a_camera_event_the_scale_did_not_see_is_not_charged() -> None:
    s = Script()
    s.visit("A", 0, 100)
    s.pick(10, "A", "B-COLA", confidence=0.7)
    cart = s.carts()["A"]
    assert items(cart) == {}
    assert cart.decision == "charge"
    sure = Script()
    sure.visit("A", 0, 100)
    sure.pick(10, "A", "B-COLA", confidence=0.99)
    cart = sure.carts()["A"]
    assert items(cart) == {}
    assert cart.decision == "review"
    assert "scale did not" in cart.reasons[0]


def test_a_bin_without_a_scale_trusts_a_sure_camera_only() -> None:
    s = Script()
    s.visit("A", 0, 100)
    s.pick(10, "A", "B-SOAP", confidence=0.97)
    assert items(s.carts()["A"]) == {"SOAP": 1}
    unsure = Script()
    unsure.visit("A", 0, 100)
    unsure.pick(10, "A", "B-SOAP", confidence=0.7)
    assert unsure.carts()["A"].decision == "review"


def test_a_scale_reported_offline_counts_as_no_scale() -> None:
    s = Script()
    s.visit("A", 0, 100)
    s.add(1, "device.status", device="W-COLA", status="offline")
    s.pick(10, "A", "B-COLA", confidence=0.97)
    assert items(s.carts()["A"]) == {"COLA": 1}


def test_shoppers_close_together_go_to_review_never_charged_to_the_wrong_one() -> None:
    s = Script()
    s.visit("A", 0, 100)
    s.visit("B", 0, 100)
    s.pick(10, "A", "B-COLA", confidence=0.58, alternatives=[{"session": "B", "confidence": 0.4}])
    s.weigh(11, "B-COLA", -345)
    carts = s.carts()
    assert items(carts["A"]) == {}
    assert items(carts["B"]) == {}
    assert carts["A"].decision == carts["B"].decision == "review"


def test_a_candidate_who_was_not_in_the_store_is_ruled_out() -> None:
    s = Script()
    s.visit("A", 0, 100)
    s.visit("B", 200, 300)
    s.pick(10, "A", "B-COLA", confidence=0.58, alternatives=[{"session": "B", "confidence": 0.4}])
    s.weigh(11, "B-COLA", -345)
    carts = s.carts()
    assert items(carts["A"]) == {"COLA": 1}
    assert carts["A"].decision == "charge"
    assert items(carts["B"]) == {}


def test_a_clear_alternative_far_behind_does_not_stop_the_charge() -> None:
    s = Script()
    s.visit("A", 0, 100)
    s.visit("B", 0, 100)
    s.pick(10, "A", "B-COLA", confidence=0.96, alternatives=[{"session": "B", "confidence": 0.03}])
    s.weigh(11, "B-COLA", -345)
    carts = s.carts()
    assert (items(carts["A"]), carts["A"].decision, carts["B"].decision) == ({"COLA": 1}, "charge", "charge")


def test_weight_change_no_camera_saw_goes_to_the_only_shopper_in_the_store() -> None:
    s = Script()
    s.visit("A", 0, 100)
    s.weigh(20, "B-CHIPS", -161)
    cart = s.carts()["A"]
    assert items(cart) == {"CHIPS": 1}
    assert cart.decision == "charge"


def test_weight_change_no_camera_saw_with_several_shoppers_is_asked() -> None:
    s = Script()
    s.visit("A", 0, 100)
    s.visit("B", 0, 100)
    s.weigh(20, "B-CHIPS", -161)
    carts = s.carts()
    assert items(carts["A"]) == items(carts["B"]) == {}
    assert carts["A"].decision == carts["B"].decision == "review"


def test_a_put_back_into_another_products_bin_returns_the_product_the_weight_says() -> None:
    s = Script()
    s.visit("A", 0, 100)
    s.pick(10, "A", "B-COLA")
    s.weigh(11, "B-COLA", -345)
    s.pick(20, "A", "B-CHIPS")
    s.weigh(21, "B-CHIPS", -160)
    s.put_back(40, "A", "B-CHIPS")
    s.weigh(41, "B-CHIPS", +344)
    cart = s.carts()["A"]
    assert items(cart) == {"CHIPS": 1}
    assert cart.decision == "charge"


def test_the_cameras_sku_wins_when_the_bin_holds_something_else_and_the_weight_agrees() -> None:
    s = Script()
    s.visit("A", 0, 100)
    s.pick(10, "A", "B-CHIPS", sku="COLA")
    s.weigh(11, "B-CHIPS", -345)
    assert items(s.carts()["A"]) == {"COLA": 1}


def test_a_return_is_netted() -> None:
    s = Script()
    s.visit("A", 0, 100)
    s.pick(10, "A", "B-GUM", qty=3)
    s.weigh(11, "B-GUM", -60)
    s.put_back(30, "A", "B-GUM")
    s.weigh(31, "B-GUM", 20)
    assert items(s.carts()["A"]) == {"GUM": 2}


def test_returning_more_than_was_taken_is_asked() -> None:
    s = Script()
    s.visit("A", 0, 100)
    s.put_back(30, "A", "B-SOAP", confidence=0.99)
    cart = s.carts()["A"]
    assert cart.decision == "review"
    assert "more SOAP put back than taken" in cart.reasons


def test_a_noisy_weighing_close_to_what_the_camera_saw_is_charged_only_when_all_else_is_sure() -> None:
    s = Script()
    s.visit("A", 0, 100)
    s.pick(10, "A", "B-COLA")
    s.weigh(11, "B-COLA", -365)
    cart = s.carts()["A"]
    assert items(cart) == {"COLA": 1}
    assert cart.lines[0].confidence == 0.9
    assert s.carts(threshold=0.95)["A"].decision == "review"


def test_duplicates_change_nothing() -> None:
    s = Script()
    s.visit("A", 0, 100)
    s.pick(10, "A", "B-COLA")
    s.weigh(11, "B-COLA", -345)
    once = s.carts()
    s.events += [dict(e) for e in s.events]
    assert s.carts() == once


def test_an_empty_visit_has_an_empty_cart_to_charge_nothing_for() -> None:
    s = Script()
    s.visit("A", 0, 100)
    cart = s.carts()["A"]
    assert (cart.lines, cart.decision) == ((), "charge")


def test_the_layout_of_the_events_time_is_used() -> None:
    later = {**BINS, "B-COLA": Bin("B-COLA", "SOAP", "W-COLA", "F1", "Z1")}
    store = StoreModel(
        [Layout(datetime(2026, 1, 1, tzinfo=UTC), BINS), Layout(T0 + timedelta(seconds=50), later)], PRODUCTS
    )
    s = Script()
    s.visit("A", 0, 100)
    s.pick(10, "A", "B-COLA")
    s.weigh(11, "B-COLA", -345)
    s.pick(60, "A", "B-COLA")
    s.weigh(61, "B-COLA", -300)
    carts = infer_carts(events=s.events, store=store, auto_charge_threshold=0.9)
    assert items(carts["A"]) == {"COLA": 1, "SOAP": 1}


def _busy_store(seed: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    s = Script()
    for n in range(6):
        s.visit(f"V{n}", n * 10, n * 10 + 200)
    for second in range(5, 190, 7):
        session = f"V{rng.randrange(6)}"
        bin_ = rng.choice(list(BINS))
        alternatives = [{"session": f"V{rng.randrange(6)}", "confidence": 0.3}] if rng.random() < 0.2 else []
        s.pick(second, session, bin_, confidence=rng.choice([0.6, 0.95, 0.99]), alternatives=alternatives)
        if BINS[bin_].sensor and rng.random() < 0.9:
            s.weigh(second + 1, bin_, -PRODUCTS[BINS[bin_].sku].unit_weight_g)
    return s.events


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 10_000), order=st.randoms(use_true_random=False), split=st.integers(1, 5))
def test_the_same_events_in_any_order_split_and_repeated_give_the_same_carts(seed: int, order, split: int) -> None:
    events = _busy_store(seed)
    expected = infer_carts(events=events, store=STORE, auto_charge_threshold=0.9)
    shuffled = list(events)
    order.shuffle(shuffled)
    batches = [shuffled[i::split] for i in range(split)]
    delivered = [e for batch in batches for e in batch] + shuffled[: len(shuffled) // 3]
    assert infer_carts(events=delivered, store=STORE, auto_charge_threshold=0.9) == expected


@pytest.mark.parametrize("sessions", [["V1"], ["V1", "V4"]])
def test_asking_for_some_visits_gives_the_same_carts_as_for_all(sessions: list[str]) -> None:
    events = _busy_store(3)
    everything = infer_carts(events=events, store=STORE, auto_charge_threshold=0.9)
    some = infer_carts(events=events, store=STORE, auto_charge_threshold=0.9, sessions=sessions)
    assert some == {s: everything[s] for s in sessions}
