"""Tenants, members, API keys and the audit log, in both admin sites."""

from __future__ import annotations

from typing import Any

from axes.models import AccessAttempt
from django import forms
from django.apps import apps
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.auth.admin import GroupAdmin as BaseGroupAdmin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.contrib.auth.models import Group, User
from django.core.exceptions import FieldError, ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html_join
from django.utils.safestring import SafeString
from unfold.admin import TabularInline
from unfold.decorators import action, display
from unfold.forms import AdminPasswordChangeForm, UserChangeForm, UserCreationForm

from billing.invoicing.models import Invoice
from catalog.currencies import format_money
from core.admin import OpsModelAdmin, ReadOnlyMixin, TenantModelAdmin, is_operator
from core.admin_sites import licensee_site, ops_site
from core.login_throttle import locked_until, lockout_release
from stores.models import Store
from tenants import services
from tenants.audit import Actor
from tenants.models import ApiKey, AuditEntry, Membership, SignInFailure, Tenant
from tenants.quotas import QUOTAS, QuotaExceeded, quota_limit

# --- shared pieces -------------------------------------------------------------------------------


def tenant_links(tenant: Tenant) -> SafeString:
    """Where an operator goes from a tenant: its console (stores and usage), stores, members, invoices, activity."""
    filtered = f"?tenant__id__exact={tenant.pk}"
    links = [
        ("Console", f"{reverse('ops:index')}?tenant={tenant.pk}"),
        (f"Stores ({Store.unscoped.filter(tenant=tenant).count()})", reverse("ops:stores_store_changelist") + filtered),
        (
            f"Members ({Membership.unscoped.filter(tenant=tenant).count()})",
            reverse("ops:tenants_membership_changelist") + filtered,
        ),
        (
            f"Invoices ({Invoice.unscoped.filter(tenant=tenant).count()})",
            reverse("ops:invoicing_invoice_changelist") + filtered,
        ),
        ("Activity", reverse("ops:tenants_auditentry_changelist") + filtered),
    ]
    return format_html_join(
        " · ", '<a class="text-primary-600 underline" href="{}">{}</a>', ((url, label) for label, url in links)
    )


@display(description="Status", label={"active": "success", "suspended": "danger"})
def tenant_status_label(tenant: Tenant) -> str:
    return tenant.status


class ApiKeyIssueForm(forms.Form):
    name = forms.CharField(max_length=100, help_text="What uses this key, e.g. 'store gateway, Main St'.")


class OpsApiKeyIssueForm(ApiKeyIssueForm):
    tenant = forms.ModelChoiceField(queryset=Tenant.objects.all())

    field_order = ["tenant", "name"]


class ApiKeyAdminBase:
    """Issuing a key shows its secret once, on the page that follows; revoking is an action."""

    list_display: Any = ["name", "display_prefix", "created_at", "last_used_at", "key_state"]
    readonly_fields: Any = ["name", "display_prefix", "created_by", "created_at", "last_used_at", "revoked_at"]
    actions: Any = ["revoke_selected"]
    issue_form: type[ApiKeyIssueForm] = ApiKeyIssueForm

    @display(description="State", label={"live": "success", "revoked": "danger"})
    def key_state(self, api_key: ApiKey) -> str:
        return "revoked" if api_key.is_revoked else "live"

    def tenant_for_issue(self, request: HttpRequest, form: forms.Form) -> Tenant:
        raise NotImplementedError

    def add_view(self, request: HttpRequest, form_url: str = "", extra_context: Any = None) -> HttpResponse:
        admin_self: Any = self
        if not admin_self.has_add_permission(request):
            return HttpResponseRedirect(reverse(f"{admin_self.admin_site.name}:index"))
        form = self.issue_form(request.POST or None)
        context = {**admin_self.admin_site.each_context(request), "opts": ApiKey._meta, "title": "Issue an API key"}
        if request.method == "POST" and form.is_valid():
            try:
                issued = services.api_key_issue(
                    actor=Actor.for_request(request, source=admin_self.audit_source),
                    tenant=self.tenant_for_issue(request, form),
                    name=form.cleaned_data["name"],
                    created_by=request.user,  # type: ignore[arg-type]
                )
            except (ValidationError, QuotaExceeded) as error:
                form.add_error(None, str(error) if isinstance(error, QuotaExceeded) else error)
            else:
                context.update({"title": "API key issued", "issued": issued})
                return TemplateResponse(request, "admin/tenants/apikey/issued.html", context)
        context.update(
            {"form": form, "submit_label": "Issue key", "intro": "The secret is shown once, on the next page."}
        )
        return TemplateResponse(request, "admin/simple_form.html", context)

    @admin.action(description="Revoke selected API keys")
    def revoke_selected(self, request: HttpRequest, queryset: QuerySet[ApiKey]) -> None:
        admin_self: Any = self
        actor = Actor.for_request(request, source=admin_self.audit_source)
        revoked = [services.api_key_revoke(actor=actor, api_key=key) for key in queryset if not key.is_revoked]
        admin_self.message_user(request, f"Revoked {len(revoked)} API key(s).", messages.SUCCESS)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


# Amounts audit entries keep in minor units, shown as money in the entry's currency.
AUDITED_AMOUNTS = {"amount", "asked", "balance_due", "refund", "total"}


class AuditEntryAdminBase(ReadOnlyMixin):
    list_display: Any = ["at", "who", "action", "kind", "what", "source"]
    list_filter: Any = ["source", "action"]
    search_fields: Any = ["actor_label", "object_repr", "object_id", "request_id"]
    date_hierarchy = "at"
    fields = readonly_fields = [
        "at",
        "tenant",
        "source",
        "who",
        "actor_user",
        "actor_api_key",
        "action",
        "kind",
        "what",
        "changes_shown",
        "request_id",
    ]

    @display(description="Who", ordering="actor_label")
    def who(self, entry: AuditEntry) -> str:
        return entry.who

    @display(description="Kind of object", ordering="object_type")
    def kind(self, entry: AuditEntry) -> str:
        return entry.object_kind

    @display(description="Object", ordering="object_repr")
    def what(self, entry: AuditEntry) -> str:
        return entry.object_repr

    @display(description="Changes")
    def changes_shown(self, entry: AuditEntry) -> SafeString | str:
        """One line per change, as people read it: amounts as money, lists and records as words, no JSON."""
        if not entry.changes:
            return "—"
        currency = entry.changes.get("currency") or _currency_of(entry)
        return format_html_join(
            "",
            "<div><strong>{}</strong>: {}</div>",
            ((key.replace("_", " "), _audited(key, value, currency)) for key, value in entry.changes.items()),
        )


def _currency_of(entry: AuditEntry) -> str | None:
    """The currency of the object an entry wrote, when it has one (a visit, a dispute, an invoice)."""
    try:
        model = apps.get_model(entry.object_type)
        found = model._base_manager.filter(pk=entry.object_id).values_list("currency", flat=True).first()
    except (LookupError, ValueError, FieldError):
        return None
    return str(found) if found else None


def _audited(key: str, value: Any, currency: str | None) -> str:
    if key in AUDITED_AMOUNTS and isinstance(value, int) and currency:
        return format_money(value, currency)
    if isinstance(value, dict):
        return ", ".join(f"{k.replace('_', ' ')} {_audited(k, v, currency)}" for k, v in value.items()) or "—"
    if isinstance(value, list):
        return "; ".join(_audited(key, item, currency) for item in value) or "none"
    if value is None or value == "":
        return "—"
    return str(value)


# --- operator site -------------------------------------------------------------------------------


class MembershipInline(TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ["user"]
    fields = ["user", "role", "created_at"]
    readonly_fields = ["created_at"]


class ApiKeyInline(TabularInline):
    model = ApiKey
    extra = 0
    fields = ["name", "display_prefix", "created_at", "last_used_at", "revoked_at"]
    readonly_fields = fields
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Tenant, site=ops_site)
class TenantOpsAdmin(OpsModelAdmin):
    list_display = ["name", "slug", tenant_status_label, "created_at"]
    list_filter = ["status"]
    search_fields = ["name", "slug"]
    readonly_fields = ["status", "suspended_reason", "created_at", "status_changed_at", "quota_usage", "drill_down"]
    fieldsets = [
        (
            None,
            {"fields": ["drill_down", "name", "slug", "status", "suspended_reason", "created_at", "status_changed_at"]},
        ),
        (
            "Limits",
            {
                "fields": ["quota_usage", *(quota.field for quota in QUOTAS.values())],
                "description": "What this tenant may hold at most. Empty: the platform's default, "
                "set for every tenant in the environment (QUOTA_API_KEYS, QUOTA_STORES, …).",
            },
        ),
    ]
    inlines = [MembershipInline, ApiKeyInline]
    actions = ["suspend_selected", "reactivate_selected"]
    actions_detail = ["suspend_detail", "reactivate_detail"]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return [*self.readonly_fields, "slug"] if obj is not None else self.readonly_fields

    def formfield_for_dbfield(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        field = super().formfield_for_dbfield(db_field, request, **kwargs)
        name = db_field.name.removeprefix("max_")
        if field is not None and name in QUOTAS:
            field.widget.attrs["placeholder"] = f"{settings.TENANT_QUOTAS[name]:,} (default)"
        return field

    @display(description="In use")
    def quota_usage(self, tenant: Tenant) -> str:
        if tenant.pk is None:
            return "—"
        return "; ".join(
            f"{quota.noun}: {quota.used_by(tenant):,} of {quota_limit(tenant=tenant, name=name):,}"
            for name, quota in QUOTAS.items()
        )

    @display(description="This tenant's")
    def drill_down(self, tenant: Tenant) -> str:
        return tenant_links(tenant) if tenant.pk is not None else "—"

    def has_suspend_permission(self, request: HttpRequest, object_id: Any = None) -> bool:
        return self._in_status(request, object_id, Tenant.Status.ACTIVE)

    def has_reactivate_permission(self, request: HttpRequest, object_id: Any = None) -> bool:
        return self._in_status(request, object_id, Tenant.Status.SUSPENDED)

    def _in_status(self, request: HttpRequest, object_id: Any, status: str) -> bool:
        """An operator may act on the tenant, and the tenant is in the status the action starts from."""
        if not self.has_change_permission(request):
            return False
        return object_id is None or Tenant.objects.filter(pk=object_id, status=status).exists()

    def _suspend(self, request: HttpRequest, tenants: Any) -> None:
        actor = Actor.for_request(request, source=self.audit_source)
        for tenant in tenants:
            services.tenant_suspend(actor=actor, tenant=tenant, reason=f"Suspended by {request.user} in /ops/")
        self.message_user(request, "Suspended: API calls, uploads and entry checks are refused.", messages.WARNING)

    def _reactivate(self, request: HttpRequest, tenants: Any) -> None:
        actor = Actor.for_request(request, source=self.audit_source)
        for tenant in tenants:
            services.tenant_reactivate(actor=actor, tenant=tenant)
        self.message_user(request, "Reactivated.", messages.SUCCESS)

    @admin.action(description="Suspend selected tenants", permissions=["change"])
    def suspend_selected(self, request: HttpRequest, queryset: QuerySet[Tenant]) -> None:
        self._suspend(request, queryset)

    @admin.action(description="Reactivate selected tenants", permissions=["change"])
    def reactivate_selected(self, request: HttpRequest, queryset: QuerySet[Tenant]) -> None:
        self._reactivate(request, queryset)

    @action(description="Suspend", permissions=["suspend"], url_path="suspend", icon="block")
    def suspend_detail(self, request: HttpRequest, object_id: str) -> HttpResponse:
        self._suspend(request, Tenant.objects.filter(pk=object_id))
        return HttpResponseRedirect(reverse("ops:tenants_tenant_change", args=[object_id]))

    @action(description="Reactivate", permissions=["reactivate"], url_path="reactivate", icon="check_circle")
    def reactivate_detail(self, request: HttpRequest, object_id: str) -> HttpResponse:
        self._reactivate(request, Tenant.objects.filter(pk=object_id))
        return HttpResponseRedirect(reverse("ops:tenants_tenant_change", args=[object_id]))


@admin.register(Membership, site=ops_site)
class MembershipOpsAdmin(OpsModelAdmin):
    list_display = ["user", "tenant", "role", "created_at"]
    list_filter = ["role", "tenant"]
    search_fields = ["user__email", "user__username", "tenant__name"]
    autocomplete_fields = ["user", "tenant"]


@admin.register(ApiKey, site=ops_site)
class ApiKeyOpsAdmin(ApiKeyAdminBase, OpsModelAdmin):
    list_display = ["name", "tenant", "display_prefix", "created_at", "last_used_at", "key_state"]
    list_filter = ["tenant"]
    search_fields = ["name", "prefix", "tenant__name"]
    issue_form = OpsApiKeyIssueForm

    def tenant_for_issue(self, request: HttpRequest, form: forms.Form) -> Tenant:
        tenant: Tenant = form.cleaned_data["tenant"]
        return tenant


@admin.register(AuditEntry, site=ops_site)
class AuditEntryOpsAdmin(AuditEntryAdminBase, OpsModelAdmin):
    list_display = ["at", "tenant", "who", "action", "kind", "what", "source"]
    list_filter = ["source", "action", "tenant"]


@admin.register(SignInFailure, site=ops_site)
class SignInFailuresOpsAdmin(OpsModelAdmin):
    """Failed sign-ins per username and address within the cool-off, and which of them are locked (both admins):
    operators only — finance has no use for who mistyped a password."""

    list_display = ["username", "ip_address", "failures_since_start", "attempt_time", "lock", "path_info"]
    search_fields = ["username", "ip_address"]
    ordering = ["-attempt_time"]
    fields = readonly_fields = [
        "username",
        "ip_address",
        "failures_since_start",
        "attempt_time",
        "lock",
        "path_info",
        "user_agent",
    ]
    actions = ["unlock_selected"]

    def has_module_permission(self, request: HttpRequest) -> bool:
        return is_operator(request)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return is_operator(request)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @display(description="Locked until", label=True)
    def lock(self, attempt: AccessAttempt) -> str:
        until = locked_until(attempt)
        return f"{until:%Y-%m-%d %H:%M} UTC" if until else "not locked"

    @admin.action(description="Unlock selected (forget their failed sign-ins)", permissions=["change"])
    def unlock_selected(self, request: HttpRequest, queryset: QuerySet[AccessAttempt]) -> None:
        actor = Actor.for_request(request, source=self.audit_source)
        for attempt in queryset:
            lockout_release(actor=actor, attempt=attempt)
        self.message_user(request, "Unlocked: they may sign in again.", messages.SUCCESS)


@admin.register(User, site=ops_site)
class UserOpsAdmin(BaseUserAdmin, OpsModelAdmin):
    form = UserChangeForm
    add_form = UserCreationForm
    change_password_form = AdminPasswordChangeForm


@admin.register(Group, site=ops_site)
class GroupOpsAdmin(BaseGroupAdmin, OpsModelAdmin):  # type: ignore[misc]
    pass


# --- licensee site -------------------------------------------------------------------------------


class MemberInviteForm(forms.Form):
    email = forms.EmailField()
    role = forms.ChoiceField(choices=Membership.Role.choices, initial=Membership.Role.STAFF)


@admin.register(Membership, site=licensee_site)
class MembershipAdmin(TenantModelAdmin):
    list_display = ["user", "role", "created_at"]
    list_filter = ["role"]
    search_fields = ["user__email", "user__username"]
    fields = ["user", "role", "created_at"]
    readonly_fields = ["user", "created_at"]
    manager_only = True

    def add_view(self, request: HttpRequest, form_url: str = "", extra_context: Any = None) -> HttpResponse:
        if not self.has_add_permission(request):
            return HttpResponseRedirect(reverse(f"{self.admin_site.name}:index"))
        form = MemberInviteForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                services.member_add(
                    actor=Actor.for_request(request, source=self.audit_source),
                    tenant=request.tenant,  # type: ignore[attr-defined]
                    email=form.cleaned_data["email"],
                    role=form.cleaned_data["role"],
                )
            except ValidationError as error:
                form.add_error(None, error)
            else:
                self.message_user(request, f"{form.cleaned_data['email']} added to the team.", messages.SUCCESS)
                return HttpResponseRedirect(reverse(f"{self.admin_site.name}:tenants_membership_changelist"))
        context = {**self.admin_site.each_context(request), "opts": Membership._meta, "title": "Add a team member"}
        context.update(
            {
                "form": form,
                "submit_label": "Add member",
                "intro": "New people get an email to set their password.",
            }
        )
        return TemplateResponse(request, "admin/simple_form.html", context)


@admin.register(ApiKey, site=licensee_site)
class ApiKeyAdmin(ApiKeyAdminBase, TenantModelAdmin):
    search_fields = ["name", "prefix"]
    manager_only = True

    def tenant_for_issue(self, request: HttpRequest, form: forms.Form) -> Tenant:
        tenant: Tenant = request.tenant  # type: ignore[attr-defined]
        return tenant


@admin.register(AuditEntry, site=licensee_site)
class AuditEntryAdmin(AuditEntryAdminBase, TenantModelAdmin):
    pass
