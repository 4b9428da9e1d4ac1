"""Live push: the same validation and writing as uploads, answered at once."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from core import tenancy
from ingest.models import Event, EventStream, Rejection
from ingest.tests.conftest import day_of_events, eventually, wait_for_stream
from stores.models import Device, Store
from stores.services import devices_mark_silent, store_create
from tenants.audit import Actor
from visits.models import Visit
from visits.settling import settle_when_due

pytestmark = pytest.mark.usefixtures("celery_worker")


def test_push_accepts_reports_duplicates_and_rejections_by_index(api_a: APIClient, store_a: Store) -> None:
    events = day_of_events(store_a, visits=3)
    response = api_a.post(f"/api/v1/stores/{store_a.code}/events", events, format="json")
    assert response.status_code == 202
    stream = EventStream.unscoped.get(source="push")
    assert response.json() == {
        "accepted": len(events),
        "duplicates": 0,
        "rejected": [],
        "stream": stream.pk,
        "url": f"http://testserver/api/v1/event-streams/{stream.pk}",
    }
    again = [
        *events[:2],
        {"id": "bad-1", "type": "item.picked"},
        "not an object",
        {**events[3], "id": "new-1", "bin": "??"},
    ]
    body = api_a.post(f"/api/v1/stores/{store_a.code}/events", again, format="json").json()
    assert body["accepted"] == 0
    assert body["duplicates"] == 2
    assert [(r["index"], r["event_id"]) for r in body["rejected"]] == [(2, "bad-1"), (3, None), (4, "new-1")]
    assert "missing required field 'ts'" in body["rejected"][0]["reason"]
    assert "bin '??' is not in the layout" in body["rejected"][2]["reason"]
    stream = EventStream.unscoped.filter(source="push").latest("created_at")
    assert (stream.lines, stream.accepted, stream.duplicates, stream.rejected) == (5, 0, 2, 3)
    assert Rejection.unscoped.filter(stream=stream).count() == 3


def test_push_is_answered_once_stored_and_finished_by_a_worker(api_a: APIClient, store_a: Store) -> None:
    """The answer refuses an event of a session never started (to be sent again); a worker finishes the rest."""
    events = day_of_events(store_a, visits=1)
    stray = {**next(e for e in events if e["type"] == "item.picked"), "id": "stray-1", "session": "never-started"}
    body = api_a.post(f"/api/v1/stores/{store_a.code}/events", [*events, stray], format="json").json()
    assert body["accepted"] == len(events)
    assert [(r["index"], r["event_id"]) for r in body["rejected"]] == [(len(events), "stray-1")]
    assert "unknown session 'never-started'" in body["rejected"][0]["reason"]
    assert not Event.unscoped.filter(event_id="stray-1").exists()

    status = wait_for_stream(api_a, body["stream"])
    assert (status["status"], status["accepted"], status["rejected"]) == ("done", len(events), 1)
    eventually(lambda: Visit.unscoped.filter(store=store_a).exists())
    assert Device.unscoped.filter(store=store_a, last_seen_at__isnull=False).exists()


def test_push_hands_visits_on(api_a: APIClient, store_a: Store) -> None:
    events = day_of_events(store_a, visits=4)
    api_a.post(f"/api/v1/stores/{store_a.code}/events", events, format="json")
    eventually(
        lambda: Visit.unscoped.filter(store=store_a, exited_at__isnull=False).exclude(status="open").count() == 4
    )


def test_push_checks_sessions_against_the_batch_and_what_came_before(api_a: APIClient, store_a: Store) -> None:
    events = day_of_events(store_a, visits=2)
    started = [e for e in events if e["type"] == "session.started"]
    rest = [e for e in events if e["type"] != "session.started"]
    first = api_a.post(f"/api/v1/stores/{store_a.code}/events", started, format="json").json()
    assert first["accepted"] == len(started)
    second = api_a.post(f"/api/v1/stores/{store_a.code}/events", rest, format="json").json()
    assert second["accepted"] == len(rest)
    assert second["rejected"] == []


@pytest.mark.parametrize(
    ("body", "status"),
    [({"id": "x"}, 400), ([{"id": str(n)} for n in range(1001)], 400), ("text", 400)],
)
def test_push_bad_bodies_write_nothing(api_a: APIClient, store_a: Store, body, status: int) -> None:
    response = api_a.post(f"/api/v1/stores/{store_a.code}/events", body, format="json")
    assert response.status_code == status
    assert response.json()["error"]["code"] == "invalid"
    assert not EventStream.unscoped.exists()
    assert not Event.unscoped.exists()


def test_push_to_another_tenants_store_is_404_and_writes_nothing(api_a: APIClient, store_b: Store) -> None:
    events = day_of_events(store_b, visits=1)
    response = api_a.post(f"/api/v1/stores/{store_b.code}/events", events, format="json")
    assert response.status_code == 404
    assert not Event.unscoped.exists()


def test_devices_silent_for_too_long_are_marked_offline(api_a: APIClient, store_a: Store) -> None:
    now = timezone.now()
    stamp = (now - timedelta(minutes=1)).isoformat().replace("+00:00", "Z")
    fresh = {"id": "s1", "type": "device.status", "ts": stamp, "device": "CAM-01", "status": "online"}
    pushed = api_a.post(f"/api/v1/stores/{store_a.code}/events", [fresh], format="json").json()
    wait_for_stream(api_a, pushed["stream"])  # device health is the worker's part of finishing a push
    Device.unscoped.filter(store=store_a, code="CAM-02").update(status="online", last_seen_at=now - timedelta(hours=2))
    with tenancy.platform_wide_scope():
        changed = devices_mark_silent(silent_after=timedelta(minutes=15))
    assert changed == 1
    assert Device.unscoped.get(store=store_a, code="CAM-02").status == "offline"
    assert Device.unscoped.get(store=store_a, code="CAM-01").status == "online"


def test_v1_1_events_are_accepted_and_stored_from_a_staff_device(api_a: APIClient, store_a: Store) -> None:
    layout = api_a.get(f"/api/v1/stores/{store_a.code}/layout").json()["document"]
    layout["devices"].append({"code": "STAFF-01", "kind": "staff_device"})
    layout["fixtures"][0]["kind"] = "crate"
    published = api_a.put(
        f"/api/v1/stores/{store_a.code}/layout?effective_from=2026-02-01T00:00:00Z", layout, format="json"
    )
    assert published.status_code == 201, published.json()
    bin_code = layout["fixtures"][0]["bins"][0]["code"]
    at = "2026-03-02T09:00:0{}Z"
    events = [
        {"id": "g1", "type": "session.started", "ts": at.format(0), "session": "p1", "shopper": "t", "gate": "GATE-IN"},
        {
            "id": "g2",
            "type": "session.started",
            "ts": at.format(1),
            "session": "c1",
            "shopper": "t",
            "gate": "GATE-IN",
            "group": "p1",
        },
        {
            "id": "g3",
            "type": "id.checked",
            "ts": at.format(2),
            "session": "p1",
            "device": "STAFF-01",
            "result": "passed",
            "min_age": 21,
        },
        {"id": "g4", "type": "shelf.restocked", "ts": at.format(3), "bin": bin_code, "device": "STAFF-01", "qty": 6},
        {"id": "g5", "type": "shelf.restocked", "ts": at.format(4), "bin": bin_code, "device": "CAM-01", "qty": 6},
    ]
    body = api_a.post(f"/api/v1/stores/{store_a.code}/events", events, format="json").json()
    assert body["accepted"] == 4
    assert [(r["index"], r["reason"]) for r in body["rejected"]] == [
        (4, "device 'CAM-01' is a camera, but shelf.restocked comes from a staff_device")
    ]
    with tenancy.tenant_scope(store_a.tenant_id):
        stored = {e.event_id: e for e in Event.objects.filter(store=store_a, event_id__in=["g2", "g3", "g4"])}
        assert stored["g2"].payload["group"] == "p1"
        assert (stored["g3"].session, stored["g3"].device) == ("p1", "STAFF-01")
        assert (stored["g4"].session, stored["g4"].payload["qty"]) == (None, 6)
        assert Device.objects.get(store=store_a, code="STAFF-01").kind == "staff_device"


def test_a_live_visit_settles_when_its_window_ends_with_no_further_event(api_a: APIClient, store_a: Store) -> None:
    Store.unscoped.filter(pk=store_a.pk).update(settling_window_seconds=2)
    events = day_of_events(store_a, visits=1)
    last = max(datetime.fromisoformat(e["ts"]) for e in events)
    shift = timezone.now() - last
    live = [{**e, "ts": (datetime.fromisoformat(e["ts"]) + shift).isoformat()} for e in events]
    response = api_a.post(f"/api/v1/stores/{store_a.code}/events", live, format="json")
    assert response.json()["accepted"] == len(events)
    visit = Visit.unscoped.filter(store=store_a)
    eventually(lambda: visit.filter(exited_at__isnull=False).exists())
    assert visit.get().status == Visit.Status.SETTLING  # its window had not passed when the push was handled
    eventually(lambda: visit.get().status != Visit.Status.SETTLING, timeout=20)
    assert visit.get().settled_at is not None


def test_settling_is_sent_once_per_step_for_visits_still_in_their_window(store_a: Store) -> None:
    now = timezone.now()
    with tenancy.tenant_scope(store_a.tenant_id):
        for number, exited in enumerate([now, now, now - timedelta(seconds=200)]):
            Visit.objects.create(
                tenant_id=store_a.tenant_id,
                store=store_a,
                session=f"s{number}",
                entered_at=exited,
                exited_at=exited,
                status="settling",
            )
        due = settle_when_due(store=store_a, sessions=["s0", "s1", "s2"], now=now)
    assert len(due) == 1  # the two that just left share a settling; the third is due already (ingest's settling)
    assert now + timedelta(seconds=store_a.settling_window_seconds) < due[0] <= now + timedelta(seconds=130)


def test_a_push_of_started_sessions_costs_a_fixed_handful_of_queries(api_a: APIClient, store_a: Store) -> None:
    """The request path of a live push, by statement: the store with its layout versions; the stream (the references
    are kept in the process); staging made ready, COPY and the insert (one round trip each); the trigger told to
    wait no more; the one look-up for sessions started before; the stream's counts. Whatever a push adds to
    this runs once for every push of every live store."""
    events = day_of_events(store_a, visits=3)
    started = [e for e in events if e["type"] == "session.started"]
    api_a.post(f"/api/v1/stores/{store_a.code}/events", started, format="json")
    rest = [e for e in events if e["type"] != "session.started"][:20]
    with CaptureQueriesContext(connection) as queries:
        response = api_a.post(f"/api/v1/stores/{store_a.code}/events", rest, format="json")
    assert response.json()["accepted"] == len(rest)
    statements = [q["sql"] for q in queries.captured_queries if q["sql"] not in ("BEGIN", "COMMIT")]
    assert len(statements) == 7, "\n".join(statements)


def test_a_push_to_a_store_with_no_layout_yet_refuses_its_events(api_a: APIClient, tenant_a) -> None:
    """A store with no layout is read alone (the push reads a store with its layout versions): its events refer to
    bins and devices no layout knows, and are refused one by one, not lost."""
    store = store_create(
        actor=Actor.system(), tenant=tenant_a, code="BARE", name="Bare", timezone="Europe/Paris", currency="EUR"
    )
    events = [{"id": "d-1", "type": "device.status", "ts": "2026-03-02T08:00:00Z", "device": "cam-1", "status": "ok"}]
    body = api_a.post(f"/api/v1/stores/{store.code}/events", events, format="json").json()
    assert (body["accepted"], len(body["rejected"])) == (0, 1)
    assert not Event.unscoped.filter(store=store).exists()
