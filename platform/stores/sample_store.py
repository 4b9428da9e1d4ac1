"""A store with the sample layout and its products: the one builder the tests, the benchmarks and a fresh
database share (`sample_layout` draws the floor; this writes it for a tenant)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from decimal import Decimal

from catalog.models import Product, ProductPrice
from core import tenancy
from stores import services
from stores.models import Store
from stores.sample import sample_layout
from tenants.audit import Actor
from tenants.models import Tenant

SAMPLE_SKUS = [f"SKU-{n:03d}" for n in range(1, 41)]
SAMPLE_LAYOUT_FROM = datetime(2026, 1, 1, tzinfo=UTC)


def sample_products_add(*, tenant: Tenant, skus: Sequence[str] = SAMPLE_SKUS) -> None:
    """The sample layout's products ("Product SKU-001", 250 g each) for a tenant; those it has already are kept."""
    Product.unscoped.bulk_create(
        [
            Product(
                tenant=tenant,
                sku=sku,
                name=f"Product {sku}",
                unit_weight_g=Decimal("250"),
                weight_tolerance_g=Decimal("12.5"),
            )
            for sku in skus
        ],
        ignore_conflicts=True,
    )


def sample_prices_add(
    *,
    tenant: Tenant,
    unit_price: int | Callable[[str], int],
    tax_rate: Decimal,
    currency: str = "USD",
    effective_from: datetime = SAMPLE_LAYOUT_FROM,
) -> None:
    """A price in `currency` (minor units: one for all, or by SKU) for each of the tenant's products that has none."""
    priced = ProductPrice.unscoped.filter(tenant=tenant, currency=currency).values("product_id")
    ProductPrice.unscoped.bulk_create(
        ProductPrice(
            tenant=tenant,
            product=product,
            currency=currency,
            unit_price=unit_price(product.sku) if callable(unit_price) else unit_price,
            tax_rate=tax_rate,
            effective_from=effective_from,
        )
        for product in Product.unscoped.filter(tenant=tenant).exclude(pk__in=priced)
    )


def sample_store(
    *,
    actor: Actor,
    tenant: Tenant,
    code: str,
    skus: Sequence[str] = SAMPLE_SKUS,
    effective_from: datetime = SAMPLE_LAYOUT_FROM,
    name: str = "",
    timezone: str = "UTC",
    currency: str = "USD",
) -> Store:
    """The tenant's store of this code; made, when it has none, with the sample layout of these products in force
    since `effective_from` (a benchmark run again on the same database finds the store it made before)."""
    found: Store | None = Store.unscoped.filter(tenant=tenant, code=code).first()
    if found is not None:
        return found
    store = services.store_create(
        actor=actor, tenant=tenant, code=code, name=name or f"Store {code}", timezone=timezone, currency=currency
    )
    with tenancy.tenant_scope(tenant.pk):
        services.layout_publish(
            actor=actor, store=store, document=sample_layout(skus=skus), effective_from=effective_from
        )
    return store
