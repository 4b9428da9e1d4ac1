"""Stores, their versioned layouts (zones, fixtures, bins — the planogram) and their devices.

A layout version is immutable once written: events are read against the
version in force at their time, so an old version must keep saying what it said.
Devices are the physical things in a store (identity = code) and carry health;
where each sits in a given layout is a `DevicePlacement` of that version.
"""

from __future__ import annotations

import zoneinfo
from decimal import Decimal

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils.timezone import now

from core.formatting import format_zone
from core.models import TenantOwnedModel
from disputes.policy import DEFAULT_AUTO_REFUND_LIMIT, DEFAULT_WINDOW_DAYS

# The overcharge risk a licensee may set: at most this share of its visits overcharged (visits.calibration).
OVERCHARGE_RISK_DEFAULT = Decimal("0.005")
OVERCHARGE_RISK_MIN = Decimal("0.0005")
OVERCHARGE_RISK_MAX = Decimal("0.05")
# The most a store may say a person's look at an item no camera saw costs it (minor units; visits.engine).
UNSEEN_ITEM_REVIEW_COST_MAX = 10_000_000


# A store's dispute policy (the `disputes` app decides by it): its fields, and the range of each number.
DISPUTE_POLICY_FIELDS = (
    "dispute_window_days",
    "dispute_auto_refund_limit",
    "dispute_auto_refund_unsure",
    "dispute_review_hours",
)
DISPUTE_POLICY_RANGES = {
    "dispute_window_days": (1, 365),
    "dispute_auto_refund_limit": (0, 10_000_000),
    "dispute_review_hours": (1, 24 * 30),
}


class Store(TenantOwnedModel):
    class Status(models.TextChoices):
        ONBOARDING = "onboarding", "Onboarding"
        ACTIVE = "active", "Active"
        CLOSED = "closed", "Closed"

    code = models.CharField(max_length=64, help_text="The store's code in event streams and API paths.")
    name = models.CharField(max_length=200)
    address = models.TextField(blank=True)
    timezone = models.CharField(max_length=64, default="UTC", help_text="IANA name, e.g. America/New_York.")
    currency = models.CharField(max_length=3, help_text="ISO 4217, e.g. USD.")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ONBOARDING)
    preauth_amount = models.PositiveBigIntegerField(
        "pre-authorisation amount",
        default=5000,
        help_text="Held on the shopper's card at entry, in the currency's minor unit.",
    )
    overcharge_risk = models.DecimalField(
        max_digits=5,
        decimal_places=4,
        default=OVERCHARGE_RISK_DEFAULT,
        validators=[MinValueValidator(OVERCHARGE_RISK_MIN), MaxValueValidator(OVERCHARGE_RISK_MAX)],
        help_text="At most this share of visits overcharged (0.005 = 0.5 %): every visit that fits in it is "
        "charged without a person, the rest go to review.",
    )
    settling_window_seconds = models.PositiveIntegerField(
        default=120, help_text="How long after exit late events are still awaited before a visit is final."
    )
    unseen_item_review_cost = models.PositiveBigIntegerField(
        "cost of a look at an unseen item",
        default=0,
        validators=[MaxValueValidator(UNSEEN_ITEM_REVIEW_COST_MAX)],
        help_text="What a person's look at an item no camera saw costs the store, in the currency's minor unit. Such "
        "an item goes to the shopper singled out — charged within the store's overcharge risk, or asked about — only "
        "when what it would recover (its price times how likely that shopper took it) is at least this much; "
        "otherwise it is left uncharged and counted as shrink. 0: always (when one shopper stands out).",
    )
    # Shoppers' disputes (the `disputes` app): what the store's policy decides at once, and what waits for a person.
    dispute_window_days = models.PositiveSmallIntegerField(
        "dispute window (days)",
        default=DEFAULT_WINDOW_DAYS,
        validators=[MinValueValidator(1), MaxValueValidator(DISPUTE_POLICY_RANGES["dispute_window_days"][1])],
        help_text="A shopper may dispute a receipt's lines up to this many days after leaving the store.",
    )
    dispute_auto_refund_limit = models.PositiveBigIntegerField(
        "auto-refund limit",
        default=DEFAULT_AUTO_REFUND_LIMIT,
        help_text="A dispute asking this much or less (minor units) is refunded at once; 0 refunds none by amount.",
    )
    dispute_auto_refund_unsure = models.BooleanField(
        "auto-refund lines the platform was unsure of",
        default=True,
        help_text="A dispute of lines the engine was unsure of (above the store's charge limit) is refunded at once.",
    )
    dispute_review_hours = models.PositiveSmallIntegerField(
        "deadline for a person (hours)",
        default=48,
        validators=[MinValueValidator(1), MaxValueValidator(DISPUTE_POLICY_RANGES["dispute_review_hours"][1])],
        help_text="A dispute sent to the queue must be decided within this many hours, or it is refunded.",
    )
    created_at = models.DateTimeField(default=now, editable=False)

    class Meta:
        ordering = ["code"]
        constraints = [models.UniqueConstraint(fields=["tenant", "code"], name="store_code_unique_per_tenant")]

    def __str__(self) -> str:
        return f"{self.code} — {self.name}"

    @property
    def zone(self) -> zoneinfo.ZoneInfo:
        """The store's timezone, for what people read (UTC when its name is not one Python knows)."""
        try:
            return zoneinfo.ZoneInfo(self.timezone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            return zoneinfo.ZoneInfo("UTC")

    @property
    def clock(self) -> str:
        """The store's time zone as people name it: "New York time (EST)" rather than "America/New_York"."""
        return format_zone(self.zone, at=now())


class Device(TenantOwnedModel):
    class Kind(models.TextChoices):
        CAMERA = "camera", "Camera"
        WEIGHT_SENSOR = "weight_sensor", "Weight sensor"
        GATE = "gate", "Gate"
        STAFF_DEVICE = "staff_device", "Staff device"

    class Health(models.TextChoices):
        UNKNOWN = "unknown", "Not heard from yet"
        ONLINE = "online", "Online"
        DEGRADED = "degraded", "Degraded"
        OFFLINE = "offline", "Offline"

    store = models.ForeignKey(Store, on_delete=models.CASCADE, related_name="devices")
    code = models.CharField(max_length=64)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    status = models.CharField(max_length=16, choices=Health.choices, default=Health.UNKNOWN)
    last_seen_at = models.DateTimeField(null=True, blank=True)
    status_changed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=now, editable=False)

    class Meta:
        ordering = ["store", "code"]
        constraints = [models.UniqueConstraint(fields=["tenant", "store", "code"], name="device_code_unique_per_store")]
        indexes = [models.Index(fields=["tenant", "status"], name="device_tenant_status")]

    def __str__(self) -> str:
        return f"{self.code} ({self.get_kind_display()})"


class LayoutVersion(TenantOwnedModel):
    """One version of a store's layout, in force from `effective_from` until the next version."""

    store = models.ForeignKey(Store, on_delete=models.CASCADE, related_name="layouts")
    number = models.PositiveIntegerField()
    effective_from = models.DateTimeField()
    document = models.JSONField(help_text="The layout document as uploaded.")
    floor_width_m = models.DecimalField(max_digits=7, decimal_places=2)
    floor_depth_m = models.DecimalField(max_digits=7, decimal_places=2)
    created_at = models.DateTimeField(default=now, editable=False)
    created_by = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["store", "-effective_from"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "store", "number"], name="layout_number_unique_per_store"),
            models.UniqueConstraint(fields=["tenant", "store", "effective_from"], name="layout_one_per_instant"),
        ]

    def __str__(self) -> str:
        return f"{self.store.code} layout v{self.number}"


class Zone(TenantOwnedModel):
    layout = models.ForeignKey(LayoutVersion, on_delete=models.CASCADE, related_name="zones")
    code = models.CharField(max_length=64)
    name = models.CharField(max_length=200)
    polygon = models.JSONField(help_text="[[x, y], …] in metres.")

    class Meta:
        ordering = ["layout", "code"]
        constraints = [models.UniqueConstraint(fields=["tenant", "layout", "code"], name="zone_code_unique")]

    def __str__(self) -> str:
        return f"{self.code} {self.name}"


class Fixture(TenantOwnedModel):
    layout = models.ForeignKey(LayoutVersion, on_delete=models.CASCADE, related_name="fixtures")
    zone = models.ForeignKey(Zone, on_delete=models.CASCADE, related_name="fixtures")
    code = models.CharField(max_length=64)
    kind = models.CharField(max_length=32)
    x_m = models.FloatField()
    y_m = models.FloatField()
    width_m = models.FloatField()
    depth_m = models.FloatField()

    class Meta:
        ordering = ["layout", "code"]
        constraints = [models.UniqueConstraint(fields=["tenant", "layout", "code"], name="fixture_code_unique")]

    def __str__(self) -> str:
        return f"{self.code} ({self.kind})"


class Bin(TenantOwnedModel):
    """A place on a fixture holding one product: a planogram entry."""

    layout = models.ForeignKey(LayoutVersion, on_delete=models.CASCADE, related_name="bins")
    fixture = models.ForeignKey(Fixture, on_delete=models.CASCADE, related_name="bins")
    code = models.CharField(max_length=64)
    product = models.ForeignKey("catalog.Product", on_delete=models.PROTECT, related_name="+")
    sku = models.CharField(max_length=64)
    capacity = models.PositiveIntegerField()
    sensor = models.ForeignKey(Device, null=True, blank=True, on_delete=models.PROTECT, related_name="+")

    class Meta:
        ordering = ["layout", "code"]
        constraints = [models.UniqueConstraint(fields=["tenant", "layout", "code"], name="bin_code_unique")]

    def __str__(self) -> str:
        return f"{self.code}: {self.sku}"


class DevicePlacement(TenantOwnedModel):
    """Where a device sits in one layout version and what it covers."""

    layout = models.ForeignKey(LayoutVersion, on_delete=models.CASCADE, related_name="placements")
    device = models.ForeignKey(Device, on_delete=models.CASCADE, related_name="placements")
    position = models.JSONField(null=True, blank=True, help_text="[x, y] or [x, y, height] in metres.")
    covers = models.JSONField(default=list, blank=True, help_text="Zone codes a camera sees.")
    fixture = models.ForeignKey(Fixture, null=True, blank=True, on_delete=models.CASCADE, related_name="+")

    class Meta:
        ordering = ["layout", "device__code"]
        constraints = [models.UniqueConstraint(fields=["tenant", "layout", "device"], name="placement_once_per_layout")]

    def __str__(self) -> str:
        return f"{self.device.code} in {self.layout}"
