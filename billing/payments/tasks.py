"""Payment tasks: thin, id-based, idempotent, each inside its tenant's scope (queue `payments`)."""

from __future__ import annotations

from celery import shared_task
from django.utils import timezone

from billing.payments import holds, movements, receipts, stripe_events
from billing.webhooks import announcements
from core import tenancy
from core.tasks import fan_out
from stores.models import Store


@shared_task(name="payments.preauthorise")
@tenancy.in_tenant_scope
def preauthorise(*, tenant_id: int, store_id: int, sessions: list[str]) -> int:
    """Hold the pre-authorisation of the visits that just started (their `session.started` arrived)."""
    return holds.visits_preauthorise(store=Store.objects.get(pk=store_id), sessions=sessions)


@shared_task(name="payments.settle_visit")
@tenancy.in_tenant_scope
def settle_visit(*, tenant_id: int, visit_id: int, retry_now: bool = False) -> str:
    return movements.visit_settle_payment(visit_id=visit_id, retry_now=retry_now).status


@shared_task(name="payments.issue_receipt")
@tenancy.in_tenant_scope
def issue_receipt(*, tenant_id: int, visit_id: int) -> bool:
    return receipts.receipt_issue(visit_id=visit_id) is not None


@shared_task(name="payments.announce_failure")
@tenancy.in_tenant_scope
def announce_failure(*, tenant_id: int, visit_id: int) -> None:
    announcements.payment_failure_announce(visit_id=visit_id)


@shared_task(name="payments.process_stripe_event")
@tenancy.in_tenant_scope
def process_stripe_event(*, tenant_id: int, stripe_event_pk: int) -> str:
    return stripe_events.stripe_event_process(stripe_event_pk=stripe_event_pk).outcome


@shared_task(name="payments.sweep")
def sweep() -> int:
    """Periodic: visits with money still to move — new instructions, retries due, attempts whose outcome is unknown."""
    return fan_out(settle_visit, work=lambda: movements.visits_needing_payment_work(now=timezone.now()), key="visit_id")


@shared_task(name="payments.renew_hold")
@tenancy.in_tenant_scope
def renew_hold(*, tenant_id: int, visit_id: int) -> str:
    return holds.hold_renew(visit_id=visit_id, now=timezone.now())


@shared_task(name="payments.renew_lapsing_holds")
def renew_lapsing_holds() -> int:
    """Periodic: visits still undecided whose card hold lapses soon get a new hold (or their certain part taken)."""
    return fan_out(renew_hold, work=lambda: holds.holds_lapsing(now=timezone.now()), key="visit_id")


@shared_task(name="notify.visit_needs_review")
@tenancy.in_tenant_scope
def visit_needs_review(*, tenant_id: int, visit_id: int) -> None:
    announcements.review_needed_announce(visit_id=visit_id)
