"""The arithmetic of a licensee's monthly invoice: pure functions over plain data, no database.

A month is cut into *segments*, one per plan version the tenant was on (a mid-month change makes two). Each
segment bills, for its own days:

* the store fee: `store_fee × store-days ÷ days in the month` (a store-day is one store active on one day), so a
  store active all month costs exactly the fee, and a plan change prorates it by day;
* the visit fee: `visit_fee × visits settled`;
* the revenue share: `bps × net sales ÷ 10,000`, net sales being captured and charged sales minus refunds of the
  segment's days (never below zero), sales in another currency brought in at the month's exchange rate;
* a top-up to the monthly minimum, prorated by day like the store fee, when the segment's fees fall short;
* a service credit (a negative line) for each promise of the plan version the month's service levels missed:
  `credit bps × the segment's fees above ÷ 10,000`, never more than those fees in all. The levels are measured
  over the whole month (every store of the tenant, its own local days: `service_levels.selectors`); a month
  without visits, or without receipts or decisions to time, misses nothing it cannot measure.

Every division is rounded once, half-up, to the minor unit; tax is computed per line and rounded once, half-up.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal

from catalog.currencies import format_money


class BillingError(ValueError):
    """An invoice cannot be computed from the data given (e.g. a missing exchange rate)."""


def round_half_up(numerator: int, denominator: int) -> int:
    """`numerator / denominator` to the nearest integer, halves away from zero, in exact integer arithmetic."""
    if denominator <= 0:
        raise ValueError("denominator must be positive")
    sign = -1 if numerator < 0 else 1
    return sign * ((2 * abs(numerator) + denominator) // (2 * denominator))


def tax_of(amount: int, rate_bps: int) -> int:
    """Tax on one line: `amount × rate`, rounded once, half-up."""
    return round_half_up(amount * rate_bps, 10_000)


def convert(amount: int, rate: Decimal) -> int:
    """An amount in minor units of one currency into another's at `rate`, half-up (both with 2 or 0 decimals
    alike; currencies with different minor units are brought in through `rate` itself)."""
    return int((Decimal(amount) * rate).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def days_between(start: date, end: date) -> int:
    """Days from `start` to `end`, both included."""
    return (end - start).days + 1


def month_bounds(year: int, month: int) -> tuple[date, date]:
    """First and last day of a month."""
    first = date(year, month, 1)
    following = date(year + (month == 12), month % 12 + 1, 1)
    return first, following - timedelta(days=1)


def parse_month(text: str) -> tuple[date, date]:
    """ "2026-05" -> (2026-05-01, 2026-05-31); raises ValueError on anything else."""
    parts = text.strip().split("-")
    if len(parts) != 2 or not (parts[0].isdigit() and parts[1].isdigit()) or len(parts[0]) != 4:
        raise ValueError(f"expected a month as YYYY-MM, not {text!r}")
    year, month = int(parts[0]), int(parts[1])
    if not 1 <= month <= 12 or year < 2000:
        raise ValueError(f"expected a month as YYYY-MM, not {text!r}")
    return month_bounds(year, month)


def previous_month(today: date) -> tuple[date, date]:
    first_of_this = today.replace(day=1)
    last = first_of_this - timedelta(days=1)
    return month_bounds(last.year, last.month)


@dataclass(frozen=True)
class Promises:
    """The service levels a plan version promises (None: not promised), and the credit per missed one."""

    without_person_bps: int | None = None
    exit_to_receipt_p95_s: int | None = None
    review_p95_s: int | None = None
    credit_bps: int = 0

    @property
    def made(self) -> bool:
        return any(p is not None for p in (self.without_person_bps, self.exit_to_receipt_p95_s, self.review_p95_s))


@dataclass(frozen=True)
class MonthLevels:
    """A tenant's service levels over the month, as measured (plain data for these functions)."""

    visits: int = 0
    without_person: int = 0
    exit_to_receipt_p95_s: float | None = None
    review_p95_s: float | None = None


@dataclass(frozen=True)
class Terms:
    """The prices of one plan version, and its service promises."""

    plan_version_id: int | None
    label: str
    currency: str
    store_fee: int
    visit_fee: int
    revenue_share_bps: int
    monthly_minimum: int
    promises: Promises = Promises()


@dataclass(frozen=True)
class Segment:
    """Days of the period on one plan version (both ends included)."""

    terms: Terms
    starts_on: date
    ends_on: date


@dataclass(frozen=True)
class DayUsage:
    """A tenant's usage on one day, in one sales currency (a tenant with stores in two currencies has two)."""

    day: date
    currency: str
    store_days: int = 0
    visits: int = 0
    gross_sales: int = 0
    refunds: int = 0


@dataclass(frozen=True)
class LineDraft:
    kind: str
    description: str
    plan_version_id: int | None
    starts_on: date
    ends_on: date
    quantity: int
    unit: str
    unit_price: int
    amount: int
    tax: int


@dataclass(frozen=True)
class InvoiceDraft:
    currency: str
    lines: list[LineDraft] = field(default_factory=list)

    @property
    def subtotal(self) -> int:
        return sum(line.amount for line in self.lines)

    @property
    def tax(self) -> int:
        return sum(line.tax for line in self.lines)

    @property
    def total(self) -> int:
        return self.subtotal + self.tax


def _span(start: date, end: date) -> str:
    if start == end:
        return f"{start:%-d %b}"
    if start.month == end.month:
        return f"{start:%-d}–{end:%-d %b}"
    return f"{start:%-d %b}–{end:%-d %b}"


def _percent(bps: int) -> str:
    return f"{Decimal(bps) / 100:.2f} %"


def _seconds(value: float) -> str:
    return f"{value:,.1f} s" if value % 1 else f"{value:,.0f} s"


def promises_in_words(promises: Promises) -> str:
    """ "≥ 90.00 % settled without a person · p95 exit to receipt ≤ 60 s — credit 10.00 % of the month's fees per
    missed promise"; empty when nothing is promised."""
    if not promises.made:
        return ""
    promised = []
    if promises.without_person_bps is not None:
        promised.append(f"≥ {_percent(promises.without_person_bps)} settled without a person")
    if promises.exit_to_receipt_p95_s is not None:
        promised.append(f"p95 exit to receipt ≤ {_seconds(promises.exit_to_receipt_p95_s)}")
    if promises.review_p95_s is not None:
        promised.append(f"p95 review to decision ≤ {_seconds(promises.review_p95_s)}")
    return f"{' · '.join(promised)} — credit {_percent(promises.credit_bps)} of the month's fees per missed promise"


def missed_promises(promises: Promises, levels: MonthLevels) -> list[str]:
    """Each promise the levels miss, in words ("settled without a person 84.20 %, promised at least 90.00 %").
    What was not measured (no visits, no receipt, no decision) is not missed."""
    missed = []
    bps = promises.without_person_bps
    if bps is not None and levels.visits and levels.without_person * 10_000 < bps * levels.visits:
        share = round_half_up(levels.without_person * 10_000, levels.visits)
        missed.append(f"settled without a person {_percent(share)}, promised at least {_percent(bps)}")
    receipt, promised = levels.exit_to_receipt_p95_s, promises.exit_to_receipt_p95_s
    if promised is not None and receipt is not None and receipt > promised:
        missed.append(f"p95 exit to receipt {_seconds(receipt)}, promised at most {_seconds(promised)}")
    review, promised = levels.review_p95_s, promises.review_p95_s
    if promised is not None and review is not None and review > promised:
        missed.append(f"p95 review time to decision {_seconds(review)}, promised at most {_seconds(promised)}")
    return missed


def segments_in_period(
    assignments: Iterable[tuple[Terms, date, date | None]], *, start: date, end: date
) -> list[Segment]:
    """Clip (terms, starts_on, ends_on or None) to the period, in date order; raises on overlapping ones."""
    segments = []
    for terms, starts_on, ends_on in assignments:
        first = max(starts_on, start)
        last = min(ends_on or end, end)
        if first <= last:
            segments.append(Segment(terms=terms, starts_on=first, ends_on=last))
    segments.sort(key=lambda s: s.starts_on)
    for before, after in itertools.pairwise(segments):
        if after.starts_on <= before.ends_on:
            raise BillingError(f"plan assignments overlap on {after.starts_on}")
    return segments


def invoice_draft(
    *,
    start: date,
    end: date,
    segments: Sequence[Segment],
    usage: Iterable[DayUsage],
    currency: str,
    tax_rate_bps: int,
    rates: Mapping[tuple[str, str], Decimal],
    levels: MonthLevels | None = None,
) -> InvoiceDraft:
    """The lines of one tenant's invoice for the period `start`..`end` (a month) in `currency`.

    `rates[(sales currency, billing currency)]` converts sales in other currencies; a missing one raises
    `BillingError`, as does a segment whose plan bills in another currency. `levels`, the month's service
    levels, are checked against each segment's promises.
    """
    month_days = days_between(start, end)
    by_day: dict[date, list[DayUsage]] = {}
    for row in usage:
        by_day.setdefault(row.day, []).append(row)
    draft = InvoiceDraft(currency=currency)
    for segment in segments:
        terms = segment.terms
        if terms.currency != currency:
            raise BillingError(f"{terms.label} bills in {terms.currency}, the account in {currency}")
        rows = [
            row
            for offset in range(days_between(segment.starts_on, segment.ends_on))
            for row in by_day.get(segment.starts_on + timedelta(days=offset), [])
        ]
        lines = _segment_lines(segment, rows, month_days=month_days, tax_rate_bps=tax_rate_bps, rates=rates)
        lines += _service_credits(
            segment, fees=sum(line.amount for line in lines), levels=levels, tax_rate_bps=tax_rate_bps
        )
        draft.lines.extend(lines)
    return draft


def _service_credits(segment: Segment, *, fees: int, levels: MonthLevels | None, tax_rate_bps: int) -> list[LineDraft]:
    """One credit line per promise of the segment's plan version that the month missed, never more than its fees."""
    terms = segment.terms
    promises = terms.promises
    if levels is None or not promises.credit_bps or fees <= 0:
        return []
    lines = []
    left = fees
    for miss in missed_promises(promises, levels):
        credit = min(round_half_up(fees * promises.credit_bps, 10_000), left)
        if credit <= 0:
            break
        left -= credit
        lines.append(
            LineDraft(
                kind="service_credit",
                description=f"Service credit, {terms.label}, {_span(segment.starts_on, segment.ends_on)}: {miss} — "
                f"{_percent(promises.credit_bps)} of fees {format_money(fees, terms.currency)}",
                plan_version_id=terms.plan_version_id,
                starts_on=segment.starts_on,
                ends_on=segment.ends_on,
                quantity=1,
                unit="missed promise",
                unit_price=-credit,
                amount=-credit,
                tax=tax_of(-credit, tax_rate_bps),
            )
        )
    return lines


def _segment_lines(
    segment: Segment,
    rows: list[DayUsage],
    *,
    month_days: int,
    tax_rate_bps: int,
    rates: Mapping[tuple[str, str], Decimal],
) -> list[LineDraft]:
    terms = segment.terms
    currency = terms.currency
    span = _span(segment.starts_on, segment.ends_on)
    lines: list[LineDraft] = []

    def add(kind: str, description: str, quantity: int, unit: str, unit_price: int, amount: int) -> None:
        lines.append(
            LineDraft(
                kind=kind,
                description=description,
                plan_version_id=terms.plan_version_id,
                starts_on=segment.starts_on,
                ends_on=segment.ends_on,
                quantity=quantity,
                unit=unit,
                unit_price=unit_price,
                amount=amount,
                tax=tax_of(amount, tax_rate_bps),
            )
        )

    if terms.store_fee:
        store_days = sum(row.store_days for row in rows)
        add(
            "store_fee",
            f"Store fee, {terms.label}, {span}: {store_days} store-days at "
            f"{format_money(terms.store_fee, currency)} per store-month of {month_days} days",
            store_days,
            "store-days",
            terms.store_fee,
            round_half_up(terms.store_fee * store_days, month_days),
        )
    if terms.visit_fee:
        visits = sum(row.visits for row in rows)
        add(
            "visit_fee",
            f"Visit fee, {terms.label}, {span}: {visits} settled visits at {format_money(terms.visit_fee, currency)}",
            visits,
            "visits",
            terms.visit_fee,
            terms.visit_fee * visits,
        )
    if terms.revenue_share_bps:
        net, explained = _net_sales(rows, currency=currency, rates=rates)
        add(
            "revenue_share",
            f"Revenue share {_percent(terms.revenue_share_bps)}, {terms.label}, {span}: "
            f"net sales {format_money(net, currency)}{explained}",
            net,
            "net sales",
            terms.revenue_share_bps,
            round_half_up(net * terms.revenue_share_bps, 10_000),
        )
    if terms.monthly_minimum:
        days = days_between(segment.starts_on, segment.ends_on)
        minimum = round_half_up(terms.monthly_minimum * days, month_days)
        fees = sum(line.amount for line in lines)
        if fees < minimum:
            prorated = "" if days == month_days else f", {days} of {month_days} days"
            add(
                "minimum",
                f"Monthly minimum {format_money(terms.monthly_minimum, currency)}{prorated}, {terms.label}: "
                f"{format_money(minimum, currency)} less fees {format_money(fees, currency)}",
                1,
                "top-up",
                minimum - fees,
                minimum - fees,
            )
    return lines


def _net_sales(rows: list[DayUsage], *, currency: str, rates: Mapping[tuple[str, str], Decimal]) -> tuple[int, str]:
    """Net sales in the billing currency (never below zero), and how they were reached, for the description."""
    gross: dict[str, int] = {}
    refunds: dict[str, int] = {}
    for row in rows:
        gross[row.currency] = gross.get(row.currency, 0) + row.gross_sales
        refunds[row.currency] = refunds.get(row.currency, 0) + row.refunds
    net = 0
    parts = []
    for sales_currency in sorted(set(gross) | set(refunds)):
        own = gross.get(sales_currency, 0) - refunds.get(sales_currency, 0)
        text = (
            f"gross {format_money(gross.get(sales_currency, 0), sales_currency)} − refunds "
            f"{format_money(refunds.get(sales_currency, 0), sales_currency)}"
        )
        if sales_currency != currency:
            rate = rates.get((sales_currency, currency))
            if rate is None:
                raise BillingError(f"no exchange rate {sales_currency}→{currency} for the month")
            net += convert(own, rate)
            text += f" at {rate.normalize()} {currency}/{sales_currency}"
        else:
            net += own
        parts.append(text)
    return max(net, 0), f" ({'; '.join(parts)})" if parts else ""
