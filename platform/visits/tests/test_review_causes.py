"""Where a store's reviews come from: the bins its reviewed visits' reasons name, whether they have a scale, the
calibration page's "Where reviews come from", and the licensee API's `review-causes`."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from rest_framework.test import APIClient

from conftest import logged_in
from core import tenancy
from stores.models import Store
from tenants.models import AuditEntry
from visits import selectors
from visits.models import Visit
from visits.reasons import ReviewReason
from visits.reasons import ReviewReasonCode as Code
from visits.selectors import scale_advice
from visits.tests.test_pipeline import priced_store  # noqa: F401 — fixture

PAGE = "/admin/visits/storecalibration/store/{}/"
API = "/api/v1/stores/{}/review-causes"
# In the sample layout: F02-B05 holds SKU-015 with no scale under it, F01-B01 holds SKU-001 on a scale.
NO_SCALE, WEIGHED = "F02-B05", "F01-B01"


def _reason(code: Code, bin_: str | None = None) -> dict[str, object]:
    return ReviewReason(code, f"{code} at {bin_}", ("e-1",) if bin_ else (), "SKU-015", bin_).as_json()


def _visit(store: Store, session: str, reasons: list[object], *, exited: datetime | None = None) -> Visit:
    exited = exited or timezone.now() - timedelta(days=2)
    visit: Visit = Visit.unscoped.create(
        tenant_id=store.tenant_id,
        store=store,
        session=session,
        status=Visit.Status.NEEDS_REVIEW if reasons else Visit.Status.CHARGED,
        entered_at=exited - timedelta(minutes=5),
        exited_at=exited,
        settled_at=exited,
        review_reasons=reasons,
    )
    return visit


@pytest.fixture
def reviewed(priced_store: Store, bravo_store: Store) -> Store:  # noqa: F811
    """Seven visits of the last 30 days sent to a person, four naming the bin without a scale; one charged; one older;
    and the other tenant's store's visits naming the same bins."""
    risk, unsure = Code.RISK_OVER_LIMIT, Code.UNSURE_TAKER
    _visit(priced_store, "both-kinds", [_reason(unsure, NO_SCALE), _reason(risk, NO_SCALE)])
    _visit(priced_store, "risk-1", [_reason(risk, NO_SCALE)])
    _visit(priced_store, "risk-2", [_reason(risk, NO_SCALE)])
    two_bins = [_reason(unsure, WEIGHED), _reason(Code.UNSEEN_BIN_CHANGE, WEIGHED), _reason(unsure, NO_SCALE)]
    _visit(priced_store, "two-bins", two_bins)
    _visit(priced_store, "no-exit", [_reason(Code.EXIT_NOT_SEEN)])
    _visit(priced_store, "before-reasons-as-data", ["something on this receipt may not be this shopper's"])
    _visit(priced_store, "gone-bin", [_reason(unsure, "X-99")])
    _visit(priced_store, "charged", [])
    _visit(priced_store, "last-month", [_reason(risk, NO_SCALE)], exited=timezone.now() - timedelta(days=31))
    for n in range(5):
        _visit(bravo_store, f"theirs-{n}", [_reason(risk, NO_SCALE), _reason(unsure, WEIGHED)])
    return priced_store


def test_review_causes_count_each_reviewed_visit_once_per_bin_it_names(reviewed: Store) -> None:
    since = timezone.now() - timedelta(days=30)
    with tenancy.tenant_scope(reviewed.tenant_id), CaptureQueriesContext(connection) as queries:
        causes = selectors.review_causes_by_bin(store=reviewed, since=since)

    assert (causes.reviewed, causes.without_scale, causes.naming_no_bin) == (7, 4, 2)
    assert [(row.bin, row.visits) for row in causes.bins] == [(NO_SCALE, 4), (WEIGHED, 1), ("X-99", 1)]
    no_scale, weighed, gone = causes.bins
    assert no_scale.by_reason == {Code.RISK_OVER_LIMIT: 3, Code.UNSURE_TAKER: 2}
    assert no_scale.main_reason == Code.RISK_OVER_LIMIT
    assert (no_scale.has_scale, no_scale.sku, no_scale.product) == (False, "SKU-015", "Product SKU-015")
    assert no_scale.share == pytest.approx(4 / 7)
    assert (weighed.has_scale, weighed.sku, weighed.product) == (True, "SKU-001", "Product SKU-001")
    assert weighed.by_reason == {Code.UNSURE_TAKER: 1, Code.UNSEEN_BIN_CHANGE: 1}
    assert (gone.has_scale, gone.product) == (None, "SKU-015"), "a bin no longer in the layout: its scale unknown"
    visit_queries = [q["sql"] for q in queries.captured_queries if '"visits_visit"' in q["sql"]]
    assert len(visit_queries) == 1, "one query over the visits, whatever the number of bins"


def test_review_causes_leave_out_visits_before_since(reviewed: Store) -> None:
    with tenancy.tenant_scope(reviewed.tenant_id):
        month = selectors.review_causes_by_bin(store=reviewed, since=timezone.now() - timedelta(days=40))
        later = selectors.review_causes_by_bin(store=reviewed, since=timezone.now() - timedelta(days=1))
    assert (month.reviewed, month.bins[0].visits) == (8, 5)
    assert (later.reviewed, later.bins) == (0, [])


def test_review_causes_never_count_another_tenant_s_visits(reviewed: Store, bravo_store: Store) -> None:
    since = timezone.now() - timedelta(days=30)
    with tenancy.tenant_scope(bravo_store.tenant_id):
        theirs = selectors.review_causes_by_bin(store=bravo_store, since=since)
        ours_seen_by_them = selectors.review_causes_by_bin(store=reviewed, since=since)
    assert (theirs.reviewed, [(row.bin, row.visits) for row in theirs.bins]) == (5, [(NO_SCALE, 5), (WEIGHED, 5)])
    assert ours_seen_by_them.reviewed == 0, "under another tenant's scope, a store's visits are not there"


def test_the_calibration_page_shows_where_reviews_come_from(manager_a: User, reviewed: Store) -> None:
    body = logged_in(manager_a).get(PAGE.format(reviewed.pk)).content.decode()

    section = body[body.index('id="review-causes"') : body.index('id="risk-checks"')]
    assert "Where reviews come from (last 30 days)" in section
    rows = section[section.index("<tbody>") : section.index("</tbody>")]
    assert rows.count("<tr>") == 3
    first = rows[: rows.index("</tr>")]
    assert all(cell in first for cell in (NO_SCALE, "Product SKU-015", "<td>no</td>", ">4</td>", ">57 %</td>"))
    assert "Overcharge risk over the store&#x27;s limit" in first
    assert "<td>yes</td>" in rows and "not in the current layout" in rows
    advice = "Bins without a scale sent 57 % of reviewed visits: a scale under F02-B05 would let the engine weigh"
    assert advice in section
    assert "7 visits were sent to a person." in section and "2 of them (29 %) named no bin" in section
    assert "risk_over_limit" not in section and "unsure_taker" not in section, "no internal codes"
    assert "{" not in section, "no raw JSON"


def test_the_calibration_page_says_when_no_visit_was_reviewed(manager_a: User, priced_store: Store) -> None:  # noqa: F811
    _visit(priced_store, "charged", [])
    body = logged_in(manager_a).get(PAGE.format(priced_store.pk)).content.decode()
    section = body[body.index('id="review-causes"') : body.index('id="risk-checks"')]
    assert "No visit of this store was sent to a person in the last 30 days." in section
    assert "<table>" not in section and "scale-advice" not in section


def test_another_tenant_s_people_get_404_for_the_store_s_page(manager_b: User, reviewed: Store) -> None:
    assert logged_in(manager_b).get(PAGE.format(reviewed.pk)).status_code == 404


def test_scales_are_advised_only_when_unweighed_bins_send_a_large_share_of_several_visits() -> None:
    def causes(reviewed: int, without_scale: int) -> selectors.ReviewCauses:
        row = selectors.BinReviewCauses(NO_SCALE, without_scale, {}, False, "SKU-015", "Soap", without_scale / reviewed)
        return selectors.ReviewCauses(reviewed, [row], without_scale, 0)

    assert scale_advice(causes(8, 3)).startswith("Bins without a scale sent 38 % of reviewed visits: a scale under")
    assert scale_advice(causes(16, 3)) == "", "under a quarter of the reviews"
    assert scale_advice(causes(4, 2)) == "", "two visits say little of a bin"
    assert scale_advice(selectors.ReviewCauses(0, [], 0, 0)) == "", "no visit reviewed: nothing to advise"


def test_the_api_gives_where_reviews_come_from_per_bin(api_a: APIClient, reviewed: Store) -> None:
    before = timezone.now()
    response = api_a.get(API.format(reviewed.code))
    after = timezone.now()

    assert response.status_code == 200, response.content
    body = response.json()
    since = parse_datetime(body.pop("since"))
    assert since is not None and before - timedelta(days=30) <= since <= after - timedelta(days=30)
    assert body == {
        "store": "S1",
        "reviewed_visits": 7,
        "visits_naming_a_bin_without_a_scale": 4,
        "visits_naming_no_bin": 2,
        "bins": [
            {
                "bin": NO_SCALE,
                "sku": "SKU-015",
                "product": "Product SKU-015",
                "has_scale": False,
                "visits": 4,
                "share": 0.5714,
                "reasons": {"risk_over_limit": 3, "unsure_taker": 2},
                "main_reason": "risk_over_limit",
            },
            {
                "bin": WEIGHED,
                "sku": "SKU-001",
                "product": "Product SKU-001",
                "has_scale": True,
                "visits": 1,
                "share": 0.1429,
                "reasons": {"unsure_taker": 1, "unseen_bin_change": 1},
                "main_reason": "unsure_taker",
            },
            {
                "bin": "X-99",
                "sku": "SKU-015",
                "product": None,
                "has_scale": None,
                "visits": 1,
                "share": 0.1429,
                "reasons": {"unsure_taker": 1},
                "main_reason": "unsure_taker",
            },
        ],
        "advice": "Bins without a scale sent 57 % of reviewed visits: a scale under F02-B05 would let the engine weigh "
        "those takes.",
    }


def test_the_api_counts_only_visits_that_exited_in_the_last_days(api_a: APIClient, reviewed: Store) -> None:
    month = api_a.get(API.format(reviewed.code), {"days": 32}).json()
    assert (month["reviewed_visits"], month["bins"][0]["visits"]) == (8, 5), "the visit of 31 days ago counts"
    assert api_a.get(API.format(reviewed.code), {"days": 30}).json()["reviewed_visits"] == 7, "…not in 30 days"
    today = api_a.get(API.format(reviewed.code), {"days": 1}).json()
    assert (today["reviewed_visits"], today["bins"], today["advice"]) == (0, [], None)


@pytest.mark.parametrize("days", ["0", "91", "abc", "-1", "1.5", "²", "9" * 5000])
def test_the_api_refuses_days_that_are_not_1_to_90(api_a: APIClient, reviewed: Store, days: str) -> None:
    visits, entries = Visit.unscoped.count(), AuditEntry.unscoped.count()
    response = api_a.get(API.format(reviewed.code), {"days": days})
    assert response.status_code == 400
    assert response.json() == {
        "error": {
            "code": "invalid",
            "message": "The request is not valid; see details.",
            "details": {"days": "A whole number from 1 to 90."},
        }
    }
    assert (Visit.unscoped.count(), AuditEntry.unscoped.count()) == (visits, entries)


def test_the_api_answers_404_for_an_unknown_store_or_another_tenant_s(
    api_a: APIClient, api_b: APIClient, reviewed: Store
) -> None:
    unknown = api_a.get(API.format("NOPE"))
    assert (unknown.status_code, unknown.json()["error"]["code"]) == (404, "not_found")
    theirs = api_b.get(API.format(reviewed.code))
    assert (theirs.status_code, theirs.json()["error"]["code"]) == (404, "not_found")
    own = api_b.get(API.format("B1")).json()
    assert (own["reviewed_visits"], [row["visits"] for row in own["bins"]]) == (5, [5, 5]), "their own visits only"
