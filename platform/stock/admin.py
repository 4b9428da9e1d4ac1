"""Shelf stock in the store admin: each store's stock page, the stock-take form, low-stock levels, past counts."""

from __future__ import annotations

import zoneinfo
from datetime import datetime
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import URLPattern, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString
from unfold.decorators import display

from catalog.currencies import format_money
from core.admin import ReadOnlyMixin, TenantModelAdmin, admin_pages
from core.admin_sites import licensee_site
from core.tasks import enqueue_on_commit
from stock import reports, selectors, services
from stock.models import LowStockLevel, StockCount
from stores.models import Store
from tenants.audit import Actor

TIME_FORMAT = "%Y-%m-%d %H:%M"


def _zone(store: Store) -> zoneinfo.ZoneInfo:
    try:
        return zoneinfo.ZoneInfo(store.timezone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return zoneinfo.ZoneInfo("UTC")


def _local(at: datetime | None, store: Store) -> str:
    return timezone.localtime(at, _zone(store)).strftime(f"{TIME_FORMAT} %Z") if at else "—"


def _read_local(raw: str, store: Store) -> datetime | None:
    """`YYYY-MM-DD HH:MM` (or the browser's `YYYY-MM-DDTHH:MM`) in the store's time zone; None if unreadable."""
    try:
        naive = datetime.strptime(raw.strip().replace("T", " ")[:16], TIME_FORMAT)
    except ValueError:
        return None
    return naive.replace(tzinfo=_zone(store))


def stock_page_url(store: Store) -> str:
    return reverse("admin:stock_stockcount_store", args=[store.pk])


@admin.register(StockCount, site=licensee_site)
class StockCountAdmin(ReadOnlyMixin, TenantModelAdmin):
    """Past counts, read-only; each store's stock page (and its stock-take form) hangs off this admin."""

    list_display = ["store", "bin", "sku", "units", "counted_at", "recorded_by", "stock_page"]
    list_filter = ["store"]
    search_fields = ["bin", "sku"]
    list_select_related = ["store"]
    date_hierarchy = "counted_at"
    list_before_template = "admin/stock/stores_list.html"

    @display(description="")
    def stock_page(self, row: StockCount) -> SafeString:
        return format_html('<a class="text-primary-600 underline" href="{}">stock now →</a>', stock_page_url(row.store))

    def get_urls(self) -> list[URLPattern]:
        own = admin_pages(
            self,
            ("store/<int:store_id>/", self.store_view, "stock_stockcount_store"),
            ("store/<int:store_id>/take/", self.take_view, "stock_stockcount_take"),
            ("store/<int:store_id>/shrink/", self.shrink_view, "stock_stockcount_shrink"),
            ("store/<int:store_id>/heat-map/", self.heat_map_view, "stock_stockcount_heat_map"),
        )
        return own + super().get_urls()

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        stores = [(store, stock_page_url(store)) for store in Store.objects.order_by("code")]
        return super().changelist_view(request, {**(extra_context or {}), "stock_stores": stores})

    def store_view(self, request: HttpRequest, store_id: int) -> HttpResponse:
        store = get_object_or_404(Store.objects.all(), pk=store_id)
        asked = request.GET.get("at", "")
        at = _read_local(asked, store) if asked else None
        stock = selectors.stock_at(store=store, at=at or timezone.now())
        only_low = request.GET.get("low") == "1"
        counted = [item for item in stock if item.units is not None]
        takes = selectors.counts_by_take(store=store)
        context = {
            **self.admin_site.each_context(request),
            "opts": StockCount._meta,
            "title": f"Stock on the shelves of {store.code}",
            "store": store,
            "store_url": reverse("admin:stores_store_change", args=[store.pk]),
            "at_value": timezone.localtime(at, _zone(store)).strftime("%Y-%m-%dT%H:%M") if at else "",
            "at_shown": _local(at, store) if at else f"now ({_local(timezone.now(), store)})",
            "bad_at": bool(asked) and at is None,
            "only_low": only_low,
            "rows": [
                {"item": item, "last_change": _local(item.last_change, store)}
                for item in stock
                if item.low or not only_low
            ],
            "bins": len(stock),
            "counted": len(counted),
            "units": sum(item.units or 0 for item in counted),
            "low": sum(item.low for item in stock),
            "last_take": _local(next(iter(takes)), store) if takes else None,
            "may_write": self._may_write(request),
            "take_url": reverse("admin:stock_stockcount_take", args=[store.pk]),
            "levels_url": reverse("admin:stock_lowstocklevel_changelist") + f"?store__id__exact={store.pk}",
            "shrink_url": reverse("admin:stock_stockcount_shrink", args=[store.pk]),
            "heat_map_url": reverse("admin:stock_stockcount_heat_map", args=[store.pk]),
        }
        return TemplateResponse(request, "admin/stock/store.html", context)

    def _period_context(self, request: HttpRequest, store: Store, title: str) -> dict[str, Any]:
        period, problem = reports.read_period(request, store)
        return {
            **self.admin_site.each_context(request),
            "opts": StockCount._meta,
            "title": title,
            "store": store,
            "stock_url": stock_page_url(store),
            "shrink_url": reverse("admin:stock_stockcount_shrink", args=[store.pk]),
            "heat_map_url": reverse("admin:stock_stockcount_heat_map", args=[store.pk]),
            "period": period,
            "problem": problem,
            "from_value": request.GET.get("from") or f"{period.first:%Y-%m-%d}",
            "to_value": request.GET.get("to") or f"{period.last:%Y-%m-%d}",
        }

    def shrink_view(self, request: HttpRequest, store_id: int) -> HttpResponse:
        """Shrink by day, bin and product over whole local days, with its CSV and XLSX export."""
        store = get_object_or_404(Store.objects.all(), pk=store_id)
        context = self._period_context(request, store, f"Shrink in {store.code}")
        if context["problem"]:
            return TemplateResponse(request, "admin/stock/shrink.html", context)
        period = context["period"]
        report, rows = reports.shrink_rows(store=store, period=period)
        export = request.GET.get("export", "")
        if export in ("csv", "xlsx"):
            return reports.shrink_export(store=store, period=period, rows=rows, kind=export)

        def money(minor: int) -> str:
            return format_money(minor, store.currency)

        context |= {
            "rows": [{"row": row, "value": money(row.value)} for row in rows],
            "units": report.units,
            "value": money(report.value),
            "products": [
                {"name": name, "sku": sku, "units": units, "value": money(value)}
                for name, sku, units, value in reports.shrink_by_product(rows)[:10]
            ],
            "bins": len({row.bin for row in rows}),
            "query": request.GET.urlencode(),
        }
        return TemplateResponse(request, "admin/stock/shrink.html", context)

    def heat_map_view(self, request: HttpRequest, store_id: int) -> HttpResponse:
        """The floor plan as a heat map of picks, put-backs, sales or shrink per fixture over whole local days."""
        store = get_object_or_404(Store.objects.all(), pk=store_id)
        context = self._period_context(request, store, f"Where {store.code} sells: heat map")
        measure = request.GET.get("measure", "picks")
        if measure not in reports.MEASURES:
            context["problem"] = context["problem"] or "Choose what to show: picks, put-backs, sales or shrink."
            measure = "picks"
        context |= {"measures": reports.MEASURES, "measure": measure, "measure_words": reports.MEASURES[measure]}
        if context["problem"]:
            return TemplateResponse(request, "admin/stock/heat_map.html", context)
        svg, summary = reports.heat_map(store=store, period=context["period"], measure=measure)
        context |= {"floor_plan": svg, **summary}
        return TemplateResponse(request, "admin/stock/heat_map.html", context)

    def take_view(self, request: HttpRequest, store_id: int) -> HttpResponse:
        store = get_object_or_404(Store.objects.all(), pk=store_id)
        if not self._may_write(request):
            raise PermissionDenied
        now = timezone.now()
        stock = selectors.stock_at(store=store, at=now)
        problems: list[str] = []
        entered: dict[str, str] = {}
        at_raw = timezone.localtime(now, _zone(store)).strftime(TIME_FORMAT)
        if request.method == "POST":
            at_raw = request.POST.get("counted_at", "")
            entered = {item.bin: request.POST.get(f"bin:{item.bin}", "").strip() for item in stock}
            rows, problems = _take_rows(entered)
            at = _read_local(at_raw, store)
            if at is None:
                problems.append("Counted at: a time like 2026-03-02 08:00, in the store's time zone.")
            if not problems and at is not None:
                try:
                    services.stock_take_record(
                        actor=Actor.for_request(request, source=self.audit_source), store=store, at=at, rows=rows
                    )
                except services.StockRefused as refused:
                    problems = [p.message for p in refused.problems]
                else:
                    self.message_user(
                        request, f"Stock take of {len(rows)} bin(s) recorded for {_local(at, store)}.", messages.SUCCESS
                    )
                    return HttpResponseRedirect(stock_page_url(store))
        context = {
            **self.admin_site.each_context(request),
            "opts": StockCount._meta,
            "title": f"Record a stock take in {store.code}",
            "store": store,
            "stock_url": stock_page_url(store),
            "counted_at": at_raw,
            "zone": store.clock,
            "problems": problems,
            "rows": [{"item": item, "entered": entered.get(item.bin, "")} for item in stock],
        }
        return TemplateResponse(request, "admin/stock/take.html", context)


def _take_rows(entered: dict[str, str]) -> tuple[list[dict[str, Any]], list[str]]:
    """The bins given a count (blank ones are left as they are), or what is wrong with the numbers typed."""
    rows, problems = [], []
    for code, raw in entered.items():
        if not raw:
            continue
        if not raw.isdigit():
            problems.append(f"{code}: {raw!r} is not a whole number of units.")
            continue
        rows.append({"bin": code, "units": int(raw)})
    if not rows and not problems:
        problems.append("Type the units counted on at least one bin.")
    return rows, problems


class LowStockLevelForm(forms.ModelForm):
    """Fields come from the admin at request time (the store picker lists the member's stores only)."""

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        store = cleaned.get("store")
        if store is not None and cleaned.get("units") is not None:
            found = services.low_level_problems(
                store=store, bin_code=cleaned.get("bin", ""), sku=cleaned.get("sku", ""), units=cleaned["units"]
            )
            for field, message in found.items():
                self.add_error(field, message)
        return cleaned


@admin.register(LowStockLevel, site=licensee_site)
class LowStockLevelAdmin(TenantModelAdmin):
    """At or below its level a bin is low (shown on the stock page, and `stock.low` sent once per crossing)."""

    form = LowStockLevelForm
    fields = ["store", "bin", "sku", "units"]
    list_display = ["store", "applies_to", "units", "updated_at"]
    list_filter = ["store"]
    search_fields = ["bin", "sku"]
    list_select_related = ["store"]

    @display(description="Applies to")
    def applies_to(self, level: LowStockLevel) -> str:
        return f"bin {level.bin}" if level.bin else f"every bin of {level.sku}"

    def save_model(self, request: HttpRequest, obj: LowStockLevel, form: Any, change: bool) -> None:
        obj.updated_at = timezone.now()
        super().save_model(request, obj, form, change)
        enqueue_on_commit(services.CHECK_TASK, tenant_id=obj.tenant_id, store_id=obj.store_id)
