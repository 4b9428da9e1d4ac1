"""Licensee billing in both admin sites.

`/ops/`: operators manage plans (versioned: a new price is a new version), billing accounts and plan changes;
finance closes months, reviews drafts, finalises, records payments, voids, issues credit notes and exports
(PDF per invoice; invoices, lines and credit notes as XLSX or CSV for whatever the list is filtered to; usage per
tenant and store). Usage rows are read-only everywhere: they are derived, never edited.

`/admin/`: a licensee's managers see their own issued invoices and credit notes and download them as PDF.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.html import format_html
from unfold.admin import TabularInline
from unfold.decorators import action, display
from unfold.widgets import (
    UnfoldAdminDecimalFieldWidget,
    UnfoldAdminSelectWidget,
    UnfoldAdminSingleDateWidget,
    UnfoldAdminTextareaWidget,
    UnfoldAdminTextInputWidget,
    UnfoldBooleanSwitchWidget,
)

from billing.invoicing import documents, exports, selectors, services
from billing.invoicing.calculations import Promises, parse_month, previous_month
from billing.invoicing.calculations import promises_in_words as calc_promises_in_words
from billing.invoicing.models import (
    BillingAccount,
    CreditNote,
    DailyUsage,
    ExchangeRate,
    Invoice,
    InvoiceLine,
    MonthClose,
    Plan,
    PlanAssignment,
    PlanVersion,
)
from billing.invoicing.usage import UPDATED as USAGE_FIGURES
from catalog.currencies import MINOR_UNITS, format_money, from_minor, to_minor
from core.admin import OpsModelAdmin, ReadOnlyMixin, TenantModelAdmin
from core.admin_sites import FINANCE_GROUP, OPERATOR_GROUP, licensee_site, ops_site
from tenants.audit import Actor
from tenants.models import Membership, Tenant

STATUS_LABELS = {"draft": "info", "finalised": "warning", "paid": "success", "void": "danger"}
CURRENCIES = [(code, code) for code in sorted(MINOR_UNITS)]
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _in_groups(request: HttpRequest, *groups: str) -> bool:
    user: Any = request.user
    return bool(user.is_superuser or user.groups.filter(name__in=groups).exists())


def is_finance(request: HttpRequest) -> bool:
    return _in_groups(request, FINANCE_GROUP)


def _download(body: bytes, content_type: str, filename: str) -> HttpResponse:
    response = HttpResponse(body, content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def _pdf(body: bytes, filename: str) -> HttpResponse:
    return _download(body, "application/pdf", filename)


def _errors(error: ValidationError) -> str:
    if hasattr(error, "message_dict"):
        return "; ".join(" ".join(messages) for messages in error.message_dict.values())
    return " ".join(error.messages)


def _month_of(value: str, today: date) -> date | None:
    if value == "last":
        return previous_month(today)[0]
    if value == "this":
        return today.replace(day=1)
    try:
        return parse_month(value)[0]
    except ValueError:
        return None


class PeriodFilter(admin.SimpleListFilter):
    """By invoice month: last month, this month, or any month that has invoices."""

    title = "period"
    parameter_name = "period"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        today = timezone.localdate()
        last = previous_month(today)[0]
        months = model_admin.get_queryset(request).dates("period_start", "month", order="DESC")[:24]
        return [("last", f"Last month ({last:%Y-%m})"), ("this", f"This month ({today:%Y-%m})")] + [
            (f"{m:%Y-%m}", f"{m:%B %Y}") for m in months
        ]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        if not self.value():
            return queryset
        start = _month_of(str(self.value()), timezone.localdate())
        return queryset.filter(period_start=start) if start else queryset.none()


class UsagePeriodFilter(PeriodFilter):
    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        today = timezone.localdate()
        months = model_admin.get_queryset(request).dates("day", "month", order="DESC")[:24]
        return [("last", f"Last month ({previous_month(today)[0]:%Y-%m})"), ("this", "This month")] + [
            (f"{m:%Y-%m}", f"{m:%B %Y}") for m in months
        ]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        if not self.value():
            return queryset
        start = _month_of(str(self.value()), timezone.localdate())
        if start is None:
            return queryset.none()
        _, end = parse_month(f"{start:%Y-%m}")
        return queryset.filter(day__gte=start, day__lte=end)


def _money_column(field: str, description: str) -> Callable[[Any, Any], str]:
    """An admin column showing an amount in minor units as money in its object's currency."""

    @display(description=description)
    def column(model_admin: Any, obj: Any) -> str:
        return format_money(getattr(obj, field), obj.currency)

    return column


class MoneyDisplay:
    total_display = _money_column("total", "Total")
    subtotal_display = _money_column("subtotal", "Subtotal")
    tax_display = _money_column("tax", "Tax")


class InvoiceDisplay(MoneyDisplay):
    pdf_url_name = ""

    @display(description="Number", ordering="number")
    def invoice_number(self, invoice: Invoice) -> str:
        return invoice.number or "— (draft)"

    @display(description="Period", ordering="period_start")
    def period(self, invoice: Invoice) -> str:
        return invoice.period_label

    @display(description="Status", label=STATUS_LABELS)
    def status_label(self, invoice: Invoice) -> str:
        return invoice.status

    @display(description="Bill to")
    def bill_to_display(self, invoice: Invoice) -> str:
        to = invoice.bill_to
        parts = [to.get("name", ""), to.get("address", ""), f"Tax id {to['tax_id']}" if to.get("tax_id") else ""]
        return format_html("<div style='white-space: pre-line'>{}</div>", "\n".join(p for p in parts if p))

    @display(description="PDF")
    def pdf_link(self, invoice: Invoice) -> str:
        return format_html('<a class="text-primary-600 underline" href="{}">PDF</a>', self._pdf_url(invoice))

    def _pdf_url(self, invoice: Invoice) -> str:
        return reverse(self.pdf_url_name, args=[invoice.pk])


class InvoiceLineInline(ReadOnlyMixin, TabularInline):
    model = InvoiceLine
    extra = 0
    hide_title = True  # the title would be the line's description, again, above each line
    fields = [
        "position",
        "description",
        "quantity_display",
        "unit",
        "unit_price_display",
        "amount_display",
        "tax_display",
    ]
    readonly_fields = fields

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return True  # whoever may see the invoice sees its lines

    @display(description="Quantity")
    def quantity_display(self, line: InvoiceLine) -> str:
        """Store-days and visits as counts; a revenue share's net sales as money (it is kept in minor units)."""
        if line.kind == InvoiceLine.Kind.REVENUE_SHARE:
            return format_money(line.quantity, line.invoice.currency)
        return f"{line.quantity:,}"

    @display(description="Unit price")
    def unit_price_display(self, line: InvoiceLine) -> str:
        if line.kind == InvoiceLine.Kind.REVENUE_SHARE:
            return f"{Decimal(line.unit_price) / 100:.2f} %"
        return format_money(line.unit_price, line.invoice.currency)

    @display(description="Amount")
    def amount_display(self, line: InvoiceLine) -> str:
        return format_money(line.amount, line.invoice.currency)

    @display(description="Tax")
    def tax_display(self, line: InvoiceLine) -> str:
        return format_money(line.tax, line.invoice.currency)


class CreditNoteInline(ReadOnlyMixin, TabularInline):
    model = CreditNote
    extra = 0
    fields = ["number", "issued_on", "reason", "total_display"]
    readonly_fields = fields

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return True  # whoever may see the invoice sees its credit notes

    total_display = _money_column("total", "Total")


INVOICE_FIELDS = (
    "tenant",
    "number",
    "status",
    "period_start",
    "period_end",
    "currency",
    "subtotal_display",
    "tax_display",
    "total_display",
    "issued_on",
    "due_on",
    "paid_on",
    "bill_to_display",
    "finalised_by",
    "void_reason",
)


# --- forms ---------------------------------------------------------------------------------------


def _text(**attrs: Any) -> UnfoldAdminTextInputWidget:
    return UnfoldAdminTextInputWidget(attrs=attrs or None)


class CloseMonthForm(forms.Form):
    month = forms.CharField(help_text="YYYY-MM", widget=_text())
    recompute_usage = forms.BooleanField(
        required=False,
        initial=True,
        help_text="Derive the month's usage anew from visits and payments first.",
        widget=UnfoldBooleanSwitchWidget,
    )

    def clean_month(self) -> date:
        try:
            return parse_month(self.cleaned_data["month"])[0]
        except ValueError as error:
            raise forms.ValidationError(str(error)) from error


class VoidForm(forms.Form):
    reason = forms.CharField(max_length=500, widget=_text())


class CreditNoteForm(forms.Form):
    invoice_line = forms.TypedChoiceField(
        coerce=int, empty_value=None, required=False, widget=UnfoldAdminSelectWidget, help_text="What is corrected."
    )
    description = forms.CharField(max_length=300, widget=_text())
    amount = forms.DecimalField(
        min_value=Decimal("0.01"),
        help_text="Before tax, in the invoice's currency.",
        widget=UnfoldAdminDecimalFieldWidget,
    )
    reason = forms.CharField(max_length=500, widget=UnfoldAdminTextareaWidget(attrs={"rows": 2}))

    def __init__(self, *args: Any, invoice: Invoice, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.invoice = invoice
        choices = [("", "— not tied to one line —")] + [
            (line.pk, f"{line.position}. {line.description[:80]} ({format_money(line.amount, invoice.currency)})")
            for line in InvoiceLine.unscoped.filter(invoice=invoice).order_by("position")
        ]
        self.fields["invoice_line"].choices = choices  # type: ignore[attr-defined]

    def clean_amount(self) -> int:
        try:
            return to_minor(self.cleaned_data["amount"], self.invoice.currency)
        except ValueError as error:
            raise forms.ValidationError(str(error)) from error


class PlanVersionForm(forms.Form):
    plan = forms.ModelChoiceField(queryset=Plan.objects.all(), widget=UnfoldAdminSelectWidget)
    currency = forms.ChoiceField(choices=CURRENCIES, initial="USD", widget=UnfoldAdminSelectWidget)
    store_fee = forms.DecimalField(
        min_value=0, help_text="Per active store and month, e.g. 300.00", widget=UnfoldAdminDecimalFieldWidget
    )
    visit_fee = forms.DecimalField(
        min_value=0, help_text="Per settled visit, e.g. 0.05", widget=UnfoldAdminDecimalFieldWidget
    )
    revenue_share_percent = forms.DecimalField(
        min_value=0,
        max_value=100,
        decimal_places=2,
        help_text="Of net sales, e.g. 1.50",
        widget=UnfoldAdminDecimalFieldWidget,
    )
    monthly_minimum = forms.DecimalField(min_value=0, help_text="e.g. 500.00", widget=UnfoldAdminDecimalFieldWidget)
    promised_without_person_percent = forms.DecimalField(
        label="Promise: settled without a person, at least (%)",
        required=False,
        decimal_places=2,
        help_text="Of a month's visits, e.g. 90. Empty: no promise.",
        widget=UnfoldAdminDecimalFieldWidget,
    )
    promised_exit_to_receipt_p95_s = forms.IntegerField(
        label="Promise: p95 exit to receipt, at most (seconds)",
        required=False,
        help_text="e.g. 60. Empty: no promise.",
        widget=UnfoldAdminTextInputWidget,
    )
    promised_review_p95_s = forms.IntegerField(
        label="Promise: p95 review time to decision, at most (seconds)",
        required=False,
        help_text="From the review queue to a person's decision, e.g. 900. Empty: no promise.",
        widget=UnfoldAdminTextInputWidget,
    )
    service_credit_percent = forms.DecimalField(
        label="Service credit per missed promise (% of the month's fees)",
        required=False,
        decimal_places=2,
        help_text="Credited on the invoice for each promise a month misses, e.g. 10. Needed with a promise.",
        widget=UnfoldAdminDecimalFieldWidget,
    )
    note = forms.CharField(max_length=200, required=False, widget=_text())

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        currency = data.get("currency")
        for name in ("store_fee", "visit_fee", "monthly_minimum"):
            if data.get(name) is not None and currency:
                try:
                    data[name] = to_minor(data[name], currency)
                except ValueError as error:
                    self.add_error(name, str(error))
        if data.get("revenue_share_percent") is not None:
            data["revenue_share_bps"] = int(data["revenue_share_percent"] * 100)
        share, credit = data.get("promised_without_person_percent"), data.get("service_credit_percent")
        data["promises"] = Promises(
            without_person_bps=int(share * 100) if share is not None else None,
            exit_to_receipt_p95_s=data.get("promised_exit_to_receipt_p95_s"),
            review_p95_s=data.get("promised_review_p95_s"),
            credit_bps=int(credit * 100) if credit is not None else 0,
        )
        return data

    @staticmethod
    def initial_from(version: PlanVersion) -> dict[str, Any]:
        """The form filled in with a version's prices and promises, to write the next one from it."""

        def percent(bps: int | None) -> Decimal | None:
            return Decimal(bps) / 100 if bps is not None else None

        return {
            "plan": version.plan_id,
            "currency": version.currency,
            "store_fee": from_minor(version.store_fee, version.currency),
            "visit_fee": from_minor(version.visit_fee, version.currency),
            "revenue_share_percent": percent(version.revenue_share_bps),
            "monthly_minimum": from_minor(version.monthly_minimum, version.currency),
            "promised_without_person_percent": percent(version.promised_without_person_bps),
            "promised_exit_to_receipt_p95_s": version.promised_exit_to_receipt_p95_s,
            "promised_review_p95_s": version.promised_review_p95_s,
            "service_credit_percent": percent(version.service_credit_bps) if version.service_credit_bps else None,
        }


class PlanAssignForm(forms.Form):
    tenant = forms.ModelChoiceField(queryset=Tenant.objects.all(), widget=UnfoldAdminSelectWidget)
    plan_version = forms.ModelChoiceField(
        queryset=PlanVersion.objects.select_related("plan"), widget=UnfoldAdminSelectWidget
    )
    starts_on = forms.DateField(widget=UnfoldAdminSingleDateWidget, help_text="First day on the new plan.")


class ExchangeRateForm(forms.Form):
    month = forms.CharField(help_text="YYYY-MM", widget=_text())
    base = forms.ChoiceField(choices=CURRENCIES, help_text="Currency of the sales.", widget=UnfoldAdminSelectWidget)
    quote = forms.ChoiceField(choices=CURRENCIES, help_text="Billing currency.", widget=UnfoldAdminSelectWidget)
    rate = forms.DecimalField(max_digits=20, decimal_places=10, min_value=Decimal("0.0000000001"))

    def clean_month(self) -> date:
        try:
            return parse_month(self.cleaned_data["month"])[0]
        except ValueError as error:
            raise forms.ValidationError(str(error)) from error


class BillingAccountForm(forms.ModelForm):
    class Meta:
        model = BillingAccount
        fields = [
            "tenant",
            "legal_name",
            "address",
            "email",
            "tax_id",
            "currency",
            "tax_rate_bps",
            "tax_label",
            "payment_terms_days",
        ]
        widgets = {"currency": UnfoldAdminSelectWidget(choices=CURRENCIES)}

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        tenant = data.get("tenant") or getattr(self.instance, "tenant", None)
        if tenant is not None and data.get("currency") and data.get("tax_rate_bps") is not None:
            try:
                data["currency"] = services.billing_account_clean(
                    tenant=tenant, currency=data["currency"], tax_rate_bps=data["tax_rate_bps"]
                )
            except ValidationError as error:
                raise forms.ValidationError(_errors(error)) from error
        return data


def exchange_rate_needed(month: date, base: str, quote: str) -> str:
    """A message for finance: the rate a month needs, with a link to the form that records it, filled in."""
    query = urlencode({"month": f"{month:%Y-%m}", "base": base, "quote": quote})
    return format_html(
        '{} sales of {} need a {}→{} rate to be billed: <a class="underline font-semibold" href="{}">record the '
        "rate</a>, then close the month again.",
        base,
        f"{month:%Y-%m}",
        base,
        quote,
        f"{reverse('ops:invoicing_exchangerate_add')}?{query}",
    )


def _form_page(
    model_admin: Any,
    request: HttpRequest,
    *,
    form: forms.Form,
    title: str,
    submit: str,
    intro: str = "",
    perform: Callable[[dict[str, Any]], HttpResponse] | None = None,
) -> HttpResponse:
    """The page of a form. On a valid POST, `perform` calls the service with the form's data and answers (a
    redirect); a ValidationError the service raises is shown on the form, which is given back."""
    if perform is not None and request.method == "POST" and form.is_valid():
        try:
            return perform(form.cleaned_data)
        except ValidationError as error:
            form.add_error(None, _errors(error))
    request.current_app = model_admin.admin_site.name  # links of the page resolve in this site (/ops/)
    context = {
        **model_admin.admin_site.each_context(request),
        "opts": model_admin.model._meta,
        "title": title,
        "form": form,
        "submit_label": submit,
        "intro": intro,
    }
    return TemplateResponse(request, "admin/simple_form.html", context)


# --- operator site: invoices ---------------------------------------------------------------------


def _stamp() -> str:
    """Now, as an export's file name carries it."""
    return timezone.now().strftime("%Y%m%d-%H%M")


class FinanceExports(admin.ModelAdmin):
    """An operator list that finance exports as it is filtered: its template is told whether to offer the exports,
    and an export reads the rows the list shows (finance only)."""

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        extra_context = {**(extra_context or {}), "can_export": is_finance(request)}
        return super().changelist_view(request, extra_context)

    def _filtered(self, request: HttpRequest) -> QuerySet[Any]:
        """The rows the list shows with the same filters and search (the export links carry its query)."""
        if not is_finance(request):
            raise PermissionDenied
        return self.get_changelist_instance(request).get_queryset(request)


@admin.register(Invoice, site=ops_site)
class InvoiceOpsAdmin(ReadOnlyMixin, FinanceExports, InvoiceDisplay, OpsModelAdmin):
    pdf_url_name = "ops:invoicing_invoice_pdf"
    list_display = [
        "invoice_number",
        "tenant",
        "period",
        "status_label",
        "total_display",
        "issued_on",
        "due_on",
        "pdf_link",
    ]
    list_filter = [PeriodFilter, "status", "tenant"]
    list_select_related = ["tenant"]
    search_fields = ["number", "tenant__name", "tenant__slug"]
    list_before_template = "invoicing/admin/invoice_exports.html"
    fields = INVOICE_FIELDS
    readonly_fields = INVOICE_FIELDS
    inlines = [InvoiceLineInline, CreditNoteInline]
    actions = ["finalise_selected", "mark_paid_selected"]
    actions_list = ["close_month"]
    actions_detail = ["download_pdf", "finalise_detail", "mark_paid_detail", "credit_detail", "void_detail"]

    def has_finance_permission(self, request: HttpRequest, object_id: Any = None) -> bool:
        return is_finance(request)

    def _status_allows(self, request: HttpRequest, object_id: Any, statuses: tuple[str, ...]) -> bool:
        if not is_finance(request):
            return False
        if object_id is None:
            return True
        return Invoice.objects.filter(pk=object_id, status__in=statuses).exists()

    def has_finalise_permission(self, request: HttpRequest, object_id: Any = None) -> bool:
        return self._status_allows(request, object_id, (Invoice.Status.DRAFT,))

    def has_mark_paid_permission(self, request: HttpRequest, object_id: Any = None) -> bool:
        return self._status_allows(request, object_id, (Invoice.Status.FINALISED,))

    def has_credit_permission(self, request: HttpRequest, object_id: Any = None) -> bool:
        return self._status_allows(request, object_id, (Invoice.Status.FINALISED, Invoice.Status.PAID))

    def has_void_permission(self, request: HttpRequest, object_id: Any = None) -> bool:
        return self._status_allows(request, object_id, (Invoice.Status.DRAFT, Invoice.Status.FINALISED))

    def _actor(self, request: HttpRequest) -> Actor:
        return Actor.for_request(request, source=self.audit_source)

    def get_urls(self) -> list[URLPattern]:
        view = self.admin_site.admin_view
        return [
            path("<int:invoice_id>/pdf/", view(self.pdf_view), name="invoicing_invoice_pdf"),
            path("export.xlsx", view(self.export_xlsx_view), name="invoicing_invoice_export_xlsx"),
            path("export.csv", view(self.export_csv_view), name="invoicing_invoice_export_csv"),
            path("receivables/", view(self.receivables_view), name="invoicing_invoice_receivables"),
            path(
                "receivables.<str:extension>",
                view(self.receivables_export_view),
                name="invoicing_invoice_receivables_export",
            ),
            *super().get_urls(),
        ]

    def pdf_view(self, request: HttpRequest, invoice_id: int) -> HttpResponse:
        invoice = get_object_or_404(self.get_queryset(request), pk=invoice_id)
        return _pdf(documents.invoice_pdf(invoice), documents.invoice_filename(invoice))

    def export_xlsx_view(self, request: HttpRequest) -> HttpResponse:
        invoices = self._filtered(request)
        stamp = _stamp()
        return _download(exports.invoices_xlsx(invoices), XLSX, f"invoices-{stamp}.xlsx")

    def export_csv_view(self, request: HttpRequest) -> HttpResponse:
        params = request.GET.copy()  # the list's own filters, without ours
        table: str = params.pop("table", ["invoices"])[0]
        request.GET = params  # type: ignore[assignment]
        if table not in ("invoices", "lines", "credit_notes"):
            table = "invoices"
        invoices = self._filtered(request)
        stamp = _stamp()
        body = exports.invoices_csv(invoices, table=table)
        return _download(body, "text/csv; charset=utf-8", f"{table.replace('_', '-')}-{stamp}.csv")

    def _receivables(self, request: HttpRequest) -> tuple[list[selectors.Receivable], str, list[str]]:
        """The receivables (of one currency with `?currency=`), the currency, and every currency owed in."""
        if not is_finance(request):
            raise PermissionDenied
        owed = selectors.receivables(today=timezone.localdate())
        currencies = sorted({row.currency for row in owed})
        currency = request.GET.get("currency", "")
        currency = currency if currency in currencies else ""
        return [row for row in owed if row.currency == currency or not currency], currency, currencies

    def receivables_view(self, request: HttpRequest) -> HttpResponse:
        """Finance: issued invoices not yet paid, per licensee and currency, by age since issue."""
        rows, currency, currencies = self._receivables(request)
        totals = selectors.receivables_totals(rows)
        invoices = reverse("ops:invoicing_invoice_changelist")
        sections = [
            {
                "currency": code,
                "rows": [
                    {
                        "row": row,
                        "url": f"{invoices}?tenant__id__exact={row.tenant_id}&status__exact=finalised",
                        "by_age": [format_money(amount, code) for amount in row.by_age],
                        "total": format_money(row.total, code),
                        "overdue": format_money(row.overdue, code),
                    }
                    for row in rows
                    if row.currency == code
                ],
                "invoices": total.invoices,
                "by_age": [format_money(amount, code) for amount in total.by_age],
                "total": format_money(total.total, code),
                "overdue": format_money(total.overdue, code),
            }
            for code, total in totals.items()
        ]
        request.current_app = self.admin_site.name
        context = {
            **self.admin_site.each_context(request),
            "opts": Invoice._meta,
            "title": "Receivables",
            "sections": sections,
            "buckets": [label for _, _, label in selectors.AGE_BUCKETS],
            "today": timezone.localdate(),
            "currency": currency,
            "currencies": currencies,
            "query": f"?currency={currency}" if currency else "",
        }
        return TemplateResponse(request, "invoicing/admin/receivables.html", context)

    def receivables_export_view(self, request: HttpRequest, extension: str) -> HttpResponse:
        rows, currency, _ = self._receivables(request)
        table = exports.receivables_table(rows, selectors.receivables_totals(rows))
        name = f"receivables-{timezone.localdate():%Y%m%d}{'-' + currency if currency else ''}"
        if extension == "csv":
            return _download(exports.to_csv(table), "text/csv; charset=utf-8", f"{name}.csv")
        if extension == "xlsx":
            return _download(exports.to_xlsx([("Receivables", table)]), XLSX, f"{name}.xlsx")
        raise Http404("Receivables export as .csv or .xlsx")

    @action(description="Close a month", url_path="close-month", icon="event_available", permissions=["finance"])
    def close_month(self, request: HttpRequest) -> HttpResponse:
        initial = {"month": f"{previous_month(timezone.localdate())[0]:%Y-%m}", "recompute_usage": True}
        form = CloseMonthForm(request.POST or None, initial=initial)
        if request.method == "POST" and form.is_valid():
            result = services.month_close(
                actor=self._actor(request),
                period_start=form.cleaned_data["month"],
                recompute_usage=form.cleaned_data["recompute_usage"],
            )
            summary = result.as_dict()
            text = (
                f"Closed {summary['period']}: {summary['created']} draft(s) created, {summary['updated']} updated, "
                f"{summary['unchanged']} unchanged, {summary['already_issued']} already issued."
            )
            self.message_user(request, text, messages.SUCCESS)
            for slug, reason in result.failed.items():
                self.message_user(request, f"{slug}: not billed — {reason}", messages.ERROR)
            for base, quote in selectors.missing_exchange_rates(month=form.cleaned_data["month"]):
                self.message_user(
                    request, exchange_rate_needed(form.cleaned_data["month"], base, quote), messages.ERROR
                )
            changelist = reverse("ops:invoicing_invoice_changelist")
            return HttpResponseRedirect(f"{changelist}?period={summary['period']}")
        return _form_page(
            self,
            request,
            form=form,
            title="Close a month",
            submit="Close month",
            intro="Builds a draft invoice for every tenant on a plan that month. Closing again brings the drafts up "
            "to date and leaves finalised invoices alone.",
        )

    @admin.action(description="Finalise selected drafts", permissions=["finance"])
    def finalise_selected(self, request: HttpRequest, queryset: QuerySet[Invoice]) -> None:
        drafts = list(queryset.filter(status=Invoice.Status.DRAFT))
        if not drafts:
            self.message_user(request, "No drafts selected.", messages.WARNING)
            return
        done = services.invoices_finalise(actor=self._actor(request), invoices=drafts)
        self.message_user(request, f"Finalised {len(done)}: {done[0].number} to {done[-1].number}.", messages.SUCCESS)

    @admin.action(description="Mark selected as paid", permissions=["finance"])
    def mark_paid_selected(self, request: HttpRequest, queryset: QuerySet[Invoice]) -> None:
        actor = self._actor(request)
        paid = [
            services.invoice_mark_paid(actor=actor, invoice=i) for i in queryset.filter(status=Invoice.Status.FINALISED)
        ]
        self.message_user(request, f"Marked {len(paid)} invoice(s) paid.", messages.SUCCESS)

    def _back(self, object_id: Any) -> HttpResponse:
        return HttpResponseRedirect(reverse("ops:invoicing_invoice_change", args=[object_id]))

    @action(description="Download PDF", url_path="download-pdf", icon="picture_as_pdf")
    def download_pdf(self, request: HttpRequest, object_id: Any) -> HttpResponse:
        return HttpResponseRedirect(reverse("ops:invoicing_invoice_pdf", args=[object_id]))

    @action(description="Finalise", url_path="finalise", icon="verified", permissions=["finalise"])
    def finalise_detail(self, request: HttpRequest, object_id: Any) -> HttpResponse:
        invoice = get_object_or_404(Invoice.objects.all(), pk=object_id)
        try:
            done = services.invoice_finalise(actor=self._actor(request), invoice=invoice)
        except ValidationError as error:
            self.message_user(request, _errors(error), messages.ERROR)
        else:
            self.message_user(request, f"Finalised as {done.number}, due {done.due_on}.", messages.SUCCESS)
        return self._back(object_id)

    @action(description="Mark paid", url_path="mark-paid", icon="payments", permissions=["mark_paid"])
    def mark_paid_detail(self, request: HttpRequest, object_id: Any) -> HttpResponse:
        invoice = get_object_or_404(Invoice.objects.all(), pk=object_id)
        try:
            services.invoice_mark_paid(actor=self._actor(request), invoice=invoice)
        except ValidationError as error:
            self.message_user(request, _errors(error), messages.ERROR)
        else:
            self.message_user(request, "Marked paid.", messages.SUCCESS)
        return self._back(object_id)

    @action(description="Issue a credit note", url_path="credit", icon="undo", permissions=["credit"])
    def credit_detail(self, request: HttpRequest, object_id: Any) -> HttpResponse:
        invoice = get_object_or_404(Invoice.objects.all(), pk=object_id)

        def issue(data: dict[str, Any]) -> HttpResponse:
            note = services.credit_note_issue(
                actor=self._actor(request),
                invoice=invoice,
                reason=data["reason"],
                lines=[
                    services.CreditLineInput(
                        description=data["description"], amount=data["amount"], invoice_line_id=data["invoice_line"]
                    )
                ],
            )
            text = f"Credit note {note.number} issued: {format_money(note.total, note.currency)}."
            self.message_user(request, text, messages.SUCCESS)
            return self._back(object_id)

        return _form_page(
            self,
            request,
            form=CreditNoteForm(request.POST or None, invoice=invoice),
            perform=issue,
            title=f"Credit note for {invoice}",
            submit="Issue credit note",
            intro="The invoice stays as it was; the credit note gets its own number and reduces what is owed.",
        )

    @action(description="Void", url_path="void", icon="block", permissions=["void"])
    def void_detail(self, request: HttpRequest, object_id: Any) -> HttpResponse:
        invoice = get_object_or_404(Invoice.objects.all(), pk=object_id)

        def void(data: dict[str, Any]) -> HttpResponse:
            services.invoice_void(actor=self._actor(request), invoice=invoice, reason=data["reason"])
            self.message_user(request, f"{invoice} is void.", messages.WARNING)
            return self._back(object_id)

        return _form_page(
            self,
            request,
            form=VoidForm(request.POST or None),
            perform=void,
            title=f"Void {invoice}",
            submit="Void invoice",
            intro="A void draft is discarded; a void invoice keeps its number. The next close bills the month again.",
        )


CREDIT_NOTE_FIELDS = ("number", "invoice", "issued_on", "reason", "subtotal_display", "tax_display", "total_display")


class CreditNoteDisplay(MoneyDisplay, admin.ModelAdmin):
    """A credit note's money and its PDF (`<id>/pdf/`, for whoever may view it), on either site."""

    def get_urls(self) -> list[URLPattern]:
        pdf = path("<int:note_id>/pdf/", self.admin_site.admin_view(self.pdf_view), name="invoicing_creditnote_pdf")
        return [pdf, *super().get_urls()]

    @display(description="PDF")
    def pdf_link(self, note: CreditNote) -> str:
        url = reverse(f"{self.admin_site.name}:invoicing_creditnote_pdf", args=[note.pk])
        return format_html('<a class="text-primary-600 underline" href="{}">PDF</a>', url)

    def pdf_view(self, request: HttpRequest, note_id: int) -> HttpResponse:
        if not self.has_view_permission(request):
            raise PermissionDenied
        note = get_object_or_404(CreditNote.objects.select_related("invoice"), pk=note_id)
        return _pdf(documents.credit_note_pdf(note), documents.credit_note_filename(note))


@admin.register(CreditNote, site=ops_site)
class CreditNoteOpsAdmin(ReadOnlyMixin, CreditNoteDisplay, OpsModelAdmin):
    list_display = ["number", "tenant", "invoice", "issued_on", "reason", "total_display", "pdf_link"]
    list_filter = ["tenant"]
    list_select_related = ["tenant", "invoice"]
    search_fields = ["number", "invoice__number", "tenant__name"]
    fields = readonly_fields = ("tenant", *CREDIT_NOTE_FIELDS)


# --- operator site: plans, accounts, rates, usage ------------------------------------------------


def promises_in_words(version: PlanVersion) -> str:
    return calc_promises_in_words(services.promises_of(version)) or "—"


class PlanVersionInline(ReadOnlyMixin, TabularInline):
    model = PlanVersion
    extra = 0
    fields = [
        "number",
        "currency",
        "store_fee",
        "visit_fee",
        "revenue_share_bps",
        "monthly_minimum",
        "promises_display",
        "created_at",
    ]
    readonly_fields = fields

    @display(description="Service promises")
    def promises_display(self, version: PlanVersion) -> str:
        return promises_in_words(version)


@admin.register(Plan, site=ops_site)
class PlanOpsAdmin(OpsModelAdmin):
    list_display = ["name", "code", "latest_version", "event_retention_days"]
    search_fields = ["name", "code"]
    inlines = [PlanVersionInline]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return ["code"] if obj is not None else []

    @display(description="Latest version")
    def latest_version(self, plan: Plan) -> str:
        version = plan.versions.order_by("-number").first()
        return str(version) if version else "—"


@admin.register(PlanVersion, site=ops_site)
class PlanVersionOpsAdmin(OpsModelAdmin):
    list_display = [
        "__str__",
        "plan",
        "store_fee_display",
        "visit_fee_display",
        "share",
        "minimum_display",
        "promises_display",
        "created_at",
        "next_version_link",
    ]
    list_filter = ["plan", "currency"]
    readonly_fields = [
        "plan",
        "number",
        "currency",
        "store_fee",
        "visit_fee",
        "revenue_share_bps",
        "monthly_minimum",
        "promises_display",
        "note",
        "created_at",
        "created_by",
        "next_version_link",
    ]

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    store_fee_display = _money_column("store_fee", "Store fee / month")
    visit_fee_display = _money_column("visit_fee", "Visit fee")

    @display(description="Revenue share")
    def share(self, version: PlanVersion) -> str:
        return f"{Decimal(version.revenue_share_bps) / 100:.2f} %"

    minimum_display = _money_column("monthly_minimum", "Monthly minimum")

    @display(description="Service promises")
    def promises_display(self, version: PlanVersion) -> str:
        return promises_in_words(version)

    @display(description="")
    def next_version_link(self, version: PlanVersion) -> str:
        url = f"{reverse('ops:invoicing_planversion_add')}?{urlencode({'from': version.pk})}"
        return format_html('<a class="text-primary-600 underline" href="{}">New version from this one</a>', url)

    def add_view(self, request: HttpRequest, form_url: str = "", extra_context: Any = None) -> HttpResponse:
        if not self.has_add_permission(request):
            raise PermissionDenied
        source = request.GET.get("from", "")
        start = PlanVersion.objects.filter(pk=int(source)).first() if source.isdigit() else None
        initial = PlanVersionForm.initial_from(start) if start else {"plan": request.GET.get("plan")}

        def create(data: dict[str, Any]) -> HttpResponse:
            version = services.plan_version_create(
                actor=Actor.for_request(request, source=self.audit_source),
                plan=data["plan"],
                currency=data["currency"],
                store_fee=data["store_fee"],
                visit_fee=data["visit_fee"],
                revenue_share_bps=data["revenue_share_bps"],
                monthly_minimum=data["monthly_minimum"],
                promises=data["promises"],
                note=data["note"],
            )
            self.message_user(request, f"{version} created.", messages.SUCCESS)
            return HttpResponseRedirect(reverse("ops:invoicing_planversion_changelist"))

        return _form_page(
            self,
            request,
            form=PlanVersionForm(request.POST or None, initial=initial),
            perform=create,
            title="New plan version",
            submit="Create version",
            intro="Versions never change: tenants move to the new prices and promises when a plan change says so. "
            "A month that misses a promise gets a service credit on its invoice when the month is closed.",
        )


@admin.register(PlanAssignment, site=ops_site)
class PlanAssignmentOpsAdmin(OpsModelAdmin):
    list_display = ["tenant", "plan_version", "starts_on", "ends_on", "created_by"]
    list_filter = ["plan_version__plan", "tenant"]
    list_select_related = ["tenant", "plan_version__plan"]
    search_fields = ["tenant__name", "tenant__slug"]
    readonly_fields = ["tenant", "plan_version", "starts_on", "ends_on", "created_at", "created_by"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return _in_groups(request, OPERATOR_GROUP, FINANCE_GROUP)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def add_view(self, request: HttpRequest, form_url: str = "", extra_context: Any = None) -> HttpResponse:
        if not self.has_add_permission(request):
            raise PermissionDenied

        def assign(data: dict[str, Any]) -> HttpResponse:
            assignment = services.plan_assign(
                actor=Actor.for_request(request, source=self.audit_source),
                tenant=data["tenant"],
                plan_version=data["plan_version"],
                starts_on=data["starts_on"],
            )
            self.message_user(request, f"{assignment.tenant}: {assignment}.", messages.SUCCESS)
            return HttpResponseRedirect(reverse("ops:invoicing_planassignment_changelist"))

        return _form_page(
            self,
            request,
            form=PlanAssignForm(request.POST or None, initial={"tenant": request.GET.get("tenant")}),
            perform=assign,
            title="Change a tenant's plan",
            submit="Change plan",
            intro="The plan in force ends the day before; the month is prorated by day.",
        )


@admin.register(BillingAccount, site=ops_site)
class BillingAccountOpsAdmin(OpsModelAdmin):
    form = BillingAccountForm
    list_display = ["legal_name", "tenant", "currency", "tax_label", "tax_rate_bps", "payment_terms_days", "email"]
    list_filter = ["currency"]
    search_fields = ["legal_name", "tenant__name", "tenant__slug", "tax_id"]
    autocomplete_fields = ["tenant"]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return ["tenant"] if obj is not None else []

    def has_add_permission(self, request: HttpRequest) -> bool:
        return _in_groups(request, OPERATOR_GROUP, FINANCE_GROUP)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return _in_groups(request, OPERATOR_GROUP, FINANCE_GROUP)

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        obj.updated_at = timezone.now()
        super().save_model(request, obj, form, change)


@admin.register(ExchangeRate, site=ops_site)
class ExchangeRateOpsAdmin(OpsModelAdmin):
    list_display = ["month", "base", "quote", "rate"]
    list_filter = ["base", "quote"]
    readonly_fields = ["month", "base", "quote", "rate"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return is_finance(request)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def add_view(self, request: HttpRequest, form_url: str = "", extra_context: Any = None) -> HttpResponse:
        if not self.has_add_permission(request):
            raise PermissionDenied
        initial = {key: request.GET[key] for key in ("month", "base", "quote") if key in request.GET}

        def set_rate(data: dict[str, Any]) -> HttpResponse:
            services.exchange_rate_set(
                actor=Actor.for_request(request, source=self.audit_source),
                month=data["month"],
                base=data["base"],
                quote=data["quote"],
                rate=data["rate"],
            )
            return HttpResponseRedirect(reverse("ops:invoicing_exchangerate_changelist"))

        return _form_page(
            self,
            request,
            form=ExchangeRateForm(request.POST or None, initial=initial),
            perform=set_rate,
            title="Exchange rate of a month",
            submit="Save rate",
            intro="Sales in another currency than the tenant's billing currency count at this rate for the month.",
        )


class UsageDisplay:
    gross_display = _money_column("gross_sales", "Gross sales")
    refunds_display = _money_column("refunds", "Refunds")


USAGE_FIELDS = ["day", "store", *USAGE_FIGURES]  # a day's figures, as the usage job computes them


@admin.register(DailyUsage, site=ops_site)
class DailyUsageOpsAdmin(ReadOnlyMixin, FinanceExports, UsageDisplay, OpsModelAdmin):
    """Read-only: usage is derived from visits and payments (`close_month`, or every 10 minutes)."""

    list_display = [
        "day",
        "tenant",
        "store",
        "store_active",
        "visits_settled",
        "gross_display",
        "refunds_display",
        "sent_to_review",
    ]
    list_filter = [UsagePeriodFilter, "tenant"]
    list_select_related = ["tenant", "store"]
    search_fields = ["tenant__name", "tenant__slug", "store__code"]
    readonly_fields = ["tenant", *USAGE_FIELDS]
    list_before_template = "invoicing/admin/usage_exports.html"

    def get_urls(self) -> list[URLPattern]:
        view = self.admin_site.admin_view
        return [
            path("export.xlsx", view(self.export_xlsx_view), name="invoicing_dailyusage_export_xlsx"),
            path("export.csv", view(self.export_csv_view), name="invoicing_dailyusage_export_csv"),
            *super().get_urls(),
        ]

    def export_xlsx_view(self, request: HttpRequest) -> HttpResponse:
        stamp = _stamp()
        return _download(exports.usage_xlsx(self._filtered(request)), XLSX, f"usage-{stamp}.xlsx")

    def export_csv_view(self, request: HttpRequest) -> HttpResponse:
        params = request.GET.copy()  # the list's own filters, without ours
        by_day = params.pop("by", [""])[0] == "day"
        request.GET = params  # type: ignore[assignment]
        stamp = _stamp()
        body = exports.usage_csv(self._filtered(request), by_day=by_day)
        return _download(body, "text/csv; charset=utf-8", f"usage-{'daily-' if by_day else ''}{stamp}.csv")


@admin.register(MonthClose, site=ops_site)
class MonthCloseOpsAdmin(ReadOnlyMixin, OpsModelAdmin):
    list_display = ["period_start", "closed_at", "runs", "outcome"]
    readonly_fields = ["period_start", "closed_at", "runs", "outcome"]


# --- licensee site: the tenant's own invoices ------------------------------------------------------


class ManagersReadOnly(ReadOnlyMixin):
    """Billing documents in /admin/: managers of the tenant read them; nobody writes."""

    def _is_manager(self, request: HttpRequest) -> bool:
        membership = getattr(request, "membership", None)
        return membership is not None and membership.role == Membership.Role.MANAGER

    def has_module_permission(self, request: HttpRequest) -> bool:
        return self._is_manager(request)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._is_manager(request)


@admin.register(Invoice, site=licensee_site)
class InvoiceAdmin(ManagersReadOnly, InvoiceDisplay, TenantModelAdmin):
    pdf_url_name = "admin:invoicing_invoice_pdf"
    list_display = ["invoice_number", "period", "status_label", "total_display", "issued_on", "due_on", "pdf_link"]
    list_filter = [PeriodFilter, "status"]
    search_fields = ["number"]
    fields = [f for f in INVOICE_FIELDS if f not in ("tenant", "finalised_by")]
    readonly_fields = fields
    inlines = [InvoiceLineInline, CreditNoteInline]
    actions_detail = ["download_pdf"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Invoice]:
        return super().get_queryset(request).exclude(status=Invoice.Status.DRAFT)

    def get_urls(self) -> list[URLPattern]:
        pdf = path("<int:invoice_id>/pdf/", self.admin_site.admin_view(self.pdf_view), name="invoicing_invoice_pdf")
        return [pdf, *super().get_urls()]

    def pdf_view(self, request: HttpRequest, invoice_id: int) -> HttpResponse:
        if not self.has_view_permission(request):
            raise PermissionDenied
        # Inside the member's tenant scope: another tenant's invoice, or a draft, is not found (404).
        invoice = get_object_or_404(self.get_queryset(request), pk=invoice_id)
        return _pdf(documents.invoice_pdf(invoice), documents.invoice_filename(invoice))

    @action(description="Download PDF", url_path="download-pdf", icon="picture_as_pdf")
    def download_pdf(self, request: HttpRequest, object_id: Any) -> HttpResponse:
        return HttpResponseRedirect(reverse("admin:invoicing_invoice_pdf", args=[object_id]))


@admin.register(CreditNote, site=licensee_site)
class CreditNoteAdmin(ManagersReadOnly, CreditNoteDisplay, TenantModelAdmin):
    list_display = ["number", "invoice", "issued_on", "reason", "total_display", "pdf_link"]
    list_select_related = ["invoice"]
    fields = readonly_fields = CREDIT_NOTE_FIELDS
