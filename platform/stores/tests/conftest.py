from __future__ import annotations

import pytest

from stores import services
from stores.models import Store
from stores.sample import sample_layout
from stores.sample_store import SAMPLE_SKUS, sample_products_add
from tenants.audit import Actor
from tenants.models import Tenant

SKUS = SAMPLE_SKUS


def _store(tenant: Tenant, *, name: str, timezone: str, currency: str) -> Store:
    """Store S1 of `tenant`, registered through the service, with the sample catalog and no layout yet."""
    sample_products_add(tenant=tenant)
    return services.store_create(
        actor=Actor.system(), tenant=tenant, code="S1", name=name, timezone=timezone, currency=currency
    )


@pytest.fixture
def store_a(tenant_a: Tenant) -> Store:
    return _store(tenant_a, name="Main Street", timezone="America/New_York", currency="USD")


@pytest.fixture
def store_b(tenant_b: Tenant) -> Store:
    return _store(tenant_b, name="Bravo High Street", timezone="Europe/London", currency="GBP")


@pytest.fixture
def layout_document() -> dict:
    return sample_layout(skus=SKUS)
