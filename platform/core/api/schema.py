"""The error answers in the OpenAPI document: every operation lists the ones it can give, with the error body.

DRF gives some answers to any view (401 without a key, 403 for a suspended tenant, 406, 429, a 400 for a body or
query it cannot read, 413, 415, a 404 for a path that names nothing); views declare their own (409) with
`extend_schema(responses={409: error_response("…")})`. This hook adds the first kind and gives every error
answer the error body's schema (docs/api.md, "Errors").
"""

from __future__ import annotations

import inspect
from typing import Any

from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiResponse

ERROR_BODY = {
    "type": "object",
    "description": "The error body of every API error (docs/api.md).",
    "properties": {
        "error": {
            "type": "object",
            "properties": {
                "code": {"type": "string", "description": "A stable, machine-readable code, e.g. `not_found`."},
                "message": {"type": "string", "description": "What went wrong, for a person."},
                "details": {"nullable": True, "description": "Structured details when there are any."},
            },
            "required": ["code", "message", "details"],
        }
    },
    "required": ["error"],
}
AUTHENTICATED = {
    "401": "No API key, or an unknown or revoked one.",
    "403": "The key's tenant is suspended, or the key may not do this.",
    "429": "Too many calls for this key; `details.retry_after_seconds` says when to try again.",
}
ANY_OPERATION = {"406": "The `Accept` header asks for something other than JSON."}
WITH_INPUT = {"400": "The request is not valid; `details` says what."}
WITH_BODY = {
    "413": "The body is larger than this operation accepts.",
    "415": "The body's content type is not one this operation reads.",
}
WITH_PATH_OR_PAGE = {"404": "Not found (another tenant's objects answer the same), or a page past the last."}


class DocstringSchema(AutoSchema):
    """Each operation is documented by its handler's docstring: the first paragraph is the summary, the others the
    description (each paragraph's lines joined into one, as Markdown reads them). A handler without one: the
    library's own way (the view's docstring as description)."""

    def get_summary(self) -> str | None:
        paragraphs = self._handler_paragraphs()
        return paragraphs[0] if paragraphs else super().get_summary()

    def get_description(self) -> str:  # type: ignore[override] # as AutoSchema has it
        paragraphs = self._handler_paragraphs()
        return "\n\n".join(paragraphs[1:]) if paragraphs else super().get_description()

    def _handler_paragraphs(self) -> list[str]:
        handler = getattr(self.view, self.method.lower(), None)
        doc = inspect.getdoc(handler) if handler is not None else None
        return [" ".join(paragraph.split()) for paragraph in doc.split("\n\n")] if doc else []


def error_response(description: str) -> OpenApiResponse:
    """An error answer of one operation, for `extend_schema(responses={status: …})`; the body is added here."""
    return OpenApiResponse(description=description)


QUOTA_EXCEEDED = error_response(
    "`quota_exceeded`: the account holds its limit of these; `details` has the quota, the limit and the count."
)


def add_error_responses(result: dict[str, Any], **_: Any) -> dict[str, Any]:
    """drf-spectacular postprocessing hook (SPECTACULAR_SETTINGS["POSTPROCESSING_HOOKS"])."""
    result.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR_BODY
    for operations in result.get("paths", {}).values():
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            for status, description in _errors_of(operation).items():
                responses.setdefault(status, {"description": description})
            for status, response in responses.items():
                if int(status) >= 400 and "content" not in response:
                    response["content"] = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    return result


def _errors_of(operation: dict[str, Any]) -> dict[str, str]:
    parameters = operation.get("parameters", [])
    errors = dict(ANY_OPERATION)
    if any(requirement for requirement in operation.get("security", [])):
        errors |= AUTHENTICATED
    if "requestBody" in operation or any(parameter["in"] == "query" for parameter in parameters):
        errors |= WITH_INPUT
    if "requestBody" in operation:
        errors |= WITH_BODY
    if any(parameter["in"] == "path" or parameter["name"] == "page" for parameter in parameters):
        errors |= WITH_PATH_OR_PAGE
    return errors
