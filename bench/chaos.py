"""Chaos: SIGKILL the payments and ingest workers at random moments while visits are charged and a large stream is
read, restart them, then compare with Stripe's own records (localstripe's) and the stream's counts.

Needs PostgreSQL and Redis; refuses to run in embedded mode. Use a database and a Redis database of your own: the
script purges the Celery queues of that Redis database.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/openaisle_bench_chaos REDIS_URL=redis://127.0.0.1:6379/9 \\
        PYTHONPATH=.:platform python bench/chaos.py --kills 50

The processes, the tenant, the shoppers and the visits are bench/payments.py's (one piece of code serving both),
the stream is bench/ingest.py's (duplicates and malformed lines included). Rounds follow one another until at least
--kills kills have been made; in each round
1. --visits visits are pushed without their exits, then every exit at once, and a stream of --stream-lines lines
   is uploaded to a store of its own;
2. while any of it is unfinished, every --kill-min to --kill-max seconds (at random) one of the two workers (the
   `payments` one, or the one reading `ingest` and `visits`) is SIGKILLed and started again at once. The beat's
   part is played here: `visits.settle_due` every second, `payments.sweep` and `ingest.resume_stalled_streams`
   every --sweep-every seconds (short leases and stall periods, so that what a killed task left is taken up
   within seconds);
3. once every visit's money has moved and the stream is done, the round is checked.

Prints one JSON object: kills, double charges (an attempt of ours on two PaymentIntents, or an intent none of ours
names), lost charges (an attempt recorded succeeded with no intent in Stripe), unpaid visits, amount mismatches
(a visit whose recorded `paid` differs from what Stripe captured for it), duplicated and lost events. All must be 0.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import random
import signal
import socket
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import payments as payments_bench
import support
from machine import forget_queued_tasks


def _ingest_bench() -> Any:
    """bench/ingest.py, under a name of its own: `ingest` is the Django app."""
    spec = importlib.util.spec_from_file_location("ingest_bench", Path(__file__).with_name("ingest.py"))
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


ingest_bench = _ingest_bench()

STREAM_STORE = "CHAOS-STREAM"
PAYMENT_WORKER = "payments"
INGEST_WORKER = "live,visits,ingest,default"


class Chaos:
    """Kills one of the two workers now and then, and starts it again at once.

    A worker is killed only once it answers a ping (started and consuming: killing it while it boots, which takes
    seconds on a busy machine, tests nothing), at a random moment `low` to `high` seconds after that.
    """

    def __init__(self, processes: payments_bench.Processes, *, low: float, high: float, seed: int) -> None:
        self.processes = processes
        self.low, self.high = low, high
        self.rng = random.Random(seed)
        self.kills: Counter[str] = Counter()
        self.found_dead = 0
        self.restarts = 0
        self.due: dict[int, float] = {}

    def _ready(self, name: str) -> bool:
        from config.celery import app

        replies = app.control.ping(destination=[f"{name}@{socket.gethostname()}"], timeout=0.3) or []
        return bool(replies)

    def tick(self) -> None:
        now = time.monotonic()
        for index, (name, queues, process) in enumerate(list(self.processes.workers)):
            alive = process.poll() is None
            if alive and process.pid not in self.due:
                if self._ready(name):
                    self.due[process.pid] = now + self.rng.uniform(self.low, self.high)
                continue
            if alive and now < self.due[process.pid]:
                continue
            if alive:
                os.kill(process.pid, signal.SIGKILL)
                self.kills["payments" if queues == PAYMENT_WORKER else "ingest_and_visits"] += 1
            else:
                self.found_dead += 1
            process.wait()
            self.processes.workers.pop(index)
            self.restarts += 1
            self.processes.start_workers([queues], tag=f"r{self.restarts}")
            return

    @property
    def total(self) -> int:
        return sum(self.kills.values())


def _payment_figures(tenant: Any, prefix: str, *, base: str) -> dict[str, int]:
    """Stripe's PaymentIntents and charges against the attempts and visits of one round."""
    from django.conf import settings
    from django.db.models import Q

    from billing.payments.models import PaymentAttempt
    from visits.models import Visit

    secret = settings.STRIPE_SECRET_KEY
    intents = payments_bench._stripe_list(base, secret, "/v1/payment_intents")
    charges = payments_bench._stripe_list(base, secret, "/v1/charges")
    intents_of: dict[str, list[str]] = {}
    for intent in intents:
        intents_of.setdefault((intent.get("metadata") or {}).get("openaisle_attempt", ""), []).append(intent["id"])
    captured_of_intent: Counter[str] = Counter()
    for charge in charges:
        if charge.get("captured") and charge.get("status") == "succeeded":
            amount = int(charge.get("amount", 0)) - int(charge.get("amount_refunded") or 0)
            captured_of_intent[charge.get("payment_intent") or ""] += amount
    moving = (PaymentAttempt.Purpose.PREAUTH, PaymentAttempt.Purpose.CHARGE)
    attempts = list(
        PaymentAttempt.unscoped.filter(tenant=tenant, purpose__in=moving, visit__session__startswith=prefix + "-")
    )
    captured_of_visit: Counter[int] = Counter()
    for attempt in attempts:
        for intent_id in intents_of.get(attempt.key, []):
            captured_of_visit[attempt.visit_id] += captured_of_intent[intent_id]
    visits = Visit.unscoped.filter(tenant=tenant, session__startswith=prefix + "-")
    unpaid = visits.filter(Q(settled_at__isnull=True) | Q(status=Visit.Status.PAYMENT_FAILED)).count()
    return {
        "visits": visits.count(),
        "double_charges": sum(1 for attempt in attempts if len(intents_of.get(attempt.key, [])) > 1),
        "lost_charges": sum(
            1 for a in attempts if a.state == PaymentAttempt.State.SUCCEEDED and not intents_of.get(a.key)
        ),
        "unpaid_visits": unpaid,
        "amount_mismatches": sum(1 for v in visits if int(v.paid or 0) != captured_of_visit[v.pk]),
    }


def _stream_figures(stream_id: int, expected: dict[str, int]) -> dict[str, Any]:
    from django.db.models import Count

    from ingest.models import Event, EventStream

    stream = EventStream.unscoped.get(pk=stream_id)
    events = Event.unscoped.filter(store_id=stream.store_id)
    stored = events.count()
    duplicated = events.values("event_id").annotate(n=Count("pk")).filter(n__gt=1).count()
    return {
        "status": stream.status,
        "lines": stream.lines,
        "accepted": stream.accepted,
        "duplicates": stream.duplicates,
        "rejected": stream.rejected,
        "counts_as_written": all(getattr(stream, k) == expected[k] for k in ("lines", "accepted", "duplicates")),
        "events_stored": stored,
        "duplicated_events": duplicated,
        "lost_events": max(0, expected["accepted"] - (stored - duplicated)),
    }


def _round(
    number: int,
    *,
    args: argparse.Namespace,
    context: dict[str, Any],
    chaos: Chaos,
    driver: payments_bench.Driver,
    processes: payments_bench.Processes,
) -> dict[str, Any]:
    """One round: visits charged and a stream read under kills, until both are done; then checked."""
    from ingest.models import EventStream

    tenant, stores, work = context["tenant"], context["stores"], context["work"]
    prefix = f"{context['run']}R{number}"
    visits = payments_bench.plan_visits(
        count=args.visits,
        prefix=prefix,
        stores=[stores[code] for code in context["codes"]],
        tokens=context["tokens"],
        layout=context["layout"],
        profile="clean",
        seed=args.seed + number,
    )
    stream_file = work / f"stream-{number}.ndjson"
    expected = ingest_bench.write_events(
        context["layout"],
        count=args.stream_lines,
        ndjson=stream_file,
        csv=work / "rows.csv",
        tenant_id=tenant.pk,
        store_id=stores[STREAM_STORE].pk,
        seed=args.seed + number,
        prefix=f"{prefix}s",
    )
    pusher = payments_bench.Pusher(processes.port, context["key"])
    pusher.send(bodies=visits)
    stream_id = ingest_bench.upload(processes.port, key=context["key"], store=STREAM_STORE, file=stream_file)["id"]
    pusher.send(exits=visits)
    driver.start()
    kills_before = chaos.total
    began = time.monotonic()

    def finished() -> bool:
        left = payments_bench.remaining(tenant, prefix, count=len(visits), payments=True)
        stream_done = EventStream.unscoped.filter(pk=stream_id, status__in=("done", "failed")).exists()
        return stream_done and not (left.unrefreshed or left.exits_missing or left.unsettled or left.money_pending)

    from config.celery import app

    timed_out = False
    next_resume = time.monotonic()
    while not finished():
        if time.monotonic() - began > args.timeout:
            timed_out = True
            break
        if time.monotonic() >= next_resume:  # the beat's resume of stalled streams, as often as the sweep
            app.send_task("ingest.resume_stalled_streams", expires=args.sweep_every)
            next_resume = time.monotonic() + args.sweep_every
        chaos.tick()
        driver.tick()
        time.sleep(0.2)
    return {
        "round": number,
        "kills": chaos.total - kills_before,
        "seconds": round(time.monotonic() - began, 1),
        "timed_out": timed_out,
        "payments": _payment_figures(tenant, prefix, base=context["stripe"]),
        "stream": _stream_figures(stream_id, expected),
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    from billing.payments.stripe_standin import LocalStripe
    from tenants import services as tenant_services
    from tenants.audit import Actor

    work = Path(tempfile.mkdtemp(prefix="bench-chaos-"))
    codes = [f"CHAOS-{n:02d}" for n in range(1, args.stores + 1)]
    tenant, stores, layout = payments_bench.setup(codes=[*codes, STREAM_STORE], window=args.window)
    issued = tenant_services.api_key_issue(actor=Actor.cli(), tenant=tenant, name="chaos benchmark")
    stripe = LocalStripe(port=args.port + 1 if args.port else None)
    processes: payments_bench.Processes | None = None
    rounds: list[dict[str, Any]] = []
    try:
        stripe.__enter__()
        env = support.server_environment(
            media=work / "media",
            STRIPE_API_BASE=stripe.base_url,
            API_RATE_PER_KEY="1000000/min",
            QUOTA_STREAMS_IN_FLIGHT="1000",
            PAYMENTS_LEASE_SECONDS=str(args.lease),
            INGEST_STALLED_AFTER_SECONDS=str(args.lease),
            INGEST_CHUNK_BYTES=str(args.chunk_bytes),
        )
        forget_queued_tasks()
        processes = payments_bench.Processes(env=env, logs=work / "logs")
        processes.port = args.port or processes.port
        (work / "logs").mkdir()
        processes.start_server(workers=2)
        processes.start_workers([INGEST_WORKER, PAYMENT_WORKER], tag="w")
        processes.wait_ready()
        tokens = payments_bench.register_shoppers(
            processes.port, key=issued.key, count=args.shoppers, run=f"C{int(time.time()) % 1_000_000}"
        )
        queues = payments_bench.QueueWatch()
        driver = payments_bench.Driver(1.0, args.sweep_every, True, processes, queues)
        chaos = Chaos(processes, low=args.kill_min, high=args.kill_max, seed=args.seed)
        context = {
            "tenant": tenant,
            "stores": stores,
            "codes": codes,
            "layout": layout,
            "tokens": tokens,
            "key": issued.key,
            "work": work,
            "stripe": stripe.base_url,
            "run": f"C{int(time.time()) % 1_000_000}",
        }
        while chaos.total < args.kills:
            rounds.append(
                _round(len(rounds) + 1, args=args, context=context, chaos=chaos, driver=driver, processes=processes)
            )
        whole = payments_bench.exactly_once(tenant, base=stripe.base_url)
        processes.stop()
        processes = None
    finally:
        support.tear_down(
            processes=processes,
            stripe=stripe,
            api_key=issued.api_key,
            clean=None if args.keep_data else lambda: payments_bench.clean(tenant.pk),
            work=work,
        )

    def total(section: str, name: str) -> int:
        return sum(int(r[section][name]) for r in rounds)

    figures = {
        "kills": chaos.total,
        "double_charges": total("payments", "double_charges") + whole["intents_no_attempt_of_ours_names"],
        "lost_charges": total("payments", "lost_charges"),
        "unpaid_visits": total("payments", "unpaid_visits"),
        "amount_mismatches": total("payments", "amount_mismatches"),
        "duplicated_events": total("stream", "duplicated_events"),
        "lost_events": total("stream", "lost_events"),
        "streams_miscounted": sum(1 for r in rounds if not r["stream"]["counts_as_written"]),
        "rounds_timed_out": sum(1 for r in rounds if r["timed_out"]),
    }
    return {
        "benchmark": "chaos",
        "ok": not any(v for k, v in figures.items() if k != "kills") and chaos.total >= args.kills,
        **figures,
        "kills_by_worker": dict(chaos.kills),
        "workers_found_dead_and_restarted": chaos.found_dead,
        "visits": total("payments", "visits"),
        "stream_lines": sum(r["stream"]["lines"] for r in rounds),
        "stripe_against_ours": whole,
        "rounds": rounds,
        "command_options": vars(args),
        "cpus": os.cpu_count(),
        "load_average_1_5_15": [round(v, 2) for v in os.getloadavg()],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=50, help="rounds follow one another until this many kills")
    parser.add_argument("--visits", type=int, default=150, help="visits charged per round (default 150)")
    parser.add_argument("--stream-lines", type=int, default=100_000, help="lines of the stream per round")
    parser.add_argument("--stores", type=int, default=3, help="stores the visits are spread over (default 3)")
    parser.add_argument("--shoppers", type=int, default=30, help="registered shoppers (default 30)")
    parser.add_argument("--kill-min", type=float, default=0.0, help="least s from ready to kill (default 0)")
    parser.add_argument("--kill-max", type=float, default=6.0, help="most s from ready to kill (default 6)")
    parser.add_argument("--sweep-every", type=float, default=5.0, help="s between payments.sweep and stall resumes")
    parser.add_argument("--lease", type=int, default=10, help="payment lease and stream stall period, s")
    parser.add_argument("--chunk-bytes", type=int, default=256 * 1024, help="stream chunk size (default 256 KiB)")
    parser.add_argument("--window", type=int, default=2, help="the stores' settling window, s (default 2)")
    parser.add_argument("--port", type=int, default=0, help="web server port; localstripe on the next")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=900, help="give up on a round after this many seconds")
    parser.add_argument("--keep-data", action="store_true", help="leave the run's visits and payments in the database")
    support.measure(parser, run)


if __name__ == "__main__":
    main()
