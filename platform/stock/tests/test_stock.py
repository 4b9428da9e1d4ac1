"""Stock per bin: stock takes, the scales' changes, the cameras' where no scale works, restocks, low levels."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from rest_framework.test import APIClient

from billing.webhooks import services as webhooks
from billing.webhooks.models import WebhookDelivery
from core import tenancy
from stock import services
from stock.models import LowStockLevel, StockCount
from stores.models import Store
from tenants.audit import Actor
from tenants.models import Tenant
from visits.tests.support import push, stamp

T0 = datetime(2026, 3, 2, 8, tzinfo=UTC)
SCALED = "F01-B01"  # under W-F01-B01, holds SKU-001 (250 g)
UNSCALED = "F02-B05"  # every fifth bin of F02 has no scale; holds SKU-015


def at(minutes: float) -> str:
    return stamp(T0 + timedelta(minutes=minutes))


def units(api: APIClient, when: str) -> dict[str, Any]:
    answer = api.get("/api/v1/stores/S1/stock", {"at": when})
    assert answer.status_code == 200, answer.json()
    return {row["bin"]: row for row in answer.json()}


def weight(n: int, minutes: float, grams: float, bin_: str = SCALED) -> dict[str, Any]:
    return {
        "id": f"w{n}",
        "type": "shelf.weight_changed",
        "ts": at(minutes),
        "bin": bin_,
        "device": f"W-{bin_}",
        "delta_g": grams,
    }


@pytest.fixture
def store(tenant_a: Tenant, make_store_with_layout: Callable[..., Store]) -> Store:
    return make_store_with_layout(tenant_a)


def test_units_follow_the_count_the_scales_changes_and_restocks(api_a: APIClient, store: Store) -> None:
    taken = api_a.put(
        f"/api/v1/stores/S1/stock?at={at(0)}",
        [{"bin": SCALED, "units": 10}, {"bin": UNSCALED, "units": 8}],
        format="json",
    )
    assert taken.status_code == 200, taken.json()
    assert {row["bin"]: row["units"] for row in taken.json() if row["units"] is not None} == {SCALED: 10, UNSCALED: 8}
    push(
        store,
        [
            {"id": "in", "type": "session.started", "ts": at(1), "session": "v1", "shopper": "t", "gate": "GATE-IN"},
            weight(1, 2, -251.5),  # one taken
            weight(2, 3, -498.0),  # two taken
            weight(3, 4, 4.5),  # the scale drifts: no unit
            {
                "id": "p0",
                "type": "item.returned",
                "ts": at(4.2),
                "session": "v1",
                "bin": SCALED,
                "device": "CAM-01",
                "confidence": 0.9,
                "sku": "SKU-002",
            },
            weight(5, 4.3, 249.0),  # another product put back on it weighs like one of its own: not its stock
            {"id": "r1", "type": "shelf.restocked", "ts": at(5), "bin": SCALED, "device": "HANDHELD-01", "qty": 6},
            weight(4, 5.5, 1500.0),  # the restock's rise is what the scale counts
            {
                "id": "p1",
                "type": "item.picked",
                "ts": at(6),
                "session": "v1",
                "bin": UNSCALED,
                "device": "CAM-01",
                "confidence": 0.9,
                "qty": 2,
            },
            {
                "id": "p2",
                "type": "item.returned",
                "ts": at(7),
                "session": "v1",
                "bin": UNSCALED,
                "device": "CAM-01",
                "confidence": 0.9,
            },
            {
                "id": "p3",
                "type": "item.returned",
                "ts": at(7.5),
                "session": "v1",
                "bin": UNSCALED,
                "device": "CAM-01",
                "confidence": 0.9,
                "sku": "SKU-002",
            },  # another product put back here is not this bin's stock
            {"id": "r2", "type": "shelf.restocked", "ts": at(8), "bin": UNSCALED, "device": "HANDHELD-01", "qty": 4},
            {"id": "out", "type": "session.ended", "ts": at(9), "session": "v1", "gate": "GATE-OUT"},
        ],
    )
    assert units(api_a, at(-1))[SCALED]["units"] is None  # before its first count
    assert units(api_a, at(2.5))[SCALED]["units"] == 9
    assert units(api_a, at(4.5))[SCALED]["units"] == 7
    later = units(api_a, at(10))
    assert later[SCALED]["units"] == 13
    assert later[SCALED]["last_change"] == at(5.5)
    assert later[UNSCALED]["units"] == 8 - 2 + 1 + 4
    assert later[UNSCALED]["has_scale"] is False
    assert later["F01-B02"]["units"] is None


def test_while_a_scale_is_offline_the_cameras_and_restocks_count(api_a: APIClient, store: Store) -> None:
    api_a.put(f"/api/v1/stores/S1/stock?at={at(0)}", [{"bin": SCALED, "units": 10}], format="json")
    push(
        store,
        [
            {"id": "in", "type": "session.started", "ts": at(1), "session": "v1", "shopper": "t", "gate": "GATE-IN"},
            {"id": "d1", "type": "device.status", "ts": at(2), "device": f"W-{SCALED}", "status": "offline"},
            {
                "id": "p1",
                "type": "item.picked",
                "ts": at(3),
                "session": "v1",
                "bin": SCALED,
                "device": "CAM-01",
                "confidence": 0.9,
                "qty": 3,
            },
            weight(1, 3.1, -2000.0),  # an offline scale's word is not taken
            {"id": "r1", "type": "shelf.restocked", "ts": at(4), "bin": SCALED, "device": "HANDHELD-01", "qty": 2},
            {"id": "d2", "type": "device.status", "ts": at(5), "device": f"W-{SCALED}", "status": "online"},
            {
                "id": "p2",
                "type": "item.picked",
                "ts": at(6),
                "session": "v1",
                "bin": SCALED,
                "device": "CAM-01",
                "confidence": 0.9,
            },
            weight(2, 6.1, -250.0),
            {"id": "out", "type": "session.ended", "ts": at(9), "session": "v1", "gate": "GATE-OUT"},
        ],
    )
    assert units(api_a, at(4.5))[SCALED]["units"] == 10 - 3 + 2
    assert units(api_a, at(10))[SCALED]["units"] == 10 - 3 + 2 - 1


def test_a_later_count_starts_again_and_the_same_instant_replaces(api_a: APIClient, store: Store) -> None:
    api_a.put(f"/api/v1/stores/S1/stock?at={at(0)}", [{"bin": SCALED, "units": 10}], format="json")
    push(store, [weight(1, 2, -250.0), weight(2, 6, -250.0)])
    api_a.put(f"/api/v1/stores/S1/stock?at={at(4)}", [{"bin": SCALED, "units": 20}], format="json")
    api_a.put(f"/api/v1/stores/S1/stock?at={at(4)}", [{"bin": SCALED, "units": 30}], format="json")
    assert units(api_a, at(3))[SCALED]["units"] == 9
    assert units(api_a, at(5))[SCALED]["units"] == 30
    assert units(api_a, at(7))[SCALED]["units"] == 29
    with tenancy.tenant_scope(store.tenant_id):
        assert StockCount.objects.filter(store=store).count() == 2


@pytest.mark.parametrize(
    ("body", "query", "says"),
    [
        ({"bin": SCALED, "units": 3}, "", "JSON array"),
        ([], "", "JSON array"),
        ([{"bin": "NOPE", "units": 3}], "", "No bin 'NOPE'"),
        ([{"bin": SCALED, "units": 3}, {"bin": SCALED, "units": 4}], "", "counted twice"),
        ([{"bin": SCALED, "units": -1}], "", "whole number"),
        ([{"bin": SCALED, "units": 2.5}], "", "whole number"),
        ([{"bin": SCALED, "units": True}], "", "whole number"),
        ([{"bin": SCALED}], "", '{"bin"'),
        ([{"bin": SCALED, "units": 3}], "?at=2999-01-01T00:00:00Z", "future"),
    ],
)
def test_a_bad_stock_take_is_refused_whole(api_a: APIClient, store: Store, body: Any, query: str, says: str) -> None:
    rows = [{"bin": "F01-B03", "units": 5}, *body] if isinstance(body, list) and body else body
    answer = api_a.put(f"/api/v1/stores/S1/stock{query}", rows, format="json")
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert error["code"] == "invalid_stock_take"
    assert says in " ".join(problem["message"] for problem in error["details"]["problems"])
    with tenancy.tenant_scope(store.tenant_id):
        assert not StockCount.objects.exists()


def test_a_malformed_instant_names_the_parameter(api_a: APIClient, store: Store) -> None:
    answer = api_a.get("/api/v1/stores/S1/stock", {"at": "yesterday"})
    assert answer.status_code == 400
    assert "at" in answer.json()["error"]["details"]


def test_another_tenants_store_is_not_found(
    api_a: APIClient, api_b: APIClient, store: Store, tenant_b: Tenant, make_store_with_layout: Callable[..., Store]
) -> None:
    make_store_with_layout(tenant_b, "B1")
    assert api_b.put("/api/v1/stores/S1/stock", [{"bin": SCALED, "units": 3}], format="json").status_code == 404
    assert api_b.get("/api/v1/stores/S1/stock").status_code == 404
    assert api_b.put("/api/v1/stores/S1/stock/levels", [{"bin": SCALED, "units": 3}], format="json").status_code == 404
    assert api_b.get("/api/v1/stores/S1/stock/levels").status_code == 404
    assert api_a.get("/api/v1/stores/B1/stock").status_code == 404
    with tenancy.tenant_scope(store.tenant_id):
        assert not StockCount.objects.exists()
        assert not LowStockLevel.objects.exists()


def test_low_levels_by_bin_win_over_the_products(api_a: APIClient, store: Store) -> None:
    answer = api_a.put(
        "/api/v1/stores/S1/stock/levels",
        [{"sku": "SKU-001", "units": 4}, {"bin": "F01-B02", "units": 7}],
        format="json",
    )
    assert answer.status_code == 200, answer.json()
    api_a.put(
        f"/api/v1/stores/S1/stock?at={at(0)}",
        [{"bin": SCALED, "units": 4}, {"bin": "F01-B02", "units": 8}],
        format="json",
    )
    rows = units(api_a, at(1))
    assert (rows[SCALED]["low"], rows[SCALED]["low_at"]) == (True, 4)
    assert (rows["F01-B02"]["low"], rows["F01-B02"]["low_at"]) == (False, 7)
    bad = api_a.put(
        "/api/v1/stores/S1/stock/levels",
        [{"bin": "F01-B03", "units": 2}, {"bin": "NOPE", "units": 3}, {"sku": "SKU-001", "bin": SCALED, "units": 1}],
        format="json",
    )
    assert bad.status_code == 400
    assert bad.json()["error"]["code"] == "invalid_low_stock_levels"
    assert [p["index"] for p in bad.json()["error"]["details"]["problems"]] == [1, 2]
    removed = api_a.put("/api/v1/stores/S1/stock/levels", [{"sku": "SKU-001", "units": None}], format="json")
    assert removed.json() == [{"bin": "F01-B02", "sku": "", "units": 7}]


def test_stock_low_is_sent_once_per_crossing(api_a: APIClient, store: Store, tenant_a: Tenant) -> None:
    webhooks.webhook_endpoint_create(
        actor=Actor.system(), tenant=tenant_a, url="https://hooks.alpha.test/stock", event_types=["stock.low"]
    )
    with tenancy.tenant_scope(tenant_a.pk):
        services.low_levels_set(actor=Actor.system(), store=store, levels=[{"bin": SCALED, "units": 3}])
        services.stock_take_record(actor=Actor.system(), store=store, at=T0, rows=[{"bin": SCALED, "units": 5}])
        push(store, [weight(1, 1, -500.0)])  # 3 left: low
        assert [item.bin for item in services.stock_low_check(store=store)] == [SCALED]
        assert services.stock_low_check(store=store) == []  # still low: nothing more
        push(store, [weight(2, 2, -250.0)])
        assert services.stock_low_check(store=store) == []
        push(store, [weight(3, 3, 2500.0)])  # restocked: 12
        assert services.stock_low_check(store=store) == []
        push(store, [weight(4, 4, -2250.0)])  # 3 again: a second crossing
        assert len(services.stock_low_check(store=store)) == 1
        sent = list(WebhookDelivery.objects.filter(event_type="stock.low").order_by("id"))
    assert len(sent) == 2
    assert sent[0].payload == {
        "store": "S1",
        "bin": SCALED,
        "sku": "SKU-001",
        "name": "Product SKU-001",
        "units": 3,
        "low_at": 3,
        "since": T0.replace(minute=1).isoformat(),
    }
    assert sent[0].event_id != sent[1].event_id


def test_a_push_that_empties_a_bin_sends_stock_low_through_the_workers(
    api_a: APIClient, tenant_a: Tenant, make_store_with_layout: Callable[..., Store], celery_worker: None
) -> None:
    store = make_store_with_layout(tenant_a)
    webhooks.webhook_endpoint_create(
        actor=Actor.system(), tenant=tenant_a, url="https://hooks.alpha.test/stock", event_types=["stock.low"]
    )
    with tenancy.tenant_scope(tenant_a.pk):
        services.low_levels_set(actor=Actor.system(), store=store, levels=[{"bin": SCALED, "units": 3}])
        services.stock_take_record(actor=Actor.system(), store=store, at=T0, rows=[{"bin": SCALED, "units": 5}])
    assert api_a.post("/api/v1/stores/S1/events", [weight(1, 1, -500.0)], format="json").status_code == 202
    sent = WebhookDelivery.unscoped.filter(tenant=tenant_a, event_type="stock.low")
    for _ in range(60):
        if sent.exists():
            break
        time.sleep(0.5)
    assert [delivery.payload["units"] for delivery in sent] == [3]
