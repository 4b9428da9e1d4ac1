"""The API's error body: `{"error": {"code", "message", "details"}}` (docs/api.md)."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied, RequestDataTooBig, SuspiciousOperation
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views import defaults
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler

from tenants.quotas import QuotaExceeded


class PayloadTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "The request body is larger than this endpoint accepts."
    default_code = "payload_too_large"


class DetailedError(exceptions.APIException):
    """An API error that carries structured `details` for the error body (e.g. every problem of a document)."""

    def __init__(self, message: str, *, details: Any = None, code: str | None = None) -> None:
        super().__init__(message, code)
        self.details = details


class Conflict(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "The request conflicts with the current state of the resource."
    default_code = "conflict"


class QuotaReached(DetailedError):
    status_code = status.HTTP_409_CONFLICT
    default_code = "quota_exceeded"


def error_body(*, code: str, message: str, details: Any = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details}}


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """Turn every API error into the contract's error body."""
    if isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(exc.message_dict if hasattr(exc, "error_dict") else exc.messages)
    elif isinstance(exc, RequestDataTooBig):
        exc = PayloadTooLarge()
    elif isinstance(exc, SuspiciousOperation):
        exc = exceptions.ParseError(str(exc) or "The request could not be read.")
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    elif isinstance(exc, QuotaExceeded):
        exc = QuotaReached(str(exc), details=exc.details, code="quota_exceeded")

    response = exception_handler(exc, context)
    if response is None:
        return None
    assert isinstance(exc, exceptions.APIException)
    response.data = _body_for(exc)
    return response


def _body_for(exc: exceptions.APIException) -> dict[str, Any]:
    if isinstance(exc, exceptions.ValidationError):
        return error_body(code="invalid", message="The request is not valid; see details.", details=exc.detail)
    codes = exc.get_codes()
    code = codes if isinstance(codes, str) else exc.default_code
    details: Any = getattr(exc, "details", None)
    wait = getattr(exc, "wait", None)
    if isinstance(exc, exceptions.Throttled) and wait is not None:
        details = {"retry_after_seconds": int(wait) + 1}
    return error_body(code=str(code), message=str(exc.detail), details=details)


def _is_api(request: HttpRequest) -> bool:
    return request.path.startswith("/api/")


def not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    """404 for any URL: the error body under /api/, Django's page elsewhere."""
    if _is_api(request):
        return JsonResponse(error_body(code="not_found", message="Not found."), status=404)
    return defaults.page_not_found(request, exception)


def server_error(request: HttpRequest) -> HttpResponse:
    if _is_api(request):
        body = error_body(code="server_error", message="Something went wrong on our side; it has been logged.")
        return JsonResponse(body, status=500)
    return defaults.server_error(request)
