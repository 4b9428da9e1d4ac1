"""Shoppers' disputes: lines of a receipt a shopper contests, and how each was decided.

A dispute is decided once: by the store's policy when it is opened (refunded or rejected at once), or sent to
the dispute queue with a deadline, where a person refunds or rejects it (or the deadline passes and it is
refunded). A line of a visit is disputed at most once (a database constraint), and its refund goes through the
payments ledger (`billing.payments.models.RefundedLine`), which never refunds a unit twice.
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from core.models import TenantOwnedModel


class Dispute(TenantOwnedModel):
    class Status(models.TextChoices):
        IN_REVIEW = "in_review", "Waiting for a person"
        REFUNDED = "refunded", "Refunded"
        REJECTED = "rejected", "Rejected"

    class Reason(models.TextChoices):
        NOT_TAKEN = "not_taken", "Not taken"
        WRONG_ITEM = "wrong_item", "Wrong item"
        WRONG_QUANTITY = "wrong_quantity", "Wrong quantity"
        OTHER = "other", "Other"

    class DecidedBy(models.TextChoices):
        POLICY = "policy", "The store's policy"
        PERSON = "person", "A person"
        DEADLINE = "deadline", "The deadline passed"

    store = models.ForeignKey("stores.Store", on_delete=models.PROTECT, related_name="+")
    visit = models.ForeignKey("visits.Visit", on_delete=models.PROTECT, related_name="disputes")
    status = models.CharField(max_length=10, choices=Status.choices)
    reason = models.CharField(max_length=16, choices=Reason.choices, help_text="What the shopper says happened.")
    note = models.CharField(max_length=1000, blank=True, help_text="The shopper's own words.")
    asked = models.BigIntegerField(help_text="What the disputed lines cost, minor units.")
    refund = models.BigIntegerField(default=0, help_text="What was refunded for it, minor units.")
    currency = models.CharField(max_length=3)
    deadline = models.DateTimeField(null=True, blank=True, help_text="While waiting: a person decides by then.")
    decided_by = models.CharField(max_length=8, choices=DecidedBy.choices, blank=True)
    decided_by_user = models.ForeignKey("auth.User", on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    decision_reason = models.CharField(max_length=500, blank=True, help_text="Why it was decided so.")
    decided_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["tenant", "store", "status", "created_at"], name="dispute_store_status"),
            models.Index(fields=["tenant", "status", "deadline"], name="dispute_status_deadline"),
        ]

    def __str__(self) -> str:
        """What the store recognises: the visit and when the shopper disputed it, on the store's clock (our row
        number means nothing to anyone there)."""
        return f"Dispute of visit {self.visit.session}, {self.opened}"

    @property
    def opened(self) -> str:
        """When the shopper disputed, on the store's clock: "3 Dec 2026 20:54 EST"."""
        local = timezone.localtime(self.created_at, self.store.zone)
        return f"{local.day} {local:%b %Y %H:%M %Z}"


class DisputeLine(TenantOwnedModel):
    """A line the shopper contests: units of one SKU of the receipt, and what they cost."""

    dispute = models.ForeignKey(Dispute, on_delete=models.CASCADE, related_name="lines")
    visit = models.ForeignKey("visits.Visit", on_delete=models.CASCADE, related_name="+")
    sku = models.CharField(max_length=64)
    qty = models.PositiveIntegerField()
    amount = models.BigIntegerField(
        help_text="The units' share of the line with its tax, minor units (0: no such line)."
    )

    class Meta:
        ordering = ["dispute_id", "sku"]
        constraints = [models.UniqueConstraint(fields=["tenant", "visit", "sku"], name="dispute_line_once_per_visit")]

    def __str__(self) -> str:
        return f"{self.qty} × {self.sku}"
