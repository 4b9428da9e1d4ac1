"""A store's calibration in the store admin: the picture, the figures, the history, and "Learn from reviews now"."""

from __future__ import annotations

import re
import zoneinfo
from collections.abc import Callable
from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone

from conftest import logged_in
from core import tenancy
from ingest.models import Event
from ingest.tests.conftest import eventually
from stores.models import LayoutVersion, Store
from visits import calibration, selectors
from visits.calibration import Evidence, Sample
from visits.calibration_chart import render_reliability
from visits.models import ReviewDecision, StoreCalibration, Visit
from visits.tests.support import keep_calibration, push, review_decision, stored_event, unclear_pick
from visits.tests.test_pipeline import DAY, priced_store  # noqa: F401 — fixture

PAGE = "/admin/visits/storecalibration/store/{}/"
LEARN = "/admin/visits/storecalibration/store/{}/learn/"


def _learnt() -> calibration.Calibration:
    """A stack that is right far more often than its margins say, learnt from 70 labelled picks."""
    samples = [Sample(Evidence.WEIGHED_CONTESTED, 0.12, n < 8, True) for n in range(10)]
    samples += [Sample(Evidence.WEIGHED_CONTESTED, 0.52, n < 19, True) for n in range(20)]
    samples += [Sample(Evidence.WEIGHED_ALONE, 0.93, True, False) for _ in range(40)]
    fitted = calibration.fit(samples=samples, prior=calibration.default())
    recent = calibration.with_risks(fitted, [0.0] * 60 + [0.004, 0.012, 0.3])
    return calibration.fit_risks(
        recent,
        visits=[calibration.VisitSample(0.3, n < 20) for n in range(40)],
        charged=[calibration.ChargedVisit(0.004, float(n < 3)) for n in range(60)],
    )


@pytest.fixture
def calibrated(priced_store: Store) -> Store:  # noqa: F811
    """Two calibrations (the second the one in use), and a week of visits: 3 settled alone, 1 sent to review."""
    keep_calibration(priced_store, calibration.default(), number=1)
    keep_calibration(priced_store, _learnt(), number=2)
    now = timezone.now()
    for number, status in enumerate(["charged", "charged", "no_charge", "needs_review"]):
        Visit.unscoped.create(
            tenant_id=priced_store.tenant_id,
            store=priced_store,
            session=f"W{number}",
            status=status,
            entered_at=now - timedelta(days=1, minutes=5),
            exited_at=now - timedelta(days=1),
            settled_at=now - timedelta(days=1),
            review_reasons=["r"] if status == "needs_review" else [],
        )
    return priced_store


def test_the_calibration_page_draws_the_store_calibration_and_its_figures(manager_a: User, calibrated: Store) -> None:
    response = logged_in(manager_a).get(PAGE.format(calibrated.pk))

    assert response.status_code == 200
    body = response.content.decode()
    facts = body[body.index('class="oa-cal-facts"') : body.index('id="calibration-learn"')]
    assert "At most 0.5 % of visits overcharged" in facts
    limit = _learnt().charge_limit(0.005)
    assert limit == 0.012
    assert "up to 1.2 %" in facts and "is at most 1.2 %" in facts
    assert "75 %" in facts and "of 4 visits settled; 1 went to a person" in facts
    assert "70 labelled examples" in facts
    svg = body[body.index("<svg") : body.index("</svg>")]
    assert svg.count('class="curve-learnt"') == svg.count('class="curve-prior"') == len(Evidence)
    assert 'stroke-dasharray="6 4"' in svg, "the starting point is dashed"
    assert svg.count('class="example"') == 3
    dots = {int(count): float(radius) for radius, count in re.findall(r'r="([\d.]+)"[^>]*data-count="(\d+)"', svg)}
    assert sorted(dots) == [10, 20, 40]
    assert dots[40] > dots[20] > dots[10], "dots are sized by count"
    assert "19 right (95 %)" in svg, "each dot says how many were right"
    assert "Camera alone" in svg and "nothing learnt here yet" in svg
    assert 'class="charge-limit"' in svg and "at least 98.8 %" in svg
    assert "learnt from this store&#x27;s own visits" in svg, "with a legend"
    assert '"curves"' not in body and '"risks"' not in body, "no raw JSON"
    checks = body[body.index('id="risk-checks"') : body.index('id="calibration-history"')]
    # 40 decided visits at 30 % were to hold 12 overcharges; people found 20: counted at (2 + 20) / (2 + 12).
    assert "20 % to 50 %" in checks and '<td class="oa-num">40</td>' in checks
    assert '<td class="oa-num">12.0</td>' in checks and '<td class="oa-num">157 %</td>' in checks
    # 60 visits at 0.4 % charged without a person were to hold 0.24 overcharges; people upheld 3 of their disputes.
    charged = checks[checks.index("0.2 % to 0.5 %") :]
    assert '<td class="oa-num">60</td><td class="oa-num">3.0</td>' in charged and "0.2</td>" in charged
    # Three shown make at least 0.818 at 95 % confidence (a Poisson lower bound): over three times the 0.24 expected.
    assert f'<td class="oa-num">{round(0.8177 / 0.24 * 100)} %</td>' in charged
    history = body[body.index('id="calibration-history"') :]
    assert history.count("<tr") == 3
    assert 'href="?number=1"' in history and 'href="?number=2"' not in history
    assert 'id="learn-now"' in body


def _fact(client: Client, store: Store, card: str) -> str:
    """The calibration page's fact card `card` (its id after "fact-"), up to the card after it."""
    page = client.get(PAGE.format(store.pk)).content.decode()
    start = page.index(f'id="fact-{card}"')
    return page[start : page.index('class="oa-cal-fact"', start)]


def _picks_weighed(store: Store, *, after: Callable[[int], float], delta_g: float) -> None:
    """Forty picks at F01-B01 a minute apart up to now, the nth weighed as `delta_g` after(n) s later."""
    now = timezone.now()
    events = []
    for n in range(40):
        at = now - timedelta(minutes=n + 1)
        taken = {"session": f"S{n}", "bin": "F01-B01", "device": "CAM-01", "confidence": 0.97}
        events.append(stored_event(store, f"p{n}", "item.picked", at, **taken))
        weighed = {"bin": "F01-B01", "device": "W-F01-B01", "delta_g": delta_g}
        events.append(stored_event(store, f"w{n}", "shelf.weight_changed", at + timedelta(seconds=after(n)), **weighed))
    Event.unscoped.bulk_create(events)


def test_the_calibration_page_says_on_what_scale_the_store_s_cameras_are_read(
    manager_a: User,
    priced_store: Store,  # noqa: F811
) -> None:
    client = logged_in(manager_a)
    assert "as reported" in _fact(client, priced_store, "scale")  # no picks yet: nothing to tell
    now = timezone.now()
    picks = [
        stored_event(
            priced_store, f"p{n}", "item.picked", now - timedelta(minutes=n + 1), session="S", bin="B", confidence=c
        )
        for n, c in enumerate([0.84, 0.88, 0.86] * 10)
    ]
    Event.unscoped.bulk_create(picks)
    fact = _fact(client, priced_store, "scale")
    assert "0.90" in fact and "read as full confidence" in fact


def test_the_calibration_page_says_what_the_store_s_cameras_say_of_their_sure_picks(
    manager_a: User,
    priced_store: Store,  # noqa: F811
) -> None:
    client = logged_in(manager_a)
    assert "fact-sure" not in _fact(client, priced_store, "scale")
    now = timezone.now()
    picks = [
        stored_event(
            priced_store, f"p{n}", "item.picked", now - timedelta(minutes=n + 1), session="S", bin="B", confidence=c
        )
        for n, c in enumerate(0.7 + 0.01 * n for n in range(30))
    ]
    Event.unscoped.bulk_create(picks)
    fact = _fact(client, priced_store, "scale")
    assert "as reported" in fact and "say as little as 0.80" in fact and "read as a sure pick" in fact


def test_the_calibration_page_says_how_late_the_store_s_scales_weigh(
    manager_a: User,
    priced_store: Store,  # noqa: F811
) -> None:
    client = logged_in(manager_a)
    fact = _fact(client, priced_store, "scale-timing")
    assert "Too few picks" in fact and "from 3.0 s before it to 6.0 s after" in fact
    _picks_weighed(priced_store, after=lambda n: 8 + n % 5, delta_g=-250.0)
    fact = _fact(client, priced_store, "scale-timing")
    assert "10.0 s late" in fact and "Of 40 picks" in fact and "to 13.5 s after" in fact


def test_the_calibration_page_says_how_far_off_the_store_s_scales_weigh(
    manager_a: User,
    priced_store: Store,  # noqa: F811
) -> None:
    client = logged_in(manager_a)
    assert "Too few weighings" in _fact(client, priced_store, "weighing")
    _picks_weighed(priced_store, after=lambda n: 1, delta_g=-275.0)  # one 250 g unit, 10 % heavy
    fact = _fact(client, priced_store, "weighing")
    assert "± 12.5 %" in fact and "within 12.5 % of a whole number" in fact


def test_a_new_stores_page_shows_the_curves_its_scales_taught(
    manager_a: User,
    priced_store: Store,  # noqa: F811
) -> None:
    _picks_weighed(priced_store, after=lambda n: 1, delta_g=-250.0)  # each one 250 g unit, as the catalog says
    page = logged_in(manager_a).get(PAGE.format(priced_store.pk)).content.decode()
    assert "taught by its scales: 40 picks" in page
    assert page.count("nothing learnt here yet") == len(Evidence) - 1  # every other kind still at its start


def test_an_earlier_calibration_can_be_looked_at(manager_a: User, calibrated: Store) -> None:
    client = logged_in(manager_a)
    older = client.get(PAGE.format(calibrated.pk), {"number": "1"}).content.decode()
    assert "An earlier calibration" in older and "no examples yet" in older
    assert "No reviewed visit or dispute has checked the engine's risks yet" in older
    row = StoreCalibration.unscoped.get(store=calibrated, number=1)
    opened = client.get(f"/admin/visits/storecalibration/{row.pk}/change/")
    assert opened["Location"] == PAGE.format(calibrated.pk) + "?number=1"
    listed = client.get("/admin/visits/storecalibration/")
    assert listed.status_code == 200 and [r.number for r in listed.context["cl"].result_list] == [2, 1]


def test_the_calibration_page_says_when_the_store_learns_from_its_reviews_next(
    manager_a: User, calibrated: Store
) -> None:
    client = logged_in(manager_a)
    assert "No visit reviewed since then." in client.get(PAGE.format(calibrated.pk)).content.decode()
    visits = Visit.unscoped.filter(store=calibrated).order_by("session")
    for visit in visits[:3]:
        review_decision(visit, reviewer=manager_a, action="approve")
    body = client.get(PAGE.format(calibrated.pk)).content.decode()
    latest = StoreCalibration.unscoped.get(store=calibrated, number=2)
    by = timezone.localtime(latest.created_at + timedelta(days=1), zoneinfo.ZoneInfo(calibrated.timezone))
    assert (
        f"3 visits reviewed since then: the store learns from them once 22 more are reviewed, or by {by:%Y-%m-%d %H:%M}"
        in body
    )
    for n in range(calibration.LEARN_AFTER_REVIEWS - 3):
        visit = Visit.unscoped.create(
            tenant_id=calibrated.tenant_id, store=calibrated, session=f"R{n}", status="charged"
        )
        review_decision(visit, reviewer=manager_a, action="approve")
    body = client.get(PAGE.format(calibrated.pk)).content.decode()
    assert "25 visits reviewed since then: the store learns from them within the next quarter of an hour." in body


def test_the_calibration_page_says_what_people_changed_in_the_engine_s_carts(
    manager_a: User,
    priced_store: Store,  # noqa: F811
    bravo_store: Store,
) -> None:
    """Each visit's latest decision of the last 30 days, against the cart the engine proposed for it."""
    now = timezone.now()
    cola, chips = {"sku": "SKU-001", "qty": 1}, {"sku": "SKU-002", "qty": 2}
    decided = [
        (priced_store, "kept", "approve", [cola, chips], [chips, cola], now - timedelta(days=1)),
        (priced_store, "removed", "approve", [cola, chips], [cola, {"sku": "SKU-002", "qty": 1}], now),
        (priced_store, "both", "approve", [cola], [chips], now - timedelta(days=2)),
        (priced_store, "added", "approve", [cola], [cola, chips], now),
        (priced_store, "voided", "void", [cola], [], now),
        (priced_store, "old", "approve", [cola], [], now - timedelta(days=31)),
        (bravo_store, "other-tenant", "approve", [cola], [], now),
    ]
    reviewer = User.objects.create(username="reviewer@alpha.test")
    for store, session, action, before, after, at in decided:
        visit = Visit.unscoped.create(tenant_id=store.tenant_id, store=store, session=session, status="charged")
        ReviewDecision.unscoped.create(
            tenant_id=store.tenant_id,
            visit=visit,
            reviewer=reviewer,
            action=action,
            lines_before=before,
            lines_after=after,
            decided_at=at,
        )
    second_look = Visit.unscoped.get(session="kept")  # decided again later: its latest decision counts
    ReviewDecision.unscoped.create(
        tenant_id=second_look.tenant_id,
        visit=second_look,
        reviewer=reviewer,
        action="approve",
        lines_before=[cola, chips],
        lines_after=[cola, chips],
        decided_at=now,
    )

    with tenancy.tenant_scope(priced_store.tenant_id):
        outcomes = selectors.review_outcomes(store=priced_store, since=now - timedelta(days=30))
    assert outcomes == selectors.ReviewOutcomes(decided=5, kept=1, removed=2, added=2, voided=1)
    card = _fact(logged_in(manager_a), priced_store, "reviews")
    assert "20 % kept" in card and "Of 5 visits people decided, 1 kept the cart the engine proposed" in card
    assert "In 2 they took off items" in card and "in 2 they added items" in card and "1 was voided" in card


def test_a_store_without_calibration_shows_where_every_store_starts(manager_a: User, priced_store: Store) -> None:  # noqa: F811
    body = logged_in(manager_a).get(PAGE.format(priced_store.pk)).content.decode()
    assert "has not learnt a calibration yet" in body and "nothing yet" in body
    assert body.count('class="curve-prior"') == len(Evidence)
    assert "No visits settled in the last 7 days" in body
    assert "No visit was decided by a person in the last 30 days" in body


def test_another_tenants_calibration_is_404_and_cannot_be_learnt(
    manager_a: User,
    calibrated: Store,
    bravo_store: Store,
    manager_b: User,
) -> None:
    theirs = bravo_store
    client = logged_in(manager_a)
    assert client.get(PAGE.format(theirs.pk)).status_code == 404
    assert client.post(LEARN.format(theirs.pk)).status_code == 404
    assert not StoreCalibration.unscoped.filter(store=theirs).exists()
    row = StoreCalibration.unscoped.get(store=calibrated, number=2)
    bobs = logged_in(manager_b)
    assert bobs.get(PAGE.format(calibrated.pk)).status_code == 404
    assert bobs.get(f"/admin/visits/storecalibration/{row.pk}/change/").status_code == 404
    assert bobs.post(LEARN.format(calibrated.pk)).status_code == 404
    assert "Store B1" not in client.get("/admin/visits/storecalibration/").content.decode()  # not bare "B1": CSRF


def test_a_viewer_sees_the_calibration_but_cannot_ask_to_learn(viewer_a: User, calibrated: Store) -> None:
    viewer = logged_in(viewer_a)
    page = viewer.get(PAGE.format(calibrated.pk))
    assert page.status_code == 200 and 'id="learn-now"' not in page.content.decode()
    assert viewer.post(LEARN.format(calibrated.pk)).status_code == 403
    assert StoreCalibration.unscoped.filter(store=calibrated).count() == 2


@pytest.mark.usefixtures("celery_worker")
def test_learn_from_reviews_now_learns_in_the_background(manager_a: User, priced_store: Store) -> None:  # noqa: F811
    bin_ = LayoutVersion.unscoped.get(store=priced_store).document["fixtures"][0]["bins"][0]
    push(priced_store, unclear_pick(at=DAY, first="A", second="B", bin_=bin_))
    eventually(lambda: Visit.unscoped.filter(store=priced_store, settled_at__isnull=False).count() == 2)
    client = logged_in(manager_a)

    response = client.post(LEARN.format(priced_store.pk), follow=True)

    assert response.redirect_chain[-1][0] == PAGE.format(priced_store.pk)
    assert "in the background" in response.content.decode()
    eventually(lambda: StoreCalibration.unscoped.filter(store=priced_store).exists())
    row = StoreCalibration.unscoped.get(store=priced_store)
    assert (row.number, row.visits, row.created_by) == (1, 2, "alice@alpha.test")
    assert "calibration 1, asked for by alice@alpha.test" in client.get(PAGE.format(priced_store.pk)).content.decode()


def test_the_chart_is_a_pure_function_of_the_calibrations() -> None:
    svg = render_reliability(learnt=_learnt(), prior=calibration.default(), charge_limit=None)
    assert svg.startswith("<svg") and svg.endswith("</svg>")
    assert 'class="charge-limit"' not in svg
    assert render_reliability(learnt=_learnt(), prior=calibration.default(), charge_limit=None) == svg
