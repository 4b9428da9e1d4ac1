"""Products and their price history. A price applies from its `effective_from` until the next one; a product's
first price in a currency also covers what came before it."""

from __future__ import annotations

import uuid
from decimal import Decimal

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone

from catalog.currencies import format_money
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
    min_age = models.PositiveSmallIntegerField(
        "minimum age",
        null=True,
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(150)],
        help_text="Age-restricted product (e.g. 18 or 21): a visit holding one is charged only once staff checked "
        "the shopper's ID at that age. Empty when anyone may buy it.",
    )
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
    """One price of a product in one currency, in force from `effective_from` until the next version (the first
    version also before its `effective_from`: there is no other)."""

    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="prices")
    currency = models.CharField(max_length=3, help_text="ISO 4217, e.g. USD.")
    unit_price = models.PositiveBigIntegerField(help_text="In the currency's minor unit (cents).")
    tax_rate = models.DecimalField("tax rate (%)", max_digits=7, decimal_places=4, help_text="A percentage, e.g. 8.25.")
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
        return f"{format_money(self.unit_price, self.currency)} from {self.effective_from:%-d %b %Y}"


def catalog_import_upload_to(instance: CatalogImport, filename: str) -> str:
    return f"catalog-imports/{instance.tenant_id}/{timezone.now():%Y/%m}/{uuid.uuid4().hex}/{filename}"


class CatalogImport(TenantOwnedModel):
    """One catalog import (a CSV/XLSX file or a JSON array): what it did, or how far it has got.

    Small imports run while the caller waits and are recorded here when done; large
    ones are stored (`file`), queued, and processed by a worker that reports progress.
    """

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        PROCESSING = "processing", "Processing"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    file = models.FileField(upload_to=catalog_import_upload_to, max_length=300, blank=True)
    filename = models.CharField(max_length=255, blank=True, help_text="The uploaded file's name.")
    size_bytes = models.PositiveBigIntegerField(default=0)
    partial = models.BooleanField(default=False, help_text="Keep the good rows when some rows are bad.")
    default_currency = models.CharField(max_length=3, blank=True, help_text="For rows that name no currency.")
    effective_from = models.DateTimeField(
        "prices apply from",
        null=True,
        blank=True,
        help_text="The past instant the new prices apply from; empty: the import's time.",
    )
    source = models.CharField(max_length=8, help_text="Where it came from: api or admin.")
    rows = models.PositiveIntegerField(default=0, help_text="Product rows in the file.")
    created_count = models.PositiveIntegerField("created", default=0)
    updated_count = models.PositiveIntegerField("updated", default=0)
    unchanged_count = models.PositiveIntegerField("unchanged", default=0)
    error_count = models.PositiveIntegerField("bad rows", default=0)
    errors = models.JSONField(default=list, blank=True, help_text='[{"row", "message"}], in file order.')
    message = models.TextField(blank=True, help_text="Why the import failed, in a sentence.")
    progress = models.FloatField(default=0.0, help_text="0 to 1.")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", editable=False
    )
    api_key = models.ForeignKey(
        "tenants.ApiKey", null=True, blank=True, on_delete=models.SET_NULL, related_name="+", editable=False
    )
    request_id = models.CharField(max_length=64, blank=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    started_at = models.DateTimeField(null=True, blank=True, editable=False)
    finished_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        verbose_name = "catalog import"
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["tenant", "-created_at"], name="catalogimport_tenant_created"),
            models.Index(fields=["tenant", "status"], name="catalogimport_tenant_status"),
        ]

    def __str__(self) -> str:
        return f"Import {self.pk} ({self.filename or 'JSON rows'}, {self.status})"

    @property
    def is_finished(self) -> bool:
        return self.status in (self.Status.DONE, self.Status.FAILED)

    @property
    def progress_cache_key(self) -> str:
        """Where a running import reports its progress (the row itself only changes when its transaction commits)."""
        return f"catalog:import-progress:{self.pk}"
