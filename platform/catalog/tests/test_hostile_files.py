"""Catalog files that hold far more than they weigh, or mostly errors: read with bounded memory, in the background,
and refused with a reason (issue 16, finding 5)."""

from __future__ import annotations

import io
import zipfile

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from catalog import importing
from catalog.importing import CatalogFileError, open_source, parse_catalog
from catalog.models import CatalogImport, Product
from catalog.tests.helpers import COLA, WATER, csv_bytes, dense_xlsx_bytes
from catalog.tests.test_background import wait_until_finished
from tenants.models import Tenant


def test_a_small_workbook_that_holds_a_lot_is_imported_in_the_background(
    celery_worker: object, api_a: APIClient, tenant_a: Tenant, settings
) -> None:
    settings.CATALOG_IMPORT_BACKGROUND_BYTES = 1_000_000
    data = dense_xlsx_bytes(20_000)  # 5 MB inside
    assert len(data) < 50_000 < settings.CATALOG_IMPORT_BACKGROUND_BYTES

    response = api_a.post("/api/v1/catalog/import", {"file": SimpleUploadedFile("c.xlsx", data)}, format="multipart")

    assert response.status_code == 202, response.content
    status, _ = wait_until_finished(api_a, response.json()["url"])
    assert status["status"] == "failed"
    assert status["message"].startswith("1000 of 1000 rows (reading stopped at row 1,001) have errors")
    assert (len(status["errors"]), status["bad_rows"]) == (1000, 1000)
    assert not Product.unscoped.filter(tenant=tenant_a).exists()


def test_a_workbook_holding_more_than_a_catalog_can_is_refused_before_it_is_read(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(importing, "MAX_WORKBOOK_BYTES", 2 * 2**20)
    data = dense_xlsx_bytes(20_000)
    with pytest.raises(CatalogFileError, match="holds more than 2 MB once unzipped"):
        open_source(io.BytesIO(data), filename="c.xlsx")
    assert importing.workbook_size(io.BytesIO(dense_xlsx_bytes(100))) < 2**20


def test_a_workbook_declaring_more_rows_than_a_catalog_has_is_refused_at_once() -> None:
    data = dense_xlsx_bytes(10, declared_rows=600_000)
    with pytest.raises(CatalogFileError, match="more than 500,000 product rows"):
        open_source(io.BytesIO(data), filename="c.xlsx")


def test_every_bad_row_is_counted_and_the_first_thousand_are_listed(api_a: APIClient, tenant_a: Tenant) -> None:
    bad = [{**WATER, "sku": f"W-{n}", "price": "1.999"} for n in range(1500)]
    response = api_a.post(
        "/api/v1/catalog/import?partial=true",
        {"file": SimpleUploadedFile("c.csv", csv_bytes([COLA, *bad]))},
        format="multipart",
    )

    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["created"], len(body["errors"])) == (1, 1001)
    assert body["errors"][-1] == {"row": None, "message": "…and 500 more rows with errors, not listed"}
    assert body["errors"][0]["row"] == 3
    record = CatalogImport.unscoped.get(tenant=tenant_a)
    assert (record.error_count, len(record.errors)) == (1500, 1001)


def test_an_all_or_nothing_parse_stops_reading_at_the_thousandth_bad_row() -> None:
    rows = [{**WATER, "sku": f"W-{n}", "price": "1.999"} for n in range(5000)]
    parsed = parse_catalog(open_source(io.BytesIO(csv_bytes(rows)), filename="c.csv"), stop_after_errors=1000)
    assert (parsed.bad_rows, len(parsed.errors), parsed.stopped_at) == (1000, 1000, 1001)


@pytest.mark.parametrize("shift", range(15))
def test_rows_are_counted_exactly_wherever_a_megabyte_ends(monkeypatch: pytest.MonkeyPatch, shift: int) -> None:
    rows = 80_000  # 1.2 MB of sheet: a block ends inside one row, at each of its 15 bytes as `shift` moves
    sheet = b" " * shift + b"<sheetData>" + b"<row><c/></row>" * rows + b"</sheetData>"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as workbook:
        workbook.writestr("xl/worksheets/sheet1.xml", sheet)
    monkeypatch.setattr(importing, "MAX_ROWS", rows - importing.HEADER_WITHIN_ROWS)
    assert importing.workbook_size(io.BytesIO(buffer.getvalue())) == len(sheet)
    monkeypatch.setattr(importing, "MAX_ROWS", rows - importing.HEADER_WITHIN_ROWS - 1)
    with pytest.raises(CatalogFileError, match="more than"):
        importing.workbook_size(io.BytesIO(buffer.getvalue()))
