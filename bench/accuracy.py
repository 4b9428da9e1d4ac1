"""Cart accuracy on the simulator's noise profiles: the fusion engine beside a naive baseline, in one run.

    PYTHONPATH=.:platform python bench/accuracy.py [--visits 300] [--seeds 3]

Prints one JSON object: per profile, the rates over all simulated visits (exact receipt, auto-charged,
exact among auto-charged, overcharged, undercharged, sent to review) for our engine and for "trust
the camera's top candidate", and the engine's events/s. Runs the engine directly on the events (no
database), the same function the visits workers call.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "platform")]

from ingest.validation import parse_timestamp  # noqa: E402
from stores.sample import sample_layout  # noqa: E402
from visits.engine import Bin, Layout, Product, StoreModel, infer_carts  # noqa: E402
from visits.simulator import PROFILES, CatalogItem, simulate  # noqa: E402

START = datetime(2026, 3, 2, 8, tzinfo=UTC)


def _store(seed: int) -> tuple[dict[str, Any], dict[str, CatalogItem], StoreModel]:
    rng = random.Random(seed)
    skus = [f"SKU-{n:03d}" for n in range(1, 121)]
    grams = [45, 106, 150, 200, 250, 310, 330, 345, 440, 500, 525, 1045, 1060]
    catalog = {s: CatalogItem(s, float(rng.choice(grams) + rng.randint(0, 9)), 0.0) for s in skus}
    catalog = {s: CatalogItem(s, c.unit_weight_g, max(2.0, 0.05 * c.unit_weight_g)) for s, c in catalog.items()}
    layout = sample_layout(skus=skus)
    bins = {
        b["code"]: Bin(b["code"], b["sku"], b.get("sensor"), f["code"], f["zone"])
        for f in layout["fixtures"]
        for b in f["bins"]
    }
    products = {s: Product(s, c.unit_weight_g, c.tolerance_g) for s, c in catalog.items()}
    return layout, catalog, StoreModel([Layout(datetime(2026, 1, 1, tzinfo=UTC), bins)], products)


def _naive(events: list[dict[str, Any]], store: StoreModel) -> dict[str, dict[str, int]]:
    carts: dict[str, Counter[str]] = {}
    seen: set[str] = set()
    for event in events:
        if event["id"] in seen or event["type"] not in ("item.picked", "item.returned"):
            continue
        seen.add(event["id"])
        bin_ = store.bin_at(event["bin"], event["_ts"])
        sku = event.get("sku") or (bin_.sku if bin_ else "?")
        sign = 1 if event["type"] == "item.picked" else -1
        carts.setdefault(event["session"], Counter())[sku] += sign * event.get("qty", 1)
    return {s: {k: v for k, v in c.items() if v > 0} for s, c in carts.items()}


def _score(stats: Counter[str], got: dict[str, int], truth: dict[str, int], charged: bool) -> None:
    exact = got == truth
    stats["visits"] += 1
    stats["exact"] += exact
    if charged:
        stats["charged"] += 1
        stats["charged_exact"] += exact
        stats["overcharged"] += any(q > truth.get(s, 0) for s, q in got.items())
        stats["undercharged"] += any(q > got.get(s, 0) for s, q in truth.items())
    else:
        stats["review"] += 1


def _rates(stats: Counter[str]) -> dict[str, float]:
    visits = stats["visits"] or 1
    return {
        "exact_receipt_rate": round(stats["exact"] / visits, 4),
        "auto_charge_rate": round(stats["charged"] / visits, 4),
        "exact_rate_among_auto_charged": round(stats["charged_exact"] / (stats["charged"] or 1), 4),
        "overcharge_rate": round(stats["overcharged"] / visits, 4),
        "undercharge_rate": round(stats["undercharged"] / visits, 4),
        "review_rate": round(stats["review"] / visits, 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--visits", type=int, default=300)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--threshold", type=float, default=0.9)
    args = parser.parse_args()
    report: dict[str, Any] = {"benchmark": "accuracy", "visits_per_seed": args.visits, "seeds": args.seeds}
    for profile in PROFILES:
        ours, naive = Counter[str](), Counter[str]()
        events_total, seconds = 0, 0.0
        for seed in range(1, args.seeds + 1):
            layout, catalog, store = _store(seed)
            simulation = simulate(
                layout=layout, catalog=catalog, profile=profile, visits=args.visits, start=START, seed=seed
            )
            events = [dict(e, _ts=parse_timestamp(e["ts"])) for e in simulation.events]
            started = time.perf_counter()
            carts = infer_carts(events=events, store=store, auto_charge_threshold=args.threshold)
            seconds += time.perf_counter() - started
            events_total += len(events)
            baseline = _naive(events, store)
            for session, truth in simulation.truth.items():
                cart = carts[session]
                _score(ours, {line.sku: line.qty for line in cart.lines}, truth, cart.decision == "charge")
                _score(naive, baseline.get(session, {}), truth, True)
        report[profile] = {
            "engine": _rates(ours),
            "naive_top_candidate": _rates(naive),
            "engine_events_per_second": round(events_total / seconds),
        }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
