"""Writes on visits."""

from __future__ import annotations

from collections.abc import Sequence

from django.db import transaction
from django.db.models import Count, Max, Min, Q
from django.db.models.fields.json import KT
from django.utils import timezone

from core.tasks import enqueue_on_commit
from ingest.models import Event
from stores.models import Store
from visits.models import Visit
from visits.settling import visits_settle

REFRESHABLE = (Visit.Status.OPEN, Visit.Status.SETTLING)


@transaction.atomic
def visits_refresh(*, store: Store, sessions: Sequence[str]) -> list[Visit]:
    """Bring the visits of these sessions up to date with their events: entry, exit, shopper, activity.

    Safe to run twice and concurrently: the visit rows are locked in a fixed order and their
    figures are recomputed from the events after the lock, never added to.
    """
    sessions = sorted(set(sessions))
    Visit.objects.bulk_create(
        [Visit(tenant_id=store.tenant_id, store=store, session=session) for session in sessions],
        ignore_conflicts=True,
        batch_size=1000,
    )
    visits = list(Visit.objects.select_for_update().filter(store=store, session__in=sessions).order_by("session"))
    events = Event.objects.filter(store=store, session__in=sessions)
    figures = {
        row["session"]: row
        for row in events.values("session").annotate(
            entered=Min("ts", filter=Q(type="session.started")),
            exited=Max("ts", filter=Q(type="session.ended")),
            last=Max("ts"),
            count=Count("id"),
        )
    }
    shoppers = dict(
        events.filter(type="session.started").order_by("session", "ts").values_list("session", KT("payload__shopper"))
    )
    now = timezone.now()
    reopened = []
    for visit in visits:
        row = figures.get(visit.session)
        if row is None:
            continue
        if visit.settled_at is not None and row["count"] != visit.events_count and not visit.reviews.exists():
            reopened.append(visit.session)
        visit.entered_at, visit.exited_at = row["entered"], row["exited"]
        visit.last_event_at, visit.events_count = row["last"], row["count"]
        visit.shopper_token = shoppers.get(visit.session) or visit.shopper_token
        if visit.status in REFRESHABLE:
            visit.status = Visit.Status.SETTLING if visit.exited_at else Visit.Status.OPEN
        visit.updated_at = now
    Visit.objects.bulk_update(
        visits, ["entered_at", "exited_at", "last_event_at", "events_count", "shopper_token", "status", "updated_at"]
    )
    if reopened:
        visits_settle(store=store, sessions=reopened, now=now)
    enqueue_on_commit("visits.settle_store", tenant_id=store.tenant_id, store_id=store.pk)
    return visits
