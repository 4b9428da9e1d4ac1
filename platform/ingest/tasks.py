"""Ingest tasks: thin, id-based, idempotent, each inside its tenant's scope."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import psycopg2.errors
from celery import shared_task
from django.conf import settings
from django.db import OperationalError

from core import tenancy
from ingest import services
from stores.services import devices_mark_silent


@shared_task(name="ingest.prepare_stream")
@tenancy.in_tenant_scope
def prepare_stream(*, tenant_id: int, stream_id: int) -> None:
    services.stream_prepare(stream_id=stream_id)


@shared_task(
    name="ingest.process_chunk",
    autoretry_for=(OperationalError, psycopg2.errors.TransactionRollbackError),
    retry_backoff=1,
    max_retries=8,
)
@tenancy.in_tenant_scope
def process_chunk(*, tenant_id: int, chunk_id: int) -> None:
    services.chunk_process(chunk_id=chunk_id)


@shared_task(name="ingest.finish_stream")
@tenancy.in_tenant_scope
def finish_stream(*, tenant_id: int, stream_id: int, summary: dict[str, Any] | None = None) -> None:
    services.stream_finish(stream_id=stream_id, summary=summary)


@shared_task(name="ingest.resume_stalled_streams")
def resume_stalled_streams() -> int:
    with tenancy.platform_wide_scope():
        return services.streams_resume_stalled(stalled_after=timedelta(seconds=settings.INGEST_STALLED_AFTER_SECONDS))


@shared_task(name="ingest.mark_silent_devices")
def mark_silent_devices() -> int:
    with tenancy.platform_wide_scope():
        return devices_mark_silent(silent_after=timedelta(seconds=settings.DEVICE_SILENT_AFTER_SECONDS))
