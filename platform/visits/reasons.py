"""Why a visit waits for a person: each review reason as data — a stable code, the events, product, bin and visit it
names, and the sentence a person reads.

Made where the reason arises (the engine, settling), stored as `Visit.review_reasons` (a list of `as_json()`),
served by the API and the `visit.needs_review` webhook, and read field by field by the review page.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class ReviewReasonCode(StrEnum):
    """What kind of doubt a reason is. The values are part of the API: never renamed, only added to."""

    UNSURE_TAKER = "unsure_taker"
    UNSEEN_BIN_CHANGE = "unseen_bin_change"
    UNSEEN_RETURN = "unseen_return"
    BIN_NOT_IN_LAYOUT = "bin_not_in_layout"
    WEIGHT_MATCHES_NO_PRODUCT = "weight_matches_no_product"
    MORE_RETURNED_THAN_TAKEN = "more_returned_than_taken"
    AGE_UNVERIFIED = "age_unverified"
    NO_ENTRY = "no_entry"
    EXIT_NOT_SEEN = "exit_not_seen"
    COMPANION_WITHOUT_PAYER = "companion_without_payer"
    DECIDED_WITH_GROUP = "decided_with_group"
    RISK_OVER_LIMIT = "risk_over_limit"
    NO_PRICE = "no_price"
    UNREADABLE_EVENT = "unreadable_event"
    OTHER = "other"


REASON_LABELS: dict[ReviewReasonCode, str] = {
    ReviewReasonCode.UNSURE_TAKER: "Unsure who took or returned items",
    ReviewReasonCode.UNSEEN_BIN_CHANGE: "Items left a bin unseen by cameras",
    ReviewReasonCode.UNSEEN_RETURN: "Items came back to a bin unseen",
    ReviewReasonCode.BIN_NOT_IN_LAYOUT: "A bin not in the layout of the time",
    ReviewReasonCode.WEIGHT_MATCHES_NO_PRODUCT: "A weight that matches no product",
    ReviewReasonCode.MORE_RETURNED_THAN_TAKEN: "More put back than taken",
    ReviewReasonCode.AGE_UNVERIFIED: "Age-restricted product without an ID check",
    ReviewReasonCode.NO_ENTRY: "No entry recorded",
    ReviewReasonCode.EXIT_NOT_SEEN: "No exit recorded",
    ReviewReasonCode.COMPANION_WITHOUT_PAYER: "Companion of no payer",
    ReviewReasonCode.DECIDED_WITH_GROUP: "Decided with its group",
    ReviewReasonCode.RISK_OVER_LIMIT: "Overcharge risk over the store's limit",
    ReviewReasonCode.NO_PRICE: "No price at that time",
    ReviewReasonCode.UNREADABLE_EVENT: "An event that cannot be read",
    ReviewReasonCode.OTHER: "Other",
}
KNOWN_CODES = frozenset(code.value for code in ReviewReasonCode)
REASON_CHOICES = [(code.value, REASON_LABELS[code]) for code in ReviewReasonCode]


@dataclass(frozen=True, slots=True)
class ReviewReason:
    """One reason a person must look at a visit. `text` is the sentence as written when it arose."""

    code: ReviewReasonCode
    text: str
    event_ids: tuple[str, ...] = ()
    sku: str | None = None
    bin: str | None = None
    session: str | None = None  # the visit it names: whose age went unchecked, the payer a companion named
    qty: int | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "code": self.code.value,
            "text": self.text,
            "event_ids": list(self.event_ids),
            "sku": self.sku,
            "bin": self.bin,
            "session": self.session,
            "qty": self.qty,
        }

    @classmethod
    def from_json(cls, stored: Mapping[str, Any] | str) -> ReviewReason:
        """A stored reason; a bare sentence (a row older than reasons as data) reads as `other`, its text kept."""
        if isinstance(stored, str):
            return cls(ReviewReasonCode.OTHER, stored)
        code = str(stored.get("code", ""))
        return cls(
            ReviewReasonCode(code) if code in KNOWN_CODES else ReviewReasonCode.OTHER,
            str(stored.get("text", "")),
            tuple(str(e) for e in stored.get("event_ids") or ()),
            stored.get("sku"),
            stored.get("bin"),
            stored.get("session"),
            stored.get("qty"),
        )

    def for_people(self, names: Mapping[str, str]) -> str:
        """The sentence without the event id it ends with, its product named (not by SKU) where the name is known."""
        text = self.text
        if self.event_ids and text.endswith(f"({self.event_ids[-1]})"):
            text = text[: -len(self.event_ids[-1]) - 2].rstrip()
        if self.sku and names.get(self.sku) and names[self.sku] != self.sku:
            text = re.sub(rf"(?<![\w-]){re.escape(self.sku)}(?![\w-])", names[self.sku], text)
        return text


def reasons_of(stored: Iterable[Mapping[str, Any] | str] | None) -> list[ReviewReason]:
    """A visit's stored `review_reasons`, as reasons."""
    return [ReviewReason.from_json(reason) for reason in stored or ()]


def event_ids_of(stored: Iterable[Mapping[str, Any] | str] | None) -> list[str]:
    """The events a visit's stored reasons cite, in order."""
    return [event_id for reason in reasons_of(stored) for event_id in reason.event_ids]


def reasons_served(stored: Iterable[Mapping[str, Any] | str] | None) -> dict[str, Any]:
    """A visit's reasons as the API's receipt and the `visit.needs_review` webhook give them: `reasons`, the
    sentences (as ever), and `reason_details`, each reason as data."""
    reasons = reasons_of(stored)
    return {"reasons": [reason.text for reason in reasons], "reason_details": [reason.as_json() for reason in reasons]}
