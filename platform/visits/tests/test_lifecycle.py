"""The visit's lifecycle: every transition of the table works, any other raises and writes nothing, a stale writer
loses its compare-and-set, and nothing but `visits.lifecycle` writes a visit's status."""

from __future__ import annotations

import itertools
import logging
import re
from pathlib import Path

import pytest

from core import tenancy
from stores.models import Store
from tenants.models import Tenant
from visits import lifecycle
from visits.lifecycle import TRANSITIONS, Cause, StatusChanged, Transition, TransitionNotAllowed
from visits.models import Visit

Status = Visit.Status
ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def store(tenant_a: Tenant) -> Store:
    return Store.unscoped.create(tenant=tenant_a, code="LC-1", name="Lifecycle", currency="USD")


def _visit(store: Store, status: str, session: str = "V1") -> Visit:
    return Visit.unscoped.create(tenant=store.tenant, store=store, session=session, status=status, currency="USD")


@pytest.mark.django_db
@pytest.mark.parametrize("transition", sorted(TRANSITIONS, key=str), ids=str)
def test_every_transition_of_the_table_is_written(store: Store, transition: Transition) -> None:
    visit = _visit(store, transition.source)
    with tenancy.tenant_scope(store.tenant_id):
        lifecycle.move(visit, target=transition.target, cause=transition.cause)
    assert visit.status == transition.target
    assert Visit.unscoped.get(pk=visit.pk).status == transition.target


def test_every_transition_not_in_the_table_raises_before_writing() -> None:
    """No database here: a transition the table does not hold is refused before any query."""
    refused = 0
    for source, target, cause in itertools.product(Status, Status, Cause):
        if Transition(source, target, cause) in TRANSITIONS:
            continue
        visit = Visit(pk=1, session="V1", status=source)
        with pytest.raises(TransitionNotAllowed):
            lifecycle.move(visit, target=target, cause=cause)
        assert visit.status == source
        refused += 1
    assert refused == len(Status) ** 2 * len(Cause) - len(TRANSITIONS)


@pytest.mark.django_db
def test_a_forbidden_transition_is_logged_and_leaves_the_row_unchanged(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    visit = _visit(store, Status.SETTLING)
    with (
        tenancy.tenant_scope(store.tenant_id),
        caplog.at_level(logging.ERROR, logger="visits.lifecycle"),
        pytest.raises(TransitionNotAllowed, match="cannot go from settling to charged"),
    ):
        lifecycle.move(visit, target=Status.CHARGED, cause=Cause.PAYMENT_COLLECTED)
    assert Visit.unscoped.get(pk=visit.pk).status == Status.SETTLING
    assert "not a transition of the lifecycle" in caplog.text


@pytest.mark.django_db
def test_a_writer_that_read_a_status_since_changed_loses_and_writes_nothing(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    """Two writers read the visit awaiting its payment; one records the payment, the other's failure then loses."""
    first = _visit(store, Status.AWAITING_PAYMENT)
    second = Visit.unscoped.get(pk=first.pk)
    with tenancy.tenant_scope(store.tenant_id):
        first.paid = 500
        lifecycle.payment_settled(first)
        with caplog.at_level(logging.ERROR, logger="visits.lifecycle"), pytest.raises(StatusChanged):
            lifecycle.payment_failed(second, reason="card declined")
    stored = Visit.unscoped.get(pk=first.pk)
    assert (stored.status, stored.payment_status, stored.payment_failure) == (Status.CHARGED, "succeeded", "")
    assert second.status == Status.AWAITING_PAYMENT
    assert "lost to a concurrent change" in caplog.text


@pytest.mark.django_db
def test_a_decided_cart_awaits_its_payment_or_charges_nothing(store: Store) -> None:
    owed, empty, failed = (_visit(store, Status.SETTLING, session) for session in ("OWED", "EMPTY", "FAILED"))
    owed.total = failed.total = 500
    failed.payment_status = Visit.PaymentStatus.FAILED
    with tenancy.tenant_scope(store.tenant_id):
        for visit in (owed, empty):
            lifecycle.cart_decided(visit)
        failed.status = Status.NEEDS_REVIEW
        Visit.unscoped.filter(pk=failed.pk).update(status=Status.NEEDS_REVIEW)
        lifecycle.cart_decided(failed)
    assert [Visit.unscoped.get(pk=v.pk).status for v in (owed, empty, failed)] == [
        Status.AWAITING_PAYMENT,
        Status.NO_CHARGE,
        Status.PAYMENT_FAILED,
    ]


def test_the_api_serves_the_contracts_statuses() -> None:
    """The licensee API's statuses are spec store-api.md's: a visit awaiting its payment is served as `charged`."""
    assert [str(status) for status in lifecycle.API_STATUSES] == [
        "open", "settling", "needs_review", "charged", "payment_failed", "refunded", "no_charge",
    ]  # fmt: skip
    assert lifecycle.served_status("awaiting_payment") == "charged"
    assert lifecycle.stored_statuses("charged") == ["awaiting_payment", "charged"]
    assert lifecycle.stored_statuses("needs_review") == ["needs_review"]


# What writes a visit's status or payment status: an assignment to a visit's, an UPDATE setting it, a save naming it.
WRITES = (
    re.compile(r"\b\w*visit\w*\.(status|payment_status)\s*=[^=]", re.IGNORECASE),
    re.compile(r"\.update\(.*\b(status|payment_status)=(Visit\.)?(Status|PaymentStatus)\."),
    re.compile(r"\b\w*visit\w*\.save\(update_fields=.*[\"'](status|payment_status)[\"']", re.IGNORECASE),
)


def test_only_the_lifecycle_writes_a_visits_status() -> None:
    found = []
    for folder in ("platform", "billing", "tenants"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            relative = path.relative_to(ROOT)
            if {"tests", "migrations"} & set(relative.parts) or relative.as_posix() == "platform/visits/lifecycle.py":
                continue
            for number, line in enumerate(path.read_text().splitlines(), start=1):
                if any(pattern.search(line) for pattern in WRITES):
                    found.append(f"{relative}:{number}: {line.strip()}")
    assert found == []


def test_the_architecture_page_shows_the_table_as_it_is() -> None:
    """docs/architecture.md ("A visit's life") lists the table row by row: cause, the statuses from, the status to."""
    page = (ROOT / "docs" / "architecture.md").read_text()
    documented = set()
    for cause, sources, target in re.findall(r"^\| `(\w+)` \| ([\w, ]+) \| (\w+) \|$", page, re.MULTILINE):
        documented |= {Transition(Status(s.strip()), Status(target), Cause(cause)) for s in sources.split(",")}
    assert documented == TRANSITIONS
