"""Writes on shoppers and payments.

Money moves in two steps, so that no failure can charge twice:
1. under the visit's row lock, decide the next movement and record it as a `PaymentAttempt` (unique per
   visit, purpose and sequence), then claim it (`processing`, with a lease) and commit;
2. call Stripe outside any transaction, then record the outcome.
A worker that dies between the call and the record leaves the attempt `processing`; once its lease has run out,
the next run asks Stripe what happened (our attempt key is in Stripe's metadata) before doing anything again.

What to move is always derived from the visit, never accumulated: the cart decided (`charged_total`, less the
refunds staff granted) against what has been collected (`paid - refunded`). Running the same step twice, or two
workers on one visit, therefore finds nothing left to do.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import DateTimeField, Exists, ExpressionWrapper, OuterRef, Q, QuerySet, Subquery, Sum
from django.utils import timezone

from billing.payments import crypto
from billing.payments.gateway import GatewayRejected, GatewayUnavailable, Outcome, StripeGateway, verified_event
from billing.payments.models import PaymentAttempt, PaymentSettings, Receipt, RefundedLine, Shopper, StripeEvent
from billing.payments.standing import (
    standing_key,
    standing_of,
    standings_changed,
    standings_changed_for_visit,
    token_hash,
    visits_owing,
)
from billing.webhooks.services import webhook_emit
from catalog.currencies import format_money
from core import metrics
from core.checks import is_published
from core.entry_tokens import ENTRY_TOKEN_PREFIX
from core.tasks import enqueue_on_commit
from stores.models import Store
from stores.selectors import StoreAtGate, store_at_gate_key
from tenants.audit import Actor, audit_record
from tenants.models import AuditAction, Tenant
from tenants.quotas import quota_require_room
from visits import lifecycle
from visits import selectors as visit_selectors
from visits.models import ChargeInstruction, Visit, VisitLine
from visits.reasons import reasons_served

Purpose = PaymentAttempt.Purpose
State = PaymentAttempt.State
IN_FLIGHT = (State.PENDING, State.PROCESSING)
MONEY_IN = (Purpose.CAPTURE, Purpose.CHARGE)
REFUND_REASONS = {
    "overcharge": "Charged for something not taken",
    "damaged": "Damaged or faulty product",
    "goodwill": "Goodwill gesture",
    "duplicate": "Charged twice",
    "other": "Other",
    "dispute": "The shopper's dispute",
}
DISPUTE_REASON = "dispute"  # refunds of shoppers' disputes (the `disputes` app), never chosen by hand


# --- Accounts and shoppers -------------------------------------------------------------------------------------


def gateway_for(*, tenant_id: int) -> StripeGateway:
    """The gateway on the tenant's own Stripe account, or the platform's default account."""
    account = PaymentSettings.unscoped.filter(tenant_id=tenant_id).first()
    secret = crypto.decrypt(account.secret_key_encrypted) if account else ""
    return StripeGateway(secret_key=secret or settings.STRIPE_SECRET_KEY)


def webhook_secret_for(*, tenant_id: int) -> str:
    """The tenant's own webhook secret, or the platform's; in production (HTTPS) never one published in this
    repository (`core.checks`), with which anybody could forge Stripe's events: then no secret, and every
    webhook of that tenant is refused until a real one is set."""
    account = PaymentSettings.unscoped.filter(tenant_id=tenant_id).first()
    secret = crypto.decrypt(account.webhook_secret_encrypted) if account else ""
    secret = secret or settings.STRIPE_WEBHOOK_SECRET
    if settings.HTTPS and is_published(secret):
        return ""
    return secret


def payment_settings_set(
    *, actor: Actor, tenant: Tenant, secret_key: str | None = None, webhook_secret: str | None = None
) -> PaymentSettings:
    """Store the tenant's Stripe secret key and webhook secret (encrypted); None leaves a value as it is."""
    if secret_key and not secret_key.startswith(("sk_", "rk_")):
        raise ValidationError({"secret_key": "A Stripe secret key starts with sk_ (or rk_ for a restricted key)."})
    if webhook_secret and not webhook_secret.startswith("whsec_"):
        raise ValidationError({"webhook_secret": "A Stripe webhook signing secret starts with whsec_."})
    with transaction.atomic():
        account, _ = PaymentSettings.objects.select_for_update().get_or_create(tenant=tenant)
        if secret_key is not None:
            account.secret_key_encrypted = crypto.encrypt(secret_key)
        if webhook_secret is not None:
            account.webhook_secret_encrypted = crypto.encrypt(webhook_secret)
        account.updated_at = timezone.now()
        account.save()
        changed = [name for name, value in (("secret_key", secret_key), ("webhook_secret", webhook_secret)) if value]
        audit_record(
            actor=actor,
            tenant_id=tenant.pk,
            action=AuditAction.PAYMENT_SETTINGS_UPDATED,
            obj=account,
            changes={"set": changed},
        )
    return account


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


# --- Planning: what the next money movement of a visit is ------------------------------------------------------


def _total(attempts: Any) -> int:
    return int(attempts.aggregate(total=Sum("amount"))["total"] or 0)


def _staff_refunds(visit: Visit) -> int:
    """Refunds staff granted (they lower what the shopper owes, unlike refunds of a cart that shrank)."""
    return _total(
        visit.payment_attempts.filter(purpose=Purpose.REFUND, state__in=(*IN_FLIGHT, State.SUCCEEDED)).exclude(
            reason_code=""
        )
    )


def _usable_hold(visit: Visit) -> PaymentAttempt | None:
    hold = visit.payment_attempts.filter(purpose=Purpose.PREAUTH, state=State.SUCCEEDED).last()
    if hold is None:
        return None
    used = visit.payment_attempts.filter(
        Q(purpose=Purpose.CAPTURE) | Q(purpose=Purpose.CANCEL, state=State.SUCCEEDED),
        payment_intent_id=hold.stripe_id,
    )
    return None if used.exists() else hold


def _next_sequence(visit: Visit, purpose: str) -> int:
    return visit.payment_attempts.filter(purpose=purpose).count() + 1


def _new_attempt(visit: Visit, purpose: str, amount: int, **fields: Any) -> PaymentAttempt:
    instruction = ChargeInstruction.objects.filter(visit=visit).order_by("-sequence").first()
    return PaymentAttempt.objects.create(
        tenant_id=visit.tenant_id,
        visit=visit,
        purpose=purpose,
        sequence=_next_sequence(visit, purpose),
        amount=amount,
        currency=visit.currency or visit.store.currency,
        instruction=instruction,
        **fields,
    )


def _shopper_of(visit: Visit) -> Shopper | None:
    earlier = visit.payment_attempts.exclude(shopper=None).last()
    return earlier.shopper if earlier else shopper_for_token_hash(visit.shopper_token_hash)


def _refundable_payments(visit: Visit) -> list[tuple[PaymentAttempt, int]]:
    """Successful captures and charges, newest first, with what can still be refunded on each."""
    payments = []
    for payment in visit.payment_attempts.filter(purpose__in=MONEY_IN, state=State.SUCCEEDED).order_by("-id"):
        refunded = _total(
            visit.payment_attempts.filter(
                purpose=Purpose.REFUND,
                payment_intent_id=payment.payment_intent_id,
                state__in=(*IN_FLIGHT, State.SUCCEEDED),
            )
        )
        if payment.amount - refunded > 0:
            payments.append((payment, payment.amount - refunded))
    return payments


def _plan_refunds(visit: Visit, amount: int, **fields: Any) -> list[PaymentAttempt]:
    attempts = []
    for payment, refundable in _refundable_payments(visit):
        if amount <= 0:
            break
        part = min(amount, refundable)
        attempts.append(
            _new_attempt(
                visit,
                Purpose.REFUND,
                part,
                payment_intent_id=payment.payment_intent_id,
                shopper=payment.shopper,
                **fields,
            )
        )
        amount -= part
    return attempts


def _retry_due(visit: Visit, now: datetime, *, retry_now: bool) -> bool:
    failed = visit.payment_attempts.filter(purpose=Purpose.CHARGE, state=State.FAILED).last()
    if failed is None or retry_now:
        return True
    return failed.next_try_at is not None and failed.next_try_at <= now


def _plan_next(visit: Visit, *, now: datetime, retry_now: bool) -> PaymentAttempt | None:
    """The next movement the visit needs, recorded as a pending attempt; None when nothing (more) is to be done."""
    owed = visit.charged_total - _staff_refunds(visit)
    collected = visit.paid - visit.refunded
    if owed > collected:
        shopper = _shopper_of(visit)
        hold = _usable_hold(visit)
        if hold is not None:
            return _new_attempt(
                visit,
                Purpose.CAPTURE,
                min(owed - collected, hold.amount),
                payment_intent_id=hold.stripe_id,
                shopper=hold.shopper,
            )
        if shopper is None:  # for good: a token is made when its shopper registers, never after
            if visit.status != Visit.Status.PAYMENT_FAILED:
                _mark_failed(visit, "The visit's entry token belongs to no registered shopper.")
            # Said once; nothing can move, so the sweep stops sending it (it announced the failure every minute).
            ChargeInstruction.objects.filter(visit=visit, state=ChargeInstruction.State.PENDING).update(
                state=ChargeInstruction.State.DONE
            )
            return None
        if not _retry_due(visit, now, retry_now=retry_now):
            return None
        return _new_attempt(visit, Purpose.CHARGE, owed - collected, shopper=shopper)
    if owed < collected:
        refunds = _plan_refunds(visit, collected - owed)
        return refunds[0] if refunds else None
    hold = _usable_hold(visit)
    if hold is not None:
        return _new_attempt(visit, Purpose.CANCEL, hold.amount, payment_intent_id=hold.stripe_id, shopper=hold.shopper)
    _mark_settled(visit)
    return None


def _mark_failed(visit: Visit, reason: str) -> None:
    metrics.count_payment_failure(operation="charge")
    lifecycle.payment_failed(visit, reason=reason)
    enqueue_on_commit("payments.announce_failure", tenant_id=visit.tenant_id, visit_id=visit.pk)
    standings_changed_for_visit(visit)  # the shopper is refused from the very next entry check


def _mark_settled(visit: Visit) -> None:
    """Everything owed is collected: the visit's instructions are done and its receipt can go out."""
    lifecycle.payment_settled(visit)
    ChargeInstruction.objects.filter(visit=visit, state=ChargeInstruction.State.PENDING).update(
        state=ChargeInstruction.State.DONE
    )
    if visit.paid > 0:
        enqueue_on_commit("payments.issue_receipt", tenant_id=visit.tenant_id, visit_id=visit.pk)


# --- Executing attempts ------------------------------------------------------------------------------------------


def _claim(attempt_id: int, *, now: datetime) -> tuple[PaymentAttempt, bool] | None:
    """Take the attempt for this worker. Returns it and whether an earlier try's outcome is unknown."""
    with transaction.atomic():
        attempt = PaymentAttempt.objects.select_for_update(of=("self",)).select_related("shopper").get(pk=attempt_id)
        if attempt.state not in IN_FLIGHT:
            return None
        if attempt.state == State.PROCESSING and attempt.lease_until and attempt.lease_until > now:
            return None
        unknown = attempt.state == State.PROCESSING
        attempt.state = State.PROCESSING
        attempt.tries += 1
        attempt.lease_until = now + timedelta(seconds=settings.PAYMENTS_LEASE_SECONDS)
        attempt.updated_at = now
        attempt.save(update_fields=["state", "tries", "lease_until", "updated_at"])
    return attempt, unknown


def _reconcile(gateway: StripeGateway, attempt: PaymentAttempt) -> Outcome | None:
    """What Stripe says happened to an attempt whose outcome we did not record; None if it never happened."""
    if attempt.purpose in (Purpose.PREAUTH, Purpose.CHARGE):
        assert attempt.shopper is not None
        return gateway.find_intent(customer_id=attempt.shopper.stripe_customer_id, key=attempt.key)
    if attempt.purpose == Purpose.REFUND:
        return gateway.find_refund(payment_intent_id=attempt.payment_intent_id, key=attempt.key)
    intent = gateway.intent(payment_intent_id=attempt.payment_intent_id)
    done = {Purpose.CAPTURE: "succeeded", Purpose.CANCEL: "canceled"}[Purpose(attempt.purpose)]
    if intent.status == done:
        return Outcome(succeeded=True, stripe_id=intent.stripe_id, status=intent.status, amount=attempt.amount)
    return None


def _perform(gateway: StripeGateway, attempt: PaymentAttempt) -> Outcome:
    if attempt.purpose in (Purpose.PREAUTH, Purpose.CHARGE):
        assert attempt.shopper is not None
        return gateway.create_intent(
            customer_id=attempt.shopper.stripe_customer_id,
            payment_method=attempt.shopper.payment_method_id,
            amount=attempt.amount,
            currency=attempt.currency,
            key=attempt.key,
            hold=attempt.purpose == Purpose.PREAUTH,
        )
    if attempt.purpose == Purpose.CAPTURE:
        return gateway.capture(payment_intent_id=attempt.payment_intent_id, amount=attempt.amount)
    if attempt.purpose == Purpose.CANCEL:
        return gateway.cancel(payment_intent_id=attempt.payment_intent_id)
    return gateway.refund(
        payment_intent_id=attempt.payment_intent_id,
        amount=attempt.amount,
        key=attempt.key,
        reason_code=attempt.reason_code or "cart_changed",
    )


def attempt_execute(*, attempt_id: int) -> PaymentAttempt | None:
    """Make one attempt's call to Stripe (or find out what an interrupted one did) and record the outcome.

    Returns the attempt as recorded, or None when there was nothing for this worker to do.
    """
    claimed = _claim(attempt_id, now=timezone.now())
    if claimed is None:
        return None
    attempt, unknown = claimed
    gateway = gateway_for(tenant_id=attempt.tenant_id)
    try:
        outcome = (_reconcile(gateway, attempt) if unknown else None) or _perform(gateway, attempt)
    except GatewayUnavailable:
        return attempt  # outcome unknown: the lease runs out and the sweep reconciles it
    except GatewayRejected as error:
        outcome = Outcome(
            succeeded=False, status="rejected", failure_code=error.code or "rejected", failure_message=str(error)
        )
    return attempt_record(attempt_id=attempt.pk, outcome=outcome)


def _retry_at(visit: Visit, now: datetime) -> datetime | None:
    failures = visit.payment_attempts.filter(purpose=Purpose.CHARGE, state=State.FAILED).count()
    schedule = settings.PAYMENTS_RETRY_AFTER_SECONDS
    return now + timedelta(seconds=schedule[failures]) if failures < len(schedule) else None


@transaction.atomic
def attempt_record(*, attempt_id: int, outcome: Outcome) -> PaymentAttempt:
    """Write what Stripe said, once: an attempt already final is left as it is."""
    visit_id = PaymentAttempt.objects.values_list("visit_id", flat=True).get(pk=attempt_id)
    visit = Visit.objects.select_for_update(of=("self",), no_key=True).select_related("store").get(pk=visit_id)
    attempt = PaymentAttempt.objects.select_for_update(of=("self",)).get(pk=attempt_id)
    if attempt.state not in IN_FLIGHT:
        return attempt
    now = timezone.now()
    attempt.state = State.SUCCEEDED if outcome.succeeded else State.FAILED
    attempt.stripe_id = outcome.stripe_id or attempt.stripe_id
    if attempt.purpose in (Purpose.PREAUTH, Purpose.CHARGE) and outcome.stripe_id:
        attempt.payment_intent_id = outcome.stripe_id
    attempt.failure_code, attempt.failure_message = outcome.failure_code[:64], outcome.failure_message[:500]
    attempt.lease_until, attempt.updated_at = None, now
    if not outcome.succeeded and attempt.purpose == Purpose.CHARGE:
        attempt.next_try_at = _retry_at(visit, now)
    attempt.save()
    _apply_to_visit(visit, attempt, outcome)
    return attempt


def _apply_to_visit(visit: Visit, attempt: PaymentAttempt, outcome: Outcome) -> None:
    fields = ["updated_at"]
    if outcome.succeeded and attempt.purpose in MONEY_IN:
        visit.paid += attempt.amount
        visit.payment_reference = visit.payment_reference or attempt.payment_intent_id
        fields += ["paid", "payment_reference"]
    elif outcome.succeeded and attempt.purpose == Purpose.REFUND:
        visit.refunded += attempt.amount
        fields.append("refunded")
    elif outcome.succeeded and attempt.purpose == Purpose.PREAUTH:
        visit.payment_reference = attempt.payment_intent_id
        fields.append("payment_reference")
    visit.updated_at = timezone.now()
    visit.save(update_fields=fields)
    if outcome.succeeded and attempt.purpose == Purpose.PREAUTH:
        lifecycle.hold_placed(visit)
    if not outcome.succeeded and attempt.purpose == Purpose.CHARGE:
        _mark_failed(visit, outcome.failure_message or outcome.failure_code or "The payment failed.")
    elif outcome.succeeded and visit.status == Visit.Status.PAYMENT_FAILED:
        standings_changed_for_visit(visit)  # what is owed went down


# --- Driving a visit ---------------------------------------------------------------------------------------------


def hold_amount(visit: Visit) -> int:
    """What to hold for a visit: the store's pre-authorisation amount for each member of its group (spec v1.1: the
    payer and the companions known so far), so that a family shopping on one card is held as several shoppers."""
    companions = Visit.objects.filter(store_id=visit.store_id, group=visit.session).count()
    return visit.store.preauth_amount * (1 + companions)


def visit_preauthorise(*, visit_id: int) -> PaymentAttempt | None:
    """Hold the store's pre-authorisation amount on the shopper's card, once per visit; a companion's visit holds
    nothing of its own (its payer's hold covers the group, `group_hold_raise`)."""
    with transaction.atomic():
        visit = Visit.objects.select_for_update(of=("self",), no_key=True).select_related("store").get(pk=visit_id)
        if visit.payment_attempts.filter(purpose=Purpose.PREAUTH).exists() or visit.group:
            return None
        if visit.status != Visit.Status.OPEN or not visit.shopper_token_hash or visit.store.preauth_amount <= 0:
            return None  # a hold only helps while the shopper is in the store; afterwards the cart is charged
        shopper = shopper_for_token_hash(visit.shopper_token_hash)
        if shopper is None or shopper.is_revoked:
            return None
        attempt = _new_attempt(visit, Purpose.PREAUTH, hold_amount(visit), shopper=shopper)
    return attempt_execute(attempt_id=attempt.pk)


def group_hold_raise(*, store: Store, payer_session: str) -> str:
    """A companion came in on the payer's card: the group's one hold is raised to cover it — a new hold of the group's
    amount (`hold_amount`) on the payer's visit, then the old one released. A card that refuses the larger hold keeps
    the one it had (the cart is charged in full at the end all the same). Returns what was done."""
    with transaction.atomic():
        payer = (
            Visit.objects.select_for_update(of=("self",), no_key=True)
            .select_related("store")
            .filter(store=store, session=payer_session, group="")
            .first()
        )
        if payer is None or payer.status not in (Visit.Status.OPEN, Visit.Status.SETTLING):
            return "no payer still shopping"
        hold = _usable_hold(payer)
        if hold is None or hold.amount >= hold_amount(payer):
            return "nothing to do"
        if payer.payment_attempts.filter(purpose=Purpose.PREAUTH, state__in=IN_FLIGHT).exists():
            return "raise pending"
        raised = _new_attempt(payer, Purpose.PREAUTH, hold_amount(payer), shopper=hold.shopper)
    recorded = attempt_execute(attempt_id=raised.pk)
    if recorded is None or recorded.state in IN_FLIGHT:
        return "raise pending"
    if recorded.state != State.SUCCEEDED:
        return "card refused a larger hold; the group's hold stays as it was"
    with transaction.atomic():
        payer = Visit.objects.select_for_update(of=("self",), no_key=True).get(pk=payer.pk)
        release = _new_attempt(
            payer, Purpose.CANCEL, hold.amount, payment_intent_id=hold.stripe_id, shopper=hold.shopper
        )
    attempt_execute(attempt_id=release.pk)
    return "raised"


def visits_preauthorise(*, store: Store, sessions: list[str]) -> int:
    """Pre-authorise the visits of these sessions that have a registered shopper and no hold yet, and raise the hold
    of each group a companion among them joined. Returns the holds placed or raised."""
    open_visits = Visit.objects.filter(store=store, session__in=sessions, status=Visit.Status.OPEN)
    visits = open_visits.exclude(shopper_token_hash="")
    held = 0
    for visit_id in (
        visits.filter(group="").exclude(payment_attempts__purpose=Purpose.PREAUTH).values_list("pk", flat=True)
    ):
        held += visit_preauthorise(visit_id=visit_id) is not None
    for payer_session in sorted(set(open_visits.exclude(group="").values_list("group", flat=True))):
        held += group_hold_raise(store=store, payer_session=payer_session) == "raised"
    return held


def visit_settle_payment(*, visit_id: int, retry_now: bool = False, max_steps: int = 20) -> Visit:
    """Move the visit's money until what was collected matches what is owed (capture, charge, release, refund).

    Safe to run any number of times and on several workers at once.
    """
    for _ in range(max_steps):
        with transaction.atomic():
            visit = Visit.objects.select_for_update(of=("self",), no_key=True).select_related("store").get(pk=visit_id)
            if visit.status not in lifecycle.MONEY_MOVES:
                return visit
            was_owed = visit.status == Visit.Status.PAYMENT_FAILED
            in_flight = visit.payment_attempts.filter(state__in=IN_FLIGHT).order_by("id").first()
            attempt = in_flight or _plan_next(visit, now=timezone.now(), retry_now=retry_now)
            if attempt is None and was_owed:
                standings_changed_for_visit(visit)  # paid, or owed anew after a late change: the gate follows
        if attempt is None:
            return visit
        recorded = attempt_execute(attempt_id=attempt.pk)
        if recorded is None or recorded.state in IN_FLIGHT:
            return visit  # another worker has it, or Stripe's answer is unknown: the sweep comes back
        if recorded.state == State.FAILED and recorded.purpose == Purpose.CHARGE:
            return Visit.objects.get(pk=visit_id)
        retry_now = False
    return Visit.objects.get(pk=visit_id)


# --- Staff refunds -----------------------------------------------------------------------------------------------


def units_refunded(*, visit: Visit) -> dict[str, int]:
    """Units refunded so far per line (SKU) of the visit, by staff or for disputes."""
    return dict(RefundedLine.objects.filter(visit=visit).values_list("sku", "units_refunded"))


def _line_refunds(visit: Visit, lines: list[dict[str, Any]]) -> tuple[int, list[dict[str, Any]]]:
    """Price the units asked per line and count them as refunded in the ledger; the caller holds the visit's lock.

    Raises ValidationError, writing nothing, for a line not on the receipt or more units than are left to refund.
    """
    by_sku = {line.sku: line for line in VisitLine.objects.filter(visit=visit)}
    ledger = {row.sku: row for row in RefundedLine.objects.select_for_update().filter(visit=visit)}
    total = 0
    rows: list[dict[str, Any]] = []
    for index, row in enumerate(lines):
        line = by_sku.get(str(row.get("sku", "")))
        qty = row.get("qty")
        if line is None:
            raise ValidationError({f"lines[{index}].sku": f"The receipt has no line {row.get('sku')!r}."})
        if any(earlier["sku"] == line.sku for earlier in rows):
            raise ValidationError({f"lines[{index}].sku": f"{line.sku} is asked for twice: give each line once."})
        if not isinstance(qty, int) or isinstance(qty, bool) or qty < 1:
            raise ValidationError({f"lines[{index}].qty": "Give a whole number of at least 1."})
        left = line.qty - (ledger[line.sku].units_refunded if line.sku in ledger else 0)
        if qty > left:
            raise ValidationError({f"lines[{index}].qty": f"Only {left} of {line.sku} can still be refunded."})
        amount = (line.amount + line.tax) * qty // line.qty
        total += amount
        rows.append({"sku": line.sku, "qty": qty, "amount": amount})
    for row in rows:
        earlier = ledger[row["sku"]].units_refunded if row["sku"] in ledger else 0
        _ledger_write(visit, sku=row["sku"], charged=by_sku[row["sku"]].qty, refunded=earlier + row["qty"])
    return total, rows


def _ledger_write(visit: Visit, *, sku: str, charged: int, refunded: int) -> None:
    """Set a line's refunded units (the database refuses more than were charged)."""
    RefundedLine.objects.update_or_create(
        tenant_id=visit.tenant_id,
        visit=visit,
        sku=sku,
        defaults={"units_charged": charged, "units_refunded": refunded, "updated_at": timezone.now()},
    )


def _all_lines_refunded(visit: Visit) -> None:
    """A refund of everything collected: every unit of every line counts as refunded."""
    for line in VisitLine.objects.filter(visit=visit):
        _ledger_write(visit, sku=line.sku, charged=line.qty, refunded=line.qty)


def visit_refund(
    *,
    actor: Actor,
    visit: Visit,
    reason_code: str,
    amount: int | None = None,
    lines: list[dict[str, Any]] | None = None,
    note: str = "",
) -> list[PaymentAttempt]:
    """Refund a visit, whole (no amount, no lines), an amount, or per line; never more than was collected."""
    if reason_code not in REFUND_REASONS:
        raise ValidationError({"reason_code": f"Choose one of: {', '.join(REFUND_REASONS)}."})
    with transaction.atomic():
        visit = Visit.objects.select_for_update(of=("self",), no_key=True).get(pk=visit.pk)
        refundable = sum(left for _, left in _refundable_payments(visit))
        rows: list[dict[str, Any]] = []
        if lines:
            amount, rows = _line_refunds(visit, lines)
        elif amount is None:
            amount = refundable
            _all_lines_refunded(visit)
        if amount <= 0:
            raise ValidationError({"amount": "Nothing to refund: give an amount above zero."})
        if amount > refundable:
            most = format_money(refundable, visit.currency)
            raise ValidationError({"amount": f"At most {most} can be refunded (collected less earlier refunds)."})
        user = actor.user if actor.user is not None and actor.user.is_authenticated else None
        attempts = _plan_refunds(
            visit, amount, reason_code=reason_code, note=note[:500], refund_lines=rows, requested_by=user
        )
        audit_record(
            actor=actor,
            tenant_id=visit.tenant_id,
            action=AuditAction.VISIT_REFUNDED,
            obj=visit,
            changes={"amount": amount, "reason_code": reason_code, "lines": rows, "note": note},
        )
        enqueue_on_commit("payments.settle_visit", tenant_id=visit.tenant_id, visit_id=visit.pk)
    return attempts


# --- Holds that never lapse --------------------------------------------------------------------------------------

# A line the engine was this sure of is owed whatever a person decides about the rest of the visit.
CERTAIN_LINE_CONFIDENCE = 0.99
UNDECIDED = (Visit.Status.OPEN, Visit.Status.SETTLING, Visit.Status.NEEDS_REVIEW)


def hold_expires_at(hold: PaymentAttempt) -> datetime:
    """When a card hold lapses: its authorisation (the moment its success was recorded) plus the hold lifetime."""
    return hold.updated_at + timedelta(hours=settings.PAYMENTS_HOLD_LIFETIME_HOURS)


def _renew_by(now: datetime) -> datetime:
    """Holds authorised before this lapse within the renewal margin."""
    return now - timedelta(hours=settings.PAYMENTS_HOLD_LIFETIME_HOURS - settings.PAYMENTS_HOLD_RENEW_BEFORE_HOURS)


def _holds_outstanding() -> QuerySet[PaymentAttempt]:
    """Holds authorised and neither captured nor released: the ones that can still lapse."""
    used = PaymentAttempt.objects.filter(
        Q(purpose=Purpose.CAPTURE) | Q(purpose=Purpose.CANCEL, state=State.SUCCEEDED),
        payment_intent_id=OuterRef("stripe_id"),
    )
    return PaymentAttempt.objects.filter(purpose=Purpose.PREAUTH, state=State.SUCCEEDED).exclude(Exists(used))


def hold_lapses_at(*, visit: Visit) -> datetime | None:
    """When the visit's card hold lapses, while it has one (neither captured nor released yet)."""
    hold = _usable_hold(visit)
    return hold_expires_at(hold) if hold is not None else None


def hold_lapse_of_visit() -> ExpressionWrapper:
    """`hold_lapses_at` for a queryset of visits, to annotate and sort by (null: no hold outstanding)."""
    authorised = _holds_outstanding().filter(visit=OuterRef("pk")).order_by("-id").values("updated_at")[:1]
    lifetime = timedelta(hours=settings.PAYMENTS_HOLD_LIFETIME_HOURS)
    return ExpressionWrapper(Subquery(authorised) + lifetime, output_field=DateTimeField())


def holds_lapsing(*, now: datetime, limit: int = 500) -> list[tuple[int, int]]:
    """(tenant id, visit id) of undecided visits whose hold lapses within the renewal margin (platform-wide)."""
    lapsing = _holds_outstanding().filter(updated_at__lte=_renew_by(now), visit__status__in=UNDECIDED)
    return sorted(set(lapsing.values_list("tenant_id", "visit_id")[:limit]))


def hold_renew(*, visit_id: int, now: datetime) -> str:
    """Keep an undecided visit's money from lapsing with its hold: a new hold of the same amount on the shopper's
    card, then the old one released; when the card refuses a new hold, the lines the engine was sure of are captured
    from the old one before it lapses (a person's decision later charges or refunds the difference as usual).
    Safe to run again: each step is an attempt with its own Stripe idempotency key. Returns what was done."""
    with transaction.atomic():
        visit = Visit.objects.select_for_update(of=("self",), no_key=True).select_related("store").get(pk=visit_id)
        hold = _usable_hold(visit)
        if visit.status not in UNDECIDED or hold is None or hold.updated_at > _renew_by(now):
            return "nothing to do"
        refused = visit.payment_attempts.filter(purpose=Purpose.PREAUTH, state=State.FAILED, pk__gt=hold.pk)
        if refused.filter(amount=hold.amount).exists():  # a refused raise for a group (a larger amount) is no renewal
            renewal = None  # the card refused a new hold once: asking again every run would only annoy the bank
        else:
            renewal = _new_attempt(visit, Purpose.PREAUTH, hold.amount, shopper=hold.shopper)
    if renewal is not None:
        renewed = attempt_execute(attempt_id=renewal.pk)
        if renewed is None or renewed.state in IN_FLIGHT:
            return "renewal pending"  # Stripe's answer is unknown: the sweep reconciles it, the next run goes on
        if renewed.state == State.SUCCEEDED:
            with transaction.atomic():
                visit = Visit.objects.select_for_update(of=("self",), no_key=True).get(pk=visit_id)
                release = _new_attempt(
                    visit, Purpose.CANCEL, hold.amount, payment_intent_id=hold.stripe_id, shopper=hold.shopper
                )
            attempt_execute(attempt_id=release.pk)
            return "renewed"
    return _capture_certain_part(visit_id=visit_id, hold=hold)


def _capture_certain_part(*, visit_id: int, hold: PaymentAttempt) -> str:
    with transaction.atomic():
        visit = Visit.objects.select_for_update(of=("self",), no_key=True).get(pk=visit_id)
        certain = sum(
            line.amount + line.tax for line in visit.lines.all() if line.confidence >= CERTAIN_LINE_CONFIDENCE
        )
        amount = min(certain, hold.amount)
        if amount <= 0:
            return "renewal refused; nothing certain to capture"
        capture = _new_attempt(visit, Purpose.CAPTURE, amount, payment_intent_id=hold.stripe_id, shopper=hold.shopper)
    attempt_execute(attempt_id=capture.pk)
    return "renewal refused; certain part captured"


# --- The periodic sweep ------------------------------------------------------------------------------------------


def visits_needing_payment_work(*, now: datetime, limit: int = 500) -> list[tuple[int, int]]:
    """(tenant id, visit id) of visits with money still to move (platform-wide, for the sweep)."""
    stale = PaymentAttempt.objects.filter(
        Q(state=State.PENDING, updated_at__lt=now - timedelta(seconds=30))
        | Q(state=State.PROCESSING, lease_until__lt=now)
        | Q(state=State.FAILED, purpose=Purpose.CHARGE, next_try_at__lte=now, visit__status=Visit.Status.PAYMENT_FAILED)
    ).values_list("tenant_id", "visit_id")
    waiting = ChargeInstruction.objects.filter(
        state=ChargeInstruction.State.PENDING, created_at__lt=now - timedelta(seconds=30)
    ).values_list("tenant_id", "visit_id")
    return sorted(set(stale[:limit]) | set(waiting[:limit]))


# --- Receipts and notices ----------------------------------------------------------------------------------------


def _receipt_text(visit: Visit, receipt: dict[str, Any]) -> str:
    currency = receipt["currency"]
    rows = [
        f"{line['qty']} × {line['name']} ({line['sku']})  {format_money(line['amount'], currency)}"
        for line in receipt["lines"]
    ]
    return "\n".join(
        [
            f"Thank you for shopping at {visit.store.name}.",
            f"Visit {visit.session}, {visit.exited_at:%Y-%m-%d %H:%M} UTC"
            if visit.exited_at
            else f"Visit {visit.session}",
            "",
            *rows,
            "",
            f"Subtotal  {format_money(receipt['subtotal'], currency)}",
            f"Tax       {format_money(receipt['tax'], currency)}",
            f"Total     {format_money(receipt['total'], currency)}",
            f"Paid by card ({receipt['payment']['reference']})",
        ]
    )


def receipt_issue(*, visit_id: int) -> Receipt | None:
    """Issue the receipt of the visit's current cart: once per cart version, emailed and announced by webhook."""
    with transaction.atomic():
        visit = Visit.objects.select_for_update(of=("self",), no_key=True).select_related("store").get(pk=visit_id)
        if visit.payment_status != Visit.PaymentStatus.SUCCEEDED:
            return None
        shopper = _shopper_of(visit)
        receipt, created = Receipt.objects.get_or_create(
            tenant_id=visit.tenant_id,
            visit=visit,
            cart_version=visit.cart_version,
            defaults={"total": visit.total, "currency": visit.currency, "emailed_to": shopper.email if shopper else ""},
        )
        if not created:
            return None
        body = visit_selectors.receipt(visit)
        if receipt.emailed_to:
            account = PaymentSettings.objects.filter(tenant_id=visit.tenant_id).first()
            sender = (account.receipt_from_email if account else "") or settings.DEFAULT_FROM_EMAIL
            subject = f"Your receipt from {visit.store.name}: {format_money(visit.total, visit.currency)}"
            message = _receipt_text(visit, body)
            transaction.on_commit(lambda: send_mail(subject, message, sender, [receipt.emailed_to]))
        webhook_emit(
            tenant=visit.store.tenant,
            event_type="receipt.issued",
            payload={"store": visit.store.code, "receipt": body},
            event_key=f"{visit.pk}:{visit.cart_version}",
        )
    return receipt


def payment_failure_announce(*, visit_id: int) -> None:
    visit = Visit.objects.select_related("store", "store__tenant").get(pk=visit_id)
    failed = visit.payment_attempts.filter(state=State.FAILED).last()
    if visit.status != Visit.Status.PAYMENT_FAILED:
        return
    webhook_emit(
        event_key=f"{visit.pk}:{failed.pk if failed else 'no-shopper'}",
        tenant=visit.store.tenant,
        event_type="payment.failed",
        payload={
            "store": visit.store.code,
            "session": visit.session,
            "group": visit_selectors.group_of(visit),
            "shopper": shopper.pk if (shopper := _shopper_of(visit)) else None,
            "balance_due": visit.balance_due,
            "currency": visit.currency,
            "reason": visit.payment_failure,
        },
    )


# --- Webhooks from Stripe ----------------------------------------------------------------------------------------


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


def review_needed_announce(*, visit_id: int) -> None:
    visit = Visit.objects.select_related("store", "store__tenant").get(pk=visit_id)
    if visit.status != Visit.Status.NEEDS_REVIEW:
        return
    webhook_emit(
        tenant=visit.store.tenant,
        event_type="visit.needs_review",
        payload={
            "store": visit.store.code,
            "session": visit.session,
            "group": visit_selectors.group_of(visit),
            **reasons_served(visit.review_reasons),
            "total": visit.total,
            "currency": visit.currency,
        },
        event_key=f"{visit.pk}:{visit.cart_version}",
    )
