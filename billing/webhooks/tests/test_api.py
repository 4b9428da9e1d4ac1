"""GET/POST /api/v1/webhook-endpoints and /api/v1/webhook-endpoints/{id}."""

from __future__ import annotations

from rest_framework.test import APIClient

from billing.webhooks import services
from billing.webhooks.models import WebhookEndpoint
from tenants.models import AuditEntry

URL = "/api/v1/webhook-endpoints"


def test_register_list_and_change_an_endpoint(api_a: APIClient, api_b: APIClient) -> None:
    created = api_a.post(URL, {"url": "https://erp.alpha.test/hooks", "event_types": ["payment.failed"]}, format="json")
    assert created.status_code == 201, created.json()
    body = created.json()
    endpoint = WebhookEndpoint.unscoped.get(pk=body["id"])
    assert body["secret"] == services.signing_secret_of(endpoint) and body["secret"].startswith("whsec_")
    assert (body["url"], body["event_types"], body["is_active"]) == (
        "https://erp.alpha.test/hooks",
        ["payment.failed"],
        True,
    )

    listed = api_a.get(URL).json()
    assert [e["id"] for e in listed["results"]] == [endpoint.pk]
    assert "secret" not in listed["results"][0] and "secret" not in api_a.get(f"{URL}/{endpoint.pk}").json()
    assert api_b.get(URL).json()["results"] == []

    changed = api_a.patch(f"{URL}/{endpoint.pk}", {"event_types": [], "is_active": False}, format="json")
    assert changed.status_code == 200
    assert (changed.json()["event_types"], changed.json()["is_active"]) == ([], False)
    actions = set(AuditEntry.unscoped.filter(object_type="webhooks.webhookendpoint").values_list("action", "source"))
    assert actions == {("webhook_endpoint.created", "api"), ("webhook_endpoint.updated", "api")}


def test_bad_input_is_refused_and_nothing_is_saved(api_a: APIClient) -> None:
    for payload in (
        {"url": "not a url"},
        {"url": "https://u:p@erp.alpha.test/hooks"},
        {"url": "https://erp.alpha.test/hooks", "event_types": ["receipt.printed"]},
        {"url": "https://erp.alpha.test/hooks", "is_active": "maybe"},
        {},
    ):
        response = api_a.post(URL, payload, format="json")
        assert response.status_code == 400, payload
        assert response.json()["error"]["code"] == "invalid"
    assert not WebhookEndpoint.unscoped.exists()
    created = api_a.post(URL, {"url": "https://erp.alpha.test/hooks"}, format="json").json()
    response = api_a.patch(f"{URL}/{created['id']}", {"url": "ftp://x"}, format="json")
    assert response.status_code == 400 and "url" in response.json()["error"]["details"]
    assert WebhookEndpoint.unscoped.get().url == "https://erp.alpha.test/hooks"


def test_another_tenants_endpoint_answers_404_like_a_missing_one(api_a: APIClient, api_b: APIClient) -> None:
    theirs = api_b.post(URL, {"url": "https://bravo.test/hooks"}, format="json").json()["id"]
    for method, args in (("get", {}), ("patch", {"data": {"url": "https://alpha.test/stolen"}, "format": "json"})):
        response = getattr(api_a, method)(f"{URL}/{theirs}", **args)
        missing = getattr(api_a, method)(f"{URL}/999999", **args)
        assert response.status_code == 404 and response.json() == missing.json()
    assert WebhookEndpoint.unscoped.get(pk=theirs).url == "https://bravo.test/hooks"
