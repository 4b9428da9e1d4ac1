"""Helpers for the visits tests that drive settling and learning in-process, on the real database."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.contrib.auth.models import User
from django.utils import timezone

from billing.payments.shoppers import shopper_register
from core import tenancy
from ingest.models import Event
from ingest.services import events_push, stream_finish
from stores.models import Store
from stores.sample_store import sample_prices_add
from tenants.audit import Actor
from tenants.models import Tenant
from visits import calibration, services, settling
from visits.models import ReviewDecision, StoreCalibration, Visit, VisitLine
from visits.pricing import line_tax

PUSH_AT_MOST = 1000
PRICE, TAX = 199, Decimal("8.25")


def priced(store: Store) -> Store:
    """The store settling at once (no settling window), every sample product priced at PRICE with TAX."""
    Store.unscoped.filter(pk=store.pk).update(settling_window_seconds=0)
    sample_prices_add(tenant=store.tenant, unit_price=PRICE, tax_rate=TAX)
    store.refresh_from_db()
    return store


def registered_shoppers(tenant: Tenant, refs: Iterable[str]) -> list[str]:
    """The entry tokens of shoppers registered under `refs`, each with a test card (on localstripe)."""
    with tenancy.tenant_scope(tenant.pk):
        return [
            shopper_register(
                actor=Actor.system(), tenant=tenant, external_ref=ref, payment_method="pm_card_visa"
            ).entry_token
            for ref in refs
        ]


def cart_line(
    visit: Visit,
    sku: str,
    qty: int,
    unit_price: int,
    *,
    tax_rate: Decimal = Decimal(0),
    confidence: float = 1.0,
    evidence: Sequence[str] = (),
    name: str | None = None,
) -> VisitLine:
    """A line of the visit's cart as settling writes one: `qty` × `unit_price`, taxed at `tax_rate` %."""
    amount = qty * unit_price
    line: VisitLine = VisitLine.unscoped.create(
        tenant_id=visit.tenant_id,
        visit=visit,
        sku=sku,
        name=f"Product {sku}" if name is None else name,
        qty=qty,
        unit_price=unit_price,
        amount=amount,
        tax_rate=tax_rate,
        tax=line_tax(amount=amount, tax_rate=tax_rate),
        confidence=confidence,
        evidence=list(evidence),
    )
    return line


def review_decision(
    visit: Visit, *, reviewer: User, action: str = ReviewDecision.Action.APPROVE, at: datetime | None = None
) -> ReviewDecision:
    """A person's decision on `visit` that left its cart as it was, recorded at `at` (default: now)."""
    decision: ReviewDecision = ReviewDecision.unscoped.create(
        tenant_id=visit.tenant_id,
        visit=visit,
        reviewer=reviewer,
        action=action,
        lines_before=[],
        lines_after=[],
        decided_at=at or timezone.now(),
    )
    return decision


def stamp(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


def stored_event(store: Store, event_id: str, kind: str, ts: datetime, **fields: Any) -> Event:
    """An event row as ingest stores it (not saved yet): the payload holds the event's fields, the device is its
    `device` or its `gate`."""
    return Event(
        tenant_id=store.tenant_id,
        store=store,
        event_id=event_id,
        type=kind,
        ts=ts,
        session=fields.get("session"),
        device=str(fields.get("device") or fields.get("gate") or ""),
        payload={"id": event_id, "type": kind, "ts": stamp(ts), **fields},
    )


def push(store: Store, events: Sequence[dict[str, Any]], *, batch: int = PUSH_AT_MOST) -> None:
    """Send events as a store's live pushes do (the same validation and writing), `batch` at a time, each
    finished as the ingest worker finishes it just after the answer."""
    with tenancy.tenant_scope(store.tenant_id):
        for start in range(0, len(events), batch):
            result = events_push(actor=Actor.system(), store=store, events=list(events[start : start + batch]))
            assert not result.rejected, result.rejected
            stream_finish(stream_id=result.stream.pk)


def settle(store: Store, events: Sequence[dict[str, Any]]) -> list[Visit]:
    """Bring the visits of these (pushed) events up to date and settle every visit due, as the visits tasks do."""
    sessions = sorted({event["session"] for event in events if event.get("session")})
    with tenancy.tenant_scope(store.tenant_id):
        services.visits_refresh(store=store, sessions=sessions)
        while settling.visits_settle(store=store):
            pass
    return list(Visit.unscoped.filter(store=store, session__in=sessions).order_by("session"))


def keep_calibration(store: Store, model: calibration.Calibration, *, number: int) -> StoreCalibration:
    """A calibration row as `calibration_learn` writes one (its figures are not what these tests look at)."""
    row: StoreCalibration = StoreCalibration.unscoped.create(
        tenant_id=store.tenant_id,
        store=store,
        number=number,
        created_by="test",
        calibration=model.as_json(),
        samples=model.samples,
        reviewed_visits=0,
        visits=len(model.risks),
        auto_charge_share=0.0,
        overcharge_risk=store.overcharge_risk,
        charge_limit=model.charge_limit(float(store.overcharge_risk)),
    )
    return row


def unclear_pick(
    *, at: datetime, first: str, second: str, bin_: dict[str, Any], confidence: float = 0.8, runner_up: float = 0.3
) -> list[dict[str, Any]]:
    """Two shoppers come in together; the camera gives an item the scale weighed to `first` over `second`."""

    def at_s(seconds: float) -> str:
        return stamp(at + timedelta(seconds=seconds))

    prefix = f"{first}-{second}"
    return [
        {
            "id": f"{prefix}-1",
            "type": "session.started",
            "ts": at_s(0),
            "session": first,
            "shopper": "t1",
            "gate": "GATE-IN",
        },
        {
            "id": f"{prefix}-2",
            "type": "session.started",
            "ts": at_s(1),
            "session": second,
            "shopper": "t2",
            "gate": "GATE-IN",
        },
        {
            "id": f"{prefix}-3",
            "type": "item.picked",
            "ts": at_s(60),
            "session": first,
            "bin": bin_["code"],
            "device": "CAM-01",
            "confidence": confidence,
            "alternatives": [{"session": second, "confidence": runner_up}],
        },
        {
            "id": f"{prefix}-4",
            "type": "shelf.weight_changed",
            "ts": at_s(61),
            "bin": bin_["code"],
            "device": bin_["sensor"],
            "delta_g": -250,
        },
        {"id": f"{prefix}-5", "type": "session.ended", "ts": at_s(180), "session": first, "gate": "GATE-OUT"},
        {"id": f"{prefix}-6", "type": "session.ended", "ts": at_s(210), "session": second, "gate": "GATE-OUT"},
    ]
