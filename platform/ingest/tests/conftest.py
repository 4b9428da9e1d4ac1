from __future__ import annotations

import contextlib
import gzip
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from rest_framework.test import APIClient

from ingest.models import EventStream, StreamChunk
from ingest.sample import sample_events
from stores.models import LayoutVersion, Store
from stores.sample_store import SAMPLE_LAYOUT_FROM as LAYOUT_FROM
from tenants.models import Tenant

ROOT = Path(__file__).resolve().parents[3]
DAY = datetime(2026, 3, 2, 8, 0, tzinfo=LAYOUT_FROM.tzinfo)


def ndjson(events: Iterable[Any]) -> bytes:
    return b"".join((e if isinstance(e, bytes) else orjson.dumps(e)) + b"\n" for e in events)


def day_of_events(store: Store, *, visits: int = 20, seed: int = 1, prefix: str = "e") -> list[dict[str, Any]]:
    layout = LayoutVersion.unscoped.get(store=store)
    return list(sample_events(layout.document, visits=visits, start=DAY, seed=seed, id_prefix=prefix))


def upload(client: APIClient, store: str, body: bytes, *, name: str = "events.ndjson", gz: bool = False) -> Any:
    payload = gzip.compress(body) if gz else body
    file = SimpleUploadedFile(name + (".gz" if gz else ""), payload, content_type="application/x-ndjson")
    return client.post(f"/api/v1/stores/{store}/event-streams", {"file": file}, format="multipart")


def wait_for_stream(client: APIClient, stream_id: int, *, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        body = client.get(f"/api/v1/event-streams/{stream_id}").json()
        if body["status"] in ("done", "failed"):
            return body
        if time.monotonic() > deadline:
            pending = list(
                StreamChunk.unscoped.filter(stream_id=stream_id, done=False).values("seq", "start_offset", "end_offset")
            )
            raise AssertionError(f"stream {stream_id} did not finish: {body}; chunks not done: {pending}")
        time.sleep(0.1)


@pytest.fixture
def store_a(make_store_with_layout: Callable[..., Store], tenant_a: Tenant) -> Store:
    return make_store_with_layout(tenant_a)


@pytest.fixture
def store_b(make_store_with_layout: Callable[..., Store], tenant_b: Tenant) -> Store:
    return make_store_with_layout(tenant_b)


def stream_totals(stream_id: int) -> tuple[int, int, int, int]:
    stream = EventStream.unscoped.get(pk=stream_id)
    return stream.lines, stream.accepted, stream.duplicates, stream.rejected


@contextlib.contextmanager
def worker_process(*, concurrency: int = 1, chunk_bytes: int = 4000) -> Iterator[subprocess.Popen[bytes]]:
    """A real `celery worker` process on the test database, which a test may kill."""
    database = connection.settings_dict
    env = {
        **os.environ,
        "PYTHONPATH": f"{ROOT}:{ROOT / 'platform'}",
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DATABASE_URL": f"postgres://{database['USER']}@{database['HOST']}:{database['PORT']}/{database['NAME']}",
        "INGEST_CHUNK_BYTES": str(chunk_bytes),
    }
    log = open(os.environ.get("WORKER_LOG", os.devnull), "ab")  # noqa: SIM115 — closed with the process
    pool = ["--pool", "solo"] if concurrency == 1 else ["--pool", "prefork", "--concurrency", str(concurrency)]
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "config",
            "worker",
            "-Q",
            "live,ingest,visits,default",
            *pool,
            "--loglevel",
            os.environ.get("WORKER_LOG_LEVEL", "WARNING"),
            "--without-heartbeat",
            "--without-mingle",
            "--without-gossip",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=log,
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        log.close()


def eventually(check: Callable[[], bool], *, timeout: float = 30) -> None:
    """Wait for work a real worker does in the background (it is immediate in embedded mode)."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("the background work did not finish in time")
        time.sleep(0.05)


def stored_names(directory: str) -> list[str]:
    """Every file kept under `directory` ("" for all) in the default storage (the local disk or a bucket), by name."""
    try:
        directories, files = default_storage.listdir(directory)
    except FileNotFoundError:  # on the local disk, nothing was kept there yet
        return []
    prefix = f"{directory}/" if directory else ""
    found = [f"{prefix}{name}" for name in files]
    for inner in directories:
        found += stored_names(f"{prefix}{inner}")
    return found
