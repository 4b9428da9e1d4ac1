"""Event streams from upload to visits: store the file, cut it into chunks, process each, finish.

    stream_upload ──▶ [ingest] stream_prepare ──▶ [ingest] chunk_process (x N) ──▶ [ingest] stream_finish ──▶ [visits]

Each step is idempotent and safe to run twice: a chunk is processed inside one
transaction holding its row lock and is skipped once done, so a worker killed
mid-chunk loses nothing (the transaction rolls back and the chunk is redone) and
doubles nothing. `streams_resume_stalled` sends again what a stream waits for
(its preparation, chunks or finishing) when a worker died with it, whatever the
broker does with unacknowledged messages.

    events_push ──▶ [live] pushes_finish (one per store for the pushes waiting) + the visits' refresh
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, BinaryIO, NamedTuple, cast

import orjson
from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.core.files import File
from django.core.files.storage import default_storage
from django.db import connection, transaction
from django.db.models import Case, Max, Min, Q, TextField, Value, When
from django.db.models.fields.json import KT
from django.db.models.functions import Cast, Left
from django.utils import timezone

from core import bounded_json, metrics
from core.garbage import garbage_collection_paused
from core.storage import open_range
from core.tasks import LIVE_QUEUE, enqueue_on_commit
from ingest import chunking
from ingest.models import Event, EventStream, Rejection, StreamChunk, UnreadableEvent
from ingest.processing import (
    RAW_KEPT_CHARS,
    Outcome,
    at_micros,
    merge_summaries,
    micros,
    process_lines,
    read_lines,
    rejections_store,
    store_references,
)
from ingest.validation import MAX_EVENT_DEPTH, VISIT_SPAN
from stores.models import Device, Store
from tenants.audit import Actor
from tenants.quotas import quota_require_room
from visits.models import Visit

logger = logging.getLogger(__name__)

PUSH_MAX_EVENTS = 1000
SESSION_BATCH = 500
# The visits in the store up to this before and after a scale or device event are touched by it.
LOOSE_MARGIN = timedelta(minutes=5)
# A live push is finished by its store's `ingest.finish_pushes`: one is sent unless one is pending already (the
# marker, cleared as it starts; it lapses after this many seconds, should the message be lost before), and it
# finishes every push of the store not finished yet, with the summaries the pushes kept in the cache.
FINISH_PENDING = "push-finish-pending:{store}"
FINISH_PENDING_FOR = 30
PUSH_SUMMARY = "push-summary:{stream}:{started}"
PUSHES_PER_FINISH = 200


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
    quota_require_room(tenant=store.tenant, name="streams_in_flight")
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


def stream_prepare(*, stream_id: int) -> None:
    """Make the stream's NDJSON file, cut it into chunks and send them to the workers — once.

    A prepare sent again (by `streams_resume_stalled`, or a message delivered twice) finds the stream being
    prepared (its row locked: it does not wait) or prepared already, and does nothing; a prepared stream's lost
    chunks are `streams_resume_stalled`'s to send again. A worker killed mid-prepare rolls it back whole.
    """
    with transaction.atomic():
        stream = (
            EventStream.objects.select_for_update(skip_locked=True)
            .filter(pk=stream_id, status=EventStream.Status.QUEUED)
            .first()
        )
        if stream is None:
            return
        _prepare_chunks(stream)
        if stream.status == EventStream.Status.FAILED:
            return
        chunks = list(StreamChunk.objects.filter(stream=stream).order_by("seq").values_list("pk", flat=True))
        for chunk_id in far_apart(chunks):
            _send_chunk(stream.tenant_id, chunk_id)
    if not chunks:
        stream_finish(stream_id=stream.pk)


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
    stream.status = EventStream.Status.PROCESSING
    stream.started_at = timezone.now()
    try:
        spans = _chunk_spans(stream)
    except chunking.UnpackRefused as refused:
        stream.status = EventStream.Status.FAILED
        stream.failure_reason = refused.reason
        stream.finished_at = timezone.now()
        _remove_files(stream)
        stream.save()
        return
    chunks = StreamChunk.objects.bulk_create(
        StreamChunk(
            tenant_id=stream.tenant_id,
            stream=stream,
            seq=seq,
            start_offset=span.start,
            end_offset=span.end,
            first_line=span.first_line,
        )
        for seq, span in enumerate(spans)
    )
    stream.chunks_total = len(chunks)
    stream.bytes_total = chunks[-1].end_offset if chunks else 0
    stream.save()


def _chunk_spans(stream: EventStream) -> list[chunking.ChunkSpan]:
    """Cut the upload into chunks: a plain file where it is stored; a gzip file inflated (within bounds) and
    packed again as one gzip member per chunk, next to it (`ingest.chunking`)."""
    chunk_bytes = settings.INGEST_CHUNK_BYTES
    with stream.file.open("rb") as upload:
        gzipped = upload.read(2) == chunking.GZIP_MAGIC
        upload.seek(0)
        if not gzipped:
            stream.plain_file = stream.file.name
            return chunking.plain_spans(cast(BinaryIO, upload), chunk_bytes=chunk_bytes)
        limits = chunking.Limits(
            max_bytes=settings.INGEST_MAX_UNPACKED_BYTES,
            max_ratio=settings.INGEST_MAX_GZIP_RATIO,
            ratio_after=settings.INGEST_GZIP_RATIO_AFTER_BYTES,
        )
        with tempfile.TemporaryFile() as packed:  # compressed: nothing is ever kept decompressed
            spans, stream.failure_reason = chunking.repack(
                cast(BinaryIO, upload), packed, chunk_bytes=chunk_bytes, limits=limits
            )
            name = f"{stream.file.name}.chunks.gz"
            default_storage.delete(name)  # what a prepare killed before it committed left
            stream.plain_file = default_storage.save(name, File(packed))
    stream.packed = True
    return spans


def _remove_files(stream: EventStream, *, keep_upload: bool = False) -> None:
    """Forget the stream's packed chunks, and its upload unless `keep_upload`; delete them once this commits."""
    names = []
    if stream.packed and stream.plain_file:
        names.append(stream.plain_file)
        stream.plain_file = ""
    if not keep_upload and stream.file:
        names.append(stream.file.name)
        stream.file = ""
        stream.plain_file = ""
    if names:
        transaction.on_commit(lambda: _delete_stored(names))


def _delete_stored(names: list[str]) -> None:
    for name in names:
        try:
            default_storage.delete(name)
        except OSError:
            logger.warning("could not delete %s from storage", name, exc_info=True)


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
        if stream.stopped_at is not None:  # mostly refused lines: its other chunks are left unread
            return
        with open_range(stream.plain_file, start=chunk.start_offset, end=chunk.end_offset) as file:
            outcome = process_lines(
                stream=stream,
                numbered_lines=_chunk_lines(stream, chunk, file),
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


def _chunk_lines(stream: EventStream, chunk: StreamChunk, file: BinaryIO) -> Iterator[tuple[int, bytes]]:
    if not stream.packed:
        return read_lines(file, start=chunk.start_offset, end=chunk.end_offset, first_line=chunk.first_line)
    file.seek(chunk.start_offset)
    return chunking.packed_lines(file.read(chunk.end_offset - chunk.start_offset), first_line=chunk.first_line)


def _commit_asynchronously() -> None:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL synchronous_commit TO OFF")


def _count_chunk(*, stream_id: int, outcome: Outcome, size: int) -> bool:
    """Add a chunk's counts to its stream and store its rejections while the stream has room for them (under the
    stream's row lock); True when the stream is to be finished: this was its last chunk, or it is stopped here.

    FOR NO KEY UPDATE: rejections (of this chunk, or of a finish) hold KEY SHARE locks on the stream row
    through their foreign key, which a plain FOR UPDATE would wait on.
    """
    stream = EventStream.objects.select_for_update(no_key=True).get(pk=stream_id)
    kept = outcome.refused[: max(settings.INGEST_MAX_STORED_REJECTIONS - stream.rejections_stored, 0)]
    rejections_store(stream=stream, refused=kept)
    stream.rejections_stored += len(kept)
    stream.lines += outcome.lines
    stream.accepted += outcome.accepted
    stream.duplicates += outcome.duplicates
    stream.rejected += outcome.rejected
    stream.bytes_done += size
    stream.chunks_done += 1
    stopped = stream.stopped_at is None and _mostly_refused(stream, outcome)
    stream.save(
        update_fields=[
            "lines",
            "accepted",
            "duplicates",
            "rejected",
            "rejections_stored",
            "bytes_done",
            "chunks_done",
            "stopped_at",
            "failure_reason",
        ]
    )
    return stopped or stream.chunks_done == stream.chunks_total


def _mostly_refused(stream: EventStream, outcome: Outcome) -> bool:
    """Stop a stream whose lines are mostly refused once enough of them have been read: it is not what it should
    be (not events, another store's, ...), and reading on would only refuse more. Says why on the stream."""
    if (
        stream.lines < settings.INGEST_STOP_AFTER_LINES
        or stream.rejected < settings.INGEST_STOP_REFUSED_SHARE * stream.lines
    ):
        return False
    example = f" — for example line {outcome.refused[0].line}: {outcome.refused[0].reason}" if outcome.refused else ""
    stream.stopped_at = timezone.now()
    stream.failure_reason = (
        f"Stopped after {stream.lines:,} lines, {stream.rejected:,} of them ({stream.rejected / stream.lines:.0%}) "
        f"refused{example}. Check that the file holds this store's events, one JSON object per line; the events "
        "accepted so far are kept."
    )
    return True


def stream_finish(*, stream_id: int, summary: dict[str, Any] | None = None) -> None:
    """Close a stream: refuse events of sessions never started, update device health, hand visits on.

    What it needs of the stream's events comes from the summaries its chunks made of them (or `summary`,
    for a live push), not from reading the events again; from the events when a summary is missing.
    A stream stopped early (mostly refused lines) is finished with the chunks it has read; the chunks still
    in a worker's hands are waited for (their row locks, taken before the stream's as they take them).
    Its files are removed when it fails, and the packed copy of a gzip upload when it is done.
    """
    with transaction.atomic(), garbage_collection_paused():  # a summary of 100k sessions is 100k lists
        list(StreamChunk.objects.select_for_update(of=("self",)).filter(stream_id=stream_id, done=False).values("pk"))
        stream = EventStream.objects.select_for_update(no_key=True).select_related("store").get(pk=stream_id)
        closed = _stream_close(stream, summary)
        if closed is None:
            return
        # Finished when its visits are handed on: the refresh tasks are sent as this transaction commits, then
        # one settling of the store, behind them in the queue, for the visits due already; each refresh sends a
        # settling for when the windows of its visits that have just left end. (Should the first start while the
        # last refresh still runs elsewhere and find nothing more due, the periodic `visits.settle_due` settles
        # what is left.) A live push's visits are refreshed on the live queue, so that its warnings never wait
        # behind a day's upload; no queue is behind that one, so each of its refreshes sends the settling itself.
        live = stream.source == EventStream.Source.PUSH
        for refresh in visits_to_refresh(*closed):
            enqueue_on_commit(
                "visits.refresh_visits",
                queue=LIVE_QUEUE if live else None,
                tenant_id=stream.tenant_id,
                store_id=stream.store_id,
                sessions=refresh.sessions,
                then_settle=live,
                since=refresh.since,
                until=refresh.until,
            )
        if closed[0] and not live:
            enqueue_on_commit("visits.settle_store", tenant_id=stream.tenant_id, store_id=stream.store_id)
        enqueue_on_commit("stock.check_low", tenant_id=stream.tenant_id, store_id=stream.store_id)


def _stream_close(
    stream: EventStream, summary: dict[str, Any] | None
) -> tuple[list[str], dict[str | None, _SessionSeen]] | None:
    """Finish `stream`, its row locked by the caller; the sessions whose visits it touched (in time order) and
    what it saw of each, or None when it is finished already or still waits for a chunk."""
    if stream.status == EventStream.Status.DONE or stream.finished_at is not None:
        return None
    if stream.chunks_done < stream.chunks_total and stream.stopped_at is None:  # a chunk's commit lost: redone
        return None
    summary = summary if summary is not None else _chunks_summary(stream)
    seen = _stream_sessions(stream) if summary is None else _sessions_of(summary)
    refused = _reject_unknown_sessions(stream, seen)
    unknown = {row["session"] for row in refused}
    if summary is None:
        _record_device_observations(stream)
    else:
        _record_devices(stream, *_devices_of(summary, stream=stream, refused=refused))
    sessions = _sessions_touched(stream, seen, unknown)
    stream.status = EventStream.Status.FAILED if stream.failure_reason else EventStream.Status.DONE
    stream.finished_at = timezone.now()
    stream.bytes_done = stream.bytes_total
    _remove_files(stream, keep_upload=stream.status == EventStream.Status.DONE)
    stream.save()
    metrics.count_events(
        source=stream.source, accepted=stream.accepted, duplicates=stream.duplicates, rejected=stream.rejected
    )
    return sessions, seen


@dataclass(frozen=True)
class VisitsToRefresh:
    """One `visits.refresh_visits`' worth of sessions, and the time of the events that brought them (ISO 8601)."""

    sessions: list[str]
    since: str
    until: str


def visits_to_refresh(sessions: list[str], seen: dict[str | None, _SessionSeen]) -> list[VisitsToRefresh]:
    """These sessions (in time order) cut into refreshes of `VISITS_PER_TASK`, each with its events' time."""
    refreshes = []
    for start in range(0, len(sessions), settings.VISITS_PER_TASK):
        batch = sessions[start : start + settings.VISITS_PER_TASK]
        since, until = _time_of(batch, seen)
        refreshes.append(VisitsToRefresh(batch, since.isoformat(), until.isoformat()))
    return refreshes


def _time_of(sessions: list[str], seen: dict[str | None, _SessionSeen]) -> tuple[datetime, datetime]:
    """The first and last time of this stream's events that bear on these sessions: their own, or for a visit a
    scale or device event of the stream touched (`_sessions_touched`), the time of those events, and a margin."""
    spans = [seen[session] for session in sessions if session in seen]
    loose = seen.get(None)
    if loose is not None and len(spans) < len(sessions):
        margin = LOOSE_MARGIN // timedelta(microseconds=1)
        spans.append(_SessionSeen(loose.first - margin, loose.last + margin, False))
    return at_micros(min(span.first for span in spans)), at_micros(max(span.last for span in spans))


class _SessionSeen(NamedTuple):
    first: int  # microseconds since the epoch, as summaries keep times
    last: int
    started: bool  # a session.started of it is in this stream


def _chunks_summary(stream: EventStream) -> dict[str, Any] | None:
    """The summaries of the stream's chunks added up; None when a chunk has none (processed before they were)."""
    chunks = StreamChunk.objects.filter(stream=stream, done=True)  # all of them, unless the stream was stopped
    texts = list(chunks.values_list(Cast("summary", TextField()), flat=True))
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
        around = LOOSE_MARGIN
        overlapping = Visit.objects.filter(
            store_id=stream.store_id, entered_at__lte=at_micros(span.last) + around
        ).exclude(exited_at__lt=at_micros(span.first) - around)
        for session, entered in overlapping.values_list("session", "entered_at"):
            firsts.setdefault(session, micros(entered) if entered else span.first)
    return sorted(firsts, key=lambda session: (firsts[session], session))


def _reject_unknown_sessions(stream: EventStream, seen: dict[str | None, _SessionSeen]) -> list[dict[str, Any]]:
    """Events of this stream for a session no `session.started` in the store ever opened become rejections;
    return those events (session, device, type, ts, ...).

    Only the sessions the stream did not start itself are looked up — a session's start within `VISIT_SPAN` of
    its events, so that on PostgreSQL only the day partitions of that time are read — in batches of plain indexed
    look-ups rather than one anti-join: without column statistics (a fresh database, autovacuum off) PostgreSQL
    planned the anti-join as a nested loop, quadratic in the stream.
    """
    sessions = sorted(session for session, row in seen.items() if session is not None and not row.started)
    unknown: list[str] = []
    for start in range(0, len(sessions), SESSION_BATCH):
        batch = sessions[start : start + SESSION_BATCH]
        first, last = _time_of(batch, seen)
        started = _sessions_started(stream, batch, since=first - VISIT_SPAN, until=last + VISIT_SPAN)
        unknown += [session for session in batch if session not in started]
    orphans = []
    for start in range(0, len(unknown), SESSION_BATCH):
        # By store and session (their index), not by stream: statistics may not know the stream yet.
        batch = unknown[start : start + SESSION_BATCH]
        first, last = _time_of(batch, seen)
        rows = (
            Event.objects.filter(store_id=stream.store_id, session__in=batch, ts__gte=first, ts__lte=last)
            .exclude(type="session.started")
            .values("pk", "line", "event_id", "session", "device", "type", "ts", "stream_id")
        )
        orphans += [row for row in rows if row["stream_id"] == stream.pk]
    if not orphans:
        return []
    kept = orphans[: max(settings.INGEST_MAX_STORED_REJECTIONS - stream.rejections_stored, 0)]
    raw = dict(
        Event.objects.filter(pk__in=[row["pk"] for row in kept]).values_list(
            "pk", Left(Cast("payload", TextField()), RAW_KEPT_CHARS)
        )
    )
    Rejection.objects.bulk_create(
        [
            Rejection(
                tenant_id=stream.tenant_id,
                stream=stream,
                line=row["line"],
                event_id=row["event_id"],
                reason=f"unknown session {row['session']!r}: no session.started for it in this store "
                "(send the session.started first, then this event again)",
                raw=raw[row["pk"]],
            )
            for row in kept
        ],
        batch_size=1000,
    )
    Event.objects.filter(pk__in=[row["pk"] for row in orphans]).delete()
    stream.accepted -= len(orphans)
    stream.rejected += len(orphans)
    stream.rejections_stored += len(kept)
    return orphans


def _sessions_started(stream: EventStream, sessions: list[str], *, since: datetime, until: datetime) -> set[str]:
    """Which of these sessions a `session.started` of the stream's store, from `since` to `until`, opened.

    In SQL: every live push asks this, and the ORM's building of the query took 0.5 ms of the push's CPU, the
    statement itself a tenth of that.
    """
    marks = ", ".join(["%s"] * len(sessions))
    adapt = connection.ops.adapt_datetimefield_value
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT session FROM {Event._meta.db_table} WHERE tenant_id = %s AND store_id = %s AND type = %s "  # noqa: S608 — the model's table, values bound
            f"AND session IN ({marks}) AND ts >= %s AND ts <= %s",
            [stream.tenant_id, stream.store_id, "session.started", *sessions, adapt(since), adapt(until)],
        )
        return {session for (session,) in cursor.fetchall()}


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
    """Move each device's last-heard time and status forward (never back) to what the stream says.

    Written one plain UPDATE per device that changed: `bulk_update`'s CASE expressions took 1.5-3.4 ms of the
    live worker's CPU for the 3 to 10 devices a push names, more than the push's own validation and writing.
    """
    devices = list(Device.objects.select_for_update().filter(store_id=stream.store_id, code__in=seen).order_by("pk"))
    changed = []
    for device in devices:
        before = (device.last_seen_at, device.status, device.status_changed_at)
        last = seen[device.code]
        if device.last_seen_at is None or last > device.last_seen_at:
            device.last_seen_at = last
        report = reported.get(device.code)
        if report and (device.status_changed_at is None or report["ts"] >= device.status_changed_at):
            device.status, device.status_changed_at = report["status"], report["ts"]
        if (device.last_seen_at, device.status, device.status_changed_at) != before:
            changed.append(device)
    if not changed:
        return
    adapt = connection.ops.adapt_datetimefield_value
    with connection.cursor() as cursor:
        cursor.executemany(
            f"UPDATE {Device._meta.db_table} SET last_seen_at = %s, status = %s, status_changed_at = %s WHERE id = %s",  # noqa: S608 — the model's table, values bound
            [(adapt(d.last_seen_at), d.status, adapt(d.status_changed_at), d.pk) for d in changed],
        )


def events_push(
    *, actor: Actor, store: Store, events: Any, layout_versions: tuple[tuple[int, datetime], ...] | None = None
) -> PushResult:
    """Validate and store up to 1,000 events sent live, and hand their finishing on to a worker.

    The same validation and writing as uploads (one COPY and one INSERT), and the one check a live store acts on
    at once — an event of a session never started is refused, to be sent again after its `session.started` (one
    indexed look-up) — answered as soon as that commits. The rest of finishing (device health, handing the
    visits on to be refreshed and settled) runs in the store's `ingest.finish_pushes` task, sent unless one is
    pending already (`pushes_finish`): a push never waits on the workers, on a device's row lock or on other
    visits' settling. The summary of the accepted events waits in the cache for that task (the events are read
    again if it is gone, or if the message is lost and `streams_resume_stalled` sends `ingest.finish_stream`).
    `layout_versions`: the store's, when the caller read them with the store (`store_with_layout_versions`).
    """
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
            references=store_references(store=store, versions=layout_versions),
            now=timezone.now(),
        )
        rejections_store(stream=stream, refused=outcome.refused)
        stream.lines, stream.accepted, stream.duplicates = outcome.lines, outcome.accepted, outcome.duplicates
        stream.rejected, stream.rejections_stored = outcome.rejected, len(outcome.refused)
        orphans = _reject_unknown_sessions(stream, _sessions_of(outcome.summary))
        stream.save(update_fields=["lines", "accepted", "duplicates", "rejected", "rejections_stored"])
        # With events refused since the summary was made, the task reads what is left instead.
        summary = None if orphans else outcome.summary
        transaction.on_commit(lambda: _push_finishing_asked(stream=stream, summary=summary))
    refused = Rejection.objects.filter(stream=stream).order_by("line") if orphans else outcome.refused
    rejected = [{"index": row.line, "event_id": row.event_id or None, "reason": row.reason} for row in refused]
    return PushResult(stream=stream, accepted=stream.accepted, duplicates=stream.duplicates, rejected=rejected)


def _push_finishing_asked(*, stream: EventStream, summary: dict[str, Any] | None) -> None:
    """As a push commits: keep its summary for its finishing, and send the store's finishing unless one is pending
    already — that one finishes this push too, as it looks for the store's unfinished pushes once it starts."""
    if summary is not None:
        cache.set(_summary_key(stream), summary, timeout=settings.INGEST_STALLED_AFTER_SECONDS)
    if cache.add(FINISH_PENDING.format(store=stream.store_id), True, timeout=FINISH_PENDING_FOR):
        enqueue_on_commit(
            "ingest.finish_pushes", queue=LIVE_QUEUE, tenant_id=stream.tenant_id, store_id=stream.store_id
        )


def _summary_key(stream: EventStream) -> str:
    """Where a push's summary waits for its finishing: the stream's id and start, unique even across databases."""
    return PUSH_SUMMARY.format(stream=stream.pk, started=micros(stream.started_at) if stream.started_at else 0)


@dataclass(frozen=True)
class PushesFinished:
    streams: list[int]
    refreshes: list[VisitsToRefresh]


def pushes_finish_begun(*, store_id: int) -> None:
    """The store's finishing has started: a push committed from now on sends another (this one may not see it)."""
    cache.delete(FINISH_PENDING.format(store=store_id))


def pushes_finish(*, store_id: int) -> PushesFinished:
    """Finish the store's live pushes not finished yet (`PUSHES_PER_FINISH` at most; another finishing is sent for
    the rest), in the caller's transaction; the refreshes of the visits they touched, for the caller to run in it.

    One finishing for all the pushes that came while it waited: the live worker's work grows with the stores,
    not with the pushes, once it is behind. Pushes another worker is finishing (their rows locked: a finishing
    `streams_resume_stalled` sent) are left to it. A push whose summary is missing is read from its events.
    """
    with garbage_collection_paused():
        streams = list(
            EventStream.objects.select_for_update(no_key=True, skip_locked=True, of=("self",))
            .select_related("store")
            .filter(store_id=store_id, source=EventStream.Source.PUSH, status=EventStream.Status.PROCESSING)
            .order_by("pk")[:PUSHES_PER_FINISH]
        )
        if not streams:
            return PushesFinished([], [])
        if len(streams) > 1:  # each stream locks its devices in id order; several, all of them first, in that order
            list(Device.objects.select_for_update().filter(store_id=store_id).order_by("pk").values_list("pk"))
        keys = [_summary_key(stream) for stream in streams]
        summaries = cache.get_many(keys)
        finished: list[int] = []
        sessions: dict[str, None] = {}  # in the order the pushes came, each once
        seen: dict[str | None, _SessionSeen] = {}
        for stream, key in zip(streams, keys, strict=True):
            closed = _stream_close(stream, summaries.get(key))
            if closed is None:
                continue
            finished.append(stream.pk)
            sessions |= dict.fromkeys(closed[0])
            _seen_merge(seen, closed[1])
    transaction.on_commit(lambda: cache.delete_many(keys))
    tenant_id = streams[0].tenant_id
    if len(streams) == PUSHES_PER_FINISH:
        enqueue_on_commit("ingest.finish_pushes", queue=LIVE_QUEUE, tenant_id=tenant_id, store_id=store_id)
    if finished:
        enqueue_on_commit("stock.check_low", tenant_id=tenant_id, store_id=store_id)
    return PushesFinished(finished, visits_to_refresh(list(sessions), seen))


def _seen_merge(into: dict[str | None, _SessionSeen], seen: dict[str | None, _SessionSeen]) -> None:
    """What several streams saw of each session (None: of no session): from the first time to the last."""
    for session, row in seen.items():
        kept = into.get(session)
        into[session] = (
            row
            if kept is None
            else _SessionSeen(min(kept.first, row.first), max(kept.last, row.last), kept.started or row.started)
        )


def streams_resume_stalled(*, stalled_after: timedelta) -> int:
    """Send again what each unfinished stream waits for once it has made no progress for `stalled_after`; return
    how many streams were resumed.

    Runs platform-wide (a periodic job), whatever the broker does with the message a killed worker held: an
    upload still queued is prepared (its prepare was lost); one being processed has its undone chunks sent again,
    or is finished when they are all done; one stopped early, and a push, are finished. What is sent again is safe
    twice (`stream_prepare`, `chunk_process` and `stream_finish` each do their part once). A stream a worker holds
    (its row locked: being prepared, a chunk being counted) is left alone, and each is sent again at most once per
    `stalled_after` (`resent_at`), so that a backlog of streams waiting for the workers does not grow the queues.
    """
    now = timezone.now()
    cutoff = now - stalled_after
    with transaction.atomic():
        streams = list(
            EventStream.objects.select_for_update(no_key=True, skip_locked=True, of=("self",))
            .filter(
                Q(status=EventStream.Status.QUEUED, created_at__lte=cutoff)
                | Q(status=EventStream.Status.PROCESSING, started_at__lte=cutoff)
            )
            .filter(Q(resent_at__isnull=True) | Q(resent_at__lte=cutoff))
            .order_by("pk")
        )
        resumed = [stream for stream in streams if _resume(stream, cutoff=cutoff)]
        EventStream.objects.filter(pk__in=[stream.pk for stream in resumed]).update(resent_at=now)
    return len(resumed)


def _resume(stream: EventStream, *, cutoff: datetime) -> bool:
    """Send again what `stream` waits for if it has waited since before `cutoff`; whether it had."""
    if stream.status == EventStream.Status.QUEUED:
        enqueue_on_commit("ingest.prepare_stream", tenant_id=stream.tenant_id, stream_id=stream.pk)
        return True
    if stream.stopped_at is not None and stream.stopped_at > cutoff:
        return False
    if stream.source == EventStream.Source.PUSH or stream.stopped_at is not None:  # its finishing was lost
        enqueue_on_commit("ingest.finish_stream", tenant_id=stream.tenant_id, stream_id=stream.pk)
        return True
    chunks = StreamChunk.objects.filter(stream=stream)
    last_progress = chunks.aggregate(last=Max("done_at"))["last"] or stream.started_at
    if last_progress is None or last_progress > cutoff:
        return False
    pending = list(chunks.filter(done=False).order_by("seq").values_list("pk", flat=True))
    for chunk_id in far_apart(pending):
        _send_chunk(stream.tenant_id, chunk_id)
    if not pending:  # every chunk done: its finishing was lost
        enqueue_on_commit("ingest.finish_stream", tenant_id=stream.tenant_id, stream_id=stream.pk)
    return True


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
