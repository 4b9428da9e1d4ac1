"""Reads on the catalog of the tenant in scope."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.core.cache import cache
from django.db import connection
from django.db.models import OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.shortcuts import get_object_or_404
from django.utils import timezone

from catalog import bulk, currencies
from catalog.models import CatalogImport, Product, ProductPrice
from core.versions import version_in_force

EXPORT_CHUNK = 2000


def product_list() -> QuerySet[Product]:
    return Product.objects.all()


def products_by_sku(*, skus: Iterable[str], active_only: bool = True) -> dict[str, Product]:
    """The products with these SKUs, keyed by SKU (missing ones are absent)."""
    products = Product.objects.filter(sku__in=set(skus))
    if active_only:
        products = products.filter(status=Product.Status.ACTIVE)
    return {product.sku: product for product in products}


def price_at(*, product: Product, currency: str, at: datetime) -> ProductPrice | None:
    """The price of `product` in `currency` in force at instant `at` (before the first one, the first one);
    None when the product has no price in that currency."""
    return version_in_force(ProductPrice.objects.filter(product=product, currency=currency), at=at)


def product_search(
    *, sku: str | None = None, q: str | None = None, status: str | None = None, barcode: str | None = None
) -> QuerySet[Product]:
    """Products filtered by exact SKU, a name/SKU fragment, status and barcode (any of the product's GTINs)."""
    products = Product.objects.all()
    if sku:
        products = products.filter(sku=sku)
    if q:
        products = products.filter(Q(name__icontains=q) | Q(sku__icontains=q))
    if status:
        products = products.filter(status=status)
    if barcode:
        if connection.features.supports_json_field_contains:
            products = products.filter(barcodes__contains=[barcode])
        else:  # SQLite: match the quoted code in the JSON text
            products = products.filter(barcodes__icontains=f'"{barcode}"')
    return products.order_by("sku")


def product_get(*, sku: str) -> Product:
    """The product of the tenant in scope with this SKU; 404 for a missing one or another tenant's."""
    return get_object_or_404(Product.objects.all(), sku=sku)


def current_prices_of(*, products: Iterable[Product], at: datetime | None = None) -> dict[int, list[ProductPrice]]:
    """For each product, the price in force at `at` (default now) in each of its currencies, by currency."""
    ids = [product.pk for product in products]
    found: dict[int, list[ProductPrice]] = {pk: [] for pk in ids}
    for price in bulk.in_force(ProductPrice.objects.filter(product_id__in=ids), at=at or timezone.now()):
        found[price.product_id].append(price)
    return {pk: sorted(prices, key=lambda p: p.currency) for pk, prices in found.items()}


def price_history(*, product: Product) -> QuerySet[ProductPrice]:
    """Every price version of a product, by currency, newest first."""
    return ProductPrice.objects.filter(product=product).order_by("currency", "-effective_from")


def with_current_price(products: QuerySet[Product], *, at: datetime | None = None) -> QuerySet[Product]:
    """Annotate `current_unit_price` and `current_currency`: the most recently effective price in force now
    (for a product whose prices all start later, its first one)."""
    versions = ProductPrice.objects.filter(product=OuterRef("pk"))
    latest = versions.filter(effective_from__lte=at or timezone.now()).order_by("-effective_from", "-id")
    first = versions.order_by("effective_from", "id")
    return products.annotate(
        current_unit_price=Coalesce(
            Subquery(latest.values("unit_price")[:1]), Subquery(first.values("unit_price")[:1])
        ),
        current_currency=Coalesce(Subquery(latest.values("currency")[:1]), Subquery(first.values("currency")[:1])),
    )


def _plain(number: Decimal) -> str:
    text = format(number, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def catalog_export_rows(*, at: datetime | None = None) -> Iterator[dict[str, Any]]:
    """The catalog as import rows (same columns), one per product, with its current price.

    A product priced in several currencies is exported with its most recently set one.
    A product with no price yet has an empty price (and would be refused on re-import).
    """
    at = at or timezone.now()
    last_sku = ""
    while True:
        chunk = list(Product.objects.filter(sku__gt=last_sku).order_by("sku")[:EXPORT_CHUNK])
        if not chunk:
            return
        last_sku = chunk[-1].sku
        prices = current_prices_of(products=chunk, at=at)
        for product in chunk:
            current = max(prices.get(product.pk, []), key=lambda p: (p.effective_from, p.pk), default=None)
            yield {
                "sku": product.sku,
                "name": product.name,
                "price": str(currencies.from_minor(current.unit_price, current.currency)) if current else "",
                "currency": current.currency if current else "",
                "tax_rate": _plain(current.tax_rate) if current else "",
                "weight_g": _plain(product.unit_weight_g),
                "barcode": "|".join(product.barcodes),
                "weight_tolerance_g": _plain(product.weight_tolerance_g),
                "image_url": product.image_url,
                "status": product.status,
                "min_age": str(product.min_age or ""),
            }


def catalog_import_list() -> QuerySet[CatalogImport]:
    return CatalogImport.objects.all()


def catalog_import_get(*, import_id: int) -> CatalogImport:
    """An import of the tenant in scope; 404 for a missing one or another tenant's."""
    return get_object_or_404(CatalogImport.objects.select_related("created_by"), pk=import_id)


def catalog_import_progress(*, record: CatalogImport) -> float:
    """How far an import has got, 0 to 1 (a running import reports through the cache)."""
    if record.is_finished:
        return 1.0
    if record.status == CatalogImport.Status.QUEUED:
        return 0.0
    cached = cache.get(record.progress_cache_key)
    return max(record.progress, float(cached or 0.0))
