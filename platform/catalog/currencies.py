"""The currencies the catalog accepts, with their minor unit: the one table of them.

Money is an integer in the currency's minor unit (DESIGN.md), so every conversion
between a decimal amount a person types ("3.49") and what we store (349) goes
through here, exactly, with `Decimal`.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Final

# ISO 4217 code -> digits after the decimal point (2 for cents, 0 for yen).
MINOR_UNITS: Final[dict[str, int]] = {
    "USD": 2,
    "EUR": 2,
    "GBP": 2,
    "CAD": 2,
    "AUD": 2,
    "NZD": 2,
    "CHF": 2,
    "SEK": 2,
    "NOK": 2,
    "DKK": 2,
    "PLN": 2,
    "CZK": 2,
    "MXN": 2,
    "SGD": 2,
    "HKD": 2,
    "JPY": 0,
    "KRW": 0,
}

# How amounts are shown in the admin; a currency without a symbol is shown with its code.
SYMBOLS: Final[dict[str, str]] = {
    "USD": "$",
    "EUR": "€",
    "GBP": "£",
    "CAD": "CA$",
    "AUD": "A$",
    "NZD": "NZ$",
    "MXN": "MX$",
    "SGD": "S$",
    "HKD": "HK$",
    "JPY": "¥",
    "KRW": "₩",
}


class UnknownCurrency(ValueError):
    """A currency code that is not in the table."""


def is_supported(code: str) -> bool:
    return code in MINOR_UNITS


def minor_digits(code: str) -> int:
    """How many decimals the currency's amounts have (2 for USD, 0 for JPY)."""
    try:
        return MINOR_UNITS[code]
    except KeyError:
        raise UnknownCurrency(code) from None


def to_minor(amount: Decimal, code: str) -> int:
    """`Decimal("3.49")`, "USD" -> 349. Raises ValueError when the amount has more decimals than the currency."""
    digits = minor_digits(code)
    scaled = amount.scaleb(digits)
    if scaled != scaled.to_integral_value():
        allowed = "no decimals" if digits == 0 else f"at most {digits} decimals"
        raise ValueError(f"{code} amounts have {allowed}")
    return int(scaled)


def from_minor(amount: int, code: str) -> Decimal:
    """349, "USD" -> `Decimal("3.49")`; 500, "JPY" -> `Decimal("500")`."""
    digits = minor_digits(code)
    return Decimal(amount).scaleb(-digits).quantize(Decimal(1).scaleb(-digits))


def format_money(amount: int, code: str) -> str:
    """349, "USD" -> "$3.49"; 1234500, "JPY" -> "¥1,234,500"; an unknown code is shown as is."""
    if code not in MINOR_UNITS:
        return f"{amount} {code} (minor units)"
    digits, symbol = MINOR_UNITS[code], SYMBOLS.get(code, f"{code} ")
    sign = "-" if amount < 0 else ""
    return f"{sign}{symbol}{from_minor(abs(amount), code):,.{digits}f}"
