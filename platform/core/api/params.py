"""Query parameters the API reads the same way everywhere."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from django.utils.dateparse import parse_datetime
from rest_framework import exceptions
from rest_framework.request import Request

INSTANT_HELP = "An RFC 3339 timestamp with an offset, e.g. 2026-11-21T09:30:00Z."
COUNT_DIGITS = 18


def parse_instant(raw: str) -> datetime:
    """An RFC 3339 instant with its offset (a bare `+` read as a space is put back), in UTC; ValueError if not one.

    In UTC because an offset Python accepts (up to ±23:59) may be one PostgreSQL refuses (beyond ±15:59).
    """
    try:
        value = parse_datetime(raw.replace(" ", "+"))
        if value is None or value.tzinfo is None:
            raise ValueError(raw)
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError(raw) from None


def query_instant(request: Request, name: str) -> datetime | None:
    """The instant in query parameter `name`, None if absent; a 400 naming it when it is not one."""
    raw = request.query_params.get(name)
    if raw is None:
        return None
    try:
        return parse_instant(raw)
    except ValueError:
        raise exceptions.ValidationError({name: INSTANT_HELP}) from None


def query_choice(request: Request, name: str, choices: Sequence[str]) -> str | None:
    """The value of query parameter `name`, None if absent or empty; a 400 listing `choices` when it is not one."""
    value = request.query_params.get(name) or None
    if value is not None and value not in choices:
        raise exceptions.ValidationError({name: f"One of {', '.join(choices)}."})
    return value


def query_count(request: Request, name: str, *, default: int, lowest: int, highest: int) -> int:
    """The whole number in query parameter `name`, `default` if absent or empty; a 400 naming it when it is not a
    whole number from `lowest` to `highest`. ASCII digits only (`isdigit` alone lets "²" through), and not so many
    that `int` refuses them (Python reads at most 4,300)."""
    raw = request.query_params.get(name) or ""
    if not raw:
        return default
    if not (raw.isascii() and raw.isdigit() and len(raw) <= COUNT_DIGITS and lowest <= int(raw) <= highest):
        raise exceptions.ValidationError({name: f"A whole number from {lowest} to {highest}."})
    return int(raw)
