"""The card hold in the review queue: the visit's page says when it lapses, in the store's time and from now, and
the queue puts the holds that lapse soonest first."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.utils import timezone

from billing.payments.models import PaymentAttempt
from conftest import logged_in
from stores.models import Store
from visits.models import Visit
from visits.tests.test_admin import _visit, waiting  # noqa: F401 — fixture: R1, R2 waiting for review
from visits.tests.test_pipeline import priced_store  # noqa: F401 — fixture

pytestmark = pytest.mark.django_db
QUEUE = "/admin/visits/visit/"


def _hold(visit: Visit, *, authorised_ago: timedelta, used: str = "") -> PaymentAttempt:
    hold = PaymentAttempt.unscoped.create(
        tenant_id=visit.tenant_id,
        visit=visit,
        purpose="preauth",
        amount=5000,
        currency="USD",
        state="succeeded",
        stripe_id=f"pi_{visit.session}",
        payment_intent_id=f"pi_{visit.session}",
    )
    PaymentAttempt.unscoped.filter(pk=hold.pk).update(updated_at=timezone.now() - authorised_ago)
    if used:
        PaymentAttempt.unscoped.create(
            tenant_id=visit.tenant_id,
            visit=visit,
            purpose=used,
            amount=5000,
            currency="USD",
            state="succeeded",
            payment_intent_id=hold.stripe_id,
        )
    return hold


def test_the_review_page_says_when_the_card_hold_lapses_in_the_stores_time(manager_a: User, waiting: Visit) -> None:  # noqa: F811
    Store.unscoped.filter(pk=waiting.store_id).update(timezone="Europe/Paris")
    _hold(waiting, authorised_ago=timedelta(days=5, hours=2))  # lapses in 1 d 22 h

    body = logged_in(manager_a).get(f"{QUEUE}{waiting.pk}/change/").content.decode()

    held = body[body.index('id="visit-hold"') : body.index("</dd>", body.index('id="visit-hold"'))]
    lapses = (timezone.now() + timedelta(days=1, hours=22)).astimezone(Store.unscoped.get(pk=waiting.store_id).zone)
    assert f"{lapses:%a} {lapses.day} {lapses:%b}, " in held and ("CET" in held or "CEST" in held)
    assert "(in 1 d 21 h)" in held or "(in 1 d 22 h)" in held


def test_a_captured_or_released_hold_is_not_shown(manager_a: User, waiting: Visit) -> None:  # noqa: F811
    _hold(waiting, authorised_ago=timedelta(days=1), used="cancel")

    body = logged_in(manager_a).get(f"{QUEUE}{waiting.pk}/change/").content.decode()

    assert 'id="visit-hold"' not in body and "Card hold lapses" not in body


def test_the_queue_puts_the_holds_that_lapse_soonest_first(manager_a: User, waiting: Visit) -> None:  # noqa: F811
    r2 = Visit.unscoped.get(session="R2")
    no_hold = _visit(waiting.store, "R4", review_reasons=["a reason"], exited=waiting.exited_at - timedelta(hours=1))
    _hold(waiting, authorised_ago=timedelta(days=2))  # lapses in 5 d
    _hold(r2, authorised_ago=timedelta(days=6))  # lapses in a day

    page = logged_in(manager_a).get(QUEUE).content.decode()

    order = sorted(("R1", "R2", "R4"), key=lambda session: page.index(f">{session}</a>"))
    assert order == ["R2", "R1", "R4"], "soonest lapse first; a visit without a hold (even older) after them"
    assert "Card hold lapses" in page and "in 23 h " in page and "no hold" in page
    by_exit = logged_in(manager_a).get(QUEUE, {"o": "4"}).content.decode()  # the Age column, as a manager clicks it
    assert by_exit.index(">R4</a>") < by_exit.index(">R1</a>")
    assert no_hold.status == "needs_review"
