"""One tenant never sees another: schema rules, every API endpoint, both admin sites."""

from __future__ import annotations

import pytest
from django.apps import apps
from django.db import models
from django.test import Client
from rest_framework.test import APIClient

from conftest import PASSWORD, api_views
from core.admin_sites import licensee_site
from core.api.views import TenantAPIView
from core.models import TenantScopedManager
from tenants.models import ApiKey, AuditEntry, Tenant

# Columns that are unique platform-wide on purpose, with the reason (see the models' docstrings).
GLOBAL_UNIQUE_EXCEPTIONS = {("ApiKey", "prefix"): "the key identifies its tenant, so it is found before any tenant is"}
PUBLIC_API_VIEWS = {"SpectacularAPIView", "SpectacularSwaggerView", "SpectacularRedocView", "EventSchemaApi"}


def _tenant_owned_models() -> list[type[models.Model]]:
    return [m for m in apps.get_models() if isinstance(m._default_manager, TenantScopedManager)]


@pytest.mark.parametrize("model", _tenant_owned_models(), ids=lambda m: m.__name__)
def test_every_index_and_unique_constraint_starts_with_tenant(model: type[models.Model]) -> None:
    tenant_field = model._meta.get_field("tenant")
    assert isinstance(tenant_field, models.ForeignKey)
    for index in model._meta.indexes:
        assert index.fields[0] == "tenant", f"{model.__name__}.{index.name} must start with tenant"
    for constraint in model._meta.constraints:
        if isinstance(constraint, models.UniqueConstraint):
            assert constraint.fields[0] == "tenant", f"{model.__name__}.{constraint.name} must start with tenant"
    for field in model._meta.get_fields():
        if getattr(field, "unique", False) and not getattr(field, "primary_key", False):
            assert (model.__name__, field.name) in GLOBAL_UNIQUE_EXCEPTIONS, f"{model.__name__}.{field.name}"


def test_every_api_view_runs_in_its_keys_tenant_scope() -> None:
    views = api_views()
    assert len(views) >= 4
    for route, view_class in views:
        if view_class.__name__ in PUBLIC_API_VIEWS:
            continue
        assert issubclass(view_class, TenantAPIView), f"{route} ({view_class.__name__}) is not tenant-scoped"


def test_api_key_of_another_tenant_answers_404_like_a_missing_one(api_a: APIClient, api_b: APIClient) -> None:
    theirs = api_b.api_key.pk  # type: ignore[attr-defined]
    for method in ("get", "delete"):
        response = getattr(api_a, method)(f"/api/v1/api-keys/{theirs}")
        missing = getattr(api_a, method)("/api/v1/api-keys/999999")
        assert response.status_code == 404
        assert response.json() == missing.json()
        assert response.json()["error"]["code"] == "not_found"
    assert ApiKey.unscoped.get(pk=theirs).revoked_at is None


def test_api_lists_show_only_the_keys_tenant(api_a: APIClient, api_b: APIClient, tenant_a: Tenant) -> None:
    keys = api_a.get("/api/v1/api-keys").json()["results"]
    assert [k["prefix"] for k in keys] == [api_a.api_key.display_prefix]  # type: ignore[attr-defined]
    audit = api_a.get("/api/v1/audit-log?page_size=500").json()["results"]
    assert audit
    expected = set(AuditEntry.unscoped.filter(tenant=tenant_a).values_list("object_id", flat=True))
    assert {entry["object_id"] for entry in audit} == expected
    assert "bravo" not in str(audit).lower()
    assert api_a.get("/api/v1/tenant").json()["slug"] == "alpha"


@pytest.fixture
def admin_a(manager_a, api_a, api_b, manager_b) -> Client:
    """Alpha's manager, logged in to /admin/, with both tenants holding keys, members and audit entries."""
    client = Client()
    assert client.login(username="alice@alpha.test", password=PASSWORD)
    return client


def _licensee_admin_models() -> list[type[models.Model]]:
    return list(licensee_site._registry)


@pytest.mark.parametrize("model", _licensee_admin_models(), ids=lambda m: m.__name__)
def test_licensee_admin_lists_show_only_own_tenant(admin_a: Client, model: type[models.Model]) -> None:
    url = f"/admin/{model._meta.app_label}/{model._meta.model_name}/"
    response = admin_a.get(url)
    assert response.status_code == 200
    body = response.content.decode()
    assert "bob@bravo.test" not in body
    assert "bravo test key" not in body
    assert "Bravo Foods" not in body
    searched = admin_a.get(url, {"q": "bravo"})
    assert searched.status_code == 200
    assert "bravo test key" not in searched.content.decode()
    assert "bob@bravo.test" not in searched.content.decode()


def test_licensee_admin_will_not_open_another_tenants_object(admin_a: Client, api_b: APIClient) -> None:
    theirs = api_b.api_key.pk  # type: ignore[attr-defined]
    response = admin_a.get(f"/admin/tenants/apikey/{theirs}/change/", follow=True)
    assert "bravo test key" not in response.content.decode()
    assert response.redirect_chain, "another tenant's object must not render"
    mine = admin_a.get(f"/admin/tenants/apikey/{ApiKey.unscoped.get(name='alpha test key').pk}/change/")
    assert mine.status_code == 200
    assert "alpha test key" in mine.content.decode()


def test_licensee_admin_dashboard_counts_only_own_tenant(admin_a: Client) -> None:
    body = admin_a.get("/admin/").content.decode()
    assert "Alpha Markets" in body
    assert "Bravo Foods" not in body
    assert "bravo" not in body.lower()
