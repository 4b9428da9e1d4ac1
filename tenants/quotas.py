"""How much of each kind of thing one tenant may hold: live API keys, webhook endpoints, stores, shoppers' cards,
event uploads in flight.

A limit is the tenant's own (set by an operator in /ops/) or else the platform's default (settings, from the
environment). Every write that adds one calls `quota_require_room` inside its transaction: it locks the tenant's
row, so two requests racing for the last place are served one after the other and never both get it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.apps import apps
from django.conf import settings
from django.db import transaction

from tenants.models import Tenant


@dataclass(frozen=True)
class Quota:
    name: str
    model: str
    in_use: dict[str, Any]
    noun: str
    to_free: str

    @property
    def field(self) -> str:
        """The Tenant field holding this tenant's own limit (empty: the platform's default)."""
        return f"max_{self.name}"

    def used_by(self, tenant: Tenant) -> int:
        return int(apps.get_model(self.model).unscoped.filter(tenant=tenant, **self.in_use).count())


QUOTAS = {
    quota.name: quota
    for quota in (
        Quota("api_keys", "tenants.ApiKey", {"revoked_at__isnull": True}, "live API keys", "revoke a key"),
        Quota("webhook_endpoints", "webhooks.WebhookEndpoint", {}, "webhook endpoints", "delete an endpoint"),
        Quota("stores", "stores.Store", {}, "stores", ""),
        Quota("shoppers", "payments.Shopper", {"revoked_at__isnull": True}, "registered shoppers", "revoke a shopper"),
        Quota(
            "streams_in_flight",
            "ingest.EventStream",
            {"source": "upload", "status__in": ["queued", "processing"]},
            "event uploads being processed",
            "wait for one to finish",
        ),
    )
}


class QuotaExceeded(Exception):
    """Adding one more would take the tenant past its limit; nothing was written."""

    def __init__(self, *, quota: Quota, limit: int, in_use: int) -> None:
        self.quota, self.limit, self.in_use = quota, limit, in_use
        way_out = f"{quota.to_free.capitalize()} first, or ask" if quota.to_free else "Ask"
        super().__init__(
            f"This account has {in_use} {quota.noun}, its limit of {limit}. "
            f"{way_out} the platform operator to raise the limit."
        )

    @property
    def details(self) -> dict[str, Any]:
        return {"quota": self.quota.name, "limit": self.limit, "in_use": self.in_use}


def quota_limit(*, tenant: Tenant, name: str) -> int:
    """The tenant's limit for `name`: its own if an operator set one, else the platform's default."""
    own: int | None = getattr(tenant, QUOTAS[name].field)
    return own if own is not None else int(settings.TENANT_QUOTAS[name])


def quota_require_room(*, tenant: Tenant, name: str) -> None:
    """Raise QuotaExceeded unless the tenant may add one more `name`.

    Locks the tenant's row until the caller's transaction ends, so that the caller's write is counted by the next.
    """
    quota = QUOTAS[name]
    with transaction.atomic():
        locked = Tenant.objects.select_for_update().get(pk=tenant.pk)
        limit = quota_limit(tenant=locked, name=name)
        in_use = quota.used_by(locked)
        if in_use >= limit:
            raise QuotaExceeded(quota=quota, limit=limit, in_use=in_use)
