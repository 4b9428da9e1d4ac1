"""The dashboard pages of both admin sites: headline figures and recent activity.

Each callback runs inside its site's tenant scope, so the licensee one can only
count its own tenant's rows.
"""

from __future__ import annotations

from typing import Any

from django.db.models import Count, Q
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone

from tenants.models import ApiKey, AuditEntry, Membership, Tenant

RECENT_ROWS = 8


def _audit_table(entries: Any, *, with_tenant: bool) -> dict[str, Any]:
    headers = ["When", *(["Tenant"] if with_tenant else []), "Who", "Did", "What"]
    rows = [
        [
            timezone.localtime(entry.at).strftime("%Y-%m-%d %H:%M"),
            *([entry.tenant.name if entry.tenant else "—"] if with_tenant else []),
            entry.actor_label,
            entry.action,
            f"{entry.object_type.split('.')[-1]}: {entry.object_repr}",
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
    ]
    entries = AuditEntry.objects.select_related("tenant")[:RECENT_ROWS]
    context["dashboard_tables"] = [_audit_table(entries, with_tenant=False)]
    return context


def ops_dashboard(request: HttpRequest, context: dict[str, Any]) -> dict[str, Any]:
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
    tenants = list(Tenant.objects.order_by("name")[: RECENT_ROWS * 2])
    members = dict(
        Membership.objects.filter(tenant__in=tenants)
        .values_list("tenant_id")
        .annotate(n=Count("id"))
        .values_list("tenant_id", "n")
    )
    tenant_rows = [[t.name, t.slug, t.get_status_display(), members.get(t.pk, 0)] for t in tenants]
    entries = AuditEntry.objects.select_related("tenant")[:RECENT_ROWS]
    context["dashboard_tables"] = [
        {"title": "Tenants", "table": {"headers": ["Name", "Slug", "Status", "Members"], "rows": tenant_rows}},
        _audit_table(entries, with_tenant=True),
    ]
    return context
