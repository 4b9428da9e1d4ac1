"""Building catalog files for tests."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from typing import Any

import openpyxl

SPEC_COLUMNS = ("sku", "name", "price", "currency", "tax_rate", "weight_g", "barcode")

COLA = {
    "sku": "COLA-330",
    "name": "Cola 330 ml",
    "price": "1.99",
    "currency": "USD",
    "tax_rate": "8.25",
    "weight_g": "345",
    "barcode": "5000112637922",
}
WATER = {
    "sku": "WATER-500",
    "name": "Still Water 500 ml",
    "price": "0.99",
    "currency": "USD",
    "tax_rate": "8.25",
    "weight_g": "520",
    "barcode": "",
}
CHIPS = {
    "sku": "CHIPS-150",
    "name": "Sea Salt Crisps 150 g",
    "price": "2.49",
    "currency": "USD",
    "tax_rate": "0",
    "weight_g": "162",
    "barcode": "96385074",
}


def csv_bytes(
    rows: Sequence[dict[str, Any]], *, columns: Sequence[str] = SPEC_COLUMNS, encoding: str = "utf-8"
) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([row.get(column, "") for column in columns])
    return buffer.getvalue().encode(encoding)


def xlsx_bytes(rows: Sequence[Sequence[Any]]) -> bytes:
    """A workbook whose first sheet holds `rows` as given (the first one being the header)."""
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    assert sheet is not None
    for row in rows:
        sheet.append(list(row))
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()
