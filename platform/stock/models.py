"""Shelf stock: what staff counted on each bin, the low-stock levels they set, and which bins are low now.

Units on a bin at an instant are never stored: they are read from the bin's last count and the store's
events after it (`stock.selectors.stock_at`), so a late upload corrects them without anything to update.
"""

from __future__ import annotations

from django.core.validators import MaxValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone

from core.models import TenantOwnedModel

MAX_UNITS = 1_000_000


class StockCount(TenantOwnedModel):
    """Units of a bin's product that staff counted on the bin at an instant (one line of a stock take)."""

    store = models.ForeignKey("stores.Store", on_delete=models.CASCADE, related_name="+")
    bin = models.CharField(max_length=64)
    sku = models.CharField("SKU", max_length=64, help_text="The product the bin held then (its planogram entry).")
    units = models.PositiveIntegerField(validators=[MaxValueValidator(MAX_UNITS)])
    counted_at = models.DateTimeField(help_text="When the shelf held this many.")
    recorded_at = models.DateTimeField(default=timezone.now, editable=False)
    recorded_by = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["store", "bin", "-counted_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "store", "bin", "counted_at"], name="stock_count_once_per_instant"
            )
        ]
        indexes = [models.Index(fields=["tenant", "store", "counted_at"], name="stock_count_store_time")]

    def __str__(self) -> str:
        return f"{self.bin}: {self.units} × {self.sku}"


class LowStockLevel(TenantOwnedModel):
    """At or below `units` a bin is low: set for one bin, or for a product on every bin that holds it.

    A bin's own level wins over its product's.
    """

    store = models.ForeignKey("stores.Store", on_delete=models.CASCADE, related_name="+")
    bin = models.CharField(max_length=64, blank=True, help_text="One bin, or empty for every bin of the product.")
    sku = models.CharField("SKU", max_length=64, blank=True, help_text="A product, or empty when a bin is named.")
    units = models.PositiveIntegerField(
        "low at", validators=[MaxValueValidator(MAX_UNITS)], help_text="Low at or below this many units."
    )
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["store", "bin", "sku"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "store", "bin", "sku"], name="low_stock_level_once"),
            models.CheckConstraint(
                condition=(Q(bin="") & ~Q(sku="")) | (~Q(bin="") & Q(sku="")), name="low_stock_level_bin_or_product"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.bin or self.sku}: low at {self.units}"


class StockAlert(TenantOwnedModel):
    """Whether a bin is low now, as last checked: `stock.low` is sent when it turns low, once per crossing."""

    store = models.ForeignKey("stores.Store", on_delete=models.CASCADE, related_name="+")
    bin = models.CharField(max_length=64)
    low = models.BooleanField(default=False)
    crossings = models.PositiveIntegerField(default=0, help_text="How many times it has turned low.")
    changed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["store", "bin"]
        constraints = [models.UniqueConstraint(fields=["tenant", "store", "bin"], name="stock_alert_once_per_bin")]

    def __str__(self) -> str:
        return f"{self.bin}: {'low' if self.low else 'ok'}"
