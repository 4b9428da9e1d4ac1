"""Turning lines into events: parse, validate, check references, write in bulk.

On PostgreSQL the accepted events go through `COPY` into a temporary staging
table and one statement that claims their (tenant, store, event id) keys in
`ingest_eventkey` (INSERT … ON CONFLICT DO NOTHING RETURNING) and inserts into
the (partitioned) events table the events whose key it claimed: that key table
decides what is new and what is a duplicate — also between workers processing
chunks at the same time (ingest.partitions and ingest's migration). Elsewhere
(SQLite, embedded mode) it writes in batches. Either way it runs inside the
caller's transaction, so a chunk is written whole or not at all.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, BinaryIO

import orjson
from django.conf import settings
from django.db import connection

from core.entry_tokens import ENTRY_TOKEN_PREFIX, entry_token_hash, entry_tokens_hidden
from core.garbage import garbage_collection_paused
from ingest.models import Event, EventStream, Rejection
from ingest.validation import (
    MAX_EVENT_BYTES,
    LayoutSnapshot,
    StoreReferences,
    check_references,
    read_event,
)
from ingest.validation import (
    Event as ValidEvent,
)
from stores.models import Bin, DevicePlacement, LayoutVersion, Store

RAW_KEPT_CHARS = 500
KEYS_CLAIMED = "openaisle.event_keys_claimed"  # set while the writer claims keys itself: the per-row trigger waits
STORED_TOKEN_HASH = re.compile(r"sha256:([0-9a-f]{64})")  # an entry token's hash, as an export writes it
JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*+(?:"|\\?\Z)', re.DOTALL)  # a string, or one left open to the line's end
KEY_COLON = re.compile(rb"\s*:")
ENTRY_TOKEN_PREFIX_BYTES = ENTRY_TOKEN_PREFIX.encode()
TOKEN_LINE_NOT_KEPT = b'"(not kept: the line names a shopper and is too odd to write back without the token)"'
NUL_ESCAPE = b"\\u0000"
COPY_NULL = "\\N"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)
MICROSECOND_TIME_CHARS = len("2026-01-01T00:00:00.000000")
SHORTEST_FINER_TIME_CHARS = len("2026-01-01T00:00:00.0000000Z")  # a shorter time is no finer than microseconds


@dataclass(frozen=True)
class Outcome:
    """What lines came to: counts, the refusals to store (the first few: `rejected` counts them all) and the
    summary of the events accepted."""

    lines: int
    accepted: int
    duplicates: int
    rejected: int
    refused: list[Refusal]
    summary: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Refusal:
    line: int
    event_id: str
    reason: str
    raw: str


_KEPT_REFERENCES: dict[int, tuple[tuple[tuple[int, datetime], ...], StoreReferences]] = {}


def store_references(*, store: Store, versions: tuple[tuple[int, datetime], ...] | None = None) -> StoreReferences:
    """Every layout version of the store, reduced to the codes events may refer to.

    Kept in the process for as long as the store has the same versions (one small query tells): a published
    version never changes, and publishing one (which alone changes a device's kind) adds a version. A live
    store's pushes each read it, and building it from the bins was a third of a push's CPU.
    """
    if versions is None:  # `versions`: the store's (id, effective from), oldest first, when the caller read them
        versions = tuple(
            LayoutVersion.objects.filter(store=store).order_by("effective_from").values_list("pk", "effective_from")
        )
    kept = _KEPT_REFERENCES.get(store.pk)
    if kept is not None and kept[0] == versions:
        return kept[1]
    layout_ids = [pk for pk, _ in versions]
    bins: dict[int, dict[str, str | None]] = {pk: {} for pk in layout_ids}
    for layout_id, code, sensor in Bin.objects.filter(layout__in=layout_ids).values_list(
        "layout_id", "code", "sensor__code"
    ):
        bins[layout_id][code] = sensor
    devices: dict[int, dict[str, str]] = {pk: {} for pk in layout_ids}
    placements = DevicePlacement.objects.filter(layout__in=layout_ids).values_list(
        "layout_id", "device__code", "device__kind"
    )
    for layout_id, code, kind in placements:
        devices[layout_id][code] = kind
    snapshots = [LayoutSnapshot(effective_from, bins[pk], devices[pk]) for pk, effective_from in versions]
    references = StoreReferences(store_code=store.code, layouts=snapshots)
    _KEPT_REFERENCES[store.pk] = (versions, references)
    return references


def read_lines(file: BinaryIO, *, start: int, end: int, first_line: int) -> Iterator[tuple[int, bytes]]:
    """The lines of bytes [start, end) of a file, numbered from `first_line`, without reading it whole.

    A line longer than an event may be comes as its first `MAX_EVENT_BYTES + 1` bytes (enough to refuse it and
    keep its start), so that a file with no line ends cannot fill the memory.
    """
    file.seek(start)
    remaining = end - start
    number = first_line
    pending = b""
    overlong = False  # the line being read is already too long: the rest of it is skipped
    while remaining > 0:
        block = file.read(min(remaining, 1 << 20))
        if not block:
            break
        remaining -= len(block)
        parts = (pending + block).split(b"\n")
        pending = parts.pop()
        for part in parts:
            yield number, part if not overlong else part[: MAX_EVENT_BYTES + 1]
            overlong = False
            number += 1
        if len(pending) > MAX_EVENT_BYTES:
            pending, overlong = pending[: MAX_EVENT_BYTES + 1], True
    if pending:
        yield number, pending


def _classify(
    numbered_lines: Iterable[tuple[int, bytes]], *, references: StoreReferences, now: datetime, keep_refusals: int
) -> tuple[int, list[tuple[int, ValidEvent, bytes]], list[Refusal], int]:
    count = refused_count = 0
    valid: list[tuple[int, ValidEvent, bytes]] = []
    refused: list[Refusal] = []
    for number, raw in numbered_lines:
        line = raw.strip()
        if not line:
            continue
        count += 1
        event, reason, value = read_event(line)
        if event is not None:
            if b"\\" in line and NUL_ESCAPE in line:  # a backslash first: rare, and found faster
                reason = "the event contains a NUL character (\\u0000), which cannot be stored"
            else:
                reason = check_references(event, references=references, now=now)
        if reason is not None or event is None:
            refused_count += 1
            if len(refused) >= keep_refusals:
                continue
            raw_id = event.event_id if event is not None else value.get("id") if isinstance(value, dict) else None
            event_id = raw_id if isinstance(raw_id, str) else ""
            kept = _refused_tokens_hidden(line, enough=4 * RAW_KEPT_CHARS)  # UTF-8: at most 4 bytes a character
            text = kept.decode("utf-8", errors="replace")[:RAW_KEPT_CHARS].replace("\x00", "\ufffd")
            reason = entry_tokens_hidden(reason or "invalid event")
            refused.append(Refusal(number, event_id[:64], reason, text))
            continue
        names_a_shopper = event.type == "session.started" or (isinstance(value, dict) and "shopper" in value)
        valid.append((number, event, _token_hidden(line) if names_a_shopper else line))
    return count, valid, refused, refused_count


def _refused_tokens_hidden(line: bytes, *, enough: int) -> bytes:
    """A refused line with no entry token in clear, read as text rather than parsed: it may not be JSON, be cut
    short, or spell a key to slip past a byte search ("sh\\u006fpper"). Each string in it is decoded; the value of
    a `shopper` key is written back as its hash, as an accepted event keeps it, and anything shaped like an entry
    token (core.entry_tokens) as its hash, in or out of a string. Stops once `enough` bytes are written (only the
    start of a refused line is kept); the rest of the line is as sent."""
    written: list[bytes] = []
    size = position = 0
    shopper_key_before = False
    for string in JSON_STRING.finditer(line):
        between = line[position : string.start()]
        text = _decoded(string.group())
        if shopper_key_before and between.strip() == b":":
            kept = _encoded(entry_token_hash(text))
        elif ENTRY_TOKEN_PREFIX in text or ENTRY_TOKEN_PREFIX_BYTES in string.group():
            kept = _encoded(entry_tokens_hidden(text))
        else:
            kept = string.group()
        shopper_key_before = text == "shopper" and KEY_COLON.match(line, string.end()) is not None
        written += [_bytes_tokens_hidden(between), kept]
        size += len(between) + len(kept)
        position = string.end()
        if size >= enough:
            return b"".join(written)
    return b"".join([*written, _bytes_tokens_hidden(line[position:])])


def _decoded(string: bytes) -> str:
    """A JSON string's text, or (cut short, or not JSON) its bytes between the quotes as UTF-8."""
    closed = string if len(string) > 1 and string.endswith(b'"') else string + b'"'
    try:
        text: str = json.loads(closed, strict=False)
    except ValueError:
        return closed[1:-1].decode("utf-8", errors="replace")
    return text


def _encoded(text: str) -> bytes:
    return json.dumps(text, ensure_ascii=False).encode()


def _bytes_tokens_hidden(part: bytes) -> bytes:
    if ENTRY_TOKEN_PREFIX_BYTES not in part:
        return part
    return entry_tokens_hidden(part.decode("utf-8", errors="replace")).encode()


def _token_hidden(line: bytes) -> bytes:
    """An accepted event's line as stored: an entry token in `shopper` replaced by its hash (core.entry_tokens),
    so that no event or visit keeps a token that opens a gate (refused lines: `_refused_tokens_hidden`). A `shopper`
    that is already a hash, as the platform's own export of retired events writes it (`sha256:<hex>`,
    ingest.partitions), is stored as that hash: a restored event names the same shopper. One too
    odd to write back (integers beyond 64 bits for orjson, nesting beyond the standard library's recursion) is
    not kept at all."""
    try:
        value = orjson.loads(line)
    except orjson.JSONDecodeError:
        try:
            value = json.loads(line)
        except (ValueError, RecursionError):
            return line
    if not isinstance(value, dict) or not isinstance(value.get("shopper"), str):
        return line
    shopper = value["shopper"]
    hashed = STORED_TOKEN_HASH.fullmatch(shopper)
    value["shopper"] = hashed.group(1) if hashed else entry_token_hash(shopper)
    try:
        return orjson.dumps(value)
    except orjson.JSONEncodeError:
        try:
            return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()
        except (ValueError, RecursionError):
            return TOKEN_LINE_NOT_KEPT


def process_lines(
    *,
    stream: EventStream,
    numbered_lines: Iterable[tuple[int, bytes]],
    references: StoreReferences,
    now: datetime,
) -> Outcome:
    """Validate lines of one stream and write their events (call inside a transaction). The refused lines come
    back, to be stored with `rejections_store`: the first INGEST_MAX_STORED_REJECTIONS of them, the most a
    stream stores (the rest are counted)."""
    with garbage_collection_paused():
        count, valid, refused, refused_count = _classify(
            numbered_lines, references=references, now=now, keep_refusals=settings.INGEST_MAX_STORED_REJECTIONS
        )
        writer = _PostgresWriter if connection.vendor == "postgresql" else _BatchWriter
        accepted = writer.write_events(stream=stream, valid=valid) if valid else []
        return Outcome(
            lines=count,
            accepted=len(accepted),
            duplicates=len(valid) - len(accepted),
            rejected=refused_count,
            refused=refused,
            summary=summarise(accepted),
        )


def rejections_store(*, stream: EventStream, refused: list[Refusal]) -> None:
    """Store refused lines as the stream's rejections (line, event id, reason, start of the line)."""
    if refused:
        writer = _PostgresWriter if connection.vendor == "postgresql" else _BatchWriter
        writer.write_rejections(stream=stream, refused=refused)


def micros(at: datetime) -> int:
    """A time as a summary keeps it: microseconds since the epoch."""
    return (at - EPOCH) // MICROSECOND


def at_micros(value: int) -> datetime:
    """A time kept in a summary (microseconds since the epoch), as a datetime in UTC."""
    return EPOCH + timedelta(microseconds=value)


def summarise(events: Iterable[ValidEvent]) -> dict[str, Any]:
    """What finishing the stream needs to know of these accepted events, so that it need not read them again.

    `sessions`: per session, [first time, last time, 1 if a session.started of it is among them else 0];
    `loose`: [first, last] time of the events of no session (scales, devices), or None; `devices`: per
    device, [last time heard of, time of its latest status report or None, that status or None]. Times in
    microseconds since the epoch (JSON keeps them exactly). `merge_summaries` adds summaries up.
    """
    sessions: dict[str, list[int]] = {}
    devices: dict[str, list[Any]] = {}
    loose: list[int] | None = None
    for event in events:
        at = micros(event.ts)
        span = loose if event.session is None else sessions.get(event.session)
        if span is None:
            span = [at, at, int(event.type == "session.started")]
            if event.session is None:
                loose = span[:2]
            else:
                sessions[event.session] = span
        elif at < span[0]:
            span[0] = at
        elif at > span[1]:
            span[1] = at
        if event.type == "session.started" and event.session is not None:
            span[2] = 1
        heard = devices.get(event.device)
        if heard is None:
            heard = devices[event.device] = [at, None, None]
        elif at > heard[0]:
            heard[0] = at
        if event.type == "device.status" and (heard[1] is None or at >= heard[1]):
            heard[1], heard[2] = at, event.status
    return {"sessions": sessions, "loose": loose, "devices": devices}


def merge_summaries(summaries: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """The summary of the events of all these summaries together."""
    sessions: dict[str, list[int]] = {}
    devices: dict[str, list[Any]] = {}
    loose: list[int] | None = None
    for summary in summaries:
        for session, (first, last, started) in summary.get("sessions", {}).items():
            seen = sessions.get(session)
            if seen is None:
                sessions[session] = [first, last, started]
            else:
                sessions[session] = [min(seen[0], first), max(seen[1], last), max(seen[2], started)]
        if summary.get("loose") is not None:
            first, last = summary["loose"]
            loose = [first, last] if loose is None else [min(loose[0], first), max(loose[1], last)]
        for device, (last, reported_at, status) in summary.get("devices", {}).items():
            heard = devices.setdefault(device, [last, None, None])
            heard[0] = max(heard[0], last)
            if reported_at is not None and (heard[1] is None or reported_at >= heard[1]):
                heard[1], heard[2] = reported_at, status
    return {"sessions": sessions, "loose": loose, "devices": devices}


def _csv(value: str) -> str:
    return '"' + value.replace('"', '""') + '"'


def _copy_text(value: str) -> str:
    """A value as a field of COPY's text format."""
    return value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def _copy_time(event: ValidEvent) -> str:
    """The event's time for PostgreSQL to read: as sent, unless finer than microseconds (PostgreSQL would
    round where the summaries cut), and then as read."""
    text = event.ts_text
    if len(text) < SHORTEST_FINER_TIME_CHARS:
        return text
    to_microseconds = len(text) - (1 if text[-1] in "Zz" else 6) <= MICROSECOND_TIME_CHARS
    return text if to_microseconds else event.ts.isoformat()


def _copy_row(number: int, event: ValidEvent, line: bytes) -> str:
    """An event as a row of COPY's text format: event id, type, time, session, device, payload, line number."""
    session = _copy_text(event.session) if event.session is not None else COPY_NULL
    return (
        f"{_copy_text(event.event_id)}\t{event.type}\t{_copy_time(event)}\t{session}\t"
        f"{_copy_text(event.device)}\t{_copy_text(line.decode())}\t{number}\n"
    )


def _copy_rows(rows: list[tuple[int, ValidEvent, bytes]]) -> str:
    """`_copy_row` of each of these events, in one string; most often without escaping anything.

    JSON writes a backslash, tab, newline or carriage return inside a string only escaped (with a
    backslash), so lines with no backslash, tab or CR hold none of the characters COPY treats specially,
    nor does any string read from them: one search of all the lines tells whether any needs escaping.
    When none does (nearly always), the rows are written in one pass with the values as they are.
    """
    lines = b"".join([line for _number, _event, line in rows])
    if b"\\" in lines or b"\t" in lines or b"\r" in lines:
        return "".join([_copy_row(*row) for row in rows])
    return "".join(
        [
            f"{event.event_id}\t{event.type}\t{_copy_time(event)}\t"
            f"{COPY_NULL if event.session is None else event.session}\t{event.device}\t{line.decode()}\t{number}\n"
            for number, event, line in rows
        ]
    )


def _first_of_each_id(valid: list[tuple[int, ValidEvent, bytes]]) -> dict[str, tuple[int, ValidEvent, bytes]]:
    """Of an event id sent twice in one chunk, the first line counts; the others are duplicates."""
    first: dict[str, tuple[int, ValidEvent, bytes]] = {}
    for item in valid:
        first.setdefault(item[1].event_id, item)
    return first


# The staging table made (once per connection), emptied and the per-row trigger told to stand aside, in one round
# trip: three statements sent apart were three of a live push's dozen queries. Emptied by DELETE, not TRUNCATE: the
# commit empties it already (ON COMMIT DELETE ROWS), so it is empty but for an earlier write of the same transaction,
# and TRUNCATE gave it a new file and catalog row each time: 0.3 ms of PostgreSQL's CPU per push (of about 3).
_STAGING_READY = (
    "CREATE TEMP TABLE IF NOT EXISTS ingest_staging (event_id text, type text, ts timestamptz, session text, "  # noqa: S608 — no value, the setting's name
    "device text, payload jsonb, line bigint) ON COMMIT DELETE ROWS; DELETE FROM ingest_staging; "
    f"SELECT set_config('{KEYS_CLAIMED}', 'on', true)"
)


class _PostgresWriter:
    @staticmethod
    def write_events(*, stream: EventStream, valid: list[tuple[int, ValidEvent, bytes]]) -> list[ValidEvent]:
        """Write the new events; return those written (of an id sent twice, the first line's).

        In event id order, as every chunk does: two chunks writing some of the same ids at once then wait for
        each other in one direction only, never both ways (a deadlock). Sorted here, not by the INSERT: 1.5 ms
        for a chunk of 7,700 events, against about 7 ms for PostgreSQL's sort (its text comparisons go through
        the collation); the insert reads the freshly filled staging table in the order it was written.
        """
        first = _first_of_each_id(valid)
        buffer = io.StringIO(_copy_rows([first[event_id] for event_id in sorted(first)]))
        with connection.cursor() as cursor:
            cursor.execute(_STAGING_READY)
            raw_cursor: Any = cursor.cursor
            raw_cursor.copy_expert(
                "COPY ingest_staging (event_id, type, ts, session, device, payload, line) FROM STDIN",
                buffer,
                size=1 << 20,
            )
            cursor.execute(
                "WITH claimed AS (INSERT INTO ingest_eventkey (tenant_id, store_id, event_id, ts) "  # noqa: S608 — table name from the model, values bound
                "SELECT %s, %s, event_id, ts FROM ingest_staging ON CONFLICT DO NOTHING RETURNING event_id) "
                f"INSERT INTO {Event._meta.db_table} "
                "(tenant_id, store_id, event_id, type, ts, session, device, payload, stream_id, line, received_at) "
                "SELECT %s, %s, s.event_id, type, ts, session, device, payload, %s, line, now() FROM ingest_staging s "
                "WHERE s.event_id IN (SELECT event_id FROM claimed) RETURNING event_id",
                [stream.tenant_id, stream.store_id, stream.tenant_id, stream.store_id, stream.pk],
            )
            written = {event_id for (event_id,) in cursor.fetchall()}
            cursor.execute(f"SELECT set_config('{KEYS_CLAIMED}', 'off', true)")
        return [event for event_id, (_number, event, _line) in first.items() if event_id in written]

    @staticmethod
    def write_rejections(*, stream: EventStream, refused: list[Refusal]) -> None:
        buffer = io.StringIO()
        for item in refused:
            buffer.write(
                f"{stream.tenant_id},{stream.pk},{item.line},{_csv(item.event_id)},{_csv(item.reason)},{_csv(item.raw)}\n"
            )
        buffer.seek(0)
        with connection.cursor() as cursor:
            raw_cursor: Any = cursor.cursor
            raw_cursor.copy_expert(
                f"COPY {Rejection._meta.db_table} (tenant_id, stream_id, line, event_id, reason, raw) "
                "FROM STDIN WITH (FORMAT csv)",
                buffer,
            )


class _BatchWriter:
    """SQLite (embedded mode): one writer at a time, so ask first, then insert the new ones."""

    BATCH = 500

    @classmethod
    def write_events(cls, *, stream: EventStream, valid: list[tuple[int, ValidEvent, bytes]]) -> list[ValidEvent]:
        first_by_id = _first_of_each_id(valid)
        ids = list(first_by_id)
        known: set[str] = set()
        for start in range(0, len(ids), cls.BATCH):
            batch = ids[start : start + cls.BATCH]
            known.update(
                Event.unscoped.filter(
                    tenant_id=stream.tenant_id, store_id=stream.store_id, event_id__in=batch
                ).values_list("event_id", flat=True)
            )
        new = [
            Event(
                tenant_id=stream.tenant_id,
                store_id=stream.store_id,
                event_id=event.event_id,
                type=event.type,
                ts=event.ts,
                session=event.session,
                device=event.device,
                payload=orjson.loads(line),
                stream_id=stream.pk,
                line=number,
            )
            for event_id, (number, event, line) in first_by_id.items()
            if event_id not in known
        ]
        Event.unscoped.bulk_create(new, batch_size=cls.BATCH)
        return [event for event_id, (_number, event, _line) in first_by_id.items() if event_id not in known]

    @classmethod
    def write_rejections(cls, *, stream: EventStream, refused: list[Refusal]) -> None:
        Rejection.unscoped.bulk_create(
            [
                Rejection(
                    tenant_id=stream.tenant_id,
                    stream_id=stream.pk,
                    line=r.line,
                    event_id=r.event_id,
                    reason=r.reason,
                    raw=r.raw,
                )
                for r in refused
            ],
            batch_size=cls.BATCH,
        )
