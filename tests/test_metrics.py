"""/metrics: every metric is there, only the right callers read it, and the counters move with real work."""

from __future__ import annotations

import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from django.test import Client
from prometheus_client.parser import text_string_to_metric_families
from rest_framework.test import APIClient

from conftest import checkout_env
from core import metrics
from ingest.tests.conftest import day_of_events, eventually, ndjson, upload, wait_for_stream
from stores.models import Store
from tenants.models import Tenant
from visits.models import Visit

EVERY_METRIC = {
    "openaisle_http_requests": "counter",
    "openaisle_http_request_duration_seconds": "histogram",
    "openaisle_http_request_cpu_seconds": "counter",
    "openaisle_celery_tasks": "counter",
    "openaisle_celery_task_duration_seconds": "histogram",
    "openaisle_events": "counter",
    "openaisle_visits_settled": "counter",
    "openaisle_payment_failures": "counter",
    "openaisle_review_queue_visits": "gauge",
}

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]
TOKEN = "s3cret-metrics-token"
BEARER = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(autouse=True)
def metrics_token(settings) -> None:
    settings.METRICS_TOKEN = TOKEN


def scrape(client: Client) -> Samples:
    response = client.get("/metrics", headers=BEARER)
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.content.decode())
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def total(samples: Samples, name: str, **labels: str) -> float:
    """The sum over every series of `name` whose labels include `labels`."""
    wanted = set(labels.items())
    return sum(v for (n, found), v in samples.items() if n == name and wanted <= found)


@pytest.mark.django_db
def test_metrics_lists_every_metric_with_its_type(client: Client) -> None:
    response = client.get("/metrics", headers=BEARER)
    assert response.status_code == 200
    families = {family.name: family.type for family in text_string_to_metric_families(response.content.decode())}
    for name, kind in EVERY_METRIC.items():
        assert families.get(name) == kind, name
    samples = scrape(client)
    # Known series exist at zero before anything happened.
    for outcome in ("accepted", "duplicate", "rejected"):
        assert ("openaisle_events_total", frozenset({("outcome", outcome), ("source", "upload")})) in samples
    assert ("openaisle_payment_failures_total", frozenset({("operation", "capture")})) in samples
    assert ("openaisle_visits_settled_total", frozenset({("status", "charged")})) in samples
    # The previous scrape was itself counted, by URL name rather than path.
    assert value(samples, "openaisle_http_requests_total", view="metrics", method="GET", status="200") >= 1
    assert value(samples, "openaisle_http_request_cpu_seconds_total", view="metrics", method="GET") > 0


@pytest.mark.django_db
def test_without_a_token_nobody_reads_the_metrics_not_even_loopback(settings, client: Client) -> None:
    """A proxy on the same host makes every caller look local: the address proves nothing (issue 16, finding 15)."""
    settings.METRICS_TOKEN = ""
    for address in ("127.0.0.1", "::1", "10.1.2.3"):
        for headers in ({}, {"Authorization": "Bearer "}, BEARER):
            refused = client.get("/metrics", headers=headers, REMOTE_ADDR=address)
            assert refused.status_code == 404, (address, headers)
            assert b"openaisle_" not in refused.content


@pytest.mark.django_db
def test_with_a_token_every_caller_needs_it_loopback_too(client: Client) -> None:
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}, {"Authorization": "Bearer"}):
        for address in ("127.0.0.1", "::1", "10.1.2.3"):
            refused = client.get("/metrics", headers=headers, REMOTE_ADDR=address, HTTP_X_FORWARDED_FOR="127.0.0.1")
            assert refused.status_code == 401
            assert refused["WWW-Authenticate"].startswith("Bearer")
            assert b"openaisle_" not in refused.content
    granted = client.get("/metrics", headers=BEARER, REMOTE_ADDR="10.1.2.3")
    assert granted.status_code == 200
    assert b"openaisle_events_total" in granted.content


def test_metrics_refuse_other_methods(client: Client) -> None:
    assert client.post("/metrics").status_code == 405


@pytest.fixture
def tasks_through_the_broker() -> Iterator[None]:
    """Tasks go to the worker, whatever an earlier test left in the Celery app's configuration."""
    from django.conf import settings

    from config.celery import app

    previous = app.conf.task_always_eager
    app.conf.task_always_eager = settings.CELERY_TASK_ALWAYS_EAGER
    yield
    app.conf.task_always_eager = previous


@pytest.mark.usefixtures("tasks_through_the_broker", "celery_worker")
def test_counters_move_with_an_ingested_stream_a_push_and_settled_visits(
    api_a: APIClient, tenant_a: Tenant, make_store_with_layout: Callable[..., Store]
) -> None:
    store = make_store_with_layout(tenant_a)
    Store.unscoped.filter(pk=store.pk).update(settling_window_seconds=0)
    events = day_of_events(store, visits=4)
    body = ndjson([*events, events[3], b'{"id": "broken", "type": "item.picked", "ts": "2026-0'])
    web = Client()
    before = scrape(web)

    stream = wait_for_stream(api_a, upload(api_a, store.code, body).json()["id"])
    assert (stream["accepted"], stream["duplicates"], stream["rejected"]) == (len(events), 1, 1)
    visits = Visit.unscoped.filter(store=store)

    def settled() -> bool:
        now = scrape(web)
        return total(now, "openaisle_visits_settled_total") - total(before, "openaisle_visits_settled_total") >= 4

    eventually(settled, timeout=60)
    after = scrape(web)

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    def moved_in_all(name: str, **labels: str) -> float:
        return total(after, name, **labels) - total(before, name, **labels)

    assert moved("openaisle_events_total", outcome="accepted", source="upload") == len(events)
    assert moved("openaisle_events_total", outcome="duplicate", source="upload") == 1
    assert moved("openaisle_events_total", outcome="rejected", source="upload") == 1
    assert moved("openaisle_http_requests_total", view="store-event-streams", method="POST", status="202") == 1
    tasks = "openaisle_celery_tasks_total"
    assert moved_in_all(tasks, queue="ingest", task="ingest.process_chunk", outcome="success") >= 1
    assert moved_in_all(tasks, queue="ingest", task="ingest.finish_stream", outcome="success") == 1
    assert moved_in_all(tasks, queue="visits", outcome="success") >= 2  # refreshing, then settling
    assert moved_in_all("openaisle_celery_task_duration_seconds_count", queue="ingest") >= 3
    # The catalog has no prices: every visit settles to the review queue, which the gauge shows.
    settled_now = dict(visits.values_list("session", "status"))
    assert len(settled_now) == 4
    assert set(settled_now.values()) == {"needs_review"}
    assert moved("openaisle_visits_settled_total", status="needs_review") == 4
    assert value(after, "openaisle_review_queue_visits") == Visit.unscoped.filter(status="needs_review").count() >= 4

    # A live push is counted once a worker has finished it (just after the answer), as a push.
    pushed = api_a.post(f"/api/v1/stores/{store.code}/events", [events[0], {"id": "p-bad"}], format="json")
    assert pushed.status_code == 202, pushed.content

    def pushed_counted() -> bool:
        final = scrape(web)
        return all(
            value(final, "openaisle_events_total", outcome=outcome, source="push")
            - value(after, "openaisle_events_total", outcome=outcome, source="push")
            == 1
            for outcome in ("duplicate", "rejected")
        )

    eventually(pushed_counted, timeout=60)


def test_payment_failures_are_counted_once_the_transaction_commits(transactional_db: None) -> None:
    from django.db import transaction

    counter = metrics.PAYMENT_FAILURES.labels(operation="capture")
    start = counter._value.get()
    with transaction.atomic():
        metrics.count_payment_failure(operation="capture")
        assert counter._value.get() == start
    assert counter._value.get() == start + 1

    def fail_inside_a_transaction() -> None:
        with transaction.atomic():
            metrics.count_payment_failure(operation="capture")
            raise RuntimeError("rolled back")

    with pytest.raises(RuntimeError):
        fail_inside_a_transaction()
    assert counter._value.get() == start + 1


_COUNT_IN_ANOTHER_PROCESS = """
import django, sys
django.setup()
from core import metrics
metrics.EVENTS.labels(outcome="accepted", source="push").inc(int(sys.argv[1]))
if sys.argv[2] == "show":
    sys.stdout.write(metrics.exposition(with_database=False).decode())
"""


def test_in_multiprocess_mode_the_processes_counts_add_up(
    tmp_path: Path, run_in_checkout: Callable[..., subprocess.CompletedProcess[str]]
) -> None:
    """Under gunicorn (PROMETHEUS_MULTIPROC_DIR set) each worker process counts apart; any of them shows the sum."""
    env = checkout_env(PROMETHEUS_MULTIPROC_DIR=str(tmp_path))

    def run(count: int, show: bool) -> str:
        done = run_in_checkout(
            [sys.executable, "-c", _COUNT_IN_ANOTHER_PROCESS, str(count), "show" if show else "-"], env=env
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    run(3, show=False)
    shown = run(4, show=True)
    samples = {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(shown)
        for sample in family.samples
    }
    assert value(samples, "openaisle_events_total", outcome="accepted", source="push") == 7
    assert len(list(tmp_path.glob("counter_*.db"))) == 2


def test_a_celery_worker_serves_its_own_metrics_under_the_same_rule(settings) -> None:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    metrics.serve_worker_metrics(port=port, host="127.0.0.1")
    url = f"http://127.0.0.1:{port}/metrics"

    settings.METRICS_TOKEN = ""
    for headers in ({}, {"Authorization": "Bearer "}):
        with pytest.raises(urllib.error.HTTPError) as off:
            urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=10)
        assert off.value.code == 404

    settings.METRICS_TOKEN = "worker-token"
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(url, timeout=10)
    assert refused.value.code == 401
    request = urllib.request.Request(url, headers={"Authorization": "Bearer worker-token"})
    with urllib.request.urlopen(request, timeout=10) as answer:
        body = answer.read()
    assert b"openaisle_events_total" in body
    assert b"openaisle_review_queue_visits" not in body  # the database gauge is the web's alone
