"""From upload to receipts through the real pipeline: the clean day's receipts equal the truth exactly."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from rest_framework.test import APIClient

from billing.payments.models import PaymentAttempt
from catalog.models import Product
from ingest.tests.conftest import eventually, upload, wait_for_stream
from stores.models import LayoutVersion, Store
from tenants.models import Tenant
from visits.models import ChargeInstruction, Visit
from visits.pricing import line_tax
from visits.simulator import CatalogItem, Simulation, simulate
from visits.tests.support import PRICE, TAX, priced, registered_shoppers, unclear_pick

pytestmark = pytest.mark.usefixtures("celery_worker")
DAY = datetime(2026, 3, 2, 8, tzinfo=UTC)


@pytest.fixture
def priced_store(make_store_with_layout: Callable[..., Store], tenant_a: Tenant) -> Store:
    return priced(make_store_with_layout(tenant_a))


@pytest.fixture
def shopper_tokens(localstripe: Any, tenant_a: Tenant) -> list[str]:
    """Entry tokens of shoppers registered with a card on localstripe, for the simulated visits to carry."""
    return registered_shoppers(tenant_a, [f"shopper-{n}" for n in range(5)])


def _simulate(store: Store, profile: str, visits: int, seed: int = 1, shopper_tokens: Sequence[str] = ()):
    layout = LayoutVersion.unscoped.get(store=store).document
    catalog = {
        p.sku: CatalogItem(p.sku, float(p.unit_weight_g), float(p.weight_tolerance_g))
        for p in Product.unscoped.filter(tenant=store.tenant)
    }
    return simulate(
        layout=layout,
        catalog=catalog,
        profile=profile,
        visits=visits,
        start=DAY,
        seed=seed,
        shopper_tokens=shopper_tokens,
    )


def _run(api: APIClient, store: Store, simulation) -> None:
    for body in simulation.uploads:
        wait_for_stream(api, upload(api, store.code, body).json()["id"])
    visits = Visit.unscoped.filter(store=store)

    def all_settled() -> bool:
        return visits.count() >= len(simulation.truth) and not visits.filter(status__in=["open", "settling"]).exists()

    eventually(all_settled, timeout=60)


def _money_moved(store: Store) -> None:
    """Wait until payments has done every charge instruction of the store's visits and recorded Stripe's answers."""
    eventually(
        lambda: (
            not ChargeInstruction.unscoped.filter(visit__store=store, state="pending").exists()
            and not PaymentAttempt.unscoped.filter(visit__store=store, state__in=["pending", "processing"]).exists()
        ),
        timeout=60,
    )


def _clean_day_charged(api: APIClient, store: Store, visits: int, shopper_tokens: Sequence[str]) -> Simulation:
    """A clean simulated day of `visits` visits, uploaded, settled and charged."""
    simulation = _simulate(store, "clean", visits, shopper_tokens=shopper_tokens)
    _run(api, store, simulation)
    _money_moved(store)
    return simulation


def _receipts(api: APIClient, store: Store) -> dict[str, dict]:
    page = api.get(f"/api/v1/stores/{store.code}/visits", {"page_size": 500}).json()
    return {receipt["session"]: receipt for receipt in page["results"]}


def test_a_clean_day_gives_receipts_equal_to_the_truth(
    api_a: APIClient, priced_store: Store, shopper_tokens: list[str]
) -> None:
    simulation = _clean_day_charged(api_a, priced_store, 25, shopper_tokens)
    receipts = _receipts(api_a, priced_store)
    assert set(receipts) == set(simulation.truth)
    for session, truth in simulation.truth.items():
        receipt = receipts[session]
        assert {line["sku"]: line["qty"] for line in receipt["lines"]} == truth
        expected_tax = sum(line_tax(amount=PRICE * qty, tax_rate=TAX) for qty in truth.values())
        assert (receipt["subtotal"], receipt["tax"]) == (PRICE * sum(truth.values()), expected_tax)
        assert receipt["total"] == receipt["subtotal"] + receipt["tax"]
        assert receipt["status"] == ("charged" if truth else "no_charge")
        assert receipt["payment"]["charged"] == receipt["total"]
        assert receipt["payment"]["status"] == ("succeeded" if truth else None)
        assert receipt["review"] is None
        assert all(line["events"] for line in receipt["lines"])
    captures = ChargeInstruction.unscoped.filter(visit__store=priced_store, kind="capture")
    assert captures.count() == sum(1 for truth in simulation.truth.values() if truth)


def test_a_late_event_reopens_a_charged_visit_and_refunds_the_difference(
    api_a: APIClient, priced_store: Store, shopper_tokens: list[str]
) -> None:
    simulation = _clean_day_charged(api_a, priced_store, 3, shopper_tokens)
    charged = Visit.unscoped.filter(store=priced_store, status="charged").order_by("session").first()
    assert charged is not None
    events = simulation.events
    taken = next(e for e in events if e["type"] == "item.picked" and e["session"] == charged.session)
    weigh = next(e for e in events if e["type"] == "shelf.weight_changed" and e["bin"] == taken["bin"])
    late_at = datetime.fromisoformat(taken["ts"].replace("Z", "+00:00")) + timedelta(seconds=5)
    stamp = late_at.isoformat().replace("+00:00", "Z")
    late = [
        {
            "id": "late-1",
            "type": "item.returned",
            "ts": stamp,
            "session": charged.session,
            "bin": taken["bin"],
            "device": taken["device"],
            "qty": 1,
            "confidence": 0.98,
        },
        {
            "id": "late-2",
            "type": "shelf.weight_changed",
            "ts": stamp,
            "bin": taken["bin"],
            "device": weigh["device"],
            "delta_g": -weigh["delta_g"] / (taken.get("qty") or 1),
        },
    ]
    before = charged.total
    response = api_a.post(f"/api/v1/stores/{priced_store.code}/events", late, format="json")
    assert response.json()["accepted"] == 2
    eventually(lambda: Visit.unscoped.get(pk=charged.pk).cart_version == 2, timeout=30)
    charged.refresh_from_db()
    adjustment = ChargeInstruction.unscoped.get(visit=charged, kind="adjust")
    assert adjustment.amount == charged.total - before < 0
    assert charged.status in ("awaiting_payment", "charged")  # charged once the refund of the difference is recorded
    eventually(lambda: Visit.unscoped.get(pk=charged.pk).refunded == before - charged.total, timeout=30)
    eventually(lambda: Visit.unscoped.get(pk=charged.pk).status == "charged", timeout=30)
    receipt = api_a.get(f"/api/v1/stores/{priced_store.code}/visits/{charged.session}").json()
    assert receipt["version"] == 2


def test_an_unclear_visit_waits_for_review_with_its_reasons(api_a: APIClient, priced_store: Store) -> None:
    """The item goes on the likelier shopper's proposed cart, which waits for a person: its risk is far above the
    store's 0.5 %. B's cart holds nothing, so nothing can be overcharged: it settles with no charge."""
    bin_ = LayoutVersion.unscoped.get(store=priced_store).document["fixtures"][0]["bins"][0]
    events = unclear_pick(at=DAY + timedelta(hours=1), first="A", second="B", bin_=bin_)
    body = b"\n".join(orjson.dumps(e) for e in events)
    wait_for_stream(api_a, upload(api_a, priced_store.code, body).json()["id"])
    eventually(lambda: Visit.unscoped.filter(store=priced_store, settled_at__isnull=False).count() == 2)
    receipt = api_a.get(f"/api/v1/stores/{priced_store.code}/visits/A").json()
    assert receipt["status"] == "needs_review"
    lines = [(line["sku"], line["qty"], line["events"]) for line in receipt["lines"]]
    assert lines == [(bin_["sku"], 1, ["A-B-3", "A-B-4"])], "the pick and its weighing"
    assert "unsure who took" in receipt["review"]["reasons"][0]
    visit_a = Visit.unscoped.get(store=priced_store, session="A")
    assert 0.05 < visit_a.risk < 0.5
    assert not ChargeInstruction.unscoped.filter(visit=visit_a).exists()
    other = api_a.get(f"/api/v1/stores/{priced_store.code}/visits/B").json()
    assert (other["status"], other["lines"], other["review"]) == ("no_charge", [], None)
    assert Visit.unscoped.get(store=priced_store, session="B").risk == 0.0


def test_receipt_filters_and_isolation(api_a: APIClient, api_b: APIClient, priced_store: Store) -> None:
    simulation = _simulate(priced_store, "clean", 4)
    _run(api_a, priced_store, simulation)
    listed = api_a.get(f"/api/v1/stores/{priced_store.code}/visits", {"status": "charged"}).json()
    assert all(r["status"] == "charged" for r in listed["results"])
    assert api_a.get(f"/api/v1/stores/{priced_store.code}/visits", {"status": "bogus"}).status_code == 400
    assert api_a.get(f"/api/v1/stores/{priced_store.code}/visits", {"since": "yesterday"}).status_code == 400
    session = next(iter(simulation.truth))
    assert api_b.get(f"/api/v1/stores/{priced_store.code}/visits/{session}").status_code == 404
    assert api_b.get(f"/api/v1/stores/{priced_store.code}/visits").status_code == 404
    assert api_a.get(f"/api/v1/stores/{priced_store.code}/visits/nope").status_code == 404
