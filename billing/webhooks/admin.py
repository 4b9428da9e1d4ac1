"""Webhook endpoints and their delivery log, in the store admin (and read-only in /ops/).

Managers register endpoints, see and rotate the signing secret, and send a test event; everyone in the
tenant reads the delivery log; managers and staff send a delivery again ("Retry now"). Another tenant's
endpoint or delivery answers 404, like a missing one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString
from unfold.decorators import action, display
from unfold.widgets import UnfoldAdminCheckboxSelectMultipleWidget, UnfoldAdminTextInputWidget

from billing.webhooks import services
from billing.webhooks.models import EventType, WebhookDelivery, WebhookEndpoint
from core.admin import OpsModelAdmin, ReadOnlyMixin, TenantModelAdmin
from core.admin_sites import licensee_site, ops_site
from tenants.audit import Actor
from tenants.models import Membership

STATE_LABELS = {"pending": "warning", "delivered": "success", "failed": "danger"}
RECENT_DELIVERIES = 10


class MissingIs404:
    """Another tenant's object (invisible in the scope) answers 404 like a missing one, instead of a redirect."""

    def _get_obj_does_not_exist_redirect(self, request: HttpRequest, opts: Any, object_id: str) -> HttpResponse:
        raise Http404(f"No {opts.verbose_name} with the id {object_id!r}.")

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        # Look the object up before the permission checks, so that a POST to a read-only page of another
        # tenant's object is a 404 too, not a 403 that would tell it exists.
        admin_self: Any = self
        if admin_self.get_object(request, unquote(object_id)) is None:
            raise Http404(f"No {admin_self.opts.verbose_name} with the id {object_id!r}.")
        response: HttpResponse = super().change_view(request, object_id, form_url, extra_context)  # type: ignore[misc]
        return response


class ConfirmForm(forms.Form):
    """No fields: the POST that confirms an action (a link, a GET, never changes anything)."""


@dataclass(frozen=True)
class Prompt:
    """What the confirmation page of an endpoint's action says: its title, what will happen ({url}: the
    endpoint's) and the button."""

    title: str
    intro: str
    label: str


SEND_TEST = Prompt(
    title="Send a test event",
    intro="A signed webhook.test event goes to {url} now; its outcome shows in the delivery log.",
    label="Send test event",
)
ROTATE_SECRET = Prompt(
    title="Rotate the signing secret",
    intro="Every request from now on is signed with a new secret; requests signed with the old one stop verifying. "
    "Put the new secret in your receiver right after.",
    label="Rotate secret",
)


def _pre(text: str) -> SafeString:
    return format_html(
        '<pre class="bg-base-50 border border-base-200 font-mono px-3 py-2 rounded-default text-xs '
        'whitespace-pre-wrap break-all dark:bg-base-900 dark:border-base-800">{}</pre>',
        text,
    )


# --- Endpoints -----------------------------------------------------------------------------------


class WebhookEndpointForm(forms.ModelForm):
    url = forms.CharField(
        label="URL",
        max_length=services.MAX_URL_LENGTH,
        widget=UnfoldAdminTextInputWidget,
        help_text="Where we POST the events, e.g. https://example.com/hooks/openaisle.",
    )
    event_types = forms.MultipleChoiceField(
        choices=EventType.choices,
        required=False,
        widget=UnfoldAdminCheckboxSelectMultipleWidget,
        help_text="Tick none to receive every event type, including those added later.",
    )

    class Meta:
        model = WebhookEndpoint
        fields = ["url", "description", "event_types", "is_active"]

    def clean_url(self) -> str:
        try:
            return services.clean_endpoint_url(self.cleaned_data["url"])
        except ValidationError as error:
            raise forms.ValidationError(error.messages) from None

    def clean_event_types(self) -> list[str]:
        try:
            return services.clean_event_types(self.cleaned_data["event_types"])
        except ValidationError as error:
            raise forms.ValidationError(error.messages) from None


class EndpointAdminBase(MissingIs404):
    list_display: Any = ["url", "description", "subscribed", "active_label", "last_delivery", "created_at"]
    list_filter: Any = ["is_active"]
    search_fields: Any = ["url", "description"]

    @display(description="Events")
    def subscribed(self, endpoint: WebhookEndpoint) -> str:
        return ", ".join(endpoint.event_types) if endpoint.event_types else "all"

    @display(description="Active", label={"active": "success", "inactive": "danger"})
    def active_label(self, endpoint: WebhookEndpoint) -> str:
        return "active" if endpoint.is_active else "inactive"

    @display(description="Last delivery")
    def last_delivery(self, endpoint: WebhookEndpoint) -> str:
        last = WebhookDelivery.objects.filter(endpoint=endpoint).order_by("-created_at", "-id").first()
        if last is None:
            return "—"
        return f"{last.get_state_display()} · {last.event_type} · {timezone.localtime(last.created_at):%Y-%m-%d %H:%M}"


@admin.register(WebhookEndpoint, site=licensee_site)
class WebhookEndpointAdmin(EndpointAdminBase, TenantModelAdmin):
    form = WebhookEndpointForm
    manager_only = True
    quota = "webhook_endpoints"
    actions = ["send_test_selected"]
    actions_detail = ["send_test_event", "rotate_secret"]

    def _is_manager(self, request: HttpRequest) -> bool:
        return self._role(request) == Membership.Role.MANAGER

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> Any:
        settings_fields = ["url", "description", "event_types", "is_active"]
        if obj is None:
            return [(None, {"fields": settings_fields, "description": "A signing secret is generated on save."})]
        fieldsets: list[Any] = [(None, {"fields": settings_fields})]
        if self._is_manager(request):
            fieldsets.append(("Signing", {"fields": ["signing_secret"]}))
        fieldsets.append(("Deliveries", {"fields": ["recent_deliveries"]}))
        return fieldsets

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is None:
            return []
        if not self._may_write(request):
            return ["url", "description", "event_types", "is_active", "recent_deliveries"]
        return ["signing_secret", "recent_deliveries"]

    @display(description="Signing secret")
    def signing_secret(self, endpoint: WebhookEndpoint) -> SafeString:
        return format_html(
            '<code id="webhook-signing-secret" class="font-mono select-all break-all">{}</code>'
            '<p class="mt-2 text-sm">Each request carries <code>OpenAisle-Signature: t=…,v1=…</code>: the hex '
            "HMAC-SHA256 of <code>&lt;t&gt;.&lt;raw body&gt;</code> keyed with this secret. Keep it on your server "
            "only; use “Rotate secret” if it leaks.</p>",
            services.signing_secret_of(endpoint),
        )

    @display(description="Recent deliveries")
    def recent_deliveries(self, endpoint: WebhookEndpoint) -> SafeString:
        log = reverse("admin:webhooks_webhookdelivery_changelist")
        rows = WebhookDelivery.objects.filter(endpoint=endpoint).order_by("-created_at", "-id")[:RECENT_DELIVERIES]
        if not rows:
            return format_html("<p>{}</p>", "Nothing sent yet. “Send test event” tries the endpoint out.")
        lines = "\n".join(
            f"{timezone.localtime(d.created_at):%Y-%m-%d %H:%M:%S}  {d.event_type:<20} {d.get_state_display():<16}"
            f" attempts {d.attempts}  last status {d.last_status_code or '—'}"
            for d in rows
        )
        return format_html(
            '{}<a class="text-primary-600" href="{}?endpoint__id__exact={}">{}</a>',
            _pre(lines),
            log,
            endpoint.pk,
            "The whole delivery log of this endpoint",
        )

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        if not change:
            obj.secret_encrypted = services.sealed_new_secret()
        obj.updated_at = timezone.now()
        super().save_model(request, obj, form, change)

    # "Send test event" and "Rotate secret": the link opens a confirmation; only its POST acts.

    def _confirm(self, request: HttpRequest, endpoint: WebhookEndpoint, prompt: Prompt) -> HttpResponse:
        context = {
            **self.admin_site.each_context(request),
            "opts": WebhookEndpoint._meta,
            "original": endpoint,
            "title": prompt.title,
            "intro": prompt.intro.format(url=endpoint.url),
            "form": ConfirmForm(),
            "submit_label": prompt.label,
        }
        return TemplateResponse(request, "admin/simple_form.html", context)

    def _endpoint(self, object_id: str) -> WebhookEndpoint:
        if not str(object_id).isdigit():
            raise Http404("No such webhook endpoint.")
        endpoint: WebhookEndpoint = get_object_or_404(WebhookEndpoint.objects.all(), pk=int(object_id))
        return endpoint

    @action(description="Send test event", url_path="send-test", icon="send", permissions=["change"])
    def send_test_event(self, request: HttpRequest, object_id: str) -> HttpResponse:
        endpoint = self._endpoint(object_id)
        if request.method != "POST":
            return self._confirm(request, endpoint, SEND_TEST)
        delivery = services.webhook_send_test(
            actor=Actor.for_request(request, source=self.audit_source), endpoint=endpoint
        )
        self.message_user(request, f"Test event {delivery.event_id} sent to {endpoint.url}.", messages.SUCCESS)
        return HttpResponseRedirect(reverse("admin:webhooks_webhookdelivery_change", args=[delivery.pk]))

    @action(description="Rotate secret", url_path="rotate-secret", icon="key", permissions=["change"])
    def rotate_secret(self, request: HttpRequest, object_id: str) -> HttpResponse:
        endpoint = self._endpoint(object_id)
        if request.method != "POST":
            return self._confirm(request, endpoint, ROTATE_SECRET)
        services.webhook_endpoint_rotate_secret(
            actor=Actor.for_request(request, source=self.audit_source), endpoint=endpoint
        )
        self.message_user(request, "New signing secret generated: copy it below.", messages.WARNING)
        return HttpResponseRedirect(reverse("admin:webhooks_webhookendpoint_change", args=[endpoint.pk]))

    @admin.action(description="Send a test event to the selected endpoints", permissions=["change"])
    def send_test_selected(self, request: HttpRequest, queryset: QuerySet[WebhookEndpoint]) -> None:
        actor = Actor.for_request(request, source=self.audit_source)
        sent = [services.webhook_send_test(actor=actor, endpoint=endpoint) for endpoint in queryset]
        self.message_user(request, f"Sent {len(sent)} test event(s); see the delivery log.", messages.SUCCESS)


# --- Deliveries ----------------------------------------------------------------------------------


DELIVERY_COLUMNS = ["event_type", "endpoint", "state_label", "attempts", "last_status_code", "next_attempt_at"]
DELIVERY_FIELDS = ["event_id", "event_type", "endpoint", "state", "created_at", "delivered_at"]
ATTEMPT_FIELDS = [
    "attempts",
    "last_attempt_at",
    "next_attempt_at",
    "last_status_code",
    "last_error",
    "response_excerpt",
]


class DeliveryAdminBase(ReadOnlyMixin, MissingIs404):
    list_display: Any = ["created_at", *DELIVERY_COLUMNS, "delivered_at"]
    list_filter: Any = ["state", "event_type", "endpoint"]
    search_fields: Any = ["event_id", "endpoint__url"]
    list_select_related = ["endpoint"]
    date_hierarchy = "created_at"
    fieldsets: Any = [
        (None, {"fields": DELIVERY_FIELDS}),
        ("Attempts", {"fields": ATTEMPT_FIELDS}),
        ("Payload", {"fields": ["body_as_sent"]}),
    ]
    readonly_fields: Any = [*DELIVERY_FIELDS, *ATTEMPT_FIELDS, "body_as_sent"]

    @display(description="State", label=STATE_LABELS)
    def state_label(self, delivery: WebhookDelivery) -> str:
        return delivery.state

    @display(description="Last response (start)")
    def response_excerpt(self, delivery: WebhookDelivery) -> SafeString | str:
        return _pre(delivery.last_response_excerpt) if delivery.last_response_excerpt else "—"

    @display(description="Body (the same bytes on every attempt; headers name the event and sign it)")
    def body_as_sent(self, delivery: WebhookDelivery) -> SafeString:
        body = json.loads(services.request_body(delivery))
        return _pre(json.dumps(body, indent=2, ensure_ascii=False))


@admin.register(WebhookDelivery, site=licensee_site)
class WebhookDeliveryAdmin(DeliveryAdminBase, TenantModelAdmin):
    actions = ["retry_selected"]
    actions_detail = ["retry_now"]

    def has_retry_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._may_write(request)

    def _retry(self, request: HttpRequest, deliveries: QuerySet[WebhookDelivery]) -> int:
        actor = Actor.for_request(request, source=self.audit_source)
        return sum(services.webhook_delivery_retry_now(actor=actor, delivery=delivery) for delivery in deliveries)

    @admin.action(description="Retry the selected deliveries now", permissions=["retry"])
    def retry_selected(self, request: HttpRequest, queryset: QuerySet[WebhookDelivery]) -> None:
        retried = self._retry(request, queryset)
        skipped = queryset.count() - retried
        note = f" ({skipped} delivered already, left alone)" if skipped else ""
        self.message_user(request, f"Sending {retried} delivery(ies) again{note}.", messages.SUCCESS)

    @action(description="Retry now", url_path="retry", icon="refresh", permissions=["retry"])
    def retry_now(self, request: HttpRequest, object_id: str) -> HttpResponse:
        if not str(object_id).isdigit():
            raise Http404("No such webhook delivery.")
        delivery = get_object_or_404(WebhookDelivery.objects.select_related("endpoint"), pk=int(object_id))
        change = reverse("admin:webhooks_webhookdelivery_change", args=[delivery.pk])
        if request.method != "POST":
            context = {
                **self.admin_site.each_context(request),
                "opts": WebhookDelivery._meta,
                "original": delivery,
                "title": "Send this delivery again",
                "intro": f"{delivery.event_type} {delivery.event_id} goes to {delivery.endpoint.url} again now, "
                "with the same event id.",
                "form": ConfirmForm(),
                "submit_label": "Retry now",
            }
            return TemplateResponse(request, "admin/simple_form.html", context)
        if self._retry(request, WebhookDelivery.objects.filter(pk=delivery.pk)):
            self.message_user(request, "Sent again; the outcome shows below.", messages.SUCCESS)
        else:
            self.message_user(request, "Delivered already: not sent again.", messages.WARNING)
        return HttpResponseRedirect(change)


# --- Operators: read-only, across tenants ---------------------------------------------------------


@admin.register(WebhookEndpoint, site=ops_site)
class WebhookEndpointOpsAdmin(ReadOnlyMixin, EndpointAdminBase, OpsModelAdmin):
    list_display = ["url", "tenant", "subscribed", "active_label", "last_delivery", "created_at"]
    list_filter = ["is_active", "tenant"]
    fields = ["tenant", "url", "description", "event_types", "is_active", "created_at", "updated_at"]
    readonly_fields = fields


@admin.register(WebhookDelivery, site=ops_site)
class WebhookDeliveryOpsAdmin(DeliveryAdminBase, OpsModelAdmin):
    list_display = ["created_at", "tenant", *DELIVERY_COLUMNS]
    list_filter = ["state", "event_type", "tenant"]
