"""The second world (bench/second_world/), the accuracy benchmark's held-out store: a perfect stack there is read
back exactly and charged once the store has learnt it; everything it sends is a valid event of its own layout; a
seed always gives the same day."""

from __future__ import annotations

import sys
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.append(str(Path(__file__).resolve().parents[1] / "bench"))  # after platform/: bench/ingest.py shadows ingest

from second_world import second_catalog, second_layout, store_day

from ingest.validation import LayoutSnapshot, StoreReferences, check_references, parse_timestamp, read_event
from stores.layout import validate_layout
from visits.calibration import Calibration, fit
from visits.engine import Cart, infer_carts, labelled_samples
from visits.perception import draw_stack
from visits.simulator import Simulation

T0 = datetime(2026, 3, 2, 8, tzinfo=UTC)


def _day(seed: int, *, family: str = "perfect", profile: str = "realistic", visits: int = 40) -> tuple[Simulation, Any]:
    return store_day(
        stack=draw_stack(family=family, seed=7),
        profile=profile,
        store_seed=7,
        seed=seed,
        visits=visits,
        start=T0,
        age_restricted=3,
        everyone_id_checked=True,
    )


def _read(seed: int, calibration: Calibration | None, visits: int = 40) -> tuple[dict[str, Cart], Simulation]:
    simulation, store = _day(seed, visits=visits)
    events = [dict(e, _ts=parse_timestamp(e["ts"])) for e in simulation.events]
    return infer_carts(events=events, store=store, calibration=calibration), simulation


def _receipts(carts: dict[str, Cart], simulation: Simulation) -> dict[str, tuple[dict[str, int], bool]]:
    merged: dict[str, Counter[str]] = {payer: Counter() for payer in simulation.truth}
    charged = dict.fromkeys(simulation.truth, True)
    for session, cart in carts.items():
        payer = simulation.groups.get(session, session)
        merged[payer].update({line.sku: line.qty for line in cart.lines})
        charged[payer] = charged[payer] and cart.decision == "charge"
    return {payer: (dict(merged[payer]), charged[payer]) for payer in simulation.truth}


def test_a_perfect_stack_is_read_back_exactly_and_charged_once_the_store_has_learnt_it() -> None:
    """As on our own world, a new store first sends a person the counts its cameras alone report (no scale under
    the bin); after a few days of reviews decided rightly, every visit is charged its true cart."""
    learnt: Calibration | None = None
    samples = []
    for seed in range(11, 16):
        carts, simulation = _read(seed, learnt, visits=120)
        decided = {s: simulation.truth[s] for s, c in carts.items() if c.decision == "review" and c.payer is None}
        samples += labelled_samples(carts=carts, decided=decided)
        learnt = fit(samples=samples, prior=learnt)
    carts, simulation = _read(40, learnt)
    receipts = _receipts(carts, simulation)
    assert simulation.groups, "a couple shops together"
    assert {payer: got for payer, (got, _) in receipts.items()} == simulation.truth
    assert all(charged for _, charged in receipts.values()), [s for s, c in carts.items() if c.decision != "charge"]


def test_every_event_is_valid_against_the_store_layout() -> None:
    layout = second_layout()
    assert validate_layout(layout, known_skus=set(second_catalog(7, age_restricted=3))) == []
    bins = {b["code"]: b.get("sensor") for fixture in layout["fixtures"] for b in fixture["bins"]}
    devices = {d["code"]: d["kind"] for d in layout["devices"]}
    references = StoreReferences("S2", [LayoutSnapshot(datetime(2026, 1, 1, tzinfo=UTC), bins, devices)])
    simulation, _ = _day(3, family="mixed", profile="crowded", visits=120)
    kinds: Counter[str] = Counter()
    sessions: set[str | None] = set()
    started: set[str | None] = set()
    for line in b"".join(simulation.uploads).splitlines():  # each line as ingestion reads it
        parsed, reason, _ = read_event(line)
        assert parsed is not None, (reason, line)
        assert check_references(parsed, references=references, now=T0) is None, line
        kinds[parsed.type] += 1
        (started if parsed.type == "session.started" else sessions).add(parsed.session)
    assert sessions - {None} <= started, "every visit an event names started in the store"
    assert set(kinds) >= {"session.started", "item.picked", "item.returned", "shelf.weight_changed", "session.ended"}
    assert {"id.checked", "shelf.restocked"} <= set(kinds)


def test_the_same_seed_gives_the_same_day() -> None:
    first, _ = _day(5, family="switchy", profile="crowded")
    again, _ = _day(5, family="switchy", profile="crowded")
    other, _ = _day(6, family="switchy", profile="crowded")
    assert first.uploads == again.uploads and first.truth == again.truth
    assert first.uploads != other.uploads


def test_every_hand_moves_while_its_shopper_is_in_the_store() -> None:
    simulation, _ = _day(8, profile="crowded", visits=200)
    entered, left = {}, {}
    for event in simulation.events:
        at = parse_timestamp(event["ts"])
        if event["type"] == "session.started":
            entered[event["session"]] = at
        elif event["type"] == "session.ended":
            left[event["session"]] = at
    for event in simulation.events:
        if event["type"].startswith("item.") and simulation.actors.get(event["id"]) == event["session"]:
            assert entered[event["session"]] < parse_timestamp(event["ts"]) < left[event["session"]], event
