"""Writes on visits."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Count, Max, Min, Q
from django.db.models.fields.json import KT
from django.utils import timezone

from catalog.models import Product
from core.tasks import enqueue_on_commit
from ingest.models import Event
from stores.models import Store
from tenants.audit import Actor, audit_record
from visits import engine, pricing, settling
from visits.models import ChargeInstruction, ReviewDecision, Visit, VisitLine
from visits.settling import visits_settle

REFRESHABLE = (Visit.Status.OPEN, Visit.Status.SETTLING)


@transaction.atomic
def visits_refresh(*, store: Store, sessions: Sequence[str]) -> list[Visit]:
    """Bring the visits of these sessions up to date with their events: entry, exit, shopper, activity.

    Safe to run twice and concurrently: the visit rows are locked in a fixed order and their
    figures are recomputed from the events after the lock, never added to.
    """
    sessions = sorted(set(sessions))
    Visit.objects.bulk_create(
        [Visit(tenant_id=store.tenant_id, store=store, session=session) for session in sessions],
        ignore_conflicts=True,
        batch_size=1000,
    )
    visits = list(Visit.objects.select_for_update().filter(store=store, session__in=sessions).order_by("session"))
    events = Event.objects.filter(store=store, session__in=sessions)
    figures = {
        row["session"]: row
        for row in events.values("session").annotate(
            entered=Min("ts", filter=Q(type="session.started")),
            exited=Max("ts", filter=Q(type="session.ended")),
            last=Max("ts"),
            count=Count("id"),
        )
    }
    shoppers = dict(
        events.filter(type="session.started").order_by("session", "ts").values_list("session", KT("payload__shopper"))
    )
    now = timezone.now()
    reopened = []
    for visit in visits:
        row = figures.get(visit.session)
        if row is None:
            continue
        if visit.settled_at is not None and not visit.reviews.exists():
            reopened.append(visit.session)
        visit.entered_at, visit.exited_at = row["entered"], row["exited"]
        visit.last_event_at, visit.events_count = row["last"], row["count"]
        visit.shopper_token = shoppers.get(visit.session) or visit.shopper_token
        if visit.status in REFRESHABLE:
            visit.status = Visit.Status.SETTLING if visit.exited_at else Visit.Status.OPEN
        visit.updated_at = now
    Visit.objects.bulk_update(
        visits, ["entered_at", "exited_at", "last_event_at", "events_count", "shopper_token", "status", "updated_at"]
    )
    if reopened:
        visits_settle(store=store, sessions=reopened, now=now)
    enqueue_on_commit("visits.settle_store", tenant_id=store.tenant_id, store_id=store.pk)
    return visits


@transaction.atomic
def review_decide(
    *,
    actor: Actor,
    visit: Visit,
    action: str,
    lines: Sequence[Mapping[str, Any]] = (),
    note: str = "",
) -> Visit:
    """A reviewer's decision: approve the cart as corrected (it is charged), or void the visit (nothing is).

    `lines` are `{"sku", "qty"}`; each is priced at the time the visit entered. Who decided what, and
    the cart before and after, are kept; the charge instruction follows from the decision.
    """
    if action not in ReviewDecision.Action.values:
        raise ValidationError({"action": f"One of {', '.join(ReviewDecision.Action.values)}."})
    visit = Visit.objects.select_for_update(of=("self",)).select_related("store").get(pk=visit.pk)
    if visit.status != Visit.Status.NEEDS_REVIEW:
        raise ValidationError(f"Visit {visit.session} is {visit.get_status_display().lower()}, not waiting for review.")
    wanted = _clean_review_lines(lines) if action == ReviewDecision.Action.APPROVE else {}
    before = [{"sku": line.sku, "qty": line.qty} for line in visit.lines.order_by("sku")]
    at = visit.entered_at or timezone.now()
    prices = settling.prices_for(store=visit.store, skus=set(wanted))
    # A line the engine proposed keeps the price it was taken at; a line the reviewer adds is priced at entry.
    for line in visit.lines.all():
        prices[line.sku] = [pricing.PriceVersion(at, line.unit_price, line.tax_rate)]
    names = dict(Product.objects.filter(sku__in=wanted).values_list("sku", "name"))
    cart = [engine.CartLine(sku, qty, 1.0, at, ()) for sku, qty in sorted(wanted.items())]
    priced = pricing.price_cart(cart, prices=prices)
    if priced.unpriced:
        raise ValidationError({"lines": f"No price in {visit.store.currency} for: {', '.join(priced.unpriced)}."})
    evidence = {line.sku: list(line.evidence) for line in visit.lines.all()}
    settling.replace_lines(visit=visit, priced=priced, names=names, source=VisitLine.Source.REVIEW, evidence=evidence)
    visit.subtotal, visit.tax, visit.total = priced.subtotal, priced.tax, priced.total
    visit.currency = visit.store.currency
    visit.cart_version += 1
    visit.updated_at = timezone.now()
    if ChargeInstruction.objects.filter(visit=visit).exists():
        settling.instruct_difference(visit, reason=f"review: {action}")
    else:
        settling.instruct_first_charge(visit)
    visit.save()
    decision = ReviewDecision.objects.create(
        tenant_id=visit.tenant_id,
        visit=visit,
        reviewer=actor.user,
        action=action,
        lines_before=before,
        lines_after=[{"sku": sku, "qty": qty} for sku, qty in sorted(wanted.items())],
        note=note.strip()[:2000],
    )
    audit_record(
        actor=actor,
        tenant_id=visit.tenant_id,
        action=f"review:{action}",
        obj=visit,
        changes={"before": before, "after": decision.lines_after, "total": visit.total},
    )
    return visit


def _clean_review_lines(lines: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    wanted: dict[str, int] = {}
    known = set(
        Product.objects.filter(sku__in=[str(line.get("sku", "")) for line in lines]).values_list("sku", flat=True)
    )
    for index, line in enumerate(lines):
        sku, qty = str(line.get("sku", "")).strip(), line.get("qty")
        if sku not in known:
            raise ValidationError({"lines": f"Line {index + 1}: {sku!r} is not a product of the catalog."})
        if not isinstance(qty, int) or isinstance(qty, bool) or not 0 <= qty <= 1000:
            raise ValidationError({"lines": f"Line {index + 1}: the quantity must be a whole number from 0 to 1000."})
        if qty:
            wanted[sku] = wanted.get(sku, 0) + qty
    return wanted
