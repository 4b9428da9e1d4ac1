"""Hostile and careless input at ingest's doors: each bad line is refused on its own, with a reason, and the rest of
its chunk, its stream and its store go on."""

from __future__ import annotations

import orjson
import pytest
from rest_framework.test import APIClient

from ingest.models import Event
from ingest.tests.conftest import day_of_events, ndjson, upload, wait_for_stream
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
    assert response.json() == {
        "accepted": len(events),
        "duplicates": 0,
        "rejected": [{"index": 1, "event_id": "deep-push", "reason": TOO_DEEP}],
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
