"""A visit whose exit never arrives (a gate that missed the shopper) is closed at its last event once the store has
been silent about it for VISIT_EXIT_TIMEOUT_MINUTES on its own clock, and a person checks what it holds."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.conf import settings

from core import tenancy
from stores.models import LayoutVersion, Store
from tenants.models import Tenant
from visits import settling
from visits.models import Visit
from visits.reasons import ReviewReasonCode, reasons_of
from visits.tests.support import priced, push, settle, stamp

AT = datetime(2026, 3, 2, 9, tzinfo=UTC)
TIMEOUT = timedelta(minutes=settings.VISIT_EXIT_TIMEOUT_MINUTES)


@pytest.fixture
def store(make_store_with_layout: Callable[..., Store], tenant_a: Tenant) -> Store:
    return priced(make_store_with_layout(tenant_a))


def _bin(store: Store) -> dict[str, Any]:
    return LayoutVersion.unscoped.get(store=store).document["fixtures"][0]["bins"][0]


def _enter(session: str, at: datetime, *, group: str | None = None) -> dict[str, Any]:
    event = {"id": f"{session}-in", "type": "session.started", "ts": stamp(at), "session": session}
    return event | {"shopper": f"tok-{session}", "gate": "GATE-IN"} | ({"group": group} if group else {})


def _leave(session: str, at: datetime) -> dict[str, Any]:
    return {"id": f"{session}-out", "type": "session.ended", "ts": stamp(at), "session": session, "gate": "GATE-OUT"}


def _take(session: str, at: datetime, bin_: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {"id": f"{session}-cam", "type": "item.picked", "ts": stamp(at), "session": session, "bin": bin_["code"]}
        | {"device": "CAM-01", "confidence": 0.97},
        {
            "id": f"{session}-w",
            "type": "shelf.weight_changed",
            "ts": stamp(at + timedelta(seconds=1)),
            "bin": bin_["code"],
            "device": bin_["sensor"],
            "delta_g": -250.0,
        },
    ]


def _later_shopper(at: datetime) -> list[dict[str, Any]]:
    """Another visit, in and out: it moves the store's clock to `at`."""
    return [_enter("Z", at), _leave("Z", at + timedelta(seconds=30))]


def _settle_all(store: Store, events: list[dict[str, Any]]) -> None:
    push(store, events)
    settle(store, events)


def test_a_visit_with_no_exit_is_closed_at_its_last_event_and_checked_by_a_person(store: Store) -> None:
    events = [_enter("A", AT), *_take("A", AT + timedelta(minutes=2), _bin(store))]
    _settle_all(store, events)
    assert Visit.unscoped.get(store=store, session="A").status == Visit.Status.OPEN

    _settle_all(store, _later_shopper(AT + timedelta(minutes=2) + TIMEOUT + timedelta(minutes=1)))
    visit = Visit.unscoped.get(store=store, session="A")
    assert visit.status == Visit.Status.NEEDS_REVIEW
    assert visit.exit_inferred
    assert visit.exited_at == visit.last_event_at == AT + timedelta(minutes=2)  # its own last event
    assert [reason.code for reason in reasons_of(visit.review_reasons)] == [ReviewReasonCode.EXIT_NOT_SEEN]
    assert visit.total > 0  # the cart is read as usual: the person confirms it


def test_a_visit_still_within_the_timeout_on_the_stores_clock_stays_open(store: Store) -> None:
    events = [_enter("A", AT), *_take("A", AT + timedelta(minutes=2), _bin(store))]
    _settle_all(store, [*events, *_later_shopper(AT + TIMEOUT - timedelta(minutes=5))])
    # The wall clock is months later: a day uploaded late is judged on its own clock, not on today's.
    assert Visit.unscoped.get(store=store, session="A").status == Visit.Status.OPEN


def test_an_empty_visit_with_no_exit_is_closed_with_nothing_to_charge_or_check(store: Store) -> None:
    _settle_all(store, [_enter("A", AT), *_later_shopper(AT + TIMEOUT + timedelta(minutes=1))])
    visit = Visit.unscoped.get(store=store, session="A")
    assert (visit.status, visit.review_reasons, visit.exit_inferred) == (Visit.Status.NO_CHARGE, [], True)


def test_a_group_waiting_for_a_companion_whose_exit_was_lost_settles_after_the_timeout(store: Store) -> None:
    events = [
        _enter("P", AT),
        _enter("K", AT + timedelta(seconds=5), group="P"),
        *_take("P", AT + timedelta(minutes=1), _bin(store)),
        _leave("P", AT + timedelta(minutes=3)),
    ]
    _settle_all(store, events)
    assert Visit.unscoped.get(store=store, session="P").status == Visit.Status.SETTLING

    _settle_all(store, _later_shopper(AT + TIMEOUT + timedelta(minutes=2)))
    payer = Visit.unscoped.get(store=store, session="P")
    companion = Visit.unscoped.get(store=store, session="K")
    assert payer.status == Visit.Status.AWAITING_PAYMENT  # the payer's exit was seen: its cart is charged
    assert payer.review_reasons == []
    assert (companion.status, companion.exit_inferred) == (Visit.Status.NO_CHARGE, True)


def test_an_exit_arriving_after_the_close_replaces_the_inferred_one_and_settles_the_visit_again(store: Store) -> None:
    taken_at = AT + timedelta(minutes=2)
    _settle_all(store, [_enter("A", AT), *_take("A", taken_at, _bin(store))])
    _settle_all(store, _later_shopper(taken_at + TIMEOUT + timedelta(minutes=1)))
    assert Visit.unscoped.get(store=store, session="A").status == Visit.Status.NEEDS_REVIEW

    _settle_all(store, [_leave("A", taken_at + timedelta(minutes=3))])
    visit = Visit.unscoped.get(store=store, session="A")
    assert (visit.exit_inferred, visit.exited_at) == (False, taken_at + timedelta(minutes=3))
    assert visit.status == Visit.Status.AWAITING_PAYMENT
    assert visit.review_reasons == []


def test_the_sweep_visits_a_store_with_a_silent_open_visit(store: Store) -> None:
    _settle_all(store, [_enter("A", AT), *_take("A", AT + timedelta(minutes=2), _bin(store))])
    with tenancy.platform_wide_scope():
        assert store.pk in settling.stores_with_visits_settling(now=AT + TIMEOUT + timedelta(minutes=3))
        assert store.pk not in settling.stores_with_visits_settling(now=AT + timedelta(minutes=30))
