"""Stores, layouts and devices through the API: contract, versions in time, all-or-nothing, isolation."""

from __future__ import annotations

import copy
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone
from rest_framework.test import APIClient

from catalog.models import Product
from core import tenancy
from stores import services
from stores.models import Bin, Device, LayoutVersion, Store, Zone
from tenants.audit import Actor
from tenants.models import AuditEntry, Tenant


def test_register_a_store(api_a: APIClient, tenant_a: Tenant) -> None:
    response = api_a.post(
        "/api/v1/stores",
        {"code": "S9", "name": "Airport", "timezone": "Europe/Paris", "currency": "EUR"},
        format="json",
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["code"] == "S9"
    assert body["currency"] == "EUR"
    assert body["status"] == "onboarding"
    assert body["preauth_amount"] == 5000
    assert body["overcharge_risk"] == 0.005
    assert AuditEntry.unscoped.filter(tenant=tenant_a, object_type="stores.store", action="store.created").exists()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"code": "S 1", "name": "x", "timezone": "UTC", "currency": "USD"}, "code"),
        ({"code": "S2", "name": "x", "timezone": "Mars/Olympus", "currency": "USD"}, "timezone"),
        ({"code": "S2", "name": "x", "timezone": "UTC", "currency": "XYZ"}, "currency"),
        ({"code": "S2", "name": "", "timezone": "UTC", "currency": "USD"}, "name"),
        ({"code": "S2", "timezone": "UTC", "currency": "USD"}, "name"),
        (
            {"code": "S2", "name": "x", "timezone": "UTC", "currency": "USD", "overcharge_risk": 0.5},
            "overcharge_risk",
        ),
        (
            {"code": "S2", "name": "x", "timezone": "UTC", "currency": "USD", "overcharge_risk": "0.0001"},
            "overcharge_risk",
        ),
        (
            {"code": "S2", "name": "x", "timezone": "UTC", "currency": "USD", "overcharge_risk": "lots"},
            "overcharge_risk",
        ),
        ({"code": "S2", "name": "x", "timezone": "UTC", "currency": "USD", "preauth_amount": -5}, "preauth_amount"),
        ({"code": "S1", "name": "dup", "timezone": "UTC", "currency": "USD"}, "code"),
    ],
)
def test_store_bad_input_is_400_and_writes_nothing(api_a: APIClient, store_a: Store, body: dict, field: str) -> None:
    before = Store.unscoped.count()
    response = api_a.post("/api/v1/stores", body, format="json")
    assert response.status_code == 400
    assert field in response.json()["error"]["details"]
    assert Store.unscoped.count() == before


def test_the_same_store_code_in_two_tenants_is_fine_and_separate(
    api_a: APIClient, api_b: APIClient, store_a, store_b
) -> None:
    assert api_a.get("/api/v1/stores/S1").json()["name"] == "Main Street"
    assert api_b.get("/api/v1/stores/S1").json()["name"] == "Bravo High Street"
    assert [s["code"] for s in api_a.get("/api/v1/stores").json()["results"]] == ["S1"]


def test_another_tenants_store_is_404_everywhere(api_a: APIClient, store_b: Store, layout_document: dict) -> None:
    for method, path, body in [
        ("get", "/api/v1/stores/S1", None),
        ("patch", "/api/v1/stores/S1", {"name": "hijack"}),
        ("put", "/api/v1/stores/S1/layout", layout_document),
        ("get", "/api/v1/stores/S1/layout", None),
        ("get", "/api/v1/stores/S1/layouts", None),
        ("get", "/api/v1/stores/S1/devices", None),
    ]:
        response = getattr(api_a, method)(path, body, format="json") if body else getattr(api_a, method)(path)
        assert response.status_code == 404, (method, path)
        assert response.json()["error"]["code"] == "not_found"
    assert Store.unscoped.get(pk=store_b.pk).name == "Bravo High Street"
    assert not LayoutVersion.unscoped.exists()


def test_patch_changes_settings_but_never_code_or_currency(api_a: APIClient, store_a: Store) -> None:
    response = api_a.patch("/api/v1/stores/S1", {"status": "active", "overcharge_risk": "0.01"}, format="json")
    assert response.status_code == 200
    assert response.json()["overcharge_risk"] == 0.01
    refused = api_a.patch("/api/v1/stores/S1", {"currency": "EUR", "name": "New"}, format="json")
    assert refused.status_code == 400
    assert "currency" in refused.json()["error"]["details"]
    store_a.refresh_from_db()
    assert (store_a.currency, store_a.name, store_a.status) == ("USD", "Main Street", "active")


@pytest.mark.parametrize("risk", [0.0004, 0.051, "0.00055", "", None, True, "half"])
def test_a_bad_overcharge_risk_is_400_and_changes_nothing(api_a: APIClient, store_a: Store, risk: object) -> None:
    response = api_a.patch("/api/v1/stores/S1", {"name": "Renamed", "overcharge_risk": risk}, format="json")
    assert response.status_code == 400
    assert "overcharge_risk" in response.json()["error"]["details"]
    store_a.refresh_from_db()
    assert (store_a.name, store_a.overcharge_risk) == ("Main Street", Decimal("0.005"))
    assert not AuditEntry.unscoped.filter(object_type="stores.store", action="store.updated").exists()


def test_the_overcharge_risk_is_set_at_registration_and_audited_when_changed(
    api_a: APIClient, api_b: APIClient, store_a: Store
) -> None:
    created = api_a.post(
        "/api/v1/stores",
        {"code": "S8", "name": "Station", "timezone": "UTC", "currency": "USD", "overcharge_risk": "0.0005"},
        format="json",
    )
    assert created.status_code == 201, created.json()
    assert created.json()["overcharge_risk"] == 0.0005
    changed = api_a.patch("/api/v1/stores/S1", {"overcharge_risk": 0.05}, format="json")
    assert changed.json()["overcharge_risk"] == 0.05
    entry = AuditEntry.unscoped.get(object_type="stores.store", action="store.updated")
    assert entry.changes == {"overcharge_risk": ["0.0050", "0.0500"]}
    assert api_b.patch("/api/v1/stores/S1", {"overcharge_risk": 0.01}, format="json").status_code == 404
    store_a.refresh_from_db()
    assert store_a.overcharge_risk == Decimal("0.05")


def test_publish_a_layout_and_read_it_back(api_a: APIClient, store_a: Store, layout_document: dict) -> None:
    response = api_a.put("/api/v1/stores/S1/layout", layout_document, format="json")
    assert response.status_code == 201, response.json()
    assert response.json()["version"] == 1
    with tenancy.tenant_scope(store_a.tenant_id):
        layout = LayoutVersion.objects.get()
        assert Zone.objects.filter(layout=layout).count() == 5
        assert Bin.objects.filter(layout=layout).count() == 116
        assert Bin.objects.filter(layout=layout, sensor__isnull=False).count() < 116
        assert Device.objects.filter(store=store_a, kind="camera").count() == 8
    assert api_a.get("/api/v1/stores/S1/layout").json()["document"] == layout_document


def test_a_broken_layout_is_400_listing_every_problem_and_stores_nothing(
    api_a: APIClient, store_a: Store, layout_document: dict
) -> None:
    broken = copy.deepcopy(layout_document)
    broken["fixtures"][0]["zone"] = "Z-NOWHERE"
    broken["fixtures"][1]["bins"][0]["sku"] = "GHOST"
    broken["fixtures"][1]["bins"][1]["sensor"] = "W-NOPE"
    broken["devices"][0]["covers"] = ["Z-NOPE"]
    response = api_a.put("/api/v1/stores/S1/layout", broken, format="json")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid_layout"
    paths = {p["path"] for p in error["details"]["problems"]}
    assert paths == {
        "fixtures[0].zone",
        "fixtures[1].bins[0].sku",
        "fixtures[1].bins[1].sensor",
        "devices[0].covers[0]",
    }
    assert not LayoutVersion.unscoped.exists()
    assert not Device.unscoped.exists()


def test_an_archived_or_other_tenants_product_does_not_resolve(
    api_a: APIClient, store_a: Store, store_b: Store, tenant_b: Tenant, layout_document: dict
) -> None:
    Product.unscoped.filter(tenant=store_a.tenant, sku="SKU-001").update(status="archived")
    Product.unscoped.create(tenant=tenant_b, sku="ONLY-B", name="b", unit_weight_g=1, weight_tolerance_g=1)
    layout_document["fixtures"][0]["bins"][1]["sku"] = "ONLY-B"
    expected = {
        f"fixtures[{f}].bins[{b}].sku"
        for f, fixture in enumerate(layout_document["fixtures"])
        for b, item in enumerate(fixture["bins"])
        if item["sku"] in ("SKU-001", "ONLY-B")
    }
    problems = api_a.put("/api/v1/stores/S1/layout", layout_document, format="json").json()["error"]["details"]
    assert "fixtures[0].bins[1].sku" in expected
    assert {p["path"] for p in problems["problems"]} == expected


def test_layout_versions_answer_for_their_time(api_a: APIClient, store_a: Store, layout_document: dict) -> None:
    assert api_a.get("/api/v1/stores/S1/layout").status_code == 404
    start = timezone.now() - timedelta(days=10)
    api_a.put(
        f"/api/v1/stores/S1/layout?effective_from={start.isoformat().replace('+00:00', 'Z')}",
        layout_document,
        format="json",
    )
    changed = copy.deepcopy(layout_document)
    changed["fixtures"][0]["bins"][0]["sku"] = "SKU-040"
    second = start + timedelta(days=5)
    response = api_a.put(
        f"/api/v1/stores/S1/layout?effective_from={second.isoformat().replace('+00:00', 'Z')}", changed, format="json"
    )
    assert response.json()["version"] == 2

    def sku_at(at) -> str | None:
        got = api_a.get("/api/v1/stores/S1/layout", {"at": at.isoformat().replace("+00:00", "Z")})
        return got.json()["document"]["fixtures"][0]["bins"][0]["sku"] if got.status_code == 200 else None

    assert sku_at(start - timedelta(days=30)) == "SKU-001", "the first version covers what came before it"
    assert sku_at(start) == "SKU-001"
    assert sku_at(second - timedelta(seconds=1)) == "SKU-001"
    assert sku_at(second) == "SKU-040"
    assert sku_at(timezone.now()) == "SKU-040"
    assert [v["version"] for v in api_a.get("/api/v1/stores/S1/layouts").json()["results"]] == [2, 1]
    assert api_a.get("/api/v1/stores/S1/layout", {"at": "yesterday"}).status_code == 400
    clash = api_a.put(
        f"/api/v1/stores/S1/layout?effective_from={start.isoformat().replace('+00:00', 'Z')}",
        layout_document,
        format="json",
    )
    assert clash.status_code == 400
    assert LayoutVersion.unscoped.count() == 2


def test_devices_keep_their_identity_and_health_across_versions(
    api_a: APIClient, store_a: Store, layout_document: dict
) -> None:
    api_a.put("/api/v1/stores/S1/layout", layout_document, format="json")
    Device.unscoped.filter(store=store_a, code="CAM-02").update(status="offline")
    api_a.put("/api/v1/stores/S1/layout", layout_document, format="json")
    assert Device.unscoped.filter(store=store_a, code="CAM-02").get().status == "offline"
    assert Device.unscoped.filter(store=store_a).count() == len(layout_document["devices"])
    offline = api_a.get("/api/v1/stores/S1/devices", {"status": "offline"}).json()["results"]
    assert [d["code"] for d in offline] == ["CAM-02"]
    cameras = api_a.get("/api/v1/stores/S1/devices", {"kind": "camera", "page_size": 100}).json()
    assert cameras["count"] == 8
    assert api_a.get("/api/v1/stores/S1/devices", {"status": "sleepy"}).status_code == 400


def test_a_layout_that_is_not_json_object_is_refused(api_a: APIClient, store_a: Store) -> None:
    for body in (b"[]", b"{not json", b'"text"'):
        response = api_a.generic("PUT", "/api/v1/stores/S1/layout", body, content_type="application/json")
        assert response.status_code == 400
    assert not LayoutVersion.unscoped.exists()


def test_the_dispute_policy_is_read_and_changed_field_by_field(api_a: APIClient, api_b: APIClient, store_a) -> None:
    assert api_a.get("/api/v1/stores/S1").json()["dispute_policy"] == {
        "window_days": 7,
        "auto_refund_limit": 500,
        "refund_unsure_lines": True,
        "review_hours": 48,
    }
    changed = api_a.patch(
        "/api/v1/stores/S1", {"dispute_policy": {"auto_refund_limit": 0, "review_hours": 24}}, format="json"
    )
    assert changed.status_code == 200, changed.json()
    assert changed.json()["dispute_policy"] == {
        "window_days": 7,
        "auto_refund_limit": 0,
        "refund_unsure_lines": True,
        "review_hours": 24,
    }
    store_a.refresh_from_db()
    assert (store_a.dispute_auto_refund_limit, store_a.dispute_review_hours) == (0, 24)
    entry = AuditEntry.unscoped.get(object_type="stores.store", action="store.updated")
    assert entry.changes == {"dispute_auto_refund_limit": [500, 0], "dispute_review_hours": [48, 24]}
    assert api_b.patch("/api/v1/stores/S1", {"dispute_policy": {"window_days": 30}}, format="json").status_code == 404
    store_a.refresh_from_db()
    assert store_a.dispute_window_days == 7


def test_a_new_store_can_start_with_its_own_dispute_policy(api_a: APIClient, tenant_a: Tenant) -> None:
    body = {"code": "S7", "name": "Kiosk", "timezone": "UTC", "currency": "EUR", "dispute_policy": {"window_days": 14}}
    created = api_a.post("/api/v1/stores", body, format="json")
    assert created.status_code == 201, created.json()
    assert created.json()["dispute_policy"]["window_days"] == 14
    assert Store.unscoped.get(tenant=tenant_a, code="S7").dispute_window_days == 14


@pytest.mark.parametrize(
    "policy",
    [
        {"window_days": 0},
        {"window_days": 366},
        {"auto_refund_limit": -1},
        {"review_hours": 24 * 30 + 1},
        {"refund_unsure_lines": "perhaps"},
        {"window_days": "a week"},
    ],
)
def test_a_bad_dispute_policy_is_400_and_changes_nothing(api_a: APIClient, store_a: Store, policy: dict) -> None:
    response = api_a.patch("/api/v1/stores/S1", {"name": "Renamed", "dispute_policy": policy}, format="json")
    assert response.status_code == 400
    assert "dispute_policy" in response.json()["error"]["details"]
    store_a.refresh_from_db()
    assert (store_a.name, store_a.dispute_window_days, store_a.dispute_auto_refund_limit) == ("Main Street", 7, 500)
    assert not AuditEntry.unscoped.filter(object_type="stores.store", action="store.updated").exists()


@pytest.mark.parametrize(
    ("field", "value"),
    [("dispute_window_days", 0), ("dispute_review_hours", 10_000), ("dispute_auto_refund_unsure", 1)],
)
def test_the_store_service_refuses_a_policy_out_of_range(store_a: Store, field: str, value: object) -> None:
    with pytest.raises(ValidationError) as refused:
        services.store_update(actor=Actor.system(), store=store_a, **{field: value})
    assert field in refused.value.message_dict


def test_the_cost_of_a_look_at_an_unseen_item_is_read_changed_and_audited(
    api_a: APIClient, api_b: APIClient, store_a: Store
) -> None:
    assert api_a.get("/api/v1/stores/S1").json()["unseen_item_review_cost"] == 0  # always asked, as before
    changed = api_a.patch("/api/v1/stores/S1", {"unseen_item_review_cost": 150}, format="json")
    assert changed.status_code == 200, changed.json()
    assert changed.json()["unseen_item_review_cost"] == 150
    store_a.refresh_from_db()
    assert store_a.unseen_item_review_cost == 150
    entry = AuditEntry.unscoped.get(object_type="stores.store", action="store.updated")
    assert entry.changes == {"unseen_item_review_cost": [0, 150]}
    other = api_b.patch("/api/v1/stores/S1", {"unseen_item_review_cost": 9}, format="json")
    assert other.status_code == 404
    store_a.refresh_from_db()
    assert store_a.unseen_item_review_cost == 150
    body = {"code": "S6", "name": "Kiosk", "timezone": "UTC", "currency": "EUR", "unseen_item_review_cost": 10_000_000}
    created = api_a.post("/api/v1/stores", body, format="json")
    assert created.status_code == 201, created.json()
    assert created.json()["unseen_item_review_cost"] == 10_000_000


@pytest.mark.parametrize("cost", [-1, 10_000_001, 1.5, "cheap", True, None])
def test_a_bad_cost_of_a_look_at_an_unseen_item_is_400_and_changes_nothing(
    api_a: APIClient, store_a: Store, cost: object
) -> None:
    response = api_a.patch("/api/v1/stores/S1", {"name": "Renamed", "unseen_item_review_cost": cost}, format="json")
    assert response.status_code == 400
    details = response.json()["error"]["details"]
    assert "unseen_item_review_cost" in details
    if cost is not None:
        assert "A whole number of the currency's minor unit from 0 to 10,000,000" in str(details)
    store_a.refresh_from_db()
    assert (store_a.name, store_a.unseen_item_review_cost) == ("Main Street", 0)
    assert not AuditEntry.unscoped.filter(object_type="stores.store", action="store.updated").exists()


@pytest.mark.parametrize("cost", [-1, 10_000_001, 1.5, "150", True])
def test_the_store_service_refuses_a_cost_of_a_look_that_is_not_a_whole_number_in_range(
    store_a: Store, cost: object
) -> None:
    with pytest.raises(ValidationError) as refused:
        services.store_update(actor=Actor.system(), store=store_a, unseen_item_review_cost=cost)
    (message,) = refused.value.message_dict["unseen_item_review_cost"]
    assert message == (
        "A whole number of the currency's minor unit from 0 to 10,000,000 is required (e.g. 50 for 0.50; "
        "0 always asks)."
    )
    store_a.refresh_from_db()
    assert store_a.unseen_item_review_cost == 0
