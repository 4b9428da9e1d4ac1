"""Stores, layouts (with the drawn floor plan) and devices in the store admin."""

from __future__ import annotations

import json
import zoneinfo
from datetime import datetime
from decimal import Decimal
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import URLPattern, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe
from unfold.admin import TabularInline
from unfold.decorators import action, display
from unfold.widgets import (
    UnfoldAdminFileFieldWidget,
    UnfoldAdminSelect2Widget,
    UnfoldAdminSelectWidget,
    UnfoldAdminTextareaWidget,
    UnfoldAdminTextInputWidget,
)

from catalog import currencies
from catalog.models import Product
from core import bounded_json
from core.admin import OpsModelAdmin, ReadOnlyMixin, TenantModelAdmin, admin_pages, tenant_may_upload
from core.admin_sites import licensee_site, ops_site
from core.formatting import format_percent
from stores import health, selectors, services
from stores.floor_plan import render_floor_plan
from stores.models import (
    OVERCHARGE_RISK_MAX,
    OVERCHARGE_RISK_MIN,
    UNSEEN_ITEM_REVIEW_COST_MAX,
    Device,
    LayoutVersion,
    Store,
)
from stores.sample import TEMPLATES, template_layout
from tenants.audit import Actor

TONE_LABELS = {tone: tone for tone in set(health.TONES.values())}
TIMEZONE_CHOICES = [(name, name) for name in sorted(zoneinfo.available_timezones())]
STORE_LINKS = 12
DEVICES_FROM_LAYOUT = (
    "Devices come from each store's layout: every camera, gate, weight sensor and staff device the layout names "
    "is listed here, with its health from the events the store sends. To add, move or remove one, publish a new "
    "layout of the store."
)
CURRENCY_CHOICES = [(code, code) for code in sorted(currencies.MINOR_UNITS)]


def _floor_plan_html(layout: LayoutVersion | None, *, store: Store) -> SafeString:
    if layout is None:
        return format_html("<p>{}</p>", "No layout yet. Use “Upload layout” to publish the first one.")
    svg = render_floor_plan(
        layout.document,
        device_health={code: h.key for code, h in health.store_device_health(store=store).items()},
        product_names=selectors.product_names_of_layout(layout=layout),
    )
    return mark_safe(f'<div class="floor-plan">{svg}</div>')  # noqa: S308 — escaped by render_floor_plan


def _store_page_link(store: Store, url_name: str, text: str, *, unsaved: str) -> SafeString:
    """A link to one of the store's own pages; before the store is saved, what that page will hold."""
    if store.pk is None:
        return format_html("<p>{}</p>", unsaved)
    url = reverse(url_name, args=[store.pk])
    return format_html('<a class="text-primary-600 underline" href="{}">{}</a>', url, text)


def _money_field(*, label: str, help_text: str) -> forms.DecimalField:
    """An amount shown and typed in the store currency's major unit (50.00), stored in its minor unit (5000)."""
    return forms.DecimalField(
        label=label,
        min_value=Decimal(0),
        max_digits=12,
        decimal_places=3,
        widget=UnfoldAdminTextInputWidget(attrs={"inputmode": "decimal"}),
        help_text=help_text,
    )


class StoreAdminForm(forms.ModelForm):
    timezone = forms.ChoiceField(choices=TIMEZONE_CHOICES, initial="UTC", widget=UnfoldAdminSelect2Widget)
    currency = forms.ChoiceField(choices=CURRENCY_CHOICES, initial="USD", widget=UnfoldAdminSelectWidget)
    # Shown and typed as a percentage of visits; stored as a share (0.5 % → 0.005).
    overcharge_risk = forms.DecimalField(
        label="Overcharge risk",
        max_digits=4,
        decimal_places=2,
        widget=UnfoldAdminTextInputWidget(attrs={"suffix": "% of visits", "inputmode": "decimal"}),
        help_text="At most this share of your visits may be charged for something the shopper did not take. "
        "Every visit that fits within it is charged at once; the others wait in your review queue for a person. "
        "Lower means fewer mistakes and more visits to review. 0.5 % (the default) is one visit in 200; "
        "from 0.05 % to 5 %.",
    )

    preauth_amount = _money_field(
        label="Pre-authorisation (held at entry)",
        help_text="Held on the shopper's card when they enter, in the store's currency, e.g. 50.00; "
        "what the visit costs is captured from it on exit. 0 holds nothing.",
    )
    dispute_auto_refund_limit = _money_field(
        label="Auto-refund limit",
        help_text="A shopper's dispute asking this much or less is refunded at once, in the store's currency, "
        "e.g. 5.00; above it a person decides. 0 refunds nothing automatically by amount.",
    )

    unseen_item_review_cost = _money_field(
        label="Cost of a look at an unseen item",
        help_text="What a person's look at an item no camera saw costs you, in the store's currency, e.g. 0.50. "
        "Such an item goes to the shopper singled out — charged within your overcharge risk, or asked about — only "
        "when what it would recover (its price times how likely that shopper took it) is at least this much; "
        "otherwise it is left uncharged and counted as shrink. 0 (the default): always, when one shopper stands out.",
    )

    MONEY_FIELDS = ("preauth_amount", "dispute_auto_refund_limit", "unseen_item_review_cost")
    MONEY_LIMITS = {"unseen_item_review_cost": UNSEEN_ITEM_REVIEW_COST_MAX}  # minor units

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.initial["overcharge_risk"] = format_percent(self.instance.overcharge_risk)
        if self.instance.pk is not None:
            field = self.fields["overcharge_risk"]
            options = reverse("admin:visits_storecalibration_store", args=[self.instance.pk]) + "#risk-options"
            link = '{} <a class="text-primary-600 underline" href="{}">{}</a>'
            field.help_text = format_html(
                link, field.help_text, options, "What each setting would do to your recent visits →"
            )
        currency = self.instance.currency or "USD"
        for name in self.MONEY_FIELDS:
            self.initial[name] = currencies.from_minor(getattr(self.instance, name), currency)
            if self.instance.pk is not None:
                self.fields[name].widget.attrs["suffix"] = currency

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        currency = cleaned.get("currency") or self.instance.currency
        for name in self.MONEY_FIELDS:
            amount = cleaned.get(name)
            if amount is not None and currency:
                try:
                    cleaned[name] = currencies.to_minor(amount, currency)
                except ValueError as error:
                    self.add_error(name, f"{error}.")
                    continue
                limit = self.MONEY_LIMITS.get(name)
                if limit is not None and cleaned[name] > limit:
                    self.add_error(name, f"At most {currencies.from_minor(limit, currency):,} {currency}.")
        return cleaned

    def clean_overcharge_risk(self) -> Decimal:
        percent: Decimal = self.cleaned_data["overcharge_risk"]
        share = percent / 100
        if not OVERCHARGE_RISK_MIN <= share <= OVERCHARGE_RISK_MAX:
            low, high = format_percent(OVERCHARGE_RISK_MIN), format_percent(OVERCHARGE_RISK_MAX)
            raise forms.ValidationError(f"Choose from {low} % to {high} % of visits.")
        return share.quantize(services.RISK_STEP)

    class Meta:
        model = Store
        fields = [
            "code",
            "name",
            "address",
            "timezone",
            "currency",
            "status",
            "preauth_amount",
            "overcharge_risk",
            "settling_window_seconds",
            "unseen_item_review_cost",
            "dispute_window_days",
            "dispute_auto_refund_limit",
            "dispute_auto_refund_unsure",
            "dispute_review_hours",
        ]

    def clean_code(self) -> str:
        code: str = self.cleaned_data["code"]
        if not services.STORE_CODE.match(code):
            raise forms.ValidationError("1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit.")
        if Store.objects.filter(code=code).exclude(pk=self.instance.pk).exists():
            raise forms.ValidationError(f"A store with the code {code!r} already exists.")
        return code


def _store_time(at: datetime | None, *, store: Store) -> str:
    return timezone.localtime(at, store.zone).strftime("%Y-%m-%d %H:%M %Z") if at else "—"


class LayoutVersionInline(TabularInline):
    model = LayoutVersion
    extra = 0
    can_delete = False
    show_change_link = True
    fields = ["number", "effective_from_local", "created_by", "created_at_local"]
    readonly_fields = fields

    @admin.display(description="Effective from")
    def effective_from_local(self, layout: LayoutVersion) -> str:
        return _store_time(layout.effective_from, store=layout.store)

    @admin.display(description="Created at")
    def created_at_local(self, layout: LayoutVersion) -> str:
        return _store_time(layout.created_at, store=layout.store)

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return getattr(request, "membership", None) is not None

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Store, site=licensee_site)
class StoreAdmin(TenantModelAdmin):
    form = StoreAdminForm
    quota = "stores"
    list_display = ["code", "name", "status_label", "currency", "current_layout", "unhealthy_devices"]
    list_filter = ["status"]
    search_fields = ["code", "name", "address"]
    inlines = [LayoutVersionInline]
    actions_detail = ["upload_layout"]
    fieldsets = [
        (None, {"fields": ["code", "name", "address", "timezone", "currency", "status"]}),
        (
            "Checkout",
            {
                "fields": [
                    "preauth_amount",
                    "overcharge_risk",
                    "unseen_item_review_cost",
                    "calibration",
                    "settling_window_seconds",
                ]
            },
        ),
        (
            "Shoppers' disputes",
            {
                "fields": [
                    "dispute_window_days",
                    "dispute_auto_refund_limit",
                    "dispute_auto_refund_unsure",
                    "dispute_review_hours",
                ]
            },
        ),
        ("Shelves", {"fields": ["stock"]}),
    ]
    change_form_after_template = "admin/stores/floor_plan_after.html"

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return ["calibration", "stock", "code", "currency"] if obj is not None else ["calibration", "stock"]

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)
        services.store_changed(store=obj)  # a store closed here is refused at the very next entry check

    @display(description="Status", label={"onboarding": "info", "active": "success", "closed": "danger"})
    def status_label(self, store: Store) -> str:
        return store.status

    @display(description="Layout")
    def current_layout(self, store: Store) -> str:
        layout = selectors.layout_in_force(store=store)
        return f"v{layout.number}" if layout else "—"

    @display(description="Devices", label=TONE_LABELS)
    def unhealthy_devices(self, store: Store) -> tuple[str, str]:
        healths = health.store_device_health(store=store)
        attention = any(h.key in health.NEEDS_ATTENTION for h in healths.values())
        return ("warning" if attention else "success" if healths else "info"), health.summary(healths)

    @display(description="How sure the engine is here")
    def calibration(self, store: Store) -> SafeString:
        return _store_page_link(
            store,
            "admin:visits_storecalibration_store",
            "The store's calibration: what its cameras' scores mean, and what is charged without a person →",
            unsaved="Once the store has visits, what its cameras' scores mean is learnt here.",
        )

    @display(description="Stock")
    def stock(self, store: Store) -> SafeString:
        return _store_page_link(
            store,
            "admin:stock_stockcount_store",
            "Stock on the shelves: units per bin, low bins, stock takes, shrink and the heat map →",
            unsaved="Once the store is saved, its stock takes and low bins are kept here.",
        )

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        store = Store.objects.filter(pk=object_id).first() if object_id.isdigit() else None
        if store is not None:
            layout = selectors.layout_in_force(store=store)
            extra_context = {
                "floor_plan": _floor_plan_html(layout, store=store),
                "floor_plan_title": f"Floor plan in force (layout v{layout.number})" if layout else "Floor plan",
                "layout_url": reverse("admin:stores_layoutversion_change", args=[layout.pk]) if layout else "",
                **(extra_context or {}),
            }
        return super().change_view(request, object_id, form_url, extra_context)

    @action(description="Upload layout", url_path="upload-layout", icon="upload_file", permissions=["change"])
    def upload_layout(self, request: HttpRequest, object_id: str) -> HttpResponse:
        return HttpResponseRedirect(reverse("admin:stores_store_layout_upload", args=[object_id]))

    def get_urls(self) -> list[URLPattern]:
        own = admin_pages(
            self,
            ("<path:object_id>/layout/upload/", self.upload_layout_view, "stores_store_layout_upload"),
            ("<path:object_id>/layout/template/<slug:name>.json", self.template_view, "stores_store_layout_template"),
        )
        return [*own, *super().get_urls()]

    def template_view(self, request: HttpRequest, object_id: str, name: str) -> HttpResponse:
        """A layout template filled with the tenant's products, to download and edit."""
        store = get_object_or_404(Store.objects.all(), pk=object_id)
        if name not in TEMPLATES:
            raise Http404("No such layout template.")
        document = template_layout(name=name, skus=_catalog_skus() or ["YOUR-SKU"])
        response = HttpResponse(json.dumps(document, indent=2), content_type="application/json")
        response["Content-Disposition"] = f'attachment; filename="{store.code}-layout-{name}.json"'
        return response

    def upload_layout_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        store = get_object_or_404(Store.objects.all(), pk=object_id)
        if not self.has_change_permission(request, store):
            return HttpResponseRedirect(reverse("admin:stores_store_change", args=[store.pk]))
        form = LayoutUploadForm(request.POST or None, request.FILES or None, skus=_catalog_skus())
        problems: list[Any] = []
        if request.method == "POST" and form.is_valid() and tenant_may_upload(request, form):
            try:
                layout = services.layout_publish(
                    actor=Actor.for_request(request, source=self.audit_source),
                    store=store,
                    document=form.cleaned_data["document"],
                    effective_from=form.cleaned_data.get("effective_from"),
                )
            except services.LayoutRejected as rejected:
                problems = rejected.problems
            else:
                self.message_user(request, f"Layout v{layout.number} published for {store.code}.", messages.SUCCESS)
                return HttpResponseRedirect(reverse("admin:stores_layoutversion_change", args=[layout.pk]))
        context = {
            **self.admin_site.each_context(request),
            "opts": Store._meta,
            "original": store,
            "title": f"Upload a layout for {store.code}",
            "form": form,
            "problems": problems,
            "submit_label": "Validate and publish",
            "intro": "Start from a template, or upload a JSON layout document. It is checked whole: every problem is "
            "listed and nothing is stored until there are none. Earlier versions stay in force for their time.",
            "format_help": {
                "doc_url": reverse("doc", args=["layout"]),
                "doc_title": "the layout document (docs/layout.md)",
                "examples": _layout_examples(store),
            },
        }
        return TemplateResponse(request, "admin/stores/upload_layout.html", context)


def _layout_examples(store: Store) -> list[tuple[str, str]]:
    """Documents to download and start from: each template (with the tenant's products), the layout in force."""
    examples = [
        (f"{title.split(':')[0]} (JSON)", reverse("admin:stores_store_layout_template", args=[store.pk, name]))
        for name, (title, _zones) in TEMPLATES.items()
    ]
    current = selectors.layout_in_force(store=store)
    if current is not None:
        url = reverse("admin:stores_layoutversion_document", args=[current.pk])
        examples.append((f"The layout in force, v{current.number} (JSON)", url))
    return examples


def _catalog_skus() -> list[str]:
    return list(Product.objects.filter(status=Product.Status.ACTIVE).order_by("sku").values_list("sku", flat=True))


class LayoutUploadForm(forms.Form):
    template = forms.ChoiceField(
        required=False,
        label="Start from a template",
        choices=[("", "— no template: my own document below —"), *((k, t) for k, (t, _z) in TEMPLATES.items())],
        help_text="Its bins are filled with your catalog's products, in SKU order; publish a new version to change it.",
        widget=UnfoldAdminSelectWidget,
    )
    file = forms.FileField(required=False, help_text="A .json layout document.", widget=UnfoldAdminFileFieldWidget)
    text = forms.CharField(
        required=False, widget=UnfoldAdminTextareaWidget(attrs={"rows": 8}), label="…or paste it here"
    )
    effective_from = forms.DateTimeField(
        required=False,
        help_text="When it takes effect, e.g. 2026-03-01 06:00 (UTC); empty means now.",
        widget=UnfoldAdminTextInputWidget(attrs={"placeholder": "YYYY-MM-DD HH:MM"}),
    )

    def __init__(self, *args: Any, skus: list[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.skus = skus

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        upload, text, template = cleaned.get("file"), cleaned.get("text"), cleaned.get("template")
        if template and (upload or text):
            raise forms.ValidationError("Choose a template or give a document, not both.")
        if template:
            if not self.skus:
                raise forms.ValidationError(
                    "A template fills its bins with your products: import your catalog first (Products → Import)."
                )
            cleaned["document"] = template_layout(name=template, skus=self.skus)
            return cleaned
        if not upload and not text:
            raise forms.ValidationError("Choose a template, a layout file, or paste the document.")
        raw = upload.read() if upload else str(text).encode()
        try:
            cleaned["document"] = bounded_json.loads(raw, what="The layout document")
        except bounded_json.JSONRefused as error:
            raise forms.ValidationError(f"{error.reason}.") from error
        return cleaned


@admin.register(LayoutVersion, site=licensee_site)
class LayoutVersionAdmin(ReadOnlyMixin, TenantModelAdmin):
    """A layout version read out: counts, zones with their fixtures, the floor plan; its JSON to download."""

    list_display = ["__str__", "store", "number", "effective_from", "created_by"]
    list_filter = ["store"]
    search_fields = ["store__code", "store__name"]
    fields = ["store", "number", "effective_from", "created_by", "created_at", "document_download"]
    readonly_fields = fields
    change_form_after_template = "admin/stores/floor_plan_after.html"

    def get_urls(self) -> list[URLPattern]:
        download = ("<int:layout_id>/document.json", self.document_view, "stores_layoutversion_document")
        return [*admin_pages(self, download), *super().get_urls()]

    def document_view(self, request: HttpRequest, layout_id: int) -> HttpResponse:
        layout = get_object_or_404(LayoutVersion.objects.select_related("store"), pk=layout_id)
        response = HttpResponse(json.dumps(layout.document, indent=2), content_type="application/json")
        response["Content-Disposition"] = f'attachment; filename="{layout.store.code}-layout-v{layout.number}.json"'
        return response

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        layout = (
            LayoutVersion.objects.select_related("store").filter(pk=object_id).first() if object_id.isdigit() else None
        )
        if layout is not None:
            extra_context = {
                "readout": selectors.layout_readout(document=layout.document),
                "floor_plan": _floor_plan_html(layout, store=layout.store),
                "floor_plan_title": "Floor plan",
                **(extra_context or {}),
            }
        return super().change_view(request, object_id, form_url, extra_context)

    @display(description="Document")
    def document_download(self, layout: LayoutVersion) -> SafeString:
        return format_html(
            '<a class="text-primary-600 underline" href="{}">Download the layout document (JSON)</a>',
            reverse("admin:stores_layoutversion_document", args=[layout.pk]),
        )


class DeviceHealthFilter(admin.SimpleListFilter):
    """Health as the list shows it (stores.health), not the last status reported."""

    title = "health"
    parameter_name = "health"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return list(health.LABELS.items())

    def queryset(self, request: HttpRequest, queryset: QuerySet[Device]) -> QuerySet[Device]:
        # `health_key` is annotated by `health.with_health` (the admin's queryset), unknown to the type checker
        return queryset.filter(**{"health_key": self.value()}) if self.value() else queryset


@admin.register(Device, site=licensee_site)
class DeviceAdmin(ReadOnlyMixin, TenantModelAdmin):
    """Devices are listed, never added or edited here: they come from the store's layout document."""

    list_display = ["code", "store", "kind", "health_label", "last_heard"]
    list_filter = [DeviceHealthFilter, "kind", "store"]
    search_fields = ["code", "store__code"]
    fields = ["store", "code", "kind", "health_text", "health_detail", "last_heard", "layout_link"]
    readonly_fields = fields
    list_before_template = "admin/stores/device/list_before.html"

    def get_queryset(self, request: HttpRequest) -> QuerySet[Device]:
        # Annotated before ordering (ModelAdmin.get_queryset orders by `get_ordering`, which needs the rank).
        devices = health.with_health(Device.objects.select_related("store"))
        return devices.order_by(*self.get_ordering(request))

    def get_ordering(self, request: HttpRequest) -> list[str]:
        return ["health_rank", "store__code", "code"]

    def add_view(self, request: HttpRequest, form_url: str = "", extra_context: Any = None) -> HttpResponse:
        """Devices come from the layout: say so, on the list, instead of refusing."""
        self.message_user(request, "Devices are not added here: they come from the store's layout.", messages.INFO)
        return HttpResponseRedirect(reverse("admin:stores_device_changelist"))

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        stores = [
            (store.code, reverse("admin:stores_store_layout_upload", args=[store.pk]))
            for store in Store.objects.order_by("code")[:STORE_LINKS]
        ]
        context = {"devices_help": {"text": DEVICES_FROM_LAYOUT, "stores": stores}, **(extra_context or {})}
        return super().changelist_view(request, context)

    @display(description="Health", label=TONE_LABELS, ordering="health_rank")
    def health_label(self, device: Device) -> tuple[str, str]:
        reading = health.device_health(device=device)
        return health.TONES[reading.key], reading.label

    @display(description="Health")
    def health_text(self, device: Device) -> str:
        return health.device_health(device=device).label

    @display(description="Last heard from", ordering="last_seen_at")
    def last_heard(self, device: Device) -> str:
        return health.when(device.last_seen_at, device.store) if device.last_seen_at else "never"

    @display(description="What it rests on")
    def health_detail(self, device: Device) -> str:
        return health.device_health(device=device).detail

    @display(description="Where it is placed")
    def layout_link(self, device: Device) -> SafeString:
        return format_html(
            '{} <a class="text-primary-600 underline" href="{}">{}</a>',
            "Devices are named and placed in the store's layout:",
            reverse("admin:stores_store_layout_upload", args=[device.store_id]),
            f"publish a new layout of {device.store.code} to add, move or remove one →",
        )


@admin.register(Store, site=ops_site)
class StoreOpsAdmin(ReadOnlyMixin, OpsModelAdmin):
    """Every licensee's stores, for operators to find one; its figures are on the console, its setup the
    licensee's own (in the store admin)."""

    list_display = ["code", "name", "tenant", "status_label", "currency", "timezone", "created_at", "console_link"]
    list_filter = ["status", "tenant", "currency"]
    list_select_related = ["tenant"]
    search_fields = ["code", "name", "tenant__name", "tenant__slug"]
    fields = ["tenant", "code", "name", "address", "timezone", "currency", "status", "created_at", "console_link"]
    readonly_fields = fields

    @display(description="Status", label={"onboarding": "info", "active": "success", "closed": "danger"})
    def status_label(self, store: Store) -> str:
        return store.status

    @display(description="Console")
    def console_link(self, store: Store) -> SafeString:
        url = f"{reverse('ops:index')}?tenant={store.tenant_id}&store={store.pk}"
        return format_html('<a class="text-primary-600 underline" href="{}">Visits, sales, streams →</a>', url)
