"""On PostgreSQL the events table is partitioned by day: refreshing and settling the visits of one day read only the
partitions of that day and the one before, and (the store's clock) those up to now (their plans, by EXPLAIN), however
much history the store has."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, time, timedelta
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from core import tenancy
from ingest import partitions
from ingest.sample import sample_events
from stores.models import LayoutVersion, Store
from tenants.models import Tenant
from visits import services, settling
from visits.models import Visit
from visits.tests.support import push, stamp

pytestmark = pytest.mark.skipif(connection.vendor != "postgresql", reason="partitions are PostgreSQL's")

NOW = datetime.now(UTC)
DAY = datetime.combine(NOW.date() - timedelta(days=3), time(8), tzinfo=UTC)  # events are at most a day ahead of now
HISTORY = DAY - timedelta(days=60)


def _day(store: Store, start: datetime, prefix: str) -> list[dict[str, Any]]:
    layout = LayoutVersion.unscoped.get(store=store)
    events = sample_events(layout.document, visits=6, start=start, seed=len(prefix), id_prefix=prefix)
    return [event for event in events if event["type"] != "device.status"]


def _relations(plan: Any) -> Iterator[str]:
    if isinstance(plan, dict):
        if "Relation Name" in plan:
            yield plan["Relation Name"]
        for value in plan.values():
            yield from _relations(value)
    elif isinstance(plan, list):
        for value in plan:
            yield from _relations(value)


def _event_tables_read(sqls: list[str]) -> set[str]:
    read: set[str] = set()
    with connection.cursor() as cursor:
        for sql in sqls:
            cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}")
            (plan,) = cursor.fetchone()
            read |= set(_relations(json.loads(plan) if isinstance(plan, str) else plan))
    return {name for name in read if name.startswith("ingest_event")}


def test_the_refresh_and_settling_of_a_day_read_only_its_partitions(
    make_store_with_layout: Callable[..., Store], tenant_a: Tenant
) -> None:
    store = make_store_with_layout(tenant_a)
    history, today = _day(store, HISTORY, "old"), _day(store, DAY, "new")
    sensor = next(event["device"] for event in today if event["type"] == "shelf.weight_changed")
    report = {"id": "status-1", "type": "device.status", "ts": stamp(DAY - timedelta(hours=1))}
    push(store, history)
    push(store, [{**report, "device": sensor, "status": "online"}, *today])
    partitions.partitions_ensure(today=DAY.date() - timedelta(days=2), ahead_days=7)  # made ahead, day by day
    near = {partitions.partition_name((DAY + timedelta(days=n)).date()) for n in range(-2, 6)}
    sessions = sorted({event["session"] for event in today if event.get("session")})

    with CaptureQueriesContext(connection) as queries, tenancy.tenant_scope(store.tenant_id):
        services.visits_refresh(store=store, sessions=sessions, between=(DAY, DAY + timedelta(hours=15)))
        while settling.visits_settle(store=store, now=DAY + timedelta(days=1)):
            pass

    assert Visit.unscoped.filter(store=store, session__in=sessions, settled_at__isnull=False).count() == len(sessions)
    reads = [query["sql"] for query in queries.captured_queries if "ingest_event" in query["sql"]]
    assert any(sql.lstrip().startswith("UPDATE") for sql in reads)  # the refresh's figures
    assert any("device.status" in sql for sql in reads)  # the devices' health before the day
    read = _event_tables_read([sql for sql in reads if not sql.lstrip().startswith(("INSERT", "DELETE"))])
    assert read, "no query of the events table was explained"
    assert read <= near, f"read {sorted(read - near)} beyond the partitions of the day, the one before and now"
    assert HISTORY.date() in partitions.event_partitions()  # there, and not read
