"""Base ModelAdmins: audited writes on both sites; role checks and tenant stamping on the licensee site."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any, ClassVar

from django.contrib import admin, messages
from django.db import models
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseBase, HttpResponseRedirect
from django.urls import URLPattern, path, reverse
from unfold.admin import ModelAdmin

from core.admin_sites import OPERATOR_GROUP
from tenants.audit import Actor, audit_record
from tenants.models import AuditAction, AuditEntry, Membership, Tenant
from tenants.quotas import QuotaExceeded, quota_require_room

WRITE_ROLES = (Membership.Role.MANAGER, Membership.Role.STAFF)
ALL_STATUSES = "all"


def admin_pages(model_admin: Any, *pages: tuple[str, Callable[..., HttpResponseBase], str]) -> list[URLPattern]:
    """A ModelAdmin's own pages, as (route, view, URL name), each behind its site's login and permission check."""
    return [path(route, model_admin.admin_site.admin_view(view), name=name) for route, view, name in pages]


class QueueStatusFilter(admin.SimpleListFilter):
    """A list's status filter defaulting to `waiting`, the status of the rows waiting for a person: without a choice
    the list is that queue; `ALL_STATUSES` lists every row. Subclasses name the model's `statuses` and `waiting`."""

    title = "status"
    parameter_name = "status"
    statuses: ClassVar[type[models.TextChoices]]
    waiting: ClassVar[str]

    @classmethod
    def asked(cls, request: HttpRequest) -> str:
        """The status the request's list shows."""
        return request.GET.get(cls.parameter_name) or cls.waiting

    @classmethod
    def is_queue(cls, request: HttpRequest) -> bool:
        return cls.asked(request) == cls.waiting

    @classmethod
    def tabs(cls, request: HttpRequest, choices: Sequence[tuple[str, str]]) -> list[dict[str, Any]]:
        """A tab per (status, label) above the list; each keeps the request's other filters, on the first page in
        the default order."""
        current = cls.asked(request)
        tabs = []
        for value, label in choices:
            query = request.GET.copy()
            query.pop("p", None)
            query.pop("o", None)
            query[cls.parameter_name] = value
            tabs.append({"label": label, "url": f"?{query.urlencode()}", "active": current == value})
        return tabs

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [*self.statuses.choices, (ALL_STATUSES, "All statuses")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = self.value() or self.waiting
        return queryset if value == ALL_STATUSES else queryset.filter(status=value)

    def choices(self, changelist: Any) -> Iterator[Any]:
        current = self.value() or self.waiting
        for value, label in self.lookup_choices:
            yield {
                "selected": current == value,
                "query_string": changelist.get_query_string({self.parameter_name: value}),
                "display": label,
            }


def _tenant_id_of(obj: models.Model) -> int | None:
    if isinstance(obj, Tenant):
        return obj.pk
    return getattr(obj, "tenant_id", None)


class AuditedAdmin(ModelAdmin):
    """Every add, change and delete through the admin lands in the audit log."""

    audit_source = AuditEntry.Source.ADMIN

    def _audit(self, request: HttpRequest, obj: models.Model, verb: str, changes: dict[str, Any]) -> None:
        actor = Actor.for_request(request, source=self.audit_source)
        action = AuditAction.of_write(model_label=obj._meta.label_lower, verb=verb)
        audit_record(actor=actor, tenant_id=_tenant_id_of(obj), action=action, obj=obj, changes=changes)

    def log_addition(self, request: HttpRequest, obj: models.Model, message: Any) -> Any:
        self._audit(request, obj, "create", {"message": message})
        return super().log_addition(request, obj, message)

    def log_change(self, request: HttpRequest, obj: models.Model, message: Any) -> Any:
        self._audit(request, obj, "update", {"message": message})
        return super().log_change(request, obj, message)

    def log_deletions(self, request: HttpRequest, queryset: Any) -> Any:
        for obj in queryset:
            self._audit(request, obj, "delete", {})
        return super().log_deletions(request, queryset)


class ReadOnlyMixin:
    """For rows only the platform writes (payments, calibrations, the audit log): people look, never add, change or
    delete. Put it first among the bases, so it wins over the site's own permissions; inlines too."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class OpsModelAdmin(AuditedAdmin):
    """A ModelAdmin of the operator site (`/ops/`)."""

    audit_source = AuditEntry.Source.OPS

    def has_module_permission(self, request: HttpRequest) -> bool:
        return True

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return True

    def has_add_permission(self, request: HttpRequest) -> bool:
        return is_operator(request)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return is_operator(request)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


SUSPENDED_UPLOADS = "This account is suspended: uploads are refused until it is reactivated. Your data stays."


def tenant_may_upload(request: HttpRequest, form: Any) -> bool:
    """Whether the member's tenant may bring in new data (events, catalog, layouts); if it is suspended, says so
    on the form. Its data stays readable."""
    tenant = getattr(request, "tenant", None)
    if tenant is not None and not tenant.is_active:
        form.add_error(None, SUSPENDED_UPLOADS)
        return False
    return True


def is_operator(request: HttpRequest) -> bool:
    user: Any = request.user
    return bool(user.is_superuser or user.groups.filter(name=OPERATOR_GROUP).exists())


class TenantModelAdmin(AuditedAdmin):
    """A ModelAdmin of the licensee site (`/admin/`): the member's role decides what they may do.

    Querysets are scoped by the site; new objects are stamped with the tenant in scope.
    Managers and staff write, viewers read, only managers delete. With `quota` set, adding one is refused with
    a message once the tenant holds its limit of them (tenants/quotas.py).
    """

    manager_only = False
    quota: str | None = None

    def _role(self, request: HttpRequest) -> str | None:
        membership = getattr(request, "membership", None)
        return membership.role if membership is not None else None

    def _may_write(self, request: HttpRequest) -> bool:
        role = self._role(request)
        if self.manager_only:
            return role == Membership.Role.MANAGER
        return role in WRITE_ROLES

    def has_module_permission(self, request: HttpRequest) -> bool:
        return self._role(request) is not None

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._role(request) is not None

    def has_add_permission(self, request: HttpRequest) -> bool:
        return self._may_write(request)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._may_write(request)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._role(request) == Membership.Role.MANAGER

    def changeform_view(
        self, request: HttpRequest, object_id: str | None = None, form_url: str = "", extra_context: Any = None
    ) -> HttpResponse:
        try:
            if object_id is None and self.quota is not None:
                quota_require_room(tenant=request.tenant, name=self.quota)  # type: ignore[attr-defined]
            return super().changeform_view(request, object_id, form_url, extra_context)
        except QuotaExceeded as exceeded:  # the add's transaction has rolled back: nothing was written
            self.message_user(request, str(exceeded), messages.ERROR)
            opts = self.model._meta
            changelist = f"{self.admin_site.name}:{opts.app_label}_{opts.model_name}_changelist"
            return HttpResponseRedirect(reverse(changelist))

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        if not change:
            obj.tenant = request.tenant  # type: ignore[attr-defined]
            if self.quota is not None:
                quota_require_room(tenant=obj.tenant, name=self.quota)
        super().save_model(request, obj, form, change)


class DecisionQueueAdmin(ReadOnlyMixin, TenantModelAdmin):
    """A queue of rows a person decides (visits in review, disputes): nobody edits a row, a person who may write
    decides it on the row's own page."""

    list_per_page = 50

    def may_decide(self, request: HttpRequest) -> bool:
        return self._may_write(request)
