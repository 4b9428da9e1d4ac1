"""The store admin's shrink report (with its CSV/XLSX export) and the floor plan's heat map, per store and period.

Both read `stock.shrink.shelf_flows` once for the period: one SQL query, grouped by day, bin, product and price.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

import tablib
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.utils.safestring import SafeString, mark_safe

from catalog.currencies import format_money, from_minor
from core.spreadsheets import formula_safe_row
from stock import selectors, shrink
from stores.floor_plan import FixtureHeat, render_floor_plan
from stores.models import Bin, Store
from stores.selectors import layout_in_force, product_names_of_layout

DEFAULT_DAYS = 7
MEASURES = {
    "picks": "Picks (units the cameras saw taken)",
    "put_backs": "Put-backs (units the cameras saw put back)",
    "sales": "Sales (units on charged cart lines)",
    "shrink": "Shrink (units no cart line explains)",
}
EXPORT_COLUMNS = ["Day", "New price from", "Fixture", "Bin", "Product", "SKU", "Units", "Value", "Currency"]


@dataclass(frozen=True)
class Period:
    """Whole local days of the store, `first` to `last` included, as the instants [since, until)."""

    first: date
    last: date
    since: datetime
    until: datetime


def read_period(request: HttpRequest, store: Store) -> tuple[Period, str]:
    """The days asked for (`?from=&to=`, YYYY-MM-DD; default: the last 7 days up to today) and what is wrong with
    them, if anything ("" when they can be read)."""
    zone = shrink.store_zone(store)
    today = timezone.localtime(timezone.now(), zone).date()
    first, last = today - timedelta(days=DEFAULT_DAYS - 1), today
    problem = ""
    try:
        first = date.fromisoformat(request.GET["from"]) if request.GET.get("from") else first
        last = date.fromisoformat(request.GET["to"]) if request.GET.get("to") else last
    except ValueError:
        problem = "The period's days are written like 2026-03-02."
    since = datetime.combine(first, time.min, tzinfo=zone)
    until = datetime.combine(last + timedelta(days=1), time.min, tzinfo=zone)
    if not problem and first > last:
        problem = f"The first day ({first:%-d %b %Y}) comes after the last one ({last:%-d %b %Y})."
    elif not problem and until - since > shrink.LONGEST_PERIOD:
        problem = f"At most {shrink.LONGEST_PERIOD.days} days at a time."
    return Period(first, last, since, until), problem


def bin_labels(*, store: Store, at: datetime) -> dict[str, str]:
    """Each bin of the layout in force at `at` as people say it: "F01-B03 · shelf F01, Drinks"."""
    layout = layout_in_force(store=store, at=at)
    if layout is None:
        return {}
    rows = Bin.objects.filter(layout=layout).select_related("fixture__zone")
    return {row.code: f"{row.code} · {row.fixture.kind} {row.fixture.code}, {row.fixture.zone.name}" for row in rows}


@dataclass
class ShrinkRow:
    day: str
    starts: str
    bin: str
    fixture: str
    name: str
    sku: str
    units: int
    value: int


def shrink_rows(*, store: Store, period: Period) -> tuple[shrink.ShrinkReport, list[ShrinkRow]]:
    report = shrink.shrink_report(store=store, since=period.since, until=period.until)
    zone = shrink.store_zone(store)
    labels = bin_labels(store=store, at=period.until)
    rows = []
    for item in report.items:
        local = timezone.localtime(item.ts, zone)
        rows.append(
            ShrinkRow(
                day=f"{local:%Y-%m-%d}",
                starts="" if local.time() == time.min else f"{local:%H:%M}",
                bin=labels.get(item.bin, item.bin),
                fixture=item.fixture,
                name=item.name,
                sku=item.sku,
                units=item.units,
                value=item.value,
            )
        )
    return report, rows


def shrink_by_product(rows: list[ShrinkRow]) -> list[tuple[str, str, int, int]]:
    """(name, sku, units, value) per product, the costliest first."""
    totals: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    for row in rows:
        totals[(row.name, row.sku)][0] += row.units
        totals[(row.name, row.sku)][1] += row.value
    return sorted(((n, s, u, v) for (n, s), (u, v) in totals.items()), key=lambda t: (-t[3], -t[2], t[0]))


def shrink_export(*, store: Store, period: Period, rows: list[ShrinkRow], kind: str) -> HttpResponse:
    """The report's rows as CSV or XLSX, every cell formula-safe; values in major units of the store's currency."""
    dataset = tablib.Dataset(headers=EXPORT_COLUMNS, title="Shrink")
    for row in rows:
        value = from_minor(row.value, store.currency)
        cells = [row.day, row.starts, row.fixture, row.bin, row.name, row.sku, row.units, value, store.currency]
        dataset.append(formula_safe_row(cells))
    name = f"shrink-{store.code}-{period.first:%Y%m%d}-{period.last:%Y%m%d}"
    if kind == "xlsx":
        content_type = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
        response = HttpResponse(dataset.export("xlsx"), content_type=content_type)
    else:
        response = HttpResponse(("\ufeff" + dataset.export("csv")).encode(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{name}.{kind}"'
    return response


@dataclass
class FixtureFigures:
    fixture: str
    picks: int = 0
    put_backs: int = 0
    sales: int = 0
    shrink: int = 0
    shrink_value: int = 0
    bins: set[str] = field(default_factory=set)

    def measure(self, name: str) -> int:
        return int(getattr(self, name))


def fixture_figures(*, store: Store, period: Period) -> dict[str, FixtureFigures]:
    """Per fixture over the period: picks, put-backs, units sold and shrink (units and value)."""
    figures: dict[str, FixtureFigures] = {}
    for flow in shrink.shelf_flows(store=store, since=period.since, until=period.until):
        found = figures.setdefault(flow.fixture, FixtureFigures(flow.fixture))
        found.picks += flow.picks
        found.put_backs += flow.put_backs
        found.sales += flow.charged
        found.shrink += flow.shrink
        found.shrink_value += flow.shrink * (flow.unit_price or 0)
        found.bins.add(flow.bin)
    return figures


def heat_map(*, store: Store, period: Period, measure: str) -> tuple[SafeString | None, dict[str, Any]]:
    """The floor plan in force at the period's end with each fixture coloured by `measure`, and its bins' stock
    now marked (low ones in red); with the figures per fixture."""
    layout = layout_in_force(store=store, at=period.until)
    figures = fixture_figures(store=store, period=period)
    highest = max((f.measure(measure) for f in figures.values()), default=0)
    words = MEASURES[measure].split(" (")[0].lower()
    heat = {
        code: FixtureHeat(
            share=(f.measure(measure) / highest) if highest else 0.0,
            label=str(f.measure(measure)),
            note=(
                f"{f.picks} picked, {f.put_backs} put back, {f.sales} sold, {f.shrink} shrink "
                f"({format_money(f.shrink_value, store.currency)})"
            ),
        )
        for code, f in figures.items()
    }
    stock = {item.bin: item for item in selectors.stock_at(store=store, at=min(period.until, timezone.now()))}
    marks = {code: (item.units, item.low) for code, item in stock.items()}
    svg = None
    if layout is not None:
        drawn = render_floor_plan(
            layout.document,
            product_names=product_names_of_layout(layout=layout),
            heat=heat,
            heat_words=words,
            bin_stock=marks,
        )
        svg = mark_safe(drawn)  # noqa: S308 — render_floor_plan escapes every value it draws
    summary = {
        "highest": highest,
        "fixtures": sorted(figures.values(), key=lambda f: (-f.measure(measure), f.fixture)),
        "low_bins": sorted(code for code, item in stock.items() if item.low),
        "counted_bins": sum(item.units is not None for item in stock.values()),
    }
    return svg, summary
