"""Request-wide context: a request id, and a clean tenant scope for every request."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, JsonResponse

from core import tenancy

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class RequestIdMiddleware:
    """Takes the caller's X-Request-ID (or makes one), echoes it, and starts the request with no tenant in scope."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        supplied = request.headers.get("X-Request-ID", "")
        request_id = supplied if _REQUEST_ID.match(supplied) else uuid.uuid4().hex
        request.request_id = request_id  # type: ignore[attr-defined]
        with tenancy.no_scope():
            response = self.get_response(request)
        response["X-Request-ID"] = request_id
        return response


class RefuseNulCharactersMiddleware:
    """A NUL character in the address (path or query) is answered 400 at once: PostgreSQL cannot hold one in a
    text value, and every list filter, search box and lookup that passed it to a query was a 500."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        query = request.GET
        if "\x00" in request.path or any("\x00" in key or "\x00" in "".join(query.getlist(key)) for key in query):
            message = "The address contains a NUL character (%00), which no page or API call accepts."
            if request.path.startswith("/api/"):  # the API's error body (core.api.errors imports DRF: not here)
                return JsonResponse({"error": {"code": "invalid", "message": message, "details": None}}, status=400)
            return HttpResponseBadRequest(message, content_type="text/plain; charset=utf-8")
        return self.get_response(request)
