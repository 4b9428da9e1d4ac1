"""Reads of the outgoing webhooks."""

from __future__ import annotations

from datetime import datetime

from django.db.models import Q, QuerySet
from django.utils import timezone

from billing.webhooks.models import WebhookDelivery, WebhookEndpoint


def endpoint_list() -> QuerySet[WebhookEndpoint]:
    """The endpoints of the tenant in scope."""
    return WebhookEndpoint.objects.order_by("created_at", "id")


def endpoint_get(*, endpoint_id: int) -> WebhookEndpoint:
    """One endpoint of the tenant in scope; another tenant's raises DoesNotExist exactly like a missing one."""
    endpoint: WebhookEndpoint = WebhookEndpoint.objects.get(pk=endpoint_id)
    return endpoint


def delivery_list(*, endpoint: WebhookEndpoint | None = None) -> QuerySet[WebhookDelivery]:
    """The tenant's delivery log, newest first."""
    deliveries = WebhookDelivery.objects.select_related("endpoint").order_by("-created_at", "-id")
    return deliveries.filter(endpoint=endpoint) if endpoint is not None else deliveries


def deliveries_due(*, now: datetime | None = None, limit: int = 1000) -> list[tuple[int, int]]:
    """(tenant id, delivery id) of the pending deliveries in scope (every tenant's, in the sweep) whose attempt is due.

    An attempt in flight (its lease running) is not due; one whose worker died is, once its lease runs out.
    """
    now = now or timezone.now()
    due = (
        WebhookDelivery.objects.filter(state=WebhookDelivery.State.PENDING, next_attempt_at__lte=now)
        .filter(Q(lease_until__isnull=True) | Q(lease_until__lte=now))
        .order_by("next_attempt_at")
        .values_list("tenant_id", "id")[:limit]
    )
    return list(due)
