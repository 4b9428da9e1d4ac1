"""Disputes' background work (queue `default`): refund the disputes nobody decided by their deadline."""

from __future__ import annotations

from celery import shared_task
from django.utils import timezone

from core import tenancy
from core.tasks import fan_out
from disputes import services


@shared_task(name="disputes.refund_one_overdue")
@tenancy.in_tenant_scope
def refund_one_overdue(*, tenant_id: int, dispute_id: int) -> str:
    return services.dispute_refund_overdue(dispute_id=dispute_id).status


@shared_task(name="disputes.refund_overdue")
def refund_overdue() -> int:
    """Periodic: one task per dispute still waiting for a person after its deadline."""
    return fan_out(
        refund_one_overdue, work=lambda: services.disputes_past_deadline(now=timezone.now()), key="dispute_id"
    )
