"""Tenants (licensees), their members, their API keys, and the audit log."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models
from django.utils import timezone

from core.models import TenantOwnedModel, TenantScopedManager

_QUOTA_HELP = "Empty: the platform's default."


class Tenant(models.Model):
    """A licensee: a retailer that runs OpenAisle in its stores."""

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        SUSPENDED = "suspended", "Suspended"

    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=64, unique=True, help_text="Short identifier, fixed once created.")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    suspended_reason = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    status_changed_at = models.DateTimeField(null=True, blank=True, editable=False)
    # Limits set by an operator for this tenant; empty means the platform's default (settings.TENANT_QUOTAS).
    max_api_keys = models.PositiveIntegerField(
        null=True, blank=True, verbose_name="live API keys", help_text=_QUOTA_HELP
    )
    max_webhook_endpoints = models.PositiveIntegerField(
        null=True, blank=True, verbose_name="webhook endpoints", help_text=_QUOTA_HELP
    )
    max_stores = models.PositiveIntegerField(null=True, blank=True, verbose_name="stores", help_text=_QUOTA_HELP)
    max_shoppers = models.PositiveIntegerField(
        null=True, blank=True, verbose_name="registered shoppers (cards)", help_text=_QUOTA_HELP
    )
    max_streams_in_flight = models.PositiveIntegerField(
        null=True, blank=True, verbose_name="event uploads being processed at once", help_text=_QUOTA_HELP
    )

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def is_active(self) -> bool:
        return self.status == self.Status.ACTIVE


class Membership(TenantOwnedModel):
    """A person's access to one tenant's admin, with a role."""

    class Role(models.TextChoices):
        MANAGER = "manager", "Manager"
        STAFF = "staff", "Staff"
        VIEWER = "viewer", "Viewer"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.STAFF)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["tenant", "user__email"]
        constraints = [models.UniqueConstraint(fields=["tenant", "user"], name="membership_one_per_tenant_user")]

    def __str__(self) -> str:
        return f"{self.user} — {self.get_role_display()}"


class ApiKey(TenantOwnedModel):
    """A licensee system's credential: `oa_<prefix>_<secret>`, stored as prefix + SHA-256 of the whole key.

    The prefix is unique platform-wide (not per tenant) on purpose: the key is
    what tells us the tenant, so it is looked up before any tenant is known.
    """

    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16, unique=True, editable=False)
    secret_hash = models.CharField(max_length=64, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", editable=False
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        verbose_name = "API key"
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["tenant", "-created_at"], name="apikey_tenant_created")]

    def __str__(self) -> str:
        return f"{self.name} (oa_{self.prefix}_…)"

    @property
    def is_revoked(self) -> bool:
        return self.revoked_at is not None

    @property
    def display_prefix(self) -> str:
        return f"oa_{self.prefix}_…"


class AuditEntry(models.Model):
    """One write by someone to something. Append-only: never updated, never deleted.

    `tenant` is empty only for platform-level writes (users, groups).
    """

    class Source(models.TextChoices):
        ADMIN = "admin", "Store admin"
        OPS = "ops", "Operator admin"
        API = "api", "API"
        CLI = "cli", "Command line"
        SYSTEM = "system", "System"

    at = models.DateTimeField(default=timezone.now, editable=False, db_index=True)
    tenant = models.ForeignKey(Tenant, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    source = models.CharField(max_length=8, choices=Source.choices)
    actor_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_api_key = models.ForeignKey(ApiKey, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    actor_label = models.CharField(max_length=200, help_text="Who, as it read at the time.")
    action = models.CharField(max_length=32)
    object_type = models.CharField(max_length=100)
    object_id = models.CharField(max_length=64)
    object_repr = models.CharField(max_length=200)
    changes = models.JSONField(default=dict, blank=True)
    request_id = models.CharField(max_length=64, blank=True)

    objects: Any = TenantScopedManager()
    unscoped: Any = models.Manager()

    class Meta:
        verbose_name = "audit entry"
        verbose_name_plural = "audit log"
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["tenant", "-at"], name="audit_tenant_at")]

    def __str__(self) -> str:
        return f"{self.actor_label} {self.action} {self.object_type} {self.object_repr}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise ValueError("Audit entries are append-only.")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        raise ValueError("Audit entries are append-only.")
