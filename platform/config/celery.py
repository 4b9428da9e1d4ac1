"""The Celery application: JSON only, late acks, one task at a time per worker process.

Queues: `live` (what a store in business waits on: finishing its live pushes, refreshing the visits they
touch, warnings and webhook deliveries — short tasks that a backlog of uploads never holds up), `ingest`
(event streams), `visits` (carts and settling), `payments` (Stripe), `default` (everything else). Routing is
in settings; a live push's tasks name the `live` queue when they are sent.
"""

import os
from typing import Any

from celery import Celery
from celery.signals import celeryd_init, task_postrun, task_prerun
from kombu import Exchange, Queue

from core.tasks import LIVE_QUEUE

QUEUES = (LIVE_QUEUE, "ingest", "visits", "payments", "default")

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("openaisle")
app.config_from_object("django.conf:settings", namespace="CELERY")
# Each queue has its own exchange and routing key: a queue declared by name alone inherits the
# default routing key, and every queue would then receive a copy of every message.
app.conf.task_queues = [Queue(name, Exchange(name, type="direct"), routing_key=name) for name in QUEUES]
app.autodiscover_tasks()

# Database connections live as Django's own settings say (CONN_MAX_AGE, CONN_HEALTH_CHECKS), not one per
# task: Celery's Django fixup otherwise closes the connection before and after every task, and each
# chunk of an upload paid for a new PostgreSQL backend (cold catalog caches, its staging table made
# again). The fixup then closes connections only once in this many tasks; in between, Django's own check
# runs around every task, as around every web request: a connection past its age, in error or unusable
# is closed and the next query opens a new one.
app.conf["CELERY_DB_REUSE_MAX"] = 1000


def _close_old_connections(*, task: Any = None, **_: Any) -> None:
    """Around a worker's task, not an eager one: that runs inside its caller's request and transaction."""
    if task is None or getattr(task.request, "is_eager", False):
        return
    from django.db import close_old_connections

    close_old_connections()


task_prerun.connect(_close_old_connections, weak=False, dispatch_uid="openaisle-db-prerun")
task_postrun.connect(_close_old_connections, weak=False, dispatch_uid="openaisle-db-postrun")


def _background_priority(**_: Any) -> None:
    """At the start of a `celery worker` process, before its pool forks: its CPU class, and its database backends'
    (core/priority.py). `celeryd_init`: the command's own, not sent for a worker the tests start in-process."""
    from django.conf import settings
    from django.db import connections
    from django.db.backends.signals import connection_created

    from core import priority

    cpu_class = priority.worker_cpu_class_apply(settings.WORKER_CPU_CLASS)
    if settings.WORKER_CPU_CGROUP and cpu_class.startswith("idle/"):
        priority.worker_cpu_cgroup_join(settings.WORKER_CPU_CGROUP)
    if settings.WORKER_DB_BACKEND_PRIORITY:
        connection_created.connect(priority.backend_priority_follow, weak=False, dispatch_uid="openaisle-db-priority")
        connections.close_all()  # one opened already (Django's checks) would keep its backend's priority
    priority.logger.info("worker CPU class %s", cpu_class, extra={"cpu_class": cpu_class})


celeryd_init.connect(_background_priority, weak=False, dispatch_uid="openaisle-worker-priority")
