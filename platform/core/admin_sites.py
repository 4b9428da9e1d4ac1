"""The two admin sites: `/admin/` for licensee staff (one tenant at a time) and `/ops/` for platform staff.

Each admin view runs, *and renders*, inside a tenant scope: the licensee site
in the scope of the member's chosen tenant, the operator site platform-wide.
Because tenant querysets filter on the scope, lists, search, autocomplete and
related-object pickers of the licensee site can only ever show that tenant.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from django.contrib.auth import REDIRECT_FIELD_NAME
from django.contrib.auth.models import AbstractBaseUser
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.http import url_has_allowed_host_and_scheme
from unfold.sites import UnfoldAdminSite

from core import tenancy
from tenants.selectors import memberships_of_user

OPERATOR_GROUP = "operator"
FINANCE_GROUP = "finance"
PLATFORM_GROUPS = (OPERATOR_GROUP, FINANCE_GROUP)
TENANT_SESSION_KEY = "admin_tenant_id"

View = Callable[..., HttpResponse]


def _render_inside(scope: Any, view: View, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
    """Call the view and render its template inside `scope`, since templates evaluate querysets lazily."""
    with scope:
        response = view(request, *args, **kwargs)
        if isinstance(response, TemplateResponse) and not response.is_rendered:
            response.render()
    return response


class _LoginLandsOnIndex:
    """Unfold's login form carries no `next` field: without one in the URL, Django would send people to
    LOGIN_REDIRECT_URL, which cannot name two sites' dashboards at once. Put the site's own index there."""

    name: str

    def login(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        if request.method == "GET" and REDIRECT_FIELD_NAME not in request.GET:
            index = reverse(f"{self.name}:index", current_app=self.name)
            return HttpResponseRedirect(f"{request.path}?{urlencode({REDIRECT_FIELD_NAME: index})}")
        return super().login(request, extra_context)  # type: ignore[misc]


def is_platform_staff(user: Any) -> bool:
    if not (user.is_active and user.is_authenticated):
        return False
    return bool(user.is_superuser or user.groups.filter(name__in=PLATFORM_GROUPS).exists())


class OpsAdminSite(_LoginLandsOnIndex, UnfoldAdminSite):
    """Platform staff (operators, finance): every tenant."""

    settings_name = "UNFOLD_OPS"
    site_header = "OpenAisle operations"
    site_title = "OpenAisle operations"
    index_title = "Operations dashboard"
    index_template = "admin/dashboard.html"

    def has_permission(self, request: HttpRequest) -> bool:
        return is_platform_staff(request.user)

    def admin_view(self, view: View, cacheable: bool = False) -> View:
        @functools.wraps(view)
        def platform_wide(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            return _render_inside(tenancy.platform_wide_scope(), view, request, *args, **kwargs)

        return super().admin_view(platform_wide, cacheable)


class LicenseeAdminSite(_LoginLandsOnIndex, UnfoldAdminSite):
    """A licensee's staff: exactly one tenant at a time, chosen at login when they belong to several."""

    settings_name = "UNFOLD"
    site_header = "OpenAisle store admin"
    site_title = "OpenAisle store admin"
    index_title = "Dashboard"
    index_template = "admin/dashboard.html"

    def has_permission(self, request: HttpRequest) -> bool:
        user = request.user
        if not (user.is_active and user.is_authenticated):
            return False
        return self._memberships(user).exists()

    def admin_view(self, view: View, cacheable: bool = False) -> View:
        @functools.wraps(view)
        def tenant_scoped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            membership = self.active_membership(request)
            if membership is None:
                choose = reverse(f"{self.name}:choose_tenant", current_app=self.name)
                return HttpResponseRedirect(f"{choose}?next={request.get_full_path()}")
            request.membership = membership  # type: ignore[attr-defined]
            request.tenant = membership.tenant  # type: ignore[attr-defined]
            return _render_inside(tenancy.tenant_scope(membership.tenant_id), view, request, *args, **kwargs)

        return super().admin_view(tenant_scoped, cacheable)

    def get_urls(self) -> list[URLPattern]:
        choose = path("tenant/", super().admin_view(self.choose_tenant), name="choose_tenant")
        return [choose, *super().get_urls()]

    def each_context(self, request: HttpRequest) -> dict[str, Any]:
        context = super().each_context(request)
        tenant = getattr(request, "tenant", None)
        if tenant is not None:
            context["site_subheader"] = tenant.name
            context["tenant"] = tenant
            context["tenant_suspended"] = not tenant.is_active
        return context

    def choose_tenant(self, request: HttpRequest) -> HttpResponse:
        """The tenant picker for people who work for several licensees."""
        memberships = list(self._memberships(request.user))
        next_url = request.POST.get("next") or request.GET.get("next") or ""
        if not url_has_allowed_host_and_scheme(
            next_url, allowed_hosts={request.get_host()}, require_https=request.is_secure()
        ):  # a page of this site only: never //evil.example, https://evil.example or javascript:
            next_url = reverse(f"{self.name}:index")
        if request.method == "POST":
            chosen = request.POST.get("tenant", "")
            if any(str(m.tenant_id) == chosen for m in memberships):
                request.session[TENANT_SESSION_KEY] = int(chosen)
                return HttpResponseRedirect(next_url)
        context = {
            **super().each_context(request),
            "title": "Choose an account",
            "memberships": memberships,
            "next": next_url,
        }
        return TemplateResponse(request, "admin/choose_tenant.html", context)

    def active_membership(self, request: HttpRequest) -> Any:
        memberships = list(self._memberships(request.user))
        chosen = request.session.get(TENANT_SESSION_KEY)
        for membership in memberships:
            if membership.tenant_id == chosen:
                return membership
        if len(memberships) == 1:
            request.session[TENANT_SESSION_KEY] = memberships[0].tenant_id
            return memberships[0]
        return None

    @staticmethod
    def _memberships(user: AbstractBaseUser | Any) -> Any:
        return memberships_of_user(user=user)


ops_site = OpsAdminSite(name="ops")
licensee_site = LicenseeAdminSite(name="admin")
