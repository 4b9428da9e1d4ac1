"""Helpers for tests that run a Celery worker inside the test process."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any

from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.backends.signals import connection_created


@contextlib.contextmanager
def worker_in_thread(app: Any, *, queues: list[str]) -> Iterator[None]:
    """A Celery worker (solo pool) in a thread of this process for the length of the block; the database
    connections it opened are closed once it has stopped.

    A worker keeps its connection between tasks (config/celery.py: CELERY_DB_REUSE_MAX, Django's CONN_MAX_AGE),
    and a thread's connections are not closed when the thread ends: they stayed open until the garbage collector
    happened to free them, and one still open when the session ended kept the test database from being dropped
    ("database ... is being accessed by other users")."""
    from celery.contrib.testing.worker import start_worker

    opened: list[BaseDatabaseWrapper] = []

    def record(*, connection: BaseDatabaseWrapper, **_: Any) -> None:
        opened.append(connection)

    connection_created.connect(record, weak=False, dispatch_uid="worker-in-thread-connections")
    try:
        with start_worker(app, pool="solo", perform_ping_check=False, queues=queues, loglevel="WARNING"):
            yield
    finally:
        connection_created.disconnect(dispatch_uid="worker-in-thread-connections")
        _close_left_by_ended_threads(opened)


def _close_left_by_ended_threads(opened: list[BaseDatabaseWrapper]) -> None:
    """Close those of `opened` whose thread has ended (the worker's, once `start_worker` has joined it): a thread
    still running, the test's own included, keeps its connections."""
    running = {thread.ident for thread in threading.enumerate()}
    for wrapper in opened:
        if wrapper._thread_ident in running or wrapper.connection is None:
            continue
        wrapper.inc_thread_sharing()  # its thread is gone: nothing else uses it
        try:
            wrapper.close()
        finally:
            wrapper.dec_thread_sharing()
