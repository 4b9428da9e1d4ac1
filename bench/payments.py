"""Benchmark: visits settled and paid per second through the Stripe stand-in with two workers, and how long after
`session.ended` (plus the settling window) each visit's money has moved.

Needs PostgreSQL and Redis; refuses to run in embedded mode. Use a database and a Redis database of your own: the
script purges the Celery queues of that Redis database.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/openaisle_bench_pay REDIS_URL=redis://127.0.0.1:6379/9 \\
        PYTHONPATH=.:platform python bench/payments.py --visits 2000

In one run it
1. sets up a tenant with stores of its own for each phase (sample layout, a catalog whose prices make some carts
   larger than the 50.00 hold; made once, kept), the settling window set to --window seconds; removes what
   earlier runs left and issues an API key. Phases do not share stores: a push's weight changes bring every
   visit of the store within five minutes of them up to date, and settle the settled ones again;
2. starts, on 127.0.0.1: localstripe (in memory, `billing.payments.stripe_standin`), the web server (gunicorn)
   and two Celery worker processes (solo pools). --layout split (the default, as deploy/Procfile): one worker on
   `visits` (with `ingest` and `default`), one on `payments`; --layout shared: both on every queue;
3. registers --shoppers shoppers with a card each (`pm_card_visa`) through `POST /api/v1/shoppers`;
4. **burst**: --visits visits (the simulator's "clean" profile, one visit per simulation so that each keeps its own
   natural timing, spread over --stores stores round robin, entry tokens of those shoppers) are pushed through
   `POST /api/v1/stores/{store}/events` without their `session.ended`; the pipeline refreshes them and places the
   holds (`payments.preauthorise`). Once every hold is in place, every `session.ended` is pushed at once,
   stamped with the moment it is sent (the tables are ANALYZEd first, as autovacuum would have). A driver sends
   `visits.settle_due` every --settle-every seconds (a beat with that period) and `payments.sweep` every
   --sweep-every seconds, until every visit's money has moved: visits paid per second, from the first visit due
   to the last capture recorded (the latency here is mostly time in the queue);
5. **live**: --live-visits more visits over --live-stores other stores whose exits arrive one after another at
   --live-rate visits per second, each visit's other events (timed back from a second before they are sent)
   pushed --lead seconds before its exit, each store pushing at most every --push-every seconds: the latency of
   a visit from due to paid at a steady rate (peak_queue_depth shows whether the workers kept up);
6. checks exactly once: the PaymentIntents localstripe holds (listed 100 at a time) against the pre-authorisations
   and charges recorded as succeeded, no attempt key on two intents, money captured in Stripe against `paid`;
7. **baseline** (skip with --no-baseline): the burst again with fresh visits and no worker on `payments` (the
   charge instructions are written, nothing goes to Stripe): the settling alone, to show what the Stripe round
   trips cost;
8. stops everything, purges the queues and removes the run's visits, events and shoppers (--keep-data keeps them).

A visit is *due* when its `session.ended` is stored and the store's settling window has passed since its exit:
max(exited_at + window, the exit event's received_at). It is *paid* when its last money movement (capture, charge
beyond the hold, or release of the hold for an empty cart) is recorded as succeeded (PaymentAttempt.updated_at).

Prints one JSON object. Everything shares the machine's cores (web server, workers, PostgreSQL, localstripe, this
script and whatever else runs): the load average is reported beside the figures.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple

import support
from machine import (
    ROOT,
    children,
    cpu_seconds,
    forget_queued_tasks,
    free_port,
    machine_busy_seconds,
    postgres_cpu_seconds,
)
from support import analyze as analyze_tables
from support import code_version, delete_tenant_rows, deletion_order, json_request

TENANT_SLUG = "bench-payments"
LAYOUT_FROM = datetime(2026, 1, 1, tzinfo=UTC)
SKUS = [f"SKU-{n:03d}" for n in range(1, 41)]
TAX = "8.25"
PUSH_MAX_EVENTS = 1000
WORKER_PREFIX = "bench-pay-"


def _price(number: int) -> int:
    """Prices from 1.99 to 15.49: a cart of a few items is well under the 50.00 hold, a full one goes over it."""
    return 199 + (number % 10) * 150


# --- services and processes ------------------------------------------------------------------------------------


def _uptime() -> str:
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        return subprocess.run(["uptime"], capture_output=True, text=True, timeout=5, check=False).stdout.strip()
    return ""


class Processes:
    """The web server and the two workers this benchmark starts, stopped again whatever happens."""

    def __init__(self, *, env: dict[str, str], logs: Path) -> None:
        self.env, self.logs = env, logs
        self.port = free_port()
        self.server: subprocess.Popen[bytes] | None = None
        self.workers: list[tuple[str, str, subprocess.Popen[bytes]]] = []  # (name, queues, process)

    def _start(self, name: str, argv: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        log = (self.logs / f"{name}.log").open("ab")
        return subprocess.Popen(argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)

    def start_server(self, *, workers: int) -> None:
        argv = [sys.executable, "-m", "gunicorn", "--config", "deploy/gunicorn.conf.py", "config.wsgi:application"]
        argv += ["--bind", f"127.0.0.1:{self.port}", "--workers", str(workers)]
        self.server = self._start("web", argv, {**self.env, "PROMETHEUS_MULTIPROC_DIR": str(self.logs / "prom-web")})

    def start_workers(self, queue_sets: list[str], *, tag: str) -> None:
        for number, queues in enumerate(queue_sets):
            name = f"{WORKER_PREFIX}{tag}-{number}"
            argv = [sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", queues, "--pool", "solo"]
            argv += ["-n", f"{name}@%h", "--loglevel", "WARNING"]
            argv += ["--without-heartbeat", "--without-mingle", "--without-gossip"]
            env = {**self.env, "PROMETHEUS_MULTIPROC_DIR": str(self.logs / f"prom-{name}")}
            self.workers.append((name, queues, self._start(f"worker-{name}", argv, env)))

    def roles(self) -> dict[str, list[int]]:
        found: dict[str, list[int]] = {}
        if self.server is not None:
            found["web_server"] = [self.server.pid, *children(self.server.pid)]
        for name, _, process in self.workers:
            found[name.removeprefix(WORKER_PREFIX)] = [process.pid]
        return found

    def check(self) -> None:
        for name, process in [("web", self.server), *((name, process) for name, _, process in self.workers)]:
            if process is not None and process.poll() is not None:
                raise RuntimeError(f"{name} ended early (see {self.logs})")

    def wait_ready(self, *, timeout: float = 120) -> None:
        wanted = {name for name, _, _ in self.workers}
        support.wait_until_ready(
            self.port,
            check=self.check,
            workers_ready=lambda names: wanted <= {name.split("@")[0] for name in names},
            logs=self.logs,
            timeout=timeout,
        )

    def log_marks(self) -> dict[Path, int]:
        """Where each worker's log ends now (a phase's task runtimes are read from there on)."""
        marks = {}
        for name, _, _ in self.workers:
            path = self.logs / f"worker-{name}.log"
            marks[path] = path.stat().st_size if path.exists() else 0
        return marks

    def task_runtimes(self, marks: dict[Path, int]) -> dict[str, dict[str, float]]:
        """Runtime per task name since `marks`, from the workers' JSON log lines (`succeeded in ...`)."""
        runtimes: dict[str, list[float]] = defaultdict(list)
        for path, offset in marks.items():
            with contextlib.suppress(OSError), path.open("rb") as log:
                log.seek(offset)
                for line in log:
                    if not line.startswith(b"{") or b'"runtime"' not in line:
                        continue
                    with contextlib.suppress(ValueError, KeyError, TypeError):
                        record = json.loads(line)
                        runtimes[record["task_name"]].append(float(record["data"]["runtime"]))
        summary = {}
        for name, values in sorted(runtimes.items()):
            values.sort()
            summary[name] = {
                "tasks": len(values),
                "total_s": round(sum(values), 2),
                "mean_ms": round(1000 * sum(values) / len(values), 1),
                "p95_ms": round(1000 * values[min(len(values) - 1, int(0.95 * len(values)))], 1),
            }
        return summary

    def stop_workers(self) -> None:
        """Cold: a task still running rolls back (the exactly-once design is for that)."""
        support.stop_processes([(process, signal.SIGQUIT) for _, _, process in self.workers])
        self.workers = []

    def stop(self) -> None:
        self.stop_workers()
        if self.server is not None:
            support.stop_processes([(self.server, signal.SIGTERM)])
            self.server = None


class CpuMeter:
    """CPU-seconds per role (each worker, the web server, localstripe, PostgreSQL, the machine) over a phase."""

    def __init__(self, processes: Processes, stripe_pid: int) -> None:
        self.processes, self.stripe_pid = processes, stripe_pid
        self.before: dict[str, float] = {}
        self.started = 0.0

    def _now(self) -> dict[str, float]:
        spent = {role: sum(cpu_seconds(pid) for pid in pids) for role, pids in self.processes.roles().items()}
        spent["localstripe"] = cpu_seconds(self.stripe_pid)
        spent["postgresql_all_databases"] = postgres_cpu_seconds()
        spent["machine_busy_all_cores"] = machine_busy_seconds()
        return spent

    def start(self) -> None:
        self.before, self.started = self._now(), time.time()

    def stop(self) -> dict[str, float]:
        after, wall = self._now(), time.time() - self.started
        spent = {role: round(after[role] - self.before.get(role, 0.0), 2) for role in after}
        spent["machine_capacity"] = round(wall * (os.cpu_count() or 1), 2)
        return spent


class QueueWatch:
    """The deepest each queue got (Redis lists), sampled by the driver's loop."""

    def __init__(self) -> None:
        import redis
        from django.conf import settings

        self.client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
        self.peak: Counter[str] = Counter()

    def sample(self) -> None:
        for queue in ("visits", "payments"):
            self.peak[queue] = max(self.peak[queue], int(self.client.llen(queue)))

    def take(self) -> dict[str, int]:
        peak, self.peak = dict(self.peak), Counter()
        return peak

    def empty(self, queues: Sequence[str]) -> bool:
        return all(int(self.client.llen(queue)) == 0 for queue in queues)


def _wait_idle(queues: QueueWatch, processes: Processes, *, consumed: Sequence[str], timeout: float) -> float:
    """Until the queues the workers consume are empty (what an earlier phase left, e.g. receipts, is done)."""
    began = time.time()
    quiet = 0
    while quiet < 3:
        quiet = quiet + 1 if queues.empty(consumed) else 0
        processes.check()
        if time.time() - began > timeout:
            raise RuntimeError(f"queues {', '.join(consumed)} still busy after {timeout} s")
        time.sleep(0.5)
    return round(time.time() - began, 1)


# --- data ------------------------------------------------------------------------------------------------------


def _deletion_order() -> list[Any]:
    """Visits, events, streams and shoppers, and whatever hangs off them, rows pointing at others first."""
    return deletion_order(["Shopper", "StripeEvent", "PaymentSettings"])


def clean(tenant_id: int) -> None:
    """Remove what runs left of the tenant (set-based): visits, payments, events, streams, shoppers."""
    delete_tenant_rows(tenant_id, _deletion_order())


def analyze() -> None:
    """Fresh planner statistics for the tables the pipeline reads, as autovacuum keeps them in production.

    Run between the phases' steps, outside what is timed: without it a table analyzed empty (or never) is planned
    as empty, and the set-based refresh of a few hundred sessions can take minutes (seen with autovacuum off)."""
    analyze_tables(_deletion_order())


def _autovacuum() -> str:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SHOW autovacuum")
        return str(cursor.fetchone()[0])


def setup(*, codes: list[str], window: int) -> tuple[Any, dict[str, Any], dict[str, Any]]:
    """The bench tenant and its stores with catalog, prices and layout (made once, kept), emptied of earlier runs;
    the stores by code."""
    from decimal import Decimal

    from stores.models import LayoutVersion, Store
    from stores.sample_store import sample_prices_add, sample_products_add

    tenant = support.kept_tenant(slug=TENANT_SLUG, name="Payments benchmark")
    sample_products_add(tenant=tenant, skus=SKUS)
    sample_prices_add(
        tenant=tenant, unit_price=lambda sku: _price(SKUS.index(sku)), tax_rate=Decimal(TAX), effective_from=LAYOUT_FROM
    )
    names = {code: f"Payments store {code}" for code in codes}
    made = support.sample_stores(tenant, names=names, skus=SKUS, effective_from=LAYOUT_FROM)
    Store.unscoped.filter(pk__in=[s.pk for s in made]).update(
        status=Store.Status.ACTIVE, settling_window_seconds=window
    )
    made = list(Store.unscoped.filter(pk__in=[s.pk for s in made]).order_by("code"))
    clean(tenant.pk)
    layout = LayoutVersion.unscoped.filter(store=made[0]).order_by("-effective_from").first()
    assert layout is not None
    return tenant, {store.code: store for store in made}, layout.document


def register_shoppers(port: int, *, key: str, count: int, run: str) -> list[str]:
    """Shoppers with a card each (through the API, so through localstripe); their entry tokens."""
    return support.register_shoppers(port, key=key, count=count, ref_prefix=run)


@dataclass
class PlannedVisit:
    """One simulated visit: its events but the exit, as offsets (s) before the last of them, and its exit."""

    session: str
    store: str
    body: list[tuple[float, dict[str, Any]]]
    ended: dict[str, Any]
    body_at: float = 0.0  # when pushed (time.time())
    exit_at: float = 0.0


def _parse_ts(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _stamp(at: datetime) -> str:
    return at.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def plan_visits(
    *,
    count: int,
    prefix: str,
    stores: list[Any],
    tokens: list[str],
    layout: dict[str, Any],
    profile: str,
    seed: int,
) -> list[PlannedVisit]:
    """`count` visits, each from its own one-visit simulation (its own natural timing), stores round robin."""
    from catalog.models import Product
    from visits.simulator import CatalogItem, simulate

    catalog = {
        p.sku: CatalogItem(p.sku, float(p.unit_weight_g), float(p.weight_tolerance_g))
        for p in Product.unscoped.filter(tenant_id=stores[0].tenant_id, sku__in=SKUS)
    }
    planned = []
    for number in range(count):
        simulation = simulate(
            layout=layout,
            catalog=catalog,
            profile=profile,
            visits=1,
            start=LAYOUT_FROM + timedelta(days=30),
            seed=seed * 1_000_003 + number,
            shopper_tokens=[tokens[number % len(tokens)]],
        )
        session = f"{prefix}-{number:05d}"
        body, ended = [], None
        for event in simulation.events:
            event = {**event, "id": f"{session}-{event['id']}"}
            if event.get("session") is not None:
                event["session"] = session
            if event["type"] == "session.ended":
                ended = {k: v for k, v in event.items() if k != "ts"}
            else:
                body.append(event)
        assert ended is not None, "the simulator always ends a visit"
        last = max(_parse_ts(e["ts"]) for e in body)
        offsets = [((last - _parse_ts(e.pop("ts"))).total_seconds(), e) for e in body]
        planned.append(PlannedVisit(session, stores[number % len(stores)].code, offsets, ended))
    return planned


class Pusher:
    """Live pushes through the API, per store, at most 1,000 events a call; counts what the API said."""

    def __init__(self, port: int, key: str) -> None:
        self.port, self.key = port, key
        self.calls = 0
        self.seconds = 0.0
        self.counts: Counter[str] = Counter()

    def push(self, store: str, events: list[dict[str, Any]]) -> None:
        for start in range(0, len(events), PUSH_MAX_EVENTS):
            batch = events[start : start + PUSH_MAX_EVENTS]
            began = time.monotonic()
            status, answer = json_request(self.port, "POST", f"/api/v1/stores/{store}/events", key=self.key, body=batch)
            self.seconds += time.monotonic() - began
            self.calls += 1
            if status != 202:
                raise RuntimeError(f"pushing events answered {status}: {str(answer)[:500]}")
            self.counts["events"] += len(batch)
            self.counts["accepted"] += int(answer.get("accepted", 0))
            self.counts["duplicates"] += int(answer.get("duplicates", 0))
            self.counts["rejected"] += len(answer.get("rejected") or [])

    def send(self, *, bodies: Sequence[PlannedVisit] = (), exits: Sequence[PlannedVisit] = ()) -> None:
        """One push a store (more when over 1,000 events): the `bodies` visits' events but their exits, ending a
        second before, each visit whole in one call; then the `exits` visits' `session.ended`, stamped with the
        moment they are sent."""
        by_store: dict[str, tuple[list[PlannedVisit], list[PlannedVisit]]] = defaultdict(lambda: ([], []))
        for visit in bodies:
            by_store[visit.store][0].append(visit)
        for visit in exits:
            by_store[visit.store][1].append(visit)
        for store, (entering, leaving) in by_store.items():
            now = time.time()
            base = datetime.fromtimestamp(now, UTC) - timedelta(seconds=1)
            groups = []
            for visit in entering:
                visit.body_at = now
                groups.append(
                    [{**event, "ts": _stamp(base - timedelta(seconds=offset))} for offset, event in visit.body]
                )
            at = _stamp(datetime.fromtimestamp(now, UTC))
            for visit in leaving:
                visit.exit_at = now
                groups.append([{**visit.ended, "ts": at}])
            batch: list[dict[str, Any]] = []
            for group in groups:
                if batch and len(batch) + len(group) > PUSH_MAX_EVENTS:
                    self.push(store, batch)
                    batch = []
                batch += group
            if batch:
                self.push(store, batch)

    def take(self) -> dict[str, Any]:
        taken = {"calls": self.calls, "seconds_in_calls": round(self.seconds, 2), **self.counts}
        self.calls, self.seconds, self.counts = 0, 0.0, Counter()
        return taken


# --- reading the outcome ---------------------------------------------------------------------------------------


def _percentiles(values: list[float]) -> dict[str, float | None] | None:
    if not values:
        return None
    return {**support.percentiles(values, digits=3), "mean": round(sum(values) / len(values), 3), "n": len(values)}


@dataclass
class Remaining:
    unrefreshed: int = 0
    exits_missing: int = 0
    unsettled: int = 0
    money_pending: int = 0


def remaining(tenant: Any, prefix: str, *, count: int, payments: bool) -> Remaining:
    """What the phase's visits still wait for (one query)."""
    from django.db.models import Count, Exists, OuterRef, Q

    from billing.payments.models import PaymentAttempt
    from visits.models import ChargeInstruction, Visit

    instruction_pending = ChargeInstruction.unscoped.filter(visit=OuterRef("pk"), state=ChargeInstruction.State.PENDING)
    in_flight = PaymentAttempt.unscoped.filter(
        visit=OuterRef("pk"), state__in=(PaymentAttempt.State.PENDING, PaymentAttempt.State.PROCESSING)
    )
    money_pending = Q(
        Exists(instruction_pending),
        status__in=(Visit.Status.AWAITING_PAYMENT, Visit.Status.CHARGED, Visit.Status.NO_CHARGE, Visit.Status.REFUNDED),
    ) | Q(Exists(in_flight))
    figures = Visit.unscoped.filter(tenant=tenant, session__startswith=prefix + "-").aggregate(
        refreshed=Count("pk", filter=Q(events_count__gt=0)),
        exited=Count("pk", filter=Q(exited_at__isnull=False)),
        unsettled=Count("pk", filter=Q(settled_at__isnull=True)),
        money_pending=Count("pk", filter=money_pending) if payments else Count("pk", filter=Q(pk__lt=0)),
    )
    return Remaining(
        unrefreshed=count - figures["refreshed"],
        exits_missing=count - figures["exited"],
        unsettled=figures["unsettled"],
        money_pending=figures["money_pending"],
    )


def holds_in_place(tenant: Any, prefix: str) -> dict[str, int]:
    from django.db.models import Count

    from billing.payments.models import PaymentAttempt

    rows = (
        PaymentAttempt.unscoped.filter(
            tenant=tenant, purpose=PaymentAttempt.Purpose.PREAUTH, visit__session__startswith=prefix + "-"
        )
        .values_list("state")
        .annotate(n=Count("pk"))
    )
    return dict(rows)


def analyse(tenant: Any, prefix: str, *, window: int, payments: bool) -> dict[str, Any]:
    """Per visit: due, settled (instruction written) and paid (last money movement recorded); their spread."""
    from django.db.models import Max

    from billing.payments.models import PaymentAttempt
    from ingest.models import Event
    from visits.models import Visit

    Purpose, State = PaymentAttempt.Purpose, PaymentAttempt.State
    visits = list(
        Visit.unscoped.filter(tenant=tenant, session__startswith=prefix + "-").values(
            "pk", "session", "status", "payment_status", "exited_at", "settled_at", "paid", "total"
        )
    )
    received = dict(
        Event.unscoped.filter(tenant=tenant, type="session.ended", session__startswith=prefix + "-")
        .values_list("session")
        .annotate(at=Max("received_at"))
        .values_list("session", "at")
    )
    attempts: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for row in PaymentAttempt.unscoped.filter(tenant=tenant, visit_id__in=[v["pk"] for v in visits]).values(
        "visit_id", "purpose", "state", "updated_at", "tries", "amount"
    ):
        attempts[row["visit_id"]].append(row)

    window_delta = timedelta(seconds=window)
    due_to_settled, settled_to_paid, due_to_paid = [], [], []
    dues, settles, paids = [], [], []
    paths: Counter[str] = Counter()
    for visit in visits:
        if visit["exited_at"] is None:
            continue
        due = max(visit["exited_at"] + window_delta, received.get(visit["session"]) or visit["exited_at"])
        dues.append(due)
        if visit["settled_at"] is not None:
            settles.append(visit["settled_at"])
            due_to_settled.append((visit["settled_at"] - due).total_seconds())
        if not payments:
            continue
        done = [a for a in attempts[visit["pk"]] if a["state"] == State.SUCCEEDED]
        moved = [a for a in done if a["purpose"] in (Purpose.CAPTURE, Purpose.CHARGE, Purpose.CANCEL)]
        purposes = {a["purpose"] for a in done}
        if visit["status"] == Visit.Status.NEEDS_REVIEW:
            paths["needs_review (hold kept)"] += 1
            continue
        if visit["status"] == Visit.Status.PAYMENT_FAILED:
            paths["payment_failed"] += 1
            continue
        settled_money = visit["payment_status"] == Visit.PaymentStatus.SUCCEEDED or (
            visit["status"] == Visit.Status.NO_CHARGE and Purpose.CANCEL in purposes
        )
        if visit["status"] == Visit.Status.NO_CHARGE and not moved and Purpose.PREAUTH not in purposes:
            paths["empty cart, no hold: nothing to move"] += 1
            continue
        if not settled_money or not moved:
            paths["not paid"] += 1
            continue
        if Purpose.PREAUTH not in purposes:
            paths["charge without a hold"] += 1
        elif Purpose.CANCEL in purposes:
            paths["hold released (empty cart)"] += 1
        elif Purpose.CHARGE in purposes:
            paths["hold captured + rest charged"] += 1
        else:
            paths["hold captured"] += 1
        paid_at = max(a["updated_at"] for a in moved)
        paids.append(paid_at)
        due_to_paid.append((paid_at - due).total_seconds())
        if visit["settled_at"] is not None:
            settled_to_paid.append((paid_at - visit["settled_at"]).total_seconds())

    first_due = min(dues) if dues else None
    result: dict[str, Any] = {
        "visits": len(visits),
        "exits_recorded": len(dues),
        "by_status": dict(Counter(v["status"] for v in visits)),
    }
    if first_due is not None and settles:
        span = (max(settles) - first_due).total_seconds()
        result["settled"] = {
            "visits": len(settles),
            "seconds_first_due_to_last_settled": round(span, 3),
            "visits_settled_per_s": round(len(settles) / span, 2) if span > 0 else None,
        }
    if payments and first_due is not None and paids:
        span = (max(paids) - first_due).total_seconds()
        result["paid"] = {
            "visits": len(paids),
            "seconds_first_due_to_last_paid": round(span, 3),
            "visits_paid_per_s": round(len(paids) / span, 2) if span > 0 else None,
        }
        result["paths"] = dict(paths)
        every = [a for rows in attempts.values() for a in rows]
        by_purpose: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        for attempt in every:
            by_purpose[attempt["purpose"]][attempt["state"]] += 1
            by_purpose[attempt["purpose"]]["stripe_calls"] += attempt["tries"]
        result["payment_attempts"] = {purpose: dict(states) for purpose, states in sorted(by_purpose.items())}
        result["stripe_calls"] = sum(a["tries"] for a in every)
        result["payment_failures"] = sum(1 for a in every if a["state"] == State.FAILED)
    result["latency_s"] = {
        "due_to_settled": _percentiles(due_to_settled),
        **(
            {"settled_to_paid": _percentiles(settled_to_paid), "due_to_paid": _percentiles(due_to_paid)}
            if payments
            else {}
        ),
    }
    return result


def _stripe_list(base: str, secret: str, path: str) -> list[dict[str, Any]]:
    """Every object of a localstripe list, 100 a page."""
    import requests

    found: list[dict[str, Any]] = []
    after = None
    while True:
        params: dict[str, Any] = {"limit": 100}
        if after:
            params["starting_after"] = after
        answer = requests.get(f"{base}{path}", params=params, auth=(secret, ""), timeout=60)
        answer.raise_for_status()
        page = answer.json()
        found += page["data"]
        if not page.get("has_more") or not page["data"]:
            return found
        after = page["data"][-1]["id"]


def exactly_once(tenant: Any, *, base: str) -> dict[str, Any]:
    """Stripe's own records against ours: one PaymentIntent per hold or charge recorded, the money captured."""
    from django.conf import settings
    from django.db.models import Sum

    from billing.payments.models import PaymentAttempt
    from visits.models import Visit

    Purpose, State = PaymentAttempt.Purpose, PaymentAttempt.State
    intents = _stripe_list(base, settings.STRIPE_SECRET_KEY, "/v1/payment_intents")
    charges = _stripe_list(base, settings.STRIPE_SECRET_KEY, "/v1/charges")
    keys = Counter((intent.get("metadata") or {}).get("openaisle_attempt", "") for intent in intents)
    ours = {
        attempt.key: attempt
        for attempt in PaymentAttempt.unscoped.filter(tenant=tenant, purpose__in=(Purpose.PREAUTH, Purpose.CHARGE))
    }
    succeeded = sum(1 for attempt in ours.values() if attempt.state == State.SUCCEEDED)
    captured = sum(
        int(c.get("amount", 0)) - int(c.get("amount_refunded", 0) or 0)
        for c in charges
        if c.get("captured") and c.get("status") == "succeeded"
    )
    paid = int(Visit.unscoped.filter(tenant=tenant).aggregate(total=Sum("paid"))["total"] or 0)
    duplicated = sorted(key for key, n in keys.items() if n > 1)
    strangers = sum(n for key, n in keys.items() if key not in ours)
    return {
        "payment_intents_in_stripe": len(intents),
        "succeeded_preauth_and_charge_attempts": succeeded,
        "intents_equal_attempts": len(intents) == succeeded,
        "attempt_keys_on_more_than_one_intent": len(duplicated),
        "intents_no_attempt_of_ours_names": strangers,
        "intent_statuses": dict(Counter(intent.get("status") for intent in intents)),
        "captured_in_stripe_minor_units": captured,
        "paid_recorded_minor_units": paid,
        "money_equal": captured == paid,
        "ok": len(intents) == succeeded and not duplicated and not strangers and captured == paid,
    }


# --- the phases ----------------------------------------------------------------------------------------------


@dataclass
class Driver:
    """The beat's part: `visits.settle_due` every `settle_every` s, `payments.sweep` every `sweep_every` s, each
    expiring after its period as the beat's do (config.settings): workers behind drop the stale ones rather than
    run a second's worth each (killed over and over on a busy machine, they fell behind for good)."""

    settle_every: float
    sweep_every: float
    sweep: bool
    processes: Processes
    queues: QueueWatch
    next_settle: float = 0.0
    next_sweep: float = 0.0
    sent: Counter[str] = field(default_factory=Counter)

    def start(self) -> None:
        now = time.monotonic()
        self.next_settle, self.next_sweep = now, now + self.sweep_every

    def tick(self) -> None:
        from config.celery import app

        now = time.monotonic()
        if now >= self.next_settle:
            app.send_task("visits.settle_due", expires=self.settle_every)
            self.sent["visits.settle_due"] += 1
            self.next_settle = now + self.settle_every
        if self.sweep and now >= self.next_sweep:
            app.send_task("payments.sweep", expires=self.sweep_every)
            self.sent["payments.sweep"] += 1
            self.next_sweep = now + self.sweep_every
        self.queues.sample()
        self.processes.check()

    def take(self) -> dict[str, int]:
        sent, self.sent = dict(self.sent), Counter()
        return sent


def _wait(what: str, done: Any, *, driver: Driver | None, processes: Processes, timeout: float) -> float:
    began = time.time()
    while not done():
        if time.time() - began > timeout:
            raise RuntimeError(f"{what}: not done after {timeout} s")
        if driver is not None:
            driver.tick()
        else:
            processes.check()
        time.sleep(0.5)
    return time.time() - began


class Bench(NamedTuple):
    """What every phase of a run works with: the bench tenant, the processes, what pushes the events, drives the
    periodic tasks and meters the CPU, and the command's options."""

    tenant: Any
    processes: Processes
    pusher: Pusher
    driver: Driver
    meter: CpuMeter
    args: argparse.Namespace


def _phase_end(
    bench: Bench, *, prefix: str, payments: bool, cpu: dict[str, float], load_before: Sequence[float]
) -> dict[str, Any]:
    """What every phase reports at its end: its visits' figures, the tasks the driver sent, the deepest the queues
    got, the CPU each role spent and the machine's load before and after."""
    return {
        **analyse(bench.tenant, prefix, window=bench.args.window, payments=payments),
        "tasks_sent_by_driver": bench.driver.take(),
        "peak_queue_depth": bench.driver.queues.take(),
        "cpu_s": cpu,
        "load_average_1_5_15_before": [round(v, 2) for v in load_before],
        "load_average_1_5_15_after": [round(v, 2) for v in os.getloadavg()],
    }


def run_burst(name: str, visits: list[PlannedVisit], *, prefix: str, bench: Bench, payments: bool) -> dict[str, Any]:
    """Every visit in the stores with its hold placed, then every exit at once; until every visit is paid."""
    tenant, processes, pusher, driver, meter, args = bench
    consumed = ("visits", "payments") if payments else ("visits",)
    idle_wait = _wait_idle(driver.queues, processes, consumed=consumed, timeout=args.timeout)
    load_before = os.getloadavg()
    began = time.time()
    pusher.send(bodies=visits)
    bodies_pushed = time.time() - began
    analyze()
    entered = pusher.take()

    def entered_and_held() -> bool:
        left = remaining(tenant, prefix, count=len(visits), payments=payments)
        if left.unrefreshed or not payments:
            return not left.unrefreshed
        holds = holds_in_place(tenant, prefix)
        return holds.get("succeeded", 0) + holds.get("failed", 0) >= len(visits)

    _wait(f"{name}: visits entered and held", entered_and_held, driver=None, processes=processes, timeout=args.timeout)
    held_after = time.time() - began
    holds = holds_in_place(tenant, prefix) if payments else {}
    analyze()

    driver.queues.take()
    driver.take()
    meter.start()
    marks = processes.log_marks()
    exits_began = time.time()
    pusher.send(exits=visits)
    exits_pushed = time.time() - exits_began
    driver.start()

    def all_done() -> bool:
        left = remaining(tenant, prefix, count=len(visits), payments=payments)
        return not (left.exits_missing or left.unsettled or left.money_pending)

    drain = _wait(
        f"{name}: visits settled and paid", all_done, driver=driver, processes=processes, timeout=args.timeout
    )
    cpu = meter.stop()
    time.sleep(1.0)  # the last log lines
    runtimes = processes.task_runtimes(marks)
    return {
        "visits": len(visits),
        "waited_for_idle_queues_s": idle_wait,
        "entry": {
            "bodies_push_s": round(bodies_pushed, 2),
            "pushes": entered,
            **(
                {
                    "holds": holds,
                    "seconds_to_every_hold": round(held_after, 2),
                    "holds_per_s": round(len(visits) / held_after, 2),
                }
                if payments
                else {"seconds_to_every_visit_refreshed": round(held_after, 2)}
            ),
        },
        "exits": {"push_s": round(exits_pushed, 3), "pushes": pusher.take()},
        "observed_drain_s": round(drain, 2),
        "task_runtimes_after_exits": runtimes,
        **_phase_end(bench, prefix=prefix, payments=payments, cpu=cpu, load_before=load_before),
    }


def run_live(visits: list[PlannedVisit], *, rate: float, prefix: str, bench: Bench) -> dict[str, Any]:
    """Exits one after another at `rate` a second, each visit's other events `lead` seconds before its exit."""
    tenant, processes, pusher, driver, meter, args = bench
    idle_wait = _wait_idle(driver.queues, processes, consumed=("visits", "payments"), timeout=args.timeout)
    analyze()
    load_before = os.getloadavg()
    pusher.take()
    driver.queues.take()
    driver.take()
    meter.start()
    marks = processes.log_marks()
    driver.start()
    start = time.time() + 1.0
    plan_exit = [start + args.lead + number / rate for number in range(len(visits))]
    next_body = next_exit = 0
    first_exit = last_exit = 0.0
    while next_exit < len(visits):
        now = time.time()
        bodies = []
        while next_body < len(visits) and plan_exit[next_body] - args.lead <= now:
            bodies.append(visits[next_body])
            next_body += 1
        exits = []
        while next_exit < next_body and plan_exit[next_exit] <= now:
            exits.append(visits[next_exit])
            next_exit += 1
        if bodies or exits:
            pusher.send(bodies=bodies, exits=exits)
        if exits:
            first_exit = first_exit or exits[0].exit_at
            last_exit = exits[-1].exit_at
        driver.tick()
        if now - start > args.timeout:
            raise RuntimeError(f"live: pushes not done after {args.timeout} s")
        time.sleep(max(0.0, now + args.push_every - time.time()))

    def all_done() -> bool:
        left = remaining(tenant, prefix, count=len(visits), payments=True)
        return not (left.exits_missing or left.unsettled or left.money_pending)

    _wait("live: visits settled and paid", all_done, driver=driver, processes=processes, timeout=args.timeout)
    cpu = meter.stop()
    time.sleep(1.0)
    runtimes = processes.task_runtimes(marks)
    achieved = (len(visits) - 1) / (last_exit - first_exit) if last_exit > first_exit else None
    return {
        "visits": len(visits),
        "exit_rate_planned_per_s": round(rate, 2),
        "exit_rate_achieved_per_s": round(achieved, 2) if achieved else None,
        "lead_s": args.lead,
        "push_every_s": args.push_every,
        "waited_for_idle_queues_s": idle_wait,
        "pushes": pusher.take(),
        "task_runtimes": runtimes,
        **_phase_end(bench, prefix=prefix, payments=True, cpu=cpu, load_before=load_before),
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    from billing.payments.stripe_standin import LocalStripe
    from tenants import services as tenant_services
    from tenants.audit import Actor

    work = Path(tempfile.mkdtemp(prefix="bench-payments-"))
    logs = Path(args.logs) if args.logs else work / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    # Each phase has stores of its own: a push's weight changes bring every visit of its store within five
    # minutes of them up to date (settled ones are settled again), so phases sharing stores would load each other.
    sets = {
        phase: [f"PAY-{phase}{n:02d}" for n in range(1, count + 1)]
        for phase, count in (("B", args.stores), ("L", args.live_stores), ("Z", args.stores))
    }
    tenant, stores, layout = setup(codes=[code for codes in sets.values() for code in codes], window=args.window)
    issued = tenant_services.api_key_issue(actor=Actor.cli(), tenant=tenant, name="payments benchmark")
    processes: Processes | None = None
    stripe = LocalStripe()
    result: dict[str, Any] = {}
    uptime_before = _uptime()
    try:
        stripe.__enter__()
        assert stripe._process is not None
        env = support.server_environment(
            media=work / "media",
            STRIPE_API_BASE=stripe.base_url,  # every payment goes to the stand-in on 127.0.0.1
            API_RATE_PER_KEY="1000000/min",  # the throttle is not what is measured
        )
        forget_queued_tasks()
        processes = Processes(env=env, logs=logs)
        processes.start_server(workers=args.web_workers)
        everything = "live,visits,payments,ingest,default"
        queue_sets = ["live,visits,ingest,default", "payments"] if args.layout == "split" else [everything, everything]
        processes.start_workers(queue_sets, tag="w")
        processes.wait_ready()
        meter = CpuMeter(processes, stripe._process.pid)
        queues = QueueWatch()
        driver = Driver(args.settle_every, args.sweep_every, True, processes, queues)
        pusher = Pusher(processes.port, issued.key)
        bench = Bench(tenant, processes, pusher, driver, meter, args)

        run_tag = f"P{int(time.time()) % 1_000_000}"
        began = time.time()
        tokens = register_shoppers(processes.port, key=issued.key, count=args.shoppers, run=run_tag)
        registration_s = time.time() - began

        common = {"tokens": tokens, "layout": layout, "profile": args.profile}

        def of(phase: str) -> list[Any]:
            return [stores[code] for code in sets[phase]]

        began = time.time()
        burst_visits = plan_visits(count=args.visits, prefix=f"{run_tag}B", seed=args.seed, stores=of("B"), **common)
        live_visits = (
            plan_visits(count=args.live_visits, prefix=f"{run_tag}L", seed=args.seed + 1, stores=of("L"), **common)
            if args.live_visits
            else []
        )
        baseline_visits = (
            plan_visits(count=args.visits, prefix=f"{run_tag}Z", seed=args.seed, stores=of("Z"), **common)
            if args.baseline
            else []
        )
        simulate_s = time.time() - began

        burst = run_burst("burst", burst_visits, prefix=f"{run_tag}B", bench=bench, payments=True)
        live = None
        if live_visits:
            live = run_live(live_visits, rate=args.live_rate, prefix=f"{run_tag}L", bench=bench)
        once = exactly_once(tenant, base=stripe.base_url)

        baseline = None
        if baseline_visits:
            # Payments off: no worker on the payments queue (holds and charges pile up there, unsent, and are
            # purged afterwards); the same number of processes otherwise.
            processes.stop_workers()
            forget_queued_tasks()
            no_payments = "live,visits,ingest,default"
            processes.start_workers(
                [no_payments] if args.layout == "split" else [no_payments, no_payments], tag="baseline"
            )
            processes.wait_ready()
            driver.sweep = False
            baseline = run_burst("baseline", baseline_visits, prefix=f"{run_tag}Z", bench=bench, payments=False)
            baseline["workers"] = [queues for _, queues, _ in processes.workers]
        processes.stop()
        processes = None

        paid = burst.get("paid") or {}
        settled_alone = ((baseline or {}).get("settled") or {}).get("visits_settled_per_s")
        result = {
            "benchmark": "payments",
            "database": "postgresql",
            "code": code_version(),
            "cpus": os.cpu_count(),
            "command_options": {k: v for k, v in vars(args).items() if k not in ("logs",)},
            "workers": {
                "layout": args.layout,
                "processes": queue_sets,
                "pool": "solo",
                "why": (
                    "split: as deploy/Procfile, one worker per queue -- settling (visits) and Stripe round trips "
                    "(payments) do not wait for each other, and the payments worker alone is what bounds the rate"
                    if args.layout == "split"
                    else "shared: both processes take any task, so both make Stripe calls when settling is idle"
                ),
            },
            "settling_window_s": args.window,
            "postgresql_autovacuum": _autovacuum(),
            "analyze": "tables ANALYZEd after each phase's visits entered, before the exits (outside the timings)",
            "settle_due_every_s": args.settle_every,
            "stores": {phase: len(codes) for phase, codes in (("burst", sets["B"]), ("live", sets["L"]))},
            "shoppers": {"registered": len(tokens), "seconds": round(registration_s, 2)},
            "simulate_s": round(simulate_s, 2),
            # The headline: the burst's visits paid per second, and the live phase's latency from due to paid.
            "visits_paid_per_s": paid.get("visits_paid_per_s"),
            "latency_due_to_paid_s": (live or burst)["latency_s"].get("due_to_paid"),
            "visits_settled_per_s_without_payments": settled_alone,
            "burst": burst,
            "live": live,
            "exactly_once": once,
            "baseline_without_payments": baseline,
            "uptime_before": uptime_before,
            "uptime_after": _uptime(),
            "note": (
                f"One machine: the web server, both workers, PostgreSQL, localstripe and this script share its "
                f"{os.cpu_count()} cores with whatever else runs (see uptime). A visit is due at "
                "max(exited_at + settling window, its session.ended received_at); paid when its last capture, "
                "charge or release is recorded as succeeded. Burst: every exit at once after every hold is in "
                "place (throughput, and latency = time in the queue); live: exits at a steady rate (latency)."
            ),
        }
    finally:
        support.tear_down(
            processes=processes,
            stripe=stripe,
            api_key=issued.api_key,
            clean=None if args.keep_data else lambda: clean(tenant.pk),
            work=work,
            keep_work=args.keep_files,
        )
    return result | ({"workdir": str(work)} if args.keep_files else {})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--visits", type=int, default=2000, help="visits in the burst (and the baseline)")
    parser.add_argument("--live-visits", type=int, default=300, help="visits in the live phase (0: skip it)")
    parser.add_argument("--live-rate", type=float, default=1.0, help="live: exits per second (default 1)")
    parser.add_argument("--live-stores", type=int, default=4, help="live: stores the visits are spread over")
    parser.add_argument(
        "--lead", type=float, default=30.0, help="live: s between a visit's other events and its exit (default 30)"
    )
    parser.add_argument("--push-every", type=float, default=1.0, help="live: s between a store's pushes (default 1)")
    parser.add_argument("--stores", type=int, default=4, help="stores the visits are spread over (default 4)")
    parser.add_argument("--shoppers", type=int, default=100, help="registered shoppers (cards) (default 100)")
    parser.add_argument("--window", type=int, default=2, help="the stores' settling window, s (default 2)")
    parser.add_argument("--layout", choices=("split", "shared"), default="split", help="the two workers' queues")
    parser.add_argument("--settle-every", type=float, default=1.0, help="s between visits.settle_due (default 1)")
    parser.add_argument("--sweep-every", type=float, default=60.0, help="s between payments.sweep (default 60)")
    parser.add_argument("--profile", default="clean", help="simulator noise profile (default clean)")
    parser.add_argument("--web-workers", type=int, default=2, help="gunicorn sync workers (default 2)")
    parser.add_argument("--no-baseline", dest="baseline", action="store_false", help="skip the run without payments")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=1800, help="give up on a phase after this many seconds")
    parser.add_argument("--logs", default="", help="directory for the processes' logs (default: temporary)")
    parser.add_argument("--keep-files", action="store_true", help="keep the logs")
    parser.add_argument("--keep-data", action="store_true", help="leave the run's visits and payments in the database")
    support.measure(parser, run)


if __name__ == "__main__":
    main()
