"""Service levels in both admin sites: a licensee's stores in the store admin; every tenant, sortable, in the
operations console (a tenant's row opens its stores). Both show the plan's promises and whether the period
keeps them, measured as invoices measure them (`service_levels.selectors`, `billing.invoicing.calculations`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any
from urllib.parse import urlencode

from django.contrib import admin
from django.http import Http404, HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils import timezone

from billing.invoicing.calculations import missed_promises, promises_in_words
from billing.invoicing.models import PlanVersion
from billing.invoicing.selectors import plan_versions_on
from billing.invoicing.services import month_levels_of, promises_of
from core import tenancy
from core.admin import OpsModelAdmin, ReadOnlyMixin, TenantModelAdmin
from core.admin_sites import licensee_site, ops_site
from service_levels import selectors
from service_levels.models import ServiceLevel
from service_levels.selectors import ServiceLevels
from tenants.models import Tenant

TEMPLATE = "admin/service_levels/page.html"
SORTS = ("name", "visits", "without_person", "receipt_p95", "review_p95", "disputes", "refunded", "missed")


@dataclass(frozen=True)
class Row:
    """One line of the table: a tenant or a store, its figures, and (for a tenant) its plan's promises."""

    name: str
    levels: ServiceLevels
    url: str = ""
    promises: str = ""
    missed: tuple[str, ...] = ()
    total: bool = False

    def sort_key(self, key: str) -> Any:
        levels = self.levels
        values = {
            "name": self.name.lower(),
            "visits": levels.visits,
            "without_person": levels.settled_without_person,
            "receipt_p95": levels.exit_to_receipt_s.p95,
            "review_p95": levels.review_time_to_decision_s.p95,
            "disputes": levels.disputes,
            "refunded": levels.refunded,
            "missed": len(self.missed) if self.promises else None,
        }
        return values[key]


def _row(name: str, levels: ServiceLevels, version: PlanVersion | None, **extra: Any) -> Row:
    promised = promises_of(version) if version is not None else None
    words = promises_in_words(promised) if promised is not None else ""
    missed = tuple(missed_promises(promised, month_levels_of(levels))) if promised is not None else ()
    return Row(name=name, levels=levels, promises=words, missed=missed, **extra)


def period_asked(request: HttpRequest) -> tuple[date, date, str]:
    """The local days asked for (`?from=&to=`, both included), this month so far by default; a problem to show
    when the dates cannot be used."""
    today = timezone.localdate()
    default = (today.replace(day=1), today)
    raw_from, raw_to = request.GET.get("from", ""), request.GET.get("to", "")
    if not raw_from and not raw_to:
        return (*default, "")
    try:
        first, last = date.fromisoformat(raw_from), date.fromisoformat(raw_to)
    except ValueError:
        return (*default, "Those dates could not be read (YYYY-MM-DD): showing this month so far.")
    if last < first:
        return (*default, "The period ends before it starts: showing this month so far.")
    if last - first > selectors.MAX_PERIOD:
        return (*default, "A period is at most 366 days: showing this month so far.")
    return first, last, ""


def _shortcuts(request: HttpRequest) -> list[tuple[str, str]]:
    today = timezone.localdate()
    last_month_end = today.replace(day=1) - timedelta(days=1)
    keep = {k: v for k, v in request.GET.items() if k not in ("from", "to")}
    spans = [
        ("This month", today.replace(day=1), today),
        ("Last month", last_month_end.replace(day=1), last_month_end),
        ("Last 7 days", today - timedelta(days=6), today),
        ("Last 30 days", today - timedelta(days=29), today),
    ]
    return [(label, "?" + urlencode({**keep, "from": f"{a}", "to": f"{b}"})) for label, a, b in spans]


class _Page:
    """What both sites' pages share: the period bar and the table's template."""

    admin_site: Any
    model: Any

    def _render(self, request: HttpRequest, *, title: str, rows: list[Row], **context: Any) -> HttpResponse:
        first, last, problem = period_asked(request)
        return TemplateResponse(
            request,
            TEMPLATE,
            {
                **self.admin_site.each_context(request),
                "opts": self.model._meta,
                "title": title,
                "rows": rows,
                "first": first,
                "last": last,
                "problem": problem,
                "shortcuts": _shortcuts(request),
                **context,
            },
        )


@admin.register(ServiceLevel, site=licensee_site)
class ServiceLevelAdmin(ReadOnlyMixin, _Page, TenantModelAdmin):
    """A store manager's page: the account and each store over a period, and the plan's promises."""

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        first, last, _ = period_asked(request)
        levels = selectors.tenant_service_levels_on_days(first_day=first, last_day=last)
        tenant: Tenant = request.tenant  # type: ignore[attr-defined]
        version = plan_versions_on(day=last).get(tenant.pk)
        total = _row(f"All stores of {tenant.name}", levels.total, version, total=True)
        rows = [total, *(Row(name=f"{store.code} — {store.name}", levels=own) for store, own in levels.stores)]
        return self._render(request, title="Service levels", rows=rows, promises=total, sortable=False)


@admin.register(ServiceLevel, site=ops_site)
class ServiceLevelOpsAdmin(ReadOnlyMixin, _Page, OpsModelAdmin):
    """Operators: every tenant over a period, sortable by any figure; `?tenant=` shows one tenant's stores."""

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        first, last, _ = period_asked(request)
        versions = plan_versions_on(day=last)
        asked = request.GET.get("tenant", "")
        if asked:
            return self._tenant_view(request, asked, first=first, last=last, versions=versions)
        measured = selectors.service_levels_by_tenant(first_day=first, last_day=last)
        period = urlencode({"from": f"{first}", "to": f"{last}"})
        rows = [
            _row(
                tenant.name,
                measured.get(tenant.pk, ServiceLevels()),
                versions.get(tenant.pk),
                url=f"?{period}&tenant={tenant.pk}",
            )
            for tenant in Tenant.objects.order_by("name")
        ]
        order = request.GET.get("o", "name")
        key = order.removeprefix("-")
        if key not in SORTS:
            order, key = "name", "name"
        present = [row for row in rows if row.sort_key(key) is not None]
        absent = [row for row in rows if row.sort_key(key) is None]  # nothing measured: always last
        present.sort(key=lambda row: row.sort_key(key), reverse=order.startswith("-"))
        return self._render(
            request,
            title="Service levels across tenants",
            rows=present + absent,
            sortable=True,
            order=order,
            sort_links=self._sort_links(request, order),
        )

    def _tenant_view(
        self, request: HttpRequest, asked: str, *, first: date, last: date, versions: dict[int, PlanVersion]
    ) -> HttpResponse:
        tenant = Tenant.objects.filter(pk=int(asked)).first() if asked.isdigit() else None
        if tenant is None:
            raise Http404("No such tenant.")
        with tenancy.tenant_scope(tenant.pk):
            levels = selectors.tenant_service_levels_on_days(first_day=first, last_day=last)
        total = _row(f"All stores of {tenant.name}", levels.total, versions.get(tenant.pk), total=True)
        rows = [total, *(Row(name=f"{store.code} — {store.name}", levels=own) for store, own in levels.stores)]
        back = "?" + urlencode({"from": f"{first}", "to": f"{last}"})
        return self._render(
            request, title=f"Service levels of {tenant.name}", rows=rows, promises=total, sortable=False, back=back
        )

    @staticmethod
    def _sort_links(request: HttpRequest, order: str) -> dict[str, str]:
        """Per column, the link that sorts by it (again: the other way)."""
        keep = {k: v for k, v in request.GET.items() if k != "o"}
        links = {}
        for key in SORTS:
            first_way = key if key == "name" else f"-{key}"  # figures: highest first
            flipped = key if order == f"-{key}" else f"-{key}"
            links[key] = "?" + urlencode({**keep, "o": flipped if order.removeprefix("-") == key else first_way})
        return links
