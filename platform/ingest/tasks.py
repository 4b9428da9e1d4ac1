"""Ingest tasks: thin, id-based, idempotent, each inside its tenant's scope."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import psycopg2.errors
from celery import shared_task
from django.conf import settings
from django.db import OperationalError, transaction
from django.utils import timezone

from core import tenancy
from ingest import partitions, services
from stores.services import devices_mark_silent
from tenants.audit import Actor
from visits.tasks import refresh_visits

# A task whose transaction lost a deadlock or a serialisation conflict (or its connection) runs again, backing off.
RETRIED_ON_CONFLICT: dict[str, Any] = {
    "autoretry_for": (OperationalError, psycopg2.errors.TransactionRollbackError),
    "retry_backoff": 1,
    "max_retries": 8,
}


@shared_task(name="ingest.prepare_stream")
@tenancy.in_tenant_scope
def prepare_stream(*, tenant_id: int, stream_id: int) -> None:
    services.stream_prepare(stream_id=stream_id)


@shared_task(name="ingest.process_chunk", **RETRIED_ON_CONFLICT)
@tenancy.in_tenant_scope
def process_chunk(*, tenant_id: int, chunk_id: int) -> None:
    services.chunk_process(chunk_id=chunk_id)


@shared_task(name="ingest.finish_stream")
@tenancy.in_tenant_scope
def finish_stream(*, tenant_id: int, stream_id: int, summary: dict[str, Any] | None = None) -> None:
    services.stream_finish(stream_id=stream_id, summary=summary)


@shared_task(name="ingest.finish_pushes", **RETRIED_ON_CONFLICT)
@tenancy.in_tenant_scope
def finish_pushes(*, tenant_id: int, store_id: int) -> int:
    """Finish the store's live pushes waiting, and refresh the visits they touched, in one transaction: a push's
    whole hand-off is one task of the live queue (`ingest.services.pushes_finish`), and a worker killed in it
    leaves the pushes unfinished, to be finished again (`streams_resume_stalled`). Returns how many it finished."""
    services.pushes_finish_begun(store_id=store_id)
    with transaction.atomic():
        finished = services.pushes_finish(store_id=store_id)
        for refresh in finished.refreshes:
            refresh_visits(
                tenant_id=tenant_id,
                store_id=store_id,
                sessions=refresh.sessions,
                then_settle=True,
                since=refresh.since,
                until=refresh.until,
            )
    return len(finished.streams)


@shared_task(name="ingest.resume_stalled_streams")
def resume_stalled_streams() -> int:
    with tenancy.platform_wide_scope():
        return services.streams_resume_stalled(stalled_after=timedelta(seconds=settings.INGEST_STALLED_AFTER_SECONDS))


@shared_task(name="ingest.mark_silent_devices")
def mark_silent_devices() -> int:
    with tenancy.platform_wide_scope():
        return devices_mark_silent(silent_after=timedelta(seconds=settings.DEVICE_SILENT_AFTER_SECONDS))


@shared_task(name="ingest.ensure_event_partitions")
def ensure_event_partitions() -> list[str]:
    """Beat, hourly: the events table's day partitions of the coming week, and of any day stranded in the default."""
    today = timezone.now().date()
    created = partitions.partitions_ensure(today=today, ahead_days=settings.EVENT_PARTITIONS_AHEAD_DAYS)
    return [day.isoformat() for day in created]


@shared_task(name="ingest.retire_events")
def retire_events() -> dict[str, Any]:
    """Beat, daily: raw events older than each tenant's retention exported to storage and removed (audited)."""
    with tenancy.platform_wide_scope():
        retired = partitions.events_retire(today=timezone.now().date(), actor=Actor.system())
    return {
        "partitions_dropped": [day.isoformat() for day in retired.partitions_dropped],
        "events_removed": retired.events_removed,
        "files": len(retired.files),
        "keys_released": retired.keys_released,
    }
