"""Shopper visits: one per session a store reports, from entry gate to exit gate."""

from __future__ import annotations

from typing import Any

from django.db import models
from django.utils import timezone

from core.models import TenantOwnedModel


class Visit(TenantOwnedModel):
    """One shopper's visit. Its `status` and `payment_status` are written by `visits.lifecycle` only."""

    class Status(models.TextChoices):
        OPEN = "open", "Open (shopper in the store)"
        SETTLING = "settling", "Settling (waiting for late events)"
        NEEDS_REVIEW = "needs_review", "Needs review"
        AWAITING_PAYMENT = "awaiting_payment", "Being charged (the cart is decided, Stripe has not answered yet)"
        CHARGED = "charged", "Charged"
        PAYMENT_FAILED = "payment_failed", "Payment failed"
        REFUNDED = "refunded", "Refunded"
        NO_CHARGE = "no_charge", "No charge (empty cart)"

    class PaymentStatus(models.TextChoices):
        NONE = "none", "Nothing to pay yet"
        PENDING = "pending", "Pending"
        SUCCEEDED = "succeeded", "Paid"
        FAILED = "failed", "Failed (balance open)"

    store = models.ForeignKey("stores.Store", on_delete=models.PROTECT, related_name="visits")
    session = models.CharField(max_length=64)
    shopper_token_hash = models.CharField(
        max_length=128, blank=True, help_text="SHA-256 of the entry token the visit came in with (core.entry_tokens)."
    )
    group = models.CharField(
        max_length=64,
        blank=True,
        help_text="A companion's payer: the session whose card pays for this visit (spec v1.1 `group`); "
        "blank for a payer or a lone shopper.",
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OPEN)
    entered_at = models.DateTimeField(null=True, blank=True)
    exited_at = models.DateTimeField(null=True, blank=True)
    last_event_at = models.DateTimeField(null=True, blank=True)
    exit_inferred = models.BooleanField(
        default=False,
        help_text="No exit event arrived: the visit was closed at its last event after VISIT_EXIT_TIMEOUT_MINUTES.",
    )
    events_count = models.PositiveIntegerField(default=0)
    currency = models.CharField(max_length=3, blank=True)
    subtotal = models.BigIntegerField(default=0)
    tax = models.BigIntegerField(default=0)
    total = models.BigIntegerField(default=0)
    charged_total = models.BigIntegerField(default=0, help_text="What the charge instructions so far add up to.")
    payment_status = models.CharField(
        max_length=10, choices=PaymentStatus.choices, default=PaymentStatus.NONE, help_text="Where the money stands."
    )
    payment_reference = models.CharField(max_length=64, blank=True, help_text="Stripe's id of the main payment.")
    paid = models.BigIntegerField(default=0, help_text="Captured and charged so far, minor units.")
    refunded = models.BigIntegerField(default=0, help_text="Refunded so far, minor units.")
    payment_failure = models.CharField(max_length=500, blank=True, help_text="Stripe's reason for the last failure.")
    review_reasons = models.JSONField(default=list, blank=True)  # visits.reasons.ReviewReason.as_json(), in order
    risk = models.FloatField(
        null=True,
        blank=True,
        help_text="The chance that something on the engine's cart is not the shopper's, as settling saw it.",
    )
    cart_version = models.PositiveIntegerField(default=0)
    settled_at = models.DateTimeField(null=True, blank=True, help_text="When the visit became final.")
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-entered_at"]
        constraints = [models.UniqueConstraint(fields=["tenant", "store", "session"], name="visit_session_unique")]
        indexes = [
            models.Index(fields=["tenant", "store", "status"], name="visit_store_status"),
            models.Index(fields=["tenant", "status", "exited_at"], name="visit_status_exited"),
            models.Index(fields=["tenant", "store", "group"], name="visit_store_group"),
        ]

    def __str__(self) -> str:
        return f"visit {self.session}"

    @property
    def payer_session(self) -> str:
        """The session whose receipt holds this visit's items: its group's payer, or itself."""
        return self.group or self.session

    @property
    def balance_due(self) -> int:
        """What the shopper still owes: what the cart says minus what was collected net of refunds."""
        return max(self.charged_total - (self.paid - self.refunded), 0)


class VisitLine(TenantOwnedModel):
    """One line of a visit's cart: what the engine (or a reviewer) says the shopper took."""

    class Source(models.TextChoices):
        ENGINE = "engine", "Engine"
        REVIEW = "review", "Reviewer"

    visit = models.ForeignKey(Visit, on_delete=models.CASCADE, related_name="lines")
    sku = models.CharField(max_length=64)
    name = models.CharField(max_length=200)
    qty = models.PositiveIntegerField()
    unit_price = models.BigIntegerField(help_text="Minor units, the price in force when first taken.")
    amount = models.BigIntegerField()
    tax_rate = models.DecimalField(max_digits=7, decimal_places=4)
    tax = models.BigIntegerField()
    confidence = models.FloatField()
    evidence = models.JSONField(default=list, help_text="Ids of the events that produced the line.")
    source = models.CharField(max_length=8, choices=Source.choices, default=Source.ENGINE)
    taken_by = models.JSONField(
        default=list,
        blank=True,
        help_text="On a group's receipt, the sessions of the members who took the line (the payer's own included).",
    )

    class Meta:
        ordering = ["visit_id", "sku"]
        constraints = [models.UniqueConstraint(fields=["tenant", "visit", "sku"], name="visit_line_one_per_sku")]

    def __str__(self) -> str:
        return f"{self.qty} × {self.sku}"


class ReviewDecision(TenantOwnedModel):
    """A person's decision on a visit the engine could not settle alone: who, what, when, and the cart before."""

    class Action(models.TextChoices):
        APPROVE = "approve", "Approved (charge)"
        VOID = "void", "Voided (no charge)"

    visit = models.ForeignKey(Visit, on_delete=models.CASCADE, related_name="reviews")
    reviewer = models.ForeignKey("auth.User", on_delete=models.PROTECT, related_name="+")
    action = models.CharField(max_length=8, choices=Action.choices)
    lines_before = models.JSONField()
    lines_after = models.JSONField()
    note = models.TextField(blank=True)
    decided_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-decided_at"]
        indexes = [models.Index(fields=["tenant", "-decided_at"], name="review_tenant_decided")]

    def __str__(self) -> str:
        return f"{self.get_action_display()} visit {self.visit_id}"


class ChargeInstruction(TenantOwnedModel):
    """What payments must do for a visit: capture its total, or adjust it after a late event or a review.

    One row per (visit, sequence); payments (Stripe) works through them in order and records the outcome.
    """

    class Kind(models.TextChoices):
        CAPTURE = "capture", "Capture the cart total"
        ADJUST = "adjust", "Charge or refund a difference"
        RELEASE = "release", "Release the hold (nothing to charge)"

    class State(models.TextChoices):
        PENDING = "pending", "Pending"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    visit = models.ForeignKey(Visit, on_delete=models.CASCADE, related_name="charge_instructions")
    sequence = models.PositiveIntegerField()
    kind = models.CharField(max_length=8, choices=Kind.choices)
    amount = models.BigIntegerField(help_text="Minor units; negative for a refund.")
    currency = models.CharField(max_length=3)
    reason = models.CharField(max_length=200)
    state = models.CharField(max_length=8, choices=State.choices, default=State.PENDING)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["visit_id", "sequence"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "visit", "sequence"], name="charge_instruction_sequence")
        ]
        indexes = [models.Index(fields=["tenant", "state"], name="charge_instruction_state")]

    def __str__(self) -> str:
        return f"{self.kind} {self.amount} {self.currency} for visit {self.visit_id}"


class StoreCalibration(TenantOwnedModel):
    """What a store's perception stack's scores have meant in that store, learnt from its own visits.

    One row per learning, numbered per store and never changed (the history shows how the store's
    calibration moved); settling reads the latest, so that a new one affects only visits settled after it.
    `calibration` is `visits.calibration.Calibration.as_json()`.
    """

    store = models.ForeignKey("stores.Store", on_delete=models.CASCADE, related_name="calibrations")
    number = models.PositiveIntegerField(help_text="1, 2, … per store: the store's calibrations in order.")
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    created_by = models.CharField(max_length=200, blank=True, help_text="Who asked for it, as it read at the time.")
    calibration = models.JSONField(help_text="The curves and the visit risks the engine reads (visits.calibration).")
    samples = models.PositiveIntegerField(help_text="Labelled examples it learnt from.")
    reviewed_visits = models.PositiveIntegerField(help_text="Visits a person decided that it learnt from.")
    visits = models.PositiveIntegerField(help_text="The store's recent visits it was learnt on.")
    auto_charge_share = models.FloatField(help_text="Share of those visits it charges without a person.")
    overcharge_risk = models.DecimalField(max_digits=5, decimal_places=4, help_text="The store's risk at the time.")
    charge_limit = models.FloatField(help_text="The highest visit risk charged without a person, at that risk.")

    class Meta:
        ordering = ["store", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "store", "number"], name="store_calibration_number_unique")
        ]

    def __str__(self) -> str:
        return f"calibration {self.number} of store {self.store_id}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise ValueError("A store's calibrations are append-only: learn a new one instead.")
        super().save(*args, **kwargs)
