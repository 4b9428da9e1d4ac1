"""A store's calibration: settling reads its latest and the store's risk; it is learnt from the store's reviews."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db.models import F
from django.utils import timezone

from catalog.models import Product
from core import tenancy
from disputes.models import Dispute
from ingest.models import Event
from stores.models import LayoutVersion, Store
from stores.services import store_update
from tenants.audit import Actor
from tenants.models import AuditEntry, Tenant
from visits import calibration, engine, selectors, services, settling
from visits.calibration import Calibration, Curve, Evidence
from visits.models import ReviewDecision, StoreCalibration, Visit, VisitLine
from visits.simulator import CatalogItem, simulate
from visits.tasks import learn_calibration
from visits.tests.support import keep_calibration, push, review_decision, settle, unclear_pick
from visits.tests.test_pipeline import priced_store  # noqa: F401 — fixture

DAY = datetime(2026, 3, 2, 9, tzinfo=UTC)


def _bin(store: Store) -> dict:
    return LayoutVersion.unscoped.get(store=store).document["fixtures"][0]["bins"][0]


def _with_contested_curve(probability: float, *, risks: tuple[float, ...] = ()) -> Calibration:
    """The default calibration, but a scale-backed pick with others near is right with this probability."""
    base = calibration.default()
    curve = Curve(((0.0, probability), (1.0, probability)))
    return replace(base, curves={**base.curves, Evidence.WEIGHED_CONTESTED: curve}, risks=risks)


def _push_and_settle(store: Store, events: list[dict]) -> list[Visit]:
    push(store, events)
    return settle(store, events)


def _engine_risk(store: Store, session: str, model: Calibration) -> float:
    """The risk the engine alone gives the visit from the store's events (what settling must have stored)."""
    with tenancy.tenant_scope(store.tenant_id):
        rows = Event.objects.filter(store=store).values_list("ts", "payload")
        events = [{**payload, "_ts": ts} for ts, payload in rows]
        return engine.infer_carts(events=events, store=settling.store_model(store=store), calibration=model)[
            session
        ].risk


def _visit(store: Store, session: str) -> Visit:
    return Visit.unscoped.get(store=store, session=session)


# --- Settling -------------------------------------------------------------------------------------------


def test_settling_reads_the_latest_calibration_and_only_later_visits_feel_it(priced_store: Store) -> None:  # noqa: F811
    _push_and_settle(priced_store, unclear_pick(at=DAY, first="A", second="B", bin_=_bin(priced_store)))
    before = _visit(priced_store, "A")
    assert before.status == "needs_review"
    assert before.risk == _engine_risk(priced_store, "A", calibration.default()) > 0.05

    keep_calibration(priced_store, calibration.default(), number=1)
    keep_calibration(priced_store, _with_contested_curve(0.999), number=2)
    _push_and_settle(
        priced_store, unclear_pick(at=DAY + timedelta(hours=1), first="C", second="D", bin_=_bin(priced_store))
    )

    learnt = _visit(priced_store, "C")
    assert learnt.status == "awaiting_payment", learnt.review_reasons
    assert learnt.risk == _engine_risk(priced_store, "C", _with_contested_curve(0.999)) < 0.005
    assert list(VisitLine.unscoped.filter(visit=learnt).values_list("sku", "qty")) == [("SKU-001", 1)]
    after = _visit(priced_store, "A")
    assert (after.status, after.risk, after.cart_version) == ("needs_review", before.risk, before.cart_version)


def test_settling_charges_what_fits_within_the_stores_own_risk(
    priced_store: Store,  # noqa: F811
    make_store_with_layout: Callable[..., Store],
    tenant_a: Tenant,
) -> None:
    """The same calibration, the same events: a pick 80 % sure is reviewed at 0.5 %, charged at 5 %."""
    model = _with_contested_curve(0.8, risks=tuple(n / 1000 for n in range(1, 1001)))
    assert model.charge_limit(0.005) < 0.2 < model.charge_limit(0.05)
    bolder = make_store_with_layout(tenant_a, code="S2")
    with tenancy.tenant_scope(tenant_a.pk):
        store_update(actor=Actor.system(), store=bolder, overcharge_risk="0.05", settling_window_seconds=0)
    bolder.refresh_from_db()
    for store in (priced_store, bolder):
        keep_calibration(store, model, number=1)
        _push_and_settle(store, unclear_pick(at=DAY, first="A", second="B", bin_=_bin(store)))

    careful, bold = _visit(priced_store, "A"), _visit(bolder, "A")
    assert careful.risk == bold.risk == pytest.approx(0.2, abs=0.001)
    assert careful.status == "needs_review"
    assert bold.status == "awaiting_payment", bold.review_reasons


def test_before_its_first_calibration_a_store_draws_its_limit_from_its_settled_visits(
    priced_store: Store,  # noqa: F811
) -> None:
    """A risky visit is reviewed in a new store, but fits the budget of one whose 500 settled visits were sure."""
    _push_and_settle(priced_store, unclear_pick(at=DAY, first="A", second="B", bin_=_bin(priced_store)))
    assert _visit(priced_store, "A").status == "needs_review"

    now = timezone.now()
    assert _visit(priced_store, "A").risk < 0.27
    Visit.unscoped.bulk_create(
        [
            Visit(
                tenant_id=priced_store.tenant_id,
                store=priced_store,
                session=f"OLD-{n}",
                status="charged",
                entered_at=DAY - timedelta(days=1),
                exited_at=DAY - timedelta(days=1),
                settled_at=now - timedelta(hours=1),
                risk=0.27 if n == 0 else 0.0,
            )
            for n in range(settling.COLD_POOL)
        ]
    )
    _push_and_settle(
        priced_store, unclear_pick(at=DAY + timedelta(hours=1), first="C", second="D", bin_=_bin(priced_store))
    )
    assert _visit(priced_store, "C").status == "awaiting_payment"


# --- Learning ---------------------------------------------------------------------------------------------


def _simulated_day(store: Store, *, stack: str, visits: int, seed: int, profile: str = "realistic"):
    layout = LayoutVersion.unscoped.get(store=store).document
    catalog = {
        p.sku: CatalogItem(p.sku, float(p.unit_weight_g), float(p.weight_tolerance_g))
        for p in Product.unscoped.filter(tenant=store.tenant)
    }
    return simulate(layout=layout, catalog=catalog, profile=profile, visits=visits, start=DAY, seed=seed, stack=stack)


def _review_with_the_truth(store: Store, simulation, reviewer: User) -> int:
    """A person decides every visit waiting for review: what the shopper (or the group) really took."""
    decided = 0
    with tenancy.tenant_scope(store.tenant_id):
        for visit in Visit.objects.filter(store=store, status="needs_review").order_by("session"):
            truth = simulation.truth.get(visit.session, {})
            lines = [{"sku": sku, "qty": qty} for sku, qty in sorted(truth.items())]
            services.review_decide(
                actor=Actor(source="admin", user=reviewer),
                visit=visit,
                action="approve",
                cart_version=visit.cart_version,
                lines=lines,
            )
            decided += visit.session in simulation.truth
    return decided


def _a_day_as_sent_and_read(
    store: Store, *, stack: str
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], engine.StoreModel]:
    """A day of 60 visits (seed 3) read by `stack`: its events in time order as the store sends them, the same as the
    engine reads them, and the store as the engine knows it."""
    simulation = _simulated_day(store, stack=stack, visits=60, seed=3)
    events = sorted(simulation.events, key=lambda e: (e["ts"], e["id"]))
    whole_day = [{**e, "_ts": datetime.fromisoformat(e["ts"])} for e in events]
    with tenancy.tenant_scope(store.tenant_id):
        return events, whole_day, settling.store_model(store=store)


def test_settling_reads_a_few_visits_at_a_time_on_the_scale_of_the_store_s_cameras(priced_store: Store) -> None:  # noqa: F811
    """A stack whose confidences never pass 0.9, its visits settled group by group as they leave: each is read on
    the scale the store's picks show (not on the few picks around it), as the engine reads the whole day."""
    events, whole_day, model = _a_day_as_sent_and_read(priced_store, stack="compressed")
    cold = engine.infer_carts(events=whole_day, store=model)
    learnt = calibration.with_risks(calibration.default(), (c.risk for c in cold.values() if c.payer is None))
    keep_calibration(priced_store, learnt, number=1)
    expected = engine.infer_carts(events=whole_day, store=model, calibration=learnt)

    settled = [visit for visit in _push_and_settle(priced_store, events) if visit.settled_at is not None]

    with tenancy.tenant_scope(priced_store.tenant_id):
        habits = settling.stack_habits(store=priced_store, until=DAY + timedelta(days=1))
    assert habits.confidence_scale in (0.9, 0.95)
    assert len(settled) > 40
    for visit in settled:
        lines = dict(VisitLine.unscoped.filter(visit=visit).values_list("sku", "qty"))
        assert lines == {line.sku: line.qty for line in expected[visit.session].lines}, visit.session
        assert visit.risk == pytest.approx(expected[visit.session].risk, abs=1e-6), visit.session


def test_settling_reads_a_few_visits_at_a_time_with_the_timing_of_the_store_s_scales(priced_store: Store) -> None:  # noqa: F811
    """Scales that stamp their changes seconds late, the visits settled group by group as they leave: each is read
    with the timing the store's latest events show (not the few around it), as the engine reads the whole day."""
    events, whole_day, model = _a_day_as_sent_and_read(priced_store, stack="slow_scales")
    expected = engine.infer_carts(events=whole_day, store=model)

    settled = [visit for visit in _push_and_settle(priced_store, events) if visit.settled_at is not None]

    with tenancy.tenant_scope(priced_store.tenant_id):
        timing = settling.stack_habits(store=priced_store, until=DAY + timedelta(days=1)).scale_timing
    assert timing.after > engine.WEIGHT_AFTER and timing.typical > timedelta(seconds=3)
    assert len(settled) > 40
    for visit in settled:
        lines = dict(VisitLine.unscoped.filter(visit=visit).values_list("sku", "qty"))
        assert lines == {line.sku: line.qty for line in expected[visit.session].lines}, visit.session


def test_a_store_learns_from_its_reviewed_visits(priced_store: Store, manager_a: User) -> None:  # noqa: F811
    """A stack that understates its sure picks: once its reviews are learnt, more of its visits are charged. (A crowded
    day: its first visits send enough of them to a person to learn from.)"""
    simulation = _simulated_day(priced_store, stack="diffident", visits=150, seed=1, profile="crowded")
    events = sorted(simulation.events, key=lambda e: (e["ts"], e["id"]))
    settled = [visit for visit in _push_and_settle(priced_store, events) if visit.settled_at is not None]
    settled_alone = sum(v.status != "needs_review" for v in settled) / len(settled)
    assert _review_with_the_truth(priced_store, simulation, manager_a) >= 10
    old = {v.session for v in settled[:5]}
    Visit.unscoped.filter(store=priced_store, session__in=old).update(
        settled_at=timezone.now() - selectors.LEARN_FROM - timedelta(days=1)
    )
    learnt_on = {v.session for v in settled} - old
    reviewed = set(
        ReviewDecision.unscoped.filter(visit__store=priced_store, visit__session__in=learnt_on).values_list(
            "visit__session", flat=True
        )
    ) - set(simulation.groups)
    statuses = dict(Visit.unscoped.filter(store=priced_store).values_list("session", "status"))

    with tenancy.tenant_scope(priced_store.tenant_id):
        row = services.calibration_learn(store=priced_store, actor=Actor(source="admin", user=manager_a))

    learnt = Calibration.from_json(row.calibration)
    assert (row.number, row.visits) == (1, len(learnt_on)), "visits settled more than 30 days ago are left out"
    assert row.reviewed_visits == len(reviewed), "a group counts once, on its payer"
    assert row.samples == learnt.samples > learnt.reviewed > 0
    assert learnt.curves[Evidence.WEIGHED_CONTESTED] != calibration.default().curves[Evidence.WEIGHED_CONTESTED]
    assert learnt.support[Evidence.WEIGHED_CONTESTED], "the labelled examples are kept, to be drawn"
    assert len(learnt.risks) == len(learnt_on - set(simulation.groups)), "one risk per payer's visit"
    assert row.charge_limit == learnt.charge_limit(0.005)
    checked = sum(visits for _edge, visits, _overcharged, _expected in learnt.risk_support)
    assert 0 < checked <= len(reviewed), "the reviewed visits the engine could have charged check its risks"
    assert len(learnt.risk_ratios) == len(calibration.RISK_BANDS)
    assert row.overcharge_risk == Decimal("0.005")
    assert row.auto_charge_share > settled_alone + 0.02, (row.auto_charge_share, settled_alone)
    assert row.created_by == "alice@alpha.test"
    entry = AuditEntry.unscoped.get(action="calibration.learnt")
    assert (entry.actor_user, entry.object_id) == (manager_a, str(row.pk))
    assert entry.changes["reviewed_visits"] == row.reviewed_visits
    assert dict(Visit.unscoped.filter(store=priced_store).values_list("session", "status")) == statuses, (
        "a new calibration changes no visit settled before it"
    )
    with tenancy.tenant_scope(priced_store.tenant_id):
        assert selectors.calibration_latest(store=priced_store) == row


def test_the_disputes_people_upheld_of_visits_charged_without_a_person_raise_their_risks(
    priced_store: Store,  # noqa: F811
) -> None:
    """Visits under the charge limit are charged and never reviewed: their shoppers' disputes are what checks them."""
    simulation = _simulated_day(priced_store, stack="calibrated", visits=80, seed=2)
    _push_and_settle(priced_store, sorted(simulation.events, key=lambda e: (e["ts"], e["id"])))
    Visit.unscoped.filter(store=priced_store, status="awaiting_payment").update(status="charged", paid=F("total"))
    charged = list(Visit.unscoped.filter(store=priced_store, paid__gt=0).order_by("risk", "session"))
    assert len(charged) > 30
    with tenancy.tenant_scope(priced_store.tenant_id):
        before = Calibration.from_json(services.calibration_learn(store=priced_store, actor=Actor.system()).calibration)
    for visit, status in zip(charged[:8], ["refunded"] * 6 + ["rejected"] * 2, strict=True):
        Dispute.unscoped.create(
            tenant_id=visit.tenant_id,
            store=priced_store,
            visit=visit,
            status=status,
            decided_by=Dispute.DecidedBy.PERSON,
            reason="not_taken",
            asked=100,
            currency="USD",
        )

    with tenancy.tenant_scope(priced_store.tenant_id):
        row = services.calibration_learn(store=priced_store, actor=Actor.system())

    learnt = Calibration.from_json(row.calibration)
    assert sum(visits for _edge, visits, _shown, _expected in learnt.dispute_support) == len(charged)
    assert sum(shown for _edge, _visits, shown, _expected in learnt.dispute_support) == 6, "people upheld six"
    assert sum(shown for _edge, _visits, shown, _expected in before.dispute_support) == 0
    assert learnt.risk_support == before.risk_support, "the reviewed visits are the same"
    raised = [band for band, ratio in enumerate(learnt.risk_ratios) if ratio > before.risk_ratios[band]]
    assert raised, (learnt.dispute_support, learnt.risk_ratios)
    assert all(ratio >= old for ratio, old in zip(learnt.risk_ratios, before.risk_ratios, strict=True))
    assert row.charge_limit <= before.charge_limit(0.005)


def test_without_reviews_a_store_learns_nothing_but_keeps_its_visits_risks(priced_store: Store) -> None:  # noqa: F811
    with tenancy.tenant_scope(priced_store.tenant_id):
        empty = services.calibration_learn(store=priced_store, actor=Actor.system())
    assert (empty.number, empty.visits, empty.reviewed_visits, empty.samples) == (1, 0, 0, 0)

    for first, second, hour in (("A", "B", 0), ("C", "D", 1)):
        at = DAY + timedelta(hours=hour)
        _push_and_settle(priced_store, unclear_pick(at=at, first=first, second=second, bin_=_bin(priced_store)))
    with tenancy.tenant_scope(priced_store.tenant_id):
        row = services.calibration_learn(store=priced_store, actor=Actor.system())

    learnt = Calibration.from_json(row.calibration)
    assert (row.number, row.visits, row.reviewed_visits, row.samples) == (2, 4, 0, 0)
    assert learnt.curves == calibration.default().curves
    assert sorted(learnt.risks) == sorted(
        round(v, 6) for v in Visit.unscoped.filter(store=priced_store).values_list("risk", flat=True)
    )
    assert row.auto_charge_share == 0.5, "A and C wait for a person; B and D took nothing"
    assert row.created_by == "system"


def test_the_learning_task_learns_once_per_request(priced_store: Store, manager_a: User) -> None:  # noqa: F811
    _push_and_settle(priced_store, unclear_pick(at=DAY, first="A", second="B", bin_=_bin(priced_store)))
    ids = {"tenant_id": priced_store.tenant_id, "store_id": priced_store.pk}

    assert learn_calibration(**ids, after=0, requested_by=manager_a.pk) == 1
    assert learn_calibration(**ids, after=0, requested_by=manager_a.pk) is None, "a repeated message does nothing"
    assert StoreCalibration.unscoped.filter(store=priced_store).count() == 1
    assert StoreCalibration.unscoped.get(store=priced_store).created_by == "alice@alpha.test"
    assert learn_calibration(**ids, after=1) == 2
    assert learn_calibration(**ids, after=1) is None
    assert list(StoreCalibration.unscoped.filter(store=priced_store).values_list("number", flat=True)) == [2, 1]
    assert AuditEntry.unscoped.filter(action="calibration.learnt").count() == 2


def test_the_learning_sweep_picks_stores_with_enough_reviews_since_their_latest_calibration_or_a_days_worth(
    priced_store: Store,  # noqa: F811
    bravo_store: Store,
    manager_a: User,
) -> None:
    quiet = bravo_store
    for store, session in ((priced_store, "A"), (quiet, "Z")):
        visit = Visit.unscoped.create(tenant_id=store.tenant_id, store=store, session=session, status="charged")
        review_decision(visit, reviewer=manager_a, action="void", at=timezone.now() - timedelta(hours=2))
    with tenancy.platform_wide_scope():
        assert selectors.stores_due_for_learning() == [
            (priced_store.pk, priced_store.tenant_id, 0),
            (quiet.pk, quiet.tenant_id, 0),
        ], "a store that never learnt learns from its first decision"
    learnt = keep_calibration(quiet, calibration.default(), number=1)
    for n in range(selectors.LEARN_AFTER_REVIEWS - 1):
        visit = Visit.unscoped.create(tenant_id=quiet.tenant_id, store=quiet, session=f"Q{n}", status="charged")
        review_decision(visit, reviewer=manager_a, action="void")
    with tenancy.platform_wide_scope():
        assert selectors.stores_due_for_learning() == [(priced_store.pk, priced_store.tenant_id, 0)]
        a_day_on = learnt.created_at + selectors.LEARN_EVERY
        assert selectors.stores_due_for_learning(now=a_day_on)[-1] == (quiet.pk, quiet.tenant_id, 1)
    visit = Visit.unscoped.create(tenant_id=quiet.tenant_id, store=quiet, session="Q-last", status="charged")
    review_decision(visit, reviewer=manager_a, action="void")
    review_decision(visit, reviewer=manager_a, action="void")
    with tenancy.platform_wide_scope():
        assert selectors.stores_due_for_learning()[-1] == (quiet.pk, quiet.tenant_id, 1), "the 25th visit decided"
        old = timezone.now() + selectors.LEARN_FROM + timedelta(days=1)
        assert selectors.stores_due_for_learning(now=old) == [], "decisions a month old teach nothing"


def test_a_calibration_is_never_rewritten(priced_store: Store) -> None:  # noqa: F811
    row = keep_calibration(priced_store, calibration.default(), number=1)
    row.samples = 99
    with pytest.raises(ValueError, match="append-only"):
        row.save()
