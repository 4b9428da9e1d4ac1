#!/bin/sh
# One Celery worker consuming one queue: deploy/celery-worker.sh QUEUE [more celery worker options]
#
# Queues (platform/config/celery.py): live (what a store in business waits on: its live pushes' finishing,
# the refresh of the visits they touch, warnings, webhook deliveries), ingest (event streams), visits (carts,
# settling), payments (Stripe), default (the rest). Run at least one worker per queue — the live queue's own,
# so that a backlog of uploads never holds a live store up (bench/restricted_latency.py); scale by adding
# workers to the queue that falls behind (see deploy/README.md). The Celery settings themselves (JSON only, late
# acks, prefetch 1, time limits, routing, the beat schedule) are the CELERY_* settings in
# platform/config/settings.py; this script sets what differs per worker, from the environment:
#
#   CELERY_POOL                     prefork     prefork (CPU-bound: ingest, visits) or threads (I/O: payments)
#   CELERY_CONCURRENCY              2           processes (or threads) of this worker
#   CELERY_MAX_TASKS_PER_CHILD      10000       recycle a pool process after this many tasks
#   CELERY_MAX_MEMORY_PER_CHILD_KB  512000      ... or once it holds this much memory (KiB)
#   LOG_LEVEL                       INFO
#   METRICS_PORT                    (unset)     serve this worker's Prometheus metrics on that port
#   CELERY_NICE                     10          niceness of the worker (what WORKER_CPU_CLASS=normal keeps)
#   WORKER_CPU_CLASS                idle        idle: the worker, and the PostgreSQL backends of its connections
#                                               when the database is on this host, run only on CPU time the web
#                                               processes leave, so entry checks and pushes are answered at once
#                                               while the workers settle (core/priority.py, bench/load.py);
#                                               normal: niceness alone (the live queue's worker, at 5)
#   WORKER_DB_BACKEND_PRIORITY      true        false behind a pooler on this host (PgBouncer: a backend serves
#                                               the web's queries too)
#   WORKER_CPU_CGROUP               (unset)     an idle worker joins this cgroup (its cpu.idle must be 1, e.g.
#                                               a systemd slice with CPUWeight=idle) and puts its backends there:
#                                               idle against every other group, PostgreSQL's and sessions' too
#
# The node name is celery@<hostname> unless `-n NAME` is given (several workers on one host need
# distinct names, as in deploy/Procfile); the compose file's health check pings celery@$HOSTNAME.
set -eu
queue="${1:?usage: deploy/celery-worker.sh QUEUE [celery worker options]}"
shift
if [ -n "${PROMETHEUS_MULTIPROC_DIR:-}" ]; then
    mkdir -p "$PROMETHEUS_MULTIPROC_DIR"
fi
exec nice -n "${CELERY_NICE:-10}" celery -A config worker \
    --queues "$queue" \
    --pool "${CELERY_POOL:-prefork}" \
    --concurrency "${CELERY_CONCURRENCY:-2}" \
    --max-tasks-per-child "${CELERY_MAX_TASKS_PER_CHILD:-10000}" \
    --max-memory-per-child "${CELERY_MAX_MEMORY_PER_CHILD_KB:-512000}" \
    --loglevel "${LOG_LEVEL:-INFO}" \
    --without-gossip \
    --without-mingle \
    "$@"
