"""The Celery application: JSON only, late acks, one task at a time per worker process.

Queues: `ingest` (event streams), `visits` (carts and settling), `payments`
(Stripe), `default` (everything else). Routing is in settings.
"""

import os

from celery import Celery
from kombu import Queue

QUEUES = ("ingest", "visits", "payments", "default")

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("openaisle")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.task_queues = [Queue(name) for name in QUEUES]
app.autodiscover_tasks()
