"""Background work at the lowest CPU class, so that the web processes answer first on a shared host.

A gate's entry check and a store's live push are answered by the web processes while the Celery workers settle a
backlog on the same cores. Niceness alone did not keep the web ahead (bench/load.py, 2026-12-04): a worker at
niceness 10 still has a tenth of a web process's weight, and the PostgreSQL backends doing the workers' queries
ran at niceness 0, as much the web's equals as the web's own backends, so even `/healthz` waited ~40 ms for a
core at 50 requests/s.

`WORKER_CPU_CLASS` (settings) says what a worker does at start (`worker_cpu_class_apply`, config/celery.py):

    idle     SCHED_IDLE: the worker runs only on CPU time nothing else wants (the default; one host)
    normal   the scheduling class and niceness the worker was started with (deploy/celery-worker.sh: CELERY_NICE)

and, either way, the PostgreSQL backend of each of the worker's connections is given the worker's own class and
niceness (`backend_priority_follow`, on `connection_created`) when the database runs on the same host and this
process may change it (root or CAP_SYS_NICE; PostgreSQL in another container or host: nothing is done, logged
once). The backend ends with its connection, so no other client inherits the class. Behind a pooler on the same
host (PgBouncer), a server connection serves many clients: set `WORKER_DB_BACKEND_PRIORITY=false` there.

`WORKER_CPU_CGROUP`, for an idle worker: a cgroup directory whose `cpu.idle` is 1 (cgroup v2, or v1's cpu
controller; systemd: a slice with `CPUWeight=idle`). The worker joins it at start (`worker_cpu_cgroup_join`)
and puts its backends there too. Per-process SCHED_IDLE ranks a process only within its own group: with
`kernel.sched_autogroup_enabled` each session is one, and PostgreSQL's backends share the postmaster's, so
an idle backend still took the web's backends' share of the cores. An idle cgroup is idle against every
other group (bench/load.py measures both).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

CPU_CLASSES = ("idle", "normal")
_refused_logged = False
_worker_cgroup: Path | None = None  # the idle cgroup this worker joined, where its backends go too


def worker_cpu_class_apply(cpu_class: str) -> str:
    """Put this process (its calling thread, and the threads and processes it starts from there) in `cpu_class`;
    the class it runs in, as `cpu_class_of`."""
    if cpu_class not in CPU_CLASSES:
        raise ValueError(f"WORKER_CPU_CLASS is {cpu_class!r}; it must be one of {', '.join(CPU_CLASSES)}")
    if cpu_class == "idle" and hasattr(os, "SCHED_IDLE"):
        try:
            os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
        except OSError as refused:  # a container whose seccomp profile refuses it: the niceness still holds
            logger.warning("the idle CPU class was refused: %s", refused, extra={"cpu_class": cpu_class})
    return cpu_class_of(0)


def worker_cpu_cgroup_join(directory: str) -> bool:
    """Move this process into the cgroup `directory` (whose `cpu.idle` must be 1), and its backends from then on;
    whether it could. Refused (logged): a cgroup that is missing, not idle, or not this process's to join."""
    global _worker_cgroup
    cgroup = Path(directory)
    try:
        if (cgroup / "cpu.idle").read_text().strip() != "1":
            raise ValueError(f"{cgroup} is not an idle cgroup (cpu.idle is not 1)")
        _cgroup_move(cgroup, os.getpid())
    except (OSError, ValueError) as refused:
        logger.warning("the worker stays in its cgroup: %s", refused, extra={"cgroup": directory})
        return False
    _worker_cgroup = cgroup
    return True


def cgroup_of(pid: int) -> str:
    """The cgroup of process `pid` that decides its CPU share: v1's cpu controller's, else v2's (e.g. `/idle`)."""
    paths = dict(line.split(":", 2)[1:] for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines())
    controllers = {name: path for names, path in paths.items() for name in names.split(",")}
    return controllers.get("cpu", paths.get("", "/"))


def _cgroup_move(cgroup: Path, pid: int) -> None:
    (cgroup / "cgroup.procs").write_text(str(pid))


def cpu_class_of(pid: int) -> str:
    """`idle` (SCHED_IDLE), `batch` (SCHED_BATCH) or `normal`, then `/<niceness>`: e.g. `idle/10`, `normal/0`. Of
    the process `pid` (its main thread), or with 0 of the calling thread."""
    policy = os.sched_getscheduler(pid)
    name = {getattr(os, "SCHED_IDLE", -1): "idle", getattr(os, "SCHED_BATCH", -1): "batch"}.get(policy, "normal")
    return f"{name}/{os.getpriority(os.PRIO_PROCESS, pid)}"


def backend_priority_follow(*, connection: Any, **_: Any) -> None:
    """`connection_created` in a worker: its PostgreSQL backend takes this process's class and niceness."""
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        backend = int(cursor.fetchone()[0])
    try:
        _give_own_priority(backend)
    except (OSError, ValueError) as refused:  # not ours to change, or not on this host
        _log_refused_once(backend, refused)


def _give_own_priority(pid: int) -> None:
    # In another PID namespace (PostgreSQL in its own container) the number may name one of ours: only a process
    # that is a PostgreSQL backend is changed.
    if Path(f"/proc/{pid}/comm").read_text().strip() != "postgres":
        raise ProcessLookupError(f"process {pid} is not a PostgreSQL backend on this host")
    niceness = os.getpriority(os.PRIO_PROCESS, 0)
    if os.sched_getscheduler(0) == getattr(os, "SCHED_IDLE", None):
        os.sched_setscheduler(pid, os.SCHED_IDLE, os.sched_param(0))
    if os.getpriority(os.PRIO_PROCESS, pid) < niceness:
        os.setpriority(os.PRIO_PROCESS, pid, niceness)
    if _worker_cgroup is not None:
        _cgroup_move(_worker_cgroup, pid)


def _log_refused_once(pid: int, refused: Exception) -> None:
    global _refused_logged
    if not _refused_logged:
        _refused_logged = True
        logger.info("the worker's PostgreSQL backends keep their priority: %s", refused, extra={"backend_pid": pid})
