"""Benchmark: what each way of writing events costs PostgreSQL, against the ingest benchmark's baseline.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/openaisle_bench PYTHONPATH=.:platform \\
        python bench/event_writes.py --events 500000 --repeat 3

Needs DATABASE_URL pointing at an existing PostgreSQL database on this machine (it is migrated, and
only scratch tables are written).

Writes the same generated events (`ingest.sample.sample_events`, one busy day after another, read and
turned into COPY rows by the ingest code itself) through each of these write paths, on one connection,
into scratch tables it creates and drops:

* `copy_unique_index`: one COPY into a table with only the unique (tenant, store, event id) index —
  the baseline of `bench/ingest.py`;
* `copy_chunks_events_indexes`: COPY in chunks of `--chunk` events, each its own transaction, into a
  table made `LIKE` the events table with all its indexes (what a write without duplicate handling
  would cost);
* `staging_insert`: per chunk, COPY into a temporary staging table and a plain INSERT … SELECT;
* `staging_insert_on_conflict`: the same with `ON CONFLICT DO NOTHING RETURNING` — the shape of
  `ingest.processing` (chunks sorted by event id, committed with `synchronous_commit = off`).

The paths run in turn, `--repeat` times, so that the machine's drift touches each alike. Prints one
JSON object: per path, the CPU-seconds of the PostgreSQL backend (read from /proc, so PostgreSQL must
run on this machine), wall seconds and WAL bytes of every run and their medians, and each median's
ratio to the baseline's. The workers' side (reading, validating) is not in it: see `bench/ingest.py`.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "platform")]  # before bench/, whose ingest.py is not the ingest app
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django  # noqa: E402

django.setup()

import orjson  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from machine import checkpoint, cpu_seconds  # noqa: E402

from ingest.models import Event  # noqa: E402
from ingest.processing import _copy_rows  # noqa: E402
from ingest.sample import sample_events  # noqa: E402
from ingest.validation import read_event  # noqa: E402
from stores.sample import sample_layout  # noqa: E402

FIRST_DAY = datetime(2026, 1, 2, 8, 0, tzinfo=UTC)
VISITS_PER_DAY = 2000
COLUMNS = "event_id, type, ts, session, device, payload, line"
PATHS = ("copy_unique_index", "copy_chunks_events_indexes", "staging_insert", "staging_insert_on_conflict")


def generate(count: int, *, chunk: int) -> tuple[str, list[str]]:
    """`count` events as rows of COPY's text format, written as `ingest.processing` writes them: all of them
    in one text (for the baseline), and in chunks of `chunk` events, each sorted by event id."""
    layout = sample_layout(skus=[f"SKU-{n:03d}" for n in range(1, 41)])
    rows: list[tuple[int, Any, bytes]] = []
    day = 0
    while len(rows) < count:
        start = FIRST_DAY + timedelta(days=day)
        for raw in sample_events(layout, visits=VISITS_PER_DAY, start=start, seed=day, id_prefix=f"d{day}-"):
            if len(rows) >= count:
                break
            line = orjson.dumps(raw)
            event, reason, _value = read_event(line)
            if event is None:
                raise RuntimeError(f"the sample wrote an invalid event ({reason}): {line!r}")
            rows.append((len(rows) + 1, event, line))
        day += 1
    chunks = [
        _copy_rows(sorted(rows[first : first + chunk], key=lambda row: row[1].event_id))
        for first in range(0, len(rows), chunk)
    ]
    return _copy_rows(rows), chunks


def _backend_pid() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return int(cursor.fetchone()[0])


def _execute(sql: str, params: list[Any] | None = None) -> None:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def _copy(table: str, text: str) -> None:
    with connection.cursor() as cursor:
        cursor.cursor.copy_expert(f"COPY {table} ({COLUMNS}) FROM STDIN", io.StringIO(text), size=1 << 20)


def _prepare(path: str) -> None:
    _execute("DROP TABLE IF EXISTS bench_event_writes")
    if path == "copy_unique_index":
        _execute(
            "CREATE TABLE bench_event_writes (tenant_id bigint NOT NULL DEFAULT 1, store_id bigint NOT NULL DEFAULT 1, "
            "event_id varchar(64) NOT NULL, type varchar(24) NOT NULL, ts timestamptz NOT NULL, session varchar(64), "
            "device varchar(64) NOT NULL, payload jsonb NOT NULL, line bigint, "
            "received_at timestamptz NOT NULL DEFAULT now())"
        )
        _execute("CREATE UNIQUE INDEX bench_event_writes_unique ON bench_event_writes (tenant_id, store_id, event_id)")
        return
    _execute(f"CREATE TABLE bench_event_writes (LIKE {Event._meta.db_table} INCLUDING INDEXES)")
    _execute("ALTER TABLE bench_event_writes ALTER COLUMN id ADD GENERATED BY DEFAULT AS IDENTITY")
    for column, value in (("tenant_id", "1"), ("store_id", "1"), ("stream_id", "1"), ("received_at", "now()")):
        _execute(f"ALTER TABLE bench_event_writes ALTER COLUMN {column} SET DEFAULT {value}")


def _write_chunk(path: str, text: str) -> None:
    _execute("BEGIN")
    _execute("SET LOCAL synchronous_commit TO OFF")
    if path == "copy_chunks_events_indexes":
        _copy("bench_event_writes", text)
    else:
        _execute(
            "CREATE TEMP TABLE IF NOT EXISTS bench_event_staging (event_id text, type text, ts timestamptz, "
            "session text, device text, payload jsonb, line bigint) ON COMMIT DELETE ROWS"
        )
        _execute("TRUNCATE bench_event_staging")
        _copy("bench_event_staging", text)
        conflict = " ON CONFLICT (tenant_id, store_id, event_id) DO NOTHING" if path.endswith("on_conflict") else ""
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO bench_event_writes ({COLUMNS}) SELECT {COLUMNS} FROM bench_event_staging"  # noqa: S608
                f"{conflict} RETURNING event_id"
            )
            cursor.fetchall()
    _execute("COMMIT")


def _wal_position() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_current_wal_lsn()")
        return str(cursor.fetchone()[0])


def _wal_since(position: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), %s)", [position])
        return int(cursor.fetchone()[0])


def timed(path: str, whole: str, chunks: list[str], *, pid: int) -> dict[str, float]:
    _prepare(path)
    checkpoint()
    position, cpu_before, started = _wal_position(), cpu_seconds(pid), time.perf_counter()
    if path == "copy_unique_index":
        _copy("bench_event_writes", whole)
    else:
        for text in chunks:
            _write_chunk(path, text)
    wall, cpu = time.perf_counter() - started, cpu_seconds(pid) - cpu_before
    wal = _wal_since(position)
    _execute("DROP TABLE bench_event_writes")
    return {"cpu_s": round(cpu, 2), "wall_s": round(wall, 2), "wal_mb": round(wal / 2**20)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=500_000)
    parser.add_argument("--repeat", type=int, default=3, help="runs of each path, taken in turn (default 3)")
    parser.add_argument("--chunk", type=int, default=7_400, help="events per chunk (about the workers' 1 MiB)")
    args = parser.parse_args()
    if connection.vendor != "postgresql":
        sys.exit("This benchmark needs PostgreSQL: set DATABASE_URL=postgres://... (an existing database).")
    call_command("migrate", interactive=False, verbosity=0)
    connection.set_autocommit(True)
    whole, chunks = generate(args.events, chunk=args.chunk)
    pid = _backend_pid()
    runs: dict[str, list[dict[str, float]]] = {path: [] for path in PATHS}
    for _ in range(args.repeat):
        for path in PATHS:
            runs[path].append(timed(path, whole, chunks, pid=pid))
    medians = {
        path: {key: statistics.median(run[key] for run in runs[path]) for key in runs[path][0]} for path in PATHS
    }
    baseline_cpu = medians["copy_unique_index"]["cpu_s"]
    result = {
        "benchmark": "event_writes",
        "events": args.events,
        "chunk_events": args.chunk,
        "events_table_indexes": sorted(_index_definitions()),
        "paths": {
            path: {
                "runs": runs[path],
                "median": medians[path],
                "cpu_ratio_to_copy_unique_index": round(medians[path]["cpu_s"] / baseline_cpu, 2),
            }
            for path in PATHS
        },
        "note": "CPU of one PostgreSQL backend; every path on the same connection, in turn.",
    }
    print(json.dumps(result, indent=2))


def _index_definitions() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexdef FROM pg_indexes WHERE tablename = %s", [Event._meta.db_table])
        return [definition for (definition,) in cursor.fetchall()]


if __name__ == "__main__":
    main()
