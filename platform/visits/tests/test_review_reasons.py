"""Review reasons as data: stored and read field by field, served as sentences and as data."""

from __future__ import annotations

from visits.reasons import ReviewReason, ReviewReasonCode, reasons_served


def test_a_person_reads_the_product_by_its_name_and_without_the_event_id() -> None:
    reason = ReviewReason(
        ReviewReasonCode.UNSEEN_BIN_CHANGE,
        "2 × SKU-7 left bin F01-B01 unseen by cameras (w-9)",
        ("w-9",),
        "SKU-7",
        "F01-B01",
        qty=2,
    )
    assert (
        reason.for_people({"SKU-7": "Sparkling water 50 cl"})
        == "2 × Sparkling water 50 cl left bin F01-B01 unseen by cameras"
    )
    assert reason.for_people({}) == "2 × SKU-7 left bin F01-B01 unseen by cameras"


def test_reasons_are_served_as_the_sentences_of_before_and_as_data() -> None:
    stored = [ReviewReason(ReviewReasonCode.NO_PRICE, "SKU-1: no price in USD at that time", sku="SKU-1").as_json()]
    served = reasons_served(stored)
    assert served["reasons"] == ["SKU-1: no price in USD at that time"]
    assert served["reason_details"] == [
        {
            "code": "no_price",
            "text": "SKU-1: no price in USD at that time",
            "event_ids": [],
            "sku": "SKU-1",
            "bin": None,
            "session": None,
            "qty": None,
        }
    ]
    assert reasons_served(None) == {"reasons": [], "reason_details": []}
