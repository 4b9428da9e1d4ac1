"""Refunds: what can be refunded of a visit, and staff's (and disputes') refunds, whole, by amount or per line."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from billing.payments.attempts import IN_FLIGHT, MONEY_IN, Purpose, State, attempts_total, new_attempt
from billing.payments.models import PaymentAttempt, RefundedLine
from catalog.currencies import format_money
from core.tasks import enqueue_on_commit
from tenants.audit import Actor, audit_record
from tenants.models import AuditAction
from visits.models import Visit, VisitLine

REFUND_REASONS = {
    "overcharge": "Charged for something not taken",
    "damaged": "Damaged or faulty product",
    "goodwill": "Goodwill gesture",
    "duplicate": "Charged twice",
    "other": "Other",
    "dispute": "The shopper's dispute",
}
DISPUTE_REASON = "dispute"  # refunds of shoppers' disputes (the `disputes` app), never chosen by hand


def refundable_payments(visit: Visit) -> list[tuple[PaymentAttempt, int]]:
    """Successful captures and charges, newest first, with what can still be refunded on each."""
    payments = []
    for payment in visit.payment_attempts.filter(purpose__in=MONEY_IN, state=State.SUCCEEDED).order_by("-id"):
        refunded = attempts_total(
            visit.payment_attempts.filter(
                purpose=Purpose.REFUND,
                payment_intent_id=payment.payment_intent_id,
                state__in=(*IN_FLIGHT, State.SUCCEEDED),
            )
        )
        if payment.amount - refunded > 0:
            payments.append((payment, payment.amount - refunded))
    return payments


def plan_refunds(visit: Visit, amount: int, **fields: Any) -> list[PaymentAttempt]:
    attempts = []
    for payment, refundable in refundable_payments(visit):
        if amount <= 0:
            break
        part = min(amount, refundable)
        attempts.append(
            new_attempt(
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
        refundable = sum(left for _, left in refundable_payments(visit))
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
        attempts = plan_refunds(
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
