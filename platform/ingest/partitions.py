"""The events table over time, on PostgreSQL: one partition per UTC day of `ts`, created ahead; raw events older than
their tenant's retention exported to storage and removed.

Daily partitions (not monthly): the retention is counted in days and a day is the unit that leaves; at the scale a
chain of stores sends (~50 M events a day) a day is a partition of a manageable size, and a year's retention ~400
partitions, which the planner prunes at plan time when a query bounds `ts` (visits refresh, settling).

The (tenant, store, event id) idempotency key lives in `ingest_eventkey` (ingest's migration): deleting events through
the events table releases their keys; dropping a partition does not, so the keys of a dropped day are deleted here.

Retention is per tenant (its plan's `event_retention_days`) while the partitions are shared: a day's partition is
dropped only once every tenant's retention has passed it; before that, the rows of the tenants whose retention has
passed are deleted (per store and day). Either way each (store, day) is first exported to storage as gzip NDJSON in
the event-stream format (`event_export_name`), re-importable through the ordinary upload, and audited on the store.
Visits, receipts, payments, invoices and the audit log are kept.

SQLite (embedded mode) keeps a plain table: partitions are not made there; retention deletes rows the same way.
"""

from __future__ import annotations

import gzip
import re
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

import orjson
from django.conf import settings
from django.core.files import File
from django.core.files.storage import default_storage
from django.db import connection, transaction

from billing.invoicing.selectors import plan_versions_on
from ingest.models import Event
from stores.models import Store
from tenants.audit import Actor, audit_record
from tenants.models import AuditAction, Tenant

PARENT = Event._meta.db_table
DEFAULT_PARTITION = f"{PARENT}_default"
PARTITION_NAME = re.compile(rf"{PARENT}_p(\d{{8}})")
DAY = timedelta(days=1)
KEYS_BATCH = 50_000
EXPORT_ROWS = 5000  # rows fetched at a time from the server-side cursor of an export


def partitioned() -> bool:
    return connection.vendor == "postgresql"


def day_start(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def partition_name(day: date) -> str:
    return f"{PARENT}_p{day:%Y%m%d}"


def event_partitions() -> dict[date, str]:
    """The day partitions of the events table (not the default one), by day."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = %s::regclass",
            [PARENT],
        )
        names = [name for (name,) in cursor.fetchall()]
    return {
        datetime.strptime(found.group(1), "%Y%m%d").date(): name
        for name in names
        if (found := PARTITION_NAME.fullmatch(name))
    }


def partitions_ensure(*, today: date, ahead_days: int) -> list[date]:
    """Create the partitions of `today` and the `ahead_days` after it, and of every day that has events in the default
    partition (a back-filled or restored day): those rows move into their day's partition. Returns the days created."""
    if not partitioned():
        return []
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT DISTINCT (ts AT TIME ZONE 'UTC')::date FROM {DEFAULT_PARTITION}")  # noqa: S608
        stranded = {day for (day,) in cursor.fetchall()}
    wanted = {today + timedelta(days=n) for n in range(ahead_days + 1)} | stranded
    missing = sorted(wanted - set(event_partitions()))
    for day in missing:
        partition_create(day=day)
    return missing


def partition_create(*, day: date) -> None:
    """The partition of one day, made beside the table and attached (a SHARE UPDATE EXCLUSIVE lock on the events
    table: writers go on), after moving into it the day's rows the default partition holds. They are deleted from
    the default partition itself, so that the events table's trigger keeps their keys."""
    name, start, end = partition_name(day), day_start(day), day_start(day + DAY)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL lock_timeout = '30s'")
        cursor.execute(f"CREATE TABLE {name} (LIKE {PARENT} INCLUDING DEFAULTS)")
        cursor.execute(
            f"WITH moved AS (DELETE FROM {DEFAULT_PARTITION} WHERE ts >= %s AND ts < %s RETURNING *) "  # noqa: S608
            f"INSERT INTO {name} SELECT * FROM moved",
            [start, end],
        )
        cursor.execute(f"ALTER TABLE {PARENT} ATTACH PARTITION {name} FOR VALUES FROM (%s) TO (%s)", [start, end])


def retention_days_by_tenant(*, today: date) -> dict[int, int]:
    """Each tenant's event retention in days: its plan's on `today`, or EVENT_RETENTION_DAYS without a plan."""
    plans = plan_versions_on(day=today)
    return {
        tenant_id: plans[tenant_id].plan.event_retention_days if tenant_id in plans else settings.EVENT_RETENTION_DAYS
        for tenant_id in Tenant.objects.values_list("pk", flat=True)
    }


def event_export_name(*, store: Store, day: date) -> str:
    return f"event-exports/{store.tenant_id}/{store.code}/{day:%Y/%m}/{store.code}-{day:%Y-%m-%d}.ndjson.gz"


@dataclass
class Retired:
    """What a retention run removed: days whose partition was dropped, rows deleted, files written."""

    partitions_dropped: list[date] = field(default_factory=list)
    events_removed: int = 0
    files: list[str] = field(default_factory=list)
    keys_released: int = 0


def events_retire(*, today: date, actor: Actor) -> Retired:
    """Export and remove the events older than each tenant's retention (see the module)."""
    retention = retention_days_by_tenant(today=today)
    if not retention:
        return Retired()
    first_kept = {tenant_id: today - timedelta(days=days) for tenant_id, days in retention.items()}
    droppable_before = min(first_kept.values())
    partitions = event_partitions() if partitioned() else {}
    retired = Retired()
    for tenant_id, kept_from in sorted(first_kept.items()):
        for store_id, day, count in _days_held(tenant_id=tenant_id, before=kept_from):
            store = Store.objects.get(pk=store_id)
            name = export_day(store=store, day=day)
            dropped_with_partition = day < droppable_before and day in partitions
            if not dropped_with_partition:
                _delete_day(store=store, day=day)
            retired.events_removed += count
            retired.files.append(name)
            audit_record(
                actor=actor,
                tenant_id=tenant_id,
                action=AuditAction.EVENTS_RETIRED,
                obj=store,
                changes={
                    "day": day.isoformat(),
                    "events": count,
                    "retention_days": retention[tenant_id],
                    "exported_to": name,
                    "removed_by": "partition dropped" if dropped_with_partition else "rows deleted",
                },
            )
    for day in sorted(day for day in partitions if day < droppable_before):
        partition_drop(day=day)
        retired.partitions_dropped.append(day)
    if partitioned():  # every event before `droppable_before` is gone now: so go their keys (elsewhere: a unique index)
        retired.keys_released = keys_release(before=day_start(droppable_before))
    return retired


def _days_held(*, tenant_id: int, before: date) -> Iterable[tuple[int, date, int]]:
    """(store, day, events) of the tenant's events before `before`, oldest first."""
    with connection.cursor() as cursor:
        day = "(ts AT TIME ZONE 'UTC')::date" if partitioned() else "date(ts)"
        cursor.execute(
            f"SELECT store_id, {day} AS day, COUNT(*) FROM {PARENT} "  # noqa: S608 — names from the model
            "WHERE tenant_id = %s AND ts < %s GROUP BY 1, 2 ORDER BY 2, 1",
            [tenant_id, day_start(before)],
        )
        rows = cursor.fetchall()
    return [(store, day if isinstance(day, date) else date.fromisoformat(day), count) for store, day, count in rows]


def export_day(*, store: Store, day: date) -> str:
    """Write the store's events of one UTC day to storage as gzip NDJSON, one event a line as it was accepted (an
    entry token already as its hash), in time order: a file the ordinary upload takes back. Returns its name; a
    file of the same name (an earlier run cut short) is replaced."""
    name = event_export_name(store=store, day=day)
    with tempfile.TemporaryFile() as spool:
        with gzip.GzipFile(fileobj=spool, mode="wb", mtime=0, compresslevel=6) as packed:
            for lines in _event_lines(store=store, day=day):
                packed.write(b"".join(lines))
        spool.seek(0)
        if default_storage.exists(name):
            default_storage.delete(name)
        saved = default_storage.save(name, File(spool, name=name))
    return saved


def _event_lines(*, store: Store, day: date) -> Iterable[list[bytes]]:
    text = "payload::text" if partitioned() else "payload"
    with transaction.atomic(), connection.chunked_cursor() as cursor:
        cursor.execute(
            f"SELECT {text} FROM {PARENT} WHERE tenant_id = %s AND store_id = %s "  # noqa: S608
            "AND ts >= %s AND ts < %s ORDER BY ts, event_id",
            [store.tenant_id, store.pk, day_start(day), day_start(day + DAY)],
        )
        while rows := cursor.fetchmany(EXPORT_ROWS):
            yield [_exported(payload.encode()) for (payload,) in rows]


def _exported(line: bytes) -> bytes:
    """A stored event as an export line: as accepted, but for the hash of an entry token in `shopper`, marked as one
    (`sha256:<hex>`) so that an upload of the file stores it as it is rather than hashing it again."""
    if b'"shopper"' in line:
        value = orjson.loads(line)
        if isinstance(value.get("shopper"), str):
            value["shopper"] = f"sha256:{value['shopper']}"
            line = orjson.dumps(value)
    return line + b"\n"


def _delete_day(*, store: Store, day: date) -> int:
    """Delete the store's events of one day (the events table's trigger releases their keys)."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            f"DELETE FROM {PARENT} WHERE tenant_id = %s AND store_id = %s AND ts >= %s AND ts < %s",  # noqa: S608
            [store.tenant_id, store.pk, day_start(day), day_start(day + DAY)],
        )
        return int(cursor.rowcount)


def partition_drop(*, day: date) -> None:
    """Detach and drop one day's partition. A dropped table fires no trigger: the keys of its events are released
    after (`keys_release`)."""
    name = partition_name(day)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL lock_timeout = '30s'")
        cursor.execute(f"ALTER TABLE {PARENT} DETACH PARTITION {name}")
        cursor.execute(f"DROP TABLE {name}")


def keys_release(*, before: datetime) -> int:
    """Delete the idempotency keys of events before `before`, a batch per transaction (found through the keys' BRIN
    index on `ts`): once no event that old is left, its key would make a restored event read as a duplicate."""
    released = 0
    while True:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                "DELETE FROM ingest_eventkey WHERE ctid = ANY(ARRAY(SELECT ctid FROM ingest_eventkey "
                "WHERE ts < %s LIMIT %s))",
                [before, KEYS_BATCH],
            )
            released += cursor.rowcount
            if cursor.rowcount < KEYS_BATCH:
                return released
