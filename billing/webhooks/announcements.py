"""Announcements to the licensee's systems (webhooks) about visits: a payment failed, a visit needs review."""

from __future__ import annotations

from typing import Any

from billing.payments.attempts import State, shopper_of
from billing.webhooks.services import webhook_emit
from visits import selectors as visit_selectors
from visits.models import Visit
from visits.reasons import reasons_served


def _which_visit(visit: Visit) -> dict[str, Any]:
    """How a visit event names its visit: the store's code, the session and the shopping group."""
    return {"store": visit.store.code, "session": visit.session, "group": visit_selectors.group_of(visit)}


def payment_failure_announce(*, visit_id: int) -> None:
    visit = Visit.objects.select_related("store", "store__tenant").get(pk=visit_id)
    failed = visit.payment_attempts.filter(state=State.FAILED).last()
    if visit.status != Visit.Status.PAYMENT_FAILED:
        return
    webhook_emit(
        event_key=f"{visit.pk}:{failed.pk if failed else 'no-shopper'}",
        tenant=visit.store.tenant,
        event_type="payment.failed",
        payload={
            **_which_visit(visit),
            "shopper": shopper.pk if (shopper := shopper_of(visit)) else None,
            "balance_due": visit.balance_due,
            "currency": visit.currency,
            "reason": visit.payment_failure,
        },
    )


def review_needed_announce(*, visit_id: int) -> None:
    visit = Visit.objects.select_related("store", "store__tenant").get(pk=visit_id)
    if visit.status != Visit.Status.NEEDS_REVIEW:
        return
    webhook_emit(
        tenant=visit.store.tenant,
        event_type="visit.needs_review",
        payload={
            **_which_visit(visit),
            **reasons_served(visit.review_reasons),
            "total": visit.total,
            "currency": visit.currency,
        },
        event_key=f"{visit.pk}:{visit.cart_version}",
    )
