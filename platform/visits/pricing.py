"""Pricing a cart: the unit price in force when the item was first taken, tax per line rounded half-up once."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal

from core.versions import version_at
from visits.engine import CartLine


@dataclass(frozen=True)
class PriceVersion:
    effective_from: datetime
    unit_price: int
    tax_rate: Decimal


@dataclass(frozen=True)
class PricedLine:
    sku: str
    qty: int
    unit_price: int
    amount: int
    tax_rate: Decimal
    tax: int
    confidence: float
    evidence: tuple[str, ...]
    taken_by: tuple[str, ...] = ()


@dataclass(frozen=True)
class PricedCart:
    lines: tuple[PricedLine, ...]
    subtotal: int
    tax: int
    total: int
    unpriced: tuple[str, ...]


def line_tax(*, amount: int, tax_rate: Decimal) -> int:
    """Tax of one line in minor units: amount × rate %, rounded half-up once."""
    return int((Decimal(amount) * tax_rate / 100).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def price_at(versions: Sequence[PriceVersion], at: datetime) -> PriceVersion | None:
    """The version in force at `at` from versions sorted by `effective_from`; before the first, the first (a
    product's first price covers what came before it), None with no version at all."""
    return version_at(versions, [v.effective_from for v in versions], at)


def price_cart(lines: Sequence[CartLine], *, prices: Mapping[str, Sequence[PriceVersion]]) -> PricedCart:
    priced: list[PricedLine] = []
    unpriced: list[str] = []
    for line in lines:
        version = price_at(prices.get(line.sku, ()), line.first_seen)
        if version is None:
            unpriced.append(line.sku)
            continue
        amount = version.unit_price * line.qty
        tax = line_tax(amount=amount, tax_rate=version.tax_rate)
        priced.append(
            PricedLine(
                line.sku,
                line.qty,
                version.unit_price,
                amount,
                version.tax_rate,
                tax,
                line.confidence,
                line.evidence,
                line.taken_by,
            )
        )
    subtotal = sum(p.amount for p in priced)
    tax_total = sum(p.tax for p in priced)
    return PricedCart(tuple(priced), subtotal, tax_total, subtotal + tax_total, tuple(unpriced))
