"""Stripe's webhooks: verified with the tenant's secret, stored once, applied to the attempt waiting for them."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.conf import settings
from django.test import Client
from django.utils import timezone

from billing.payments import accounts
from billing.payments.models import PaymentAttempt, StripeEvent
from billing.payments.tests.support import decide_cart, open_visit, settle_payment
from core import tenancy
from ingest.tests.conftest import eventually
from stores.models import Store
from tenants.audit import Actor
from tenants.models import Tenant


def _signed(body: bytes, secret: str, at: int | None = None) -> str:
    """Stripe's `Stripe-Signature` scheme: HMAC-SHA256 of "<timestamp>.<body>"."""
    at = at or int(time.time())
    digest = hmac.new(secret.encode(), f"{at}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={at},v1={digest}"


def _event(intent_id: str, kind: str = "payment_intent.succeeded", event_id: str = "evt_1") -> bytes:
    body = {
        "id": event_id,
        "object": "event",
        "type": kind,
        "data": {"object": {"id": intent_id, "status": "succeeded"}},
    }
    return json.dumps(body).encode()


def _post(tenant: Tenant, body: bytes, signature: str) -> Any:
    return Client().post(
        f"/stripe/webhook/{tenant.slug}", body, content_type="application/json", HTTP_STRIPE_SIGNATURE=signature
    )


@pytest.mark.django_db
def test_a_bad_signature_is_refused_and_nothing_changes(tenant_a: Tenant) -> None:
    body = _event("pi_123")
    for signature in (
        "",
        "t=1,v1=deadbeef",
        _signed(body, "whsec_someone_else"),
        _signed(body, settings.STRIPE_WEBHOOK_SECRET, at=1),
    ):
        response = _post(tenant_a, body, signature)
        assert response.status_code == 400
        assert response.json()["error"]["code"] == "invalid_signature"
    assert StripeEvent.unscoped.count() == 0


@pytest.mark.django_db
def test_a_signature_dated_outside_the_tolerance_either_way_is_refused(tenant_a: Tenant) -> None:
    """Stripe's library checks only the past: a signature dated 30 days ahead stayed replayable (issue 16, #12)."""
    body = _event("pi_123")
    now = int(time.time())
    tolerance = settings.STRIPE_WEBHOOK_TOLERANCE_SECONDS
    for at in (now + 30 * 86400, now + tolerance + 60, now - tolerance - 60):
        response = _post(tenant_a, body, _signed(body, settings.STRIPE_WEBHOOK_SECRET, at=at))
        assert response.status_code == 400, at
        assert response.json()["error"]["code"] == "invalid_signature"
        assert "tolerance" in response.json()["error"]["message"]
    assert StripeEvent.unscoped.count() == 0
    # Clocks a little apart, either way, are fine.
    for at, event_id in ((now + tolerance - 60, "evt_ahead"), (now - tolerance + 60, "evt_behind")):
        body = _event("pi_123", event_id=event_id)
        assert _post(tenant_a, body, _signed(body, settings.STRIPE_WEBHOOK_SECRET, at=at)).status_code == 200
    assert set(StripeEvent.unscoped.values_list("stripe_event_id", flat=True)) == {"evt_ahead", "evt_behind"}


@pytest.mark.django_db
def test_an_event_without_an_id_is_refused_and_nothing_is_stored(tenant_a: Tenant) -> None:
    for event in (
        {"object": "event", "type": "payment_intent.succeeded", "data": {"object": {"id": "pi_1"}}},
        {"id": "", "object": "event", "type": "payment_intent.succeeded", "data": {"object": {"id": "pi_1"}}},
        {"id": "  ", "object": "event", "type": "payment_intent.succeeded", "data": {"object": {"id": "pi_1"}}},
        {"id": 7, "object": "event", "type": "payment_intent.succeeded", "data": {"object": {"id": "pi_1"}}},
    ):
        body = json.dumps(event).encode()
        response = _post(tenant_a, body, _signed(body, settings.STRIPE_WEBHOOK_SECRET))
        assert response.status_code == 400, event
        assert response.json()["error"] == {"code": "invalid_event", "message": "The event has no id."}
    assert StripeEvent.unscoped.count() == 0


@pytest.mark.django_db
def test_in_production_the_published_default_secret_verifies_nothing(settings, tenant_a: Tenant) -> None:
    """A webhook forged with the repository's default secret was accepted for a tenant without its own (#7)."""
    settings.HTTPS = True
    for default in ("whsec_openaisle_platform", "whsec_change_me"):
        settings.STRIPE_WEBHOOK_SECRET = default
        body = _event("pi_123")
        response = _post(tenant_a, body, _signed(body, default))
        assert response.status_code == 400
        assert response.json()["error"]["code"] == "invalid_signature"
    assert StripeEvent.unscoped.count() == 0
    # A platform secret of the operator's own verifies; so does a tenant's own.
    settings.STRIPE_WEBHOOK_SECRET = "whsec_operators_own_9f2c4e1b7a"
    body = _event("pi_123", event_id="evt_platform")
    assert _post(tenant_a, body, _signed(body, "whsec_operators_own_9f2c4e1b7a")).status_code == 200
    settings.STRIPE_WEBHOOK_SECRET = "whsec_openaisle_platform"
    with tenancy.tenant_scope(tenant_a.pk):
        accounts.payment_settings_set(actor=Actor.system(), tenant=tenant_a, webhook_secret="whsec_alpha_own_5d1e")
    body = _event("pi_123", event_id="evt_own")
    assert _post(tenant_a, body, _signed(body, "whsec_alpha_own_5d1e")).status_code == 200
    assert set(StripeEvent.unscoped.values_list("stripe_event_id", flat=True)) == {"evt_platform", "evt_own"}


@pytest.mark.django_db
def test_a_tenant_with_its_own_secret_verifies_with_it(tenant_a: Tenant, tenant_b: Tenant) -> None:
    with tenancy.tenant_scope(tenant_a.pk):
        accounts.payment_settings_set(actor=Actor.system(), tenant=tenant_a, webhook_secret="whsec_alpha_own")
    body = _event("pi_123")
    assert _post(tenant_a, body, _signed(body, settings.STRIPE_WEBHOOK_SECRET)).status_code == 400
    assert _post(tenant_a, body, _signed(body, "whsec_alpha_own")).status_code == 200
    assert _post(tenant_b, body, _signed(body, "whsec_alpha_own")).status_code == 400
    assert Client().post("/stripe/webhook/nobody", body, content_type="application/json").status_code == 404


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("celery_worker")
def test_an_event_is_stored_once_and_completes_the_attempt_waiting_for_it(
    store_a: Store, register: Callable[..., Any]
) -> None:
    shopper = register(store_a.tenant)
    visit = open_visit(store_a, shopper.entry_token)
    # A hold sent to Stripe by a worker that has not recorded the answer yet (and still holds the attempt).
    attempt = PaymentAttempt.unscoped.create(
        tenant=store_a.tenant,
        visit=visit,
        shopper=shopper.shopper,
        purpose="preauth",
        amount=5000,
        currency="USD",
        state="processing",
        payment_intent_id="pi_from_stripe",
        lease_until=timezone.now() + timedelta(minutes=5),
    )
    body = _event("pi_from_stripe")
    signature = _signed(body, settings.STRIPE_WEBHOOK_SECRET)

    first = _post(store_a.tenant, body, signature)
    again = _post(store_a.tenant, body, signature)

    assert first.json() == {"received": True, "duplicate": False}
    assert again.json() == {"received": True, "duplicate": True}
    eventually(lambda: StripeEvent.unscoped.get().processed_at is not None)
    assert StripeEvent.unscoped.get().outcome.startswith("recorded")
    attempt.refresh_from_db()
    visit.refresh_from_db()
    assert attempt.state == "succeeded"
    assert (visit.payment_status, visit.payment_reference) == ("pending", "pi_from_stripe")


@pytest.mark.django_db(transaction=True)
def test_localstripe_webhooks_verify_end_to_end(
    store_a: Store, register: Callable[..., Any], localstripe: Any, live_server: Any
) -> None:
    localstripe.send_webhooks_to(
        url=f"{live_server.url}/stripe/webhook/{store_a.tenant.slug}", secret=settings.STRIPE_WEBHOOK_SECRET
    )
    shopper = register(store_a.tenant)
    settle_payment(decide_cart(open_visit(store_a, shopper.entry_token), [("COLA", 1, 199)]))

    eventually(lambda: StripeEvent.unscoped.filter(type="payment_intent.succeeded").exists(), timeout=15)
