"""Holds, captures, charges beyond the hold, releases, refunds and declines — against a real localstripe."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.core import mail
from django.core.exceptions import ValidationError
from django.utils import timezone

from billing.payments import movements, receipts, refunds, shoppers
from billing.payments.models import PaymentAttempt, Receipt
from billing.payments.tests.support import (
    HOLD,
    decide_cart,
    intents_of,
    open_visit,
    preauthorise,
    settle_payment,
    stripe_records,
)
from core import tenancy
from stores.models import Store
from tenants.audit import Actor
from visits import lifecycle, settling
from visits.models import ChargeInstruction, Visit

pytestmark = pytest.mark.django_db


def _attempts(visit: Visit) -> list[tuple[str, str, int]]:
    return list(PaymentAttempt.unscoped.filter(visit=visit).order_by("id").values_list("purpose", "state", "amount"))


def test_a_cart_under_the_hold_captures_the_total_from_the_hold(visit: Visit) -> None:
    hold = preauthorise(visit)
    assert hold.state == "succeeded" and hold.amount == HOLD and hold.stripe_id.startswith("pi_")

    visit = settle_payment(decide_cart(visit, [("COLA", 2, 199), ("CHIPS", 1, 349)]))

    assert visit.status == "charged" and visit.payment_status == "succeeded"
    assert (visit.paid, visit.refunded, visit.balance_due) == (747, 0, 0)
    assert _attempts(visit) == [("preauth", "succeeded", HOLD), ("capture", "succeeded", 747)]
    [intent] = intents_of(visit)
    assert intent["status"] == "succeeded" and intent["capture_method"] == "manual"
    charge = next(c for c in stripe_records("charges") if c["payment_intent"] == intent["id"])
    assert charge["captured"] and charge["amount"] - charge["amount_refunded"] == 747
    assert ChargeInstruction.unscoped.get(visit=visit).state == "done"


def test_an_empty_cart_releases_the_hold(visit: Visit) -> None:
    preauthorise(visit)

    visit = settle_payment(decide_cart(visit, []))

    assert visit.status == "no_charge" and visit.paid == 0
    assert _attempts(visit) == [("preauth", "succeeded", HOLD), ("cancel", "succeeded", HOLD)]
    assert [i["status"] for i in intents_of(visit)] == ["canceled"]


def test_a_cart_over_the_hold_captures_the_hold_and_charges_the_rest(visit: Visit) -> None:
    preauthorise(visit)

    visit = settle_payment(decide_cart(visit, [("WINE", 3, 2400)]))

    assert visit.status == "charged" and visit.paid == 7200
    assert _attempts(visit) == [
        ("preauth", "succeeded", HOLD),
        ("capture", "succeeded", HOLD),
        ("charge", "succeeded", 7200 - HOLD),
    ]
    assert sorted(i["amount"] for i in intents_of(visit)) == [7200 - HOLD, HOLD]


def test_without_a_hold_the_total_is_charged(visit: Visit) -> None:
    visit = settle_payment(decide_cart(visit, [("COLA", 1, 199)]))

    assert visit.status == "charged" and visit.paid == 199
    assert _attempts(visit) == [("charge", "succeeded", 199)]


def test_late_changes_charge_or_refund_the_difference(visit: Visit) -> None:
    preauthorise(visit)
    visit = settle_payment(decide_cart(visit, [("COLA", 2, 199)]))

    with tenancy.tenant_scope(visit.tenant_id):
        visit.total = 597
        settling.instruct_difference(visit, reason="late events changed the cart")
        visit.save()
    visit = settle_payment(visit)
    assert (visit.paid, visit.refunded) == (597, 0)

    with tenancy.tenant_scope(visit.tenant_id):
        visit.total = 199
        settling.instruct_difference(visit, reason="review: approve")
        visit.save()
    visit = settle_payment(visit)
    assert (visit.paid, visit.refunded, visit.status) == (597, 398, "charged")
    refunds = [r for r in stripe_records("refunds") if r["metadata"].get("openaisle_attempt")]
    assert sum(r["amount"] for r in refunds) == 398


def test_staff_refunds_partial_per_line_and_full_never_more_than_collected(visit: Visit, manager_a: Any) -> None:
    preauthorise(visit)
    visit = settle_payment(decide_cart(visit, [("COLA", 2, 199), ("CHIPS", 1, 349)]))
    actor = Actor(source="admin", user=manager_a)

    with tenancy.tenant_scope(visit.tenant_id):
        refunds.visit_refund(actor=actor, visit=visit, reason_code="damaged", lines=[{"sku": "COLA", "qty": 1}])
        visit = movements.visit_settle_payment(visit_id=visit.pk)
        assert (visit.paid, visit.refunded, visit.status) == (747, 199, "charged")

        with pytest.raises(ValidationError, match="Only 1 of COLA"):
            refunds.visit_refund(actor=actor, visit=visit, reason_code="damaged", lines=[{"sku": "COLA", "qty": 2}])
        with pytest.raises(ValidationError, match=r"At most \$5\.48 can be refunded"):
            refunds.visit_refund(actor=actor, visit=visit, reason_code="goodwill", amount=549)
        with pytest.raises(ValidationError, match="reason_code"):
            refunds.visit_refund(actor=actor, visit=visit, reason_code="because", amount=1)
        assert PaymentAttempt.objects.filter(visit=visit, purpose="refund").count() == 1

        refunds.visit_refund(actor=actor, visit=visit, reason_code="overcharge")
        visit = movements.visit_settle_payment(visit_id=visit.pk)

    assert (visit.paid, visit.refunded, visit.status) == (747, 747, "refunded")
    with tenancy.tenant_scope(visit.tenant_id), pytest.raises(ValidationError, match=r"At most \$0\.00 can be"):
        refunds.visit_refund(actor=actor, visit=visit, reason_code="goodwill", amount=1)
    assert sum(r["amount"] for r in stripe_records("refunds") if r["metadata"].get("openaisle_attempt")) == 747


def test_a_decline_fails_the_visit_denies_entry_and_a_new_card_pays_it(
    store_a: Store, register: Callable[..., Any]
) -> None:
    shopper = register(store_a.tenant, payment_method="pm_card_chargeCustomerFail")
    visit = open_visit(store_a, shopper.entry_token)
    assert preauthorise(visit).state == "failed"

    visit = settle_payment(decide_cart(visit, [("COLA", 2, 199)]))

    assert visit.status == "payment_failed" and visit.payment_status == "failed"
    assert "declined" in visit.payment_failure.lower() and visit.balance_due == 398
    failed = PaymentAttempt.unscoped.filter(visit=visit, purpose="charge").get()
    assert failed.next_try_at is not None and failed.next_try_at > timezone.now()
    with tenancy.tenant_scope(store_a.tenant_id):
        decision = shoppers.entry_check(tenant=store_a.tenant, store=store_a, token=shopper.entry_token)
    assert (decision.allowed, decision.code, decision.open_balance) == (False, "open_balance", 398)

    assert settle_payment(visit).status == "payment_failed"  # not due yet: nothing is tried
    assert PaymentAttempt.unscoped.filter(visit=visit, purpose="charge").count() == 1

    with tenancy.tenant_scope(store_a.tenant_id):
        due = movements.visits_needing_payment_work(now=failed.next_try_at + timedelta(seconds=1))
    assert (store_a.tenant_id, visit.pk) in due
    assert settle_payment(visit, retry_now=True).status == "payment_failed"  # the same card declines again

    renewed = register(store_a.tenant, payment_method="pm_card_visa")
    visit = settle_payment(visit, retry_now=True)
    assert (visit.status, visit.paid, visit.balance_due) == ("charged", 398, 0)
    with tenancy.tenant_scope(store_a.tenant_id):
        decision = shoppers.entry_check(tenant=store_a.tenant, store=store_a, token=renewed.entry_token)
        old_token = shoppers.entry_check(tenant=store_a.tenant, store=store_a, token=shopper.entry_token)
    assert decision.allowed and old_token.code == "unknown_token"
    assert [i["status"] for i in intents_of(visit)].count("succeeded") == 1


def test_a_late_change_to_a_visit_whose_payment_failed_keeps_it_owed_and_retried(
    store_a: Store, register: Callable[..., Any]
) -> None:
    shopper = register(store_a.tenant, payment_method="pm_card_chargeCustomerFail")
    visit = settle_payment(decide_cart(open_visit(store_a, shopper.entry_token), [("COLA", 2, 199)]))
    assert visit.status == "payment_failed"

    with tenancy.tenant_scope(visit.tenant_id):
        visit.total = 597
        settling.instruct_difference(visit, reason="late events changed the cart")
        visit.save()
    visit = settle_payment(visit)

    assert (visit.status, visit.paid, visit.balance_due) == ("payment_failed", 0, 597)

    with tenancy.tenant_scope(visit.tenant_id):  # more late events sent it to review; the reviewer approves
        lifecycle.sent_to_review(visit)
        visit.total = 796
        settling.instruct_difference(visit, reason="review: approve")
        visit.save()
    visit = settle_payment(visit)
    assert (visit.status, visit.paid, visit.balance_due) == ("payment_failed", 0, 796)

    failed = PaymentAttempt.unscoped.filter(visit=visit, purpose="charge").latest("id")
    with tenancy.tenant_scope(store_a.tenant_id):
        due = movements.visits_needing_payment_work(now=failed.next_try_at + timedelta(seconds=1))
    assert (store_a.tenant_id, visit.pk) in due
    register(store_a.tenant, payment_method="pm_card_visa")
    visit = settle_payment(visit, retry_now=True)
    assert (visit.status, visit.paid, visit.balance_due) == ("charged", 796, 0)


def test_a_visit_of_an_unregistered_token_is_not_charged_and_says_why_once(store_a: Store, localstripe: Any) -> None:
    visit = settle_payment(decide_cart(open_visit(store_a, "shp_nobody"), [("COLA", 1, 199)]))

    assert visit.status == "payment_failed" and "no registered shopper" in visit.payment_failure
    assert stripe_records("payment_intents") == []
    # Nothing can ever move: the sweep leaves it (it was sent, failed and announced again every minute), and
    # settling it again (a message sent twice) marks and announces nothing.
    with tenancy.tenant_scope(store_a.tenant_id):
        assert movements.visits_needing_payment_work(now=timezone.now() + timedelta(hours=1)) == []
    assert settle_payment(visit).updated_at == visit.updated_at


def test_the_receipt_is_emailed_once_per_version(store_a: Store, register: Callable[..., Any]) -> None:
    shopper = register(store_a.tenant, email="sam@example.com")
    visit = settle_payment(decide_cart(open_visit(store_a, shopper.entry_token), [("COLA", 1, 199)]))

    with tenancy.tenant_scope(visit.tenant_id):
        first = receipts.receipt_issue(visit_id=visit.pk)
        again = receipts.receipt_issue(visit_id=visit.pk)
    assert first is not None and again is None
    assert Receipt.unscoped.filter(visit=visit).count() == 1


def test_the_receipt_email_is_sent_after_commit(
    store_a: Store, register: Callable[..., Any], django_capture_on_commit_callbacks: Any
) -> None:
    shopper = register(store_a.tenant, email="sam@example.com")
    visit = settle_payment(decide_cart(open_visit(store_a, shopper.entry_token), [("COLA", 1, 199)]))

    with tenancy.tenant_scope(visit.tenant_id), django_capture_on_commit_callbacks(execute=True):
        receipts.receipt_issue(visit_id=visit.pk)

    [message] = mail.outbox
    assert message.to == ["sam@example.com"] and "Total     $1.99" in message.body and "Corner Shop" in message.subject
