"""Tenants' Stripe accounts: the gateway on each tenant's own keys (kept encrypted, `core.crypto`)."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from billing.payments.gateway import StripeGateway
from billing.payments.models import PaymentSettings
from core import crypto
from core.checks import is_published
from tenants.audit import Actor, audit_record
from tenants.models import AuditAction, Tenant


def gateway_for(*, tenant_id: int) -> StripeGateway:
    """The gateway on the tenant's own Stripe account, or the platform's default account."""
    account = PaymentSettings.unscoped.filter(tenant_id=tenant_id).first()
    secret = crypto.decrypt(account.secret_key_encrypted) if account else ""
    return StripeGateway(secret_key=secret or settings.STRIPE_SECRET_KEY)


def webhook_secret_for(*, tenant_id: int) -> str:
    """The tenant's own webhook secret, or the platform's; in production (HTTPS) never one published in this
    repository (`core.checks`), with which anybody could forge Stripe's events: then no secret, and every
    webhook of that tenant is refused until a real one is set."""
    account = PaymentSettings.unscoped.filter(tenant_id=tenant_id).first()
    secret = crypto.decrypt(account.webhook_secret_encrypted) if account else ""
    secret = secret or settings.STRIPE_WEBHOOK_SECRET
    if settings.HTTPS and is_published(secret):
        return ""
    return secret


def payment_settings_set(
    *, actor: Actor, tenant: Tenant, secret_key: str | None = None, webhook_secret: str | None = None
) -> PaymentSettings:
    """Store the tenant's Stripe secret key and webhook secret (encrypted); None leaves a value as it is."""
    if secret_key and not secret_key.startswith(("sk_", "rk_")):
        raise ValidationError({"secret_key": "A Stripe secret key starts with sk_ (or rk_ for a restricted key)."})
    if webhook_secret and not webhook_secret.startswith("whsec_"):
        raise ValidationError({"webhook_secret": "A Stripe webhook signing secret starts with whsec_."})
    with transaction.atomic():
        account, _ = PaymentSettings.objects.select_for_update().get_or_create(tenant=tenant)
        if secret_key is not None:
            account.secret_key_encrypted = crypto.encrypt(secret_key)
        if webhook_secret is not None:
            account.webhook_secret_encrypted = crypto.encrypt(webhook_secret)
        account.updated_at = timezone.now()
        account.save()
        changed = [name for name, value in (("secret_key", secret_key), ("webhook_secret", webhook_secret)) if value]
        audit_record(
            actor=actor,
            tenant_id=tenant.pk,
            action=AuditAction.PAYMENT_SETTINGS_UPDATED,
            obj=account,
            changes={"set": changed},
        )
    return account
