"""A visit's life: the one place that writes `Visit.status` and `Visit.payment_status`.

Every change of a visit's status is a transition of the table below — from a status, to a status, for a
cause (the shopper left, the cart was decided, Stripe collected the money…). Settling (visits) decides
carts and calls `cart_decided` or `sent_to_review`; payments (billing) moves money and calls
`payment_collected`, `payment_failed` or `hold_placed`. Each writes with one conditional UPDATE whose
WHERE names the status the caller read (compare-and-set): a writer that read a status another has changed
since gets `StatusChanged` and writes nothing. A transition the table does not hold raises
`TransitionNotAllowed`, and both are logged.

Money owed and money collected are two statuses: a decided cart with money to move is `awaiting_payment`
("Being charged") until payments records what Stripe said, and only then `charged` (or `refunded`,
`payment_failed`, `no_charge`). Labels for pages are in `visits.states`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from django.db import models
from django.utils import timezone

from visits.models import Visit

logger = logging.getLogger(__name__)

Status = Visit.Status
PaymentStatus = Visit.PaymentStatus


class Cause(models.TextChoices):
    """What makes a visit change status."""

    SHOPPER_LEFT = "shopper_left", "The shopper left (an exit is on file)"
    NO_EXIT = "no_exit", "No exit on file (the shopper is in the store)"
    EXIT_NOT_SEEN = "exit_not_seen", "No exit arrived and nothing was heard of the visit for too long"
    SENT_TO_REVIEW = "sent_to_review", "Settling, late events or a review found something a person must decide"
    CART_DECIDED = "cart_decided", "The cart was decided (by settling, late events or a person)"
    PAYMENT_COLLECTED = "payment_collected", "Stripe collected what is owed"
    REFUNDED_IN_FULL = "refunded_in_full", "Everything collected was refunded (a smaller cart, staff or a dispute)"
    NOTHING_COLLECTED = "nothing_collected", "The money settled with nothing owed and nothing collected"
    PAYMENT_FAILED = "payment_failed", "Stripe declined the charge, or there is no card to charge"


@dataclass(frozen=True)
class Transition:
    source: Status
    target: Status
    cause: Cause


# Statuses of a visit whose cart is decided: late events may reopen it (the cart is read again).
DECIDED = (Status.AWAITING_PAYMENT, Status.CHARGED, Status.PAYMENT_FAILED, Status.REFUNDED, Status.NO_CHARGE)
# Statuses payments works on: the cart is decided, money may have to move.
MONEY_MOVES = DECIDED


def _from(sources: tuple[Status, ...], target: Status, cause: Cause) -> set[Transition]:
    return {Transition(source, target, cause) for source in sources}


TRANSITIONS: frozenset[Transition] = frozenset(
    {
        Transition(Status.OPEN, Status.SETTLING, Cause.SHOPPER_LEFT),
        Transition(Status.SETTLING, Status.OPEN, Cause.NO_EXIT),
        Transition(Status.OPEN, Status.SETTLING, Cause.EXIT_NOT_SEEN),
        *_from((Status.SETTLING, Status.NEEDS_REVIEW, *DECIDED), Status.NEEDS_REVIEW, Cause.SENT_TO_REVIEW),
        # A group's member still in the store is decided with its group when its payer's visit is settled again.
        *_from(
            (Status.OPEN, Status.SETTLING, Status.NEEDS_REVIEW, *DECIDED), Status.AWAITING_PAYMENT, Cause.CART_DECIDED
        ),
        *_from((Status.OPEN, Status.SETTLING, Status.NEEDS_REVIEW, *DECIDED), Status.NO_CHARGE, Cause.CART_DECIDED),
        # A payment that failed stays failed while money is owed: its retry comes first, the difference after it.
        *_from((Status.NEEDS_REVIEW, Status.PAYMENT_FAILED), Status.PAYMENT_FAILED, Cause.CART_DECIDED),
        *_from(
            (Status.AWAITING_PAYMENT, Status.PAYMENT_FAILED, Status.CHARGED), Status.CHARGED, Cause.PAYMENT_COLLECTED
        ),
        *_from(
            (Status.AWAITING_PAYMENT, Status.PAYMENT_FAILED, Status.CHARGED, Status.REFUNDED, Status.NO_CHARGE),
            Status.REFUNDED,
            Cause.REFUNDED_IN_FULL,
        ),
        *_from((Status.AWAITING_PAYMENT, Status.PAYMENT_FAILED), Status.NO_CHARGE, Cause.NOTHING_COLLECTED),
        *_from(
            (Status.AWAITING_PAYMENT, Status.PAYMENT_FAILED, Status.CHARGED),
            Status.PAYMENT_FAILED,
            Cause.PAYMENT_FAILED,
        ),
    }
)


class TransitionError(Exception):
    """A visit's status could not be changed as asked; nothing was written."""

    def __init__(self, message: str, *, visit: Visit, source: str, target: str, cause: str) -> None:
        super().__init__(message)
        self.visit, self.source, self.target, self.cause = visit, source, target, cause


class TransitionNotAllowed(TransitionError):
    """The table holds no such transition: a bug in the caller, never something to retry."""


class StatusChanged(TransitionError):
    """Another writer changed the visit's status since the caller read it (the compare-and-set lost)."""


def allowed(*, source: str, target: str, cause: str) -> bool:
    return Transition(Status(source), Status(target), Cause(cause)) in TRANSITIONS


def move(visit: Visit, *, target: Status, cause: Cause, **columns: Any) -> None:
    """Write `target` (and `columns`) if the table holds the transition and the visit still has the status it was
    read with; else raise, writing nothing. The named functions below say which transition each event makes."""
    source = visit.status
    move_of: dict[str, Any] = {"visit": visit, "source": source, "target": target, "cause": cause}
    if not allowed(source=source, target=target, cause=cause):
        logger.error("visit %s: %s → %s (%s) is not a transition of the lifecycle", visit.pk, source, target, cause)
        raise TransitionNotAllowed(f"Visit {visit.session} cannot go from {source} to {target} ({cause}).", **move_of)
    now = timezone.now()
    written = Visit.objects.filter(pk=visit.pk, status=source).update(status=target, updated_at=now, **columns)
    if written != 1:
        logger.error("visit %s: %s → %s (%s) lost to a concurrent change of status", visit.pk, source, target, cause)
        raise StatusChanged(f"Visit {visit.session} is no longer {source}: another change came first.", **move_of)
    visit.status, visit.updated_at = target, now
    for name, value in columns.items():
        setattr(visit, name, value)


# --- Settling: the shopper's presence and the cart ----------------------------------------------------------------


def presence_sql(*, column: str, exited: str) -> tuple[str, list[str]]:
    """The SQL expression of a visit's status once its events are counted again (`visits.services.visits_refresh`
    updates many visits in one statement): an open or settling visit is settling once an exit is on file (`exited`
    is not null), open otherwise; any other status is left as it is. Built from the table; returns the SQL and its
    parameters, in order."""
    assert Transition(Status.OPEN, Status.SETTLING, Cause.SHOPPER_LEFT) in TRANSITIONS
    assert Transition(Status.SETTLING, Status.OPEN, Cause.NO_EXIT) in TRANSITIONS
    sql = f"CASE WHEN {column} IN (%s, %s) THEN (CASE WHEN {exited} IS NULL THEN %s ELSE %s END) ELSE {column} END"
    return sql, [Status.OPEN.value, Status.SETTLING.value, Status.OPEN.value, Status.SETTLING.value]


def exit_not_seen(visit: Visit) -> None:
    """No exit arrived and the visit has been silent too long: it is closed at its last event (a person checks it)."""
    move(visit, target=Status.SETTLING, cause=Cause.EXIT_NOT_SEEN, exited_at=visit.last_event_at, exit_inferred=True)


def sent_to_review(visit: Visit) -> None:
    """Settling (or late events) found something a person must decide: nothing is charged until they do."""
    move(visit, target=Status.NEEDS_REVIEW, cause=Cause.SENT_TO_REVIEW)


def cart_decided(visit: Visit) -> None:
    """The visit's cart (`total`) is decided and its charge instruction written: money is owed (awaiting payment,
    or still failed while an earlier charge is owed), or nothing is charged — what was collected before, if
    anything, is refunded and the visit is `refunded` once Stripe has done it (`payment_settled`)."""
    if visit.total > 0 and visit.payment_status == PaymentStatus.FAILED:
        move(visit, target=Status.PAYMENT_FAILED, cause=Cause.CART_DECIDED)
    elif visit.total > 0:
        move(visit, target=Status.AWAITING_PAYMENT, cause=Cause.CART_DECIDED)
    else:
        move(visit, target=Status.NO_CHARGE, cause=Cause.CART_DECIDED)


# --- The licensee API ------------------------------------------------------------------------------------------------

# The API's statuses are the contract's (spec store-api.md): a visit awaiting its payment is served as `charged` — its
# cart was decided for a charge — with its payment's `status` saying whether Stripe has collected it yet.
SERVED_AS = {Status.AWAITING_PAYMENT: Status.CHARGED}
API_STATUSES = [status for status in Status if status not in SERVED_AS]


def served_status(status: str) -> str:
    """A visit's status as the licensee API serves it."""
    return str(SERVED_AS.get(Status(status), status))


def stored_statuses(served: str) -> list[str]:
    """The statuses of the visits the API lists under a status it serves (`?status=`)."""
    return [str(status) for status in Status if served_status(status) == served]


# --- Payments: what Stripe said --------------------------------------------------------------------------------------


def hold_placed(visit: Visit) -> None:
    """A pre-authorisation succeeded: money is held, none collected yet (the status does not change)."""
    Visit.objects.filter(pk=visit.pk).update(payment_status=PaymentStatus.PENDING)
    visit.payment_status = PaymentStatus.PENDING


def payment_failed(visit: Visit, *, reason: str) -> None:
    """Stripe declined the charge (or no card can pay): the balance is open, the shopper's next entry refused.

    A charge that fails once the cart is back in review (or decided at nothing) leaves the status to that decision:
    the failure is kept in the payment columns, and `cart_decided` makes the visit failed if money is still owed.
    """
    if visit.status not in (Status.AWAITING_PAYMENT, Status.CHARGED, Status.PAYMENT_FAILED):
        Visit.objects.filter(pk=visit.pk).update(payment_status=PaymentStatus.FAILED, payment_failure=reason[:500])
        visit.payment_status, visit.payment_failure = PaymentStatus.FAILED, reason[:500]
        return
    move(
        visit,
        target=Status.PAYMENT_FAILED,
        cause=Cause.PAYMENT_FAILED,
        payment_status=PaymentStatus.FAILED,
        payment_failure=reason[:500],
    )


def payment_settled(visit: Visit) -> None:
    """What was collected (`paid - refunded`) matches what is owed: charged, refunded in full, or — nothing ever
    collected — no charge for a visit that was waiting on its money (a visit with no charge stays as it is)."""
    if visit.paid > 0 and visit.paid == visit.refunded:
        target, cause, money = Status.REFUNDED, Cause.REFUNDED_IN_FULL, PaymentStatus.SUCCEEDED
    elif visit.paid > 0:
        target, cause, money = Status.CHARGED, Cause.PAYMENT_COLLECTED, PaymentStatus.SUCCEEDED
    elif visit.status in (Status.AWAITING_PAYMENT, Status.PAYMENT_FAILED):
        target, cause, money = Status.NO_CHARGE, Cause.NOTHING_COLLECTED, PaymentStatus.NONE
    else:
        Visit.objects.filter(pk=visit.pk).update(payment_status=PaymentStatus.NONE, payment_failure="")
        visit.payment_status, visit.payment_failure = PaymentStatus.NONE, ""
        return
    move(visit, target=target, cause=cause, payment_status=money, payment_failure="")


def decision_of(visit: Visit) -> str:
    """What settling decided for a visit it just settled, as the metrics count it: charged (money to collect),
    no_charge or needs_review."""
    if visit.status in (Status.AWAITING_PAYMENT, Status.PAYMENT_FAILED):
        return Status.CHARGED.value
    return str(visit.status)
