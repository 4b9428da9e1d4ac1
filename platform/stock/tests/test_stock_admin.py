"""The store admin's stock pages: what a member of another tenant, or a viewer, gets."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from django.contrib.auth.models import User

from conftest import logged_in
from core import tenancy
from stock.models import StockCount
from stores.models import Store
from tenants.models import Tenant


@pytest.fixture
def store(make_store_with_layout: Callable[..., Store], tenant_a: Tenant) -> Store:
    return make_store_with_layout(tenant_a)


def _no_take_recorded(store: Store) -> bool:
    with tenancy.tenant_scope(store.tenant_id):
        return not StockCount.objects.exists()


def test_another_tenants_store_pages_are_not_found(manager_b: User, store: Store) -> None:
    client = logged_in(manager_b)
    assert client.get(f"/admin/stock/stockcount/store/{store.pk}/").status_code == 404
    answer = client.post(f"/admin/stock/stockcount/store/{store.pk}/take/", {"bin:F01-B01": "3"})
    assert answer.status_code == 404
    assert _no_take_recorded(store)


def test_a_viewer_reads_the_stock_but_records_no_take(viewer_a: User, store: Store) -> None:
    client = logged_in(viewer_a)
    page = client.get(f"/admin/stock/stockcount/store/{store.pk}/")
    assert page.status_code == 200
    assert b"Record a stock take" not in page.content
    assert client.post(f"/admin/stock/stockcount/store/{store.pk}/take/", {"bin:F01-B01": "3"}).status_code == 403
    assert _no_take_recorded(store)


def test_a_take_with_a_bad_time_is_refused_whole(manager_a: User, store: Store) -> None:
    answer = logged_in(manager_a).post(
        f"/admin/stock/stockcount/store/{store.pk}/take/", {"counted_at": "soon", "bin:F01-B01": "3"}
    )
    assert answer.status_code == 200
    assert b"Counted at: a time like" in answer.content
    assert _no_take_recorded(store)


def test_the_stock_pages_name_the_stores_clock_as_people_do(manager_a: User, store: Store) -> None:
    Store.unscoped.filter(pk=store.pk).update(timezone="America/New_York")
    client = logged_in(manager_a)
    base = f"/admin/stock/stockcount/store/{store.pk}/"
    period = {"from": "2026-03-02", "to": "2026-03-03"}
    pages = {
        "stock": (client.get(base), "; empty means now"),
        "shrink": (client.get(f"{base}shrink/", period), ""),
        "heat map": (client.get(f"{base}heat-map/", period), ""),
        "stock take": (client.get(f"{base}take/"), ""),
    }
    for name, (page, after) in pages.items():
        assert page.status_code == 200, name
        text = " ".join(re.sub(r"<[^>]+>", " ", page.content.decode()).split())
        assert re.search(rf"New York time \(E[SD]T\){re.escape(after)}", text), name
        assert "America/New_York" not in text, name
