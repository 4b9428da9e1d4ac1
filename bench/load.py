"""Benchmark: entry checks and live pushes answered while the workers are busy settling, at several rates.

Needs PostgreSQL and Redis; refuses to run in embedded mode. Use a database and a Redis database of your
own: the script purges the Celery queues of that Redis database.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/openaisle_load REDIS_URL=redis://127.0.0.1:6379/7 \\
        PYTHONPATH=.:platform python bench/load.py --rates 50,100,200 --duration 60

In one run it
1. sets up a tenant with stores (sample layout, catalog and prices; made once, kept): one per pushing client
   at the highest rate and --backlog-stores more; removes what earlier runs left (and vacuums the database, as
   autovacuum would) and issues an API key;
2. starts, on 127.0.0.1: the Stripe stand-in (localstripe, in memory: no payment leaves the machine; at the
   idle CPU class, --stripe-cpu-class, as Stripe takes no CPU of the host in production), the web
   server (gunicorn with deploy/gunicorn.conf.py, --web-workers x --web-threads) and Celery workers (solo
   pools: one per queue for visits and payments, one for ingest and default) at niceness --worker-nice and CPU
   class --worker-cpu-class (the live queue's at niceness 5, --live-cpu-class), as deploy/celery-worker.sh starts
   them; each worker's database backends take its class (core/priority.py), and the idle-class workers, their
   backends and the Stripe stand-in share a cgroup with cpu.idle 1 (--worker-cgroup, WORKER_CPU_CGROUP);
3. registers --shoppers-per-store shoppers per store (a card each, through the API), simulates a day for every
   store (`visits.simulator`, "realistic" profile) whose entries carry those shoppers' tokens, and uploads the
   backlog stores' days (--backlog-visits visits each): the workers are busy settling before the load starts;
4. for each rate of --rates, runs the load generator (this same file, `--drive`, in a process of its own) for
   --duration seconds after a 2-second warm-up: `rate` simulated clients of one request a second each, on a fixed
   schedule (open loop) — 70 % entry checks of registered shoppers, 15 % live pushes (a store's next batch of about
   --batch-events events), 15 % `GET /healthz`, the floor;
5. reports per rate and endpoint the latency percentiles, errors and the web server's CPU per request
   (`openaisle_http_request_cpu_seconds_total` from /metrics), the queues at the end, the machine's load and
   the CPU the generator itself used; then, from the database, whether any acknowledged push was lost or stored
   twice.

The generator is asyncio over one keep-alive HTTP/1.1 connection per client, as a device holds one. A request's
latency counts from the moment it was due, not from when it was sent: waiting behind the previous request on its
connection, or for the generator to get a core, is counted (no coordinated omission); `generator_send_lag_ms` is
the generator's own part. It replaced locust, whose own cost was the floor: against an idle server at 200 /healthz
a second, locust measured p50 150 ms / p99 300 ms, this generator 3.5 / 13 ms (2026-12-04, this 2-core host).

The web server runs as deployed: gthread workers, 4 threads each (`--web-threads 1`: sync workers, to compare).
On a host with cores to spare, `--generator-cpus` keeps the load generator on cores of its own (taskset);
`--generator-nice` changes its niceness (it stands for devices that are not on the host).

Prints one JSON object. Everything shares the machine's cores (the generator, web server, workers, PostgreSQL,
localstripe, and whatever else runs there), so the load average is printed with each rate.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import http.client
import itertools
import json
import os
import random
import resource
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import support
from machine import (
    children,
    cpu_seconds,
    end_other_backends,
    forget_queued_tasks,
    free_port,
    idle_cgroup,
    machine_busy_seconds,
    postgres_cpu_seconds,
    reaped_cpu_seconds,
)
from support import code_version, delete_tenant_rows, deletion_order, json_request, vacuum_analyze

ROOT = Path(__file__).resolve().parents[1]

# --- the load generator: `python bench/load.py --drive PLAN` in its own process (no Django) ---------------------

ENTRY, PUSH, HEALTH = "POST /stores/{store}/entry-check", "POST /stores/{store}/events", "GET /healthz"
WARM_UP_S = 2  # sent and counted, not in the latency figures: every connection is open by then
REQUEST_TIMEOUT_S = 30


class _Connection:
    """One keep-alive HTTP/1.1 connection to the server on 127.0.0.1, as one device holds it."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def exchange(self, request: bytes) -> tuple[int, bytes]:
        """Send `request`; the status and body of the answer (opens the connection again if the server closed it)."""
        if self.streams is None or self.streams[0].at_eof():
            self.close()
            self.streams = await asyncio.open_connection("127.0.0.1", self.port)
        reader, writer = self.streams
        writer.write(request)
        head = await reader.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        fields = dict(line.lower().split(b":", 1) for line in head.split(b"\r\n")[1:] if b":" in line)
        if fields.get(b"transfer-encoding", b"").strip() == b"chunked":
            body = b""
            while size := int((await reader.readuntil(b"\r\n")).strip(), 16):
                body += (await reader.readexactly(size + 2))[:-2]
            await reader.readuntil(b"\r\n")
        else:
            body = await reader.readexactly(int(fields.get(b"content-length", b"0")))
        if fields.get(b"connection", b"").strip() == b"close":
            self.close()
        return status, body

    def close(self) -> None:
        if self.streams is not None:
            self.streams[1].close()
            self.streams = None


def _request_bytes(method: str, path: str, *, key: str = "", body: str = "") -> bytes:
    head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    if key:
        head += f"Authorization: Bearer {key}\r\n"
    if body:
        head += f"Content-Type: application/json\r\nContent-Length: {len(body.encode())}\r\n"
    return (head + "\r\n" + body).encode()


class Generator:
    """Open loop: every client sends one request a second on a fixed schedule (its first at a random moment of the
    first second), whether or not the server kept up. Latency counts from the moment a request was due, so time a
    request spent waiting for the one before it on its connection, or for this process to get a core, is counted
    too (no coordinated omission); `send_lag_ms` is this process's own part: due to sent, once its connection was
    free."""

    def __init__(self, plan: dict[str, Any]) -> None:
        self.plan, self.rng = plan, random.Random(plan.get("seed", 1))
        self.latencies: dict[str, list[float]] = {ENTRY: [], PUSH: [], HEALTH: []}
        self.errors: dict[str, int] = dict.fromkeys(self.latencies, 0)
        self.error_kinds: dict[str, int] = {}
        self.send_lags: list[float] = []
        self.seen = {"pushes_acknowledged": 0, "events_acknowledged": 0, "pushes_without_batch": 0}
        self.seen |= {"entry_checks_allowed": 0, "entry_checks_refused": 0}

    def run(self) -> dict[str, Any]:
        asyncio.run(self._clients())
        duration = self.plan["duration"]
        return {
            "endpoints": {
                name: {
                    "requests": len(times) + self.errors[name],
                    "errors": self.errors[name],
                    "requests_per_s": round((len(times) + self.errors[name]) / duration, 1),
                    "latency_ms": support.percentiles(times, digits=1),
                }
                for name, times in self.latencies.items()
            },
            "error_kinds": self.error_kinds,
            "answers_seen_by_the_clients": self.seen,
            "generator_send_lag_ms": support.percentiles(self.send_lags, digits=1),
        }

    async def _clients(self) -> None:
        loop = asyncio.get_running_loop()
        start = loop.time() + 0.5
        users, key, port = self.plan["users"], self.plan["key"], self.plan["port"]
        stores = self.plan["stores"]
        clients = [self._entry() for _ in range(users["entry"])]
        clients += [self._push(stores[n % len(stores)]) for n in range(users["push"])]
        clients += [iter(itertools.repeat(("GET", "/healthz", ""))) for _ in range(users["health"])]
        kinds = [ENTRY] * users["entry"] + [PUSH] * users["push"] + [HEALTH] * users["health"]
        await asyncio.gather(
            *(
                self._client(kind, requests, port=port, key=key, first=start + self.rng.random())
                for kind, requests in zip(kinds, clients, strict=True)
            )
        )

    def _entry(self) -> Iterator[tuple[str, str, str]]:
        while True:
            code, token = self.rng.choice(self.plan["shoppers"])
            yield "POST", f"/api/v1/stores/{code}/entry-check", json.dumps({"token": token})

    def _push(self, store: dict[str, Any]) -> Iterator[tuple[str, str, str]]:
        yield from (("POST", f"/api/v1/stores/{store['code']}/events", body) for body in store["batches"])

    async def _client(
        self, kind: str, requests: Iterator[tuple[str, str, str]], *, port: int, key: str, first: float
    ) -> None:
        loop, connection = asyncio.get_running_loop(), _Connection(port)
        measured_from = first + WARM_UP_S
        free_at = 0.0
        try:
            for number in range(WARM_UP_S + self.plan["duration"]):
                due = first + number
                await asyncio.sleep(max(0.0, due - loop.time()))
                step = next(requests, None)
                if step is None:
                    self.seen["pushes_without_batch"] += 1  # the plan was too short for this phase: counted, not sent
                    continue
                method, path, body = step
                sent = loop.time()
                self.send_lags.append(1000 * (sent - max(due, free_at)))
                try:
                    status, answer = await asyncio.wait_for(
                        connection.exchange(_request_bytes(method, path, key=key if kind != HEALTH else "", body=body)),
                        REQUEST_TIMEOUT_S,
                    )
                except (OSError, ValueError, asyncio.IncompleteReadError, TimeoutError) as failed:
                    connection.close()
                    status, answer = 0, type(failed).__name__.encode()
                free_at = loop.time()
                self._count(kind, status, answer, elapsed_ms=1000 * (free_at - due), measured=due >= measured_from)
        finally:
            connection.close()

    def _count(self, kind: str, status: int, answer: bytes, *, elapsed_ms: float, measured: bool) -> None:
        if status != (202 if kind == PUSH else 200):
            self.errors[kind] += measured
            what = f"{kind} answered {status or answer.decode()}"
            self.error_kinds[what] = self.error_kinds.get(what, 0) + 1
            return
        if measured:
            self.latencies[kind].append(elapsed_ms)
        if kind == ENTRY:
            self.seen["entry_checks_allowed" if json.loads(answer)["allowed"] else "entry_checks_refused"] += 1
        elif kind == PUSH:
            reply = json.loads(answer)
            self.seen["pushes_acknowledged"] += 1
            self.seen["events_acknowledged"] += reply["accepted"] + reply["duplicates"] + len(reply["rejected"])


def drive(plan_file: Path) -> None:
    """The generator's process: the plan read, the phase run, what it saw written next to the plan."""
    plan = json.loads(plan_file.read_bytes())
    Path(plan["results_file"]).write_text(json.dumps(Generator(plan).run()))


# --- the orchestrating side ---------------------------------------------------------------------------------

TENANT_SLUG = "bench-load"
LAYOUT_FROM = datetime(2026, 1, 1, tzinfo=UTC)
SKUS = [f"SKU-{n:03d}" for n in range(1, 41)]
PRICE, TAX = 299, "8.25"


_request = functools.partial(json_request, timeout=60)


class Processes:
    """The Stripe stand-in, web server and workers this benchmark starts, stopped again whatever happens."""

    def __init__(self, *, env: dict[str, str], logs: Path, port: int = 0) -> None:
        self.env, self.logs = env, logs
        self.port = port or free_port()
        self.started: list[tuple[str, subprocess.Popen[bytes]]] = []

    def start(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> None:
        log = (self.logs / f"{name}.log").open("ab")
        process = subprocess.Popen(argv, cwd=ROOT, env=env or self.env, stdout=log, stderr=subprocess.STDOUT)
        self.started.append((name, process))

    def start_server(self, *, workers: int, threads: int) -> None:
        """gunicorn with deploy/gunicorn.conf.py, as deployed; its workers and threads as asked."""
        argv = [sys.executable, "-m", "gunicorn", "--config", "deploy/gunicorn.conf.py", "config.wsgi:application"]
        argv += ["--bind", f"127.0.0.1:{self.port}", "--backlog", "2048"]
        env = {**self.env, "PROMETHEUS_MULTIPROC_DIR": str(self.logs / "prometheus-web")}
        env |= {"WEB_CONCURRENCY": str(workers), "GUNICORN_THREADS": str(threads)}
        self.start("web", argv, env)

    def start_workers(
        self,
        *,
        visits: int,
        payments: int,
        nice: int,
        cpu_class: str,
        live_nice: int = 5,
        live_cpu_class: str = "",
        cgroup: Path | None = None,
    ) -> None:
        """Solo workers, one process each, at the niceness deploy/celery-worker.sh gives them (CELERY_NICE) and the
        CPU class of WORKER_CPU_CLASS (core/priority.py); the live queue's at the niceness and class deployed
        (deploy/compose.yaml). Those of the idle class join `cgroup` (WORKER_CPU_CGROUP) with their backends."""
        groups = [("visits", n) for n in range(visits)] + [("payments", n) for n in range(payments)]
        groups += [("ingest,default", 0), ("live", 0)]
        for queues, number in groups:
            label = queues.split(",")[0]
            niceness = live_nice if queues == "live" else nice
            argv = ["nice", "-n", str(niceness), sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", queues]
            argv += ["--pool", "solo", "-n", f"bench-load-{label}-{number}@%h", "--loglevel", "WARNING"]
            argv += ["--without-heartbeat", "--without-mingle", "--without-gossip"]
            env = {**self.env, "PROMETHEUS_MULTIPROC_DIR": str(self.logs / f"prometheus-{label}-{number}")}
            env["WORKER_CPU_CLASS"] = (live_cpu_class or cpu_class) if queues == "live" else cpu_class
            env["WORKER_CPU_CGROUP"] = str(cgroup or "")
            self.start(f"worker-{label}-{number}", argv, env)

    def worker_cpu_classes(self) -> dict[str, str]:
        """Each worker's scheduling class, niceness and cgroup as the kernel has them (e.g. `idle/19 /idle`)."""
        return {name: _cpu_place(process.pid) for name, process in self.started if name.startswith("worker")}

    def cpu_seconds(self) -> dict[str, float]:
        """CPU-seconds so far of the web server (master and workers, those recycled by gunicorn's max_requests
        included: the master waited for them) and of the Celery workers."""
        spent = {"web_server": 0.0, "celery_workers": 0.0}
        for name, process in self.started:
            role = "web_server" if name == "web" else "celery_workers"
            spent[role] += sum(cpu_seconds(pid) for pid in [process.pid, *children(process.pid)])
            spent[role] += sum(reaped_cpu_seconds(pid) for pid in [process.pid, *children(process.pid)])
        return spent

    def web_pids(self) -> set[int]:
        return {pid for name, process in self.started if name == "web" for pid in children(process.pid)}

    def view_cpu(self, token: str) -> dict[str, tuple[float, float]]:
        """Per view: (requests answered, CPU-seconds the web processes spent on them), from /metrics."""
        from prometheus_client.parser import text_string_to_metric_families

        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            connection.request("GET", "/metrics", headers={"Authorization": f"Bearer {token}"})
            text = connection.getresponse().read().decode()
        finally:
            connection.close()
        seen: dict[str, list[float]] = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == "openaisle_http_requests_total":
                    seen.setdefault(sample.labels["view"], [0.0, 0.0])[0] += sample.value
                elif sample.name == "openaisle_http_request_cpu_seconds_total":
                    seen.setdefault(sample.labels["view"], [0.0, 0.0])[1] += sample.value
        return {view: (count, cpu) for view, (count, cpu) in seen.items()}

    def check(self) -> None:
        for name, process in self.started:
            if process.poll() is not None:
                raise RuntimeError(f"{name} ended early (see {self.logs / (name + '.log')})")

    def wait_ready(self, *, workers: int, timeout: float = 300) -> None:
        support.wait_until_ready(
            self.port,
            check=self.check,
            workers_ready=lambda names: len([name for name in names if name.startswith("bench-load-")]) >= workers,
            logs=self.logs,
            timeout=timeout,
        )

    def stop(self) -> None:
        """Workers at once (cold: a task still running rolls back), then the rest; kill what does not stop."""
        support.stop_processes(
            [
                (process, signal.SIGQUIT if name.startswith("worker") else signal.SIGTERM)
                for name, process in self.started
            ]
        )
        self.started = []


def _queue_lengths() -> dict[str, int]:
    from django.conf import settings

    from config.celery import QUEUES

    if not settings.CELERY_BROKER_URL.startswith(("redis://", "rediss://")):
        return {}
    import redis

    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    try:
        return {queue: int(client.llen(queue)) for queue in QUEUES}
    finally:
        client.close()


def _cpu_place(pid: int) -> str:
    """A process's CPU class and niceness, and its cgroup: e.g. `idle/10 /openaisle-bench-load`, `normal/0 /`."""
    from core.priority import cgroup_of, cpu_class_of

    return f"{cpu_class_of(pid)} {cgroup_of(pid)}"


def _backend_cpu_classes() -> dict[str, int]:
    """How many of this database's PostgreSQL backends run in each CPU class and cgroup (the web's at `normal/0`,
    the workers' in theirs when core/priority.py could give it), read from the kernel; `elsewhere`: not on this
    host."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND backend_type = 'client backend'"
            " AND pid <> pg_backend_pid()"
        )
        pids = [pid for (pid,) in cursor.fetchall()]
    classes: dict[str, int] = {}
    for pid in pids:
        try:
            name = _cpu_place(pid)
        except OSError:
            name = "elsewhere"
        classes[name] = classes.get(name, 0) + 1
    return dict(sorted(classes.items()))


# --- data ------------------------------------------------------------------------------------------------------


def clean(tenant_id: int) -> None:
    """Remove what earlier runs left of the tenant (set-based), so that this run starts from empty stores, and vacuum
    the database."""
    models = deletion_order(["Shopper"])
    delete_tenant_rows(tenant_id, models)
    vacuum_analyze()


def setup(stores: int, *, slug: str = TENANT_SLUG, name: str = "Load benchmark") -> tuple[Any, list[Any]]:
    """A bench tenant and its stores, with catalog, prices and layout (made once, kept); emptied of earlier runs."""
    from decimal import Decimal

    from stores.models import Store
    from stores.sample_store import sample_prices_add, sample_products_add

    tenant = support.kept_tenant(slug=slug, name=name)
    sample_products_add(tenant=tenant, skus=SKUS)
    sample_prices_add(tenant=tenant, unit_price=PRICE, tax_rate=Decimal(TAX), effective_from=LAYOUT_FROM)
    names = {f"LOAD-{number:03d}": f"Load store {number}" for number in range(1, stores + 1)}
    made = support.sample_stores(tenant, names=names, skus=SKUS, effective_from=LAYOUT_FROM)
    Store.unscoped.filter(pk__in=[s.pk for s in made]).update(status=Store.Status.ACTIVE)
    clean(tenant.pk)
    return tenant, made


def register_shoppers(port: int, *, key: str, count: int) -> list[str]:
    """Shoppers with a card each (through the API, so through the Stripe stand-in); their entry tokens."""
    return support.register_shoppers(port, key=key, count=count, ref_prefix="load", timeout=60)


def plan_store(
    store: Any, *, tokens: list[str], visits: int, batch_events: int, run: str, seed: int, start: datetime
) -> dict[str, Any]:
    """A store's simulated day, as the steps its user takes: entry tokens to check, then a batch of events."""
    from catalog.models import Product
    from stores.models import LayoutVersion
    from visits.simulator import CatalogItem, simulate

    layout = LayoutVersion.unscoped.filter(store=store).order_by("-effective_from").first()
    catalog = {
        p.sku: CatalogItem(p.sku, float(p.unit_weight_g), float(p.weight_tolerance_g))
        for p in Product.unscoped.filter(tenant_id=store.tenant_id)
    }
    simulation = simulate(
        layout=layout.document, catalog=catalog, profile="realistic", visits=visits, start=start, seed=seed
    )
    rng = random.Random(seed)
    events: list[dict[str, Any]] = []
    for upload in simulation.uploads:
        for line in upload.splitlines():
            try:
                event = json.loads(line)
            except ValueError:
                continue  # a line the simulator broke on purpose; a push carries JSON objects
            event["id"] = f"{run}-{event['id']}"
            if event.get("type") == "session.started":
                event["shopper"] = rng.choice(tokens) if tokens else event.get("shopper", "")
            events.append(event)
    batches = []
    begin = 0
    while begin < len(events):
        size = rng.randint(max(1, batch_events // 2), max(1, batch_events * 3 // 2))  # about batch_events
        chunk, begin = events[begin : begin + size], begin + size
        entering = [e["shopper"] for e in chunk if e.get("type") == "session.started" and e.get("shopper")]
        batches.append({"tokens": entering, "body": json.dumps(chunk), "events": len(chunk)})
    return {"code": store.code, "batches": batches, "events": sum(b["events"] for b in batches)}


# --- the run ----------------------------------------------------------------------------------------------------

VIEWS = {ENTRY: "store-entry-check", PUSH: "store-event-push", HEALTH: "healthz"}
METRICS_TOKEN = "bench-load-metrics"  # noqa: S105 — the benchmark's own server, on 127.0.0.1, for this run only


def users_at(rate: int) -> dict[str, int]:
    """One request a second per simulated client: 70 % entry checks, 15 % pushes, 15 % /healthz."""
    push = health = max(1, round(rate * 0.15))
    return {"entry": max(1, rate - push - health), "push": push, "health": health}


def upload_backlog(port: int, *, key: str, plans: list[dict[str, Any]]) -> list[int]:
    """Upload each backlog store's simulated day as one NDJSON file: work queued for the workers."""
    import requests

    streams = []
    for plan in plans:
        lines = [json.dumps(event) + "\n" for batch in plan["batches"] for event in json.loads(batch["body"])]
        answer = requests.post(
            f"http://127.0.0.1:{port}/api/v1/stores/{plan['code']}/event-streams",
            headers={"Authorization": f"Bearer {key}"},
            files={"file": ("day.ndjson", "".join(lines).encode())},
            timeout=300,
        )
        if answer.status_code != 202:
            raise RuntimeError(f"uploading the backlog answered {answer.status_code}: {answer.text[:300]}")
        streams.append(int(answer.json()["id"]))
    return streams


def measure_alone(processes: Processes, *, key: str, shoppers: list[list[str]], requests: int) -> dict[str, Any]:
    """Each endpoint alone, before the backlog: the web processes' CPU (from /proc) per request, 4 clients at a
    time. Every shopper is checked once first, so their standing is kept, as at a gate open for a while."""
    from concurrent.futures import ThreadPoolExecutor

    def entry(number: int) -> int:
        code, token = shoppers[number % len(shoppers)]
        path = f"/api/v1/stores/{code}/entry-check"
        return _request(processes.port, "POST", path, key=key, body={"token": token})[0]

    def health(_: int) -> int:
        return _request(processes.port, "GET", "/healthz")[0]

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(entry, range(len(shoppers))))
        figures = {}
        for name, call in ((HEALTH, health), (ENTRY, entry)):
            before = processes.cpu_seconds()["web_server"]
            statuses = list(pool.map(call, range(requests)))
            spent = processes.cpu_seconds()["web_server"] - before
            figures[name] = {
                "requests": requests,
                "errors": sum(status != 200 for status in statuses),
                "web_cpu_ms_per_request": round(1000 * spent / requests, 3),
            }
    cpu = [figures[name]["web_cpu_ms_per_request"] for name in (ENTRY, HEALTH)]
    ratio = _ratio(*cpu)
    return figures | {"entry_check_vs_healthz_cpu_ratio": ratio, "cpu_ratio_at_most_2.5": (ratio or 99) <= 2.5}


def _ratio(value: float | None, floor: float | None) -> float | None:
    return round(value / floor, 2) if value and floor else None


def run_phase(
    processes: Processes,
    *,
    rate: int,
    duration: int,
    plan: dict[str, Any],
    work: Path,
    logs: Path,
    generator_cpus: str = "",
    generator_nice: int = 0,
    stripe_pid: int = 0,
) -> dict[str, Any]:
    """One rate, in one run of the load generator: the figures per endpoint, the CPU they cost and what the machine
    did."""
    users = users_at(rate)
    plan_file, results_file = work / f"plan-{rate}.json", work / f"seen-{rate}.json"
    plan_file.write_text(
        json.dumps(
            {**plan, "users": users, "port": processes.port, "duration": duration, "results_file": str(results_file)}
        )
    )
    views_before, roles_before = processes.view_cpu(METRICS_TOKEN), processes.cpu_seconds()
    web_pids = processes.web_pids()
    busy_before, load_before, started = machine_busy_seconds(), os.getloadavg()[0], time.monotonic()
    generator_before, postgres_before = _children_cpu_seconds(), postgres_cpu_seconds()
    stripe_before = cpu_seconds(stripe_pid) if stripe_pid else 0.0
    argv = ["taskset", "--cpu-list", generator_cpus] if generator_cpus else []  # cores of its own, if asked
    argv += [
        "nice",
        "-n",
        str(generator_nice),
        sys.executable,
        str(Path(__file__).resolve()),
        "--drive",
        str(plan_file),
    ]
    generator = subprocess.run(
        argv,
        cwd=ROOT,
        stdout=(logs / "generator.log").open("ab"),
        stderr=subprocess.STDOUT,
        timeout=duration + 180,
        check=False,
    )
    wall = time.monotonic() - started
    generator_cpu, postgres_cpu = _children_cpu_seconds() - generator_before, postgres_cpu_seconds() - postgres_before
    busy_after, roles_after = machine_busy_seconds(), processes.cpu_seconds()
    views_after = processes.view_cpu(METRICS_TOKEN)
    if generator.returncode != 0:
        raise RuntimeError(f"the load generator exited with {generator.returncode} (see {logs / 'generator.log'})")
    processes.check()
    seen = json.loads(results_file.read_text())
    endpoints = {}
    for name, view in VIEWS.items():
        count = views_after.get(view, (0, 0))[0] - views_before.get(view, (0, 0))[0]
        cpu = views_after.get(view, (0, 0))[1] - views_before.get(view, (0, 0))[1]
        endpoints[name] = seen["endpoints"][name] | {
            "server_cpu_ms_per_request": round(1000 * cpu / count, 3) if count else None
        }
    entry, health = endpoints[ENTRY], endpoints[HEALTH]
    return {
        "rate_requests_per_s": rate,
        "users": users,
        "endpoints": endpoints,
        "errors_seen": seen["error_kinds"],
        "entry_check_vs_healthz": {
            "p99_ratio": _ratio(entry["latency_ms"]["p99"], health["latency_ms"]["p99"]),
            "cpu_ratio": _ratio(entry["server_cpu_ms_per_request"], health["server_cpu_ms_per_request"]),
        },
        "answers_seen_by_the_clients": seen["answers_seen_by_the_clients"],
        "generator_send_lag_ms": seen["generator_send_lag_ms"],
        "queues_at_end": _queue_lengths(),
        "db_backends_by_cpu_class": _backend_cpu_classes(),
        "web_workers_restarted": len(processes.web_pids() - web_pids),  # gunicorn's max_requests
        "cpu_s": {
            "web_server": round(roles_after["web_server"] - roles_before["web_server"], 1),
            "celery_workers": round(roles_after["celery_workers"] - roles_before["celery_workers"], 1),
            "load_generator": round(generator_cpu, 1),  # shares the cores unless --generator-cpus
            # The Stripe stand-in, busy with the payments worker's calls (Stripe is not on the host in production).
            "stripe_standin": round(cpu_seconds(stripe_pid) - stripe_before, 1) if stripe_pid else None,
            # All databases' backends (the web's and the workers' alike, niceness 0); on a shared host others' too.
            "postgresql": round(postgres_cpu, 1),
            "machine_all_cores": round(busy_after - busy_before, 1),
            "wall_s": round(wall, 1),
        },
        "machine_busy_share": round((busy_after - busy_before) / (wall * (os.cpu_count() or 1)), 3),
        "load_average_1min": {"before": round(load_before, 2), "after": round(os.getloadavg()[0], 2)},
    }


def _children_cpu_seconds() -> float:
    """CPU of this process's children that have ended (the load generator, once its run returns)."""
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


def _targets(phase: dict[str, Any]) -> dict[str, Any]:
    entry, health, push = (phase["endpoints"][name] for name in (ENTRY, HEALTH, PUSH))
    entry_p99, health_p99 = entry["latency_ms"]["p99"], health["latency_ms"]["p99"]
    return {
        "entry_check_p99_at_most_50_ms": entry_p99 <= 50,
        "entry_check_p99_at_most_3x_healthz": entry_p99 <= 3 * health_p99,
        "entry_check_cpu_at_most_2.5x_healthz": (phase["entry_check_vs_healthz"]["cpu_ratio"] or 99) <= 2.5,
        "push_ack_p99_at_most_100_ms": push["latency_ms"]["p99"] <= 100,
        "workers_still_busy_at_end": any(phase["queues_at_end"].values()),
    }


def _plans(args: argparse.Namespace, stores: list[Any], tokens: list[str], *, pushers: int) -> list[dict[str, Any]]:
    """The pushing stores' days (long enough for every rate), then the backlog stores' (uploaded)."""
    run_tag = f"L{int(time.time()) % 100000}"
    start = (datetime.now(UTC) - timedelta(days=2)).replace(hour=8, minute=0, second=0, microsecond=0)
    per_store = args.shoppers_per_store
    pushes = (args.duration + 3) * len(args.rates.split(","))
    return [
        plan_store(
            store,
            tokens=tokens[n * per_store : (n + 1) * per_store],
            visits=args.backlog_visits if n >= pushers else max(10, pushes * args.batch_events // 9),
            batch_events=args.batch_events,
            run=run_tag,
            seed=args.seed * 1000 + n,
            start=start,
        )
        for n, store in enumerate(stores)
    ]


def run(args: argparse.Namespace) -> dict[str, Any]:
    """The run, with the idle-class workers (and the Stripe stand-in) in an idle cgroup of the run's own, unless
    --worker-cgroup none or the host has none to give."""
    if args.worker_cgroup == "none":
        return _run(args, cgroup=None)
    with idle_cgroup("openaisle-bench-load") as cgroup:
        return _run(args, cgroup=cgroup)


def _run(args: argparse.Namespace, *, cgroup: Path | None) -> dict[str, Any]:
    from django.db.models import Count, Q, Sum

    from billing.payments.stripe_standin import LocalStripe
    from ingest.models import Event, EventStream
    from tenants import services as tenant_services
    from tenants.audit import Actor

    rates = [int(rate) for rate in args.rates.split(",")]
    pushers = max(users_at(rate)["push"] for rate in rates)
    work = Path(tempfile.mkdtemp(prefix="bench-load-"))
    logs = Path(args.logs) if args.logs else work / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    tenant, stores = setup(pushers + args.backlog_stores)
    issued = tenant_services.api_key_issue(actor=Actor.cli(), tenant=tenant, name="load benchmark")
    processes: Processes | None = None
    stripe = LocalStripe(port=args.port + 1 if args.port else None)
    result: dict[str, Any] = {}
    try:
        stripe.__enter__()
        stripe_pid = stripe.pid
        if args.stripe_cpu_class == "idle" and stripe_pid:
            os.sched_setscheduler(stripe_pid, os.SCHED_IDLE, os.sched_param(0))
            if cgroup is not None:
                (cgroup / "cgroup.procs").write_text(str(stripe_pid))
        env = support.server_environment(
            media=work / "media",
            STRIPE_API_BASE=stripe.base_url,  # every payment goes to the stand-in on 127.0.0.1
            LOG_FORMAT="json",
            METRICS_TOKEN=METRICS_TOKEN,
            API_RATE_PER_KEY="1000000/min",  # one key drives every store here; the throttle is not measured
        )
        forget_queued_tasks()
        end_other_backends()  # what a run stopped midway may have left running
        processes = Processes(env=env, logs=logs, port=args.port)
        processes.start_server(workers=args.web_workers, threads=args.web_threads)
        processes.start_workers(
            visits=args.visits_workers,
            payments=args.payments_workers,
            nice=args.worker_nice,
            cpu_class=args.worker_cpu_class,
            live_cpu_class=args.live_cpu_class,
            cgroup=cgroup,
        )
        processes.wait_ready(workers=args.visits_workers + args.payments_workers + 2)
        worker_classes = processes.worker_cpu_classes()

        tokens = register_shoppers(processes.port, key=issued.key, count=args.shoppers_per_store * len(stores))
        shoppers = [[stores[n // args.shoppers_per_store].code, token] for n, token in enumerate(tokens)]
        alone = measure_alone(processes, key=issued.key, shoppers=shoppers, requests=args.alone_requests)
        plans = _plans(args, stores, tokens, pushers=pushers)
        backlog_streams = upload_backlog(processes.port, key=issued.key, plans=plans[pushers:])
        time.sleep(args.backlog_head_start)  # the ingest worker has chunks done and visits queued
        load_started = datetime.now(UTC)
        phases = []
        for number, rate in enumerate(rates):
            first, last = number * (args.duration + 3), (number + 1) * (args.duration + 3)
            stores_plan = [{"code": p["code"], "batches": [b["body"] for b in p["batches"][first:last]]} for p in plans]
            plan = {"key": issued.key, "shoppers": shoppers, "stores": stores_plan[:pushers]}
            phases.append(
                run_phase(
                    processes,
                    rate=rate,
                    duration=args.duration,
                    plan=plan,
                    work=work,
                    logs=logs,
                    generator_cpus=args.generator_cpus,
                    generator_nice=args.generator_nice,
                    stripe_pid=stripe_pid,
                )
            )
        load_ended = datetime.now(UTC)

        pushed = EventStream.unscoped.filter(
            tenant=tenant, source=EventStream.Source.PUSH, created_at__gte=load_started
        ).aggregate(
            streams=Count("pk"),
            lines=Sum("lines"),
            accepted=Sum("accepted"),
            duplicates=Sum("duplicates"),
            finished=Count("pk", filter=Q(status=EventStream.Status.DONE)),
        )
        seen = [phase["answers_seen_by_the_clients"] for phase in phases]
        acknowledged = {key: sum(counts[key] for counts in seen) for key in seen[0]}
        stored = Event.unscoped.filter(
            tenant=tenant, stream__source=EventStream.Source.PUSH, stream__created_at__gte=load_started
        ).count()
        backlog = EventStream.unscoped.filter(pk__in=backlog_streams).aggregate(
            lines=Sum("lines"), done=Count("pk", filter=Q(status=EventStream.Status.DONE))
        )
        processes.stop()
        processes = None
        result = {
            "benchmark": "load",
            "code": code_version(),
            "cpus": os.cpu_count(),
            "duration_s_per_rate": args.duration,
            "web": {
                "gunicorn_workers": args.web_workers,
                "threads": args.web_threads,
                "worker_class": "gthread" if args.web_threads > 1 else "sync",
            },
            "load_generator": {"cpus": args.generator_cpus or "any", "nice": args.generator_nice},
            "stripe_standin_cpu_class": args.stripe_cpu_class,
            "celery_workers": {
                "visits": args.visits_workers,
                "payments": args.payments_workers,
                "ingest+default": 1,
                "live": 1,
                "nice": args.worker_nice,
                "cpu_class": args.worker_cpu_class,
                "live_cpu_class": args.live_cpu_class or args.worker_cpu_class,
                "cgroup": str(cgroup) if cgroup else None,
                "as_the_kernel_has_them": worker_classes,
            },
            "backlog": {
                "uploaded_streams": len(backlog_streams),
                "uploaded_events": backlog["lines"] or 0,
                "streams_done_at_end": backlog["done"],
            },
            # Each endpoint alone (web CPU from /proc), with idle workers: the per-request cost without contention,
            # everything the web server spends on it (gunicorn's HTTP parsing and writing included). Under load
            # (phases), server_cpu_ms_per_request is the Django part only: the same fixed costs left out of both,
            # so its ratio reads higher.
            "alone": alone,
            "phases": [phase | {"targets_met": _targets(phase)} for phase in phases],
            # Lost or duplicated: what the server told the clients it stored, against the database.
            "pushes": {
                "acknowledged": acknowledged["pushes_acknowledged"],
                "streams_in_the_database": pushed["streams"],
                "lost": max(acknowledged["pushes_acknowledged"] - pushed["streams"], 0),
                # Stored, but the client stopped waiting for the answer (still in flight when its rate ended).
                "stored_unanswered": max(pushed["streams"] - acknowledged["pushes_acknowledged"], 0),
                # Never stored twice (the unique index): the realistic profile repeats some events on purpose.
                "events_refused_as_duplicates": pushed["duplicates"] or 0,
                "events_acknowledged": acknowledged["events_acknowledged"],
                "events_counted_by_the_streams": pushed["lines"] or 0,
                "events_accepted_by_the_streams": pushed["accepted"] or 0,
                "accepted_events_stored": stored,
                "finished_by_the_workers_at_end": pushed["finished"],
                "not_sent_plan_too_short": acknowledged["pushes_without_batch"],
            },
            "entry_checks": {
                "allowed": acknowledged["entry_checks_allowed"],
                "refused": acknowledged["entry_checks_refused"],
            },
            "load_seconds": round((load_ended - load_started).total_seconds(), 1),
            "note": (
                f"One machine ({os.cpu_count()} cores), shared with whatever else runs on it: the load generator, "
                "the web server, the workers (busy with the uploaded backlog and the pushes), PostgreSQL, Redis and "
                "the Stripe stand-in. Each rate is one generator run after the one before; one request a second per "
                "simulated client on a fixed schedule, 70 % entry checks, 15 % pushes, 15 % /healthz; latency from "
                "the moment a request was due, after a 2-second warm-up. server_cpu_ms_per_request: CPU the web "
                "process's thread spent inside Django on that view (openaisle_http_request_cpu_seconds_total); "
                "cpu_s.web_server: every gunicorn process, from /proc."
            ),
        }
    finally:
        support.tear_down(
            processes=processes, stripe=stripe, api_key=issued.api_key, work=work, keep_work=args.keep_files
        )
    return result | ({"workdir": str(work)} if args.keep_files else {})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rates", default="50,100,200", help="requests/s offered, one run each (default 50,100,200)")
    parser.add_argument("--duration", type=int, default=60, help="seconds measured at each rate (default 60)")
    parser.add_argument("--batch-events", type=int, default=20, help="events per push, about (default 20)")
    parser.add_argument("--shoppers-per-store", type=int, default=5, help="registered shoppers per store (default 5)")
    parser.add_argument("--backlog-stores", type=int, default=6, help="stores whose day is uploaded first (default 6)")
    parser.add_argument("--backlog-visits", type=int, default=600, help="visits in each uploaded day (default 600)")
    parser.add_argument("--backlog-head-start", type=float, default=10, help="seconds from upload to load")
    parser.add_argument("--alone-requests", type=int, default=400, help="requests per endpoint measured alone")
    parser.add_argument("--web-workers", type=int, default=3, help="gunicorn workers (default 3)")
    parser.add_argument(
        "--web-threads", type=int, default=4, help="threads per gunicorn worker (default 4, as deployed; 1: sync)"
    )
    parser.add_argument(
        "--generator-cpus",
        default="",
        help="CPUs the load generator may run on, e.g. 3 or 2,3 (default: any); on a host with cores to spare",
    )
    parser.add_argument(
        "--generator-nice",
        type=int,
        default=0,
        help="the load generator's niceness (default 0, the web server's)",
    )
    parser.add_argument("--visits-workers", type=int, default=1, help="solo workers on the visits queue (default 1)")
    parser.add_argument("--payments-workers", type=int, default=1, help="solo workers on payments (default 1)")
    parser.add_argument("--worker-nice", type=int, default=10, help="niceness of the workers (default 10, as deployed)")
    parser.add_argument(
        "--worker-cpu-class",
        default="idle",
        choices=["idle", "normal"],
        help="the workers' WORKER_CPU_CLASS (default idle, as deployed; normal: niceness alone)",
    )
    parser.add_argument(
        "--live-cpu-class",
        default="normal",
        choices=["idle", "normal"],
        help="the live worker's (default normal, at niceness 5, as deployed)",
    )
    parser.add_argument(
        "--stripe-cpu-class",
        default="idle",
        choices=["idle", "normal"],
        help="the Stripe stand-in's CPU class (default idle: Stripe itself takes no CPU of the host in production; "
        "here only the payments worker, at the idle class, calls it during the load)",
    )
    parser.add_argument(
        "--worker-cgroup",
        default="idle",
        choices=["idle", "none"],
        help="idle (default): the idle-class workers, their backends and the Stripe stand-in in a cgroup with "
        "cpu.idle 1 (WORKER_CPU_CGROUP), as a systemd slice with CPUWeight=idle has them; none: SCHED_IDLE alone",
    )
    parser.add_argument("--port", type=int, default=0, help="the web server's port, the Stripe stand-in's + 1 (free)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--logs", default="", help="directory for the processes' logs (default: temporary)")
    parser.add_argument("--keep-files", action="store_true", help="keep the plans, what the generator saw and the logs")
    support.measure(parser, run)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--drive"]:  # the load generator's process (run_phase starts it)
        drive(Path(sys.argv[2]))
    else:
        main()
