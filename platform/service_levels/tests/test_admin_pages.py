"""The service-level pages: a store manager's (own stores only, the plan's promises kept or missed) and the
operators' (every tenant, sortable, a tenant's stores)."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

import pytest
from django.contrib.auth.models import User
from django.utils import timezone

from billing.invoicing import calculations as calc
from billing.invoicing.tests.helpers import assign, make_plan, make_store
from conftest import logged_in
from service_levels.tests.support import direct, make_visits
from tenants.models import Tenant

PERIOD = "from=2026-10-01&to=2026-10-07"
START = datetime(2026, 10, 1, tzinfo=UTC)
END = START + timedelta(days=7)


def _cells(page: str, name: str) -> list[str]:
    """The cells of the table row named `name`, as text."""
    row = re.search(rf'<tr class="[^"]*" data-name="{re.escape(name)}">(.*?)</tr>', page, re.S)
    assert row, f"no row {name!r}"
    return [
        re.sub(r"<[^>]+>|\s+", " ", cell).strip() for cell in re.findall(r"<td[^>]*>(.*?)</td>", row.group(1), re.S)
    ]


@pytest.fixture
def two_tenants(tenant_a: Tenant, tenant_b: Tenant) -> dict[str, list]:
    promised = make_plan(
        "assured", promises=calc.Promises(without_person_bps=9_000, exit_to_receipt_p95_s=3_600, credit_bps=1_000)
    )
    assign(tenant_a, promised, date(2026, 1, 1))
    assign(tenant_b, promised, date(2026, 1, 1))
    return {
        "A1": make_visits(
            make_store(tenant_a, "A1"), count=80, start=START, span=END - START, seed=1, review_share=0.3
        ),
        "A2": make_visits(
            make_store(tenant_a, "A2"), count=40, start=START, span=END - START, seed=2, review_share=0.3
        ),
        "B1": make_visits(
            make_store(tenant_b, "B1"), count=60, start=START, span=END - START, seed=3, review_share=0.0
        ),
    }


def test_a_manager_sees_their_stores_figures_and_the_promises_missed(
    two_tenants: dict[str, list], manager_a: User, manager_b: User
) -> None:
    page = logged_in(manager_a).get(f"/admin/service_levels/servicelevel/?{PERIOD}").content.decode()
    expected = direct(two_tenants["A1"], start=START, end=END)
    cells = _cells(page, "A1 — Store A1")
    assert cells[1] == str(expected.visits) and cells[2] == f"{expected.settled_without_person * 100:.1f} %"
    assert _cells(page, "All stores of Alpha Markets")[1] == "120"
    assert "Store B1" not in page and "Bravo" not in page  # another tenant's store never shows
    assert "missed" in page and "settled without a person" in page and "promised at least 90.00 %" in page

    theirs = logged_in(manager_b).get(f"/admin/service_levels/servicelevel/?{PERIOD}").content.decode()
    assert "Store A1" not in theirs and "Alpha" not in theirs  # (a bare "A1" can be in the CSRF token)
    assert "kept" in theirs and _cells(theirs, "B1 — Store B1")[1] == "60"


def test_a_bad_period_says_so_and_shows_this_month(manager_a: User) -> None:
    for query in ("from=2026-10-07&to=2026-10-01", "from=yesterday&to=2026-10-01", "from=2024-01-01&to=2026-01-01"):
        page = logged_in(manager_a).get(f"/admin/service_levels/servicelevel/?{query}").content.decode()
        assert 'class="oa-problems"' in page and "showing this month so far" in page
        assert f'value="{timezone.localdate().replace(day=1):%Y-%m-%d}"' in page


def test_operators_compare_tenants_sort_them_and_open_one(two_tenants: dict[str, list], operator: User) -> None:
    client = logged_in(operator)
    by_visits = client.get(f"/ops/service_levels/servicelevel/?{PERIOD}&o=-visits").content.decode()
    assert by_visits.index('data-name="Alpha Markets"') < by_visits.index('data-name="Bravo Foods"')
    by_share = client.get(f"/ops/service_levels/servicelevel/?{PERIOD}&o=-without_person").content.decode()
    assert by_share.index('data-name="Bravo Foods"') < by_share.index('data-name="Alpha Markets"')
    assert "1 missed" in _cells(by_share, "Alpha Markets")[-1] and _cells(by_share, "Bravo Foods")[-1] == "kept"

    tenant_id = re.search(r'href="\?[^"]*tenant=(\d+)">Alpha Markets', by_share)
    assert tenant_id
    one = client.get(f"/ops/service_levels/servicelevel/?{PERIOD}&tenant={tenant_id.group(1)}").content.decode()
    assert _cells(one, "A2 — Store A2")[1] == "40" and "Store B1" not in one
    assert client.get(f"/ops/service_levels/servicelevel/?{PERIOD}&tenant=987654").status_code == 404
