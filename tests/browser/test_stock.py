"""Shelf stock in a real browser: a manager records a stock take (a mistyped count first), sets a low-stock level,
and reads the store's stock page with the low bin marked."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, timedelta
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.utils import timezone
from playwright.sync_api import Page, expect

from core import tenancy
from stock.models import LowStockLevel, StockCount
from stores.models import Store
from tests.browser.support import log_in
from visits.tests.support import push, stamp

Screenshot = Callable[[str], Path]


@pytest.mark.browser
def test_manager_takes_stock_and_sees_the_low_bin(
    page: Page,
    live_server,
    screenshot: Screenshot,
    manager_a: User,
    store_a: Store,
) -> None:
    take_url = f"{live_server.url}/admin/stock/stockcount/store/{store_a.pk}/take/"
    log_in(page, take_url, manager_a)
    expect(page.locator("#stock-take")).to_be_visible()
    page.fill('input[name="bin:F01-B01"]', "twelve")
    page.fill('input[name="bin:F01-B02"]', "9")
    page.get_by_role("button", name="Record the stock take").first.click()
    expect(page.locator("#take-problems")).to_contain_text("'twelve' is not a whole number")
    with tenancy.tenant_scope(store_a.tenant_id):
        assert not StockCount.objects.exists()
    screenshot("stock-take-mistyped")

    counted_at = (timezone.now() - timedelta(hours=1)).astimezone(UTC).replace(second=0, microsecond=0)
    page.fill('input[name="counted_at"]', counted_at.strftime("%Y-%m-%d %H:%M"))
    page.fill('input[name="bin:F01-B01"]', "12")
    page.fill('input[name="bin:F02-B05"]', "6")
    page.get_by_role("button", name="Record the stock take").first.click()
    expect(page.locator("#store-stock")).to_be_visible()
    expect(page.get_by_text("Stock take of 3 bin(s) recorded")).to_be_visible()

    push(
        store_a,
        [
            {
                "id": "w1",
                "type": "shelf.weight_changed",
                "ts": stamp(counted_at + timedelta(minutes=10)),
                "bin": "F01-B01",
                "device": "W-F01-B01",
                "delta_g": -2000.0,
            }
        ],
    )
    page.goto(f"{live_server.url}/admin/stock/lowstocklevel/add/")
    page.select_option('select[name="store"]', str(store_a.pk))
    page.fill('input[name="bin"]', "F01-B01")
    page.fill('input[name="units"]', "5")
    page.get_by_role("button", name="Save", exact=True).first.click()
    with tenancy.tenant_scope(store_a.tenant_id):
        assert LowStockLevel.objects.get().units == 5

    page.goto(f"{live_server.url}/admin/stock/stockcount/store/{store_a.pk}/")
    low_row = page.locator('#stock-table tr[data-bin="F01-B01"]')
    expect(low_row).to_contain_text("low")
    expect(low_row).to_contain_text("4")
    expect(page.locator('#stock-table tr[data-bin="F02-B05"]')).to_contain_text("cameras and restocks")
    expect(page.locator("#fact-low")).to_contain_text("1")
    screenshot("stock-page")
    page.check('input[name="low"]')
    page.get_by_role("button", name="Show").click()
    expect(page.locator("#stock-table tbody tr")).to_have_count(1)
    screenshot("stock-page-low-only")
