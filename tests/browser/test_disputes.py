"""The dispute queue in a real browser: a shopper disputes a line above the store's auto-refund limit, a manager
opens it from the dispute queue beside the review queue, reads the visit's evidence and refunds it; Stripe
(localstripe) holds exactly one refund, and a manager's refund of the same line afterwards is refused."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.utils import timezone
from playwright.sync_api import Page, expect
from rest_framework.test import APIClient

from billing.payments.shoppers import shopper_register
from billing.payments.tests.support import decide_cart, open_visit, preauthorise, settle_payment, stripe_records
from core import tenancy
from ingest.models import Event
from ingest.tests.conftest import eventually
from stores.models import Store
from tenants.audit import Actor
from tenants.models import Tenant
from tests.browser.support import log_in
from visits.models import Visit, VisitLine
from visits.tests.test_pipeline import PRICE, priced_store  # noqa: F401 — fixture

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("celery_worker")]

Screenshot = Callable[[str], Path]


def _charged_visit_with_evidence(store: Store, tenant: Tenant) -> Visit:
    """Shopper A took 2 × SKU-001 (camera and scale at F01-B01) and 1 × SKU-002 (F01-B02), left an hour ago and
    was charged through localstripe."""
    with tenancy.tenant_scope(tenant.pk):
        token = shopper_register(
            actor=Actor.system(), tenant=tenant, external_ref="shopper-a", payment_method="pm_card_visa"
        ).entry_token
    visit = open_visit(store, token, session="A")
    preauthorise(visit)
    left = timezone.now() - timedelta(hours=1)
    entered = left - timedelta(minutes=4)

    def event(event_id: str, kind: str, seconds: int, **fields: Any) -> Event:
        ts = entered + timedelta(seconds=seconds)
        payload = {"id": event_id, "type": kind, "ts": ts.isoformat(), **fields}
        device = str(fields.get("device") or fields.get("gate") or "")
        return Event(
            tenant=tenant,
            store=store,
            event_id=event_id,
            type=kind,
            ts=ts,
            session=fields.get("session"),
            device=device,
            payload=payload,
        )

    Event.unscoped.bulk_create(
        [
            event("a01", "session.started", 0, session="A", gate="GATE-IN"),
            event("a02", "item.picked", 60, session="A", bin="F01-B01", device="CAM-01", confidence=0.99, qty=2),
            event("a03", "shelf.weight_changed", 61, bin="F01-B01", device="W-F01-B01", delta_g=-500),
            event("a04", "item.picked", 120, session="A", bin="F01-B02", device="CAM-01", confidence=0.98),
            event("a05", "shelf.weight_changed", 121, bin="F01-B02", device="W-F01-B02", delta_g=-251),
            event("a06", "session.ended", 240, session="A", gate="GATE-OUT"),
        ]
    )
    visit = decide_cart(visit, [("SKU-001", 2, PRICE), ("SKU-002", 1, PRICE)])
    Visit.unscoped.filter(pk=visit.pk).update(entered_at=entered, exited_at=left, events_count=6)
    visit.entered_at, visit.exited_at = entered, left
    VisitLine.unscoped.filter(visit=visit, sku="SKU-001").update(evidence=["a02", "a03"])
    VisitLine.unscoped.filter(visit=visit, sku="SKU-002").update(evidence=["a04", "a05"])
    settle_payment(visit)  # the worker may be at it already, from the charge instruction: either way, once
    eventually(lambda: Visit.unscoped.get(pk=visit.pk).paid == 3 * PRICE, timeout=60)
    return Visit.unscoped.get(pk=visit.pk)


def test_a_manager_decides_a_dispute_from_the_queue_and_the_shopper_is_refunded_once(
    page: Page,
    live_server: Any,
    screenshot: Screenshot,
    api_a: APIClient,
    manager_a: User,
    tenant_a: Tenant,
    priced_store: Store,  # noqa: F811
    localstripe: Any,
) -> None:
    Store.unscoped.filter(pk=priced_store.pk).update(
        dispute_auto_refund_limit=100, dispute_auto_refund_unsure=False, timezone="America/New_York"
    )
    visit = _charged_visit_with_evidence(priced_store, tenant_a)
    answer = api_a.post(
        f"/api/v1/stores/{priced_store.code}/visits/A/disputes",
        {"lines": [{"sku": "SKU-001", "qty": 2}], "reason": "wrong_quantity", "note": "I took only one, not two."},
        format="json",
    )
    assert answer.status_code == 201 and answer.json()["status"] == "in_review"
    dispute_id = answer.json()["id"]
    base = live_server.url

    # The review queue has the dispute queue beside it.
    log_in(page, f"{base}/admin/login/?next=/admin/visits/visit/", manager_a)
    expect(page.locator("#queue-disputes")).to_contain_text("1")
    page.locator("#queue-disputes").click()
    expect(page).to_have_url(f"{base}/admin/disputes/dispute/")
    results = page.locator("#result_list")
    expect(page.locator("#dispute-queue-header")).to_contain_text("1 dispute waiting for a person")
    expect(results).to_contain_text("2 × SKU-001")
    expect(results).to_contain_text("in 1 d 23 h")
    screenshot("dispute-queue")

    # The dispute: what the shopper says, the lines, the deadline and the visit's evidence.
    results.get_by_role("link", name=re.compile(r"\d{2}:\d{2} E[SD]T$")).click()  # when it was disputed
    expect(page).to_have_url(re.compile(rf"/admin/disputes/dispute/{dispute_id}/change/$"))
    expect(page.locator("#dispute-claim")).to_contain_text("I took only one, not two.")
    expect(page.locator("#dispute-deadline")).to_contain_text(re.compile(r"E[SD]T \(in 1 d 23 h\)"))
    expect(page.locator("#review-timeline")).to_contain_text("a03")
    expect(page.locator("#floor-plan svg rect.bin[data-code='F01-B01']")).to_have_attribute("stroke", "#dc2626")
    refund = page.locator('input[name="refund-SKU-001"]')
    expect(refund).to_have_value("2")
    screenshot("dispute-decision")

    # The scale says 500 g left the shelf, but the manager gives the shopper the benefit of the doubt for one.
    refund.fill("1")
    page.fill("#dispute-reason", "The scale is unclear: one refunded.")
    page.get_by_role("button", name="Refund the units above").click()
    expect(page).to_have_url(f"{base}/admin/disputes/dispute/")
    decided = re.compile(rf"Dispute of visit {re.escape(visit.session)}, .* — refunded: \$1\.99 back to the card\.")
    expect(page.get_by_text(decided)).to_be_visible()
    expect(page.locator("#queue-disputes")).to_contain_text("0")

    eventually(lambda: Visit.unscoped.get(pk=visit.pk).refunded == PRICE, timeout=60)
    prefix = f"oa-{tenant_a.pk}-{visit.pk}-refund-"
    refunds = [r for r in stripe_records("refunds") if r["metadata"].get("openaisle_attempt", "").startswith(prefix)]
    assert [r["amount"] for r in refunds] == [PRICE]

    # Deciding again is not offered; refunding the same unit from the visit's page is refused.
    page.goto(f"{base}/admin/disputes/dispute/{dispute_id}/change/")
    expect(page.locator("#dispute-status")).to_have_text("Refunded")
    expect(page.locator("#dispute-form")).to_have_count(0)
    expect(page.locator("#dispute-decision")).to_contain_text("alice@alpha.test")
    screenshot("dispute-decided")
    page.goto(f"{base}/admin/payments/paymentattempt/refund/{visit.pk}/")
    page.fill('input[name="qty-SKU-001"]', "2")
    page.get_by_role("button", name="Refund").click()
    expect(page.locator("#refund-problems")).to_contain_text("Only 1 of SKU-001 can still be refunded")
    refunds = [r for r in stripe_records("refunds") if r["metadata"].get("openaisle_attempt", "").startswith(prefix)]
    assert [r["amount"] for r in refunds] == [PRICE]
    assert api_a.get(f"/api/v1/disputes/{dispute_id}").json()["refund"] == PRICE
