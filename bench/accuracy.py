"""Cart accuracy on the simulator's noise profiles: the fusion engine beside a naive baseline, in one run.

    PYTHONPATH=.:platform python bench/accuracy.py [--visits 300] [--seeds 3] [--first-seed 1]

Prints one JSON object: per profile, the rates over all simulated visits (exact receipt, auto-charged,
exact among auto-charged, overcharged, undercharged, sent to review) for our engine and for "trust
the camera's top candidate", the engine's events/s on the events alone, and why the engine sent
visits to review (visits per kind of reason). Seeds run from `--first-seed` on, so that figures can
be taken on seeds other than those looked at while working on the engine. With `--pipeline` the
same days also go through the real pipeline — upload, ingest, visits, settling, stored receipts —
on the configured database (embedded SQLite with in-process tasks when nothing is configured), and
the rates of the stored receipts are printed beside the engine's.
"""

from __future__ import annotations

import argparse
import json
import random
import re
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


def _reason_kind(reason: str) -> str:
    """A review reason without the event, bin, product and figures it names, to count reasons by kind."""
    kind = re.sub(r"\s*\([^()]+\)$", "", reason)
    kind = re.sub(r"\bbin \S+", "bin <bin>", kind)
    kind = re.sub(r"\d+ × \S+", "<n> × <sku>", kind)
    kind = re.sub(r"^\S+: confidence [\d.]+ is under the store's [\d.]+", "<sku>: confidence under the threshold", kind)
    return re.sub(r"^more \S+ put back", "more <sku> put back", kind)


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


class _Pipeline:
    """Runs simulated days through upload → ingest → visits → settling on the configured database."""

    def __init__(self) -> None:
        import os

        import django

        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
        django.setup()
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        self.stats: dict[str, Counter[str]] = {}

    def run(
        self, *, profile: str, seed: int, layout: dict[str, Any], catalog: dict[str, CatalogItem], simulation: Any
    ) -> None:
        from decimal import Decimal

        from django.core.files.uploadedfile import SimpleUploadedFile
        from django.utils import timezone

        from catalog.models import Product, ProductPrice
        from core import tenancy
        from ingest import services as ingest_services
        from stores import services as store_services
        from tenants import services as tenant_services
        from tenants.audit import Actor
        from visits.models import Visit, VisitLine
        from visits.settling import visits_settle

        actor = Actor.cli()
        slug = f"bench-{profile}-{seed}-{timezone.now():%H%M%S%f}"
        tenant = tenant_services.tenant_create(actor=actor, name=slug, slug=slug)
        with tenancy.tenant_scope(tenant.pk):
            products = Product.objects.bulk_create(
                [
                    Product(
                        tenant=tenant,
                        sku=c.sku,
                        name=c.sku,
                        unit_weight_g=Decimal(str(c.unit_weight_g)),
                        weight_tolerance_g=Decimal(str(round(c.tolerance_g, 2))),
                    )
                    for c in catalog.values()
                ]
            )
            ProductPrice.objects.bulk_create(
                [
                    ProductPrice(
                        tenant=tenant,
                        product=p,
                        currency="USD",
                        unit_price=199,
                        tax_rate=Decimal("8.25"),
                        effective_from=datetime(2026, 1, 1, tzinfo=UTC),
                    )
                    for p in products
                ]
            )
            store = store_services.store_create(
                actor=actor,
                tenant=tenant,
                code="S1",
                name="bench",
                timezone="UTC",
                currency="USD",
                auto_charge_threshold=Decimal("0.9"),
            )
            store_services.layout_publish(
                actor=actor, store=store, document=layout, effective_from=datetime(2026, 1, 1, tzinfo=UTC)
            )
            for number, body in enumerate(simulation.uploads):
                upload = SimpleUploadedFile(f"day-{number}.ndjson", body)
                ingest_services.stream_upload(actor=actor, store=store, upload=upload)
            while visits_settle(store=store):
                pass
            stats = self.stats.setdefault(profile, Counter())
            unsettled = (Visit.Status.OPEN, Visit.Status.SETTLING, Visit.Status.NEEDS_REVIEW)
            visits = {v.session: v for v in Visit.objects.filter(store=store)}
            lines: dict[int, dict[str, int]] = {}
            for visit_id, sku, qty in VisitLine.objects.filter(visit__store=store).values_list(
                "visit_id", "sku", "qty"
            ):
                lines.setdefault(visit_id, {})[sku] = qty
            for session, truth in simulation.truth.items():
                visit = visits.get(session)
                got = lines.get(visit.pk, {}) if visit else {}
                # Settled without a person: charged, nothing to charge, or charged and the payment then
                # failed (a payments matter, not the cart's) — anything but review or still settling.
                settled = visit is not None and visit.status not in unsettled
                _score(stats, got, truth, settled)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--visits", type=int, default=300)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--first-seed", type=int, default=1, help="Seeds run from this one on (hold-out runs).")
    parser.add_argument("--threshold", type=float, default=0.9)
    parser.add_argument("--pipeline", action="store_true", help="Also run each day through the real pipeline.")
    args = parser.parse_args()
    pipeline = _Pipeline() if args.pipeline else None
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    report: dict[str, Any] = {
        "benchmark": "accuracy",
        "visits_per_seed": args.visits,
        "seeds": args.seeds,
        "first_seed": args.first_seed,
    }
    for profile in PROFILES:
        ours, naive, reasons = Counter[str](), Counter[str](), Counter[str]()
        events_total, seconds = 0, 0.0
        for seed in seeds:
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
                reasons.update({_reason_kind(reason) for reason in cart.reasons})
                _score(naive, baseline.get(session, {}), truth, True)
            if pipeline is not None:
                pipeline.run(profile=profile, seed=seed, layout=layout, catalog=catalog, simulation=simulation)
        report[profile] = {
            "engine": _rates(ours),
            "naive_top_candidate": _rates(naive),
            "engine_events_per_second": round(events_total / seconds),
            "engine_review_reasons": dict(reasons.most_common()),
        }
        if pipeline is not None:
            report[profile]["pipeline_receipts"] = _rates(pipeline.stats.pop(profile))
    print(json.dumps(report, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
