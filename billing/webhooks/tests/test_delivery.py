"""Emitting and delivering webhooks to a real HTTP server on 127.0.0.1, on PostgreSQL (and Redis + Celery)."""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from typing import Any

import orjson
import pytest
from django.db import connection, transaction
from django.test import override_settings
from django.utils import timezone

from billing.webhooks import selectors, services, tasks, transport
from billing.webhooks.models import EventType, WebhookDelivery, WebhookEndpoint
from billing.webhooks.tests.conftest import Receiver
from billing.webhooks.tests.test_signing import documented_verify
from core import tenancy
from tenants.audit import Actor
from tenants.models import Tenant

RECEIPT = {"visit": {"id": 17, "session": "sess-1"}, "receipt_version": 1, "total": 1234, "currency": "USD"}


def endpoint_for(tenant: Tenant, url: str, **fields: Any) -> WebhookEndpoint:
    return services.webhook_endpoint_create(actor=Actor.system(), tenant=tenant, url=url, **fields)


def deliver(delivery: WebhookDelivery) -> str:
    result: str = tasks.deliver(tenant_id=delivery.tenant_id, delivery_id=delivery.pk)
    return result


def make_due(delivery: WebhookDelivery) -> None:
    """Let time pass: the next attempt is due now."""
    WebhookDelivery.unscoped.filter(pk=delivery.pk).update(next_attempt_at=timezone.now() - timedelta(seconds=1))


def reload(delivery: WebhookDelivery) -> WebhookDelivery:
    fresh: WebhookDelivery = WebhookDelivery.unscoped.get(pk=delivery.pk)
    return fresh


def test_a_delivery_is_signed_with_the_documented_recipe(tenant_a: Tenant, receiver: Receiver) -> None:
    endpoint = endpoint_for(tenant_a, receiver.url)
    (delivery,) = services.webhook_emit(tenant=tenant_a, event_type="receipt.issued", payload=RECEIPT)

    assert deliver(delivery) == "delivered"

    (request,) = receiver.requests
    secret = services.signing_secret_of(endpoint)
    assert secret.startswith("whsec_") and secret not in endpoint.secret_encrypted
    assert documented_verify()(secret, request.headers["OpenAisle-Signature"], request.body)
    assert not documented_verify()("whsec_wrong", request.headers["OpenAisle-Signature"], request.body)
    assert request.path == "/hooks/openaisle"
    assert request.headers["OpenAisle-Event"] == "receipt.issued"
    assert request.headers["OpenAisle-Delivery"] == str(delivery.event_id)
    assert request.headers["Content-Type"] == "application/json"
    body = orjson.loads(request.body)
    assert body["id"] == str(delivery.event_id) and body["type"] == "receipt.issued"
    assert body["data"] == RECEIPT and body["created_at"].endswith("Z")
    delivery = reload(delivery)
    assert (delivery.state, delivery.attempts, delivery.last_status_code) == ("delivered", 1, 200)
    assert delivery.delivered_at is not None and delivery.lease_until is None and delivery.next_attempt_at is None
    assert '"answered": 200' in delivery.last_response_excerpt


def test_a_500_is_retried_later_with_backoff_then_delivered(tenant_a: Tenant, receiver: Receiver) -> None:
    endpoint_for(tenant_a, receiver.url)
    receiver.statuses = [500]
    (delivery,) = services.webhook_emit(tenant=tenant_a, event_type="payment.failed", payload={"amount": 500})

    assert deliver(delivery) == "retry"
    first = reload(delivery)
    assert (first.state, first.attempts, first.last_status_code) == ("pending", 1, 500)
    assert "HTTP 500" in first.last_error
    assert first.next_attempt_at == first.last_attempt_at + timedelta(seconds=30)
    assert deliver(delivery) == "skipped", "not due yet: nothing sent before the backoff"
    with tenancy.platform_wide_scope():
        assert selectors.deliveries_due() == []
    assert len(receiver.requests) == 1

    make_due(delivery)
    with tenancy.platform_wide_scope():
        assert selectors.deliveries_due() == [(tenant_a.pk, delivery.pk)]
    assert tasks.retry_due() == 1  # the beat sweep: no broker consumer here, so deliver by hand as a worker would
    assert deliver(delivery) == "delivered"

    assert len(receiver.requests) == 2
    ids = {r.headers["OpenAisle-Delivery"] for r in receiver.requests}
    assert ids == {str(delivery.event_id)}, "the event id is stable across retries"
    assert [r.headers["OpenAisle-Attempt"] for r in receiver.requests] == ["1", "2"]
    assert receiver.requests[0].body == receiver.requests[1].body
    done = reload(delivery)
    assert (done.state, done.attempts, done.last_status_code, done.last_error) == ("delivered", 2, 200, "")


def test_gives_up_after_the_last_attempt(tenant_a: Tenant, receiver: Receiver) -> None:
    endpoint_for(tenant_a, receiver.url)
    receiver.default_status = 503
    (delivery,) = services.webhook_emit(tenant=tenant_a, event_type="visit.needs_review", payload={"visit": 1})

    waits = []
    for attempt in range(1, services.MAX_ATTEMPTS + 1):
        outcome = deliver(delivery)
        row = reload(delivery)
        assert row.attempts == attempt
        if attempt < services.MAX_ATTEMPTS:
            assert outcome == "retry"
            waits.append(row.next_attempt_at - row.last_attempt_at)
            make_due(delivery)
        else:
            assert outcome == "failed"

    assert waits == [
        timedelta(seconds=30),
        timedelta(minutes=2),
        timedelta(minutes=10),
        timedelta(hours=1),
        timedelta(hours=6),
    ]
    given_up = reload(delivery)
    assert (given_up.state, given_up.next_attempt_at, given_up.last_status_code) == ("failed", None, 503)
    with tenancy.platform_wide_scope():
        assert selectors.deliveries_due() == []
    assert deliver(delivery) == "skipped"
    assert len(receiver.requests) == services.MAX_ATTEMPTS == 6


def test_only_subscribed_event_types_go_to_active_endpoints(
    tenant_a: Tenant, tenant_b: Tenant, receiver: Receiver
) -> None:
    receipts = endpoint_for(tenant_a, receiver.url + "/receipts", event_types=["receipt.issued"])
    everything = endpoint_for(tenant_a, receiver.url + "/all")
    endpoint_for(tenant_a, receiver.url + "/off", is_active=False)
    endpoint_for(tenant_b, receiver.url + "/bravo")

    failed = services.webhook_emit(tenant=tenant_a, event_type="payment.failed", payload={"n": 1})
    issued = services.webhook_emit(tenant=tenant_a, event_type="receipt.issued", payload={"n": 2})

    assert [d.endpoint_id for d in failed] == [everything.pk]
    assert {d.endpoint_id for d in issued} == {receipts.pk, everything.pk}
    assert len({d.event_id for d in issued}) == 1, "one event, one id, whichever endpoint receives it"
    for delivery in [*failed, *issued]:
        assert deliver(delivery) == "delivered"
    paths = sorted((r.path, r.headers["OpenAisle-Event"]) for r in receiver.requests)
    assert paths == [
        ("/hooks/openaisle/all", "payment.failed"),
        ("/hooks/openaisle/all", "receipt.issued"),
        ("/hooks/openaisle/receipts", "receipt.issued"),
    ]
    assert services.webhook_emit(tenant=tenant_b, event_type="visit.needs_review", payload={}) != []
    assert WebhookDelivery.unscoped.filter(tenant=tenant_b).count() == 1


def test_the_delivery_task_run_twice_posts_once(tenant_a: Tenant, receiver: Receiver) -> None:
    endpoint_for(tenant_a, receiver.url)
    (delivery,) = services.webhook_emit(tenant=tenant_a, event_type="receipt.issued", payload=RECEIPT)

    assert deliver(delivery) == "delivered"
    assert deliver(delivery) == "skipped"
    with tenancy.tenant_scope(tenant_a.pk):
        assert services.webhook_delivery_retry_now(actor=Actor.system(), delivery=delivery) is False
    assert deliver(delivery) == "skipped"
    assert len(receiver.requests) == 1


@pytest.mark.django_db(transaction=True)
def test_two_workers_at_once_post_once(tenant_a: Tenant, receiver: Receiver) -> None:
    """The row lock is not held during the call, but the lease is: the second worker leaves the row alone."""
    endpoint_for(tenant_a, receiver.url)
    (delivery,) = services.webhook_emit(tenant=tenant_a, event_type="receipt.issued", payload=RECEIPT)
    receiver.delay = 1.0
    outcomes: list[str] = []

    def worker() -> None:
        try:
            outcomes.append(deliver(delivery))
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
        time.sleep(0.2)
    for thread in threads:
        thread.join(timeout=20)

    assert sorted(outcomes) == ["delivered", "skipped"]
    assert len(receiver.requests) == 1
    assert reload(delivery).state == "delivered"


def test_a_worker_that_died_mid_call_is_replaced_once_its_lease_runs_out(tenant_a: Tenant, receiver: Receiver) -> None:
    endpoint_for(tenant_a, receiver.url)
    (delivery,) = services.webhook_emit(tenant=tenant_a, event_type="receipt.issued", payload=RECEIPT)
    with tenancy.tenant_scope(tenant_a.pk):
        assert services._claim(delivery_id=delivery.pk) is not None  # claimed, then the worker died: no record

    assert deliver(delivery) == "skipped", "the lease keeps others off"
    with tenancy.platform_wide_scope():
        assert selectors.deliveries_due() == []
    WebhookDelivery.unscoped.filter(pk=delivery.pk).update(lease_until=timezone.now() - timedelta(seconds=1))
    with tenancy.platform_wide_scope():
        assert selectors.deliveries_due() == [(tenant_a.pk, delivery.pk)]
    assert deliver(delivery) == "delivered"
    assert len(receiver.requests) == 1
    assert reload(delivery).attempts == 2 and receiver.requests[0].headers["OpenAisle-Attempt"] == "2"


def test_a_slow_receiver_times_out_and_is_retried(
    tenant_a: Tenant, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(transport, "TOTAL_TIMEOUT_SECONDS", 0.5)
    endpoint_for(tenant_a, receiver.url)
    receiver.delay = 2.0
    (delivery,) = services.webhook_emit(tenant=tenant_a, event_type="receipt.issued", payload=RECEIPT)

    assert deliver(delivery) == "retry"
    row = reload(delivery)
    assert row.last_status_code is None and row.last_error.startswith("Timed out")


def test_an_unreachable_endpoint_is_a_failed_attempt(tenant_a: Tenant, receiver: Receiver) -> None:
    endpoint_for(tenant_a, "http://127.0.0.1:9/nothing-listens-here")
    (delivery,) = services.webhook_emit(tenant=tenant_a, event_type="receipt.issued", payload=RECEIPT)

    assert deliver(delivery) == "retry"
    row = reload(delivery)
    assert row.last_status_code is None and "ConnectionError" in row.last_error


def test_a_redirect_is_not_followed_and_is_not_a_delivery(tenant_a: Tenant, receiver: Receiver) -> None:
    endpoint_for(tenant_a, receiver.url)
    receiver.statuses = [302]
    (delivery,) = services.webhook_emit(tenant=tenant_a, event_type="receipt.issued", payload=RECEIPT)

    assert deliver(delivery) == "retry"
    assert len(receiver.requests) == 1 and reload(delivery).last_status_code == 302


def test_private_addresses_are_refused_in_production(tenant_a: Tenant, receiver: Receiver) -> None:
    endpoint_for(tenant_a, receiver.url)
    (delivery,) = services.webhook_emit(tenant=tenant_a, event_type="receipt.issued", payload=RECEIPT)

    with override_settings(WEBHOOKS_ALLOW_PRIVATE_NETWORKS=False):
        assert deliver(delivery) == "retry"
        for url in ("http://127.0.0.1/x", "http://localhost/x", "http://10.0.0.8/x", "http://[::1]/x"):
            with pytest.raises(services.ValidationError):
                services.clean_endpoint_url(url)
    assert receiver.requests == []
    assert "not a public address" in reload(delivery).last_error


def test_emitting_with_an_event_key_is_idempotent(tenant_a: Tenant, receiver: Receiver) -> None:
    endpoint_for(tenant_a, receiver.url)
    first = services.webhook_emit(tenant=tenant_a, event_type="receipt.issued", payload=RECEIPT, event_key="17:v1")
    again = services.webhook_emit(tenant=tenant_a, event_type="receipt.issued", payload=RECEIPT, event_key="17:v1")
    other = services.webhook_emit(tenant=tenant_a, event_type="receipt.issued", payload=RECEIPT, event_key="17:v2")

    assert [d.pk for d in again] == [d.pk for d in first]
    assert other[0].event_id != first[0].event_id
    assert WebhookDelivery.unscoped.filter(tenant=tenant_a).count() == 2


def test_bad_events_are_refused_and_write_nothing(tenant_a: Tenant, receiver: Receiver) -> None:
    endpoint_for(tenant_a, receiver.url)
    with pytest.raises(ValueError, match="Unknown webhook event type"):
        services.webhook_emit(tenant=tenant_a, event_type="receipt.printed", payload={})
    with pytest.raises(ValueError, match="not JSON"):
        services.webhook_emit(tenant=tenant_a, event_type="receipt.issued", payload={"x": object()})
    with pytest.raises(ValueError, match="JSON object"):
        services.webhook_emit(tenant=tenant_a, event_type="receipt.issued", payload=[1, 2])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="limit"):
        services.webhook_emit(tenant=tenant_a, event_type="receipt.issued", payload={"x": "y" * 300_000})
    assert not WebhookDelivery.unscoped.exists()


def test_no_endpoint_no_delivery(tenant_a: Tenant) -> None:
    assert services.webhook_emit(tenant=tenant_a, event_type="receipt.issued", payload=RECEIPT) == []


def test_a_deactivated_endpoint_gets_nothing_more(tenant_a: Tenant, receiver: Receiver) -> None:
    endpoint = endpoint_for(tenant_a, receiver.url)
    (delivery,) = services.webhook_emit(tenant=tenant_a, event_type="receipt.issued", payload=RECEIPT)
    services.webhook_endpoint_update(actor=Actor.system(), endpoint=endpoint, is_active=False)

    assert deliver(delivery) == "skipped"
    row = reload(delivery)
    assert row.state == "failed" and "deactivated" in row.last_error and row.attempts == 0
    assert receiver.requests == []
    test = services.webhook_send_test(actor=Actor.system(), endpoint=endpoint)
    assert deliver(test) == "delivered", "a test event still reaches an inactive endpoint"


def test_endpoint_settings_are_validated(tenant_a: Tenant) -> None:
    bad = [
        {"url": "not a url"},
        {"url": "ftp://example.com/x"},
        {"url": "https://user:pw@example.com/x"},
        {"url": "https://example.com/x#frag"},
        {"url": "https://example.com/" + "x" * 600},
        {"url": "https://example.com/x", "event_types": ["receipt.printed"]},
        {"url": "https://example.com/x", "event_types": "receipt.issued"},
    ]
    for fields in bad:
        with pytest.raises(services.ValidationError):
            services.webhook_endpoint_create(actor=Actor.system(), tenant=tenant_a, **fields)
    with override_settings(WEBHOOKS_REQUIRE_HTTPS=True), pytest.raises(services.ValidationError, match="https"):
        services.webhook_endpoint_create(actor=Actor.system(), tenant=tenant_a, url="http://example.com/x")
    assert not WebhookEndpoint.unscoped.exists()
    endpoint = services.webhook_endpoint_create(
        actor=Actor.system(),
        tenant=tenant_a,
        url=" https://example.com/x ",
        event_types=["payment.failed", "receipt.issued", "payment.failed"],
    )
    assert endpoint.url == "https://example.com/x"
    assert endpoint.event_types == ["receipt.issued", "payment.failed"]
    assert EventType.VISIT_NEEDS_REVIEW not in endpoint.event_types


def test_rotating_the_secret_signs_with_the_new_one(tenant_a: Tenant, receiver: Receiver) -> None:
    endpoint = endpoint_for(tenant_a, receiver.url)
    old = services.signing_secret_of(endpoint)
    endpoint = services.webhook_endpoint_rotate_secret(actor=Actor.system(), endpoint=endpoint)
    new = services.signing_secret_of(endpoint)
    assert new != old
    (delivery,) = services.webhook_emit(tenant=tenant_a, event_type="receipt.issued", payload=RECEIPT)
    deliver(delivery)
    (request,) = receiver.requests
    assert documented_verify()(new, request.headers["OpenAisle-Signature"], request.body)
    assert not documented_verify()(old, request.headers["OpenAisle-Signature"], request.body)


@pytest.mark.django_db(transaction=True)
def test_emitted_in_a_transaction_delivered_by_a_real_worker_after_commit(
    celery_worker: None, tenant_a: Tenant, receiver: Receiver
) -> None:
    endpoint = endpoint_for(tenant_a, receiver.url)
    with transaction.atomic():
        (delivery,) = services.webhook_emit(tenant=tenant_a, event_type="receipt.issued", payload=RECEIPT)
        time.sleep(0.3)
        assert receiver.requests == [], "nothing is sent before the transaction commits"

    (request,) = receiver.wait_for(1)
    assert documented_verify()(
        services.signing_secret_of(endpoint), request.headers["OpenAisle-Signature"], request.body
    )
    deadline = time.monotonic() + 10
    while reload(delivery).state != "delivered" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert reload(delivery).state == "delivered"


@pytest.mark.django_db(transaction=True)
def test_rolled_back_events_are_never_sent(celery_worker: None, tenant_a: Tenant, receiver: Receiver) -> None:
    endpoint_for(tenant_a, receiver.url)

    @transaction.atomic
    def issue_then_fail() -> None:
        services.webhook_emit(tenant=tenant_a, event_type="receipt.issued", payload=RECEIPT)
        raise RuntimeError("the receipt was not issued after all")

    with pytest.raises(RuntimeError):
        issue_then_fail()
    time.sleep(0.5)
    assert receiver.requests == []
    assert not WebhookDelivery.unscoped.exists()
