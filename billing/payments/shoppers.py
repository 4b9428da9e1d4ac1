"""Shoppers: registering a card for an entry token, revoking it, and whether a token opens a store's gate."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from billing.payments.accounts import gateway_for
from billing.payments.gateway import GatewayRejected
from billing.payments.models import Shopper
from billing.payments.standing import standing_key, standing_of, standings_changed, token_hash, visits_owing
from core.entry_tokens import ENTRY_TOKEN_PREFIX
from core.tasks import enqueue_on_commit
from stores.models import Store
from stores.selectors import StoreAtGate, store_at_gate_key
from tenants.audit import Actor, audit_record
from tenants.models import AuditAction, Tenant
from tenants.quotas import quota_require_room


@dataclass(frozen=True)
class RegisteredShopper:
    shopper: Shopper
    entry_token: str
    created: bool


def shopper_register(
    *, actor: Actor, tenant: Tenant, external_ref: str, payment_method: str, email: str = ""
) -> RegisteredShopper:
    """Register a shopper's card (or replace it): a Stripe customer with the card attached and a new entry token.

    Registering an `external_ref` again replaces the card and the token (the old token stops working) and retries
    any payment the shopper still owes.
    """
    external_ref, payment_method = external_ref.strip(), payment_method.strip()
    if not external_ref:
        raise ValidationError({"external_ref": "Give the shopper's id in your systems."})
    if not payment_method.startswith("pm_"):
        raise ValidationError({"payment_method": "Give a Stripe PaymentMethod id (pm_...)."})
    existing = Shopper.objects.filter(external_ref=external_ref).first()
    adds_a_shopper = existing is None or existing.revoked_at is not None
    if adds_a_shopper:  # asked before Stripe is, and again under the tenant's lock as the shopper is written
        quota_require_room(tenant=tenant, name="shoppers")
    gateway = gateway_for(tenant_id=tenant.pk)
    customer_id = (
        existing.stripe_customer_id
        if existing
        else gateway.create_customer(external_ref=external_ref, email=email, tenant_id=tenant.pk)
    )
    try:
        card = gateway.attach_card(customer_id=customer_id, payment_method=payment_method)
    except GatewayRejected as error:
        raise ValidationError({"payment_method": f"Stripe refused the card: {error}"}) from error
    token = ENTRY_TOKEN_PREFIX + secrets.token_urlsafe(24)
    now = timezone.now()
    with transaction.atomic():
        if adds_a_shopper:
            quota_require_room(tenant=tenant, name="shoppers")
        shopper = existing or Shopper(tenant=tenant, external_ref=external_ref, created_at=now)
        replaced = [shopper.token_hash] if existing else []
        shopper.stripe_customer_id = customer_id
        shopper.payment_method_id = card.payment_method_id
        shopper.card_brand, shopper.card_last4 = card.brand, card.last4
        shopper.email = email or shopper.email
        shopper.token_prefix, shopper.token_hash = token[:10], token_hash(token)
        shopper.revoked_at = None
        shopper.updated_at = now
        shopper.save()
        audit_record(
            actor=actor,
            tenant_id=tenant.pk,
            action=AuditAction.SHOPPER_REGISTERED if existing is None else AuditAction.SHOPPER_CARD_REPLACED,
            obj=shopper,
            changes={"card": f"{card.brand} •••• {card.last4}"},
        )
        for visit_id in visits_owing(shopper).values_list("pk", flat=True):
            enqueue_on_commit("payments.settle_visit", tenant_id=tenant.pk, visit_id=visit_id, retry_now=True)
        standings_changed(tenant_id=tenant.pk, hashed_tokens=[*replaced, shopper.token_hash])
    return RegisteredShopper(shopper=shopper, entry_token=token, created=existing is None)


def shopper_revoke(*, actor: Actor, shopper: Shopper) -> Shopper:
    """Stop the shopper's entry token from opening any gate. What they owe is still collected."""
    if shopper.revoked_at is None:
        shopper.revoked_at = timezone.now()
        shopper.save(update_fields=["revoked_at"])
        audit_record(actor=actor, tenant_id=shopper.tenant_id, action=AuditAction.SHOPPER_REVOKED, obj=shopper)
        standings_changed(tenant_id=shopper.tenant_id, hashed_tokens=[shopper.token_hash])
    return shopper


def shopper_for_token_hash(hashed_token: str) -> Shopper | None:
    """The shopper of the entry token with this hash (what events and visits keep of a token)."""
    return Shopper.objects.filter(token_hash=hashed_token).first() if hashed_token else None


@dataclass(frozen=True)
class EntryDecision:
    allowed: bool
    code: str
    reason: str
    open_balance: int = 0


ENTRY_REASONS = {
    "ok": "Welcome.",
    "unknown_token": "The entry token is not registered.",
    "token_revoked": "The entry token was revoked.",
    "no_payment_method": "The shopper has no usable card.",
    "open_balance": "The shopper has an unpaid balance from an earlier visit.",
}


def entry_check(
    *, tenant: Tenant, store: Store | StoreAtGate, token: str, kept: Mapping[str, Any] | None = None
) -> EntryDecision:
    """May this entry token open the store's gate? Denials say why, for the gate's screen and the logs.

    Answered from state kept ready: the tenant (with the API key), the store and the shopper's standing are
    cached and rewritten by the services that change them; nothing here calls Stripe. `kept`: the cache's
    entries the caller read already, the standing's among them (`gate_entry_keys`).
    """
    if not tenant.is_active:
        return EntryDecision(False, "tenant_suspended", "The store's operator account is suspended.")
    if store.status == Store.Status.CLOSED:
        return EntryDecision(False, "store_closed", "The store is closed.")
    token = token.strip()
    if not token:
        return EntryDecision(False, "unknown_token", ENTRY_REASONS["unknown_token"])
    standing = standing_of(tenant_id=tenant.pk, token=token, kept=kept)
    return EntryDecision(standing.code == "ok", standing.code, ENTRY_REASONS[standing.code], standing.open_balance)


def gate_entry_keys(*, tenant_id: int, store_code: str, token: str) -> list[str]:
    """The cache keys of what the entry check keeps for this store and token: the store's entry and the token's
    standing, to be read in one round trip (`kept` of `store_at_gate` and `entry_check`)."""
    keys = [store_at_gate_key(tenant_id=tenant_id, code=store_code)]
    if token.strip():
        keys.append(standing_key(tenant_id=tenant_id, token=token.strip()))
    return keys
