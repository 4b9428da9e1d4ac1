"""Stripe's webhooks: verified, kept (only what payments acts on) and applied once."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from billing.payments.accounts import webhook_secret_for
from billing.payments.attempts import IN_FLIGHT, Purpose, attempt_record
from billing.payments.gateway import Outcome, verified_event
from billing.payments.models import PaymentAttempt, Shopper, StripeEvent
from billing.payments.standing import standings_changed
from core.tasks import enqueue_on_commit
from tenants.audit import Actor, audit_record
from tenants.models import AuditAction, Tenant

KEPT_OF_STRIPE_EVENT = ("id", "type", "created", "livemode", "api_version")
KEPT_OF_STRIPE_OBJECT = (
    "id", "object", "status", "amount", "amount_received", "amount_capturable", "currency", "payment_intent",
)  # fmt: skip


def stripe_event_kept(event: dict[str, Any]) -> dict[str, Any]:
    """What we keep of a Stripe event: what payments act on (the object's id, status, amounts, failure reason and
    our attempt key), not the customer, card, billing details or email Stripe sends with it."""
    found = (event.get("data") or {}).get("object") or {}
    found = found if isinstance(found, dict) else {}
    kept = {name: found[name] for name in KEPT_OF_STRIPE_OBJECT if name in found}
    error = found.get("last_payment_error")
    if isinstance(error, dict):
        kept["last_payment_error"] = {
            name: error[name] for name in ("code", "decline_code", "message") if name in error
        }
    metadata = found.get("metadata")
    if isinstance(metadata, dict) and "openaisle_attempt" in metadata:
        kept["metadata"] = {"openaisle_attempt": metadata["openaisle_attempt"]}
    return {**{name: event[name] for name in KEPT_OF_STRIPE_EVENT if name in event}, "data": {"object": kept}}


def stripe_event_receive(*, tenant: Tenant, payload: bytes, signature: str) -> StripeEvent | None:
    """Verify a webhook with the tenant's secret and store once what we keep of it; None when it was stored before."""
    event = verified_event(payload=payload, signature=signature, secret=webhook_secret_for(tenant_id=tenant.pk))
    stored, created = StripeEvent.objects.get_or_create(
        tenant=tenant,
        stripe_event_id=str(event.get("id", "")),
        defaults={"type": str(event.get("type", "")), "payload": stripe_event_kept(event)},
    )
    if created:
        enqueue_on_commit("payments.process_stripe_event", tenant_id=tenant.pk, stripe_event_pk=stored.pk)
    return stored if created else None


def stripe_event_process(*, stripe_event_pk: int) -> StripeEvent:
    """Apply a stored Stripe event: an intent's success or failure completes the attempt still waiting for it."""
    with transaction.atomic():
        stored = StripeEvent.objects.select_for_update().get(pk=stripe_event_pk)
        if stored.processed_at is not None:
            return stored
        intent = (stored.payload.get("data") or {}).get("object") or {}
        attempt = (
            PaymentAttempt.objects.filter(
                payment_intent_id=intent.get("id", ""), purpose__in=(Purpose.PREAUTH, Purpose.CHARGE)
            ).last()
            or PaymentAttempt.objects.filter(stripe_id=intent.get("id", "")).last()
            if intent.get("id")
            else None
        )
        if stored.type == "payment_method.detached":
            stored.outcome = _card_detached(tenant_id=stored.tenant_id, payment_method_id=str(intent.get("id", "")))
        elif stored.type not in (
            "payment_intent.succeeded",
            "payment_intent.payment_failed",
            "payment_intent.amount_capturable_updated",
        ):
            stored.outcome = "ignored: not a payment event we act on"
        elif attempt is None:
            stored.outcome = "ignored: no attempt of ours has this PaymentIntent"
        elif attempt.state not in IN_FLIGHT:
            stored.outcome = f"already recorded: attempt {attempt.pk} {attempt.state}"
        else:
            error = intent.get("last_payment_error") or {}
            outcome = Outcome(
                succeeded=stored.type != "payment_intent.payment_failed",
                stripe_id=str(intent.get("id", "")),
                status=str(intent.get("status", "")),
                failure_code=str(error.get("decline_code") or error.get("code") or ""),
                failure_message=str(error.get("message") or ""),
            )
            attempt = attempt_record(attempt_id=attempt.pk, outcome=outcome)
            stored.outcome = f"recorded: attempt {attempt.pk} {attempt.state}"
        stored.processed_at = timezone.now()
        stored.save(update_fields=["outcome", "processed_at"])
    return stored


def _card_detached(*, tenant_id: int, payment_method_id: str) -> str:
    """The shopper's card was removed at Stripe: no more entries until a card is registered again."""
    shopper = Shopper.unscoped.filter(tenant_id=tenant_id, payment_method_id=payment_method_id).first()
    if not payment_method_id or shopper is None:
        return "ignored: no shopper has this card"
    shopper.payment_method_id, shopper.updated_at = "", timezone.now()
    shopper.save(update_fields=["payment_method_id", "updated_at"])
    audit_record(
        actor=Actor.system(),
        tenant_id=tenant_id,
        action=AuditAction.SHOPPER_CARD_DETACHED,
        obj=shopper,
        changes={"card": ""},
    )
    standings_changed(tenant_id=tenant_id, hashed_tokens=[shopper.token_hash])
    return f"recorded: shopper {shopper.pk} has no card"
