"""The fast event validator agrees with the repository's JSON Schema of events, and says why an event is refused."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ingest.validation import (
    EVENT_TYPES,
    SCHEMA_PATH,
    LayoutSnapshot,
    StoreReferences,
    check_event,
    check_references,
    parse_line,
    parse_timestamp,
    read_event,
)

SCHEMA = json.loads(SCHEMA_PATH.read_text())
SCHEMA_VALIDATOR = jsonschema.Draft202012Validator(
    SCHEMA, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
)

codes = st.text(alphabet="abcXYZ019-_", min_size=0, max_size=70)
numbers = st.one_of(st.integers(-2, 1001), st.floats(-2, 1001, allow_nan=False), st.just(1.0), st.just(0.5))
anything = st.one_of(st.none(), st.booleans(), numbers, codes, st.lists(st.integers(), max_size=2), st.just({}))
timestamps = st.one_of(
    st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2030, 1, 1)).map(lambda d: d.isoformat() + "Z"),
    st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2030, 1, 1)).map(
        lambda d: d.isoformat() + "+02:00"
    ),
    st.just("2026-11-21 10:00:00"),
    st.just("2026-11-21T10:00:00"),
    st.just("yesterday"),
    st.integers(),
)
alternative = st.fixed_dictionaries({}, optional={"session": st.one_of(codes, anything), "confidence": numbers})


@st.composite
def events(draw: Any) -> dict[str, Any]:
    kind = draw(st.sampled_from([*json.loads(json.dumps(SCHEMA["properties"]["type"]["enum"])), "item.moved", 7]))
    event: dict[str, Any] = {"id": draw(codes), "type": kind, "ts": draw(timestamps)}
    fields = {
        "session": codes,
        "shopper": st.text(max_size=130),
        "gate": codes,
        "bin": codes,
        "device": codes,
        "qty": st.one_of(numbers, st.integers(99_999, 100_001)),
        "confidence": numbers,
        "sku": codes,
        "delta_g": st.one_of(numbers, st.just(-2_000_000)),
        "status": st.sampled_from(["online", "offline", "degraded", "asleep"]),
        "group": codes,
        "result": st.sampled_from(["passed", "failed", "unsure"]),
        "min_age": st.one_of(st.integers(-1, 151), st.just(21.0), st.just(18.5)),
        "store": codes,
        "alternatives": st.lists(alternative, max_size=18),
        "extra": anything,
    }
    for name, strategy in fields.items():
        if draw(st.booleans()):
            event[name] = draw(st.one_of(strategy, anything) if draw(st.integers(0, 9)) == 0 else strategy)
    for name in draw(st.sets(st.sampled_from(["id", "type", "ts"]), max_size=1)):
        del event[name]
    return event


@settings(max_examples=3000, deadline=None)
@given(events())
def test_check_event_accepts_exactly_what_the_json_schema_accepts(event: dict[str, Any]) -> None:
    ours, reason = check_event(event)
    assert (ours is not None) == SCHEMA_VALIDATOR.is_valid(event), (event, reason)
    assert (ours is None) == (reason is not None)


@settings(max_examples=3000, deadline=None)
@given(events())
def test_reading_a_line_decides_as_the_exact_validator_does(event: dict[str, Any]) -> None:
    """`read_event` (msgspec structs, falling back to `check_event`) gives the same event or the same reason."""
    line = json.dumps(event).encode()
    exact, exact_reason = check_event(event)
    read, reason, _value = read_event(line)
    assert read == exact
    if parse_line(line)[1] is None:  # else orjson refused an integer beyond 64 bits: both refuse, in other words
        assert reason == exact_reason


def test_reading_lines_that_are_not_events() -> None:
    assert read_event(b"{broken")[1].startswith("not valid JSON")
    assert read_event(b"[1, 2]") == (None, "an event must be a JSON object", [1, 2])
    assert read_event(b'{"id": "e1", "type": "item.picked"}')[1] == "missing required field 'ts'"
    whole = b'{"id": "e1", "type": "item.picked", "ts": "2026-11-21T10:00:00Z", "qty": 2.0, "session": "v",'
    event, reason, _value = read_event(whole + b' "bin": "B", "device": "C", "confidence": 1}')
    assert reason is None and event is not None and event.bin == "B"  # 2.0 is an integer to the schema


@pytest.mark.parametrize(
    "extra",
    [b'"\xff"', b"[" * 600 + b"]" * 600, b"1e400", b'{"model": "v7"}'],
    ids=["invalid-utf8", "deep", "infinite", "plain"],
)
def test_a_line_with_extra_fields_is_read_by_the_exact_validator(extra: bytes) -> None:
    """The structs skip over fields they do not know without checking them: such lines take the exact path."""
    line = b'{"id":"e1","type":"device.status","ts":"2026-11-21T10:00:00Z","device":"D","status":"online",'
    line += b'"x":' + extra + b"}"
    value, parse_reason = parse_line(line)
    event, reason, _value = read_event(line)
    if parse_reason is not None:
        assert (event, reason) == (None, parse_reason)
    else:
        assert (event, reason) == check_event(value)
        assert event is not None and event.status == "online"


def test_a_bin_on_an_event_type_without_one_is_an_extra_field() -> None:
    for extra in ("NOPE", {"not": "hashable"}, [1]):
        event, reason = check_event({**VALID["session.started"], "bin": extra})
        assert reason is None and event is not None and event.bin is None
        assert check_references(event, references=REFERENCES, now=T0 + timedelta(days=30)) is None


VALID = {
    "session.started": {
        "id": "e1",
        "type": "session.started",
        "ts": "2026-11-21T10:00:00Z",
        "session": "v1",
        "shopper": "tok",
        "gate": "GATE-IN",
    },
    "item.picked": {
        "id": "e2",
        "type": "item.picked",
        "ts": "2026-11-21T10:01:00.123+01:00",
        "session": "v1",
        "bin": "F01-B01",
        "device": "CAM-01",
        "confidence": 0.93,
        "alternatives": [{"session": "v2", "confidence": 0.05}],
    },
    "shelf.weight_changed": {
        "id": "e3",
        "type": "shelf.weight_changed",
        "ts": "2026-11-21T10:01:01Z",
        "bin": "F01-B01",
        "device": "W-F01-B01",
        "delta_g": -330.5,
    },
    "device.status": {
        "id": "e4",
        "type": "device.status",
        "ts": "2026-11-21T10:02:00Z",
        "device": "CAM-01",
        "status": "degraded",
    },
    "session.started (v1.1 group)": {
        "id": "e5",
        "type": "session.started",
        "ts": "2026-11-21T10:00:05Z",
        "session": "v2",
        "shopper": "tok",
        "gate": "GATE-IN",
        "group": "v1",
    },
    "id.checked": {
        "id": "e6",
        "type": "id.checked",
        "ts": "2026-11-21T10:03:00Z",
        "session": "v1",
        "device": "STAFF-01",
        "result": "passed",
        "min_age": 21,
    },
    "shelf.restocked": {
        "id": "e7",
        "type": "shelf.restocked",
        "ts": "2026-11-21T10:04:00Z",
        "bin": "F01-B01",
        "device": "STAFF-01",
        "qty": 12,
    },
}


def test_the_validator_knows_every_type_of_the_schema() -> None:
    assert set(EVENT_TYPES) == set(SCHEMA["properties"]["type"]["enum"])


@pytest.mark.parametrize("kind", list(VALID))
def test_valid_events_of_each_type(kind: str) -> None:
    event, reason = check_event(VALID[kind])
    assert reason is None
    assert event is not None
    assert event.event_id == VALID[kind]["id"]
    assert event.ts.tzinfo is not None
    assert SCHEMA_VALIDATOR.is_valid(VALID[kind])
    assert read_event(json.dumps(VALID[kind]).encode())[0] == event


def test_v1_1_events_carry_what_the_platform_reads() -> None:
    checked, _ = check_event(VALID["id.checked"])
    assert checked is not None and (checked.session, checked.device, checked.bin) == ("v1", "STAFF-01", None)
    restocked, _ = check_event(VALID["shelf.restocked"])
    assert restocked is not None and (restocked.session, restocked.device, restocked.bin) == (
        None,
        "STAFF-01",
        "F01-B01",
    )
    assert check_event({**VALID["id.checked"], "result": "maybe"})[1] == "field 'result' must be one of passed, failed"
    assert "whole number of years" in (check_event({**VALID["id.checked"], "min_age": 0})[1] or "")
    assert "from 1 to 100000" in (check_event({**VALID["shelf.restocked"], "qty": 100_001})[1] or "")
    assert check_event({**VALID["session.started (v1.1 group)"], "group": ""})[1] == (
        "field 'group' must be 1 to 64 characters long"
    )


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda e: e.pop("session"), "item.picked needs field 'session'"),
        (lambda e: e.__setitem__("confidence", "high"), "field 'confidence' must be a number from 0 to 1"),
        (lambda e: e.__setitem__("confidence", 1.5), "field 'confidence' must be a number from 0 to 1"),
        (lambda e: e.__setitem__("qty", 0), "field 'qty' must be a whole number from 1 to 1000"),
        (lambda e: e.__setitem__("type", "item.moved"), "unknown event type 'item.moved'"),
        (lambda e: e.__setitem__("ts", "2026-11-21T10:00:00"), "not an RFC 3339 timestamp with an offset"),
        (lambda e: e.pop("id"), "missing required field 'id'"),
        (lambda e: e.__setitem__("id", "x" * 65), "field 'id' must be 1 to 64 characters long"),
        (lambda e: e.__setitem__("alternatives", [{"session": "v2"}]), "alternatives[0] is missing 'confidence'"),
    ],
)
def test_reasons_a_person_can_act_on(change, reason: str) -> None:
    event = dict(VALID["item.picked"])
    change(event)
    assert reason in (check_event(event)[1] or "")


def test_parse_line_reports_bad_json() -> None:
    assert parse_line(b'{"a": 1}') == ({"a": 1}, None)
    value, reason = parse_line(b'{"a": ')
    assert value is None
    assert reason.startswith("not valid JSON")
    assert parse_line(b"\xff\xfe")[1].startswith("not valid JSON")


def test_timestamps_keep_their_offset() -> None:
    assert parse_timestamp("2026-11-21T10:00:00+01:00") == datetime(2026, 11, 21, 9, 0, tzinfo=UTC)
    assert parse_timestamp("2026-11-21t10:00:00.123456789z") == datetime(2026, 11, 21, 10, 0, 0, 123456, tzinfo=UTC)
    assert parse_timestamp("2026-02-30T10:00:00Z") is None


T0 = datetime(2026, 11, 1, tzinfo=UTC)
REFERENCES = StoreReferences(
    store_code="S1",
    layouts=[
        LayoutSnapshot(
            T0,
            bins={"F01-B01": "W-F01-B01", "F01-B02": None},
            devices={"CAM-01": "camera", "W-F01-B01": "weight_sensor", "GATE-IN": "gate", "STAFF-01": "staff_device"},
        ),
        LayoutSnapshot(
            T0 + timedelta(days=10), bins={"F01-B02": None}, devices={"CAM-01": "camera", "GATE-IN": "gate"}
        ),
    ],
)


def _refs(event: dict[str, Any], now: datetime = T0 + timedelta(days=30)) -> str | None:
    parsed, reason = check_event(event)
    assert parsed is not None, reason
    return check_references(parsed, references=REFERENCES, now=now)


def test_references_are_read_against_the_layout_of_the_events_time() -> None:
    early = {**VALID["item.picked"], "ts": "2026-11-05T10:00:00Z"}
    late = {**VALID["item.picked"], "ts": "2026-11-15T10:00:00Z"}
    assert _refs(early) is None
    assert _refs(late) == "bin 'F01-B01' is not in the layout in force at 2026-11-15T10:00:00Z"
    before = {**VALID["item.picked"], "ts": "2026-10-01T10:00:00Z"}
    assert _refs(before) is None, "a store's first layout covers what came before it"
    no_layout = StoreReferences(store_code="S1", layouts=[])
    parsed, _ = check_event(before)
    assert "has no layout yet" in check_references(parsed, references=no_layout, now=T0)


def test_reference_problems() -> None:
    at = {"ts": "2026-11-05T10:00:00Z"}
    assert "device 'CAM-99' is not in the layout" in _refs({**VALID["item.picked"], **at, "device": "CAM-99"})
    assert "is a gate, but item.picked comes from a camera" in _refs(
        {**VALID["item.picked"], **at, "device": "GATE-IN"}
    )
    wrong_sensor = {**VALID["shelf.weight_changed"], **at, "bin": "F01-B02"}
    assert _refs(wrong_sensor) == "weight sensor 'W-F01-B01' is not the sensor under bin 'F01-B02'"
    assert "for store 'S2'" in _refs({**VALID["session.started"], **at, "store": "S2"})
    future = {**VALID["session.started"], "ts": "2026-12-03T00:00:01Z"}
    assert "more than 24 h in the future" in _refs(future, now=T0 + timedelta(days=31))
    assert _refs({**VALID["session.started"], "ts": "2026-12-01T23:00:00Z"}, now=T0 + timedelta(days=30)) is None


def test_staff_events_come_from_a_staff_device() -> None:
    at = {"ts": "2026-11-05T10:00:00Z"}
    assert _refs({**VALID["id.checked"], **at}) is None
    assert _refs({**VALID["shelf.restocked"], **at}) is None
    assert "is a camera, but id.checked comes from a staff_device" in _refs(
        {**VALID["id.checked"], **at, "device": "CAM-01"}
    )
    assert _refs({**VALID["shelf.restocked"], **at, "bin": "F09"}) == (
        "bin 'F09' is not in the layout in force at 2026-11-05T10:00:00Z"
    )
