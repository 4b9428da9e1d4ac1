"""Times and zones as people read them on the admin's pages."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from core.formatting import format_zone

WINTER = datetime(2026, 1, 15, 12, tzinfo=UTC)
SUMMER = datetime(2026, 7, 15, 12, tzinfo=UTC)


@pytest.mark.parametrize(
    ("zone", "at", "said"),
    [
        ("America/New_York", WINTER, "New York time (EST)"),
        ("America/New_York", SUMMER, "New York time (EDT)"),
        ("Europe/Paris", SUMMER, "Paris time (CEST)"),
        ("America/Argentina/Buenos_Aires", WINTER, "Buenos Aires time (UTC-03)"),
        ("UTC", WINTER, "UTC"),
        ("Etc/GMT-14", WINTER, "UTC+14"),
    ],
)
def test_a_zone_is_named_by_its_place_and_abbreviation_not_its_iana_name(zone: str, at: datetime, said: str) -> None:
    assert format_zone(ZoneInfo(zone), at=at) == said
