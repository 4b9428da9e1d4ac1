"""Rows that take effect from an instant (prices, layouts): which version is in force at a time.

One rule everywhere: the latest version from that instant or before; before the first version, the first (a first
price or layout covers what came before it); nothing when there is no version at all.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from django.db.models import Model, QuerySet

V = TypeVar("V")
M = TypeVar("M", bound="Model")


def version_in_force(versions: QuerySet[M], *, at: datetime) -> M | None:
    """Of these rows with an `effective_from`, the one in force at `at`."""
    in_force: M | None = versions.filter(effective_from__lte=at).order_by("-effective_from").first()
    return in_force or versions.order_by("effective_from").first()


def version_at(versions: Sequence[V], starts: Sequence[datetime], at: datetime) -> V | None:
    """The same for versions in memory, oldest first, `starts` being their instants in the same order."""
    if not versions:
        return None
    return versions[max(0, bisect.bisect_right(starts, at) - 1)]
