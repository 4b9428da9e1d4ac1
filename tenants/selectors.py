"""Reads on tenants, memberships, API keys and the audit log."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import QuerySet
from django.shortcuts import get_object_or_404

from tenants.models import ApiKey, AuditEntry, Membership, Tenant


def api_key_list() -> QuerySet[ApiKey]:
    return ApiKey.objects.all()


def api_key_get(*, key_id: int) -> ApiKey:
    """The API key of the tenant in scope; another tenant's key is 404, like a missing one."""
    return get_object_or_404(ApiKey.objects.all(), pk=key_id)


def audit_entry_list() -> QuerySet[AuditEntry]:
    return AuditEntry.objects.all()


def memberships_of_user(*, user: AbstractBaseUser) -> QuerySet[Membership]:
    """A person's memberships across tenants (for choosing one at login): an unscoped read by design."""
    return Membership.unscoped.filter(user=user).select_related("tenant").order_by("tenant__name")


def tenant_get_by_slug(*, slug: str) -> Tenant:
    return Tenant.objects.get(slug=slug)
