"""Tenant-owned models: the shared-schema tenancy base."""

from __future__ import annotations

from typing import Any, TypeVar

from django.db import models

from core import tenancy

M = TypeVar("M", bound=models.Model)


class TenantScopedManager(models.Manager[M]):
    """The default manager of tenant data: filtered to the tenant in scope, raising without one."""

    def get_queryset(self) -> models.QuerySet[M]:
        scope = tenancy.active_scope()
        queryset = super().get_queryset()
        if scope is tenancy.PLATFORM_WIDE:
            return queryset
        return queryset.filter(tenant_id=scope)


class TenantOwnedModel(models.Model):
    """A row that belongs to one tenant.

    `objects` sees only the tenant in scope. `unscoped` sees every tenant and is
    for code that has established the tenant itself (authentication, operator
    tooling); reaching for it anywhere else is a review flag.
    """

    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.PROTECT, related_name="+")

    objects: Any = TenantScopedManager()
    unscoped: Any = models.Manager()

    class Meta:
        abstract = True
