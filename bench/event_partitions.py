"""Benchmark: events partitioned by day — the visits refresh and settling of one new day with little and with much
history, and retention removing a month, on PostgreSQL.

Needs DATABASE_URL pointing at a migrated PostgreSQL database of its own (it changes the retention of every tenant
there and drops the oldest month of event partitions):

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/openaisle_partbench PYTHONPATH=.:platform \\
        python bench/event_partitions.py --history-events 10000000 --baseline-events 100000

Sets up (not timed) one new tenant on the sample layout, with day partitions from six months (`--months`) before
the new day to a week after it, and history stores that each send about a measured day's events (~3,000) daily.
`--baseline-events` of history are written over those months (generate_series in SQL, their idempotency keys too:
sessions of 20 events, a tenth of events of no session, device health reports every 500th) and a new store's day is
measured; then the rest of `--history-events` are written and another new store's same day is measured: the table
then holds all the history. For each, one new day (`--visits` sample visits, pushed through ingestion as a live
store sends them) is timed:

* `refresh`: `visits_refresh` of the day's sessions, bounded by their time as ingest hands them over;
* `settle`: `visits_settle` of the store until nothing is due;
* `refresh_unbounded` (second store only): the same refresh without the time bounds, reading every partition —
  what the bounds save.

`ratio` divides the much-history figures by the little-history ones (1.0: history costs nothing). Run it on a
database with no other events (`TRUNCATE ingest_event` between runs): what is there counts as history too. Then
`retention`: every tenant's retention set so that the oldest month is past it, and `events_retire` run: the export of
that month's events (gzip NDJSON per store and day), the partitions dropped, and the idempotency keys released are
timed apart (seconds, and events a second).

Prints one JSON object. `--skip-retention` leaves the history in place for another run.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "platform")]
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.db import connection, transaction  # noqa: E402

from billing.invoicing.models import Plan  # noqa: E402
from core import tenancy  # noqa: E402
from ingest import partitions  # noqa: E402
from ingest import services as ingest_services  # noqa: E402
from ingest.sample import sample_events  # noqa: E402
from ingest.services import events_push  # noqa: E402
from stores.models import Store  # noqa: E402
from stores.sample import sample_layout  # noqa: E402
from stores.sample_store import sample_prices_add, sample_products_add, sample_store  # noqa: E402
from tenants import services as tenant_services  # noqa: E402
from tenants.audit import Actor  # noqa: E402
from tenants.models import Tenant  # noqa: E402
from visits import services as visit_services  # noqa: E402
from visits import settling  # noqa: E402

SKUS = [f"SKU-{n:03d}" for n in range(1, 41)]
SYSTEM = Actor.cli()
SESSION_EVENTS = 20
DAY_EVENTS = 3000  # about what a day of 300 sample visits holds


def _tenant(new_day: datetime) -> Tenant:
    tenant = tenant_services.tenant_create(
        actor=SYSTEM, name="Bench partitions", slug=f"bench-partitions-{int(time.time())}"
    )
    sample_products_add(tenant=tenant, skus=SKUS)
    sample_prices_add(
        tenant=tenant, unit_price=399, tax_rate=Decimal("8.25"), effective_from=new_day - timedelta(days=400)
    )
    return tenant


def _store(tenant: Tenant, code: str, *, layout_from: datetime) -> Store:
    return sample_store(actor=SYSTEM, tenant=tenant, code=code, skus=SKUS, effective_from=layout_from, name=code)


def _write_history(stores: list[Store], *, events: int, start: datetime, end: datetime) -> float:
    """`events` rows over [start, end) spread over these stores, straight into the events table and its keys (SQL
    generate_series: the same rows ingest would write, without parsing a file), then a checkpoint and fresh
    statistics, so that what is measured next does not pay for the load. Returns the seconds it took."""
    layout = sample_layout(skus=SKUS)
    cameras = [d["code"] for d in layout["devices"] if d["kind"] == "camera"]
    sensors = [d["code"] for d in layout["devices"] if d["kind"] == "weight_sensor"]
    step = (end - start) / max(events, 1)
    params: dict[str, Any] = {
        "tenant": stores[0].tenant_id,
        "stores": [store.pk for store in stores],
        "n_stores": len(stores),
        "start": start,
        "step": step,
        "events": events,
        "sensors": sensors,
        "n_sensors": len(sensors),
        "cameras": cameras,
        "n_cameras": len(cameras),
    }
    began = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE ingest_event DISABLE TRIGGER event_key_claim")  # keys written below, in bulk
        cursor.execute(
            f"""
            INSERT INTO ingest_event (tenant_id, store_id, event_id, type, ts, session, device, payload, line,
                                      received_at)
            SELECT %(tenant)s, (%(stores)s::bigint[])[1 + i %% %(n_stores)s], 'h-' || i, kind, ts, session, device,
                   jsonb_build_object('id', 'h-' || i, 'type', kind, 'ts', ts, 'device', device) || CASE kind
                       WHEN 'device.status' THEN jsonb_build_object('status', 'online')
                       WHEN 'shelf.weight_changed' THEN jsonb_build_object('bin', 'F01-B01', 'delta_g', -250.0)
                       ELSE jsonb_build_object('session', session, 'bin', 'F01-B01', 'confidence', 0.97) END,
                   i, ts
              FROM (
                SELECT i, %(start)s::timestamptz + (i * %(step)s::interval) AS ts,
                       CASE WHEN i %% 500 = 0 THEN 'device.status'
                            WHEN i %% 10 = 0 THEN 'shelf.weight_changed'
                            ELSE 'item.picked' END AS kind,
                       CASE WHEN i %% 10 = 0 THEN NULL ELSE 'h-v-' || (i / {SESSION_EVENTS}) END AS session,
                       CASE WHEN i %% 10 = 0 THEN (%(sensors)s::text[])[1 + i %% %(n_sensors)s]
                            ELSE (%(cameras)s::text[])[1 + i %% %(n_cameras)s] END AS device
                  FROM generate_series(1, %(events)s) AS i
              ) AS rows
            """,  # noqa: S608 — the one name formatted in is a constant
            params,
        )
        cursor.execute("ALTER TABLE ingest_event ENABLE TRIGGER event_key_claim")
        cursor.execute(
            "INSERT INTO ingest_eventkey (tenant_id, store_id, event_id, ts) "
            "SELECT tenant_id, store_id, event_id, ts FROM ingest_event WHERE tenant_id = %s AND store_id = ANY(%s)",
            [stores[0].tenant_id, [store.pk for store in stores]],
        )
        cursor.execute("ANALYZE ingest_event")
        cursor.execute("ANALYZE ingest_eventkey")
        cursor.execute("CHECKPOINT")
    return time.perf_counter() - began


@contextlib.contextmanager
def _tasks_not_sent() -> Iterator[list[dict[str, Any]]]:
    """Tasks the ingest services would send are kept here instead (their keyword arguments), not sent."""
    sent = ingest_services.enqueue_on_commit
    kept: list[dict[str, Any]] = []
    setattr(ingest_services, "enqueue_on_commit", lambda name, **kwargs: kept.append({"task": name, **kwargs}))  # noqa: B010
    try:
        yield kept
    finally:
        setattr(ingest_services, "enqueue_on_commit", sent)  # noqa: B010


def _timed(work: Callable[[], Any]) -> float:
    began = time.perf_counter()
    work()
    return time.perf_counter() - began


def _new_day(store: Store, day: datetime, *, visits: int, prefix: str) -> dict[str, Any]:
    """The day's events pushed as a live store sends them, each push finished (its tasks not sent: the refresh and
    settling they would start are what is timed, here, in-process), then its visits refreshed and settled."""
    layout = sample_layout(skus=SKUS)
    events = list(sample_events(layout, visits=visits, start=day, seed=11, id_prefix=prefix))
    with tenancy.tenant_scope(store.tenant_id):
        began = time.perf_counter()
        for start in range(0, len(events), 1000):
            with _tasks_not_sent():
                events_push(actor=SYSTEM, store=store, events=events[start : start + 1000])
                # Finished as the live worker finishes it: with the summary the push kept for it.
                ingest_services.pushes_finish_begun(store_id=store.pk)
                with transaction.atomic():
                    ingest_services.pushes_finish(store_id=store.pk)
        pushed = time.perf_counter() - began
        sessions = sorted({event["session"] for event in events if event.get("session")})
        between = (day, max(datetime.fromisoformat(event["ts"]) for event in events))

        def refresh(bounded: bool = True) -> None:
            for start in range(0, len(sessions), 1000):
                visit_services.visits_refresh(
                    store=store, sessions=sessions[start : start + 1000], between=between if bounded else None
                )

        def settle() -> None:
            while settling.visits_settle(store=store, now=between[1] + timedelta(hours=1)):
                pass

        figures = {"events": len(events), "visits": len(sessions), "push_and_finish": round(pushed, 3)}
        figures["refresh"] = round(_timed(refresh), 3)
        figures["settle"] = round(_timed(settle), 3)
        figures["refresh_again"] = round(_timed(refresh), 3)  # warm: what a late event's refresh costs
        figures["refresh_unbounded"] = round(_timed(lambda: refresh(bounded=False)), 3)
    return figures


def _retention(*, oldest: date, days: int) -> dict[str, Any]:
    """Every tenant's retention set so that `days` days from `oldest` are past it, then one `events_retire` run,
    its parts timed apart."""
    today = date.today()
    keep = (today - (oldest + timedelta(days=days))).days
    Plan.objects.update(event_retention_days=keep)
    settings.EVENT_RETENTION_DAYS = keep
    spent = {"export": 0.0, "drop": 0.0, "keys": 0.0}
    parts = {"export": "export_day", "drop": "partition_drop", "keys": "keys_release"}
    originals: dict[str, Callable[..., Any]] = {part: getattr(partitions, name) for part, name in parts.items()}

    def timing(part: str) -> Callable[..., Any]:
        def run(**kwargs: Any) -> Any:
            began = time.perf_counter()
            try:
                return originals[part](**kwargs)
            finally:
                spent[part] += time.perf_counter() - began

        return run

    for part, name in parts.items():
        setattr(partitions, name, timing(part))
    began = time.perf_counter()
    try:
        with tenancy.platform_wide_scope():
            retired = partitions.events_retire(today=today, actor=SYSTEM)
    finally:
        for part, name in parts.items():
            setattr(partitions, name, originals[part])
    total = time.perf_counter() - began
    return {
        "retention_days": keep,
        "partitions_dropped": len(retired.partitions_dropped),
        "events_removed": retired.events_removed,
        "files": len(retired.files),
        "keys_released": retired.keys_released,
        "seconds": round(total, 2),
        "export_seconds": round(spent["export"], 2),
        "export_events_per_s": round(retired.events_removed / spent["export"]) if spent["export"] else None,
        "drop_seconds": round(spent["drop"], 3),
        "keys_release_seconds": round(spent["keys"], 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--history-events", type=int, default=10_000_000)
    parser.add_argument("--baseline-events", type=int, default=100_000)
    parser.add_argument("--months", type=int, default=6)
    parser.add_argument("--visits", type=int, default=300, help="sample visits of the new day")
    parser.add_argument("--skip-retention", action="store_true")
    args = parser.parse_args()
    if connection.vendor != "postgresql":
        raise SystemExit("This benchmark needs PostgreSQL (DATABASE_URL).")

    today = datetime.now(UTC).date()
    new_day = datetime(today.year, today.month, today.day, 6, tzinfo=UTC) - timedelta(days=1)
    history_start = new_day - timedelta(days=30 * args.months)
    began = time.perf_counter()
    created = partitions.partitions_ensure(
        today=history_start.date(), ahead_days=(today - history_start.date()).days + 7
    )
    made = time.perf_counter() - began
    tenant = _tenant(new_day)
    layout_from = history_start - timedelta(days=1)
    per_store = 30 * args.months * DAY_EVENTS  # a history store sends about what the measured day holds, daily
    stores = [
        _store(tenant, f"H{n:03d}", layout_from=layout_from)
        for n in range(max(2, -(-args.history_events // per_store)))
    ]
    baseline_stores = stores[: max(1, -(-args.baseline_events // per_store))]
    loaded_little = _write_history(baseline_stores, events=args.baseline_events, start=history_start, end=new_day)
    measured_little = _new_day(
        _store(tenant, "LITTLE", layout_from=layout_from), new_day, visits=args.visits, prefix="little"
    )
    rest = args.history_events - args.baseline_events
    loaded_much = _write_history(
        stores[len(baseline_stores) :] or stores, events=rest, start=history_start, end=new_day
    )
    measured_much = _new_day(
        _store(tenant, "MUCH", layout_from=layout_from), new_day, visits=args.visits, prefix="much"
    )
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM ingest_event")
        (rows,) = cursor.fetchone()
    ratio = {
        part: round(measured_much[part] / measured_little[part], 2) if measured_little[part] else None
        for part in ("refresh", "settle", "refresh_again")
    }
    result: dict[str, Any] = {
        "history_events": args.history_events,
        "baseline_events": args.baseline_events,
        "months": args.months,
        "events_in_table": rows,
        "partitions": len(partitions.event_partitions()),
        "partitions_created_seconds": round(made, 2),
        "partitions_created": len(created),
        "history_stores": len(stores),
        "history_load_seconds": {"baseline": round(loaded_little, 1), "rest_of_history": round(loaded_much, 1)},
        "new_day_with_baseline_history": measured_little,
        "new_day_with_history": measured_much,
        "ratio_history_to_baseline": ratio,
    }
    if not args.skip_retention:
        result["retention_of_a_month"] = _retention(oldest=history_start.date(), days=30)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
