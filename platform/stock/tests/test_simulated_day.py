"""A simulated day with a stock take at opening: the units read at closing against the simulator's true shelves."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from catalog.models import Product
from core import tenancy
from stock import selectors, services
from stores.models import Store
from stores.sample import sample_layout
from stores.sample_store import SAMPLE_SKUS
from tenants.audit import Actor
from tenants.models import Tenant
from visits.simulator import CatalogItem, simulate
from visits.tests.support import push

START = datetime(2026, 3, 2, 8, tzinfo=UTC)
GRAMS = [45, 106, 150, 200, 250, 310, 330, 345, 440, 500, 525, 1045]


def test_closing_units_match_the_true_shelves(tenant_a: Tenant, make_store_with_layout: Callable[..., Store]) -> None:
    store = make_store_with_layout(tenant_a)
    rng = random.Random(20)
    catalog = {sku: CatalogItem(sku, float(rng.choice(GRAMS) + rng.randint(0, 9)), 0.0) for sku in SAMPLE_SKUS}
    catalog = {sku: CatalogItem(sku, c.unit_weight_g, max(2.0, 0.05 * c.unit_weight_g)) for sku, c in catalog.items()}
    for item in catalog.values():
        Product.unscoped.filter(tenant=tenant_a, sku=item.sku).update(
            unit_weight_g=Decimal(str(item.unit_weight_g)), weight_tolerance_g=Decimal(str(item.tolerance_g))
        )
    layout = sample_layout(skus=SAMPLE_SKUS)
    bins = [item["code"] for fixture in layout["fixtures"] for item in fixture["bins"]]
    opening = {code: rng.randint(12, 24) for code in bins}
    day = simulate(
        layout=layout, catalog=catalog, profile="realistic", visits=400, start=START, seed=20, opening_stock=opening
    )
    events = day.events
    push(store, events)
    closing = max(datetime.fromisoformat(e["ts"]) for e in events) + timedelta(minutes=1)
    with tenancy.tenant_scope(tenant_a.pk):
        services.stock_take_record(
            actor=Actor.system(), store=store, at=START, rows=[{"bin": c, "units": u} for c, u in opening.items()]
        )
        read = {row.bin: row.units for row in selectors.stock_at(store=store, at=closing)}
    assert sum(e["type"] == "shelf.restocked" for e in events) >= 5  # the day had restocks to follow
    assert sum(day.shelves[code] != opening[code] for code in bins) >= len(bins) // 2
    close = [code for code in bins if read[code] is not None and abs(read[code] - day.shelves[code]) <= 1]
    assert len(close) / len(bins) >= 0.95, {c: (read[c], day.shelves[c]) for c in bins if c not in close}
