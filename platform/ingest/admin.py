"""Event streams in the admins: upload with a live progress bar, counts, rejections (page and CSV)."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import orjson
from django import forms
from django.contrib import admin
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import URLPattern, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString
from unfold.decorators import action, display
from unfold.widgets import UnfoldAdminFileFieldWidget, UnfoldAdminSelectWidget

from catalog.models import Product
from core.admin import OpsModelAdmin, ReadOnlyMixin, TenantModelAdmin, admin_pages, tenant_may_upload
from core.admin_sites import licensee_site, ops_site
from core.spreadsheets import formula_safe_row
from ingest import services
from ingest.models import EventStream, Rejection, UnreadableEvent
from ingest.sample import sample_events
from stores.models import LayoutVersion, Store
from tenants.audit import Actor
from tenants.quotas import QuotaExceeded

STATUS_LABELS = {"queued": "info", "processing": "warning", "done": "success", "failed": "danger"}
REJECTIONS_SHOWN = 50
EXAMPLE_STORES = 12
EXAMPLE_VISITS = 5


class _Echo:
    def write(self, value: str) -> str:
        return value


def _rejections_csv(stream: EventStream) -> StreamingHttpResponse:
    writer = csv.writer(_Echo())
    # Built here, inside the request's tenant scope: the response is streamed after the view returns.
    rejections = Rejection.objects.filter(stream=stream).order_by("line", "pk")

    def rows() -> Iterator[str]:
        yield writer.writerow(["line", "event_id", "reason", "raw"])
        for rejection in rejections.iterator(chunk_size=2000):
            row = [rejection.line, rejection.event_id, rejection.reason, rejection.raw]
            yield writer.writerow(formula_safe_row(row))

    response = StreamingHttpResponse(rows(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="stream-{stream.pk}-rejections.csv"'
    return response


class EventUploadForm(forms.Form):
    store = forms.ModelChoiceField(queryset=Store.unscoped.none(), widget=UnfoldAdminSelectWidget)
    file = forms.FileField(
        help_text="NDJSON, one event per line, or the same compressed with gzip (.ndjson.gz).",
        widget=UnfoldAdminFileFieldWidget,
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["store"].queryset = Store.objects.order_by("code")  # type: ignore[attr-defined]


class StreamAdminBase(ReadOnlyMixin):
    list_display: Any = [
        "__str__",
        "store",
        "source",
        "status_label",
        "progress_bar",
        "lines",
        "accepted",
        "duplicates",
        "rejected",
        "created_at",
    ]
    list_filter: Any = ["status", "source"]
    search_fields: Any = ["original_name", "store__code"]
    readonly_fields: Any = [
        "store",
        "source",
        "status",
        "original_name",
        "size_bytes",
        "lines",
        "accepted",
        "duplicates",
        "rejected",
        "failure_reason",
        "created_by",
        "created_at",
        "started_at",
        "finished_at",
        "resent_at",
        "rejections_preview",
    ]
    fields = readonly_fields

    @display(description="Status", label=STATUS_LABELS)
    def status_label(self, stream: EventStream) -> str:
        return stream.status

    @display(description="Progress")
    def progress_bar(self, stream: EventStream) -> SafeString:
        percent = round(stream.progress * 100)
        return format_html(
            '<div style="min-width:6rem" title="{}%"><div class="bg-base-200 rounded-default">'
            '<div class="bg-primary-600 h-1.5 rounded-default" style="width:{}%"></div></div></div>',
            percent,
            percent,
        )

    @display(description="Rejected lines")
    def rejections_preview(self, stream: EventStream) -> SafeString:
        rows = list(Rejection.objects.filter(stream=stream).order_by("line", "pk")[:REJECTIONS_SHOWN])
        if not rows:
            return format_html("{}", "None.")
        items = format_html_join(
            "", "<li><code>line {}</code> {} — {}</li>", ((r.line, r.event_id or "", r.reason) for r in rows)
        )
        more = f" (first {REJECTIONS_SHOWN} of {stream.rejected})" if stream.rejected > REJECTIONS_SHOWN else ""
        return format_html('<ul class="list-disc pl-5">{}</ul><p class="mt-2">{}</p>', items, more)

    def get_urls(self) -> list[URLPattern]:
        """The stream page's progress (polled while it runs) and its rejected lines as CSV, on both sites: the
        change page's template names them, and without them the operators' page was a 500."""
        own = admin_pages(
            self,
            ("<int:stream_id>/progress/", self.progress_view, "ingest_eventstream_progress"),
            ("<int:stream_id>/rejections.csv", self.rejections_view, "ingest_eventstream_rejections"),
        )
        return [*own, *super().get_urls()]  # type: ignore[misc]

    def progress_view(self, request: HttpRequest, stream_id: int) -> JsonResponse:
        stream = get_object_or_404(EventStream.objects.all(), pk=stream_id)
        return JsonResponse(
            {
                "status": stream.status,
                "progress": stream.progress,
                "lines": stream.lines,
                "accepted": stream.accepted,
                "duplicates": stream.duplicates,
                "rejected": stream.rejected,
                "finished": stream.status in (EventStream.Status.DONE, EventStream.Status.FAILED),
            }
        )

    def rejections_view(self, request: HttpRequest, stream_id: int) -> StreamingHttpResponse:
        return _rejections_csv(get_object_or_404(EventStream.objects.all(), pk=stream_id))


@admin.register(EventStream, site=licensee_site)
class EventStreamAdmin(StreamAdminBase, TenantModelAdmin):
    list_filter = ["status", "source", "store"]
    change_form_template = "admin/ingest/eventstream/change_form.html"
    actions_list = ["upload_events"]

    def has_upload_events_permission(self, request: HttpRequest) -> bool:
        return self._may_write(request)

    def get_urls(self) -> list[URLPattern]:
        example = ("example/<int:store_id>.ndjson", self.example_view, "ingest_eventstream_example")
        return [*admin_pages(self, example), *super().get_urls()]

    def example_view(self, request: HttpRequest, store_id: int) -> HttpResponse:
        """A day's events of a few shopper visits on the store's layout, yesterday: a file to try the upload with."""
        store = get_object_or_404(Store.objects.all(), pk=store_id)
        layout = get_object_or_404(LayoutVersion.objects.order_by("-effective_from"), store=store)
        start = (timezone.now() - timedelta(days=1)).replace(hour=9, minute=0, second=0, microsecond=0)
        skus = {b["sku"] for f in layout.document.get("fixtures", []) for b in f.get("bins", [])}
        weights = {sku: float(w) for sku, w in Product.objects.filter(sku__in=skus).values_list("sku", "unit_weight_g")}
        events = sample_events(
            layout.document, visits=EXAMPLE_VISITS, start=start, unit_weights=weights, id_prefix="ex"
        )
        body = b"".join(orjson.dumps(event) + b"\n" for event in events)
        response = HttpResponse(body, content_type="application/x-ndjson")
        response["Content-Disposition"] = f'attachment; filename="{store.code}-events-example.ndjson"'
        return response

    @action(description="Upload events", url_path="upload", icon="upload_file", permissions=["upload_events"])
    def upload_events(self, request: HttpRequest) -> HttpResponse:
        form = EventUploadForm(request.POST or None, request.FILES or None, initial={"store": request.GET.get("store")})
        if request.method == "POST" and form.is_valid() and tenant_may_upload(request, form):
            try:
                stream = services.stream_upload(
                    actor=Actor.for_request(request, source=self.audit_source),
                    store=form.cleaned_data["store"],
                    upload=form.cleaned_data["file"],
                )
            except QuotaExceeded as exceeded:
                form.add_error(None, str(exceeded))
            else:
                return HttpResponseRedirect(reverse("admin:ingest_eventstream_change", args=[stream.pk]))
        context = {
            **self.admin_site.each_context(request),
            "opts": EventStream._meta,
            "title": "Upload store events",
            "form": form,
            "submit_label": "Upload and process",
            "intro": "Events are checked line by line; the next page shows the progress and every refused line.",
            "format_help": {
                "doc_url": reverse("doc", args=["event-stream"]),
                "doc_title": "the event stream (docs/event-stream.md)",
                "schema_url": reverse("event-stream-schema"),
                "examples": [
                    (
                        f"Example events for {code} (NDJSON)",
                        reverse("admin:ingest_eventstream_example", args=[pk]),
                    )
                    for pk, code in Store.objects.order_by("code").values_list("pk", "code")[:EXAMPLE_STORES]
                    if LayoutVersion.objects.filter(store_id=pk).exists()
                ],
            },
        }
        return TemplateResponse(request, "admin/simple_form.html", context)


@admin.register(EventStream, site=ops_site)
class EventStreamOpsAdmin(StreamAdminBase, OpsModelAdmin):
    list_display = [
        "__str__",
        "tenant",
        "store",
        "source",
        "status_label",
        "progress_bar",
        "lines",
        "rejected",
        "failure_reason",
        "created_at",
    ]
    list_filter = ["status", "source", "tenant"]


@admin.register(UnreadableEvent, site=ops_site)
class UnreadableEventOpsAdmin(ReadOnlyMixin, OpsModelAdmin):
    """Stored events that cannot be read back: the visits they bear on wait in review until someone looks."""

    list_display = ["event_id", "tenant", "store", "type", "ts", "session", "reason", "found_at"]
    list_filter = ["tenant", "type"]
    search_fields = ["event_id", "session", "store__code"]
    readonly_fields = ["tenant", "store", "event_id", "type", "ts", "session", "reason", "found_at"]
    fields = readonly_fields
