"""Building catalog files for tests."""

from __future__ import annotations

import csv
import io
import zipfile
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


_WORKBOOK_PARTS = {
    "[Content_Types].xml": (
        '<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/'
        'content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.'
        'relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/xl/'
        'workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
        '<Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-'
        'officedocument.spreadsheetml.worksheet+xml"/></Types>'
    ),
    "_rels/.rels": (
        '<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/'
        '2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
        'relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>'
    ),
    "xl/workbook.xml": (
        '<?xml version="1.0" encoding="UTF-8"?><workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/'
        '2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets>'
        '<sheet name="Catalog" sheetId="1" r:id="rId1"/></sheets></workbook>'
    ),
    "xl/_rels/workbook.xml.rels": (
        '<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/'
        '2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
        'relationships/worksheet" Target="worksheets/sheet1.xml"/></Relationships>'
    ),
}


def dense_xlsx_bytes(rows: int, *, declared_rows: int | None = None) -> bytes:
    """A workbook of the catalog's header and `rows` identical bad rows, written as XML that compresses about
    300:1 (megabytes inside kilobytes, as a hostile file would be); `declared_rows` is what its dimension says."""
    header = "".join(f'<c t="inlineStr"><is><t>{name}</t></is></c>' for name in SPEC_COLUMNS)
    row = "<row>" + '<c t="inlineStr"><is><t>x</t></is></c>' * len(SPEC_COLUMNS) + "</row>"
    dimension = f'<dimension ref="A1:G{declared_rows + 1}"/>' if declared_rows else ""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as workbook:
        for name, text in _WORKBOOK_PARTS.items():
            workbook.writestr(name, text)
        with workbook.open("xl/worksheets/sheet1.xml", "w") as sheet:
            sheet.write(
                '<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="http://schemas.openxmlformats.org/'
                f'spreadsheetml/2006/main">{dimension}<sheetData><row>{header}</row>'.encode()
            )
            for _ in range(rows):
                sheet.write(row.encode())
            sheet.write(b"</sheetData></worksheet>")
    return buffer.getvalue()
