"""A realistic grocery catalog for the demo, the store-layout generator, benchmarks and tests.

`sample_catalog_rows()` returns import rows (the columns of docs/catalog.md) for
drinks, snacks, dairy, produce, bakery and household products with sensible
weights, prices, tax rates and valid GTIN-13 barcodes. It is deterministic for a
seed; the SKUs and names never depend on the seed and the list always starts
with COLA-330, WATER-500 and CHIPS-SALT-150.
"""

from __future__ import annotations

import random
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Final

from catalog import currencies
from catalog.importing import gtin_check_digit

FOOD, STANDARD = "food", "standard"

# (category, sku stem, name, tax class, [(size code, size label, unit weight g, price USD)])
_FAMILIES: Final[list[tuple[str, str, str, str, list[tuple[str, str, int, str]]]]] = [
    ("drinks", "COLA", "Cola", STANDARD, [("330", "330 ml", 345, "1.29"), ("500", "500 ml", 530, "1.79")]),
    ("drinks", "WATER", "Still Water", STANDARD, [("500", "500 ml", 520, "0.99"), ("1500", "1.5 l", 1540, "1.49")]),
    ("snacks", "CHIPS-SALT", "Sea Salt Crisps", STANDARD, [("150", "150 g", 162, "2.49"), ("40", "40 g", 45, "0.99")]),
    ("drinks", "COLA-ZERO", "Cola Zero", STANDARD, [("330", "330 ml", 345, "1.29"), ("500", "500 ml", 530, "1.79")]),
    (
        "drinks",
        "SPARKLING",
        "Sparkling Water",
        STANDARD,
        [("500", "500 ml", 525, "1.09"), ("1000", "1 l", 1045, "1.59")],
    ),
    ("drinks", "OJ", "Orange Juice", FOOD, [("1000", "1 l", 1060, "3.49"), ("250", "250 ml", 270, "1.49")]),
    ("drinks", "APPLE-JUICE", "Apple Juice", FOOD, [("1000", "1 l", 1060, "2.99"), ("250", "250 ml", 270, "1.29")]),
    ("drinks", "ICED-TEA", "Peach Iced Tea", STANDARD, [("500", "500 ml", 530, "1.99")]),
    ("drinks", "ENERGY", "Energy Drink", STANDARD, [("250", "250 ml", 275, "2.29"), ("500", "500 ml", 540, "3.29")]),
    ("drinks", "LEMONADE", "Cloudy Lemonade", STANDARD, [("330", "330 ml", 350, "1.49")]),
    ("drinks", "COLD-BREW", "Cold Brew Coffee", STANDARD, [("250", "250 ml", 290, "3.49")]),
    ("drinks", "OAT-DRINK", "Oat Drink", FOOD, [("1000", "1 l", 1050, "2.79")]),
    (
        "snacks",
        "CHIPS-PAPRIKA",
        "Paprika Crisps",
        STANDARD,
        [("150", "150 g", 162, "2.49"), ("40", "40 g", 45, "0.99")],
    ),
    ("snacks", "TORTILLA", "Tortilla Chips", STANDARD, [("200", "200 g", 214, "2.29")]),
    ("snacks", "PRETZELS", "Salted Pretzels", STANDARD, [("200", "200 g", 212, "1.99")]),
    (
        "snacks",
        "CHOC-MILK",
        "Milk Chocolate Bar",
        STANDARD,
        [("100", "100 g", 106, "1.89"), ("45", "45 g", 49, "0.99")],
    ),
    ("snacks", "CHOC-DARK", "Dark Chocolate 70%", STANDARD, [("100", "100 g", 106, "2.29")]),
    ("snacks", "GUMMY", "Gummy Bears", STANDARD, [("200", "200 g", 208, "1.79")]),
    ("snacks", "NUTS-MIX", "Mixed Nuts", FOOD, [("150", "150 g", 158, "3.99")]),
    ("snacks", "CASHEWS", "Roasted Cashews", FOOD, [("150", "150 g", 158, "4.49")]),
    ("snacks", "GRANOLA-BAR", "Oat Granola Bar", FOOD, [("35", "35 g", 38, "0.89")]),
    ("snacks", "COOKIES", "Chocolate Chip Cookies", STANDARD, [("200", "200 g", 220, "2.49")]),
    ("snacks", "POPCORN", "Salted Popcorn", STANDARD, [("90", "90 g", 98, "1.69")]),
    ("snacks", "RICE-CAKES", "Rice Cakes", FOOD, [("130", "130 g", 140, "1.49")]),
    ("dairy", "MILK-WHOLE", "Whole Milk", FOOD, [("1000", "1 l", 1050, "1.39"), ("2000", "2 l", 2090, "2.49")]),
    ("dairy", "MILK-SEMI", "Semi-Skimmed Milk", FOOD, [("1000", "1 l", 1050, "1.35"), ("2000", "2 l", 2090, "2.39")]),
    ("dairy", "YOGURT-NAT", "Natural Yogurt", FOOD, [("500", "500 g", 530, "1.99")]),
    ("dairy", "YOGURT-STRAW", "Strawberry Yogurt", FOOD, [("150", "150 g", 160, "0.79")]),
    ("dairy", "GREEK-YOGURT", "Greek Yogurt", FOOD, [("500", "500 g", 530, "3.29")]),
    ("dairy", "BUTTER", "Salted Butter", FOOD, [("250", "250 g", 258, "2.99")]),
    ("dairy", "CHEDDAR", "Mature Cheddar", FOOD, [("200", "200 g", 208, "3.49")]),
    ("dairy", "MOZZARELLA", "Mozzarella", FOOD, [("125", "125 g", 230, "1.29")]),
    ("dairy", "CREAM-CHEESE", "Cream Cheese", FOOD, [("200", "200 g", 215, "1.99")]),
    ("dairy", "EGGS", "Free-Range Eggs", FOOD, [("6", "6 pack", 390, "2.79"), ("12", "12 pack", 770, "4.99")]),
    ("dairy", "HUMMUS", "Classic Hummus", FOOD, [("200", "200 g", 212, "2.19")]),
    ("produce", "BANANAS", "Bananas", FOOD, [("5", "bunch of 5", 900, "1.49")]),
    ("produce", "APPLES-GALA", "Gala Apples", FOOD, [("6", "6 pack", 1000, "3.29")]),
    ("produce", "AVOCADO", "Ripe Avocado", FOOD, [("1", "each", 200, "1.29")]),
    ("produce", "TOMATO-CHERRY", "Cherry Tomatoes", FOOD, [("250", "250 g", 262, "1.99")]),
    ("produce", "CARROTS", "Carrots", FOOD, [("1000", "1 kg", 1010, "1.19")]),
    ("produce", "SALAD-MIX", "Mixed Salad Leaves", FOOD, [("150", "150 g", 168, "1.79")]),
    ("produce", "LEMONS", "Lemons", FOOD, [("4", "4 pack", 480, "1.59")]),
    ("produce", "GRAPES", "Seedless Grapes", FOOD, [("500", "500 g", 515, "2.99")]),
    ("produce", "BLUEBERRIES", "Blueberries", FOOD, [("150", "150 g", 162, "2.99")]),
    ("produce", "CUCUMBER", "Cucumber", FOOD, [("1", "each", 350, "0.79")]),
    ("bakery", "BREAD-WHITE", "White Sandwich Bread", FOOD, [("800", "800 g", 810, "1.69")]),
    ("bakery", "BREAD-SOUR", "Sourdough Loaf", FOOD, [("500", "500 g", 505, "3.49")]),
    ("bakery", "CROISSANT", "Butter Croissants", FOOD, [("2", "2 pack", 140, "1.99")]),
    ("bakery", "BAGELS", "Plain Bagels", FOOD, [("4", "4 pack", 380, "2.49")]),
    ("bakery", "SANDWICH-HAM", "Ham & Cheese Sandwich", FOOD, [("1", "each", 185, "3.99")]),
    ("bakery", "WRAP-CHICKEN", "Chicken Caesar Wrap", FOOD, [("1", "each", 210, "4.49")]),
    ("household", "DISH-SOAP", "Dish Soap", STANDARD, [("500", "500 ml", 560, "2.49")]),
    ("household", "HAND-SOAP", "Liquid Hand Soap", STANDARD, [("250", "250 ml", 300, "1.99")]),
    ("household", "PAPER-TOWEL", "Paper Towels", STANDARD, [("2", "2 rolls", 310, "2.99")]),
    (
        "household",
        "TOILET-ROLL",
        "Toilet Paper",
        STANDARD,
        [("4", "4 rolls", 440, "2.79"), ("9", "9 rolls", 990, "5.49")],
    ),
    ("household", "TRASH-BAGS", "Trash Bags 30 l", STANDARD, [("20", "20 pack", 260, "2.29")]),
    ("household", "SPONGES", "Kitchen Sponges", STANDARD, [("3", "3 pack", 45, "1.49")]),
    ("household", "BATTERY-AA", "AA Batteries", STANDARD, [("4", "4 pack", 100, "4.99")]),
    ("household", "LAUNDRY-PODS", "Laundry Pods", STANDARD, [("24", "24 pack", 560, "7.99")]),
    ("household", "TISSUES", "Facial Tissues", STANDARD, [("80", "80 sheets", 150, "1.29")]),
    ("household", "FOIL", "Aluminium Foil 10 m", STANDARD, [("10", "10 m roll", 190, "2.19")]),
    ("drinks", "GINGER-ALE", "Ginger Ale", STANDARD, [("330", "330 ml", 350, "1.39")]),
    ("drinks", "TONIC", "Tonic Water", STANDARD, [("200", "200 ml", 215, "0.99")]),
    ("drinks", "KOMBUCHA", "Ginger Kombucha", STANDARD, [("330", "330 ml", 360, "3.29")]),
    ("drinks", "SPORTS-DRINK", "Citrus Sports Drink", STANDARD, [("500", "500 ml", 535, "1.99")]),
    ("drinks", "COCONUT-WATER", "Coconut Water", STANDARD, [("330", "330 ml", 350, "2.49")]),
    ("drinks", "SMOOTHIE", "Berry Smoothie", FOOD, [("250", "250 ml", 275, "2.99")]),
    ("drinks", "CHOC-MILK-DRINK", "Chocolate Milk", FOOD, [("330", "330 ml", 350, "1.79")]),
    ("drinks", "LIME-SODA", "Lime Soda", STANDARD, [("330", "330 ml", 345, "1.29")]),
    ("snacks", "CHIPS-SOUR", "Sour Cream & Onion Crisps", STANDARD, [("150", "150 g", 162, "2.49")]),
    ("snacks", "PEANUTS", "Salted Peanuts", FOOD, [("200", "200 g", 210, "1.99")]),
    ("snacks", "TRAIL-MIX", "Trail Mix", FOOD, [("150", "150 g", 158, "3.49")]),
    ("snacks", "JERKY", "Beef Jerky", FOOD, [("50", "50 g", 58, "3.99")]),
    ("snacks", "CRACKERS", "Cheese Crackers", STANDARD, [("200", "200 g", 215, "2.29")]),
    ("snacks", "WAFERS", "Hazelnut Wafers", STANDARD, [("150", "150 g", 160, "1.79")]),
    ("snacks", "LICORICE", "Red Licorice", STANDARD, [("200", "200 g", 208, "1.89")]),
    ("snacks", "PROTEIN-BAR", "Peanut Protein Bar", FOOD, [("60", "60 g", 64, "2.49")]),
    ("snacks", "DRIED-MANGO", "Dried Mango", FOOD, [("100", "100 g", 108, "3.29")]),
    ("snacks", "CORN-PUFFS", "Cheese Corn Puffs", STANDARD, [("100", "100 g", 110, "1.49")]),
    ("dairy", "SKYR", "Vanilla Skyr", FOOD, [("450", "450 g", 475, "3.49")]),
    ("dairy", "FETA", "Greek Feta", FOOD, [("200", "200 g", 215, "2.99")]),
    ("dairy", "PARMESAN", "Grated Parmesan", FOOD, [("100", "100 g", 112, "2.79")]),
    ("dairy", "CREAM", "Whipping Cream", FOOD, [("250", "250 ml", 265, "1.69")]),
    ("dairy", "KEFIR", "Plain Kefir", FOOD, [("500", "500 ml", 530, "2.49")]),
    ("dairy", "CHOC-PUDDING", "Chocolate Pudding", FOOD, [("4", "4 x 125 g", 540, "2.19")]),
    ("dairy", "CHEESE-SLICES", "Cheese Slices", FOOD, [("200", "200 g", 212, "2.49")]),
    ("produce", "PEARS", "Conference Pears", FOOD, [("4", "4 pack", 720, "2.49")]),
    ("produce", "ORANGES", "Navel Oranges", FOOD, [("1000", "1 kg", 1015, "2.69")]),
    ("produce", "BROCCOLI", "Broccoli", FOOD, [("1", "each", 360, "1.19")]),
    ("produce", "POTATOES", "White Potatoes", FOOD, [("2000", "2 kg", 2020, "2.49")]),
    ("produce", "ONIONS", "Brown Onions", FOOD, [("1000", "1 kg", 1010, "1.29")]),
    ("produce", "PEPPERS", "Mixed Peppers", FOOD, [("3", "3 pack", 520, "2.29")]),
    ("produce", "STRAWBERRIES", "Strawberries", FOOD, [("400", "400 g", 425, "3.49")]),
    ("produce", "MUSHROOMS", "White Mushrooms", FOOD, [("250", "250 g", 265, "1.59")]),
    ("produce", "SPINACH", "Baby Spinach", FOOD, [("200", "200 g", 218, "2.19")]),
    ("produce", "GARLIC", "Garlic", FOOD, [("3", "3 bulbs", 160, "1.29")]),
    ("bakery", "MUFFINS", "Blueberry Muffins", FOOD, [("2", "2 pack", 230, "2.79")]),
    ("bakery", "DONUTS", "Glazed Donuts", FOOD, [("4", "4 pack", 300, "3.49")]),
    ("bakery", "PASTA-SALAD", "Pesto Pasta Salad", FOOD, [("250", "250 g", 275, "3.79")]),
    ("bakery", "SUSHI", "Salmon Sushi Box", FOOD, [("8", "8 pieces", 240, "6.99")]),
    ("bakery", "SOUP-TOMATO", "Tomato Soup", FOOD, [("600", "600 g", 640, "3.29")]),
    ("bakery", "SALAD-CAESAR", "Chicken Caesar Salad", FOOD, [("1", "each", 290, "5.49")]),
    ("household", "BLEACH", "Thick Bleach", STANDARD, [("750", "750 ml", 820, "1.49")]),
    ("household", "GLASS-CLEAN", "Glass Cleaner", STANDARD, [("500", "500 ml", 570, "2.69")]),
    ("household", "DISHWASHER-TABS", "Dishwasher Tablets", STANDARD, [("30", "30 pack", 560, "6.99")]),
    ("household", "FREEZER-BAGS", "Freezer Bags 3 l", STANDARD, [("20", "20 pack", 90, "1.99")]),
    ("household", "TEA-LIGHTS", "Tea Lights", STANDARD, [("12", "12 pack", 160, "1.79")]),
    ("household", "LED-BULB", "LED Bulb E27 9 W", STANDARD, [("1", "each", 60, "3.99")]),
    ("household", "TOOTHPASTE", "Mint Toothpaste", STANDARD, [("75", "75 ml", 110, "2.29")]),
    ("household", "SHAMPOO", "Daily Shampoo", STANDARD, [("250", "250 ml", 285, "3.49")]),
    ("household", "PLASTERS", "Fabric Plasters", STANDARD, [("20", "20 pack", 40, "2.49")]),
]

# Rough price level of each currency against USD, and (reduced, standard) tax rates in percent.
_PRICE_LEVEL: Final = {
    "USD": ("1", ("0", "8.25")),
    "EUR": ("0.95", ("7", "19")),
    "GBP": ("0.80", ("0", "20")),
    "CAD": ("1.38", ("0", "13")),
    "AUD": ("1.55", ("0", "10")),
    "NZD": ("1.70", ("15", "15")),
    "CHF": ("0.90", ("2.6", "8.1")),
    "SEK": ("10.8", ("12", "25")),
    "NOK": ("11", ("15", "25")),
    "DKK": ("7.1", ("25", "25")),
    "PLN": ("4.1", ("5", "23")),
    "CZK": ("23", ("12", "21")),
    "MXN": ("18", ("0", "16")),
    "SGD": ("1.35", ("9", "9")),
    "HKD": ("7.8", ("0", "0")),
    "JPY": ("150", ("8", "10")),
    "KRW": ("1350", ("10", "10")),
}
_GS1_PREFIX: Final = "50"  # any two digits; the check digit is what scanners verify


def _catalog_entries() -> list[tuple[str, str, int, Decimal, str]]:
    """(sku, name, weight, USD price, tax class), curated order: COLA-330, WATER-500, CHIPS-SALT-150 first."""
    first_sizes = [(family, sizes[0]) for *family, sizes in _FAMILIES]
    other_sizes = [(family, size) for *family, sizes in _FAMILIES for size in sizes[1:]]
    entries = []
    for (_category, stem, name, tax_class), (code, label, grams, price) in [*first_sizes, *other_sizes]:
        entries.append((f"{stem}-{code}", f"{name} {label}", grams, Decimal(price), tax_class))
    return entries


def _round_price(amount: Decimal, currency: str) -> Decimal:
    """A shelf price: x.x9 for two-decimal currencies, a round number for the others."""
    digits = currencies.minor_digits(currency)
    if digits == 0:
        step = Decimal(10) if amount >= 100 else Decimal(1)
        return max(step, (amount / step).quantize(Decimal(1), rounding=ROUND_HALF_UP) * step)
    tenths = (amount * 10).quantize(Decimal(1), rounding=ROUND_HALF_UP) / 10
    return max(Decimal("0.19"), tenths - Decimal("0.01"))


def _barcode(rng: random.Random) -> str:
    payload = _GS1_PREFIX + "".join(str(rng.randrange(10)) for _ in range(10))
    return payload + str(gtin_check_digit(payload))


def sample_catalog_rows(*, count: int = 120, currency: str = "USD", seed: int = 7) -> list[dict[str, Any]]:
    """`count` catalog rows (import columns, values as text) in `currency`, the same for the same seed.

    Beyond the 125 curated products, numbered variants of them follow ("Cola 330 ml #2", SKU COLA-330-V2).
    """
    if currency not in _PRICE_LEVEL:
        raise ValueError(f"No sample prices for {currency!r}; use one of {', '.join(sorted(_PRICE_LEVEL))}.")
    level, (reduced, standard) = _PRICE_LEVEL[currency]
    rng = random.Random(seed)
    entries = _catalog_entries()
    rows: list[dict[str, Any]] = []
    used_barcodes: set[str] = set()
    for index in range(count):
        sku, name, grams, usd, tax_class = entries[index % len(entries)]
        variant = index // len(entries)
        if variant:
            sku, name = f"{sku}-V{variant + 1}", f"{name} #{variant + 1}"
        jitter = Decimal(rng.randint(-8, 8)) / 100
        price = _round_price(usd * Decimal(level) * (1 + jitter), currency)
        barcode = _barcode(rng)
        while barcode in used_barcodes:
            barcode = _barcode(rng)
        used_barcodes.add(barcode)
        rows.append(
            {
                "sku": sku,
                "name": name,
                "price": f"{price:.{currencies.minor_digits(currency)}f}",
                "currency": currency,
                "tax_rate": reduced if tax_class == FOOD else standard,
                "weight_g": str(grams),
                "barcode": barcode,
            }
        )
    return rows
