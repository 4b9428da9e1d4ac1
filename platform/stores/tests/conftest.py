from __future__ import annotations

from decimal import Decimal

import pytest

from catalog.models import Product
from stores import services
from stores.models import Store
from stores.sample import sample_layout
from tenants.audit import Actor
from tenants.models import Tenant

SKUS = [f"SKU-{n:03d}" for n in range(1, 41)]


def add_products(tenant: Tenant, skus: list[str]) -> None:
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
        ]
    )


@pytest.fixture
def store_a(tenant_a: Tenant) -> Store:
    add_products(tenant_a, SKUS)
    return services.store_create(
        actor=Actor.system(),
        tenant=tenant_a,
        code="S1",
        name="Main Street",
        timezone="America/New_York",
        currency="USD",
    )


@pytest.fixture
def store_b(tenant_b: Tenant) -> Store:
    add_products(tenant_b, SKUS)
    return services.store_create(
        actor=Actor.system(),
        tenant=tenant_b,
        code="S1",
        name="Bravo High Street",
        timezone="Europe/London",
        currency="GBP",
    )


@pytest.fixture
def layout_document() -> dict:
    return sample_layout(skus=SKUS)
