"""Workers at the idle CPU class, and the PostgreSQL backends of their connections with them (core/priority.py)."""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.db import connection, connections

from core import priority

postgresql_on_this_host = pytest.mark.skipif(
    connection.vendor != "postgresql" or not hasattr(os, "SCHED_IDLE"), reason="a PostgreSQL backend on this host"
)


def _in_own_thread(work: Callable[[], Any]) -> Any:
    """Run `work` in a thread of its own: Linux keeps a scheduling class and niceness per thread, so what the
    thread gives itself ends with it and the test process keeps its own."""
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["value"] = work()
        except BaseException as error:  # noqa: BLE001 — handed to the test's thread
            outcome["error"] = error

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def _backend_of_new_connection() -> tuple[int, str]:
    """A new connection to the test database, opened as a worker's are: its backend's pid and CPU class."""
    opened = connections.create_connection("default")
    try:
        opened.connect()
        with opened.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            backend = int(cursor.fetchone()[0])
            return backend, priority.cpu_class_of(backend)
    finally:
        opened.close()


def _may_change_others_priority() -> bool:
    return os.geteuid() == 0


def _made_cgroup(*, idle: str) -> Iterator[Path]:
    """A cgroup of this test's own (cgroup v2, or v1's cpu controller) with `cpu.idle` at `idle`; what is left in it
    goes back to the parent afterwards and it is removed."""
    unified = Path("/sys/fs/cgroup")
    parent = unified if (unified / "cgroup.controllers").exists() else unified / "cpu"
    cgroup = parent / f"openaisle-test-{os.getpid()}-{secrets.token_hex(4)}"
    try:
        cgroup.mkdir()
        (cgroup / "cpu.idle").write_text(idle)
    except OSError as refused:
        with contextlib.suppress(OSError):
            cgroup.rmdir()
        pytest.skip(f"no cgroup with cpu.idle can be made here: {refused}")
    try:
        yield cgroup
    finally:
        _cgroup_remove(cgroup, parent=parent)


def _cgroup_remove(cgroup: Path, *, parent: Path) -> None:
    """Move what is left in `cgroup` back to `parent` and remove it. A backend whose connection was just closed
    keeps the cgroup busy until PostgreSQL has reaped it, so removing is tried again for a while."""
    deadline = time.monotonic() + 10
    while True:
        for pid in (cgroup / "cgroup.procs").read_text().split():
            with contextlib.suppress(OSError):  # a backend that has ended since
                (parent / "cgroup.procs").write_text(pid)
        try:
            cgroup.rmdir()
            return
        except OSError as busy:
            if busy.errno != errno.EBUSY or time.monotonic() > deadline:
                raise
        time.sleep(0.05)


@pytest.fixture
def idle_cgroup(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setattr(priority, "_worker_cgroup", None)  # the cgroup the test process joins is forgotten after
    yield from _made_cgroup(idle="1")


@pytest.fixture
def busy_cgroup(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setattr(priority, "_worker_cgroup", None)
    yield from _made_cgroup(idle="0")


@pytest.fixture
def follows_worker() -> Any:
    from django.db.backends.signals import connection_created

    connection_created.connect(priority.backend_priority_follow, dispatch_uid="test-db-priority")
    yield
    connection_created.disconnect(dispatch_uid="test-db-priority")


def test_a_worker_goes_to_the_idle_class_and_stays_there_through_its_threads() -> None:
    def worker() -> tuple[str, str]:
        applied = priority.worker_cpu_class_apply("idle")
        seen_by_a_thread_it_starts = _in_own_thread(lambda: priority.cpu_class_of(0))
        return applied, seen_by_a_thread_it_starts

    applied, inherited = _in_own_thread(worker)
    assert applied.startswith("idle/")
    assert inherited.startswith("idle/")
    assert not priority.cpu_class_of(os.getpid()).startswith("idle/")  # the test process kept its class


def test_normal_leaves_the_class_the_worker_was_started_with() -> None:
    before = priority.cpu_class_of(os.getpid())
    assert _in_own_thread(lambda: priority.worker_cpu_class_apply("normal")) == before


def test_an_unknown_class_is_refused_at_start() -> None:
    with pytest.raises(ValueError, match="WORKER_CPU_CLASS"):
        priority.worker_cpu_class_apply("low")


@postgresql_on_this_host
@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(not _may_change_others_priority(), reason="needs root or CAP_SYS_NICE")
def test_an_idle_workers_connection_gets_an_idle_backend(follows_worker: Any) -> None:
    def worker() -> tuple[int, str]:
        priority.worker_cpu_class_apply("idle")
        os.setpriority(os.PRIO_PROCESS, 0, 10)  # deploy/celery-worker.sh's niceness (this thread's only)
        return _backend_of_new_connection()

    backend, cpu_class = _in_own_thread(worker)
    assert cpu_class == "idle/10"
    with connection.cursor() as cursor:  # the web's connections are left as they are
        cursor.execute("SELECT pg_backend_pid()")
        assert priority.cpu_class_of(int(cursor.fetchone()[0])) == "normal/0"
    assert backend != 0


@postgresql_on_this_host
@pytest.mark.django_db(transaction=True)
def test_a_backend_that_may_not_be_changed_is_left_quietly_and_said_once(
    follows_worker: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def refused(*_: Any) -> None:
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(priority.os, "setpriority", refused)
    monkeypatch.setattr(priority.os, "sched_setscheduler", refused)
    monkeypatch.setattr(priority, "_refused_logged", False)
    caplog.set_level(logging.INFO, logger="core.priority")

    def worker() -> list[str]:
        os.nice(5)  # this thread only: a worker at a niceness its backends should follow
        return [_backend_of_new_connection()[1], _backend_of_new_connection()[1]]

    classes = _in_own_thread(worker)
    assert classes == ["normal/0", "normal/0"]  # connected and answering, backends unchanged
    said = [record for record in caplog.records if "keep their priority" in record.getMessage()]
    assert len(said) == 1


@postgresql_on_this_host
@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(not _may_change_others_priority(), reason="needs root to move processes between cgroups")
def test_an_idle_worker_and_its_new_backends_join_its_idle_cgroup(follows_worker: Any, idle_cgroup: Path) -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        webs_backend = int(cursor.fetchone()[0])
    elsewhere = priority.cgroup_of(webs_backend)

    assert priority.worker_cpu_cgroup_join(str(idle_cgroup))

    assert priority.cgroup_of(os.getpid()) == f"/{idle_cgroup.name}"
    opened = connections.create_connection("default")
    try:
        opened.connect()
        with opened.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            assert priority.cgroup_of(int(cursor.fetchone()[0])) == f"/{idle_cgroup.name}"
    finally:
        opened.close()
    assert priority.cgroup_of(webs_backend) == elsewhere  # a connection opened before is left where it was


def test_a_missing_cgroup_is_refused_and_the_worker_stays_where_it_was(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    monkeypatch.setattr(priority, "_worker_cgroup", None)
    before = priority.cgroup_of(os.getpid())

    assert not priority.worker_cpu_cgroup_join(str(tmp_path / "no-such-cgroup"))

    assert priority.cgroup_of(os.getpid()) == before
    assert priority._worker_cgroup is None
    assert any("stays in its cgroup" in record.getMessage() for record in caplog.records)


@pytest.mark.skipif(not _may_change_others_priority(), reason="needs root to make a cgroup")
def test_a_cgroup_that_is_not_idle_is_refused(busy_cgroup: Path) -> None:
    before = priority.cgroup_of(os.getpid())

    assert not priority.worker_cpu_cgroup_join(str(busy_cgroup))

    assert priority.cgroup_of(os.getpid()) == before
    assert (busy_cgroup / "cgroup.procs").read_text() == ""
