"""Reads on shoppers' disputes: the API's shape of a dispute, lists, and the store's dispute and refund shares."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db.models import Exists, OuterRef, Prefetch, QuerySet
from django.shortcuts import get_object_or_404

from disputes.models import Dispute, DisputeLine
from stores.models import Store
from visits.calibration import DisputeOutcome
from visits.models import Visit


def _with_parts(disputes: QuerySet[Dispute]) -> QuerySet[Dispute]:
    return disputes.select_related("store", "visit", "decided_by_user").prefetch_related(
        Prefetch("lines", queryset=DisputeLine.objects.order_by("sku"))
    )


def dispute_list(*, store: Store, status: str | None = None) -> QuerySet[Dispute]:
    """The store's disputes, newest first."""
    disputes = Dispute.objects.filter(store=store)
    if status:
        disputes = disputes.filter(status=status)
    return _with_parts(disputes).order_by("-created_at", "-id")


def dispute_get(*, dispute_id: int) -> Dispute:
    """One dispute of the tenant in scope (404 for another tenant's, as for one that does not exist)."""
    return get_object_or_404(_with_parts(Dispute.objects.all()), pk=dispute_id)


def dispute_json(dispute: Dispute) -> dict[str, Any]:
    """A dispute as the licensee API answers it and `dispute.resolved` sends it (docs/api.md, "Disputes")."""
    names = dict(dispute.visit.lines.values_list("sku", "name"))
    decided = dispute.decided_by != ""
    return {
        "id": dispute.pk,
        "store": dispute.store.code,
        "session": dispute.visit.session,
        "status": dispute.status,
        "reason": dispute.reason,
        "note": dispute.note,
        "lines": [
            {"sku": line.sku, "name": names.get(line.sku), "qty": line.qty, "amount": line.amount}
            for line in dispute.lines.all()
        ],
        "asked": dispute.asked,
        "refund": dispute.refund,
        "currency": dispute.currency,
        "created_at": dispute.created_at.isoformat(),
        "deadline": dispute.deadline.isoformat() if dispute.deadline else None,
        "decision": {
            "by": dispute.decided_by,
            "decided_by": dispute.decided_by_user.get_username() if dispute.decided_by_user else None,
            "decided_at": dispute.decided_at.isoformat() if dispute.decided_at else None,
            "reason": dispute.decision_reason,
        }
        if decided
        else None,
    }


@dataclass(frozen=True)
class DisputeCounts:
    """A store's visits in a period (all that left in it), how many a shopper disputed, and how many a dispute
    refunded."""

    visits: int
    disputed: int
    refunded: int

    @property
    def disputes(self) -> float:
        """Share of the visits with a dispute (0 without visits)."""
        return self.disputed / self.visits if self.visits else 0.0

    @property
    def refunded_share(self) -> float:
        """Share of the visits with money given back for a dispute (0 without visits)."""
        return self.refunded / self.visits if self.visits else 0.0


def visit_disputed() -> Exists:
    """For a queryset of visits: whether a shopper disputed the visit (correlated on the visit's tenant and id, so
    that it serves scoped lists and the operators' cross-tenant figures alike)."""
    return Exists(Dispute.unscoped.filter(tenant_id=OuterRef("tenant_id"), visit_id=OuterRef("pk")))


def dispute_counts(*, store: Store, start: datetime, end: datetime) -> DisputeCounts:
    """The store's visits that left in [start, end), how many of them a shopper disputed, and how many a dispute
    refunded: the `disputes` share of the store's service levels, and the share refunded for a dispute."""
    visits = Visit.objects.filter(store=store, exited_at__gte=start, exited_at__lt=end)
    refunded_for = Exists(Dispute.objects.filter(visit=OuterRef("pk"), status=Dispute.Status.REFUNDED, refund__gt=0))
    counted = visits.annotate(disputed=visit_disputed(), refunded_for=refunded_for)
    return DisputeCounts(
        visits=counted.count(),
        disputed=counted.filter(disputed=True).count(),
        refunded=counted.filter(refunded_for=True).count(),
    )


def dispute_outcomes(*, store: Store, visit_ids: Iterable[int]) -> dict[int, DisputeOutcome]:
    """What became of the decided disputes of these visits of the store, the strongest per visit: what calibration
    checks the risks of the visits charged without a person against (`visits.calibration.charged_visits`)."""
    strength = list(DisputeOutcome)
    outcomes: dict[int, DisputeOutcome] = {}
    decided = Dispute.objects.filter(store=store, visit_id__in=list(visit_ids)).exclude(status=Dispute.Status.IN_REVIEW)
    for visit_id, status, decided_by in decided.values_list("visit_id", "status", "decided_by"):
        outcome = _outcome(status=status, decided_by=decided_by)
        if visit_id not in outcomes or strength.index(outcome) < strength.index(outcomes[visit_id]):
            outcomes[visit_id] = outcome
    return outcomes


def _outcome(*, status: str, decided_by: str) -> DisputeOutcome:
    by_a_person = decided_by == Dispute.DecidedBy.PERSON
    if status == Dispute.Status.REFUNDED:
        return DisputeOutcome.UPHELD if by_a_person else DisputeOutcome.REFUNDED_UNCHECKED
    return DisputeOutcome.REJECTED if by_a_person else DisputeOutcome.NONE
