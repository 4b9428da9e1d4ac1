"""Payments fixtures: a store with a hold amount, registering shoppers on localstripe, a shopper's open visit."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from billing.payments import shoppers
from billing.payments.shoppers import RegisteredShopper
from billing.payments.tests.support import HOLD, open_visit
from core import tenancy
from stores.models import Store
from tenants.audit import Actor
from tenants.models import Tenant
from visits.models import Visit


@pytest.fixture
def store_a(tenant_a: Tenant) -> Store:
    return Store.unscoped.create(tenant=tenant_a, code="PAY-1", name="Corner Shop", currency="USD", preauth_amount=HOLD)


@pytest.fixture
def register(localstripe: Any) -> Callable[..., RegisteredShopper]:
    def register(
        tenant: Tenant, ref: str = "cust-1", payment_method: str = "pm_card_visa", email: str = "sam@example.com"
    ) -> RegisteredShopper:
        with tenancy.tenant_scope(tenant.pk):
            return shoppers.shopper_register(
                actor=Actor.system(), tenant=tenant, external_ref=ref, payment_method=payment_method, email=email
            )

    return register


@pytest.fixture
def visit(store_a: Store, register: Callable[..., RegisteredShopper]) -> Visit:
    """A visit to store A, open, of a shopper registered with a card that pays; no hold yet."""
    return open_visit(store_a, register(store_a.tenant).entry_token)
