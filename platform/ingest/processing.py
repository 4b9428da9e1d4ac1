"""Turning lines into events: parse, validate, check references, write in bulk.

On PostgreSQL the accepted events go through `COPY` into a temporary staging
table and one `INSERT … ON CONFLICT DO NOTHING` into the events table, whose
unique (tenant, store, event id) index decides what is new and what is a
duplicate — also between workers processing chunks at the same time. Elsewhere
(SQLite, embedded mode) it writes in batches. Either way it runs inside the
caller's transaction, so a chunk is written whole or not at all.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, BinaryIO

from django.db import connection

from ingest.models import Event, EventStream, Rejection
from ingest.validation import (
    Event as ValidEvent,
)
from ingest.validation import (
    LayoutSnapshot,
    StoreReferences,
    check_event,
    check_references,
    parse_line,
)
from stores.models import Bin, DevicePlacement, LayoutVersion, Store

RAW_KEPT_CHARS = 500
NUL_ESCAPE = b"\\u0000"


@dataclass(frozen=True)
class Outcome:
    lines: int
    accepted: int
    duplicates: int
    rejected: int
    rejections: list[tuple[int, str, str]]


@dataclass(frozen=True)
class _Refusal:
    line: int
    event_id: str
    reason: str
    raw: str


def store_references(*, store: Store) -> StoreReferences:
    """Every layout version of the store, reduced to the codes events may refer to."""
    layouts = list(LayoutVersion.objects.filter(store=store).order_by("effective_from"))
    bins: dict[int, dict[str, str | None]] = {layout.pk: {} for layout in layouts}
    for layout_id, code, sensor in Bin.objects.filter(layout__in=layouts).values_list(
        "layout_id", "code", "sensor__code"
    ):
        bins[layout_id][code] = sensor
    devices: dict[int, dict[str, str]] = {layout.pk: {} for layout in layouts}
    placements = DevicePlacement.objects.filter(layout__in=layouts).values_list(
        "layout_id", "device__code", "device__kind"
    )
    for layout_id, code, kind in placements:
        devices[layout_id][code] = kind
    snapshots = [LayoutSnapshot(layout.effective_from, bins[layout.pk], devices[layout.pk]) for layout in layouts]
    return StoreReferences(store_code=store.code, layouts=snapshots)


def read_lines(file: BinaryIO, *, start: int, end: int, first_line: int) -> Iterator[tuple[int, bytes]]:
    """The lines of bytes [start, end) of a file, numbered from `first_line`, without reading it whole."""
    file.seek(start)
    remaining = end - start
    number = first_line
    pending = b""
    while remaining > 0:
        block = file.read(min(remaining, 1 << 20))
        if not block:
            break
        remaining -= len(block)
        parts = (pending + block).split(b"\n")
        pending = parts.pop()
        for part in parts:
            yield number, part
            number += 1
    if pending:
        yield number, pending


def _classify(
    numbered_lines: Iterable[tuple[int, bytes]], *, references: StoreReferences, now: datetime
) -> tuple[int, list[tuple[int, ValidEvent, bytes]], list[_Refusal]]:
    count = 0
    valid: list[tuple[int, ValidEvent, bytes]] = []
    refused: list[_Refusal] = []
    for number, raw in numbered_lines:
        line = raw.strip()
        if not line:
            continue
        count += 1
        value, reason = parse_line(line)
        event = None
        if reason is None:
            event, reason = check_event(value)
        if event is not None:
            if NUL_ESCAPE in line:
                reason = "the event contains a NUL character (\\u0000), which cannot be stored"
            else:
                reason = check_references(event, references=references, now=now)
        if reason is not None or event is None:
            raw_id = value.get("id") if isinstance(value, dict) else None
            event_id = raw_id if isinstance(raw_id, str) else ""
            text = line[:RAW_KEPT_CHARS].decode("utf-8", errors="replace").replace("\x00", "\ufffd")
            refused.append(_Refusal(number, event_id[:64], reason or "invalid event", text))
            continue
        valid.append((number, event, line))
    return count, valid, refused


def process_lines(
    *,
    stream: EventStream,
    numbered_lines: Iterable[tuple[int, bytes]],
    references: StoreReferences,
    now: datetime,
) -> Outcome:
    """Validate and write lines of one stream; call inside a transaction."""
    count, valid, refused = _classify(numbered_lines, references=references, now=now)
    writer = _PostgresWriter if connection.vendor == "postgresql" else _BatchWriter
    accepted = writer.write_events(stream=stream, valid=valid) if valid else 0
    if refused:
        writer.write_rejections(stream=stream, refused=refused)
    return Outcome(
        lines=count,
        accepted=accepted,
        duplicates=len(valid) - accepted,
        rejected=len(refused),
        rejections=[(r.line, r.event_id, r.reason) for r in refused],
    )


def _csv(value: str) -> str:
    return '"' + value.replace('"', '""') + '"'


class _PostgresWriter:
    @staticmethod
    def write_events(*, stream: EventStream, valid: list[tuple[int, ValidEvent, bytes]]) -> int:
        buffer = io.StringIO()
        write = buffer.write
        for number, event, line in valid:
            session = _csv(event.session) if event.session is not None else ""
            write(
                f"{_csv(event.event_id)},{event.type},{event.ts.isoformat()},{session},"
                f"{_csv(event.device or '')},{_csv(line.decode())},{number}\n"
            )
        buffer.seek(0)
        with connection.cursor() as cursor:
            cursor.execute(
                "CREATE TEMP TABLE IF NOT EXISTS ingest_staging (event_id text, type text, ts timestamptz, "
                "session text, device text, payload jsonb, line bigint) ON COMMIT DELETE ROWS"
            )
            cursor.execute("TRUNCATE ingest_staging")
            raw_cursor: Any = cursor.cursor
            raw_cursor.copy_expert(
                "COPY ingest_staging (event_id, type, ts, session, device, payload, line) FROM STDIN WITH (FORMAT csv)",
                buffer,
            )
            cursor.execute(
                f"INSERT INTO {Event._meta.db_table} "  # noqa: S608 — table name from the model, values bound
                "(tenant_id, store_id, event_id, type, ts, session, device, payload, stream_id, line, received_at) "
                "SELECT DISTINCT ON (event_id) %s, %s, event_id, type, ts, session, device, payload, %s, line, now() "
                "FROM ingest_staging ORDER BY event_id, line "
                "ON CONFLICT (tenant_id, store_id, event_id) DO NOTHING",
                [stream.tenant_id, stream.store_id, stream.pk],
            )
            return int(cursor.rowcount)

    @staticmethod
    def write_rejections(*, stream: EventStream, refused: list[_Refusal]) -> None:
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
    def write_events(cls, *, stream: EventStream, valid: list[tuple[int, ValidEvent, bytes]]) -> int:
        first_by_id: dict[str, tuple[int, ValidEvent, bytes]] = {}
        for item in valid:
            first_by_id.setdefault(item[1].event_id, item)
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
                device=event.device or "",
                payload=event.raw,
                stream_id=stream.pk,
                line=number,
            )
            for event_id, (number, event, _line) in first_by_id.items()
            if event_id not in known
        ]
        Event.unscoped.bulk_create(new, batch_size=cls.BATCH)
        return len(new)

    @classmethod
    def write_rejections(cls, *, stream: EventStream, refused: list[_Refusal]) -> None:
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
