"""Reads on the catalog of the tenant in scope."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from django.db.models import QuerySet

from catalog.models import Product, ProductPrice


def product_list() -> QuerySet[Product]:
    return Product.objects.all()


def products_by_sku(*, skus: Iterable[str], active_only: bool = True) -> dict[str, Product]:
    """The products with these SKUs, keyed by SKU (missing ones are absent)."""
    products = Product.objects.filter(sku__in=set(skus))
    if active_only:
        products = products.filter(status=Product.Status.ACTIVE)
    return {product.sku: product for product in products}


def price_at(*, product: Product, currency: str, at: datetime) -> ProductPrice | None:
    """The price of `product` in `currency` in force at instant `at`, or None before the first one."""
    return (
        ProductPrice.objects.filter(product=product, currency=currency, effective_from__lte=at)
        .order_by("-effective_from")
        .first()
    )
