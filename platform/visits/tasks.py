"""Visit tasks: thin, id-based, idempotent, each inside its tenant's scope."""

from __future__ import annotations

from datetime import datetime

from celery import shared_task
from django.contrib.auth.models import User

from core import tenancy
from core.tasks import enqueue_on_commit
from stores.models import Store
from tenants.audit import Actor
from tenants.models import AuditEntry
from visits import restricted, selectors, services, settling


@shared_task(name="visits.refresh_visits")
@tenancy.in_tenant_scope
def refresh_visits(
    *,
    tenant_id: int,
    store_id: int,
    sessions: list[str],
    then_settle: bool = False,
    since: str | None = None,
    until: str | None = None,
) -> int:
    """Bring these visits up to date with their events, warn of unchecked age-restricted picks, place their holds.
    `then_settle` (a live push's refresh, run by `ingest.finish_pushes` on the live queue, or sent by a push's
    finishing resumed): settle the store's visits due already, once this is done — what an upload sends behind its
    refreshes on the visits queue. `since`/`until` (ISO 8601): the time of
    the events that brought these sessions, which bounds what is read (`visits_refresh`'s `between`)."""
    store = Store.objects.get(pk=store_id)
    between = (datetime.fromisoformat(since), datetime.fromisoformat(until)) if since and until else None
    refreshed = services.visits_refresh(store=store, sessions=sessions, between=between)
    settling.settle_when_due(store=store, sessions=refreshed)
    restricted.restricted_picks_warn(store=store, sessions=sessions)
    enqueue_on_commit("payments.preauthorise", tenant_id=tenant_id, store_id=store_id, sessions=sessions)
    if then_settle:
        enqueue_on_commit("visits.settle_store", tenant_id=tenant_id, store_id=store_id)
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


@shared_task(name="visits.learn_calibration")
@tenancy.in_tenant_scope
def learn_calibration(*, tenant_id: int, store_id: int, after: int, requested_by: int | None = None) -> int | None:
    """Learn the store's calibration once after its calibration number `after` (0: before its first).

    A repeated or late message finds a newer calibration than the one it was sent after, and does nothing.
    `requested_by` is the user who asked in the admin (none: the learning sweep). Returns the new number.
    """
    store = Store.objects.get(pk=store_id)
    latest = selectors.calibration_latest(store=store)
    if (latest.number if latest is not None else 0) != after:
        return None
    user = User.objects.filter(pk=requested_by).first() if requested_by is not None else None
    actor = Actor(source=AuditEntry.Source.ADMIN, user=user) if user is not None else Actor.system()
    return services.calibration_learn(store=store, actor=actor).number


@shared_task(name="visits.learn_due")
def learn_due() -> int:
    """Every quarter of an hour: each store with enough review decisions since its latest calibration (or any, a
    day after it) learns again (`selectors.stores_due_for_learning`)."""
    with tenancy.platform_wide_scope():
        due = selectors.stores_due_for_learning()
    for store_id, tenant_id, after in due:
        learn_calibration.delay(tenant_id=tenant_id, store_id=store_id, after=after)
    return len(due)
