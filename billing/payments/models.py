"""Shoppers' cards and every money movement on them, one row per attempt with Stripe.

A payment attempt is keyed by (visit, purpose, sequence): the same attempt is never made twice, and an attempt
whose outcome is unknown (a worker died between the Stripe call and the database write) is reconciled by asking
Stripe before anything is retried.
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from core.models import TenantOwnedModel


class PaymentSettings(TenantOwnedModel):
    """A tenant's own Stripe account: its secret key and webhook signing secret, encrypted at rest."""

    secret_key_encrypted = models.TextField(blank=True)
    webhook_secret_encrypted = models.TextField(blank=True)
    receipt_from_email = models.EmailField(
        blank=True, help_text="Sender of shoppers' receipts; the platform's if empty."
    )
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = "payment settings"
        verbose_name_plural = "payment settings"
        constraints = [models.UniqueConstraint(fields=["tenant"], name="payment_settings_one_per_tenant")]

    def __str__(self) -> str:
        return f"payment settings of tenant {self.tenant_id}"


class Shopper(TenantOwnedModel):
    """A registered shopper: a Stripe customer with a card, and the entry token their visits carry.

    An erased shopper (billing.payments.erasure) keeps only its id, its dates and a token hash of no token, which
    its visits carry instead of the real one's: the pseudonym its payments and receipts still point to.
    """

    external_ref = models.CharField(max_length=128, help_text="The licensee's own id for the shopper.")
    email = models.EmailField(blank=True, help_text="Where receipts go.")
    stripe_customer_id = models.CharField(max_length=64)
    payment_method_id = models.CharField(max_length=64)
    card_brand = models.CharField(max_length=32, blank=True)
    card_last4 = models.CharField(max_length=4, blank=True)
    token_prefix = models.CharField(max_length=16, help_text="The start of the entry token, to recognise it.")
    token_hash = models.CharField(max_length=64, help_text="SHA-256 of the entry token; the token is shown once.")
    revoked_at = models.DateTimeField(null=True, blank=True)
    erased_at = models.DateTimeField(
        null=True, blank=True, help_text="When the shopper's personal data was erased on request."
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["external_ref"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "external_ref"],
                condition=models.Q(erased_at__isnull=True),
                name="shopper_external_ref_unique",
            ),
            models.UniqueConstraint(fields=["tenant", "token_hash"], name="shopper_token_unique"),
        ]

    def __str__(self) -> str:
        return f"erased shopper #{self.pk}" if self.is_erased else self.external_ref

    @property
    def is_revoked(self) -> bool:
        return self.revoked_at is not None

    @property
    def is_erased(self) -> bool:
        return self.erased_at is not None


class PaymentAttempt(TenantOwnedModel):
    """One call to Stripe that moves (or holds, or releases) a shopper's money for a visit."""

    class Purpose(models.TextChoices):
        PREAUTH = "preauth", "Pre-authorisation at entry"
        CAPTURE = "capture", "Capture of the hold"
        CHARGE = "charge", "Charge (beyond the hold, an increase, or without a hold)"
        CANCEL = "cancel", "Release of the hold"
        REFUND = "refund", "Refund"

    class State(models.TextChoices):
        PENDING = "pending", "Pending"
        PROCESSING = "processing", "Sent to Stripe (outcome not yet recorded)"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    visit = models.ForeignKey("visits.Visit", on_delete=models.PROTECT, related_name="payment_attempts")
    shopper = models.ForeignKey(Shopper, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    instruction = models.ForeignKey(
        "visits.ChargeInstruction", on_delete=models.PROTECT, null=True, blank=True, related_name="attempts"
    )
    purpose = models.CharField(max_length=8, choices=Purpose.choices)
    sequence = models.PositiveIntegerField(default=1)
    amount = models.BigIntegerField(help_text="Minor units, always positive.")
    currency = models.CharField(max_length=3)
    state = models.CharField(max_length=10, choices=State.choices, default=State.PENDING)
    stripe_id = models.CharField(max_length=64, blank=True, help_text="PaymentIntent (pi_) or refund (re_).")
    payment_intent_id = models.CharField(max_length=64, blank=True, help_text="The PaymentIntent acted on.")
    failure_code = models.CharField(max_length=64, blank=True)
    failure_message = models.CharField(max_length=500, blank=True)
    tries = models.PositiveIntegerField(default=0)
    next_try_at = models.DateTimeField(null=True, blank=True)
    lease_until = models.DateTimeField(
        null=True, blank=True, help_text="While processing: nobody else touches the attempt before this time."
    )
    reason_code = models.CharField(max_length=32, blank=True, help_text="Refunds: why.")
    note = models.CharField(max_length=500, blank=True)
    refund_lines = models.JSONField(default=list, blank=True, help_text="Refunds per line: [{sku, qty, amount}].")
    requested_by = models.ForeignKey("auth.User", on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["visit_id", "created_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "visit", "purpose", "sequence"], name="payment_attempt_once_per_purpose_sequence"
            )
        ]
        indexes = [
            models.Index(fields=["tenant", "state", "next_try_at"], name="payment_attempt_retry"),
            models.Index(fields=["tenant", "stripe_id"], name="payment_attempt_stripe_id"),
            models.Index(fields=["tenant", "purpose", "state", "updated_at"], name="payment_attempt_purpose_day"),
        ]

    def __str__(self) -> str:
        return f"{self.purpose} #{self.sequence} {self.amount} {self.currency} for visit {self.visit_id}"

    @property
    def key(self) -> str:
        """Our identity of the attempt, written into Stripe's metadata so an unknown outcome can be looked up."""
        return f"oa-{self.tenant_id}-{self.visit_id}-{self.purpose}-{self.sequence}"


class RefundedLine(TenantOwnedModel):
    """How many units of a visit's line were refunded, by staff or for a shopper's dispute: one row per line.

    Every line refund raises `units_refunded` under the visit's row lock, and the database refuses a row with
    more units refunded than were charged: a dispute and a manager refunding the same line can never refund it
    twice, whatever the order or the race.
    """

    visit = models.ForeignKey("visits.Visit", on_delete=models.CASCADE, related_name="refunded_lines")
    sku = models.CharField(max_length=64)
    units_charged = models.PositiveIntegerField(help_text="The line's quantity when units of it were last refunded.")
    units_refunded = models.PositiveIntegerField(default=0)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant", "visit", "sku"], name="refunded_line_one_per_sku"),
            models.CheckConstraint(
                condition=models.Q(units_refunded__lte=models.F("units_charged")), name="refunded_line_at_most_charged"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.units_refunded} of {self.units_charged} × {self.sku} refunded (visit {self.visit_id})"


class StripeEvent(TenantOwnedModel):
    """A webhook Stripe sent us, stored once per Stripe event id and processed in a task."""

    stripe_event_id = models.CharField(max_length=64)
    type = models.CharField(max_length=64)
    payload = models.JSONField()
    received_at = models.DateTimeField(default=timezone.now)
    processed_at = models.DateTimeField(null=True, blank=True)
    outcome = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["-received_at"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "stripe_event_id"], name="stripe_event_once"),
        ]

    def __str__(self) -> str:
        return f"{self.type} {self.stripe_event_id}"


class Receipt(TenantOwnedModel):
    """A receipt issued to a shopper: once per visit and cart version, emailed when we know where to."""

    visit = models.ForeignKey("visits.Visit", on_delete=models.CASCADE, related_name="receipts")
    cart_version = models.PositiveIntegerField()
    total = models.BigIntegerField()
    currency = models.CharField(max_length=3)
    emailed_to = models.EmailField(blank=True)
    issued_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-issued_at"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "visit", "cart_version"], name="receipt_once_per_version")
        ]

    def __str__(self) -> str:
        return f"receipt v{self.cart_version} of visit {self.visit_id}"
