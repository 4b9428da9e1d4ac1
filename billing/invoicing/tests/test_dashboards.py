"""The consoles: /ops/ over every tenant with drill-down to a tenant's stores and one store; /admin/ over the
manager's own stores only. Figures come from aggregate queries over usage, streams and devices."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, time, timedelta
from unittest import mock

import pytest
from django.contrib.auth.models import User
from django.utils import timezone

from billing.invoicing import services
from billing.invoicing.tests.helpers import decide, make_store, make_visit, sale
from conftest import logged_in
from ingest.models import EventStream
from stores.models import Device, Store
from tenants.models import Tenant
from visits.models import Visit


@pytest.fixture
def activity(tenant_a: Tenant, tenant_b: Tenant, operator: User) -> dict[str, Store]:
    """Three days of visits in two of Alpha's stores and one of Bravo's, a failed stream, an offline device."""
    now = timezone.now().replace(minute=0, second=0, microsecond=0)
    stores = {"A1": make_store(tenant_a, "A1"), "A2": make_store(tenant_a, "A2"), "B1": make_store(tenant_b, "B1")}
    for days_ago in range(3):
        when = now - timedelta(days=days_ago, hours=1)
        sale(stores["A1"], at=when, amount=10_000, refund=1_000 if days_ago == 0 else 0)
        sale(stores["A2"], at=when, amount=5_000)
        sale(stores["B1"], at=when, amount=70_000)
    reviewed = make_visit(stores["A1"], settled_at=now - timedelta(hours=2), status=Visit.Status.NEEDS_REVIEW)
    decide(reviewed, reviewer=operator, at=reviewed.exited_at + timedelta(minutes=20))
    EventStream.unscoped.create(tenant=tenant_b, store=stores["B1"], status=EventStream.Status.FAILED)
    EventStream.unscoped.create(
        tenant=tenant_a, store=stores["A2"], status=EventStream.Status.PROCESSING, bytes_total=2048, bytes_done=1024
    )
    Device.unscoped.create(
        tenant=tenant_b, store=stores["B1"], code="CAM-9", kind="camera", status="offline", last_seen_at=now
    )
    today = timezone.localdate()
    services.usage_recompute(start=today - timedelta(days=3), end=today)
    return stores


def test_the_operator_console_shows_every_tenant_with_charts(operator: User, activity: dict[str, Store]) -> None:
    response = logged_in(operator).get("/ops/")
    assert response.status_code == 200
    console = response.context["console"]
    assert console["title"] == "All tenants"
    kpis = {k["label"]: k for k in console["kpis"]}
    assert kpis["Visits settled"]["value"] == "10"
    assert kpis["Gross sales"]["value"] == "$2,550.00"
    assert kpis["Review rate"]["value"] == "10.0%"
    assert kpis["Overcharge corrections"]["value"] == "1"
    assert kpis["Ingestion backlog"]["value"] == "1 stream" and "1 failed" in kpis["Ingestion backlog"]["footer"]
    assert kpis["Devices offline"]["value"] == 1
    titles = [chart["title"] for chart in console["charts"]]
    assert titles == [
        "Visits settled per day",
        "Gross sales per day",
        "Review rate per day (%)",
        "Mean time to decision per day (minutes)",
        "Overcharge corrections per day",
        "Event streams received per day",
    ]
    visits = json.loads(console["charts"][0]["data"])
    assert len(visits["labels"]) == 30 and sum(visits["datasets"][0]["data"]) == 10
    rows = console["table"]["table"]["rows"]
    assert str(rows[0][0]).endswith(">Alpha Markets</a>")  # most visits first
    body = response.content.decode()
    assert 'class="chart"' in body and "Tenants by visits" in body and "CAM-9" in body


def test_the_operator_drills_down_to_a_tenants_stores_and_one_store(
    operator: User, tenant_a: Tenant, activity: dict[str, Store]
) -> None:
    client = logged_in(operator)
    tenant_page = client.get("/ops/", {"tenant": tenant_a.pk, "days": 7}).context["console"]
    assert tenant_page["title"] == "Tenant Alpha Markets"
    rows = tenant_page["table"]["table"]["rows"]
    assert [str(r[0]).split(">")[1].split("<")[0] for r in rows] == ["A1 — Store A1", "A2 — Store A2"]
    assert f"tenant={tenant_a.pk}" in str(rows[0][0]) and f"store={activity['A1'].pk}" in str(rows[0][0])
    assert {k["label"]: k["value"] for k in tenant_page["kpis"]}["Visits settled"] == "7"

    store_page = client.get("/ops/", {"tenant": tenant_a.pk, "store": activity["A1"].pk}).context["console"]
    assert store_page["title"] == "Store A1 — Store A1" and store_page["table"] is None
    kpis = {k["label"]: k["value"] for k in store_page["kpis"]}
    assert (kpis["Visits settled"], kpis["Gross sales"], kpis["Review rate"]) == ("4", "$300.00", "25.0%")
    assert [c["label"] for c in store_page["crumbs"]] == ["All tenants", "Alpha Markets", "A1"]

    for junk in ({"days": "abc"}, {"tenant": "x"}, {"store": "999999"}, {"days": "5"}):
        assert client.get("/ops/", junk).status_code == 200


def test_a_manager_sees_only_their_own_stores(manager_a: User, activity: dict[str, Store]) -> None:
    client = logged_in(manager_a)
    console = client.get("/admin/").context["console"]
    assert console["title"] == "Your stores"
    assert {k["label"]: k["value"] for k in console["kpis"]}["Visits settled"] == "7"
    assert [str(r[0]).split(">")[1].split("<")[0] for r in console["table"]["table"]["rows"]] == [
        "A1 — Store A1",
        "A2 — Store A2",
    ]
    assert console["tenant_choices"] == []
    body = client.get("/admin/").content.decode()
    body = re.sub(r'name="csrfmiddlewaretoken" value="[^"]*"', "", body)  # a random token may hold "B1"
    assert "Bravo" not in body and "B1" not in body and "CAM-9" not in body

    # Another tenant's store in the URL is simply not found: the page stays on the manager's own stores.
    theirs = client.get("/admin/", {"store": activity["B1"].pk}).context["console"]
    assert theirs["title"] == "Your stores"
    assert {k["label"]: k["value"] for k in theirs["kpis"]}["Gross sales"] == "$450.00"
    mine = client.get("/admin/", {"store": activity["A2"].pk}).context["console"]
    assert mine["title"] == "Store A2 — Store A2"
    assert {k["label"]: k["value"] for k in mine["kpis"]}["Ingestion backlog"] == "1 stream"


def test_charts_name_and_colour_each_series_count_in_whole_numbers_and_mark_today_as_partial(
    operator: User, activity: dict[str, Store]
) -> None:
    charts = {c["title"]: c for c in logged_in(operator).get("/ops/").context["console"]["charts"]}
    streams = json.loads(charts["Event streams received per day"]["data"])
    assert [d["label"] for d in streams["datasets"]] == ["Done", "Failed", "Waiting or running"]
    assert len({d["borderColor"] for d in streams["datasets"]}) == 3  # one colour per series
    assert streams["labels"][-1].endswith("(so far)") and "(so far)" not in streams["labels"][-2]
    assert streams["datasets"][0]["backgroundColor"][-1] != streams["datasets"][0]["backgroundColor"][-2]
    for title in ("Visits settled per day", "Overcharge corrections per day", "Event streams received per day"):
        options = json.loads(charts[title]["options"])
        assert options["scales"]["y"]["ticks"]["precision"] == 0, title  # no 0.1–0.9 on a count
        assert options["plugins"]["legend"]["display"] is True
    rate = json.loads(charts["Review rate per day (%)"]["data"])["datasets"][0]["data"]
    assert rate[0] is None  # a day without visits has no rate: a gap, not 0 %


def test_a_store_east_of_utc_counts_its_visits_when_its_day_is_ahead_of_ours(
    operator: User, manager_a: User, tenant_a: Tenant
) -> None:
    """Late in the UTC day a store at UTC+14 is already on tomorrow: its visits settled then are on tomorrow's usage
    row, and the consoles' period ends on the latest store's today, not ours (the demo's Paris store showed 0 visits
    after 23:00 UTC)."""
    store = make_store(tenant_a, "KIR", tz="Pacific/Kiritimati", currency="EUR")
    late_evening = datetime.combine(timezone.now().date(), time(23, 30), tzinfo=UTC)
    sale(store, at=late_evening - timedelta(minutes=30), amount=1_250)
    store_day = timezone.localtime(late_evening, store.zone).date()
    assert store_day > late_evening.date()
    services.usage_recompute(start=store_day, end=store_day)
    with mock.patch("django.utils.timezone.now", return_value=late_evening):
        ops = logged_in(operator).get("/ops/").context["console"]
        admin = logged_in(manager_a).get("/admin/").context["console"]
    for console in (ops, admin):
        kpis = {k["label"]: k["value"] for k in console["kpis"]}
        assert (kpis["Visits settled"], kpis["Gross sales"]) == ("1", "€12.50")
    assert ops["table"]["table"]["rows"][0][2] == "1"  # Alpha Markets' visits in "Tenants by visits"
    labels = json.loads(ops["charts"][0]["data"])["labels"]
    assert labels[-1] == f"{store_day:%d %b} (so far)"


def test_a_chart_with_nothing_to_show_says_so(operator: User, tenant_a: Tenant) -> None:
    response = logged_in(operator).get(f"/ops/?tenant={tenant_a.pk}")
    charts = response.context["console"]["charts"]
    assert all(chart["empty"] for chart in charts)
    body = response.content.decode()
    assert body.count("No data yet for these days.") == len(charts) and 'class="chart"' not in body
