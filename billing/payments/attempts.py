"""Payment attempts: the ledger of a visit's money movements, and making one of them at Stripe.

Money moves in two steps, so that no failure can charge twice:
1. under the visit's row lock, decide the next movement and record it as a `PaymentAttempt` (unique per
   visit, purpose and sequence), then claim it (`processing`, with a lease) and commit;
2. call Stripe outside any transaction, then record the outcome.
A worker that dies between the call and the record leaves the attempt `processing`; once its lease has run out,
the next run asks Stripe what happened (our attempt key is in Stripe's metadata) before doing anything again.
What Stripe said moves the visit through `visits.lifecycle`.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Q, Sum
from django.utils import timezone

from billing.payments.accounts import gateway_for
from billing.payments.gateway import GatewayRejected, GatewayUnavailable, Outcome, StripeGateway
from billing.payments.models import PaymentAttempt, Shopper
from billing.payments.shoppers import shopper_for_token_hash
from billing.payments.standing import standings_changed_for_visit
from core import metrics
from core.tasks import enqueue_on_commit
from visits import lifecycle
from visits.models import ChargeInstruction, Visit

Purpose = PaymentAttempt.Purpose
State = PaymentAttempt.State
IN_FLIGHT = (State.PENDING, State.PROCESSING)
MONEY_IN = (Purpose.CAPTURE, Purpose.CHARGE)


def attempts_total(attempts: Any) -> int:
    return int(attempts.aggregate(total=Sum("amount"))["total"] or 0)


def usable_hold(visit: Visit) -> PaymentAttempt | None:
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


def new_attempt(visit: Visit, purpose: str, amount: int, **fields: Any) -> PaymentAttempt:
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


def shopper_of(visit: Visit) -> Shopper | None:
    earlier = visit.payment_attempts.exclude(shopper=None).last()
    return earlier.shopper if earlier else shopper_for_token_hash(visit.shopper_token_hash)


def mark_failed(visit: Visit, reason: str) -> None:
    metrics.count_payment_failure(operation="charge")
    lifecycle.payment_failed(visit, reason=reason)
    enqueue_on_commit("payments.announce_failure", tenant_id=visit.tenant_id, visit_id=visit.pk)
    standings_changed_for_visit(visit)  # the shopper is refused from the very next entry check


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
        mark_failed(visit, outcome.failure_message or outcome.failure_code or "The payment failed.")
    elif outcome.succeeded and visit.status == Visit.Status.PAYMENT_FAILED:
        standings_changed_for_visit(visit)  # what is owed went down
