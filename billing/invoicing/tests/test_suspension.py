"""Suspending a tenant: every API call gets 403 with a clear message, uploads are refused in the API and in the
admin, both admins show it; its data and invoices stay; reactivating restores everything."""

from __future__ import annotations

import json
from datetime import date

import pytest
from django.contrib.auth.models import User
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from billing.invoicing import services
from billing.invoicing.models import Invoice
from billing.invoicing.tests.helpers import assign, make_plan, make_store
from catalog.models import CatalogImport, Product
from conftest import api_views, logged_in
from core import tenancy
from ingest.models import EventStream
from stores.models import LayoutVersion
from stores.sample import sample_layout
from tenants import services as tenant_services
from tenants.audit import Actor
from tenants.models import ApiKey, Tenant

PUBLIC = {"SpectacularAPIView", "SpectacularSwaggerView", "SpectacularRedocView", "EventSchemaApi"}
SYSTEM = Actor.system()


def _concrete(route: str) -> str:
    """api/v1/stores/<str:store>/events -> /api/v1/stores/S1/events"""
    parts = []
    for part in route.split("/"):
        if part.startswith("<"):
            parts.append("1" if part.startswith("<int:") else "S1")
        else:
            parts.append(part)
    return "/" + "/".join(parts)


@pytest.fixture
def suspended(tenant_a: Tenant) -> Tenant:
    return tenant_services.tenant_suspend(actor=SYSTEM, tenant=tenant_a, reason="unpaid invoices")


def test_every_api_endpoint_answers_403_tenant_suspended(api_a: APIClient, tenant_a: Tenant) -> None:
    make_store(tenant_a, "S1")
    tenant_services.tenant_suspend(actor=SYSTEM, tenant=tenant_a, reason="unpaid invoices")
    checked = 0
    for route, view_class in api_views():
        if view_class.__name__ in PUBLIC or getattr(view_class, "answers_suspended_tenants", False):
            continue  # the docs; the entry check, which answers "denied" itself (see its own tests)
        for method in ("get", "post", "put", "patch", "delete"):
            response = getattr(api_a, method)(_concrete(route), {}, format="json")
            assert response.status_code == 403, f"{method.upper()} {route}: {response.status_code}"
            error = response.json()["error"]
            assert error["code"] == "tenant_suspended", route
            assert "'alpha' is suspended" in error["message"] and "reactivated" in error["message"]
        checked += 1
    assert checked >= 10


def test_uploads_are_refused_through_the_api(api_a: APIClient, tenant_a: Tenant, suspended: Tenant) -> None:
    make_store(tenant_a, "S1")
    upload = SimpleUploadedFile("day.ndjson", b'{"id": "e1"}\n', content_type="application/x-ndjson")
    response = api_a.post("/api/v1/stores/S1/event-streams", {"file": upload}, format="multipart")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "tenant_suspended"
    assert not EventStream.unscoped.filter(tenant=tenant_a).exists()


def test_uploads_are_refused_in_the_store_admin(manager_a: User, tenant_a: Tenant, suspended: Tenant) -> None:
    store = make_store(tenant_a, "S1")
    client = logged_in(manager_a)

    events = SimpleUploadedFile("day.ndjson", b'{"id": "e1"}\n', content_type="application/x-ndjson")
    response = client.post("/admin/ingest/eventstream/upload/", {"store": store.pk, "file": events})
    assert response.status_code == 200
    assert "suspended" in response.content.decode()
    assert not EventStream.unscoped.filter(tenant=tenant_a).exists()

    catalog = SimpleUploadedFile("catalog.csv", b"sku,name,price,currency,weight_g\nA1,Cola,1.00,USD,330\n")
    response = client.post("/admin/catalog/product/import/", {"file": catalog, "currency": "USD"})
    assert response.status_code == 200
    assert "suspended" in response.content.decode()
    assert not CatalogImport.unscoped.filter(tenant=tenant_a).exists()
    assert not Product.unscoped.filter(tenant=tenant_a).exists()

    layout = json.dumps(sample_layout(skus=["A1"]))
    response = client.post(f"/admin/stores/store/{store.pk}/layout/upload/", {"text": layout})
    assert response.status_code == 200
    assert "suspended" in response.content.decode()
    assert not LayoutVersion.unscoped.filter(tenant=tenant_a).exists()


def test_both_admins_show_the_suspension(operator: User, manager_a: User, suspended: Tenant) -> None:
    ops = logged_in(operator).get("/ops/tenants/tenant/").content.decode()
    assert "Alpha Markets" in ops and "suspended" in ops
    dashboard = logged_in(manager_a).get("/admin/").content.decode()
    assert "This account is suspended" in dashboard


def test_data_and_invoices_stay_and_reactivation_restores_everything(
    api_a: APIClient, manager_a: User, tenant_a: Tenant
) -> None:
    assign(tenant_a, make_plan(), date(2026, 1, 1))
    make_store(tenant_a, "S1")
    with tenancy.platform_wide_scope():
        services.month_close(actor=SYSTEM, period_start=date(2026, 5, 1))
        invoice = services.invoice_finalise(actor=SYSTEM, invoice=Invoice.unscoped.get(tenant=tenant_a))
    key = api_a.api_key  # type: ignore[attr-defined]

    tenant_services.tenant_suspend(actor=SYSTEM, tenant=tenant_a, reason="unpaid invoices")

    # Suspended tenants are still billed for the month, and their people can still read and download invoices.
    with tenancy.platform_wide_scope():
        again = services.month_close(actor=SYSTEM, period_start=date(2026, 6, 1))
    assert len(again.created) == 1
    client = logged_in(manager_a)
    listing = client.get("/admin/invoicing/invoice/").content.decode()
    assert invoice.number in listing
    pdf = client.get(f"/admin/invoicing/invoice/{invoice.pk}/pdf/")
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF-")
    assert ApiKey.unscoped.get(pk=key.pk).revoked_at is None
    assert client.get("/admin/stores/store/").status_code == 200

    tenant_services.tenant_reactivate(actor=SYSTEM, tenant=tenant_a)

    assert api_a.get("/api/v1/tenant").status_code == 200
    assert api_a.get("/api/v1/stores").json()["count"] == 1
    assert "This account is suspended" not in client.get("/admin/").content.decode()
    upload = SimpleUploadedFile("day.ndjson", b"", content_type="application/x-ndjson")
    response = api_a.post("/api/v1/stores/S1/event-streams", {"file": upload}, format="multipart")
    assert response.status_code != 403
