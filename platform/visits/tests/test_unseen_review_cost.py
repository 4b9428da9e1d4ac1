"""What a person's look at an item no camera saw costs the store (`Store.unseen_item_review_cost`), through settling:
the store's prices and its cost reach the engine, and a cheap unseen item is left uncharged rather than charged or
asked about."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from core import tenancy
from stores import services as store_services
from stores.models import Store
from tenants.audit import Actor
from tenants.models import Tenant
from visits import settling
from visits.models import Visit
from visits.tests.support import PRICE, priced, push, settle, stamp

AT = datetime(2026, 3, 2, 9, tzinfo=UTC)


def _day(store: Store) -> list[dict[str, Any]]:
    """A and B in the store together. A takes from the first bin at 10 s and 30 s; a unit leaves the bin beside it
    at 20 s, seen by no camera; B is at the first bin only at 60 s: by whereabouts, A over 0.9 likely took it."""
    with tenancy.tenant_scope(store.tenant_id):
        bins = sorted(settling.store_model(store=store).layouts[0].bins.values(), key=lambda b: b.code)
    first, beside = bins[0], bins[1]
    events: list[dict[str, Any]] = []

    def add(second: float, kind: str, **fields: Any) -> None:
        events.append({"id": f"e{len(events)}", "type": kind, "ts": stamp(AT + timedelta(seconds=second)), **fields})

    for session in ("A", "B"):
        add(0, "session.started", session=session, shopper="t", gate="GATE-IN")
    for second, session in ((10, "A"), (30, "A"), (60, "B")):
        add(second, "item.picked", session=session, bin=first.code, device="CAM-01", confidence=0.97)
        add(second + 0.5, "shelf.weight_changed", bin=first.code, device=first.sensor, delta_g=-250.0)
    add(20, "shelf.weight_changed", bin=beside.code, device=beside.sensor, delta_g=-250.0)  # no camera saw it
    for session in ("A", "B"):
        add(200, "session.ended", session=session, gate="GATE-OUT")
    return sorted(events, key=lambda event: event["ts"])


@pytest.mark.usefixtures("localstripe")
def test_a_cheap_unseen_item_is_left_uncharged_once_a_look_costs_more_than_it_would_recover(
    make_store_with_layout: Callable[..., Store], tenant_a: Tenant
) -> None:
    stores = {cost: priced(make_store_with_layout(tenant_a, code=f"S-{cost}")) for cost in (0, PRICE)}
    for cost, store in stores.items():
        with tenancy.tenant_scope(tenant_a.pk):
            store_services.store_update(
                actor=Actor.system(), store=store, unseen_item_review_cost=cost, overcharge_risk="0.05"
            )
            store.refresh_from_db()
            reading = settling.store_reading(store=store, visits=[])
        assert reading.unseen_review_cost == cost
        assert {product.unit_price for product in reading.model.products.values()} == {PRICE}
    read: dict[int, dict[str, Visit]] = {}
    for cost, store in stores.items():
        day = _day(store)
        push(store, day)
        read[cost] = {visit.session: visit for visit in settle(store, day)}

    def units(visit: Visit) -> int:
        with tenancy.tenant_scope(tenant_a.pk):
            return sum(line.qty for line in visit.lines.all())

    def unseen(visit: Visit) -> bool:
        return any(reason["code"] == "unseen_bin_change" for reason in visit.review_reasons)

    # A look costing nothing: A, singled out, takes the unit beside, charged within the store's risk.
    always = read[0]
    assert always["A"].status != Visit.Status.NEEDS_REVIEW and not unseen(always["A"])
    assert units(always["A"]) == 3  # two picks and the unit no camera saw
    assert units(always["B"]) == 1
    # A look costing the unit's whole price: less than certain, A would recover less than that. The unit is left
    # uncharged (shrink) and A is charged for what the cameras saw, without a person.
    costly = read[PRICE]
    assert not unseen(costly["A"]) and costly["A"].status != Visit.Status.NEEDS_REVIEW
    assert units(costly["A"]) == 2 and costly["A"].total < always["A"].total
    assert not unseen(costly["B"])
