"""Who did what to which object: the actor of a write, and the audit log it lands in."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db import models
from django.http import HttpRequest

from tenants.models import ApiKey, AuditAction, AuditEntry


@dataclass(frozen=True)
class Actor:
    """The person or system behind a write, and where it came from."""

    source: str
    user: AbstractBaseUser | None = None
    api_key: ApiKey | None = None
    request_id: str = ""

    @property
    def label(self) -> str:
        if self.api_key is not None:
            return f"API key {self.api_key.name} ({self.api_key.display_prefix})"
        if self.user is not None:
            return str(self.user.get_username())
        return self.source

    @classmethod
    def for_request(cls, request: HttpRequest, *, source: str) -> Actor:
        user = getattr(request, "user", None)
        auth = getattr(request, "auth", None)
        return cls(
            source=source,
            user=user if isinstance(user, AbstractBaseUser) else None,
            api_key=auth if isinstance(auth, ApiKey) else None,
            request_id=getattr(request, "request_id", ""),
        )

    @classmethod
    def system(cls) -> Actor:
        return cls(source=AuditEntry.Source.SYSTEM)

    @classmethod
    def cli(cls) -> Actor:
        return cls(source=AuditEntry.Source.CLI)


def audit_entry(
    *,
    actor: Actor,
    tenant_id: int | None,
    action: AuditAction,
    obj: models.Model,
    changes: dict[str, Any] | None = None,
) -> AuditEntry:
    """One audit entry, not yet written; an action that is no `AuditAction` is refused (ValueError)."""
    user: Any = actor.user if actor.user is not None and not isinstance(actor.user, AnonymousUser) else None
    return AuditEntry(
        tenant_id=tenant_id,
        source=actor.source,
        actor_user=user,
        actor_api_key=actor.api_key,
        actor_label=actor.label[:200],
        action=AuditAction(action),
        object_type=obj._meta.label_lower,
        object_id=str(obj.pk),
        object_repr=str(obj)[:200],
        changes=changes or {},
        request_id=actor.request_id,
    )


def audit_record(
    *,
    actor: Actor,
    tenant_id: int | None,
    action: AuditAction,
    obj: models.Model,
    changes: dict[str, Any] | None = None,
) -> AuditEntry:
    """Append one entry to the audit log."""
    entry = audit_entry(actor=actor, tenant_id=tenant_id, action=action, obj=obj, changes=changes)
    entry.save()
    return entry


def audit_record_many(entries: Iterable[AuditEntry]) -> None:
    """Append many entries (from `audit_entry`) in bulk: a write that touches every tenant at once."""
    AuditEntry.unscoped.bulk_create(entries, batch_size=2000)
