"""Uploads through the API to a real worker: every line accounted for, idempotent, isolated."""

from __future__ import annotations

import gzip
import random
from collections import Counter
from datetime import datetime

import pytest
from django.test import override_settings
from rest_framework.test import APIClient

from core.entry_tokens import entry_token_hash
from ingest.models import Event, EventStream, Rejection
from ingest.tests.conftest import day_of_events, eventually, ndjson, stream_totals, upload, wait_for_stream
from stores.models import Device, Store
from visits.models import Visit

pytestmark = pytest.mark.usefixtures("celery_worker")


def _process(client: APIClient, store: Store, body: bytes, **kwargs) -> dict:
    response = upload(client, store.code, body, **kwargs)
    assert response.status_code == 202, response.content
    assert set(response.json()) == {"id", "status", "url"}
    return wait_for_stream(client, response.json()["id"])


def test_a_day_of_events_is_accepted_and_handed_to_visits(api_a: APIClient, store_a: Store) -> None:
    events = day_of_events(store_a, visits=20)
    result = _process(api_a, store_a, ndjson(events))
    assert result["status"] == "done", result
    assert result["lines"] == result["accepted"] == len(events)
    assert (result["duplicates"], result["rejected"], result["progress"]) == (0, 0, 1.0)
    assert Event.unscoped.filter(store=store_a).count() == len(events)
    visits = Visit.unscoped.filter(store=store_a)
    eventually(lambda: visits.filter(exited_at__isnull=False).exclude(status__in=["open", "settling"]).count() == 20)
    first = visits.get(session="v-1-0")
    assert first.entered_at is not None
    assert first.exited_at > first.entered_at
    # The visit keeps the hash of the token its session.started carried, never the token (issue 16, finding 13).
    started = next(e for e in events if e["type"] == "session.started" and e["session"] == "v-1-0")
    assert first.shopper_token_hash == entry_token_hash(started["shopper"])


def test_duplicates_inside_one_upload_and_across_uploads(api_a: APIClient, store_a: Store) -> None:
    events = day_of_events(store_a, visits=10)
    doubled = events + events[:25]
    first = _process(api_a, store_a, ndjson(doubled))
    assert (first["lines"], first["accepted"], first["duplicates"], first["rejected"]) == (
        len(doubled),
        len(events),
        25,
        0,
    )
    again = _process(api_a, store_a, ndjson(events))
    assert (again["accepted"], again["duplicates"]) == (0, len(events))
    assert Event.unscoped.filter(store=store_a).count() == len(events)


def test_out_of_order_and_late_events(api_a: APIClient, store_a: Store) -> None:
    events = day_of_events(store_a, visits=12)
    ends = [e for e in events if e["type"] == "session.ended"]
    early = [e for e in events if e["type"] != "session.ended"]
    random.Random(3).shuffle(early)
    first = _process(api_a, store_a, ndjson(early))
    assert first["accepted"] == len(early)
    eventually(lambda: Visit.unscoped.filter(store=store_a, status="open").count() == 12)
    late = _process(api_a, store_a, ndjson(ends))
    assert late["accepted"] == len(ends)
    eventually(
        lambda: Visit.unscoped.filter(store=store_a, exited_at__isnull=False).exclude(status="open").count() == 12
    )


def test_escapes_whitespace_and_fine_timestamps_are_stored_as_sent(api_a: APIClient, store_a: Store) -> None:
    """Rows go to COPY unescaped when nothing needs escaping: the lines that do need it arrive intact."""
    started = next(e for e in day_of_events(store_a, visits=1) if e["type"] == "session.started")
    odd_id = 'tab\there\\back"quote'
    escaped = {**started, "id": odd_id, "session": "s\n1\r", "note": "\\N"}
    spaced = (
        b'{"id":"ws",\t"type":"session.started",\r"ts":"' + started["ts"].encode() + b'","session":"ws-1",'
        b'"shopper":"tok_1","gate":"' + started["gate"].encode() + b'"}'
    )
    fine = {**started, "id": "fine", "session": "fine-1", "ts": started["ts"][:19] + ".123456789Z"}
    result = _process(api_a, store_a, ndjson([escaped, spaced, fine]))
    assert (result["lines"], result["accepted"], result["rejected"]) == (3, 3, 0), result
    stored = {event.event_id: event for event in Event.unscoped.filter(store=store_a)}
    assert stored[odd_id].session == "s\n1\r"
    assert stored[odd_id].payload == {**escaped, "shopper": entry_token_hash(escaped["shopper"])}
    assert stored["ws"].payload["shopper"] == entry_token_hash("tok_1")
    assert stored["fine"].ts.microsecond == 123456


def test_times_finer_than_microseconds_are_cut_when_no_line_needs_escaping(api_a: APIClient, store_a: Store) -> None:
    """The rows of a chunk without escapes are written in one pass: its fine times still go as read."""
    started = next(e for e in day_of_events(store_a, visits=1) if e["type"] == "session.started")
    second = started["ts"][:19]
    times = {
        "nanos-utc": second + ".123456789Z",
        "nanos-offset": second + ".987654321+01:00",
        "micros-offset": second + ".654321+01:00",
        "millis-utc": second + ".250Z",
    }
    events = [{**started, "id": name, "session": f"s-{name}", "ts": ts} for name, ts in times.items()]
    result = _process(api_a, store_a, ndjson(events))
    assert (result["lines"], result["accepted"], result["rejected"]) == (4, 4, 0), result
    stored = {event.event_id: event.ts for event in Event.unscoped.filter(store=store_a)}
    sent = {
        name: datetime.fromisoformat(ts[:26] + ts[29:] if name.startswith("nanos") else ts)
        for name, ts in times.items()
    }
    assert stored == sent
    assert stored["nanos-utc"].microsecond == 123456 and stored["nanos-offset"].microsecond == 987654


def test_every_malformed_kind_is_rejected_with_its_line_and_the_rest_accepted(api_a: APIClient, store_a: Store) -> None:
    good = day_of_events(store_a, visits=3)
    started = next(e for e in good if e["type"] == "session.started")
    picked = next(e for e in good if e["type"] == "item.picked")
    bad = [
        b'{"id": "x1", "type": "item.picked", ',
        {
            "id": "x2",
            "type": "item.picked",
            "ts": picked["ts"],
            "bin": picked["bin"],
            "device": picked["device"],
            "confidence": 0.9,
        },
        {**picked, "id": "x3", "confidence": "very"},
        {**picked, "id": "x4", "type": "item.teleported"},
        {**picked, "id": "x5", "bin": "NO-SUCH-BIN"},
        {**picked, "id": "x6", "device": "CAM-99"},
        {**picked, "id": "x7", "session": "never-started"},
        {**started, "id": "x8", "session": "v-future", "ts": "2099-01-01T00:00:00Z"},
        b"just some text",
    ]
    lines = good[:5] + bad + good[5:]
    result = _process(api_a, store_a, ndjson(lines) + b"\n\n")
    assert result["status"] == "done"
    assert (result["lines"], result["accepted"], result["rejected"]) == (len(lines), len(good), len(bad))
    rejections = api_a.get(f"/api/v1/event-streams/{result['id']}/rejections").json()
    assert rejections["count"] == len(bad)
    by_line = {r["line"]: r for r in rejections["results"]}
    assert sorted(by_line) == list(range(6, 6 + len(bad)))
    assert by_line[6]["reason"].startswith("not valid JSON")
    assert by_line[7]["reason"] == "item.picked needs field 'session'"
    assert by_line[7]["event_id"] == "x2"
    assert "'confidence' must be a number" in by_line[8]["reason"]
    assert "unknown event type 'item.teleported'" in by_line[9]["reason"]
    assert "bin 'NO-SUCH-BIN' is not in the layout" in by_line[10]["reason"]
    assert "device 'CAM-99' is not in the layout" in by_line[11]["reason"]
    assert "unknown session 'never-started'" in by_line[12]["reason"]
    assert "more than 24 h in the future" in by_line[13]["reason"]
    assert by_line[14]["reason"].startswith("not valid JSON")
    assert not Event.unscoped.filter(event_id__startswith="x").exists()


def test_gzip_upload(api_a: APIClient, store_a: Store) -> None:
    events = day_of_events(store_a, visits=8)
    result = _process(api_a, store_a, ndjson(events), gz=True)
    assert (result["status"], result["accepted"]) == ("done", len(events))


def test_a_damaged_gzip_fails_clearly_after_accounting_for_what_it_read(api_a: APIClient, store_a: Store) -> None:
    events = day_of_events(store_a, visits=30)
    whole = gzip.compress(ndjson(events))
    for damaged in (whole[: len(whole) // 2], whole[: len(whole) // 2] + b"\x00garbage" * 50):
        file_result = upload(api_a, store_a.code, damaged, name="events.ndjson.gz")
        result = wait_for_stream(api_a, file_result.json()["id"])
        assert result["status"] == "failed"
        assert "the gzip file is" in result["failure_reason"]
        assert 0 < result["lines"] < len(events)
        assert result["lines"] == result["accepted"] + result["duplicates"] + result["rejected"]


def test_binary_and_empty_files(api_a: APIClient, store_a: Store) -> None:
    binary = _process(api_a, store_a, bytes(range(256)) * 40)
    assert binary["status"] == "failed"
    assert "binary data" in binary["failure_reason"]
    assert binary["lines"] == 0
    empty = _process(api_a, store_a, b"")
    assert (empty["status"], empty["lines"]) == ("done", 0)


def test_an_upload_over_the_limit_is_413_before_it_is_stored(api_a: APIClient, store_a: Store) -> None:
    with override_settings(INGEST_MAX_UPLOAD_BYTES=1000):
        response = upload(api_a, store_a.code, b'{"id": "a"}\n' * 200)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"
    assert not EventStream.unscoped.exists()


def test_missing_file_is_400(api_a: APIClient, store_a: Store) -> None:
    response = api_a.post(f"/api/v1/stores/{store_a.code}/event-streams", {"other": "x"}, format="multipart")
    assert response.status_code == 400
    assert "file" in response.json()["error"]["details"]
    assert not EventStream.unscoped.exists()


def test_another_tenants_store_and_stream_are_404(
    api_a: APIClient, api_b: APIClient, store_a: Store, store_b: Store
) -> None:
    theirs = _process(api_b, store_b, ndjson(day_of_events(store_b, visits=2)))
    for path in (f"/api/v1/event-streams/{theirs['id']}", f"/api/v1/event-streams/{theirs['id']}/rejections"):
        assert api_a.get(path).status_code == 404
    assert upload(api_a, "NOPE", b"{}\n").status_code == 404
    assert api_a.post("/api/v1/stores/NOPE/events", [], format="json").status_code == 404
    listed = api_a.get(f"/api/v1/stores/{store_a.code}/event-streams").json()
    assert listed["count"] == 0


def test_device_status_events_update_device_health(api_a: APIClient, store_a: Store) -> None:
    events = day_of_events(store_a, visits=4)
    last = events[-1]["ts"]
    events += [
        {"id": "d1", "type": "device.status", "ts": last, "device": "CAM-03", "status": "degraded"},
        {"id": "d2", "type": "device.status", "ts": "2026-03-02T07:00:00Z", "device": "CAM-04", "status": "offline"},
        {"id": "d3", "type": "device.status", "ts": "2026-03-02T07:30:00Z", "device": "CAM-04", "status": "online"},
    ]
    _process(api_a, store_a, ndjson(events))
    cameras = {d.code: d for d in Device.unscoped.filter(store=store_a, kind="camera")}
    assert cameras["CAM-03"].status == "degraded"
    assert cameras["CAM-04"].status == "online"
    gate = Device.unscoped.get(store=store_a, code="GATE-IN")
    assert gate.last_seen_at is not None
    assert gate.status == "unknown"


def test_the_line_accounting_invariant_holds_for_any_mixture(api_a: APIClient, store_a: Store) -> None:
    events = day_of_events(store_a, visits=15)
    rng = random.Random(11)
    mixture: list = []
    for event in events:
        roll = rng.random()
        if roll < 0.1:
            mixture.append(b"{broken")
        elif roll < 0.2:
            mixture += [event, event]
        else:
            mixture.append(event)
    rng.shuffle(mixture)
    result = _process(api_a, store_a, ndjson(mixture))
    assert result["lines"] == len(mixture)
    assert result["lines"] == result["accepted"] + result["duplicates"] + result["rejected"]
    assert result["rejected"] == Rejection.unscoped.filter(stream_id=result["id"]).count()
    assert result["accepted"] == Event.unscoped.filter(stream_id=result["id"]).count()
    valid_ids = Counter(e["id"] for e in mixture if isinstance(e, dict))
    assert result["accepted"] + result["duplicates"] == sum(valid_ids.values()) - _unknown_session_lines(result)
    assert stream_totals(result["id"])[0] == len(mixture)


def _unknown_session_lines(result: dict) -> int:
    return Rejection.unscoped.filter(stream_id=result["id"], reason__startswith="unknown session").count()


def test_rejections_keep_the_start_of_the_line(api_a: APIClient, store_a: Store) -> None:
    result = _process(api_a, store_a, b'{"id": "q", "type": "nope"' + b"x" * 2000 + b"\n")
    rejection = Rejection.unscoped.get(stream_id=result["id"])
    assert rejection.raw.startswith('{"id": "q"')
    assert len(rejection.raw) == 500
