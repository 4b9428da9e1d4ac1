"""Holds that never lapse (issue 19): a visit still undecided as its card hold nears the end of its life gets a new
hold, or — when the card refuses one — has the part of its cart the engine was sure of captured in time."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from billing.payments import holds
from billing.payments.models import PaymentAttempt
from billing.payments.tests.support import HOLD, intents_of, open_visit, preauthorise, settle_payment
from core import tenancy
from stores.models import Store
from tenants.models import Tenant
from visits.models import Visit
from visits.tests.support import cart_line

pytestmark = pytest.mark.django_db


def _in_review_for(visit: Visit, days: float, lines: list[tuple[str, int, float]] = ()) -> None:
    """The visit left and went to review, its hold authorised `days` ago; its cart: (sku, cents, confidence)."""
    for sku, amount, confidence in lines:
        cart_line(visit, sku, 1, amount, confidence=confidence, name=sku)
    Visit.unscoped.filter(pk=visit.pk).update(status=Visit.Status.NEEDS_REVIEW, total=sum(a for _, a, _ in lines))
    authorised = timezone.now() - timedelta(days=days)
    PaymentAttempt.unscoped.filter(visit=visit, purpose="preauth").update(updated_at=authorised)


def _renew(visit: Visit) -> str:
    with tenancy.tenant_scope(visit.tenant_id):
        return holds.hold_renew(visit_id=visit.pk, now=timezone.now())


def _lapsing() -> list[tuple[int, int]]:
    with tenancy.platform_wide_scope():
        return holds.holds_lapsing(now=timezone.now())


def test_a_hold_about_to_lapse_on_a_visit_in_review_is_renewed_and_the_old_one_released(
    store_a: Store, register: Callable[..., Any]
) -> None:
    visit = open_visit(store_a, register(store_a.tenant).entry_token)
    old = preauthorise(visit)
    _in_review_for(visit, days=6.5, lines=[("COLA", 199, 0.6)])

    assert _lapsing() == [(store_a.tenant_id, visit.pk)]
    assert _renew(visit) == "renewed"
    assert _renew(visit) == "nothing to do"  # the new hold has a week to live

    assert _lapsing() == []
    intents = {intent["id"]: intent["status"] for intent in intents_of(visit)}
    new = PaymentAttempt.unscoped.filter(visit=visit, purpose="preauth").exclude(pk=old.pk).get()
    assert (new.state, new.amount) == ("succeeded", HOLD)
    assert intents == {old.stripe_id: "canceled", new.stripe_id: "requires_capture"}
    with tenancy.tenant_scope(visit.tenant_id):
        assert holds.hold_expires_at(new) > timezone.now() + timedelta(days=6)

    # The person decides; the money is captured from the new hold.
    Visit.unscoped.filter(pk=visit.pk).update(status=Visit.Status.CHARGED, charged_total=199)
    settled = settle_payment(visit)
    assert settled.paid == 199
    assert PaymentAttempt.unscoped.get(visit=visit, purpose="capture").payment_intent_id == new.stripe_id


def test_a_card_that_refuses_a_new_hold_has_the_certain_part_captured_once(
    store_a: Store, register: Callable[..., Any]
) -> None:
    visit = open_visit(store_a, register(store_a.tenant, ref="sam").entry_token)
    old = preauthorise(visit)
    _in_review_for(visit, days=6.5, lines=[("BREAD", 349, 1.0), ("WINE", 1299, 0.55)])
    register(store_a.tenant, ref="sam", payment_method="pm_card_chargeCustomerFail")  # the card now declines

    assert _renew(visit) == "renewal refused; certain part captured"
    assert _renew(visit) == "nothing to do"  # the hold is used: nothing lapses any more

    capture = PaymentAttempt.unscoped.get(visit=visit, purpose="capture")
    assert (capture.state, capture.amount, capture.payment_intent_id) == ("succeeded", 349, old.stripe_id)
    assert PaymentAttempt.unscoped.filter(visit=visit, purpose="preauth", state="failed").count() == 1
    visit.refresh_from_db()
    assert (visit.status, visit.paid) == (Visit.Status.NEEDS_REVIEW, 349)


def test_a_refused_renewal_with_nothing_certain_asks_the_card_only_once(
    store_a: Store, register: Callable[..., Any]
) -> None:
    visit = open_visit(store_a, register(store_a.tenant, ref="kim").entry_token)
    preauthorise(visit)
    _in_review_for(visit, days=6.5, lines=[("WINE", 1299, 0.55)])
    register(store_a.tenant, ref="kim", payment_method="pm_card_chargeCustomerFail")

    assert _renew(visit) == "renewal refused; nothing certain to capture"
    assert _renew(visit) == "renewal refused; nothing certain to capture"
    assert PaymentAttempt.unscoped.filter(visit=visit, purpose="preauth").count() == 2  # the hold and one refusal
    assert not PaymentAttempt.unscoped.filter(visit=visit, purpose="capture").exists()


def test_young_holds_and_decided_visits_are_left_alone(store_a: Store, register: Callable[..., Any]) -> None:
    young = open_visit(store_a, register(store_a.tenant, ref="a").entry_token, session="young")
    preauthorise(young)
    _in_review_for(young, days=2)
    decided = open_visit(store_a, register(store_a.tenant, ref="b").entry_token, session="decided")
    preauthorise(decided)
    _in_review_for(decided, days=6.9)
    Visit.unscoped.filter(pk=decided.pk).update(status=Visit.Status.CHARGED)

    assert _lapsing() == []
    assert _renew(young) == _renew(decided) == "nothing to do"
    assert PaymentAttempt.unscoped.filter(visit__in=[young, decided]).count() == 2


def test_another_tenants_visit_is_not_found(store_a: Store, register: Callable[..., Any], tenant_b: Tenant) -> None:
    visit = open_visit(store_a, register(store_a.tenant).entry_token)
    preauthorise(visit)
    _in_review_for(visit, days=6.5)
    with tenancy.tenant_scope(tenant_b.pk), pytest.raises(Visit.DoesNotExist):
        holds.hold_renew(visit_id=visit.pk, now=timezone.now())
    assert PaymentAttempt.unscoped.filter(visit=visit).count() == 1
