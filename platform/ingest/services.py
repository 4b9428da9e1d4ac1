"""Event streams from upload to visits: store the file, cut it into chunks, process each, finish.

    stream_upload ──▶ [ingest] stream_prepare ──▶ [ingest] chunk_process (x N) ──▶ [ingest] stream_finish ──▶ [visits]

Each step is idempotent and safe to run twice: a chunk is processed inside one
transaction holding its row lock and is skipped once done, so a worker killed
mid-chunk loses nothing (the transaction rolls back and the chunk is redone) and
doubles nothing. `streams_resume_stalled` re-sends the chunks of a stream whose
worker died, whatever the broker does with unacknowledged messages.
"""

from __future__ import annotations

import logging
import os
import tempfile
import zlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, BinaryIO, NamedTuple, cast

import orjson
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files import File
from django.core.files.storage import default_storage
from django.db import connection, transaction
from django.db.models import Case, F, Max, Min, TextField, Value, When
from django.db.models.fields.json import KT
from django.db.models.functions import Cast
from django.utils import timezone

from core import bounded_json, metrics
from core.tasks import enqueue_on_commit
from ingest.models import Event, EventStream, Rejection, StreamChunk, UnreadableEvent
from ingest.processing import (
    Outcome,
    at_micros,
    garbage_collection_paused,
    merge_summaries,
    micros,
    process_lines,
    read_lines,
    store_references,
)
from ingest.validation import MAX_EVENT_DEPTH
from stores.models import Device, Store
from tenants.audit import Actor
from visits.models import Visit

logger = logging.getLogger(__name__)

GZIP_MAGIC = b"\x1f\x8b"
BINARY_SNIFF_BYTES = 8192
PUSH_MAX_EVENTS = 1000
SESSION_BATCH = 500


@dataclass(frozen=True)
class PushResult:
    stream: EventStream
    accepted: int
    duplicates: int
    rejected: list[dict[str, Any]]


@transaction.atomic
def stream_upload(*, actor: Actor, store: Store, upload: Any) -> EventStream:
    """Keep an uploaded NDJSON (or gzip) file and queue it for processing."""
    if store.tenant.status != store.tenant.Status.ACTIVE:
        raise ValidationError("The account is suspended; uploads are refused.")
    stream = EventStream.unscoped.create(
        tenant_id=store.tenant_id,
        store=store,
        source=EventStream.Source.UPLOAD,
        original_name=(getattr(upload, "name", "") or "")[:255],
        size_bytes=getattr(upload, "size", 0) or 0,
        created_by=actor.label[:200],
    )
    # An upload Django spooled to a temporary file is moved into local storage rather than copied.
    stream.file.save(f"stream-{stream.pk}.upload", upload if isinstance(upload, File) else File(upload), save=False)
    stream.save(update_fields=["file"])
    enqueue_on_commit("ingest.prepare_stream", tenant_id=store.tenant_id, stream_id=stream.pk)
    return stream


def _gunzip(source: Any, target: Any) -> str:
    """Stream-decompress the gzip members of `source` into `target`; for damaged data, say why it stopped.

    Everything decompressed before the damage is kept, so the lines before it are processed.
    """
    inflater, fed = zlib.decompressobj(wbits=31), False
    while block := source.read(1 << 20):
        while block:
            try:
                target.write(inflater.decompress(block))
            except zlib.error as error:
                return f"the gzip file is damaged ({error}); the lines before the damage were processed"
            fed = True
            block = b""
            if inflater.eof:
                block = inflater.unused_data
                inflater, fed = zlib.decompressobj(wbits=31), False
    target.write(inflater.flush())
    if fed and not inflater.eof:
        return "the gzip file is cut short; the lines before the cut were processed"
    return ""


def _decompress(stream: EventStream) -> tuple[str, str]:
    """Ungzip the upload into a sibling NDJSON file; return its name and, for a damaged file, why it stopped."""
    with stream.file.open("rb") as source, tempfile.NamedTemporaryFile(delete=False, suffix=".ndjson") as target:
        failure = _gunzip(source, target)
        temp_name = target.name
    try:
        with open(temp_name, "rb") as plain:
            name = default_storage.save(f"{stream.file.name}.ndjson", File(plain))
    finally:
        os.unlink(temp_name)
    return name, failure


def _cut_into_chunks(stream: EventStream, *, chunk_bytes: int) -> list[StreamChunk]:
    """Split the NDJSON file at line ends into chunks of about `chunk_bytes`, numbering their first lines."""
    chunks: list[StreamChunk] = []
    with default_storage.open(stream.plain_file, "rb") as plain:
        start, line = 0, 1
        while True:
            plain.seek(start)
            body = plain.read(chunk_bytes)
            if not body:
                break
            if len(body) == chunk_bytes:
                tail = b""
                while (piece := plain.read(65536)) and b"\n" not in piece:
                    tail += piece
                if piece:
                    tail += piece[: piece.index(b"\n") + 1]
                body += tail
            chunks.append(
                StreamChunk(
                    tenant_id=stream.tenant_id,
                    stream=stream,
                    seq=len(chunks),
                    start_offset=start,
                    end_offset=start + len(body),
                    first_line=line,
                )
            )
            line += body.count(b"\n")
            start += len(body)
    return chunks


def _looks_binary(stream: EventStream) -> bool:
    with default_storage.open(stream.plain_file, "rb") as plain:
        return b"\x00" in plain.read(BINARY_SNIFF_BYTES)


def stream_prepare(*, stream_id: int) -> None:
    """Make the stream's NDJSON file, cut it into chunks and send them to the workers (once)."""
    with transaction.atomic():
        stream = EventStream.objects.select_for_update().get(pk=stream_id)
        if stream.status in (EventStream.Status.DONE, EventStream.Status.FAILED):
            return
        if stream.chunks_total == 0:
            _prepare_chunks(stream)
    if stream.chunks_total == 0:
        stream_finish(stream_id=stream.pk)
        return
    pending = list(StreamChunk.objects.filter(stream=stream, done=False).order_by("seq").values_list("pk", flat=True))
    for chunk_id in far_apart(pending):
        _send_chunk(stream.tenant_id, chunk_id)


def far_apart(chunks: list[int]) -> list[int]:
    """Chunks in the order to send them: one from the first half of the file, one from the second, and so on.

    Workers taking them one after another then process chunks far apart in the file at the same time. An
    event sent twice (a retry, a resent line) is most often near its first copy, and when two chunks insert
    the same event id at once, the second waits for the first one's whole transaction to end.
    """
    half = (len(chunks) + 1) // 2
    ordered = []
    for index, chunk in enumerate(chunks[:half]):
        ordered.append(chunk)
        if half + index < len(chunks):
            ordered.append(chunks[half + index])
    return ordered


def _send_chunk(tenant_id: int, chunk_id: int) -> None:
    enqueue_on_commit("ingest.process_chunk", tenant_id=tenant_id, chunk_id=chunk_id)


def _prepare_chunks(stream: EventStream) -> None:
    with stream.file.open("rb") as upload:
        magic = upload.read(2)
    failure = ""
    if magic == GZIP_MAGIC:
        stream.plain_file, failure = _decompress(stream)
    else:
        stream.plain_file = stream.file.name
    stream.status = EventStream.Status.PROCESSING
    stream.started_at = timezone.now()
    stream.failure_reason = failure
    if _looks_binary(stream):
        stream.status = EventStream.Status.FAILED
        stream.failure_reason = "This is not an NDJSON text file: it contains binary data (NUL bytes)."
        stream.finished_at = timezone.now()
        stream.save()
        return
    chunks = StreamChunk.objects.bulk_create(_cut_into_chunks(stream, chunk_bytes=settings.INGEST_CHUNK_BYTES))
    stream.chunks_total = len(chunks)
    stream.bytes_total = chunks[-1].end_offset if chunks else 0
    stream.save()


def chunk_process(*, chunk_id: int) -> None:
    """Process one chunk whole, exactly once; the last chunk of a stream sends the stream to finish.

    Committed asynchronously (PostgreSQL's `synchronous_commit = off`): the chunk does not wait for its WAL
    to reach the disk, which with two workers writing was a fifth of the database's time. A crash can lose
    the last few chunks committed, but each loses its events and its done mark together, so it is simply
    processed again; and what follows a chunk (finishing its stream) commits durably, which writes the
    chunk's WAL first.
    """
    with transaction.atomic():
        _commit_asynchronously()
        chunk = (
            StreamChunk.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(pk=chunk_id, done=False)
            .order_by("pk")
            .first()
        )
        if chunk is None:
            return
        stream = EventStream.objects.select_related("store").get(pk=chunk.stream_id)
        with default_storage.open(stream.plain_file, "rb") as plain:
            outcome = process_lines(
                stream=stream,
                numbered_lines=read_lines(
                    cast(BinaryIO, plain), start=chunk.start_offset, end=chunk.end_offset, first_line=chunk.first_line
                ),
                references=store_references(store=stream.store),
                now=timezone.now(),
            )
        chunk.done, chunk.done_at = True, timezone.now()
        chunk.lines, chunk.accepted = outcome.lines, outcome.accepted
        chunk.duplicates, chunk.rejected = outcome.duplicates, outcome.rejected
        chunk.summary = outcome.summary
        chunk.save()
        finished = _count_chunk(stream_id=stream.pk, outcome=outcome, size=chunk.end_offset - chunk.start_offset)
        if finished:
            enqueue_on_commit("ingest.finish_stream", tenant_id=stream.tenant_id, stream_id=stream.pk)


def _commit_asynchronously() -> None:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL synchronous_commit TO OFF")


def _count_chunk(*, stream_id: int, outcome: Outcome, size: int) -> bool:
    """Add a chunk's counts to its stream (under the stream's row lock); True when it was the last chunk.

    FOR NO KEY UPDATE: the chunk's new rejections hold KEY SHARE locks on the stream row
    (their foreign key); a plain FOR UPDATE would wait on the other chunks' and deadlock with them.
    """
    stream = EventStream.objects.select_for_update(no_key=True).get(pk=stream_id)
    stream.lines = F("lines") + outcome.lines
    stream.accepted = F("accepted") + outcome.accepted
    stream.duplicates = F("duplicates") + outcome.duplicates
    stream.rejected = F("rejected") + outcome.rejected
    stream.bytes_done = F("bytes_done") + size
    stream.chunks_done = F("chunks_done") + 1
    stream.save(update_fields=["lines", "accepted", "duplicates", "rejected", "bytes_done", "chunks_done"])
    stream.refresh_from_db(fields=["chunks_done", "chunks_total"])
    return stream.chunks_done == stream.chunks_total


def stream_finish(*, stream_id: int, summary: dict[str, Any] | None = None) -> None:
    """Close a stream: refuse events of sessions never started, update device health, hand visits on.

    What it needs of the stream's events comes from the summaries its chunks made of them (or `summary`,
    for a live push), not from reading the events again; from the events when a summary is missing.
    """
    with transaction.atomic(), garbage_collection_paused():  # a summary of 100k sessions is 100k lists
        stream = EventStream.objects.select_for_update(no_key=True).select_related("store").get(pk=stream_id)
        if stream.status == EventStream.Status.DONE or stream.finished_at is not None:
            return
        if stream.chunks_done < stream.chunks_total:  # a chunk's commit lost in a crash: it is processed again
            return
        summary = summary if summary is not None else _chunks_summary(stream)
        seen = _stream_sessions(stream) if summary is None else _sessions_of(summary)
        refused = _reject_unknown_sessions(stream, seen)
        unknown = {row["session"] for row in refused}
        if summary is None:
            _record_device_observations(stream)
        else:
            _record_devices(stream, *_devices_of(summary, stream=stream, refused=refused))
        sessions = _sessions_touched(stream, seen, unknown)
        # Finished when its visits are handed on: the refresh tasks are sent as this transaction commits, then
        # one settling of the store, behind them in the queue. (Should it start while the last refresh still
        # runs elsewhere and find nothing more due, the periodic `visits.settle_due` settles what is left.)
        stream.status = EventStream.Status.FAILED if stream.failure_reason else EventStream.Status.DONE
        stream.finished_at = timezone.now()
        stream.bytes_done = stream.bytes_total
        stream.save()
        metrics.count_events(
            source=stream.source, accepted=stream.accepted, duplicates=stream.duplicates, rejected=stream.rejected
        )
        for start in range(0, len(sessions), settings.VISITS_PER_TASK):
            enqueue_on_commit(
                "visits.refresh_visits",
                tenant_id=stream.tenant_id,
                store_id=stream.store_id,
                sessions=sessions[start : start + settings.VISITS_PER_TASK],
            )
        if sessions:
            enqueue_on_commit("visits.settle_store", tenant_id=stream.tenant_id, store_id=stream.store_id)


class _SessionSeen(NamedTuple):
    first: int  # microseconds since the epoch, as summaries keep times
    last: int
    started: bool  # a session.started of it is in this stream


def _chunks_summary(stream: EventStream) -> dict[str, Any] | None:
    """The summaries of the stream's chunks added up; None when a chunk has none (processed before they were)."""
    texts = list(StreamChunk.objects.filter(stream=stream).values_list(Cast("summary", TextField()), flat=True))
    if any(text is None for text in texts) or (not texts and stream.accepted):
        return None
    return merge_summaries(orjson.loads(text) for text in texts)  # orjson: 3x faster than the JSONField's json


def _sessions_of(summary: dict[str, Any]) -> dict[str | None, _SessionSeen]:
    seen: dict[str | None, _SessionSeen] = {
        session: _SessionSeen(first, last, bool(started))
        for session, (first, last, started) in summary["sessions"].items()
    }
    if summary["loose"] is not None:
        first, last = summary["loose"]
        seen[None] = _SessionSeen(first, last, False)
    return seen


def _devices_of(
    summary: dict[str, Any], *, stream: EventStream, refused: list[dict[str, Any]]
) -> tuple[dict[str, datetime], dict[str, dict[str, Any]]]:
    """Per device, when it was last heard of and its latest status report, from the summary; the events
    refused since (`refused`) are not heard of: a device one of them may have been last heard by is read
    again from the stream's events that are left."""
    heard = {device: at_micros(last) for device, (last, _at, _status) in summary["devices"].items()}
    reported = {
        device: {"ts": at_micros(at), "status": status}
        for device, (_last, at, status) in summary["devices"].items()
        if at is not None
    }
    again = {
        row["device"]
        for row in refused
        if row["type"] == "device.status" or row["device"] not in heard or heard[row["device"]] <= row["ts"]
    }
    if again:
        left_heard, left_reported = _device_observations(Event.objects.filter(stream=stream, device__in=again))
        for device in again:
            heard.pop(device, None)
            reported.pop(device, None)
        heard |= left_heard
        reported |= left_reported
    return heard, reported


def _stream_sessions(stream: EventStream) -> dict[str | None, _SessionSeen]:
    """One pass over the stream's events: per session (None: the events of no session), its first and last
    event and whether the stream started it."""
    started = Max(Case(When(type="session.started", then=Value(1)), default=Value(0)))
    rows = (
        Event.objects.filter(stream=stream)
        .values("session")
        .annotate(first=Min("ts"), last=Max("ts"), started=started)
        .values_list("session", "first", "last", "started")
    )
    return {session: _SessionSeen(micros(first), micros(last), bool(flag)) for session, first, last, flag in rows}


def _sessions_touched(stream: EventStream, seen: dict[str | None, _SessionSeen], unknown: set[str]) -> list[str]:
    """The visits this stream's events bear on, in time order (so that each hand-off covers a stretch of time):
    their own sessions (but the unknown ones, refused), and the visits in the store when a scale or a device
    reported something (a late weight change can change someone's cart)."""
    firsts = {session: row.first for session, row in seen.items() if session is not None and session not in unknown}
    span = seen.get(None)
    if span is not None:
        around = timedelta(minutes=5)
        overlapping = Visit.objects.filter(
            store_id=stream.store_id, entered_at__lte=at_micros(span.last) + around
        ).exclude(exited_at__lt=at_micros(span.first) - around)
        for session, entered in overlapping.values_list("session", "entered_at"):
            firsts.setdefault(session, micros(entered) if entered else span.first)
    return sorted(firsts, key=lambda session: (firsts[session], session))


def _reject_unknown_sessions(stream: EventStream, seen: dict[str | None, _SessionSeen]) -> list[dict[str, Any]]:
    """Events of this stream for a session no `session.started` in the store ever opened become rejections;
    return those events (session, device, type, ts, ...).

    Only the sessions the stream did not start itself are looked up, in batches of plain indexed look-ups
    rather than one anti-join: without column statistics (a fresh database, autovacuum off) PostgreSQL
    planned the anti-join as a nested loop, quadratic in the stream.
    """
    sessions = sorted(session for session, row in seen.items() if session is not None and not row.started)
    unknown: list[str] = []
    for start in range(0, len(sessions), SESSION_BATCH):
        batch = sessions[start : start + SESSION_BATCH]
        started = set(
            Event.objects.filter(store_id=stream.store_id, type="session.started", session__in=batch).values_list(
                "session", flat=True
            )
        )
        unknown += [session for session in batch if session not in started]
    orphans = []
    for start in range(0, len(unknown), SESSION_BATCH):
        # By store and session (their index), not by stream: statistics may not know the stream yet.
        rows = (
            Event.objects.filter(store_id=stream.store_id, session__in=unknown[start : start + SESSION_BATCH])
            .exclude(type="session.started")
            .values("pk", "line", "event_id", "session", "payload", "device", "type", "ts", "stream_id")
        )
        orphans += [row for row in rows if row["stream_id"] == stream.pk]
    if not orphans:
        return []
    Rejection.objects.bulk_create(
        [
            Rejection(
                tenant_id=stream.tenant_id,
                stream=stream,
                line=row["line"],
                event_id=row["event_id"],
                reason=f"unknown session {row['session']!r}: no session.started for it in this store "
                "(send the session.started first, then this event again)",
                raw=orjson.dumps(row["payload"]).decode()[:500],
            )
            for row in orphans
        ],
        batch_size=1000,
    )
    Event.objects.filter(pk__in=[row["pk"] for row in orphans]).delete()
    stream.accepted -= len(orphans)
    stream.rejected += len(orphans)
    return orphans


def _record_device_observations(stream: EventStream) -> None:
    """Last time each device was heard of, and the latest status it reported, from this stream's events."""
    _record_devices(stream, *_device_observations(Event.objects.filter(stream=stream)))


def _device_observations(events: Any) -> tuple[dict[str, datetime], dict[str, dict[str, Any]]]:
    seen = dict(events.values("device").annotate(last=Max("ts")).values_list("device", "last"))
    reported = {
        row["device"]: {"ts": row["ts"], "status": row["status"]}
        for row in events.filter(type="device.status")
        .order_by("device", "ts")
        .values("device", "ts", status=KT("payload__status"))
    }
    return seen, reported


def _record_devices(stream: EventStream, seen: dict[str, datetime], reported: dict[str, dict[str, Any]]) -> None:
    """Move each device's last-heard time and status forward (never back) to what the stream says."""
    devices = list(Device.objects.select_for_update().filter(store_id=stream.store_id, code__in=seen).order_by("pk"))
    for device in devices:
        last = seen[device.code]
        if device.last_seen_at is None or last > device.last_seen_at:
            device.last_seen_at = last
        report = reported.get(device.code)
        if report and (device.status_changed_at is None or report["ts"] >= device.status_changed_at):
            device.status, device.status_changed_at = report["status"], report["ts"]
    Device.objects.bulk_update(devices, ["last_seen_at", "status", "status_changed_at"])


def events_push(*, actor: Actor, store: Store, events: Any) -> PushResult:
    """Process up to 1,000 events sent live, through the same validation and writing as uploads."""
    if not isinstance(events, list):
        raise ValidationError("Send a JSON array of events.")
    if len(events) > PUSH_MAX_EVENTS:
        raise ValidationError(f"At most {PUSH_MAX_EVENTS} events per call; split the batch.")
    try:  # within this bound every event can be written as a line; those deeper than an event may be are refused
        bounded_json.check_depth(events, what="The batch")
    except bounded_json.JSONRefused as error:
        raise ValidationError(f"{error.reason}; an event may nest at most {MAX_EVENT_DEPTH} levels.") from error
    with transaction.atomic():
        stream = EventStream.unscoped.create(
            tenant_id=store.tenant_id,
            store=store,
            source=EventStream.Source.PUSH,
            status=EventStream.Status.PROCESSING,
            started_at=timezone.now(),
            created_by=actor.label[:200],
        )
        outcome = process_lines(
            stream=stream,
            numbered_lines=((index, orjson.dumps(event)) for index, event in enumerate(events)),
            references=store_references(store=store),
            now=timezone.now(),
        )
        EventStream.unscoped.filter(pk=stream.pk).update(
            lines=outcome.lines, accepted=outcome.accepted, duplicates=outcome.duplicates, rejected=outcome.rejected
        )
        stream_finish(stream_id=stream.pk, summary=outcome.summary)
    stream.refresh_from_db()
    rejected = [
        {"index": row.line, "event_id": row.event_id or None, "reason": row.reason}
        for row in Rejection.objects.filter(stream=stream).order_by("line")
    ]
    return PushResult(stream=stream, accepted=stream.accepted, duplicates=stream.duplicates, rejected=rejected)


def streams_resume_stalled(*, stalled_after: timedelta) -> int:
    """Re-send the unfinished chunks of streams that made no progress for `stalled_after`; return how many.

    Runs platform-wide (a periodic job): a worker that died mid-stream leaves its chunk undone, and this
    picks it up again whatever the broker does with the unacknowledged message.
    """
    cutoff = timezone.now() - stalled_after
    resent = 0
    for stream in EventStream.objects.filter(status=EventStream.Status.PROCESSING, source=EventStream.Source.UPLOAD):
        last_progress: datetime | None = (
            StreamChunk.objects.filter(stream=stream).aggregate(last=Max("done_at"))["last"] or stream.started_at
        )
        if last_progress is None or last_progress > cutoff:
            continue
        pending = list(StreamChunk.objects.filter(stream=stream, done=False).values_list("pk", flat=True))
        for chunk_id in pending:
            _send_chunk(stream.tenant_id, chunk_id)
        if not pending and stream.chunks_done == stream.chunks_total:
            enqueue_on_commit("ingest.finish_stream", tenant_id=stream.tenant_id, stream_id=stream.pk)
        resent += len(pending)
    return resent


def events_mark_unreadable(*, store: Store, events: list[dict[str, Any]]) -> None:
    """Record stored events whose payload cannot be read (`id`, `type`, `session`, `_ts` and the reason under
    `_unreadable`, as settling reads them), once per event, for operators to see."""
    UnreadableEvent.objects.bulk_create(
        [
            UnreadableEvent(
                tenant_id=store.tenant_id,
                store=store,
                event_id=event["id"],
                type=event["type"],
                ts=event["_ts"],
                session=event["session"],
                reason=event["_unreadable"],
            )
            for event in events
        ],
        ignore_conflicts=True,
    )
