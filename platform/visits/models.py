"""Shopper visits: one per session a store reports, from entry gate to exit gate."""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from core.models import TenantOwnedModel


class Visit(TenantOwnedModel):
    class Status(models.TextChoices):
        OPEN = "open", "Open (shopper in the store)"
        SETTLING = "settling", "Settling (waiting for late events)"
        NEEDS_REVIEW = "needs_review", "Needs review"
        CHARGED = "charged", "Charged"
        PAYMENT_FAILED = "payment_failed", "Payment failed"
        REFUNDED = "refunded", "Refunded"
        NO_CHARGE = "no_charge", "No charge (empty cart)"

    store = models.ForeignKey("stores.Store", on_delete=models.PROTECT, related_name="visits")
    session = models.CharField(max_length=64)
    shopper_token = models.CharField(max_length=128, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OPEN)
    entered_at = models.DateTimeField(null=True, blank=True)
    exited_at = models.DateTimeField(null=True, blank=True)
    last_event_at = models.DateTimeField(null=True, blank=True)
    events_count = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-entered_at"]
        constraints = [models.UniqueConstraint(fields=["tenant", "store", "session"], name="visit_session_unique")]
        indexes = [models.Index(fields=["tenant", "store", "status"], name="visit_store_status")]

    def __str__(self) -> str:
        return f"visit {self.session}"
