"""The consoles: the `/ops/` dashboard (every tenant, drill-down to a tenant's stores and to one store) and the
licensee manager's dashboard in `/admin/` (their own stores), over the last 7, 30 or 90 days.

Both extend the headline figures of `console.overview` with charts over time — visits, gross sales, review rate,
time to a decision, overcharge corrections (refunds after a charge), event streams received and failed — and a
table to drill into. Every figure is an aggregate query (GROUP BY day, tenant or store) over the usage rows,
streams and devices, run inside the site's scope, so the licensee dashboard only ever adds up its own rows.
Usage rows are refreshed every 10 minutes (`invoicing.refresh_recent_usage`); the page says when.
"""

from __future__ import annotations

import json
from datetime import date, timedelta
from typing import Any
from urllib.parse import urlencode

from django.db.models import Count, Q
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html

from billing.invoicing import selectors
from billing.invoicing.admin import exchange_rate_needed
from billing.invoicing.calculations import previous_month
from billing.invoicing.models import Invoice, MonthClose
from billing.invoicing.selectors import Figures
from catalog.currencies import format_money, from_minor
from console import overview
from core.admin_sites import FINANCE_GROUP, OPERATOR_GROUP
from core.replica import reads_from_replica
from stores.models import Store
from tenants.admin import tenant_links
from tenants.models import Tenant

PERIODS = (7, 30, 90)
DEFAULT_DAYS = 30
TENANTS_SHOWN = 25
# Series colours, told apart on a canvas (which cannot read the admin's CSS variables) and by colour-blind eyes.
PALETTE = ("#2563eb", "#f59e0b", "#0d9488", "#9333ea", "#db2777")
DONE, FAILED, WAITING = "#16a34a", "#dc2626", "#f59e0b"


def _int(value: str | None) -> int | None:
    return int(value) if value and value.isdigit() else None


def _money(amounts: dict[str, int]) -> str:
    shown = [format_money(v, c) for c, v in sorted(amounts.items()) if v]
    return " · ".join(shown) if shown else "0"


def _rate(figures: Figures) -> str:
    rate = figures.review_rate
    return f"{rate:.1%}" if rate is not None else "—"


def _to_decision(figures: Figures) -> str:
    mean = figures.mean_to_decision
    return overview.format_duration(mean) if mean is not None else "—"


def _bytes(n: int) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return f"{n} B"  # pragma: no cover


def _chart(
    title: str,
    kind: str,
    labels: list[str],
    datasets: list[dict[str, Any]],
    *,
    counts: bool = False,
    stacked: bool = False,
    partial_last: bool = True,
) -> dict[str, Any]:
    """A Chart.js chart: one colour per series (`PALETTE`, or the series' own `color`) named in its legend, whole
    numbers on the axis of counts, and the last day — today, still running — drawn lighter (bars) or as an open
    point (lines) and labelled "so far", so that a partial day does not read as a fall or a spike. `empty` when
    every value is zero or missing: the page says "No data yet" rather than draw an empty grid."""
    for index, dataset in enumerate(datasets):
        color = dataset.pop("color", PALETTE[index % len(PALETTE)])
        dataset["borderColor"] = color
        dataset["backgroundColor"] = color
        if partial_last and kind == "bar":
            dataset["backgroundColor"] = [color] * (len(labels) - 1) + [f"{color}55"]
        elif partial_last and kind == "line":
            dataset["pointRadius"] = [0] * (len(labels) - 1) + [4]
            dataset["pointBackgroundColor"] = [color] * (len(labels) - 1) + ["#ffffff"]
    if partial_last and labels:
        labels = [*labels[:-1], f"{labels[-1]} (so far)"]
    ticks: dict[str, Any] = {"color": "#6b7280"}
    if counts:
        ticks["precision"] = 0
    options = {
        "animation": False,
        "responsive": True,
        "maintainAspectRatio": False,
        "interaction": {"mode": "index", "intersect": False},
        "plugins": {
            "legend": {
                "display": True,
                "position": "top",
                "align": "start",
                "labels": {"boxWidth": 10, "boxHeight": 10, "color": "#4b5563"},
            },
            "tooltip": {"enabled": True},
        },
        "datasets": {
            "bar": {"maxBarThickness": 16, "borderRadius": 3},
            "line": {"borderWidth": 2, "tension": 0, "spanGaps": False},
        },
        "scales": {
            "x": {"stacked": stacked, "grid": {"display": False}, "ticks": {"color": "#6b7280", "maxTicksLimit": 8}},
            "y": {"stacked": stacked, "beginAtZero": True, "ticks": ticks, "grid": {"color": "#e5e7eb"}},
        },
    }
    empty = not any(value for dataset in datasets for value in dataset["data"] if value)
    return {
        "title": title,
        "kind": kind,
        "empty": empty,
        "data": json.dumps({"labels": labels, "datasets": datasets}),
        "options": json.dumps(options),
    }


class _Console:
    """The figures of one view of the console: every tenant, one tenant, or one store."""

    def __init__(self, request: HttpRequest, *, tenant: Tenant | None, platform: bool) -> None:
        self.request = request
        self.platform = platform
        days = _int(request.GET.get("days"))
        self.days = days if days in PERIODS else DEFAULT_DAYS
        self.tenant = tenant
        self.store = None
        store_id = _int(request.GET.get("store"))
        if store_id is not None:
            # Looked up in the site's scope: on /admin/ another tenant's store is simply not found.
            self.store = selectors.stores_of(tenant.pk if tenant else None).filter(pk=store_id).first()
            if self.store is not None and self.tenant is None:
                self.tenant = self.store.tenant
        self.end = self._latest_today()
        self.start = self.end - timedelta(days=self.days - 1)
        self.base = request.path

    def _latest_today(self) -> date:
        """Today in the store furthest ahead of those shown: a usage row's day is its store's local date, so a
        store east of UTC is already on tomorrow's row late in the UTC day (and its visits would drop out)."""
        stores = selectors.stores_of(self.tenant_id)
        if self.store is not None:
            stores = stores.filter(pk=self.store.pk)
        now = timezone.now()
        names = stores.order_by().values_list("timezone", flat=True).distinct()
        zones = {Store(timezone=name).zone for name in names}  # Store.zone: UTC for a name Python does not know
        return max((timezone.localtime(now, zone).date() for zone in zones), default=timezone.localdate(now))

    def link(self, **params: Any) -> str:
        query = {"days": self.days, **{k: v for k, v in params.items() if v is not None}}
        return f"{self.base}?{urlencode(query)}"

    @property
    def tenant_id(self) -> int | None:
        return self.tenant.pk if self.tenant else None

    @property
    def store_id(self) -> int | None:
        return self.store.pk if self.store else None

    def build(self) -> dict[str, Any]:
        rows = selectors.usage_rows(start=self.start, end=self.end, tenant_id=self.tenant_id, store_id=self.store_id)
        by_day = selectors.usage_by_day(rows)
        total = selectors.usage_total(rows)
        since = timezone.now() - timedelta(days=self.days)
        streams = selectors.streams_by_day(since=since, tenant_id=self.tenant_id, store_id=self.store_id)
        group = "store_id" if self.tenant is not None else "tenant_id"
        backlog = selectors.ingest_backlog(group_by=group, tenant_id=self.tenant_id)
        offline = selectors.devices_offline(group_by=group, tenant_id=self.tenant_id)
        if self.store is not None:
            backlog = {k: v for k, v in backlog.items() if k == self.store.pk}
            offline = {k: v for k, v in offline.items() if k == self.store.pk}
        return {
            "title": self._title(),
            "crumbs": self._crumbs(),
            "periods": [{"days": d, "url": self._period_link(d), "active": d == self.days} for d in PERIODS],
            "as_of": total.computed_at,
            "kpis": self._kpis(total, backlog, offline),
            "charts": self._charts(by_day, streams),
            "table": self._table(rows, backlog, offline),
            "devices": self._devices(),
            "tenant_choices": self._tenant_choices(),
            "days": self.days,
            "tenant_id": self.tenant_id,
        }

    def _period_link(self, days: int) -> str:
        query = {"days": days, "tenant": self.tenant_id if self.platform else None, "store": self.store_id}
        return f"{self.base}?{urlencode({k: v for k, v in query.items() if v is not None})}"

    def _title(self) -> str:
        if self.store is not None:
            return f"Store {self.store.code} — {self.store.name}"
        if self.tenant is not None and self.platform:
            return f"Tenant {self.tenant.name}"
        return "All tenants" if self.platform else "Your stores"

    def _crumbs(self) -> list[dict[str, str]]:
        crumbs = []
        if self.platform:
            crumbs.append({"label": "All tenants", "url": self.link()})
            if self.tenant is not None:
                crumbs.append({"label": self.tenant.name, "url": self.link(tenant=self.tenant.pk)})
        else:
            crumbs.append({"label": "All stores", "url": self.link()})
        if self.store is not None:
            crumbs.append({"label": self.store.code, "url": ""})
        return crumbs

    def _kpis(self, total: Figures, backlog: dict[int, Any], offline: dict[int, int]) -> list[dict[str, Any]]:
        open_streams = sum(f.open for f in backlog.values())
        failed = sum(f.failed for f in backlog.values())
        waiting_bytes = sum(f.backlog_bytes for f in backlog.values())
        period = f"last {self.days} days"
        stores = selectors.stores_of(self.tenant_id)
        if self.store is not None:
            stores = stores.filter(pk=self.store.pk)
        counts = stores.aggregate(all=Count("id"), active=Count("id", filter=Q(status=Store.Status.ACTIVE)))
        return [
            {
                "label": "Stores",
                "value": f"{counts['active']:,} active",
                "footer": f"{counts['all']:,} registered · {total.active_days:,} store-days active",
            },
            {"label": "Visits settled", "value": f"{total.visits:,}", "footer": period},
            {"label": "Gross sales", "value": _money(total.gross), "footer": f"net {_money(self._net(total))}"},
            {
                "label": "Review rate",
                "value": _rate(total),
                "footer": f"mean time to decision {_to_decision(total)}",
            },
            {
                "label": "Overcharge corrections",
                "value": f"{total.refunds_n:,}",
                "footer": f"refunded {_money(total.refunds)}",
            },
            {
                "label": "Ingestion backlog",
                "value": f"{open_streams} stream{'s' if open_streams != 1 else ''}",
                "footer": f"{_bytes(waiting_bytes)} to read · {failed} failed in 7 days",
            },
            {"label": "Devices offline", "value": sum(offline.values()), "footer": "now"},
            *self._unreadable(),
        ]

    def _unreadable(self) -> list[dict[str, Any]]:
        """Operators only: stored events that cannot be read back, whose visits wait in review."""
        if not self.platform:
            return []
        count = selectors.unreadable_events(tenant_id=self.tenant_id, store_id=self.store_id)
        return [{"label": "Unreadable events", "value": f"{count:,}", "footer": "their visits wait in review"}]

    @staticmethod
    def _net(figures: Figures) -> dict[str, int]:
        return {c: figures.gross.get(c, 0) - figures.refunds.get(c, 0) for c in figures.gross | figures.refunds}

    def _charts(self, by_day: dict[date, Figures], streams: dict[date, Any]) -> list[dict[str, Any]]:
        days = [self.start + timedelta(days=n) for n in range(self.days)]
        labels = [f"{d:%d %b}" for d in days]
        empty = Figures()
        figures = [by_day.get(d, empty) for d in days]
        currencies = sorted({c for f in by_day.values() for c in f.gross})
        sales = [
            {"label": f"Gross sales in {c}", "data": [float(from_minor(f.gross.get(c, 0), c)) for f in figures]}
            for c in currencies
        ] or [{"label": "Gross sales", "data": [0] * len(days)}]
        no_streams = selectors.StreamFigures()
        stream_days = [streams.get(d, no_streams) for d in days]
        return [
            _daily_counts("Visits settled per day", labels, "Visits settled", [f.visits for f in figures]),
            _chart("Gross sales per day", "line", labels, sales),
            _chart(
                "Review rate per day (%)",
                "line",
                labels,
                [
                    {
                        "label": "Share of visits sent to review (%)",
                        "data": [round(100 * f.review_rate, 1) if f.review_rate is not None else None for f in figures],
                    }
                ],
            ),
            _chart(
                "Mean time to decision per day (minutes)",
                "bar",
                labels,
                [
                    {
                        "label": "Minutes from exit to a person's decision",
                        "data": [
                            round(f.mean_to_decision.total_seconds() / 60, 1) if f.mean_to_decision else None
                            for f in figures
                        ],
                    }
                ],
            ),
            _daily_counts(
                "Overcharge corrections per day", labels, "Refunds after a charge", [f.refunds_n for f in figures]
            ),
            _chart(
                "Event streams received per day",
                "bar",
                labels,
                [
                    {"label": "Done", "data": [s.done for s in stream_days], "color": DONE},
                    {"label": "Failed", "data": [s.failed for s in stream_days], "color": FAILED},
                    {"label": "Waiting or running", "data": [s.open for s in stream_days], "color": WAITING},
                ],
                counts=True,
                stacked=True,
            ),
        ]

    def _table(self, rows: Any, backlog: dict[int, Any], offline: dict[int, int]) -> dict[str, Any] | None:
        if self.store is not None:
            return None
        headers = [
            "Visits",
            "Gross sales",
            "Review rate",
            "Mean time to decision",
            "Corrections",
            "Streams open / failed 7 d",
            "Devices offline",
        ]
        no_backlog = selectors.StreamFigures()

        def figures_row(figures: Figures, key: int) -> list[Any]:
            streams = backlog.get(key, no_backlog)
            return [
                f"{figures.visits:,}",
                _money(figures.gross),
                _rate(figures),
                _to_decision(figures),
                f"{figures.refunds_n} ({_money(figures.refunds)})" if figures.refunds_n else "0",
                f"{streams.open} / {streams.failed}",
                offline.get(key, 0),
            ]

        if self.tenant is not None or not self.platform:
            per_store = selectors.usage_by_store(rows)
            table_rows = [
                [
                    format_html(
                        '<a class="text-primary-600 underline" href="{}">{}</a>',
                        self.link(tenant=self.tenant_id if self.platform else None, store=store.pk),
                        f"{store.code} — {store.name}",
                    ),
                    store.get_status_display(),
                    *figures_row(per_store.get(store.pk, Figures()), store.pk),
                ]
                for store in selectors.stores_of(self.tenant_id)
            ]
            return {"title": "Stores", "table": {"headers": ["Store", "Status", *headers], "rows": table_rows}}
        per_tenant = selectors.usage_by_tenant(rows)
        tenants = Tenant.objects.in_bulk(list(per_tenant))
        ranked = sorted(per_tenant.items(), key=lambda item: -item[1].visits)[:TENANTS_SHOWN]
        shown = [tid for tid, _ in ranked]
        if len(shown) < TENANTS_SHOWN:
            extra = Tenant.objects.exclude(pk__in=shown).order_by("name")[: TENANTS_SHOWN - len(shown)]
            for tenant in extra:
                tenants[tenant.pk] = tenant
                shown.append(tenant.pk)
        table_rows = [
            [
                format_html(
                    '<a class="text-primary-600 underline" href="{}">{}</a>', self.link(tenant=tid), tenants[tid].name
                ),
                tenants[tid].get_status_display(),
                *figures_row(per_tenant.get(tid, Figures()), tid),
            ]
            for tid in shown
        ]
        title = "Tenants by visits" + (f" (top {TENANTS_SHOWN})" if len(per_tenant) > TENANTS_SHOWN else "")
        return {"title": title, "table": {"headers": ["Tenant", "Status", *headers], "rows": table_rows}}

    def _devices(self) -> dict[str, Any] | None:
        devices = selectors.offline_devices(tenant_id=self.tenant_id, store_id=self.store_id)
        if not devices:
            return None
        rows = [
            [
                *([device.tenant.name] if self.platform and self.tenant is None else []),
                f"{device.store.code}",
                f"{device.code} ({device.get_kind_display()})",
                timezone.localtime(device.last_seen_at, device.store.zone).strftime("%Y-%m-%d %H:%M %Z")
                if device.last_seen_at
                else "never",
            ]
            for device in devices
        ]
        headers = [*(["Tenant"] if self.platform and self.tenant is None else []), "Store", "Device", "Last seen"]
        return {"title": "Devices offline (longest silent first)", "table": {"headers": headers, "rows": rows}}

    def _tenant_choices(self) -> list[tuple[int, str]]:
        if not self.platform:
            return []
        return list(Tenant.objects.order_by("name").values_list("pk", "name"))


@reads_from_replica
def ops_dashboard(request: HttpRequest, context: dict[str, Any]) -> dict[str, Any]:
    """The operators' console; a finance clerk (finance role only) lands on the finance dashboard instead."""
    if _finance_only(request):
        return finance_dashboard(request, context)
    context = overview.ops_dashboard(request, context)
    tenant = Tenant.objects.filter(pk=_int(request.GET.get("tenant")) or 0).first()
    context["console"] = _Console(request, tenant=tenant, platform=True).build()
    context["console"]["invoices_url"] = reverse("ops:invoicing_invoice_changelist")
    if tenant is not None:
        context["console"]["tenant_links"] = tenant_links(tenant)
    return context


def _daily_counts(title: str, labels: list[str], series: str, counts: list[int]) -> dict[str, Any]:
    """A bar chart of one count a day."""
    return _chart(title, "bar", labels, [{"label": series, "data": counts}], counts=True)


def licensee_dashboard(request: HttpRequest, context: dict[str, Any]) -> dict[str, Any]:
    context = overview.licensee_dashboard(request, context)
    tenant: Tenant = request.tenant  # type: ignore[attr-defined]
    context["console"] = _Console(request, tenant=tenant, platform=False).build()
    membership = getattr(request, "membership", None)
    if membership is not None and membership.role == "manager":
        context["console"]["invoices_url"] = reverse("admin:invoicing_invoice_changelist")
    return context


def _finance_only(request: HttpRequest) -> bool:
    user: Any = request.user
    groups = set(user.groups.values_list("name", flat=True))
    return not user.is_superuser and FINANCE_GROUP in groups and OPERATOR_GROUP not in groups


def _per_currency(amounts: dict[str, int]) -> str:
    shown = [format_money(amount, code) for code, amount in sorted(amounts.items()) if amount]
    return " · ".join(shown) if shown else "nothing"


@reads_from_replica
def finance_dashboard(request: HttpRequest, context: dict[str, Any]) -> dict[str, Any]:
    """Finance's landing page in /ops/: what is owed and overdue, drafts to finalise, the last month's close and
    the exchange rates it still needs."""
    today = timezone.localdate()
    owed = selectors.receivables_totals(selectors.receivables(today=today))
    last_month = previous_month(today)[0]
    invoices = reverse("ops:invoicing_invoice_changelist")
    receivables = reverse("ops:invoicing_invoice_receivables")
    drafts = Invoice.objects.filter(status=Invoice.Status.DRAFT).count()
    closed = MonthClose.objects.filter(period_start=last_month, closed_at__isnull=False).exists()
    context["kpis"] = [
        {
            "label": "Receivables",
            "value": _per_currency({code: row.total for code, row in owed.items()}),
            "footer": f"{sum(row.invoices for row in owed.values())} issued invoice(s) unpaid",
            "href": receivables,
        },
        {
            "label": "Overdue",
            "value": _per_currency({code: row.overdue for code, row in owed.items()}),
            "footer": "past their due date",
            "href": receivables,
        },
        {"label": "Drafts to finalise", "value": drafts, "href": f"{invoices}?status__exact=draft"},
        {
            "label": f"{last_month:%B %Y}",
            "value": "closed" if closed else "not closed yet",
            "footer": "closing again brings its drafts up to date" if closed else "close it: builds the drafts",
            "href": reverse("ops:invoicing_invoice_close_month"),
        },
    ]
    buckets = [label for _, _, label in selectors.AGE_BUCKETS]
    aged = [
        [
            format_html('<a class="text-primary-600 underline" href="{}?currency={}">{}</a>', receivables, code, code),
            row.invoices,
            *(format_money(amount, code) for amount in row.by_age),
            format_money(row.total, code),
            format_money(row.overdue, code),
        ]
        for code, row in owed.items()
    ]
    tables = [
        {
            "title": "Receivables by age since issue",
            "table": {"headers": ["Currency", "Invoices", *buckets, "Total", "Overdue"], "rows": aged},
        }
    ]
    missing = selectors.missing_exchange_rates(month=last_month)
    if missing:
        rows = [[f"{base} → {quote}", exchange_rate_needed(last_month, base, quote)] for base, quote in missing]
        tables.append(
            {
                "title": f"Exchange rates {last_month:%B %Y} still needs",
                "table": {"headers": ["Sales → billing currency", "To do"], "rows": rows},
            }
        )
    context["dashboard_tables"] = tables
    context["title"] = "Finance dashboard"
    return context
