"""Set-based writes of many products and prices at once, for the catalog import.

Two implementations with the same behaviour: on PostgreSQL (with psycopg2) rows go
in with `COPY` (new rows straight into the tables, changed rows into a temporary
table and then one `UPDATE ... FROM`); elsewhere (SQLite, the embedded mode)
with Django's `bulk_create` / `bulk_update` in batches. Neither ever issues a
query per row. Callers hold the transaction and the tenant's import lock.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Final

import orjson
from django.db import connection

from catalog.models import Product, ProductPrice

CHUNK: Final = 5000


@dataclass(frozen=True, slots=True, kw_only=True)
class ProductFields:
    """What an import writes of a product (`UPDATED_FIELDS`)."""

    name: str
    barcodes: list[str]
    unit_weight_g: Decimal
    weight_tolerance_g: Decimal
    image_url: str
    status: str
    min_age: int | None


@dataclass(frozen=True, slots=True, kw_only=True)
class NewProduct(ProductFields):
    sku: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ProductChange(ProductFields):
    id: int


@dataclass(frozen=True, slots=True)
class NewPrice:
    product_id: int
    currency: str
    unit_price: int
    tax_rate: Decimal


UPDATED_FIELDS: Final = ("name", "barcodes", "unit_weight_g", "weight_tolerance_g", "image_url", "status", "min_age")
"""A product's fields an import writes: all of them on a new product, with its SKU; the changed ones on another."""
PRODUCT_COLUMNS: Final = ("tenant_id", "sku", *UPDATED_FIELDS)
PRICE_FIELDS: Final = ("product_id", "currency", "unit_price", "tax_rate")


def chunked(items: Sequence[Any], size: int = CHUNK) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def uses_copy() -> bool:
    """PostgreSQL through psycopg2, whose cursors have `copy_expert`."""
    if connection.vendor != "postgresql":
        return False
    try:
        import psycopg2.extensions
    except ImportError:  # pragma: no cover — psycopg 3
        return False
    connection.ensure_connection()
    return isinstance(connection.connection, psycopg2.extensions.connection)


@dataclass(frozen=True, slots=True, kw_only=True)
class StoredProduct(ProductFields):
    id: int


def load_products(*, tenant_id: int, skus: Sequence[str]) -> dict[str, StoredProduct]:
    """The tenant's products with these SKUs, by SKU."""
    stored = ("id", *UPDATED_FIELDS)
    fields = ("sku", *stored)
    found: dict[str, StoredProduct] = {}
    if uses_copy():  # one array parameter instead of one parameter per SKU
        # A join on the unnested array, not `sku = ANY(...)`: with statistics stale after a big load
        # PostgreSQL may otherwise test every row against the whole array.
        columns = ", ".join(f"p.{name}" for name in fields)
        sql = (
            f"SELECT {columns} FROM {Product._meta.db_table} AS p "  # noqa: S608 — identifiers are ours
            "JOIN unnest(%s::text[]) AS wanted(sku) ON p.sku = wanted.sku WHERE p.tenant_id = %s"
        )
        with connection.cursor() as cursor:
            for chunk in chunked(skus, 50_000):
                cursor.execute(sql, [list(chunk), tenant_id])
                for sku, *values in cursor.fetchall():
                    product = dict(zip(stored, values, strict=True))
                    if isinstance(product["barcodes"], str | bytes):
                        product["barcodes"] = orjson.loads(product["barcodes"])
                    found[sku] = StoredProduct(**product)
        return found
    for chunk in chunked(skus):
        for sku, *values in Product.unscoped.filter(tenant_id=tenant_id, sku__in=chunk).values_list(*fields):
            found[sku] = StoredProduct(**dict(zip(stored, values, strict=True)))
    return found


@dataclass(frozen=True, slots=True)
class PriceInForce:
    unit_price: int
    tax_rate: Decimal
    effective_from: datetime


def load_current_prices(
    *, tenant_id: int, product_ids: Sequence[int], at: datetime
) -> dict[tuple[int, str], PriceInForce]:
    """The price in force at `at` for each (product, currency) of these products.

    That is the latest version from `at` or before; before a product's first version, the first one (it
    covers earlier times, as `visits.pricing.price_at` reads it).
    """
    current: dict[tuple[int, str], PriceInForce] = {}
    if uses_copy():
        sql = (
            "SELECT DISTINCT ON (pp.product_id, pp.currency) pp.product_id, pp.currency, pp.unit_price, "  # noqa: S608
            f"pp.tax_rate, pp.effective_from FROM {ProductPrice._meta.db_table} AS pp "
            "JOIN unnest(%s::bigint[]) AS wanted(id) ON pp.product_id = wanted.id WHERE pp.tenant_id = %s "
            "ORDER BY pp.product_id, pp.currency, (pp.effective_from <= %s) DESC, "
            "CASE WHEN pp.effective_from <= %s THEN pp.effective_from END DESC NULLS LAST, pp.effective_from"
        )
        with connection.cursor() as cursor:
            for chunk in chunked(product_ids, 50_000):
                cursor.execute(sql, [list(chunk), tenant_id, at, at])
                for product_id, currency, unit_price, tax_rate, effective_from in cursor.fetchall():
                    current[(product_id, currency)] = PriceInForce(unit_price, tax_rate, effective_from)
        return current
    for chunk in chunked(product_ids):
        versions = ProductPrice.unscoped.filter(tenant_id=tenant_id, product_id__in=chunk)
        for price in in_force(versions, at=at):
            current[(price.product_id, price.currency)] = PriceInForce(
                price.unit_price, price.tax_rate, price.effective_from
            )
    return current


def in_force(versions: Iterable[ProductPrice], *, at: datetime) -> list[ProductPrice]:
    """Of these price versions, the one in force at `at` for each (product, currency): the latest from `at` or
    before, or — before the first version — the first one."""
    latest: dict[tuple[int, str], ProductPrice] = {}
    first: dict[tuple[int, str], ProductPrice] = {}
    for price in versions:
        key = (price.product_id, price.currency)
        if key not in first or price.effective_from < first[key].effective_from:
            first[key] = price
        if price.effective_from <= at and (key not in latest or price.effective_from > latest[key].effective_from):
            latest[key] = price
    return [latest.get(key, earliest) for key, earliest in first.items()]


def insert_products(*, tenant_id: int, products: Sequence[NewProduct], at: datetime) -> dict[str, int]:
    """Insert new products; returns their ids by SKU."""
    if not products:
        return {}
    if uses_copy():
        stamp = at.isoformat()
        _copy_rows(
            Product,
            [*PRODUCT_COLUMNS, "created_at", "updated_at"],
            ((tenant_id, p.sku, *_copied(p, UPDATED_FIELDS), stamp, stamp) for p in products),
            nullable=["min_age"],
        )
    else:
        Product.unscoped.bulk_create(
            [
                Product(tenant_id=tenant_id, sku=p.sku, **_fields(p, UPDATED_FIELDS), created_at=at, updated_at=at)
                for p in products
            ],
            batch_size=1000,
        )
    stored = load_products(tenant_id=tenant_id, skus=[p.sku for p in products])
    return {sku: product.id for sku, product in stored.items()}


def update_products(*, tenant_id: int, changes: Sequence[ProductChange], at: datetime) -> None:
    """Write the changed fields of existing products (all of `UPDATED_FIELDS`, and `updated_at`)."""
    if not changes:
        return
    if uses_copy():
        table = Product._meta.db_table
        staging = "catalog_product_import_changes"
        with connection.cursor() as cursor:
            cursor.execute(
                f"CREATE TEMPORARY TABLE {staging} (id bigint PRIMARY KEY, name text, barcodes jsonb, "
                "unit_weight_g numeric, weight_tolerance_g numeric, image_url text, status text, min_age smallint) "
                "ON COMMIT DROP"
            )
            _copy_into(
                cursor,
                staging,
                ["id", *UPDATED_FIELDS],
                ((c.id, *_copied(c, UPDATED_FIELDS)) for c in changes),
                nullable=["min_age"],
            )
            assignments = ", ".join(f"{name} = s.{name}" for name in UPDATED_FIELDS)
            cursor.execute(
                f"UPDATE {table} AS p SET {assignments}, updated_at = %s "  # noqa: S608 — identifiers are ours
                f"FROM {staging} AS s WHERE p.id = s.id AND p.tenant_id = %s",
                [at, tenant_id],
            )
            cursor.execute(f"DROP TABLE {staging}")
        return
    products = [Product(id=c.id, tenant_id=tenant_id, **_fields(c, UPDATED_FIELDS), updated_at=at) for c in changes]
    Product.unscoped.bulk_update(products, [*UPDATED_FIELDS, "updated_at"], batch_size=500)


def insert_prices(*, tenant_id: int, prices: Sequence[NewPrice], effective_from: datetime, at: datetime) -> None:
    """Add a price version, in force from `effective_from` (recorded at `at`), for each (product, currency)."""
    if not prices:
        return
    if uses_copy():
        start, stamp = effective_from.isoformat(), at.isoformat()
        _copy_rows(
            ProductPrice,
            ["tenant_id", *PRICE_FIELDS, "effective_from", "created_at"],
            ((tenant_id, *_copied(p, PRICE_FIELDS), start, stamp) for p in prices),
        )
        return
    ProductPrice.unscoped.bulk_create(
        [
            ProductPrice(tenant_id=tenant_id, **_fields(p, PRICE_FIELDS), effective_from=effective_from, created_at=at)
            for p in prices
        ],
        batch_size=1000,
    )


def delete_prices(*, tenant_id: int, keys: Sequence[tuple[int, str]], effective_from: datetime) -> None:
    """Remove the versions of these (product, currency) that start exactly at `effective_from` (to be replaced)."""
    by_currency: dict[str, list[int]] = {}
    for product_id, currency in keys:
        by_currency.setdefault(currency, []).append(product_id)
    for currency, product_ids in by_currency.items():
        for chunk in chunked(product_ids):
            ProductPrice.unscoped.filter(
                tenant_id=tenant_id, currency=currency, product_id__in=chunk, effective_from=effective_from
            ).delete()


def _json(value: Any) -> str:
    return orjson.dumps(value).decode()


def _fields(item: Any, names: Sequence[str]) -> dict[str, Any]:
    return {name: getattr(item, name) for name in names}


def _copied(item: Any, names: Sequence[str]) -> tuple[Any, ...]:
    """The item's fields as COPY reads them: a list (barcodes) as JSON."""
    values = (getattr(item, name) for name in names)
    return tuple(_json(value) if isinstance(value, list | tuple) else value for value in values)


def _copy_rows(model: Any, columns: list[str], rows: Iterable[tuple[Any, ...]], nullable: Sequence[str] = ()) -> None:
    with connection.cursor() as cursor:
        _copy_into(cursor, model._meta.db_table, columns, rows, nullable)


def _copy_into(
    cursor: Any, table: str, columns: list[str], rows: Iterable[tuple[Any, ...]], nullable: Sequence[str] = ()
) -> None:
    """COPY `rows` into `table` in CSV form, a chunk at a time (give datetimes as ISO 8601 text with an offset).
    In the `nullable` columns an empty value (None) is NULL; elsewhere it is an empty text."""
    force_null = f", FORCE_NULL ({', '.join(nullable)})" if nullable else ""
    sql = f"COPY {table} ({', '.join(columns)}) FROM STDIN WITH (FORMAT csv{force_null})"
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n", quoting=csv.QUOTE_NONNUMERIC)  # "" is text, not NULL
    pending = 0
    for row in rows:
        writer.writerow(row)
        pending += 1
        if pending == 20_000:
            _flush(cursor, sql, buffer)
            buffer = io.StringIO()
            writer = csv.writer(buffer, lineterminator="\n", quoting=csv.QUOTE_NONNUMERIC)
            pending = 0
    if pending:
        _flush(cursor, sql, buffer)


def _flush(cursor: Any, sql: str, buffer: io.StringIO) -> None:
    buffer.seek(0)
    cursor.cursor.copy_expert(sql, buffer)
