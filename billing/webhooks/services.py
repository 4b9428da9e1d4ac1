"""Writes of the outgoing webhooks: endpoints, emitting events, and delivering them.

    webhook_emit(tenant, event_type, payload)  ── one WebhookDelivery per subscribed active endpoint,
                                                   "webhooks.deliver" enqueued on commit
    webhooks.deliver (task) ── webhook_delivery_attempt: claim (short transaction, lease) → POST (no
                               transaction, no lock held) → record (short transaction)
    webhooks.retry_due (beat) ── sends the pending deliveries whose next attempt is due

An attempt is claimed under a row lock that is released before the HTTP call: the claim counts the
attempt and sets `lease_until`, so a second worker (a duplicated task, the sweep) leaves the row alone
while the first one is talking to the licensee. A delivered row is never sent again. A worker that dies
mid-call leaves the row pending with an expired lease, and the sweep sends it again — so a receiver can
see one event twice (at least once), and dedupes on its id.
"""

from __future__ import annotations

import ipaddress
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

import orjson
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.db import transaction
from django.utils import timezone

from billing.webhooks import signing, transport
from billing.webhooks.models import TEST_EVENT, EventType, WebhookDelivery, WebhookEndpoint
from core import crypto
from core.tasks import enqueue_on_commit
from tenants.audit import Actor, audit_record
from tenants.models import AuditAction, Tenant
from tenants.quotas import quota_require_room

DELIVER_TASK = "webhooks.deliver"
RETRY_DELAYS = (
    timedelta(seconds=30),
    timedelta(minutes=2),
    timedelta(minutes=10),
    timedelta(hours=1),
    timedelta(hours=6),
)
"""Wait after the 1st, 2nd, … failed attempt; after the last one fails, the delivery is given up."""
MAX_ATTEMPTS = len(RETRY_DELAYS) + 1
LEASE = timedelta(seconds=60)
"""How long an attempt in flight keeps others off the row: well above the 10 s an HTTP call may take."""
EVENT_ID_NAMESPACE = uuid.UUID("9b7c1e0e-5a43-4d0b-9f51-0d7f7e3c2a11")
MAX_URL_LENGTH = 500
MAX_DESCRIPTION_LENGTH = 200
MAX_PAYLOAD_BYTES = 256 * 1024


# --- Endpoints -----------------------------------------------------------------------------------


def require_https() -> bool:
    return bool(getattr(settings, "WEBHOOKS_REQUIRE_HTTPS", False))


def clean_endpoint_url(url: Any) -> str:
    """A licensee's endpoint URL, or ValidationError saying what is wrong with it."""
    if not isinstance(url, str) or not url.strip():
        raise ValidationError("Enter the URL that receives the events, e.g. https://example.com/hooks/openaisle.")
    url = url.strip()
    if len(url) > MAX_URL_LENGTH:
        raise ValidationError(f"The URL is longer than {MAX_URL_LENGTH} characters.")
    try:
        URLValidator(schemes=["http", "https"])(url)
    except ValidationError:
        raise ValidationError(f"{url!r} is not a valid http(s) URL.") from None
    parts = urlsplit(url)
    if parts.username or parts.password:
        raise ValidationError("Put no user name or password in the URL; verify our signature instead.")
    if parts.fragment:
        raise ValidationError("A URL fragment (#…) is never sent to the server; remove it.")
    if require_https() and parts.scheme != "https":
        raise ValidationError("The URL must use https://.")
    if not transport.allow_private_networks() and _names_a_private_host(parts.hostname or ""):
        raise ValidationError("The URL must name a public host, not localhost or a private address.")
    return url


def _names_a_private_host(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return not ipaddress.ip_address(host).is_global
    except ValueError:
        return False  # a name: checked again, resolved, when we send


def clean_event_types(event_types: Any) -> list[str]:
    """The subscribed event types, de-duplicated and in a stable order; an empty list means all."""
    if event_types is None:
        return []
    if isinstance(event_types, str) or not isinstance(event_types, Iterable):
        raise ValidationError("Give the event types as a list.")
    chosen = list(event_types)
    unknown = [str(value) for value in chosen if value not in EventType.values]
    if unknown:
        raise ValidationError(
            f"Unknown event type(s): {', '.join(unknown)}. Choose from {', '.join(EventType.values)}."
        )
    return [value for value in EventType.values if value in chosen]


def _clean_endpoint_fields(fields: dict[str, Any]) -> dict[str, Any]:
    errors: dict[str, str] = {}
    cleaned: dict[str, Any] = {}
    for key, value in fields.items():
        try:
            if key == "url":
                cleaned[key] = clean_endpoint_url(value)
            elif key == "event_types":
                cleaned[key] = clean_event_types(value)
            elif key == "description":
                if not isinstance(value, str) or len(value) > MAX_DESCRIPTION_LENGTH:
                    raise ValidationError(f"At most {MAX_DESCRIPTION_LENGTH} characters.")
                cleaned[key] = value.strip()
            elif key == "is_active":
                if not isinstance(value, bool):
                    raise ValidationError("true or false.")
                cleaned[key] = value
            else:
                raise ValidationError("Not a setting of a webhook endpoint.")
        except ValidationError as error:
            errors[key] = " ".join(error.messages)
    if errors:
        raise ValidationError(errors)
    return cleaned


def signing_secret_of(endpoint: WebhookEndpoint) -> str:
    """The endpoint's signing secret in clear, for signing and for showing it to the licensee."""
    return crypto.decrypt(endpoint.secret_encrypted)


def sealed_new_secret() -> str:
    """A new signing secret, encrypted for storage in `WebhookEndpoint.secret_encrypted`."""
    return crypto.encrypt(signing.new_secret())


@transaction.atomic
def webhook_endpoint_create(
    *,
    actor: Actor,
    tenant: Tenant,
    url: str,
    description: str = "",
    event_types: Iterable[str] | None = None,
    is_active: bool = True,
) -> WebhookEndpoint:
    """Register an endpoint with a freshly generated signing secret (read it with `signing_secret_of`)."""
    cleaned = _clean_endpoint_fields(
        {"url": url, "description": description, "event_types": event_types, "is_active": is_active}
    )
    quota_require_room(tenant=tenant, name="webhook_endpoints")
    endpoint = WebhookEndpoint.unscoped.create(tenant=tenant, secret_encrypted=sealed_new_secret(), **cleaned)
    audit_record(
        actor=actor, tenant_id=tenant.pk, action=AuditAction.WEBHOOK_ENDPOINT_CREATED, obj=endpoint, changes=cleaned
    )
    return endpoint


@transaction.atomic
def webhook_endpoint_update(*, actor: Actor, endpoint: WebhookEndpoint, **changes: Any) -> WebhookEndpoint:
    """Change an endpoint's url, description, event_types or is_active (not its secret: rotate that)."""
    cleaned = _clean_endpoint_fields(changes)
    endpoint = WebhookEndpoint.unscoped.select_for_update().get(pk=endpoint.pk)
    diff = {key: [getattr(endpoint, key), value] for key, value in cleaned.items() if getattr(endpoint, key) != value}
    for key, value in cleaned.items():
        setattr(endpoint, key, value)
    endpoint.updated_at = timezone.now()
    endpoint.save()
    if diff:
        audit_record(
            actor=actor,
            tenant_id=endpoint.tenant_id,
            action=AuditAction.WEBHOOK_ENDPOINT_UPDATED,
            obj=endpoint,
            changes=diff,
        )
    return endpoint


@transaction.atomic
def webhook_endpoint_rotate_secret(*, actor: Actor, endpoint: WebhookEndpoint) -> WebhookEndpoint:
    """Replace the signing secret: every attempt from now on is signed with the new one."""
    endpoint = WebhookEndpoint.unscoped.select_for_update().get(pk=endpoint.pk)
    endpoint.secret_encrypted = sealed_new_secret()
    endpoint.updated_at = timezone.now()
    endpoint.save(update_fields=["secret_encrypted", "updated_at"])
    audit_record(actor=actor, tenant_id=endpoint.tenant_id, action=AuditAction.WEBHOOK_SECRET_ROTATED, obj=endpoint)
    return endpoint


# --- Emitting events -----------------------------------------------------------------------------


def _plain_json(payload: dict[str, Any]) -> dict[str, Any]:
    """The payload as plain JSON values (datetimes and UUIDs as strings, decimals as strings)."""

    def default(value: Any) -> Any:
        if isinstance(value, Decimal):
            return str(value)
        raise TypeError(f"{type(value).__name__} is not JSON serialisable")

    if not isinstance(payload, dict):
        raise ValueError("A webhook payload is a JSON object (a dict).")
    try:
        raw = orjson.dumps(payload, default=default, option=orjson.OPT_UTC_Z | orjson.OPT_NON_STR_KEYS)
    except TypeError as error:
        raise ValueError(f"The webhook payload is not JSON: {error}") from error
    if len(raw) > MAX_PAYLOAD_BYTES:
        raise ValueError(f"The webhook payload is {len(raw)} bytes; the limit is {MAX_PAYLOAD_BYTES}.")
    plain: dict[str, Any] = orjson.loads(raw)
    return plain


def _event_id(*, tenant: Tenant, event_type: str, event_key: str | None) -> uuid.UUID:
    if event_key is None:
        return uuid.uuid4()
    return uuid.uuid5(EVENT_ID_NAMESPACE, f"{tenant.pk}:{event_type}:{event_key}")


@transaction.atomic
def webhook_emit(
    *, tenant: Tenant, event_type: str, payload: dict[str, Any], event_key: str | None = None
) -> list[WebhookDelivery]:
    """Queue one event for every active endpoint of `tenant` that subscribes to `event_type`.

    Call it inside the transaction that makes the event true (the receipt issued, the visit sent to
    review): the deliveries are written with it and sent only once it commits. `event_key`, when given,
    makes the call idempotent: the same (tenant, event type, key) is one event with one id, however
    often it is emitted (the first payload wins) — e.g. `event_key=f"{visit.pk}:{receipt_version}"`.
    Returns the deliveries (none when nobody subscribes). Raises ValueError for an unknown event type or
    a payload that is not a JSON object of at most 256 KiB.
    """
    if event_type not in EventType.values:
        raise ValueError(f"Unknown webhook event type {event_type!r}; known: {', '.join(EventType.values)}.")
    data = _plain_json(payload)
    endpoints = [e for e in WebhookEndpoint.unscoped.filter(tenant=tenant, is_active=True) if e.wants(event_type)]
    if not endpoints:
        return []
    event_id = _event_id(tenant=tenant, event_type=event_type, event_key=event_key)
    return _deliveries_create(tenant=tenant, endpoints=endpoints, event_id=event_id, event_type=event_type, data=data)


def _deliveries_create(
    *, tenant: Tenant, endpoints: list[WebhookEndpoint], event_id: uuid.UUID, event_type: str, data: dict[str, Any]
) -> list[WebhookDelivery]:
    now = timezone.now()
    WebhookDelivery.unscoped.bulk_create(
        [
            WebhookDelivery(
                tenant=tenant,
                endpoint=endpoint,
                event_id=event_id,
                event_type=event_type,
                payload=data,
                next_attempt_at=now,
                created_at=now,
            )
            for endpoint in endpoints
        ],
        ignore_conflicts=True,  # the same event_key emitted again: the deliveries exist already
    )
    deliveries = list(
        WebhookDelivery.unscoped.filter(tenant=tenant, event_id=event_id, endpoint__in=endpoints).order_by("id")
    )
    for delivery in deliveries:
        if delivery.state == WebhookDelivery.State.PENDING:
            enqueue_on_commit(DELIVER_TASK, tenant_id=tenant.pk, delivery_id=delivery.pk)
    return deliveries


@transaction.atomic
def webhook_send_test(*, actor: Actor, endpoint: WebhookEndpoint) -> WebhookDelivery:
    """Send a `webhook.test` event to this endpoint (active or not, whatever it subscribes to)."""
    tenant = Tenant.objects.get(pk=endpoint.tenant_id)
    data = {
        "message": "A test event from OpenAisle. If you can read this, your endpoint works.",
        "endpoint": {"id": endpoint.pk, "url": endpoint.url},
        "sent_by": actor.label,
    }
    (delivery,) = _deliveries_create(
        tenant=tenant, endpoints=[endpoint], event_id=uuid.uuid4(), event_type=TEST_EVENT, data=data
    )
    audit_record(
        actor=actor,
        tenant_id=endpoint.tenant_id,
        action=AuditAction.WEBHOOK_ENDPOINT_TESTED,
        obj=endpoint,
        changes={"event_id": str(delivery.event_id)},
    )
    return delivery


@transaction.atomic
def webhook_delivery_retry_now(*, actor: Actor, delivery: WebhookDelivery) -> bool:
    """Send a pending or given-up delivery again as soon as a worker takes it; False if it was delivered.

    A given-up delivery gets one more attempt: if that fails too, it is given up again.
    """
    delivery = WebhookDelivery.unscoped.select_for_update(of=("self",)).get(pk=delivery.pk)
    if delivery.state == WebhookDelivery.State.DELIVERED:
        return False
    before = delivery.state
    delivery.state = WebhookDelivery.State.PENDING
    delivery.next_attempt_at = timezone.now()
    delivery.save(update_fields=["state", "next_attempt_at"])
    audit_record(
        actor=actor,
        tenant_id=delivery.tenant_id,
        action=AuditAction.WEBHOOK_DELIVERY_RETRIED,
        obj=delivery,
        changes={"state": [before, delivery.state], "attempts_so_far": delivery.attempts},
    )
    enqueue_on_commit(DELIVER_TASK, tenant_id=delivery.tenant_id, delivery_id=delivery.pk)
    return True


# --- Delivering ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Claim:
    """An attempt this worker holds the lease of, and everything needed to make it without the database."""

    attempt: int
    url: str
    secret: str
    body: bytes
    headers: dict[str, str]


def request_body(delivery: WebhookDelivery) -> bytes:
    """The JSON body of a delivery: the same bytes on every attempt."""
    envelope = {
        "id": str(delivery.event_id),
        "type": delivery.event_type,
        "created_at": delivery.created_at,
        "data": delivery.payload,
    }
    return orjson.dumps(envelope, option=orjson.OPT_UTC_Z)


def webhook_delivery_attempt(*, delivery_id: int) -> str:
    """Make the next attempt of a delivery if it is due and nobody else is making it; return what happened.

    Outcomes: "delivered", "retry" (failed, another attempt is scheduled), "failed" (given up),
    "skipped" (delivered already, not due, in flight elsewhere, or gone).
    """
    claim = _claim(delivery_id=delivery_id)
    if claim is None:
        return "skipped"
    timestamp = int(timezone.now().timestamp())
    headers = {
        **claim.headers,
        "OpenAisle-Signature": signing.signature_header(secret=claim.secret, timestamp=timestamp, body=claim.body),
    }
    result = transport.post(url=claim.url, body=claim.body, headers=headers)
    return _record(delivery_id=delivery_id, attempt=claim.attempt, result=result)


@transaction.atomic
def _claim(*, delivery_id: int) -> _Claim | None:
    delivery = (
        WebhookDelivery.objects.select_for_update(of=("self",))
        .select_related("endpoint")
        .filter(pk=delivery_id)
        .first()
    )
    now = timezone.now()
    if delivery is None or delivery.state != WebhookDelivery.State.PENDING:
        return None
    if delivery.lease_until is not None and delivery.lease_until > now:
        return None
    if delivery.next_attempt_at is not None and delivery.next_attempt_at > now:
        return None
    endpoint = delivery.endpoint
    if not endpoint.is_active and delivery.event_type != TEST_EVENT:
        delivery.state = WebhookDelivery.State.FAILED
        delivery.last_error = "Not sent: the endpoint is deactivated."
        delivery.next_attempt_at = None
        delivery.save(update_fields=["state", "last_error", "next_attempt_at"])
        return None
    delivery.attempts += 1
    delivery.lease_until = now + LEASE
    delivery.last_attempt_at = now
    delivery.save(update_fields=["attempts", "lease_until", "last_attempt_at"])
    return _Claim(
        attempt=delivery.attempts,
        url=endpoint.url,
        secret=signing_secret_of(endpoint),
        body=request_body(delivery),
        headers={
            "OpenAisle-Event": delivery.event_type,
            "OpenAisle-Delivery": str(delivery.event_id),
            "OpenAisle-Attempt": str(delivery.attempts),
        },
    )


@transaction.atomic
def _record(*, delivery_id: int, attempt: int, result: transport.PostResult) -> str:
    delivery = WebhookDelivery.objects.select_for_update(of=("self",)).filter(pk=delivery_id).first()
    if delivery is None or delivery.state != WebhookDelivery.State.PENDING:
        return "skipped"
    if delivery.attempts != attempt and not result.delivered:
        return "skipped"  # our lease ran out and a later attempt owns the row now; it records its own outcome
    now = timezone.now()
    delivery.lease_until = None
    delivery.last_status_code = result.status_code
    delivery.last_response_excerpt = result.body_excerpt[:1000]
    if result.delivered:
        delivery.last_error = ""
        delivery.state = WebhookDelivery.State.DELIVERED
        delivery.delivered_at = now
        delivery.next_attempt_at = None
        outcome = "delivered"
    else:
        delivery.last_error = (result.error or f"HTTP {result.status_code} (only a 2xx answer counts)")[:500]
        if delivery.attempts >= MAX_ATTEMPTS:
            delivery.state = WebhookDelivery.State.FAILED
            delivery.next_attempt_at = None
            outcome = "failed"
        else:
            delivery.next_attempt_at = (delivery.last_attempt_at or now) + RETRY_DELAYS[delivery.attempts - 1]
            outcome = "retry"
    delivery.save()
    return outcome
