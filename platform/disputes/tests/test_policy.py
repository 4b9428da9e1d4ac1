"""The dispute policy's rule alone (`disputes.policy.decision`); the service's use of it is in test_disputes.py."""

from __future__ import annotations

import pytest

from disputes.policy import Decision, decision


@pytest.mark.parametrize(
    ("amount", "limit", "unsure", "refund_unsure", "expected"),
    [
        (500, 500, [False], True, Decision.WITHIN_LIMIT),
        (501, 500, [False], True, Decision.A_PERSON),
        (501, 500, [True, True], True, Decision.UNSURE),
        (501, 500, [True, False], True, Decision.A_PERSON),
        (501, 500, [True], False, Decision.A_PERSON),
        (100, 0, [False], True, Decision.A_PERSON),  # a limit of 0 refunds nothing by amount
        (0, 500, [], True, Decision.A_PERSON),  # nothing asked is nothing refunded at once
    ],
)
def test_refunded_at_once_within_the_limit_or_when_the_platform_was_unsure_of_every_line(
    amount: int, limit: int, unsure: list[bool], refund_unsure: bool, expected: Decision
) -> None:
    assert decision(amount=amount, auto_refund_limit=limit, unsure=unsure, auto_refund_unsure=refund_unsure) == expected
