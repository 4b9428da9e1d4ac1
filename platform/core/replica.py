"""Read replicas for the consoles: the `/ops/` and finance dashboards read from `DATABASE_REPLICA_URL` when set.

The consoles' figures are aggregates over many tenants' usage rows, streams and devices — the heaviest reads
of a busy day, and ones that a few seconds of replication lag does not change. Only they are sent to the
replica: their dashboard callbacks run inside `console_reads`, and the router sends the reads made there to the
`replica` alias when one is configured. Everything else (and every write, anywhere) stays on the primary, where
a page must see what it has just written. Without `DATABASE_REPLICA_URL` nothing changes.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from contextvars import ContextVar
from functools import wraps
from typing import Any, ParamSpec, TypeVar

from django.db import DEFAULT_DB_ALIAS, connections

from core.context import set_within

REPLICA = "replica"
_console_reads: ContextVar[bool] = ContextVar("console_reads", default=False)

P = ParamSpec("P")
R = TypeVar("R")


def console_reads() -> AbstractContextManager[None]:
    """Reads inside go to the replica, if there is one."""
    return set_within(_console_reads, True)


def reads_from_replica(function: Callable[P, R]) -> Callable[P, R]:
    """A console's callback, run inside `console_reads`."""

    @wraps(function)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        with console_reads():
            return function(*args, **kwargs)

    return wrapper


class ConsoleReplicaRouter:
    """`DATABASE_ROUTERS`: console reads to the replica; nothing else routed (Django's default alias)."""

    def db_for_read(self, model: Any, **hints: Any) -> str | None:
        return REPLICA if _console_reads.get() and REPLICA in connections.settings else None

    def db_for_write(self, model: Any, **hints: Any) -> str | None:
        return DEFAULT_DB_ALIAS

    def allow_relation(self, first: Any, second: Any, **hints: Any) -> bool | None:
        return True  # the replica holds the primary's rows: an object read from it may be related to one of the primary

    def allow_migrate(self, db: str, app_label: str, **hints: Any) -> bool | None:
        return False if db == REPLICA else None
