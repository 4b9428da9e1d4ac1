"""An event stored before events were bounded, too deep to read back, holds its own visit; the store still settles."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import orjson
import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test import Client
from rest_framework.test import APIClient

from conftest import PASSWORD
from ingest.models import UnreadableEvent
from stores.models import Store
from visits.models import Visit
from visits.tests.test_pipeline import _run, _simulate, priced_store, shopper_tokens  # noqa: F401 — fixtures, by name

pytestmark = pytest.mark.usefixtures("celery_worker")


def _nested(depth: int) -> str:
    return '{"a":' * depth + "1" + "}" * depth


def _store_deep_event(store: Store, *, event_id: str, session: str, at: datetime, depth: int) -> None:
    """An item.picked with an extra field nested `depth` objects deep, written as it could be before the limits
    on events (straight into the table: ingest refuses such a line today)."""
    head = orjson.dumps(
        {"id": event_id, "type": "item.picked", "ts": at.isoformat(), "session": session, "bin": "F01-B01"}
    ).decode()
    payload = head[:-1] + ',"device":"CAM-01","confidence":0.99,"extra":' + _nested(depth) + "}"
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO ingest_event (tenant_id, store_id, event_id, type, ts, session, device, payload, received_at) "
            "VALUES (%s, %s, %s, 'item.picked', %s, %s, 'CAM-01', %s::jsonb, now())",
            [store.tenant_id, store.pk, event_id, at, session, payload],
        )


def _entry(events: list[dict[str, Any]], session: str) -> datetime:
    started = next(e for e in events if e["type"] == "session.started" and e["session"] == session)
    return datetime.fromisoformat(started["ts"])


def test_an_event_too_deep_to_read_back_sends_its_visit_to_review_and_the_store_settles(
    api_a: APIClient, operator: User, request: pytest.FixtureRequest, settings: Any
) -> None:
    priced: Store = request.getfixturevalue("priced_store")
    simulation = _simulate(priced, "clean", 6, shopper_tokens=request.getfixturevalue("shopper_tokens"))
    held, deep_but_readable, *settled = sorted(session for session, truth in simulation.truth.items() if truth)
    events = simulation.events
    _store_deep_event(
        priced, event_id="e-deep-3000", session=held, at=_entry(events, held) + timedelta(seconds=1), depth=3000
    )
    _store_deep_event(  # the depth of the report: Python's json could not read it back, orjson can
        priced,
        event_id="e-deep-1000",
        session=deep_but_readable,
        at=_entry(events, deep_but_readable) + timedelta(seconds=1),
        depth=1000,
    )

    _run(api_a, priced, simulation)

    visits = {visit.session: visit for visit in Visit.unscoped.filter(store=priced)}
    assert visits[held].status == "needs_review"
    unreadable = [reason for reason in visits[held].review_reasons if reason["code"] == "unreadable_event"]
    assert [reason["event_ids"] for reason in unreadable] == [["e-deep-3000"]]
    assert "cannot be read" in unreadable[0]["text"]
    assert not any(reason["code"] == "unreadable_event" for reason in visits[deep_but_readable].review_reasons)
    assert {visits[session].status for session in settled} == {"awaiting_payment"}
    assert not Visit.unscoped.filter(store=priced, status__in=["open", "settling"]).exists()

    unreadable = UnreadableEvent.unscoped.get()
    assert (unreadable.event_id, unreadable.session, unreadable.store_id) == ("e-deep-3000", held, priced.pk)

    settings.METRICS_TOKEN = "unreadable-metrics"
    metrics = Client().get("/metrics", headers={"Authorization": "Bearer unreadable-metrics"}).content.decode()
    assert "openaisle_unreadable_events 1.0" in metrics
    ops = Client()
    assert ops.login(username=operator.username, password=PASSWORD)
    dashboard = ops.get("/ops/").content.decode()
    assert "Unreadable events" in dashboard
    listed = ops.get("/ops/ingest/unreadableevent/").content.decode()
    assert "e-deep-3000" in listed
    assert "e-deep-1000" not in listed
