"""Payments test helpers: visits at each step, and Stripe's own records."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import requests
from django.conf import settings

from billing.payments import holds, movements
from core import tenancy
from core.entry_tokens import entry_token_hash
from stores.models import Store
from visits import settling
from visits.models import Visit
from visits.tests.support import cart_line

ENTERED = datetime(2026, 3, 2, 9, tzinfo=UTC)
HOLD = 5000


def open_visit(store: Store, token: str, session: str = "V1") -> Visit:
    return Visit.unscoped.create(
        tenant=store.tenant,
        store=store,
        session=session,
        shopper_token_hash=entry_token_hash(token),
        status=Visit.Status.OPEN,
        entered_at=ENTERED,
        currency=store.currency,
    )


def preauthorise(visit: Visit) -> Any:
    with tenancy.tenant_scope(visit.tenant_id):
        return holds.visit_preauthorise(visit_id=visit.pk)


def decide_cart(visit: Visit, lines: list[tuple[str, int, int]]) -> Visit:
    """Give the visit a final cart of (sku, qty, unit price) lines, no tax, and instruct its first charge."""
    with tenancy.tenant_scope(visit.tenant_id):
        for sku, qty, price in lines:
            cart_line(visit, sku, qty, price)
        visit.subtotal = visit.total = sum(qty * price for _, qty, price in lines)
        visit.exited_at = visit.settled_at = ENTERED
        visit.cart_version += 1
        settling.instruct_first_charge(visit)
        visit.save(update_fields=[*settling.CART_FIELDS, "exited_at"])
    return visit


def settle_payment(visit: Visit, **options: Any) -> Visit:
    with tenancy.tenant_scope(visit.tenant_id):
        return movements.visit_settle_payment(visit_id=visit.pk, **options)


def stripe_records(kind: str) -> list[dict[str, Any]]:
    """What Stripe (localstripe) itself holds: payment_intents, charges, refunds."""
    answer = requests.get(
        f"{settings.STRIPE_API_BASE}/v1/{kind}", params={"limit": 100}, auth=(settings.STRIPE_SECRET_KEY, ""), timeout=5
    )
    answer.raise_for_status()
    return list(answer.json()["data"])


def intents_of(visit: Visit) -> list[dict[str, Any]]:
    prefix = f"oa-{visit.tenant_id}-{visit.pk}-"
    return [
        i for i in stripe_records("payment_intents") if i["metadata"].get("openaisle_attempt", "").startswith(prefix)
    ]
