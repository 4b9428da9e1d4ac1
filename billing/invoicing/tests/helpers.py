"""Rows for billing tests, written straight with the ORM: stores, settled visits and their payment attempts."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, timedelta
from typing import Any

from billing.invoicing import services
from billing.invoicing.calculations import Promises
from billing.invoicing.models import BillingAccount, Plan, PlanVersion
from billing.payments.models import PaymentAttempt
from stores.models import Store
from tenants.audit import Actor
from tenants.models import Tenant
from visits.models import ReviewDecision, Visit

LONG_AGO = datetime(2025, 1, 1, tzinfo=UTC)
_sessions = itertools.count(1)


def make_store(tenant: Tenant, code: str, *, tz: str = "UTC", currency: str = "USD", **fields: Any) -> Store:
    values = {"name": f"Store {code}", "status": Store.Status.ACTIVE, "created_at": LONG_AGO, **fields}
    return Store.unscoped.create(tenant=tenant, code=code, timezone=tz, currency=currency, **values)


def make_visit(
    store: Store,
    *,
    settled_at: datetime,
    total: int = 0,
    status: str = Visit.Status.CHARGED,
    exited_at: datetime | None = None,
) -> Visit:
    exited = exited_at or settled_at - timedelta(minutes=2)
    return Visit.unscoped.create(
        tenant_id=store.tenant_id,
        store=store,
        session=f"s-{next(_sessions)}",
        status=status,
        entered_at=exited - timedelta(minutes=10),
        exited_at=exited,
        currency=store.currency,
        subtotal=total,
        total=total,
        charged_total=total,
        settled_at=settled_at,
    )


def pay(visit: Visit, *, purpose: str, amount: int, at: datetime, state: str = "succeeded", sequence: int = 1) -> Any:
    return PaymentAttempt.unscoped.create(
        tenant_id=visit.tenant_id,
        visit=visit,
        purpose=purpose,
        sequence=sequence,
        amount=amount,
        currency=visit.currency,
        state=state,
        created_at=at,
        updated_at=at,
    )


def sale(store: Store, *, at: datetime, amount: int, refund: int = 0, refund_at: datetime | None = None) -> Visit:
    """A settled visit captured for `amount`, optionally refunded `refund` later (an overcharge correction)."""
    visit = make_visit(store, settled_at=at, total=amount)
    pay(visit, purpose=PaymentAttempt.Purpose.CAPTURE, amount=amount, at=at)
    if refund:
        pay(visit, purpose=PaymentAttempt.Purpose.REFUND, amount=refund, at=refund_at or at + timedelta(hours=1))
    return visit


def decide(visit: Visit, *, reviewer: Any, at: datetime) -> ReviewDecision:
    return ReviewDecision.unscoped.create(
        tenant_id=visit.tenant_id,
        visit=visit,
        reviewer=reviewer,
        action=ReviewDecision.Action.APPROVE,
        lines_before=[],
        lines_after=[],
        decided_at=at,
    )


def make_plan(
    code: str = "standard",
    *,
    currency: str = "USD",
    store_fee: int = 31_000,
    visit_fee: int = 5,
    revenue_share_bps: int = 150,
    monthly_minimum: int = 0,
    promises: Promises | None = None,
) -> PlanVersion:
    plan, _ = Plan.objects.get_or_create(code=code, defaults={"name": code.title()})
    return services.plan_version_create(
        actor=Actor.system(),
        plan=plan,
        currency=currency,
        store_fee=store_fee,
        visit_fee=visit_fee,
        revenue_share_bps=revenue_share_bps,
        monthly_minimum=monthly_minimum,
        promises=promises,
    )


def assign(tenant: Tenant, version: PlanVersion, starts_on: date) -> Any:
    return services.plan_assign(actor=Actor.system(), tenant=tenant, plan_version=version, starts_on=starts_on)


def account(tenant: Tenant, *, currency: str = "USD", tax_rate_bps: int = 0, **fields: Any) -> BillingAccount:
    values = {"legal_name": f"{tenant.name} Ltd", "address": "1 High Street\nSpringfield", "tax_label": "VAT", **fields}
    return BillingAccount.unscoped.create(tenant=tenant, currency=currency, tax_rate_bps=tax_rate_bps, **values)


def at(day: date, hour: int = 12, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC)
