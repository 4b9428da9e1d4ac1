"""Moving a visit's money until what was collected matches what is owed: capture, charge, release, refund.

What to move is always derived from the visit, never accumulated: the cart decided (`charged_total`, less the
refunds staff granted) against what has been collected (`paid - refunded`). Running the same step twice, or two
workers on one visit, therefore finds nothing left to do (see `billing.payments.attempts`).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from billing.payments.attempts import (
    IN_FLIGHT,
    Purpose,
    State,
    attempt_execute,
    attempts_total,
    mark_failed,
    new_attempt,
    shopper_of,
    usable_hold,
)
from billing.payments.models import PaymentAttempt
from billing.payments.refunds import plan_refunds
from billing.payments.standing import standings_changed_for_visit
from core.tasks import enqueue_on_commit
from tenants.audit import Actor, audit_record
from tenants.models import AuditAction
from visits import lifecycle
from visits.models import ChargeInstruction, Visit


def _staff_refunds(visit: Visit) -> int:
    """Refunds staff granted (they lower what the shopper owes, unlike refunds of a cart that shrank)."""
    return attempts_total(
        visit.payment_attempts.filter(purpose=Purpose.REFUND, state__in=(*IN_FLIGHT, State.SUCCEEDED)).exclude(
            reason_code=""
        )
    )


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
        shopper = shopper_of(visit)
        hold = usable_hold(visit)
        if hold is not None:
            return new_attempt(
                visit,
                Purpose.CAPTURE,
                min(owed - collected, hold.amount),
                payment_intent_id=hold.stripe_id,
                shopper=hold.shopper,
            )
        if shopper is None:  # for good: a token is made when its shopper registers, never after
            if visit.status != Visit.Status.PAYMENT_FAILED:
                mark_failed(visit, "The visit's entry token belongs to no registered shopper.")
            # Said once; nothing can move, so the sweep stops sending it (it announced the failure every minute).
            ChargeInstruction.objects.filter(visit=visit, state=ChargeInstruction.State.PENDING).update(
                state=ChargeInstruction.State.DONE
            )
            return None
        if not _retry_due(visit, now, retry_now=retry_now):
            return None
        return new_attempt(visit, Purpose.CHARGE, owed - collected, shopper=shopper)
    if owed < collected:
        refunds = plan_refunds(visit, collected - owed)
        return refunds[0] if refunds else None
    hold = usable_hold(visit)
    if hold is not None:
        return new_attempt(visit, Purpose.CANCEL, hold.amount, payment_intent_id=hold.stripe_id, shopper=hold.shopper)
    _mark_settled(visit)
    return None


def _mark_settled(visit: Visit) -> None:
    """Everything owed is collected: the visit's instructions are done and its receipt can go out."""
    lifecycle.payment_settled(visit)
    ChargeInstruction.objects.filter(visit=visit, state=ChargeInstruction.State.PENDING).update(
        state=ChargeInstruction.State.DONE
    )
    if visit.paid > 0:
        enqueue_on_commit("payments.issue_receipt", tenant_id=visit.tenant_id, visit_id=visit.pk)


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


def payment_retry(*, actor: Actor, visit: Visit) -> Visit:
    """A person asks for a failed payment to be tried again now rather than at its next scheduled try: recorded in
    the audit log, then tried once this transaction commits (`visit_settle_payment`). Raises ValidationError,
    writing nothing, for a visit whose payment has not failed."""
    with transaction.atomic():
        visit = Visit.objects.select_for_update(of=("self",), no_key=True).get(pk=visit.pk)
        if visit.status != Visit.Status.PAYMENT_FAILED:
            raise ValidationError(f"Visit {visit.session} has no failed payment to retry.")
        audit_record(
            actor=actor,
            tenant_id=visit.tenant_id,
            action=AuditAction.VISIT_PAYMENT_RETRIED,
            obj=visit,
            changes={"balance_due": visit.balance_due, "currency": visit.currency},
        )
        enqueue_on_commit("payments.settle_visit", tenant_id=visit.tenant_id, visit_id=visit.pk, retry_now=True)
    return visit
