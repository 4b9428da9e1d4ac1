"""What the benchmarks that run servers and workers share: free ports, CPU readings from /proc, a clean broker."""

from __future__ import annotations

import contextlib
import os
import socket
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
ROOT = Path(__file__).resolve().parents[1]


def start_django() -> None:
    """Django set up on the PostgreSQL database of DATABASE_URL (created if missing, migrated) with the broker of
    REDIS_URL: what the benchmarks that run real workers need. Exits with a message without them."""
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://", "pgsql://")):
        sys.exit("This benchmark needs PostgreSQL and real workers: set DATABASE_URL=postgres://... and REDIS_URL.")
    if not (os.environ.get("REDIS_URL") or os.environ.get("CELERY_BROKER_URL")):
        sys.exit("This benchmark needs a broker for the workers: set REDIS_URL=redis://...")
    import psycopg2
    from psycopg2 import sql

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    connection = psycopg2.connect(urlunsplit(parts._replace(scheme="postgresql", path="/postgres")))
    connection.autocommit = True
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name])
            if cursor.fetchone() is None:
                cursor.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    finally:
        connection.close()
    sys.path[:0] = [str(ROOT), str(ROOT / "platform")]
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", interactive=False, verbosity=0)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    """User + system CPU of one live process (itself, not its children)."""
    return _stat_cpu_seconds(pid, user_field=11)


def reaped_cpu_seconds(pid: int) -> float:
    """User + system CPU of the children `pid` has waited for (ended ones: a gunicorn worker recycled)."""
    return _stat_cpu_seconds(pid, user_field=13)


def _stat_cpu_seconds(pid: int, *, user_field: int) -> float:
    """The user CPU at `user_field` of /proc/<pid>/stat (counted after the command's name) plus the system CPU next
    to it, in seconds; 0 for a process gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[user_field]) + int(fields[user_field + 1])) / CLK_TCK


def children(pid: int) -> list[int]:
    """Every descendant of `pid`, by walking /proc."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError):
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                parents.setdefault(parent, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def postgres_cpu_seconds() -> float:
    """CPU of the local PostgreSQL server: live processes plus what the postmaster reaped (all databases)."""
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            raw = (entry / "stat").read_text()
        except OSError:
            continue
        if not raw[raw.index("(") + 1 : raw.rindex(")")].startswith("postgres"):
            continue
        fields = raw.rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12]) + int(fields[13]) + int(fields[14])) / CLK_TCK
    return total


def _machine_cpu_ticks() -> list[int]:
    """The whole machine's CPU time by kind (/proc/stat: user, nice, system, idle, iowait, irq, softirq, steal)."""
    return [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:9]]


def machine_busy_seconds() -> float:
    user, nice, system, _idle, _iowait, irq, softirq, steal = _machine_cpu_ticks()
    return (user + nice + system + irq + softirq + steal) / CLK_TCK


def machine_stolen_seconds() -> float:
    """CPU time the hypervisor gave to other guests while this machine's processes wanted it (steal)."""
    return _machine_cpu_ticks()[7] / CLK_TCK


def checkpoint() -> None:
    """Write out what earlier work left in the WAL, so that the timing that follows does not pay for it."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("CHECKPOINT")


def forget_queued_tasks() -> None:
    """Empty the broker of tasks an earlier run left, queued or unacknowledged."""
    from django.conf import settings

    from config.celery import app

    app.control.purge()
    if settings.CELERY_BROKER_URL.startswith(("redis://", "rediss://")):
        import redis

        client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
        client.delete("unacked", "unacked_index", "unacked_mutex")
        client.close()


def end_other_backends() -> int:
    """End every other session on this benchmark's database (its own, by the rules above); how many there were.

    A worker stopped cold (SIGQUIT) does not end the statement its PostgreSQL backend runs: the backend goes on until
    it next answers the worker. One UPDATE of a backlog's visits ran on for five minutes after bench/load.py ended,
    a core's worth of CPU at the idle class (which, in PostgreSQL's own autogroup, still took its share of the
    cores) into the next run's measurement, and holding the locks its cleaning waits for.
    """
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        return int(cursor.fetchone()[0])


@contextlib.contextmanager
def idle_cgroup(name: str) -> Iterator[Path | None]:
    """A cgroup of `name` with `cpu.idle` 1 for the run (cgroup v2, or v1's cpu controller), removed after it (what
    is still in it back to the parent); None where this host has none or this process may not make one."""
    unified = Path("/sys/fs/cgroup")
    parent = unified if (unified / "cgroup.controllers").exists() else unified / "cpu"
    cgroup = parent / name
    try:
        cgroup.mkdir(exist_ok=True)
        (cgroup / "cpu.idle").write_text("1")
    except OSError:
        yield None
        return
    try:
        yield cgroup
    finally:
        for pid in (cgroup / "cgroup.procs").read_text().split():
            with contextlib.suppress(OSError):
                (parent / "cgroup.procs").write_text(pid)
        with contextlib.suppress(OSError):
            cgroup.rmdir()
