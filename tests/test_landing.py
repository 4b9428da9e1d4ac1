"""The front door at `/`: who goes where, the formats' documents, and an icon."""

from __future__ import annotations

from django.test import Client


def test_the_landing_page_sends_each_kind_of_person_to_their_site(db: None) -> None:
    response = Client().get("/")
    assert response.status_code == 200
    body = response.content.decode()
    for door, href in (("store-admin", "/admin/"), ("operations", "/ops/"), ("api", "/api/v1/docs/")):
        assert f'id="door-{door}"' in body and f'href="{href}"' in body
    for name in ("event-stream", "layout", "catalog", "api"):
        assert f'href="/docs/{name}.md"' in body
    assert 'rel="icon"' in body


def test_every_listed_document_opens_as_text(db: None) -> None:
    client = Client()
    response = client.get("/docs/event-stream.md")
    assert response.status_code == 200 and response["Content-Type"] == "text/plain; charset=utf-8"
    assert b"# The event stream" in b"".join(response.streaming_content)


def test_a_document_not_listed_is_not_found(db: None) -> None:
    client = Client()
    assert client.get("/docs/README.md").status_code == 404
    assert client.get("/docs/..%2Fpyproject.md").status_code == 404


def test_the_favicon_is_served(db: None) -> None:
    client = Client()
    response = client.get("/favicon.ico")
    assert response.status_code == 302
    icon = client.get(response["Location"])
    assert icon.status_code == 200 and b"<svg" in b"".join(icon.streaming_content)
