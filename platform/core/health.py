"""Liveness (`/healthz`) and readiness (`/readyz`: the database, the broker and the object store answer) probes."""

from __future__ import annotations

import time

from django.conf import settings
from django.core.files.storage import default_storage
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


def _check_database() -> dict[str, object]:
    started = time.perf_counter()
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as error:  # noqa: BLE001 — any failure means "not ready"; the reason is reported
        return {"ok": False, "error": type(error).__name__}
    return {"ok": True, "vendor": connection.vendor, "ms": round((time.perf_counter() - started) * 1000, 1)}


def _check_broker() -> dict[str, object]:
    if settings.CELERY_TASK_ALWAYS_EAGER:
        return {"ok": True, "mode": "embedded (tasks run in-process)"}
    from config.celery import app

    started = time.perf_counter()
    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
    except Exception as error:  # noqa: BLE001 — any failure means "not ready"; the reason is reported
        return {"ok": False, "error": type(error).__name__}
    return {"ok": True, "ms": round((time.perf_counter() - started) * 1000, 1)}


def _check_object_store() -> dict[str, object]:
    """With S3_BUCKET, the bucket answers (one HEAD, with a client of its own that gives up within seconds: the
    storage's own retries for a minute); on the local disk there is nothing to reach."""
    bucket = getattr(default_storage, "bucket", None)
    if bucket is None:
        return {"ok": True, "mode": "local disk (MEDIA_ROOT)"}
    import boto3
    from botocore.config import Config

    storage = default_storage
    started = time.perf_counter()
    try:
        client = boto3.session.Session().client(
            "s3",
            endpoint_url=getattr(storage, "endpoint_url", None),
            region_name=getattr(storage, "region_name", None),
            aws_access_key_id=getattr(storage, "access_key", None),
            aws_secret_access_key=getattr(storage, "secret_key", None),
            config=Config(connect_timeout=2, read_timeout=2, retries={"max_attempts": 1}),
        )
        client.head_bucket(Bucket=bucket.name)
    except Exception as error:  # noqa: BLE001 — any failure means "not ready"; the reason is reported
        return {"ok": False, "error": type(error).__name__}
    return {"ok": True, "ms": round((time.perf_counter() - started) * 1000, 1)}


@never_cache
@require_GET
def readyz(request: HttpRequest) -> JsonResponse:
    checks = {"database": _check_database(), "broker": _check_broker(), "object_store": _check_object_store()}
    ready = all(check["ok"] for check in checks.values())
    return JsonResponse({"status": "ok" if ready else "unavailable", "checks": checks}, status=200 if ready else 503)
