"""JSON from outside is read within bounds; JSON stored earlier is read back without raising."""

from __future__ import annotations

import pytest

from core.bounded_json import JSONRefused, UnreadableJSON, loads, nesting_depth, read_stored


def _nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def test_nesting_depth_counts_arrays_and_objects_and_stops_past_the_limit() -> None:
    assert nesting_depth(1, limit=5) == 0
    assert nesting_depth([], limit=5) == 1
    assert nesting_depth({"a": [1, {"b": []}], "c": 2}, limit=5) == 4
    deep: list = []
    for _ in range(100_000):  # far beyond any recursion limit
        deep = [deep]
    assert nesting_depth(deep, limit=64) == 65


def test_loads_refuses_what_is_too_large_too_deep_or_not_json_with_a_reason() -> None:
    assert nesting_depth(loads(_nested(64)), limit=64) == 64
    with pytest.raises(JSONRefused, match="more than 64 levels deep"):
        loads(_nested(65))
    with pytest.raises(JSONRefused, match="more than 64 levels deep"):
        loads(_nested(5000))  # orjson itself stops at 1024
    with pytest.raises(JSONRefused, match="is 11 bytes; at most 10 are accepted"):
        loads(b'"123456789"', max_bytes=10)
    with pytest.raises(JSONRefused, match="The body is not valid JSON"):
        loads(b"{", what="The body")


def test_stored_json_is_read_back_or_marked_unreadable_never_raising() -> None:
    assert read_stored('{"a": [1, 2.5, "x"]}') == {"a": [1, 2.5, "x"]}
    assert read_stored("1e400") == float("inf")  # PostgreSQL's numeric keeps it; orjson refuses, json reads it
    deep = '{"a":' * 3000 + "1" + "}" * 3000
    unreadable = read_stored(deep)
    assert isinstance(unreadable, UnreadableJSON)
    assert unreadable == {}
    assert "cannot be read" in unreadable.reason
