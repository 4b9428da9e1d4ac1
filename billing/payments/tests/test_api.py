"""Shoppers and entry checks through the licensee API: docs/api.md, "Shoppers and the gate"."""

from __future__ import annotations

from typing import Any

import pytest
from rest_framework.test import APIClient

from billing.payments.models import Shopper
from billing.payments.tests.support import decide_cart, open_visit, settle_payment
from stores.models import Store
from tenants import services as tenant_services
from tenants.audit import Actor
from tenants.models import AuditEntry

pytestmark = pytest.mark.django_db


def _register(api: APIClient, **body: Any) -> Any:
    return api.post(
        "/api/v1/shoppers", {"external_ref": "cust-9", "payment_method": "pm_card_visa"} | body, format="json"
    )


def _check(api: APIClient, store: str, token: str) -> Any:
    return api.post(f"/api/v1/stores/{store}/entry-check", {"token": token}, format="json")


def test_registering_a_shopper_gives_a_token_that_opens_the_gate(
    api_a: APIClient, store_a: Store, localstripe: Any
) -> None:
    response = _register(api_a, email="kim@example.com")

    assert response.status_code == 201
    body = response.json()
    assert body["entry_token"].startswith("shp_") and body["card_last4"] == "4242" and body["card_brand"]
    shopper = Shopper.unscoped.get(pk=body["id"])
    assert shopper.token_hash != body["entry_token"] and body["entry_token"] not in str(Shopper.unscoped.values())
    assert AuditEntry.unscoped.filter(action="shopper.registered", tenant=store_a.tenant).exists()
    check = _check(api_a, "PAY-1", body["entry_token"])
    assert check.status_code == 200
    assert check.json() == {"allowed": True, "code": "ok", "reason": "Welcome.", "open_balance": 0, "currency": "USD"}


def test_registering_again_replaces_card_and_token(api_a: APIClient, store_a: Store, localstripe: Any) -> None:
    first = _register(api_a).json()
    again = _register(api_a)

    assert again.status_code == 200 and again.json()["id"] == first["id"]
    assert _check(api_a, "PAY-1", first["entry_token"]).json()["code"] == "unknown_token"
    assert _check(api_a, "PAY-1", again.json()["entry_token"]).json()["allowed"] is True


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"external_ref": ""}, "external_ref"),
        ({"payment_method": "card_123"}, "payment_method"),
        ({"payment_method": "pm_card_visa_chargeDeclined"}, "payment_method"),
        ({"email": "not-an-email"}, "email"),
    ],
)
def test_bad_registrations_say_what_is_wrong_and_write_nothing(
    api_a: APIClient, localstripe: Any, body: dict[str, str], field: str
) -> None:
    response = _register(api_a, **body)

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid"
    assert field in response.json()["error"]["details"]
    assert not Shopper.unscoped.exists()


def test_entry_is_denied_for_unknown_revoked_owing_and_suspended(
    api_a: APIClient, store_a: Store, localstripe: Any
) -> None:
    assert _check(api_a, "PAY-1", "shp_unknown").json()["code"] == "unknown_token"
    assert _check(api_a, "PAY-1", "").status_code == 400

    revoked = _register(api_a, external_ref="leaver").json()
    assert api_a.delete(f"/api/v1/shoppers/{revoked['id']}").status_code == 204
    assert _check(api_a, "PAY-1", revoked["entry_token"]).json()["code"] == "token_revoked"

    owing = _register(api_a, external_ref="owes", payment_method="pm_card_chargeCustomerFail").json()
    settle_payment(decide_cart(open_visit(store_a, owing["entry_token"]), [("COLA", 2, 199)]))
    denied = _check(api_a, "PAY-1", owing["entry_token"]).json()
    assert (denied["allowed"], denied["code"], denied["open_balance"]) == (False, "open_balance", 398)

    fine = _register(api_a, external_ref="fine").json()
    tenant_services.tenant_suspend(actor=Actor.system(), tenant=store_a.tenant, reason="unpaid invoice")
    response = _check(api_a, "PAY-1", fine["entry_token"])
    assert response.status_code == 200 and response.json()["code"] == "tenant_suspended"
    assert api_a.get("/api/v1/shoppers").status_code == 403
    tenant_services.tenant_reactivate(actor=Actor.system(), tenant=store_a.tenant)
    assert _check(api_a, "PAY-1", fine["entry_token"]).json()["allowed"] is True


def test_another_tenants_store_and_shoppers_are_not_found(
    api_a: APIClient, api_b: APIClient, store_a: Store, localstripe: Any
) -> None:
    shopper = _register(api_a).json()

    assert _check(api_b, "PAY-1", shopper["entry_token"]).status_code == 404
    assert api_b.get(f"/api/v1/shoppers/{shopper['id']}").status_code == 404
    assert api_b.delete(f"/api/v1/shoppers/{shopper['id']}").status_code == 404
    assert api_b.get("/api/v1/shoppers").json()["count"] == 0
    assert Shopper.unscoped.get(pk=shopper["id"]).revoked_at is None
    assert api_a.get("/api/v1/shoppers").json()["count"] == 1
