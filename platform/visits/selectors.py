"""Reads on visits: receipts as the licensee API and the admin show them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db.models import Prefetch, QuerySet
from django.shortcuts import get_object_or_404

from ingest.models import Event
from stores.models import Store
from visits.models import ChargeInstruction, ReviewDecision, Visit, VisitLine

PAYMENT_STATES = {"pending": "pending", "done": "succeeded", "failed": "failed"}


def visit_list(
    *, store: Store, status: str | None = None, since: datetime | None = None, stream_id: int | None = None
) -> QuerySet[Visit]:
    visits = Visit.objects.filter(store=store)
    if status:
        visits = visits.filter(status=status)
    if since:
        visits = visits.filter(entered_at__gte=since)
    if stream_id is not None:
        visits = visits.filter(session__in=Event.objects.filter(stream_id=stream_id).values("session"))
    return _with_receipt_parts(visits).order_by("-entered_at", "-pk")


def visit_get(*, store: Store, session: str) -> Visit:
    return get_object_or_404(_with_receipt_parts(Visit.objects.filter(store=store)), session=session)


def _with_receipt_parts(visits: QuerySet[Visit]) -> QuerySet[Visit]:
    return visits.prefetch_related(
        Prefetch("lines", queryset=VisitLine.objects.order_by("sku")),
        Prefetch("charge_instructions", queryset=ChargeInstruction.objects.order_by("sequence")),
        Prefetch("reviews", queryset=ReviewDecision.objects.select_related("reviewer").order_by("-decided_at")),
    )


def receipt(visit: Visit) -> dict[str, Any]:
    """The receipt of spec/event-stream.md ("Receipt") and spec/store-api.md, for one visit."""
    instructions = list(visit.charge_instructions.all())
    latest = instructions[-1] if instructions else None
    charged = sum(i.amount for i in instructions if i.state == "done" and i.amount > 0)
    refunded = -sum(i.amount for i in instructions if i.state == "done" and i.amount < 0)
    reviews = list(visit.reviews.all())
    review: dict[str, Any] | None = None
    if visit.review_reasons or reviews:
        decision = reviews[0] if reviews else None
        review = {
            "reasons": list(visit.review_reasons),
            "decision": decision.action if decision else None,
            "decided_by": decision.reviewer.get_username() if decision else None,
            "decided_at": decision.decided_at.isoformat() if decision else None,
        }
    return {
        "session": visit.session,
        "shopper": visit.shopper_token,
        "status": visit.status,
        "entered_at": visit.entered_at.isoformat() if visit.entered_at else None,
        "exited_at": visit.exited_at.isoformat() if visit.exited_at else None,
        "lines": [
            {
                "sku": line.sku,
                "name": line.name,
                "qty": line.qty,
                "unit_price": line.unit_price,
                "amount": line.amount,
                "tax": line.tax,
                "confidence": line.confidence,
                "events": list(line.evidence),
            }
            for line in visit.lines.all()
        ],
        "subtotal": visit.subtotal,
        "tax": visit.tax,
        "total": visit.total,
        "currency": visit.currency or visit.store.currency,
        "payment": {
            "status": PAYMENT_STATES.get(latest.state) if latest and latest.amount else None,
            "reference": None,
            "charged": charged,
            "refunded": refunded,
        },
        "review": review,
        "version": visit.cart_version,
    }
