"""Times, spans and shares as people read them on the admin's pages (no feature app's knowledge here)."""

from __future__ import annotations

from datetime import datetime, timedelta, tzinfo
from decimal import Decimal
from zoneinfo import ZoneInfo


def format_duration(delta: timedelta) -> str:
    """A span of time as people say it: "45 s", "12 min", "2 h 5 min", "3 d 4 h"."""
    seconds = max(0, int(delta.total_seconds()))
    if seconds < 60:
        return f"{seconds} s"
    minutes = seconds // 60
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"


def format_moment(at: datetime, *, now: datetime, tz: tzinfo) -> str:
    """A moment as people say it, in a store's time and from now: "Fri 5 Dec, 14:30 CET (in 2 d 3 h)",
    "Wed 3 Dec, 09:10 CET (3 h ago)"."""
    local = at.astimezone(tz)
    when = f"{local:%a} {local.day} {local:%b}{f' {local.year}' if local.year != now.astimezone(tz).year else ''}"
    away = format_duration(abs(at - now))
    return f"{when}, {local:%H:%M %Z} ({f'in {away}' if at >= now else f'{away} ago'})"


def format_zone(tz: ZoneInfo, *, at: datetime) -> str:
    """A time zone as people name it, with its abbreviation at `at`: "New York time (EST)", "Paris time (CEST)",
    "Buenos Aires time (UTC-03)", "UTC" — not its IANA name ("America/New_York")."""
    abbreviation = at.astimezone(tz).tzname() or ""
    if abbreviation[:1] in ("+", "-"):
        abbreviation = f"UTC{abbreviation}"
    if tz.key in ("UTC", "Etc/UTC") or tz.key.startswith("Etc/") or "/" not in tz.key:
        return abbreviation or "UTC"
    place = tz.key.rsplit("/", 1)[-1].replace("_", " ")
    return f"{place} time ({abbreviation})" if abbreviation else f"{place} time"


def format_percent(share: Decimal) -> str:
    """A share someone set, as a percentage without trailing zeros (a form's figure): Decimal("0.0025") → "0.25"."""
    return f"{(share * 100).normalize():f}"


def format_setting(share: Decimal | float) -> str:
    """A share someone set, as people read it, exactly: 0.0025 → "0.25 %" (`format_share` would round it)."""
    return f"{format_percent(Decimal(str(share)))} %"


def format_share(share: float) -> str:
    """A share as people read a percentage, with the decimals that matter near 0 and 100 %:
    0.25 → "25 %", 0.0312 → "3.1 %", 0.995 → "99.5 %", 0.0004 → "0.04 %"."""
    value = share * 100
    if 0 < value < 0.01:
        return "under 0.01 %"
    if 99.99 < value < 100:
        return "over 99.99 %"
    nearest_end = min(value, 100 - value)
    digits = 0 if nearest_end >= 10 else 1 if nearest_end >= 0.1 else 2
    text = f"{value:.{digits}f}"
    return f"{text.rstrip('0').rstrip('.') if '.' in text else text} %"
