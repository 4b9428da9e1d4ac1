"""Hostile and careless input at ingest's doors: each bad line is refused on its own, with a reason, and the rest of
its chunk, its stream and its store go on."""

from __future__ import annotations

import gzip
import os
from datetime import timedelta
from typing import Any

import orjson
import pytest
from django.core.files.storage import default_storage
from django.utils import timezone
from rest_framework.test import APIClient

from core import tenancy
from ingest import services
from ingest.models import Event, EventStream, Rejection, StreamChunk
from ingest.tests.conftest import day_of_events, eventually, ndjson, stored_names, upload, wait_for_stream
from ingest.validation import MAX_EVENT_BYTES, TOO_DEEP, TOO_LONG
from stores.models import Store

pytestmark = pytest.mark.usefixtures("celery_worker")


def _nested_objects(depth: int) -> bytes:
    return b'{"a":' * depth + b"1" + b"}" * depth


def _with_extra(event: dict, *, event_id: str, extra: bytes) -> bytes:
    """The event as a line, with an extra field written as given (too deep for orjson to write it)."""
    return orjson.dumps({**event, "id": event_id})[:-1] + b',"extra":' + extra + b"}"


def test_a_line_nested_a_thousand_deep_is_refused_and_the_rest_of_its_chunk_is_stored(
    api_a: APIClient, store_a: Store
) -> None:
    events = day_of_events(store_a, visits=6)
    picked = next(e for e in events if e["type"] == "item.picked")
    hostile = [
        _with_extra(picked, event_id="deep-1000", extra=_nested_objects(1000)),  # the report's 6 KB line
        _with_extra(picked, event_id="deep-5000", extra=_nested_objects(5000)),  # beyond orjson's own limit
        _with_extra(picked, event_id="long", extra=orjson.dumps("x" * MAX_EVENT_BYTES)),
        b"x" * (3 * MAX_EVENT_BYTES),  # no JSON, no line end for 192 KB
    ]
    body = ndjson(events[:10] + hostile + events[10:])

    result = wait_for_stream(api_a, upload(api_a, store_a.code, body).json()["id"])

    assert result["status"] == "done"
    assert (result["lines"], result["accepted"], result["duplicates"], result["rejected"]) == (
        len(events) + 4,
        len(events),
        0,
        4,
    )
    assert Event.unscoped.filter(store=store_a).count() == len(events)
    rejections = api_a.get(f"/api/v1/event-streams/{result['id']}/rejections").json()["results"]
    assert [(r["line"], r["event_id"], r["reason"]) for r in rejections] == [
        (11, "deep-1000", TOO_DEEP),
        (12, "", TOO_DEEP),
        (13, "", TOO_LONG),
        (14, "", TOO_LONG),
    ]


def test_a_pushed_event_nested_too_deep_is_refused_by_index_and_the_others_are_kept(
    api_a: APIClient, store_a: Store
) -> None:
    events = day_of_events(store_a, visits=2)
    deep: dict = {"a": 1}
    for _ in range(40):
        deep = {"a": deep}
    batch = [events[0], {**events[1], "id": "deep-push", "extra": deep}, *events[1:]]

    response = api_a.post(f"/api/v1/stores/{store_a.code}/events", batch, format="json")

    assert response.status_code == 202
    assert response.json() | {"stream": None, "url": None} == {
        "accepted": len(events),
        "duplicates": 0,
        "rejected": [{"index": 1, "event_id": "deep-push", "reason": TOO_DEEP}],
        "stream": None,
        "url": None,
    }


@pytest.mark.parametrize(
    "body",
    [b"[" * 600 + b"]" * 600, b"[" + _nested_objects(1000) + b"]", b"[" * 5000 + b"]" * 5000],
    ids=["arrays-600", "objects-1000", "arrays-5000"],
)
def test_a_push_nested_beyond_what_a_request_may_carry_is_refused_whole_with_a_reason(
    api_a: APIClient, store_a: Store, body: bytes
) -> None:
    response = api_a.generic("POST", f"/api/v1/stores/{store_a.code}/events", body, content_type="application/json")

    assert response.status_code == 400
    assert response.json()["error"]["message"] == "The JSON body nests arrays and objects more than 64 levels deep."
    assert not Event.unscoped.filter(store=store_a).exists()


def test_every_api_json_body_is_bounded_in_depth(api_a: APIClient) -> None:
    response = api_a.generic("POST", "/api/v1/stores", b'{"code":' + _nested_objects(300) + b"}", "application/json")
    assert response.status_code == 400
    assert "more than 64 levels deep" in response.json()["error"]["message"]


@pytest.fixture
def media(settings: Any, tmp_path: Any) -> Any:
    """Storage of this test's own on the local disk (the bucket of a run with S3 is listed as it is)."""
    settings.MEDIA_ROOT = str(tmp_path)
    return settings


def _stored_files(stream_id: int) -> list[str]:
    """The stream's files in storage (uploads are kept under event-streams/<tenant>/<day>/stream-<id>.*)."""
    return [name for name in stored_names("event-streams") if os.path.basename(name).startswith(f"stream-{stream_id}.")]


def test_a_gzip_bomb_fails_its_stream_at_once_and_leaves_no_file(api_a: APIClient, store_a: Store, media: Any) -> None:
    media.INGEST_GZIP_RATIO_AFTER_BYTES = 1 << 20  # the check the default makes after 16 MiB, sooner
    bomb = gzip.compress(b"\n" * (256 << 20), compresslevel=9)  # 256 MiB inside 255 kB
    stream_id = upload(api_a, store_a.code, bomb, name="events.ndjson.gz").json()["id"]

    result = wait_for_stream(api_a, stream_id)

    assert result["status"] == "failed"
    assert "refused as a decompression bomb" in result["failure_reason"]
    assert (result["lines"], result["accepted"], result["rejected"]) == (0, 0, 0)
    assert _stored_files(stream_id) == []
    assert EventStream.unscoped.filter(pk=stream_id, file="", plain_file="").exists()


def test_a_gzip_upload_is_never_stored_decompressed_and_only_the_upload_stays(
    api_a: APIClient, store_a: Store, media: Any
) -> None:
    media.INGEST_CHUNK_BYTES = 5_000
    events = day_of_events(store_a, visits=30)
    body = ndjson(events)
    stream_id = upload(api_a, store_a.code, body, gz=True).json()["id"]

    result = wait_for_stream(api_a, stream_id)

    assert (result["status"], result["lines"], result["accepted"]) == ("done", len(events), len(events))
    stream = EventStream.unscoped.get(pk=stream_id)
    assert stream.chunks_total > 3
    assert stream.bytes_total < len(body)  # the chunks read packed members, not a decompressed copy
    assert [os.path.basename(name) for name in _stored_files(stream_id)] == [os.path.basename(stream.file.name)]
    assert default_storage.size(_stored_files(stream_id)[0]) == len(gzip.compress(body))


def test_a_cut_gzip_keeps_its_first_lines_then_fails_and_leaves_no_file(
    api_a: APIClient, store_a: Store, media: Any
) -> None:
    events = day_of_events(store_a, visits=30)
    whole = gzip.compress(ndjson(events))
    stream_id = upload(api_a, store_a.code, whole[: len(whole) // 2], name="events.ndjson.gz").json()["id"]

    result = wait_for_stream(api_a, stream_id)

    assert result["status"] == "failed"
    assert result["failure_reason"].startswith("the gzip file is cut short")
    assert 0 < result["accepted"] < len(events)
    assert _stored_files(stream_id) == []


def test_a_tiny_gzip_of_a_million_garbage_lines_keeps_few_rejections_and_stops_early(
    api_a: APIClient, store_a: Store, media: Any
) -> None:
    garbage = gzip.compress(b"x\n" * 1_000_000, compresslevel=9)
    assert len(garbage) < 4000  # the report's 2.9 kB
    stream_id = upload(api_a, store_a.code, garbage, name="garbage.ndjson.gz").json()["id"]

    result = wait_for_stream(api_a, stream_id, timeout=180)

    assert result["status"] == "failed"
    assert result["failure_reason"].startswith(f"Stopped after {result['lines']:,} lines, {result['lines']:,} of them")
    assert "for example line 1: not valid JSON" in result["failure_reason"]
    assert 10_000 <= result["lines"] < 1_000_000
    assert result["rejected"] == result["lines"]
    assert result["rejections_stored"] == 10_000
    assert Rejection.unscoped.filter(stream_id=stream_id).count() == 10_000
    listed = api_a.get(f"/api/v1/event-streams/{stream_id}/rejections").json()
    assert listed["count"] == 10_000
    assert _stored_files(stream_id) == []


def test_a_stream_stopped_early_whose_finish_was_lost_is_finished_by_the_resume_job(store_a: Store) -> None:
    stream = EventStream.unscoped.create(
        tenant_id=store_a.tenant_id,
        store=store_a,
        status=EventStream.Status.PROCESSING,
        started_at=timezone.now() - timedelta(minutes=10),
        stopped_at=timezone.now() - timedelta(minutes=10),
        failure_reason="Stopped after 10,000 lines, 10,000 of them (100%) refused.",
        chunks_total=2,
        chunks_done=1,
        lines=10_000,
        rejected=10_000,
    )
    for seq, done in enumerate((True, False)):
        StreamChunk.unscoped.create(
            tenant_id=store_a.tenant_id,
            stream=stream,
            seq=seq,
            start_offset=seq,
            end_offset=seq + 1,
            first_line=1,
            done=done,
        )
    with tenancy.platform_wide_scope():
        services.streams_resume_stalled(stalled_after=timedelta(minutes=5))

    eventually(lambda: EventStream.unscoped.get(pk=stream.pk).finished_at is not None)
    stream.refresh_from_db()
    assert (stream.status, stream.lines, stream.rejected) == ("failed", 10_000, 10_000)
    assert StreamChunk.unscoped.filter(stream=stream, done=False).count() == 1  # left unread
