"""JSON parsing with orjson, with a size limit answered by 413 and a depth limit answered by 400."""

from __future__ import annotations

from collections.abc import Mapping
from typing import IO, Any

from django.conf import settings
from rest_framework.exceptions import ParseError
from rest_framework.parsers import BaseParser

from core import bounded_json
from core.api.errors import PayloadTooLarge


class OrjsonParser(BaseParser):
    media_type = "application/json"

    def parse(
        self, stream: IO[bytes] | None, media_type: str | None = None, parser_context: Mapping[str, Any] | None = None
    ) -> Any:
        if stream is None:
            raise ParseError("The request body is empty; a JSON document was expected.")
        limit = settings.API_MAX_JSON_BYTES
        body = stream.read(limit + 1)
        if len(body) > limit:
            raise PayloadTooLarge(f"The JSON body is larger than {limit} bytes.")
        try:
            return bounded_json.loads(body, what="The JSON body")
        except bounded_json.JSONRefused as error:
            raise ParseError(f"{error.reason}.") from error
