from __future__ import annotations

import pytest

from stores import services
from stores.models import Store
from stores.sample import sample_layout
from stores.sample_store import SAMPLE_SKUS, sample_products_add
from tenants.audit import Actor
from tenants.models import Tenant

SKUS = SAMPLE_SKUS


@pytest.fixture
def store_a(tenant_a: Tenant) -> Store:
    sample_products_add(tenant=tenant_a)
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
    sample_products_add(tenant=tenant_b)
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
