"""Units on every bin at an instant, read set-based from the bin's last count and the store's events after it.

A bin's units change by what its scale weighed — each `shelf.weight_changed` is `delta_g / unit weight` units
(none under half a unit, the sum rounded), so the scale's absolute reading (and its slow drift) never matters —
while its scale is working. A bin with no scale, or whose scale last said `offline` or `degraded`, changes by what
the cameras saw taken and put back (`item.picked`, `item.returned` of the bin's own product) and by what staff
restocked (`shelf.restocked`); a bin with a working scale reads its restocks from the scale's rise. An item of
another product that the cameras saw put back on (or taken off) a scaled bin is not its stock: the units its
weight came to are taken off again. A bin never counted has no units.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.db import connection
from django.utils.dateparse import parse_datetime

from catalog.models import Product
from ingest.models import Event
from stock.models import LowStockLevel, StockCount
from stores.models import Bin, LayoutVersion, Store
from stores.selectors import layout_in_force

SHELF_EVENTS = ("shelf.weight_changed", "item.picked", "item.returned", "shelf.restocked")
UNUSABLE_SCALE = ("offline", "degraded")


@dataclass(frozen=True)
class BinStock:
    """A bin at an instant: its product, units (None: never counted), when they last changed, and whether low."""

    bin: str
    fixture: str
    sku: str
    name: str
    units: int | None
    last_change: datetime | None
    counted_at: datetime | None
    level: int | None
    has_scale: bool

    @property
    def low(self) -> bool:
        return self.units is not None and self.level is not None and self.units <= self.level


@dataclass(frozen=True)
class _Shelf:
    code: str
    fixture: str
    sku: str
    name: str
    unit_g: float
    sensor: str | None


def stock_at(*, store: Store, at: datetime) -> list[BinStock]:
    """Every bin of the layout in force at `at`, with its units then; [] before the store's first layout."""
    layout = layout_in_force(store=store, at=at)
    if layout is None:
        return []
    shelves = _shelves(layout)
    counts = last_counts(store=store, at=at, skus={shelf.code: shelf.sku for shelf in shelves})
    changes = _changes(store=store, at=at, shelves=shelves, counts=counts)
    levels = low_levels(store=store)
    found = []
    for shelf in shelves:
        count = counts.get(shelf.code)
        change, changed_at = changes.get(shelf.code, (0, None))
        found.append(
            BinStock(
                bin=shelf.code,
                fixture=shelf.fixture,
                sku=shelf.sku,
                name=shelf.name,
                units=None if count is None else max(0, count.units + change),
                last_change=changed_at or (count.counted_at if count else None),
                counted_at=count.counted_at if count else None,
                level=levels.get(shelf.code, levels.get(f"sku:{shelf.sku}")),
                has_scale=shelf.sensor is not None,
            )
        )
    return found


def low_levels(*, store: Store) -> dict[str, int]:
    """Low-stock levels: bin code → units, and `sku:<sku>` → units for a product's bins."""
    rows = LowStockLevel.objects.filter(store=store).values_list("bin", "sku", "units")
    return {(code or f"sku:{sku}"): units for code, sku, units in rows}


def _shelves(layout: LayoutVersion) -> list[_Shelf]:
    rows = Bin.objects.filter(layout=layout).select_related("fixture", "sensor").order_by("fixture__code", "code")
    weights = dict(Product.objects.filter(sku__in={row.sku for row in rows}).values_list("sku", "unit_weight_g"))
    names = dict(Product.objects.filter(sku__in=weights).values_list("sku", "name"))
    return [
        _Shelf(
            row.code,
            row.fixture.code,
            row.sku,
            names.get(row.sku, row.sku),
            float(weights[row.sku]),
            row.sensor.code if row.sensor else None,
        )
        for row in rows
    ]


def last_counts(*, store: Store, at: datetime, skus: dict[str, str]) -> dict[str, StockCount]:
    """Each bin's latest count at or before `at`, if it counted the product the bin holds now."""
    latest: dict[str, StockCount] = {}
    rows = StockCount.objects.filter(store=store, counted_at__lte=at, bin__in=skus).order_by("bin", "-counted_at")
    for row in rows.distinct("bin") if connection.vendor == "postgresql" else rows:
        latest.setdefault(row.bin, row)
    return {code: row for code, row in latest.items() if row.sku == skus[code]}


def offline_spans(*, store: Store, at: datetime, sensors: set[str]) -> list[tuple[str, datetime, datetime]]:
    """When each scale could not be trusted: from its `offline`/`degraded` report to its next `online` one."""
    reports = (
        Event.objects.filter(store=store, type="device.status", device__in=sensors, ts__lte=at)
        .order_by("ts", "id")
        .values_list("device", "ts", "payload__status")
    )
    down_since: dict[str, datetime] = {}
    spans: list[tuple[str, datetime, datetime]] = []
    for device, ts, status in reports:
        if status in UNUSABLE_SCALE:
            down_since.setdefault(device, ts)
        elif device in down_since:
            spans.append((device, down_since.pop(device), ts))
    spans += [(device, since, at) for device, since in down_since.items()]
    return spans


def _changes(
    *, store: Store, at: datetime, shelves: list[_Shelf], counts: dict[str, StockCount]
) -> dict[str, tuple[int, datetime | None]]:
    """Per counted bin: units gained since its count, and when they last changed (one query over the events)."""
    counted = [shelf for shelf in shelves if shelf.code in counts]
    if not counted:
        return {}
    spans = offline_spans(store=store, at=at, sensors={s.sensor for s in counted if s.sensor})
    sql, params = _changes_sql(store=store, at=at, counted=counted, counts=counts, spans=spans)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    return {code: (int(units or 0), _read_time(last)) for code, units, last in rows}


def _changes_sql(
    *,
    store: Store,
    at: datetime,
    counted: list[_Shelf],
    counts: dict[str, StockCount],
    spans: list[tuple[str, datetime, datetime]],
) -> tuple[str, list[Any]]:
    instant = sql_instant()
    adapt = connection.ops.adapt_datetimefield_value
    bins = ", ".join([f"(%s, %s, CAST(%s AS DOUBLE PRECISION), %s, {instant})"] * len(counted))
    params: list[Any] = []
    for shelf in counted:
        params += [shelf.code, shelf.sku, shelf.unit_g, shelf.sensor, adapt(counts[shelf.code].counted_at)]
    offline, offline_params = offline_sql(spans)
    since = min(counts[shelf.code].counted_at for shelf in counted)
    params += [*offline_params, store.tenant_id, *shelf_moves_params(store=store, since=since, until=at)]
    sql = f"""
        WITH bins(code, sku, unit_g, sensor, since) AS (VALUES {bins}),
        offline(sensor, starts, ends) AS ({offline}),
        {products_sql()},
        moves AS ({shelf_moves_sql(upper="<=")}),
        counted AS (
            SELECT b.code AS bin, m.ts AS ts, {UNITS_CHANGED} AS units
            FROM bins b JOIN moves m ON m.bin = b.code AND m.ts > b.since LEFT JOIN products p ON p.sku = m.sku
        )
        SELECT bin, ROUND(SUM(units)), MAX(CASE WHEN units <> 0 THEN ts END) FROM counted GROUP BY bin
    """  # noqa: S608 — the table name from the model, every value bound
    return sql, params


def sql_instant() -> str:
    """A bound instant in SQL: a timestamptz on PostgreSQL, text on SQLite."""
    return "CAST(%s AS timestamptz)" if connection.vendor == "postgresql" else "%s"


def payload_key(name: str, table: str = "e") -> str:
    """A top-level key of an event's payload, as text."""
    if connection.vendor == "postgresql":
        return f"({table}.payload ->> '{name}')"
    return f"json_extract({table}.payload, '$.{name}')"


def offline_sql(spans: list[tuple[str, datetime, datetime]]) -> tuple[str, list[Any]]:
    """The `offline(sensor, starts, ends)` rows of `offline_spans`, for a WITH clause."""
    if not spans:
        nothing = "CAST(NULL AS timestamptz)" if connection.vendor == "postgresql" else "NULL"
        return f"SELECT '', {nothing}, {nothing} WHERE 1 = 0", []
    instant = sql_instant()
    adapt = connection.ops.adapt_datetimefield_value
    params: list[Any] = []
    for sensor, starts, ends in spans:
        params += [sensor, adapt(starts), adapt(ends)]
    return "VALUES " + ", ".join([f"(%s, {instant}, {instant})"] * len(spans)), params


def shelf_moves_sql(*, upper: str) -> str:
    """The store's shelf events after one instant and before (`<`) or up to (`<=`) another: bin, type, time,
    grams, quantity and named product. Its parameters: `shelf_moves_params`."""
    instant = sql_instant()
    return f"""
        SELECT {payload_key("bin")} AS bin, e.type AS type, e.ts AS ts,
            CAST({payload_key("delta_g")} AS DOUBLE PRECISION) AS grams,
            COALESCE(CAST({payload_key("qty")} AS INTEGER), 1) AS qty, {payload_key("sku")} AS sku
        FROM {Event._meta.db_table} e
        WHERE e.tenant_id = %s AND e.store_id = %s AND e.ts >= {instant} AND e.ts {upper} {instant}
            AND e.type IN (%s, %s, %s, %s)
    """  # noqa: S608 — the table name from the model, every value bound


def shelf_moves_params(*, store: Store, since: datetime, until: datetime) -> list[Any]:
    adapt = connection.ops.adapt_datetimefield_value
    return [store.tenant_id, store.pk, adapt(since), adapt(until), *SHELF_EVENTS]


def products_sql() -> str:
    """`products(sku, unit_weight_g)`: the tenant's products (the parameter: its id), for the weight of another
    product an event names — read once (MATERIALIZED keeps PostgreSQL from joining the catalog to each event)."""
    materialized = "MATERIALIZED" if connection.vendor == "postgresql" else ""
    table = Product._meta.db_table
    select = f"SELECT sku, unit_weight_g FROM {table} WHERE tenant_id = %s"  # noqa: S608 — the model's table
    return f"products(sku, unit_weight_g) AS {materialized} ({select})"


def _weighed(units: str) -> str:
    """Units a scale's change comes to, to four decimals (exact decimals, so that their sum is the same however it
    is added up) — or none when under half a unit (a drift of a few grams)."""
    return f"(CASE WHEN ABS({units}) < 0.5 THEN 0 ELSE ROUND(CAST({units} AS NUMERIC), 4) END)"


# The units a shelf event `m` changes bin `b` by (with `p` the product the event names, `offline` the spans when a
# scale could not be trusted): the scale's change in the bin's units while it works, less the weight of another
# product put back on it; without a working scale, the cameras' picks and put-backs and the staff's restocks. A
# scale's units are left unrounded (changes under half a unit: none) and their sum is rounded, so that another
# product's weight of 7.5 units is taken off whole whether the scale read 7.49 or 7.51 of them.
UNITS_CHANGED = f"""
    CASE WHEN b.sensor IS NOT NULL AND NOT EXISTS (
            SELECT 1 FROM offline o WHERE o.sensor = b.sensor AND m.ts >= o.starts AND m.ts < o.ends)
        THEN (CASE WHEN m.type = 'shelf.weight_changed' THEN {_weighed("m.grams / b.unit_g")}
                   WHEN m.type IN ('item.picked', 'item.returned') AND m.sku <> b.sku
                       THEN (CASE WHEN m.type = 'item.returned' THEN -1 ELSE 1 END)
                           * {_weighed("m.qty * CAST(p.unit_weight_g AS DOUBLE PRECISION) / b.unit_g")}
                   ELSE 0 END)
        ELSE (CASE WHEN m.type = 'shelf.weight_changed' THEN 0
                   WHEN COALESCE(m.sku, b.sku) <> b.sku THEN 0
                   WHEN m.type = 'item.picked' THEN -m.qty
                   ELSE m.qty END)
    END
"""  # noqa: S608 — column expressions only, no value


def _read_time(value: Any) -> datetime | None:
    """A time from the database: a datetime on PostgreSQL, text on SQLite (UTC)."""
    if value is None or isinstance(value, datetime):
        return value
    parsed = parse_datetime(str(value))
    if parsed is None:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def counts_by_take(*, store: Store) -> dict[datetime, int]:
    """The store's stock takes: instant → bins counted then, newest first."""
    takes: dict[datetime, int] = defaultdict(int)
    for counted_at in StockCount.objects.filter(store=store).values_list("counted_at", flat=True):
        takes[counted_at] += 1
    return dict(sorted(takes.items(), reverse=True))
