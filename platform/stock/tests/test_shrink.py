"""Shrink: units that left a shelf and no charged cart line explains, by day, bin and product, at the price then."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from rest_framework.test import APIClient

from catalog.models import Product, ProductPrice
from core import tenancy
from stock import shrink
from stores.models import Store
from tenants.audit import Actor
from visits.models import Visit
from visits.services import review_decide
from visits.tests.support import push, settle, stamp
from visits.tests.test_pipeline import PRICE, TAX, priced_store  # noqa: F401 — fixture

T0 = datetime(2026, 3, 2, 8, tzinfo=UTC)
SCALED = "F01-B01"  # under W-F01-B01, holds SKU-001 (250 g)
UNSCALED = "F02-B05"  # no scale; holds SKU-015
LATER_PRICE = 299  # SKU-001 from noon on the first day


def at(minutes: float) -> str:
    return stamp(T0 + timedelta(minutes=minutes))


def weight(name: str, minutes: float, grams: float, bin_: str = SCALED) -> dict[str, Any]:
    return {"id": name, "type": "shelf.weight_changed", "ts": at(minutes), "bin": bin_, "device": f"W-{bin_}",
            "delta_g": grams}  # fmt: skip


def camera(
    name: str, minutes: float, session: str, bin_: str, kind: str = "item.picked", **more: Any
) -> dict[str, Any]:
    return {"id": name, "type": kind, "ts": at(minutes), "session": session, "bin": bin_, "device": "CAM-01",
            "confidence": 0.97, **more}  # fmt: skip


def visit(session: str, minutes: float, *moves: dict[str, Any], leaves: float = 5) -> list[dict[str, Any]]:
    started = {"id": f"{session}-in", "type": "session.started", "ts": at(minutes), "session": session,
               "shopper": f"tok-{session}", "gate": "GATE-IN"}  # fmt: skip
    ended = {"id": f"{session}-out", "type": "session.ended", "ts": at(minutes + leaves), "session": session,
             "gate": "GATE-OUT"}  # fmt: skip
    return [started, *moves, ended]


DAY_EVENTS = [
    # v1 takes two and is charged for them: no shrink
    *visit("v1", 1, camera("v1-p", 2, "v1", SCALED, qty=2), weight("v1-w", 2.05, -500.0)),
    # v3 takes one from a bin without a scale and puts it back on another product's bin: it left its own
    *visit(
        "v3",
        60,
        camera("v3-p", 61, "v3", UNSCALED),
        camera("v3-r", 63, "v3", SCALED, kind="item.returned", sku="SKU-015"),
        weight("v3-w", 63.05, 250.0),
    ),
    # v4 takes one; a reviewer voids the visit below
    *visit("v4", 120, camera("v4-p", 121, "v4", SCALED), weight("v4-w", 121.05, -251.0)),
    # staff restock six; the scale drifts: nothing left the shelf
    {"id": "r1", "type": "shelf.restocked", "ts": at(180), "bin": SCALED, "device": "HANDHELD-01", "qty": 6},
    weight("r1-w", 180.5, 1500.0),
    weight("drift", 200, 4.5),
    # nobody in the store, one leaves the shelf (at the later price), and again the next morning
    weight("gone-1", 300, -249.0),
    weight("gone-2", 25 * 60, -250.0),
]


@pytest.fixture
def day(priced_store: Store, manager_a: User) -> Store:  # noqa: F811
    product = Product.unscoped.get(tenant=priced_store.tenant, sku="SKU-001")
    ProductPrice.unscoped.create(
        tenant=priced_store.tenant,
        product=product,
        currency="USD",
        unit_price=LATER_PRICE,
        tax_rate=TAX,
        effective_from=T0 + timedelta(hours=4),
    )
    push(priced_store, DAY_EVENTS)
    visits = {v.session: v for v in settle(priced_store, DAY_EVENTS)}
    assert (visits["v1"].status, visits["v3"].status, visits["v4"].status) == (
        "awaiting_payment",
        "no_charge",
        "awaiting_payment",
    )
    Visit.unscoped.filter(pk=visits["v4"].pk).update(status=Visit.Status.NEEDS_REVIEW)
    with tenancy.tenant_scope(priced_store.tenant_id):
        review_decide(
            actor=Actor(source="admin", user=manager_a),
            visit=visits["v4"],
            action="void",
            cart_version=visits["v4"].cart_version,
        )
    return priced_store


MIDNIGHT = datetime(2026, 3, 2, tzinfo=UTC)
EXPECTED = [
    # (ts, bin, sku, units, value): counted by hand from DAY_EVENTS
    (MIDNIGHT, SCALED, "SKU-001", 1, PRICE),  # v4's take, voided (v1's two are charged; the put-back weighs 0)
    (MIDNIGHT, UNSCALED, "SKU-015", 1, PRICE),  # v3's, put back on another product's bin
    (T0 + timedelta(hours=4), SCALED, "SKU-001", 1, LATER_PRICE),  # the unseen take at 13:00, at the noon price
    (MIDNIGHT + timedelta(days=1), SCALED, "SKU-001", 1, LATER_PRICE),  # the next morning's
]


def test_shrink_is_what_left_a_shelf_less_what_was_charged_from_it(day: Store) -> None:
    with tenancy.tenant_scope(day.tenant_id):
        report = shrink.shrink_report(store=day, since=MIDNIGHT, until=MIDNIGHT + timedelta(days=2))
        flows = shrink.shelf_flows(store=day, since=MIDNIGHT, until=MIDNIGHT + timedelta(days=1))
    found = [(item.ts, item.bin, item.sku, item.units, item.value) for item in report.items]
    assert sorted(found) == sorted(EXPECTED)
    assert (report.units, report.value, report.currency) == (4, 2 * PRICE + 2 * LATER_PRICE, "USD")
    assert {item.name for item in report.items} == {"Product SKU-001", "Product SKU-015"}
    morning = next(f for f in flows if f.bin == SCALED and f.starts == MIDNIGHT)
    # picks 2 + 1 seen by the cameras, v3's put-back of SKU-015; left: 2 + 1 (that put-back is not SKU-001)
    assert (morning.picks, morning.put_backs, morning.left, morning.charged) == (3, 1, 3, 2)
    elsewhere = next(f for f in flows if f.bin == UNSCALED)
    assert (elsewhere.picks, elsewhere.left, elsewhere.charged) == (1, 1, 0)


def test_the_api_answers_the_report_and_refuses_a_bad_period(day: Store, api_a: APIClient, api_b: APIClient) -> None:
    period = {"from": stamp(MIDNIGHT), "to": stamp(MIDNIGHT + timedelta(days=2))}
    answer = api_a.get("/api/v1/stores/S1/shrink", period)
    assert answer.status_code == 200, answer.json()
    body = answer.json()
    assert (body["units"], body["value"], body["currency"]) == (4, 2 * PRICE + 2 * LATER_PRICE, "USD")
    assert sorted((i["ts"], i["bin"], i["sku"], i["units"], i["value"]) for i in body["items"]) == sorted(
        (stamp(ts), code, sku, units, value) for ts, code, sku, units, value in EXPECTED
    )
    only_first_day = api_a.get("/api/v1/stores/S1/shrink", {**period, "to": stamp(MIDNIGHT + timedelta(days=1))})
    assert only_first_day.json()["units"] == 3
    backwards = api_a.get("/api/v1/stores/S1/shrink", {"from": period["to"], "to": period["from"]})
    assert backwards.status_code == 400
    assert "start must come before its end" in str(backwards.json()["error"])
    too_long = api_a.get(
        "/api/v1/stores/S1/shrink", {"from": stamp(MIDNIGHT - timedelta(days=100)), "to": period["to"]}
    )
    assert too_long.status_code == 400
    assert "at most 92 days" in str(too_long.json()["error"])
    assert api_a.get("/api/v1/stores/S1/shrink", {"from": "yesterday"}).status_code == 400
    assert api_b.get("/api/v1/stores/S1/shrink", period).status_code == 404


def test_days_are_the_stores_local_days(day: Store) -> None:
    Store.unscoped.filter(pk=day.pk).update(timezone="America/New_York")
    day.refresh_from_db()
    since = datetime(2026, 3, 2, 5, tzinfo=UTC)  # midnight in New York
    with tenancy.tenant_scope(day.tenant_id):
        report = shrink.shrink_report(store=day, since=since, until=since + timedelta(days=2))
    assert sorted({item.ts for item in report.items}) == [since, T0 + timedelta(hours=4), since + timedelta(days=1)]
    assert report.units == 4


def test_a_line_taken_from_two_bins_of_its_product_counts_on_each(priced_store: Store) -> None:  # noqa: F811
    """One cart line of two SKU-001, one from each of two bins: each bin had one unit leave and one charged — no
    shrink on either (counted whole on the first bin, the other would show one unit of shrink that never was)."""
    other = "F09-B05"  # under W-F09-B05, also SKU-001
    events = visit(
        "two",
        1,
        camera("two-p1", 2, "two", SCALED),
        weight("two-w1", 2.05, -250.0),
        camera("two-p2", 3, "two", other),
        weight("two-w2", 3.05, -250.0, bin_=other),
    )
    push(priced_store, events)
    (charged,) = settle(priced_store, events)
    assert charged.status == "awaiting_payment"  # settled; charged once payments records it
    with tenancy.tenant_scope(priced_store.tenant_id):
        assert [(line.sku, line.qty) for line in charged.lines.all()] == [("SKU-001", 2)]
        flows = shrink.shelf_flows(store=priced_store, since=MIDNIGHT, until=MIDNIGHT + timedelta(days=1))
    assert sorted((f.bin, f.left, f.charged, f.shrink) for f in flows) == [(SCALED, 1, 1, 0), (other, 1, 1, 0)]


def test_a_unit_charged_explains_a_unit_of_its_product_gone_from_any_of_its_bins() -> None:
    """Per product and stretch of a day: what left its bins less what was charged, shown where most was left."""

    def flow(code: str, sku: str, left: int, charged: int) -> shrink.ShelfFlow:
        return shrink.ShelfFlow(T0, code, code[:3], sku, PRICE, 0, 0, left, charged)

    flows = [
        flow("F01-B01", "SKU-001", 0, 1),  # charged from here, the unit went from F09-B05: no shrink on either
        flow("F09-B05", "SKU-001", 1, 0),
        flow("F02-B01", "SKU-011", 3, 1),  # 2 more left than charged here, 1 more charged than left there: 1
        flow("F02-B02", "SKU-011", 0, 1),
        flow("F02-B05", "SKU-015", 2, 0),  # a product on one bin: its own
    ]
    shared = {f.bin: f.shrink for f in shrink._share_shrink(flows)}
    assert shared == {"F01-B01": 0, "F09-B05": 0, "F02-B01": 1, "F02-B02": 0, "F02-B05": 2}
