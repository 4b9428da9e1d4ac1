"""Stock tasks: thin, id-based, idempotent, each inside its tenant's scope."""

from __future__ import annotations

from celery import shared_task

from core import tenancy
from stock import services
from stores.models import Store


@shared_task(name="stock.check_low")
@tenancy.in_tenant_scope
def check_low(*, tenant_id: int, store_id: int) -> int:
    """After new events, a stock take or a level change: send `stock.low` for the bins that turned low."""
    return len(services.stock_low_check(store=Store.objects.get(pk=store_id)))
