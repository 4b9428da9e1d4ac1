"""Shoppers' disputes: the store's policy decides at once or sends to a person, refunds go through Stripe once."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from rest_framework.test import APIClient

from billing.payments import refunds
from billing.payments.models import RefundedLine
from billing.payments.tests.support import settle_payment, stripe_records
from billing.webhooks import services as webhooks
from billing.webhooks.models import WebhookDelivery
from core import tenancy
from disputes import selectors, services
from disputes.models import Dispute, DisputeLine
from stores.models import Store
from tenants.audit import Actor
from tenants.models import Tenant
from visits.calibration import DisputeOutcome
from visits.models import Visit, VisitLine

pytestmark = pytest.mark.django_db


def _url(visit: Visit) -> str:
    return f"/api/v1/stores/{visit.store.code}/visits/{visit.session}/disputes"


def _refunds_of(visit: Visit) -> list[int]:
    """The refunds Stripe (localstripe) itself holds for the visit's payments."""
    prefix = f"oa-{visit.tenant_id}-{visit.pk}-refund-"
    return [
        r["amount"] for r in stripe_records("refunds") if r["metadata"].get("openaisle_attempt", "").startswith(prefix)
    ]


def _open(api: APIClient, visit: Visit, lines: list[dict[str, Any]], reason: str = "not_taken") -> Any:
    return api.post(_url(visit), {"lines": lines, "reason": reason, "note": "I did not take it"}, format="json")


def test_a_small_dispute_is_refunded_at_once_through_stripe_and_announced(
    api_a: APIClient, tenant_a: Tenant, store_a: Store, charged_visit: Callable[..., Visit]
) -> None:
    webhooks.webhook_endpoint_create(actor=Actor.system(), tenant=tenant_a, url="https://hooks.alpha.test/d")
    visit = charged_visit(store_a)

    answer = _open(api_a, visit, [{"sku": "COLA", "qty": 1}])

    assert answer.status_code == 201, answer.json()
    body = answer.json()
    assert (body["status"], body["refund"], body["asked"], body["reason"]) == ("refunded", 199, 199, "not_taken")
    assert body["decision"]["by"] == "policy" and "auto-refund limit of $5.00" in body["decision"]["reason"]
    assert body["lines"] == [{"sku": "COLA", "name": "Product COLA", "qty": 1, "amount": 199}]
    visit = settle_payment(visit)
    assert (visit.paid, visit.refunded) == (3147, 199)
    assert _refunds_of(visit) == [199]
    [sent] = WebhookDelivery.unscoped.filter(tenant=tenant_a, event_type="dispute.resolved")
    assert sent.payload["id"] == body["id"] and sent.payload["status"] == "refunded" and sent.payload["refund"] == 199
    assert api_a.get(f"/api/v1/disputes/{body['id']}").json() == body
    listed = api_a.get(f"/api/v1/stores/{store_a.code}/disputes?status=refunded").json()
    assert [d["id"] for d in listed["results"]] == [body["id"]]
    assert api_a.get(f"/api/v1/stores/{store_a.code}/disputes?status=in_review").json()["count"] == 0


def test_above_the_limit_a_person_decides_by_the_deadline_and_the_refund_is_made_once(
    api_a: APIClient, store_a: Store, manager_a: User, charged_visit: Callable[..., Visit]
) -> None:
    visit = charged_visit(store_a)

    body = _open(api_a, visit, [{"sku": "WINE", "qty": 1}], reason="wrong_item").json()

    assert (body["status"], body["refund"], body["asked"], body["decision"]) == ("in_review", 0, 2400, None)
    deadline = Dispute.unscoped.get(pk=body["id"]).deadline
    assert deadline is not None and timedelta(hours=47) < deadline - timezone.now() <= timedelta(hours=48)
    manager = Actor(source="admin", user=manager_a)
    with tenancy.tenant_scope(store_a.tenant_id):
        dispute = Dispute.objects.get(pk=body["id"])
        services.dispute_decide(actor=manager, dispute=dispute, refund={"WINE": 1})
        with pytest.raises(services.DisputeConflict, match="decided already"):
            services.dispute_decide(actor=manager, dispute=dispute, refund={"WINE": 1})
    visit = settle_payment(visit)
    assert _refunds_of(visit) == [2400] and visit.refunded == 2400
    decided = api_a.get(f"/api/v1/disputes/{body['id']}").json()
    assert decided["status"] == "refunded" and decided["refund"] == 2400
    assert decided["decision"]["by"] == "person" and decided["decision"]["decided_by"] == manager_a.username


def test_a_person_refunding_part_of_a_dispute_tells_the_shopper_what_was_not_refunded(
    api_a: APIClient, store_a: Store, manager_a: User, charged_visit: Callable[..., Visit]
) -> None:
    visit = charged_visit(store_a)
    body = _open(api_a, visit, [{"sku": "WINE", "qty": 1}, {"sku": "CHIPS", "qty": 1}]).json()
    assert body["status"] == "in_review"
    with tenancy.tenant_scope(store_a.tenant_id):
        dispute = Dispute.objects.get(pk=body["id"])
        services.dispute_decide(actor=Actor(source="admin", user=manager_a), dispute=dispute, refund={"CHIPS": 1})
    decided = api_a.get(f"/api/v1/disputes/{body['id']}").json()
    assert (decided["status"], decided["refund"]) == ("refunded", 349)
    assert decided["decision"]["reason"] == "Refunded 1 × Product CHIPS; not refunded 1 × Product WINE."


def test_a_person_rejects_with_a_reason_and_nothing_is_refunded(
    api_a: APIClient, store_a: Store, manager_a: User, charged_visit: Callable[..., Visit]
) -> None:
    visit = charged_visit(store_a)
    body = _open(api_a, visit, [{"sku": "WINE", "qty": 1}]).json()
    manager = Actor(source="admin", user=manager_a)
    with tenancy.tenant_scope(store_a.tenant_id):
        dispute = Dispute.objects.get(pk=body["id"])
        with pytest.raises(ValidationError, match="Say why"):
            services.dispute_decide(actor=manager, dispute=dispute, refund={})
        with pytest.raises(ValidationError, match="at most 1 × WINE"):
            services.dispute_decide(actor=manager, dispute=dispute, refund={"WINE": 2})
        assert Dispute.objects.get(pk=dispute.pk).status == "in_review"
        services.dispute_decide(actor=manager, dispute=dispute, refund={}, reason="The camera shows the bottle taken.")
    decided = api_a.get(f"/api/v1/disputes/{body['id']}").json()
    assert (decided["status"], decided["refund"]) == ("rejected", 0)
    assert decided["decision"]["reason"] == "The camera shows the bottle taken."
    assert _refunds_of(settle_payment(visit)) == []


def test_lines_the_platform_was_unsure_of_are_refunded_at_once_whatever_their_amount(
    api_a: APIClient, store_a: Store, charged_visit: Callable[..., Visit]
) -> None:
    visit = charged_visit(store_a)
    VisitLine.unscoped.filter(visit=visit, sku="WINE").update(confidence=0.6)

    body = _open(api_a, visit, [{"sku": "WINE", "qty": 1}]).json()

    assert (body["status"], body["refund"]) == ("refunded", 2400)
    assert body["decision"]["reason"] == "The platform itself was unsure of every line disputed."
    Store.unscoped.filter(pk=store_a.pk).update(dispute_auto_refund_unsure=False)
    VisitLine.unscoped.filter(visit=visit, sku="CHIPS").update(confidence=0.6)
    assert _open(api_a, visit, [{"sku": "CHIPS", "qty": 1}]).json()["status"] == "refunded"  # $3.49: the limit
    Store.unscoped.filter(pk=store_a.pk).update(dispute_auto_refund_limit=0)
    assert _open(api_a, visit, [{"sku": "COLA", "qty": 1}]).json()["status"] == "in_review"


def test_outside_the_window_a_dispute_is_rejected_with_the_reason(
    api_a: APIClient, store_a: Store, charged_visit: Callable[..., Visit]
) -> None:
    visit = charged_visit(store_a, left_ago=timedelta(days=7, minutes=1))

    answer = _open(api_a, visit, [{"sku": "COLA", "qty": 1}])

    assert answer.status_code == 201
    body = answer.json()
    assert (body["status"], body["refund"]) == ("rejected", 0)
    assert body["decision"]["reason"].startswith("Outside the store's dispute window: 7 days after leaving")
    assert "CET" in body["decision"]["reason"]  # the store's own time
    assert _refunds_of(settle_payment(visit)) == []


def test_a_line_not_on_the_receipt_is_rejected(
    api_a: APIClient, store_a: Store, charged_visit: Callable[..., Visit]
) -> None:
    visit = charged_visit(store_a)

    body = _open(api_a, visit, [{"sku": "COLA", "qty": 1}, {"sku": "CAVIAR", "qty": 1}]).json()

    assert (body["status"], body["refund"]) == ("rejected", 0)
    assert body["decision"]["reason"] == "Not on the receipt: CAVIAR."
    assert {line["sku"]: line["name"] for line in body["lines"]} == {"CAVIAR": None, "COLA": "Product COLA"}


def test_more_than_was_charged_is_refused_and_nothing_is_written(
    api_a: APIClient, store_a: Store, charged_visit: Callable[..., Visit]
) -> None:
    visit = charged_visit(store_a)

    answer = _open(api_a, visit, [{"sku": "COLA", "qty": 3}])

    assert answer.status_code == 400
    assert answer.json()["error"]["details"] == {
        "lines[0].qty": ["3 × COLA is more than was charged and not refunded (2)."]
    }
    assert not Dispute.unscoped.exists() and not DisputeLine.unscoped.exists()
    with tenancy.tenant_scope(store_a.tenant_id):  # what a manager refunded is no longer the shopper's to dispute
        refunds.visit_refund(
            actor=Actor.system(), visit=visit, reason_code="damaged", lines=[{"sku": "COLA", "qty": 1}]
        )
    assert _open(api_a, visit, [{"sku": "COLA", "qty": 2}]).status_code == 400
    assert _open(api_a, visit, [{"sku": "COLA", "qty": 1}]).status_code == 201


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"lines": [], "reason": "not_taken"}, "lines"),
        ({"lines": [{"sku": "COLA", "qty": 1}], "reason": "changed_my_mind"}, "reason"),
        ({"lines": [{"sku": "COLA", "qty": 0}], "reason": "not_taken"}, "lines"),
        ({"lines": [{"sku": "COLA", "qty": 1}, {"sku": "COLA", "qty": 1}], "reason": "other"}, "lines[1].sku"),
    ],
)
def test_a_bad_body_is_refused_field_by_field(
    api_a: APIClient, store_a: Store, charged_visit: Callable[..., Visit], body: dict[str, Any], field: str
) -> None:
    visit = charged_visit(store_a)

    answer = api_a.post(_url(visit), body, format="json")

    assert answer.status_code == 400 and field in answer.json()["error"]["details"]
    assert not Dispute.unscoped.exists()


def test_the_same_line_twice_is_a_conflict(
    api_a: APIClient, store_a: Store, charged_visit: Callable[..., Visit]
) -> None:
    visit = charged_visit(store_a)
    assert _open(api_a, visit, [{"sku": "COLA", "qty": 1}]).json()["status"] == "refunded"

    again = _open(api_a, visit, [{"sku": "CHIPS", "qty": 1}, {"sku": "COLA", "qty": 1}])

    assert again.status_code == 409
    assert again.json()["error"] == {
        "code": "already_disputed",
        "message": "Already disputed on this visit: COLA.",
        "details": None,
    }
    assert Dispute.unscoped.count() == 1 and _refunds_of(settle_payment(visit)) == [199]
    dispute = Dispute.unscoped.get()
    with pytest.raises(IntegrityError), transaction.atomic():  # the database itself refuses a second row
        DisputeLine.unscoped.create(
            tenant_id=visit.tenant_id, dispute=dispute, visit=visit, sku="COLA", qty=1, amount=0
        )


def test_another_tenants_visit_and_dispute_answer_404(
    api_a: APIClient, api_b: APIClient, store_a: Store, charged_visit: Callable[..., Visit]
) -> None:
    visit = charged_visit(store_a)
    mine = _open(api_a, visit, [{"sku": "COLA", "qty": 1}]).json()

    assert _open(api_b, visit, [{"sku": "CHIPS", "qty": 1}]).status_code == 404
    assert api_b.get(f"/api/v1/disputes/{mine['id']}").status_code == 404
    assert api_b.get(f"/api/v1/stores/{store_a.code}/disputes").status_code == 404
    assert Dispute.unscoped.count() == 1


def test_a_visit_with_nothing_charged_cannot_be_disputed(
    api_a: APIClient, store_a: Store, charged_visit: Callable[..., Visit]
) -> None:
    visit = charged_visit(store_a, lines=[])
    visit = Visit.unscoped.get(pk=visit.pk)

    answer = _open(api_a, visit, [{"sku": "COLA", "qty": 1}])

    assert answer.status_code == 409 and answer.json()["error"]["code"] == "not_charged"


def test_a_dispute_and_a_managers_refund_of_the_same_line_never_refund_it_twice(
    api_a: APIClient, store_a: Store, manager_a: User, charged_visit: Callable[..., Visit]
) -> None:
    visit = charged_visit(store_a)
    body = _open(api_a, visit, [{"sku": "WINE", "qty": 1}]).json()
    assert body["status"] == "in_review"
    manager = Actor(source="admin", user=manager_a)
    with tenancy.tenant_scope(store_a.tenant_id):
        refunds.visit_refund(actor=manager, visit=visit, reason_code="goodwill", lines=[{"sku": "WINE", "qty": 1}])
        with pytest.raises(ValidationError, match="Only 0 of WINE"):
            refunds.visit_refund(actor=manager, visit=visit, reason_code="goodwill", lines=[{"sku": "WINE", "qty": 1}])
        services.dispute_decide(actor=manager, dispute=Dispute.objects.get(pk=body["id"]), refund={"WINE": 1})
    decided = api_a.get(f"/api/v1/disputes/{body['id']}").json()
    assert (decided["status"], decided["refund"]) == ("refunded", 0)
    assert "Already refunded by staff" in decided["decision"]["reason"]
    assert _refunds_of(settle_payment(visit)) == [2400]
    with pytest.raises(IntegrityError), transaction.atomic():  # the ledger refuses a unit more than was charged
        RefundedLine.unscoped.filter(visit=visit, sku="WINE").update(units_refunded=2)


def test_a_dispute_nobody_decided_by_its_deadline_is_refunded(
    api_a: APIClient, store_a: Store, charged_visit: Callable[..., Visit]
) -> None:
    visit = charged_visit(store_a)
    body = _open(api_a, visit, [{"sku": "WINE", "qty": 1}]).json()
    deadline = Dispute.unscoped.get(pk=body["id"]).deadline

    with tenancy.platform_wide_scope():
        assert services.disputes_past_deadline(now=deadline) == []
        assert services.disputes_past_deadline(now=deadline + timedelta(seconds=1)) == [(visit.tenant_id, body["id"])]
    with tenancy.tenant_scope(store_a.tenant_id):
        services.dispute_refund_overdue(dispute_id=body["id"], now=deadline + timedelta(seconds=1))
        services.dispute_refund_overdue(dispute_id=body["id"], now=deadline + timedelta(seconds=2))

    decided = api_a.get(f"/api/v1/disputes/{body['id']}").json()
    assert (decided["status"], decided["refund"], decided["decision"]["by"]) == ("refunded", 2400, "deadline")
    assert _refunds_of(settle_payment(visit)) == [2400]


def test_dispute_counts_give_the_stores_dispute_and_refund_shares(
    api_a: APIClient, store_a: Store, charged_visit: Callable[..., Visit]
) -> None:
    visits = [charged_visit(store_a, session=f"V{n}") for n in range(4)]
    _open(api_a, visits[0], [{"sku": "COLA", "qty": 1}])  # refunded
    _open(api_a, visits[1], [{"sku": "WINE", "qty": 1}])  # in review
    now = timezone.now()

    with tenancy.tenant_scope(store_a.tenant_id):
        counts = selectors.dispute_counts(store=store_a, start=now - timedelta(days=1), end=now)
        earlier = selectors.dispute_counts(store=store_a, start=now - timedelta(days=3), end=now - timedelta(days=2))

    assert (counts.visits, counts.disputed, counts.refunded) == (4, 2, 1)
    assert (counts.disputes, counts.refunded_share) == (0.5, 0.25)
    assert (earlier.visits, earlier.disputes, earlier.refunded_share) == (0, 0.0, 0.0)


def test_what_became_of_a_visit_s_disputes_is_the_strongest_outcome_a_person_or_the_policy_decided(
    store_a: Store, tenant_b: Tenant
) -> None:
    """What calibration checks the risks of visits charged without a person against (`dispute_outcomes`)."""
    store_b = Store.unscoped.create(tenant=tenant_b, code="DSP-B", name="Other", currency="USD")
    visits = {
        name: Visit.unscoped.create(tenant_id=store.tenant_id, store=store, session=name, status="charged", paid=500)
        for name, store in (
            ("upheld", store_a),
            ("unchecked", store_a),
            ("rejected", store_a),
            ("refused", store_a),
            ("waiting", store_a),
            ("other-store", store_b),
        )
    }
    person, policy, deadline = Dispute.DecidedBy.PERSON, Dispute.DecidedBy.POLICY, Dispute.DecidedBy.DEADLINE
    for name, status, by in (
        ("upheld", "rejected", person),  # a later dispute of another line, upheld: the strongest counts
        ("upheld", "refunded", person),
        ("unchecked", "refunded", policy),
        ("unchecked", "refunded", deadline),
        ("rejected", "rejected", person),
        ("refused", "rejected", policy),  # out of the window, or not on the receipt: nobody looked at it
        ("waiting", "in_review", ""),
        ("other-store", "refunded", person),
    ):
        visit = visits[name]
        Dispute.unscoped.create(
            tenant_id=visit.tenant_id,
            store=visit.store,
            visit=visit,
            status=status,
            decided_by=by,
            reason="not_taken",
            asked=100,
            currency="USD",
        )

    with tenancy.tenant_scope(store_a.tenant_id):
        outcomes = selectors.dispute_outcomes(store=store_a, visit_ids=[visit.pk for visit in visits.values()])

    names = {visit.pk: name for name, visit in visits.items()}
    assert {names[pk]: outcome for pk, outcome in outcomes.items()} == {
        "upheld": DisputeOutcome.UPHELD,
        "unchecked": DisputeOutcome.REFUNDED_UNCHECKED,
        "rejected": DisputeOutcome.REJECTED,
        "refused": DisputeOutcome.NONE,
    }
