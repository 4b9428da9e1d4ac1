"""Store events: parsing and validation, as pure functions over plain data.

`check_event` follows the event stream's JSON Schema (`event-stream.schema.json` beside this module,
served at `/api/v1/schema/event-stream.json`; docs/event-stream.md) exactly (a property test
compares it with the jsonschema library on generated events) but runs in a few
microseconds, and says what is wrong in words a store engineer can act on.
`read_event` is what ingestion calls per line: the schema again, as msgspec
structs that parse and validate a line in one pass in C (about a microsecond);
a line they refuse (an invalid one, or one with extra fields) goes through
`parse_line` and `check_event`, which decide and give the reason, so the
structs only ever need to be as strict as the schema.
`check_references` then reads the event against the layout in force at its time.

Every line is bounded before it is read: at most `MAX_EVENT_BYTES` long and `MAX_EVENT_DEPTH` levels of nested
arrays and objects (unknown fields are kept, so without a bound one line could carry anything), refused with a
reason like any other invalid event.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec
import orjson
from msgspec import UNSET, Meta, Struct, UnsetType

from core.bounded_json import nesting_depth

SCHEMA_PATH = Path(__file__).with_name("event-stream.schema.json")

EVENT_TYPES = (
    "session.started",
    "session.ended",
    "item.picked",
    "item.returned",
    "shelf.weight_changed",
    "device.status",
    "id.checked",
    "shelf.restocked",
)
DEVICE_STATUSES = ("online", "offline", "degraded")
ID_CHECK_RESULTS = ("passed", "failed")
BIN_TYPES = ("item.picked", "item.returned", "shelf.weight_changed", "shelf.restocked")
SESSION_TYPES = ("session.started", "session.ended", "item.picked", "item.returned", "id.checked")
FUTURE_TOLERANCE = timedelta(hours=24)
# The events of one visit lie within this of each other (a visit is minutes to hours long): reads of a visit's events
# are bounded by it, so that on PostgreSQL they touch only the day partitions of their time (ingest.partitions).
VISIT_SPAN = timedelta(hours=24)
MAX_EVENT_BYTES = 65_536  # the schema's fields take a few hundred; the rest is room for extra fields
MAX_EVENT_DEPTH = 32  # the schema's deepest is 3 (an event, its alternatives, one alternative)
TOO_LONG = f"the line is longer than {MAX_EVENT_BYTES:,} bytes, the most an event may take"
TOO_DEEP = f"the event nests arrays and objects more than {MAX_EVENT_DEPTH} levels deep, the most it may"
_RFC3339 = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]+)?(?:[Zz]|[+-][0-9]{2}:[0-9]{2})"
)


class Event(Struct, frozen=True):
    """A valid event, with the fields the platform reads pulled out of the raw object.

    `device` is the gate of a session event (every type names one); `bin` only of the types that name one
    (elsewhere a `bin` is an extra field, kept and ignored); `status` only of a device.status.
    """

    event_id: str
    type: str
    ts: datetime
    ts_text: str
    session: str | None
    bin: str | None
    device: str
    store: str | None
    status: str | None = None


def parse_timestamp(value: Any) -> datetime | None:
    """An RFC 3339 timestamp with an offset, or None. Finer than microseconds, the rest is cut off."""
    if not isinstance(value, str) or _RFC3339.fullmatch(value) is None:
        return None
    try:
        return datetime.fromisoformat(value if value[10] == "T" and value[-1] != "z" else value.upper())
    except ValueError:
        return None


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_integer(value: Any) -> bool:
    return (isinstance(value, int) and not isinstance(value, bool)) or (isinstance(value, float) and value.is_integer())


def _string(event: Mapping[str, Any], name: str, *, max_length: int = 64) -> str | None:
    """The reason a string field is bad, or None when it is fine."""
    value = event[name]
    if not isinstance(value, str):
        return f"field '{name}' must be a string"
    if not 1 <= len(value) <= max_length:
        return f"field '{name}' must be 1 to {max_length} characters long"
    return None


def _confidence(value: Any, name: str) -> str | None:
    if not _is_number(value) or not 0 <= value <= 1:
        return f"field '{name}' must be a number from 0 to 1"
    return None


def _check_item(event: Mapping[str, Any]) -> str | None:
    for name in ("session", "bin", "device"):
        if reason := _string(event, name):
            return reason
    if reason := _confidence(event["confidence"], "confidence"):
        return reason
    if "qty" in event and (not _is_integer(event["qty"]) or not 1 <= event["qty"] <= 1000):
        return "field 'qty' must be a whole number from 1 to 1000"
    if "sku" in event and (reason := _string(event, "sku")):
        return reason
    if "alternatives" in event:
        alternatives = event["alternatives"]
        if not isinstance(alternatives, list) or len(alternatives) > 16:
            return "field 'alternatives' must be a list of at most 16 {session, confidence} objects"
        for index, alternative in enumerate(alternatives):
            if not isinstance(alternative, dict):
                return f"alternatives[{index}] must be an object with 'session' and 'confidence'"
            missing = [name for name in ("session", "confidence") if name not in alternative]
            if missing:
                return f"alternatives[{index}] is missing '{missing[0]}'"
            if reason := _string(alternative, "session"):
                return f"alternatives[{index}]: {reason}"
            if reason := _confidence(alternative["confidence"], "confidence"):
                return f"alternatives[{index}]: {reason}"
    return None


_REQUIRED = {
    "session.started": ("session", "shopper", "gate"),
    "session.ended": ("session", "gate"),
    "item.picked": ("session", "bin", "device", "confidence"),
    "item.returned": ("session", "bin", "device", "confidence"),
    "shelf.weight_changed": ("bin", "device", "delta_g"),
    "device.status": ("device", "status"),
    "id.checked": ("session", "device", "result", "min_age"),
    "shelf.restocked": ("bin", "device", "qty"),
}


def _check_type_fields(event: Mapping[str, Any], kind: str) -> str | None:
    missing = [name for name in _REQUIRED[kind] if name not in event]
    if missing:
        return f"{kind} needs field '{missing[0]}'"
    if kind == "session.started":
        reason = _string(event, "session") or _string(event, "shopper", max_length=128) or _string(event, "gate")
        if reason is None and "group" in event:
            reason = _string(event, "group")
        return reason
    if kind == "session.ended":
        return _string(event, "session") or _string(event, "gate")
    if kind in ("item.picked", "item.returned"):
        return _check_item(event)
    if kind == "shelf.weight_changed":
        delta = event["delta_g"]
        if not _is_number(delta) or not -1_000_000 <= delta <= 1_000_000:
            return "field 'delta_g' must be a number of grams from -1000000 to 1000000"
        return _string(event, "bin") or _string(event, "device")
    if kind == "id.checked":
        if event["result"] not in ID_CHECK_RESULTS:
            return f"field 'result' must be one of {', '.join(ID_CHECK_RESULTS)}"
        if not _is_integer(event["min_age"]) or not 1 <= event["min_age"] <= 150:
            return "field 'min_age' must be a whole number of years from 1 to 150"
        return _string(event, "session") or _string(event, "device")
    if kind == "shelf.restocked":
        if not _is_integer(event["qty"]) or not 1 <= event["qty"] <= 100_000:
            return "field 'qty' must be a whole number from 1 to 100000"
        return _string(event, "bin") or _string(event, "device")
    if event["status"] not in DEVICE_STATUSES:
        return f"field 'status' must be one of {', '.join(DEVICE_STATUSES)}"
    return _string(event, "device")


def check_event(event: Any) -> tuple[Event | None, str | None]:
    """The event, or the reason it breaks the schema (exactly one of the two is None)."""
    if not isinstance(event, dict):
        return None, "an event must be a JSON object"
    for name in ("id", "type", "ts"):
        if name not in event:
            return None, f"missing required field '{name}'"
    if reason := _string(event, "id"):
        return None, reason
    kind = event["type"]
    if not isinstance(kind, str) or kind not in _REQUIRED:
        shown = kind if isinstance(kind, str) else type(kind).__name__
        return None, f"unknown event type {shown!r}; expected one of {', '.join(EVENT_TYPES)}"
    if not isinstance(event["ts"], str):
        return None, "field 'ts' must be an RFC 3339 timestamp string"
    ts = parse_timestamp(event["ts"])
    if ts is None:
        return None, f"field 'ts' is not an RFC 3339 timestamp with an offset: {event['ts'][:40]!r}"
    if "store" in event and (reason := _string(event, "store")):
        return None, reason
    if reason := _check_type_fields(event, kind):
        return None, reason
    device = event["gate"] if kind in ("session.started", "session.ended") else event["device"]
    session = event["session"] if kind in SESSION_TYPES else None
    return Event(
        event_id=event["id"],
        type=kind,
        ts=ts,
        ts_text=event["ts"],
        session=session,
        bin=event["bin"] if kind in BIN_TYPES else None,
        device=device,
        store=event.get("store"),
        status=event["status"] if kind == "device.status" else None,
    ), None


def parse_line(line: bytes) -> tuple[Any, str | None]:
    """The JSON value of one NDJSON line, or the reason it is not JSON (or is JSON nested too deeply)."""
    try:
        value = orjson.loads(line)
    except orjson.JSONDecodeError as error:
        return None, TOO_DEEP if "depth limit" in str(error) else f"not valid JSON: {error}"
    if nesting_depth(value, limit=MAX_EVENT_DEPTH) > MAX_EVENT_DEPTH:
        return value, TOO_DEEP
    return value, None


Code = Annotated[str, Meta(min_length=1, max_length=64)]
Confidence = Annotated[float, Meta(ge=0, le=1)]


class _Line(Struct, tag_field="type", kw_only=True, forbid_unknown_fields=True):
    """The schema's top level; each subclass is one `type` with its own required fields.

    A line with fields the structs do not know goes to the exact path: msgspec would skip over their
    values without validating them (UTF-8, depth, numbers orjson and PostgreSQL refuse).
    """

    id: Code
    ts: str
    store: Code | UnsetType = UNSET

    def event(self, ts: datetime) -> Event:
        raise NotImplementedError

    @property
    def store_code(self) -> str | None:
        return None if self.store is UNSET else self.store


class _SessionStarted(_Line, tag="session.started"):
    session: Code
    shopper: Annotated[str, Meta(min_length=1, max_length=128)]
    gate: Code
    group: Code | UnsetType = UNSET

    def event(self, ts: datetime) -> Event:
        return Event(self.id, "session.started", ts, self.ts, self.session, None, self.gate, self.store_code)


class _SessionEnded(_Line, tag="session.ended"):
    session: Code
    gate: Code

    def event(self, ts: datetime) -> Event:
        return Event(self.id, "session.ended", ts, self.ts, self.session, None, self.gate, self.store_code)


class _Alternative(Struct, forbid_unknown_fields=True):
    session: Code
    confidence: Confidence


class _Item(_Line):
    session: Code
    bin: Code
    device: Code
    confidence: Confidence
    qty: Annotated[int, Meta(ge=1, le=1000)] | UnsetType = UNSET
    sku: Code | UnsetType = UNSET
    alternatives: Annotated[list[_Alternative], Meta(max_length=16)] | UnsetType = UNSET

    def event(self, ts: datetime) -> Event:
        kind = str(self.__struct_config__.tag)
        return Event(self.id, kind, ts, self.ts, self.session, self.bin, self.device, self.store_code)


class _ItemPicked(_Item, tag="item.picked"):
    pass


class _ItemReturned(_Item, tag="item.returned"):
    pass


class _WeightChanged(_Line, tag="shelf.weight_changed"):
    bin: Code
    device: Code
    delta_g: Annotated[float, Meta(ge=-1_000_000, le=1_000_000)]

    def event(self, ts: datetime) -> Event:
        return Event(self.id, "shelf.weight_changed", ts, self.ts, None, self.bin, self.device, self.store_code)


class _DeviceStatus(_Line, tag="device.status"):
    device: Code
    status: Literal["online", "offline", "degraded"]

    def event(self, ts: datetime) -> Event:
        store = self.store_code
        return Event(self.id, "device.status", ts, self.ts, None, None, self.device, store, self.status)


class _IdChecked(_Line, tag="id.checked"):
    session: Code
    device: Code
    result: Literal["passed", "failed"]
    min_age: Annotated[int, Meta(ge=1, le=150)]

    def event(self, ts: datetime) -> Event:
        return Event(self.id, "id.checked", ts, self.ts, self.session, None, self.device, self.store_code)


class _ShelfRestocked(_Line, tag="shelf.restocked"):
    bin: Code
    device: Code
    qty: Annotated[int, Meta(ge=1, le=100_000)]

    def event(self, ts: datetime) -> Event:
        return Event(self.id, "shelf.restocked", ts, self.ts, None, self.bin, self.device, self.store_code)


_LINE_DECODER = msgspec.json.Decoder(
    _SessionStarted
    | _SessionEnded
    | _ItemPicked
    | _ItemReturned
    | _WeightChanged
    | _DeviceStatus
    | _IdChecked
    | _ShelfRestocked
)


def read_event(line: bytes) -> tuple[Event | None, str | None, Any]:
    """The event of one NDJSON line, or the reason it breaks the schema; and, when refused, what the line
    parsed to (None if it is not JSON), to take its id from."""
    if len(line) > MAX_EVENT_BYTES:
        return None, TOO_LONG, None
    try:
        parsed = _LINE_DECODER.decode(line)
    except msgspec.MsgspecError:
        parsed = None
    if parsed is not None and (ts := parse_timestamp(parsed.ts)) is not None:
        return parsed.event(ts), None, None
    value, reason = parse_line(line)
    if reason is not None:
        return None, reason, value
    event, reason = check_event(value)
    return event, reason, value


@dataclass(frozen=True)
class LayoutSnapshot:
    """What the events of one layout version may refer to."""

    effective_from: datetime
    bins: Mapping[str, str | None]
    devices: Mapping[str, str]


@dataclass(frozen=True)
class StoreReferences:
    """The store's layout versions in time order, to read each event against the one of its time."""

    store_code: str
    layouts: Sequence[LayoutSnapshot]
    _starts: list[datetime] = field(default_factory=list, repr=False)

    def __post_init__(self) -> None:
        self._starts.extend(layout.effective_from for layout in self.layouts)

    def layout_at(self, ts: datetime) -> LayoutSnapshot | None:
        """The layout in force at `ts`; a store's first layout also covers what came before it."""
        if not self.layouts:
            return None
        return self.layouts[max(0, bisect.bisect_right(self._starts, ts) - 1)]


_DEVICE_KIND_OF_TYPE = {
    "session.started": "gate",
    "session.ended": "gate",
    "item.picked": "camera",
    "item.returned": "camera",
    "shelf.weight_changed": "weight_sensor",
    "id.checked": "staff_device",
    "shelf.restocked": "staff_device",
}


def check_references(event: Event, *, references: StoreReferences, now: datetime) -> str | None:
    """The reason an otherwise valid event cannot be accepted for this store, or None."""
    if event.ts > now + FUTURE_TOLERANCE:
        return f"timestamp {event.ts_text} is more than 24 h in the future"
    if event.store is not None and event.store != references.store_code:
        return f"event is for store {event.store!r}, but this stream is for store {references.store_code!r}"
    layout = references.layout_at(event.ts)
    if layout is None:
        return f"store {references.store_code!r} has no layout yet: publish one before sending its events"
    kind = layout.devices.get(event.device)
    if kind is None:
        return f"device {event.device!r} is not in the layout in force at {event.ts_text}"
    expected = _DEVICE_KIND_OF_TYPE.get(event.type)
    if expected is not None and kind != expected:
        return f"device {event.device!r} is a {kind}, but {event.type} comes from a {expected}"
    if event.bin is not None:
        if event.bin not in layout.bins:
            return f"bin {event.bin!r} is not in the layout in force at {event.ts_text}"
        if event.type == "shelf.weight_changed" and layout.bins[event.bin] != event.device:
            return f"weight sensor {event.device!r} is not the sensor under bin {event.bin!r}"
    return None
