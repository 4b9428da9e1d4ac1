"""The Celery application: JSON only, late acks, one task at a time per worker process.

Queues: `ingest` (event streams), `visits` (carts and settling), `payments`
(Stripe), `default` (everything else). Routing is in settings.
"""

import os

from celery import Celery
from kombu import Exchange, Queue

QUEUES = ("ingest", "visits", "payments", "default")

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("openaisle")
app.config_from_object("django.conf:settings", namespace="CELERY")
# Each queue has its own exchange and routing key: a queue declared by name alone inherits the
# default routing key, and every queue would then receive a copy of every message.
app.conf.task_queues = [Queue(name, Exchange(name, type="direct"), routing_key=name) for name in QUEUES]
app.autodiscover_tasks()
