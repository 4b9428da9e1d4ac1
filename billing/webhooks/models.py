"""Webhooks out to the licensee: the endpoints a tenant registers, and one delivery row per event and endpoint.

A delivery is a small state machine: `pending` (waiting for its next attempt, or being sent while its lease
runs) → `delivered` (a 2xx came back; never sent again) or `failed` (the last attempt failed; we gave up).
Its `event_id` is the same on every attempt, so that receivers can drop repeats.
"""

from __future__ import annotations

import uuid

from django.db import models
from django.utils import timezone

from core.models import TenantOwnedModel


class EventType(models.TextChoices):
    """What a licensee can subscribe to."""

    RECEIPT_ISSUED = "receipt.issued", "receipt.issued — a receipt (or a new version of it) was issued"
    VISIT_NEEDS_REVIEW = "visit.needs_review", "visit.needs_review — a visit waits for a person"
    PAYMENT_FAILED = "payment.failed", "payment.failed — a shopper's payment failed; a balance is open"
    STOCK_LOW = "stock.low", "stock.low — a bin's units fell to its low-stock level"
    DISPUTE_RESOLVED = "dispute.resolved", "dispute.resolved — a shopper's dispute was refunded or rejected"
    RESTRICTED_ITEM_UNVERIFIED = (
        "restricted_item.unverified",
        "restricted_item.unverified — a shopper took an age-restricted item and no ID check covers it yet",
    )


TEST_EVENT = "webhook.test"
"""The event of the admin's "Send test event": sent to the one endpoint asked, whatever it subscribes to."""


class WebhookEndpoint(TenantOwnedModel):
    """A URL of the licensee's that receives our events, signed with a secret we generated for it."""

    # A CharField, not a URLField: services.clean_endpoint_url is the one place that says what a good URL is.
    url = models.CharField(max_length=500, verbose_name="URL", help_text="Where we POST the events (https://…).")
    description = models.CharField(max_length=200, blank=True, help_text="What receives them, for your team.")
    event_types = models.JSONField(
        default=list, blank=True, help_text="The event types sent to this endpoint; none ticked = all of them."
    )
    secret_encrypted = models.TextField(
        help_text="The signing secret, encrypted with the platform's key (core.crypto)."
    )
    is_active = models.BooleanField(default=True, verbose_name="active", help_text="Only active endpoints get events.")
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = "webhook endpoint"
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["tenant", "is_active"], name="webhook_endpoint_active")]

    def __str__(self) -> str:
        return self.url

    def wants(self, event_type: str) -> bool:
        """Whether this endpoint subscribes to `event_type` (an empty subscription list means every type)."""
        return not self.event_types or event_type in self.event_types


class WebhookDelivery(TenantOwnedModel):
    """One event for one endpoint, with every attempt to deliver it summed up."""

    class State(models.TextChoices):
        PENDING = "pending", "Pending"
        DELIVERED = "delivered", "Delivered"
        FAILED = "failed", "Failed (gave up)"

    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries")
    event_id = models.UUIDField(
        default=uuid.uuid4, help_text="The event's id (header OpenAisle-Delivery): the same on every attempt."
    )
    event_type = models.CharField(max_length=40)
    payload = models.JSONField(help_text="The event's data, sent as the body's `data`.")
    state = models.CharField(max_length=10, choices=State.choices, default=State.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(
        null=True, blank=True, default=timezone.now, help_text="When pending: not before this time."
    )
    lease_until = models.DateTimeField(
        null=True, blank=True, help_text="While an attempt is in flight: nobody else sends it before this time."
    )
    last_status_code = models.PositiveIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True)
    last_response_excerpt = models.TextField(blank=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        verbose_name = "webhook delivery"
        verbose_name_plural = "webhook deliveries"
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "endpoint", "event_id"], name="webhook_delivery_once_per_event_and_endpoint"
            )
        ]
        indexes = [
            models.Index(fields=["tenant", "-created_at"], name="webhook_delivery_log"),
            models.Index(fields=["tenant", "endpoint", "-created_at"], name="webhook_delivery_endpoint_log"),
            # The retry sweep reads every tenant's pending rows: a partial index keeps that to the few pending ones.
            models.Index(
                fields=["tenant", "next_attempt_at"],
                condition=models.Q(state="pending"),
                name="webhook_delivery_due",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} {self.event_id}"
