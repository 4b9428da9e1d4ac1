"""Probes, configuration modes, and the production checklist."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import connection
from django.test import Client

from config.settings import s3_storage

ROOT = Path(__file__).resolve().parents[1]


def _manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    base = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp")}
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env={**base, **env}, capture_output=True, text=True, check=False
    )


def test_healthz_answers_without_touching_anything(client: Client) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.mark.django_db
def test_readyz_checks_the_database_the_broker_and_the_object_store(client: Client, settings) -> None:
    response = client.get("/readyz")
    body = response.json()
    assert response.status_code == 200, body
    assert body["checks"]["database"]["ok"] is True
    assert body["checks"]["database"]["vendor"] == connection.vendor
    assert body["checks"]["broker"]["ok"] is True
    assert body["checks"]["object_store"]["ok"] is True
    assert ("ms" in body["checks"]["object_store"]) == bool(settings.S3_BUCKET)  # a HEAD of the bucket, or the disk


@pytest.mark.django_db
def test_readyz_reports_an_unreachable_object_store(client: Client, settings) -> None:
    nowhere = s3_storage(bucket="openaisle", endpoint_url="http://127.0.0.1:1", region="us-east-1", key="k", secret="s")
    settings.STORAGES = {**settings.STORAGES, "default": nowhere}
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["object_store"] == {"ok": False, "error": "EndpointConnectionError"}
    assert response.json()["checks"]["database"]["ok"] is True


@pytest.mark.django_db
def test_readyz_reports_an_unreachable_broker(client: Client, settings) -> None:
    from config.celery import app

    settings.CELERY_TASK_ALWAYS_EAGER = False
    original = app.conf.broker_url
    app.conf.broker_url = "redis://127.0.0.1:1/0"
    try:
        response = client.get("/readyz")
    finally:
        app.conf.broker_url = original
    assert response.status_code == 503
    assert response.json()["checks"]["broker"]["ok"] is False


def test_no_variables_means_embedded_mode() -> None:
    code = (
        "from django.conf import settings as s;"
        "print(s.DATABASES['default']['ENGINE'], s.CELERY_TASK_ALWAYS_EAGER, s.CACHES['default']['BACKEND'], s.DEBUG)"
    )
    result = _manage("shell", "--no-imports", "-c", code, env={})
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [
        "django.db.backends.sqlite3",
        "True",
        "django.core.cache.backends.locmem.LocMemCache",
        "False",
    ]


def test_service_variables_switch_to_postgresql_and_redis() -> None:
    code = "from django.conf import settings as s; print(s.DATABASES['default']['ENGINE'], s.CELERY_TASK_ALWAYS_EAGER)"
    env = {"DATABASE_URL": "postgres://u@db.example:5432/x", "REDIS_URL": "redis://cache.example:6379/0"}
    result = _manage("shell", "--no-imports", "-c", code, env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["django.db.backends.postgresql", "False"]


PRODUCTION = {
    "HTTPS": "true",
    "SECRET_KEY": "a-real-production-secret-key-with-plenty-of-entropy-0123456789-!@#$",
    "ALLOWED_HOSTS": "openaisle.example.com",
    "DATABASE_URL": "postgres://u@db.example:5432/x",
    "REDIS_URL": "redis://cache.example:6379/0",
    "STRIPE_SECRET_KEY": "sk_live_the-operators-own-stripe-key-7b1f",
    "STRIPE_WEBHOOK_SECRET": "whsec_the-operators-own-webhook-secret-2c9e",
}


def test_check_deploy_is_clean_with_production_variables() -> None:
    result = _manage("check", "--deploy", "--fail-level", "WARNING", env=PRODUCTION)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_production_refuses_to_start_without_a_secret_key() -> None:
    env = {k: v for k, v in PRODUCTION.items() if k != "SECRET_KEY"}
    result = _manage("check", env=env)
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr


def test_celery_is_configured_for_real_use() -> None:
    from config.celery import QUEUES, app

    assert app.conf.task_serializer == "json" and app.conf.accept_content == ["json"]
    assert app.conf.task_acks_late is True
    assert app.conf.worker_prefetch_multiplier == 1
    assert app.conf.task_time_limit and app.conf.task_soft_time_limit < app.conf.task_time_limit
    assert {q.name for q in app.conf.task_queues} == set(QUEUES) == {"live", "ingest", "visits", "payments", "default"}
