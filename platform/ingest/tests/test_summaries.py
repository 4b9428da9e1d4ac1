"""Chunk summaries: what finishing a stream reads instead of its events, equal to what the events say."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
from django.utils import timezone

from core import tenancy
from ingest import services
from ingest.models import Event, EventStream
from ingest.processing import merge_summaries, process_lines, store_references, summarise
from ingest.tests.conftest import day_of_events
from ingest.validation import Event as ValidEvent
from stores.models import Device, Store


def _valid(event_id: str, kind: str, at: str, session: str | None, device: str, **raw: Any) -> ValidEvent:
    ts = datetime.fromisoformat(at).replace(tzinfo=UTC)
    return ValidEvent(event_id, kind, ts, at, session, None, device, None, raw.get("status"))


def test_summaries_add_up_across_chunks() -> None:
    events = [
        _valid("1", "item.picked", "2026-03-02T09:00:05", "A", "CAM-01"),
        _valid("2", "session.started", "2026-03-02T09:00:00", "A", "GATE-IN"),
        _valid("3", "device.status", "2026-03-02T09:00:03", None, "W-1", status="online"),
        _valid("4", "device.status", "2026-03-02T09:00:09", None, "W-1", status="offline"),
        _valid("5", "session.ended", "2026-03-02T09:00:30", "A", "GATE-OUT"),
        _valid("6", "item.picked", "2026-03-02T09:00:01", "B", "CAM-01"),
    ]
    whole = summarise(events)
    assert merge_summaries([summarise(events[:3]), summarise(events[3:]), summarise([])]) == whole
    assert whole["sessions"]["A"][2] == 1 and whole["sessions"]["B"][2] == 0
    assert whole["devices"]["W-1"][2] == "offline"
    assert whole["loose"] == [whole["devices"]["W-1"][1] - 6_000_000, whole["devices"]["W-1"][1]]


def test_the_summaries_of_a_stream_say_what_its_events_say(store_a: Store) -> None:
    events = day_of_events(store_a, visits=6)
    scale = next(e for e in events if e["type"] == "shelf.weight_changed")
    for number, (at, status) in enumerate([("09:10:00", "degraded"), ("09:20:00", "online"), ("08:59:00", "offline")]):
        at_ts = f"{events[0]['ts'][:10]}T{at}Z"
        events.insert(
            5 + number * 7,
            {"id": f"st{number}", "type": "device.status", "ts": at_ts} | {"device": scale["device"], "status": status},
        )
    half = len(events) // 2
    with tenancy.tenant_scope(store_a.tenant_id):
        stream = EventStream.objects.create(tenant_id=store_a.tenant_id, store=store_a)
        references = store_references(store=store_a)
        summaries = []
        # Two chunks, the second sending some of the first's events again (duplicates are not summarised).
        for part in (events[:half], events[half - 10 :]):
            outcome = process_lines(
                stream=stream,
                numbered_lines=((number, orjson.dumps(event)) for number, event in enumerate(part)),
                references=references,
                now=timezone.now(),
            )
            summaries.append(outcome.summary)
        assert sum(len(s["sessions"]) > 0 for s in summaries) == 2
        summary = merge_summaries(summaries)
        assert services._sessions_of(summary) == services._stream_sessions(stream)
        heard, reported = services._device_observations(Event.objects.filter(stream=stream))
        assert reported
        assert services._devices_of(summary, stream=stream, refused=[]) == (heard, reported)


def test_an_event_refused_at_the_finish_is_not_heard_of(store_a: Store) -> None:
    events = day_of_events(store_a, visits=3)
    picked = [e for e in events if e["type"] == "item.picked"]
    camera = picked[-1]["device"]
    last_kept = max(e["ts"] for e in events if e.get("device") == camera)
    ghost = {**picked[-1], "id": "ghost-1", "session": "ghost", "ts": events[-1]["ts"]}
    assert ghost["ts"] > last_kept
    with tenancy.tenant_scope(store_a.tenant_id):
        stream = EventStream.objects.create(tenant_id=store_a.tenant_id, store=store_a)
        outcome = process_lines(
            stream=stream,
            numbered_lines=((number, orjson.dumps(event)) for number, event in enumerate([*events, ghost])),
            references=store_references(store=store_a),
            now=timezone.now(),
        )
        EventStream.objects.filter(pk=stream.pk).update(lines=outcome.lines, accepted=outcome.accepted)
        services.stream_finish(stream_id=stream.pk, summary=outcome.summary)
        stream.refresh_from_db()
        assert (stream.accepted, stream.rejected) == (len(events), 1)
        device = Device.objects.get(store=store_a, code=camera)
        assert device.last_seen_at == datetime.fromisoformat(last_kept.replace("Z", "+00:00"))
