"""Webhook tasks: thin, id-based, idempotent."""

from __future__ import annotations

from celery import shared_task

from billing.webhooks import selectors, services
from core import tenancy
from core.tasks import fan_out


@shared_task(name="webhooks.deliver")
@tenancy.in_tenant_scope
def deliver(*, tenant_id: int, delivery_id: int) -> str:
    """Make the delivery's next attempt if it is due; a delivered one (or one in flight elsewhere) is left alone."""
    return services.webhook_delivery_attempt(delivery_id=delivery_id)


@shared_task(name="webhooks.retry_due")
def retry_due() -> int:
    """Periodic: send every tenant's deliveries whose next attempt is due to `webhooks.deliver`."""
    return fan_out(deliver, work=selectors.deliveries_due, key="delivery_id")
