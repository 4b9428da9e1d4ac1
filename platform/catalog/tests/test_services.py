"""Importing into the database: created / updated / unchanged, price versions, all-or-nothing, partial."""

from __future__ import annotations

import io
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from catalog import selectors, services
from catalog.models import CatalogImport, Product, ProductPrice
from catalog.sample import sample_catalog_rows
from catalog.tests.helpers import CHIPS, COLA, WATER, csv_bytes
from core.tenancy import tenant_scope
from tenants.audit import Actor
from tenants.models import AuditEntry, Tenant


def run(tenant: Tenant, rows: list[dict] | None = None, *, data: bytes | None = None, **options):
    if data is not None:
        return services.catalog_import(
            actor=Actor.system(), tenant=tenant, file=io.BytesIO(data), filename="catalog.csv", **options
        )
    return services.catalog_import(actor=Actor.system(), tenant=tenant, rows=rows, **options)


def counts(result: services.ImportResult) -> tuple[int, int, int]:
    return result.created, result.updated, result.unchanged


def catalog_size(tenant: Tenant) -> tuple[int, int]:
    return Product.unscoped.filter(tenant=tenant).count(), ProductPrice.unscoped.filter(tenant=tenant).count()


def test_first_import_creates_products_with_one_price_each(tenant_a: Tenant) -> None:
    result = run(tenant_a, data=csv_bytes([COLA, WATER, CHIPS]))
    assert counts(result) == (3, 0, 0)
    assert result.errors == []
    cola = Product.unscoped.get(tenant=tenant_a, sku="COLA-330")
    assert (cola.name, cola.barcodes, cola.unit_weight_g, cola.weight_tolerance_g, cola.status) == (
        "Cola 330 ml",
        ["5000112637922"],
        Decimal("345"),
        Decimal("17.25"),
        "active",
    )
    price = ProductPrice.unscoped.get(product=cola)
    assert (price.unit_price, price.currency, price.tax_rate) == (199, "USD", Decimal("8.25"))
    assert catalog_size(tenant_a) == (3, 3)


def test_reimporting_the_same_rows_changes_nothing(tenant_a: Tenant) -> None:
    run(tenant_a, [COLA, WATER, CHIPS])
    before = list(Product.unscoped.filter(tenant=tenant_a).values_list("updated_at", flat=True))
    result = run(tenant_a, [COLA, WATER, CHIPS])
    assert counts(result) == (0, 0, 3)
    assert catalog_size(tenant_a) == (3, 3)
    assert list(Product.unscoped.filter(tenant=tenant_a).values_list("updated_at", flat=True)) == before


def test_changed_fields_update_the_product_and_changed_prices_add_a_version(tenant_a: Tenant) -> None:
    run(tenant_a, [COLA, WATER, CHIPS])
    result = run(
        tenant_a,
        [
            {**COLA, "price": "2.19"},  # new price
            {**WATER, "name": "Spring Water 500 ml", "weight_g": "515"},  # product fields only
            {**CHIPS, "tax_rate": "8.25"},  # new tax rate
            {**COLA, "sku": "NEW-1"},  # new product
        ],
    )
    assert counts(result) == (1, 3, 0)
    water = Product.unscoped.get(tenant=tenant_a, sku="WATER-500")
    assert (water.name, water.unit_weight_g, water.weight_tolerance_g) == (
        "Spring Water 500 ml",
        Decimal("515"),
        Decimal("25.75"),
    )
    assert ProductPrice.unscoped.filter(product=water).count() == 1
    cola_prices = list(
        ProductPrice.unscoped.filter(tenant=tenant_a, product__sku="COLA-330").order_by("effective_from")
    )
    assert [p.unit_price for p in cola_prices] == [199, 219]
    chips_prices = ProductPrice.unscoped.filter(tenant=tenant_a, product__sku="CHIPS-150").order_by("effective_from")
    assert [p.tax_rate for p in chips_prices] == [Decimal("0"), Decimal("8.25")]


def test_price_at_answers_the_version_in_force_at_each_instant(tenant_a: Tenant) -> None:
    run(tenant_a, [COLA])
    run(tenant_a, [{**COLA, "price": "2.19"}])
    run(tenant_a, [{**COLA, "price": "1.89"}])
    with tenant_scope(tenant_a.pk):
        cola = Product.objects.get(sku="COLA-330")
        first, second, third = ProductPrice.objects.filter(product=cola).order_by("effective_from")
        assert first.effective_from < second.effective_from < third.effective_from

        def price(at):
            found = selectors.price_at(product=cola, currency="USD", at=at)
            return found.unit_price if found else None

        assert price(first.effective_from - timedelta(days=30)) == 199, "the first price covers what came before"
        assert price(first.effective_from) == 199
        assert price(first.effective_from + (second.effective_from - first.effective_from) / 2) == 199
        assert price(second.effective_from) == 219
        assert price(third.effective_from - timedelta(microseconds=1)) == 219
        assert price(third.effective_from + timedelta(days=365)) == 189
        assert selectors.price_at(product=cola, currency="EUR", at=third.effective_from) is None


def test_a_back_filled_price_slots_into_the_history_and_later_versions_stay_exact(tenant_a: Tenant) -> None:
    run(tenant_a, [COLA])  # 1.99 from now
    now = ProductPrice.unscoped.get(tenant=tenant_a).effective_from
    last_week, yesterday = now - timedelta(days=7), now - timedelta(days=1)
    assert counts(run(tenant_a, [{**COLA, "price": "1.49"}], effective_from=yesterday)) == (0, 1, 0)
    assert counts(run(tenant_a, [{**COLA, "price": "1.49"}], effective_from=yesterday)) == (0, 0, 1)
    assert counts(run(tenant_a, [{**COLA, "price": "1.39"}], effective_from=yesterday)) == (0, 1, 0), "replaced"
    assert counts(run(tenant_a, [{**COLA, "price": "1.39"}], effective_from=last_week)) == (0, 0, 1), (
        "the first version covers last week already"
    )
    assert counts(run(tenant_a, [{**COLA, "price": "0.99"}], effective_from=last_week)) == (0, 1, 0)
    history = ProductPrice.unscoped.filter(tenant=tenant_a).order_by("effective_from")
    assert [(p.effective_from, p.unit_price) for p in history] == [(last_week, 99), (yesterday, 139), (now, 199)]
    with tenant_scope(tenant_a.pk):
        cola = Product.objects.get(sku="COLA-330")
        assert selectors.price_at(product=cola, currency="USD", at=last_week - timedelta(days=1)).unit_price == 99
        assert selectors.price_at(product=cola, currency="USD", at=now - timedelta(seconds=1)).unit_price == 139
        assert [p.unit_price for p in selectors.current_prices_of(products=[cola])[cola.pk]] == [199]
    import_record = CatalogImport.unscoped.filter(tenant=tenant_a).latest("pk")
    assert import_record.effective_from == last_week
    entry = AuditEntry.unscoped.filter(tenant=tenant_a, action="catalog.imported").latest("at")
    assert entry.changes["effective_from"] == last_week.isoformat()


def test_prices_cannot_apply_from_a_future_or_naive_instant(tenant_a: Tenant) -> None:
    with pytest.raises(ValueError, match="future"):
        run(tenant_a, [COLA], effective_from=timezone.now() + timedelta(minutes=5))
    with pytest.raises(ValueError, match="offset"):
        run(tenant_a, [COLA], effective_from=timezone.now().replace(tzinfo=None))
    assert catalog_size(tenant_a) == (0, 0)


def test_a_second_currency_is_a_new_price_beside_the_first(tenant_a: Tenant) -> None:
    run(tenant_a, [COLA])
    result = run(tenant_a, [{**COLA, "price": "1.79", "currency": "EUR"}])
    assert counts(result) == (0, 1, 0)
    with tenant_scope(tenant_a.pk):
        cola = Product.objects.get(sku="COLA-330")
        current = selectors.current_prices_of(products=[cola])[cola.pk]
    assert [(p.currency, p.unit_price) for p in current] == [("EUR", 179), ("USD", 199)]


def test_absent_optional_columns_keep_what_the_product_has(tenant_a: Tenant) -> None:
    run(tenant_a, [{**COLA, "image_url": "https://cdn.example.com/cola.png", "status": "archived"}])
    rows = [{k: v for k, v in COLA.items() if k != "barcode"}]
    assert counts(run(tenant_a, rows)) == (0, 0, 1)
    cola = Product.unscoped.get(tenant=tenant_a, sku="COLA-330")
    assert (cola.barcodes, cola.image_url, cola.status) == (
        ["5000112637922"],
        "https://cdn.example.com/cola.png",
        "archived",
    )
    assert counts(run(tenant_a, [{**COLA, "barcode": ""}])) == (0, 1, 0)
    assert Product.unscoped.get(pk=cola.pk).barcodes == []


def test_all_or_nothing_writes_nothing_and_reports_every_bad_row(tenant_a: Tenant) -> None:
    run(tenant_a, [COLA])
    before = catalog_size(tenant_a)
    rows = [
        {**COLA, "price": "5.00"},
        WATER,
        {**CHIPS, "price": "2.499"},
        {**CHIPS, "sku": "X-1", "currency": "ZZZ"},
        {**WATER, "price": "1.00"},
    ]
    with pytest.raises(services.CatalogImportRefused) as refused:
        run(tenant_a, rows)
    assert refused.value.code == "import_refused"
    body = refused.value.result.as_body()
    assert (body["created"], body["updated"], body["unchanged"]) == (0, 0, 0)
    assert [e["row"] for e in body["errors"]] == [3, 4, 5]  # JSON rows: positions from 1
    assert "3 of 5 rows have errors; nothing was imported" in refused.value.message
    assert catalog_size(tenant_a) == before
    assert ProductPrice.unscoped.get(tenant=tenant_a).unit_price == 199
    record = CatalogImport.unscoped.get(pk=refused.value.result.import_id)
    assert (record.status, record.error_count, record.rows) == ("failed", 3, 5)


def test_partial_keeps_the_good_rows_and_lists_the_bad(tenant_a: Tenant) -> None:
    result = run(tenant_a, [COLA, {**WATER, "price": "oops"}, CHIPS, {**COLA, "name": "again"}], partial=True)
    assert counts(result) == (2, 0, 0)
    assert [e["row"] for e in result.errors] == [2, 4]
    assert set(Product.unscoped.filter(tenant=tenant_a).values_list("sku", flat=True)) == {"COLA-330", "CHIPS-150"}
    record = CatalogImport.unscoped.get(pk=result.import_id)
    assert (record.status, record.created_count, record.error_count) == ("done", 2, 2)


def test_a_file_level_problem_is_refused_even_when_partial(tenant_a: Tenant) -> None:
    with pytest.raises(services.CatalogImportRefused) as refused:
        run(tenant_a, data=csv_bytes([{**COLA, "name": "Crème"}], encoding="latin-1"), partial=True)
    assert refused.value.code == "invalid_file"
    assert refused.value.result.errors == [{"row": None, "message": refused.value.result.errors[0]["message"]}]
    assert "UTF-8" in refused.value.result.errors[0]["message"]
    assert catalog_size(tenant_a) == (0, 0)


def test_each_import_is_audited_once_with_its_counts(tenant_a: Tenant) -> None:
    before = AuditEntry.unscoped.filter(tenant=tenant_a).count()
    result = run(tenant_a, sample_catalog_rows(count=50))
    entries = AuditEntry.unscoped.filter(tenant=tenant_a)
    assert entries.count() == before + 1
    entry = entries.latest("at")
    assert (entry.action, entry.object_type, entry.object_id) == (
        "catalog.imported",
        "catalog.catalogimport",
        str(result.import_id),
    )
    assert entry.changes["created"] == 50 and entry.changes["rows"] == 50


def test_imports_of_one_tenant_never_touch_another(tenant_a: Tenant, tenant_b: Tenant) -> None:
    run(tenant_a, [COLA, WATER])
    result = run(tenant_b, [{**COLA, "price": "9.99"}])
    assert counts(result) == (1, 0, 0)
    assert ProductPrice.unscoped.get(tenant=tenant_a, product__sku="COLA-330").unit_price == 199
    assert ProductPrice.unscoped.get(tenant=tenant_b, product__sku="COLA-330").unit_price == 999


def test_a_large_import_uses_a_bounded_number_of_queries(tenant_a: Tenant, django_assert_max_num_queries) -> None:
    """Set-based: a few queries per batch of rows (SQLite's batches are small, PostgreSQL's COPY takes them all)."""
    rows = sample_catalog_rows(count=3000)
    with django_assert_max_num_queries(120):
        assert counts(run(tenant_a, rows)) == (3000, 0, 0)
    changed = [{**row, "price": "9.99"} if index % 10 == 0 else row for index, row in enumerate(rows)]
    changed[1] = {**changed[1], "name": "Renamed"}
    with django_assert_max_num_queries(120):
        assert counts(run(tenant_a, changed)) == (0, 301, 2699)
    assert ProductPrice.unscoped.filter(tenant=tenant_a).count() == 3300


def test_export_rows_read_back_as_unchanged(tenant_a: Tenant) -> None:
    rows = sample_catalog_rows(count=30, currency="EUR")
    rows[0] = {**rows[0], "barcode": "5000112637922|96385074", "status": "archived"}
    run(tenant_a, rows)
    with tenant_scope(tenant_a.pk):
        exported = list(selectors.catalog_export_rows())
    assert len(exported) == 30
    assert counts(run(tenant_a, exported)) == (0, 0, 30)


def test_a_reader_that_loaded_the_row_before_the_commit_still_sees_the_import_finished(tenant_a: Tenant) -> None:
    """The status page reads the row, then the cache: the commit can fall between the two reads."""
    with tenant_scope(tenant_a.pk):
        record = services.catalog_import_enqueue(
            actor=Actor.system(), tenant=tenant_a, file=io.BytesIO(csv_bytes([COLA, WATER])), filename="catalog.csv"
        )
        CatalogImport.unscoped.filter(pk=record.pk).update(status=CatalogImport.Status.PROCESSING)
        loaded_before_the_commit = CatalogImport.objects.get(pk=record.pk)
        services.catalog_import_process(import_id=record.pk)

        assert CatalogImport.unscoped.get(pk=record.pk).status == CatalogImport.Status.DONE
        assert loaded_before_the_commit.status == CatalogImport.Status.PROCESSING
        assert selectors.catalog_import_progress(record=loaded_before_the_commit) == 1.0
