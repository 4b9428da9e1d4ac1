"""The catalog through the licensee API: the import contract, errors, tenants, products and filters."""

from __future__ import annotations

import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import override_settings
from rest_framework.test import APIClient

from catalog.models import CatalogImport, Product, ProductPrice
from catalog.tests.helpers import CHIPS, COLA, SPEC_COLUMNS, WATER, csv_bytes, xlsx_bytes
from tenants import services as tenant_services
from tenants.audit import Actor
from tenants.models import AuditEntry, Tenant

IMPORT = "/api/v1/catalog/import"


def upload(client: APIClient, data: bytes, *, name: str = "catalog.csv", query: str = ""):
    return client.post(f"{IMPORT}{query}", {"file": SimpleUploadedFile(name, data)}, format="multipart")


def error_of(response) -> dict:
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "details"}
    return body["error"]


def test_importing_a_csv_answers_the_contracts_body(api_a: APIClient, tenant_a: Tenant) -> None:
    response = upload(api_a, csv_bytes([COLA, WATER, CHIPS]))
    assert response.status_code == 200, response.content
    assert response.json() == {"created": 3, "updated": 0, "unchanged": 0, "errors": []}
    again = upload(api_a, csv_bytes([{**COLA, "price": "2.09"}, WATER, CHIPS]))
    assert again.json() == {"created": 0, "updated": 1, "unchanged": 2, "errors": []}
    entry = AuditEntry.unscoped.filter(tenant=tenant_a, action="catalog.imported").latest("at")
    assert entry.actor_label.startswith("API key alpha test key")


def test_importing_an_xlsx(api_a: APIClient) -> None:
    data = xlsx_bytes([list(SPEC_COLUMNS), ["COLA-330", "Cola 330 ml", 1.99, "USD", 8.25, 345, "5000112637922"]])
    response = upload(api_a, data, name="catalog.xlsx")
    assert response.status_code == 200, response.content
    assert response.json()["created"] == 1


def test_importing_a_json_array(api_a: APIClient) -> None:
    response = api_a.post(IMPORT, [COLA, {**WATER, "price": 0.99}], format="json")
    assert response.status_code == 200, response.content
    assert response.json() == {"created": 2, "updated": 0, "unchanged": 0, "errors": []}


def test_bad_rows_answer_400_with_every_error_and_write_nothing(api_a: APIClient, tenant_a: Tenant) -> None:
    rows = [COLA, {**WATER, "price": "0.999"}, {**CHIPS, "currency": "XYZ"}, {**COLA, "price": "3.00"}]
    response = upload(api_a, csv_bytes(rows))
    assert response.status_code == 400
    error = error_of(response)
    assert error["code"] == "import_refused"
    assert "nothing was imported" in error["message"]
    details = error["details"]
    assert set(details) == {"created", "updated", "unchanged", "errors"}
    assert (details["created"], details["updated"], details["unchanged"]) == (0, 0, 0)
    assert [e["row"] for e in details["errors"]] == [3, 4, 5]
    assert all(set(e) == {"row", "message"} for e in details["errors"])
    assert "too many decimals" in details["errors"][0]["message"]
    assert "appears again" in details["errors"][2]["message"]
    assert Product.unscoped.filter(tenant=tenant_a).count() == 0


def test_partial_true_keeps_the_good_rows(api_a: APIClient, tenant_a: Tenant) -> None:
    rows = [COLA, {**WATER, "price": "0.999"}, CHIPS]
    response = upload(api_a, csv_bytes(rows), query="?partial=true")
    assert response.status_code == 200
    body = response.json()
    assert (body["created"], [e["row"] for e in body["errors"]]) == (2, [3])
    assert Product.unscoped.filter(tenant=tenant_a).count() == 2


@pytest.mark.parametrize(
    ("data", "name", "expected"),
    [
        (csv_bytes([COLA], columns=("sku", "name", "price")), "catalog.csv", "currency, tax_rate, weight_g"),
        (csv_bytes([{**COLA, "name": "Café"}], encoding="latin-1"), "catalog.csv", "not UTF-8"),
        (csv_bytes([{**COLA, "name": "Café"}], encoding="utf-16"), "catalog.csv", "not UTF-8"),
        (b"PK\x03\x04garbage", "catalog.xlsx", "not a readable XLSX"),
    ],
)
def test_an_unreadable_file_is_400_invalid_file(api_a: APIClient, data: bytes, name: str, expected: str) -> None:
    response = upload(api_a, data, name=name, query="?partial=true")
    assert response.status_code == 400
    error = error_of(response)
    assert error["code"] == "invalid_file"
    assert expected in error["details"]["errors"][0]["message"]


def test_an_xlsx_with_formulas_is_refused_row_by_row(api_a: APIClient, tenant_a: Tenant) -> None:
    data = xlsx_bytes(
        [list(SPEC_COLUMNS), ["COLA-330", "Cola", "=2-0.01", "USD", 8.25, 345, ""], ["W", "Water", 1, "USD", 0, 1, ""]]
    )
    response = upload(api_a, data, name="catalog.xlsx")
    assert response.status_code == 400
    assert error_of(response)["details"]["errors"] == [
        {"row": 2, "message": "price: formulas are not accepted, paste values"}
    ]
    assert Product.unscoped.filter(tenant=tenant_a).count() == 0


def test_a_request_without_a_file_or_rows_is_400(api_a: APIClient) -> None:
    assert error_of(api_a.post(IMPORT, {"other": "x"}, format="multipart"))["details"] == {
        "file": ["Send the catalog as the multipart field 'file'."]
    }
    assert api_a.post(IMPORT, {"sku": "COLA-330"}, format="json").status_code == 400
    assert error_of(api_a.post(f"{IMPORT}?partial=maybe", [COLA], format="json"))["code"] == "invalid"


@override_settings(CATALOG_IMPORT_MAX_BYTES=100)
def test_an_oversize_file_is_413(api_a: APIClient) -> None:
    response = upload(api_a, csv_bytes([COLA, WATER, CHIPS]))
    assert response.status_code == 413
    assert error_of(response)["code"] == "payload_too_large"


def test_a_suspended_tenant_cannot_import(api_a: APIClient, tenant_a: Tenant) -> None:
    tenant_services.tenant_suspend(actor=Actor.system(), tenant=tenant_a, reason="unpaid")
    response = upload(api_a, csv_bytes([COLA]))
    assert response.status_code == 403
    assert error_of(response)["code"] == "tenant_suspended"
    assert api_a.get("/api/v1/products").status_code == 403
    assert Product.unscoped.filter(tenant=tenant_a).count() == 0


def test_no_key_is_401(db: None) -> None:
    assert APIClient().post(IMPORT, [COLA], format="json").status_code == 401


def test_another_tenants_import_is_404_like_a_missing_one(api_a: APIClient, api_b: APIClient) -> None:
    theirs = upload(api_b, csv_bytes([COLA]), query="?background=true")
    assert theirs.status_code == 202
    theirs_id = theirs.json()["id"]
    response = api_a.get(f"/api/v1/catalog/imports/{theirs_id}")
    missing = api_a.get("/api/v1/catalog/imports/999999")
    assert response.status_code == 404
    assert response.json() == missing.json()
    assert api_b.get(f"/api/v1/catalog/imports/{theirs_id}").status_code == 200


def test_background_import_answers_202_and_is_queued_after_commit(
    api_a: APIClient, tenant_a: Tenant, django_capture_on_commit_callbacks
) -> None:
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = upload(api_a, csv_bytes([COLA, WATER, CHIPS]), query="?background=true")
    assert response.status_code == 202
    body = response.json()
    assert set(body) == {"id", "status", "url"}
    assert body["status"] == "queued"
    assert body["url"].endswith(f"/api/v1/catalog/imports/{body['id']}")
    assert response["Location"] == body["url"]
    assert len(callbacks) == 1  # the task is sent only once the upload is committed
    status = api_a.get(body["url"]).json()
    assert (status["status"], status["progress"], status["filename"]) == ("queued", 0.0, "catalog.csv")
    assert Product.unscoped.filter(tenant=tenant_a).count() == 0


def test_a_large_file_goes_to_the_background_by_itself(api_a: APIClient, tenant_a: Tenant, settings) -> None:
    settings.CATALOG_IMPORT_BACKGROUND_BYTES = 50
    response = upload(api_a, csv_bytes([COLA, WATER, CHIPS]))
    assert response.status_code == 202
    record = CatalogImport.unscoped.get(pk=response.json()["id"])
    assert record.tenant_id == tenant_a.pk
    assert record.file.name.startswith(f"catalog-imports/{tenant_a.pk}/")
    assert record.size_bytes == len(csv_bytes([COLA, WATER, CHIPS]))


# --- products -------------------------------------------------------------------------------------


@pytest.fixture
def catalogs(api_a: APIClient, api_b: APIClient) -> None:
    assert upload(api_a, csv_bytes([COLA, WATER, CHIPS])).status_code == 200
    archived = {**CHIPS, "sku": "OLD-1", "name": "Discontinued Crisps", "barcode": "", "status": "archived"}
    assert api_a.post(IMPORT, [archived], format="json").status_code == 200
    theirs = {**COLA, "sku": "BRAVO-ONLY", "name": "Bravo Cola", "barcode": "4006381333931"}
    assert upload(api_b, csv_bytes([theirs, {**COLA, "price": "9.99"}])).status_code == 200


def skus(response) -> list[str]:
    assert response.status_code == 200, response.content
    return [product["sku"] for product in response.json()["results"]]


def test_products_list_shows_only_the_keys_tenant(api_a: APIClient, catalogs: None) -> None:
    response = api_a.get("/api/v1/products")
    assert skus(response) == ["CHIPS-150", "COLA-330", "OLD-1", "WATER-500"]
    assert "BRAVO" not in response.content.decode()
    cola = next(p for p in response.json()["results"] if p["sku"] == "COLA-330")
    assert cola["prices"] == [
        {
            "currency": "USD",
            "unit_price": 199,
            "tax_rate": "8.2500",
            "effective_from": cola["prices"][0]["effective_from"],
        }
    ]
    assert (cola["weight_g"], cola["weight_tolerance_g"], cola["barcodes"]) == ("345.00", "17.25", ["5000112637922"])


def test_products_filters(api_a: APIClient, api_b: APIClient, catalogs: None) -> None:
    assert skus(api_a.get("/api/v1/products?sku=COLA-330")) == ["COLA-330"]
    assert skus(api_a.get("/api/v1/products?q=water")) == ["WATER-500"]
    assert skus(api_a.get("/api/v1/products?q=chips")) == ["CHIPS-150"]
    assert skus(api_a.get("/api/v1/products?status=archived")) == ["OLD-1"]
    assert skus(api_a.get("/api/v1/products?barcode=96385074")) == ["CHIPS-150"]
    assert skus(api_a.get("/api/v1/products?barcode=4006381333931")) == []  # tenant B's barcode
    assert skus(api_a.get("/api/v1/products?q=bravo")) == []
    assert skus(api_b.get("/api/v1/products?q=bravo")) == ["BRAVO-ONLY"]
    assert api_a.get("/api/v1/products?status=gone").status_code == 400
    page = api_a.get("/api/v1/products?page_size=2").json()
    assert (page["count"], len(page["results"])) == (4, 2)


def test_product_detail_has_its_price_history(api_a: APIClient, api_b: APIClient, catalogs: None) -> None:
    assert upload(api_a, csv_bytes([{**COLA, "price": "2.19"}])).status_code == 200
    response = api_a.get("/api/v1/products/COLA-330")
    assert response.status_code == 200
    body = response.json()
    assert [p["unit_price"] for p in body["price_history"]] == [219, 199]
    assert [p["unit_price"] for p in body["prices"]] == [219]
    assert api_a.get("/api/v1/products/BRAVO-ONLY").status_code == 404
    assert api_a.get("/api/v1/products/NOPE").json() == api_a.get("/api/v1/products/BRAVO-ONLY").json()
    assert ProductPrice.unscoped.filter(product__sku="COLA-330").count() == 3  # two of A's, one of B's


def test_the_catalog_endpoints_are_in_the_openapi_document(db: None) -> None:
    document = APIClient().get("/api/v1/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    assert {
        "/api/v1/catalog/import",
        "/api/v1/catalog/imports/{import_id}",
        "/api/v1/products",
        "/api/v1/products/{sku}",
    } <= set(document["paths"])
    responses = document["paths"]["/api/v1/catalog/import"]["post"]["responses"]
    assert {"200", "202", "400"} <= set(responses)


def test_json_body_size_is_reported(api_a: APIClient) -> None:
    body = io.BytesIO()
    body.write(b"[" + b",".join([b'{"sku": "A"}'] * 2) + b"]")
    response = api_a.generic("POST", IMPORT, body.getvalue(), content_type="application/json")
    assert response.status_code == 400
    assert [e["row"] for e in error_of(response)["details"]["errors"]] == [1, 2]
