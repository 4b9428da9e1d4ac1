"""The dispute queue in the store admin, beside the review queue.

The list opens on the disputes waiting for a person, the nearest deadline first. A dispute's page shows what the
shopper contests, what was charged and refunded for those lines and how sure the engine was of them, and the
visit's evidence (the review page's timeline and floor plan); managers and staff refund all or some of the units,
or reject the dispute with a reason the shopper is told.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from unfold.decorators import display

from billing.payments.refunds import units_refunded
from catalog.currencies import format_money
from core.admin import ALL_STATUSES, DecisionQueueAdmin, QueueStatusFilter
from core.admin_sites import licensee_site
from core.formatting import format_duration, format_moment
from disputes import services
from disputes.models import Dispute
from disputes.queues import queue_tabs
from tenants.audit import Actor
from visits import selectors as visit_selectors
from visits.admin import evidence_pieces
from visits.models import Visit

# What follows "— by" in the decision's sentence ("Refunded: $0.79 back to the card — by the store's policy").
DECIDED_BY_IN_A_SENTENCE = {
    Dispute.DecidedBy.POLICY: "the store's policy",
    Dispute.DecidedBy.PERSON: "a person",
    Dispute.DecidedBy.DEADLINE: "its deadline, nobody having decided",
}
TONES = {Dispute.Status.IN_REVIEW: "warning", Dispute.Status.REFUNDED: "success", Dispute.Status.REJECTED: "danger"}


class DisputeStatusFilter(QueueStatusFilter):
    """Status, defaulting to "waiting for a person": without a choice, the list is the dispute queue."""

    statuses = Dispute.Status
    waiting = Dispute.Status.IN_REVIEW


def _units_asked(request: HttpRequest, dispute: Dispute) -> tuple[dict[str, int], list[str]]:
    """The units to refund per disputed line, as typed; problems in words."""
    refund: dict[str, int] = {}
    problems: list[str] = []
    for line in dispute.lines.all():
        typed = request.POST.get(f"refund-{line.sku}", "").strip() or "0"
        if not typed.isdigit():
            problems.append(f"{line.sku}: give a whole number of units to refund (0 for none).")
            continue
        refund[line.sku] = int(typed)
    return refund, problems


@admin.register(Dispute, site=licensee_site)
class DisputeAdmin(DecisionQueueAdmin):
    list_display = ["opened", "session", "store", "status_label", "asked_amount", "lines_text", "reason", "due"]
    list_display_links = ["opened"]
    list_filter = [DisputeStatusFilter, "store"]
    search_fields = ["visit__session"]
    list_before_template = "admin/disputes/dispute/list_before.html"
    decide_template = "admin/disputes/dispute/decide.html"

    def get_queryset(self, request: HttpRequest) -> QuerySet[Dispute]:
        return super().get_queryset(request).select_related("store", "visit").prefetch_related("lines")

    def get_ordering(self, request: HttpRequest) -> list[str]:
        return ["deadline", "pk"] if DisputeStatusFilter.is_queue(request) else ["-created_at", "-pk"]

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        is_queue = DisputeStatusFilter.is_queue(request)
        tabs = DisputeStatusFilter.tabs(
            request,
            [
                (Dispute.Status.IN_REVIEW, "Dispute queue"),
                (Dispute.Status.REFUNDED, "Refunded"),
                (Dispute.Status.REJECTED, "Rejected"),
                (ALL_STATUSES, "All disputes"),
            ],
        )
        waiting = Dispute.objects.filter(status=Dispute.Status.IN_REVIEW)
        nearest = waiting.order_by("deadline").values_list("deadline", flat=True).first()
        context = {
            "title": "Dispute queue" if is_queue else "Disputes",
            "dispute_queue": {
                "is_queue": is_queue,
                "waiting": waiting.count(),
                "overdue": waiting.filter(deadline__lt=timezone.now()).count(),
                "nearest": format_duration(nearest - timezone.now()) if nearest and nearest > timezone.now() else None,
                "tabs": tabs,
                "queues": queue_tabs(active="disputes"),
            },
            **(extra_context or {}),
        }
        return super().changelist_view(request, context)

    @display(description="Disputed", ordering="created_at")
    def opened(self, dispute: Dispute) -> str:
        return dispute.opened

    @display(description="Visit", ordering="visit__session")
    def session(self, dispute: Dispute) -> str:
        return dispute.visit.session

    @display(description="Status", label={tone: tone for tone in TONES.values()})
    def status_label(self, dispute: Dispute) -> tuple[str, str]:
        return TONES[Dispute.Status(dispute.status)], Dispute.Status(dispute.status).label

    @display(description="Asked", ordering="asked")
    def asked_amount(self, dispute: Dispute) -> str:
        return format_money(dispute.asked, dispute.currency)

    @display(description="Lines")
    def lines_text(self, dispute: Dispute) -> str:
        return ", ".join(f"{line.qty} × {line.sku}" for line in dispute.lines.all())

    @display(description="Deadline", ordering="deadline")
    def due(self, dispute: Dispute) -> str:
        if dispute.status != Dispute.Status.IN_REVIEW or dispute.deadline is None:
            return f"decided {format_duration(timezone.now() - dispute.decided_at)} ago" if dispute.decided_at else "—"
        left = dispute.deadline - timezone.now()
        return f"in {format_duration(left)}" if left.total_seconds() > 0 else f"overdue by {format_duration(-left)}"

    # A dispute's page replaces the model form: what is contested, the evidence, and the decision.

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        if not object_id.isdigit():
            raise Http404("No such dispute.")
        dispute = get_object_or_404(self.get_queryset(request), pk=int(object_id))
        problems: list[str] = []
        if request.method == "POST":
            if not self.may_decide(request):
                raise PermissionDenied
            refund, problems = _units_asked(request, dispute)
            action = request.POST.get("action", "")
            if action == "reject":
                refund = {}
            elif action != "refund":
                problems.append("Choose to refund or to reject.")
            elif not any(refund.values()) and not problems:
                problems.append("Give the units to refund, or reject the dispute.")
            if not problems:
                try:
                    decided = services.dispute_decide(
                        actor=Actor.for_request(request, source=self.audit_source),
                        dispute=dispute,
                        refund=refund,
                        reason=request.POST.get("reason", ""),
                    )
                except ValidationError as error:
                    problems = list(error.messages)
                except services.DisputeConflict as conflict:
                    problems = [str(conflict)]
                else:
                    self.message_user(request, _outcome(decided), messages.SUCCESS)
                    return HttpResponseRedirect(reverse("admin:disputes_dispute_changelist"))
            dispute = get_object_or_404(self.get_queryset(request), pk=dispute.pk)
        context = {
            **self.admin_site.each_context(request),
            **self._page(request, dispute),
            "problems": problems,
            "typed_reason": request.POST.get("reason", "") if problems else "",
            "opts": Dispute._meta,
            "original": dispute,
            "title": str(dispute),
            "subtitle": dispute.store.name,
            "is_fullwidth": "1",
            **(extra_context or {}),
        }
        return TemplateResponse(request, self.decide_template, context, status=400 if problems else 200)

    def _page(self, request: HttpRequest, dispute: Dispute) -> dict[str, Any]:
        visit: Visit = dispute.visit
        store = dispute.store
        tz, now = store.zone, timezone.now()
        currency = dispute.currency
        pieces = evidence_pieces(visit)
        receipt = {line.sku: line for line in visit.lines.all()}
        refunded = units_refunded(visit=visit)
        limit = visit_selectors.charge_limit(store=store, latest=visit_selectors.calibration_latest(store=store))
        rows = []
        for line in dispute.lines.all():
            charged = receipt.get(line.sku)
            left = charged.qty - refunded.get(line.sku, 0) if charged else 0
            rows.append(
                {
                    "sku": line.sku,
                    "name": charged.name if charged else "not on the receipt",
                    "qty": line.qty,
                    "charged": charged.qty if charged else 0,
                    "refunded": refunded.get(line.sku, 0),
                    "amount": format_money(line.amount, currency),
                    "confidence": f"{charged.confidence:.2f}" if charged else "—",
                    "unsure": bool(charged) and services.line_unsure(charged, limit),
                    "by_person": bool(charged) and charged.source == charged.Source.REVIEW,
                    "refund_default": min(line.qty, left),
                    "evidence": [(str(e), pieces.timeline.anchors.get(str(e), "")) for e in charged.evidence]
                    if charged
                    else [],
                }
            )
        shopper = visit_selectors.shopper_of(visit)
        waiting = dispute.status == Dispute.Status.IN_REVIEW
        return {
            "dispute": dispute,
            "visit": visit,
            "store": store,
            "visit_url": reverse("admin:visits_visit_change", args=[visit.pk]),
            "shopper": shopper.external_ref if shopper else "",
            "status_tone": TONES[Dispute.Status(dispute.status)],
            "reason_label": Dispute.Reason(dispute.reason).label,
            "opened": format_moment(dispute.created_at, now=now, tz=tz),
            "left": format_moment(visit.exited_at, now=now, tz=tz) if visit.exited_at else "—",
            "deadline": format_moment(dispute.deadline, now=now, tz=tz) if dispute.deadline else "",
            "overdue": waiting and dispute.deadline is not None and dispute.deadline < now,
            "decided": format_moment(dispute.decided_at, now=now, tz=tz) if dispute.decided_at else "",
            "decided_by": dispute.decided_by_user.get_username()
            if dispute.decided_by_user
            else DECIDED_BY_IN_A_SENTENCE[Dispute.DecidedBy(dispute.decided_by)]
            if dispute.decided_by
            else "",
            "rows": rows,
            "asked": format_money(dispute.asked, currency),
            "refund": format_money(dispute.refund, currency),
            "paid": format_money(visit.paid, currency),
            "visit_refunded": format_money(visit.refunded, currency),
            "charge_limit": f"{limit:.1%}",
            "may_decide": self.may_decide(request) and waiting,
            "may_write": self.may_decide(request),
            "queue_url": reverse("admin:disputes_dispute_changelist"),
            **pieces.context,
        }


def _outcome(dispute: Dispute) -> str:
    if dispute.status == Dispute.Status.REFUNDED:
        return f"{dispute} — refunded: {format_money(dispute.refund, dispute.currency)} back to the card."
    return f"{dispute} — rejected: the shopper is told why."
