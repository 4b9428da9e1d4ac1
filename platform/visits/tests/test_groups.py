"""Group visits (spec v1.1): companions on the payer's card, one receipt on the payer's visit saying who took each
line, settled once the last member has left; a companion's own URL answers with the group's receipt."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.contrib.auth.models import User
from rest_framework.test import APIClient

from billing.webhooks import announcements
from billing.webhooks.models import WebhookDelivery
from billing.webhooks.services import webhook_endpoint_create
from conftest import logged_in
from core import tenancy
from stores.models import LayoutVersion, Store
from tenants.audit import Actor
from tenants.models import Tenant
from visits import settling
from visits.models import ChargeInstruction, Visit, VisitLine
from visits.tests.support import PRICE, TAX, priced, push, settle, stamp

AT = datetime(2026, 3, 2, 9, tzinfo=UTC)


@pytest.fixture
def store(make_store_with_layout: Callable[..., Store], tenant_a: Tenant) -> Store:
    return priced(make_store_with_layout(tenant_a))


def _bins(store: Store) -> list[dict[str, Any]]:
    return LayoutVersion.unscoped.get(store=store).document["fixtures"][0]["bins"]


def _at(seconds: float) -> str:
    return stamp(AT + timedelta(seconds=seconds))


def _enter(session: str, second: float, *, group: str | None = None) -> dict[str, Any]:
    event = {"id": f"{session}-in", "type": "session.started", "ts": _at(second), "session": session}
    event |= {"shopper": "tok-family", "gate": "GATE-IN"} | ({"group": group} if group else {})
    return event


def _leave(session: str, second: float) -> dict[str, Any]:
    return {"id": f"{session}-out", "type": "session.ended", "ts": _at(second), "session": session, "gate": "GATE-OUT"}


def _take(
    name: str, second: float, session: str, bin_: dict[str, Any], *, sign: int = 1, **camera: Any
) -> list[dict[str, Any]]:
    """A camera action on `bin_` given to `session` (with `camera` fields) and the scale's change that confirms it."""
    kind = "item.picked" if sign > 0 else "item.returned"
    return [
        {"id": f"{name}-cam", "type": kind, "ts": _at(second), "session": session, "bin": bin_["code"]}
        | {"device": "CAM-01", "confidence": 0.97}
        | camera,
        {
            "id": f"{name}-w",
            "type": "shelf.weight_changed",
            "ts": _at(second + 1),
            "bin": bin_["code"],
            "device": bin_["sensor"],
            "delta_g": -250.0 * sign,
        },
    ]


def _family(store: Store) -> list[dict[str, Any]]:
    """P comes in with companion K (on P's card); the camera is torn between K and P over one item (no one else
    is in the store); P takes another; P leaves first, K two minutes later."""
    first, second = _bins(store)[:2]
    return [
        _enter("P", 0),
        _enter("K", 2, group="P"),
        *_take("k1", 10, "K", first, confidence=0.55, alternatives=[{"session": "P", "confidence": 0.45}]),
        *_take("p1", 20, "P", second),
        _leave("P", 60),
        _leave("K", 180),
    ]


def _receipt(api: APIClient, store: Store, session: str) -> dict[str, Any]:
    answer = api.get(f"/api/v1/stores/{store.code}/visits/{session}")
    assert answer.status_code == 200, answer.content
    return answer.json()


def test_a_group_has_one_receipt_on_its_payer_saying_who_took_each_line(
    api_a: APIClient, api_b: APIClient, store: Store
) -> None:
    first, second = _bins(store)[:2]
    push(store, _family(store))
    visits = {visit.session: visit for visit in settle(store, _family(store))}
    payer, member = visits["P"], visits["K"]
    assert (payer.group, member.group) == ("", "P")
    assert payer.status == Visit.Status.AWAITING_PAYMENT and payer.review_reasons == []
    line_total = PRICE + int((Decimal(PRICE) * TAX / 100).quantize(Decimal(1)))
    assert (payer.subtotal, payer.total) == (2 * PRICE, 2 * line_total)
    assert member.status == Visit.Status.NO_CHARGE and member.total == 0
    assert not VisitLine.unscoped.filter(visit=member).exists()
    # One payment: the payer's cart total; the companion's visit moves no money.
    assert list(ChargeInstruction.unscoped.filter(visit=payer).values_list("kind", "amount")) == [
        ("capture", payer.total)
    ]
    assert list(ChargeInstruction.unscoped.filter(visit=member).values_list("amount", flat=True)) == [0]

    receipt = _receipt(api_a, store, "P")
    assert {line["sku"]: line["taken_by"] for line in receipt["lines"]} == {first["sku"]: ["K"], second["sku"]: ["P"]}
    assert receipt["group"]["payer"] == "P"
    assert [m["session"] for m in receipt["group"]["members"]] == ["K"]
    assert receipt["group"]["members"][0]["exited_at"] is not None
    # The companion's own receipt URL answers with the group's receipt.
    assert _receipt(api_a, store, "K") == receipt
    listed = api_a.get(f"/api/v1/stores/{store.code}/visits").json()["results"]
    assert [r["session"] for r in listed] == ["P"]
    period = "from=2026-03-02T00:00:00Z&to=2026-03-03T00:00:00Z"
    levels = api_a.get(f"/api/v1/stores/{store.code}/service-levels?{period}").json()
    assert levels["visits"] == 1  # the group counts once, as its payer's visit
    assert api_b.get(f"/api/v1/stores/{store.code}/visits/K").status_code == 404
    assert api_b.get(f"/api/v1/stores/{store.code}/visits/P").status_code == 404


def test_a_shopper_alone_has_no_group_on_the_receipt(api_a: APIClient, store: Store) -> None:
    first = _bins(store)[0]
    day = [_enter("A", 0), *_take("a1", 10, "A", first), _leave("A", 60)]
    push(store, day)
    settle(store, day)
    receipt = _receipt(api_a, store, "A")
    assert (receipt["group"], receipt["lines"][0]["taken_by"], receipt["status"]) == (None, [], "charged")


def test_a_group_settles_once_its_last_member_has_left(api_a: APIClient, store: Store) -> None:
    """P leaves while K still shops: nothing of the group is settled; K's later take lands on P's receipt."""
    first, second, third = _bins(store)[:3]
    inside = [e for e in _family(store) if e["id"] != "K-out"]
    push(store, inside)
    settle(store, inside)
    with tenancy.tenant_scope(store.tenant_id):
        assert settling.visits_settle(store=store) == []
    statuses = dict(Visit.unscoped.filter(store=store).values_list("session", "status"))
    assert statuses == {"P": Visit.Status.SETTLING, "K": Visit.Status.OPEN}
    later = [*_take("k2", 120, "K", third), _leave("K", 180)]
    push(store, later)
    settle(store, later)
    payer = Visit.unscoped.get(store=store, session="P")
    assert payer.status == Visit.Status.AWAITING_PAYMENT
    lines = dict(VisitLine.unscoped.filter(visit=payer).values_list("sku", "taken_by"))
    assert lines == {first["sku"]: ["K"], second["sku"]: ["P"], third["sku"]: ["K"]}
    assert _receipt(api_a, store, "K")["total"] == payer.total


def test_a_late_put_back_by_a_companion_reopens_the_groups_receipt_and_refunds_exactly(
    api_a: APIClient, store: Store
) -> None:
    push(store, _family(store))
    settle(store, _family(store))
    payer = Visit.unscoped.get(store=store, session="P")
    charged = payer.total
    second = _bins(store)[1]
    late = _take("k-back", 150, "K", second, sign=-1)  # K puts back what P took
    push(store, late)
    settle(store, late)
    payer.refresh_from_db()
    assert [line["sku"] for line in _receipt(api_a, store, "K")["lines"]] == [_bins(store)[0]["sku"]]
    assert payer.total == charged // 2 and payer.charged_total == payer.total
    adjust = ChargeInstruction.unscoped.filter(visit=payer).order_by("sequence").values_list("kind", "amount")
    assert list(adjust) == [("capture", charged), ("adjust", payer.total - charged)]


def test_a_companion_whose_payer_never_entered_waits_for_a_person(api_a: APIClient, store: Store) -> None:
    first = _bins(store)[0]
    day = [_enter("K", 0, group="GHOST"), *_take("k1", 10, "K", first), _leave("K", 60)]
    push(store, day)
    (visit,) = settle(store, day)
    assert (visit.group, visit.status) == ("GHOST", Visit.Status.NEEDS_REVIEW)
    assert [(r["code"], r["text"], r["session"]) for r in visit.review_reasons] == [
        ("companion_without_payer", "entered as a companion of GHOST, who is no payer that entered: who pays?", "GHOST")
    ]
    receipt = _receipt(api_a, store, "K")
    assert (receipt["session"], receipt["group"], len(receipt["lines"])) == ("K", None, 1)
    assert not ChargeInstruction.unscoped.filter(visit=visit).exists()


def test_a_group_naming_its_own_session_is_read_as_no_group(store: Store) -> None:
    first = _bins(store)[0]
    day = [_enter("A", 0, group="A"), *_take("a1", 10, "A", first), _leave("A", 60)]
    push(store, day)
    (visit,) = settle(store, day)
    assert (visit.group, visit.status) == ("", Visit.Status.AWAITING_PAYMENT)


def _unsure_with_a_stranger(store: Store) -> list[dict[str, Any]]:
    """P and companion K shop while stranger X stands by: the camera cannot tell K from X over one item."""
    first, second = _bins(store)[:2]
    return [
        _enter("P", 0),
        _enter("K", 2, group="P"),
        {**_enter("X", 3), "shopper": "tok-stranger"},
        *_take("k1", 100, "K", first, confidence=0.55, alternatives=[{"session": "X", "confidence": 0.45}]),
        *_take("p1", 110, "P", second),
        _leave("P", 160),
        _leave("K", 170),
        _leave("X", 180),
    ]


def _settled_unsure_with_a_stranger(store: Store) -> dict[str, Visit]:
    """The group in doubt with a stranger, pushed and settled: its visits by session."""
    day = _unsure_with_a_stranger(store)
    push(store, day)
    return {visit.session: visit for visit in settle(store, day)}


def test_a_group_in_doubt_with_a_stranger_is_reviewed_once_on_its_payer_and_announced_with_its_members(
    store: Store, tenant_a: Tenant, api_a: APIClient
) -> None:
    visits = _settled_unsure_with_a_stranger(store)
    assert visits["P"].status == Visit.Status.NEEDS_REVIEW
    assert any(reason["code"] == "unsure_taker" for reason in visits["P"].review_reasons)
    assert (visits["K"].status, visits["K"].review_reasons) == (Visit.Status.NO_CHARGE, [])
    with tenancy.tenant_scope(tenant_a.pk):
        webhook_endpoint_create(actor=Actor.system(), tenant=tenant_a, url="https://hooks.example.com/openaisle")
        announcements.review_needed_announce(visit_id=visits["P"].pk)
        announcements.review_needed_announce(visit_id=visits["K"].pk)  # not in review: nothing to announce
        (sent,) = WebhookDelivery.objects.filter(event_type="visit.needs_review")
    assert (sent.payload["session"], sent.payload["group"]["payer"]) == ("P", "P")
    assert [member["session"] for member in sent.payload["group"]["members"]] == ["K"]
    details = sent.payload["reason_details"]
    assert sent.payload["reasons"] == [reason["text"] for reason in details], "the sentences stay as they were"
    unsure = next(reason for reason in details if reason["code"] == "unsure_taker")
    assert unsure["event_ids"] and unsure["bin"] and unsure["text"].endswith(f"({unsure['event_ids'][0]})")
    assert _receipt(api_a, store, "P")["review"]["reason_details"] == details, "the API serves what the hook sent"
    Visit.unscoped.filter(pk=visits["P"].pk).update(status=Visit.Status.PAYMENT_FAILED)
    with tenancy.tenant_scope(tenant_a.pk):
        announcements.payment_failure_announce(visit_id=visits["P"].pk)
        (failed,) = WebhookDelivery.objects.filter(event_type="payment.failed")
    assert [member["session"] for member in failed.payload["group"]["members"]] == ["K"]


def test_the_review_page_shows_the_groups_members_in_the_timeline_and_on_the_floor_plan(
    store: Store, manager_a: User, manager_b: User
) -> None:
    visits = _settled_unsure_with_a_stranger(store)
    client = logged_in(manager_a)
    page = client.get(f"/admin/visits/visit/{visits['P'].pk}/change/")
    assert page.status_code == 200
    body = page.content.decode()
    group = body[body.index('id="visit-group"') :]
    group = group[: group.index("</div>")]
    assert "pays for 1 companion" in group and f'href="/admin/visits/visit/{visits["K"].pk}/change/">K</a>' in group
    assert f"took from {_bins(store)[0]['code']}" in group
    assert "K entered as a companion of P (shopper token" in body  # the timeline
    assert '<div class="oa-sub oa-taken-by">taken by K</div>' in body  # the receipt
    assert '<strong class="oa-chip oa-chip-this">K</strong>' in body
    plan = body[body.index('id="floor-plan"') :]
    taker = 'class="taker" pointer-events="none">{}</text>'
    assert taker.format("K") in plan and taker.format("P") in plan
    listed = client.get("/admin/visits/visit/", {"status": "all"}).content.decode()
    assert "On P&#x27;s receipt (companion)" in listed or "On P's receipt (companion)" in listed
    companion = client.get(f"/admin/visits/visit/{visits['K'].pk}/change/").content.decode()
    assert "companion of" in companion and f'href="/admin/visits/visit/{visits["P"].pk}/change/">P</a>' in companion
    # Its own page does not say it took nothing, nor show a hold released for it: its items are the payer's.
    assert "A companion's items are on" in companion and "nothing was taken" not in companion
    assert "Charge instructions" not in companion
    other = logged_in(manager_b)
    assert other.get(f"/admin/visits/visit/{visits['P'].pk}/change/").status_code == 404
