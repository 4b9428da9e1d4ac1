"""The visits engine's speed against an earlier commit's engine, on the same store days, in one run.

    PYTHONPATH=.:platform python bench/engine_speed.py [--baseline dcb4e37] [--visits 300] [--seeds 3]
        [--first-seed 301] [--repeats 3] [--profiles realistic,crowded]

The baseline's `platform/` comes from git (`git archive`) into a temporary folder. The days are drawn by
the baseline's simulator (its own noise profiles, which both engines read: the event contract is the
same), so that the figure compares with the one the baseline printed. Each engine reads all the days in
a process of its own, the engines taking turns `--repeats` times; a run's time is that process's CPU
time (what a busy machine skews least) and each engine keeps its best run. Prints one JSON object: per
profile and overall, the events read per CPU-second by each engine, and the ratio current/baseline.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]

# Runs in a child process whose path starts with one tree: draws the days, or times that tree's engine.
CHILD = r"""
import inspect, pickle, random, sys, time
from datetime import UTC, datetime
from ingest.validation import parse_timestamp
from stores.sample import sample_layout
from visits import engine, simulator

SINCE = datetime(2026, 1, 1, tzinfo=UTC)
command, days_path, profile, visits, seeds = sys.argv[1:6]


def store(seed):
    rng = random.Random(seed)
    skus = [f"SKU-{n:03d}" for n in range(1, 121)]
    grams = [45, 106, 150, 200, 250, 310, 330, 345, 440, 500, 525, 1045, 1060]
    units = {s: float(rng.choice(grams) + rng.randint(0, 9)) for s in skus}
    return sample_layout(skus=skus), {s: (u, max(2.0, 0.05 * u)) for s, u in units.items()}


def model(layout, weights):
    if hasattr(engine, "store_model_from_layout"):
        return engine.store_model_from_layout(layout=layout, weights=weights, since=SINCE)
    bins = {
        b["code"]: engine.Bin(b["code"], b["sku"], b.get("sensor"), f["code"], f["zone"])
        for f in layout["fixtures"]
        for b in f["bins"]
    }
    products = {s: engine.Product(s, u, t) for s, (u, t) in weights.items()}
    return engine.StoreModel([engine.Layout(SINCE, bins)], products)


def read(events, store_model):
    if "auto_charge_threshold" in inspect.signature(engine.infer_carts).parameters:
        return engine.infer_carts(events=events, store=store_model, auto_charge_threshold=0.9)
    return engine.infer_carts(events=events, store=store_model)


if command == "draw":
    days = []
    for seed in map(int, seeds.split(",")):
        layout, weights = store(seed)
        catalog = {s: simulator.CatalogItem(s, u, t) for s, (u, t) in weights.items()}
        start = datetime(2026, 3, 2, 8, tzinfo=UTC)
        day = simulator.simulate(
            layout=layout, catalog=catalog, profile=profile, visits=int(visits), start=start, seed=seed
        )
        days.append((seed, [dict(e) for e in day.events]))
    with open(days_path, "wb") as out:
        pickle.dump(days, out)
else:
    with open(days_path, "rb") as days_file:
        days = pickle.load(days_file)
    events_total, seconds = 0, 0.0
    for seed, events in days:
        store_model = model(*store(seed))
        events = [dict(e, _ts=parse_timestamp(e["ts"])) for e in events]
        started = time.process_time()
        read(events, store_model)
        seconds += time.process_time() - started
        events_total += len(events)
    print(events_total, seconds)
"""


def _child(tree: Path, *args: str) -> str:
    env = {"PYTHONPATH": f"{tree}:{tree / 'platform'}", "PATH": "/usr/bin:/bin"}
    done = subprocess.run([sys.executable, "-c", CHILD, *args], env=env, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"{tree}: {done.stderr}")
    return done.stdout


def _baseline_tree(commit: str, folder: Path) -> Path:
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", commit, "platform"], capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive.stdout, check=True)
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline", default="dcb4e37", help="the commit whose engine is the baseline")
    parser.add_argument("--visits", type=int, default=300)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--first-seed", type=int, default=301)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--profiles", default="realistic,crowded")
    args = parser.parse_args()
    seeds = ",".join(str(s) for s in range(args.first_seed, args.first_seed + args.seeds))
    report: dict[str, Any] = {"benchmark": "engine_speed", "baseline": args.baseline, "seeds": seeds}
    totals = {"baseline": [0.0, 0.0], "current": [0.0, 0.0]}
    with tempfile.TemporaryDirectory() as folder:
        trees = {"baseline": _baseline_tree(args.baseline, Path(folder)), "current": ROOT}
        for profile in args.profiles.split(","):
            days = str(Path(folder) / f"{profile}.pickle")
            _child(trees["baseline"], "draw", days, profile, str(args.visits), seeds)
            best: dict[str, tuple[float, float]] = {}
            for _ in range(args.repeats):
                for name, tree in trees.items():
                    events, seconds = map(float, _child(tree, "time", days, profile, "0", seeds).split())
                    if name not in best or seconds < best[name][1]:
                        best[name] = (events, seconds)
            report[profile] = {"events": int(best["current"][0])}
            for name, (events, seconds) in best.items():
                report[profile][f"{name}_events_per_cpu_second"] = round(events / seconds)
                totals[name][0] += events
                totals[name][1] += seconds
    overall = {name: round(events / seconds) for name, (events, seconds) in totals.items()}
    report["events_per_cpu_second"] = overall
    report["current_over_baseline"] = round(overall["current"] / overall["baseline"], 3)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
