"""Back-filling a past day through the API: a catalog and a layout published today price and read yesterday's
events, and the visits are charged (on localstripe), not sent to review for want of a price."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from billing.payments.models import PaymentAttempt
from catalog.models import CatalogImport, Product, ProductPrice
from catalog.sample import sample_catalog_rows
from ingest.tests.conftest import eventually, upload, wait_for_stream
from stores.sample import sample_layout
from tenants.models import Tenant
from visits.models import ChargeInstruction, Visit
from visits.simulator import CatalogItem, simulate

pytestmark = pytest.mark.usefixtures("celery_worker", "localstripe")
IMPORT = "/api/v1/catalog/import"


def _yesterday_8am() -> datetime:
    return timezone.now().astimezone(UTC).replace(hour=8, minute=0, second=0, microsecond=0) - timedelta(days=1)


def _open_store_today(api: APIClient, *, catalog_query: str) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Today: the catalog imported (with `catalog_query`), the store registered, its first layout published now."""
    rows = sample_catalog_rows(count=40, currency="USD")
    imported = api.post(f"{IMPORT}{catalog_query}", rows, format="json")
    assert imported.status_code == 200, imported.content
    assert imported.json()["created"] == len(rows)
    store = {"code": "BF-1", "name": "Back-fill", "timezone": "UTC", "currency": "USD", "settling_window_seconds": 0}
    assert api.post("/api/v1/stores", store, format="json").status_code == 201
    layout = sample_layout(skus=[row["sku"] for row in rows])
    published = api.put("/api/v1/stores/BF-1/layout", layout, format="json")
    assert published.status_code in (200, 201), published.content
    return rows, layout


def _shoppers(api: APIClient, count: int) -> list[str]:
    tokens = []
    for number in range(count):
        body = {"external_ref": f"shopper-{number}", "payment_method": "pm_card_visa"}
        response = api.post("/api/v1/shoppers", body, format="json")
        assert response.status_code == 201, response.content
        tokens.append(response.json()["entry_token"])
    return tokens


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    "catalog_query",
    [pytest.param("", id="first-price-covers-earlier"), pytest.param("?effective_from={day}", id="effective_from")],
)
def test_yesterday_uploaded_today_is_charged_not_reviewed(
    api_a: APIClient, tenant_a: Tenant, catalog_query: str
) -> None:
    day = _yesterday_8am()
    rows, layout = _open_store_today(api_a, catalog_query=catalog_query.format(day=day.isoformat().replace("+", "%2B")))
    versions = ProductPrice.unscoped.filter(tenant=tenant_a)
    if catalog_query:
        assert set(versions.values_list("effective_from", flat=True)) == {day}
    else:
        assert all(version.effective_from > day + timedelta(hours=12) for version in versions)
    catalog = {
        product.sku: CatalogItem(product.sku, float(product.unit_weight_g), float(product.weight_tolerance_g))
        for product in Product.unscoped.filter(tenant=tenant_a)
    }
    simulation = simulate(
        layout=layout, catalog=catalog, profile="clean", visits=8, start=day, seed=1, shopper_tokens=_shoppers(api_a, 4)
    )
    for body in simulation.uploads:
        stream = wait_for_stream(api_a, upload(api_a, "BF-1", body).json()["id"])
        assert (stream["status"], stream["rejected"]) == ("done", 0), stream

    visits = Visit.unscoped.filter(store__code="BF-1")

    def all_paid() -> bool:
        return (
            visits.count() == len(simulation.truth)
            and not visits.filter(status__in=["open", "settling"]).exists()
            and not ChargeInstruction.unscoped.filter(visit__in=visits, state="pending").exists()
            and not PaymentAttempt.unscoped.filter(visit__in=visits, state__in=["pending", "processing"]).exists()
        )

    eventually(all_paid, timeout=90)
    prices = {row["sku"]: round(float(row["price"]) * 100) for row in rows}
    page = api_a.get("/api/v1/stores/BF-1/visits", {"page_size": 100}).json()
    assert len(page["results"]) == len(simulation.truth)
    for receipt in page["results"]:
        truth = simulation.truth[receipt["session"]]
        assert receipt["status"] == ("charged" if truth else "no_charge"), (receipt["review"], receipt["status"])
        assert receipt["review"] is None
        assert receipt["subtotal"] == sum(prices[sku] * qty for sku, qty in truth.items())
        assert receipt["payment"]["charged"] == receipt["total"]
    assert any(receipt["payment"]["status"] == "succeeded" for receipt in page["results"])


def test_a_bad_or_future_effective_from_is_a_400_and_writes_nothing(api_a: APIClient, tenant_a: Tenant) -> None:
    rows = sample_catalog_rows(count=3)
    future = (timezone.now() + timedelta(hours=1)).isoformat().replace("+", "%2B")
    for value, says in [
        ("yesterday", "RFC 3339"),
        ("2026-13-45T00:00:00Z", "RFC 3339"),
        ("2026-11-21T06:00:00", "offset"),
        (future, "future"),
    ]:
        response = api_a.post(f"{IMPORT}?effective_from={value}", rows, format="json")
        assert response.status_code == 400, (value, response.content)
        error = response.json()["error"]
        assert set(error) == {"code", "message", "details"}
        assert "effective_from" in error["details"], error
        assert says in str(error["details"]["effective_from"])
    assert not Product.unscoped.filter(tenant=tenant_a).exists()
    assert not CatalogImport.unscoped.filter(tenant=tenant_a).exists()


def test_another_tenants_back_fill_touches_nothing_of_ours(api_a: APIClient, api_b: APIClient) -> None:
    rows = sample_catalog_rows(count=3)
    assert api_a.post(IMPORT, rows, format="json").status_code == 200
    before = list(ProductPrice.unscoped.order_by("pk").values_list("pk", "unit_price", "effective_from"))
    changed = [{**row, "price": "0.01"} for row in rows]
    past = "2026-01-01T00:00:00Z"
    backfilled = api_b.post(f"{IMPORT}?effective_from={past}", changed, format="json")
    assert backfilled.status_code == 200 and backfilled.json()["created"] == 3
    assert (
        list(
            ProductPrice.unscoped.filter(pk__in=[pk for pk, *_ in before])
            .order_by("pk")
            .values_list("pk", "unit_price", "effective_from")
        )
        == before
    )
    ours = CatalogImport.unscoped.get(tenant__slug="alpha")
    assert api_b.get(f"/api/v1/catalog/imports/{ours.pk}").status_code == 404
    assert api_b.get(f"/api/v1/products/{rows[0]['sku']}").json()["prices"][0]["unit_price"] == 1
