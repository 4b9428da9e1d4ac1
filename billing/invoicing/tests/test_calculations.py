"""The invoice arithmetic, as pure functions: no database."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest

from billing.invoicing import calculations as calc

MAY = (date(2026, 5, 1), date(2026, 5, 31))


def _terms(plan_version_id: int, label: str, *, currency: str = "USD", **prices: int) -> calc.Terms:
    """A plan version's terms; the prices not given are 0."""
    fees = {"store_fee": 0, "visit_fee": 0, "revenue_share_bps": 0, "monthly_minimum": 0} | prices
    return calc.Terms(plan_version_id=plan_version_id, label=label, currency=currency, **fees)


STANDARD = _terms(1, "Standard v1", store_fee=31_000, visit_fee=5, revenue_share_bps=150)
PREMIUM = _terms(2, "Premium v1", store_fee=62_000, visit_fee=3, revenue_share_bps=100)


def _days(start: date, end: date, **usage: int) -> list[calc.DayUsage]:
    return [
        calc.DayUsage(day=start + timedelta(days=n), currency="USD", **usage) for n in range((end - start).days + 1)
    ]


def _may_draft(
    segments: list[calc.Segment],
    usage: list[calc.DayUsage],
    *,
    tax_rate_bps: int = 0,
    rates: dict[tuple[str, str], Decimal] | None = None,
) -> calc.InvoiceDraft:
    """May's invoice draft in USD for these segments of plan and this usage."""
    return calc.invoice_draft(
        start=MAY[0],
        end=MAY[1],
        segments=segments,
        usage=usage,
        currency="USD",
        tax_rate_bps=tax_rate_bps,
        rates=rates or {},
    )


def _may_segments(plans: list[tuple[calc.Terms, date, date | None]]) -> list[calc.Segment]:
    """The days of May on each of these plans (in force from, to)."""
    return calc.segments_in_period(plans, start=MAY[0], end=MAY[1])


@pytest.mark.parametrize(
    ("numerator", "denominator", "expected"),
    [(5, 2, 3), (3, 2, 2), (7, 2, 4), (1, 3, 0), (2, 3, 1), (-5, 2, -3), (0, 7, 0), (150_000, 31, 4839)],
)
def test_round_half_up(numerator: int, denominator: int, expected: int) -> None:
    assert calc.round_half_up(numerator, denominator) == expected


def test_month_parsing_and_bounds() -> None:
    assert calc.parse_month("2026-02") == (date(2026, 2, 1), date(2026, 2, 28))
    assert calc.parse_month("2024-02") == (date(2024, 2, 1), date(2024, 2, 29))
    assert calc.parse_month("2026-12") == (date(2026, 12, 1), date(2026, 12, 31))
    assert calc.previous_month(date(2026, 1, 1)) == (date(2025, 12, 1), date(2025, 12, 31))
    for bad in ("2026-13", "2026-5-1", "may", "", "26-05", "1999-01"):
        with pytest.raises(ValueError, match="YYYY-MM"):
            calc.parse_month(bad)


def test_a_whole_month_on_one_plan() -> None:
    usage = _days(*MAY, store_days=2, visits=10, gross_sales=100_000)
    draft = _may_draft(_may_segments([(STANDARD, date(2026, 1, 1), None)]), usage)
    kinds = {line.kind: line for line in draft.lines}
    assert kinds["store_fee"].quantity == 62 and kinds["store_fee"].amount == 62_000  # 2 stores × $310
    assert kinds["visit_fee"].quantity == 310 and kinds["visit_fee"].amount == 1_550
    assert kinds["revenue_share"].quantity == 3_100_000 and kinds["revenue_share"].amount == 46_500
    assert draft.subtotal == 110_050 and draft.tax == 0 and draft.total == 110_050


def test_a_mid_month_plan_change_is_prorated_by_day() -> None:
    """Standard 1–15 May, Premium from 16 May: two segments, each billed for its own days."""
    usage = _days(*MAY, store_days=3, visits=4, gross_sales=20_000)
    segments = _may_segments([(STANDARD, date(2026, 1, 1), date(2026, 5, 15)), (PREMIUM, date(2026, 5, 16), None)])
    assert [(s.starts_on.day, s.ends_on.day) for s in segments] == [(1, 15), (16, 31)]
    draft = _may_draft(segments, usage)
    lines = [(line.kind, line.plan_version_id, line.quantity, line.amount) for line in draft.lines]
    assert lines == [
        ("store_fee", 1, 45, 45_000),  # 3 stores × 15 days × $310 / 31
        ("visit_fee", 1, 60, 300),
        ("revenue_share", 1, 300_000, 4_500),
        ("store_fee", 2, 48, 96_000),  # 3 stores × 16 days × $620 / 31
        ("visit_fee", 2, 64, 192),
        ("revenue_share", 2, 320_000, 3_200),
    ]
    # A store active all month on one plan costs exactly the fee; split in two it still adds up by day.
    assert calc.round_half_up(31_000 * 15, 31) + calc.round_half_up(31_000 * 16, 31) == 31_000


def test_the_revenue_share_is_on_net_sales_and_never_negative() -> None:
    refunds_heavy = [calc.DayUsage(day=MAY[0], currency="USD", gross_sales=1_000, refunds=5_000)]
    draft = _may_draft(_may_segments([(STANDARD, MAY[0], None)]), refunds_heavy)
    share = next(line for line in draft.lines if line.kind == "revenue_share")
    assert share.quantity == 0 and share.amount == 0
    assert "gross $10.00 − refunds $50.00" in share.description


def test_the_minimum_is_topped_up_and_prorated() -> None:
    small = _terms(3, "Small v1", visit_fee=10, monthly_minimum=62_000)
    usage = [calc.DayUsage(day=date(2026, 5, 20), currency="USD", visits=100)]
    draft = _may_draft(_may_segments([(small, date(2026, 5, 17), None)]), usage, tax_rate_bps=2000)
    visit_fee, top_up = draft.lines
    assert visit_fee.amount == 1_000
    assert top_up.kind == "minimum" and top_up.amount == 30_000 - 1_000  # $620 × 15/31 days = $300, less fees
    assert "15 of 31 days" in top_up.description
    assert draft.tax == 200 + 5_800 and draft.total == 30_000 + 6_000


def test_tax_is_per_line_rounded_half_up_once() -> None:
    assert calc.tax_of(1_234, 2000) == 247  # 246.8
    assert calc.tax_of(25, 2000) == 5
    assert calc.tax_of(1, 2500) == 0  # 0.25
    assert calc.tax_of(2, 2500) == 1  # 0.5 rounds up


def test_sales_in_another_currency_count_at_the_months_rate() -> None:
    usage = [
        calc.DayUsage(day=MAY[0], currency="USD", gross_sales=100_000),
        calc.DayUsage(day=MAY[0], currency="EUR", gross_sales=10_000, refunds=1_000),
    ]
    segments = _may_segments([(STANDARD, MAY[0], None)])
    draft = _may_draft(segments, usage, rates={("EUR", "USD"): Decimal("1.0850")})
    share = next(line for line in draft.lines if line.kind == "revenue_share")
    assert share.quantity == 100_000 + 9_765  # €90.00 × 1.085 = $97.65
    with pytest.raises(calc.BillingError, match="no exchange rate EUR→USD"):
        _may_draft(segments, usage)


def test_a_plan_in_another_currency_or_overlapping_plans_cannot_be_billed() -> None:
    euro = _terms(9, "Euro v1", currency="EUR", store_fee=1)
    with pytest.raises(calc.BillingError, match="bills in EUR"):
        _may_draft(_may_segments([(euro, MAY[0], None)]), [])
    with pytest.raises(calc.BillingError, match="overlap"):
        _may_segments([(STANDARD, MAY[0], None), (PREMIUM, date(2026, 5, 10), None)])
