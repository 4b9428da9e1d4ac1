"""A visit says `charged` only once Stripe said so: a decided cart awaits its payment until payments records it."""

from __future__ import annotations

import pytest

from billing.payments.models import PaymentAttempt
from billing.payments.tests.support import decide_cart, preauthorise, settle_payment
from core import tenancy
from stores.models import Store
from visits import selectors
from visits.models import Visit

pytestmark = pytest.mark.django_db


def test_a_decided_cart_is_being_charged_until_the_payment_is_recorded(store_a: Store, visit: Visit) -> None:
    preauthorise(visit)

    decide_cart(visit, [("COLA", 2, 199)])  # settling is done; the payments task has not run yet

    waiting = Visit.unscoped.get(pk=visit.pk)
    assert (waiting.status, waiting.paid) == ("awaiting_payment", 0)
    assert not PaymentAttempt.unscoped.filter(visit=visit, purpose="capture").exists()
    with tenancy.tenant_scope(store_a.tenant_id):
        served = selectors.receipt(waiting)
        listed = [v.session for v in selectors.visit_list(store=store_a, status="charged")]
    # The licensee API keeps its contract's statuses: `charged` (the cart's decision), its payment still pending.
    assert (served["status"], served["payment"]["status"], served["payment"]["charged"]) == ("charged", "pending", 0)
    assert listed == [visit.session]

    charged = settle_payment(visit)

    assert (charged.status, charged.payment_status, charged.paid) == ("charged", "succeeded", 398)
