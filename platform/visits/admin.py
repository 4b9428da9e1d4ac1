"""Visits in the store admin: the review queue, and each visit's page with its evidence and the decision.

The list opens on the visits waiting for a person, oldest first; its status filter turns it into the
list of every visit and receipt. A visit's page shows what a reviewer needs to decide quickly: the
reasons, the proposed cart with per-line confidence and evidence, the event timeline of the visit and
of everything that happened on the same bins around it (camera and scale side by side), and the
floor plan with those bins highlighted. Managers and staff decide there; viewers only look.
"""

from __future__ import annotations

import zoneinfo
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Count, Exists, F, OuterRef, QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import URLPattern, reverse
from django.utils import timezone
from django.utils.safestring import SafeString, mark_safe
from unfold.decorators import display

from billing.payments.holds import hold_lapse_of_visit, hold_lapses_at
from catalog import currencies
from catalog.models import Product
from core.admin import ALL_STATUSES, DecisionQueueAdmin, QueueStatusFilter, ReadOnlyMixin, TenantModelAdmin, admin_pages
from core.admin_sites import licensee_site
from core.formatting import format_duration, format_moment, format_setting, format_share
from core.tasks import enqueue_on_commit
from disputes.queues import queue_tabs
from ingest.models import Event
from stores.floor_plan import render_floor_plan
from stores.models import Store
from stores.selectors import product_names_of_layout
from tenants.audit import Actor
from tenants.models import AuditEntry
from visits import calibration, engine, selectors, services, settling, states
from visits.calibration import Calibration
from visits.calibration import default as default_calibration
from visits.calibration_chart import render_reliability
from visits.models import ChargeInstruction, ReviewDecision, StoreCalibration, Visit
from visits.reasons import REASON_LABELS, event_ids_of, reasons_of
from visits.selectors import CAMERA_TYPES, SCALE_TYPE, BinInfo, VisitEvidence

TONE_LABELS = {tone: tone for tone in ("success", "info", "warning", "danger")}
REASONS_IN_LIST = 90
BLANK_ROWS = 2
MAX_LINES = 200
CALIBRATION_LINKS = 12
REVIEW_CAUSE_ROWS = 10


def _money(amount: int, currency: str) -> str:
    return currencies.format_money(amount, currency) if currency else str(amount)


def chance_in_words(share: float) -> str:
    """A probability with its article, as people say it: "a 3 % chance", "an 8 % chance", "an 11 % chance"."""
    words = format_share(share)
    if words.startswith("under "):
        return f"less than a {words.removeprefix('under ')} chance"
    if words.startswith("over "):
        return f"more than {chance_in_words(0.9999)}"
    spoken_with_a_vowel = words.startswith("8") or words.split(" ")[0].split(".")[0] in ("11", "18")
    return f"{'an' if spoken_with_a_vowel else 'a'} {words} chance"


def risk_in_words(risk: float | None) -> str:
    """A visit's risk as a reviewer reads it: "a 3 % chance something on this receipt is not this shopper's"."""
    if risk is None:
        return ""
    if risk <= 0:
        return "nothing on this receipt is in doubt"
    return f"{chance_in_words(risk)} something on this receipt is not this shopper's"


def _lines_text(lines: Iterable[Mapping[str, Any]]) -> str:
    text = ", ".join(f"{line['qty']} × {line['sku']}" for line in lines)
    return text or "nothing"


def _names_of(skus: Iterable[str | None]) -> dict[str, str]:
    """Product names by SKU, for reasons a person reads."""
    wanted = {sku for sku in skus if sku}
    return dict(Product.objects.filter(sku__in=wanted).values_list("sku", "name")) if wanted else {}


# --- The list: the review queue by default, every visit through the status filter ----------------


class VisitStatusFilter(QueueStatusFilter):
    """Status, defaulting to "needs review": without a choice, the list is the review queue."""

    statuses = Visit.Status
    waiting = Visit.Status.NEEDS_REVIEW


# --- The visit's page: timeline rows -------------------------------------------------------------


@dataclass
class CameraCell:
    event_id: str
    anchor: str
    verb: str
    qty: int
    session: str
    session_url: str
    this_visit: bool
    confidence: str
    alternatives: list[tuple[str, str, str, bool]]
    bin: str
    bin_sku: str
    sku: str
    device: str
    cited: bool
    evidence_of: str = ""
    no_scale: str = ""


@dataclass
class ScaleCell:
    event_id: str
    anchor: str
    delta: str
    taken: bool
    bin: str
    bin_sku: str
    reading: str
    device: str
    cited: bool
    evidence_of: str = ""


@dataclass
class TimelineRow:
    ts: datetime
    clock: str
    offset: str
    mine: bool
    camera: CameraCell | None = None
    scale: ScaleCell | None = None
    note: str = ""
    note_kind: str = ""
    note_anchor: str = ""
    note_event_id: str = ""
    sessions: set[str] = field(default_factory=set)


def _number(value: Any, default: float = 0.0) -> float:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else default


def _grams(delta: float) -> str:
    sign = "−" if delta < 0 else "+"
    return f"{sign}{abs(delta):,.0f} g" if abs(delta) >= 10 else f"{sign}{abs(delta):.1f} g"


def _weight_reading(delta: float, info: BinInfo | None) -> tuple[str, int]:
    """What a weight change means for the bin's product: "≈ 2 × SKU-001 (250 g each)", and the count."""
    if info is None or info.unit_weight_g <= 0:
        return "", 0
    count = round(abs(delta) / info.unit_weight_g)
    off = abs(delta) - count * info.unit_weight_g
    each = f"{info.unit_weight_g:g} g each"
    if count == 0:
        return f"less than one {info.sku} ({each})", 0
    text = f"≈ {count} × {info.sku} ({each})"
    if abs(off) >= max(1.0, 0.01 * info.unit_weight_g):
        text += f", {'+' if off > 0 else '−'}{abs(off):.0f} g off"
    return text, count


def _seconds(at: timedelta) -> str:
    return f"{abs(at.total_seconds()):.1f} s"


def _stack_habits(habits: engine.StackHabits) -> dict[str, Any]:
    """How the store's stack reports, as the calibration page tells it: the cameras' scale, the scales' timing and
    how far off they weigh."""
    timing = habits.scale_timing
    typical = timing.typical
    return {
        "confidence_scale": habits.confidence_scale,
        "sure_confidence": habits.sure_confidence if habits.sure_confidence < engine.SURE_READ else None,
        "scale_timing": {
            "delays": timing.delays,
            "typical": f"{_seconds(typical)} {'early' if typical < timedelta(0) else 'late'}",
            "before": _seconds(timing.before),
            "after": _seconds(timing.after),
        },
        "weighing_spread": f"{habits.weighing_spread:.1%}".replace("%", " %") if habits.weighing_spread else "",
    }


def _pair_scales(cameras: Sequence[Event], scales: Sequence[Event], timing: engine.ScaleTiming) -> dict[str, Event]:
    """Each camera event with the scale reading of its bin nearest the scales' usual delay, within their window (as
    the engine pairs them, with the store's scale `timing`)."""
    options = []
    for camera in cameras:
        taken = camera.type == "item.picked"
        for scale in scales:
            if scale.payload.get("bin") != camera.payload.get("bin"):
                continue
            if (_number(scale.payload.get("delta_g")) < 0) != taken:
                continue
            if camera.ts - timing.before <= scale.ts <= camera.ts + timing.after:
                gap = abs((scale.ts - camera.ts - timing.typical).total_seconds())
                options.append((gap, camera.event_id, scale.event_id, scale))
    options.sort(key=lambda o: (o[0], o[1], o[2]))
    paired: dict[str, Event] = {}
    used: set[str] = set()
    for _gap, camera_id, scale_id, scale in options:
        if camera_id in paired or scale_id in used:
            continue
        paired[camera_id] = scale
        used.add(scale_id)
    return paired


class Timeline:
    """The evidence as rows: a camera event beside the scale reading it matches, other events alone."""

    def __init__(
        self,
        visit: Visit,
        evidence: VisitEvidence,
        tz: zoneinfo.ZoneInfo,
        *,
        timing: engine.ScaleTiming,
        links: Mapping[str, str] | None = None,
    ) -> None:
        self.visit, self.evidence, self.tz, self.links = visit, evidence, tz, links or {}
        self.group = {visit.session, *(m.session for m in selectors.group_members(visit))}
        self.in_reasons = set(event_ids_of(visit.review_reasons))
        self.evidence_of: dict[str, list[str]] = {}
        for line in visit.lines.all():
            for event_id in line.evidence:
                self.evidence_of.setdefault(str(event_id), []).append(line.sku)
        self.anchors = {e.event_id: f"ev-{n}" for n, e in enumerate(evidence.events, start=1)}
        self.start = visit.entered_at or (evidence.events[0].ts if evidence.events else None)
        cameras = [e for e in evidence.events if e.type in CAMERA_TYPES]
        scales = [e for e in evidence.events if e.type == SCALE_TYPE]
        self.paired = _pair_scales(cameras, scales, timing)
        self.paired_scales = {scale.event_id for scale in self.paired.values()}
        self.by_id = {e.event_id: e for e in evidence.events}
        self.rows = [row for e in evidence.events if (row := self._row(e)) is not None]

    def _clock(self, ts: datetime) -> tuple[str, str]:
        clock = timezone.localtime(ts, self.tz).strftime("%H:%M:%S")
        if self.start is None:
            return clock, ""
        seconds = (ts - self.start).total_seconds()
        sign = "−" if seconds < 0 else "+"
        minutes, rest = divmod(abs(round(seconds)), 60)
        return clock, f"{sign}{minutes}:{rest:02d}"

    def _camera(self, event: Event) -> CameraCell:
        payload = event.payload
        info = self.evidence.bins.get(str(payload.get("bin")))
        alternatives = []
        for alternative in payload.get("alternatives") or []:
            if isinstance(alternative, dict):
                other = str(alternative.get("session"))
                alternatives.append(
                    (
                        other,
                        f"{_number(alternative.get('confidence')):.2f}",
                        self.links.get(other, ""),
                        other in self.group,
                    )
                )
        session = str(payload.get("session", ""))
        no_scale = ""
        if event.event_id not in self.paired:
            no_scale = "no matching scale reading" if info is None or info.sensor else "this bin has no scale"
        return CameraCell(
            event_id=event.event_id,
            anchor=self.anchors[event.event_id],
            verb="took" if event.type == "item.picked" else "put back",
            qty=int(_number(payload.get("qty"), 1)),
            session=session,
            session_url=self.links.get(session, ""),
            this_visit=session in self.group,
            confidence=f"{_number(payload.get('confidence')):.2f}",
            alternatives=alternatives,
            bin=str(payload.get("bin", "")),
            bin_sku=info.sku if info else "",
            sku=str(payload.get("sku") or ""),
            device=event.device,
            cited=event.event_id in self.in_reasons,
            evidence_of=", ".join(self.evidence_of.get(event.event_id, [])),
            no_scale=no_scale,
        )

    def _scale(self, event: Event) -> ScaleCell:
        delta = _number(event.payload.get("delta_g"))
        info = self.evidence.bins.get(str(event.payload.get("bin")))
        reading, _count = _weight_reading(delta, info)
        return ScaleCell(
            event_id=event.event_id,
            anchor=self.anchors[event.event_id],
            delta=_grams(delta),
            taken=delta < 0,
            bin=str(event.payload.get("bin", "")),
            bin_sku=info.sku if info else "",
            reading=reading,
            device=event.device,
            cited=event.event_id in self.in_reasons,
            evidence_of=", ".join(self.evidence_of.get(event.event_id, [])),
        )

    def _row(self, event: Event) -> TimelineRow | None:
        if event.event_id in self.paired_scales:
            return None  # shown beside its camera event
        clock, offset = self._clock(event.ts)
        row = TimelineRow(ts=event.ts, clock=clock, offset=offset, mine=event.event_id in self.evidence.own)
        if event.type in CAMERA_TYPES:
            row.camera = self._camera(event)
            row.sessions = {row.camera.session, *(a[0] for a in row.camera.alternatives)}
            scale = self.paired.get(event.event_id)
            if scale is not None:
                row.scale = self._scale(scale)
        elif event.type == SCALE_TYPE:
            row.scale = self._scale(event)
        else:
            row.note, row.note_kind = self._note(event, payer=self.visit.session)
            row.note_anchor, row.note_event_id = self.anchors[event.event_id], event.event_id
            if event.session:
                row.sessions = {event.session}
        return row

    @staticmethod
    def _note(event: Event, *, payer: str) -> tuple[str, str]:
        payload = event.payload
        if event.type == "session.started":
            shopper = f" (shopper token {str(payload['shopper'])[:8]}…)" if payload.get("shopper") else ""
            companion = f" as a companion of {payload['group']}" if payload.get("group") else ""
            return f"{event.session} entered{companion}{shopper} through {payload.get('gate', event.device)}", "session"
        if event.type == "session.ended":
            return f"{event.session} left through {payload.get('gate', event.device)}", "session"
        if event.type == "device.status":
            return f"{event.device} reports {payload.get('status', '?')}", f"device {payload.get('status', '')}"
        return f"{event.type} {event.event_id}", "session"

    def explain(self, event_id: str) -> str:
        """What a cited event says, in a line: whom the camera favoured over whom, and what the scale read."""
        event = self.by_id.get(event_id)
        if event is None:
            return ""
        info = self.evidence.bins.get(str(event.payload.get("bin")))
        parts = []
        if event.type in CAMERA_TYPES:
            cell = self._camera(event)
            this = self.visit.session

            def who(session: str) -> str:
                if session == this:
                    return "this shopper"
                return f"{session} (of this group)" if session in self.group else session

            others = ", ".join(f"{who(s)} {c}" for s, c, _u, _m in cell.alternatives)
            favoured = f"the camera favoured {who(cell.session)} ({cell.confidence})"
            parts.append(f"{favoured} over {others}" if others else favoured)
            scale = self.paired.get(event_id)
            if scale is not None:
                reading, _count = _weight_reading(_number(scale.payload.get("delta_g")), info)
                parts.append(f"the scale read {_grams(_number(scale.payload.get('delta_g')))} {reading}".strip())
            elif cell.no_scale:
                parts.append(cell.no_scale)
        elif event.type == SCALE_TYPE:
            reading, _count = _weight_reading(_number(event.payload.get("delta_g")), info)
            parts.append(f"the scale read {_grams(_number(event.payload.get('delta_g')))} {reading}".strip())
        return "; ".join(parts)

    def suggestion(self, event_id: str) -> tuple[str, int] | None:
        """What a cited event says this visit took (+) or put back (−), when it names the visit."""
        event = self.by_id.get(event_id)
        if event is None:
            return None
        info = self.evidence.bins.get(str(event.payload.get("bin")))
        if event.type in CAMERA_TYPES:
            if event_id not in self.evidence.own:
                return None
            sign = 1 if event.type == "item.picked" else -1
            scale = self.paired.get(event_id)
            if scale is not None and info is not None:
                _text, count = _weight_reading(_number(scale.payload.get("delta_g")), info)
                if count:
                    return info.sku, sign * count
            sku = str(event.payload.get("sku") or (info.sku if info else ""))
            return (sku, sign * int(_number(event.payload.get("qty"), 1))) if sku else None
        if event.type == SCALE_TYPE and info is not None:
            delta = _number(event.payload.get("delta_g"))
            _text, count = _weight_reading(delta, info)
            return (info.sku, count if delta < 0 else -count) if count else None
        return None


# --- The admin ------------------------------------------------------------------------------------


@dataclass
class FormLine:
    """A row of the cart as shown: a proposed line (with its price, confidence and evidence) or one typed in."""

    sku: str
    qty: str
    name: str = ""
    proposed: bool = False
    unit_price: str = ""
    amount: str = ""
    confidence: str = ""
    unsure: bool = False
    evidence: list[tuple[str, str]] = field(default_factory=list)
    taken_by: str = ""  # on a group's receipt, the members who took the line


def _read_lines(request: HttpRequest) -> tuple[list[FormLine], list[dict[str, Any]], list[str]]:
    """The lines as typed (to show again), as `review_decide` takes them, and what is wrong with them."""
    skus, quantities = request.POST.getlist("sku"), request.POST.getlist("qty")
    proposed = set(request.POST.getlist("proposed"))
    typed: list[FormLine] = []
    lines: list[dict[str, Any]] = []
    problems: list[str] = []
    for number, (sku, qty) in enumerate(zip(skus, quantities, strict=False), start=1):
        sku, qty = sku.strip(), qty.strip()
        if not sku and not qty:
            continue
        typed.append(FormLine(sku, qty, proposed=sku in proposed))
        if not sku:
            problems.append(f"Line {number}: choose a product (SKU) for the quantity {qty}.")
        elif not qty.isdigit():
            problems.append(f"Line {number} ({sku}): the quantity must be a whole number from 0 to 1000.")
        else:
            lines.append({"sku": sku, "qty": int(qty)})
    if len(typed) > MAX_LINES:
        problems.append(f"At most {MAX_LINES} lines.")
    return typed, lines, problems


@admin.register(Visit, site=licensee_site)
class VisitAdmin(DecisionQueueAdmin):
    list_display = ["session", "store", "status_label", "age", "line_count", "total_amount", "reasons_short"]
    list_display_links = ["session"]
    list_filter = [VisitStatusFilter, "store"]
    search_fields = ["session"]
    list_before_template = "admin/visits/visit/list_before.html"
    review_template = "admin/visits/visit/review.html"

    def get_queryset(self, request: HttpRequest) -> QuerySet[Visit]:
        reviewed = Exists(ReviewDecision.objects.filter(visit=OuterRef("pk")))
        visits = super().get_queryset(request).select_related("store")
        return visits.annotate(lines_count=Count("lines"), reviewed=reviewed, hold_lapses=hold_lapse_of_visit())

    def get_ordering(self, request: HttpRequest) -> list[Any]:
        """The queue: the card holds that lapse soonest first, then the visits without a hold, oldest first."""
        if VisitStatusFilter.is_queue(request):
            return [F("hold_lapses").asc(nulls_last=True), "exited_at", "pk"]
        return ["-exited_at", "-pk"]

    def get_list_display(self, request: HttpRequest) -> list[str]:
        return [*self.list_display, "hold_lapse"] if VisitStatusFilter.is_queue(request) else list(self.list_display)

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        queue = VisitStatusFilter.is_queue(request)
        waiting = Visit.objects.filter(status=Visit.Status.NEEDS_REVIEW)
        oldest = waiting.order_by("exited_at").values_list("exited_at", flat=True).first()
        tabs = VisitStatusFilter.tabs(
            request,
            [
                (Visit.Status.NEEDS_REVIEW, "Review queue"),
                (Visit.Status.AWAITING_PAYMENT, "Being charged"),
                (Visit.Status.CHARGED, "Charged"),
                (Visit.Status.PAYMENT_FAILED, "Payment failed"),
                (Visit.Status.NO_CHARGE, "No charge"),
                (ALL_STATUSES, "All visits"),
            ],
        )
        context = {
            "title": "Review queue" if queue else "Visits",
            "review_queue": {
                "is_queue": queue,
                "waiting": waiting.count(),
                "oldest": format_duration(timezone.now() - oldest) if oldest else None,
                "tabs": tabs,
                "calibrations": [
                    (code, reverse("admin:visits_storecalibration_store", args=[pk]))
                    for pk, code in Store.objects.order_by("code").values_list("pk", "code")[:CALIBRATION_LINKS]
                ],
                "all_calibrations": reverse("admin:visits_storecalibration_changelist"),
                "queues": queue_tabs(active="review"),
            },
            **(extra_context or {}),
        }
        return super().changelist_view(request, context)

    @display(description="Status", label=TONE_LABELS)
    def status_label(self, visit: Visit) -> tuple[str, str]:
        state = states.visit_state(visit=visit, reviewed=bool(getattr(visit, "reviewed", False)))
        return state.tone, state.label

    @display(description="Age (since exit)", ordering="exited_at")
    def age(self, visit: Visit) -> str:
        return format_duration(timezone.now() - visit.exited_at) if visit.exited_at else "still inside"

    @display(description="Lines", ordering="lines_count")
    def line_count(self, visit: Visit) -> int:
        return int(getattr(visit, "lines_count", 0))

    @display(description="Total", ordering="total")
    def total_amount(self, visit: Visit) -> str:
        return _money(visit.total, visit.currency or visit.store.currency)

    @display(description="Card hold lapses", ordering=F("hold_lapses").asc(nulls_last=True))
    def hold_lapse(self, visit: Visit) -> str:
        lapses = getattr(visit, "hold_lapses", None)
        if lapses is None:
            return "no hold"
        left = lapses - timezone.now()
        return f"in {format_duration(left)}" if left.total_seconds() > 0 else f"lapsed {format_duration(-left)} ago"

    @display(description="Reasons")
    def reasons_short(self, visit: Visit) -> str:
        stored = reasons_of(visit.review_reasons)
        names = _names_of(reason.sku for reason in stored[:1])
        reasons = [reason.for_people(names) for reason in stored]
        if not reasons:
            return "—"
        text = reasons[0] if len(reasons[0]) <= REASONS_IN_LIST else reasons[0][: REASONS_IN_LIST - 1] + "…"
        return text + (f" (+{len(reasons) - 1} more)" if len(reasons) > 1 else "")

    # The visit's page replaces the model form: the receipt, the evidence, and the decision.

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        if not object_id.isdigit():
            raise Http404("No such visit.")
        visit = get_object_or_404(Visit.objects.select_related("store"), pk=int(object_id))
        if not self.has_view_permission(request, visit):
            raise PermissionDenied
        typed: list[FormLine] | None = None
        problems: list[str] = []
        note = ""
        if request.method == "POST":
            if not self.may_decide(request):
                raise PermissionDenied
            typed, lines, problems = _read_lines(request)
            note = request.POST.get("note", "")
            action = request.POST.get("action", "")
            if action == ReviewDecision.Action.VOID:
                problems, lines = [], []
            if not problems:
                try:
                    decided = self._decide(request, visit, action=action, lines=lines, note=note)
                except ValidationError as error:
                    problems = list(error.messages)
                else:
                    self.message_user(request, self._outcome(decided), messages.SUCCESS)
                    return HttpResponseRedirect(reverse("admin:visits_visit_changelist"))
            visit.refresh_from_db()
        context = {
            **self.admin_site.each_context(request),
            **self._page(request, visit, typed=typed, note=note),
            "problems": problems,
            "opts": Visit._meta,
            "original": visit,
            "title": f"Visit {visit.session}",
            "subtitle": visit.store.name,
            "is_fullwidth": "1",
            **(extra_context or {}),
        }
        return TemplateResponse(request, self.review_template, context, status=400 if problems else 200)

    def _decide(
        self, request: HttpRequest, visit: Visit, *, action: str, lines: list[dict[str, Any]], note: str
    ) -> Visit:
        """Decide on the cart the reviewer saw (the service refuses it when it changed meanwhile)."""
        seen = request.POST.get("cart_version", "")
        return services.review_decide(
            actor=Actor.for_request(request, source=self.audit_source),
            visit=visit,
            action=action,
            cart_version=int(seen) if seen.isdigit() else -1,
            lines=lines,
            note=note,
        )

    @staticmethod
    def _outcome(visit: Visit) -> str:
        total = _money(visit.total, visit.currency)
        if visit.status == Visit.Status.AWAITING_PAYMENT:
            return f"Visit {visit.session} approved: {total} will be charged."
        return f"Visit {visit.session} decided: {visit.get_status_display().lower()}, nothing is charged."

    def _page(self, request: HttpRequest, visit: Visit, *, typed: list[FormLine] | None, note: str) -> dict[str, Any]:
        store = visit.store
        tz = _zone(store.timezone)
        currency = visit.currency or store.currency
        pieces = evidence_pieces(visit)
        evidence, timeline = pieces.evidence, pieces.timeline
        lines = {line.sku: line for line in visit.lines.order_by("sku")}
        product_names = product_names_of_layout(layout=evidence.layout) if evidence.layout else {}
        for line in lines.values():
            product_names.setdefault(line.sku, line.name)
        limit = selectors.charge_limit(store=store, latest=selectors.calibration_latest(store=store))
        rows = typed if typed is not None else [FormLine(sku, str(ln.qty), proposed=True) for sku, ln in lines.items()]
        for row in rows:
            row.name = row.name or product_names.get(row.sku, "")
            proposed = lines.get(row.sku) if row.proposed else None
            if proposed is not None:
                row.unit_price, row.amount = _money(proposed.unit_price, currency), _money(proposed.amount, currency)
                row.confidence, row.unsure = f"{proposed.confidence:.2f}", 1.0 - proposed.confidence > limit
                row.evidence = [(str(e), timeline.anchors.get(str(e), "")) for e in proposed.evidence]
                row.taken_by = ", ".join(proposed.taken_by)
        decisions = list(ReviewDecision.objects.filter(visit=visit).select_related("reviewer").order_by("decided_at"))
        collected = visit.paid - visit.refunded
        shopper = selectors.shopper_of(visit)
        return {
            "visit": visit,
            "shopper": shopper.external_ref if shopper else "",
            "state": states.visit_state(visit=visit, reviewed=bool(decisions)),
            "no_decision": _no_decision_words(visit),
            "approve_label": "Approve and settle the difference" if collected > 0 else "Approve and charge",
            "approve_help": (
                f"{_money(collected, currency)} was collected before the visit came back to review: approving "
                "charges or refunds the difference to the lines above; void refunds it all."
                if collected > 0
                else "Approve charges the lines above; void charges the shopper nothing."
            ),
            "store": store,
            "currency": currency,
            "hold_lapses": _hold_in_words(visit, tz),
            "entered": _local(visit.entered_at, tz),
            "exited": _local(visit.exited_at, tz),
            "waited": format_duration(timezone.now() - visit.exited_at) if visit.exited_at else None,
            "reasons": self._reasons(visit, timeline, product_names),
            "cart_rows": rows,
            "subtotal": _money(visit.subtotal, currency),
            "tax": _money(visit.tax, currency),
            "total": _money(visit.total, currency),
            "charge_limit": format_share(limit),
            "risk": risk_in_words(visit.risk),
            "calibration_url": reverse("admin:visits_storecalibration_store", args=[store.pk]),
            "may_decide": self.may_decide(request) and visit.status == Visit.Status.NEEDS_REVIEW,
            "may_write": self.may_decide(request),
            "blank_rows": range(BLANK_ROWS if typed is None else 1),
            "catalog_choices": sorted(product_names.items()),
            "note": note,
            **pieces.context,
            "decisions": [
                {
                    "decision": d,
                    "at": _local(d.decided_at, tz),
                    "before": _lines_text(d.lines_before),
                    "after": _lines_text(d.lines_after),
                }
                for d in decisions
            ],
            "payments": [
                {
                    "instruction": i,
                    "kind": _instruction_words(i.kind, i.amount),
                    "amount": _money(abs(i.amount), i.currency or currency),
                }
                for i in visit.charge_instructions.order_by("sequence")
            ],
            "money": self._money_summary(request, visit, currency, tz),
            "queue_url": reverse("admin:visits_visit_changelist"),
        }

    def _money_summary(
        self, request: HttpRequest, visit: Visit, currency: str, tz: zoneinfo.ZoneInfo
    ) -> dict[str, Any]:
        """The visit's money as payments (billing) recorded it, through the reverse relation (no import of billing)."""
        attempts = list(visit.payment_attempts.order_by("id"))
        may_write = self.may_decide(request)
        failed = [a for a in attempts if a.purpose == "charge" and a.state == "failed"]
        next_try = failed[-1].next_try_at if failed and visit.status == Visit.Status.PAYMENT_FAILED else None
        captured = False
        movements = []
        for a in attempts:
            refund = bool(a.reason_code)
            words = states.movement_in_words(purpose=a.purpose, after_capture=captured, staff_refund=refund)
            movements.append({"attempt": a, "amount": _money(a.amount, a.currency or currency), "words": words})
            captured = captured or (a.purpose == "capture" and a.state == "succeeded")
        return {
            "state": states.payment_in_words(visit=visit),
            "paid": _money(visit.paid, currency),
            "refunded": _money(visit.refunded, currency),
            "balance_due": _money(visit.balance_due, currency) if visit.status == Visit.Status.PAYMENT_FAILED else "",
            "attempts": movements,
            "next_try": _local(next_try, tz) if next_try else "",
            "refund_url": reverse("admin:payments_visit_refund", args=[visit.pk])
            if may_write and visit.paid > visit.refunded
            else "",
            "retry_url": reverse("admin:payments_visit_retry", args=[visit.pk])
            if may_write and visit.status == Visit.Status.PAYMENT_FAILED
            else "",
            "actions": may_write,
        }

    @staticmethod
    def _reasons(visit: Visit, timeline: Timeline, product_names: Mapping[str, str]) -> list[dict[str, Any]]:
        """Each reason with the event it cites, what that event suggests for this cart, and who else it names."""
        overlapping = []
        if visit.entered_at is not None:
            overlapping = list(
                Visit.objects.filter(
                    store=visit.store,
                    status=Visit.Status.NEEDS_REVIEW,
                    entered_at__lte=visit.exited_at or timezone.now(),
                )
                .exclude(exited_at__lt=visit.entered_at)
                .exclude(pk=visit.pk)
                .only("pk", "session", "review_reasons")
            )
        stored = reasons_of(visit.review_reasons)
        names = {**_names_of(reason.sku for reason in stored), **product_names}
        reasons = []
        for reason in stored:
            event_id = reason.event_ids[0] if reason.event_ids else None
            suggestion = timeline.suggestion(event_id) if event_id else None
            # The engine may have counted the event on this cart already: then the question is the other way round.
            counted = suggestion is not None and suggestion[0] in timeline.evidence_of.get(event_id or "", [])
            if suggestion is not None and counted:
                suggestion = (suggestion[0], -suggestion[1])
            shared = [other for other in overlapping if event_id and event_id in event_ids_of(other.review_reasons)]
            reasons.append(
                {
                    "text": reason.for_people(names),
                    "code": reason.code.value,
                    "event_id": event_id,
                    "anchor": timeline.anchors.get(event_id or ""),
                    "explained": timeline.explain(event_id) if event_id else "",
                    "suggest_sku": suggestion[0] if suggestion else "",
                    "suggest_name": names.get(suggestion[0], suggestion[0]) if suggestion else "",
                    "suggest_qty": suggestion[1] if suggestion else 0,
                    "suggest_abs": abs(suggestion[1]) if suggestion else 0,
                    "suggest_if": "If it was not this shopper" if counted else "If it was this shopper",
                    "shared": [(o.session, reverse("admin:visits_visit_change", args=[o.pk])) for o in shared],
                }
            )
        return reasons


@dataclass(frozen=True)
class EvidencePieces:
    """What a person reads of a visit's evidence: its timeline and floor plan (the review and dispute pages)."""

    evidence: VisitEvidence
    timeline: Timeline
    context: dict[str, Any]
    """`timeline`, `timeline_left_out`, `group`, `floor_plan`, `bins`: what the evidence_*.html templates read."""


def evidence_pieces(visit: Visit) -> EvidencePieces:
    """The visit's events and every camera and scale event on the same bins around it, with links to the other
    visits they name, the group the visit belongs to, and the floor plan of the layout in force with those bins
    outlined (labelled with the group's members who took from them)."""
    store = visit.store
    evidence = selectors.visit_evidence(visit=visit)
    named = {e.session for e in evidence.events if e.session}
    named |= {str(a.get("session")) for e in evidence.events for a in e.payload.get("alternatives") or []}
    others = Visit.objects.filter(store=store, session__in=sorted(named - {visit.session})).only("pk", "session")
    links = {v.session: reverse("admin:visits_visit_change", args=[v.pk]) for v in others}
    tz = _zone(store.timezone)
    # The scales' timing the engine read this visit with: the store's, up to the visit's end (`settling.stack_habits`).
    until = visit.exited_at or (evidence.events[-1].ts if evidence.events else timezone.now())
    timing = settling.stack_habits(store=store, until=until).scale_timing
    timeline = Timeline(visit, evidence, tz, timing=timing, links=links)
    group = _group(visit, timeline, tz)
    return EvidencePieces(
        evidence=evidence,
        timeline=timeline,
        context={
            "timeline": timeline.rows,
            "timeline_left_out": evidence.left_out,
            "group": group,
            "floor_plan": _floor_plan(evidence, takers=group["takers"] if group else {}),
            "bins": [
                {
                    "bin": b,
                    "health": evidence.device_health.get(b.sensor, "not reported") if b.sensor else "",
                    "takers": ", ".join(group["takers"].get(b.code, ())) if group else "",
                }
                for b in sorted(evidence.bins.values(), key=lambda b: b.code)
            ],
        },
    )


def _floor_plan(evidence: VisitEvidence, *, takers: Mapping[str, Sequence[str]]) -> SafeString | None:
    if evidence.layout is None:
        return None
    svg = render_floor_plan(
        evidence.layout.document,
        device_health=evidence.device_health,
        product_names=product_names_of_layout(layout=evidence.layout),
        highlighted_bins=set(evidence.bins),
        bin_takers=takers,
    )
    return mark_safe(svg)  # noqa: S308 — render_floor_plan escapes every value it draws


def _group(visit: Visit, timeline: Timeline, tz: zoneinfo.ZoneInfo) -> dict[str, Any] | None:
    """A group's payer and members (spec v1.1), each with its stay and the bins it took from; None alone."""
    payer = Visit.objects.filter(store=visit.store, session=visit.group).first() if visit.group else None
    members = selectors.group_members(visit)
    if payer is None and not members:
        return None
    takers: dict[str, list[str]] = defaultdict(list)
    for row in timeline.rows:
        camera = row.camera
        took = camera is not None and camera.verb == "took" and camera.this_visit
        if camera is not None and took and camera.session not in takers[camera.bin]:
            takers[camera.bin].append(camera.session)
    return {
        "payer": (payer.session, reverse("admin:visits_visit_change", args=[payer.pk])) if payer else None,
        "members": [
            {
                "session": member.session,
                "url": reverse("admin:visits_visit_change", args=[member.pk]),
                "entered": _local(member.entered_at, tz),
                "exited": _local(member.exited_at, tz),
                "bins": sorted(code for code, sessions in takers.items() if member.session in sessions),
            }
            for member in members
        ],
        "takers": dict(takers),
    }


def _no_decision_words(visit: Visit) -> str:
    """What the Decisions section says when no person decided: why none was needed, or that one is awaited."""
    if visit.status == Visit.Status.NEEDS_REVIEW:
        return "No decision yet: the visit waits in the review queue."
    if visit.status in (Visit.Status.OPEN, Visit.Status.SETTLING):
        return "Not settled yet: the visit is decided once the shopper has left and late events are in."
    if visit.status == Visit.Status.NO_CHARGE and visit.group:
        return f"A companion of {visit.group}: what it took is on {visit.group}'s receipt, decided and charged there."
    if visit.status == Visit.Status.NO_CHARGE:
        return "No person needed: the cart was empty, nothing was charged."
    return "Charged automatically: the engine was sure enough of every line (within the store's overcharge risk)."


def _hold_in_words(visit: Visit, tz: zoneinfo.ZoneInfo) -> str:
    """When the card hold lapses, in the store's time and from now; empty without a hold outstanding."""
    lapses = hold_lapses_at(visit=visit)
    return format_moment(lapses, now=timezone.now(), tz=tz) if lapses is not None else ""


def _instruction_words(kind: str, amount: int) -> str:
    if kind == ChargeInstruction.Kind.ADJUST:
        return "Charge the difference" if amount > 0 else "Refund the difference"
    return str(ChargeInstruction.Kind(kind).label)


def _zone(name: str) -> zoneinfo.ZoneInfo:
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return zoneinfo.ZoneInfo("UTC")


def _learns_when(*, reviewed: int, latest: StoreCalibration | None, tz: zoneinfo.ZoneInfo) -> str:
    """When the learning sweep (`selectors.stores_due_for_learning`) next takes the store, in words."""
    if not reviewed:
        return ""
    if latest is None or reviewed >= calibration.LEARN_AFTER_REVIEWS:
        return "within the next quarter of an hour"
    more = calibration.LEARN_AFTER_REVIEWS - reviewed
    by = _local(latest.created_at + selectors.LEARN_EVERY, tz)
    return f"once {more} more {'is' if more == 1 else 'are'} reviewed, or by {by}"


def _local(at: datetime | None, tz: zoneinfo.ZoneInfo) -> str:
    return timezone.localtime(at, tz).strftime("%Y-%m-%d %H:%M:%S %Z") if at else "—"


# --- Stores' calibrations: what each store's camera scores mean, as a picture ----------------------


@admin.register(StoreCalibration, site=licensee_site)
class StoreCalibrationAdmin(ReadOnlyMixin, TenantModelAdmin):
    """Every store's calibrations, newest first; each store's page draws its calibration and lets people
    ask for a new one ("Learn from reviews now"). Calibrations are learnt, never edited."""

    empty_text = (
        "No store has learnt a calibration yet. A store learns one as soon as people have reviewed some of its "
        "visits, and again after every 25 more or a day later; until then its cameras' scores are read as a typical "
        "store's would be. Each store's chart is linked from the review queue."
    )
    list_display = [
        "store",
        "number",
        "created_at",
        "created_by",
        "reviewed_visits",
        "samples",
        "auto_charged",
        "limit",
    ]
    list_display_links = ["store", "number"]
    list_filter = ["store"]
    list_select_related = ["store"]
    page_template = "admin/visits/storecalibration/store.html"

    @display(description="Charged without a person on the visits it learnt from")
    def auto_charged(self, row: StoreCalibration) -> str:
        return format_share(row.auto_charge_share)

    @display(description="Charge limit then")
    def limit(self, row: StoreCalibration) -> str:
        return format_share(row.charge_limit)

    def get_urls(self) -> list[URLPattern]:
        own = admin_pages(
            self,
            ("store/<int:store_id>/", self.store_view, "visits_storecalibration_store"),
            ("store/<int:store_id>/learn/", self.learn_view, "visits_storecalibration_learn"),
        )
        return own + super().get_urls()

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        """A calibration opens on its store's page, drawn."""
        if not object_id.isdigit():
            raise Http404("No such calibration.")
        row = get_object_or_404(StoreCalibration.objects.all(), pk=int(object_id))
        url = reverse("admin:visits_storecalibration_store", args=[row.store_id])
        return HttpResponseRedirect(f"{url}?number={row.number}")

    def learn_view(self, request: HttpRequest, store_id: int) -> HttpResponse:
        """Learn the store's calibration from its reviews now, in the background (once, however often it is asked)."""
        store = get_object_or_404(Store.objects.all(), pk=store_id)
        if request.method != "POST" or not self._may_write(request):
            raise PermissionDenied
        latest = selectors.calibration_latest(store=store)
        enqueue_on_commit(
            "visits.learn_calibration",
            tenant_id=store.tenant_id,
            store_id=store.pk,
            after=latest.number if latest is not None else 0,
            requested_by=request.user.pk,
        )
        self.message_user(
            request,
            f"Learning from {store.code}'s reviews in the background: the new calibration shows here when it is done "
            "(reload in a minute). Visits settled after that are read with it.",
            messages.SUCCESS,
        )
        return HttpResponseRedirect(reverse("admin:visits_storecalibration_store", args=[store.pk]))

    def store_view(self, request: HttpRequest, store_id: int) -> HttpResponse:
        store = get_object_or_404(Store.objects.all(), pk=store_id)
        history = list(selectors.calibration_history(store=store))
        asked = request.GET.get("number", "")
        shown = next((row for row in history if str(row.number) == asked), history[0] if history else None)
        latest = history[0] if history else None
        options = selectors.risk_options(store=store, latest=latest)
        limit_now = options.current.charge_limit
        habits = settling.stack_habits(store=store, until=timezone.now())
        stored = selectors.calibration_model(shown)
        learnt = habits.applied_to(stored)
        taught_from = habits.taught_from if learnt is not stored else {}
        tz = _zone(store.timezone)
        figures = selectors.review_figures_by_store(since=timezone.now() - selectors.REVIEW_PERIOD).get(store.pk)
        reviewed = selectors.reviews_since(store=store, since=latest.created_at if latest else None)
        context = {
            **self.admin_site.each_context(request),
            "opts": StoreCalibration._meta,
            "title": f"Calibration of {store.code} — {store.name}",
            "subtitle": "What the store's camera scores mean, and what is charged without a person",
            "store": store,
            "store_url": reverse("admin:stores_store_change", args=[store.pk]),
            "queue_url": reverse("admin:visits_visit_changelist"),
            "learn_url": reverse("admin:visits_storecalibration_learn", args=[store.pk]),
            "may_learn": self._may_write(request),
            "risk": format_setting(store.overcharge_risk),
            "charge_limit": format_share(limit_now),
            "recent": _recent_settling(figures),
            "reviews": _review_outcomes(
                selectors.review_outcomes(store=store, since=timezone.now() - selectors.LEARN_FROM)
            ),
            "shown": shown,
            "shown_at": _local(shown.created_at, tz) if shown is not None else "",
            "shown_asked_by": _asked_by(shown) if shown is not None else "",
            "shown_auto_charged": format_share(shown.auto_charge_share) if shown is not None else "",
            "is_latest": shown is latest,
            "reviews_since": reviewed,
            "learns_when": _learns_when(reviewed=reviewed, latest=latest, tz=tz),
            "learn_after": calibration.LEARN_AFTER_REVIEWS,
            "risk_checks": _risk_checks(learnt),
            "risk_options": _risk_options(options),
            "risk_options_from": options.visits,
            "risk_options_learnt": options.learnt,
            "review_causes": _review_causes(
                selectors.review_causes_by_bin(store=store, since=timezone.now() - selectors.REVIEW_CAUSES_PERIOD)
            ),
            "review_causes_days": selectors.REVIEW_CAUSES_PERIOD.days,
            **_stack_habits(habits),
            "chart": mark_safe(  # noqa: S308 — render_reliability escapes every value it draws
                render_reliability(
                    learnt=learnt,
                    prior=default_calibration(),
                    taught_from=taught_from,
                    charge_limit=limit_now if shown is latest else (shown.charge_limit if shown else None),
                )
            ),
            "history": [
                {
                    "row": row,
                    "at": _local(row.created_at, tz),
                    "auto_charged": format_share(row.auto_charge_share),
                    "risk": format_setting(row.overcharge_risk),
                    "limit": format_share(row.charge_limit),
                    "asked_by": _asked_by(row),
                    "shown": row is shown,
                }
                for row in history
            ],
        }
        return TemplateResponse(request, self.page_template, context)


def _risk_options(options: selectors.RiskOptions) -> list[dict[str, Any]]:
    """Per risk setting, lowest first: the charge limit it gives, the share of the store's recent visits it sends to
    a person for their risk and the share it expects overcharged, the store's own marked."""
    return [
        {
            "risk": format_setting(option.risk),
            "limit": format_share(option.charge_limit),
            "sent": format_share(option.sent_for_risk),
            "overcharged": format_share(option.expected_overcharged),
            "yours": option.risk == options.risk,
        }
        for option in options.options
    ]


def _risk_checks(learnt: Calibration) -> list[dict[str, Any]]:
    """Per band of visit risk: the visits people decided, the overcharges they found and those the risks expected;
    the visits charged without a person, the overcharges their disputes showed and those the risks expected; and
    what the charge limit counts such a visit's risk as (`Calibration.overcharge`)."""
    bands = calibration.RISK_BANDS
    reviewed = {edge: (visits, overcharged, expected) for edge, visits, overcharged, expected in learnt.risk_support}
    disputed = {edge: (visits, shown, expected) for edge, visits, shown, expected in learnt.dispute_support}
    rows = []
    for index, edge in enumerate(bands):
        if edge not in reviewed and edge not in disputed:
            continue
        upper = bands[index + 1] if index + 1 < len(bands) else 1.0
        decided, found, expected = reviewed.get(edge, (0, 0, 0.0))
        charged, shown, charged_expected = disputed.get(edge, (0, 0.0, 0.0))
        ratio = learnt.risk_ratios[index] if learnt.risk_ratios else 1.0
        rows.append(
            {
                "band": f"{format_share(edge)} to {format_share(upper)}",
                "visits": decided,
                "overcharged": found,
                "expected": f"{expected:.1f}",
                "charged": charged,
                "shown": f"{shown:.1f}",
                "charged_expected": f"{charged_expected:.1f}",
                "counted_as": f"{round(ratio * 100)} %",
            }
        )
    return rows


def _review_causes(causes: selectors.ReviewCauses) -> dict[str, Any] | None:
    """Where the store's reviews come from, as its calibration page shows it: the bins whose takes send the most
    visits to a person, and what a store manager can do about those without a scale."""
    if not causes.reviewed:
        return None
    scale_words = {True: "yes", False: "no", None: "not in the current layout"}
    rows = [
        {
            "bin": row.bin,
            "product": row.product or "—",
            "scale": scale_words[row.has_scale],
            "visits": row.visits,
            "share": format_share(row.share),
            "reason": REASON_LABELS[row.main_reason],
        }
        for row in causes.bins[:REVIEW_CAUSE_ROWS]
    ]
    return {
        "reviewed": causes.reviewed,
        "rows": rows,
        "more_bins": len(causes.bins) - len(rows),
        "naming_no_bin": causes.naming_no_bin,
        "naming_no_bin_share": format_share(causes.naming_no_bin / causes.reviewed),
        "advice": selectors.scale_advice(causes),
    }


def _asked_by(row: StoreCalibration) -> str:
    return "the learning sweep" if row.created_by in ("", AuditEntry.Source.SYSTEM) else row.created_by


def _review_outcomes(outcomes: selectors.ReviewOutcomes) -> dict[str, Any] | None:
    """What people did to the engine's carts in the last 30 days, in shares of the visits they decided."""
    if not outcomes.decided:
        return None
    return {
        "decided": outcomes.decided,
        "kept": format_share(outcomes.kept / outcomes.decided),
        "kept_count": outcomes.kept,
        "removed": outcomes.removed,
        "added": outcomes.added,
        "voided": outcomes.voided,
    }


def _recent_settling(figures: selectors.StoreReviewFigures | None) -> dict[str, Any] | None:
    """The store's visits settled in the last 7 days, and the share charged without a person."""
    if figures is None or not figures.settled:
        return None
    alone = figures.settled - figures.sent_to_review
    return {
        "settled": figures.settled,
        "reviewed": figures.sent_to_review,
        "share": format_share(alone / figures.settled),
    }
