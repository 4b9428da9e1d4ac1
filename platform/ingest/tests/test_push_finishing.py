"""Finishing live pushes: one finishing per store for the pushes that wait for it, none lost; a push whose finishing
message never reached a worker is finished all the same, from its stored events."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from core import tenancy
from ingest import services
from ingest.models import EventStream, Rejection
from ingest.tasks import finish_pushes
from ingest.tests.conftest import day_of_events
from stores.models import Device, Store
from stores.selectors import layout_in_force
from stores.services import layout_publish
from tenants.audit import Actor
from visits.models import Visit
from visits.tasks import settle_store

pytestmark = pytest.mark.django_db


def test_a_push_whose_finishing_was_lost_is_sent_again_and_finished_from_its_events(
    store_a: Store, django_capture_on_commit_callbacks: Callable[..., Any]
) -> None:
    events = day_of_events(store_a, visits=1)
    stray = {**next(e for e in events if e["type"] == "item.picked"), "id": "stray-1", "session": "never-started"}
    with tenancy.tenant_scope(store_a.tenant_id), django_capture_on_commit_callbacks() as sent:
        result = services.events_push(actor=Actor.system(), store=store_a, events=[*events, stray])
    assert len(sent) == 1  # the finishing task, sent on commit: dropped here, as a lost message would be
    assert [row["event_id"] for row in result.rejected] == ["stray-1"]  # refused in the answer already
    stream = EventStream.unscoped.get(pk=result.stream.pk)
    assert (stream.status, stream.accepted, stream.finished_at) == ("processing", len(events), None)
    assert not Device.unscoped.filter(store=store_a, last_seen_at__isnull=False).exists()  # the worker's part

    with tenancy.platform_wide_scope(), django_capture_on_commit_callbacks() as resent:
        services.streams_resume_stalled(stalled_after=timedelta(0))
    assert len(resent) == 1
    with tenancy.tenant_scope(store_a.tenant_id):
        services.stream_finish(stream_id=stream.pk)  # what the task sent again does: no summary, the events read

    stream.refresh_from_db()
    assert (stream.status, stream.accepted, stream.rejected) == ("done", len(events), 1)
    assert Device.unscoped.filter(store=store_a, last_seen_at__isnull=False).exists()
    assert list(Rejection.unscoped.filter(stream=stream).values_list("event_id", flat=True)) == ["stray-1"]
    with tenancy.platform_wide_scope(), django_capture_on_commit_callbacks() as after:
        services.streams_resume_stalled(stalled_after=timedelta(0))
    assert after == []  # finished: nothing is sent again


def test_a_layout_published_between_two_pushes_is_the_one_the_second_is_read_against(
    store_a: Store, django_capture_on_commit_callbacks: Callable[..., Any]
) -> None:
    """What the layouts let events refer to is kept between pushes, until a new version is published."""
    at = "2026-03-02T09:00:00Z"
    status = {"id": "d1", "type": "device.status", "ts": at, "device": "STAFF-01", "status": "online"}
    with tenancy.tenant_scope(store_a.tenant_id), django_capture_on_commit_callbacks():
        first = services.events_push(actor=Actor.system(), store=store_a, events=[status])
        layout = layout_in_force(store=store_a)
        assert layout is not None
        document = {
            **layout.document,
            "devices": [*layout.document["devices"], {"code": "STAFF-01", "kind": "staff_device"}],
        }
        layout_publish(
            actor=Actor.system(), store=store_a, document=document, effective_from=datetime(2026, 2, 1, tzinfo=UTC)
        )
        second = services.events_push(actor=Actor.system(), store=store_a, events=[{**status, "id": "d2"}])
    assert "STAFF-01" in first.rejected[0]["reason"] and first.accepted == 0
    assert (second.accepted, second.rejected) == (1, [])


def _push_batches(
    store: Store, events: list[dict[str, Any]], parts: int, *, held: Callable[..., Any]
) -> tuple[list[int], list[Callable[[], Any]]]:
    """Push `events` in `parts` batches, in order; the pushes' streams and what each asks as it commits (`held`)."""
    size = -(-len(events) // parts)
    streams = []
    with tenancy.tenant_scope(store.tenant_id), held() as asked:
        for start in range(0, len(events), size):
            result = services.events_push(actor=Actor.system(), store=store, events=events[start : start + size])
            assert not result.rejected, result.rejected
            streams.append(result.stream.pk)
    return streams, list(asked)


def test_pushes_to_a_store_whose_finishing_is_pending_are_all_finished_by_that_one(
    store_a: Store, django_capture_on_commit_callbacks: Callable[..., Any]
) -> None:
    """The first push sends the store's finishing; those that come before it starts send nothing more, and that one
    finishes them all — devices, rejections, the visits they touched refreshed — each once; every visit settles."""
    held = django_capture_on_commit_callbacks  # what commits ask for is held, not done, unless called
    events = day_of_events(store_a, visits=4)
    streams, asked = _push_batches(store_a, events, parts=5, held=held)
    with held() as sent:
        for commit in asked:
            commit()
    assert len(sent) == 1  # the store's one finishing, for the five pushes

    assert finish_pushes(tenant_id=store_a.tenant_id, store_id=store_a.pk) == 5
    finished = EventStream.unscoped.filter(pk__in=streams)
    assert set(finished.values_list("status", flat=True)) == {"done"}
    assert Device.unscoped.filter(store=store_a, last_seen_at__isnull=False).exists()
    sessions = {e["session"] for e in events if e.get("session")}
    visits = Visit.unscoped.filter(store=store_a)
    assert set(visits.values_list("session", flat=True)) == sessions
    assert set(visits.values_list("status", flat=True)) == {Visit.Status.SETTLING}  # all left: refreshed whole
    assert finish_pushes(tenant_id=store_a.tenant_id, store_id=store_a.pk) == 0  # sent again: nothing twice

    assert settle_store(tenant_id=store_a.tenant_id, store_id=store_a.pk) == len(sessions)
    assert not visits.filter(settled_at__isnull=True).exists()


def test_a_push_that_commits_once_the_finishing_has_started_sends_another(
    store_a: Store, django_capture_on_commit_callbacks: Callable[..., Any]
) -> None:
    """The pending mark is cleared as the finishing starts, before it looks for pushes: one that commits after that
    is either seen by it or finished by the finishing it sends — never left waiting for a finishing already past."""
    held = django_capture_on_commit_callbacks
    events = day_of_events(store_a, visits=2)
    streams, asked = _push_batches(store_a, events, parts=2, held=held)
    with held() as sent:
        asked[0]()  # the first push commits: its store's finishing is sent
    assert len(sent) == 1
    services.pushes_finish_begun(store_id=store_a.pk)  # ... and starts, while the second push commits
    with held() as sent_again:
        asked[1]()
    assert len(sent_again) == 1

    assert finish_pushes(tenant_id=store_a.tenant_id, store_id=store_a.pk) == 2  # the first saw both
    assert finish_pushes(tenant_id=store_a.tenant_id, store_id=store_a.pk) == 0  # the second finds nothing left
    assert set(EventStream.unscoped.filter(pk__in=streams).values_list("status", flat=True)) == {"done"}


def test_pushes_whose_finishing_was_lost_are_finished_by_the_stalled_streams_sweep(
    store_a: Store, django_capture_on_commit_callbacks: Callable[..., Any]
) -> None:
    """The store's finishing lost with its worker: each push is sent its own finishing again (from its events), and
    its visits are refreshed as the finishing's would have been."""
    held = django_capture_on_commit_callbacks
    events = day_of_events(store_a, visits=2)
    streams, asked = _push_batches(store_a, events, parts=3, held=held)
    with held():
        for commit in asked:
            commit()  # the finishing they sent is dropped here, as a lost message would be
    with tenancy.platform_wide_scope(), held() as resent:
        assert services.streams_resume_stalled(stalled_after=timedelta(0)) == 3
    assert len(resent) == 3
    with tenancy.tenant_scope(store_a.tenant_id), held() as handed_on:
        for stream_id in streams:
            services.stream_finish(stream_id=stream_id)
    assert set(EventStream.unscoped.filter(pk__in=streams).values_list("status", flat=True)) == {"done"}
    assert len(handed_on) >= 3  # the refreshes of their visits, on the live queue, and the stock checks
    assert finish_pushes(tenant_id=store_a.tenant_id, store_id=store_a.pk) == 0  # a late finishing: nothing twice
