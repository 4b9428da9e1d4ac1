"""The events table: lean on the database side, still protected by Django's on_delete rules."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.models import ProtectedError
from rest_framework.test import APIClient

from ingest.models import Event, EventStream
from ingest.tests.conftest import day_of_events
from stores.models import Store

pytestmark = pytest.mark.usefixtures("celery_worker")


def test_a_deleted_stream_keeps_its_events_and_a_store_with_events_cannot_be_deleted(
    api_a: APIClient, store_a: Store
) -> None:
    events = day_of_events(store_a, visits=2)
    assert api_a.post(f"/api/v1/stores/{store_a.code}/events", events, format="json").status_code == 202
    stream = EventStream.unscoped.get(store=store_a)

    stream.delete()

    kept = Event.unscoped.filter(store=store_a)
    assert kept.count() == len(events)
    assert not kept.exclude(stream=None).exists()
    with pytest.raises(ProtectedError) as refused:
        Store.unscoped.filter(pk=store_a.pk).delete()
    assert Event in {type(row) for row in refused.value.protected_objects}
    assert Store.unscoped.filter(pk=store_a.pk).exists()
    assert kept.count() == len(events)


@pytest.mark.skipif(connection.vendor != "postgresql", reason="reads PostgreSQL's catalog")
def test_the_events_table_has_only_the_indexes_its_readers_need_and_no_foreign_keys() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = %s", [Event._meta.db_table])
        indexes = dict(cursor.fetchall())
        cursor.execute(
            "SELECT count(*) FROM pg_constraint WHERE conrelid = %s::regclass AND contype = 'f'",
            [Event._meta.db_table],
        )
        (foreign_keys,) = cursor.fetchone()
    assert set(indexes) == {
        "ingest_event_pkey",
        "event_store_session",
        "event_store_ts",
        "event_stream_range",
        "event_device_status",
    }
    # The idempotency key is in a table of its own (a partitioned table's unique indexes must include the time).
    assert "(tenant_id, id, ts)" in indexes["ingest_event_pkey"]
    assert "USING brin (tenant_id, stream_id)" in indexes["event_stream_range"]
    assert indexes["event_store_session"].endswith("(tenant_id, store_id, session) WHERE (session IS NOT NULL)")
    assert foreign_keys == 0
