"""The tenant scope: which tenant's rows the running code may read.

Every request and task runs inside exactly one scope. Tenant-owned querysets
read the scope and **fail closed**: with no scope they raise instead of
returning every tenant's rows. Operators' pages and platform jobs that must
see all tenants enter `platform_wide_scope()`, an explicit, greppable escape
hatch.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from contextvars import ContextVar
from typing import Any, Final, ParamSpec, TypeVar

from core.context import set_within


class TenantScopeMissing(RuntimeError):
    """Tenant data was queried with no tenant in scope."""


class _PlatformWide:
    def __repr__(self) -> str:
        return "PLATFORM_WIDE"


PLATFORM_WIDE: Final = _PlatformWide()

_scope: ContextVar[int | _PlatformWide | None] = ContextVar("tenant_scope", default=None)


@contextlib.contextmanager
def tenant_scope(tenant_id: int) -> Iterator[None]:
    """Run the block with `tenant_id`'s data, and only that, visible."""
    if not isinstance(tenant_id, int) or isinstance(tenant_id, bool):
        raise TypeError(f"tenant_scope takes a tenant id, not {tenant_id!r}")
    with set_within(_scope, tenant_id):
        yield


def platform_wide_scope() -> AbstractContextManager[None]:
    """Run the block with every tenant's data visible (operators, platform jobs)."""
    return set_within(_scope, PLATFORM_WIDE)


def no_scope() -> AbstractContextManager[None]:
    """Run the block with no tenant in scope (used to reset between requests)."""
    return set_within(_scope, None)


def active_scope() -> int | _PlatformWide:
    """The tenant id in scope, or PLATFORM_WIDE; raises when there is none."""
    scope = _scope.get()
    if scope is None:
        raise TenantScopeMissing(
            "Tenant data queried outside a tenant scope. Enter tenant_scope(tenant_id) "
            "or, for platform-wide work, platform_wide_scope()."
        )
    return scope


def current_tenant_id() -> int:
    """The tenant id in scope; raises when none, or when the scope is platform-wide."""
    scope = active_scope()
    if isinstance(scope, _PlatformWide):
        raise TenantScopeMissing("This needs one tenant, but the scope is platform-wide.")
    return scope


P = ParamSpec("P")
R = TypeVar("R")


def in_tenant_scope(func: Callable[P, R]) -> Callable[P, R]:
    """Run a function (typically a Celery task) inside the scope of its `tenant_id` keyword."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        tenant_id: Any = kwargs.get("tenant_id")
        if tenant_id is None:
            raise TenantScopeMissing(f"{func.__qualname__} must be called with tenant_id=...")
        with tenant_scope(int(tenant_id)):
            return func(*args, **kwargs)

    return wrapper
