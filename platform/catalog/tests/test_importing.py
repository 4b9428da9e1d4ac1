"""Reading and checking catalog files: pure functions, no database."""

from __future__ import annotations

import io
from decimal import Decimal

import pytest

from catalog import currencies
from catalog.importing import (
    FORMULA_MESSAGE,
    CatalogFileError,
    CatalogRow,
    ParsedCatalog,
    default_weight_tolerance,
    gtin_check_digit,
    gtin_is_valid,
    open_source,
    parse_catalog,
    parse_rows,
)
from catalog.sample import sample_catalog_rows
from catalog.tests.helpers import CHIPS, COLA, SPEC_COLUMNS, WATER, csv_bytes, xlsx_bytes


def parse_csv(data: bytes, **options) -> ParsedCatalog:
    return parse_catalog(open_source(io.BytesIO(data), filename="catalog.csv"), **options)


def only_error(parsed: ParsedCatalog) -> tuple[int | None, str]:
    assert len(parsed.errors) == 1, parsed.errors
    return parsed.errors[0].row, parsed.errors[0].message


def test_a_good_csv_becomes_rows_in_minor_units() -> None:
    parsed = parse_csv(csv_bytes([COLA, WATER, CHIPS]))
    assert parsed.errors == []
    cola, water, chips = parsed.rows
    assert cola == CatalogRow(
        row=2,
        sku="COLA-330",
        name="Cola 330 ml",
        currency="USD",
        unit_price=199,
        tax_rate=Decimal("8.25"),
        weight_g=Decimal("345"),
        weight_tolerance_g=Decimal("17.25"),
        barcodes=("5000112637922",),
        image_url=None,
        status=None,
    )
    assert (water.row, water.unit_price, water.barcodes) == (3, 99, ())
    assert (chips.row, chips.tax_rate, chips.barcodes) == (4, Decimal("0"), ("96385074",))


def test_a_byte_order_mark_and_loose_headers_are_accepted() -> None:
    data = "\ufeffSKU, Name ,Price,Currency,Tax Rate,Weight G,Barcode\r\nCOLA-330,Cola 330 ml,1.99,usd,8.25,345,\r\n"
    parsed = parse_csv(data.encode())
    assert parsed.errors == []
    assert (parsed.rows[0].sku, parsed.rows[0].currency) == ("COLA-330", "USD")


def test_a_non_utf8_file_is_a_file_level_error() -> None:
    data = csv_bytes([{**COLA, "name": "Café crème"}], encoding="latin-1")
    with pytest.raises(CatalogFileError, match="not UTF-8"):
        parse_csv(data)


def test_a_missing_column_names_every_missing_one() -> None:
    data = csv_bytes([COLA], columns=("sku", "name", "price", "weight_g"))
    with pytest.raises(CatalogFileError) as raised:
        parse_csv(data)
    assert raised.value.row == 1
    assert "currency, tax_rate" in raised.value.message


def test_a_default_currency_stands_in_for_a_missing_currency_column() -> None:
    data = csv_bytes([COLA], columns=("sku", "name", "price", "tax_rate", "weight_g"))
    parsed = parse_csv(data, default_currency="EUR")
    assert parsed.rows[0].currency == "EUR"


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"price": "abc"}, "price: 'abc' is not a number"),
        ({"price": "1,99"}, "is not a number"),
        ({"price": "-1.00"}, "price must not be negative"),
        ({"price": ""}, "price is required"),
        ({"price": "1.999"}, "too many decimals: USD prices have at most 2 decimals"),
        ({"price": "150.5", "currency": "JPY"}, "JPY prices have no decimals"),
        ({"currency": "XYZ"}, "currency 'XYZ' is not supported"),
        ({"tax_rate": "101"}, "tax_rate is a percentage from 0 to 100"),
        ({"tax_rate": "-5"}, "tax_rate must not be negative"),
        ({"weight_g": "-12"}, "weight_g must not be negative"),
        ({"weight_g": "0"}, "weight_g must be more than 0 grams"),
        ({"barcode": "5000112637923"}, "wrong check digit (expected 2, got 3)"),
        ({"barcode": "50001126"}, "wrong check digit"),
        ({"barcode": "12345"}, "must have 8, 12, 13 or 14 digits"),
        ({"barcode": "50001126379AB"}, "digits only"),
        ({"sku": ""}, "sku is required"),
        ({"sku": "COLA 330"}, "without spaces or slashes"),
        ({"name": "  "}, "name is required"),
    ],
)
def test_each_kind_of_bad_row_is_reported_with_its_row_number(changes: dict, expected: str) -> None:
    parsed = parse_csv(csv_bytes([WATER, {**COLA, **changes}]))
    row, message = only_error(parsed)
    assert row == 3
    assert expected in message
    assert [r.sku for r in parsed.rows] == ["WATER-500"]


def test_every_problem_of_a_row_is_in_its_one_message() -> None:
    parsed = parse_csv(csv_bytes([{**COLA, "price": "x", "currency": "ABC", "weight_g": "-1"}]))
    _, message = only_error(parsed)
    assert "price" in message and "currency" in message and "weight_g" in message


def test_a_repeated_sku_is_an_error_on_the_later_rows_only() -> None:
    parsed = parse_csv(csv_bytes([COLA, WATER, {**COLA, "price": "2.50"}, COLA]))
    assert [(e.row, "appears again (first on row 2)" in e.message) for e in parsed.errors] == [(4, True), (5, True)]
    assert [r.row for r in parsed.rows] == [2, 3]


def test_blank_lines_are_skipped_and_rows_keep_their_spreadsheet_numbers() -> None:
    header = ",".join(SPEC_COLUMNS)
    data = f"{header}\r\nCOLA-330,Cola,1.99,USD,0,345,\r\n,,,,,,\r\n\r\nWATER-500,Water,bad,USD,0,520,\r\n"
    parsed = parse_csv(data.encode())
    assert parsed.errors[0].row == 5


@pytest.mark.parametrize("currency", sorted(currencies.MINOR_UNITS))
def test_every_supported_currency_converts_exactly(currency: str) -> None:
    digits = currencies.minor_digits(currency)
    price = "1234.56" if digits == 2 else "1234"
    parsed = parse_rows([{**COLA, "price": price, "currency": currency}])
    assert parsed.rows[0].unit_price == (123456 if digits == 2 else 1234)
    assert currencies.from_minor(parsed.rows[0].unit_price, currency) == Decimal(price)


def test_money_formatting() -> None:
    assert currencies.format_money(199, "USD") == "$1.99"
    assert currencies.format_money(123456789, "EUR") == "€1,234,567.89"
    assert currencies.format_money(1500, "JPY") == "¥1,500"
    assert currencies.format_money(995, "CHF") == "CHF 9.95"
    assert currencies.to_minor(Decimal("0.1"), "USD") == 10
    with pytest.raises(currencies.UnknownCurrency):
        currencies.to_minor(Decimal(1), "XXX")


def test_weight_tolerance_defaults_to_5_percent_but_at_least_2_grams() -> None:
    assert default_weight_tolerance(Decimal("345")) == Decimal("17.25")
    assert default_weight_tolerance(Decimal("20")) == Decimal("2")
    assert default_weight_tolerance(Decimal("40")) == Decimal("2.00")
    assert default_weight_tolerance(Decimal("1000.1")) == Decimal("50.01")
    parsed = parse_rows([{**COLA, "weight_tolerance_g": "4.5"}])
    assert parsed.rows[0].weight_tolerance_g == Decimal("4.5")


def test_gtin_check_digits() -> None:
    assert gtin_is_valid("4006381333931")  # EAN-13
    assert gtin_is_valid("036000291452")  # UPC-A
    assert gtin_is_valid("96385074")  # EAN-8
    assert gtin_is_valid("10012345678902")  # GTIN-14
    assert not gtin_is_valid("4006381333932")
    assert not gtin_is_valid("40063813339")
    assert gtin_check_digit("400638133393") == 1


def test_several_barcodes_optional_columns_and_status() -> None:
    row = {
        **COLA,
        "barcode": "5000112637922|96385074",
        "image_url": "https://cdn.example.com/cola.png",
        "status": "Archived",
    }
    parsed = parse_rows([row])
    assert parsed.rows[0].barcodes == ("5000112637922", "96385074")
    assert parsed.rows[0].image_url == "https://cdn.example.com/cola.png"
    assert parsed.rows[0].status == "archived"
    bad = parse_rows([{**COLA, "image_url": "javascript:alert(1)", "status": "gone"}])
    _, message = only_error(bad)
    assert "image_url must be an http" in message and "status must be active or archived" in message


def test_json_rows_accept_numbers_and_report_their_position() -> None:
    parsed = parse_rows(
        [
            {"sku": "COLA-330", "name": "Cola", "price": 1.99, "currency": "USD", "tax_rate": 8.25, "weight_g": 345},
            {"sku": "BAD", "name": "No price", "currency": "USD", "tax_rate": 0, "weight_g": 10},
            "not an object",
            {"sku": "X", "name": "Nested", "price": [1], "currency": "USD", "tax_rate": 0, "weight_g": 1},
        ]
    )
    assert parsed.rows[0].unit_price == 199
    assert parsed.rows[0].barcodes is None  # no barcode key: an existing product keeps its barcodes
    assert [(e.row, e.message.split(":")[0]) for e in parsed.errors] == [
        (2, "missing field"),
        (3, "each row must be an object with the catalog columns as keys"),
        (4, "price"),
    ]


def test_json_that_is_not_an_array_is_a_file_level_error() -> None:
    with pytest.raises(CatalogFileError, match="array"):
        parse_rows({"sku": "COLA-330"})
    with pytest.raises(CatalogFileError, match="empty"):
        parse_rows([])


def test_a_header_only_file_is_a_file_level_error() -> None:
    with pytest.raises(CatalogFileError, match="no product rows"):
        parse_csv(csv_bytes([]))
    with pytest.raises(CatalogFileError, match="empty"):
        parse_csv(b"")


def test_xlsx_rows_are_read_with_their_sheet_row_numbers() -> None:
    data = xlsx_bytes(
        [
            list(SPEC_COLUMNS),
            ["COLA-330", "Cola 330 ml", 1.99, "USD", 8.25, 345, "5000112637922"],
            [],
            ["WATER-500", "Still Water 500 ml", 0.99, "USD", 0, 520.5, 96385074],
            ["BAD", "Bad price", "x", "USD", 0, 1, None],
        ]
    )
    parsed = parse_catalog(open_source(io.BytesIO(data), filename="catalog.xlsx"))
    assert [(r.row, r.sku, r.unit_price, r.weight_g) for r in parsed.rows] == [
        (2, "COLA-330", 199, Decimal("345")),
        (4, "WATER-500", 99, Decimal("520.5")),
    ]
    assert parsed.rows[1].barcodes == ("96385074",)
    assert only_error(parsed)[0] == 5


def test_xlsx_cells_with_formulas_are_row_errors() -> None:
    data = xlsx_bytes(
        [
            list(SPEC_COLUMNS),
            ["COLA-330", "Cola 330 ml", "=1.5+0.49", "USD", 8.25, 345, ""],
            ["WATER-500", "Still Water", 0.99, "USD", 0, "=500+20", ""],
            ["CHIPS-150", "Crisps", 2.49, "USD", 0, 162, ""],
        ]
    )
    parsed = parse_catalog(open_source(io.BytesIO(data), filename="catalog.xlsx"))
    assert [(e.row, e.message) for e in parsed.errors] == [
        (2, f"price: {FORMULA_MESSAGE}"),
        (3, f"weight_g: {FORMULA_MESSAGE}"),
    ]
    assert [r.sku for r in parsed.rows] == ["CHIPS-150"]


def test_a_file_that_is_not_a_workbook_is_a_file_level_error() -> None:
    with pytest.raises(CatalogFileError, match="not a readable XLSX"):
        open_source(io.BytesIO(b"PK\x03\x04 definitely not a zip"), filename="catalog.xlsx")
    with pytest.raises(CatalogFileError, match=r"\.xls"):
        open_source(io.BytesIO(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 100), filename="catalog.xls")


def test_the_sample_catalog_is_valid_realistic_and_deterministic() -> None:
    rows = sample_catalog_rows()
    assert len(rows) == 120
    assert [row["sku"] for row in rows[:3]] == ["COLA-330", "WATER-500", "CHIPS-SALT-150"]
    assert rows[0]["name"] == "Cola 330 ml"
    assert sample_catalog_rows(seed=11) == sample_catalog_rows(seed=11)
    assert sample_catalog_rows(seed=11) != sample_catalog_rows(seed=12)
    assert [r["sku"] for r in sample_catalog_rows(seed=11)] == [r["sku"] for r in rows]
    for currency in ("USD", "EUR", "GBP", "JPY", "KRW", "SEK"):
        parsed = parse_rows(sample_catalog_rows(count=300, currency=currency))
        assert parsed.errors == []
        assert len({row.sku for row in parsed.rows}) == 300
        assert all(row.barcodes and gtin_is_valid(row.barcodes[0]) for row in parsed.rows)
        assert all(Decimal(10) <= row.weight_g <= Decimal(2500) for row in parsed.rows)
