"""The store admin's shrink report, its export, and the floor plan's heat map: figures, bad periods, other tenants."""

from __future__ import annotations

import csv
import io
import re
from decimal import Decimal

import openpyxl
import pytest
from django.contrib.auth.models import User

from catalog.models import Product
from conftest import logged_in
from core import tenancy
from stock import services
from stock.tests.test_shrink import LATER_PRICE, PRICE, SCALED, T0, day  # noqa: F401 — fixture
from stores.models import Store
from tenants.audit import Actor
from visits.tests.test_pipeline import priced_store  # noqa: F401 — fixture

PERIOD = {"from": "2026-03-02", "to": "2026-03-03"}


def test_the_report_shows_the_shrink_in_major_units_and_exports_it(day: Store, manager_a: User) -> None:  # noqa: F811
    Product.unscoped.filter(tenant=day.tenant, sku="SKU-015").update(name="=HYPERLINK(1) Crisps")
    client = logged_in(manager_a)
    page = client.get(f"/admin/stock/stockcount/store/{day.pk}/shrink/", PERIOD)
    assert page.status_code == 200
    text = page.content.decode()
    total = f"${(2 * PRICE + 2 * LATER_PRICE) / 100:.2f}"
    assert total in text and "$1.99" in text and "$2.99" in text
    assert "F01-B01 · fridge F01, Drinks" in text  # the bin as people say it
    assert "Product SKU-001" in text and "from 12:00 (new price)" in text
    exported = client.get(f"/admin/stock/stockcount/store/{day.pk}/shrink/", {**PERIOD, "export": "csv"})
    assert exported["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(exported.content.decode("utf-8-sig"))))
    assert sorted((r["Day"], r["New price from"], r["SKU"], r["Units"], r["Value"]) for r in rows) == [
        ("2026-03-02", "", "SKU-001", "1", "1.99"),
        ("2026-03-02", "", "SKU-015", "1", "1.99"),
        ("2026-03-02", "12:00", "SKU-001", "1", "2.99"),
        ("2026-03-03", "", "SKU-001", "1", "2.99"),
    ]
    assert {r["Currency"] for r in rows} == {"USD"}
    assert "'=HYPERLINK(1) Crisps" in {r["Product"] for r in rows}  # shown, never run
    book = client.get(f"/admin/stock/stockcount/store/{day.pk}/shrink/", {**PERIOD, "export": "xlsx"})
    sheet = openpyxl.load_workbook(io.BytesIO(book.content)).active
    values = list(sheet.iter_rows(min_row=2, values_only=True))
    assert sorted(Decimal(str(row[7])) for row in values) == [Decimal("1.99"), Decimal("1.99")] + [Decimal("2.99")] * 2


@pytest.mark.parametrize(
    ("period", "problem"),
    [
        ({"from": "2026-03-05", "to": "2026-03-02"}, "comes after the last one"),
        ({"from": "2026-01-01", "to": "2026-06-01"}, "At most 92 days"),
        ({"from": "yesterday"}, "written like 2026-03-02"),
    ],
)
@pytest.mark.parametrize("page", ["shrink", "heat-map"])
def test_a_bad_period_is_said_plainly(day: Store, manager_a: User, period: dict, problem: str, page: str) -> None:  # noqa: F811
    answer = logged_in(manager_a).get(f"/admin/stock/stockcount/store/{day.pk}/{page}/", {**period, "export": "csv"})
    assert answer.status_code == 200
    assert answer["Content-Type"].startswith("text/html")
    assert problem in answer.content.decode()


def test_the_heat_map_counts_what_happened_at_each_fixture(day: Store, manager_a: User) -> None:  # noqa: F811
    with tenancy.tenant_scope(day.tenant_id):
        services.low_levels_set(actor=Actor.system(), store=day, levels=[{"bin": SCALED, "units": 20}])
        services.stock_take_record(actor=Actor.system(), store=day, at=T0, rows=[{"bin": SCALED, "units": 10}])
    client = logged_in(manager_a)
    page = client.get(f"/admin/stock/stockcount/store/{day.pk}/heat-map/", {**PERIOD, "measure": "shrink"})
    assert page.status_code == 200
    text = page.content.decode()
    # counted by hand from the day's events: F01 (F01-B01) and F02 (F02-B05)
    assert '<tr data-fixture="F01">' in text
    figures = {fixture: _cells(text, fixture) for fixture in ("F01", "F02")}
    assert figures == {"F01": ["3", "1", "2", "3"], "F02": ["1", "0", "0", "1"]}  # picks, put-backs, sales, shrink
    assert 'data-code="F01" data-kind="fridge" data-heat="3"' in text
    # 10 counted at 08:00, then -2, +0 (the other product's put-back), -1, +6 (restock), -1, -1: 11, low at 20
    assert 'class="bin low" data-code="F01-B01"' in text
    assert "11 on the shelf (low)" in text
    sales = client.get(f"/admin/stock/stockcount/store/{day.pk}/heat-map/", {**PERIOD, "measure": "sales"})
    assert 'data-code="F01" data-kind="fridge" data-heat="2"' in sales.content.decode()


def _cells(page: str, fixture: str) -> list[str]:
    """The figures of a fixture's row in the heat map's table."""
    row = re.search(rf'<tr data-fixture="{fixture}">(.*?)</tr>', page, re.S)
    assert row is not None, fixture
    return re.findall(r'<td class="oa-num">(\d+)</td>', row.group(1))


def test_another_tenants_store_reports_are_not_found(day: Store, manager_b: User) -> None:  # noqa: F811
    client = logged_in(manager_b)
    for page in ("shrink", "heat-map"):
        assert client.get(f"/admin/stock/stockcount/store/{day.pk}/{page}/", PERIOD).status_code == 404
    answer = client.get(f"/admin/stock/stockcount/store/{day.pk}/shrink/", {**PERIOD, "export": "csv"})
    assert answer.status_code == 404
