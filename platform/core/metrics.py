"""Prometheus metrics: what the platform counts, who may read them, and how they are served.

Every metric is defined here, and code elsewhere imports it (or one of the helpers below) and
counts. The helpers count after the transaction commits, so a rolled-back chunk or settling
batch, redone later, is counted once.

    openaisle_http_requests_total{view, method, status}         requests answered (web)
    openaisle_http_request_duration_seconds{view, method}       how long they took (web)
    openaisle_http_request_cpu_seconds_total{view, method}      CPU the web process spent answering them
    openaisle_celery_tasks_total{queue, task, outcome}          tasks run: success, failure, retry, ... (workers)
    openaisle_celery_task_duration_seconds{queue, task}         how long they ran (workers)
    openaisle_events_total{outcome, source}                     events received: accepted, duplicate, rejected
    openaisle_visits_settled_total{status}                      visits that became final, by what they became
    openaisle_payment_failures_total{operation}                 payments refused or failed (billing counts them)
    openaisle_review_queue_visits                               visits waiting for a person, platform-wide,
                                                                counted at scrape time
    openaisle_unreadable_events                                 stored events whose payload cannot be read back
                                                                (their visits wait in review), counted at scrape time

Serving. `/metrics` (web) answers `Authorization: Bearer <METRICS_TOKEN>` only, wherever the caller is
(a proxy on the same host makes every caller look local, so the address proves nothing); with no
token set the metrics are not served at all (404). Under gunicorn each worker process counts for itself: with
`PROMETHEUS_MULTIPROC_DIR` set (an empty directory per host or container, before the processes
start) prometheus-client keeps the values in files there and `/metrics` adds them up. A Celery
worker serves its own processes' metrics on `METRICS_PORT` (same token rule) when that is set;
see deploy/README.md.
"""

from __future__ import annotations

import hmac
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

from django.conf import settings
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.registry import Collector

logger = logging.getLogger(__name__)

if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):  # the values' files go there from the first metric on
    os.makedirs(os.environ["PROMETHEUS_MULTIPROC_DIR"], exist_ok=True)

HTTP_REQUESTS = Counter(
    "openaisle_http_requests",
    "HTTP requests answered, by URL name (view), method and status code.",
    ["view", "method", "status"],
)
HTTP_DURATION = Histogram(
    "openaisle_http_request_duration_seconds",
    "Time to answer an HTTP request, by URL name (view) and method.",
    ["view", "method"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
HTTP_CPU = Counter(
    "openaisle_http_request_cpu_seconds",
    "CPU time the web process's thread spent answering HTTP requests, by URL name (view) and method: "
    "divided by openaisle_http_requests_total, what one request of a view costs the web server.",
    ["view", "method"],
)
CELERY_TASKS = Counter(
    "openaisle_celery_tasks",
    "Celery tasks run, by queue, task name and outcome (success, failure, retry, ...).",
    ["queue", "task", "outcome"],
)
CELERY_DURATION = Histogram(
    "openaisle_celery_task_duration_seconds",
    "Time a Celery task ran, by queue and task name.",
    ["queue", "task"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0),
)
EVENTS = Counter(
    "openaisle_events",
    "Events received by ingest when their stream or push finished: accepted, duplicate (sent again) or rejected; "
    "by source (upload, push).",
    ["outcome", "source"],
)
VISITS_SETTLED = Counter(
    "openaisle_visits_settled",
    "Visits that became final, by the status they settled to (charged, no_charge, needs_review, ...).",
    ["status"],
)
PAYMENT_FAILURES = Counter(
    "openaisle_payment_failures",
    "Payments that were declined or failed, by operation (authorize, capture, charge, refund, ...).",
    ["operation"],
)

EVENT_OUTCOMES = ("accepted", "duplicate", "rejected")
EVENT_SOURCES = ("upload", "push")
SETTLED_STATUSES = ("charged", "no_charge", "needs_review")
PAYMENT_OPERATIONS = ("authorize", "capture", "charge", "refund")

# Series that exist before anything happened, so that a rate over them starts at 0, not at "no data".
for _outcome in EVENT_OUTCOMES:
    for _source in EVENT_SOURCES:
        EVENTS.labels(outcome=_outcome, source=_source)
for _status in SETTLED_STATUSES:
    VISITS_SETTLED.labels(status=_status)
for _operation in PAYMENT_OPERATIONS:
    PAYMENT_FAILURES.labels(operation=_operation)


# --- counting -------------------------------------------------------------------------------------


def count_events(*, source: str, accepted: int, duplicates: int, rejected: int) -> None:
    """Count a finished stream's (or push's) events, once its transaction commits."""

    def count() -> None:
        for outcome, number in (("accepted", accepted), ("duplicate", duplicates), ("rejected", rejected)):
            if number > 0:
                EVENTS.labels(outcome=outcome, source=source).inc(number)

    transaction.on_commit(count)


def count_visits_settled(*, statuses: Iterable[str]) -> None:
    """Count visits that just became final, by their new status, once the transaction commits."""
    settled = list(statuses)
    if not settled:
        return

    def count() -> None:
        for status in settled:
            VISITS_SETTLED.labels(status=status).inc()

    transaction.on_commit(count)


def count_payment_failure(*, operation: str) -> None:
    """Count a declined or failed payment (authorize, capture, charge, refund), once the transaction commits."""
    transaction.on_commit(lambda: PAYMENT_FAILURES.labels(operation=operation).inc())


# --- HTTP ------------------------------------------------------------------------------------------


class RequestMetricsMiddleware:
    """Counts and times every request, labelled by URL name rather than path (bounded label values)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started, cpu_started = time.perf_counter(), time.thread_time()
        response = self.get_response(request)
        match = request.resolver_match
        view = (match.view_name or match.url_name or "unnamed") if match is not None else "unmatched"
        method = request.method if request.method in _METHODS else "other"
        HTTP_DURATION.labels(view=view, method=method).observe(time.perf_counter() - started)
        HTTP_REQUESTS.labels(view=view, method=method, status=str(response.status_code)).inc()
        HTTP_CPU.labels(view=view, method=method).inc(time.thread_time() - cpu_started)
        return response


_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


# --- Celery ----------------------------------------------------------------------------------------

_task_started: dict[str, float] = {}


def _queue_of(task: Any) -> str:
    delivery = getattr(task.request, "delivery_info", None) or {}
    if delivery.get("is_eager") or getattr(task.request, "is_eager", False):
        return "in-process"
    return str(delivery.get("routing_key") or delivery.get("exchange") or "unknown")


def _task_prerun(task_id: str | None = None, **_: Any) -> None:
    if task_id:
        _task_started[task_id] = time.perf_counter()


def _task_postrun(task_id: str | None = None, task: Any = None, state: str | None = None, **_: Any) -> None:
    if task is None:
        return
    queue, name = _queue_of(task), task.name or "unnamed"
    CELERY_TASKS.labels(queue=queue, task=name, outcome=(state or "unknown").lower()).inc()
    started = _task_started.pop(task_id or "", None)
    if started is not None:
        CELERY_DURATION.labels(queue=queue, task=name).observe(time.perf_counter() - started)


def _worker_ready(**_: Any) -> None:
    port = os.environ.get("METRICS_PORT", "")
    if port:
        serve_worker_metrics(port=int(port), host=os.environ.get("METRICS_HOST", "0.0.0.0"))  # noqa: S104


def connect_signals() -> None:
    """Count Celery tasks (any process that runs them) and serve a worker's metrics when METRICS_PORT is set."""
    from celery.signals import task_postrun, task_prerun, worker_ready

    task_prerun.connect(_task_prerun, weak=False, dispatch_uid="openaisle-metrics-prerun")
    task_postrun.connect(_task_postrun, weak=False, dispatch_uid="openaisle-metrics-postrun")
    worker_ready.connect(_worker_ready, weak=False, dispatch_uid="openaisle-metrics-worker-ready")


# --- reading ---------------------------------------------------------------------------------------


_SCRAPE_TIME_COLLECTORS: list[Collector] = []


def collect_at_scrape(collector: Collector) -> None:
    """Add figures read from the database when /metrics is scraped (apps register theirs when they are ready)."""
    if collector not in _SCRAPE_TIME_COLLECTORS:
        _SCRAPE_TIME_COLLECTORS.append(collector)


def multiprocess_dir() -> str:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")


def exposition(*, with_database: bool) -> bytes:
    """The metrics of this process, or of every process sharing PROMETHEUS_MULTIPROC_DIR, as Prometheus text."""
    if multiprocess_dir():
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        output = generate_latest(registry)
    else:
        output = generate_latest(REGISTRY)
    if with_database:
        extra = CollectorRegistry()
        for collector in _SCRAPE_TIME_COLLECTORS:
            extra.register(collector)
        output += generate_latest(extra)
    return output


def refusal(*, authorization: str) -> int | None:
    """Why a caller may not read the metrics, as the status to answer, or None when it may.

    Exactly `Authorization: Bearer <METRICS_TOKEN>` reads them (401 otherwise); with no token set nobody
    does (404: the endpoint is off).
    """
    token = getattr(settings, "METRICS_TOKEN", "")
    if not token:
        return 404
    if hmac.compare_digest(authorization.encode(), f"Bearer {token}".encode()):
        return None
    return 401


_REFUSALS = {
    401: "Metrics need 'Authorization: Bearer <METRICS_TOKEN>'.",
    404: "Metrics are off: set METRICS_TOKEN to serve them.",
}


@never_cache
@require_GET
def metrics_view(request: HttpRequest) -> HttpResponse:
    status = refusal(authorization=request.headers.get("Authorization", ""))
    if status is not None:
        response = HttpResponse(_REFUSALS[status], status=status, content_type="text/plain")
        if status == 401:
            response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    return HttpResponse(exposition(with_database=True), content_type=CONTENT_TYPE_LATEST)


# --- a Celery worker's own endpoint ----------------------------------------------------------------


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        return


def worker_metrics_app(environ: Mapping[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    """A tiny WSGI app serving this worker's metrics (all its pool processes) under the same access rule."""
    status = refusal(authorization=str(environ.get("HTTP_AUTHORIZATION", "")))
    if status is not None:
        reason = "Unauthorized" if status == 401 else "Not Found"
        start_response(f"{status} {reason}", [("Content-Type", "text/plain")])
        return [b"metrics: not allowed\n"]
    if environ.get("PATH_INFO") not in ("/metrics", "/"):
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"not found\n"]
    body = exposition(with_database=False)
    start_response("200 OK", [("Content-Type", CONTENT_TYPE_LATEST), ("Content-Length", str(len(body)))])
    return [body]


def serve_worker_metrics(*, port: int, host: str) -> None:
    """Serve /metrics of this Celery worker from a daemon thread of its main process."""
    server = make_server(host, port, worker_metrics_app, handler_class=_QuietHandler)
    threading.Thread(target=server.serve_forever, name="metrics", daemon=True).start()
    logger.info("worker metrics served", extra={"host": host, "port": port})
