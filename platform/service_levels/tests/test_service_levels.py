"""Service levels: the set-based figures equal a direct count over the same visits; the API's periods, errors and
tenancy."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from rest_framework.test import APIClient

from core import tenancy
from disputes.models import Dispute
from disputes.selectors import dispute_counts
from service_levels import selectors
from service_levels.selectors import percentile_cont
from service_levels.tests.support import direct, make_visits, quantile
from stores import services as store_services
from stores.models import Store
from tenants.audit import Actor
from tenants.models import Tenant

START = datetime(2026, 10, 1, tzinfo=UTC)
END = datetime(2026, 10, 8, tzinfo=UTC)


def _store(tenant: Tenant, code: str, tz: str = "UTC") -> Store:
    return store_services.store_create(
        actor=Actor.system(), tenant=tenant, code=code, name=f"Store {code}", timezone=tz, currency="USD"
    )


def _stamp(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


def test_percentile_cont_interpolates_like_postgresql() -> None:
    assert percentile_cont([], 0.5) is None
    assert percentile_cont([7.0], 0.95) == 7.0
    assert percentile_cont([1.0, 2.0, 3.0, 4.0], 0.5) == 2.5
    assert percentile_cont([10.0, 0.0, 20.0], 0.95) == pytest.approx(19.0)


def test_figures_equal_a_direct_count_over_the_same_visits(tenant_a: Tenant, tenant_b: Tenant) -> None:
    north, south = _store(tenant_a, "N1"), _store(tenant_a, "S1")
    other = _store(tenant_b, "N1")
    # Visits before, in and after the period, in both stores and in another tenant's store.
    around = (START - timedelta(days=2), END - START + timedelta(days=4))
    made = {
        north: make_visits(north, count=260, start=around[0], span=around[1], seed=11),
        south: make_visits(south, count=180, start=around[0], span=around[1], seed=12, review_share=0.4),
        other: make_visits(other, count=120, start=around[0], span=around[1], seed=13),
    }
    with tenancy.tenant_scope(tenant_a.pk):
        levels = selectors.tenant_service_levels(start=START, end=END)
        one = selectors.store_service_levels(store=north, start=START, end=END)
    counted = {store: direct(visits, start=START, end=END) for store, visits in made.items()}
    everything = direct([*made[north], *made[south]], start=START, end=END)
    assert 0 < counted[north].visits < 260 and counted[south].visits > 0  # the period cuts the visits

    def same(found: selectors.ServiceLevels, expected: Any) -> None:
        assert found.visits == expected.visits
        assert found.settled_without_person == pytest.approx(expected.settled_without_person)
        assert found.refunded == pytest.approx(expected.refunded)
        assert found.exit_to_receipt_s.measured == len(expected.receipt_seconds)
        assert found.exit_to_receipt_s.p50 == pytest.approx(quantile(expected.receipt_seconds, 50))
        assert found.exit_to_receipt_s.p95 == pytest.approx(quantile(expected.receipt_seconds, 95))
        assert found.review_time_to_decision_s.measured == len(expected.decision_seconds)
        assert found.review_time_to_decision_s.p50 == pytest.approx(quantile(expected.decision_seconds, 50))
        assert found.review_time_to_decision_s.p95 == pytest.approx(quantile(expected.decision_seconds, 95))

    same(one, counted[north])
    assert [store.code for store, _ in levels.stores] == ["N1", "S1"]
    for store, found in levels.stores:
        same(found, counted[store])
    same(levels.total, everything)
    assert levels.total.settled_without_person != counted[south].settled_without_person  # not one store's
    with tenancy.platform_wide_scope():
        by_tenant = selectors.service_levels_by_tenant(first_day=date(2026, 10, 1), last_day=date(2026, 10, 7))
    same(by_tenant[tenant_a.pk], everything)
    same(by_tenant[tenant_b.pk], counted[other])


def test_local_days_follow_each_stores_clock(tenant_a: Tenant) -> None:
    """A store in New York: its 1 October starts at 04:00 UTC; a visit at 02:00 UTC belongs to 30 September."""
    store = _store(tenant_a, "NY", tz="America/New_York")
    visits = make_visits(store, count=80, start=START - timedelta(hours=12), span=timedelta(days=2), seed=5)
    low, high = datetime(2026, 10, 1, 4, tzinfo=UTC), datetime(2026, 10, 2, 4, tzinfo=UTC)
    expected = direct(visits, start=low, end=high)
    found = selectors.service_levels_by_tenant(
        first_day=date(2026, 10, 1), last_day=date(2026, 10, 1), tenant_ids=[tenant_a.pk]
    )[tenant_a.pk]
    assert found.visits == expected.visits > 0
    assert found.exit_to_receipt_s.p95 == pytest.approx(quantile(expected.receipt_seconds, 95))


def test_the_api_answers_the_contracts_figures(api_a: APIClient, tenant_a: Tenant) -> None:
    store = _store(tenant_a, "N1")
    visits = make_visits(store, count=90, start=START, span=END - START, seed=21)
    expected = direct(visits, start=START, end=END)
    response = api_a.get(f"/api/v1/stores/N1/service-levels?from={_stamp(START)}&to={_stamp(END)}")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["store"] == "N1" and body["visits"] == expected.visits == 90
    assert body["settled_without_person"] == round(expected.settled_without_person or 0, 4)
    assert body["refunded"] == round(expected.refunded or 0, 4)
    assert body["exit_to_receipt_s"]["p95"] == round(quantile(expected.receipt_seconds, 95), 1)
    assert body["review_time_to_decision_s"]["p50"] == round(quantile(expected.decision_seconds, 50), 1)
    assert body["from"].startswith("2026-10-01T00:00:00") and body["to"].startswith("2026-10-08T00:00:00")

    whole = api_a.get(f"/api/v1/service-levels?from={_stamp(START)}&to={_stamp(END)}").json()
    assert whole["visits"] == 90 and [s["store"] for s in whole["stores"]] == ["N1"]
    assert whole["stores"][0]["exit_to_receipt_s"] == body["exit_to_receipt_s"]

    empty = api_a.get("/api/v1/stores/N1/service-levels?from=2025-01-01T00:00:00Z&to=2025-02-01T00:00:00Z").json()
    assert empty["visits"] == 0 and empty["settled_without_person"] is None
    assert empty["exit_to_receipt_s"] == {"p50": None, "p95": None, "measured": 0}


def test_the_disputes_share_counts_each_visit_a_shopper_disputed_once(api_a: APIClient, tenant_a: Tenant) -> None:
    store = _store(tenant_a, "N1")
    visits = make_visits(store, count=40, start=START, span=END - START, seed=31)
    expected = direct(visits, start=START, end=END)
    for visit in [*visits[:5], visits[0]]:  # the first visit disputed twice counts once
        Dispute.unscoped.create(
            tenant=tenant_a, store=store, visit=visit, status="in_review", reason="not_taken", asked=100, currency="USD"
        )

    body = api_a.get(f"/api/v1/stores/N1/service-levels?from={_stamp(START)}&to={_stamp(END)}").json()

    assert body["visits"] == expected.visits == 40 and body["disputes"] == round(5 / 40, 4)
    with tenancy.tenant_scope(tenant_a.pk):
        assert selectors.store_service_levels(store=store, start=START, end=END).disputed_visits == 5
        counts = dispute_counts(store=store, start=START, end=END)
    assert (counts.visits, counts.disputed, counts.disputes) == (40, 5, 5 / 40)


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("from=yesterday", "from"),
        ("to=2026-10-01", "to"),
        ("from=2026-10-08T00:00:00Z&to=2026-10-01T00:00:00Z", "from"),
        ("from=2026-10-01T00:00:00Z&to=2026-10-01T00:00:00Z", "from"),
        ("from=2024-01-01T00:00:00Z&to=2026-01-01T00:00:00Z", "from"),
    ],
)
def test_a_bad_period_is_a_clear_error(api_a: APIClient, tenant_a: Tenant, query: str, field: str) -> None:
    _store(tenant_a, "N1")
    for path in ("/api/v1/stores/N1/service-levels", "/api/v1/service-levels"):
        response = api_a.get(f"{path}?{query}")
        assert response.status_code == 400, response.content
        error = response.json()["error"]
        assert error["code"] == "invalid" and field in error["details"], error


def test_another_tenants_store_is_404_and_its_visits_never_count(
    api_a: APIClient, api_b: APIClient, tenant_a: Tenant, tenant_b: Tenant
) -> None:
    _store(tenant_a, "N1")
    theirs = _store(tenant_b, "B1")
    make_visits(theirs, count=30, start=START, span=END - START, seed=31)
    period = f"from={_stamp(START)}&to={_stamp(END)}"
    missing = api_a.get(f"/api/v1/stores/B1/service-levels?{period}")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    assert api_a.get(f"/api/v1/service-levels?{period}").json()["visits"] == 0
    assert api_b.get(f"/api/v1/stores/B1/service-levels?{period}").json()["visits"] == 30
