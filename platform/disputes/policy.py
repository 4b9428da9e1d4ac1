"""A store's dispute policy as one pure rule, so that disputes (`services.policy_outcome`) and the accuracy benchmark
decide alike. The window and the receipt are checked before it; the store's settings are fields of its Store."""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum

DEFAULT_WINDOW_DAYS = 7
DEFAULT_AUTO_REFUND_LIMIT = 500  # minor units of the store's currency


class Decision(StrEnum):
    WITHIN_LIMIT = "within_limit"  # refunded at once: the amount asked is within the store's auto-refund limit
    UNSURE = "unsure"  # refunded at once: the platform itself was unsure of every line disputed
    A_PERSON = "a_person"  # a person decides, before the store's deadline


def decision(*, amount: int, auto_refund_limit: int, unsure: Sequence[bool], auto_refund_unsure: bool) -> Decision:
    """What the policy decides for a dispute of `amount` (minor units) whose lines the engine was or was not unsure
    of (`unsure`, one per line): an auto-refund limit of 0 refunds nothing by amount."""
    if 0 < amount <= auto_refund_limit:
        return Decision.WITHIN_LIMIT
    if auto_refund_unsure and unsure and all(unsure):
        return Decision.UNSURE
    return Decision.A_PERSON
