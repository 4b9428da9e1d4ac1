"""Benchmark: seconds from a live pick of an age-restricted product to the licensee's webhook, workers busy or not.

Needs PostgreSQL and Redis; refuses to run in embedded mode. Use a database and a Redis database of your
own: the script purges the Celery queues of that Redis database.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/openaisle_restricted REDIS_URL=redis://127.0.0.1:6379/9 \\
        PYTHONPATH=.:platform python bench/restricted_latency.py [--picks 40] [--backlog-stores 4]

A store at the counter of a shop selling alcohol wants to know, while the shopper is still inside, that a bottle
was taken by someone whose age nobody has checked (spec v1.1, `restricted_item.unverified`). In one run it
1. sets up a tenant with stores (sample layout, catalog, prices: made once, kept), one product for 18+, and a
   webhook endpoint served by this script on 127.0.0.1 that notes when each warning arrives;
2. starts the Stripe stand-in, the web server (gunicorn, as deployed) and the Celery workers (solo pools at
   niceness --worker-nice and the idle CPU class, one per queue for visits and payments, one for ingest and
   default), as deployed and as bench/load.py;
3. registers shoppers, then measures twice — "idle": workers with nothing else to do; "busy": just after
   --backlog-stores simulated days (--backlog-visits visits each) were uploaded, so that the workers are settling
   them — --picks live pushes, one every --interval seconds, each a shopper entering and taking the 18+ product
   (stamped now, as a live store sends it), timing each from the push sent to its warning received;
4. prints per phase the latency percentiles, the warnings received, missing and duplicated (each pick warned
   once), the queues at the end and the machine's load average, as one JSON object.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import support
from load import Processes, _queue_lengths, _request, plan_store, register_shoppers, setup, upload_backlog
from machine import forget_queued_tasks, free_port

TENANT_SLUG = "bench-restricted"
RESTRICTED_SKU = "SKU-001"
MIN_AGE = 18
WARNING = "restricted_item.unverified"


class Warnings:
    """The licensee's side: an HTTP endpoint on 127.0.0.1 noting when each warning (by the pick's event id) arrives."""

    def __init__(self) -> None:
        self.arrived: dict[str, float] = {}
        self.repeated = 0
        self.lock = threading.Lock()
        warnings = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                arrived = time.monotonic()
                self.send_response(204)
                self.end_headers()
                with contextlib.suppress(ValueError):
                    envelope = json.loads(body)
                    if envelope.get("type") == WARNING:
                        warnings.note(str(envelope["data"]["event_id"]), arrived)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def note(self, event_id: str, arrived: float) -> None:
        with self.lock:
            if event_id in self.arrived:
                self.repeated += 1
            else:
                self.arrived[event_id] = arrived

    def __enter__(self) -> Warnings:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def _prepare(tenant: Any, store: Any, *, url: str) -> tuple[str, str, str]:
    """The 18+ product and the endpoint that wants its warnings; the entry gate, the product's bin and its camera."""
    from billing.webhooks.models import WebhookDelivery, WebhookEndpoint
    from billing.webhooks.services import webhook_endpoint_create
    from catalog.models import Product
    from stores.models import LayoutVersion
    from tenants.audit import Actor

    Product.unscoped.filter(tenant=tenant).update(min_age=None)
    Product.unscoped.filter(tenant=tenant, sku=RESTRICTED_SKU).update(min_age=MIN_AGE)
    WebhookDelivery.unscoped.filter(tenant=tenant).delete()
    WebhookEndpoint.unscoped.filter(tenant=tenant).delete()
    webhook_endpoint_create(
        actor=Actor.cli(), tenant=tenant, url=url, description="restricted latency bench", event_types=[WARNING]
    )
    layout = LayoutVersion.unscoped.filter(store=store).order_by("-effective_from").first()
    document = layout.document
    gate = next(d["code"] for d in document["devices"] if d["kind"] == "gate")
    fixture, bin_code = next(
        (f, b["code"]) for f in document["fixtures"] for b in f["bins"] if b.get("sku") == RESTRICTED_SKU
    )
    camera = next(d["code"] for d in document["devices"] if d["kind"] == "camera" and fixture["zone"] in d["covers"])
    return gate, bin_code, camera


def _stamp(at: datetime) -> str:
    return at.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def measure(
    processes: Processes,
    warnings: Warnings,
    *,
    key: str,
    store_code: str,
    places: tuple[str, str, str],
    tokens: list[str],
    picks: int,
    interval: float,
    label: str,
    wait: float,
) -> dict[str, Any]:
    """`picks` live pushes of an entry and an 18+ pick, one every `interval` seconds; each timed to its warning."""
    gate, bin_code, camera = places
    sent: dict[str, float] = {}
    refused = 0
    for number in range(picks):
        now = datetime.now(UTC)
        session, pick = f"{label}-{number}", f"{label}-{number}-pick"
        batch = [
            {"id": f"{label}-{number}-in", "type": "session.started", "ts": _stamp(now - timedelta(seconds=20)),
             "session": session, "shopper": tokens[number % len(tokens)], "gate": gate},
            {"id": pick, "type": "item.picked", "ts": _stamp(now), "session": session, "bin": bin_code,
             "device": camera, "qty": 1, "confidence": 0.97},
        ]  # fmt: skip
        started = time.monotonic()
        status, _ = _request(processes.port, "POST", f"/api/v1/stores/{store_code}/events", key=key, body=batch)
        if status in (200, 201, 202):
            sent[pick] = started
        else:
            refused += 1
        time.sleep(max(0.0, interval - (time.monotonic() - started)))
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline and not sent.keys() <= warnings.arrived.keys():
        time.sleep(0.2)
    seconds = sorted(warnings.arrived[pick] - at for pick, at in sent.items() if pick in warnings.arrived)
    return {
        "picks_pushed": len(sent),
        "pushes_refused": refused,
        "warnings_received": len(seconds),
        "warnings_missing": len(sent) - len(seconds),
        "latency_s": _percentiles(seconds),
        "queues_at_end": _queue_lengths(),
        "load_average_1min": round(os.getloadavg()[0], 2),
    }


def _percentiles(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"p50": None, "p95": None, "max": None}

    def at(share: float) -> float:
        return round(values[min(len(values) - 1, int(share * len(values)))], 3)

    return {"p50": at(0.5), "p95": at(0.95), "max": round(values[-1], 3)}


def run(args: argparse.Namespace) -> dict[str, Any]:
    from billing.payments.stripe_standin import LocalStripe
    from tenants import services as tenant_services
    from tenants.audit import Actor

    work = Path(tempfile.mkdtemp(prefix="bench-restricted-"))
    logs = work / "logs"
    logs.mkdir()
    tenant, stores = setup(1 + args.backlog_stores, slug=TENANT_SLUG, name="Restricted latency benchmark")
    issued = tenant_services.api_key_issue(actor=Actor.cli(), tenant=tenant, name="restricted latency benchmark")
    processes: Processes | None = None
    stripe = LocalStripe()
    result: dict[str, Any] = {}
    try:
        with Warnings() as warnings:
            places = _prepare(tenant, stores[0], url=warnings.url)
            stripe.__enter__()
            env = support.server_environment(
                media=work / "media",
                STRIPE_API_BASE=stripe.base_url,
                WEBHOOKS_ALLOW_PRIVATE_NETWORKS="true",  # the licensee's endpoint is this script, on 127.0.0.1
                API_RATE_PER_KEY="1000000/min",
            )
            forget_queued_tasks()
            processes = Processes(env=env, logs=logs)
            processes.start_server(workers=args.web_workers, threads=1)
            processes.start_workers(visits=1, payments=1, nice=args.worker_nice, cpu_class="idle")  # as deployed
            processes.wait_ready(workers=4)
            tokens = register_shoppers(processes.port, key=issued.key, count=args.shoppers)
            common = {"key": issued.key, "store_code": stores[0].code, "places": places, "tokens": tokens}
            common |= {"picks": args.picks, "interval": args.interval, "wait": args.wait}
            run_id = datetime.now(UTC).strftime("%H%M%S")
            idle = measure(processes, warnings, label=f"idle-{run_id}", **common)
            plans = [
                plan_store(
                    store, tokens=tokens, visits=args.backlog_visits, batch_events=10_000, run=f"bl-{run_id}",
                    seed=args.seed + number, start=datetime.now(UTC) - timedelta(hours=12),
                )
                for number, store in enumerate(stores[1:])
            ]  # fmt: skip
            upload_backlog(processes.port, key=issued.key, plans=plans)
            time.sleep(args.backlog_head_start)
            busy = measure(processes, warnings, label=f"busy-{run_id}", **common)
            result = {
                "benchmark": "restricted_latency",
                "cpus": os.cpu_count(),
                "backlog": {
                    "stores": args.backlog_stores,
                    "events": sum(p["events"] for p in plans),
                },
                "phases": {"idle": idle, "busy": busy},
                "warnings_repeated": warnings.repeated,
                "target": {"p95_s_at_most": 5.0},
                "targets_met": {
                    name: phase["latency_s"]["p95"] is not None
                    and phase["latency_s"]["p95"] <= 5.0
                    and not phase["warnings_missing"]
                    for name, phase in (("idle", idle), ("busy", busy))
                },
            }
    finally:
        support.tear_down(processes=processes, stripe=stripe, api_key=issued.api_key, work=work)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--picks", type=int, default=40, help="live 18+ picks per phase (default 40)")
    parser.add_argument("--interval", type=float, default=0.5, help="seconds between pushes (default 0.5)")
    parser.add_argument("--wait", type=float, default=60, help="seconds to wait for the last warnings (default 60)")
    parser.add_argument("--shoppers", type=int, default=10, help="registered shoppers (default 10)")
    parser.add_argument("--backlog-stores", type=int, default=4, help="stores whose day is uploaded (default 4)")
    parser.add_argument("--backlog-visits", type=int, default=600, help="visits in each uploaded day (default 600)")
    parser.add_argument("--backlog-head-start", type=float, default=5, help="seconds from upload to measuring")
    parser.add_argument("--web-workers", type=int, default=2, help="gunicorn workers (default 2)")
    parser.add_argument("--worker-nice", type=int, default=10, help="niceness of the workers (default 10)")
    parser.add_argument("--seed", type=int, default=1)
    support.measure(parser, run)


if __name__ == "__main__":
    main()
