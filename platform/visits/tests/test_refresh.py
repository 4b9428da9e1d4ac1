"""Refreshing visits from their events (set-based): the figures, the status transitions, what is left alone."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User

from core import tenancy
from ingest.models import Event
from stores.models import Store
from tenants.models import Tenant
from visits import services
from visits.models import Visit
from visits.tests.support import review_decision, stored_event

T0 = datetime(2026, 3, 2, 9, tzinfo=UTC)
GATES = {"session.started": {"gate": "GATE-IN"}, "session.ended": {"gate": "GATE-OUT"}}


@pytest.fixture
def store_a(make_store_with_layout: Callable[..., Store], tenant_a: Tenant) -> Store:
    return make_store_with_layout(tenant_a)


def _add(store: Store, *events: tuple[str, str, int, dict[str, Any]]) -> None:
    """Events as (type, session, seconds after T0, extra payload), stored as ingest stores them."""
    start = Event.unscoped.filter(store=store).count()
    rows = []
    for number, (kind, session, seconds, extra) in enumerate(events, start=start):
        seen_by = GATES.get(kind, {"device": "CAM-01"})
        at = T0 + timedelta(seconds=seconds)
        rows.append(stored_event(store, f"e{number}", kind, at, session=session, **seen_by, **extra))
    Event.unscoped.bulk_create(rows)


def _refresh(store: Store, sessions: list[str]) -> list[str]:
    with tenancy.tenant_scope(store.tenant_id):
        return services.visits_refresh(store=store, sessions=sessions)


def at(seconds: int | None) -> datetime | None:
    return None if seconds is None else T0 + timedelta(seconds=seconds)


def _visit(store: Store, session: str) -> Visit:
    return Visit.unscoped.get(store=store, session=session)


def test_a_visit_follows_its_events_from_entry_to_exit(store_a: Store) -> None:
    _add(store_a, ("session.started", "A", 0, {"shopper": "tok_a"}), ("item.picked", "A", 30, {"bin": "F01-B01"}))
    assert _refresh(store_a, ["A", "A"]) == ["A"]
    visit = _visit(store_a, "A")
    assert (visit.status, visit.entered_at, visit.exited_at) == ("open", T0, None)
    assert (visit.last_event_at, visit.events_count) == (T0 + timedelta(seconds=30), 2)
    assert visit.shopper_token_hash == "tok_a"  # what its session.started holds (ingest stores the hash there)

    _add(store_a, ("session.ended", "A", 90, {}), ("item.returned", "A", 60, {"bin": "F01-B01"}))
    _refresh(store_a, ["A"])
    visit = _visit(store_a, "A")
    assert (visit.status, visit.exited_at) == ("settling", T0 + timedelta(seconds=90))
    assert (visit.last_event_at, visit.events_count) == (T0 + timedelta(seconds=90), 4)
    updated = visit.updated_at

    _refresh(store_a, ["A"])  # again: the same figures, never added to
    again = _visit(store_a, "A")
    assert (again.status, again.events_count, again.exited_at) == ("settling", 4, visit.exited_at)
    assert again.updated_at >= updated


def test_entry_is_the_first_start_exit_the_last_end_shopper_the_latest_start(store_a: Store) -> None:
    _add(
        store_a,
        ("session.started", "B", 10, {"shopper": "tok_late"}),
        ("session.started", "B", 5, {"shopper": "tok_early"}),
        ("session.ended", "B", 50, {}),
        ("session.ended", "B", 70, {}),
    )
    _refresh(store_a, ["B"])
    visit = _visit(store_a, "B")
    assert (visit.entered_at, visit.exited_at) == (T0 + timedelta(seconds=5), T0 + timedelta(seconds=70))
    assert visit.shopper_token_hash == "tok_late"


def test_a_visit_without_a_start_keeps_its_shopper_and_has_no_entry(store_a: Store) -> None:
    Visit.unscoped.create(tenant=store_a.tenant, store=store_a, session="C", shopper_token_hash="tok_kept")
    _add(store_a, ("item.picked", "C", 20, {"bin": "F01-B01"}), ("session.ended", "C", 40, {}))
    _refresh(store_a, ["C"])
    visit = _visit(store_a, "C")
    assert (visit.shopper_token_hash, visit.entered_at, visit.status) == ("tok_kept", None, "settling")


def test_sessions_without_events_get_a_visit_left_untouched(store_a: Store) -> None:
    _add(store_a, ("session.started", "D", 0, {"shopper": "tok_d"}))
    assert _refresh(store_a, ["D", "nothing-yet"]) == ["D", "nothing-yet"]
    empty = _visit(store_a, "nothing-yet")
    assert (empty.status, empty.events_count, empty.entered_at, empty.shopper_token_hash) == ("open", 0, None, "")


def test_a_decided_visit_keeps_its_status_and_only_a_final_unreviewed_one_is_settled_again(
    store_a: Store, manager_a: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    settled_again: list[list[str]] = []
    monkeypatch.setattr(services, "visits_settle", lambda *, store, sessions, now: settled_again.append(sessions))
    for session in ("R", "F", "W"):
        _add(
            store_a, ("session.started", session, 0, {"shopper": f"tok_{session}"}), ("session.ended", session, 60, {})
        )
    common = {"tenant": store_a.tenant, "store": store_a, "settled_at": T0}
    reviewed = Visit.unscoped.create(session="R", status="charged", **common)
    review_decision(reviewed, reviewer=manager_a)
    Visit.unscoped.create(session="F", status="no_charge", **common)
    Visit.unscoped.create(session="W", status="needs_review", **common)
    _add(store_a, *[("item.picked", session, 30, {"bin": "F01-B01"}) for session in ("R", "F", "W")])
    _refresh(store_a, ["W", "R", "F"])
    assert settled_again == [["F", "W"]]
    statuses = dict(Visit.unscoped.filter(store=store_a).values_list("session", "status"))
    assert statuses == {"R": "charged", "F": "no_charge", "W": "needs_review"}
    assert set(Visit.unscoped.filter(store=store_a).values_list("events_count", flat=True)) == {3}


def test_other_stores_and_tenants_are_left_alone(
    store_a: Store, make_store_with_layout: Callable[..., Store], tenant_b: Tenant
) -> None:
    store_b = make_store_with_layout(tenant_b)
    _add(store_a, ("session.started", "S", 0, {"shopper": "tok_a"}))
    _add(store_b, ("session.started", "S", 0, {"shopper": "tok_b"}), ("session.ended", "S", 9, {}))
    _refresh(store_a, ["S"])
    assert _visit(store_a, "S").events_count == 1
    assert not Visit.unscoped.filter(store=store_b).exists()
    _refresh(store_b, ["S"])
    assert (_visit(store_a, "S").status, _visit(store_a, "S").shopper_token_hash) == ("open", "tok_a")
    assert (_visit(store_b, "S").status, _visit(store_b, "S").shopper_token_hash) == ("settling", "tok_b")


def test_many_sessions_in_one_call_match_the_events(store_a: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """More sessions than one batch of statements, random events: every figure as computed one by one."""
    monkeypatch.setattr(services, "REFRESH_BATCH", 7)
    rng = random.Random(5)
    sessions = [f"v{n:02d}" for n in range(30)]
    events = []
    for session in sessions:
        kinds = ["item.picked"] * rng.randint(0, 4) + ["session.started"] * rng.randint(0, 2)
        kinds += ["session.ended"] * rng.randint(0, 2)
        for kind in kinds:
            extra = {"shopper": f"tok_{session}_{rng.randint(0, 9)}"} if kind == "session.started" else {}
            events.append((kind, session, rng.randint(0, 3600), extra))
    _add(store_a, *events)
    assert _refresh(store_a, sessions[::-1]) == sessions
    for session in sessions:
        mine = [e for e in events if e[1] == session]
        starts = sorted((s, e[3]["shopper"]) for e in mine if e[0] == "session.started" for s in [e[2]])
        ends = [e[2] for e in mine if e[0] == "session.ended"]
        visit = _visit(store_a, session)
        if not mine:
            assert (visit.events_count, visit.last_event_at) == (0, None)
            continue
        assert visit.events_count == len(mine)
        assert visit.last_event_at == at(max(e[2] for e in mine))
        assert visit.entered_at == at(starts[0][0] if starts else None)
        assert visit.exited_at == at(max(ends) if ends else None)
        assert visit.status == ("settling" if ends else "open")
        if starts and starts[-1][0] != (starts[-2][0] if len(starts) > 1 else None):  # no tie for the latest
            assert visit.shopper_token_hash == starts[-1][1]
