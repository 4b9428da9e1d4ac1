"""WSGI entry point (gunicorn config.wsgi)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
application = get_wsgi_application()

# Every task registered before a thread answers: the first pushes of a new gthread worker, each importing the task
# modules on its first send (core.tasks), found a module another thread was still importing, and one in a few
# thousand was answered 500 for a task not yet registered (its events stored; bench/load.py, 2026-12-04).
from config.celery import app  # noqa: E402 — after Django is set up

app.loader.import_default_modules()
