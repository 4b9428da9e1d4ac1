"""Uploads and catalog files in object storage (issue 21, part 1): with S3_BUCKET they are kept in an S3-compatible
store — here moto's server on 127.0.0.1 (core.object_store_standin), as localstripe stands in for Stripe — and the
workers read them from there: a stream's chunk by a ranged GET, never by a local path and never the whole file."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from catalog.models import CatalogImport, Product
from catalog.sample import sample_catalog_rows
from catalog.tests.helpers import csv_bytes
from core.object_store_standin import LocalS3
from core.storage import open_range
from ingest.models import Event, EventStream
from ingest.tests.conftest import day_of_events, eventually, ndjson, upload, wait_for_stream
from stores.models import Store
from tenants.models import Tenant

BUCKET = "openaisle-test"


@pytest.fixture(scope="module")
def s3_server() -> Iterator[LocalS3]:
    with LocalS3(bucket=BUCKET) as server:
        yield server


@pytest.fixture
def s3(s3_server: LocalS3, settings: Any, tmp_path: Path) -> Any:
    """The default storage on the S3 stand-in, with an empty bucket; the local media folder empty and watched."""
    client = s3_server.client()
    settings.STORAGES = {**settings.STORAGES, "default": s3_server.storage}
    settings.MEDIA_ROOT = tmp_path
    yield client
    for key in s3_server.objects():
        client.delete_object(Bucket=BUCKET, Key=key)


def test_a_range_is_read_with_one_ranged_get_on_s3_and_from_the_disk_locally(s3: Any, settings: Any) -> None:
    body = bytes(range(256)) * 8192  # 2 MiB
    name = default_storage.save("probe/stream.ndjson", ContentFile(body))
    assert s3.head_object(Bucket=BUCKET, Key=name)["ContentLength"] == len(body)

    with open_range(name, start=1 << 20, end=(1 << 20) + 300) as part:
        part.seek(1 << 20)
        assert part.read(1000) == body[1 << 20 : (1 << 20) + 300]  # what was asked for, nothing more
        with pytest.raises(ValueError, match="starts at byte 1048576"):
            part.seek(0)
    assert not any(Path(settings.MEDIA_ROOT).rglob("*"))


@pytest.mark.usefixtures("celery_worker")
def test_an_upload_is_kept_in_object_storage_and_processed_from_there(
    s3: Any, settings: Any, api_a: APIClient, store_a: Store
) -> None:
    settings.INGEST_CHUNK_BYTES = 4000  # several chunks, each read by its own range
    events = day_of_events(store_a, visits=6)
    plain = upload(api_a, store_a.code, ndjson(events))
    packed = upload(api_a, store_a.code, ndjson(day_of_events(store_a, visits=4, prefix="g")), gz=True)

    done = [wait_for_stream(api_a, answer.json()["id"]) for answer in (plain, packed)]

    assert [stream["status"] for stream in done] == ["done", "done"], done
    assert done[0]["accepted"] == len(events) and done[1]["accepted"] > 0
    assert EventStream.unscoped.get(pk=done[0]["id"]).chunks_total > 1
    assert Event.unscoped.filter(store=store_a).count() == done[0]["accepted"] + done[1]["accepted"]
    kept = [stored["Key"] for stored in s3.list_objects_v2(Bucket=BUCKET).get("Contents", [])]
    assert kept and all(key.startswith(f"event-streams/{store_a.tenant_id}/") for key in kept)
    assert not any(Path(settings.MEDIA_ROOT).rglob("*"))  # nothing on the local disk


@pytest.mark.usefixtures("celery_worker")
def test_a_catalog_file_is_kept_in_object_storage_and_imported_from_there(
    s3: Any, settings: Any, api_a: APIClient, tenant_a: Tenant
) -> None:
    """A large catalog file is imported in the background: the web process keeps it in the bucket, the worker reads
    it from there (no local path), and the bucket keeps it under the tenant (what was imported can be checked)."""
    settings.CATALOG_IMPORT_BACKGROUND_BYTES = 10_000
    data = csv_bytes(sample_catalog_rows(count=300))
    answer = api_a.post("/api/v1/catalog/import", {"file": SimpleUploadedFile("big.csv", data)}, format="multipart")
    assert answer.status_code == 202, answer.content

    eventually(lambda: api_a.get(answer.json()["url"]).json()["status"] in ("done", "failed"), timeout=60)

    assert api_a.get(answer.json()["url"]).json()["status"] == "done"
    assert Product.unscoped.filter(tenant=tenant_a).count() == 300
    record = CatalogImport.unscoped.get(pk=answer.json()["id"])
    kept = [stored["Key"] for stored in s3.list_objects_v2(Bucket=BUCKET).get("Contents", [])]
    assert kept == [record.file.name] and kept[0].startswith(f"catalog-imports/{tenant_a.pk}/")
    assert s3.get_object(Bucket=BUCKET, Key=kept[0])["Body"].read() == data
    with pytest.raises(NotImplementedError):  # an object: there is no local path to read it by
        default_storage.path(record.file.name)
    assert not any(Path(settings.MEDIA_ROOT).rglob("*"))
