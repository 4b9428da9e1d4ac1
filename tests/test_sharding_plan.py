"""The database plan past one server (deploy/README.md, issue 21): what in the live schema would stop a
tenant-sharded PostgreSQL (Citus, distributed by tenant_id), checked against a list that may only shrink."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.db import connection

from core.sharding import sharding_plan

ALLOWED = Path(__file__).with_name("sharding_blockers.txt")


def _allowed() -> set[str]:
    lines = (line.strip() for line in ALLOWED.read_text().splitlines())
    return {line for line in lines if line and not line.startswith("#")}


@pytest.mark.django_db
def test_the_blockers_to_sharding_by_tenant_only_shrink() -> None:
    plan = sharding_plan(connection)
    print(json.dumps(plan.figures(), indent=2))  # the report: `pytest -s` shows it; sharding_report prints it too

    assert {"ingest_event", "visits_visit", "payments_paymentattempt", "tenants_apikey"} <= set(plan.distributed)
    assert {"tenants_tenant", "auth_user", "invoicing_planversion", "django_migrations"} <= set(plan.reference)
    live, allowed = set(plan.blockers), _allowed()
    new, gone = sorted(live - allowed), sorted(allowed - live)
    assert not new, (
        "The schema has what a distribution by tenant would refuse: make the key include tenant_id "
        "(core/sharding.py says why), or, if there is no other way, add the line to tests/sharding_blockers.txt "
        "and say why in deploy/README.md:\n" + "\n".join(new)
    )
    assert not gone, f"Fixed, so take these lines out of {ALLOWED.name} (the list only shrinks):\n" + "\n".join(gone)


@pytest.mark.django_db
def test_the_report_tells_what_a_distribution_by_tenant_refuses_from_what_it_accepts() -> None:
    with connection.cursor() as cursor:
        for statement in (
            "CREATE TABLE probe_bad (id bigserial PRIMARY KEY, tenant_id bigint, code text UNIQUE)",
            "CREATE TABLE probe_good (tenant_id bigint NOT NULL, id bigint, code text, PRIMARY KEY (tenant_id, id),"
            " UNIQUE (tenant_id, code))",
            "CREATE TABLE probe_child (tenant_id bigint NOT NULL, id bigint, good_id bigint, bad_id bigint,"
            " PRIMARY KEY (tenant_id, id), FOREIGN KEY (tenant_id, good_id) REFERENCES probe_good (tenant_id, id),"
            " FOREIGN KEY (bad_id) REFERENCES probe_bad (id))",
            "CREATE TABLE probe_reference (id bigserial PRIMARY KEY, bad_id bigint REFERENCES probe_bad (id),"
            " tenant bigint REFERENCES tenants_tenant (id))",
        ):
            cursor.execute(statement)
    plan = sharding_plan(connection)

    assert {"probe_bad", "probe_good", "probe_child"} <= set(plan.distributed) and "probe_reference" in plan.reference
    probes = sorted(line for line in plan.blockers if "probe_" in line)
    assert probes == [
        "foreign key: probe_child (bad_id) -> probe_bad (id)",
        "nullable tenant: probe_bad.tenant_id",
        "primary key: probe_bad (id)",
        "reference table's foreign key: probe_reference (bad_id) -> probe_bad (id)",
        "unique: probe_bad.probe_bad_code_key (code)",
    ]
