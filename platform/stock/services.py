"""Writes of shelf stock: stock takes, low-stock levels, and the `stock.low` webhook when a bin turns low."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from billing.webhooks.models import EventType
from billing.webhooks.services import webhook_emit
from core.tasks import enqueue_on_commit
from stock import selectors
from stock.models import MAX_UNITS, LowStockLevel, StockAlert, StockCount
from stores.models import Bin, Store
from stores.selectors import layout_in_force
from tenants.audit import Actor, audit_record
from tenants.models import AuditAction

CHECK_TASK = "stock.check_low"


@dataclass(frozen=True)
class Problem:
    index: int | None
    message: str


class StockRefused(Exception):
    """A stock take or a list of low-stock levels with problems: nothing of it was stored."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__(f"{len(problems)} problem(s)")
        self.problems = problems


def _units(value: Any) -> int | None:
    """Whole units from 0 to MAX_UNITS (a bool or a fraction is not a count)."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_UNITS:
        return None
    return value


def _check_take(*, store: Store, at: datetime, rows: Any) -> tuple[dict[str, tuple[str, int]], list[Problem]]:
    """Bin → (sku, units) of a stock take, or every problem with the index of its row."""
    if not isinstance(rows, list) or not rows:
        return {}, [Problem(None, 'Send a JSON array of counts, e.g. [{"bin": "F01-B01", "units": 12}].')]
    if at > timezone.now():
        return {}, [Problem(None, "A stock take counts what is on the shelves: its time cannot be in the future.")]
    layout = layout_in_force(store=store, at=at)
    if layout is None:
        return {}, [Problem(None, f"Store {store.code} has no layout yet: publish one first.")]
    skus = dict(Bin.objects.filter(layout=layout).values_list("code", "sku"))
    counted: dict[str, tuple[str, int]] = {}
    problems: list[Problem] = []
    for index, row in enumerate(rows):
        if not isinstance(row, dict) or set(row) != {"bin", "units"}:
            problems.append(Problem(index, 'Each count is {"bin": <bin code>, "units": <whole number>}.'))
            continue
        code, units = row["bin"], _units(row["units"])
        if not isinstance(code, str) or code not in skus:
            problems.append(Problem(index, f"No bin {code!r} in the layout in force then (v{layout.number})."))
        elif code in counted:
            problems.append(Problem(index, f"Bin {code!r} is counted twice."))
        elif units is None:
            problems.append(Problem(index, f"units: a whole number from 0 to {MAX_UNITS:,}."))
        else:
            counted[code] = (skus[code], units)
    return counted, problems


@transaction.atomic
def stock_take_record(*, actor: Actor, store: Store, at: datetime | None = None, rows: Any) -> list[StockCount]:
    """Record what staff counted on some of the store's bins at `at` (default now), all or nothing.

    `rows` are `{"bin", "units"}`. Counting a bin again at the same instant replaces that count.
    Raises StockRefused listing every problem.
    """
    at = at or timezone.now()
    counted, problems = _check_take(store=store, at=at, rows=rows)
    if problems:
        raise StockRefused(problems)
    label = actor.label[:200]
    counts = StockCount.objects.bulk_create(
        [
            StockCount(
                tenant_id=store.tenant_id,
                store=store,
                bin=code,
                sku=sku,
                units=units,
                counted_at=at,
                recorded_by=label,
            )
            for code, (sku, units) in sorted(counted.items())
        ],
        update_conflicts=True,
        unique_fields=["tenant", "store", "bin", "counted_at"],
        update_fields=["sku", "units", "recorded_at", "recorded_by"],
    )
    audit_record(
        actor=actor,
        tenant_id=store.tenant_id,
        action=AuditAction.STOCK_COUNTED,
        obj=store,
        changes={"at": at.isoformat(), "bins": len(counts), "units": sum(units for _, units in counted.values())},
    )
    enqueue_on_commit(CHECK_TASK, tenant_id=store.tenant_id, store_id=store.pk)
    return counts


def stock_low_check(*, store: Store, at: datetime | None = None) -> list[selectors.BinStock]:
    """Note which bins are low now; send `stock.low` for each that turned low since the last check.

    Runs under the store's row lock, so that two checks at once send a crossing once; the webhook's event key
    is the bin's crossing number, so a repeated check never sends it twice either. Returns the bins that
    turned low.
    """
    with transaction.atomic():
        Store.objects.select_for_update().filter(pk=store.pk).first()
        if not (LowStockLevel.objects.filter(store=store).exists() or StockAlert.objects.filter(store=store).exists()):
            return []
        stock = selectors.stock_at(store=store, at=at or timezone.now())
        alerts = {row.bin: row for row in StockAlert.objects.filter(store=store)}
        turned = []
        for item in stock:
            if item.level is None and item.bin not in alerts:
                continue
            alert = alerts.get(item.bin) or StockAlert(tenant_id=store.tenant_id, store=store, bin=item.bin)
            if item.low == alert.low:
                continue
            alert.low, alert.changed_at = item.low, timezone.now()
            if item.low:
                alert.crossings += 1
                turned.append(item)
                _announce(store=store, item=item, crossing=alert.crossings)
            alert.save()
        return turned


def _announce(*, store: Store, item: selectors.BinStock, crossing: int) -> None:
    webhook_emit(
        tenant=store.tenant,
        event_type=EventType.STOCK_LOW,
        payload={
            "store": store.code,
            "bin": item.bin,
            "sku": item.sku,
            "name": item.name,
            "units": item.units,
            "low_at": item.level,
            "since": item.last_change.isoformat() if item.last_change else None,
        },
        event_key=f"{store.pk}:{item.bin}:{crossing}",
    )


def low_level_problems(*, store: Store, bin_code: str, sku: str, units: Any) -> dict[str, str]:
    """What is wrong with a low-stock level: a bin of the store's layout in force or a product on it, not both."""
    problems: dict[str, str] = {}
    if bool(bin_code) == bool(sku):
        problems["bin"] = "Name a bin, or a product for all its bins — one of the two."
    layout = layout_in_force(store=store)
    bins = Bin.objects.filter(layout=layout) if layout else Bin.objects.none()
    if bin_code and not bins.filter(code=bin_code).exists():
        problems["bin"] = f"No bin {bin_code!r} in {store.code}'s layout in force."
    if sku and not bins.filter(sku=sku).exists():
        problems["sku"] = f"No bin of {store.code}'s layout in force holds {sku!r}."
    if _units(units) is None:
        problems["units"] = f"A whole number from 0 to {MAX_UNITS:,}."
    return problems


@transaction.atomic
def low_levels_set(*, actor: Actor, store: Store, levels: Sequence[dict[str, Any]]) -> list[LowStockLevel]:
    """Set low-stock levels (`{"bin"` or `"sku", "units"}`; `units: null` removes one), all or nothing.

    Raises StockRefused listing every problem by index.
    """
    problems: list[Problem] = []
    for index, level in enumerate(levels):
        found = low_level_problems(
            store=store,
            bin_code=level.get("bin") or "",
            sku=level.get("sku") or "",
            units=0 if level.get("units") is None else level.get("units"),
        )
        problems += [Problem(index, f"{field}: {message}") for field, message in found.items()]
    if problems:
        raise StockRefused(problems)
    kept = []
    for level in levels:
        where = {
            "tenant_id": store.tenant_id,
            "store": store,
            "bin": level.get("bin") or "",
            "sku": level.get("sku") or "",
        }
        if level.get("units") is None:
            LowStockLevel.objects.filter(**where).delete()
            continue
        row, _ = LowStockLevel.objects.update_or_create(
            **where, defaults={"units": level["units"], "updated_at": timezone.now()}
        )
        kept.append(row)
    audit_record(
        actor=actor,
        tenant_id=store.tenant_id,
        action=AuditAction.LOW_STOCK_LEVELS_SET,
        obj=store,
        changes={"levels": list(levels)},
    )
    enqueue_on_commit(CHECK_TASK, tenant_id=store.tenant_id, store_id=store.pk)
    return kept
