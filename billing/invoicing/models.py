"""Licensee billing: plans (versioned), each tenant's plan over time, daily usage, invoices and credit notes.

Plans belong to the platform (operators manage them in `/ops/`); a `PlanVersion` never changes once written, a
new price is a new version. A tenant's plan is a series of `PlanAssignment`s with effective dates. `DailyUsage`
is derived from visits and payments by `services.usage_recompute` and never edited by hand. An invoice is built
as a draft by closing a month, gets its gap-free number when finalised and never changes afterwards: corrections
are `CreditNote`s referencing it. Amounts are integers in the currency's minor unit.
"""

from __future__ import annotations

from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone

from core.models import TenantOwnedModel


class Plan(models.Model):
    """A named price plan of the platform, e.g. "Standard". Its prices live in its versions."""

    code = models.SlugField(max_length=64, unique=True, help_text="Short identifier, fixed once created.")
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    event_retention_days = models.PositiveIntegerField(
        "event retention (days)",
        default=395,
        validators=[MinValueValidator(1)],
        help_text="Raw store events older than this are exported to storage (gzip NDJSON, re-importable through an "
        "upload) and removed from the database, daily. Visits, receipts, payments and invoices are kept.",
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class PlanVersion(models.Model):
    """The prices of a plan from one version on; immutable once written (a new price is a new version)."""

    plan = models.ForeignKey(Plan, on_delete=models.PROTECT, related_name="versions")
    number = models.PositiveIntegerField(editable=False)
    currency = models.CharField(max_length=3, help_text="ISO 4217; the currency the plan bills in.")
    store_fee = models.BigIntegerField(help_text="Per active store and month, minor units (prorated by day).")
    visit_fee = models.BigIntegerField(help_text="Per settled visit, minor units.")
    revenue_share_bps = models.PositiveIntegerField(
        "revenue share (basis points)", help_text="Share of net sales (gross minus refunds); 150 = 1.5 %."
    )
    monthly_minimum = models.BigIntegerField(help_text="Minimum fees per month, minor units (prorated by day).")
    promised_without_person_bps = models.PositiveIntegerField(
        "promised share settled without a person (basis points)",
        null=True,
        blank=True,
        help_text="At least this share of a month's visits settled with no person; 9000 = 90 %. Empty: no promise.",
    )
    promised_exit_to_receipt_p95_s = models.PositiveIntegerField(
        "promised p95 exit to receipt (seconds)",
        null=True,
        blank=True,
        help_text="95 % of a month's receipts within this many seconds of the exit. Empty: no promise.",
    )
    promised_review_p95_s = models.PositiveIntegerField(
        "promised p95 review time to decision (seconds)",
        null=True,
        blank=True,
        help_text="95 % of a month's review decisions within this many seconds in the queue. Empty: no promise.",
    )
    service_credit_bps = models.PositiveIntegerField(
        "service credit per missed promise (basis points)",
        default=0,
        help_text="Credited on the invoice for each promise a month misses, as a share of the month's fees on this "
        "version (store, visit, revenue share and minimum top-up); 1000 = 10 %.",
    )
    note = models.CharField(max_length=200, blank=True, help_text="Why this version, e.g. 'price list 2026'.")
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    created_by = models.CharField(max_length=200, blank=True, editable=False)

    class Meta:
        ordering = ["plan", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["plan", "number"], name="plan_version_number_unique"),
            models.CheckConstraint(
                condition=Q(store_fee__gte=0, visit_fee__gte=0, monthly_minimum__gte=0, revenue_share_bps__lte=10_000),
                name="plan_version_amounts_valid",
            ),
            models.CheckConstraint(
                condition=Q(service_credit_bps__lte=10_000)
                & (Q(promised_without_person_bps__isnull=True) | Q(promised_without_person_bps__lte=10_000)),
                name="plan_version_promises_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.plan.name} v{self.number} ({self.currency})"


class BillingAccount(TenantOwnedModel):
    """Who the licensee is on an invoice, and how it is billed: currency, tax, payment terms."""

    legal_name = models.CharField(max_length=200)
    address = models.TextField(blank=True)
    email = models.EmailField(blank=True, help_text="Where invoices go.")
    tax_id = models.CharField("tax id", max_length=64, blank=True, help_text="VAT / GST number, printed on invoices.")
    currency = models.CharField(max_length=3, help_text="The billing currency; plans assigned must bill in it.")
    tax_rate_bps = models.PositiveIntegerField(
        "tax rate (basis points)", default=0, help_text="Tax added to every line; 2000 = 20 %, 0 = no tax."
    )
    tax_label = models.CharField(max_length=32, blank=True, default="Tax", help_text="e.g. VAT, GST, Sales tax.")
    payment_terms_days = models.PositiveIntegerField(default=30, help_text="Due date = issue date + this.")
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant"], name="billing_account_one_per_tenant"),
            models.CheckConstraint(condition=Q(tax_rate_bps__lte=10_000), name="billing_account_tax_rate_valid"),
        ]

    def __str__(self) -> str:
        return self.legal_name


class PlanAssignment(TenantOwnedModel):
    """A tenant on a plan version from `starts_on` to `ends_on` (inclusive; open-ended when empty)."""

    plan_version = models.ForeignKey(PlanVersion, on_delete=models.PROTECT, related_name="assignments")
    starts_on = models.DateField()
    ends_on = models.DateField(null=True, blank=True, help_text="Last day on this plan; empty = until changed.")
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    created_by = models.CharField(max_length=200, blank=True, editable=False)

    class Meta:
        ordering = ["tenant", "starts_on"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "starts_on"], name="plan_assignment_one_per_start"),
            models.CheckConstraint(
                condition=Q(ends_on__isnull=True) | Q(ends_on__gte=models.F("starts_on")),
                name="plan_assignment_ends_after_start",
            ),
        ]

    def __str__(self) -> str:
        until = f" to {self.ends_on}" if self.ends_on else ""
        return f"{self.plan_version} from {self.starts_on}{until}"


class ExchangeRate(models.Model):
    """The rate finance uses for a month to bring sales in another currency into a billing currency."""

    month = models.DateField(help_text="First day of the month the rate applies to.")
    base = models.CharField(max_length=3, help_text="Currency of the sales, e.g. EUR.")
    quote = models.CharField(max_length=3, help_text="Billing currency, e.g. USD.")
    rate = models.DecimalField(max_digits=20, decimal_places=10, help_text="1 base = rate quote.")

    class Meta:
        ordering = ["-month", "base", "quote"]
        constraints = [
            models.UniqueConstraint(fields=["month", "base", "quote"], name="exchange_rate_one_per_month"),
            models.CheckConstraint(condition=Q(rate__gt=0), name="exchange_rate_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.month:%Y-%m} 1 {self.base} = {self.rate} {self.quote}"


class DailyUsage(TenantOwnedModel):
    """What one store did on one day (its local date): derived from visits and payments, never edited."""

    store = models.ForeignKey("stores.Store", on_delete=models.PROTECT, related_name="+")
    day = models.DateField(help_text="The store's local date.")
    currency = models.CharField(max_length=3)
    store_active = models.BooleanField(help_text="The store counts towards the store fee that day.")
    visits_settled = models.PositiveIntegerField(default=0)
    gross_sales = models.BigIntegerField(default=0, help_text="Captured and charged, minor units.")
    refunds = models.BigIntegerField(default=0, help_text="Refunded (overcharge corrections), minor units.")
    refunds_count = models.PositiveIntegerField(default=0)
    sent_to_review = models.PositiveIntegerField(default=0, help_text="Visits settled that day that went to a person.")
    decisions = models.PositiveIntegerField(default=0, help_text="Review decisions taken that day.")
    decision_seconds = models.BigIntegerField(default=0, help_text="Sum of exit-to-decision times of those decisions.")
    computed_at = models.DateTimeField(default=timezone.now, help_text="When these figures last changed.")

    class Meta:
        verbose_name_plural = "daily usage"
        ordering = ["-day", "store"]
        constraints = [models.UniqueConstraint(fields=["tenant", "store", "day"], name="daily_usage_one_per_store_day")]
        indexes = [models.Index(fields=["tenant", "day"], name="daily_usage_tenant_day")]

    def __str__(self) -> str:
        return f"usage of store {self.store_id} on {self.day}"


class MonthClose(models.Model):
    """One closing of a month: serialises closings of the same month (row lock) and keeps their outcome."""

    period_start = models.DateField(unique=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    runs = models.PositiveIntegerField(default=0)
    outcome = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-period_start"]

    def __str__(self) -> str:
        return f"close of {self.period_start:%Y-%m}"


class DocumentCounter(models.Model):
    """The last number given in a series and year; locked in the transaction that uses the next one."""

    series = models.CharField(max_length=8)
    year = models.PositiveIntegerField()
    last = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["series", "year"], name="document_counter_one_per_year")]

    def __str__(self) -> str:
        return f"{self.series}-{self.year}: {self.last}"


class Invoice(TenantOwnedModel):
    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        FINALISED = "finalised", "Finalised"
        PAID = "paid", "Paid"
        VOID = "void", "Void"

    period_start = models.DateField()
    period_end = models.DateField(help_text="Last day of the period (inclusive).")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.DRAFT)
    number = models.CharField(max_length=32, blank=True, help_text="Given at finalisation, gap-free per year.")
    year = models.PositiveIntegerField(null=True, blank=True, editable=False)
    sequence = models.PositiveIntegerField(null=True, blank=True, editable=False)
    currency = models.CharField(max_length=3)
    subtotal = models.BigIntegerField(default=0)
    tax = models.BigIntegerField(default=0)
    total = models.BigIntegerField(default=0)
    tax_label = models.CharField(max_length=32, blank=True)
    tax_rate_bps = models.PositiveIntegerField(default=0)
    bill_to = models.JSONField(default=dict, help_text="The licensee's details as printed.")
    issuer = models.JSONField(default=dict, help_text="The operator's details as printed.")
    issued_on = models.DateField(null=True, blank=True)
    due_on = models.DateField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(default=timezone.now)
    finalised_at = models.DateTimeField(null=True, blank=True)
    finalised_by = models.CharField(max_length=200, blank=True)
    paid_on = models.DateField(null=True, blank=True)
    voided_at = models.DateTimeField(null=True, blank=True)
    void_reason = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["-period_start", "tenant"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "period_start"], condition=~Q(status="void"), name="invoice_one_live_per_period"
            ),
            models.UniqueConstraint(fields=["tenant", "number"], condition=~Q(number=""), name="invoice_number_unique"),
            models.CheckConstraint(
                condition=Q(status="draft", number="") | (~Q(status="draft") & ~Q(number="")) | Q(status="void"),
                name="invoice_number_iff_issued",
            ),
            models.CheckConstraint(condition=Q(total=models.F("subtotal") + models.F("tax")), name="invoice_total_sum"),
        ]
        indexes = [
            models.Index(fields=["tenant", "period_start"], name="invoice_tenant_period"),
            models.Index(fields=["tenant", "status"], name="invoice_tenant_status"),
        ]

    def __str__(self) -> str:
        """Its number once finalised; a draft by its tenant and month (our row number means nothing to anyone)."""
        return self.number or f"Draft of {self.period_start:%B %Y} for {self.tenant.name}"

    @property
    def is_draft(self) -> bool:
        return self.status == self.Status.DRAFT

    @property
    def period_label(self) -> str:
        return f"{self.period_start:%Y-%m}"


class InvoiceLine(TenantOwnedModel):
    class Kind(models.TextChoices):
        STORE_FEE = "store_fee", "Store fee"
        VISIT_FEE = "visit_fee", "Visit fee"
        REVENUE_SHARE = "revenue_share", "Revenue share"
        MINIMUM = "minimum", "Monthly minimum top-up"
        SERVICE_CREDIT = "service_credit", "Service credit (a missed promise)"

    invoice = models.ForeignKey(Invoice, on_delete=models.CASCADE, related_name="lines")
    position = models.PositiveIntegerField()
    kind = models.CharField(max_length=16, choices=Kind.choices)
    description = models.CharField(max_length=300)
    plan_version = models.ForeignKey(PlanVersion, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    starts_on = models.DateField()
    ends_on = models.DateField()
    quantity = models.BigIntegerField(help_text="Store-days, visits, or net sales in minor units.")
    unit = models.CharField(max_length=32, help_text="What the quantity counts.")
    unit_price = models.BigIntegerField(help_text="Minor units per unit; for a share, basis points.")
    amount = models.BigIntegerField()
    tax = models.BigIntegerField(default=0)

    class Meta:
        ordering = ["invoice", "position"]
        constraints = [models.UniqueConstraint(fields=["tenant", "invoice", "position"], name="invoice_line_position")]

    def __str__(self) -> str:
        return self.description


class CreditNote(TenantOwnedModel):
    """A correction of a finalised invoice: its own gap-free number, never changed once issued."""

    invoice = models.ForeignKey(Invoice, on_delete=models.PROTECT, related_name="credit_notes")
    number = models.CharField(max_length=32)
    year = models.PositiveIntegerField(editable=False)
    sequence = models.PositiveIntegerField(editable=False)
    issued_on = models.DateField()
    reason = models.CharField(max_length=500)
    currency = models.CharField(max_length=3)
    subtotal = models.BigIntegerField()
    tax = models.BigIntegerField()
    total = models.BigIntegerField()
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    created_by = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["-issued_on", "-sequence"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "number"], name="credit_note_number_unique"),
            models.CheckConstraint(
                condition=Q(total=models.F("subtotal") + models.F("tax"), subtotal__gt=0), name="credit_note_totals"
            ),
        ]
        indexes = [models.Index(fields=["tenant", "invoice"], name="credit_note_tenant_invoice")]

    def __str__(self) -> str:
        return self.number


class CreditNoteLine(TenantOwnedModel):
    credit_note = models.ForeignKey(CreditNote, on_delete=models.CASCADE, related_name="lines")
    position = models.PositiveIntegerField()
    invoice_line = models.ForeignKey(InvoiceLine, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    description = models.CharField(max_length=300)
    amount = models.BigIntegerField(help_text="Credited, minor units, positive.")
    tax = models.BigIntegerField(default=0)

    class Meta:
        ordering = ["credit_note", "position"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "credit_note", "position"], name="credit_note_line_position"),
        ]

    def __str__(self) -> str:
        return self.description
