"""Benchmark: an event stream uploaded through the API and processed by real workers, against a plain COPY.

Needs PostgreSQL and Redis; refuses to run in embedded mode (SQLite). The database is created and
migrated if missing. Use a database and a Redis database of your own: the script purges the Celery
queues of that Redis database.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/openaisle_bench REDIS_URL=redis://127.0.0.1:6379/5 \\
        PYTHONPATH=.:platform python bench/ingest.py --events 1000000

In one run it
1. sets up a tenant and a store with the sample catalog and layout (made once, kept), and an API key;
   gives the store a history (100,000 earlier events and their visits, COPYed in) and ANALYZEs, so
   that PostgreSQL plans the stream's queries as it would for a store in use (--history-events);
2. writes N lines of events (`ingest.sample.sample_events`, one busy day after another, 0.5 % of
   them resent earlier lines, 0.1 % malformed in each way the spec names) to an NDJSON file on disk,
   streamed, and the rows a COPY would load to a CSV file;
3. starts the web server (gunicorn, one sync worker) on a free port of 127.0.0.1 and the Celery
   workers (--workers solo processes, or one prefork worker with that concurrency) against the same
   database and broker;
4. uploads the file through `POST /api/v1/stores/{code}/event-streams` (multipart, streamed from
   disk), polls `GET /api/v1/event-streams/{id}` until done -- the stream is finished when its
   visits are handed on (the refresh tasks are sent to the visits queue as that transaction commits)
   -- and then waits until every visit of the stream has been refreshed (a Visit row for each
   session, events_count > 0); meanwhile it samples pg_stat_activity for lock waits;
5. reads each worker's peak RSS (VmHWM, the processes and their children), stops everything, and
   times the baseline: PostgreSQL COPY of the same accepted rows into a fresh (logged) table with the
   events table's columns and its unique (tenant, store, event id) index -- and, for reference, into a
   copy of the events table with all of its indexes. The baseline COPY runs twice, alone, just before
   the workers start and just after they stop, and the ratio is taken to the mean of the two: the
   same code here ran 10-50 % faster or slower from one minute to the next, and a single COPY taken
   after the stream measured the machine of another moment. Both the upload and each COPY start
   right after a CHECKPOINT, so neither pays for WAL the other left behind;
6. removes the tenant's streams, chunks, events, rejections and visits (and the rows that hang off
   visits), revokes the key and deletes the files. Audit entries stay: the audit log is append-only.

Prints one JSON object: events/s end to end -- from the upload's start to the last visit handed on
(the issue's measure) -- and its ratio to COPY; the same to the last visit refreshed; the time of
each phase, CPU-seconds per role and phase, what the database's backends waited on, and peak
memory per worker process.
Everything shares the machine's cores (web server, PostgreSQL, workers, this script, and whatever
else runs), so the figures are for the machine as a whole; `cpu_s.everything_else` shows how much
other work ran meanwhile.
On a shared virtual machine the hypervisor may lend the cores to other guests:
`cpu_s.stolen_by_hypervisor` (and the baseline's `stolen_by_hypervisor_s`) say how much it took back
(near nothing in the runs of 2026-12-02, which still differed by up to half from one to the next).
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import deque
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
from machine import (
    checkpoint,
    children,
    cpu_seconds,
    forget_queued_tasks,
    free_port,
    machine_busy_seconds,
    machine_stolen_seconds,
    postgres_cpu_seconds,
    start_django,
)
from support import (
    delete_tenant_rows,
    deletion_order,
    git,
    kept_tenant,
    sample_stores,
    server_environment,
    tear_down,
    wait_until_ready,
)

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "platform")]
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

BENCH_TENANT_SLUG = "bench-ingest"
STORE_CODE = "BENCH-1"
LAYOUT_FROM = datetime(2026, 1, 1, tzinfo=UTC)
FIRST_DAY = datetime(2026, 1, 2, 8, 0, tzinfo=UTC)
VISITS_PER_DAY = 2000
DUPLICATE_EVERY = 200  # 0.5 % of the lines repeat one of the last 50,000 lines (events sent again)
MALFORMED_EVERY = 1000  # 0.1 % of the lines are refused, one kind after another


def _database_url() -> str:
    """The PostgreSQL URL to use, or exit with why not (before Django is set up)."""
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://", "pgsql://")):
        sys.exit(
            "This benchmark needs PostgreSQL (COPY, real workers): set DATABASE_URL=postgres://... "
            "(and REDIS_URL=redis://...); it does not run on SQLite / embedded mode."
        )
    if not (os.environ.get("REDIS_URL") or os.environ.get("CELERY_BROKER_URL")):
        sys.exit("This benchmark needs a broker for the workers: set REDIS_URL=redis://... (or CELERY_BROKER_URL).")
    return url


# --- the file --------------------------------------------------------------------------------------


def _csv_text(value: str) -> str:
    return '"' + value.replace('"', '""') + '"'


def _malformed(number: int, kind: int, good: dict[str, Any]) -> bytes:
    """A line refused for one of the reasons the spec names, a different one each time (ids no real event has).

    The unknown session is refused only when the stream finishes (its events are accepted first).
    """
    event_id, ts = f"bad-{number}", good["ts"]
    item = {"id": event_id, "type": "item.picked", "ts": ts, "session": "v-1-0", "bin": "F01-B01"}
    item |= {"device": "CAM-01", "qty": 1, "confidence": 0.9}
    if kind == 0:
        return b'{"id": "' + event_id.encode() + b'", "type": "item.picked", "ts": "2026-01-0'  # not JSON
    body: dict[str, Any]
    if kind == 1:
        body = {k: v for k, v in item.items() if k != "ts"}  # missing field
    elif kind == 2:
        body = {**item, "type": "item.teleported"}  # unknown type
    elif kind == 3:
        body = {**item, "confidence": "high"}  # wrong type
    elif kind == 4:
        body = {**item, "bin": "NO-SUCH-BIN"}  # unknown bin
    elif kind == 5:
        body = {**item, "device": "CAM-99"}  # unknown device
    elif kind == 6:
        body = {**item, "ts": "2099-01-01T00:00:00.000Z"}  # future timestamp
    else:
        body = {**item, "session": f"v-unknown-{number}"}  # unknown session
    return orjson.dumps(body)


MALFORMED_KINDS = 8


def write_events(
    layout: dict[str, Any],
    *,
    count: int,
    ndjson: Path | None,
    csv: Path,
    tenant_id: int,
    store_id: int,
    seed: int,
    prefix: str = "d",
    duplicate_every: int = DUPLICATE_EVERY,
    malformed_every: int = MALFORMED_EVERY,
    first_day: datetime = FIRST_DAY,
) -> dict[str, int]:
    """Write `count` lines of events to `ndjson`, and the rows a COPY would load to `csv` (both streamed).

    Busy days one after another (VISITS_PER_DAY visits each, so no day is held whole in memory), with
    one of the last 50,000 lines sent again every `duplicate_every` events and a malformed line every
    `malformed_every` events (0: none). Without `ndjson`, only the rows are written.
    """
    from ingest.sample import sample_events

    rng = random.Random(seed)
    recent: deque[bytes] = deque(maxlen=50_000)
    sessions: set[str] = set()
    written = duplicates = malformed = emitted = 0
    received_at = "2026-11-01 00:00:00+00"
    with (
        ndjson.open("wb", buffering=1 << 20) if ndjson else open(os.devnull, "wb") as out,
        csv.open("w", buffering=1 << 20) as rows,
    ):
        day = 0
        while written < count:
            start = first_day + timedelta(days=day)
            for event in sample_events(
                layout, visits=VISITS_PER_DAY, start=start, seed=seed * 1000 + day, id_prefix=f"{prefix}{day}-"
            ):
                if written >= count:
                    break
                emitted += 1
                if duplicate_every and emitted % duplicate_every == 0 and recent:
                    out.write(recent[rng.randrange(len(recent))] + b"\n")
                    written, duplicates = written + 1, duplicates + 1
                    if written >= count:
                        break
                if malformed_every and emitted % malformed_every == malformed_every // 2:
                    out.write(_malformed(written + 1, malformed % MALFORMED_KINDS, event) + b"\n")
                    written, malformed = written + 1, malformed + 1
                    if written >= count:
                        break
                line = orjson.dumps(event)
                out.write(line + b"\n")
                written += 1
                recent.append(line)
                session = event.get("session")
                if session is not None:
                    sessions.add(session)
                device = event.get("device") or event.get("gate") or ""
                rows.write(
                    f"{tenant_id},{store_id},{_csv_text(event['id'])},{event['type']},{event['ts']},"
                    f"{_csv_text(session) if session is not None else ''},{_csv_text(device)},"
                    f"{_csv_text(line.decode())},{written},{received_at}\n"
                )
            day += 1
    return {
        "lines": written,
        "accepted": written - duplicates - malformed,
        "duplicates": duplicates,
        "rejected": malformed,
        "sessions": len(sessions),
        "days": day,
    }


# --- processes ---------------------------------------------------------------------------------------


def _status_kb(pid: int, field: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


class Processes:
    """The web server and the workers this benchmark starts, stopped again whatever happens."""

    def __init__(self, *, env: dict[str, str], logs: Path) -> None:
        self.env, self.logs = env, logs
        self.server: subprocess.Popen[bytes] | None = None
        self.workers: list[subprocess.Popen[bytes]] = []
        self.profilers: list[subprocess.Popen[bytes]] = []
        self.port = free_port()

    def _start(self, name: str, argv: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        log = (self.logs / f"{name}.log").open("ab")
        return subprocess.Popen(argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)

    def start_server(self) -> None:
        argv = [sys.executable, "-m", "gunicorn", "config.wsgi:application", "--bind", f"127.0.0.1:{self.port}"]
        argv += ["--workers", "1", "--timeout", "1800", "--log-level", "warning"]
        self.server = self._start("server", argv, self.env)

    def start_workers(self, *, pool: str, processes: int, chunk_bytes: int | None) -> None:
        env = dict(self.env)
        if chunk_bytes:
            env["INGEST_CHUNK_BYTES"] = str(chunk_bytes)
        common = [sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", "live,ingest,visits,default"]
        common += ["--loglevel", "WARNING", "--without-heartbeat", "--without-mingle", "--without-gossip"]
        if pool == "solo":
            for number in range(processes):
                name = f"bench-ingest-{number}@%h"
                self.workers.append(self._start(f"worker-{number}", [*common, "--pool", "solo", "-n", name], env))
        else:
            argv = [*common, "--pool", "prefork", "--concurrency", str(processes), "-n", "bench-ingest@%h"]
            self.workers.append(self._start("worker-prefork", argv, env))

    def cpu_snapshot(self) -> dict[str, float]:
        """CPU-seconds so far: the task-running processes, the web server, PostgreSQL, the whole machine."""
        server = [self.server.pid, *children(self.server.pid)] if self.server else []
        return {
            "workers": sum(cpu_seconds(pid) for pid, _ in self.worker_pids()),
            "web_server": sum(cpu_seconds(pid) for pid in server),
            "postgresql": postgres_cpu_seconds(),
            "machine": machine_busy_seconds(),
        }

    def check(self) -> None:
        """Fail at once when a process ended or a task failed, rather than wait for work that never comes."""
        self.check_running()
        for log in sorted(self.logs.glob("worker-*.log")):
            text = log.read_text(errors="replace")
            for marker in ("Traceback", " ERROR "):
                if marker in text:
                    start = text.index(marker)
                    raise RuntimeError(f"a task failed ({log}):\n{text[start : start + 3000]}")

    def worker_pids(self) -> list[tuple[int, str]]:
        """(pid, role) of every process that runs tasks: the solo workers, or the prefork children."""
        found: list[tuple[int, str]] = []
        for worker in self.workers:
            forked = children(worker.pid)
            if forked:
                found.append((worker.pid, "prefork parent"))
                found += [(child, "prefork child") for child in forked]
            else:
                found.append((worker.pid, "solo worker"))
        return found

    def wait_ready(self, *, expected_workers: int, timeout: float = 90) -> None:
        wait_until_ready(
            self.port,
            check=self.check_running,
            workers_ready=lambda names: (
                len([name for name in names if name.startswith("bench-ingest")]) >= expected_workers
            ),
            logs=self.logs,
            timeout=timeout,
            pause=0.2,
        )

    def check_running(self) -> None:
        """Fail at once when a process ended."""
        for process in [self.server, *self.workers]:
            if process is not None and process.poll() is not None:
                raise RuntimeError(f"a process ended early (see {self.logs}): {process.args!r}")

    def profile(self, directory: Path) -> None:
        """Attach py-spy to every process that runs tasks (collapsed stacks, for reading with text tools)."""
        for pid, role in self.worker_pids():
            if role == "prefork parent":
                continue
            self.profilers.append(
                subprocess.Popen(
                    [
                        "py-spy",
                        "record",
                        "--pid",
                        str(pid),
                        "--rate",
                        "50",
                        "--format",
                        "raw",
                        "--nonblocking",
                        "-o",
                        str(directory / f"worker-{pid}.txt"),
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=(self.logs / "py-spy.log").open("ab"),
                )
            )

    def stop(self) -> None:
        """Stop the profilers, then the workers at once (cold shutdown: the measurement is over, and a task
        still running, such as settling, rolls back) and the web server; kill what does not stop."""
        for profiler in self.profilers:
            if profiler.poll() is None:
                profiler.send_signal(signal.SIGINT)
        for profiler in self.profilers:
            with contextlib.suppress(subprocess.TimeoutExpired):
                profiler.wait(timeout=30)
        forked = [pid for pid, role in self.worker_pids() if role == "prefork child"]
        for worker in self.workers:
            if worker.poll() is None:
                worker.send_signal(signal.SIGQUIT)
        if self.server is not None and self.server.poll() is None:
            self.server.terminate()
        for process in [*self.workers, self.server]:
            if process is None:
                continue
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        for pid in forked:  # prefork children this run started, should any outlive their parent
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


class WaitSampler:
    """What the database's client backends are doing, sampled from pg_stat_activity every `interval` s in a
    thread with its own connection, by phase: how many are active, how many wait for a lock (rows, tuples,
    transaction ids: the workers waiting on each other; with the start of the waiting statement), and on
    what else they wait (WAL, I/O, ...)."""

    def __init__(self, url: str, *, exclude_pid: int, interval: float = 0.05) -> None:
        import threading

        self.url, self.exclude_pid, self.interval = url, exclude_pid, interval
        self.phase = "before"
        self.phases: dict[str, dict[str, Any]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="wait-sampler", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def mark(self, phase: str) -> None:
        self.phase = phase

    def stop(self) -> dict[str, Any]:
        self._stop.set()
        self._thread.join(timeout=10)
        report = {}
        for phase, seen in self.phases.items():
            active = max(seen["active"], 1)
            report[phase] = {
                "samples": seen["samples"],
                "active_backends_avg": round(seen["active"] / max(seen["samples"], 1), 2),
                "lock_wait_share_of_active": round(seen["lock"] / active, 3),
                "waits_share_of_active": {
                    event: round(count / active, 3)
                    for event, count in sorted(seen["waits"].items(), key=lambda item: -item[1])[:8]
                },
            }
        return report

    def _run(self) -> None:
        import psycopg2

        connection = psycopg2.connect(self.url)
        connection.autocommit = True
        try:
            with connection.cursor() as cursor:
                while not self._stop.wait(self.interval):
                    cursor.execute(
                        "SELECT wait_event_type, wait_event, left(regexp_replace(query, '\\s+', ' ', 'g'), 40) "
                        "FROM pg_stat_activity "
                        "WHERE datname = current_database() AND backend_type = 'client backend' "
                        "AND state = 'active' AND pid NOT IN (pg_backend_pid(), %s)",
                        [self.exclude_pid],
                    )
                    rows = cursor.fetchall()
                    seen = self.phases.setdefault(self.phase, {"samples": 0, "active": 0, "lock": 0, "waits": {}})
                    seen["samples"] += 1
                    seen["active"] += len(rows)
                    for kind, event, query in rows:
                        if kind is None:
                            continue
                        seen["lock"] += kind == "Lock"
                        key = f"{kind}:{event}" + (f" in {query.strip()}" if kind == "Lock" else "")
                        seen["waits"][key] = seen["waits"].get(key, 0) + 1
        finally:
            connection.close()


def _request(port: int, method: str, path: str, *, key: str = "", body: Any = None, headers: Any = None) -> Any:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=3600)
    try:
        sent = {**(headers or {})}
        if key:
            sent["Authorization"] = f"Bearer {key}"
        connection.request(method, path, body=body, headers=sent)
        response = connection.getresponse()
        data = response.read()
        return response.status, (json.loads(data) if data and data[:1] in (b"{", b"[") else data)
    finally:
        connection.close()


def upload(port: int, *, key: str, store: str, file: Path) -> dict[str, Any]:
    """POST the file as multipart field 'file', streamed from disk in 1 MiB blocks."""
    boundary = f"bench-{uuid.uuid4().hex}"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{file.name}"\r\n'
        "Content-Type: application/x-ndjson\r\n\r\n"
    ).encode()
    tail = f"\r\n--{boundary}--\r\n".encode()

    def body() -> Iterator[bytes]:
        yield head
        with file.open("rb") as source:
            while block := source.read(1 << 20):
                yield block
        yield tail

    status, answer = _request(
        port,
        "POST",
        f"/api/v1/stores/{store}/event-streams",
        key=key,
        body=body(),
        headers={
            "Content-Type": f"multipart/form-data; boundary={boundary}",
            "Content-Length": str(len(head) + file.stat().st_size + len(tail)),
        },
    )
    if status != 202:
        raise RuntimeError(f"upload answered {status}: {answer!r}")
    return answer


# --- the run -----------------------------------------------------------------------------------------


def setup(args: argparse.Namespace) -> tuple[Any, Any, Any, Any]:
    """The bench tenant and store (made once, kept), emptied of events; and a new API key."""

    from core import tenancy
    from stores.models import LayoutVersion
    from stores.sample_store import sample_products_add
    from tenants import services as tenant_services
    from tenants.audit import Actor

    tenant = kept_tenant(slug=BENCH_TENANT_SLUG, name="Ingest benchmark")
    skus = [f"SKU-{n:03d}" for n in range(1, 41)]
    with tenancy.tenant_scope(tenant.pk):
        sample_products_add(tenant=tenant, skus=skus)
    [store] = sample_stores(tenant, names={STORE_CODE: "Benchmark store"}, skus=skus, effective_from=LAYOUT_FROM)
    layout = LayoutVersion.unscoped.get(store=store)
    with tenancy.tenant_scope(tenant.pk):
        issued = tenant_services.api_key_issue(actor=Actor.cli(), tenant=tenant, name="ingest benchmark")
    clean(tenant.pk)
    return tenant, store, layout, issued


def clean(tenant_id: int) -> None:
    """Remove the tenant's visits, events, rejections, chunks and streams, and the rows hanging off them
    (set-based: millions of rows), then VACUUM ANALYZE those tables."""
    from django.db import connection

    models = deletion_order()
    delete_tenant_rows(tenant_id, models)
    with connection.cursor() as cursor:
        for model in models:
            cursor.execute(f"VACUUM ANALYZE {model._meta.db_table}")


def load_history(
    layout: dict[str, Any], *, count: int, work: Path, tenant: Any, store: Any, seed: int, first_day: datetime
) -> dict[str, Any]:
    """Give the store a history before the measured upload, as a store in use has, and ANALYZE.

    `count` other events of the store (other days, sessions and ids), COPYed straight into the events
    table, their visits refreshed and marked settled (so that the workers leave them alone); then
    ANALYZE, so that the planner knows what the tables hold. Autovacuum may be off, as on these
    machines: with count=0 the tables are just emptied and analyzed, as in a new database, and the
    stream's queries are planned for empty tables.
    """
    from django.db import connection
    from django.utils import timezone

    from core import tenancy
    from ingest.models import Event
    from visits.models import Visit
    from visits.services import visits_refresh

    if count:  # on days after the measured ones: no visit of one overlaps the other
        csv = work / "history.csv"
        write_events(
            layout,
            count=count,
            ndjson=None,
            csv=csv,
            tenant_id=tenant.pk,
            store_id=store.pk,
            seed=seed + 7919,
            prefix="h",
            duplicate_every=0,
            malformed_every=0,
            first_day=first_day,
        )
        with connection.cursor() as cursor, csv.open("r") as source:
            cursor.cursor.copy_expert(
                f"COPY {Event._meta.db_table} (tenant_id, store_id, event_id, type, ts, session, device, payload, "
                "line, received_at) FROM STDIN WITH (FORMAT csv)",
                source,
                size=1 << 20,
            )
        csv.unlink()
        with connection.cursor() as cursor:  # as autovacuum would have, before the visits are refreshed
            cursor.execute(f"ANALYZE {Event._meta.db_table}")
        with tenancy.tenant_scope(tenant.pk):
            sessions = sorted(
                Event.objects.filter(store=store, session__isnull=False).values_list("session", flat=True).distinct()
            )
            for start in range(0, len(sessions), 1000):
                visits_refresh(store=store, sessions=sessions[start : start + 1000])
            # Settled long ago: not due for settling, so the workers leave them alone.
            Visit.objects.filter(store=store).update(status=Visit.Status.NO_CHARGE, settled_at=timezone.now())
    with connection.cursor() as cursor:
        for model in (Event, Visit):
            cursor.execute(f"ANALYZE {model._meta.db_table}")
        cursor.execute("SHOW autovacuum")
        autovacuum = cursor.fetchone()[0]
    return {
        "history_events": count,
        "history_visits": Visit.unscoped.filter(store=store).count(),
        "autovacuum": autovacuum,
        "analyzed_before_upload": True,
    }


def timed_copy(csv: Path, *, like_events_table: bool) -> float:
    """The baseline: COPY the accepted rows into a fresh, logged table with the unique index (or all of them)."""
    from django.db import connection

    from ingest.models import Event

    table = Event._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS bench_ingest_copy")
        if like_events_table:
            cursor.execute(f"CREATE TABLE bench_ingest_copy (LIKE {table} INCLUDING INDEXES)")
            cursor.execute("ALTER TABLE bench_ingest_copy ALTER COLUMN id ADD GENERATED BY DEFAULT AS IDENTITY")
        else:
            cursor.execute(
                "CREATE TABLE bench_ingest_copy (tenant_id bigint NOT NULL, store_id bigint NOT NULL, "
                "event_id varchar(64) NOT NULL, type varchar(24) NOT NULL, ts timestamptz NOT NULL, "
                "session varchar(64), device varchar(64) NOT NULL, payload jsonb NOT NULL, line bigint, "
                "received_at timestamptz NOT NULL)"
            )
            cursor.execute(
                "CREATE UNIQUE INDEX bench_ingest_copy_unique ON bench_ingest_copy (tenant_id, store_id, event_id)"
            )
        checkpoint()
        started = time.perf_counter()
        with csv.open("r") as source:
            cursor.cursor.copy_expert(
                "COPY bench_ingest_copy (tenant_id, store_id, event_id, type, ts, session, device, payload, line, "
                "received_at) FROM STDIN WITH (FORMAT csv)",
                source,
                size=1 << 20,
            )
        elapsed = time.perf_counter() - started
        cursor.execute("DROP TABLE bench_ingest_copy")
    return elapsed


def _timed_baseline(csv: Path) -> dict[str, float]:
    stolen_before = machine_stolen_seconds()
    seconds = timed_copy(csv, like_events_table=False)
    return {"seconds": round(seconds, 3), "stolen_by_hypervisor_s": round(machine_stolen_seconds() - stolen_before, 2)}


def run(args: argparse.Namespace) -> dict[str, Any]:
    from django.db.models import Max

    from ingest.models import EventStream, StreamChunk
    from visits.models import Visit

    work = Path(tempfile.mkdtemp(prefix="bench-ingest-", dir=args.workdir))
    media = work / "media"
    media.mkdir()
    logs = Path(args.logs) if args.logs else work / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    tenant, store, layout, issued = setup(args)
    emptied = None if args.keep_data else lambda: clean(tenant.pk)  # after the run, unless its data is kept
    processes: Processes | None = None
    result: dict[str, Any] = {}
    try:
        ndjson, csv = work / "events.ndjson", work / "copy.csv"
        generated_at = time.perf_counter()
        expected = write_events(
            layout.document,
            count=args.events,
            ndjson=ndjson,
            csv=csv,
            tenant_id=tenant.pk,
            store_id=store.pk,
            seed=args.seed,
            duplicate_every=args.duplicate_every,
            malformed_every=args.malformed_every,
        )
        generate_s = time.perf_counter() - generated_at
        history_from = FIRST_DAY + timedelta(days=expected["days"] + 1)
        if history_from + timedelta(days=args.history_events // 10_000 + 2) > datetime.now(UTC):
            raise RuntimeError("Too many events for the days between FIRST_DAY and today; lower --events.")
        planner = load_history(
            layout.document,
            count=args.history_events,
            work=work,
            tenant=tenant,
            store=store,
            seed=args.seed,
            first_day=history_from,
        )

        copy_before = _timed_baseline(csv)
        env = server_environment(media=media)
        forget_queued_tasks()
        code = _code_version()
        processes = Processes(env=env, logs=logs)
        processes.start_server()
        processes.start_workers(pool=args.pool, processes=args.workers, chunk_bytes=args.chunk_bytes)
        processes.wait_ready(expected_workers=args.workers if args.pool == "solo" else 1)
        if args.profile:
            Path(args.profile).mkdir(parents=True, exist_ok=True)
            processes.profile(Path(args.profile))
            time.sleep(1)

        load_before = os.getloadavg()[0]
        from django.db import connection as main_connection

        main_connection.ensure_connection()
        sampler = WaitSampler(
            _database_url(),
            exclude_pid=main_connection.connection.get_backend_pid(),
        )
        sampler.start()
        sampler.mark("upload_and_prepare")
        worker_cpu_before = {pid: cpu_seconds(pid) for pid, _ in processes.worker_pids()}
        server_cpu_before = cpu_seconds(processes.server.pid)  # type: ignore[union-attr]
        postgres_before, machine_before = postgres_cpu_seconds(), machine_busy_seconds()
        stolen_before = machine_stolen_seconds()
        self_before = time.process_time()

        checkpoint()
        # The measured part: upload, processing, visits.
        at_start = processes.cpu_snapshot()
        t0 = time.time()
        accepted = upload(processes.port, key=issued.key, store=store.code, file=ndjson)
        t_uploaded = time.time()
        at_uploaded = processes.cpu_snapshot()
        stream_id = accepted["id"]
        t_prepared = None
        at_prepared = at_uploaded
        last_api_poll = 0.0
        body: dict[str, Any] = {}
        while True:
            now = time.time()
            if t_prepared is None and EventStream.unscoped.filter(pk=stream_id, chunks_total__gt=0).exists():
                t_prepared = now
                at_prepared = processes.cpu_snapshot()
                sampler.mark("chunks_and_finish")
            if now - last_api_poll >= 0.5:
                last_api_poll = now
                status, body = _request(processes.port, "GET", f"/api/v1/event-streams/{stream_id}", key=issued.key)
                if status != 200:
                    raise RuntimeError(f"stream status answered {status}: {body!r}")
                if body["status"] in ("done", "failed"):
                    t_stream_done, at_stream_done = time.time(), processes.cpu_snapshot()
                    sampler.mark("visits")
                    break
            if now - t0 > args.timeout:
                raise RuntimeError(f"the stream did not finish in {args.timeout} s: {body}")
            processes.check()
            time.sleep(0.05 if t_prepared is None else 0.1)
        stream = EventStream.unscoped.get(pk=stream_id)
        sessions = expected["sessions"]
        while True:
            refreshed = (
                Visit.unscoped.filter(tenant=tenant, store=store, events_count__gt=0).count()
                - planner["history_visits"]
            )
            if refreshed >= sessions:
                break
            if time.time() - t0 > args.timeout:
                raise RuntimeError(f"only {refreshed} of {sessions} visits refreshed after {args.timeout} s")
            processes.check()
            time.sleep(0.1)
        t_observed, at_observed = time.time(), processes.cpu_snapshot()
        waits = sampler.stop()
        load_after = os.getloadavg()[0]
        busy_observed = at_observed["machine"]
        # CPU over the whole measured time (to every visit seen refreshed), per role.
        machine_busy = busy_observed - machine_before
        postgres_cpu = postgres_cpu_seconds() - postgres_before
        stolen = machine_stolen_seconds() - stolen_before
        self_cpu = time.process_time() - self_before
        worker_cpu = {pid: cpu_seconds(pid) - worker_cpu_before.get(pid, 0.0) for pid, _ in processes.worker_pids()}
        server_pid = processes.server.pid  # type: ignore[union-attr]
        server_cpu = cpu_seconds(server_pid) - server_cpu_before
        server_cpu += sum(cpu_seconds(pid) for pid in children(server_pid))

        # The last visit refreshed: the latest refresh stamp of a visit not yet settled (settling stamps the
        # visits it settles again, and history visits are settled), at most when all were seen refreshed.
        last_visit = Visit.unscoped.filter(tenant=tenant, store=store, settled_at__isnull=True).aggregate(
            last=Max("updated_at")
        )["last"]
        t_refreshed = min(last_visit.timestamp(), t_observed) if last_visit else t_observed
        chunks_done_at = sorted(
            at.timestamp() for at in StreamChunk.unscoped.filter(stream_id=stream_id).values_list("done_at", flat=True)
        )
        last_chunk = chunks_done_at[-1]
        # The issue's end point: the last visit handed on to the visits queue, as the stream finishes.
        t_end = stream.finished_at.timestamp()
        settled_then = Visit.unscoped.filter(tenant=tenant, store=store, settled_at__isnull=False).count()
        settled_then -= planner["history_visits"]
        settled_s = None
        if args.wait_settled:  # further: until the engine has settled every visit that has left
            while Visit.unscoped.filter(tenant=tenant, store=store, status=Visit.Status.SETTLING).exists():
                if time.time() - t0 > args.timeout:
                    raise RuntimeError(f"visits still settling after {args.timeout} s")
                processes.check()
                time.sleep(0.5)
            settled_s = time.time() - t0

        # Peak memory over the whole life of each process, read just before stopping it.
        worker_rows = [
            {
                "pid": pid,
                "role": role,
                "peak_rss_mb": round(_status_kb(pid, "VmHWM") / 1024, 1),
                "rss_at_end_mb": round(_status_kb(pid, "VmRSS") / 1024, 1),
                "cpu_s": round(worker_cpu.get(pid, 0.0), 2),
            }
            for pid, role in processes.worker_pids()
        ]
        server_peak = max(_status_kb(pid, "VmHWM") for pid in [server_pid, *children(server_pid)]) / 1024
        processes.stop()
        processes = None

        counts = {k: getattr(stream, k) for k in ("lines", "accepted", "duplicates", "rejected")}
        mismatch = {k: (counts[k], expected[k]) for k in counts if counts[k] != expected[k]}
        total_s = t_end - t0
        refreshed_s = t_refreshed - t0

        copy_after = _timed_baseline(csv)
        copy_s = (copy_before["seconds"] + copy_after["seconds"]) / 2
        copy_rows = expected["accepted"]
        baseline = {
            "rows": copy_rows,
            "seconds": round(copy_s, 3),
            "rows_per_s": round(copy_rows / copy_s),
            "before_the_stream": copy_before,
            "after_the_stream": copy_after,
        }
        events_per_s = args.events / total_s
        if args.copy_all_indexes:
            copy_all_s = timed_copy(csv, like_events_table=True)
            baseline_all = {
                "rows": copy_rows,
                "seconds": round(copy_all_s, 3),
                "rows_per_s": round(copy_rows / copy_all_s),
                "ratio": round(events_per_s / (copy_rows / copy_all_s), 3),
            }
        max_worker_rss = max(row["peak_rss_mb"] for row in worker_rows if row["role"] != "prefork parent")
        ratio = events_per_s / (copy_rows / copy_s)
        refreshed_per_s = args.events / refreshed_s
        chunk_phase_s = last_chunk - (t_prepared or t_uploaded)
        result = {
            "benchmark": "ingest",
            "database": "postgresql",
            "code": code,
            "cpus": os.cpu_count(),
            "events": args.events,
            "file_bytes": ndjson.stat().st_size,
            "generate_s": round(generate_s, 1),
            "pool": args.pool,
            "worker_processes": args.workers,
            "chunk_bytes": args.chunk_bytes or _setting("INGEST_CHUNK_BYTES"),
            "chunks": stream.chunks_total,
            "expected": expected,
            "stream": {"id": stream_id, "status": stream.status, "failure_reason": stream.failure_reason, **counts},
            "counts_match": not mismatch,
            **({"count_mismatch": mismatch} if mismatch else {}),
            "visits_refreshed": refreshed,
            "visits_settled_by_then": settled_then,
            **({"all_visits_settled_after_s": round(settled_s, 3)} if settled_s is not None else {}),
            "database_state": planner,
            # Upload start to the last visit handed on (the issue's measure, the headline).
            "end_to_end": {
                "to": "last visit handed on",
                "seconds": round(total_s, 3),
                "events_per_s": round(events_per_s),
                "ratio_to_copy": round(ratio, 3),
            },
            "to_last_visit_refreshed": {
                "seconds": round(refreshed_s, 3),
                "events_per_s": round(refreshed_per_s),
                "ratio_to_copy": round(refreshed_per_s / (copy_rows / copy_s), 3),
                "visits_per_s_after_hand_on": round(refreshed / max(t_refreshed - t_end, 1e-9)),
            },
            "phases_s": {
                "upload": round(t_uploaded - t0, 3),
                "queue_and_prepare": round((t_prepared or t_uploaded) - t_uploaded, 3),
                "chunks": round(chunk_phase_s, 3),
                "finish_and_hand_on": round(t_end - last_chunk, 3),
                "visits_refresh": round(t_refreshed - t_end, 3),
                "observed_done_after_last_visit": round(t_observed - t_refreshed, 3),
            },
            # The chunks' spread over the workers: the mean wall time of one chunk on one worker, and how long
            # the last chunk ran on after the one before it ended (one worker idle meanwhile, at worst).
            "chunk_timing_s": {
                "mean_per_chunk_per_worker": round(chunk_phase_s * args.workers / max(len(chunks_done_at), 1), 3),
                "last_after_previous": round(last_chunk - chunks_done_at[-2], 3) if len(chunks_done_at) > 1 else 0.0,
            },
            # Sampled pg_stat_activity of this database: active client backends, the share of them waiting
            # for a lock (on each other), and what they waited on.
            "database_waits_by_phase": waits,
            # CPU-seconds per role in each phase, as polled; "share" is the machine's busy share of its cores.
            "cpu_s_by_phase": {
                "upload": _phase(at_start, at_uploaded, t_uploaded - t0),
                "queue_and_prepare": _phase(at_uploaded, at_prepared, (t_prepared or t_uploaded) - t_uploaded),
                "chunks_and_finish": _phase(at_prepared, at_stream_done, t_stream_done - (t_prepared or t_uploaded)),
                "visits": _phase(at_stream_done, at_observed, t_observed - t_stream_done),
            },
            "chunk_phase_events_per_s": round(args.events / max(chunk_phase_s, 1e-9)),
            "peak_rss_mb": {"max_worker": max_worker_rss, "workers": worker_rows, "web_server": round(server_peak, 1)},
            "cpu_s": {
                "machine_busy_all_cores": round(machine_busy, 2),
                "machine_capacity": round((t_observed - t0) * (os.cpu_count() or 1), 2),
                "workers": round(sum(row["cpu_s"] for row in worker_rows), 2),
                "web_server": round(server_cpu, 2),
                "postgresql_all_databases": round(postgres_cpu, 2),
                "this_script": round(self_cpu, 2),
                "everything_else": round(
                    machine_busy - sum(row["cpu_s"] for row in worker_rows) - server_cpu - postgres_cpu - self_cpu, 2
                ),
                "load_average_1min_before": round(load_before, 2),
                "load_average_1min_after": round(load_after, 2),
                "stolen_by_hypervisor": round(stolen, 2),
            },
            "baseline_copy_unique_index": baseline,
            **({"baseline_copy_all_event_indexes": baseline_all} if args.copy_all_indexes else {}),
            "targets": {
                "ratio_to_copy_min": 0.5,
                "ratio_met": ratio >= 0.5,
                "worker_peak_rss_mb_max": 300,
                "rss_met": max_worker_rss < 300,
            },
            "note": (
                "One machine: the web server, PostgreSQL, the workers and this script share its "
                f"{os.cpu_count()} cores; the baseline COPY runs alone, before the workers start and after they stop."
            ),
        }
    finally:
        tear_down(processes=processes, api_key=issued.api_key, clean=emptied, work=work, keep_work=args.keep_files)
    return result | ({"workdir": str(work)} if args.keep_files else {})


def _phase(before: dict[str, float], after: dict[str, float], wall: float) -> dict[str, float]:
    spent = {role: round(after[role] - before[role], 2) for role in before}
    spent["share"] = round((after["machine"] - before["machine"]) / max(wall * (os.cpu_count() or 1), 1e-9), 3)
    spent["wall_s"] = round(wall, 3)
    return spent


def _code_version() -> dict[str, Any]:
    """The commit measured, and the files under platform/ that differ from it (the tree may be in flux)."""

    changed = [line.split(maxsplit=1)[-1] for line in git("status", "--porcelain", "--", "platform").splitlines()]
    return {"commit": git("rev-parse", "--short", "HEAD"), "uncommitted_platform_files": changed}


def _setting(name: str) -> Any:
    from django.conf import settings

    return getattr(settings, name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000, help="lines in the file (default 1,000,000)")
    parser.add_argument("--workers", type=int, default=2, help="worker processes (default 2)")
    parser.add_argument(
        "--pool",
        choices=("solo", "prefork"),
        default="solo",
        help="solo: that many `celery worker --pool solo`; prefork: one worker with --concurrency",
    )
    parser.add_argument("--chunk-bytes", type=int, default=0, help="INGEST_CHUNK_BYTES for the workers")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--duplicate-every",
        type=int,
        default=DUPLICATE_EVERY,
        help=f"send one of the last 50,000 lines again every N events (default {DUPLICATE_EVERY}; 0: none)",
    )
    parser.add_argument(
        "--malformed-every",
        type=int,
        default=MALFORMED_EVERY,
        help=f"a malformed line every N events (default {MALFORMED_EVERY}; 0: none)",
    )
    parser.add_argument(
        "--history-events",
        type=int,
        default=100_000,
        help="earlier events of the store loaded (COPY) and analyzed before the upload; "
        "0 = empty, freshly analyzed tables (default 100,000)",
    )
    parser.add_argument("--timeout", type=float, default=1800, help="give up after this many seconds")
    parser.add_argument(
        "--no-copy-all-indexes",
        dest="copy_all_indexes",
        action="store_false",
        help="skip the second baseline (COPY into a copy of the events table with all its indexes)",
    )
    parser.add_argument("--profile", default="", help="directory: attach py-spy to each worker (collapsed stacks)")
    parser.add_argument("--logs", default="", help="directory for the server's and workers' logs (default: temporary)")
    parser.add_argument("--workdir", default=None, help="where to put the generated files (default: the temp dir)")
    parser.add_argument(
        "--keep-data",
        action="store_true",
        help="leave the stream, events and visits in the database to look at (the next run removes them)",
    )
    parser.add_argument(
        "--wait-settled",
        action="store_true",
        help="after the measured end (every visit refreshed), also wait until the engine has settled them all",
    )
    parser.add_argument("--keep-files", action="store_true", help="keep the generated files and logs")
    args = parser.parse_args()

    _database_url()  # PostgreSQL, or why not
    start_django()
    print(json.dumps(run(args)))


if __name__ == "__main__":
    main()
