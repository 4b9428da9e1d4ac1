"""Payments in the store admin: the visit's money, refunds by a manager, shoppers and their balances."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError

from billing.payments import movements
from billing.payments.models import PaymentAttempt, PaymentSettings
from billing.payments.tests.support import decide_cart, open_visit, preauthorise, settle_payment
from conftest import logged_in
from core import tenancy
from stores.models import Store
from tenants.audit import Actor
from tenants.models import AuditAction, AuditEntry, Membership
from visits.models import Visit

pytestmark = pytest.mark.django_db


@pytest.fixture
def charged(visit: Visit) -> Visit:
    preauthorise(visit)
    return settle_payment(decide_cart(visit, [("COLA", 2, 199), ("CHIPS", 1, 349)]))


def test_the_visit_page_shows_its_money_and_a_manager_refunds_a_line(charged: Visit, manager_a: User) -> None:
    client = logged_in(manager_a)
    page = client.get(f"/admin/visits/visit/{charged.pk}/change/").content.decode()
    assert "Pre-authorisation: held on the card at entry" in page and "Capture: charged from the hold" in page
    assert "$7.47" in page
    refund_url = f"/admin/payments/paymentattempt/refund/{charged.pk}/"
    assert refund_url in page

    form = client.get(refund_url)
    assert form.status_code == 200 and "at most" in form.content.decode()
    response = client.post(refund_url, {"reason_code": "damaged", "qty-COLA": "1", "note": "dented can"})

    assert response.status_code == 302
    refund = PaymentAttempt.unscoped.get(visit=charged, purpose="refund")
    assert (refund.amount, refund.reason_code, refund.requested_by) == (199, "damaged", manager_a)


def test_a_refund_over_what_was_collected_is_refused_with_the_reason(charged: Visit, manager_a: User) -> None:
    response = logged_in(manager_a).post(
        f"/admin/payments/paymentattempt/refund/{charged.pk}/", {"reason_code": "goodwill", "amount": "8.00"}
    )

    assert response.status_code == 400
    assert "At most $7.47 can be refunded" in response.content.decode()
    assert not PaymentAttempt.unscoped.filter(purpose="refund").exists()


def test_viewers_and_other_tenants_cannot_refund(
    charged: Visit, make_member: Callable[..., User], manager_b: User
) -> None:
    viewer = make_member("viewer@alpha.test", charged.tenant, role=Membership.Role.VIEWER)
    url = f"/admin/payments/paymentattempt/refund/{charged.pk}/"

    assert logged_in(viewer).post(url, {"reason_code": "goodwill", "amount": "1.00"}).status_code == 403
    assert logged_in(manager_b).post(url, {"reason_code": "goodwill", "amount": "1.00"}).status_code == 404
    assert logged_in(manager_b).get(
        f"/admin/payments/shopper/{PaymentAttempt.unscoped.filter(visit=charged).first().shopper_id}/change/"
    ).status_code in (302, 404)
    assert not PaymentAttempt.unscoped.filter(purpose="refund").exists()


def test_shoppers_list_shows_who_owes(store_a: Store, register: Callable[..., Any], manager_a: User) -> None:
    owing = register(store_a.tenant, ref="owes-money", payment_method="pm_card_chargeCustomerFail")
    register(store_a.tenant, ref="pays-fine")
    settle_payment(decide_cart(open_visit(store_a, owing.entry_token), [("COLA", 2, 199)]))

    page = logged_in(manager_a).get("/admin/payments/shopper/").content.decode()

    assert "owes-money" in page and "pays-fine" in page and "$3.98" in page


def test_a_manager_stores_the_stripe_keys_encrypted(manager_a: User, tenant_a: Any) -> None:
    response = logged_in(manager_a).post(
        "/admin/payments/paymentsettings/add/",
        {"secret_key": "sk_test_alpha_own", "webhook_secret": "whsec_alpha", "receipt_from_email": "shop@alpha.test"},
    )
    assert response.status_code == 302
    account = PaymentSettings.unscoped.get(tenant=tenant_a)
    assert account.secret_key_encrypted and "sk_test_alpha_own" not in account.secret_key_encrypted
    assert account.receipt_from_email == "shop@alpha.test"

    bad = logged_in(manager_a).post(
        f"/admin/payments/paymentsettings/{account.pk}/change/", {"secret_key": "pk_test_public"}
    )
    assert bad.status_code == 200 and "starts with sk_" in bad.content.decode()


def _status_of(page: str) -> str:
    found = re.search(r'id="visit-status"[^>]*>([^<]*)<', page)
    assert found is not None
    return found.group(1)


def test_a_visit_says_one_state_from_charged_automatically_to_refunded(charged: Visit, manager_a: User) -> None:
    client = logged_in(manager_a)
    url = f"/admin/visits/visit/{charged.pk}/change/"
    page = client.get(url).content.decode()
    assert _status_of(page) == "Charged automatically"
    assert "No decision yet" not in page and "Charged automatically: the engine was sure enough" in page
    assert "Charge (beyond the hold" not in page
    listed = client.get("/admin/visits/visit/?status=all").content.decode()
    assert "Charged automatically" in listed

    client.post(f"/admin/payments/paymentattempt/refund/{charged.pk}/", {"reason_code": "damaged", "qty-COLA": "1"})
    settle_payment(charged)
    page = client.get(url).content.decode()
    assert _status_of(page) == "Partly refunded"
    assert "Refund to the card" in page and "Paid, $1.99 of it refunded" in page

    client.post(f"/admin/payments/paymentattempt/refund/{charged.pk}/", {"reason_code": "goodwill", "amount": "5.48"})
    settle_payment(charged)
    page = client.get(url).content.decode()
    assert _status_of(page) == "Refunded" and "Refunded in full ($7.47)" in page
    assert "Refunded" in client.get("/admin/visits/visit/?status=refunded").content.decode()


def test_a_paid_visit_back_in_review_is_not_shown_paid_nor_offered_a_plain_charge(
    charged: Visit, manager_a: User
) -> None:
    Visit.unscoped.filter(pk=charged.pk).update(status=Visit.Status.NEEDS_REVIEW, review_reasons=["late event"])
    page = logged_in(manager_a).get(f"/admin/visits/visit/{charged.pk}/change/").content.decode()
    assert _status_of(page) == "Needs review"
    assert ">Paid<" not in page and "$7.47 collected before late events sent the visit back to review" in page
    assert "Approve and charge" not in page and "Approve and settle the difference" in page


def test_the_refund_page_shows_lines_as_the_receipt_does_and_money_in_major_units(
    charged: Visit, manager_a: User
) -> None:
    page = logged_in(manager_a).get(f"/admin/payments/paymentattempt/refund/{charged.pk}/").content.decode()
    assert "$3.98" in page and "$3.49" in page and "$7.47" in page  # 2 × $1.99 and 1 × $3.49, before tax
    assert "Subtotal" in page and "Tax" in page
    refused = logged_in(manager_a).post(
        f"/admin/payments/paymentattempt/refund/{charged.pk}/", {"reason_code": "goodwill", "amount": "1.234"}
    )
    assert refused.status_code == 200
    assert "Amount: Ensure that there are no more than 2 decimal places" in refused.content.decode()
    assert not PaymentAttempt.unscoped.filter(purpose="refund").exists()


def test_the_payment_list_says_what_each_movement_is(charged: Visit, manager_a: User) -> None:
    page = logged_in(manager_a).get("/admin/payments/paymentattempt/").content.decode()
    assert "Pre-authorisation: held on the card at entry" in page and "Capture: charged from the hold" in page
    assert "beyond the hold, an increase, or without a hold" not in page


@pytest.fixture
def declined(store_a: Store, register: Callable[..., Any]) -> Visit:
    shopper = register(store_a.tenant, payment_method="pm_card_chargeCustomerFail")
    return settle_payment(decide_cart(open_visit(store_a, shopper.entry_token), [("COLA", 1, 199)]))


def test_a_manager_retries_a_failed_payment_and_the_audit_log_says_so(
    declined: Visit, manager_a: User, django_capture_on_commit_callbacks: Any
) -> None:
    assert declined.status == "payment_failed"

    with django_capture_on_commit_callbacks(execute=False) as sent:
        response = logged_in(manager_a).post(f"/admin/payments/paymentattempt/retry/{declined.pk}/")

    assert response.status_code == 302
    entry = AuditEntry.unscoped.get(action=AuditAction.VISIT_PAYMENT_RETRIED)
    assert (entry.actor_user, entry.source, entry.changes) == (
        manager_a,
        "admin",
        {"balance_due": 199, "currency": "USD"},
    )
    assert len(sent) == 1  # the retry itself runs as a task once the decision commits


def test_a_payment_that_has_not_failed_is_not_retried(charged: Visit, manager_a: User) -> None:
    assert logged_in(manager_a).post(f"/admin/payments/paymentattempt/retry/{charged.pk}/").status_code == 404
    with tenancy.tenant_scope(charged.tenant_id), pytest.raises(ValidationError, match="no failed payment"):
        movements.payment_retry(actor=Actor.system(), visit=charged)
    assert not AuditEntry.unscoped.filter(action=AuditAction.VISIT_PAYMENT_RETRIED).exists()


def test_viewers_and_other_tenants_cannot_retry(
    declined: Visit, make_member: Callable[..., User], manager_b: User
) -> None:
    viewer = make_member("viewer@alpha.test", declined.tenant, role=Membership.Role.VIEWER)
    url = f"/admin/payments/paymentattempt/retry/{declined.pk}/"

    assert logged_in(viewer).post(url).status_code == 403
    assert logged_in(manager_b).post(url).status_code == 404
    assert not AuditEntry.unscoped.filter(action=AuditAction.VISIT_PAYMENT_RETRIED).exists()
