"""A simulated day in a real browser: the floor plan as a heat map of picks and of shrink, the shrink report and the
stock page, as a store manager reads them after a day with a stock take at opening."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from playwright.sync_api import Page, expect

from core import tenancy
from stock import services
from stores.models import Store
from stores.sample import sample_layout
from stores.sample_store import SAMPLE_SKUS
from tenants.audit import Actor
from tests.browser.support import log_in
from visits.simulator import CatalogItem, simulate
from visits.tests.support import push, settle
from visits.tests.test_pipeline import priced_store  # noqa: F401 — fixture

Screenshot = Callable[[str], Path]
START = datetime(2026, 3, 2, 8, tzinfo=UTC)
DAY = "from=2026-03-02&to=2026-03-02"


@pytest.fixture
def simulated_day(priced_store: Store) -> Store:  # noqa: F811
    layout = sample_layout(skus=SAMPLE_SKUS)
    bins = [item["code"] for fixture in layout["fixtures"] for item in fixture["bins"]]
    rng = random.Random(11)
    opening = {code: rng.randint(8, 24) for code in bins}
    catalog = {sku: CatalogItem(sku, 250.0, 12.5) for sku in SAMPLE_SKUS}
    day = simulate(
        layout=layout, catalog=catalog, profile="realistic", visits=120, start=START, seed=11, opening_stock=opening
    )
    push(priced_store, day.events)
    settle(priced_store, day.events)
    with tenancy.tenant_scope(priced_store.tenant_id):
        counted = [{"bin": code, "units": units} for code, units in opening.items()]
        services.stock_take_record(actor=Actor.system(), store=priced_store, at=START, rows=counted)
        services.low_levels_set(actor=Actor.system(), store=priced_store, levels=[{"sku": "SKU-001", "units": 30}])
    return priced_store


@pytest.mark.browser
def test_manager_reads_the_heat_map_the_shrink_and_the_stock(
    page: Page, live_server, screenshot: Screenshot, manager_a: User, simulated_day: Store
) -> None:
    store = simulated_day
    base = f"{live_server.url}/admin/stock/stockcount/store/{store.pk}"
    log_in(page, f"{base}/heat-map/?{DAY}", manager_a)
    expect(page.locator("#heat-floor-plan svg")).to_be_visible()
    expect(page.locator("#heat-legend")).to_contain_text("Picks")
    assert page.locator("#heat-floor-plan rect.fixture[data-heat]").count() == 12
    assert page.locator("#heat-floor-plan rect.bin.low").count() >= 1  # SKU-001's bins are low at 30
    expect(page.locator("#heat-table tbody tr").first).to_be_visible()
    screenshot("heat-map-picks")

    page.select_option("#heat-measure", "shrink")
    page.get_by_role("button", name="Show").click()
    expect(page.locator("#store-heat-map")).to_have_attribute("data-measure", "shrink")
    screenshot("heat-map-shrink")

    page.fill("#period-from", "2026-03-05")
    page.get_by_role("button", name="Show").click()
    expect(page.locator("#period-problem")).to_contain_text("comes after the last one")

    page.goto(f"{base}/shrink/?{DAY}")
    expect(page.locator("#fact-shrink-value")).to_contain_text("$")
    expect(page.locator("#shrink-table tbody tr").first).to_be_visible()
    screenshot("shrink-report")

    page.goto(f"{base}/?at=2026-03-02T20:00")
    expect(page.locator("#stock-table tr.oa-low").first).to_be_visible()
    screenshot("stock-page-after-a-day")
