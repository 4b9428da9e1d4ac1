"""Products and their price history. A price applies from its `effective_from` until the next one."""

from __future__ import annotations

from decimal import Decimal

from django.core.validators import MinValueValidator
from django.db import models
from django.utils import timezone

from core.models import TenantOwnedModel


class Product(TenantOwnedModel):
    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        ARCHIVED = "archived", "Archived"

    sku = models.CharField("SKU", max_length=64)
    name = models.CharField(max_length=200)
    barcodes = models.JSONField(default=list, blank=True, help_text="GTINs printed on the item.")
    unit_weight_g = models.DecimalField(
        "unit weight (g)", max_digits=10, decimal_places=2, validators=[MinValueValidator(Decimal("0.01"))]
    )
    weight_tolerance_g = models.DecimalField(
        "weight tolerance (g)",
        max_digits=10,
        decimal_places=2,
        help_text="How far one unit may weigh from its nominal weight and still count as one unit.",
    )
    image_url = models.URLField(max_length=500, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["sku"]
        constraints = [models.UniqueConstraint(fields=["tenant", "sku"], name="product_sku_unique_per_tenant")]
        indexes = [models.Index(fields=["tenant", "status", "sku"], name="product_tenant_status_sku")]

    def __str__(self) -> str:
        return f"{self.sku} — {self.name}"


class ProductPrice(TenantOwnedModel):
    """One price of a product in one currency, in force from `effective_from` until the next version."""

    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="prices")
    currency = models.CharField(max_length=3, help_text="ISO 4217, e.g. USD.")
    unit_price = models.PositiveBigIntegerField(help_text="In the currency's minor unit (cents).")
    tax_rate = models.DecimalField(
        "tax rate (%)", max_digits=7, decimal_places=4, help_text="A percentage, e.g. 8.25."
    )
    effective_from = models.DateTimeField(default=timezone.now)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["product", "currency", "-effective_from"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "product", "currency", "effective_from"], name="price_one_version_per_instant"
            )
        ]
        indexes = [
            models.Index(fields=["tenant", "product", "currency", "-effective_from"], name="price_lookup"),
        ]

    def __str__(self) -> str:
        return f"{self.product_id} {self.unit_price} {self.currency} from {self.effective_from:%Y-%m-%d %H:%M}"
