"""Per-tenant quotas (issue 16, finding 14): the platform's defaults, an operator's limit per tenant, the API's 409,
the admin's message, nothing half-written, and the other tenant untouched."""

from __future__ import annotations

import re
from typing import Any

import pytest
import requests
from django.contrib.auth.models import User
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from billing.payments.models import Shopper
from billing.webhooks.models import WebhookEndpoint
from conftest import logged_in
from ingest.models import EventStream
from stores.models import Store
from tenants.models import ApiKey, AuditEntry, Tenant

pytestmark = pytest.mark.django_db

LIMITS = {"api_keys": 3, "webhook_endpoints": 1, "stores": 1, "shoppers": 1, "streams_in_flight": 1}


@pytest.fixture(autouse=True)
def small_quotas(settings: Any) -> None:
    settings.TENANT_QUOTAS = dict(LIMITS)


def assert_quota_refusal(response: Any, *, quota: str, limit: int) -> None:
    assert response.status_code == 409, response.content
    error = response.json()["error"]
    assert error["code"] == "quota_exceeded"
    assert error["details"] == {"quota": quota, "limit": limit, "in_use": limit}
    assert f"its limit of {limit}" in error["message"] and "platform operator" in error["message"]


def stripe_customers(localstripe: Any) -> int:
    url = f"{localstripe.base_url}/v1/customers"
    answer = requests.get(url, params={"limit": 100}, auth=("sk_test_openaisle_platform", ""), timeout=5)
    answer.raise_for_status()
    return len(answer.json()["data"])


def _issue_key(api: APIClient, name: str = "till") -> Any:
    return api.post("/api/v1/api-keys", {"name": name}, format="json")


def test_api_keys_stop_at_the_limit_and_revoking_one_makes_room(api_a: APIClient, api_b: APIClient) -> None:
    assert [_issue_key(api_a).status_code for _ in range(2)] == [201, 201]  # the client's own key is the first
    refused = _issue_key(api_a, "one too many")

    assert_quota_refusal(refused, quota="api_keys", limit=3)
    assert not ApiKey.unscoped.filter(name="one too many").exists()
    assert not AuditEntry.unscoped.filter(object_repr__startswith="one too many").exists()
    assert _issue_key(api_b).status_code == 201  # Bravo holds its own count
    spare = ApiKey.unscoped.filter(tenant=api_a.api_key.tenant, name="till").first()  # type: ignore[attr-defined]
    assert api_a.delete(f"/api/v1/api-keys/{spare.pk}").status_code == 200
    assert _issue_key(api_a, "after revoking").status_code == 201


def test_an_operator_raises_one_tenants_limit_in_ops(
    api_a: APIClient, api_b: APIClient, operator: User, tenant_a: Tenant
) -> None:
    _issue_key(api_a), _issue_key(api_a)
    assert _issue_key(api_a).status_code == 409
    client = logged_in(operator)
    page = client.get(f"/ops/tenants/tenant/{tenant_a.pk}/change/").content.decode()
    assert "live API keys: 3 of 3" in page and 'placeholder="3 (default)"' in page
    form = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', page))
    form.pop("csrfmiddlewaretoken", None)
    response = client.post(
        f"/ops/tenants/tenant/{tenant_a.pk}/change/", {**form, "name": tenant_a.name, "max_api_keys": "4"}
    )

    assert response.status_code == 302, response.content.decode()[:3000]
    tenant_a.refresh_from_db()
    assert tenant_a.max_api_keys == 4
    assert AuditEntry.unscoped.filter(tenant=tenant_a, source="ops", action="record.updated").exists()
    assert _issue_key(api_a).status_code == 201
    assert_quota_refusal(_issue_key(api_a), quota="api_keys", limit=4)
    _issue_key(api_b), _issue_key(api_b)
    assert_quota_refusal(_issue_key(api_b), quota="api_keys", limit=3)  # Bravo keeps the default


def test_webhook_endpoints_stop_at_the_limit(api_a: APIClient, api_b: APIClient) -> None:
    url = "/api/v1/webhook-endpoints"
    assert api_a.post(url, {"url": "https://erp.alpha.test/one"}, format="json").status_code == 201
    refused = api_a.post(url, {"url": "https://erp.alpha.test/two"}, format="json")

    assert_quota_refusal(refused, quota="webhook_endpoints", limit=1)
    assert list(WebhookEndpoint.unscoped.values_list("url", flat=True)) == ["https://erp.alpha.test/one"]
    assert api_b.post(url, {"url": "https://erp.bravo.test/one"}, format="json").status_code == 201


def test_stores_stop_at_the_limit(api_a: APIClient, api_b: APIClient) -> None:
    store = {"code": "S1", "name": "Corner", "timezone": "UTC", "currency": "USD"}
    assert api_a.post("/api/v1/stores", store, format="json").status_code == 201
    refused = api_a.post("/api/v1/stores", {**store, "code": "S2"}, format="json")

    assert_quota_refusal(refused, quota="stores", limit=1)
    assert list(Store.unscoped.values_list("code", flat=True)) == ["S1"]
    assert api_b.post("/api/v1/stores", store, format="json").status_code == 201


def test_shoppers_stop_at_the_limit_before_stripe_is_asked(
    api_a: APIClient, api_b: APIClient, localstripe: Any
) -> None:
    def register(api: APIClient, ref: str) -> Any:
        return api.post("/api/v1/shoppers", {"external_ref": ref, "payment_method": "pm_card_visa"}, format="json")

    first = register(api_a, "cust-1")
    assert first.status_code == 201
    assert register(api_a, "cust-1").status_code == 200  # a new card for the same shopper is no new shopper
    customers = stripe_customers(localstripe)
    refused = register(api_a, "cust-2")

    assert_quota_refusal(refused, quota="shoppers", limit=1)
    assert list(Shopper.unscoped.values_list("external_ref", flat=True)) == ["cust-1"]
    assert stripe_customers(localstripe) == customers
    assert register(api_b, "cust-2").status_code == 201
    assert api_a.delete(f"/api/v1/shoppers/{first.json()['id']}").status_code == 204
    assert register(api_a, "cust-2").status_code == 201
    assert_quota_refusal(register(api_a, "cust-1"), quota="shoppers", limit=1)  # a revoked one comes back: counted


def test_uploads_in_flight_stop_at_the_limit(
    api_a: APIClient, api_b: APIClient, make_store_with_layout: Any, tenant_a: Tenant, tenant_b: Tenant
) -> None:
    make_store_with_layout(tenant_a), make_store_with_layout(tenant_b)

    def upload(api: APIClient) -> Any:
        file = SimpleUploadedFile("events.ndjson", b"{}\n", content_type="application/x-ndjson")
        return api.post("/api/v1/stores/S1/event-streams", {"file": file}, format="multipart")

    assert upload(api_a).status_code == 202  # no worker here: it stays queued, in flight
    refused = upload(api_a)

    assert_quota_refusal(refused, quota="streams_in_flight", limit=1)
    assert EventStream.unscoped.filter(tenant=tenant_a).count() == 1
    assert upload(api_b).status_code == 202
    EventStream.unscoped.filter(tenant=tenant_a).update(status=EventStream.Status.DONE)
    assert upload(api_a).status_code == 202


def test_the_store_admin_says_so_and_adds_nothing(manager_a: User, tenant_a: Tenant, tenant_b: Tenant) -> None:
    from tenants import services
    from tenants.audit import Actor

    client = logged_in(manager_a)
    add = {"url": "https://erp.alpha.test/one", "description": "", "is_active": "on"}
    assert client.post("/admin/webhooks/webhookendpoint/add/", add).status_code == 302
    page = client.get("/admin/webhooks/webhookendpoint/add/", follow=True)
    again = client.post("/admin/webhooks/webhookendpoint/add/", {**add, "url": "https://erp.alpha.test/2"}, follow=True)

    for response in (page, again):
        assert response.redirect_chain[-1][0] == "/admin/webhooks/webhookendpoint/"
        assert "This account has 1 webhook endpoints, its limit of 1." in response.content.decode()
    assert WebhookEndpoint.unscoped.filter(tenant=tenant_a).count() == 1
    for number in (1, 2, 3):
        services.api_key_issue(actor=Actor.system(), tenant=tenant_a, name=f"key {number}")
    keys = client.post("/admin/tenants/apikey/add/", {"name": "fourth"})
    assert "This account has 3 live API keys, its limit of 3." in keys.content.decode()
    assert not ApiKey.unscoped.filter(name="fourth").exists()
    assert services.api_key_issue(actor=Actor.system(), tenant=tenant_b, name="Bravo's").api_key.pk
