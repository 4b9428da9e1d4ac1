"""The licensee API's common contract (docs/api.md): auth, error body, limits, pagination, schema."""

from __future__ import annotations

import re
import time

import pytest
from django.test import override_settings
from rest_framework.test import APIClient

from tenants import services
from tenants.audit import Actor
from tenants.models import ApiKey, Tenant


def _error(response) -> dict:
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["message"]
    return body["error"]


@pytest.mark.django_db
def test_no_key_is_401_with_the_error_body() -> None:
    response = APIClient().get("/api/v1/tenant")
    assert response.status_code == 401
    assert _error(response)["code"] == "not_authenticated"
    assert response["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize(
    "header",
    ["Bearer oa_00000000_nope", "Bearer", "Basic dXNlcjpwYXNz", "Bearer a b", "Bearer not-a-key", "Bearer oa_"],
)
@pytest.mark.django_db
def test_a_bad_key_is_401(header: str) -> None:
    response = APIClient().get("/api/v1/tenant", HTTP_AUTHORIZATION=header)
    assert response.status_code == 401
    _error(response)


def test_a_key_with_the_right_prefix_but_wrong_secret_is_401(api_a: APIClient) -> None:
    prefix = api_a.api_key.prefix  # type: ignore[attr-defined]
    response = APIClient().get("/api/v1/tenant", HTTP_AUTHORIZATION=f"Bearer oa_{prefix}_{'x' * 43}")
    assert response.status_code == 401


def test_a_revoked_key_stops_working_at_once(api_a: APIClient) -> None:
    assert api_a.get("/api/v1/tenant").status_code == 200
    services.api_key_revoke(actor=Actor.system(), api_key=api_a.api_key)  # type: ignore[attr-defined]
    response = api_a.get("/api/v1/tenant")
    assert response.status_code == 401
    assert "revoked" in _error(response)["message"]


def test_a_suspended_tenants_key_gets_403_with_a_clear_message(api_a: APIClient, tenant_a: Tenant) -> None:
    services.tenant_suspend(actor=Actor.system(), tenant=tenant_a, reason="unpaid invoices")
    for method, path in (("get", "/api/v1/tenant"), ("get", "/api/v1/api-keys"), ("post", "/api/v1/api-keys")):
        response = getattr(api_a, method)(path, {"name": "x"}, format="json") if method == "post" else api_a.get(path)
        assert response.status_code == 403
        error = _error(response)
        assert error["code"] == "tenant_suspended"
        assert "suspended" in error["message"]
    assert ApiKey.unscoped.filter(tenant=tenant_a).count() == 1
    services.tenant_reactivate(actor=Actor.system(), tenant=tenant_a)
    assert api_a.get("/api/v1/tenant").status_code == 200


@pytest.mark.parametrize(
    ("body", "content_type", "code"),
    [
        (b"{bad json", "application/json", "parse_error"),
        (b"", "application/json", "invalid"),
        (b"[1, 2, 3]", "application/json", "invalid"),
        (b'{"name": ["a list"]}', "application/json", "invalid"),
        (b'{"name": 12.5e400}', "application/json", "parse_error"),
        (b'{"name": ""}', "application/json", "invalid"),
        (b'{"name": "' + b"x" * 101 + b'"}', "application/json", "invalid"),
        (b'{"nom": "typo"}', "application/json", "invalid"),
        (b"\xff\xfe\x00garbage", "application/json", "parse_error"),
        (b"name=x", "text/plain", "unsupported_media_type"),
    ],
)
def test_bad_input_is_a_4xx_with_the_error_body_and_writes_nothing(
    api_a: APIClient, body: bytes, content_type: str, code: str
) -> None:
    before = ApiKey.unscoped.count()
    response = api_a.generic("POST", "/api/v1/api-keys", body, content_type=content_type)
    assert 400 <= response.status_code < 500, response.content
    assert _error(response)["code"] == code
    assert ApiKey.unscoped.count() == before


def test_field_errors_are_listed_in_details(api_a: APIClient) -> None:
    response = api_a.post("/api/v1/api-keys", {}, format="json")
    assert response.status_code == 400
    assert _error(response)["details"] == {"name": ["This field is required."]}


@override_settings(API_MAX_JSON_BYTES=1024)
def test_an_oversize_body_is_413(api_a: APIClient) -> None:
    body = b'{"name": "' + b"x" * 2048 + b'"}'
    response = api_a.generic("POST", "/api/v1/api-keys", body, content_type="application/json")
    assert response.status_code == 413
    assert _error(response)["code"] == "payload_too_large"


def test_an_unknown_api_path_is_a_json_404(api_a: APIClient) -> None:
    response = api_a.get("/api/v1/no-such-thing")
    assert response.status_code == 404
    assert _error(response)["code"] == "not_found"


def test_a_wrong_method_is_405_with_the_error_body(api_a: APIClient) -> None:
    response = api_a.put("/api/v1/tenant", {}, format="json")
    assert response.status_code == 405
    _error(response)


def test_issue_list_and_revoke_keys_through_the_api(api_a: APIClient, tenant_a: Tenant) -> None:
    created = api_a.post("/api/v1/api-keys", {"name": "till gateway"}, format="json")
    assert created.status_code == 201
    key = created.json()["key"]
    assert key.startswith("oa_")
    assert key not in str(ApiKey.unscoped.values_list("secret_hash", flat=True))
    second = APIClient()
    second.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    assert second.get("/api/v1/tenant").json()["slug"] == "alpha"
    listed = api_a.get("/api/v1/api-keys").json()
    assert listed["count"] == 2
    assert "key" not in listed["results"][0]
    revoked = api_a.delete(f"/api/v1/api-keys/{created.json()['id']}")
    assert revoked.status_code == 200
    assert revoked.json()["revoked_at"] is not None
    assert second.get("/api/v1/tenant").status_code == 401
    actions = list(api_a.get("/api/v1/audit-log").json()["results"])
    assert [a["action"] for a in actions[:2]] == ["api_key.revoked", "api_key.created"]
    assert actions[0]["actor"].startswith("API key alpha test key")


def test_lists_are_paginated(api_a: APIClient, tenant_a: Tenant) -> None:
    for n in range(4):
        services.api_key_issue(actor=Actor.system(), tenant=tenant_a, name=f"key {n}")
    page = api_a.get("/api/v1/api-keys?page_size=2").json()
    assert page["count"] == 5
    assert len(page["results"]) == 2
    assert page["next"].endswith("page=2&page_size=2")
    assert api_a.get("/api/v1/api-keys?page=99").status_code == 404


def test_each_key_is_throttled_on_its_own(api_a: APIClient, api_b: APIClient, monkeypatch: pytest.MonkeyPatch) -> None:
    from tenants.authentication import ApiKeyRateThrottle

    original = ApiKeyRateThrottle.THROTTLE_RATES
    ApiKeyRateThrottle.THROTTLE_RATES = {"api_key": "3/min"}
    # The counter is per fixed minute: the clock stands still, so that the calls cannot straddle two minutes.
    frozen = time.time()
    monkeypatch.setattr(ApiKeyRateThrottle, "timer", staticmethod(lambda: frozen))
    try:
        statuses = [api_a.get("/api/v1/tenant").status_code for _ in range(4)]
        assert statuses == [200, 200, 200, 429]
        throttled = api_a.get("/api/v1/tenant")
        assert _error(throttled)["code"] == "throttled"
        assert _error(throttled)["details"]["retry_after_seconds"] > 0
        assert api_b.get("/api/v1/tenant").status_code == 200
    finally:
        ApiKeyRateThrottle.THROTTLE_RATES = original


def test_request_id_is_echoed_or_made(api_a: APIClient) -> None:
    assert api_a.get("/api/v1/tenant", HTTP_X_REQUEST_ID="abc-123")["X-Request-ID"] == "abc-123"
    assert len(api_a.get("/api/v1/tenant")["X-Request-ID"]) == 32


@pytest.mark.django_db
def test_openapi_document_describes_the_api() -> None:
    response = APIClient().get("/api/v1/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    document = response.json()
    assert {"/api/v1/tenant", "/api/v1/api-keys", "/api/v1/api-keys/{key_id}", "/api/v1/audit-log"} <= set(
        document["paths"]
    )
    assert document["components"]["securitySchemes"]["ApiKey"]["scheme"] == "bearer"
    operations = [op for item in document["paths"].values() for op in item.values()]
    descriptions = [op.get("description", "") for op in operations]
    assert all(op.get("summary") for op in operations)
    assert all(descriptions) and len(set(descriptions)) == len(operations)  # each its own, none the base class's
    assert not any("Base of every licensee API view" in text for text in descriptions)


@pytest.mark.django_db
def test_api_docs_are_served_from_local_static_files() -> None:
    page = APIClient().get("/api/v1/docs/").content.decode()
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/" in page
    # Every script, stylesheet and icon from this server (a random token in the page may spell "cdn").
    fetched = re.findall(r'(?:src|href)="([^"]*)"', page)
    assert fetched and all(url.startswith("/") for url in fetched), fetched
    assert not re.search(r"https?://|jsdelivr|unpkg|cdnjs", page.lower())


SPEC_PATHS = {
    "/api/v1/stores",
    "/api/v1/stores/{store}/layout",
    "/api/v1/catalog/import",
    "/api/v1/stores/{store}/event-streams",
    "/api/v1/event-streams/{stream_id}",
    "/api/v1/event-streams/{stream_id}/rejections",
    "/api/v1/stores/{store}/events",
    "/api/v1/stores/{store}/stock",
    "/api/v1/stores/{store}/shrink",
    "/api/v1/stores/{store}/visits/{session}/disputes",
    "/api/v1/stores/{store}/disputes",
    "/api/v1/disputes/{dispute_id}",
}


@pytest.mark.django_db
def test_the_openapi_document_is_valid_and_covers_the_spec(tmp_path) -> None:
    from django.core.management import call_command

    target = tmp_path / "schema.json"
    call_command("spectacular", "--validate", "--fail-on-warn", "--format", "openapi-json", "--file", str(target))
    import json

    paths = set(json.loads(target.read_text())["paths"])
    assert paths >= SPEC_PATHS


@pytest.mark.django_db
def test_the_event_stream_schema_is_served_as_the_repository_holds_it() -> None:
    import json

    from ingest.validation import SCHEMA_PATH

    response = APIClient().get("/api/v1/schema/event-stream.json")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/schema+json"
    assert json.loads(response.content) == json.loads(SCHEMA_PATH.read_text())
    document = APIClient().get("/api/v1/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    assert "/api/v1/schema/event-stream.json" in document["paths"]


def test_an_instant_with_an_offset_postgresql_refuses_is_read_in_utc(
    api_a: APIClient, make_store_with_layout, tenant_a: Tenant
) -> None:
    """Schemathesis found `?at=…+21:31` a 500: Python reads offsets up to ±23:59, PostgreSQL refuses beyond ±15:59."""
    make_store_with_layout(tenant_a)
    assert api_a.get("/api/v1/stores/S1/layout?at=2026-03-01T20:00:00%2B21:31").status_code == 200
    assert api_a.get("/api/v1/stores/S1/visits?since=2026-03-01T20:00:00-21:59").status_code == 200
    too_early = api_a.get("/api/v1/stores/S1/layout?at=0001-01-01T00:00:00%2B21:00")
    assert too_early.status_code == 400
    assert "RFC 3339" in str(too_early.json()["error"]["details"]["at"])


@pytest.mark.django_db
def test_every_operation_documents_its_error_answers_and_lists_their_pages() -> None:
    document = APIClient().get("/api/v1/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    keys = document["paths"]["/api/v1/api-keys"]
    assert {"401", "403", "406", "429", "409", "400", "413", "415"} <= set(keys["post"]["responses"])
    error = keys["post"]["responses"]["409"]["content"]["application/json"]["schema"]
    assert error == {"$ref": "#/components/schemas/Error"}
    listed = keys["get"]["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]
    assert set(document["components"]["schemas"][listed]["properties"]) == {"count", "next", "previous", "results"}
    assert {"page", "page_size"} <= {parameter["name"] for parameter in keys["get"]["parameters"]}
    assert "401" not in document["paths"]["/api/v1/schema/event-stream.json"]["get"]["responses"]


@pytest.mark.django_db
def test_an_operation_is_documented_by_its_handlers_docstring() -> None:
    document = APIClient().get("/api/v1/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    revoke = document["paths"]["/api/v1/api-keys/{key_id}"]["delete"]
    assert revoke["summary"] == "Revoke an API key (it stops working at once)"
    assert revoke["description"] == (
        "Revokes the key: the next call made with it is 401. Revoking a revoked key changes nothing. "
        "A key of another tenant is 404."
    )


@pytest.mark.django_db
@pytest.mark.parametrize("listed", ["devices", "visits", "disputes"])
def test_a_list_filtered_by_an_unknown_status_is_a_400_naming_the_statuses(api_a: APIClient, listed: str) -> None:
    created = api_a.post(
        "/api/v1/stores", {"code": "S-1", "name": "One", "timezone": "UTC", "currency": "USD"}, format="json"
    )
    assert created.status_code == 201, created.content
    assert api_a.get(f"/api/v1/stores/S-1/{listed}?status=").status_code == 200
    refused = api_a.get(f"/api/v1/stores/S-1/{listed}?status=lost")
    assert refused.status_code == 400
    assert _error(refused)["details"]["status"].startswith("One of ")
