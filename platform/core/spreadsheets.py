"""Cells of the CSV and XLSX files people open in a spreadsheet program: never a formula.

A spreadsheet runs a cell whose text starts with `=`, `+`, `-` or `@` as a formula (and a tab or carriage
return before one of them too), so a product name like `=HYPERLINK("http://evil.example", "Cola")` or a
rejected line like `+cmd|' /C calc'!A0` would run on finance's or a store manager's machine. Every export
writes its cells through `formula_safe`, which puts a `'` in front of such text — what the programs
themselves do to show text as typed. A number stays a number: numeric values are left alone, and so is text
that is just a signed number (`-12.50`). Imports of our own files take the mark off again (`unmarked`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any, Final

FORMULA_STARTS: Final = ("=", "+", "-", "@", "\t", "\r")
MARK: Final = "'"
_SIGNED_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")


def formula_safe(value: Any) -> Any:
    """The value as a cell that a spreadsheet shows rather than runs."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS) and not _SIGNED_NUMBER.fullmatch(value):
        return MARK + value
    return value


def formula_safe_row(row: Iterable[Any]) -> list[Any]:
    return [formula_safe(value) for value in row]


def unmarked(text: str) -> str:
    """A cell of one of our exports read back: without the mark `formula_safe` put before it."""
    if text.startswith(MARK) and text[1:].startswith(FORMULA_STARTS):
        return text[1:]
    return text
