"""Writes on stores and their layouts. Each is atomic and audited."""

from __future__ import annotations

import re
import zoneinfo
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from catalog import currencies
from catalog.selectors import products_by_sku
from stores.layout import DEFAULT_FIXTURE_KIND, LayoutProblem, validate_layout
from stores.models import (
    DISPUTE_POLICY_FIELDS,
    DISPUTE_POLICY_RANGES,
    OVERCHARGE_RISK_MAX,
    OVERCHARGE_RISK_MIN,
    UNSEEN_ITEM_REVIEW_COST_MAX,
    Bin,
    Device,
    DevicePlacement,
    Fixture,
    LayoutVersion,
    Store,
    Zone,
)
from stores.selectors import store_at_gate_key
from tenants.audit import Actor, audit_record
from tenants.models import AuditAction, Tenant
from tenants.quotas import quota_require_room

STORE_CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
RISK_STEP = Decimal("0.0001")
EDITABLE_STORE_FIELDS = (
    "name",
    "address",
    "timezone",
    "status",
    "preauth_amount",
    "overcharge_risk",
    "settling_window_seconds",
    "unseen_item_review_cost",
    *DISPUTE_POLICY_FIELDS,
)


class LayoutRejected(Exception):
    """A layout document with problems; nothing was written."""

    def __init__(self, problems: list[LayoutProblem]) -> None:
        super().__init__(f"{len(problems)} problem(s) in the layout")
        self.problems = problems


def _share(value: Any) -> Decimal | None:
    """A decimal share from a number or a numeric string; None for anything else (booleans included)."""
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        return None
    try:
        share = Decimal(str(value))
    except InvalidOperation:
        return None
    return share if share.is_finite() else None


def _dispute_policy_problem(key: str, value: Any) -> str:
    """What is wrong with a value of the store's dispute policy, or "" (ranges as in `disputes.policy`)."""
    if key == "dispute_auto_refund_unsure":
        return "" if isinstance(value, bool) else "true or false is required."
    low, high = DISPUTE_POLICY_RANGES[key]
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        return f"A whole number from {low:,} to {high:,} is required."
    return ""


def _clean_store_fields(fields: dict[str, Any]) -> dict[str, Any]:
    """Validate the editable store settings; raise ValidationError listing every bad field."""
    errors: dict[str, str] = {}
    cleaned: dict[str, Any] = {}
    for key, value in fields.items():
        if key == "name":
            if not isinstance(value, str) or not value.strip() or len(value) > 200:
                errors[key] = "A name of 1 to 200 characters is required."
            else:
                cleaned[key] = value.strip()
        elif key == "address":
            cleaned[key] = str(value or "")[:1000]
        elif key == "timezone":
            if value not in zoneinfo.available_timezones():
                errors[key] = f"{value!r} is not an IANA time zone (e.g. America/New_York)."
            else:
                cleaned[key] = value
        elif key == "status":
            if value not in Store.Status.values:
                errors[key] = f"Status must be one of {', '.join(Store.Status.values)}."
            else:
                cleaned[key] = value
        elif key in ("preauth_amount", "settling_window_seconds"):
            if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 10_000_000:
                errors[key] = "A whole number from 0 to 10,000,000 is required."
            else:
                cleaned[key] = value
        elif key == "unseen_item_review_cost":
            if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= UNSEEN_ITEM_REVIEW_COST_MAX:
                errors[key] = (
                    f"A whole number of the currency's minor unit from 0 to {UNSEEN_ITEM_REVIEW_COST_MAX:,} is "
                    "required (e.g. 50 for 0.50; 0 always asks)."
                )
            else:
                cleaned[key] = value
        elif key in DISPUTE_POLICY_FIELDS:
            problem = _dispute_policy_problem(key, value)
            if problem:
                errors[key] = problem
            else:
                cleaned[key] = value
        elif key == "overcharge_risk":
            risk = _share(value)
            in_range = risk is not None and OVERCHARGE_RISK_MIN <= risk <= OVERCHARGE_RISK_MAX
            if risk is None or not in_range or risk != risk.quantize(RISK_STEP):
                errors[key] = (
                    f"A share of visits from {OVERCHARGE_RISK_MIN} to {OVERCHARGE_RISK_MAX} "
                    f"(0.05 % to 5 %), with at most four decimals: e.g. 0.005 for at most 0.5 % of visits overcharged."
                )
            else:
                cleaned[key] = risk.quantize(RISK_STEP)
    if errors:
        raise ValidationError(errors)
    return cleaned


@transaction.atomic
def store_create(
    *, actor: Actor, tenant: Tenant, code: str, name: str, timezone: str, currency: str, **settings: Any
) -> Store:
    """Register a store. Optional settings: address, preauth_amount, overcharge_risk, settling_window_seconds,
    unseen_item_review_cost and the dispute policy's."""
    errors: dict[str, str] = {}
    if not isinstance(code, str) or not STORE_CODE.match(code):
        errors["code"] = "1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit."
    elif Store.unscoped.filter(tenant=tenant, code=code).exists():
        errors["code"] = f"A store with the code {code!r} already exists."
    if not isinstance(currency, str) or not currencies.is_supported(currency):
        errors["currency"] = f"{currency!r} is not a supported ISO 4217 currency."
    unknown = set(settings) - set(EDITABLE_STORE_FIELDS)
    if unknown:
        errors.update(dict.fromkeys(unknown, "Not a store setting."))
    try:
        cleaned = _clean_store_fields({"name": name, "timezone": timezone, **settings})
    except ValidationError as error:
        errors.update({k: " ".join(v) for k, v in error.message_dict.items()})
        cleaned = {}
    if errors:
        raise ValidationError(errors)
    quota_require_room(tenant=tenant, name="stores")
    store = Store.unscoped.create(tenant=tenant, code=code, currency=currency, **cleaned)
    audit_record(
        actor=actor,
        tenant_id=tenant.pk,
        action=AuditAction.STORE_CREATED,
        obj=store,
        changes={"code": code, **_jsonable(cleaned)},
    )
    return store


@transaction.atomic
def store_update(*, actor: Actor, store: Store, **changes: Any) -> Store:
    """Change a store's editable settings (not its code or currency, which events and prices depend on)."""
    fixed = {key for key in changes if key in ("code", "currency")}
    unknown = set(changes) - set(EDITABLE_STORE_FIELDS) - fixed
    if fixed or unknown:
        errors = dict.fromkeys(fixed, "Cannot be changed after the store is created.")
        errors.update(dict.fromkeys(unknown, "Not a store setting."))
        raise ValidationError(errors)
    cleaned = _clean_store_fields(changes)
    store = Store.unscoped.select_for_update().get(pk=store.pk)
    before = {key: getattr(store, key) for key in cleaned}
    for key, value in cleaned.items():
        setattr(store, key, value)
    store.save(update_fields=list(cleaned) or None)
    diff = {key: [before[key], value] for key, value in cleaned.items() if before[key] != value}
    if diff:
        audit_record(
            actor=actor, tenant_id=store.tenant_id, action=AuditAction.STORE_UPDATED, obj=store, changes=_jsonable(diff)
        )
    store_changed(store=store)
    return store


def store_changed(*, store: Store) -> None:
    """The store's settings changed: drop what the entry check keeps of it, now and once the change commits."""
    key = store_at_gate_key(tenant_id=store.tenant_id, code=store.code)
    cache.delete(key)
    transaction.on_commit(lambda: cache.delete(key))


def _jsonable(values: dict[str, Any]) -> dict[str, Any]:
    """Audit-log friendly values: decimals as strings, also inside [before, after] pairs."""

    def plain(value: Any) -> Any:
        if isinstance(value, list):
            return [plain(v) for v in value]
        return str(value) if isinstance(value, Decimal) else value

    return {key: plain(value) for key, value in values.items()}


@transaction.atomic
def layout_publish(
    *, actor: Actor, store: Store, document: Any, effective_from: datetime | None = None
) -> LayoutVersion:
    """Validate a layout document whole and store it as the store's next layout version.

    Raises LayoutRejected with every problem, writing nothing, when the document is not valid.
    """
    skus = _skus_in(document)
    products = products_by_sku(skus=skus)
    problems = validate_layout(document, known_skus=set(products))
    if problems:
        raise LayoutRejected(problems)
    store = Store.unscoped.select_for_update().get(pk=store.pk)
    effective_from = effective_from or timezone.now()
    if LayoutVersion.unscoped.filter(store=store, effective_from=effective_from).exists():
        raise LayoutRejected([LayoutProblem("effective_from", "another layout version starts at that instant")])
    number = (LayoutVersion.unscoped.filter(store=store).aggregate(n=Max("number"))["n"] or 0) + 1
    floor = document["floor"]
    layout = LayoutVersion.unscoped.create(
        tenant_id=store.tenant_id,
        store=store,
        number=number,
        effective_from=effective_from,
        document=document,
        floor_width_m=Decimal(str(floor["width_m"])),
        floor_depth_m=Decimal(str(floor["depth_m"])),
        created_by=actor.label[:200],
    )
    _normalise(layout=layout, document=document, products=products)
    audit_record(
        actor=actor,
        tenant_id=store.tenant_id,
        action=AuditAction.LAYOUT_PUBLISHED,
        obj=layout,
        changes={"number": number, "effective_from": effective_from.isoformat(), "bins": len(list(_bins_in(document)))},
    )
    return layout


def _skus_in(document: Any) -> set[str]:
    return {b["sku"] for _, b in _bins_in(document) if isinstance(b.get("sku"), str)}


def _bins_in(document: Any) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    if not isinstance(document, dict) or not isinstance(document.get("fixtures"), list):
        return []
    return [
        (fixture, item)
        for fixture in document["fixtures"]
        if isinstance(fixture, dict) and isinstance(fixture.get("bins"), list)
        for item in fixture["bins"]
        if isinstance(item, dict)
    ]


def _normalise(*, layout: LayoutVersion, document: dict[str, Any], products: dict[str, Any]) -> None:
    """Write the zones, fixtures, bins, devices and placements of a validated document, in bulk."""
    tenant_id, store = layout.tenant_id, layout.store
    zones = Zone.unscoped.bulk_create(
        [
            Zone(tenant_id=tenant_id, layout=layout, code=z["code"], name=z["name"], polygon=z["polygon"])
            for z in document["zones"]
        ]
    )
    zone_by_code = {zone.code: zone for zone in zones}
    fixtures = Fixture.unscoped.bulk_create(
        [
            Fixture(
                tenant_id=tenant_id,
                layout=layout,
                zone=zone_by_code[f["zone"]],
                code=f["code"],
                kind=f.get("kind", DEFAULT_FIXTURE_KIND),
                x_m=f["position"][0],
                y_m=f["position"][1],
                width_m=f["size"][0],
                depth_m=f["size"][1],
            )
            for f in document["fixtures"]
        ]
    )
    fixture_by_code = {fixture.code: fixture for fixture in fixtures}
    device_by_code = _devices_upsert(store=store, devices=document["devices"])
    DevicePlacement.unscoped.bulk_create(
        [
            DevicePlacement(
                tenant_id=tenant_id,
                layout=layout,
                device=device_by_code[d["code"]],
                position=d.get("position"),
                covers=d.get("covers") or [],
                fixture=fixture_by_code.get(d.get("fixture", "")),
            )
            for d in document["devices"]
        ]
    )
    Bin.unscoped.bulk_create(
        [
            Bin(
                tenant_id=tenant_id,
                layout=layout,
                fixture=fixture_by_code[fixture["code"]],
                code=b["code"],
                product=products[b["sku"]],
                sku=b["sku"],
                capacity=b["capacity"],
                sensor=device_by_code.get(b["sensor"]) if b.get("sensor") else None,
            )
            for fixture, b in _bins_in(document)
        ],
        batch_size=1000,
    )


def _devices_upsert(*, store: Store, devices: list[dict[str, Any]]) -> dict[str, Device]:
    """The store's devices by code, creating new ones; a device keeps its health across layout versions."""
    existing = {device.code: device for device in Device.unscoped.filter(store=store)}
    changed_kind = []
    for item in devices:
        device = existing.get(item["code"])
        if device is not None and device.kind != item["kind"]:
            device.kind = item["kind"]
            changed_kind.append(device)
    if changed_kind:
        Device.unscoped.bulk_update(changed_kind, ["kind"])
    new = [
        Device(tenant_id=store.tenant_id, store=store, code=item["code"], kind=item["kind"])
        for item in devices
        if item["code"] not in existing
    ]
    for device in Device.unscoped.bulk_create(new):
        existing[device.code] = device
    return existing


def devices_mark_silent(*, silent_after: timedelta) -> int:
    """Mark offline every device not heard of for `silent_after`; return how many changed."""
    now = timezone.now()
    return int(
        Device.objects.filter(last_seen_at__lt=now - silent_after)
        .exclude(status=Device.Health.OFFLINE)
        .update(status=Device.Health.OFFLINE, status_changed_at=now)
    )
