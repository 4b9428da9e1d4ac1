"""Visit tasks: thin, id-based, idempotent, each inside its tenant's scope."""

from __future__ import annotations

from celery import shared_task

from core import tenancy
from core.tasks import enqueue_on_commit
from stores.models import Store
from visits import services, settling


@shared_task(name="visits.refresh_visits")
@tenancy.in_tenant_scope
def refresh_visits(*, tenant_id: int, store_id: int, sessions: list[str]) -> int:
    store = Store.objects.get(pk=store_id)
    refreshed = services.visits_refresh(store=store, sessions=sessions)
    enqueue_on_commit("payments.preauthorise", tenant_id=tenant_id, store_id=store_id, sessions=sessions)
    return len(refreshed)


@shared_task(name="visits.settle_store")
@tenancy.in_tenant_scope
def settle_store(*, tenant_id: int, store_id: int) -> int:
    """Settle the store's visits whose window has passed, a batch per transaction (safe to run any number of times)."""
    store = Store.objects.get(pk=store_id)
    settled = 0
    while batch := settling.visits_settle(store=store):
        settled += len(batch)
    return settled


@shared_task(name="visits.settle_due")
def settle_due() -> int:
    """Periodic: send every store with visits waiting to settle to `settle_store`."""
    with tenancy.platform_wide_scope():
        stores = list(
            Store.objects.filter(pk__in=settling.stores_with_visits_settling()).values_list("pk", "tenant_id")
        )
    for store_id, tenant_id in stores:
        settle_store.delay(tenant_id=tenant_id, store_id=store_id)
    return len(stores)
