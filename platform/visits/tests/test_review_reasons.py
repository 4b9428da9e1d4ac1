"""Review reasons as data: stored, migrated from the sentences of before, and read field by field."""

from __future__ import annotations

import importlib

import pytest
from django.apps import apps

from stores.models import Store
from visits.models import Visit
from visits.reasons import ReviewReason, ReviewReasonCode, reasons_of, reasons_served
from visits.tests.test_pipeline import priced_store  # noqa: F401 — fixture

MIGRATION = importlib.import_module("visits.migrations.0008_review_reasons_as_data")


@pytest.mark.parametrize(
    ("sentence", "code", "fields"),
    [
        (
            "unsure who took or returned items at bin F01-B02 (e04)",
            "unsure_taker",
            {"event_ids": ["e04"], "bin": "F01-B02"},
        ),
        (
            "2 × SKU-7 left bin F01-B01 unseen by cameras (w-9)",
            "unseen_bin_change",
            {"event_ids": ["w-9"], "sku": "SKU-7", "bin": "F01-B01", "qty": 2},
        ),
        (
            "1 × SKU-7 came back to bin F01-B01 unseen (w-10)",
            "unseen_return",
            {"event_ids": ["w-10"], "sku": "SKU-7", "bin": "F01-B01", "qty": 1},
        ),
        ("bin X9 is not in the layout of that time (c-1)", "bin_not_in_layout", {"event_ids": ["c-1"], "bin": "X9"}),
        ("the weight at bin F01-B03 matches no product (c-2)", "weight_matches_no_product", {"bin": "F01-B03"}),
        ("more SOAP put back than taken", "more_returned_than_taken", {"sku": "SOAP"}),
        ("BEER is for 21+ and no ID check of K proved it", "age_unverified", {"sku": "BEER", "session": "K"}),
        ("no session.started for this visit", "no_entry", {}),
        (
            "entered as a companion of GHOST, who is no payer that entered: who pays?",
            "companion_without_payer",
            {"session": "GHOST"},
        ),
        ("something on this receipt may not be this shopper's (likelihood 3.2%)", "risk_over_limit", {"event_ids": []}),
        ("SKU-1: no price in USD at that time", "no_price", {"sku": "SKU-1"}),
        (
            "event of 2026-03-02 09:00:00 UTC cannot be read: not JSON (e-deep-3000)",
            "unreadable_event",
            {"event_ids": ["e-deep-3000"]},
        ),
        ("late event (x7)", "other", {"event_ids": ["x7"]}),
        ("a person said so", "other", {"event_ids": []}),
    ],
)
def test_each_sentence_of_before_is_read_once_into_its_code_and_fields(sentence: str, code: str, fields: dict) -> None:
    converted = MIGRATION.as_data(sentence)
    assert (converted["code"], converted["text"]) == (code, sentence), "the sentence is kept as the text"
    assert {key: converted[key] for key in fields} == fields
    assert ReviewReason.from_json(converted).code == ReviewReasonCode(code)


def test_the_migration_converts_stored_sentences_and_leaves_data_alone(priced_store: Store) -> None:  # noqa: F811
    old = Visit.unscoped.create(
        tenant=priced_store.tenant,
        store=priced_store,
        session="OLD",
        status="needs_review",
        review_reasons=["unsure who took or returned items at bin F01-B02 (e04)", "a person said so"],
    )
    already = ReviewReason(ReviewReasonCode.NO_ENTRY, "no session.started for this visit").as_json()
    new = Visit.unscoped.create(
        tenant=priced_store.tenant, store=priced_store, session="NEW", status="needs_review", review_reasons=[already]
    )
    MIGRATION.to_data(apps, None)
    old.refresh_from_db()
    new.refresh_from_db()
    assert [(r.code, r.event_ids, r.bin) for r in reasons_of(old.review_reasons)] == [
        (ReviewReasonCode.UNSURE_TAKER, ("e04",), "F01-B02"),
        (ReviewReasonCode.OTHER, (), None),
    ]
    assert new.review_reasons == [already]
    MIGRATION.to_sentences(apps, None)
    old.refresh_from_db()
    assert old.review_reasons == ["unsure who took or returned items at bin F01-B02 (e04)", "a person said so"]


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
