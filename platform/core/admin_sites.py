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

from django.contrib import messages
from django.contrib.auth import REDIRECT_FIELD_NAME
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html
from django.utils.http import url_has_allowed_host_and_scheme
from unfold.forms import AuthenticationForm
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


class _SiteLogin:
    """The login of one of the two sites.

    Unfold's login form carries no `next` field: without one in the URL, Django would send people to
    LOGIN_REDIRECT_URL, which cannot name two sites' dashboards at once. Put the site's own index there.

    The right password at the wrong site (a store manager at /ops/, an operator at /admin/) is refused with
    the site the account belongs to, as is a person signed in at one site who opens the other; Django's
    admin would otherwise sign them in and show the empty form again, with no word why.
    """

    name: str

    def __init__(self, name: str) -> None:
        super().__init__(name)  # type: ignore[call-arg]
        self.login_form = self.login_form_class()

    def admits(self, user: Any) -> bool:
        """Whether this person may use this site."""
        raise NotImplementedError

    def has_permission(self, request: HttpRequest) -> bool:
        return self.admits(request.user)

    def login(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        if request.method == "GET" and REDIRECT_FIELD_NAME not in request.GET:
            index = reverse(f"{self.name}:index", current_app=self.name)
            return HttpResponseRedirect(f"{request.path}?{urlencode({REDIRECT_FIELD_NAME: index})}")
        if request.method == "GET" and request.user.is_authenticated and not self.admits(request.user):
            messages.warning(request, wrong_site_message(user=request.user, site=self.name))
        return super().login(request, extra_context)  # type: ignore[misc]

    def login_form_class(self) -> type[AuthenticationForm]:
        site = self

        class SiteAuthenticationForm(AuthenticationForm):
            def confirm_login_allowed(self, user: Any) -> None:
                super().confirm_login_allowed(user)
                if not site.admits(user):
                    raise ValidationError(wrong_site_message(user=user, site=site.name), code="wrong_site")

        return SiteAuthenticationForm


def wrong_site_message(*, user: Any, site: str) -> str:
    """Why this account cannot use this site, and the site (if any) where it can."""
    if site == "ops" and memberships_of_user(user=user).exists():
        return format_html(
            "This is a store admin account: operations is for OpenAisle's own staff. "
            'Sign in at the <a href="{}" class="underline font-semibold">store admin</a> instead.',
            reverse("admin:index"),
        )
    if site == "admin" and is_platform_staff(user):
        return format_html(
            "This is an OpenAisle operations account (operators and finance), not a store's. "
            'Sign in at <a href="{}" class="underline font-semibold">operations</a> instead.',
            reverse("ops:index"),
        )
    if site == "ops":
        return "This account has no operations role. Ask an OpenAisle administrator for one."
    return "This account is not a member of any licensee yet. Ask your store's manager to add you to its team."


def is_platform_staff(user: Any) -> bool:
    if not (user.is_active and user.is_authenticated):
        return False
    return bool(user.is_superuser or user.groups.filter(name__in=PLATFORM_GROUPS).exists())


class OpsAdminSite(_SiteLogin, UnfoldAdminSite):
    """Platform staff (operators, finance): every tenant."""

    settings_name = "UNFOLD_OPS"
    site_header = "OpenAisle operations"
    site_title = "OpenAisle operations"
    index_title = "Operations dashboard"
    index_template = "admin/dashboard.html"

    def admits(self, user: Any) -> bool:
        return is_platform_staff(user)

    def admin_view(self, view: View, cacheable: bool = False) -> View:
        @functools.wraps(view)
        def platform_wide(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            return _render_inside(tenancy.platform_wide_scope(), view, request, *args, **kwargs)

        return super().admin_view(platform_wide, cacheable)


class LicenseeAdminSite(_SiteLogin, UnfoldAdminSite):
    """A licensee's staff: exactly one tenant at a time, chosen at login when they belong to several."""

    settings_name = "UNFOLD"
    site_header = "OpenAisle store admin"
    site_title = "OpenAisle store admin"
    index_title = "Dashboard"
    index_template = "admin/dashboard.html"

    def admits(self, user: Any) -> bool:
        return bool(user.is_active and user.is_authenticated and self._memberships(user).exists())

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
