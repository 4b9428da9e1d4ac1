"""The dispute queue in the store admin: the list beside the review queue, a dispute's page with the visit's
evidence, and a manager's decision (refund through Stripe once, or reject with a reason)."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.utils import timezone

from billing.payments.tests.support import settle_payment, stripe_records
from conftest import logged_in
from core import tenancy
from disputes import services
from disputes.models import Dispute
from stores.models import Store
from tenants.audit import Actor
from visits.models import Visit
from visits.tests.test_admin import waiting  # noqa: F401 — fixture: a visit with events, bins and a layout
from visits.tests.test_pipeline import priced_store  # noqa: F401 — fixture

pytestmark = pytest.mark.django_db
QUEUE = "/admin/disputes/dispute/"


def _dispute(visit: Visit, sku: str, qty: int = 1) -> Dispute:
    with tenancy.tenant_scope(visit.tenant_id):
        return services.dispute_open(
            actor=Actor.system(), store=visit.store, visit=visit, lines=[{"sku": sku, "qty": qty}], reason="not_taken"
        )


@pytest.fixture
def disputed(waiting: Visit) -> Dispute:  # noqa: F811
    """The review page's visit R1, charged since, with its one line disputed above the store's limit (0)."""
    Visit.unscoped.filter(pk=waiting.pk).update(status="charged", paid=waiting.total, payment_status="succeeded")
    Store.unscoped.filter(pk=waiting.store_id).update(
        dispute_window_days=365, dispute_auto_refund_limit=0, dispute_auto_refund_unsure=False
    )
    dispute = _dispute(Visit.unscoped.select_related("store").get(pk=waiting.pk), "SKU-001")
    assert dispute.status == "in_review"
    return dispute


def test_the_queue_lists_waiting_disputes_nearest_deadline_first_beside_the_review_queue(
    manager_a: User, disputed: Dispute
) -> None:
    Dispute.unscoped.filter(pk=disputed.pk).update(deadline=timezone.now() + timedelta(hours=5, minutes=10))

    page = logged_in(manager_a).get(QUEUE).content.decode()

    assert "1 dispute waiting for a person" in page and "the nearest deadline in 5 h" in page
    assert "1 × SKU-001" in page and "Waiting for a person" in page
    opened = timezone.localtime(disputed.created_at, disputed.store.zone)
    row = page[page.index('id="result_list"') :]
    assert f"{opened.day} {opened:%b %Y %H:%M %Z}" in row and disputed.visit.session in row
    assert f"#{disputed.pk}" not in row  # our row number means nothing to the store
    assert 'id="queue-review"' in page and 'id="queue-disputes"' in page
    review = logged_in(manager_a).get("/admin/visits/visit/").content.decode()
    tabs = review[review.index('id="queue-tabs"') : review.index("</nav>", review.index('id="queue-tabs"'))]
    assert "Dispute queue" in tabs and "/admin/disputes/dispute/" in tabs


def test_the_dispute_page_shows_the_claim_the_deadline_and_the_visits_evidence(
    manager_a: User, disputed: Dispute
) -> None:
    page = logged_in(manager_a).get(f"{QUEUE}{disputed.pk}/change/")

    assert page.status_code == 200
    body = page.content.decode()
    opened = timezone.localtime(disputed.created_at, disputed.store.zone)
    assert f"Dispute of visit {disputed.visit.session}, {opened.day} {opened:%b %Y %H:%M %Z}" in body
    assert f"Dispute #{disputed.pk}" not in body
    assert "What the shopper says" in body and "not taken" in body
    assert 'name="refund-SKU-001" value="1"' in body and 'id="reject"' in body
    deadline = body[body.index('id="dispute-deadline"') : body.index("</dd>", body.index('id="dispute-deadline"'))]
    assert "(in 1 d 23 h" in deadline or "(in 2 d)" in deadline
    timeline = body[body.index('id="review-timeline"') :]
    for event_id in ("e02", "e03", "e04"):
        assert event_id in timeline
    assert "<svg" in body and 'stroke="#dc2626"' in body  # the bins involved, outlined on the floor plan
    assert "{" not in body[body.index('id="dispute-lines"') : body.index("</table>", body.index('id="dispute-lines"'))]


def test_rejecting_needs_a_reason_and_then_tells_it(manager_a: User, disputed: Dispute) -> None:
    client = logged_in(manager_a)
    url = f"{QUEUE}{disputed.pk}/change/"

    refused = client.post(url, {"action": "reject", "reason": " ", "refund-SKU-001": "1"})

    assert refused.status_code == 400 and "Say why the dispute is rejected" in refused.content.decode()
    assert Dispute.unscoped.get(pk=disputed.pk).status == "in_review"
    done = client.post(url, {"action": "reject", "reason": "The camera and the scale agree.", "refund-SKU-001": "1"})
    assert done.status_code == 302
    decided = Dispute.unscoped.get(pk=disputed.pk)
    assert (decided.status, decided.decided_by, decided.decided_by_user) == ("rejected", "person", manager_a)
    again = client.post(url, {"action": "refund", "refund-SKU-001": "1"})
    assert again.status_code == 400 and "was decided already" in again.content.decode()
    assert 'id="dispute-form"' not in again.content.decode()
    assert Dispute.unscoped.get(pk=disputed.pk).status == "rejected"


def test_a_viewer_sees_a_dispute_but_cannot_decide(viewer_a: User, disputed: Dispute) -> None:
    viewer = logged_in(viewer_a)

    assert 'id="dispute-form"' not in viewer.get(f"{QUEUE}{disputed.pk}/change/").content.decode()
    assert viewer.post(f"{QUEUE}{disputed.pk}/change/", {"action": "reject", "reason": "no"}).status_code == 403
    assert Dispute.unscoped.get(pk=disputed.pk).status == "in_review"


def test_another_tenants_dispute_is_not_listed_nor_opened_nor_decided(manager_b: User, disputed: Dispute) -> None:
    client = logged_in(manager_b)

    assert f"{QUEUE}{disputed.pk}/change/" not in client.get(QUEUE, {"status": "all"}).content.decode()
    assert client.get(f"{QUEUE}{disputed.pk}/change/").status_code == 404
    assert client.post(f"{QUEUE}{disputed.pk}/change/", {"action": "reject", "reason": "x"}).status_code == 404
    assert Dispute.unscoped.get(pk=disputed.pk).status == "in_review"


def test_a_manager_refunds_part_of_a_dispute_once_through_stripe(
    manager_a: User, store_a: Store, charged_visit: Callable[..., Visit]
) -> None:
    visit = charged_visit(store_a)
    by_policy = _dispute(visit, "COLA", qty=2)
    page = logged_in(manager_a).get(f"{QUEUE}{by_policy.pk}/change/").content.decode()
    assert "— by the store&#x27;s policy," in page and "by The" not in page
    Store.unscoped.filter(pk=store_a.pk).update(dispute_auto_refund_limit=0)
    dispute = _dispute(Visit.unscoped.select_related("store").get(pk=visit.pk), "WINE")
    client = logged_in(manager_a)
    url = f"{QUEUE}{dispute.pk}/change/"

    too_many = client.post(url, {"action": "refund", "refund-WINE": "2"})
    assert too_many.status_code == 400 and "Refund at most 1 × WINE" in too_many.content.decode()
    assert client.post(url, {"action": "refund", "refund-WINE": "1"}).status_code == 302
    assert client.post(url, {"action": "refund", "refund-WINE": "1"}).status_code == 400  # decided already

    visit = settle_payment(visit)
    prefix = f"oa-{visit.tenant_id}-{visit.pk}-refund-"
    refunds = [
        r["amount"] for r in stripe_records("refunds") if r["metadata"].get("openaisle_attempt", "").startswith(prefix)
    ]
    assert sorted(refunds) == [398, 2400] and visit.refunded == 2798  # 2 × COLA by the policy, WINE by the manager


def test_the_evidence_timeline_names_the_stores_clock_as_people_do(manager_a: User, disputed: Dispute) -> None:
    Store.unscoped.filter(pk=disputed.store_id).update(timezone="America/New_York")
    body = logged_in(manager_a).get(f"{QUEUE}{disputed.pk}/change/").content.decode()
    assert re.search(r"times in New York time \(E[SD]T\)", body) and "America/New_York" not in body
