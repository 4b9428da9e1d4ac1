"""Visit tasks: thin, id-based, idempotent, each inside its tenant's scope."""

from __future__ import annotations

from celery import shared_task

from core import tenancy
from stores.models import Store
from visits import services


@shared_task(name="visits.refresh_visits")
@tenancy.in_tenant_scope
def refresh_visits(*, tenant_id: int, store_id: int, sessions: list[str]) -> int:
    store = Store.objects.get(pk=store_id)
    return len(services.visits_refresh(store=store, sessions=sessions))
