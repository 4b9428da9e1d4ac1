"""Read replicas for the consoles (core.replica, deploy/README.md, issue 21): with a replica configured, the
`/ops/` and finance dashboards read from it and nothing else does; without one, nothing changes."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

import pytest
from django.contrib.auth.models import User
from django.db import connections
from django.test.utils import CaptureQueriesContext

from billing.invoicing.tests.helpers import at, make_store, sale
from conftest import logged_in
from core.replica import REPLICA, ConsoleReplicaRouter, console_reads
from tenants.models import Tenant
from visits.models import Visit

pytestmark = pytest.mark.django_db(transaction=True)  # committed rows: the replica's connection is another session


@pytest.fixture(scope="module", autouse=True)
def replica(django_db_setup: None) -> Iterator[None]:
    """A `replica` alias on the test database itself, as a streaming replica holds the primary's rows (made before
    each test's database access is set up, which lists the aliases a test may use)."""
    connections.settings[REPLICA] = dict(connections["default"].settings_dict)
    yield
    connections[REPLICA].close()
    del connections[REPLICA]
    del connections.settings[REPLICA]


def _tables(queries: CaptureQueriesContext) -> str:
    return " ".join(query["sql"] for query in queries.captured_queries)


@pytest.mark.django_db(transaction=True, databases=["default", REPLICA])
def test_the_ops_and_finance_consoles_read_from_the_replica_and_nothing_else_does(
    operator: User, finance: User, tenant_a: Tenant
) -> None:
    sale(make_store(tenant_a, "R1"), at=at(date.today()), amount=12_345)

    for user, shows in ((operator, "Alpha Markets"), (finance, "Receivables")):
        with CaptureQueriesContext(connections[REPLICA]) as on_replica:
            page = logged_in(user).get("/ops/")
        assert page.status_code == 200 and shows in page.content.decode()
        assert "invoicing_" in _tables(on_replica), f"{user.username}'s console read nothing from the replica"

    with CaptureQueriesContext(connections[REPLICA]) as elsewhere:
        listing = logged_in(operator).get("/ops/tenants/tenant/")
    assert listing.status_code == 200 and elsewhere.captured_queries == []


def test_writes_and_reads_outside_a_console_stay_on_the_primary() -> None:
    router = ConsoleReplicaRouter()
    assert router.db_for_read(Visit) is None
    with console_reads():
        assert (router.db_for_read(Visit), router.db_for_write(Visit)) == (REPLICA, "default")
    assert router.allow_migrate(REPLICA, "visits") is False and router.allow_migrate("default", "visits") is None


def test_without_a_replica_the_consoles_read_the_primary(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(connections.settings, REPLICA)
    with console_reads():
        assert ConsoleReplicaRouter().db_for_read(Visit) is None
