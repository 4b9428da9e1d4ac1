"""The headline figures of both admin sites' dashboards and their recent activity (`console.dashboards` adds the
charts over time).

Each callback runs inside its site's tenant scope, so the licensee one can only
count its own tenant's rows.
"""

from __future__ import annotations

from typing import Any

from django.apps import apps
from django.db.models import Count, Q
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html

from core.formatting import format_duration
from stores.models import Store
from tenants.models import ApiKey, AuditEntry, Membership, Tenant
from visits.models import Visit
from visits.selectors import REVIEW_PERIOD, review_figures_by_store

RECENT_ROWS = 8
REVIEW_STORES_SHOWN = 50


def review_kpi() -> dict[str, Any]:
    """The review queue as a headline figure: how many visits wait for a person, and for how long."""
    waiting = Visit.objects.filter(status=Visit.Status.NEEDS_REVIEW)
    oldest = waiting.order_by("exited_at").values_list("exited_at", flat=True).first()
    count = waiting.count()
    footer = "nothing waiting"
    if count:
        footer = f"oldest waiting {format_duration(timezone.now() - oldest)}" if oldest else "waiting"
    return {
        "label": "Review queue",
        "value": count,
        "href": reverse("admin:visits_visit_changelist"),
        "footer": footer,
    }


def review_table() -> dict[str, Any]:
    """Per store, over the last 7 days (by exit): visits settled, review rate, median time to a decision."""
    now = timezone.now()
    figures = review_figures_by_store(since=now - REVIEW_PERIOD)
    stores = list(Store.objects.order_by("code").values_list("pk", "code", "name")[:REVIEW_STORES_SHOWN])
    rows = []
    for pk, code, name in stores:
        found = figures.get(pk)
        if found is None:
            rows.append([f"{code} — {name}", 0, 0, "—", "—", 0])
            continue
        rate = found.review_rate
        median = found.median_to_decision
        waiting = str(found.waiting)
        if found.waiting and found.oldest_waiting_since:
            waiting += f" (oldest {format_duration(now - found.oldest_waiting_since)})"
        rows.append(
            [
                f"{code} — {name}",
                found.settled,
                found.sent_to_review,
                f"{rate:.1%}" if rate is not None else "—",
                format_duration(median) if median is not None else "—",
                waiting,
            ]
        )
    headers = ["Store", "Visits settled", "Sent to review", "Review rate", "Median time to decision", "Waiting now"]
    return {"title": "Review, last 7 days", "table": {"headers": headers, "rows": rows}}


def _object_kind(object_type: str) -> str:
    """An audited object's kind as people read it ("plan assignment"), not its model's label."""
    try:
        return str(apps.get_model(object_type)._meta.verbose_name)
    except (LookupError, ValueError):
        return object_type.split(".")[-1]


def _audit_table(entries: Any, *, with_tenant: bool) -> dict[str, Any]:
    headers = ["When", *(["Tenant"] if with_tenant else []), "Who", "Did", "What"]
    rows = [
        [
            timezone.localtime(entry.at).strftime("%Y-%m-%d %H:%M %Z"),
            *([entry.tenant.name if entry.tenant else "—"] if with_tenant else []),
            entry.who,
            entry.get_action_display(),
            f"{_object_kind(entry.object_type)}: {entry.object_repr}",
        ]
        for entry in entries
    ]
    return {"title": "Recent activity", "table": {"headers": headers, "rows": rows}}


def licensee_dashboard(request: HttpRequest, context: dict[str, Any]) -> dict[str, Any]:
    tenant: Tenant = request.tenant  # type: ignore[attr-defined]
    keys = ApiKey.objects.filter(revoked_at__isnull=True)
    last_used = keys.exclude(last_used_at=None).order_by("-last_used_at").values_list("last_used_at", flat=True).first()
    context["kpis"] = [
        {"label": "Account", "value": tenant.get_status_display(), "footer": tenant.name},
        {
            "label": "Team members",
            "value": Membership.objects.count(),
            "href": reverse("admin:tenants_membership_changelist"),
        },
        {
            "label": "Live API keys",
            "value": keys.count(),
            "href": reverse("admin:tenants_apikey_changelist"),
            "footer": f"last used {timezone.localtime(last_used):%Y-%m-%d %H:%M}" if last_used else "never used",
        },
        review_kpi(),
    ]
    entries = AuditEntry.objects.select_related("tenant")[:RECENT_ROWS]
    context["dashboard_tables"] = [review_table(), _audit_table(entries, with_tenant=False)]
    return context


def ops_dashboard(request: HttpRequest, context: dict[str, Any]) -> dict[str, Any]:
    """Every tenant; with `?tenant=`, that tenant alone in the Tenants and Recent activity tables."""
    counts = Tenant.objects.aggregate(
        active=Count("id", filter=Q(status=Tenant.Status.ACTIVE)),
        suspended=Count("id", filter=Q(status=Tenant.Status.SUSPENDED)),
    )
    tenants_url = reverse("ops:tenants_tenant_changelist")
    context["kpis"] = [
        {"label": "Active tenants", "value": counts["active"], "href": f"{tenants_url}?status__exact=active"},
        {"label": "Suspended tenants", "value": counts["suspended"], "href": f"{tenants_url}?status__exact=suspended"},
        {
            "label": "Live API keys",
            "value": ApiKey.objects.filter(revoked_at__isnull=True).count(),
            "href": reverse("ops:tenants_apikey_changelist"),
        },
    ]
    chosen = request.GET.get("tenant", "")
    tenants = Tenant.objects.order_by("name")
    entries = AuditEntry.objects.select_related("tenant")
    if chosen.isdigit():
        tenants, entries = tenants.filter(pk=chosen), entries.filter(tenant_id=chosen)
    shown = list(tenants[: RECENT_ROWS * 2])
    members = dict(
        Membership.objects.filter(tenant__in=shown)
        .values_list("tenant_id")
        .annotate(n=Count("id"))
        .values_list("tenant_id", "n")
    )
    tenant_rows = [
        [
            format_html(
                '<a class="text-primary-600 underline" href="{}">{}</a>',
                reverse("ops:tenants_tenant_change", args=[t.pk]),
                t.name,
            ),
            t.slug,
            t.get_status_display(),
            members.get(t.pk, 0),
        ]
        for t in shown
    ]
    context["dashboard_tables"] = [
        {"title": "Tenants", "table": {"headers": ["Name", "Slug", "Status", "Members"], "rows": tenant_rows}},
        _audit_table(entries[:RECENT_ROWS], with_tenant=not chosen.isdigit()),
    ]
    return context
