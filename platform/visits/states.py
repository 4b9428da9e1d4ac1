"""What a visit and its money movements are, in the words a store manager uses: one meaning per state.

A visit's status alone does not say it all: a charged visit may have been charged without a person or after
a review, may be partly refunded; a visit back in review after late events may already be paid. These
functions make one label of it, used by the visit list and the visit's page alike.
"""

from __future__ import annotations

from dataclasses import dataclass

from catalog.currencies import format_money
from visits.models import Visit

# The badge colours of the admin's labels (unfold's): success, info, warning, danger.
TONES = {
    Visit.Status.OPEN: "info",
    Visit.Status.SETTLING: "info",
    Visit.Status.NEEDS_REVIEW: "warning",
    Visit.Status.AWAITING_PAYMENT: "info",
    Visit.Status.CHARGED: "success",
    Visit.Status.PAYMENT_FAILED: "danger",
    Visit.Status.REFUNDED: "info",
    Visit.Status.NO_CHARGE: "info",
}

# Payment attempt purposes (billing.payments.models.PaymentAttempt.Purpose) as people say them.
MOVEMENTS = {
    "preauth": "Pre-authorisation: held on the card at entry",
    "capture": "Capture: charged from the hold",
    "cancel": "Hold released",
    "refund": "Refund to the card",
}
# The same, as kinds to filter by (a charge is beyond the hold or without one).
MOVEMENT_KINDS = {**MOVEMENTS, "charge": "Charge beyond the hold, or without one"}
CHARGE_BEYOND_HOLD = "Charge beyond the hold"
CHARGE_WITHOUT_HOLD = "Charge to the card (no hold to capture)"
REFUND_OF_DIFFERENCE = "Refund of a difference (the cart was corrected)"


@dataclass(frozen=True)
class VisitState:
    key: str
    label: str
    tone: str


def visit_state(*, visit: Visit, reviewed: bool) -> VisitState:
    """The visit's one state: "Charged automatically", "Charged after review", "Partly refunded", "Refunded"…

    `reviewed` says whether a person decided on the visit (a `ReviewDecision` exists).
    """
    status = Visit.Status(visit.status)
    if status == Visit.Status.CHARGED and visit.refunded > 0:
        return VisitState("partly_refunded", "Partly refunded", "info")
    if status == Visit.Status.CHARGED:
        return VisitState("charged", "Charged after review" if reviewed else "Charged automatically", "success")
    if status == Visit.Status.AWAITING_PAYMENT:
        return VisitState("awaiting_payment", "Being charged", "info")
    if status == Visit.Status.REFUNDED:
        return VisitState("refunded", "Refunded", "info")
    if status == Visit.Status.NO_CHARGE and visit.group:
        return VisitState("in_group", f"On {visit.group}'s receipt (companion)", "info")
    if status == Visit.Status.NO_CHARGE:
        label = "Voided after review (no charge)" if reviewed else "No charge (empty cart)"
        return VisitState("no_charge", label, "info")
    return VisitState(status.value, status.label.split(" (")[0], TONES[status])


def payment_in_words(*, visit: Visit) -> str:
    """Where the visit's money stands, consistent with its state (never "Paid" beside "Needs review")."""
    currency = visit.currency or visit.store.currency
    collected = visit.paid - visit.refunded
    if visit.status == Visit.Status.NEEDS_REVIEW:
        if collected > 0:
            return (
                f"{format_money(collected, currency)} collected before late events sent the visit back to review; "
                "the decision charges or refunds the difference"
            )
        return "Nothing charged until a person decides"
    if visit.status in (Visit.Status.OPEN, Visit.Status.SETTLING):
        return "Nothing charged until the visit settles"
    if visit.status == Visit.Status.AWAITING_PAYMENT:
        return f"Being charged: {format_money(visit.balance_due, currency)} to collect, Stripe has not answered yet"
    if visit.status == Visit.Status.PAYMENT_FAILED:
        return f"Payment failed: {format_money(visit.balance_due, currency)} still owed"
    if visit.status == Visit.Status.REFUNDED:
        return f"Refunded in full ({format_money(visit.refunded, currency)})"
    if visit.paid == 0:
        return "Nothing to pay"
    if visit.refunded:
        return f"Paid, {format_money(visit.refunded, currency)} of it refunded"
    return "Paid" if visit.balance_due == 0 else f"Being collected: {format_money(visit.balance_due, currency)} due"


def movement_in_words(*, purpose: str, after_capture: bool, staff_refund: bool) -> str:
    """One payment attempt as people say it. A charge is beyond the hold when a capture came before it;
    a refund is a staff refund when it has a reason code, else the difference of a corrected cart."""
    if purpose == "charge":
        return CHARGE_BEYOND_HOLD if after_capture else CHARGE_WITHOUT_HOLD
    if purpose == "refund" and not staff_refund:
        return REFUND_OF_DIFFERENCE
    return MOVEMENTS.get(purpose, purpose)
