"""Benchmark: many stores at once pushing live events and checking shoppers in, against gunicorn and real workers.

Needs PostgreSQL and Redis; refuses to run in embedded mode. Use a database and a Redis database of your
own: the script purges the Celery queues of that Redis database.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/openaisle_load REDIS_URL=redis://127.0.0.1:6379/7 \\
        PYTHONPATH=.:platform python bench/load.py --duration 60 --stores 40

In one run it
1. sets up a tenant with --stores stores (sample layout, catalog and prices; made once, kept), removes what
   earlier runs left (visits, events, streams, shoppers) and issues an API key;
2. starts, on 127.0.0.1: the Stripe stand-in (localstripe, in memory: no payment leaves the machine), the web
   server (gunicorn, --web-workers sync workers, deploy/gunicorn.conf.py) and Celery workers (solo pools: one
   per queue for visits and payments, one for ingest and default);
3. registers --shoppers-per-store shoppers per store (a card each, through the API) and simulates a busy day
   for every store (`visits.simulator`, the "realistic" profile: duplicates, shuffles, phantom picks, ...)
   whose entries carry those shoppers' entry tokens, cut into batches of about --batch-events events;
4. runs locust headless (this same file is its locustfile) for --duration seconds: one simulated store per
   user, each step POSTs an entry check for every shopper about to enter (`/entry-check`) and then the next
   batch (`/events`), paced at one step per --pace seconds per store (0: as fast as answers come);
5. reads what happened: requests/s (overall, and held once every store was running), latency percentiles,
   errors, events accepted, visits started, settled and charged while under load, what the queues still held
   at the end; then stops everything.

Prints one JSON object. Everything shares the machine's cores (locust, web server, workers, PostgreSQL,
localstripe), so the figures are for the machine as a whole.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import http.client
import itertools
import json
import os
import random
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from machine import children, cpu_seconds, forget_queued_tasks, free_port, machine_busy_seconds, start_django

ROOT = Path(__file__).resolve().parents[1]

# --- the locust side: imported by `locust -f bench/load.py` in its own process ------------------------------

if __name__ != "__main__" and os.environ.get("LOAD_PLAN"):
    from locust import FastHttpUser, constant, constant_pacing, task
    from locust.exception import StopUser

    _PLAN: dict[str, Any] = json.loads(Path(os.environ["LOAD_PLAN"]).read_bytes())
    _STORE_NUMBERS = itertools.count()

    class SimulatedStore(FastHttpUser):
        """One store: before each batch of events, an entry check for every shopper about to come in."""

        wait_time = constant_pacing(_PLAN["pace_s"]) if _PLAN["pace_s"] > 0 else constant(0)

        def on_start(self) -> None:
            store = _PLAN["stores"][next(_STORE_NUMBERS) % len(_PLAN["stores"])]
            self.code: str = store["code"]
            self.steps = iter(store["batches"])
            self.headers = {"Authorization": f"Bearer {_PLAN['key']}", "Content-Type": "application/json"}

        @task
        def next_step(self) -> None:
            step = next(self.steps, None)
            if step is None:
                raise StopUser()  # this store's simulated day is over
            if _PLAN["entry_check"]:
                for token in step["tokens"]:
                    with self.client.post(
                        f"/api/v1/stores/{self.code}/entry-check",
                        data=json.dumps({"token": token}),
                        headers=self.headers,
                        name="POST /stores/{store}/entry-check",
                        catch_response=True,
                    ) as answer:
                        if answer.status_code != 200:
                            answer.failure(f"entry check answered {answer.status_code}")
            with self.client.post(
                f"/api/v1/stores/{self.code}/events",
                data=step["body"],
                headers=self.headers,
                name="POST /stores/{store}/events",
                catch_response=True,
            ) as answer:
                if answer.status_code != 202:
                    answer.failure(f"push answered {answer.status_code}: {answer.text[:200]}")


# --- the orchestrating side ---------------------------------------------------------------------------------

TENANT_SLUG = "bench-load"
LAYOUT_FROM = datetime(2026, 1, 1, tzinfo=UTC)
SKUS = [f"SKU-{n:03d}" for n in range(1, 41)]
PRICE, TAX = 299, "8.25"


def _request(port: int, method: str, path: str, *, key: str = "", body: Any = None) -> tuple[int, Any]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        headers = {"Content-Type": "application/json"}
        if key:
            headers["Authorization"] = f"Bearer {key}"
        connection.request(method, path, body=None if body is None else json.dumps(body), headers=headers)
        response = connection.getresponse()
        data = response.read()
        return response.status, (json.loads(data) if data[:1] in (b"{", b"[") else data)
    finally:
        connection.close()


class Processes:
    """The Stripe stand-in, web server and workers this benchmark starts, stopped again whatever happens."""

    def __init__(self, *, env: dict[str, str], logs: Path) -> None:
        self.env, self.logs = env, logs
        self.port = free_port()
        self.started: list[tuple[str, subprocess.Popen[bytes]]] = []

    def start(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> None:
        log = (self.logs / f"{name}.log").open("ab")
        process = subprocess.Popen(argv, cwd=ROOT, env=env or self.env, stdout=log, stderr=subprocess.STDOUT)
        self.started.append((name, process))

    def start_server(self, *, workers: int) -> None:
        argv = [sys.executable, "-m", "gunicorn", "--config", "deploy/gunicorn.conf.py", "config.wsgi:application"]
        argv += ["--bind", f"127.0.0.1:{self.port}", "--workers", str(workers), "--backlog", "2048"]
        self.start("web", argv, {**self.env, "PROMETHEUS_MULTIPROC_DIR": str(self.logs / "prometheus-web")})

    def start_workers(self, *, visits: int, payments: int) -> None:
        groups = [("visits", n) for n in range(visits)] + [("payments", n) for n in range(payments)]
        groups.append(("ingest,default", 0))
        for queues, number in groups:
            label = queues.split(",")[0]
            argv = [sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", queues, "--pool", "solo"]
            argv += ["-n", f"bench-load-{label}-{number}@%h", "--loglevel", "WARNING"]
            argv += ["--without-heartbeat", "--without-mingle", "--without-gossip"]
            env = {**self.env, "PROMETHEUS_MULTIPROC_DIR": str(self.logs / f"prometheus-{label}-{number}")}
            self.start(f"worker-{label}-{number}", argv, env)

    def cpu_seconds(self) -> dict[str, float]:
        """CPU-seconds so far of the web server (master and workers) and of the Celery workers."""
        spent = {"web_server": 0.0, "celery_workers": 0.0}
        for name, process in self.started:
            role = "web_server" if name == "web" else "celery_workers"
            spent[role] += sum(cpu_seconds(pid) for pid in [process.pid, *children(process.pid)])
        return spent

    def check(self) -> None:
        for name, process in self.started:
            if process.poll() is not None:
                raise RuntimeError(f"{name} ended early (see {self.logs / (name + '.log')})")

    def wait_ready(self, *, workers: int, timeout: float = 90) -> None:
        from config.celery import app

        deadline = time.monotonic() + timeout
        while True:
            self.check()
            try:
                server_up = _request(self.port, "GET", "/healthz")[0] == 200
            except OSError:
                server_up = False
            replies = app.control.ping(timeout=0.5) or []
            names = {name for reply in replies for name in reply if name.startswith("bench-load-")}
            if server_up and len(names) >= workers:
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"server or workers not ready after {timeout} s (see {self.logs})")
            time.sleep(0.3)

    def stop(self) -> None:
        """Workers at once (cold: a task still running rolls back), then the rest; kill what does not stop."""
        for name, process in self.started:
            if process.poll() is None:
                process.send_signal(signal.SIGQUIT if name.startswith("worker") else signal.SIGTERM)
        for _, process in self.started:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
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


# --- data ------------------------------------------------------------------------------------------------------


def _deletion_order() -> list[Any]:
    """Visits, events, streams, rejections and shoppers, and whatever hangs off them, rows pointing at others first."""
    from django.apps import apps

    from ingest.models import Event, EventStream, Rejection, StreamChunk
    from visits.models import Visit

    order: list[Any] = []

    def add(model: Any) -> None:
        if model in order:
            return
        for relation in model._meta.related_objects:
            if relation.on_delete is not None and relation.related_model is not model:
                add(relation.related_model)
        order.append(model)

    roots = [Visit, Rejection, StreamChunk, Event, EventStream]
    with contextlib.suppress(LookupError):
        roots.append(apps.get_model("payments", "Shopper"))
    for model in roots:
        add(model)
    return order


def clean(tenant_id: int) -> None:
    """Remove what earlier runs left of the tenant (set-based), so that this run starts from empty stores."""
    from django.db import connection

    models = _deletion_order()
    with connection.cursor() as cursor:
        for model in models:
            if not any(field.attname == "tenant_id" for field in model._meta.concrete_fields):
                raise RuntimeError(f"{model.__name__} has no tenant column: extend clean() for it")
            cursor.execute(f"DELETE FROM {model._meta.db_table} WHERE tenant_id = %s", [tenant_id])  # noqa: S608
        for model in models:
            cursor.execute(f"ANALYZE {model._meta.db_table}")


def setup(stores: int) -> tuple[Any, list[Any]]:
    """The bench tenant and its stores, with catalog, prices and layout (made once, kept); emptied of earlier runs."""
    from decimal import Decimal

    from catalog.models import Product, ProductPrice
    from core import tenancy
    from stores import services as store_services
    from stores.models import Store
    from stores.sample import sample_layout
    from tenants import services as tenant_services
    from tenants.audit import Actor
    from tenants.models import Tenant

    tenant = Tenant.objects.filter(slug=TENANT_SLUG).first() or tenant_services.tenant_create(
        actor=Actor.cli(), name="Load benchmark", slug=TENANT_SLUG
    )
    Product.unscoped.bulk_create(
        [
            Product(
                tenant=tenant,
                sku=sku,
                name=f"Product {sku}",
                unit_weight_g=Decimal("250"),
                weight_tolerance_g=Decimal("12.5"),
            )
            for sku in SKUS
        ],
        ignore_conflicts=True,
    )
    ProductPrice.unscoped.bulk_create(
        [
            ProductPrice(
                tenant=tenant,
                product=p,
                currency="USD",
                unit_price=PRICE,
                tax_rate=Decimal(TAX),
                effective_from=LAYOUT_FROM,
            )
            for p in Product.unscoped.filter(tenant=tenant)
            if not ProductPrice.unscoped.filter(product=p, currency="USD").exists()
        ]
    )
    made = []
    with tenancy.tenant_scope(tenant.pk):
        for number in range(1, stores + 1):
            code = f"LOAD-{number:03d}"
            store = Store.unscoped.filter(tenant=tenant, code=code).first()
            if store is None:
                store = store_services.store_create(
                    actor=Actor.cli(),
                    tenant=tenant,
                    code=code,
                    name=f"Load store {number}",
                    timezone="UTC",
                    currency="USD",
                )
                store_services.layout_publish(
                    actor=Actor.cli(), store=store, document=sample_layout(skus=SKUS), effective_from=LAYOUT_FROM
                )
            made.append(store)
        Store.unscoped.filter(pk__in=[s.pk for s in made]).update(status=Store.Status.ACTIVE)
    clean(tenant.pk)
    return tenant, made


def register_shoppers(port: int, *, key: str, count: int) -> list[str]:
    """Shoppers with a card each (through the API, so through the Stripe stand-in); their entry tokens."""
    tokens = []
    for number in range(count):
        status, answer = _request(
            port,
            "POST",
            "/api/v1/shoppers",
            key=key,
            body={"external_ref": f"load-shopper-{number}", "payment_method": "pm_card_visa"},
        )
        if status not in (200, 201):
            raise RuntimeError(f"registering a shopper answered {status}: {answer!r}")
        tokens.append(answer["entry_token"])
    return tokens


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


# --- reading locust's results -----------------------------------------------------------------------------------


def _number(value: str) -> float:
    try:
        return float(value)
    except ValueError:
        return 0.0


def read_locust(prefix: Path, *, users: int) -> dict[str, Any]:
    with (prefix.parent / f"{prefix.name}_stats.csv").open() as source:
        rows = {row["Name"]: row for row in csv.DictReader(source)}
    history_path = prefix.parent / f"{prefix.name}_stats_history.csv"
    with history_path.open() as source:
        history = [row for row in csv.DictReader(source) if row["Name"] == "Aggregated"]
    failures: list[dict[str, Any]] = []
    with contextlib.suppress(FileNotFoundError), (prefix.parent / f"{prefix.name}_failures.csv").open() as source:
        failures = [
            {"request": row["Name"], "error": row["Error"][:300], "count": int(row["Occurrences"])}
            for row in csv.DictReader(source)
        ]

    def summary(row: dict[str, str]) -> dict[str, Any]:
        return {
            "requests": int(row["Request Count"]),
            "failures": int(row["Failure Count"]),
            "requests_per_s": round(_number(row["Requests/s"]), 1),
            "latency_ms": {
                "p50": _number(row["50%"]),
                "p95": _number(row["95%"]),
                "p99": _number(row["99%"]),
                "max": round(_number(row["Max Response Time"]), 1),
                "mean": round(_number(row["Average Response Time"]), 1),
            },
        }

    # Held: from the moment every store was running to the last second of the run.
    full = [row for row in history if int(_number(row["User Count"])) >= users]
    held = None
    if len(full) >= 2:
        first, last = full[0], full[-1]
        seconds = int(last["Timestamp"]) - int(first["Timestamp"])
        done = int(_number(last["Total Request Count"])) - int(_number(first["Total Request Count"]))
        if seconds > 0:
            held = {"requests_per_s": round(done / seconds, 1), "over_s": seconds}
    return {
        "total": summary(rows["Aggregated"]),
        "by_request": {name: summary(row) for name, row in rows.items() if name != "Aggregated"},
        "held": held,
        "failures": failures,
    }


# --- the run ----------------------------------------------------------------------------------------------------


def _code_version() -> dict[str, Any]:
    def git(*argv: str) -> str:
        try:
            done = subprocess.run(["git", *argv], cwd=ROOT, capture_output=True, text=True, timeout=30, check=False)
        except OSError:
            return ""
        return done.stdout.strip()

    changed = [line[3:] for line in git("status", "--porcelain").splitlines()]
    return {"commit": git("rev-parse", "--short", "HEAD"), "uncommitted_files": len(changed)}


def run(args: argparse.Namespace) -> dict[str, Any]:
    from django.db.models import Count, Q, Sum

    from billing.payments.stripe_standin import LocalStripe
    from ingest.models import EventStream
    from tenants import services as tenant_services
    from tenants.audit import Actor
    from visits.models import Visit

    work = Path(tempfile.mkdtemp(prefix="bench-load-"))
    logs = Path(args.logs) if args.logs else work / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    tenant, stores = setup(args.stores)
    issued = tenant_services.api_key_issue(actor=Actor.cli(), tenant=tenant, name="load benchmark")
    processes: Processes | None = None
    stripe = LocalStripe()
    result: dict[str, Any] = {}
    try:
        stripe.__enter__()
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "platform")]),
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "MEDIA_ROOT": str(work / "media"),
            "STRIPE_API_BASE": stripe.base_url,  # every payment goes to the stand-in on 127.0.0.1
            "LOG_LEVEL": "WARNING",
            "LOG_FORMAT": "json",
            "API_RATE_PER_KEY": "1000000/min",  # one key drives every store here; the throttle is not measured
        }
        forget_queued_tasks()
        processes = Processes(env=env, logs=logs)
        processes.start_server(workers=args.web_workers)
        processes.start_workers(visits=args.visits_workers, payments=args.payments_workers)
        processes.wait_ready(workers=args.visits_workers + args.payments_workers + 1)

        tokens = register_shoppers(processes.port, key=issued.key, count=args.shoppers_per_store * len(stores))
        probe_status, _ = _request(
            processes.port, "POST", f"/api/v1/stores/{stores[0].code}/entry-check", key=issued.key, body={"token": "x"}
        )
        entry_check = probe_status == 200
        run_tag = f"L{int(time.time()) % 100000}"
        start = (datetime.now(UTC) - timedelta(days=2)).replace(hour=8, minute=0, second=0, microsecond=0)
        steps_needed = args.duration / args.pace if args.pace > 0 else args.duration * 20
        visits = max(10, min(args.max_visits_per_store, int(steps_needed * args.batch_events / 10)))
        plans = [
            plan_store(
                store,
                tokens=tokens[n * args.shoppers_per_store : (n + 1) * args.shoppers_per_store],
                visits=visits,
                batch_events=args.batch_events,
                run=run_tag,
                seed=args.seed * 1000 + n,
                start=start,
            )
            for n, store in enumerate(stores)
        ]
        plan_file = work / "plan.json"
        plan_file.write_text(
            json.dumps({"key": issued.key, "pace_s": args.pace, "entry_check": entry_check, "stores": plans})
        )

        busy_before, load_started = machine_busy_seconds(), datetime.now(UTC)
        roles_before, children_before = processes.cpu_seconds(), resource.getrusage(resource.RUSAGE_CHILDREN)
        locust = subprocess.run(
            [
                sys.executable,
                "-m",
                "locust",
                "-f",
                str(Path(__file__).resolve()),
                "--headless",
                "--users",
                str(len(stores)),
                "--spawn-rate",
                str(args.spawn_rate or len(stores)),
                "--run-time",
                f"{args.duration}s",
                "--host",
                f"http://127.0.0.1:{processes.port}",
                "--csv",
                str(work / "locust"),
                "--only-summary",
                "--loglevel",
                "WARNING",
                "--stop-timeout",
                "10",
                "--exit-code-on-error",
                "0",
            ],
            cwd=ROOT,
            env={**os.environ, "LOAD_PLAN": str(plan_file)},
            stdout=(logs / "locust.log").open("ab"),
            stderr=subprocess.STDOUT,
            timeout=args.duration + 120,
            check=False,
        )
        load_ended, busy_after = datetime.now(UTC), machine_busy_seconds()
        roles_after, children_after = processes.cpu_seconds(), resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = {role: round(roles_after[role] - roles_before[role], 1) for role in roles_after}
        # The only child reaped meanwhile is locust.
        cpu["locust"] = round(
            children_after.ru_utime + children_after.ru_stime - children_before.ru_utime - children_before.ru_stime, 1
        )
        cpu["machine_busy_all_cores"] = round(busy_after - busy_before, 1)
        cpu["everything_else"] = round(
            cpu["machine_busy_all_cores"] - cpu["web_server"] - cpu["celery_workers"] - cpu["locust"], 1
        )
        if locust.returncode != 0:
            raise RuntimeError(f"locust exited with {locust.returncode} (see {logs / 'locust.log'})")
        processes.check()
        queues_at_end = _queue_lengths()
        wall = (load_ended - load_started).total_seconds()

        visits_all = Visit.unscoped.filter(tenant=tenant)
        during = Q(settled_at__gte=load_started, settled_at__lte=load_ended)
        settled = visits_all.filter(during).aggregate(
            n=Count("pk"),
            charged=Count("pk", filter=Q(status=Visit.Status.CHARGED)),
            review=Count("pk", filter=Q(status=Visit.Status.NEEDS_REVIEW)),
        )
        ended = visits_all.filter(exited_at__isnull=False).count()
        streams = EventStream.unscoped.filter(tenant=tenant, source=EventStream.Source.PUSH).aggregate(
            pushes=Count("pk"), accepted=Sum("accepted"), duplicates=Sum("duplicates"), rejected=Sum("rejected")
        )
        by_status = dict(visits_all.values_list("status").annotate(n=Count("pk")).values_list("status", "n"))
        processes.stop()
        processes = None

        figures = read_locust(work / "locust", users=len(stores))
        result = {
            "benchmark": "load",
            "database": "postgresql",
            "code": _code_version(),
            "cpus": os.cpu_count(),
            "duration_s": args.duration,
            "stores": len(stores),
            "pace_s_per_store": args.pace,
            "batch_events_about": args.batch_events,
            "web_workers": args.web_workers,
            "celery_workers": {"visits": args.visits_workers, "payments": args.payments_workers, "ingest+default": 1},
            "requests_per_s": figures["total"]["requests_per_s"],
            "requests_per_s_held": figures["held"],
            "latency_ms": figures["total"]["latency_ms"],
            "requests": figures["total"]["requests"],
            "errors": figures["total"]["failures"],
            "by_request": figures["by_request"],
            "failures": figures["failures"][:10],
            "entry_checks": (
                {"measured": True, "shoppers_registered": len(tokens)}
                if entry_check
                else {
                    "measured": False,
                    "note": f"POST /api/v1/stores/{{store}}/entry-check answered {probe_status} before the run "
                    "(the endpoint is missing): only live pushes were sent.",
                }
            ),
            "events_pushed": {
                "planned": sum(p["events"] for p in plans),
                "pushes": streams["pushes"] or 0,
                "accepted": streams["accepted"] or 0,
                "duplicates": streams["duplicates"] or 0,
                "rejected": streams["rejected"] or 0,
                "accepted_per_s": round((streams["accepted"] or 0) / wall, 1),
            },
            "visits": {
                "started": visits_all.count(),
                "left_the_store": ended,
                "settled_while_under_load": settled["n"],
                "settled_per_s": round(settled["n"] / wall, 2),
                "of_which_charged": settled["charged"],
                "of_which_needs_review": settled["review"],
                "by_status_at_end": by_status,
            },
            "queues_at_end": queues_at_end,
            "machine_busy_share": round((busy_after - busy_before) / (wall * (os.cpu_count() or 1)), 3),
            # CPU-seconds over the load; everything_else: PostgreSQL, the Stripe stand-in, Redis, and other work.
            "cpu_s": cpu,
            # Per unit of work, whatever else shared the machine: the web server's CPU per request answered,
            # the workers' per visit settled (refreshing, settling and the payments of it).
            "cpu_ms_per_unit": {
                "web_per_request": round(1000 * cpu["web_server"] / max(figures["total"]["requests"], 1), 1),
                "web_per_event_pushed": round(1000 * cpu["web_server"] / max(streams["accepted"] or 0, 1), 2),
                "workers_per_visit_settled": round(1000 * cpu["celery_workers"] / max(settled["n"], 1), 1),
            },
            "load_average_1min_at_end": round(os.getloadavg()[0], 2),
            "note": (
                f"One machine: locust, the web server, the workers, PostgreSQL and the Stripe stand-in share its "
                f"{os.cpu_count()} cores. Each store pushes about {args.batch_events} events per step and checks "
                "in the shoppers entering in that step; 'held' counts from the moment every store was running."
            ),
        }
    finally:
        if processes is not None:
            processes.stop()
        with contextlib.suppress(Exception):
            stripe.__exit__(None, None, None)
        forget_queued_tasks()
        with contextlib.suppress(Exception):
            tenant_services.api_key_revoke(actor=Actor.cli(), api_key=issued.api_key)
        if args.keep_files:
            result["workdir"] = str(work)
        else:
            shutil.rmtree(work, ignore_errors=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=60, help="seconds of load (default 60)")
    parser.add_argument("--stores", type=int, default=40, help="simulated stores pushing at once (default 40)")
    parser.add_argument("--pace", type=float, default=1.0, help="seconds between a store's steps (0: no pause)")
    parser.add_argument("--batch-events", type=int, default=20, help="events per push, about (default 20)")
    parser.add_argument("--shoppers-per-store", type=int, default=5, help="registered shoppers per store (default 5)")
    parser.add_argument("--max-visits-per-store", type=int, default=3000, help="cap on each store's simulated day")
    parser.add_argument("--spawn-rate", type=float, default=0, help="stores started per second (default: all at once)")
    parser.add_argument("--web-workers", type=int, default=3, help="gunicorn sync workers (default 3)")
    parser.add_argument("--visits-workers", type=int, default=1, help="solo workers on the visits queue (default 1)")
    parser.add_argument("--payments-workers", type=int, default=1, help="solo workers on payments (default 1)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--logs", default="", help="directory for the processes' logs (default: temporary)")
    parser.add_argument("--keep-files", action="store_true", help="keep the plan, locust's CSV files and the logs")
    args = parser.parse_args()

    start_django()
    print(json.dumps(run(args)))


if __name__ == "__main__":
    main()
