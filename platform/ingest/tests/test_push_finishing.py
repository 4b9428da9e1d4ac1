"""A push whose finishing message never reached a worker is finished all the same, from its stored events."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from core import tenancy
from ingest import services
from ingest.models import EventStream, Rejection
from ingest.tests.conftest import day_of_events
from stores.models import Device, Store
from stores.selectors import layout_in_force
from stores.services import layout_publish
from tenants.audit import Actor

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
