"""What another overcharge risk would do to a store's recent visits: the calibration page's "What another risk
setting would do" and the licensee API's `risk-options`."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.auth.models import User
from django.utils import timezone
from rest_framework.test import APIClient

from conftest import logged_in
from core import tenancy
from stores.models import Store
from visits import selectors
from visits.calibration import RiskOption, default, with_risks
from visits.models import Visit
from visits.tests.support import keep_calibration
from visits.tests.test_pipeline import priced_store  # noqa: F401 — fixture

PAGE = "/admin/visits/storecalibration/store/{}/"
API = "/api/v1/stores/{}/risk-options"
SETTINGS = [0.001, 0.0025, 0.005, 0.01, 0.02]


def _settled(store: Store, risks: list[float]) -> None:
    """Visits settled with these risks, as settling stores them."""
    now = timezone.now()
    for number, risk in enumerate(risks):
        at = now - timedelta(minutes=len(risks) - number)
        Visit.unscoped.create(
            tenant_id=store.tenant_id,
            store=store,
            session=f"settled-{number}",
            status=Visit.Status.CHARGED,
            entered_at=at - timedelta(minutes=5),
            exited_at=at,
            settled_at=at,
            risk=risk,
        )


@pytest.fixture
def settled(priced_store: Store) -> Store:  # noqa: F811
    """A store with no calibration yet and 100 settled visits: 90 all but certain, 5 at 1 %, 5 at 10 %."""
    _settled(priced_store, [0.0] * 90 + [0.01] * 5 + [0.1] * 5)
    return priced_store


def _options(store: Store) -> selectors.RiskOptions:
    with tenancy.tenant_scope(store.tenant_id):
        return selectors.risk_options(store=store, latest=selectors.calibration_latest(store=store))


def test_before_its_first_calibration_a_store_s_options_are_drawn_from_its_settled_visits(settled: Store) -> None:
    options = _options(settled)

    assert (options.visits, options.learnt, options.risk) == (100, False, 0.005)
    assert [option.risk for option in options.options] == SETTINGS
    # At 0.5 %, 100 visits may expect 0.5 overcharges: the five at 1 % fit (0.05), the five at 10 % do not.
    assert options.current == RiskOption(0.005, 0.01, 0.05, 0.0005)
    # At 1 % they fit (0.55 of 1.0): nothing is sent for its risk.
    assert options.options[3] == RiskOption(0.01, 0.1, 0.0, 0.0055)
    # Even at 0.1 %, the five at 1 % fit (0.05 of 0.1).
    assert options.options[0] == RiskOption(0.001, 0.01, 0.05, 0.0005)


def test_a_store_s_own_setting_is_among_its_options(settled: Store) -> None:
    settled.overcharge_risk = Decimal("0.0030")
    settled.save(update_fields=["overcharge_risk"])
    options = _options(settled)

    assert [option.risk for option in options.options] == [0.001, 0.0025, 0.003, 0.005, 0.01, 0.02]
    assert options.current == RiskOption(0.003, 0.01, 0.05, 0.0005)


def test_once_calibrated_a_store_s_options_are_drawn_from_its_calibration_s_risks(settled: Store) -> None:
    keep_calibration(settled, with_risks(default(), [0.0] * 150 + [0.02] * 50), number=1)
    options = _options(settled)

    assert (options.visits, options.learnt) == (200, True)
    # 200 visits at 0.5 % may expect one overcharge: the fifty at 2 % would be another; at 1 %, two: they fit.
    assert options.current == RiskOption(0.005, 0.005, 0.25, 0.0)
    assert options.options[3] == RiskOption(0.01, 0.02, 0.0, 0.005)


def test_a_store_with_no_visit_settled_has_nothing_to_weigh(priced_store: Store) -> None:  # noqa: F811
    options = _options(priced_store)
    assert (options.visits, options.current) == (0, RiskOption(0.005, 0.005, 0.0, 0.0))


def test_the_api_says_what_each_risk_setting_would_do(api_a: APIClient, settled: Store) -> None:
    response = api_a.get(API.format(settled.code))

    assert response.status_code == 200, response.content
    body = response.json()
    assert {key: body[key] for key in ("store", "overcharge_risk", "calibration", "visits")} == {
        "store": "S1",
        "overcharge_risk": 0.005,
        "calibration": None,
        "visits": 100,
    }
    assert [option["overcharge_risk"] for option in body["options"]] == SETTINGS
    assert [option["current"] for option in body["options"]] == [False, False, True, False, False]
    assert body["options"][2] == {
        "overcharge_risk": 0.005,
        "charge_limit": 0.01,
        "sent_for_risk_share": 0.05,
        "expected_overcharge_share": 0.0005,
        "current": True,
    }


def test_the_api_names_the_calibration_the_options_come_from(api_a: APIClient, settled: Store) -> None:
    keep_calibration(settled, with_risks(default(), [0.0] * 150 + [0.02] * 50), number=3)
    body = api_a.get(API.format(settled.code)).json()
    assert (body["calibration"], body["visits"], body["options"][2]["sent_for_risk_share"]) == (3, 200, 0.25)


def test_another_tenant_and_an_unknown_store_get_404(api_a: APIClient, api_b: APIClient, settled: Store) -> None:
    assert api_b.get(API.format(settled.code)).status_code == 404
    assert api_a.get(API.format("NO-SUCH-STORE")).status_code == 404


def test_the_calibration_page_shows_what_another_risk_setting_would_do(manager_a: User, settled: Store) -> None:
    body = logged_in(manager_a).get(PAGE.format(settled.pk)).content.decode()

    section = body[body.index('id="risk-options"') : body.index('id="calibration-chart"')]
    rows = section[section.index("<tbody>") : section.index("</tbody>")].split("</tr>")[:-1]
    assert len(rows) == 5
    yours = rows[2]
    assert 'class="oa-shown"' in yours and "0.5 % (yours)" in yours
    assert all(cell in yours for cell in (">1 %</td>", ">5 %</td>", ">0.05 %</td>"))
    assert "(yours)" not in "".join(rows[:2] + rows[3:])
    assert "<td>0.25 %</td>" in rows[1], "a setting as it was set, not rounded"
    assert "Of the store's 100 latest visits, as they were settled." in section
    assert "{" not in section and "0.0005" not in section, "shares for people, no raw figures"
    # The limit the page gives is the one the options drew from the settled visits.
    limit = body[body.index('id="fact-limit"') : body.index('id="fact-auto"')]
    assert "up to 1 %" in limit


def test_the_calibration_page_says_when_no_visit_was_settled(manager_a: User, priced_store: Store) -> None:  # noqa: F811
    body = logged_in(manager_a).get(PAGE.format(priced_store.pk)).content.decode()
    section = body[body.index('id="risk-options"') : body.index('id="calibration-chart"')]
    assert "Once the store has settled visits, this shows what each risk setting would do to them." in section
    assert "<table>" not in section
