"""JSON from outside, read with bounds on size and depth, and JSON read back from the database without trusting it.

Every door through which the platform reads JSON it did not write (API bodies, event lines, catalog files, layout
documents, Stripe's webhooks) reads it here or checks it with `check_depth`, so that one document can neither
exhaust memory nor reach a recursion limit further on: orjson refuses to *write* more than 254 levels, Python's
`json` to read about 1,000, and both raise errors no caller expects.

`BoundedJSONField` is a JSONField whose values are read back with orjson (three times faster than `json`) and,
should a stored value be unreadable (it was stored before these limits, or by hand), come back as an
`UnreadableJSON` — an empty mapping carrying the reason — instead of raising in every reader of the row.
"""

from __future__ import annotations

import json
from typing import Any

import orjson
from django.db import models
from django.db.models.fields.json import KeyTransform

MAX_DEPTH = 64  # any JSON document: the deepest the platform's own contracts go is 4


class JSONRefused(ValueError):
    """A JSON document the platform will not read: too large, too deep or not JSON; `reason` says which."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def nesting_depth(value: Any, *, limit: int) -> int:
    """How deeply arrays and objects nest in `value` (a scalar is 0, `[]` is 1), counted up to `limit + 1`.

    Iterative, so that it cannot itself hit the recursion limit, and stops as soon as the limit is passed.
    """
    deepest = 0
    pending: list[tuple[Any, int]] = [(value, 1)]
    while pending:
        container, depth = pending.pop()
        if not isinstance(container, dict | list):
            continue
        if depth > deepest:
            deepest = depth
            if deepest > limit:
                return deepest
        children = container.values() if isinstance(container, dict) else container
        pending.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return deepest


def check_depth(value: Any, *, limit: int = MAX_DEPTH, what: str = "The JSON document") -> None:
    """Raise JSONRefused when `value` nests arrays and objects more than `limit` levels deep."""
    if nesting_depth(value, limit=limit) > limit:
        raise JSONRefused(f"{what} nests arrays and objects more than {limit} levels deep")


def loads(
    data: bytes | bytearray | memoryview | str,
    *,
    max_bytes: int | None = None,
    max_depth: int = MAX_DEPTH,
    what: str = "The JSON document",
) -> Any:
    """Parse JSON from outside within `max_bytes` and `max_depth`; JSONRefused says why not."""
    if max_bytes is not None and len(data) > max_bytes:
        raise JSONRefused(f"{what} is {len(data):,} bytes; at most {max_bytes:,} are accepted")
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError as error:
        if "depth" in str(error).lower() or "recursion" in str(error).lower():
            raise JSONRefused(f"{what} nests arrays and objects more than {max_depth} levels deep") from error
        raise JSONRefused(f"{what} is not valid JSON: {error}") from error
    check_depth(value, limit=max_depth, what=what)
    return value


class UnreadableJSON(dict[str, Any]):
    """A stored JSON value that could not be read back: empty for readers that only look things up, with the reason
    for those that must know (settling sends the visit it bears on to review)."""

    def __init__(self, reason: str) -> None:
        super().__init__()
        self.reason = reason

    def __repr__(self) -> str:
        return f"UnreadableJSON({self.reason!r})"


def read_stored(text: str | bytes) -> Any:
    """A JSON value as the database returns it, or an `UnreadableJSON` saying why it cannot be read."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError as error:
        orjson_error = error
    try:  # what orjson refuses but Python reads (a number beyond a double's range, as PostgreSQL's numeric keeps it)
        return json.loads(text)
    except (ValueError, RecursionError):
        return UnreadableJSON(f"the stored JSON cannot be read ({orjson_error})")


class BoundedJSONField(models.JSONField):
    """A JSONField for data that came from outside: read back with `read_stored`, never raising."""

    def from_db_value(self, value: Any, expression: Any, connection: Any) -> Any:
        if value is None or isinstance(expression, KeyTransform) or not isinstance(value, str | bytes):
            return super().from_db_value(value, expression, connection)  # a key's value: Django knows its forms
        return read_stored(value)
