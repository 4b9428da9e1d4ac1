"""Tenants (licensees), their members, their API keys, and the audit log."""

from __future__ import annotations

from typing import Any

from axes.models import AccessAttempt
from django.apps import apps
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


class AuditAction(models.TextChoices):
    """What an audit entry says was done: one name per kind of write, `noun.verb`, the noun being what was written.

    Writes through the admin's own add, change and delete forms are `record.*` unless the model has a name of its
    own here (`AuditAction.of_write`), so that a store created through the API or through the admin reads alike.
    """

    RECORD_CREATED = "record.created", "Record created"
    RECORD_UPDATED = "record.updated", "Record changed"
    RECORD_DELETED = "record.deleted", "Record deleted"
    TENANT_CREATED = "tenant.created", "Tenant created"
    TENANT_SUSPENDED = "tenant.suspended", "Tenant suspended"
    TENANT_REACTIVATED = "tenant.reactivated", "Tenant reactivated"
    MEMBERSHIP_CREATED = "membership.created", "Member added"
    API_KEY_CREATED = "api_key.created", "API key issued"
    API_KEY_REVOKED = "api_key.revoked", "API key revoked"
    LOGIN_LOCKED = "login.locked", "Sign-in locked"
    LOGIN_UNLOCKED = "login.unlocked", "Sign-in unlocked"
    STORE_CREATED = "store.created", "Store created"
    STORE_UPDATED = "store.updated", "Store changed"
    LAYOUT_PUBLISHED = "layout.published", "Layout published"
    CATALOG_IMPORTED = "catalog.imported", "Catalog imported"
    CATALOG_IMPORT_REFUSED = "catalog.import_refused", "Catalog import refused"
    STOCK_COUNTED = "stock.counted", "Stock counted"
    LOW_STOCK_LEVELS_SET = "low_stock_levels.set", "Low-stock levels set"
    VISIT_APPROVED = "visit.approved", "Visit approved in review"
    VISIT_VOIDED = "visit.voided", "Visit voided in review"
    VISIT_REFUNDED = "visit.refunded", "Visit refunded"
    VISIT_PAYMENT_RETRIED = "visit.payment_retried", "Visit's failed payment retried"
    CALIBRATION_LEARNT = "calibration.learnt", "Calibration learnt"
    DISPUTE_OPENED = "dispute.opened", "Dispute opened"
    DISPUTE_DECIDED = "dispute.decided", "Dispute decided"
    SHOPPER_REGISTERED = "shopper.registered", "Shopper registered"
    SHOPPER_CARD_REPLACED = "shopper.card_replaced", "Shopper's card replaced"
    SHOPPER_CARD_DETACHED = "shopper.card_detached", "Shopper's card detached"
    SHOPPER_REVOKED = "shopper.revoked", "Shopper revoked"
    SHOPPER_ERASED = "shopper.erased", "Shopper erased"
    EVENTS_RETIRED = "events.retired", "Raw events retired (exported, removed)"
    PAYMENT_SETTINGS_UPDATED = "payment_settings.updated", "Payment settings changed"
    WEBHOOK_ENDPOINT_CREATED = "webhook_endpoint.created", "Webhook endpoint created"
    WEBHOOK_ENDPOINT_UPDATED = "webhook_endpoint.updated", "Webhook endpoint changed"
    WEBHOOK_SECRET_ROTATED = "webhook_endpoint.secret_rotated", "Webhook secret rotated"
    WEBHOOK_ENDPOINT_TESTED = "webhook_endpoint.tested", "Webhook test event sent"
    WEBHOOK_DELIVERY_RETRIED = "webhook_delivery.retried", "Webhook delivery retried"
    PLAN_VERSION_CREATED = "plan_version.created", "Plan version created"
    PLAN_ASSIGNED = "plan.assigned", "Plan assigned"
    INVOICE_DRAFTED = "invoice.drafted", "Invoice drafted"
    INVOICE_REDRAFTED = "invoice.redrafted", "Invoice draft updated"
    INVOICE_FINALISED = "invoice.finalised", "Invoice issued"
    INVOICE_PAID = "invoice.paid", "Invoice marked paid"
    INVOICE_VOIDED = "invoice.voided", "Invoice voided"
    CREDIT_NOTE_ISSUED = "credit_note.issued", "Credit note issued"
    EXCHANGE_RATE_CREATED = "exchange_rate.created", "Exchange rate set"
    EXCHANGE_RATE_UPDATED = "exchange_rate.updated", "Exchange rate replaced"

    @classmethod
    def of_write(cls, *, model_label: str, verb: str) -> AuditAction:
        """The name of a plain create, update or delete (`verb`) of a row of this model (`app.model`)."""
        return NAMED_WRITES.get((model_label, verb)) or cls(f"record.{verb}d")


# Plain writes of these models have a name of their own (the data migration of old names reads the same table).
NAMED_WRITES: dict[tuple[str, str], AuditAction] = {
    ("tenants.tenant", "create"): AuditAction.TENANT_CREATED,
    ("tenants.membership", "create"): AuditAction.MEMBERSHIP_CREATED,
    ("tenants.apikey", "create"): AuditAction.API_KEY_CREATED,
    ("stores.store", "create"): AuditAction.STORE_CREATED,
    ("stores.store", "update"): AuditAction.STORE_UPDATED,
    ("webhooks.webhookendpoint", "create"): AuditAction.WEBHOOK_ENDPOINT_CREATED,
    ("webhooks.webhookendpoint", "update"): AuditAction.WEBHOOK_ENDPOINT_UPDATED,
    ("invoicing.planversion", "create"): AuditAction.PLAN_VERSION_CREATED,
    ("invoicing.exchangerate", "create"): AuditAction.EXCHANGE_RATE_CREATED,
    ("invoicing.exchangerate", "update"): AuditAction.EXCHANGE_RATE_UPDATED,
}


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
    action = models.CharField(max_length=40, choices=AuditAction.choices)
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
        return f"{self.get_action_display()}: {self.object_repr}" + (f", by {self.who}" if self.actor_label else "")

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise ValueError("Audit entries are append-only.")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        raise ValueError("Audit entries are append-only.")

    @property
    def who(self) -> str:
        """Who, as people read it: a person's or key's label, or for work nobody signed in for its source's name
        ("Command line", "System") rather than our internal "cli" and "system"."""
        if self.actor_user_id is not None or self.actor_api_key_id is not None:
            return self.actor_label
        return dict(self.Source.choices).get(self.actor_label, self.actor_label)

    @property
    def object_kind(self) -> str:
        """What was written, as people name it: "Invoice", not "invoicing.invoice"."""
        try:
            model = apps.get_model(self.object_type)
        except (LookupError, ValueError):
            return self.object_type
        return str(model._meta.verbose_name).capitalize()


class SignInFailure(AccessAttempt):
    """django-axes' count of wrong passwords for one username from one address, under the name operators read in
    `/ops/` ("Axes" and "Access attempts" are the library's own words)."""

    class Meta:
        proxy = True
        verbose_name = "failed sign-in"
        verbose_name_plural = "failed sign-ins"
