"""Base classes of the licensee API views: every handler runs in its API key's tenant scope."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Sequence
from typing import Any

from django.core.cache import cache
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponseBase
from drf_spectacular.utils import extend_schema
from rest_framework.generics import GenericAPIView
from rest_framework.pagination import BasePagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.serializers import BaseSerializer
from rest_framework.views import APIView

from core import tenancy
from core.api.pagination import PagePagination
from tenants.audit import Actor
from tenants.authentication import ApiKeyRateThrottle
from tenants.models import ApiKey, AuditEntry, Tenant
from tenants.services import api_key_authenticate, api_key_seen


class TenantAPIView(APIView):
    """Base of every licensee API view: the handler runs in the tenant scope of the API key that authenticated it."""

    pagination_class: type[BasePagination] | None = PagePagination
    """How lists are paged; drf-spectacular documents a `many=True` answer of a GET as a page of them."""
    throttle_reads_along = False
    """True: the handler counts the call against its key's rate itself, with the cache entries it reads, in one
    round trip to Redis instead of two (`check_throttles_reading`): the entry check, asked at a gate with a queue."""
    _scope_stack: contextlib.ExitStack
    _counted: tuple[bool, dict[str, Any], float] | None = None

    @property
    def tenant(self) -> Tenant:
        """The tenant of the API key that authenticated this call."""
        api_key: Any = self.request.auth
        tenant: Tenant = api_key.tenant
        return tenant

    @property
    def actor(self) -> Actor:
        """Who the audit log names for what this call writes: its API key (and request id)."""
        return Actor.for_request(self.request, source=AuditEntry.Source.API)

    def dispatch(self, request: Any, *args: Any, **kwargs: Any) -> HttpResponseBase:
        with contextlib.ExitStack() as stack:
            self._scope_stack = stack
            return super().dispatch(request, *args, **kwargs)

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        api_key: Any = request.auth
        self._scope_stack.enter_context(tenancy.tenant_scope(api_key.tenant_id))

    def check_throttles(self, request: Request) -> None:
        if not self.throttle_reads_along:
            super().check_throttles(request)

    def count_and_read_first(
        self, request: HttpRequest, *, keys_of: Callable[[int], Sequence[str]]
    ) -> tuple[ApiKey, dict[str, Any]] | None:
        """Before DRF sees the call, for a key this process authenticated before (`api_key_seen`): the key's entry,
        its rate counted and the tenant's entries under `keys_of(tenant_id)`, in one round trip to Redis; the live
        key and what the cache has of those entries.

        None when DRF's own way must answer: a key not seen here, one not live any more (its entry gone from the
        cache), or past its rate. What was counted and read is then kept for `check_throttles_reading`, which counts
        nothing again: a call is counted once whichever way it is answered.
        """
        parts = request.META.get("HTTP_AUTHORIZATION", "").split()
        seen = api_key_seen(key=parts[1]) if len(parts) == 2 and parts[0].lower() == "bearer" else None
        if seen is None:
            return None
        throttle = ApiKeyRateThrottle()
        allowed, found = throttle.allow_key_reading(prefix=seen.prefix, keys=[seen.entry_key, *keys_of(seen.tenant_id)])
        self._counted = (allowed, found, (throttle.wait() or 0.0) if not allowed else 0.0)
        api_key = api_key_authenticate(key=parts[1], kept=found) if seen.entry_key in found else None
        if not allowed or api_key is None:
            return None
        return api_key, found

    def check_throttles_reading(self, request: Request, keys: Sequence[str]) -> dict[str, Any]:
        """DRF's `check_throttles` (429 past the rate), reading the cache's entries under `keys` in the same round
        trip as the key's counter; what the cache has of them, as `cache.get_many` answers. After
        `count_and_read_first`, what it counted and read."""
        if self._counted is not None:
            allowed, kept, wait = self._counted
            if not allowed:
                self.throttled(request, wait)
            return kept
        found: dict[str, Any] | None = None
        waits: list[float] = []
        for throttle in self.get_throttles():
            if found is None and isinstance(throttle, ApiKeyRateThrottle):
                allowed, found = throttle.allow_request_reading(request, self, keys=keys)
            else:
                allowed = throttle.allow_request(request, self)
            if not allowed:
                waits.append(throttle.wait() or 0.0)
        if waits:
            self.throttled(request, max(waits))
        return found if found is not None else dict(cache.get_many(keys))

    def paginated_response(
        self, request: Request, *, queryset: QuerySet[Any], rows: Callable[[list[Any]], Any]
    ) -> Response:
        """One page of `queryset` as `{"count", "next", "previous", "results"}`, the results `rows(page)`."""
        paginator = PagePagination()
        page = paginator.paginate_queryset(queryset, request, view=self) or []
        return paginator.get_paginated_response(rows(page))


class TenantGenericAPIView(TenantAPIView, GenericAPIView):
    pass


def page_of(
    serializer_class: type[BaseSerializer[Any]],
) -> Callable[[Callable[..., QuerySet[Any]]], Callable[..., Response]]:
    """A GET handler that returns what it lists answers one page of it, each row as `serializer_class` gives it; the
    OpenAPI document says so (a page of them)."""

    def decorate(select: Callable[..., QuerySet[Any]]) -> Callable[..., Response]:
        @functools.wraps(select)
        def get(view: TenantAPIView, request: Request, *args: Any, **kwargs: Any) -> Response:
            rows = select(view, request, *args, **kwargs)
            return view.paginated_response(
                request, queryset=rows, rows=lambda page: serializer_class(page, many=True).data
            )

        return extend_schema(responses=serializer_class(many=True))(get)

    return decorate
