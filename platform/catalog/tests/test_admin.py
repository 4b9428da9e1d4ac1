"""The catalog in the store admin: import page (now and in the background), result, export, roles."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime, timedelta

from django.contrib.auth.models import User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone
from openpyxl import load_workbook

from catalog import services
from catalog.importing import COLUMNS, open_source, parse_catalog
from catalog.models import CatalogImport, Product, ProductPrice
from catalog.sample import sample_catalog_rows
from catalog.tests.helpers import CHIPS, COLA, WATER, csv_bytes
from conftest import logged_in
from core.tenancy import tenant_scope
from tenants.audit import Actor
from tenants.models import AuditEntry, Tenant

IMPORT_PAGE = "/admin/catalog/product/import/"


def test_manager_imports_a_csv_and_sees_the_result(manager_a: User, tenant_a: Tenant) -> None:
    client = logged_in(manager_a)
    page = client.get("/admin/catalog/product/")
    assert page.status_code == 200
    assert IMPORT_PAGE in page.content.decode()
    form = client.get(IMPORT_PAGE)
    assert form.status_code == 200
    assert "Keep good rows" in form.content.decode()

    response = client.post(IMPORT_PAGE, {"file": SimpleUploadedFile("catalog.csv", csv_bytes([COLA, WATER, CHIPS]))})
    assert response.status_code == 302
    record = CatalogImport.unscoped.get(tenant=tenant_a)
    assert response["Location"] == f"/admin/catalog/catalogimport/{record.pk}/change/"
    result = client.get(response["Location"]).content.decode()
    assert re.search(r'id="import-created">3<', result)
    assert Product.unscoped.filter(tenant=tenant_a).count() == 3
    entry = AuditEntry.unscoped.filter(tenant=tenant_a, action="catalog.imported").latest("at")
    assert (entry.source, entry.actor_label) == ("admin", "alice@alpha.test")

    listing = client.get("/admin/catalog/product/").content.decode()
    assert "$1.99" in listing and "Cola 330 ml" in listing
    detail = client.get(f"/admin/catalog/product/{Product.unscoped.get(sku='COLA-330').pk}/change/")
    assert detail.status_code == 200
    assert "$1.99" in detail.content.decode()  # the price history inline


def test_a_manager_back_fills_prices_from_a_past_instant(manager_a: User, tenant_a: Tenant) -> None:
    client = logged_in(manager_a)
    assert "Prices apply from" in client.get(IMPORT_PAGE).content.decode()
    future = (timezone.now() + timedelta(days=1)).strftime("%Y-%m-%d %H:%M")
    for value, says in [("next tuesday", "Enter a valid date/time"), (future, "future")]:
        refused = client.post(
            IMPORT_PAGE, {"file": SimpleUploadedFile("c.csv", csv_bytes([COLA])), "effective_from": value}
        )
        assert refused.status_code == 200 and says in refused.content.decode()
    assert not CatalogImport.unscoped.filter(tenant=tenant_a).exists()
    assert not Product.unscoped.filter(tenant=tenant_a).exists()

    file = SimpleUploadedFile("catalog.csv", csv_bytes([COLA]))
    response = client.post(IMPORT_PAGE, {"file": file, "effective_from": "2026-03-01 06:00"})
    assert response.status_code == 302
    price = ProductPrice.unscoped.get(tenant=tenant_a)
    assert price.effective_from == datetime(2026, 3, 1, 6, tzinfo=UTC)
    assert "new prices applying from 2026-03-01 06:00 UTC" in client.get(response["Location"]).content.decode()


def test_bad_rows_are_listed_and_nothing_is_imported_unless_good_rows_are_kept(
    manager_a: User, tenant_a: Tenant
) -> None:
    client = logged_in(manager_a)
    data = csv_bytes([COLA, {**WATER, "price": "0.999"}, {**CHIPS, "currency": "XYZ"}])
    response = client.post(IMPORT_PAGE, {"file": SimpleUploadedFile("catalog.csv", data)}, follow=True)
    body = response.content.decode()
    assert 'id="import-failed"' in body
    assert "Nothing was imported." in body
    assert "too many decimals" in body and "XYZ" in body
    assert Product.unscoped.filter(tenant=tenant_a).count() == 0

    response = client.post(IMPORT_PAGE, {"file": SimpleUploadedFile("catalog.csv", data), "partial": "on"}, follow=True)
    body = response.content.decode()
    assert re.search(r'id="import-created">1<', body)
    assert re.search(r'id="import-bad-rows">2<', body)
    assert list(Product.unscoped.filter(tenant=tenant_a).values_list("sku", flat=True)) == ["COLA-330"]


def test_a_large_file_runs_in_the_background_with_a_progress_page(
    manager_a: User, tenant_a: Tenant, settings, django_capture_on_commit_callbacks
) -> None:
    settings.CATALOG_IMPORT_BACKGROUND_BYTES = 100
    client = logged_in(manager_a)
    data = csv_bytes(sample_catalog_rows(count=40))
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = client.post(IMPORT_PAGE, {"file": SimpleUploadedFile("big.csv", data)})
    assert len(callbacks) == 1
    record = CatalogImport.unscoped.get(tenant=tenant_a)
    page = client.get(response["Location"]).content.decode()
    assert 'id="import-progress-bar"' in page
    status_url = f"/admin/catalog/catalogimport/{record.pk}/status/"
    assert status_url in page
    assert client.get(status_url).json()["status"] == "queued"

    with tenant_scope(tenant_a.pk):
        services.catalog_import_process(import_id=record.pk)
    status = client.get(status_url).json()
    assert (status["status"], status["finished"], status["progress"], status["created"]) == ("done", True, 1.0, 40)
    assert 'id="import-done"' in client.get(response["Location"]).content.decode()


def test_viewer_sees_the_catalog_but_cannot_import(viewer_a: User, tenant_a: Tenant, manager_a: User) -> None:
    client = logged_in(viewer_a)
    page = client.get("/admin/catalog/product/")
    assert page.status_code == 200
    assert IMPORT_PAGE not in page.content.decode()
    assert client.get(IMPORT_PAGE).status_code == 403
    response = client.post(IMPORT_PAGE, {"file": SimpleUploadedFile("catalog.csv", csv_bytes([COLA]))})
    assert response.status_code == 403
    assert Product.unscoped.filter(tenant=tenant_a).count() == 0
    assert client.get("/admin/catalog/product/export-csv/").status_code == 200


def test_another_tenants_import_does_not_open(manager_a: User, tenant_b: Tenant) -> None:
    result = services.catalog_import(actor=Actor.system(), tenant=tenant_b, rows=[COLA])
    client = logged_in(manager_a)
    assert client.get(f"/admin/catalog/catalogimport/{result.import_id}/change/").status_code == 404
    assert client.get(f"/admin/catalog/catalogimport/{result.import_id}/status/").status_code == 404
    assert "COLA-330" not in client.get("/admin/catalog/product/").content.decode()


def _import_rows(tenant: Tenant) -> None:
    rows = sample_catalog_rows(count=25)
    rows[0] = {**rows[0], "barcode": "5000112637922|96385074", "name": 'Cola 330 ml, "classic"'}
    rows[1] = {**rows[1], "status": "archived", "image_url": "https://cdn.example.com/water.png"}
    rows[2] = {**rows[2], "name": '=HYPERLINK("http://evil.example")'}
    rows[3] = {**rows[3], "name": "+cmd|' /C calc'!A0"}
    rows[4] = {**rows[4], "name": "@SUM(1+1)*cmd|' /C calc'!A0"}
    services.catalog_import(actor=Actor.system(), tenant=tenant, rows=rows)


def test_export_csv_reimports_as_all_unchanged(manager_a: User, tenant_a: Tenant, tenant_b: Tenant) -> None:
    _import_rows(tenant_a)
    services.catalog_import(actor=Actor.system(), tenant=tenant_b, rows=[{**COLA, "sku": "BRAVO-ONLY"}])
    client = logged_in(manager_a)
    response = client.get("/admin/catalog/product/export-csv/")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert response["Content-Disposition"].startswith('attachment; filename="catalog-')
    content = response.content
    assert content.startswith("\ufeff".encode())
    assert content.decode("utf-8-sig").splitlines()[0] == ",".join(COLUMNS)
    assert b"BRAVO-ONLY" not in content
    # Text a spreadsheet would run is written with a leading ' (issue 16, finding 8); prices stay plain numbers.
    exported = {row["sku"]: row for row in csv.DictReader(io.StringIO(content.decode("utf-8-sig")))}
    names = {row["name"] for row in exported.values()}
    assert {'\'=HYPERLINK("http://evil.example")', "'+cmd|' /C calc'!A0", "'@SUM(1+1)*cmd|' /C calc'!A0"} <= names
    assert not [name for name in names if name.startswith(("=", "+", "-", "@"))]
    assert all(re.fullmatch(r"\d+\.\d+", row["price"]) for row in exported.values())

    prices_before = ProductPrice.unscoped.filter(tenant=tenant_a).count()
    reimport = client.post(IMPORT_PAGE, {"file": SimpleUploadedFile("export.csv", content)})
    record = CatalogImport.unscoped.get(pk=reimport["Location"].split("/")[-3])
    assert (record.status, record.created_count, record.updated_count, record.unchanged_count) == ("done", 0, 0, 25)
    assert ProductPrice.unscoped.filter(tenant=tenant_a).count() == prices_before


def test_export_xlsx_reimports_as_all_unchanged_and_writes_no_formulas(manager_a: User, tenant_a: Tenant) -> None:
    _import_rows(tenant_a)
    client = logged_in(manager_a)
    response = client.get("/admin/catalog/product/export-xlsx/")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    sheet = load_workbook(io.BytesIO(response.content)).active
    cells = [cell for row in sheet.iter_rows(min_row=2) for cell in row]
    assert not [cell.coordinate for cell in cells if cell.data_type == "f"]  # no live formula anywhere
    texts = {cell.value for cell in cells if isinstance(cell.value, str)}
    assert {'\'=HYPERLINK("http://evil.example")', "'+cmd|' /C calc'!A0", "'@SUM(1+1)*cmd|' /C calc'!A0"} <= texts
    assert not [text for text in texts if text.startswith(("=", "+", "-", "@"))]
    price = COLUMNS.index("price") + 1
    assert all(isinstance(row[price - 1].value, (int, float)) for row in sheet.iter_rows(min_row=2))  # numbers
    # Read back, the names are what they were: the import takes our mark off.
    parsed = parse_catalog(open_source(io.BytesIO(response.content), filename="export.xlsx"))
    assert [(e.row, e.message) for e in parsed.errors] == []
    assert any(row.name == '=HYPERLINK("http://evil.example")' for row in parsed.rows)

    reimport = client.post(IMPORT_PAGE, {"file": SimpleUploadedFile("export.xlsx", response.content)})
    record = CatalogImport.unscoped.get(pk=reimport["Location"].split("/")[-3])
    assert (record.created_count, record.updated_count, record.unchanged_count) == (0, 0, 25)


def test_import_history_is_read_only(manager_a: User, tenant_a: Tenant) -> None:
    services.catalog_import(actor=Actor.system(), tenant=tenant_a, rows=[COLA])
    client = logged_in(manager_a)
    listing = client.get("/admin/catalog/catalogimport/")
    assert listing.status_code == 200
    assert "JSON rows" in listing.content.decode()
    assert client.get("/admin/catalog/catalogimport/add/").status_code == 403
    assert client.get("/admin/catalog/product/add/").status_code == 403


def _imported(tenant: Tenant) -> Product:
    services.catalog_import(actor=Actor.system(), tenant=tenant, rows=[COLA])
    return Product.unscoped.get(tenant=tenant, sku="COLA-330")


def _product_form(product: Product, **overrides: str) -> dict[str, str]:
    form = {
        "name": product.name,
        "status": product.status,
        "barcodes": "",
        "unit_weight_g": str(product.unit_weight_g),
        "weight_tolerance_g": str(product.weight_tolerance_g),
        "image_url": "",
        "min_age": "",
        "prices-TOTAL_FORMS": "0",
        "prices-INITIAL_FORMS": "0",
    }
    return {**form, **overrides}


def test_barcodes_are_typed_as_text_one_per_line_or_with_commas(manager_a: User, tenant_a: Tenant) -> None:
    product = _imported(tenant_a)
    client = logged_in(manager_a)
    url = f"/admin/catalog/product/{product.pk}/change/"
    page = client.get(url).content.decode()
    assert ">5000112637922</textarea>" in page and '["5000112637922"]' not in page
    assert "$1.99 from " in page and "1.99 USD" not in page and "199 USD" not in page  # the price history

    response = client.post(url, _product_form(product, barcodes="5000112637922\n96385074, 5000112637922"))
    assert response.status_code == 302, response.content.decode()[:3000]
    product.refresh_from_db()
    assert product.barcodes == ["5000112637922", "96385074"]


def test_a_wrong_barcode_is_a_form_error_and_changes_nothing(manager_a: User, tenant_a: Tenant) -> None:
    product = _imported(tenant_a)
    response = logged_in(manager_a).post(
        f"/admin/catalog/product/{product.pk}/change/",
        _product_form(product, name="Renamed", barcodes="96385074, 96385075, 12ab"),
    )
    assert response.status_code == 200
    body = response.content.decode()
    assert "Barcode 96385075 has a wrong check digit (expected 4, got 5)." in body
    assert "Barcode &#x27;12ab&#x27; must be digits only." in body
    product.refresh_from_db()
    assert (product.name, product.barcodes) == ("Cola 330 ml", ["5000112637922"])


def test_another_tenants_product_cannot_be_changed(manager_a: User, tenant_b: Tenant) -> None:
    product = _imported(tenant_b)
    client = logged_in(manager_a)
    url = f"/admin/catalog/product/{product.pk}/change/"
    assert client.get(url).status_code == 302, "as for a missing product"
    client.post(url, _product_form(product, barcodes="96385074"))
    product.refresh_from_db()
    assert product.barcodes == ["5000112637922"]


def test_the_import_page_offers_an_example_file_that_imports_cleanly(manager_a: User, tenant_a: Tenant) -> None:
    client = logged_in(manager_a)
    page = client.get(IMPORT_PAGE).content.decode()
    assert 'href="/docs/catalog.md"' in page and 'href="/admin/catalog/product/import/example.csv"' in page
    example = client.get("/admin/catalog/product/import/example.csv")
    assert example["Content-Disposition"] == 'attachment; filename="catalog-example.csv"'
    response = client.post(IMPORT_PAGE, {"file": SimpleUploadedFile("catalog-example.csv", example.content)})
    assert response.status_code == 302
    assert Product.unscoped.filter(tenant=tenant_a).count() == 60
