"""Entry tokens are kept hashed wherever they arrive after registration, and a visit still finds its shopper
(issue 16, finding 13: tokens were stored in clear in events and visits and shown by the API and the admin)."""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db.models import TextField
from django.db.models.functions import Cast
from django.test import Client
from rest_framework.test import APIClient

from billing.payments import shoppers
from conftest import PASSWORD
from core import tenancy
from core.entry_tokens import ENTRY_TOKEN_PREFIX, entry_token_hash
from ingest.models import Event, Rejection
from ingest.tests.conftest import day_of_events, eventually, ndjson, upload, wait_for_stream
from stores.models import Store
from tenants.models import Tenant
from visits.models import Visit


def _nowhere_stored(token: str) -> bool:
    in_events = Event.unscoped.annotate(text=Cast("payload", TextField())).filter(text__contains=token)
    return not (
        in_events.exists()
        or Rejection.unscoped.filter(raw__contains=token).exists()
        or Visit.unscoped.filter(shopper_token_hash__contains=token).exists()
    )


@pytest.mark.usefixtures("celery_worker")
def test_tokens_are_stored_hashed_and_the_visit_still_finds_its_shopper(
    api_a: APIClient,
    tenant_a: Tenant,
    manager_a: User,
    make_store_with_layout: Callable[..., Store],
    register: Callable[..., Any],
) -> None:
    store = make_store_with_layout(tenant_a)
    registered_shopper = register(tenant_a)
    token, shopper = registered_shopper.entry_token, registered_shopper.shopper
    events = day_of_events(store, visits=2)
    starts = [event for event in events if event["type"] == "session.started"]
    registered, unknown = starts[0]["session"], starts[1]["session"]
    starts[0]["shopper"], starts[1]["shopper"] = token, "tok_nobody_registered"
    refused = {**starts[0], "id": "bad-gate", "session": "other", "gate": "NO-SUCH-GATE"}

    pushed = api_a.post(f"/api/v1/stores/{store.code}/events", [*events, refused], format="json")
    assert pushed.status_code == 202, pushed.content
    assert [r["event_id"] for r in pushed.json()["rejected"]] == ["bad-gate"]
    eventually(lambda: Visit.unscoped.filter(store=store).exclude(shopper_token_hash="").count() == 2)

    # Not in the events, the rejected line or the visits: only the hash the shopper table keeps.
    assert _nowhere_stored(token)
    stored = Event.unscoped.get(store=store, event_id=starts[0]["id"])
    assert stored.payload["shopper"] == shopper.token_hash == entry_token_hash(token)
    assert entry_token_hash(token) in Rejection.unscoped.get(event_id="bad-gate").raw
    visit = Visit.unscoped.get(store=store, session=registered)
    assert visit.shopper_token_hash == shopper.token_hash
    with tenancy.tenant_scope(tenant_a.pk):
        assert shoppers.shopper_for_token_hash(visit.shopper_token_hash) == shopper  # matching still works

    # The API shows the shopper's id (GET /shoppers/{id}), or null for a token nobody registered.
    receipt = api_a.get(f"/api/v1/stores/{store.code}/visits/{registered}").json()
    assert receipt["shopper"] == shopper.pk
    assert api_a.get(f"/api/v1/stores/{store.code}/visits/{unknown}").json()["shopper"] is None
    listed = api_a.get(f"/api/v1/stores/{store.code}/visits").content.decode()
    assert token not in listed and entry_token_hash(token) not in listed

    # The admin's visit page names neither the token nor the whole hash.
    admin = Client()
    assert admin.login(username=manager_a.username, password=PASSWORD)
    page = admin.get(f"/admin/visits/visit/{visit.pk}/change/").content.decode()
    assert visit.session in page
    assert shopper.external_ref in page and f"#{shopper.pk} · " not in page, "the licensee's id, not the database's"
    assert token not in page and entry_token_hash(token) not in page


@pytest.mark.usefixtures("celery_worker")
def test_a_refused_line_keeps_no_entry_token_however_it_is_spelt(
    api_a: APIClient, tenant_a: Tenant, make_store_with_layout: Callable[..., Store]
) -> None:
    """A refused line is kept as sent (its start), with every entry token in it replaced by its hash: one under a
    JSON-escaped key, in a line cut short or not JSON, spelt with an escape, in another field, in a line too
    long to read; and an accepted event with a `shopper` it need not carry keeps the hash too."""
    store = make_store_with_layout(tenant_a)
    token = ENTRY_TOKEN_PREFIX + secrets.token_urlsafe(24)
    events = day_of_events(store, visits=1)
    started = next(event for event in events if event["type"] == "session.started")
    picked = {**next(event for event in events if event["type"] == "item.picked"), "id": "extra", "shopper": token}
    escaped = json.dumps({**started, "id": "escaped-key", "shopper": token, "gate": "NO-SUCH-GATE"})
    refused = [
        escaped.replace('"shopper"', '"sh\\u006fpper"'),
        f'{{"id": "cut-short", "type": "session.started", "shopper": "{token}", "gate": ',
        f'{{"id": "spelt", "shopper": "\\u0073{token[1:]}", oops}}',
        json.dumps({"id": "unknown-type", "type": "session.begun", "note": f"the card of {token}"}),
        json.dumps({**started, "id": "too-long", "shopper": token, "padding": "x" * 70_000}),
    ]
    body = ndjson([*events, picked]) + "".join(line + "\n" for line in refused).encode()
    stream_id = upload(api_a, store.code, body).json()["id"]
    result = wait_for_stream(api_a, stream_id)
    assert (result["accepted"], result["rejected"]) == (len(events) + 1, len(refused)), result

    rows = list(Rejection.unscoped.filter(stream_id=stream_id))
    rejections = {
        name: next(row for row in rows if f'"id": "{name}"' in row.raw) for name in ("escaped-key", "cut-short")
    }
    assert _nowhere_stored(token) and _nowhere_stored(token[4:20])
    assert not Rejection.unscoped.filter(reason__contains=token[4:]).exists()
    hashed = entry_token_hash(token)
    assert len(rows) == len(refused)
    for kept in rows:
        assert hashed in kept.raw, kept.raw  # hidden, not dropped: the same hash an accepted event keeps
    assert '"gate": "NO-SUCH-GATE"' in rejections["escaped-key"].raw  # the rest of the line is as sent
    assert rejections["cut-short"].raw.startswith('{"id": "cut-short", "type": "session.started", "shopper": "')
    assert Event.unscoped.get(store=store, event_id="extra").payload["shopper"] == hashed
