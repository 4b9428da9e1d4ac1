"""The review queue in the store admin: the list, a visit's evidence, and the decision taken there."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone
from django.utils.html import escape
from django.utils.text import capfirst
from rest_framework.test import APIClient

from conftest import logged_in
from core.formatting import format_duration
from ingest.models import Event
from ingest.tests.conftest import eventually, upload, wait_for_stream
from stores.models import Store
from tenants.models import AuditEntry, Membership, Tenant
from visits import calibration
from visits.admin import risk_in_words
from visits.models import ChargeInstruction, ReviewDecision, Visit, VisitLine
from visits.tests.support import cart_line, keep_calibration, review_decision, stored_event
from visits.tests.test_pipeline import PRICE, TAX, priced_store  # noqa: F401 — fixture

ENTERED = datetime(2026, 3, 2, 9, tzinfo=UTC)
QUEUE = "/admin/visits/visit/"
UNSURE_AT_E04 = {
    "code": "unsure_taker",
    "text": "unsure who took or returned items at bin F01-B02 (e04)",
    "event_ids": ["e04"],
    "sku": "SKU-002",
    "bin": "F01-B02",
    "session": None,
    "qty": None,
}


def _at(seconds: float) -> datetime:
    return ENTERED + timedelta(seconds=seconds)


def _event(store: Store, event_id: str, kind: str, seconds: float, **fields: Any) -> Event:
    return stored_event(store, event_id, kind, _at(seconds), **fields)


def _visit(store: Store, session: str, *, status: str = "needs_review", exited: datetime | None = None, **extra: Any):
    exited = exited or _at(300)
    return Visit.unscoped.create(
        tenant_id=store.tenant_id,
        store=store,
        session=session,
        shopper_token_hash=f"tok-{session}",
        status=status,
        entered_at=exited - timedelta(minutes=5),
        exited_at=exited,
        settled_at=exited,
        currency=store.currency,
        **extra,
    )


def _line(visit: Visit, sku: str, qty: int, confidence: float, evidence: list[str]) -> VisitLine:
    return cart_line(visit, sku, qty, PRICE, tax_rate=TAX, confidence=confidence, evidence=evidence)


@pytest.fixture
def waiting(priced_store: Store) -> Visit:  # noqa: F811
    """R1 took one SKU-001 for sure (camera + scale on F01-B01) and may have taken one SKU-002 at F01-B02:
    the camera hesitated between R2 and R1. R3 worked at F01-B01 nearby, and far away later."""
    store = priced_store
    events = [
        _event(store, "e01", "session.started", 0, session="R1", shopper="tok-R1", gate="GATE-IN"),
        _event(store, "e00", "device.status", -600, device="W-F01-B02", status="degraded"),
        _event(store, "e11", "device.status", 100, device="W-F01-B02", status="offline"),
        _event(store, "e02", "item.picked", 60, session="R1", bin="F01-B01", device="CAM-01", confidence=0.97),
        _event(store, "e03", "shelf.weight_changed", 61, bin="F01-B01", device="W-F01-B01", delta_g=-250),
        _event(
            store,
            "e04",
            "item.picked",
            120,
            session="R2",
            bin="F01-B02",
            device="CAM-01",
            confidence=0.55,
            alternatives=[{"session": "R1", "confidence": 0.4}],
        ),
        _event(store, "e05", "shelf.weight_changed", 121, bin="F01-B02", device="W-F01-B02", delta_g=-251),
        _event(store, "e06", "item.picked", 150, session="R3", bin="F01-B01", device="CAM-01", confidence=0.98),
        _event(store, "e07", "shelf.weight_changed", 151, bin="F01-B01", device="W-F01-B01", delta_g=-500),
        _event(store, "e08", "item.picked", 600, session="R3", bin="F01-B01", device="CAM-01", confidence=0.98),
        _event(store, "e09", "item.picked", 130, session="R3", bin="F05-B01", device="CAM-03", confidence=0.99),
        _event(store, "e10", "session.ended", 300, session="R1", gate="GATE-OUT"),
    ]
    Event.unscoped.bulk_create(events)
    visit = _visit(
        store,
        "R1",
        review_reasons=[UNSURE_AT_E04],
        subtotal=PRICE,
        total=PRICE + 16,
        tax=16,
        cart_version=1,
        events_count=4,
    )
    _line(visit, "SKU-001", 1, 0.97, ["e02", "e03"])
    _visit(store, "R2", review_reasons=[UNSURE_AT_E04])
    _visit(store, "R3", status="charged")
    return visit


def _decide(client: Client, visit: Visit, action: str, lines: list[tuple[str, str]], note: str = "") -> Any:
    return client.post(
        f"{QUEUE}{visit.pk}/change/",
        {
            "cart_version": str(visit.cart_version),
            "sku": [sku for sku, _qty in lines],
            "qty": [qty for _sku, qty in lines],
            "proposed": ["SKU-001"],
            "note": note,
            "action": action,
        },
    )


def _bin_rect(svg: str, code: str) -> str:
    found = re.search(rf'<rect [^>]*class="bin" data-code="{re.escape(code)}"[^>]*>', svg)
    assert found, f"bin {code} is not drawn"
    return found.group(0)


# --- The queue ---------------------------------------------------------------------------------------


def test_the_queue_lists_only_visits_needing_review_oldest_first(manager_a: User, priced_store: Store) -> None:  # noqa: F811
    now = timezone.now()
    _visit(
        priced_store,
        "LATER",
        exited=now - timedelta(minutes=10),
        review_reasons=[{**UNSURE_AT_E04, "text": "a reason (x1)", "event_ids": ["x1"]}],
        total=431,
    )
    _visit(priced_store, "EARLIER", exited=now - timedelta(hours=2, minutes=5), review_reasons=["b"])
    _visit(priced_store, "DONE", status="charged", exited=now - timedelta(hours=3))
    client = logged_in(manager_a)

    response = client.get(QUEUE)

    assert response.status_code == 200
    assert [v.session for v in response.context["cl"].result_list] == ["EARLIER", "LATER"]
    body = response.content.decode()
    assert "Review queue" in body
    assert "2 h 5 min" in body and "10 min" in body
    assert "$4.31" in body
    assert "a reason" in body and "(x1)" not in body
    everything = client.get(QUEUE, {"status": "all"})
    assert {v.session for v in everything.context["cl"].result_list} == {"LATER", "EARLIER", "DONE"}
    charged = client.get(QUEUE, {"status": "charged"})
    assert [v.session for v in charged.context["cl"].result_list] == ["DONE"]
    found = client.get(QUEUE, {"status": "all", "q": "LATER"})
    assert [v.session for v in found.context["cl"].result_list] == ["LATER"]


def test_another_tenants_visits_are_not_listed_nor_opened(
    manager_a: User,
    priced_store: Store,  # noqa: F811
    bravo_store: Store,
) -> None:
    theirs = _visit(bravo_store, "THEIRS")
    client = logged_in(manager_a)
    assert "THEIRS" not in client.get(QUEUE, {"status": "all"}).content.decode()
    assert client.get(f"{QUEUE}{theirs.pk}/change/").status_code == 404
    refused = _decide(client, theirs, "void", [])
    assert refused.status_code == 404
    theirs.refresh_from_db()
    assert theirs.status == "needs_review"
    assert not ReviewDecision.unscoped.exists()


# --- The visit's page ---------------------------------------------------------------------------------


def test_the_visit_page_shows_the_receipt_reasons_timeline_and_plan(manager_a: User, waiting: Visit) -> None:
    response = logged_in(manager_a).get(f"{QUEUE}{waiting.pk}/change/")

    assert response.status_code == 200
    body = response.content.decode()
    assert "unsure who took or returned items at bin F01-B02" in body
    assert "SKU-001" in body and "0.97" in body and "$1.99" in body
    timeline = body[body.index('id="review-timeline"') : body.index('id="review-decisions"')]
    for event_id in ("e01", "e02", "e03", "e04", "e05", "e06", "e07", "e10", "e11"):
        assert event_id in timeline, f"{event_id} missing from the timeline"
    assert "e08" not in timeline, "an event on the bin long after the visit is not part of it"
    assert "e09" not in timeline, "an event on a bin the visit never touched is not part of it"
    rows = re.findall(r'<tr class="oa-timeline-row[^"]*">(.*?)</tr>', timeline, re.S)
    paired = next(row for row in rows if "e02" in row)
    assert "e03" in paired, "the scale reading sits beside the camera event it matches"
    assert "≈ 1 × SKU-001" in paired
    assert "R2" in timeline and "0.40" in timeline
    assert "W-F01-B02 reports offline" in timeline, "the scale's report during the visit is in the timeline"
    assert "e00" not in timeline, "a report long before is not, but it counts for the health shown"
    assert "scale W-F01-B02 (offline)" in body
    assert "If it was this shopper: add 1 × Product SKU-002" in body, "a person reads the product's name"
    reasons = body[body.index('id="review-reasons"') : body.index("</section>", body.index('id="review-reasons"'))]
    assert 'data-reason="unsure_taker"' in reasons and "(e04)" not in reasons, "the event is a link, not in the text"
    assert f'href="{QUEUE}{Visit.unscoped.get(session="R2").pk}/change/"' in body
    svg = body[body.index("<svg") : body.index("</svg>")]
    for code in ("F01-B01", "F01-B02"):
        assert 'stroke="#dc2626"' in _bin_rect(svg, code)
    assert 'stroke="#dc2626"' not in _bin_rect(svg, "F05-B01")
    assert "Weight sensor W-F01-B02: offline" in svg, "devices are drawn with their health at the visit's time"
    assert 'id="review-form"' in body
    assert "Approve and charge" in body and "Void (no charge)" in body


def test_a_late_scale_reading_sits_beside_its_pick_when_the_stores_scales_are_late(
    manager_a: User,
    priced_store: Store,  # noqa: F811
) -> None:
    """The store's scales stamp a change 9 s after the hand (its earlier picks show it): the visit's page pairs as
    the engine does, with the store's timing, not with the few delays of the visit's own events."""
    store = priced_store
    earlier = []
    for n in range(40):
        at = -3600 + n * 60
        pick = f"p{n:02d}"
        taken = {"session": f"X{n}", "bin": "F01-B02", "device": "CAM-01", "confidence": 0.97}
        earlier.append(_event(store, pick, "item.picked", at, **taken))
        weighed = {"bin": "F01-B02", "device": "W-F01-B02", "delta_g": -250}
        earlier.append(_event(store, f"w{n:02d}", "shelf.weight_changed", at + 9, **weighed))
    visit_events = [
        _event(store, "e01", "session.started", 0, session="R1", shopper="tok-R1", gate="GATE-IN"),
        _event(store, "e02", "item.picked", 60, session="R1", bin="F01-B01", device="CAM-01", confidence=0.97),
        _event(store, "e03", "shelf.weight_changed", 69, bin="F01-B01", device="W-F01-B01", delta_g=-250),
        _event(store, "e10", "session.ended", 300, session="R1", gate="GATE-OUT"),
    ]
    Event.unscoped.bulk_create(earlier + visit_events)
    visit = _visit(store, "R1", review_reasons=[UNSURE_AT_E04])

    page = logged_in(manager_a).get(f"{QUEUE}{visit.pk}/change/").content.decode()

    timeline = page[page.index('id="review-timeline"') : page.index('id="review-decisions"')]
    rows = re.findall(r'<tr class="oa-timeline-row[^"]*">(.*?)</tr>', timeline, re.S)
    paired = next(row for row in rows if "e02" in row)
    assert "e03" in paired and "no matching scale reading" not in paired


def test_a_line_is_marked_when_its_doubt_is_above_the_stores_charge_limit(manager_a: User, waiting: Visit) -> None:
    """R1's line is 0.97 sure: 3 % doubt is above a new store's 0.5 % limit, and within a learnt limit of 4 %."""
    client = logged_in(manager_a)
    Visit.unscoped.filter(pk=waiting.pk).update(risk=0.03)

    page = client.get(f"{QUEUE}{waiting.pk}/change/").content.decode()

    assert 'oa-num oa-unsure">0.97<' in page and "is above 0.5 %" in page
    assert "A 3 % chance something on this receipt is not this shopper" in page
    keep_calibration(waiting.store, calibration.with_risks(calibration.default(), [0.0] * 9 + [0.04]), number=1)
    relaxed = client.get(f"{QUEUE}{waiting.pk}/change/").content.decode()
    assert 'oa-num">0.97<' in relaxed and "is above 4 %" in relaxed
    assert f'href="/admin/visits/storecalibration/store/{waiting.store_id}/"' in relaxed


def test_approving_corrected_lines_charges_them_and_keeps_the_decision(manager_a: User, waiting: Visit) -> None:
    client = logged_in(manager_a)

    response = _decide(client, waiting, "approve", [("SKU-001", "2"), ("SKU-002", "1"), ("", "")], note="on video")

    assert response.status_code == 302 and response["Location"] == QUEUE
    waiting.refresh_from_db()
    assert waiting.status == "awaiting_payment"  # charged once payments records it
    assert sorted(VisitLine.unscoped.filter(visit=waiting).values_list("sku", "qty")) == [
        ("SKU-001", 2),
        ("SKU-002", 1),
    ]
    decision = ReviewDecision.unscoped.get(visit=waiting)
    assert (decision.reviewer, decision.action, decision.note) == (manager_a, "approve", "on video")
    assert decision.lines_before == [{"sku": "SKU-001", "qty": 1}]
    assert decision.lines_after == [{"sku": "SKU-001", "qty": 2}, {"sku": "SKU-002", "qty": 1}]
    assert ChargeInstruction.unscoped.get(visit=waiting).amount == waiting.total
    assert AuditEntry.unscoped.filter(action="visit.approved", source="admin", actor_user=manager_a).exists()
    queue = client.get(QUEUE)
    assert "R1" not in [v.session for v in queue.context["cl"].result_list]
    assert "approved" in queue.content.decode()
    page = client.get(f"{QUEUE}{waiting.pk}/change/").content.decode()
    assert 'id="review-form"' not in page
    assert "alice@alpha.test" in page and "1 × SKU-001" in page and "2 × SKU-001, 1 × SKU-002" in page


def test_staff_may_void_and_nothing_is_charged(
    make_member: Callable[..., User],
    tenant_a: Tenant,
    waiting: Visit,
) -> None:
    staff = make_member("sam@alpha.test", tenant_a, role=Membership.Role.STAFF)

    response = _decide(logged_in(staff), waiting, "void", [("SKU-001", "1")])

    assert response.status_code == 302
    waiting.refresh_from_db()
    assert (waiting.status, waiting.total) == ("no_charge", 0)
    assert ChargeInstruction.unscoped.get(visit=waiting).kind == "release"
    assert ReviewDecision.unscoped.get(visit=waiting).action == "void"


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        ([("SKU-001", "1"), ("NOPE-999", "1")], "not a product of the catalog"),
        ([("SKU-001", "two")], "whole number"),
        ([("SKU-001", "1"), ("", "3")], "choose a product"),
        ([("SKU-001", "5000")], "whole number from 0 to 1000"),
    ],
)
def test_a_bad_line_is_shown_and_nothing_changes(
    manager_a: User, waiting: Visit, lines: list[tuple[str, str]], message: str
) -> None:
    response = _decide(logged_in(manager_a), waiting, "approve", lines)

    assert response.status_code == 400
    body = response.content.decode()
    assert 'id="review-problems"' in body and message in body
    assert 'id="review-form"' in body, "the form is shown again, as typed"
    waiting.refresh_from_db()
    assert waiting.status == "needs_review"
    assert list(VisitLine.unscoped.filter(visit=waiting).values_list("sku", "qty")) == [("SKU-001", 1)]
    assert not ReviewDecision.unscoped.exists()
    assert not ChargeInstruction.unscoped.exists()


def test_a_cart_that_changed_meanwhile_is_not_decided(manager_a: User, waiting: Visit) -> None:
    seen = Visit.unscoped.get(pk=waiting.pk)
    Visit.unscoped.filter(pk=waiting.pk).update(cart_version=2)

    response = _decide(logged_in(manager_a), seen, "approve", [("SKU-001", "1")])

    assert response.status_code == 400
    assert "changed while you were looking" in response.content.decode()
    assert not ReviewDecision.unscoped.exists()


def test_a_viewer_sees_the_page_but_cannot_decide(viewer_a: User, waiting: Visit) -> None:
    viewer = logged_in(viewer_a)

    page = viewer.get(f"{QUEUE}{waiting.pk}/change/")

    assert page.status_code == 200
    body = page.content.decode()
    assert "e04" in body and "<svg" in body
    assert 'id="review-form"' not in body and "Approve and charge" not in body
    assert viewer.get(QUEUE).status_code == 200
    refused = _decide(viewer, waiting, "approve", [("SKU-001", "1")])
    assert refused.status_code == 403
    waiting.refresh_from_db()
    assert waiting.status == "needs_review"
    assert not ReviewDecision.unscoped.exists()


def test_a_decided_visit_cannot_be_decided_again(manager_a: User, waiting: Visit) -> None:
    client = logged_in(manager_a)
    assert _decide(client, waiting, "void", []).status_code == 302
    waiting.refresh_from_db()
    again = _decide(client, waiting, "approve", [("SKU-001", "1")])
    assert again.status_code == 400
    assert "not waiting for review" in again.content.decode()
    assert ReviewDecision.unscoped.count() == 1


# --- The dashboard ------------------------------------------------------------------------------------


def test_the_dashboard_shows_the_queue_and_review_figures_per_store(
    manager_a: User,
    priced_store: Store,  # noqa: F811
    bravo_store: Store,
) -> None:
    _visit(bravo_store, "THEIRS", exited=timezone.now() - timedelta(hours=5))
    now = timezone.now()
    for number in range(6):
        _visit(priced_store, f"OK{number}", status="charged", exited=now - timedelta(days=1, minutes=number))
    _visit(priced_store, "OLD", status="charged", exited=now - timedelta(days=9))
    _visit(priced_store, "W1", exited=now - timedelta(hours=1), review_reasons=["r"])
    for session, minutes in (("D1", 30), ("D2", 90)):
        decided = _visit(priced_store, session, status="charged", exited=now - timedelta(days=2), review_reasons=["r"])
        review_decision(decided, reviewer=manager_a, at=decided.exited_at + timedelta(minutes=minutes))

    response = logged_in(manager_a).get("/admin/")

    body = response.content.decode()
    assert "Review queue" in body and f'href="{QUEUE}"' in body and "oldest waiting 1 h" in body
    kpi = next(k for k in response.context["kpis"] if k["label"] == "Review queue")
    assert (kpi["value"], kpi["href"]) == (1, QUEUE)
    table = next(t for t in response.context["dashboard_tables"] if t["title"] == "Review, last 7 days")["table"]
    assert table["headers"][1:5] == ["Visits settled", "Sent to review", "Review rate", "Median time to decision"]
    # 6 charged + 1 waiting + 2 decided in the last 7 days; 3 went to a person; decided after 30 and 90 minutes.
    assert table["rows"] == [["S1 — Store S1", 9, 3, "33.3%", "1 h", "1 (oldest 1 h)"]]
    assert "33.3%" in body


def test_durations_read_as_people_say_them() -> None:
    assert format_duration(timedelta(seconds=42)) == "42 s"
    assert format_duration(timedelta(minutes=12, seconds=59)) == "12 min"
    assert format_duration(timedelta(hours=2, minutes=5)) == "2 h 5 min"
    assert format_duration(timedelta(hours=3)) == "3 h"
    assert format_duration(timedelta(days=3, hours=4, minutes=1)) == "3 d 4 h"
    assert format_duration(timedelta(seconds=-5)) == "0 s"


# --- Through the real pipeline ------------------------------------------------------------------------


@pytest.mark.usefixtures("celery_worker")
def test_a_visit_the_engine_sent_to_review_is_worked_in_the_admin(
    api_a: APIClient,
    manager_a: User,
    priced_store: Store,  # noqa: F811
) -> None:
    """A and B each took an item the camera gave them fairly surely (0.8), naming the other as runner-up (0.3):
    each cart holds its own item at a risk far above the store's, and both wait, sharing the two events."""
    events = [
        {"id": "u1", "type": "session.started", "ts": "2026-03-02T09:00:00Z", "session": "A", "shopper": "t1"},
        {"id": "u2", "type": "session.started", "ts": "2026-03-02T09:00:01Z", "session": "B", "shopper": "t2"},
        {
            "id": "u3",
            "type": "item.picked",
            "ts": "2026-03-02T09:01:00Z",
            "session": "A",
            "bin": "F01-B01",
            "device": "CAM-01",
            "confidence": 0.8,
            "alternatives": [{"session": "B", "confidence": 0.3}],
        },
        {
            "id": "u4",
            "type": "shelf.weight_changed",
            "ts": "2026-03-02T09:01:01Z",
            "bin": "F01-B01",
            "device": "W-F01-B01",
            "delta_g": -250,
        },
        {
            "id": "u7",
            "type": "item.picked",
            "ts": "2026-03-02T09:01:30Z",
            "session": "B",
            "bin": "F01-B02",
            "device": "CAM-01",
            "confidence": 0.8,
            "alternatives": [{"session": "A", "confidence": 0.3}],
        },
        {
            "id": "u8",
            "type": "shelf.weight_changed",
            "ts": "2026-03-02T09:01:31Z",
            "bin": "F01-B02",
            "device": "W-F01-B02",
            "delta_g": -250,
        },
        {"id": "u5", "type": "session.ended", "ts": "2026-03-02T09:03:00Z", "session": "A", "gate": "GATE-OUT"},
        {"id": "u6", "type": "session.ended", "ts": "2026-03-02T09:03:30Z", "session": "B", "gate": "GATE-OUT"},
    ]
    for event in events[:2]:
        event["gate"] = "GATE-IN"
    wait_for_stream(api_a, upload(api_a, priced_store.code, b"\n".join(orjson.dumps(e) for e in events)).json()["id"])
    eventually(lambda: Visit.unscoped.filter(store=priced_store, status="needs_review").count() == 2)
    client = logged_in(manager_a)
    queue = client.get(QUEUE)
    assert [v.session for v in queue.context["cl"].result_list] == ["A", "B"]
    assert f'href="/admin/visits/storecalibration/store/{priced_store.pk}/"' in queue.content.decode()
    visit_a = Visit.unscoped.get(store=priced_store, session="A")

    page = client.get(f"{QUEUE}{visit_a.pk}/change/").content.decode()

    assert "u3" in page and "u4" in page and "≈ 1 × SKU-001" in page
    assert 'stroke="#dc2626"' in _bin_rect(page[page.index("<svg") :], "F01-B01")
    assert "If it was not this shopper: take 1 × Product SKU-001 off" in page, "u3 is on A's cart already"
    assert "If it was this shopper: add 1 × Product SKU-002" in page, "u7 names A as the runner-up"
    assert "Also waiting on this event" in page, "B is named by the same events"
    risk = re.search(r'id="visit-risk">([^<]+)<', page)
    assert visit_a.risk is not None and visit_a.risk > 0.05
    assert risk and risk.group(1) == escape(capfirst(risk_in_words(visit_a.risk)))
    assert risk.group(1).endswith("chance something on this receipt is not this shopper&#x27;s")
    cart = page[page.index('id="review-cart"') : page.index('id="cart-lines"')]
    assert "above 0.5 %" in cart, "a line is marked when its doubt is above the store's charge limit"
    line = VisitLine.unscoped.get(visit=visit_a)
    assert 1 - line.confidence > 0.005
    assert f'oa-num oa-unsure">{line.confidence:.2f}<' in page, "A's line is likelier than 0.5 % not A's: marked"

    response = _decide(client, visit_a, "approve", [("SKU-001", "1")], note="seen on video")

    assert response.status_code == 302
    receipt = api_a.get(f"/api/v1/stores/{priced_store.code}/visits/A").json()
    assert receipt["status"] == "charged"
    assert [(line["sku"], line["qty"]) for line in receipt["lines"]] == [("SKU-001", 1)]
    assert receipt["review"]["decision"] == "approve"
    assert receipt["review"]["decided_by"] == "alice@alpha.test"
