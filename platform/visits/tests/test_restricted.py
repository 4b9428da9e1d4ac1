"""Age-restricted products (catalog `min_age`, spec v1.1): the catalog column, the visit's decision through settling,
the live `restricted_item.unverified` warning and the regulators' list of restricted sales."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from billing.webhooks.models import WebhookDelivery
from billing.webhooks.services import webhook_endpoint_create
from billing.webhooks.tests.conftest import Receiver, receiver  # noqa: F401 — the fixture
from catalog.models import Product, ProductPrice
from core import tenancy
from ingest.models import EventStream
from ingest.tests.conftest import upload
from stores.models import Store
from tenants.audit import Actor
from tenants.models import Tenant
from visits import restricted
from visits.models import Visit
from visits.tasks import refresh_visits
from visits.tests.support import push, settle, stamp

ROWS = "sku,name,price,currency,tax_rate,weight_g,min_age\n"


def _import(api: APIClient, body: str) -> Any:
    upload = io.BytesIO(body.encode())
    upload.name = "catalog.csv"
    return api.post("/api/v1/catalog/import", {"file": upload}, format="multipart")


@pytest.fixture
def bar(make_store_with_layout: Callable[..., Store], tenant_a: Tenant, api_a: APIClient) -> dict[str, Any]:
    """Store S1 whose first bin holds BEER (21+), with a staff device; prices from New Year; the bin's code."""
    store = make_store_with_layout(tenant_a)
    Store.unscoped.filter(pk=store.pk).update(settling_window_seconds=0)
    layout = api_a.get(f"/api/v1/stores/{store.code}/layout").json()["document"]
    layout["devices"].append({"code": "STAFF-01", "kind": "staff_device"})
    layout["fixtures"][0]["bins"][0]["sku"] = "BEER"
    assert _import(api_a, ROWS + "BEER,Lager 6-pack,9.99,USD,8.25,250,21\n").json()["created"] == 1
    since = "2026-02-01T00:00:00Z"
    assert (
        api_a.put(f"/api/v1/stores/{store.code}/layout?effective_from={since}", layout, format="json").status_code
        == 201
    )
    ProductPrice.unscoped.filter(tenant=tenant_a).update(effective_from=datetime(2026, 1, 1, tzinfo=UTC))
    store.refresh_from_db()
    return {"store": store, "bin": layout["fixtures"][0]["bins"][0]}


def _visit(at: datetime, session: str, bin_: dict[str, Any], *, check: tuple[str, int] | None = None) -> list[dict]:
    """A shopper alone in the store takes one item from `bin_` (the scale agrees), maybe shows ID first, leaves."""
    events: list[dict[str, Any]] = [
        {"id": f"{session}-in", "type": "session.started", "ts": stamp(at), "session": session, "shopper": "t"}
    ]
    events[0]["gate"] = "GATE-IN"
    if check is not None:
        events.append(
            {
                "id": f"{session}-id",
                "type": "id.checked",
                "ts": stamp(at + timedelta(seconds=5)),
                "session": session,
                "device": "STAFF-01",
                "result": check[0],
                "min_age": check[1],
            }
        )
    events += [
        {
            "id": f"{session}-pick",
            "type": "item.picked",
            "ts": stamp(at + timedelta(seconds=10)),
            "session": session,
            "bin": bin_["code"],
            "device": "CAM-01",
            "confidence": 0.97,
        },
        {
            "id": f"{session}-w",
            "type": "shelf.weight_changed",
            "ts": stamp(at + timedelta(seconds=11)),
            "bin": bin_["code"],
            "device": bin_["sensor"],
            "delta_g": -250.0,
        },
        {
            "id": f"{session}-out",
            "type": "session.ended",
            "ts": stamp(at + timedelta(seconds=40)),
            "session": session,
            "gate": "GATE-OUT",
        },
    ]
    return events


def test_the_catalog_reads_keeps_clears_and_exports_min_age(api_a: APIClient, tenant_a: Tenant) -> None:
    assert _import(api_a, ROWS + "BEER,Lager,9.99,USD,8.25,250,21\nMILK,Milk,1.49,USD,0,1000,\n").status_code == 200
    ages = dict(Product.unscoped.filter(tenant=tenant_a).values_list("sku", "min_age"))
    assert ages == {"BEER": 21, "MILK": None}
    # A file without the column keeps the age; an empty cell clears it.
    _import(api_a, "sku,name,price,currency,tax_rate,weight_g\nBEER,Lager,9.99,USD,8.25,250\n")
    assert Product.unscoped.get(tenant=tenant_a, sku="BEER").min_age == 21
    product = api_a.get("/api/v1/products/BEER").json()
    assert product["min_age"] == 21
    _import(api_a, ROWS + "BEER,Lager,9.99,USD,8.25,250,\n")
    assert Product.unscoped.get(tenant=tenant_a, sku="BEER").min_age is None


@pytest.mark.parametrize("age", ["abc", "0", "151", "18.5", "-18"])
def test_a_bad_min_age_is_the_rows_error_and_nothing_is_written(api_a: APIClient, tenant_a: Tenant, age: str) -> None:
    answer = _import(api_a, ROWS + f"BEER,Lager,9.99,USD,8.25,250,{age}\nMILK,Milk,1.49,USD,0,1000,\n")
    assert answer.status_code == 400, answer.json()
    errors = answer.json()["error"]["details"]["errors"]
    assert errors[0]["row"] == 2 and "min_age must be a whole number of years from 1 to 150" in errors[0]["message"]
    assert not Product.unscoped.filter(tenant=tenant_a).exists()


@pytest.mark.usefixtures("localstripe")
def test_settling_sends_a_restricted_item_without_a_passed_check_to_a_person(bar: dict[str, Any]) -> None:
    store, bin_ = bar["store"], bar["bin"]
    at = datetime(2026, 3, 2, 9, tzinfo=UTC)
    day = [
        *_visit(at, "no-id", bin_),
        *_visit(at + timedelta(minutes=5), "too-young", bin_, check=("passed", 18)),
        *_visit(at + timedelta(minutes=10), "of-age", bin_, check=("passed", 21)),
    ]
    push(store, day)
    visits = {visit.session: visit for visit in settle(store, day)}
    assert visits["no-id"].status == Visit.Status.NEEDS_REVIEW
    assert any(reason["code"] == "age_unverified" for reason in visits["no-id"].review_reasons)
    assert visits["too-young"].status == Visit.Status.NEEDS_REVIEW
    assert visits["of-age"].status != Visit.Status.NEEDS_REVIEW
    assert visits["of-age"].total > 0


def test_a_live_pick_with_no_check_warns_the_licensee_once(bar: dict[str, Any], tenant_a: Tenant) -> None:
    store, bin_ = bar["store"], bar["bin"]
    with tenancy.tenant_scope(tenant_a.pk):
        webhook_endpoint_create(actor=Actor.system(), tenant=tenant_a, url="https://hooks.example.com/openaisle")
    now = timezone.now().replace(microsecond=0)
    live = _visit(now - timedelta(seconds=30), "live", bin_)[:2]
    checked = _visit(now - timedelta(seconds=30), "checked", bin_, check=("passed", 21))[:3]
    past = _visit(now - timedelta(days=1), "yesterday", bin_)[:2]
    push(store, [*live, *checked, *past])
    sessions = ["live", "checked", "yesterday"]
    refresh_visits(tenant_id=tenant_a.pk, store_id=store.pk, sessions=sessions)  # the task a push enqueues
    with tenancy.tenant_scope(tenant_a.pk):
        again = restricted.restricted_picks_warn(store=store, sessions=sessions)  # as when a refresh runs again
        sent = list(WebhookDelivery.objects.filter(event_type="restricted_item.unverified"))
    assert again == ["live-pick"]
    assert len(sent) == 1
    data = sent[0].payload
    assert (data["session"], data["sku"], data["min_age"], data["event_id"]) == ("live", "BEER", 21, "live-pick")
    assert data["store"] == store.code and data["bin"] == bin_["code"]


@pytest.mark.usefixtures("transactional_db")
def test_a_live_pick_is_warned_by_the_live_queue_alone_while_a_days_upload_waits(
    bar: dict[str, Any],
    tenant_a: Tenant,
    api_a: APIClient,
    receiver: Receiver,  # noqa: F811 — the fixture imported above
    settings: Any,
) -> None:
    """The warning's whole path — the push finished, its visit refreshed, the webhook sent — is the live queue's:
    a worker of that queue alone delivers it while a day's upload waits in the ingest queue, which nobody serves."""
    from config.celery import LIVE_QUEUE, app
    from core.tests.support import worker_in_thread

    store, bin_ = bar["store"], bar["bin"]
    with tenancy.tenant_scope(tenant_a.pk):
        webhook_endpoint_create(
            actor=Actor.system(), tenant=tenant_a, url=receiver.url, event_types=[restricted.UNVERIFIED]
        )
    eager = settings.CELERY_TASK_ALWAYS_EAGER  # embedded mode: every task runs in-process, queues or not
    if not eager:
        app.control.purge()
    backlog = [*_visit(datetime(2026, 3, 2, 9, tzinfo=UTC), "yesterday", bin_)]
    day = upload(api_a, store.code, "".join(json.dumps(event) + "\n" for event in backlog).encode())
    assert day.status_code == 202, day.json()
    now = timezone.now().replace(microsecond=0)
    live = _visit(now - timedelta(seconds=30), "live", bin_)[:2]
    assert api_a.post(f"/api/v1/stores/{store.code}/events", live, format="json").json()["accepted"] == 2
    if eager:
        received = receiver.wait_for(1)
    else:
        with worker_in_thread(app, queues=[LIVE_QUEUE]):
            received = receiver.wait_for(1, timeout=30)
        assert EventStream.unscoped.get(pk=day.json()["id"]).status == EventStream.Status.QUEUED
        app.control.purge()
    assert len(received) == 1
    warning = json.loads(received[0].body)
    assert warning["type"] == restricted.UNVERIFIED
    assert (warning["data"]["session"], warning["data"]["event_id"]) == ("live", "live-pick")


def test_an_id_check_from_a_camera_is_refused(bar: dict[str, Any], api_a: APIClient) -> None:
    event = _visit(timezone.now(), "cam", bar["bin"], check=("passed", 21))[1] | {"device": "CAM-01"}
    body = api_a.post(f"/api/v1/stores/{bar['store'].code}/events", [event], format="json").json()
    assert body["accepted"] == 0
    assert "id.checked comes from a staff_device" in body["rejected"][0]["reason"]


@pytest.mark.usefixtures("localstripe")
def test_the_regulators_export_lists_restricted_sales_with_their_checks(
    bar: dict[str, Any], manager_a: Any, manager_b: Any, client: Client
) -> None:
    store, bin_ = bar["store"], bar["bin"]
    at = datetime(2026, 3, 2, 9, tzinfo=UTC)
    day = [*_visit(at, "no-id", bin_), *_visit(at + timedelta(minutes=10), "of-age", bin_, check=("passed", 21))]
    push(store, day)
    settle(store, day)
    client.force_login(manager_a)
    url = "/admin/catalog/product/restricted-sales/"
    page = client.get(url)
    assert page.status_code == 200 and b"Download CSV" in page.content
    refused = client.get(url, {"since": "2026-03-03", "until": "2026-03-02"})
    assert refused.status_code == 200 and b"The first day comes after the last one." in refused.content
    answer = client.get(url, {"since": "2026-03-02", "until": "2026-03-02", "store": store.pk})
    assert answer["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(answer.content.decode("utf-8-sig"))))
    assert [(r["visit"], r["sku"], r["qty"], r["min_age"], r["id_check"], r["checked_with"]) for r in rows] == [
        ("no-id", "BEER", "1", "21", "none", ""),
        ("of-age", "BEER", "1", "21", "passed", "STAFF-01"),
    ]
    assert Decimal(rows[1]["checked_age"]) == 21
    client.force_login(manager_b)  # another licensee's manager sees none of it
    other = client.get(url, {"since": "2026-03-02", "until": "2026-03-02"})
    assert list(csv.DictReader(io.StringIO(other.content.decode("utf-8-sig")))) == []


@pytest.mark.usefixtures("localstripe")
def test_a_groups_restricted_line_is_checked_against_the_member_who_took_it(bar: dict[str, Any]) -> None:
    """The payer's passed check covers the payer only: the beer a companion took waits for a person, and the
    regulators' list shows the companion as the taker, with no check of its own."""
    store, bin_ = bar["store"], bar["bin"]
    at = datetime(2026, 3, 2, 9, tzinfo=UTC)
    payer = _visit(at, "P", bin_, check=("passed", 21))
    companion = [dict(event, id=f"K{event['id'][1:]}", session="K") for event in _visit(at, "K", bin_)]
    companion[0] |= {"group": "P", "ts": stamp(at + timedelta(seconds=2))}
    for event, second in zip(companion[1:], (70, 71, 100), strict=True):  # K takes one a minute after P, then leaves
        event["ts"] = stamp(at + timedelta(seconds=second))
    day = [*payer, *companion]
    push(store, day)
    visits = {visit.session: visit for visit in settle(store, day)}
    assert visits["P"].status == Visit.Status.NEEDS_REVIEW
    assert visits["P"].review_reasons == [
        {
            "code": "age_unverified",
            "text": "BEER is for 21+ and no ID check of K proved it",
            "event_ids": [],
            "sku": "BEER",
            "bin": None,
            "session": "K",
            "qty": None,
        }
    ]
    with tenancy.tenant_scope(store.tenant_id):
        rows = list(restricted.restricted_sales(since=at, until=at + timedelta(days=1), store=store))
    assert [(r["visit"], r["taken_by"], r["qty"], r["id_check"]) for r in rows] == [("P", "K, P", 2, "none")]
