"""The front door at `/`: who goes where (store admin, operations, the API and its formats), and the
repository's own documents under `/docs/`, readable in a browser."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.templatetags.static import static

DOCS_DIR = Path(settings.PROJECT_ROOT) / "docs"
# The documents people are sent to, in the order the landing page lists them.
DOCS = {
    "api": "The licensee API (v1, v1.1): keys, errors, every endpoint",
    "event-stream": "The event stream: the NDJSON a store sends, event by event",
    "layout": "The layout document: floor, fixtures, bins, devices",
    "catalog": "The catalog row: products, prices, taxes, weights",
    "visits": "How a visit is decided: carts, review, charging",
    "stock": "Shelf stock: units on every bin",
    "webhooks": "Webhooks to licensees: events, signatures, retries",
    "architecture": "Architecture: tenancy, money, idempotency, payments",
}


def landing(request: HttpRequest) -> HttpResponse:
    docs = [(name, title) for name, title in DOCS.items() if (DOCS_DIR / f"{name}.md").is_file()]
    return render(request, "landing.html", {"docs": docs})


def favicon(request: HttpRequest) -> HttpResponseRedirect:
    """Browsers ask for /favicon.ico whatever the page says: the same icon as the pages link."""
    return HttpResponseRedirect(static("core/favicon.svg"))


def doc(request: HttpRequest, name: str) -> FileResponse:
    """One of `DOCS` as text (Markdown reads as plain text); any other name is not found."""
    path = DOCS_DIR / f"{name}.md"
    if name not in DOCS or not path.is_file():
        raise Http404("No such document")
    return FileResponse(path.open("rb"), content_type="text/plain; charset=utf-8")
