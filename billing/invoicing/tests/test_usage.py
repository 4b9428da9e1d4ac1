"""Daily usage derived from visits, payments and reviews: store-local days, recomputable, never hand-edited."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.contrib.auth.models import User
from django.utils import timezone

from billing.invoicing import services
from billing.invoicing.models import DailyUsage
from billing.invoicing.tests.helpers import at, decide, make_store, make_visit, pay, sale
from billing.payments.models import PaymentAttempt
from stores.models import Store
from tenants.models import Tenant
from visits.models import Visit

MAY_1, MAY_31 = date(2026, 5, 1), date(2026, 5, 31)


def _rows(tenant: Tenant) -> dict[tuple[str, date], DailyUsage]:
    return {(u.store.code, u.day): u for u in DailyUsage.unscoped.filter(tenant=tenant).select_related("store")}


def test_usage_counts_visits_sales_refunds_and_reviews_per_store_local_day(tenant_a: Tenant, operator: User) -> None:
    ny = make_store(tenant_a, "NY", tz="America/New_York")
    # 02:00 UTC on 2 May is still 1 May in New York (UTC-4).
    sale(ny, at=datetime(2026, 5, 2, 2, 0, tzinfo=UTC), amount=1_250, refund=250)  # refunded at 23:00 local
    sale(ny, at=datetime(2026, 5, 2, 15, 0, tzinfo=UTC), amount=4_000)
    reviewed = make_visit(ny, settled_at=datetime(2026, 5, 2, 16, 0, tzinfo=UTC), status=Visit.Status.NEEDS_REVIEW)
    decide(reviewed, reviewer=operator, at=reviewed.exited_at + timedelta(minutes=30))
    pay(reviewed, purpose=PaymentAttempt.Purpose.CHARGE, amount=700, at=datetime(2026, 5, 2, 16, 40, tzinfo=UTC))
    failed = make_visit(ny, settled_at=datetime(2026, 5, 2, 17, 0, tzinfo=UTC), total=999)
    pay(failed, purpose=PaymentAttempt.Purpose.CAPTURE, amount=999, at=at(date(2026, 5, 2), 17), state="failed")

    services.usage_recompute(start=MAY_1, end=MAY_31)

    rows = _rows(tenant_a)
    first, second = rows[("NY", date(2026, 5, 1))], rows[("NY", date(2026, 5, 2))]
    assert (first.visits_settled, first.gross_sales, first.refunds, first.refunds_count) == (1, 1_250, 250, 1)
    assert second.visits_settled == 3
    assert second.gross_sales == 4_000 + 700  # the failed capture is not a sale
    assert (second.sent_to_review, second.decisions, second.decision_seconds) == (1, 1, 1800)
    assert all(row.store_active and row.currency == "USD" for row in rows.values())
    assert len(rows) == 31  # an active store counts every day, with or without visits


def test_refunds_count_on_the_day_they_succeed(tenant_a: Tenant) -> None:
    store = make_store(tenant_a, "S1")
    sale(store, at=at(date(2026, 5, 3)), amount=5_000, refund=1_500, refund_at=at(date(2026, 5, 9)))
    services.usage_recompute(start=MAY_1, end=MAY_31)
    rows = _rows(tenant_a)
    assert (rows[("S1", date(2026, 5, 3))].gross_sales, rows[("S1", date(2026, 5, 3))].refunds) == (5_000, 0)
    assert (rows[("S1", date(2026, 5, 9))].refunds, rows[("S1", date(2026, 5, 9))].refunds_count) == (1_500, 1)


def test_a_store_counts_from_the_day_it_was_created_and_inactive_stores_only_with_visits(tenant_a: Tenant) -> None:
    make_store(tenant_a, "NEW", created_at=datetime(2026, 5, 21, 9, 0, tzinfo=UTC))
    onboarding = make_store(tenant_a, "ONB", status=Store.Status.ONBOARDING)
    make_visit(onboarding, settled_at=at(date(2026, 5, 4)))
    make_store(tenant_a, "SHUT", status=Store.Status.CLOSED)
    services.usage_recompute(start=MAY_1, end=MAY_31)
    rows = _rows(tenant_a)
    assert sorted(day.day for (code, day) in rows if code == "NEW") == list(range(21, 32))
    assert [(code, day) for (code, day) in rows if code == "ONB"] == [("ONB", date(2026, 5, 4))]
    assert rows[("ONB", date(2026, 5, 4))].store_active
    assert not any(code == "SHUT" for code, _ in rows)


def test_recomputing_gives_the_same_rows_and_drops_rows_without_a_source(tenant_a: Tenant, tenant_b: Tenant) -> None:
    store = make_store(tenant_a, "S1")
    theirs = make_store(tenant_b, "B1")
    visit = sale(store, at=at(date(2026, 5, 10)), amount=2_000)
    sale(theirs, at=at(date(2026, 5, 10)), amount=9_000)
    assert services.usage_recompute(start=MAY_1, end=MAY_31) == 62
    first = {(u.tenant_id, u.store_id, u.day, u.visits_settled, u.gross_sales) for u in DailyUsage.unscoped.all()}
    assert services.usage_recompute(start=MAY_1, end=MAY_31) == 62
    again = {(u.tenant_id, u.store_id, u.day, u.visits_settled, u.gross_sales) for u in DailyUsage.unscoped.all()}
    assert first == again

    # The visit's payment is gone and the store closed: Alpha's rows go; Bravo's, not recomputed, stay.
    PaymentAttempt.unscoped.filter(visit=visit).delete()
    Visit.unscoped.filter(pk=visit.pk).delete()
    Store.unscoped.filter(pk=store.pk).update(status=Store.Status.CLOSED)
    services.usage_recompute(start=MAY_1, end=MAY_31, tenant_ids=[tenant_a.pk])
    assert not DailyUsage.unscoped.filter(tenant=tenant_a).exists()
    assert DailyUsage.unscoped.filter(tenant=tenant_b, day=date(2026, 5, 10)).get().gross_sales == 9_000


def test_a_range_ending_before_it_starts_is_refused(db: None) -> None:
    with pytest.raises(ValueError, match="before start"):
        services.usage_recompute(start=MAY_31, end=MAY_1)


def test_days_that_have_not_begun_on_the_stores_clock_are_not_billed(tenant_a: Tenant) -> None:
    """A month's draft to date recomputes the whole month: only the days each store has reached count."""
    ahead = make_store(tenant_a, "KIRI", tz="Pacific/Kiritimati")  # UTC+14
    behind = make_store(tenant_a, "PAGO", tz="Pacific/Pago_Pago")  # UTC-11
    utc_today = timezone.now().date()
    services.usage_recompute(start=utc_today - timedelta(days=2), end=utc_today + timedelta(days=5))
    rows = _rows(tenant_a)
    for store in (ahead, behind):
        local_today = timezone.localtime(timezone.now(), ZoneInfo(store.timezone)).date()
        days = sorted(day for (code, day) in rows if code == store.code)
        assert days[-1] == local_today
        assert days == [utc_today - timedelta(days=2) + timedelta(days=n) for n in range(len(days))]
