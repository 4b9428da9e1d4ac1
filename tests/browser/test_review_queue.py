"""The review queue in a real browser: a reviewer opens a visit the engine could not settle, reads its
timeline and floor plan, corrects a line and approves; the receipt then says what the reviewer decided.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from django.contrib.auth.models import User
from playwright.sync_api import Page, expect
from rest_framework.test import APIClient

from billing.payments.shoppers import shopper_register
from core import tenancy
from ingest.tests.conftest import eventually, upload, wait_for_stream
from stores.models import Store
from tenants import services as tenant_services
from tenants.audit import Actor
from tenants.models import Tenant
from tests.browser.support import api_get, log_in
from visits.models import ReviewDecision, Visit
from visits.tests.test_pipeline import priced_store  # noqa: F401 — fixture

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("celery_worker")]

Screenshot = Callable[[str], Path]


def _events(shopper_a: str = "tok_a", shopper_b: str = "tok_b") -> list[dict[str, Any]]:
    """A took one SKU-001 for sure; a minute later one more left F01-B01 while A and B stood there, and the
    camera hesitated (A 0.55, B 0.40): the engine puts it on A's cart, the likelier, and asks a person. B took a
    SKU-015 from a bin without a scale, seen by a camera alone (0.8): too unsure to charge within the store's
    0.5 % risk. Both visits wait for a person."""

    def event(event_id: str, kind: str, clock: str, **fields: Any) -> dict[str, Any]:
        return {"id": event_id, "type": kind, "ts": f"2026-03-02T09:{clock}Z", **fields}

    def camera(event_id: str, clock: str, session: str, bin_: str, confidence: float, **more: Any) -> dict[str, Any]:
        return event(
            event_id, "item.picked", clock, session=session, bin=bin_, device="CAM-01", confidence=confidence, **more
        )

    def scale(event_id: str, clock: str, bin_: str, delta_g: float) -> dict[str, Any]:
        return event(event_id, "shelf.weight_changed", clock, bin=bin_, device=f"W-{bin_}", delta_g=delta_g)

    return [
        event("v01", "session.started", "00:00", session="A", shopper=shopper_a, gate="GATE-IN"),
        event("v02", "session.started", "00:20", session="B", shopper=shopper_b, gate="GATE-IN"),
        camera("v03", "01:00", "A", "F01-B01", 0.97),
        scale("v04", "01:01", "F01-B01", -249.0),
        camera("v05", "01:40", "B", "F02-B05", 0.8),
        camera("v07", "02:10", "A", "F01-B01", 0.55, alternatives=[{"session": "B", "confidence": 0.4}]),
        scale("v08", "02:11", "F01-B01", -250.5),
        event("v09", "session.ended", "04:00", session="A", gate="GATE-OUT"),
        event("v10", "session.ended", "05:30", session="B", gate="GATE-OUT"),
    ]


@pytest.mark.browser
def test_a_reviewer_corrects_a_line_and_approves(
    page: Page,
    live_server,
    screenshot: Screenshot,
    api_a: APIClient,
    manager_a: User,
    tenant_a: Tenant,
    priced_store: Store,  # noqa: F811
    localstripe: Any,
) -> None:
    with tenancy.tenant_scope(tenant_a.pk):
        shopper_a, shopper_b = (
            shopper_register(
                actor=Actor.system(), tenant=tenant_a, external_ref=ref, payment_method="pm_card_visa"
            ).entry_token
            for ref in ("shopper-a", "shopper-b")
        )
    body = b"\n".join(orjson.dumps(event) for event in _events(shopper_a, shopper_b))
    wait_for_stream(api_a, upload(api_a, priced_store.code, body).json()["id"])
    eventually(lambda: Visit.unscoped.filter(store=priced_store, status="needs_review").count() == 2, timeout=60)
    base = live_server.url

    # The queue: both visits, oldest first.
    log_in(page, f"{base}/admin/login/?next=/admin/visits/visit/", manager_a)
    expect(page).to_have_url(f"{base}/admin/visits/visit/")
    results = page.locator("#result_list")
    expect(results).to_contain_text("A")
    assert "Review queue" in page.title()
    sessions = results.locator("tbody tr th a, tbody tr td a").all_inner_texts()
    assert [s.strip() for s in sessions if s.strip() in ("A", "B")] == ["A", "B"]
    screenshot("review-queue")

    # The visit: reasons, proposed cart, timeline with camera and scale side by side, the plan.
    results.get_by_role("link", name="A", exact=True).click()
    expect(page).to_have_url(re.compile(r"/admin/visits/visit/\d+/change/$"))
    expect(page.locator("#review-reasons")).to_contain_text("unsure who took or returned items at bin F01-B01")
    timeline = page.locator("#review-timeline")
    expect(timeline).to_be_visible()
    paired = timeline.locator("tr.oa-timeline-row").filter(has_text="v07")
    expect(paired).to_contain_text("v08")
    expect(paired).to_contain_text("≈ 1 × SKU-001")
    expect(timeline).to_contain_text("v03")  # A's sure pick, earlier on the same bin
    expect(timeline).not_to_contain_text("v05")  # B at another bin is not part of it
    plan = page.locator("#floor-plan svg")
    expect(plan).to_be_visible()
    expect(plan.locator('rect.bin[data-code="F01-B01"]')).to_have_attribute("stroke", "#dc2626")
    box = plan.bounding_box()
    assert box is not None and box["x"] + box["width"] <= page.viewport_size["width"], "the plan fits the page"
    qty = page.locator('#cart-lines tr[data-sku="SKU-001"] input[name="qty"]')
    expect(qty).to_have_value("2")
    expect(page.locator("#visit-risk")).to_contain_text("chance something on this receipt is not this shopper")
    screenshot("review-visit-detail")

    # The correction: the video shows the second one was B's hand.
    qty.fill("1")
    page.fill("#review-note", "Second SKU-001 seen on camera 1: shopper B took it.")
    page.get_by_role("button", name="Approve and charge").click()

    expect(page).to_have_url(f"{base}/admin/visits/visit/")
    expect(page.get_by_text("Visit A approved")).to_be_visible()
    expect(page.locator("#result_list")).not_to_contain_text(shopper_a)
    remaining = page.locator("#result_list tbody tr")
    expect(remaining).to_have_count(1)
    expect(remaining.first).to_contain_text("B")
    screenshot("review-after-approval")

    # The decided visit keeps its receipt and who decided what.
    page.goto(f"{base}/admin/visits/visit/?status=all")
    page.locator("#result_list").get_by_role("link", name="A", exact=True).click()
    eventually(lambda: Visit.unscoped.get(store=priced_store, session="A").payment_status == "succeeded")
    page.reload()  # "Being charged" until payments has recorded Stripe's answer
    expect(page.locator("#visit-status")).to_have_text("Charged after review")
    expect(page.locator("#review-payments")).to_contain_text("Paid")
    expect(page.locator("#review-form")).to_have_count(0)
    expect(page.locator("#review-decisions")).to_contain_text("alice@alpha.test")
    expect(page.locator("#review-decisions")).to_contain_text("2 × SKU-001")
    expect(page.locator("#review-decisions")).to_contain_text("1 × SKU-001")
    screenshot("review-visit-decided")

    decision = ReviewDecision.unscoped.get(visit__session="A")
    assert (decision.reviewer, decision.action) == (manager_a, "approve")
    key = tenant_services.api_key_issue(actor=Actor.system(), tenant=tenant_a, name="receipts").key
    _, receipt = api_get(f"{base}/api/v1/stores/{priced_store.code}/visits/A", key)
    assert receipt["status"] == "charged"
    assert [(line["sku"], line["qty"]) for line in receipt["lines"]] == [("SKU-001", 1)]
    assert receipt["review"]["decision"] == "approve"
    assert receipt["review"]["decided_by"] == "alice@alpha.test"
