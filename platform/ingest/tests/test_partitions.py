"""Events partitioned by day on PostgreSQL: idempotency across partitions, partitions made ahead and out of the
default one, retention per plan (exported, removed, audited, restorable through an upload)."""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import orjson
import pytest
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from rest_framework.test import APIClient

from billing.invoicing.models import Plan
from billing.invoicing.tests.helpers import assign, make_plan
from core import tenancy
from ingest import partitions
from ingest.models import Event
from ingest.tests.conftest import DAY, day_of_events, eventually, wait_for_stream
from stores.models import Store
from tenants.audit import Actor
from tenants.models import AuditEntry, Tenant
from visits.models import Visit

pytestmark = pytest.mark.usefixtures("celery_worker")
postgresql_only = pytest.mark.skipif(connection.vendor != "postgresql", reason="partitions are PostgreSQL's")

FIELDS = ("event_id", "type", "ts", "session", "device", "payload")


@pytest.fixture(autouse=True)
def _partitions_made_here_dropped(transactional_db: None) -> Iterator[None]:
    """Partitions are tables: the database's flush between tests leaves them. Those a test made go with it."""
    if not partitions.partitioned():
        yield
        return
    before = set(partitions.event_partitions())
    yield
    for day in set(partitions.event_partitions()) - before:
        partitions.partition_drop(day=day)


def push(client: APIClient, store: Store, events: list[dict[str, Any]]) -> dict[str, Any]:
    answer = client.post(f"/api/v1/stores/{store.code}/events", events, format="json")
    assert answer.status_code == 202, answer.content
    body: dict[str, Any] = answer.json()
    return body


def stored(store: Store) -> list[tuple[Any, ...]]:
    return sorted(Event.unscoped.filter(store=store).values_list(*FIELDS), key=lambda row: row[0])


def partition_of(event_id: str) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT tableoid::regclass::text FROM ingest_event WHERE event_id = %s", [event_id])
        (name,) = cursor.fetchone()
    return str(name)


@postgresql_only
def test_the_events_table_is_partitioned_by_day_with_a_default_partition_and_partitions_ahead() -> None:
    today = DAY.date()
    created = partitions.partitions_ensure(today=today, ahead_days=3)

    assert created == [today + timedelta(days=n) for n in range(4)]
    assert partitions.partitions_ensure(today=today, ahead_days=3) == []
    with connection.cursor() as cursor:
        cursor.execute("SELECT relkind FROM pg_class WHERE relname = 'ingest_event'")
        assert cursor.fetchone() == ("p",)
        cursor.execute("SELECT 1 FROM pg_class WHERE relname = 'ingest_event_default' AND relispartition")
        assert cursor.fetchone() == (1,)


@postgresql_only
def test_a_resent_event_is_a_duplicate_whatever_its_time_and_whichever_partition_holds_it(
    api_a: APIClient, store_a: Store
) -> None:
    events = day_of_events(store_a, visits=2)
    assert push(api_a, store_a, events)["accepted"] == len(events)
    assert partition_of(events[0]["id"]) == "ingest_event_default"  # no partition of that day yet

    assert partitions.partitions_ensure(today=DAY.date() + timedelta(days=30), ahead_days=0) == [
        DAY.date(),
        DAY.date() + timedelta(days=30),
    ]
    assert partition_of(events[0]["id"]) == partitions.partition_name(DAY.date())  # moved, keys kept

    later = [{**event, "ts": event["ts"].replace("2026-03-02", "2026-03-05")} for event in events]
    body = push(api_a, store_a, later)
    assert (body["accepted"], body["duplicates"]) == (0, len(events))
    assert len(stored(store_a)) == len(events)
    assert push(api_a, store_a, events[:3])["duplicates"] == 3
    with connection.cursor() as cursor:  # any other insert claims its key too (the trigger), and is left out the same
        cursor.execute(
            "INSERT INTO ingest_event (tenant_id, store_id, event_id, type, ts, device, payload, received_at) "
            "VALUES (%s, %s, %s, 'device.status', now(), 'CAM-01', '{}', now())",
            [store_a.tenant_id, store_a.pk, events[0]["id"]],
        )
        assert cursor.rowcount == 0
    assert len(stored(store_a)) == len(events)


def _retention_plan(tenant: Tenant, days: int) -> None:
    version = make_plan(f"keep-{days}")
    Plan.objects.filter(pk=version.plan_id).update(event_retention_days=days)
    assign(tenant, version, DAY.date() - timedelta(days=400))


def test_events_past_their_plans_retention_are_exported_removed_audited_and_restorable_by_upload(
    api_a: APIClient, api_b: APIClient, store_a: Store, store_b: Store, tenant_a: Tenant
) -> None:
    events_a, events_b = day_of_events(store_a, visits=3), day_of_events(store_b, visits=2, prefix="b")
    push(api_a, store_a, events_a)
    push(api_b, store_b, events_b)
    eventually(lambda: Visit.unscoped.filter(store=store_a).count() == 3)
    partitions.partitions_ensure(today=DAY.date(), ahead_days=0)
    before_a, before_b = stored(store_a), stored(store_b)
    _retention_plan(tenant_a, 30)  # Bravo has no plan: EVENT_RETENTION_DAYS (395)
    today = DAY.date() + timedelta(days=40)

    with tenancy.platform_wide_scope():
        retired = partitions.events_retire(today=today, actor=Actor.system())

    assert stored(store_a) == [] and stored(store_b) == before_b
    if partitions.partitioned():
        assert DAY.date() in partitions.event_partitions()  # Bravo still keeps that day: Alpha's rows were deleted
    assert (retired.partitions_dropped, retired.events_removed) == ([], len(events_a))
    assert Visit.unscoped.filter(store=store_a).count() == 3  # visits stay
    name = partitions.event_export_name(store=store_a, day=DAY.date())
    assert retired.files == [name]
    entry = AuditEntry.unscoped.get(tenant=tenant_a, action="events.retired")
    assert entry.changes == {
        "day": "2026-03-02",
        "events": len(events_a),
        "retention_days": 30,
        "exported_to": name,
        "removed_by": "rows deleted",
    }
    with default_storage.open(name, "rb") as file:
        exported = gzip.decompress(file.read())
    assert len(exported.splitlines()) == len(events_a)
    assert all("shp_" not in line.decode() for line in exported.splitlines())  # entry tokens stay hashed

    upload = SimpleUploadedFile(name.rsplit("/", 1)[1], gzip.compress(exported), content_type="application/gzip")
    answer = api_a.post(f"/api/v1/stores/{store_a.code}/event-streams", {"file": upload}, format="multipart")
    assert answer.status_code == 202, answer.content
    status = wait_for_stream(api_a, answer.json()["id"])
    assert (status["status"], status["accepted"], status["rejected"]) == ("done", len(events_a), 0)
    assert stored(store_a) == before_a
    shoppers = set(Visit.unscoped.filter(store=store_a).values_list("shopper_token_hash", flat=True))
    named = {orjson.loads(line).get("shopper") for line in exported.splitlines()} - {None}
    assert {f"sha256:{shopper}" for shopper in shoppers} == named  # the same shoppers, not hashed twice

    Plan.objects.update(event_retention_days=30)
    _retention_plan(Tenant.objects.get(pk=store_b.tenant_id), 30)
    with tenancy.platform_wide_scope():
        retired = partitions.events_retire(today=today, actor=Actor.system())

    assert stored(store_a) == [] and stored(store_b) == []
    if partitions.partitioned():  # SQLite (embedded mode): one plain table, whose rows were deleted
        assert retired.partitions_dropped == [DAY.date()] and DAY.date() not in partitions.event_partitions()
        assert retired.keys_released == len(events_a) + len(events_b)
    removed_by = "partition dropped" if partitions.partitioned() else "rows deleted"
    assert AuditEntry.unscoped.filter(tenant_id=store_b.tenant_id, changes__removed_by=removed_by).count() == 1
    assert push(api_b, store_b, events_b)["accepted"] == len(events_b)  # a restore is no duplicate
