"""API authentication by tenant API key (`Authorization: Bearer oa_…`), its permission and throttle."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.core.cache import cache
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.throttling import SimpleRateThrottle

from core.cache import count_in_window
from tenants.models import ApiKey, Tenant
from tenants.services import api_key_authenticate


@dataclass(frozen=True)
class ApiClient:
    """`request.user` of an API call: the licensee system behind an API key."""

    api_key: ApiKey
    is_authenticated: bool = True
    is_anonymous: bool = False

    @property
    def tenant(self) -> Tenant:
        return self.api_key.tenant

    def get_username(self) -> str:
        return f"api-key:{self.api_key.display_prefix}"


class ApiKeyAuthentication(BaseAuthentication):
    def authenticate(self, request: Request) -> tuple[ApiClient, ApiKey] | None:
        parts = get_authorization_header(request).split()
        if not parts:
            return None
        if parts[0].lower() != b"bearer" or len(parts) != 2:
            raise exceptions.AuthenticationFailed("Send the API key as 'Authorization: Bearer <key>'.")
        try:
            raw_key = parts[1].decode("ascii")
        except UnicodeDecodeError as error:
            raise exceptions.AuthenticationFailed("The API key is not valid.") from error
        api_key = api_key_authenticate(key=raw_key)
        if api_key is None:
            raise exceptions.AuthenticationFailed("The API key is not valid or has been revoked.")
        return ApiClient(api_key=api_key), api_key

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="openaisle"'


class TenantSuspended(exceptions.PermissionDenied):
    default_code = "tenant_suspended"


class HasActiveTenant(BasePermission):
    """The call carries an API key whose tenant is active."""

    def has_permission(self, request: Request, view: Any) -> bool:
        api_key = request.auth
        if not isinstance(api_key, ApiKey):
            raise exceptions.NotAuthenticated("Authentication is required: send 'Authorization: Bearer <key>'.")
        if not api_key.tenant.is_active and not getattr(view, "answers_suspended_tenants", False):
            raise TenantSuspended(
                f"The account {api_key.tenant.slug!r} is suspended; the API is unavailable until it is "
                "reactivated. Contact OpenAisle support."
            )
        return True


class ApiKeyRateThrottle(SimpleRateThrottle):
    """Requests per API key (API_RATE_PER_KEY, e.g. 6000/min): one counter in the cache per key and window.

    DRF's own throttle keeps the time of every request of the window in one list and reads and rewrites it whole
    on every call: 6,000 entries at the default rate, costing more CPU than the entry check it guards. A counter
    per fixed window (one `add` or `incr`) costs the same at any rate.
    """

    scope = "api_key"
    window_ends = 0.0

    def get_cache_key(self, request: Request, view: Any) -> str | None:
        if not isinstance(request.auth, ApiKey):
            return None
        return _counter_key(request.auth.prefix)

    def allow_request(self, request: Request, view: Any) -> bool:
        return self.allow_request_reading(request, view, keys=())[0]

    def allow_request_reading(self, request: Request, view: Any, *, keys: Sequence[str]) -> tuple[bool, dict[str, Any]]:
        """`allow_request`, and the cache's entries under `keys` read in the same round trip (`cache.get_many`)."""
        return self.allow_reading(self.get_cache_key(request, view), keys=keys)

    def allow_key_reading(self, *, prefix: str, keys: Sequence[str]) -> tuple[bool, dict[str, Any]]:
        """`allow_request_reading` for the key with this prefix, before the call is authenticated (the entry
        check: core/api/views.py, `count_and_read_first`)."""
        return self.allow_reading(_counter_key(prefix), keys=keys)

    def allow_reading(self, key: str | None, *, keys: Sequence[str]) -> tuple[bool, dict[str, Any]]:
        allowed, seconds = self.parse_rate(self.rate)
        if allowed is None or seconds is None or key is None:
            return True, (dict(cache.get_many(keys)) if keys else {})
        self.now = self.timer()
        window = int(self.now // seconds)
        self.window_ends = (window + 1) * seconds
        count, found = count_in_window(f"{key}:{window}", seconds=seconds + 1, reading=keys)
        return count <= allowed, found

    def wait(self) -> float | None:
        return max(self.window_ends - self.now, 0.001)


def _counter_key(prefix: str) -> str:
    return f"throttle:api_key:{prefix}"
