"""Sign-in throttling on both admin sites (`/admin/`, `/ops/`), with django-axes.

After `LOGIN_FAILURE_LIMIT` wrong passwords for one username from one address, that username is locked
at that address for `LOGIN_COOLOFF_MINUTES` (each further try while locked starts the wait again; a
right password then is refused too). Locking the pair, not the username alone, means a stranger cannot
lock a manager out of their own store. The sign-in page says why (429); the lockout is written to the
audit log when it starts; operators see the locks in `/ops/` ("Sign-in lockouts") and can lift one
early, which is audited too.

Only sign-in forms are throttled: `authenticate()` without a request (a shell, a management command,
the test client's `login()`) is left to the next backend, since there is no address to lock.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from axes.backends import AxesStandaloneBackend
from axes.models import AccessAttempt
from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils import timezone

from tenants.audit import Actor, audit_record
from tenants.models import AuditAction, AuditEntry


class LoginThrottleBackend(AxesStandaloneBackend):
    """Refuses a sign-in while its username is locked at its address; never signs anybody in itself."""

    def authenticate(
        self, request: HttpRequest | None, username: str | None = None, password: str | None = None, **kwargs: Any
    ) -> AbstractBaseUser | None:
        if request is None:
            return None
        return super().authenticate(request, username, password, **kwargs)


def client_ip(request: HttpRequest) -> str:
    """The caller's address: the entry `LOGIN_PROXY_COUNT` places from the right of X-Forwarded-For (what the
    nearest trusted proxy saw), or the connection's address when no proxy is declared."""
    proxies = settings.LOGIN_PROXY_COUNT
    forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if part.strip()]
    if proxies and len(forwarded) >= proxies:
        return forwarded[-proxies]
    return str(request.META.get("REMOTE_ADDR", ""))


def _site_of(request: HttpRequest) -> str:
    return AuditEntry.Source.OPS if request.path.startswith("/ops/") else AuditEntry.Source.ADMIN


def locked_until(attempt: AccessAttempt) -> datetime | None:
    """When a lock on this username and address ends, or None when it is not locked."""
    if attempt.failures_since_start < settings.AXES_FAILURE_LIMIT:
        return None
    until: datetime = attempt.attempt_time + settings.AXES_COOLOFF_TIME
    return until if until > timezone.now() else None


def lockout_response(
    request: HttpRequest, original_response: HttpResponse | None = None, credentials: dict[str, Any] | None = None
) -> HttpResponse:
    """The site's own sign-in page, saying why it refuses (429 Too Many Requests)."""
    from core.admin_sites import licensee_site, ops_site

    site = ops_site if _site_of(request) == AuditEntry.Source.OPS else licensee_site
    minutes = int(settings.AXES_COOLOFF_TIME.total_seconds() // 60)
    context = {
        **site.each_context(request),
        "title": "Log in",
        "app_path": request.get_full_path(),
        "form": site.login_form(request),
        "lockout_message": (
            f"Too many failed sign-ins for this account from your address. Try again in {minutes} minutes "
            "(each further try starts the wait again), or ask an OpenAisle operator to unlock it."
        ),
    }
    return TemplateResponse(request, "admin/login_locked_out.html", context, status=429).render()


def record_lockout(sender: Any, request: HttpRequest, username: str | None, ip_address: str, **_: Any) -> None:
    """Audit a lockout once, as it starts (axes signals every refused try while locked)."""
    if getattr(request, "axes_failures_since_start", None) != settings.AXES_FAILURE_LIMIT:
        return
    attempt = AccessAttempt.objects.filter(username=username, ip_address=ip_address).order_by("-pk").first()
    if attempt is None:
        return
    audit_record(
        actor=Actor(source=_site_of(request), request_id=getattr(request, "request_id", "")),
        tenant_id=None,
        action=AuditAction.LOGIN_LOCKED,
        obj=attempt,
        changes={
            "username": username or "",
            "ip_address": ip_address,
            "failures": attempt.failures_since_start,
            "locked_until": (attempt.attempt_time + settings.AXES_COOLOFF_TIME).isoformat(),
        },
    )


def lockout_release(*, actor: Actor, attempt: AccessAttempt) -> None:
    """Lift a lock (and forget its failures) before its time, audited."""
    with transaction.atomic():
        audit_record(
            actor=actor,
            tenant_id=None,
            action=AuditAction.LOGIN_UNLOCKED,
            obj=attempt,
            changes={
                "username": attempt.username or "",
                "ip_address": attempt.ip_address or "",
                "failures": attempt.failures_since_start,
            },
        )
        attempt.delete()


def connect_signals() -> None:
    from axes.signals import user_locked_out

    user_locked_out.connect(record_lockout, weak=False, dispatch_uid="openaisle-login-lockout-audit")
