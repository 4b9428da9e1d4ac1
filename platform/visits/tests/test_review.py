"""A person settles what the engine could not: approve a corrected cart, or void the visit."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError

from core import tenancy
from tenants.audit import Actor
from tenants.models import AuditAction, AuditEntry
from visits.models import ChargeInstruction, ReviewDecision, Visit, VisitLine
from visits.services import review_decide
from visits.tests.test_pipeline import PRICE, priced_store  # noqa: F401 — fixture

ENTERED = datetime(2026, 3, 2, 9, tzinfo=UTC)


@pytest.fixture
def waiting(priced_store) -> Visit:  # noqa: F811
    return Visit.unscoped.create(
        tenant=priced_store.tenant,
        store=priced_store,
        session="R1",
        shopper_token_hash="t",
        status="needs_review",
        entered_at=ENTERED,
        exited_at=ENTERED,
        review_reasons=["unsure who took items at bin F01-B01"],
        settled_at=ENTERED,
    )


def _actor(user: User) -> Actor:
    return Actor(source="admin", user=user)


def test_approving_a_corrected_cart_charges_it_and_keeps_who_decided(waiting: Visit, manager_a: User) -> None:
    with tenancy.tenant_scope(waiting.tenant_id):
        visit = review_decide(
            actor=_actor(manager_a),
            visit=waiting,
            action="approve",
            cart_version=waiting.cart_version,
            lines=[{"sku": "SKU-001", "qty": 2}, {"sku": "SKU-002", "qty": 0}],
            note="seen on video",
        )
    assert visit.status == "awaiting_payment"  # charged once payments records it
    lines = VisitLine.unscoped.filter(visit=visit)
    assert [(line.sku, line.qty, line.source) for line in lines] == [("SKU-001", 2, "review")]
    assert visit.subtotal == 2 * PRICE
    decision = ReviewDecision.unscoped.get(visit=visit)
    assert (decision.reviewer, decision.action, decision.lines_after) == (
        manager_a,
        "approve",
        [{"sku": "SKU-001", "qty": 2}],
    )
    assert ChargeInstruction.unscoped.get(visit=visit).amount == visit.total
    assert AuditEntry.unscoped.filter(action=AuditAction.VISIT_APPROVED, object_id=str(visit.pk)).exists()


def test_voiding_charges_nothing(waiting: Visit, manager_a: User) -> None:
    with tenancy.tenant_scope(waiting.tenant_id):
        visit = review_decide(actor=_actor(manager_a), visit=waiting, action="void", cart_version=waiting.cart_version)
    assert (visit.status, visit.total) == ("no_charge", 0)
    assert ChargeInstruction.unscoped.get(visit=visit).kind == "release"


@pytest.mark.parametrize(
    ("action", "lines", "message"),
    [
        ("approve", [{"sku": "NOPE", "qty": 1}], "not a product"),
        ("approve", [{"sku": "SKU-001", "qty": -1}], "whole number"),
        ("approve", [{"sku": "SKU-001", "qty": "2"}], "whole number"),
        ("charge!", [], "One of"),
    ],
)
def test_bad_decisions_change_nothing(waiting: Visit, manager_a: User, action: str, lines: list, message: str) -> None:
    with tenancy.tenant_scope(waiting.tenant_id), pytest.raises(ValidationError, match=message):
        review_decide(actor=_actor(manager_a), visit=waiting, action=action, cart_version=0, lines=lines)
    waiting.refresh_from_db()
    assert waiting.status == "needs_review"
    assert not ReviewDecision.unscoped.exists()
    assert not ChargeInstruction.unscoped.exists()


def test_a_visit_not_waiting_for_review_cannot_be_decided_twice(waiting: Visit, manager_a: User) -> None:
    with tenancy.tenant_scope(waiting.tenant_id):
        review_decide(actor=_actor(manager_a), visit=waiting, action="void", cart_version=waiting.cart_version)
        with pytest.raises(ValidationError, match="not waiting for review"):
            review_decide(
                actor=_actor(manager_a),
                visit=waiting,
                action="approve",
                cart_version=waiting.cart_version,
                lines=[{"sku": "SKU-001", "qty": 1}],
            )
    assert ReviewDecision.unscoped.count() == 1


def test_a_decision_on_a_cart_that_changed_since_is_refused_whatever_the_door(waiting: Visit, manager_a: User) -> None:
    seen = waiting.cart_version
    Visit.unscoped.filter(pk=waiting.pk).update(cart_version=seen + 1)  # late events settled it again
    stale = pytest.raises(ValidationError, match="changed while you were looking")
    with tenancy.tenant_scope(waiting.tenant_id), stale:
        review_decide(actor=_actor(manager_a), visit=waiting, action="void", cart_version=seen)
    waiting.refresh_from_db()
    assert (waiting.status, waiting.cart_version) == ("needs_review", seen + 1)
    assert not ReviewDecision.unscoped.exists()
    assert not ChargeInstruction.unscoped.exists()
    assert not AuditEntry.unscoped.filter(object_id=str(waiting.pk)).exists()
