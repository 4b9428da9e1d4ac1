"""Webhook endpoints and the delivery log in the store admin: roles, forms, actions, and the other tenant (404)."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from django.contrib.auth.models import User

from billing.webhooks import services, tasks
from billing.webhooks.models import WebhookDelivery, WebhookEndpoint
from billing.webhooks.tests.conftest import Receiver
from billing.webhooks.tests.test_signing import documented_verify
from conftest import logged_in
from tenants.audit import Actor
from tenants.models import AuditEntry, Membership, Tenant

ENDPOINTS = "/admin/webhooks/webhookendpoint/"
DELIVERIES = "/admin/webhooks/webhookdelivery/"


@pytest.fixture
def alpha_endpoint(tenant_a: Tenant, receiver: Receiver) -> WebhookEndpoint:
    return services.webhook_endpoint_create(
        actor=Actor.system(), tenant=tenant_a, url=receiver.url, description="Alpha's ERP"
    )


@pytest.fixture
def alpha_delivery(tenant_a: Tenant, alpha_endpoint: WebhookEndpoint) -> WebhookDelivery:
    (delivery,) = services.webhook_emit(tenant=tenant_a, event_type="payment.failed", payload={"amount": 999})
    return delivery


def test_manager_registers_an_endpoint_and_sees_its_secret(manager_a: User, tenant_a: Tenant) -> None:
    client = logged_in(manager_a)
    response = client.post(
        f"{ENDPOINTS}add/",
        {
            "url": "https://erp.alpha.test/hooks",
            "description": "ERP",
            "event_types": ["receipt.issued"],
            "is_active": "on",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]

    endpoint = WebhookEndpoint.unscoped.get()
    assert (endpoint.tenant_id, endpoint.url, endpoint.event_types) == (
        tenant_a.pk,
        "https://erp.alpha.test/hooks",
        ["receipt.issued"],
    )
    secret = services.signing_secret_of(endpoint)
    assert secret.startswith("whsec_") and secret not in endpoint.secret_encrypted, "stored encrypted"
    page = client.get(f"{ENDPOINTS}{endpoint.pk}/change/").content.decode()
    shown = re.search(r'id="webhook-signing-secret"[^>]*>([^<]+)<', page)
    assert shown is not None and shown.group(1) == secret
    entry = AuditEntry.unscoped.filter(tenant=tenant_a, object_type="webhooks.webhookendpoint").latest("at")
    assert (entry.action, entry.actor_label) == ("webhook_endpoint.created", "alice@alpha.test")
    assert secret not in str(entry.changes)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("not a url", "is not a valid http(s) URL"),
        ("ftp://erp.alpha.test/hooks", "is not a valid http(s) URL"),
        ("https://user:secret@erp.alpha.test/hooks", "no user name or password"),
        ("", "This field is required"),
    ],
)
def test_a_bad_url_is_a_form_error_and_nothing_is_saved(manager_a: User, url: str, message: str) -> None:
    response = logged_in(manager_a).post(f"{ENDPOINTS}add/", {"url": url, "is_active": "on"})
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not WebhookEndpoint.unscoped.exists()


def test_an_unknown_event_type_is_a_form_error(manager_a: User) -> None:
    response = logged_in(manager_a).post(
        f"{ENDPOINTS}add/", {"url": "https://erp.alpha.test/hooks", "event_types": ["receipt.printed"]}
    )
    assert response.status_code == 200
    assert "receipt.printed is not one of the available choices" in response.content.decode()
    assert not WebhookEndpoint.unscoped.exists()


def test_staff_and_viewers_see_endpoints_but_neither_edit_them_nor_see_the_secret(
    make_member: Callable[..., User], tenant_a: Tenant, alpha_endpoint: WebhookEndpoint
) -> None:
    for role in (Membership.Role.STAFF, Membership.Role.VIEWER):
        client = logged_in(make_member(f"{role}@alpha.test", tenant_a, role=role))
        page = client.get(f"{ENDPOINTS}{alpha_endpoint.pk}/change/")
        assert page.status_code == 200
        assert services.signing_secret_of(alpha_endpoint) not in page.content.decode()
        assert client.get(f"{ENDPOINTS}add/").status_code in (302, 403)
        client.post(f"{ENDPOINTS}{alpha_endpoint.pk}/change/", {"url": "https://evil.test/x"})
        client.post(f"{ENDPOINTS}{alpha_endpoint.pk}/send-test/")
    alpha_endpoint.refresh_from_db()
    assert alpha_endpoint.url.startswith("http://127.0.0.1")
    assert not WebhookDelivery.unscoped.exists()


def test_send_test_event_asks_first_then_sends(
    manager_a: User, alpha_endpoint: WebhookEndpoint, receiver: Receiver
) -> None:
    client = logged_in(manager_a)
    confirm = client.get(f"{ENDPOINTS}{alpha_endpoint.pk}/send-test/")
    assert confirm.status_code == 200 and "Send test event" in confirm.content.decode()
    assert not WebhookDelivery.unscoped.exists(), "a GET changes nothing"

    sent = client.post(f"{ENDPOINTS}{alpha_endpoint.pk}/send-test/")
    delivery = WebhookDelivery.unscoped.get()
    assert sent.status_code == 302 and sent["Location"] == f"{DELIVERIES}{delivery.pk}/change/"
    assert delivery.event_type == "webhook.test"
    tasks.deliver(tenant_id=delivery.tenant_id, delivery_id=delivery.pk)  # what the worker does after the commit
    (request,) = receiver.requests
    assert request.headers["OpenAisle-Event"] == "webhook.test"
    secret = services.signing_secret_of(alpha_endpoint)
    assert documented_verify()(secret, request.headers["OpenAisle-Signature"], request.body)
    page = client.get(f"{DELIVERIES}{delivery.pk}/change/").content.decode()
    assert "Delivered" in page and "If you can read this" in page and "answered" in page


def test_rotate_secret_asks_first_then_replaces_it(manager_a: User, alpha_endpoint: WebhookEndpoint) -> None:
    client = logged_in(manager_a)
    old = services.signing_secret_of(alpha_endpoint)
    client.get(f"{ENDPOINTS}{alpha_endpoint.pk}/rotate-secret/")
    alpha_endpoint.refresh_from_db()
    assert services.signing_secret_of(alpha_endpoint) == old
    client.post(f"{ENDPOINTS}{alpha_endpoint.pk}/rotate-secret/")
    alpha_endpoint.refresh_from_db()
    assert services.signing_secret_of(alpha_endpoint) != old


def test_delivery_log_lists_filters_and_shows_the_attempts(
    manager_a: User, alpha_delivery: WebhookDelivery, receiver: Receiver
) -> None:
    receiver.statuses = [500]
    tasks.deliver(tenant_id=alpha_delivery.tenant_id, delivery_id=alpha_delivery.pk)
    client = logged_in(manager_a)
    row_link = f"{DELIVERIES}{alpha_delivery.pk}/change/"
    listing = client.get(DELIVERIES, {"state__exact": "pending", "event_type": "payment.failed"})
    assert listing.status_code == 200 and row_link in listing.content.decode()
    assert row_link not in client.get(DELIVERIES, {"state__exact": "delivered"}).content.decode()
    assert row_link not in client.get(DELIVERIES, {"event_type": "receipt.issued"}).content.decode()
    page = client.get(f"{DELIVERIES}{alpha_delivery.pk}/change/").content.decode()
    assert "HTTP 500" in page and "&quot;amount&quot;: 999" in page and str(alpha_delivery.event_id) in page
    assert client.post(f"{DELIVERIES}{alpha_delivery.pk}/change/", {"state": "delivered"}).status_code == 403
    assert WebhookDelivery.unscoped.get().state == "pending"


def test_retry_now_sends_a_given_up_delivery_again(
    manager_a: User, alpha_delivery: WebhookDelivery, receiver: Receiver
) -> None:
    WebhookDelivery.unscoped.filter(pk=alpha_delivery.pk).update(
        state="failed", attempts=services.MAX_ATTEMPTS, next_attempt_at=None
    )
    client = logged_in(manager_a)
    client.get(f"{DELIVERIES}{alpha_delivery.pk}/retry/")
    assert WebhookDelivery.unscoped.get().state == "failed", "a GET changes nothing"

    response = client.post(f"{DELIVERIES}{alpha_delivery.pk}/retry/")
    assert response.status_code == 302
    row = WebhookDelivery.unscoped.get()
    assert row.state == "pending" and row.next_attempt_at is not None
    assert tasks.deliver(tenant_id=row.tenant_id, delivery_id=row.pk) == "delivered"
    assert len(receiver.requests) == 1
    assert AuditEntry.unscoped.filter(action="webhook_delivery.retried", object_id=str(row.pk)).count() == 1

    client.post(DELIVERIES, {"action": "retry_selected", "_selected_action": [row.pk]})
    assert WebhookDelivery.unscoped.get().state == "delivered", "a delivered one is never sent again"


def test_another_tenant_gets_404_for_endpoints_and_deliveries(
    manager_b: User, alpha_endpoint: WebhookEndpoint, alpha_delivery: WebhookDelivery
) -> None:
    client = logged_in(manager_b)
    secret = services.signing_secret_of(alpha_endpoint)
    for url in (
        f"{ENDPOINTS}{alpha_endpoint.pk}/change/",
        f"{ENDPOINTS}{alpha_endpoint.pk}/send-test/",
        f"{ENDPOINTS}{alpha_endpoint.pk}/rotate-secret/",
        f"{ENDPOINTS}{alpha_endpoint.pk}/delete/",
        f"{DELIVERIES}{alpha_delivery.pk}/change/",
        f"{DELIVERIES}{alpha_delivery.pk}/retry/",
    ):
        assert client.get(url).status_code == 404, url
        assert client.post(url, {"url": "https://bravo.test/stolen", "post": "yes"}).status_code == 404, url
    for listing in (ENDPOINTS, DELIVERIES):
        body = client.get(listing).content.decode()
        assert alpha_endpoint.url not in body and "Alpha" not in body
    client.post(ENDPOINTS, {"action": "send_test_selected", "_selected_action": [alpha_endpoint.pk]})
    client.post(DELIVERIES, {"action": "retry_selected", "_selected_action": [alpha_delivery.pk]})

    alpha_endpoint.refresh_from_db()
    assert alpha_endpoint.url.startswith("http://127.0.0.1") and services.signing_secret_of(alpha_endpoint) == secret
    assert WebhookDelivery.unscoped.count() == 1 and WebhookDelivery.unscoped.get().attempts == 0
    assert not AuditEntry.unscoped.filter(tenant__slug="alpha", actor_label="bob@bravo.test").exists()


def test_operators_read_every_tenants_deliveries(
    operator: User, alpha_delivery: WebhookDelivery, tenant_b: Tenant, receiver: Receiver
) -> None:
    services.webhook_endpoint_create(actor=Actor.system(), tenant=tenant_b, url=receiver.url + "/bravo")
    services.webhook_emit(tenant=tenant_b, event_type="receipt.issued", payload={})
    client = logged_in(operator)
    body = client.get("/ops/webhooks/webhookdelivery/").content.decode()
    assert "Alpha Markets" in body and "Bravo Foods" in body
    assert client.get(f"/ops/webhooks/webhookdelivery/{alpha_delivery.pk}/change/").status_code == 200
    endpoint_page = client.get(f"/ops/webhooks/webhookendpoint/{alpha_delivery.endpoint_id}/change/").content.decode()
    assert services.signing_secret_of(alpha_delivery.endpoint) not in endpoint_page
    assert client.get("/ops/webhooks/webhookendpoint/add/").status_code == 403
