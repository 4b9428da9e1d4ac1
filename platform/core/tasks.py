"""Sending tasks: by name, after the transaction commits."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from django.db import connections, transaction
from django.utils import timezone

from core import tenancy

# The queue of what a store in business waits on (see config.celery): short tasks, never behind a backlog.
LIVE_QUEUE = "live"
_IMPORTING_TASKS = threading.Lock()


def fan_out(task: Any, *, work: Callable[[], Iterable[tuple[int, int]]], key: str) -> int:
    """A periodic task's round: `work`, asked platform-wide, lists (tenant id, object id) pairs; `task` is sent once
    per pair, with the tenant's id and the object's id as its argument `key`. Returns how many were sent."""
    with tenancy.platform_wide_scope():
        pairs = list(work())
    for tenant_id, object_id in pairs:
        task.delay(tenant_id=tenant_id, **{key: object_id})
    return len(pairs)


def enqueue_on_commit(task_name: str, *, queue: str | None = None, **kwargs: Any) -> None:
    """Send a task once the current transaction commits, so the worker never looks for rows it cannot see yet.

    Tasks are named ("ingest.process_chunk"), so services and tasks need not import each other. `queue`, when
    given, is the queue to send it to instead of its route's (`config.celery.LIVE_QUEUE` for a live store's work).
    In embedded mode the task runs in-process at that moment.
    """
    transaction.on_commit(lambda: _send(task_name, kwargs, eta=None, queue=queue))


def enqueue_at_on_commit(task_name: str, *, eta: datetime, **kwargs: Any) -> None:
    """Like `enqueue_on_commit`, for a task to run no earlier than `eta` (a Celery eta: the worker holds it).

    In embedded mode, where no worker holds it, a timer thread runs it in-process then.
    """
    transaction.on_commit(lambda: _send(task_name, kwargs, eta=eta))


def _send(task_name: str, kwargs: dict[str, Any], *, eta: datetime | None, queue: str | None = None) -> None:
    from config.celery import app

    if task_name not in app.tasks:
        with _IMPORTING_TASKS:  # one thread at a time: another could find a task module half imported
            app.loader.import_default_modules()
    task = app.tasks[task_name]
    shown: dict[str, Any] = {"kwargsrepr": _kwargs_shown(kwargs)}  # a Celery option its type stubs do not list
    if eta is None and queue is not None:
        task.apply_async(kwargs=kwargs, queue=queue, **shown)
    elif eta is None:
        task.apply_async(kwargs=kwargs, **shown)
    elif app.conf.task_always_eager:
        delay = max((eta - timezone.now()).total_seconds(), 0.0)
        timer = threading.Timer(delay, _run_in_thread, kwargs={"task": task, "kwargs": kwargs})
        timer.daemon = True
        timer.start()
    else:
        task.apply_async(kwargs=kwargs, eta=eta, **shown)


def _kwargs_shown(kwargs: dict[str, Any]) -> str:
    """What a task's message shows of its arguments in logs and monitoring (Celery's `kwargsrepr`): numbers and
    text as they are, anything else by its type. Celery's own (`saferepr` of every argument) walked a live push's
    summary of sessions on the request path: ~9 % of the push's CPU."""
    return repr(
        {
            name: value if value is None or isinstance(value, int | float | str) else f"<{type(value).__name__}>"
            for name, value in kwargs.items()
        }
    )


def _run_in_thread(*, task: Any, kwargs: dict[str, Any]) -> None:
    try:
        task.apply(kwargs=kwargs)
    finally:
        connections.close_all()
