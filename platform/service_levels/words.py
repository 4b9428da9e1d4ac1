"""Service-level figures as people read them: 93.1 %, 4.2 s, 3 min 12 s; — when nothing was measured."""

from __future__ import annotations


def share(value: float | None) -> str:
    return f"{value * 100:.1f} %" if value is not None else "—"


def seconds(value: float | None) -> str:
    """4.2 s, 3 min 12 s, 2 h 05 min; — when nothing was measured."""
    if value is None:
        return "—"
    if value < 60:
        return f"{value:.1f} s"
    whole = round(value)
    if whole < 3600:
        return f"{whole // 60} min {whole % 60:02d} s"
    return f"{whole // 3600} h {whole % 3600 // 60:02d} min"
