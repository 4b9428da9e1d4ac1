"""Store staff upload events in the admin and follow them: progress, counts, rejected lines as CSV."""

from __future__ import annotations

import csv
import io

import pytest
from django.contrib.auth.models import User
from django.core.files.uploadedfile import SimpleUploadedFile

from conftest import PASSWORD, logged_in
from ingest.models import EventStream
from ingest.tests.conftest import day_of_events, eventually, ndjson
from stores.models import Store

pytestmark = pytest.mark.usefixtures("celery_worker")


def _file(body: bytes) -> SimpleUploadedFile:
    return SimpleUploadedFile("day.ndjson", body, content_type="application/x-ndjson")


def test_manager_uploads_a_file_and_downloads_its_rejections(manager_a: User, store_a: Store) -> None:
    client = logged_in(manager_a)
    page = client.get("/admin/ingest/eventstream/upload/")
    assert page.status_code == 200
    events = day_of_events(store_a, visits=3)
    pick = next(event for event in events if event["type"] == "item.picked")
    attacks = [b'=HYPERLINK("http://evil.example","x")', b"+cmd|' /C calc'!A0", b"@SUM(1+1)*cmd|' /C calc'!A0"]
    body = ndjson([*events, b"{broken", {**pick, "id": "zz", "bin": "NOPE"}, *attacks])
    response = client.post("/admin/ingest/eventstream/upload/", {"store": store_a.pk, "file": _file(body)})
    stream = EventStream.unscoped.get(store=store_a)
    assert response["Location"] == f"/admin/ingest/eventstream/{stream.pk}/change/"
    eventually(lambda: client.get(f"/admin/ingest/eventstream/{stream.pk}/progress/").json()["finished"])
    progress = client.get(f"/admin/ingest/eventstream/{stream.pk}/progress/").json()
    assert (progress["lines"], progress["accepted"], progress["rejected"]) == (len(events) + 5, len(events), 5)
    detail = client.get(response["Location"]).content.decode()
    assert "Download rejected lines (CSV)" in detail
    download = client.get(f"/admin/ingest/eventstream/{stream.pk}/rejections.csv")
    rows = list(csv.reader(io.StringIO(b"".join(download.streaming_content).decode())))
    assert rows[0] == ["line", "event_id", "reason", "raw"]
    assert [row[0] for row in rows[1:]] == [str(len(events) + n) for n in range(1, 6)]
    assert rows[1][2].startswith("not valid JSON")
    # The raw lines a spreadsheet would run as formulas are written with a leading ' (issue 16, finding 8).
    assert [row[3] for row in rows[3:]] == ["'" + attack.decode() for attack in attacks]


def test_upload_needs_a_file_and_a_store_of_ones_own(manager_a: User, store_a: Store, store_b: Store) -> None:
    client = logged_in(manager_a)
    missing = client.post("/admin/ingest/eventstream/upload/", {"store": store_a.pk})
    assert missing.status_code == 200
    theirs = client.post("/admin/ingest/eventstream/upload/", {"store": store_b.pk, "file": _file(b"{}\n")})
    assert theirs.status_code == 200
    assert "Select a valid choice" in theirs.content.decode()
    assert not EventStream.unscoped.exists()


def test_another_tenants_stream_is_not_shown(manager_a: User, api_b, store_b: Store) -> None:
    from ingest.tests.conftest import upload

    stream_id = upload(api_b, store_b.code, ndjson(day_of_events(store_b, visits=1))).json()["id"]
    client = logged_in(manager_a)
    assert client.get(f"/admin/ingest/eventstream/{stream_id}/progress/").status_code == 404
    assert client.get(f"/admin/ingest/eventstream/{stream_id}/rejections.csv").status_code == 404
    assert f"stream {stream_id} (" not in client.get("/admin/ingest/eventstream/").content.decode()
    assert f"stream {stream_id} (" in _login_operator_view(stream_id)
    assert client.get(f"/admin/ingest/eventstream/{stream_id}/change/", follow=True).redirect_chain


def _login_operator_view(stream_id: int) -> str:
    operator = User.objects.create_user("ops@x.test", password=PASSWORD, is_staff=True, is_superuser=True)
    return logged_in(operator).get("/ops/ingest/eventstream/").content.decode()


def test_a_viewer_cannot_upload(viewer_a: User, store_a: Store) -> None:
    client = logged_in(viewer_a)
    response = client.post("/admin/ingest/eventstream/upload/", {"store": store_a.pk, "file": _file(b"{}\n")})
    assert response.status_code in (302, 403)
    assert not EventStream.unscoped.exists()


def test_operators_see_every_tenants_streams(operator: User, api_a, api_b, store_a: Store, store_b: Store) -> None:
    from ingest.tests.conftest import upload

    upload(api_a, store_a.code, b"{}\n")
    upload(api_b, store_b.code, b"{}\n")
    body = logged_in(operator).get("/ops/ingest/eventstream/").content.decode()
    assert "Alpha Markets" in body
    assert "Bravo Foods" in body


def test_the_upload_page_offers_the_format_and_example_events_that_are_accepted(
    manager_a: User, store_a: Store, store_b: Store
) -> None:
    client = logged_in(manager_a)
    page = client.get("/admin/ingest/eventstream/upload/").content.decode()
    example_url = f"/admin/ingest/eventstream/example/{store_a.pk}.ndjson"
    assert 'href="/docs/event-stream.md"' in page and 'href="/api/v1/schema/event-stream.json"' in page
    assert example_url in page
    example = client.get(example_url)
    assert example["Content-Disposition"] == f'attachment; filename="{store_a.code}-events-example.ndjson"'
    lines = example.content.splitlines()
    response = client.post("/admin/ingest/eventstream/upload/", {"store": store_a.pk, "file": _file(example.content)})
    stream = EventStream.unscoped.get(store=store_a)
    assert response["Location"] == f"/admin/ingest/eventstream/{stream.pk}/change/"
    eventually(lambda: client.get(f"/admin/ingest/eventstream/{stream.pk}/progress/").json()["finished"])
    progress = client.get(f"/admin/ingest/eventstream/{stream.pk}/progress/").json()
    assert (progress["lines"], progress["accepted"], progress["rejected"]) == (len(lines), len(lines), 0)
    assert client.get(f"/admin/ingest/eventstream/example/{store_b.pk}.ndjson").status_code == 404
