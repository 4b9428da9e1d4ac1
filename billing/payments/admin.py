"""Payments in the store admin: shoppers and their balances, every money movement, refunds, Stripe settings."""

from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Exists, OuterRef, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from unfold.decorators import display

from billing.payments import accounts, erasure, movements, refunds, shoppers, standing
from billing.payments.gateway import GatewayUnavailable
from billing.payments.models import PaymentAttempt, PaymentSettings, Shopper, StripeEvent
from catalog.currencies import format_money, to_minor
from core.admin import ReadOnlyMixin, TenantModelAdmin
from core.admin_sites import licensee_site
from tenants.audit import Actor
from tenants.models import Membership
from visits.models import Visit, VisitLine
from visits.states import MOVEMENT_KINDS, movement_in_words


@admin.register(Shopper, site=licensee_site)
class ShopperAdmin(ReadOnlyMixin, TenantModelAdmin):
    list_display = ["reference", "email", "card", "token_prefix", "entry", "balance", "created_at"]
    search_fields = ["external_ref", "email", "token_prefix", "card_last4"]
    list_filter = [("revoked_at", admin.EmptyFieldListFilter), ("erased_at", admin.EmptyFieldListFilter)]
    readonly_fields = [
        "external_ref", "email", "stripe_customer_id", "payment_method_id", "card_brand", "card_last4",
        "token_prefix", "revoked_at", "erased_at", "created_at", "updated_at",
    ]  # fmt: skip
    actions = ["revoke_tokens", "erase_personal_data"]
    erase_template = "admin/payments/erase_shoppers.html"

    @display(description="Shopper", ordering="external_ref")
    def reference(self, shopper: Shopper) -> str:
        return f"Erased shopper #{shopper.pk}" if shopper.is_erased else shopper.external_ref

    @display(description="Card")
    def card(self, shopper: Shopper) -> str:
        return f"{shopper.card_brand} •••• {shopper.card_last4}" if shopper.card_last4 else "—"

    @display(
        description="Entry", label={"allowed": "success", "revoked": "danger", "owes": "warning", "erased": "info"}
    )
    def entry(self, shopper: Shopper) -> str:
        if shopper.is_erased:
            return "erased"
        if shopper.is_revoked:
            return "revoked"
        return "owes" if standing.open_balance(shopper=shopper) else "allowed"

    @display(description="Open balance")
    def balance(self, shopper: Shopper) -> str:
        owing = list(standing.visits_owing(shopper))
        if not owing:
            return "—"
        return format_money(sum(v.balance_due for v in owing), owing[0].currency)

    @admin.action(description="Revoke the entry tokens of the selected shoppers")
    def revoke_tokens(self, request: HttpRequest, queryset: QuerySet[Shopper]) -> None:
        if not self._may_write(request):
            raise PermissionDenied
        actor = Actor.for_request(request, source="admin")
        for shopper in queryset:
            shoppers.shopper_revoke(actor=actor, shopper=shopper)
        self.message_user(request, f"Revoked {queryset.count()} entry token(s).", messages.SUCCESS)

    @admin.action(description="Erase the personal data of the selected shoppers")
    def erase_personal_data(self, request: HttpRequest, queryset: QuerySet[Shopper]) -> HttpResponse | None:
        """Asks for confirmation first (erasure cannot be undone), then erases each shopper or says why not."""
        if not self._is_manager(request):
            raise PermissionDenied
        shoppers = list(queryset.filter(erased_at=None).order_by("external_ref"))
        if request.POST.get("confirmed") != "yes":
            context = {
                **self.admin_site.each_context(request),
                "title": "Erase shoppers' personal data",
                "shoppers": shoppers,
                "opts": Shopper._meta,
            }
            return TemplateResponse(request, self.erase_template, context)
        actor = Actor.for_request(request, source="admin")
        erased = 0
        for shopper in shoppers:
            try:
                erasure.shopper_erase(actor=actor, shopper=shopper)
            except erasure.ErasureRefused as refused:
                self.message_user(request, f"{shopper.external_ref} was not erased: {refused}", messages.ERROR)
            except GatewayUnavailable:
                self.message_user(
                    request, f"{shopper.external_ref} was not erased: Stripe could not be reached; try again shortly.",
                    messages.ERROR,
                )  # fmt: skip
            else:
                erased += 1
        if erased:
            how_many = "1 shopper" if erased == 1 else f"{erased} shoppers"
            self.message_user(request, f"Erased the personal data of {how_many}.", messages.SUCCESS)
        return None

    def _is_manager(self, request: HttpRequest) -> bool:
        return self._role(request) == Membership.Role.MANAGER

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        found = super().get_actions(request)
        if not self._may_write(request):
            found.pop("revoke_tokens", None)
        if not self._is_manager(request):
            found.pop("erase_personal_data", None)
        return found


FIELD_CLASSES = "border border-base-300 rounded-md px-3 py-2 w-full max-w-xl bg-white dark:bg-base-900"


class RefundForm(forms.Form):
    reason_code = forms.ChoiceField(
        choices=[(code, words) for code, words in refunds.REFUND_REASONS.items() if code != refunds.DISPUTE_REASON],
        label="Reason",
        widget=forms.Select(attrs={"class": FIELD_CLASSES}),
    )
    amount = forms.DecimalField(
        required=False,
        min_value=0,
        decimal_places=2,
        help_text="In the currency's major unit, e.g. 2.50; leave empty to refund the lines counted above.",
        widget=forms.NumberInput(attrs={"class": FIELD_CLASSES, "step": "0.01", "placeholder": "0.00"}),
    )
    note = forms.CharField(
        required=False, max_length=500, widget=forms.Textarea(attrs={"rows": 2, "class": FIELD_CLASSES})
    )


class MovementFilter(admin.SimpleListFilter):
    """The kind of movement, in the words of the list's Movement column."""

    title = "movement"
    parameter_name = "purpose"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [(value, MOVEMENT_KINDS[value]) for value in PaymentAttempt.Purpose.values]

    def queryset(self, request: HttpRequest, queryset: QuerySet[PaymentAttempt]) -> QuerySet[PaymentAttempt]:
        return queryset.filter(purpose=self.value()) if self.value() else queryset


@admin.register(PaymentAttempt, site=licensee_site)
class PaymentAttemptAdmin(ReadOnlyMixin, TenantModelAdmin):
    list_display = ["created_at", "visit_link", "movement", "state_label", "money", "stripe_id", "failure_message"]
    list_filter = [MovementFilter, "state", "reason_code"]
    search_fields = ["stripe_id", "payment_intent_id", "visit__session", "shopper__external_ref"]
    list_select_related = ["visit", "visit__store"]
    readonly_fields = [f.name for f in PaymentAttempt._meta.fields]
    refund_template = "admin/payments/refund.html"

    def get_queryset(self, request: HttpRequest) -> QuerySet[PaymentAttempt]:
        earlier_capture = PaymentAttempt.objects.filter(
            visit=OuterRef("visit"), purpose=PaymentAttempt.Purpose.CAPTURE, state=PaymentAttempt.State.SUCCEEDED
        ).filter(pk__lt=OuterRef("pk"))
        return super().get_queryset(request).annotate(after_capture=Exists(earlier_capture))

    @display(description="Movement", ordering="purpose")
    def movement(self, attempt: PaymentAttempt) -> str:
        return movement_in_words(
            purpose=attempt.purpose,
            after_capture=bool(getattr(attempt, "after_capture", False)),
            staff_refund=bool(attempt.reason_code),
        )

    @display(description="Visit")
    def visit_link(self, attempt: PaymentAttempt) -> str:
        return f"{attempt.visit.store.code} / {attempt.visit.session}"

    @display(description="State", label={"succeeded": "success", "failed": "danger", "processing": "warning"})
    def state_label(self, attempt: PaymentAttempt) -> str:
        return attempt.state

    @display(description="Amount")
    def money(self, attempt: PaymentAttempt) -> str:
        return format_money(attempt.amount, attempt.currency)

    def get_urls(self) -> list[URLPattern]:
        own = [
            path("refund/<int:visit_id>/", self.admin_site.admin_view(self.refund_view), name="payments_visit_refund"),
            path("retry/<int:visit_id>/", self.admin_site.admin_view(self.retry_view), name="payments_visit_retry"),
        ]
        return own + super().get_urls()

    def retry_view(self, request: HttpRequest, visit_id: int) -> HttpResponse:
        if request.method != "POST" or not self._may_write(request):
            raise PermissionDenied
        visit = get_object_or_404(Visit.objects, pk=visit_id, status=Visit.Status.PAYMENT_FAILED)
        movements.payment_retry(actor=Actor.for_request(request, source="admin"), visit=visit)
        self.message_user(request, f"Payment of visit {visit.session} retried now.", messages.SUCCESS)
        return HttpResponseRedirect(reverse("admin:visits_visit_change", args=[visit.pk]))

    def refund_view(self, request: HttpRequest, visit_id: int) -> HttpResponse:
        if not self._may_write(request):
            raise PermissionDenied
        visit = get_object_or_404(Visit.objects.select_related("store"), pk=visit_id)
        lines = list(VisitLine.objects.filter(visit=visit).order_by("sku"))
        form = RefundForm(request.POST or None)
        problems: list[str] = []
        if request.method == "POST" and form.is_valid():
            try:
                self._refund(request, visit, form.cleaned_data, lines)
            except ValidationError as error:
                problems = list(error.messages)
            else:
                self.message_user(request, f"Refund of visit {visit.session} sent to Stripe.", messages.SUCCESS)
                return HttpResponseRedirect(reverse("admin:visits_visit_change", args=[visit.pk]))
        context = {
            **self.admin_site.each_context(request),
            "title": f"Refund visit {visit.session}",
            "subtitle": visit.store.name,
            "visit": visit,
            "form": form,
            "lines": [
                {
                    "line": line,
                    "unit_price": format_money(line.unit_price, visit.currency),
                    "amount": format_money(line.amount, visit.currency),
                    "tax": format_money(line.tax, visit.currency),
                }
                for line in lines
            ],
            "subtotal": format_money(visit.subtotal, visit.currency),
            "tax": format_money(visit.tax, visit.currency),
            "total": format_money(visit.total, visit.currency),
            "problems": problems,
            "paid": format_money(visit.paid, visit.currency),
            "refunded": format_money(visit.refunded, visit.currency),
            "refundable": format_money(visit.paid - visit.refunded, visit.currency),
            "opts": PaymentAttempt._meta,
        }
        return TemplateResponse(request, self.refund_template, context, status=400 if problems else 200)

    @staticmethod
    def _refund(request: HttpRequest, visit: Visit, data: dict[str, Any], lines: list[VisitLine]) -> None:
        per_line = []
        for line in lines:
            qty = request.POST.get(f"qty-{line.sku}", "").strip()
            if qty and qty != "0":
                if not qty.isdigit():
                    raise ValidationError(f"{line.sku}: give a whole number of items.")
                per_line.append({"sku": line.sku, "qty": int(qty)})
        amount = data.get("amount")
        if amount is None and not per_line:
            raise ValidationError("Give an amount, or how many of which lines to refund.")
        refunds.visit_refund(
            actor=Actor.for_request(request, source="admin"),
            visit=visit,
            reason_code=data["reason_code"],
            amount=None if per_line or amount is None else to_minor(amount, visit.currency),
            lines=per_line or None,
            note=data.get("note", ""),
        )


@admin.register(StripeEvent, site=licensee_site)
class StripeEventAdmin(ReadOnlyMixin, TenantModelAdmin):
    list_display = ["received_at", "type", "stripe_event_id", "processed_at", "outcome"]
    list_filter = ["type"]
    search_fields = ["stripe_event_id"]
    readonly_fields = ["stripe_event_id", "type", "payload", "received_at", "processed_at", "outcome"]


class PaymentSettingsForm(forms.ModelForm):
    secret_key = forms.CharField(
        required=False,
        widget=forms.PasswordInput(render_value=False),
        help_text="Your Stripe secret key (sk_live_… or sk_test_…); stored encrypted. Empty keeps the current one.",
    )
    webhook_secret = forms.CharField(
        required=False,
        widget=forms.PasswordInput(render_value=False),
        help_text="The signing secret of the webhook endpoint you created in Stripe (whsec_…).",
    )

    class Meta:
        model = PaymentSettings
        fields = ["receipt_from_email"]

    def clean_secret_key(self) -> str:
        value = self.cleaned_data["secret_key"].strip()
        if value and not value.startswith(("sk_", "rk_")):
            raise ValidationError("A Stripe secret key starts with sk_ (or rk_ for a restricted key).")
        return value

    def clean_webhook_secret(self) -> str:
        value = self.cleaned_data["webhook_secret"].strip()
        if value and not value.startswith("whsec_"):
            raise ValidationError("A Stripe webhook signing secret starts with whsec_.")
        return value


@admin.register(PaymentSettings, site=licensee_site)
class PaymentSettingsAdmin(TenantModelAdmin):
    manager_only = True
    form = PaymentSettingsForm
    list_display = ["__str__", "has_secret_key", "has_webhook_secret", "receipt_from_email", "updated_at"]
    readonly_fields = ["stripe_webhook_url"]

    @display(description="Webhook URL to give Stripe")
    def stripe_webhook_url(self, account: PaymentSettings) -> str:
        slug = account.tenant.slug if account.pk else self._tenant_slug
        return f"{settings.PUBLIC_BASE_URL.rstrip('/')}/stripe/webhook/{slug}"

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any) -> Any:
        self._tenant_slug = request.tenant.slug  # type: ignore[attr-defined]
        return super().get_form(request, obj, change, **kwargs)

    @display(description="Own Stripe key", boolean=True)
    def has_secret_key(self, account: PaymentSettings) -> bool:
        return bool(account.secret_key_encrypted)

    @display(description="Webhook secret", boolean=True)
    def has_webhook_secret(self, account: PaymentSettings) -> bool:
        return bool(account.webhook_secret_encrypted)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return super().has_add_permission(request) and not PaymentSettings.objects.exists()

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        account = accounts.payment_settings_set(
            actor=Actor.for_request(request, source="admin"),
            tenant=request.tenant,  # type: ignore[attr-defined]
            secret_key=form.cleaned_data["secret_key"] or None,
            webhook_secret=form.cleaned_data["webhook_secret"] or None,
        )
        account.receipt_from_email = form.cleaned_data["receipt_from_email"]
        account.save(update_fields=["receipt_from_email"])
        obj.pk = account.pk
