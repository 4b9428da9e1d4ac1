"""Workers die and streams arrive together: no event lost, none doubled, the same counts."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import psycopg2
import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection, transaction
from django.utils import timezone
from rest_framework.test import APIClient

from core import tenancy
from ingest import processing, services
from ingest.models import Event, EventStream, StreamChunk
from ingest.tests.conftest import day_of_events, ndjson, upload, wait_for_stream, worker_process
from stores.models import Store
from tenants.audit import Actor
from visits.models import Visit

EMBEDDED = settings.CELERY_TASK_ALWAYS_EAGER


def _resume() -> None:
    with tenancy.platform_wide_scope():
        services.streams_resume_stalled(stalled_after=timedelta(0))


def _worker_died(
    api: APIClient, store: Store, body: bytes, monkeypatch: pytest.MonkeyPatch, *, while_preparing: bool
) -> EventStream:
    """The stream of the uploaded `body`, whose worker died mid-stream or while preparing it: a worker process
    killed, or in embedded mode the work crashed in this process."""
    if EMBEDDED:
        crash = _crash_preparing_in_process if while_preparing else _crash_in_process
        stream_id = crash(api, store, body, monkeypatch)
    else:
        kill = _kill_worker_preparing if while_preparing else _kill_worker_process
        stream_id = kill(api, store, body)
    return EventStream.unscoped.get(pk=stream_id)


def _resumed_to_the_end(api: APIClient, stream_id: int) -> None:
    """The resume job picks the stream up again, and (with workers) a worker finishes it."""
    if EMBEDDED:
        _resume()
    else:
        with worker_process():
            _resume()
            wait_for_stream(api, stream_id)


def _finished_once(api: APIClient, stream: EventStream, events: list[dict[str, Any]], *, resent: int) -> None:
    """The stream is done: every line read, each event stored once, the `resent` ones counted as duplicates."""
    result = api.get(f"/api/v1/event-streams/{stream.pk}").json()
    counts = (result["status"], result["lines"], result["accepted"], result["duplicates"], result["rejected"])
    assert counts == ("done", len(events) + resent, len(events), resent, 0)
    assert Event.unscoped.filter(store_id=stream.store_id).count() == len(events)


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
    stream = _worker_died(api_a, store_a, ndjson(events + events[:100]), monkeypatch, while_preparing=False)
    assert stream.status == "processing"
    assert 0 < stream.chunks_done < stream.chunks_total
    _resumed_to_the_end(api_a, stream.pk)
    _finished_once(api_a, stream, events, resent=100)
    assert not StreamChunk.unscoped.filter(stream_id=stream.pk, done=False).exists()


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


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("files_on_local_disk")  # the upload is held by a FIFO in its place: a local path
def test_an_upload_whose_worker_was_killed_while_preparing_it_is_prepared_again(
    api_a: APIClient, store_a: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The prepare of a new stream dies with its worker (the broker keeps the message it held for the visibility
    timeout, half an hour): the stream, still queued, is prepared again by the resume job, once."""
    events = day_of_events(store_a, visits=60)
    stream = _worker_died(api_a, store_a, ndjson(events + events[:50]), monkeypatch, while_preparing=True)
    assert (stream.status, stream.chunks_total) == ("queued", 0)
    assert not StreamChunk.unscoped.filter(stream_id=stream.pk).exists()
    with tenancy.platform_wide_scope():  # not stalled yet: left to the message in the broker
        assert services.streams_resume_stalled(stalled_after=timedelta(minutes=5)) == 0
    _resumed_to_the_end(api_a, stream.pk)
    _finished_once(api_a, stream, events, resent=50)
    stream.refresh_from_db()
    assert stream.resent_at is not None
    assert StreamChunk.unscoped.filter(stream_id=stream.pk, done=True).count() == stream.chunks_total > 1


def _kill_worker_preparing(api_a: APIClient, store_a: Store, body: bytes) -> int:
    """A real worker is killed while it prepares the stream: the upload's file is, for that moment, a pipe that
    nothing writes, so the worker waits in it holding the stream's row; the file is put back once it is dead."""
    stream_id = upload(api_a, store_a.code, body).json()["id"]  # no worker yet: the message waits in the broker
    path = EventStream.unscoped.get(pk=stream_id).file.path
    os.replace(path, f"{path}.held")
    os.mkfifo(path)
    with worker_process(chunk_bytes=2000) as worker:
        _wait_until(_held_by_a_worker, timeout=120)
        with tenancy.platform_wide_scope():  # being prepared: left alone, however long it has waited
            assert services.streams_resume_stalled(stalled_after=timedelta(0)) == 0
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait()
    _wait_until(lambda: not _held_by_a_worker())  # the dead worker's transaction rolled back
    os.remove(path)
    os.replace(f"{path}.held", path)
    return stream_id


def _held_by_a_worker() -> bool:
    """A worker's transaction has locked the stream's row (a row lock takes a transaction id) and waits (in the
    file), seen without touching the row."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() "
            "AND state = 'idle in transaction' AND backend_xid IS NOT NULL AND query LIKE %s",
            ['SELECT "ingest_eventstream".%'],
        )
        return bool(cursor.fetchone()[0])


def _crash_preparing_in_process(api_a: APIClient, store_a: Store, body: bytes, monkeypatch: pytest.MonkeyPatch) -> int:
    """Embedded mode has no worker to kill: the prepare dies after reading the file instead."""
    monkeypatch.setattr(settings, "INGEST_CHUNK_BYTES", 2000)
    real = services._chunk_spans

    def dies(stream: EventStream) -> Any:
        real(stream)
        raise SystemExit("worker killed")

    monkeypatch.setattr(services, "_chunk_spans", dies)
    with pytest.raises(SystemExit):
        upload(api_a, store_a.code, body)
    monkeypatch.setattr(services, "_chunk_spans", real)
    return EventStream.unscoped.get(store=store_a).pk


@pytest.mark.django_db
def test_a_prepare_sent_twice_cuts_the_stream_and_stores_its_events_once(
    store_a: Store, monkeypatch: pytest.MonkeyPatch, django_capture_on_commit_callbacks: Callable[..., Any]
) -> None:
    monkeypatch.setattr(settings, "INGEST_CHUNK_BYTES", 2000)
    events = day_of_events(store_a, visits=20)
    file = SimpleUploadedFile("events.ndjson", ndjson(events), content_type="application/x-ndjson")
    with tenancy.tenant_scope(store_a.tenant_id):
        with django_capture_on_commit_callbacks():
            stream = services.stream_upload(actor=Actor.system(), store=store_a, upload=file)
        with django_capture_on_commit_callbacks() as first:
            services.stream_prepare(stream_id=stream.pk)
        with django_capture_on_commit_callbacks() as second:
            services.stream_prepare(stream_id=stream.pk)
        chunks = list(StreamChunk.objects.filter(stream=stream).values_list("pk", flat=True))
        assert len(first) == len(chunks) > 1
        assert second == []
        for chunk_id in chunks + chunks:
            services.chunk_process(chunk_id=chunk_id)
    stream.refresh_from_db()
    assert (stream.chunks_total, stream.chunks_done, stream.lines, stream.accepted, stream.duplicates) == (
        len(chunks),
        len(chunks),
        len(events),
        len(events),
        0,
    )
    assert Event.unscoped.filter(stream=stream).count() == len(events)


@pytest.mark.django_db
def test_a_queued_upload_is_sent_again_once_its_stall_period_has_passed_and_once_per_period(
    store_a: Store, django_capture_on_commit_callbacks: Callable[..., Any]
) -> None:
    def queued(minutes_ago: int) -> EventStream:
        return EventStream.unscoped.create(
            tenant_id=store_a.tenant_id, store=store_a, created_at=timezone.now() - timedelta(minutes=minutes_ago)
        )

    def resume() -> list[Any]:
        with tenancy.platform_wide_scope(), django_capture_on_commit_callbacks() as sent:
            services.streams_resume_stalled(stalled_after=timedelta(minutes=5))
        return sent

    stalled, waiting = queued(10), queued(1)
    assert len(resume()) == 1
    stalled.refresh_from_db()
    waiting.refresh_from_db()
    assert stalled.resent_at is not None and waiting.resent_at is None
    assert resume() == []  # sent moments ago: not again within the period
    EventStream.unscoped.filter(pk=stalled.pk).update(resent_at=timezone.now() - timedelta(minutes=6))
    assert len(resume()) == 1


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(EMBEDDED, reason="a worker process to kill: with a broker only")
def test_a_worker_killed_while_finishing_a_stores_pushes_leaves_them_to_be_finished_again(
    api_a: APIClient, store_a: Store
) -> None:
    """The live worker dies in the store's finishing (held, for that moment, on the store's devices, which this test
    locks): its transaction rolls back whole — no push finished, no visit refreshed — and the resume job finishes
    each push, its visits refreshed once."""
    from config.celery import app

    app.control.purge()
    events = day_of_events(store_a, visits=2)
    half = len(events) // 2
    for batch in (events[:half], events[half:]):  # no worker yet: the store's one finishing waits in the broker
        assert api_a.post(f"/api/v1/stores/{store_a.code}/events", batch, format="json").json()["accepted"] == len(
            batch
        )
    streams = EventStream.unscoped.filter(store=store_a, source=EventStream.Source.PUSH)
    assert streams.count() == 2
    locker = psycopg2.connect(**connection.get_connection_params())
    try:
        with locker.cursor() as cursor:
            cursor.execute("SELECT id FROM stores_device WHERE store_id = %s FOR UPDATE", [store_a.pk])
        with worker_process() as worker:
            _wait_until(lambda: bool(_waiting_on_a_lock()))
            held = _waiting_on_a_lock()
            os.kill(worker.pid, signal.SIGKILL)
            worker.wait()
    finally:
        locker.rollback()
        locker.close()
    _wait_until(lambda: not _backends(held))  # the dead worker's transaction rolled back
    assert set(streams.values_list("status", flat=True)) == {EventStream.Status.PROCESSING}
    assert not Visit.unscoped.filter(store=store_a).exists()

    with worker_process():
        _resume()
        _wait_until(lambda: set(streams.values_list("status", flat=True)) == {EventStream.Status.DONE})
        sessions = {event["session"] for event in events if event.get("session")}
        visits = Visit.unscoped.filter(store=store_a)
        _wait_until(lambda: set(visits.exclude(status=Visit.Status.OPEN).values_list("session", flat=True)) == sessions)
    assert visits.count() == len(sessions)
    assert Event.unscoped.filter(store=store_a).count() == len(events)


def _waiting_on_a_lock() -> list[int]:
    """The backends of this database waiting for a row lock."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() "
            "AND wait_event_type = 'Lock'"
        )
        return [pid for (pid,) in cursor.fetchall()]


def _backends(pids: list[int]) -> list[int]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pid FROM pg_stat_activity WHERE pid = ANY(%s)", [pids])
        return [pid for (pid,) in cursor.fetchall()]
