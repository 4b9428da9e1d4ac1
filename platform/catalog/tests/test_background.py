"""Large imports in the background, through a real Celery worker on the configured broker.

In embedded mode (no broker) `celery_worker` does nothing and the task runs in-process when the upload
commits; the same assertions hold in both modes.
"""

from __future__ import annotations

import time

from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from catalog import tasks
from catalog.models import CatalogImport, Product, ProductPrice
from catalog.sample import sample_catalog_rows
from catalog.tests.helpers import COLA, WATER, csv_bytes
from tenants.models import AuditEntry, Tenant

TIMEOUT_SECONDS = 60


def wait_until_finished(client: APIClient, url: str) -> tuple[dict, list[float]]:
    deadline = time.monotonic() + TIMEOUT_SECONDS
    progress: list[float] = []
    while True:
        response = client.get(url)
        assert response.status_code == 200, response.content
        status = response.json()
        progress.append(status["progress"])
        if status["status"] in ("done", "failed"):
            return status, progress
        assert time.monotonic() < deadline, f"the import did not finish in {TIMEOUT_SECONDS} s: {status}"
        time.sleep(0.05)


def test_a_background_import_runs_on_a_worker_and_reports_progress(
    celery_worker: object, api_a: APIClient, tenant_a: Tenant, settings
) -> None:
    settings.CATALOG_IMPORT_BACKGROUND_BYTES = 10_000
    data = csv_bytes(sample_catalog_rows(count=2000))
    assert len(data) > settings.CATALOG_IMPORT_BACKGROUND_BYTES
    response = api_a.post("/api/v1/catalog/import", {"file": SimpleUploadedFile("big.csv", data)}, format="multipart")
    assert response.status_code == 202, response.content
    status, progress = wait_until_finished(api_a, response.json()["url"])

    assert status["status"] == "done", status
    assert (status["created"], status["updated"], status["unchanged"], status["errors"]) == (2000, 0, 0, [])
    assert status["rows"] == 2000
    assert status["progress"] == 1.0
    assert progress == sorted(progress), "progress never goes backwards"
    assert Product.unscoped.filter(tenant=tenant_a).count() == 2000
    record = CatalogImport.unscoped.get(pk=response.json()["id"])
    assert record.started_at is not None and record.finished_at is not None
    entry = AuditEntry.unscoped.get(tenant=tenant_a, action="catalog.imported", object_id=str(record.pk))
    assert entry.actor_label.startswith("API key alpha test key")

    # Delivered twice (a worker lost after finishing, say): nothing more happens.
    tasks.catalog_import_run.apply(kwargs={"import_id": record.pk, "tenant_id": tenant_a.pk}).get()
    assert ProductPrice.unscoped.filter(tenant=tenant_a).count() == 2000
    assert AuditEntry.unscoped.filter(tenant=tenant_a, action="catalog.imported").count() == 1


def test_a_background_import_with_bad_rows_fails_and_lists_them(
    celery_worker: object, api_a: APIClient, tenant_a: Tenant
) -> None:
    data = csv_bytes([COLA, {**WATER, "price": "1.999"}, {**WATER, "sku": "W2", "currency": "XXX"}])
    response = api_a.post(
        "/api/v1/catalog/import?background=true",
        {"file": SimpleUploadedFile("bad.csv", data)},
        format="multipart",
    )
    assert response.status_code == 202
    status, _ = wait_until_finished(api_a, response.json()["url"])
    assert status["status"] == "failed"
    assert [e["row"] for e in status["errors"]] == [3, 4]
    assert "nothing was imported" in status["message"]
    assert Product.unscoped.filter(tenant=tenant_a).count() == 0


def test_the_task_finds_nothing_in_another_tenants_scope(
    api_a: APIClient, tenant_a: Tenant, tenant_b: Tenant, django_capture_on_commit_callbacks
) -> None:
    with django_capture_on_commit_callbacks(execute=False):  # queued, not sent: the task is run by hand below
        response = api_a.post("/api/v1/catalog/import?background=true", [COLA], format="json")
    import_id = response.json()["id"]
    tasks.catalog_import_run.apply(kwargs={"import_id": import_id, "tenant_id": tenant_b.pk}).get()
    assert CatalogImport.unscoped.get(pk=import_id).status == "queued"
    assert Product.unscoped.count() == 0
    tasks.catalog_import_run.apply(kwargs={"import_id": import_id, "tenant_id": tenant_a.pk}).get()
    assert CatalogImport.unscoped.get(pk=import_id).status == "done"
    assert Product.unscoped.filter(tenant=tenant_a).count() == 1
