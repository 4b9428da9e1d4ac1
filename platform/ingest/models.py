"""Event streams (uploads and live pushes), the events they bring, and the lines they refuse.

Every non-blank line of a stream ends as exactly one of accepted (a new event),
duplicate (its id was already accepted for the store) or rejected (with the
line number and a reason): `lines == accepted + duplicates + rejected`.
"""

from __future__ import annotations

from django.db import models
from django.db.models import F, Q
from django.utils import timezone

from core.bounded_json import BoundedJSONField
from core.models import TenantOwnedModel


def stream_upload_path(stream: EventStream, filename: str) -> str:
    return f"event-streams/{stream.tenant_id}/{timezone.now():%Y/%m/%d}/{filename}"


class EventStream(TenantOwnedModel):
    class Source(models.TextChoices):
        UPLOAD = "upload", "Upload"
        PUSH = "push", "Live push"

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        PROCESSING = "processing", "Processing"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    store = models.ForeignKey("stores.Store", on_delete=models.PROTECT, related_name="event_streams")
    source = models.CharField(max_length=8, choices=Source.choices, default=Source.UPLOAD)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.QUEUED)
    file = models.FileField(upload_to=stream_upload_path, max_length=300, blank=True)
    plain_file = models.CharField(
        max_length=300,
        blank=True,
        help_text="The file the chunks read: the upload, or for a gzip upload its lines packed again as one gzip "
        "member per chunk (`packed`). Removed when the stream fails (the upload too) or is done (the packed copy).",
    )
    packed = models.BooleanField(default=False, help_text="The chunks are gzip members of `plain_file`.")
    original_name = models.CharField(max_length=255, blank=True)
    size_bytes = models.BigIntegerField(default=0)
    bytes_total = models.BigIntegerField(default=0)
    bytes_done = models.BigIntegerField(default=0)
    chunks_total = models.PositiveIntegerField(default=0)
    chunks_done = models.PositiveIntegerField(default=0)
    lines = models.BigIntegerField(default=0)
    accepted = models.BigIntegerField(default=0)
    duplicates = models.BigIntegerField(default=0)
    rejected = models.BigIntegerField(default=0)
    rejections_stored = models.IntegerField(
        default=0, help_text="Rejections kept with their line and reason; the rest are only counted in `rejected`."
    )
    failure_reason = models.TextField(blank=True)
    stopped_at = models.DateTimeField(
        null=True, blank=True, help_text="When it was stopped for its lines being mostly refused (it ends failed)."
    )
    created_by = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    resent_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="When what it waited for (its preparation, chunks or finishing) was last sent again after it made "
        "no progress for INGEST_STALLED_AFTER_SECONDS (a worker killed, a message lost).",
    )

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["tenant", "store", "-created_at"], name="stream_tenant_store_created"),
            models.Index(fields=["tenant", "status"], name="stream_tenant_status"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(lines=F("accepted") + F("duplicates") + F("rejected")), name="stream_every_line_accounted"
            )
        ]

    def __str__(self) -> str:
        return f"stream {self.pk} ({self.get_source_display()}, {self.status})"

    @property
    def progress(self) -> float:
        if self.status == self.Status.DONE:
            return 1.0
        if not self.bytes_total:
            return 0.0
        return round(min(self.bytes_done / self.bytes_total, 1.0), 4)


class StreamChunk(TenantOwnedModel):
    """A byte range of a stream's NDJSON file, processed as one unit (one transaction, one task)."""

    stream = models.ForeignKey(EventStream, on_delete=models.CASCADE, related_name="chunks")
    seq = models.PositiveIntegerField()
    start_offset = models.BigIntegerField()
    end_offset = models.BigIntegerField()
    first_line = models.BigIntegerField(help_text="Line number (1-based) of the chunk's first line in the file.")
    done = models.BooleanField(default=False)
    lines = models.IntegerField(default=0)
    accepted = models.IntegerField(default=0)
    duplicates = models.IntegerField(default=0)
    rejected = models.IntegerField(default=0)
    done_at = models.DateTimeField(null=True, blank=True)
    summary = models.JSONField(
        null=True,
        blank=True,
        help_text="Its accepted events' sessions, devices and times, read when the stream finishes "
        "(ingest.processing.summarise).",
    )

    class Meta:
        ordering = ["stream_id", "seq"]
        constraints = [models.UniqueConstraint(fields=["tenant", "stream", "seq"], name="chunk_seq_unique")]

    def __str__(self) -> str:
        return f"chunk {self.seq} of stream {self.stream_id}"


class Event(TenantOwnedModel):
    """An accepted store event. (store, event id) is unique: the idempotency key of the contract.

    The platform's largest table, written millions of rows at a time, so it carries only the indexes its
    readers need, and no database foreign keys: a per-row check of tenant, store and stream at commit
    cost a quarter of the write (bench/ingest.py). Rows are written only by `ingest.processing`, which
    takes all three from the stream row it holds; deleting a tenant or store is still refused while it
    has events (PROTECT, enforced by Django). The (tenant, stream) index is a BRIN on PostgreSQL (streams
    are written in id order, so block ranges stay narrow) made by ingest's migration, not declared here.

    On PostgreSQL the table is partitioned by day of `ts` (ingest's migration, ingest.partitions): its primary key is
    (tenant, id, ts) and the (tenant, store, event id) key lives in the unpartitioned `ingest_eventkey`, claimed by
    a trigger as each event is inserted (a partitioned table's unique indexes must hold `ts`). The unique constraint
    below is SQLite's (embedded mode, one plain table); on PostgreSQL it is not in the database.
    """

    tenant = models.ForeignKey(
        "tenants.Tenant", on_delete=models.PROTECT, related_name="+", db_constraint=False, db_index=False
    )
    store = models.ForeignKey(
        "stores.Store", on_delete=models.PROTECT, related_name="+", db_constraint=False, db_index=False
    )
    event_id = models.CharField(max_length=64)
    type = models.CharField(max_length=24)
    ts = models.DateTimeField()
    session = models.CharField(max_length=64, null=True, blank=True)
    device = models.CharField(max_length=64, help_text="The camera, sensor or gate that reported it.")
    payload = BoundedJSONField()
    stream = models.ForeignKey(
        EventStream,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_constraint=False,
        db_index=False,
    )
    line = models.BigIntegerField(null=True, blank=True)
    received_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant", "store", "event_id"], name="event_id_unique_per_store")
        ]
        indexes = [
            # A session's events: a visit's. Without the time (a session's few events are sorted after reading)
            # and without the events of no session (scales, device health: a third of them), so that the
            # B-tree keeps one entry per session and its events (deduplication): a sixth of the size of a
            # (tenant, store, session, ts) index, with less written per event (bench/ingest.py).
            models.Index(
                fields=["tenant", "store", "session"],
                name="event_store_session",
                condition=Q(session__isnull=False),
            ),
            models.Index(fields=["tenant", "store", "ts"], name="event_store_ts"),
            # A device's latest health report before a time (settling): a few rows per device.
            models.Index(
                fields=["tenant", "store", "device", "ts"],
                name="event_device_status",
                condition=Q(type="device.status"),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.type} {self.event_id}"


class Rejection(TenantOwnedModel):
    """A line (or pushed event) that was refused, with a reason a person can act on."""

    stream = models.ForeignKey(EventStream, on_delete=models.CASCADE, related_name="rejections")
    line = models.BigIntegerField(help_text="Line number in the file; for a push, the event's index in the array.")
    event_id = models.CharField(max_length=64, blank=True)
    reason = models.TextField()
    raw = models.TextField(blank=True, help_text="The start of the line as received.")

    class Meta:
        ordering = ["stream_id", "line"]
        indexes = [models.Index(fields=["tenant", "stream", "line"], name="rejection_stream_line")]

    def __str__(self) -> str:
        return f"line {self.line}: {self.reason}"


class UnreadableEvent(TenantOwnedModel):
    """A stored event whose payload cannot be read back (it was stored before events were bounded in depth and size,
    or written by hand). Settling leaves it out and sends the visits it bears on to review; operators see it in
    `/ops/` and in the `openaisle_unreadable_events` metric, and decide what to do with it."""

    store = models.ForeignKey("stores.Store", on_delete=models.PROTECT, related_name="+")
    event_id = models.CharField(max_length=64)
    type = models.CharField(max_length=24)
    ts = models.DateTimeField()
    session = models.CharField(max_length=64, null=True, blank=True)
    reason = models.TextField()
    found_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-found_at"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "store", "event_id"], name="unreadable_event_once_per_store")
        ]

    def __str__(self) -> str:
        return f"unreadable {self.type} {self.event_id}"
