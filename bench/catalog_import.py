"""Benchmark: importing a large catalog (CSV) on PostgreSQL, against a plain COPY of the same rows.

Needs DATABASE_URL pointing at a migrated PostgreSQL database (the throwaway tenant and its rows are
removed again at the end; its audit entries stay, since the audit log is append-only):

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/openaisle PYTHONPATH=.:platform \\
        DJANGO_SETTINGS_MODULE=config.settings python bench/catalog_import.py --rows 50000

Times, in one run: (a) the first import (every row created), (b) the same file again (every row
unchanged), (c) the file with 10 % of the prices changed (a new price version for each), and as the
baseline (d) PostgreSQL COPY of the same CSV into a temporary table. Prints one JSON object with
rows/s for each and its ratio to COPY. Each import is the whole service call: reading and checking
the file, comparing with what is stored, writing, recording and auditing.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "platform")]
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django  # noqa: E402

django.setup()

from django.db import connection  # noqa: E402

from catalog import services  # noqa: E402
from catalog.importing import gtin_check_digit  # noqa: E402
from catalog.models import CatalogImport, Product, ProductPrice  # noqa: E402
from tenants import services as tenant_services  # noqa: E402
from tenants.audit import Actor  # noqa: E402
from tenants.models import Tenant  # noqa: E402

BENCH_TENANT_SLUG = "bench-catalog-import"
COLUMNS = ["sku", "name", "price", "currency", "tax_rate", "weight_g", "barcode"]


def make_rows(count: int, *, changed_every: int = 0) -> list[list[str]]:
    """`count` distinct products; with `changed_every=n`, every n-th price is 0.10 higher."""
    names = ["Cola", "Still Water", "Sea Salt Crisps", "Whole Milk", "Gala Apples", "Dish Soap", "Dark Chocolate"]
    sizes = ["330 ml", "500 ml", "150 g", "1 l", "6 pack", "500 ml", "100 g"]
    rows = []
    for n in range(count):
        kind = n % len(names)
        cents = 99 + (n * 37) % 900
        if changed_every and n % changed_every == 0:
            cents += 10
        payload = f"50{n:010d}"
        rows.append(
            [
                f"SKU-{n:07d}",
                f"{names[kind]} {sizes[kind]} #{n}",
                f"{cents // 100}.{cents % 100:02d}",
                "USD",
                "8.25" if kind in (0, 2, 5, 6) else "0",
                str(100 + (n * 13) % 1900),
                payload + str(gtin_check_digit(payload)),
            ]
        )
    return rows


def to_csv(rows: list[list[str]]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(COLUMNS)
    writer.writerows(rows)
    return buffer.getvalue().encode()


def timed_import(tenant: Tenant, data: bytes) -> tuple[float, services.ImportResult]:
    started = time.perf_counter()
    result = services.catalog_import(
        actor=Actor.cli(), tenant=tenant, file=io.BytesIO(data), filename="bench.csv", partial=False
    )
    return time.perf_counter() - started, result


def timed_copy(data: bytes) -> float:
    """The baseline: COPY the same CSV into a temporary table with the same columns."""
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TEMPORARY TABLE bench_catalog_copy (sku text, name text, price numeric, currency text, "
            "tax_rate numeric, weight_g numeric, barcode text)"
        )
        started = time.perf_counter()
        cursor.cursor.copy_expert(
            "COPY bench_catalog_copy FROM STDIN WITH (FORMAT csv, HEADER true)", io.StringIO(data.decode())
        )
        elapsed = time.perf_counter() - started
        cursor.execute("DROP TABLE bench_catalog_copy")
    return elapsed


def clean(tenant: Tenant) -> None:
    ProductPrice.unscoped.filter(tenant=tenant).delete()
    Product.unscoped.filter(tenant=tenant).delete()
    CatalogImport.unscoped.filter(tenant=tenant).delete()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=50_000)
    args = parser.parse_args()
    if connection.vendor != "postgresql":
        sys.exit("This benchmark needs PostgreSQL: set DATABASE_URL=postgres://... (a migrated database).")

    tenant = Tenant.objects.filter(slug=BENCH_TENANT_SLUG).first() or tenant_services.tenant_create(
        actor=Actor.cli(), name="Catalog import benchmark", slug=BENCH_TENANT_SLUG
    )
    clean(tenant)
    first = to_csv(make_rows(args.rows))
    changed = to_csv(make_rows(args.rows, changed_every=10))
    try:
        created_s, created = timed_import(tenant, first)
        unchanged_s, unchanged = timed_import(tenant, first)
        changed_s, updated = timed_import(tenant, changed)
        copy_s = timed_copy(first)
        assert (created.created, unchanged.unchanged, updated.updated) == (args.rows, args.rows, -(-args.rows // 10))
        assert ProductPrice.unscoped.filter(tenant=tenant).count() == args.rows + updated.updated
    finally:
        clean(tenant)

    def figures(seconds: float) -> dict[str, Any]:
        return {
            "seconds": round(seconds, 3),
            "rows_per_s": round(args.rows / seconds),
            "ratio_to_copy": round(copy_s / seconds, 3),
        }

    print(
        json.dumps(
            {
                "benchmark": "catalog_import",
                "database": "postgresql",
                "rows": args.rows,
                "csv_bytes": len(first),
                "first_import_all_created": figures(created_s),
                "reimport_all_unchanged": figures(unchanged_s),
                "reimport_10pct_price_changes": {**figures(changed_s), "updated": updated.updated},
                "baseline_copy_into_temp_table": {"seconds": round(copy_s, 3), "rows_per_s": round(args.rows / copy_s)},
            }
        )
    )


if __name__ == "__main__":
    main()
