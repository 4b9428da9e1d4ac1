"""Shrink: units that left a shelf and that no cart line explains, and what happened on each shelf in a period.

What left a bin is read as its stock is (`stock.selectors`): the scale's changes while it works, the cameras'
picks and put-backs where it does not, with the restocks' units put back in — so a unit taken and put back
left nothing. A cart line explains the units it holds, shared among the bins of its product its evidence names
(a line with no such evidence: the first bin holding the product when the visit came in), while its visit is
charged, its payment failed (the shopper owes it) or it is not decided yet (open, settling, in review). A
visit voided in review (or refunded whole) explains nothing, and neither does an unseen take left uncharged or
an item put back on another product's bin.

Everything is read in one SQL query over the period's events and cart lines, grouped by local day of the
store, bin, product and price version, so a month of a busy store is read without a row per event in Python.
Shrink of a product on a day is the units of it that left its bins less those charged, when positive, shown on
the bins where more left than was charged; it is valued at the product's price in force then (a day split where
the price changed).
"""

from __future__ import annotations

import zoneinfo
from collections import defaultdict
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta
from typing import Any

from django.db import connection

from catalog.models import Product, ProductPrice
from ingest.models import Event
from stock.selectors import (
    UNITS_CHANGED,
    offline_spans,
    offline_sql,
    payload_key,
    products_sql,
    shelf_moves_params,
    shelf_moves_sql,
    sql_instant,
)
from stores.models import Bin, LayoutVersion, Store
from visits.models import Visit, VisitLine

LONGEST_PERIOD = timedelta(days=92)
EXPLAINING = (
    Visit.Status.OPEN,
    Visit.Status.SETTLING,
    Visit.Status.NEEDS_REVIEW,
    Visit.Status.AWAITING_PAYMENT,
    Visit.Status.CHARGED,
    Visit.Status.PAYMENT_FAILED,
)


class PeriodError(ValueError):
    """A period that cannot be read: its start not before its end, or longer than `LONGEST_PERIOD`."""


@dataclass(frozen=True)
class ShelfFlow:
    """What happened on one bin in one stretch of a day at one price: the cameras' picks and put-backs there (of
    any product), the units of its product that left it (net of put-backs and restocks), those charged from it, and
    the shrink shown on it (see `_share_shrink`)."""

    starts: datetime
    bin: str
    fixture: str
    sku: str
    unit_price: int | None
    picks: int
    put_backs: int
    left: int
    charged: int
    shrink: int = 0


@dataclass(frozen=True)
class ShrinkItem:
    ts: datetime
    bin: str
    fixture: str
    sku: str
    name: str
    units: int
    value: int


@dataclass(frozen=True)
class ShrinkReport:
    since: datetime
    until: datetime
    currency: str
    items: list[ShrinkItem]

    @property
    def units(self) -> int:
        return sum(item.units for item in self.items)

    @property
    def value(self) -> int:
        return sum(item.value for item in self.items)


@dataclass(frozen=True)
class _Placed:
    """A bin as a layout version placed it, clipped to the period."""

    code: str
    fixture: str
    sku: str
    unit_g: float
    sensor: str | None
    starts: datetime
    ends: datetime


def check_period(*, since: datetime, until: datetime) -> None:
    if since >= until:
        raise PeriodError("The period's start must come before its end.")
    if until - since > LONGEST_PERIOD:
        raise PeriodError(f"A period of at most {LONGEST_PERIOD.days} days.")


def store_zone(store: Store) -> zoneinfo.ZoneInfo:
    try:
        return zoneinfo.ZoneInfo(store.timezone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return zoneinfo.ZoneInfo("UTC")


def local_days(*, store: Store, since: datetime, until: datetime) -> list[tuple[datetime, datetime]]:
    """The period cut at the store's local midnights: [(starts, ends)], the first and last clipped to it."""
    zone = store_zone(store)
    cuts = [since]
    day: date = since.astimezone(zone).date() + timedelta(days=1)
    while (midnight := datetime.combine(day, time.min, tzinfo=zone)) < until:
        cuts.append(midnight)
        day += timedelta(days=1)
    return list(zip(cuts, [*cuts[1:], until], strict=True))


def shelf_flows(*, store: Store, since: datetime, until: datetime) -> list[ShelfFlow]:
    """Per local day, bin, product and price version in [since, until): picks, put-backs, units left, charged."""
    check_period(since=since, until=until)
    placed = _placed_bins(store=store, since=since, until=until)
    if not placed:
        return []
    spans = offline_spans(store=store, at=until, sensors={b.sensor for b in placed if b.sensor})
    sql, params = _flows_sql(store=store, since=since, until=until, placed=placed, spans=spans)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    days = local_days(store=store, since=since, until=until)
    fixtures = {b.code: b.fixture for b in placed}
    prices = _price_starts(store=store, skus={b.sku for b in placed})
    flows = []
    for day, code, sku, unit_price, price_from, picks, put_backs, left, charged in rows:
        day_starts = days[int(day)][0]
        starts = max(day_starts, prices.get((sku, price_from), day_starts))
        flows.append(
            ShelfFlow(
                starts=starts,
                bin=code,
                fixture=fixtures[code],
                sku=sku,
                unit_price=None if unit_price is None else int(unit_price),
                picks=int(picks or 0),
                put_backs=int(put_backs or 0),
                left=int(left or 0),
                charged=int(charged or 0),
            )
        )
    return sorted(_share_shrink(flows), key=lambda f: (f.starts, f.fixture, f.bin))


def _share_shrink(flows: list[ShelfFlow]) -> list[ShelfFlow]:
    """The shrink of each product in each stretch of a day — the units of it that left its bins less those charged,
    when positive: a charged unit explains a unit of its product gone from any of its bins — shown on the bins where
    more left than was charged, the most first."""
    groups: dict[tuple[datetime, str], list[ShelfFlow]] = defaultdict(list)
    for flow in flows:
        groups[(flow.starts, flow.sku)].append(flow)
    shared = []
    for group in groups.values():
        rest = max(0, sum(flow.left - flow.charged for flow in group))
        for flow in sorted(group, key=lambda f: (f.charged - f.left, f.bin)):
            units = min(rest, max(0, flow.left - flow.charged))
            rest -= units
            shared.append(replace(flow, shrink=units))
    return shared


def shrink_report(*, store: Store, since: datetime, until: datetime) -> ShrinkReport:
    """Shrink in [since, until) by local day (and price version), bin and product, valued in minor units."""
    flows = [flow for flow in shelf_flows(store=store, since=since, until=until) if flow.shrink > 0]
    names = dict(Product.objects.filter(sku__in={f.sku for f in flows}).values_list("sku", "name"))
    items = [
        ShrinkItem(
            ts=flow.starts,
            bin=flow.bin,
            fixture=flow.fixture,
            sku=flow.sku,
            name=names.get(flow.sku, flow.sku),
            units=flow.shrink,
            value=flow.shrink * (flow.unit_price or 0),
        )
        for flow in flows
    ]
    return ShrinkReport(since=since, until=until, currency=store.currency, items=items)


def _placed_bins(*, store: Store, since: datetime, until: datetime) -> list[_Placed]:
    """Every bin of the layout versions in force in [since, until), each over the part of it its version held."""
    versions = list(LayoutVersion.objects.filter(store=store).order_by("effective_from", "number"))
    spans: dict[int, tuple[datetime, datetime]] = {}
    for index, version in enumerate(versions):
        starts = since if index == 0 else max(since, version.effective_from)
        ends = min(until, versions[index + 1].effective_from) if index + 1 < len(versions) else until
        if starts < ends:
            spans[version.pk] = (starts, ends)
    rows = list(Bin.objects.filter(layout_id__in=spans).select_related("fixture", "sensor", "product"))
    return [
        _Placed(
            row.code,
            row.fixture.code,
            row.sku,
            float(row.product.unit_weight_g),
            row.sensor.code if row.sensor else None,
            *spans[row.layout_id],
        )
        for row in rows
    ]


def _prices(*, store: Store, skus: set[str]) -> dict[str, list[tuple[datetime, int]]]:
    """Each product's price versions in the store's currency, oldest first."""
    versions: dict[str, list[tuple[datetime, int]]] = defaultdict(list)
    rows = (
        ProductPrice.objects.filter(product__sku__in=skus, currency=store.currency)
        .order_by("product__sku", "effective_from")
        .values_list("product__sku", "effective_from", "unit_price")
    )
    for sku, effective_from, unit_price in rows:
        versions[sku].append((effective_from, unit_price))
    return versions


def _price_starts(*, store: Store, skus: set[str]) -> dict[tuple[str, int], datetime]:
    """(sku, version number) → when that price took effect (the first one: from the start)."""
    return {
        (sku, number): starts
        for sku, versions in _prices(store=store, skus=skus).items()
        for number, (starts, _) in enumerate(versions)
        if number > 0
    }


def _flows_sql(
    *,
    store: Store,
    since: datetime,
    until: datetime,
    placed: list[_Placed],
    spans: list[tuple[str, datetime, datetime]],
) -> tuple[str, list[Any]]:
    postgres = connection.vendor == "postgresql"
    instant = sql_instant()
    adapt = connection.ops.adapt_datetimefield_value
    params: list[Any] = []
    bins = ", ".join([f"(%s, %s, CAST(%s AS DOUBLE PRECISION), %s, {instant}, {instant})"] * len(placed))
    for b in placed:
        params += [b.code, b.sku, b.unit_g, b.sensor, adapt(b.starts), adapt(b.ends)]
    days = local_days(store=store, since=since, until=until)
    day_rows = ", ".join([f"(%s, {instant}, {instant})"] * len(days))
    for number, (starts, ends) in enumerate(days):
        params += [number, adapt(starts), adapt(ends)]
    price_rows, price_params = _price_rows(store=store, skus={b.sku for b in placed}, until=until)
    params += price_params
    offline, offline_params = offline_sql(spans)
    params += [*offline_params, store.tenant_id]  # the spans scales were out, the tenant's products
    params += shelf_moves_params(store=store, since=since, until=until)
    statuses = ", ".join(["%s"] * len(EXPLAINING))
    params += [store.tenant_id, store.pk, *EXPLAINING, adapt(until), adapt(since)]
    params += [store.tenant_id, store.pk]  # the evidence's events
    params += [adapt(since), adapt(until)]  # the lines' times
    # The lines' evidence is looked up by event id first (the events' unique index), never by scanning the period's
    # events for each line: PostgreSQL is told to read it on its own. A line's units are shared among the bins of its
    # product its evidence names, in the order of that evidence, each up to what the evidence says left it, the rest
    # on the first (`placed`); a line without such evidence counts on the first bin holding its product when its
    # visit came in (the second choice of `candidates`).
    if postgres:
        evidence = "CROSS JOIN LATERAL jsonb_array_elements_text(x.evidence) AS ev(event_id)"
        event_id, materialized = "ev.event_id", "MATERIALIZED"
    else:
        evidence, event_id, materialized = "CROSS JOIN json_each(x.evidence) AS ev", "ev.value", ""
    greatest = "GREATEST" if postgres else "MAX"
    # What a line's own evidence says left one bin: the cameras' takes less put-backs of the line's product there,
    # or the scale's fall, whichever is more.
    seen_units = f"""CAST({greatest}(
            SUM(CASE WHEN c.type = 'shelf.weight_changed' OR COALESCE(c.named, c.sku) <> c.sku THEN 0
                     WHEN c.type = 'item.picked' THEN c.qty WHEN c.type = 'item.returned' THEN -c.qty ELSE 0 END),
            SUM(CASE WHEN c.type = 'shelf.weight_changed' THEN -ROUND(c.grams / b.unit_g) ELSE 0 END), 0) AS INTEGER)"""
    sql = f"""
        WITH bins(code, sku, unit_g, sensor, starts, ends) AS (VALUES {bins}),
        days(day, starts, ends) AS (VALUES {day_rows}),
        prices(sku, version, unit_price, starts, ends) AS ({price_rows}),
        offline(sensor, starts, ends) AS ({offline}),
        {products_sql()},
        moves AS ({shelf_moves_sql(upper="<")}),
        weighed AS (
            SELECT b.code AS bin, b.sku AS sku, m.ts AS ts,
                CASE WHEN m.type = 'item.picked' THEN m.qty ELSE 0 END AS picks,
                CASE WHEN m.type = 'item.returned' THEN m.qty ELSE 0 END AS put_backs,
                (CASE WHEN m.type = 'shelf.restocked' AND COALESCE(m.sku, b.sku) = b.sku THEN m.qty ELSE 0 END)
                    - ({UNITS_CHANGED}) AS units_left
            FROM bins b JOIN moves m ON m.bin = b.code AND m.ts >= b.starts AND m.ts < b.ends
                LEFT JOIN products p ON p.sku = m.sku
        ),
        lines AS (
            SELECT l.id AS line, l.sku AS sku, l.qty AS qty, l.evidence AS evidence, v.entered_at AS entered
            FROM {VisitLine._meta.db_table} l JOIN {Visit._meta.db_table} v ON v.id = l.visit_id
            WHERE v.tenant_id = %s AND v.store_id = %s AND v.status IN ({statuses})
                AND v.entered_at < {instant} AND (v.exited_at IS NULL OR v.exited_at >= {instant})
        ),
        cited AS {materialized} (
            SELECT x.line AS line, x.sku AS sku, x.qty AS line_qty, e.ts AS ts, e.type AS type,
                {payload_key("bin")} AS bin, COALESCE(CAST({payload_key("qty")} AS INTEGER), 1) AS qty,
                CAST({payload_key("delta_g")} AS DOUBLE PRECISION) AS grams, {payload_key("sku")} AS named
            FROM lines x {evidence}
                JOIN {Event._meta.db_table} e ON e.tenant_id = %s AND e.store_id = %s AND e.event_id = {event_id}
        ),
        candidates AS (
            SELECT c.line AS line, c.sku AS sku, MAX(c.line_qty) AS qty, b.code AS bin, MIN(c.ts) AS ts,
                {seen_units} AS units, 0 AS choice
            FROM cited c JOIN bins b ON b.code = c.bin AND b.sku = c.sku AND c.ts >= b.starts AND c.ts < b.ends
            GROUP BY c.line, c.sku, b.code, b.starts
            UNION ALL
            SELECT line, sku, qty, bin, ts, 0, 1 FROM (
                SELECT x.line AS line, x.sku AS sku, x.qty AS qty, b.code AS bin, x.entered AS ts,
                    ROW_NUMBER() OVER (PARTITION BY x.line ORDER BY b.code) AS nth
                FROM lines x JOIN bins b ON b.sku = x.sku AND x.entered >= b.starts AND x.entered < b.ends
            ) AS first_bins WHERE nth = 1
        ),
        placed AS (
            SELECT line, sku, qty, bin, ts, units, ROW_NUMBER() OVER (PARTITION BY line ORDER BY ts, bin) AS nth,
                SUM(units) OVER (PARTITION BY line ORDER BY ts, bin ROWS UNBOUNDED PRECEDING) - units AS before,
                SUM(units) OVER (PARTITION BY line) AS total
            FROM (SELECT c.*, MIN(choice) OVER (PARTITION BY line) AS best FROM candidates c) AS found
            WHERE choice = best
        ),
        charged AS (
            SELECT bin, sku, ts,
                (CASE WHEN qty - before < units THEN {greatest}(qty - before, 0) ELSE units END)
                    + (CASE WHEN nth = 1 THEN {greatest}(qty - total, 0) ELSE 0 END) AS qty
            FROM placed
            WHERE ts >= {instant} AND ts < {instant}
        ),
        flows AS (
            SELECT bin, sku, ts, picks, put_backs, units_left, 0 AS charged FROM weighed
            UNION ALL SELECT bin, sku, ts, 0, 0, 0, qty FROM charged
        )
        SELECT d.day, f.bin, f.sku, pr.unit_price, pr.version,
            SUM(f.picks), SUM(f.put_backs), ROUND(SUM(f.units_left)), SUM(f.charged)
        FROM flows f JOIN days d ON f.ts >= d.starts AND f.ts < d.ends
            LEFT JOIN prices pr ON pr.sku = f.sku AND f.ts >= pr.starts AND f.ts < pr.ends
        GROUP BY d.day, f.bin, f.sku, pr.unit_price, pr.version
    """  # noqa: S608 — table names from the models, every value bound
    return sql, params


def _price_rows(*, store: Store, skus: set[str], until: datetime) -> tuple[str, list[Any]]:
    """`prices(sku, version, unit_price, starts, ends)`: each version from its start (the first: from any time)
    to the next one's."""
    instant = sql_instant()
    adapt = connection.ops.adapt_datetimefield_value
    rows: list[Any] = []
    count = 0
    earliest = datetime(1970, 1, 1, tzinfo=until.tzinfo)
    for sku, versions in _prices(store=store, skus=skus).items():
        for number, (starts, unit_price) in enumerate(versions):
            ends = versions[number + 1][0] if number + 1 < len(versions) else until + timedelta(days=1)
            rows += [sku, number, unit_price, adapt(earliest if number == 0 else starts), adapt(ends)]
            count += 1
    if not count:
        nothing = "CAST(NULL AS timestamptz)" if connection.vendor == "postgresql" else "NULL"
        return f"SELECT '', 0, 0, {nothing}, {nothing} WHERE 1 = 0", []
    row = f"(%s, %s, CAST(%s AS BIGINT), {instant}, {instant})"
    return "VALUES " + ", ".join([row] * count), rows
