"""The catalog in the store admin: products with their price history, import (with progress) and export."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import tablib
from django import forms
from django.conf import settings
from django.contrib import admin
from django.db import models
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import URLPattern, reverse
from django.utils import timezone
from unfold.admin import TabularInline
from unfold.decorators import action, display
from unfold.widgets import (
    UnfoldAdminFileFieldWidget,
    UnfoldAdminSelectWidget,
    UnfoldAdminSingleDateWidget,
    UnfoldAdminTextareaWidget,
    UnfoldAdminTextInputWidget,
)

from catalog import currencies, selectors, services
from catalog.importing import COLUMNS, MAX_ERRORS_LISTED, parse_barcodes
from catalog.models import CatalogImport, Product, ProductPrice
from catalog.sample import sample_catalog_rows
from core.admin import ReadOnlyMixin, TenantModelAdmin, admin_pages, tenant_may_upload
from core.admin_sites import licensee_site
from core.spreadsheets import formula_safe_row
from stores.models import Store
from tenants.audit import Actor
from visits import restricted

ERRORS_SHOWN = 1000
CURRENCY_CHOICES = [("", "— as in the file —"), *((code, code) for code in sorted(currencies.MINOR_UNITS))]
EXAMPLE_PRODUCTS = 60
IMPORT_STATUS_LABELS = {"queued": "info", "processing": "warning", "done": "success", "failed": "danger"}


class ProductPriceInline(ReadOnlyMixin, TabularInline):
    model = ProductPrice
    extra = 0
    can_delete = False
    verbose_name = "price version"
    verbose_name_plural = "price history (new versions come from imports)"
    fields = ["currency", "price", "tax_rate", "effective_from", "created_at"]
    readonly_fields = fields
    ordering = ["currency", "-effective_from"]

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return getattr(request, "membership", None) is not None  # every role of the tenant reads prices

    @display(description="Price")
    def price(self, price: ProductPrice) -> str:
        return currencies.format_money(price.unit_price, price.currency)


class CatalogImportForm(forms.Form):
    # unfold's file widget: its script writes the chosen file's name into the text input next to it; with a plain
    # file input it wrote it into the form's first text field ("Prices apply from"), which then failed as a date.
    file = forms.FileField(
        help_text=f"CSV (UTF-8) or XLSX. Columns: {', '.join(COLUMNS)} (the last five optional).",
        widget=UnfoldAdminFileFieldWidget,
    )
    partial = forms.BooleanField(
        required=False,
        label="Keep good rows",
        help_text="Import the good rows even when some rows are bad (otherwise nothing is imported until all are).",
    )
    currency = forms.ChoiceField(
        required=False, choices=CURRENCY_CHOICES, help_text="Only for files without a currency column."
    )
    effective_from = forms.DateTimeField(
        required=False,
        label="Prices apply from",
        help_text="To back-fill a past day: when the file's new prices took effect, e.g. 2026-03-01 06:00 (UTC). "
        "Empty means now.",
        widget=UnfoldAdminTextInputWidget(attrs={"placeholder": "YYYY-MM-DD HH:MM"}),
    )

    def clean_effective_from(self) -> datetime | None:
        value: datetime | None = self.cleaned_data.get("effective_from")
        problem = value and services.effective_from_problem(effective_from=value)
        if problem:
            raise forms.ValidationError(problem)
        return value


class ProductForm(forms.ModelForm):
    """Barcodes typed as text, one per line or separated by commas, checked as the import checks them."""

    barcodes = forms.CharField(
        required=False,
        widget=UnfoldAdminTextareaWidget(attrs={"rows": 3, "placeholder": "4006381333931"}),
        help_text="The GTINs printed on the item (8, 12, 13 or 14 digits), one per line or separated by commas.",
    )

    class Meta:
        model = Product
        fields = ["name", "status", "barcodes", "unit_weight_g", "weight_tolerance_g", "image_url", "min_age"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.initial["barcodes"] = "\n".join(self.instance.barcodes or [])

    def clean_barcodes(self) -> list[str]:
        barcodes, problems = parse_barcodes(self.cleaned_data["barcodes"])
        if problems:
            raise forms.ValidationError([problem[0].upper() + problem[1:] + "." for problem in problems])
        return list(barcodes)


@admin.register(Product, site=licensee_site)
class ProductAdmin(TenantModelAdmin):
    form = ProductForm
    list_display = ["sku", "name", "current_price", "status_label", "barcode_list", "unit_weight_g", "updated_at"]
    list_filter = ["status"]
    search_fields = ["sku", "name", "barcodes"]
    readonly_fields = ["sku", "created_at", "updated_at"]
    fields = [
        "sku",
        "name",
        "status",
        "barcodes",
        "unit_weight_g",
        "weight_tolerance_g",
        "image_url",
        "min_age",
        "created_at",
        "updated_at",
    ]
    inlines = [ProductPriceInline]
    actions_list = ["import_catalog", "export_csv", "export_xlsx", "restricted_sales"]
    list_per_page = 50

    def get_queryset(self, request: HttpRequest) -> QuerySet[Product]:
        return selectors.with_current_price(super().get_queryset(request))

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # products come in through "Import catalog", with their price

    def formfield_for_dbfield(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if isinstance(db_field, models.URLField):
            kwargs["assume_scheme"] = "https"
        return super().formfield_for_dbfield(db_field, request, **kwargs)

    def has_import_catalog_permission(self, request: HttpRequest) -> bool:
        return self._may_write(request)

    @display(description="Current price", ordering="current_unit_price")
    def current_price(self, product: Product) -> str:
        amount = getattr(product, "current_unit_price", None)
        if amount is None:
            return "—"
        return currencies.format_money(amount, product.current_currency)  # type: ignore[attr-defined]

    @display(description="Status", label={"active": "success", "archived": "danger"})
    def status_label(self, product: Product) -> str:
        return product.status

    @display(description="Barcodes")
    def barcode_list(self, product: Product) -> str:
        return ", ".join(product.barcodes) or "—"

    @action(description="Import catalog", url_path="import", icon="upload_file", permissions=["import_catalog"])
    def import_catalog(self, request: HttpRequest) -> HttpResponse:
        form = CatalogImportForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid() and tenant_may_upload(request, form):
            upload = form.cleaned_data["file"]
            arguments: dict[str, Any] = {
                "actor": Actor.for_request(request, source=self.audit_source),
                "tenant": request.tenant,  # type: ignore[attr-defined]
                "file": upload,
                "filename": upload.name,
                "partial": form.cleaned_data["partial"],
                "currency": form.cleaned_data["currency"] or None,
                "effective_from": form.cleaned_data["effective_from"],
                "created_by": request.user,
            }
            if upload.size > settings.CATALOG_IMPORT_MAX_BYTES:
                form.add_error("file", f"The file is larger than {settings.CATALOG_IMPORT_MAX_BYTES:,} bytes.")
            else:
                if services.catalog_import_is_large(file=upload, filename=upload.name):
                    import_id = services.catalog_import_enqueue(**arguments).pk
                else:
                    try:
                        import_id = services.catalog_import(**arguments).import_id
                    except services.CatalogImportRefused as refused:
                        import_id = refused.result.import_id
                return HttpResponseRedirect(reverse("admin:catalog_catalogimport_change", args=[import_id]))
        context = {
            **self.admin_site.each_context(request),
            "opts": Product._meta,
            "title": "Import catalog",
            "form": form,
            "columns": COLUMNS,
            "submit_label": "Import",
            "background_bytes": settings.CATALOG_IMPORT_BACKGROUND_BYTES,
            "format_help": {
                "doc_url": reverse("doc", args=["catalog"]),
                "doc_title": "the catalog row (docs/catalog.md)",
                "examples": [("Download an example file (CSV, 60 products)", reverse("admin:catalog_product_example"))],
            },
        }
        return TemplateResponse(request, "admin/catalog/product/import.html", context)

    def get_urls(self) -> list[URLPattern]:
        example = ("import/example.csv", self.example_view, "catalog_product_example")
        return [*admin_pages(self, example), *super().get_urls()]

    def example_view(self, request: HttpRequest) -> HttpResponse:
        """A catalog file to start from: the sample catalog in the format the import reads."""
        rows = sample_catalog_rows(count=EXAMPLE_PRODUCTS)
        dataset = tablib.Dataset(headers=list(rows[0]))
        for row in rows:
            dataset.append(list(row.values()))
        response = HttpResponse(dataset.export("csv").encode(), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = 'attachment; filename="catalog-example.csv"'
        return response

    @action(description="Export CSV", url_path="export-csv", icon="download", permissions=["view"])
    def export_csv(self, request: HttpRequest) -> HttpResponse:
        # A byte-order mark so that spreadsheet programs read it as UTF-8; the import accepts it.
        body = "\ufeff" + _export_dataset().export("csv")
        return _download(body.encode(), "text/csv; charset=utf-8", "csv")

    @action(description="Export XLSX", url_path="export-xlsx", icon="table_view", permissions=["view"])
    def export_xlsx(self, request: HttpRequest) -> HttpResponse:
        body = _export_dataset(numbers=True).export("xlsx")
        return _download(body, "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "xlsx")

    @action(description="Age-restricted sales", url_path="restricted-sales", icon="id_card", permissions=["view"])
    def restricted_sales(self, request: HttpRequest) -> HttpResponse:
        """The lines of age-restricted products sold in a period, with the ID check of each visit (CSV)."""
        form = RestrictedSalesForm(request.GET or None)
        if request.GET and form.is_valid():
            data = form.cleaned_data
            since, until = data["since"], data["until"] + timedelta(days=1)
            dataset = tablib.Dataset(headers=list(restricted.RESTRICTED_SALES_COLUMNS), title="Restricted sales")
            window = (_midnight(since), _midnight(until))
            for row in restricted.restricted_sales(since=window[0], until=window[1], store=data["store"]):
                dataset.append(formula_safe_row(row[c] for c in restricted.RESTRICTED_SALES_COLUMNS))
            response = HttpResponse(("\ufeff" + dataset.export("csv")).encode(), content_type="text/csv; charset=utf-8")
            name = f"restricted-sales-{since:%Y%m%d}-{data['until']:%Y%m%d}.csv"
            response["Content-Disposition"] = f'attachment; filename="{name}"'
            return response
        context = {
            **self.admin_site.each_context(request),
            "opts": Product._meta,
            "title": "Age-restricted sales",
            "form": form,
            "method": "get",
            "submit_label": "Download CSV",
            "intro": "Every line of a product with a minimum age sold to visits that left in these days, with the "
            "visit's ID check that proved the age (or its latest check, or none): the record regulators ask for.",
        }
        return TemplateResponse(request, "admin/simple_form.html", context)


class RestrictedSalesForm(forms.Form):
    since = forms.DateField(label="From", widget=UnfoldAdminSingleDateWidget)
    until = forms.DateField(label="To (included)", widget=UnfoldAdminSingleDateWidget)
    store: forms.ModelChoiceField[Store] = forms.ModelChoiceField(
        queryset=None, required=False, empty_label="All stores", widget=UnfoldAdminSelectWidget
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["store"].queryset = Store.objects.order_by("code")  # type: ignore[attr-defined]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("since") and data.get("until") and data["since"] > data["until"]:
            raise forms.ValidationError("The first day comes after the last one.")
        return data


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=timezone.get_current_timezone())


def _export_dataset(*, numbers: bool = False) -> tablib.Dataset:
    """The catalog with the import's columns (so that an export imports back as all unchanged), every cell
    formula-safe (the import takes the mark off again)."""
    dataset = tablib.Dataset(headers=list(COLUMNS), title="Catalog")
    numeric = {"price", "tax_rate", "weight_g", "weight_tolerance_g", "min_age"} if numbers else set()
    for row in selectors.catalog_export_rows():
        dataset.append(formula_safe_row(_number(row[c]) if c in numeric and row[c] != "" else row[c] for c in COLUMNS))
    return dataset


def _number(text: str) -> Decimal:
    return Decimal(text)


def _download(body: bytes, content_type: str, extension: str) -> HttpResponse:
    response = HttpResponse(body, content_type=content_type)
    stamp = timezone.now().strftime("%Y%m%d-%H%M")
    response["Content-Disposition"] = f'attachment; filename="catalog-{stamp}.{extension}"'
    return response


@admin.register(CatalogImport, site=licensee_site)
class CatalogImportAdmin(ReadOnlyMixin, TenantModelAdmin):
    list_display = [
        "created_at",
        "filename_or_rows",
        "status_label",
        "progress_percent",
        "rows",
        "created_count",
        "updated_count",
        "unchanged_count",
        "error_count",
        "created_by",
        "source",
    ]
    list_filter = ["status", "source"]
    search_fields = ["filename"]
    date_hierarchy = "created_at"

    def get_queryset(self, request: HttpRequest) -> QuerySet[CatalogImport]:
        return super().get_queryset(request).select_related("created_by").defer("errors")

    @display(description="File")
    def filename_or_rows(self, record: CatalogImport) -> str:
        return record.filename or "JSON rows"

    @display(description="Status", label=IMPORT_STATUS_LABELS)
    def status_label(self, record: CatalogImport) -> str:
        return record.status

    @display(description="Progress")
    def progress_percent(self, record: CatalogImport) -> str:
        return f"{selectors.catalog_import_progress(record=record):.0%}"

    def get_urls(self) -> list[URLPattern]:
        status = ("<int:import_id>/status/", self.status_view, "catalog_catalogimport_status")
        return [*admin_pages(self, status), *super().get_urls()]

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: Any = None
    ) -> HttpResponse:
        """The result of an import: counts and every bad row, or a live progress bar while it runs."""
        if not object_id.isdigit():
            return HttpResponseRedirect(reverse("admin:catalog_catalogimport_changelist"))
        record = get_object_or_404(CatalogImport.objects.select_related("created_by"), pk=int(object_id))
        context = {
            **self.admin_site.each_context(request),
            "opts": CatalogImport._meta,
            "title": f"Catalog import: {record.filename or 'JSON rows'}",
            "record": record,
            "progress_percent": round(selectors.catalog_import_progress(record=record) * 100),
            "errors_shown": record.errors[:ERRORS_SHOWN],
            "errors_hidden": max(0, record.error_count - min(len(record.errors), ERRORS_SHOWN)),
            "errors_listed": MAX_ERRORS_LISTED,
            "status_url": reverse("admin:catalog_catalogimport_status", args=[record.pk]),
            "products_url": reverse("admin:catalog_product_changelist"),
            "import_url": reverse("admin:catalog_product_import_catalog"),
        }
        return TemplateResponse(request, "admin/catalog/catalogimport/result.html", context)

    def status_view(self, request: HttpRequest, import_id: int) -> JsonResponse:
        """What the result page polls while an import runs."""
        record = get_object_or_404(CatalogImport.objects.defer("errors"), pk=import_id)
        return JsonResponse(
            {
                "id": record.pk,
                "status": record.status,
                "finished": record.is_finished,
                "progress": selectors.catalog_import_progress(record=record),
                "created": record.created_count,
                "updated": record.updated_count,
                "unchanged": record.unchanged_count,
                "bad_rows": record.error_count,
            }
        )
