"""A shopper's standing at the gate, kept ready in the cache (Redis) for the entry check.

The entry check is asked while a shopper stands at the gate, often with a queue behind, and while the workers
may be busy settling; it must not wait on the database or on Stripe. What it needs of the shopper — is the entry
token registered, revoked, is there a card, is a failed payment still owed — is computed here, by
`standing_compute` only, and kept under the token's hash.

Every service that changes one of those calls `standings_changed`: registering or replacing a card, revoking a
token, a card detached at Stripe, a payment declined, a failed payment collected, a visit whose payment failed
refunded or changed. It drops the entries at once (a check meanwhile reads the database) and writes the new
standing once the change has committed, so the very next check sees it. A check that finds no entry computes
the standing once and keeps it with `cache.add`, which never overwrites: a write from a change wins.

The tenant's suspension and the store's status are not part of the standing: they come with the API key and the
store, cached the same way (tenants.services, stores.selectors).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from django.core.cache import cache
from django.db import transaction
from django.db.models import QuerySet

from billing.payments.models import PaymentAttempt, Shopper
from core.entry_tokens import entry_token_hash as token_hash
from visits.models import Visit

STANDING_SECONDS = 24 * 3600  # a safety net only: every change writes the entry anew
UNKNOWN_TOKEN_SECONDS = 60  # a token nobody holds cannot become registered (tokens are drawn at random)


@dataclass(frozen=True)
class Standing:
    """`code`: ok, unknown_token, token_revoked, no_payment_method or open_balance (minor units owed)."""

    code: str
    open_balance: int = 0


def visits_owing(shopper: Shopper) -> QuerySet[Visit]:
    """The visits whose payment failed and that charged this shopper's card: what they owe."""
    return Visit.unscoped.filter(
        tenant_id=shopper.tenant_id, status=Visit.Status.PAYMENT_FAILED, payment_attempts__shopper=shopper
    ).distinct()


def open_balance(*, shopper: Shopper) -> int:
    return sum(visit.balance_due for visit in visits_owing(shopper))


def standing_compute(*, tenant_id: int, hashed_token: str) -> Standing:
    """The standing of the entry token with this hash, from the database."""
    shopper = Shopper.unscoped.filter(tenant_id=tenant_id, token_hash=hashed_token).first()
    if shopper is None:
        return Standing("unknown_token")
    if shopper.is_revoked:
        return Standing("token_revoked")
    if not shopper.payment_method_id:
        return Standing("no_payment_method")
    balance = open_balance(shopper=shopper)
    return Standing("open_balance", balance) if balance > 0 else Standing("ok")


def _key(tenant_id: int, hashed_token: str) -> str:
    return f"standing:{tenant_id}:{hashed_token}"


def _seconds(standing: Standing) -> int:
    return UNKNOWN_TOKEN_SECONDS if standing.code == "unknown_token" else STANDING_SECONDS


def standing_key(*, tenant_id: int, token: str) -> str:
    """The cache key of an entry token's standing (to read it along with other entries: `standing_of`'s `kept`)."""
    return _key(tenant_id, token_hash(token))


def standing_of(*, tenant_id: int, token: str, kept: Mapping[str, Any] | None = None) -> Standing:
    """The standing of an entry token: from the cache, or computed once and kept. `kept`: what the caller already
    read from the cache with this standing's key among others (`cache.get_many`); the cache is not asked again."""
    hashed = token_hash(token)
    entry = cache.get(_key(tenant_id, hashed)) if kept is None else kept.get(_key(tenant_id, hashed))
    if entry is not None:
        return Standing(*entry)
    standing = standing_compute(tenant_id=tenant_id, hashed_token=hashed)
    cache.add(_key(tenant_id, hashed), (standing.code, standing.open_balance), _seconds(standing))
    return standing


def standings_changed(*, tenant_id: int, hashed_tokens: Iterable[str]) -> None:
    """Something these tokens' standing depends on changed: drop their entries now, write them on commit."""
    hashes = sorted(set(hashed_tokens))
    if not hashes:
        return
    cache.delete_many([_key(tenant_id, hashed) for hashed in hashes])

    def write() -> None:
        for hashed in hashes:
            standing = standing_compute(tenant_id=tenant_id, hashed_token=hashed)
            cache.set(_key(tenant_id, hashed), (standing.code, standing.open_balance), _seconds(standing))

    transaction.on_commit(write)


def standings_changed_for_visit(visit: Visit) -> None:
    """The visit's money changed: the standing of the shoppers it charged (or whose token's hash it carries)."""
    charged = PaymentAttempt.unscoped.filter(visit_id=visit.pk).exclude(shopper=None).values("shopper_id")
    hashes = set(Shopper.unscoped.filter(pk__in=charged).values_list("token_hash", flat=True))
    if visit.shopper_token_hash:
        hashes.add(visit.shopper_token_hash)
    standings_changed(tenant_id=visit.tenant_id, hashed_tokens=hashes)
