"""Writes on tenants, memberships and API keys. Each one is atomic and audited."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.contrib.auth.tokens import default_token_generator
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode
from django.utils.text import slugify

from tenants.audit import Actor, audit_record
from tenants.models import ApiKey, AuditAction, Membership, Tenant
from tenants.quotas import quota_require_room

API_KEY_LAST_USED_RESOLUTION = timedelta(minutes=1)
API_KEY_CACHE_SECONDS = 300  # a safety net: revoking a key or suspending its tenant removes the entry at once
_KEY_PREFIX_LENGTH = 8
_KEY_FIELDS = ("id", "tenant_id", "name", "prefix", "secret_hash", "created_at", "last_used_at", "revoked_at")
_TENANT_FIELDS = ("id", "name", "slug", "status", "suspended_reason", "created_at", "status_changed_at")


@dataclass(frozen=True)
class IssuedApiKey:
    """A new API key with its secret. The secret exists only here: show it once."""

    api_key: ApiKey
    key: str


@transaction.atomic
def tenant_create(*, actor: Actor, name: str, slug: str) -> Tenant:
    name = name.strip()
    if not name:
        raise ValidationError({"name": "A tenant needs a name."})
    if slug != slugify(slug) or not slug:
        raise ValidationError({"slug": "Use lowercase letters, digits and hyphens only."})
    if Tenant.objects.filter(slug=slug).exists():
        raise ValidationError({"slug": f"A tenant with the slug {slug!r} already exists."})
    tenant = Tenant.objects.create(name=name, slug=slug)
    audit_record(
        actor=actor,
        tenant_id=tenant.pk,
        action=AuditAction.TENANT_CREATED,
        obj=tenant,
        changes={"name": name, "slug": slug},
    )
    return tenant


def tenant_suspend(*, actor: Actor, tenant: Tenant, reason: str) -> Tenant:
    """Suspend a tenant: its API keys answer 403; its data stays."""
    reason = reason.strip()[:500]
    return _tenant_status_change(
        actor=actor,
        tenant=tenant,
        status=Tenant.Status.SUSPENDED,
        reason=reason,
        action=AuditAction.TENANT_SUSPENDED,
        changes={"reason": reason},
    )


def tenant_reactivate(*, actor: Actor, tenant: Tenant) -> Tenant:
    return _tenant_status_change(
        actor=actor, tenant=tenant, status=Tenant.Status.ACTIVE, reason="", action=AuditAction.TENANT_REACTIVATED
    )


@transaction.atomic
def _tenant_status_change(
    *,
    actor: Actor,
    tenant: Tenant,
    status: Tenant.Status,
    reason: str,
    action: AuditAction,
    changes: dict[str, Any] | None = None,
) -> Tenant:
    """The tenant in `status` (with `reason`), audited, and its keys' kept entries dropped so that the next call
    with one sees it; a tenant already in it is left as it is."""
    tenant = Tenant.objects.select_for_update().get(pk=tenant.pk)
    if tenant.status == status:
        return tenant
    tenant.status = status
    tenant.suspended_reason = reason
    tenant.status_changed_at = timezone.now()
    tenant.save(update_fields=["status", "suspended_reason", "status_changed_at"])
    audit_record(actor=actor, tenant_id=tenant.pk, action=action, obj=tenant, changes=changes)
    _api_keys_forget(ApiKey.unscoped.filter(tenant=tenant).values_list("prefix", flat=True))
    return tenant


@transaction.atomic
def member_add(*, actor: Actor, tenant: Tenant, email: str, role: str) -> Membership:
    """Give a person (created if new, with no password yet) a role in a tenant."""
    email = get_user_model().objects.normalize_email(email.strip()).lower()
    if "@" not in email:
        raise ValidationError({"email": "Enter an email address."})
    if role not in Membership.Role.values:
        raise ValidationError({"role": f"Role must be one of {', '.join(Membership.Role.values)}."})
    user_model = get_user_model()
    user, created = user_model.objects.get_or_create(username=email, defaults={"email": email, "is_staff": True})
    if created:
        user.set_unusable_password()
        user.save(update_fields=["password"])
    if Membership.unscoped.filter(tenant=tenant, user=user).exists():
        raise ValidationError({"email": f"{email} is already a member of {tenant}."})
    membership = Membership.unscoped.create(tenant=tenant, user=user, role=role)
    audit_record(
        actor=actor,
        tenant_id=tenant.pk,
        action=AuditAction.MEMBERSHIP_CREATED,
        obj=membership,
        changes={"email": email, "role": role},
    )
    if not user.has_usable_password():
        transaction.on_commit(lambda: _send_welcome(user=user, tenant=tenant))
    return membership


def password_set_link(*, user: AbstractBaseUser) -> str:
    """A one-time link where a new member sets their password (Django's password-reset confirm page)."""
    uid = urlsafe_base64_encode(force_bytes(user.pk))
    token = default_token_generator.make_token(user)
    path = reverse("password_reset_confirm", kwargs={"uidb64": uid, "token": token})
    return f"{settings.PUBLIC_BASE_URL.rstrip('/')}{path}"


def _send_welcome(*, user: AbstractBaseUser, tenant: Tenant) -> None:
    send_mail(
        subject=f"You have been added to {tenant.name} on OpenAisle",
        message=(
            f"Hello,\n\nYou now have access to {tenant.name}'s store admin on OpenAisle.\n"
            f"Set your password here (the link works once): {password_set_link(user=user)}\n"
            f"Then sign in at {settings.PUBLIC_BASE_URL.rstrip('/')}/admin/ with {user.get_username()}.\n"
        ),
        from_email=None,
        recipient_list=[getattr(user, "email", "") or user.get_username()],
    )


def _hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


@transaction.atomic
def api_key_issue(
    *, actor: Actor, tenant: Tenant, name: str, created_by: AbstractBaseUser | None = None
) -> IssuedApiKey:
    name = name.strip()
    if not name or len(name) > 100:
        raise ValidationError({"name": "Give the key a name of 1 to 100 characters."})
    quota_require_room(tenant=tenant, name="api_keys")
    for _ in range(5):
        prefix = secrets.token_hex(_KEY_PREFIX_LENGTH // 2)
        key = f"oa_{prefix}_{secrets.token_urlsafe(32)}"
        try:
            with transaction.atomic():
                api_key = ApiKey.unscoped.create(
                    tenant=tenant, name=name, prefix=prefix, secret_hash=_hash_key(key), created_by=created_by
                )
            break
        except IntegrityError:
            continue
    else:
        raise RuntimeError("Could not draw a free API key prefix.")
    audit_record(
        actor=actor, tenant_id=tenant.pk, action=AuditAction.API_KEY_CREATED, obj=api_key, changes={"name": name}
    )
    return IssuedApiKey(api_key=api_key, key=key)


@transaction.atomic
def api_key_revoke(*, actor: Actor, api_key: ApiKey) -> ApiKey:
    api_key = ApiKey.unscoped.select_for_update().get(pk=api_key.pk)
    if api_key.revoked_at is None:
        api_key.revoked_at = timezone.now()
        api_key.save(update_fields=["revoked_at"])
        audit_record(actor=actor, tenant_id=api_key.tenant_id, action=AuditAction.API_KEY_REVOKED, obj=api_key)
        _api_keys_forget([api_key.prefix])
    return api_key


_SEEN_HERE: dict[str, tuple[int, str]] = {}
"""Keys this process authenticated, by prefix: their tenant's id and their secret's hash, neither of which ever
changes for a prefix. Whether such a key is still live is only ever read from its cache entry."""


def _prefix_of(key: str) -> str | None:
    if not key.startswith("oa_") or len(key) < 4 + _KEY_PREFIX_LENGTH or key[3 + _KEY_PREFIX_LENGTH] != "_":
        return None
    return key[3 : 3 + _KEY_PREFIX_LENGTH]


@dataclass(frozen=True)
class SeenApiKey:
    prefix: str
    entry_key: str
    """The cache key of the key's entry (with its tenant's)."""
    tenant_id: int


def api_key_seen(*, key: str) -> SeenApiKey | None:
    """For a key this process authenticated before: its prefix, the cache key of its entry and its tenant's id, so
    that a caller reads the entry along with that tenant's own entries in one round trip and hands what it read to
    `api_key_authenticate` (`kept`). None for any other key (then authenticate it first)."""
    prefix = _prefix_of(key)
    seen = _SEEN_HERE.get(prefix) if prefix is not None else None
    if prefix is None or seen is None or not hmac.compare_digest(seen[1], _hash_key(key)):
        return None
    return SeenApiKey(prefix=prefix, entry_key=_api_key_cache_key(prefix), tenant_id=seen[0])


def api_key_authenticate(*, key: str, kept: Mapping[str, Any] | None = None) -> ApiKey | None:
    """The live API key matching `key` (with its tenant), or None. Marks it used, at most once a minute.

    Every API call asks this, so the key and its tenant are kept in the cache (no query while they are there);
    revoking the key and suspending or reactivating its tenant remove the entry (`_api_keys_forget`). `kept`: what
    the caller read from the cache already (`api_key_seen`); without the key's entry among it, the cache is asked.
    """
    prefix = _prefix_of(key)
    if prefix is None:
        return None
    api_key = _api_key_cached(prefix, kept)
    if api_key is None or not hmac.compare_digest(api_key.secret_hash, _hash_key(key)):
        return None
    _SEEN_HERE[prefix] = (api_key.tenant_id, api_key.secret_hash)
    now = timezone.now()
    if api_key.last_used_at is None or now - api_key.last_used_at > API_KEY_LAST_USED_RESOLUTION:
        ApiKey.unscoped.filter(pk=api_key.pk).update(last_used_at=now)
        api_key.last_used_at = now
        cache.set(_api_key_cache_key(prefix), _api_key_entry(api_key), API_KEY_CACHE_SECONDS)
    return api_key


def _api_key_cache_key(prefix: str) -> str:
    return f"api-key:{prefix}"


def _api_key_entry(api_key: ApiKey) -> tuple[tuple[object, ...], tuple[object, ...]]:
    return (
        tuple(getattr(api_key, name) for name in _KEY_FIELDS),
        tuple(getattr(api_key.tenant, name) for name in _TENANT_FIELDS),
    )


def _api_key_cached(prefix: str, kept: Mapping[str, Any] | None = None) -> ApiKey | None:
    """The live key with this prefix and its tenant: from the cache (or what the caller read of it), or read once
    and kept."""
    entry = kept.get(_api_key_cache_key(prefix)) if kept is not None else None
    if entry is None:
        entry = cache.get(_api_key_cache_key(prefix))
    if entry is None:
        api_key = ApiKey.unscoped.select_related("tenant").filter(prefix=prefix, revoked_at__isnull=True).first()
        if api_key is None:
            return None
        cache.add(_api_key_cache_key(prefix), _api_key_entry(api_key), API_KEY_CACHE_SECONDS)
        return api_key
    built = _BUILT_HERE.get(prefix) if kept is not None else None
    if built is not None and built[0] == entry:
        return built[1]
    key_values, tenant_values = entry
    api_key = ApiKey.from_db("default", list(_KEY_FIELDS), list(key_values))
    api_key.tenant = Tenant.from_db("default", list(_TENANT_FIELDS), list(tenant_values))
    if kept is not None:
        _BUILT_HERE[prefix] = (entry, api_key)
    return api_key


_BUILT_HERE: dict[str, tuple[Any, ApiKey]] = {}
"""The key and tenant last built from each prefix's entry, for callers that read the entry themselves (`kept`: the
entry check, which only reads them): built again whenever the entry differs (~35 µs of the check's CPU)."""


def _api_keys_forget(prefixes: Iterable[str]) -> None:
    """Drop cached keys now and again once the change commits (a look-up in between may have kept the old)."""
    names = [_api_key_cache_key(prefix) for prefix in prefixes]
    if names:
        cache.delete_many(names)
        transaction.on_commit(lambda: cache.delete_many(names))
