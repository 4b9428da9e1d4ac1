"""Erasing a shopper's personal data on request, keeping the money records it paid with, pseudonymised.

What is personal, and goes: the licensee's reference for the shopper, the email, the Stripe customer and card (ids,
brand, last four digits; the cards are detached at Stripe and the customer there loses its email and our
reference), the shopper's own words in its disputes, and the entry token's hash. The token itself is never stored,
but its hash is a stable identifier that whoever holds the token (the shopper's app, the licensee) can compute, and
that joins the shopper's visits — where and when they shopped — so it is replaced everywhere it is kept (the
shopper, the visits, the `session.started` events, rejected lines) by a random value no token hashes to. That value
is the pseudonym: the visits, payments, refunds and receipts stay, with their amounts, and still point to the
erased shopper's id, so totals and invoices do not change and a refund of an old visit still goes through. The
emails receipts were sent to, Stripe's events naming the customer or its cards, and the audit log's words about the
shopper (its reference and card) are cleared too; the audit entries themselves stay, and the erasure is one of
them.

A shopper who may still owe money is not erased, and is told why: a payment failed and is owed
(`open_balance`), a visit is not settled yet — in the store, settling or in review (`visit_not_settled`) — or
a payment or refund is on its way (`payment_in_progress`), or a dispute waits for a person (`dispute_in_review`).
"""

from __future__ import annotations

import secrets
from typing import Any

from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from billing.payments.accounts import gateway_for
from billing.payments.attempts import IN_FLIGHT
from billing.payments.models import PaymentAttempt, Receipt, Shopper, StripeEvent
from billing.payments.standing import standings_changed
from billing.payments.stripe_events import stripe_event_kept
from catalog.currencies import format_money
from disputes.models import Dispute
from ingest.models import Event, Rejection
from tenants.audit import Actor, audit_record
from tenants.models import AuditAction, AuditEntry
from visits.models import ChargeInstruction, Visit

UNSETTLED = (Visit.Status.OPEN, Visit.Status.SETTLING, Visit.Status.NEEDS_REVIEW)
ERASED_WORD = "(erased)"


class ErasureRefused(Exception):
    """The shopper may still owe money: `code` says why, `details` which visits."""

    def __init__(self, message: str, *, code: str, details: dict[str, Any]) -> None:
        super().__init__(message)
        self.code = code
        self.details = details


def _visits_of(shopper: Shopper) -> QuerySet[Visit]:
    """The visits the shopper's entry token opened or that charged the shopper's card."""
    charged = PaymentAttempt.objects.filter(shopper=shopper).values("visit_id")
    return Visit.objects.filter(Q(shopper_token_hash=shopper.token_hash) | Q(pk__in=charged))


def erasure_refusal(shopper: Shopper) -> ErasureRefused | None:
    """Why the shopper cannot be erased yet, or None."""
    visits = _visits_of(shopper)
    owing = list(visits.filter(status=Visit.Status.PAYMENT_FAILED).order_by("entered_at", "pk"))
    if owing:
        balance, currency = sum(visit.balance_due for visit in owing), owing[0].currency
        return ErasureRefused(
            f"The shopper owes {format_money(balance, currency)} from {len(owing)} visit(s) whose payment failed.",
            code="open_balance",
            details={"open_balance": balance, "currency": currency, "visits": [visit.session for visit in owing]},
        )
    unsettled = list(visits.filter(status__in=UNSETTLED).order_by("entered_at", "pk").values_list("session", flat=True))
    if unsettled:
        return ErasureRefused(
            f"{len(unsettled)} visit(s) of the shopper are not settled yet (in the store, settling or in review).",
            code="visit_not_settled",
            details={"visits": unsettled},
        )
    disputed = list(
        Dispute.objects.filter(visit__in=visits, status=Dispute.Status.IN_REVIEW)
        .order_by("visit__entered_at", "visit_id")
        .values_list("visit__session", flat=True)
        .distinct()
    )
    if disputed:
        return ErasureRefused(
            f"A dispute of {len(disputed)} visit(s) of the shopper waits for a person's decision.",
            code="dispute_in_review",
            details={"visits": disputed},
        )
    moving = (
        visits.filter(
            Q(status=Visit.Status.AWAITING_PAYMENT)
            | Q(payment_attempts__state__in=IN_FLIGHT)
            | Q(charge_instructions__state=ChargeInstruction.State.PENDING)
        )
        .distinct()
        .order_by("pk")
    )
    sessions = list(moving.values_list("session", flat=True))
    if sessions:
        return ErasureRefused(
            f"A payment or refund of {len(sessions)} visit(s) of the shopper is still on its way.",
            code="payment_in_progress",
            details={"visits": sessions},
        )
    return None


def shopper_erase(*, actor: Actor, shopper: Shopper) -> Shopper:
    """Erase the shopper's personal data (see the module's docstring); raises `ErasureRefused` while money may be
    owed, and `GatewayUnavailable` when Stripe cannot be reached (nothing is erased: ask again). Erasing an erased
    shopper again changes nothing."""
    if shopper.is_erased:
        return shopper
    refusal = erasure_refusal(shopper)
    if refusal is not None:
        raise refusal
    customer_id = shopper.stripe_customer_id
    cards = gateway_for(tenant_id=shopper.tenant_id).erase_customer(customer_id=customer_id) if customer_id else []
    with transaction.atomic():
        shopper = Shopper.objects.select_for_update().get(pk=shopper.pk)
        if shopper.is_erased:
            return shopper
        refusal = erasure_refusal(shopper)  # a visit may have begun while Stripe was asked
        if refusal is not None:
            raise refusal
        old_hash, pseudonym = shopper.token_hash, secrets.token_hex(32)
        visits = list(_visits_of(shopper).values_list("pk", "store_id", "session"))
        _replace_token_hash(tenant_id=shopper.tenant_id, visits=visits, old=old_hash, new=pseudonym)
        Receipt.objects.filter(visit_id__in=[pk for pk, _, _ in visits]).exclude(emailed_to="").update(emailed_to="")
        Dispute.objects.filter(visit_id__in=[pk for pk, _, _ in visits]).exclude(note="").update(note="")
        _forget_stripe_events(stripe_ids=[shopper.stripe_customer_id, shopper.payment_method_id, *cards])
        _redact_audit_log(shopper)
        now = timezone.now()
        for name in ("external_ref", "email", "stripe_customer_id", "payment_method_id", "card_brand"):
            setattr(shopper, name, "")
        shopper.card_last4 = shopper.token_prefix = ""
        shopper.token_hash = pseudonym
        shopper.revoked_at = shopper.revoked_at or now
        shopper.erased_at = shopper.updated_at = now
        shopper.save()
        audit_record(
            actor=actor,
            tenant_id=shopper.tenant_id,
            action=AuditAction.SHOPPER_ERASED,
            obj=shopper,
            changes={"visits_pseudonymised": len(visits), "cards_detached": len(cards)},
        )
        standings_changed(tenant_id=shopper.tenant_id, hashed_tokens=[old_hash])
    return shopper


def _replace_token_hash(*, tenant_id: int, visits: list[tuple[int, int, str]], old: str, new: str) -> None:
    """The visits, their `session.started` events and the tenant's rejected lines carry `new` instead of `old`."""
    Visit.objects.filter(pk__in=[pk for pk, _, _ in visits], shopper_token_hash=old).update(shopper_token_hash=new)
    sessions_by_store: dict[int, list[str]] = {}
    for _, store_id, session in visits:
        sessions_by_store.setdefault(store_id, []).append(session)
    for store_id, sessions in sessions_by_store.items():
        started = Event.objects.filter(store_id=store_id, session__in=sessions, type="session.started")
        changed = [event for event in started if event.payload.get("shopper") == old]
        for event in changed:
            event.payload = {**event.payload, "shopper": new}
        Event.objects.bulk_update(changed, ["payload"], batch_size=500)
    rejected = list(Rejection.objects.filter(tenant_id=tenant_id, raw__contains=old))
    for rejection in rejected:
        rejection.raw = rejection.raw.replace(old, new)
    Rejection.objects.bulk_update(rejected, ["raw"], batch_size=500)


def _forget_stripe_events(*, stripe_ids: list[str]) -> None:
    """Stripe's events that name the customer or its cards keep only what payments act on (`stripe_event_kept`)."""
    naming = Q()
    for stripe_id in filter(None, stripe_ids):
        naming |= Q(payload__icontains=stripe_id)
    if not naming:
        return
    events = list(StripeEvent.objects.filter(naming))
    for event in events:
        event.payload = stripe_event_kept(event.payload)
    StripeEvent.objects.bulk_update(events, ["payload"], batch_size=500)


def _redact_audit_log(shopper: Shopper) -> None:
    """The audit log's entries on the shopper keep who did what when, without the shopper's reference or card.

    The one rewrite of the append-only log (a query update, as `AuditEntry.save` refuses): what was recorded about
    a person must go when the person's data does."""
    entries = AuditEntry.unscoped.filter(
        tenant_id=shopper.tenant_id, object_type=shopper._meta.label_lower, object_id=str(shopper.pk)
    )
    entries.update(object_repr=f"erased shopper #{shopper.pk}")
    for entry_id, changes in entries.exclude(changes={}).values_list("pk", "changes"):
        if isinstance(changes, dict) and "card" in changes:
            AuditEntry.unscoped.filter(pk=entry_id).update(changes={**changes, "card": ERASED_WORD})
