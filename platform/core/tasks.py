"""Sending tasks: by name, after the transaction commits."""

from __future__ import annotations

from typing import Any

from django.db import transaction


def enqueue_on_commit(task_name: str, **kwargs: Any) -> None:
    """Send a task once the current transaction commits, so the worker never looks for rows it cannot see yet.

    Tasks are named ("ingest.process_chunk"), so services and tasks need not import each other.
    In embedded mode the task runs in-process at that moment.
    """
    from config.celery import app

    def send() -> None:
        if task_name not in app.tasks:
            app.loader.import_default_modules()
        app.tasks[task_name].apply_async(kwargs=kwargs)

    transaction.on_commit(send)
