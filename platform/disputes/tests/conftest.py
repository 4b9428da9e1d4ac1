"""Disputes fixtures: a store with a hold, and a visit charged through localstripe an hour ago."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from billing.payments import shoppers
from billing.payments.tests.support import HOLD, decide_cart, open_visit, preauthorise, settle_payment
from core import tenancy
from stores.models import Store
from tenants.audit import Actor
from tenants.models import Tenant
from visits.models import Visit

CART = [("COLA", 2, 199), ("CHIPS", 1, 349), ("WINE", 1, 2400)]


@pytest.fixture
def store_a(tenant_a: Tenant) -> Store:
    return Store.unscoped.create(
        tenant=tenant_a, code="DSP-1", name="Corner Shop", currency="USD", preauth_amount=HOLD, timezone="Europe/Paris"
    )


@pytest.fixture
def charged_visit(localstripe: Any) -> Callable[..., Visit]:
    """A visit of `store` charged for CART (or `lines`), that left `left_ago` ago."""

    def charged(
        store: Store,
        session: str = "V1",
        lines: list[tuple[str, int, int]] | None = None,
        left_ago: timedelta = timedelta(hours=1),
    ) -> Visit:
        with tenancy.tenant_scope(store.tenant_id):
            shopper = shoppers.shopper_register(
                actor=Actor.system(),
                tenant=store.tenant,
                external_ref=f"shopper-{session}",
                payment_method="pm_card_visa",
                email="sam@example.com",
            )
        visit = open_visit(store, shopper.entry_token, session=session)
        preauthorise(visit)
        visit = decide_cart(visit, CART if lines is None else lines)
        Visit.unscoped.filter(pk=visit.pk).update(exited_at=timezone.now() - left_ago)
        visit = settle_payment(visit)
        assert visit.status == (Visit.Status.CHARGED if visit.total else Visit.Status.NO_CHARGE)
        return visit

    return charged
