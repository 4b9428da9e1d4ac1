"""Workers die and streams arrive together: no event lost, none doubled, the same counts."""

from __future__ import annotations

import os
import signal
import time
from datetime import timedelta

import pytest
from django.conf import settings
from django.db import connection, transaction
from rest_framework.test import APIClient

from core import tenancy
from ingest import processing, services
from ingest.models import Event, EventStream, StreamChunk
from ingest.tests.conftest import day_of_events, ndjson, upload, wait_for_stream, worker_process
from stores.models import Store

EMBEDDED = settings.CELERY_TASK_ALWAYS_EAGER


def _resume() -> None:
    with tenancy.platform_wide_scope():
        services.streams_resume_stalled(stalled_after=timedelta(0))


def _wait_until(condition, *, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.02)


@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_mid_stream_is_picked_up_again(
    api_a: APIClient, store_a: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    events = day_of_events(store_a, visits=400)
    body = ndjson(events + events[:100])
    if EMBEDDED:
        stream_id = _crash_in_process(api_a, store_a, body, monkeypatch)
    else:
        stream_id = _kill_worker_process(api_a, store_a, body)
    stream = EventStream.unscoped.get(pk=stream_id)
    assert stream.status == "processing"
    assert 0 < stream.chunks_done < stream.chunks_total
    if EMBEDDED:
        _resume()
    else:
        with worker_process():
            _resume()
            wait_for_stream(api_a, stream_id)
    result = api_a.get(f"/api/v1/event-streams/{stream_id}").json()
    assert result["status"] == "done"
    assert (result["lines"], result["accepted"], result["duplicates"], result["rejected"]) == (
        len(events) + 100,
        len(events),
        100,
        0,
    )
    assert Event.unscoped.filter(store=store_a).count() == len(events)
    assert not StreamChunk.unscoped.filter(stream_id=stream_id, done=False).exists()


def _kill_worker_process(api_a: APIClient, store_a: Store, body: bytes) -> int:
    with worker_process(chunk_bytes=2000) as worker:
        stream_id = upload(api_a, store_a.code, body).json()["id"]

        def some_chunks_done() -> bool:
            stream = EventStream.unscoped.get(pk=stream_id)
            return stream.chunks_total > 0 and stream.chunks_done >= 3

        _wait_until(some_chunks_done)
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait()
    return stream_id


def _crash_in_process(api_a: APIClient, store_a: Store, body: bytes, monkeypatch: pytest.MonkeyPatch) -> int:
    """Embedded mode has no worker to kill: a chunk dies half-way through writing instead."""
    monkeypatch.setattr(settings, "INGEST_CHUNK_BYTES", 2000)
    calls = {"n": 0}
    real = processing.process_lines

    def dies_on_the_fourth_chunk(**kwargs):
        calls["n"] += 1
        outcome = real(**kwargs)
        if calls["n"] == 4:
            raise SystemExit("worker killed")
        return outcome

    monkeypatch.setattr(services, "process_lines", dies_on_the_fourth_chunk)
    with pytest.raises(SystemExit):
        upload(api_a, store_a.code, body)
    monkeypatch.setattr(services, "process_lines", real)
    return EventStream.unscoped.get(store=store_a).pk


@pytest.mark.django_db(transaction=True)
def test_streams_of_one_store_processed_at_once_equal_one_after_the_other(
    api_a: APIClient, make_store_with_layout, tenant_a
) -> None:
    together, apart = make_store_with_layout(tenant_a, "S1"), make_store_with_layout(tenant_a, "S2")
    first = day_of_events(together, visits=150, seed=1, prefix="a")
    second = day_of_events(together, visits=150, seed=2, prefix="b") + first[::7]
    bodies = [ndjson(first), ndjson(second)]

    def run(store: Store, *, at_once: bool) -> list[dict]:
        if at_once:
            ids = [upload(api_a, store.code, body).json()["id"] for body in bodies]
            return [wait_for_stream(api_a, i) for i in ids]
        return [wait_for_stream(api_a, upload(api_a, store.code, body).json()["id"]) for body in bodies]

    if EMBEDDED:
        results_together, results_apart = run(together, at_once=True), run(apart, at_once=False)
    else:
        with worker_process(concurrency=2, chunk_bytes=3000):
            results_together = run(together, at_once=True)
            results_apart = run(apart, at_once=False)

    def totals(results: list[dict]) -> tuple[int, int, int, int]:
        return tuple(sum(r[key] for r in results) for key in ("lines", "accepted", "duplicates", "rejected"))

    assert totals(results_together) == totals(results_apart)
    assert totals(results_apart)[2] == len(first[::7])
    ids = {s: set(Event.unscoped.filter(store=s).values_list("event_id", flat=True)) for s in (together, apart)}
    assert ids[together] == ids[apart]
    assert len(ids[together]) == len({e["id"] for e in first + second})


@pytest.mark.skipif(EMBEDDED, reason="PostgreSQL's commit setting")
@pytest.mark.django_db(transaction=True)
def test_only_a_chunk_commits_without_waiting_for_the_disk() -> None:
    """A chunk lost in a crash is processed again; an API answer or a finished stream must not be lost, and the
    workers keep their connections between tasks, so the setting must end with the chunk's transaction."""

    def setting() -> str:
        with connection.cursor() as cursor:
            cursor.execute("SHOW synchronous_commit")
            return str(cursor.fetchone()[0])

    assert setting() == "on"
    with transaction.atomic():
        services._commit_asynchronously()
        assert setting() == "off"
    assert setting() == "on"


@pytest.mark.django_db
def test_a_stream_is_not_finished_while_a_chunk_is_undone(store_a: Store) -> None:
    """A finish sent by the last chunk whose commit a crash then lost must not close the stream without it."""
    stream = EventStream.unscoped.create(
        tenant_id=store_a.tenant_id, store=store_a, status=EventStream.Status.PROCESSING, chunks_total=2, chunks_done=1
    )
    with tenancy.tenant_scope(store_a.tenant_id):
        services.stream_finish(stream_id=stream.pk)
    stream.refresh_from_db()
    assert (stream.status, stream.finished_at) == (EventStream.Status.PROCESSING, None)
