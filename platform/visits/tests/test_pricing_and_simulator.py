"""Pricing per line with tax rounded once; the simulator's clean day is read back exactly."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from ingest.validation import parse_timestamp
from stores.sample import sample_layout
from visits.engine import Bin, CartLine, Layout, Product, StoreModel, infer_carts
from visits.pricing import PriceVersion, line_tax, price_cart
from visits.simulator import PROFILES, CatalogItem, simulate

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
STORE = StoreModel(
    [
        Layout(
            datetime(2026, 1, 1, tzinfo=UTC),
            {
                b["code"]: Bin(b["code"], b["sku"], b.get("sensor"), f["code"], f["zone"])
                for f in LAYOUT["fixtures"]
                for b in f["bins"]
            },
        )
    ],
    {sku: Product(sku, c.unit_weight_g, c.tolerance_g) for sku, c in CATALOG.items()},
)


def _carts(profile: str, seed: int) -> tuple[dict, dict]:
    simulation = simulate(layout=LAYOUT, catalog=CATALOG, profile=profile, visits=120, start=T0, seed=seed)
    events = [dict(e, _ts=parse_timestamp(e["ts"])) for e in simulation.events]
    return infer_carts(events=events, store=STORE, auto_charge_threshold=0.9), simulation.truth


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_clean_day_is_read_back_exactly_and_charged(seed: int) -> None:
    carts, truth = _carts("clean", seed)
    assert set(carts) == set(truth)
    for session, expected in truth.items():
        assert {line.sku: line.qty for line in carts[session].lines} == expected
        assert carts[session].decision == "charge"


def test_noisy_days_never_overcharge_an_auto_charged_visit_much() -> None:
    for profile in ("realistic", "crowded"):
        carts, truth = _carts(profile, 5)
        charged = [s for s, c in carts.items() if c.decision == "charge"]
        over = [s for s in charged if any(line.qty > truth[s].get(line.sku, 0) for line in carts[s].lines)]
        assert len(over) <= max(1, len(charged) // 50), (profile, over)


def test_the_simulator_is_deterministic_and_noisy_as_profiled() -> None:
    one = simulate(layout=LAYOUT, catalog=CATALOG, profile="realistic", visits=80, start=T0, seed=9)
    two = simulate(layout=LAYOUT, catalog=CATALOG, profile="realistic", visits=80, start=T0, seed=9)
    assert one.uploads == two.uploads
    assert len(one.uploads) == 2
    lines = b"".join(one.uploads).splitlines()
    assert len(lines) > len({e["id"] for e in one.events})
    crowded = simulate(layout=LAYOUT, catalog=CATALOG, profile="crowded", visits=80, start=T0, seed=9)
    assert crowded.price_changes
    assert crowded.sensor_outages
    assert set(PROFILES) == {"clean", "realistic", "crowded"}
