"""Writes on shoppers' disputes: opening one (the store's policy decides at once or sends it to the queue), a
person's decision, and the deadline that refunds a dispute nobody decided in time.

Every write locks the visit's row first (as payments does), then the dispute's: a dispute is decided once, and
its refund goes through `billing.payments.refunds.visit_refund`, whose line ledger never refunds a unit twice
(a dispute and a manager's refund of the same line included).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from billing.payments import refunds
from billing.webhooks.services import webhook_emit
from catalog.currencies import format_money
from disputes import policy, selectors
from disputes.models import Dispute, DisputeLine
from stores.models import Store
from tenants.audit import Actor, audit_record
from tenants.models import AuditAction
from visits import selectors as visit_selectors
from visits.models import Visit, VisitLine

MAX_LINES = 200
NOTE_LIMIT = 1000
REASON_LIMIT = 500


class DisputeConflict(Exception):
    """The dispute cannot be opened or decided as things stand (answered 409 by the API)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Outcome:
    status: str
    reason: str


def _asked_lines(lines: Any) -> list[tuple[str, int]]:
    """The body's lines as (sku, qty), or ValidationError naming every bad field."""
    if not isinstance(lines, list) or not lines:
        raise ValidationError({"lines": "Give at least one line: [{sku, qty}]."})
    if len(lines) > MAX_LINES:
        raise ValidationError({"lines": f"At most {MAX_LINES} lines."})
    asked: list[tuple[str, int]] = []
    problems: dict[str, str] = {}
    for index, row in enumerate(lines):
        sku = row.get("sku") if isinstance(row, dict) else None
        qty = row.get("qty") if isinstance(row, dict) else None
        if not isinstance(sku, str) or not sku.strip() or len(sku) > 64:
            problems[f"lines[{index}].sku"] = "Give the SKU of a receipt line."
        elif any(sku == earlier for earlier, _ in asked):
            problems[f"lines[{index}].sku"] = f"{sku} is given twice: give each line once."
        if not isinstance(qty, int) or isinstance(qty, bool) or qty < 1:
            problems[f"lines[{index}].qty"] = "Give a whole number of at least 1."
        if isinstance(sku, str) and isinstance(qty, int):
            asked.append((sku, qty))
    if problems:
        raise ValidationError(problems)
    return asked


def _local(at: datetime, store: Store) -> str:
    return timezone.localtime(at, store.zone).strftime("%Y-%m-%d %H:%M %Z")


def line_unsure(line: VisitLine, limit: float) -> bool:
    """The engine itself was unsure of the line: its doubt is above what the store charges without a person."""
    return line.source == VisitLine.Source.ENGINE and 1.0 - line.confidence > limit


def policy_outcome(
    *,
    store: Store,
    visit: Visit,
    asked: list[tuple[str, int]],
    receipt: dict[str, VisitLine],
    amount: int,
    now: datetime,
) -> Outcome:
    """What the store's dispute policy decides at once (docs/api.md, "Shoppers' disputes"): rejected, refunded, or in
    review."""
    window_ends = (visit.exited_at or visit.entered_at or now) + timedelta(days=store.dispute_window_days)
    if now > window_ends:
        return Outcome(
            Dispute.Status.REJECTED,
            f"Outside the store's dispute window: {store.dispute_window_days} days after leaving, "
            f"which ended {_local(window_ends, store)}.",
        )
    unknown = [sku for sku, _ in asked if sku not in receipt]
    if unknown:
        return Outcome(Dispute.Status.REJECTED, f"Not on the receipt: {', '.join(unknown)}.")
    limit = format_money(store.dispute_auto_refund_limit, visit.currency or store.currency)
    within = 0 < amount <= store.dispute_auto_refund_limit
    unsure = []
    if store.dispute_auto_refund_unsure and not within:  # the charge limit costs a query: read only when it decides
        latest = visit_selectors.calibration_latest(store=store)
        charge_limit = visit_selectors.charge_limit(store=store, latest=latest)
        unsure = [line_unsure(receipt[sku], charge_limit) for sku, _ in asked]
    decided = policy.decision(
        amount=amount,
        auto_refund_limit=store.dispute_auto_refund_limit,
        unsure=unsure,
        auto_refund_unsure=store.dispute_auto_refund_unsure,
    )
    if decided == policy.Decision.WITHIN_LIMIT:
        return Outcome(Dispute.Status.REFUNDED, f"Within the store's auto-refund limit of {limit}.")
    if decided == policy.Decision.UNSURE:
        return Outcome(Dispute.Status.REFUNDED, "The platform itself was unsure of every line disputed.")
    return Outcome(
        Dispute.Status.IN_REVIEW,
        f"Above the store's auto-refund limit of {limit}: a person decides.",
    )


def dispute_open(
    *, actor: Actor, store: Store, visit: Visit, lines: Any, reason: str, note: str = "", now: datetime | None = None
) -> Dispute:
    """Open a dispute of receipt lines and let the store's policy decide at once where it can.

    Raises ValidationError (nothing written) for a bad body or more units than were charged and not yet
    refunded, DisputeConflict for a visit with nothing charged or a line disputed before.
    """
    now = now or timezone.now()
    if reason not in Dispute.Reason.values:
        raise ValidationError({"reason": f"One of {', '.join(Dispute.Reason.values)}."})
    if not isinstance(note, str) or len(note) > NOTE_LIMIT:
        raise ValidationError({"note": f"Text of at most {NOTE_LIMIT} characters."})
    asked = _asked_lines(lines)
    with transaction.atomic():
        visit = Visit.objects.select_for_update(of=("self",), no_key=True).get(pk=visit.pk, store=store)
        if visit.paid <= 0:
            raise DisputeConflict("not_charged", f"Nothing was charged for visit {visit.session}: nothing to dispute.")
        disputed = sorted(
            DisputeLine.objects.filter(visit=visit, sku__in=[sku for sku, _ in asked]).values_list("sku", flat=True)
        )
        if disputed:
            raise DisputeConflict("already_disputed", f"Already disputed on this visit: {', '.join(disputed)}.")
        receipt = {line.sku: line for line in visit.lines.all()}
        refunded = refunds.units_refunded(visit=visit)
        amounts: dict[str, int] = {}
        for index, (sku, qty) in enumerate(asked):
            line = receipt.get(sku)
            if line is None:
                amounts[sku] = 0
                continue
            left = line.qty - refunded.get(sku, 0)
            if qty > left:
                raise ValidationError(
                    {f"lines[{index}].qty": f"{qty} × {sku} is more than was charged and not refunded ({left})."}
                )
            amounts[sku] = (line.amount + line.tax) * qty // line.qty
        amount = sum(amounts.values())
        outcome = policy_outcome(store=store, visit=visit, asked=asked, receipt=receipt, amount=amount, now=now)
        dispute = Dispute.objects.create(
            tenant_id=visit.tenant_id,
            store=store,
            visit=visit,
            status=Dispute.Status.IN_REVIEW,
            reason=reason,
            note=note,
            asked=amount,
            currency=visit.currency or store.currency,
            created_at=now,
        )
        try:
            with transaction.atomic():
                DisputeLine.objects.bulk_create(
                    DisputeLine(
                        tenant_id=visit.tenant_id, dispute=dispute, visit=visit, sku=sku, qty=qty, amount=amounts[sku]
                    )
                    for sku, qty in asked
                )
        except IntegrityError as error:  # the visit's lock makes this unreachable; the constraint is the last word
            raise DisputeConflict("already_disputed", "A line of this dispute was disputed meanwhile.") from error
        audit_record(
            actor=actor,
            tenant_id=visit.tenant_id,
            action=AuditAction.DISPUTE_OPENED,
            obj=dispute,
            changes={"session": visit.session, "lines": [list(a) for a in asked], "reason": reason, "asked": amount},
        )
        if outcome.status == Dispute.Status.IN_REVIEW:
            dispute.deadline = now + timedelta(hours=store.dispute_review_hours)
            dispute.decision_reason = outcome.reason
            dispute.save(update_fields=["deadline", "decision_reason"])
        else:
            refund = dict(asked) if outcome.status == Dispute.Status.REFUNDED else {}
            _decide(
                dispute, visit, actor=actor, by=Dispute.DecidedBy.POLICY, refund=refund, reason=outcome.reason, now=now
            )
    return dispute


def dispute_decide(
    *, actor: Actor, dispute: Dispute, refund: dict[str, int], reason: str = "", now: datetime | None = None
) -> Dispute:
    """A person's decision on a dispute in the queue: refund these units of its lines (none: reject, with a reason).

    Units a manager refunded meanwhile are not refunded again. Raises DisputeConflict when it was decided already,
    ValidationError for a reason missing on a rejection or units that are not the dispute's.
    """
    now = now or timezone.now()
    reason = reason.strip()
    if len(reason) > REASON_LIMIT:
        raise ValidationError({"reason": f"At most {REASON_LIMIT} characters."})
    refund = {sku: qty for sku, qty in refund.items() if qty}
    if not refund and not reason:
        raise ValidationError({"reason": "Say why the dispute is rejected: the shopper is told."})
    with transaction.atomic():
        visit = Visit.objects.select_for_update(of=("self",), no_key=True).get(pk=dispute.visit_id)
        dispute = Dispute.objects.select_for_update(of=("self",)).get(pk=dispute.pk)
        if dispute.status != Dispute.Status.IN_REVIEW:
            raise DisputeConflict("already_decided", f"Dispute {dispute.pk} was decided already ({dispute.status}).")
        disputed = {line.sku: line.qty for line in dispute.lines.all()}
        for sku, qty in refund.items():
            if sku not in disputed or not 0 < qty <= disputed[sku]:
                raise ValidationError({"refund": f"Refund at most {disputed.get(sku, 0)} × {sku}, as disputed."})
        kept = {sku: qty - refund.get(sku, 0) for sku, qty in disputed.items() if qty > refund.get(sku, 0)}
        if refund and kept:  # partly refunded: the shopper is told what was and what was not
            names = dict(visit.lines.values_list("sku", "name"))
            reason = " ".join(part for part in (reason, _partly_refunded(refund, kept, names)) if part)
        person = actor.user if actor.user is not None and actor.user.is_authenticated else None
        _decide(
            dispute, visit, actor=actor, by=Dispute.DecidedBy.PERSON, refund=refund, reason=reason, now=now, user=person
        )
    return dispute


def _partly_refunded(refund: dict[str, int], kept: dict[str, int], names: dict[str, str]) -> str:
    def units(lines: dict[str, int]) -> str:
        return ", ".join(f"{qty} × {names.get(sku, sku)}" for sku, qty in sorted(lines.items()))

    return f"Refunded {units(refund)}; not refunded {units(kept)}."


def _decide(
    dispute: Dispute,
    visit: Visit,
    *,
    actor: Actor,
    by: str,
    refund: dict[str, int],
    reason: str,
    now: datetime,
    user: Any = None,
) -> None:
    """Record the decision and refund through payments (the caller holds the visit's lock and the dispute's)."""
    refunded = refunds.units_refunded(visit=visit)
    charged = {line.sku: line.qty for line in visit.lines.all()}
    # Units a manager refunded since the dispute was opened are the shopper's already: never refunded twice.
    units = {sku: min(qty, charged.get(sku, 0) - refunded.get(sku, 0)) for sku, qty in refund.items()}
    units = {sku: qty for sku, qty in units.items() if qty > 0}
    if units:
        attempts = refunds.visit_refund(
            actor=actor,
            visit=visit,
            reason_code=refunds.DISPUTE_REASON,
            lines=[{"sku": sku, "qty": qty} for sku, qty in sorted(units.items())],
            note=f"Dispute {dispute.pk}: {Dispute.Reason(dispute.reason).label.lower()}",
        )
        dispute.refund = sum(attempt.amount for attempt in attempts)
    elif refund:
        reason = f"{reason} Already refunded by staff: nothing refunded again.".strip()
    dispute.status = Dispute.Status.REFUNDED if refund else Dispute.Status.REJECTED
    dispute.decided_by, dispute.decided_by_user, dispute.decided_at = by, user, now
    dispute.decision_reason = reason[:REASON_LIMIT]
    dispute.save(update_fields=["status", "refund", "decided_by", "decided_by_user", "decided_at", "decision_reason"])
    audit_record(
        actor=actor,
        tenant_id=dispute.tenant_id,
        action=AuditAction.DISPUTE_DECIDED,
        obj=dispute,
        changes={"status": dispute.status, "refund": dispute.refund, "by": by, "reason": dispute.decision_reason},
    )
    store = Store.objects.select_related("tenant").get(pk=dispute.store_id)
    webhook_emit(
        tenant=store.tenant,
        event_type="dispute.resolved",
        payload=selectors.dispute_json(Dispute.objects.get(pk=dispute.pk)),
        event_key=str(dispute.pk),
    )


def disputes_past_deadline(*, now: datetime, limit: int = 500) -> list[tuple[int, int]]:
    """(tenant id, dispute id) of disputes still waiting for a person after their deadline (platform-wide)."""
    overdue = Dispute.unscoped.filter(status=Dispute.Status.IN_REVIEW, deadline__lt=now).order_by("deadline")
    return list(overdue.values_list("tenant_id", "id")[:limit])


def dispute_refund_overdue(*, dispute_id: int, now: datetime | None = None) -> Dispute:
    """Nobody decided in time: the shopper gets the benefit of the doubt and the disputed lines are refunded."""
    now = now or timezone.now()
    with transaction.atomic():
        visit_id = Dispute.objects.values_list("visit_id", flat=True).get(pk=dispute_id)
        visit = Visit.objects.select_for_update(of=("self",), no_key=True).get(pk=visit_id)
        dispute = Dispute.objects.select_for_update(of=("self",)).get(pk=dispute_id)
        if dispute.status != Dispute.Status.IN_REVIEW or dispute.deadline is None or dispute.deadline >= now:
            return dispute
        _decide(
            dispute,
            visit,
            actor=Actor.system(),
            by=Dispute.DecidedBy.DEADLINE,
            refund={line.sku: line.qty for line in dispute.lines.all()},
            reason=f"Nobody decided by the deadline ({_local(dispute.deadline, visit.store)}): refunded.",
            now=now,
        )
    return dispute
