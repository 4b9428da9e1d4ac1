"""One hold per group (spec v1.1 groups): companions on the payer's card hold nothing of their own; the payer's hold
is raised to the store's amount for each member known, and the group's cart is captured from it once."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from billing.payments import attempts, holds
from billing.payments.models import PaymentAttempt
from billing.payments.tests.support import HOLD, decide_cart, intents_of, open_visit, settle_payment
from core import tenancy
from stores.models import Store
from tenants.models import Tenant
from visits.models import Visit

pytestmark = pytest.mark.django_db


def _companion(store: Store, payer: Visit, session: str) -> Visit:
    visit = open_visit(store, "unused", session=session)
    Visit.unscoped.filter(pk=visit.pk).update(group=payer.session, shopper_token_hash=payer.shopper_token_hash)
    visit.refresh_from_db()
    return visit


def _preauthorise(store: Store, sessions: list[str]) -> int:
    with tenancy.tenant_scope(store.tenant_id):
        return holds.visits_preauthorise(store=store, sessions=sessions)


def _holds(visit: Visit) -> list[tuple[str, int]]:
    rows = PaymentAttempt.unscoped.filter(visit=visit, purpose__in=("preauth", "cancel")).order_by("pk")
    return list(rows.values_list("purpose", "amount"))


def test_a_companion_raises_the_payers_hold_and_the_group_is_captured_once(
    store_a: Store, register: Callable[..., Any]
) -> None:
    payer = open_visit(store_a, register(store_a.tenant).entry_token, session="P")
    assert _preauthorise(store_a, ["P"]) == 1
    first = PaymentAttempt.unscoped.get(visit=payer, purpose="preauth")
    kid = _companion(store_a, payer, "K")
    assert _preauthorise(store_a, ["K"]) == 1
    assert _preauthorise(store_a, ["K"]) == 0  # raised once: the hold covers both members now

    assert _holds(payer) == [("preauth", HOLD), ("preauth", 2 * HOLD), ("cancel", HOLD)]
    assert not PaymentAttempt.unscoped.filter(visit=kid).exists()
    raised = PaymentAttempt.unscoped.filter(visit=payer, purpose="preauth").last()
    assert {i["id"]: (i["status"], i["amount"]) for i in intents_of(payer)} == {
        first.stripe_id: ("canceled", HOLD),
        raised.stripe_id: ("requires_capture", 2 * HOLD),
    }

    # The group's cart is more than one member's hold: captured whole from the raised hold, one payment.
    decide_cart(payer, [("COLA", 3, 2100)])
    settled = settle_payment(payer)
    assert (settled.status, settled.paid) == (Visit.Status.CHARGED, 6300)
    (capture,) = PaymentAttempt.unscoped.filter(visit=payer, purpose__in=("capture", "charge"))
    assert (capture.purpose, capture.amount, capture.payment_intent_id) == ("capture", 6300, raised.stripe_id)


def test_a_payer_entering_with_companions_known_is_held_for_all_at_once(
    store_a: Store, register: Callable[..., Any]
) -> None:
    payer = open_visit(store_a, register(store_a.tenant).entry_token, session="P")
    _companion(store_a, payer, "K1")
    _companion(store_a, payer, "K2")
    assert _preauthorise(store_a, ["P", "K1", "K2"]) == 1
    assert _holds(payer) == [("preauth", 3 * HOLD)]


def test_a_card_refusing_the_larger_hold_keeps_the_groups_hold(store_a: Store, register: Callable[..., Any]) -> None:
    payer = open_visit(store_a, register(store_a.tenant, ref="sam").entry_token, session="P")
    _preauthorise(store_a, ["P"])
    register(store_a.tenant, ref="sam", payment_method="pm_card_chargeCustomerFail")
    _companion(store_a, payer, "K")
    with tenancy.tenant_scope(store_a.tenant_id):
        assert holds.group_hold_raise(store=store_a, payer_session="P") == (
            "card refused a larger hold; the group's hold stays as it was"
        )
    hold = PaymentAttempt.unscoped.get(visit=payer, purpose="preauth", state="succeeded")
    assert hold.amount == HOLD
    with tenancy.tenant_scope(store_a.tenant_id):
        assert attempts.usable_hold(payer) == hold


def test_a_companion_whose_payer_is_not_shopping_or_of_another_tenant_raises_nothing(
    store_a: Store, register: Callable[..., Any], tenant_b: Tenant
) -> None:
    payer = open_visit(store_a, register(store_a.tenant).entry_token, session="P")
    _preauthorise(store_a, ["P"])
    _companion(store_a, payer, "K")
    with tenancy.tenant_scope(tenant_b.pk):
        assert holds.group_hold_raise(store=store_a, payer_session="P") == "no payer still shopping"
    with tenancy.tenant_scope(store_a.tenant_id):
        assert holds.group_hold_raise(store=store_a, payer_session="GHOST") == "no payer still shopping"
    assert _holds(payer) == [("preauth", HOLD)]


def test_a_refused_raise_does_not_stop_the_groups_hold_from_being_renewed(
    store_a: Store, register: Callable[..., Any]
) -> None:
    payer = open_visit(store_a, register(store_a.tenant, ref="sam").entry_token, session="P")
    _preauthorise(store_a, ["P"])
    register(store_a.tenant, ref="sam", payment_method="pm_card_chargeCustomerFail")
    _companion(store_a, payer, "K")
    with tenancy.tenant_scope(store_a.tenant_id):
        holds.group_hold_raise(store=store_a, payer_session="P")
    register(store_a.tenant, ref="sam", payment_method="pm_card_visa")  # a working card again
    Visit.unscoped.filter(pk=payer.pk).update(status=Visit.Status.NEEDS_REVIEW)
    aged = timezone.now() - timedelta(days=6.5)
    PaymentAttempt.unscoped.filter(visit=payer, purpose="preauth", state="succeeded").update(updated_at=aged)
    with tenancy.tenant_scope(store_a.tenant_id):
        assert holds.hold_renew(visit_id=payer.pk, now=timezone.now()) == "renewed"
    assert _holds(payer)[-2:] == [("preauth", HOLD), ("cancel", HOLD)]
