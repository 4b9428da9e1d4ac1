"""gunicorn settings for OpenAisle's web processes (`gunicorn -c deploy/gunicorn.conf.py config.wsgi`).

Every value can be changed from the environment, so that one image serves small and large hosts:

    GUNICORN_BIND        0.0.0.0:8000         where to listen (the container's port)
    WEB_CONCURRENCY      2 x cores + 1        worker processes
    GUNICORN_THREADS     4                    threads per worker (gthread); 1 switches to sync workers, one
                                              request at a time each
    GUNICORN_TIMEOUT     300                  seconds a request may take (uploads stream to disk; put a proxy
                                              that buffers request bodies in front for slow clients)
    GUNICORN_MAX_REQUESTS 0                   recycle a worker after this many requests (0: never)
    FORWARDED_ALLOW_IPS  127.0.0.1            proxies whose X-Forwarded-* headers are trusted
    LOG_LEVEL            INFO

Threads: a live push waits on PostgreSQL (its COPY, its commit) for much of its time; a sync worker holding it
answers nothing else meanwhile, so an entry check arriving behind a few pushes queued for as long as they took.
With threads the worker answers the gate while another thread waits on the database (bench/load.py measures
both; deploy/README.md has the figures). Each thread holds its own database connection (CONN_MAX_AGE): a web
container holds up to WEB_CONCURRENCY x GUNICORN_THREADS of them.

Recycling: off by default. A recycled worker imports the application again (about a second of CPU) at the
moment the host is busiest; at 200 requests/s, recycling every 2,000 requests made every endpoint's p99 (the gate's
and /healthz's alike) 910 ms against 230-310 ms without (bench/load.py, deploy/README.md). Set it only if a
worker's memory is seen to grow.

Logs: gunicorn's own messages go through the same JSON (or console) formatter as the application's
(platform/core/logs.py); there is no separate access log, because the application logs one line per
request with its request id, tenant, status and duration.

Metrics: with PROMETHEUS_MULTIPROC_DIR set (the image sets it), every worker process writes its counts
to files there and /metrics adds them up; the directory is created here and must start empty (the
compose file mounts a tmpfs); a worker that exits is marked dead.
"""

from __future__ import annotations

import multiprocessing
import os
from typing import Any

from gunicorn.glogging import Logger

bind = os.environ.get("GUNICORN_BIND", "0.0.0.0:8000")  # inside the container; the compose file publishes it
workers = int(os.environ.get("WEB_CONCURRENCY", multiprocessing.cpu_count() * 2 + 1))
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
worker_class = "gthread" if threads > 1 else "sync"
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "300"))
graceful_timeout = 30
keepalive = 5
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", "0"))
max_requests_jitter = max_requests // 10
preload_app = False  # each worker imports the app itself: its metrics files are its own
# Heartbeat files in memory, not on the container's disk.
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None  # noqa: S108
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
proxy_allow_ips = forwarded_allow_ips


class _WithoutAccessLog(Logger):
    """gunicorn's logger without its access log, which the application's one line per request replaces: with
    `logconfig_dict` set, gunicorn built every request's access line (its atoms and record) for a logger that wrote
    nowhere, ~9 % of the web process's CPU for a `/healthz`."""

    def access(self, resp: Any, req: Any, environ: Any, request_time: Any) -> None:
        return None


logger_class = _WithoutAccessLog
accesslog = None
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "INFO").lower()
logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "structured": {"()": "core.logs.formatter", "renderer": os.environ.get("LOG_FORMAT", "json")},
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "structured"}},
    "loggers": {
        "gunicorn.error": {"handlers": ["console"], "level": loglevel.upper(), "propagate": False},
    },
}


def on_starting(server: Any) -> None:
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if directory:
        os.makedirs(directory, exist_ok=True)


def child_exit(server: Any, worker: Any) -> None:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
