"""What the benchmarks that drive the API of their own server share: the environment of the server and workers they
start, waiting until those answer, JSON requests, registered shoppers, emptying the bench tenant of earlier runs,
undoing a run, the code version a result was measured on."""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import math
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from machine import ROOT, end_other_backends, forget_queued_tasks, start_django


def server_environment(*, media: Path, **settings: str) -> dict[str, str]:
    """The environment of the web server and workers a benchmark starts: this checkout's code and settings, files
    under `media`, warnings only; `settings` on top (STRIPE_API_BASE, API_RATE_PER_KEY, ...)."""
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "platform")]),
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "MEDIA_ROOT": str(media),
        "LOG_LEVEL": "WARNING",
        **settings,
    }


def wait_until_ready(
    port: int,
    *,
    check: Callable[[], None],
    workers_ready: Callable[[set[str]], bool],
    logs: Path,
    timeout: float,
    pause: float = 0.3,
) -> None:
    """Until the web server on `port` answers /healthz and the Celery workers that answer a ping (their node names)
    are what `workers_ready` waits for; `check` raises when a process the benchmark started has ended."""
    from config.celery import app

    deadline = time.monotonic() + timeout
    while True:
        check()
        try:
            server_up = json_request(port, "GET", "/healthz", timeout=60)[0] == 200
        except OSError:
            server_up = False
        replies = app.control.ping(timeout=0.5) or []
        if server_up and workers_ready({name for reply in replies for name in reply}):
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"server or workers not ready after {timeout} s (see {logs})")
        time.sleep(pause)


def kept_tenant(*, slug: str, name: str) -> Any:
    """The bench tenant of `slug`, made by the first run and kept by the next ones."""
    from tenants import services as tenant_services
    from tenants.audit import Actor
    from tenants.models import Tenant

    return Tenant.objects.filter(slug=slug).first() or tenant_services.tenant_create(
        actor=Actor.cli(), name=name, slug=slug
    )


def sample_stores(tenant: Any, *, names: dict[str, str], skus: list[str], effective_from: datetime) -> list[Any]:
    """The tenant's stores of these codes (`names`: code to name), each with the sample layout over `skus` from
    `effective_from` (made once, kept)."""
    from core import tenancy
    from stores.sample_store import sample_store
    from tenants.audit import Actor

    with tenancy.tenant_scope(tenant.pk):
        return [
            sample_store(
                actor=Actor.cli(), tenant=tenant, code=code, skus=skus, effective_from=effective_from, name=name
            )
            for code, name in names.items()
        ]


def json_request(
    port: int, method: str, path: str, *, key: str = "", body: Any = None, timeout: float = 120
) -> tuple[int, Any]:
    """One request to the benchmark's server on 127.0.0.1: its status and its JSON answer (bytes if not JSON)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
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


def register_shoppers(port: int, *, key: str, count: int, ref_prefix: str, timeout: float = 120) -> list[str]:
    """Shoppers with a card each (through the API, so through the Stripe stand-in); their entry tokens."""
    tokens = []
    for number in range(count):
        status, answer = json_request(
            port,
            "POST",
            "/api/v1/shoppers",
            key=key,
            body={"external_ref": f"{ref_prefix}-shopper-{number}", "payment_method": "pm_card_visa"},
            timeout=timeout,
        )
        if status not in (200, 201):
            raise RuntimeError(f"registering a shopper answered {status}: {answer!r}")
        tokens.append(answer["entry_token"])
    return tokens


def deletion_order(payments_models: Sequence[str] = ()) -> list[Any]:
    """Visits, events, streams and rejections, the payments models named (those installed), and whatever hangs off
    them (cart lines, charge instructions, decisions, ...), found through their relations: rows pointing at others
    first."""
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

    for model in (Visit, Rejection, StreamChunk, Event, EventStream):
        add(model)
    for name in payments_models:
        with contextlib.suppress(LookupError):
            add(apps.get_model("payments", name))
    return order


def delete_tenant_rows(tenant_id: int, models: Sequence[Any]) -> None:
    """Delete the tenant's rows of `models` (set-based), in that order; each must have a tenant column."""
    from django.db import connection

    with connection.cursor() as cursor:
        for model in models:
            if not any(field.attname == "tenant_id" for field in model._meta.concrete_fields):
                raise RuntimeError(f"{model.__name__} has no tenant column: extend clean() for it")
            cursor.execute(f"DELETE FROM {model._meta.db_table} WHERE tenant_id = %s", [tenant_id])  # noqa: S608


def analyze(models: Sequence[Any]) -> None:
    """Fresh planner statistics for the tables of `models`."""
    from django.db import connection

    with connection.cursor() as cursor:
        for model in models:
            cursor.execute(f"ANALYZE {model._meta.db_table}")


def vacuum_analyze() -> None:
    """The benchmark's database without the rows deleted or updated away, and with fresh planner statistics, as
    autovacuum keeps a database in production. Where autovacuum is off (this project's CI machines), every run's
    cleaning and updates left their rows dead: after five runs of bench/load.py the events' partition held 260,000
    dead rows against 77,000 live, the visits 88,000 against 4,000, the devices 72,000 against 4,000, and the
    PostgreSQL CPU of each load phase had gone from 22-28 to 45-56 s."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("VACUUM (ANALYZE)")


def stop_processes(signalled: Sequence[tuple[subprocess.Popen[bytes], int]]) -> None:
    """Send each process that still runs its signal, all at once, then wait for each; kill what does not stop
    within 30 s. Workers get SIGQUIT (cold: a task still running rolls back), servers SIGTERM."""
    for process, stop_signal in signalled:
        if process.poll() is None:
            process.send_signal(stop_signal)
    for process, _ in signalled:
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def tear_down(
    *,
    processes: Any,
    stripe: Any = None,
    api_key: Any,
    clean: Callable[[], None] | None = None,
    work: Path,
    keep_work: bool = False,
) -> None:
    """What a run undoes whatever happened: stops its processes (if started), ends the database sessions they leave
    behind (`end_other_backends`) and the Stripe stand-in, forgets the tasks still queued, empties the tenant
    (`clean`), revokes the run's API key and removes `work` (unless kept)."""
    from tenants import services as tenant_services
    from tenants.audit import Actor

    if processes is not None:
        processes.stop()
    end_other_backends()
    if stripe is not None:
        with contextlib.suppress(Exception):
            stripe.__exit__(None, None, None)
    forget_queued_tasks()
    if clean is not None:
        clean()
    with contextlib.suppress(Exception):
        tenant_services.api_key_revoke(actor=Actor.cli(), api_key=api_key)
    if not keep_work:
        shutil.rmtree(work, ignore_errors=True)


def measure(parser: argparse.ArgumentParser, run: Callable[[argparse.Namespace], dict[str, Any]]) -> None:
    """A benchmark's command: its options read, Django started on PostgreSQL, what `run` found printed as one JSON
    object."""
    args = parser.parse_args()
    start_django()
    print(json.dumps(run(args)))


def git(*argv: str) -> str:
    """What git answers in the checkout measured ("" if it cannot run)."""
    try:
        done = subprocess.run(["git", *argv], cwd=ROOT, capture_output=True, text=True, timeout=30, check=False)
    except OSError:
        return ""
    return done.stdout.strip()


def code_version() -> dict[str, Any]:
    """The commit measured, and how many files differ from it."""
    changed = [line[3:] for line in git("status", "--porcelain").splitlines()]
    return {"commit": git("rev-parse", "--short", "HEAD"), "uncommitted_files": len(changed)}


def percentiles(values: Sequence[float], *, digits: int) -> dict[str, float | None]:
    """p50, p95, p99 and max of `values` by nearest rank, rounded to `digits` (each None when there are none)."""
    ordered = sorted(values)

    def rank(share: float) -> float | None:
        return round(ordered[max(0, math.ceil(share * len(ordered)) - 1)], digits) if ordered else None

    return {"p50": rank(0.50), "p95": rank(0.95), "p99": rank(0.99), "max": rank(1.0)}
