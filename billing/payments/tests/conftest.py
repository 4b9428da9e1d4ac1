"""Payments fixtures: a store with a hold amount, and registering shoppers on localstripe."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from billing.payments import shoppers
from billing.payments.shoppers import RegisteredShopper
from billing.payments.tests.support import HOLD
from core import tenancy
from stores.models import Store
from tenants.audit import Actor
from tenants.models import Tenant


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
