"""Writes on visits."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.db.models import Exists, OuterRef
from django.db.models.expressions import BaseExpression
from django.utils import timezone

from catalog.models import Product
from disputes import selectors as dispute_selectors
from ingest.models import Event
from stores.models import Store
from tenants.audit import Actor, audit_record
from tenants.models import AuditAction
from visits import calibration, engine, lifecycle, pricing, selectors, settling
from visits.models import ChargeInstruction, ReviewDecision, StoreCalibration, Visit, VisitLine
from visits.settling import visits_settle

REFRESH_BATCH = 1000  # sessions per set of statements (an IN list of this many parameters)
# A store's calibration is learnt from the visits it settled this recently, at most this many (the latest).
LEARN_AT_MOST = 3000


@transaction.atomic
def visits_refresh(
    *, store: Store, sessions: Sequence[str], between: tuple[datetime, datetime] | None = None
) -> list[str]:
    """Bring the visits of these sessions up to date with their events: entry, exit, shopper, activity.

    Set-based, a few statements per batch whatever its size: create the missing visits, lock them all in
    session order, then one UPDATE recomputes every visit's figures from its events (the same SQL on
    PostgreSQL and SQLite but for how a JSON field is read). Safe to run twice and concurrently: the rows
    are locked in a fixed order and the figures are recomputed from the events after the lock, never
    added to. A visit already final (settled, never reviewed) is settled again. Returns the sessions.

    Settling the visits that became due is the caller's next step (ingest sends `visits.settle_store` once,
    after all of a stream's refreshes): one settling per refresh put settling runs between the refreshes
    in the queue, and two workers settling the same store wait on each other's rows.

    `between`: the first and last time of the events that brought these sessions (ingest knows them). A visit's
    events are then read within `settling.VISIT_SPAN` of them only, so that on PostgreSQL the reads touch only the
    day partitions of that time, however long the history; without it, all of the sessions' events are read.
    """
    sessions = sorted(set(sessions))
    span = None if between is None else (between[0] - settling.VISIT_SPAN, between[1] + settling.VISIT_SPAN)
    now = timezone.now()
    reopened: list[str] = []
    for start in range(0, len(sessions), REFRESH_BATCH):
        batch = sessions[start : start + REFRESH_BATCH]
        _create_missing(store=store, sessions=batch, now=now)
        final = _lock_visits(store=store, sessions=batch)
        _update_figures(store=store, sessions=batch, now=now, span=span)
        if final:  # settled and never reviewed: settled again when it has events
            events = Event.objects.filter(store=store, session__in=final)
            if span is not None:
                events = events.filter(ts__gte=span[0], ts__lte=span[1])
            reopened += events.values_list("session", flat=True).distinct()
    if reopened:
        visits_settle(store=store, sessions=sorted(reopened), now=now)
    return sessions


def _create_missing(*, store: Store, sessions: list[str], now: datetime) -> None:
    """One INSERT … ON CONFLICT DO NOTHING of a new visit per session that has none: every column as a new
    `Visit` has it (its defaults, taken from the model), but the session, made at `now`."""
    template = Visit(tenant_id=store.tenant_id, store=store, session="", created_at=now, updated_at=now)
    columns, values = [], []
    for field in Visit._meta.concrete_fields:
        if field.primary_key or field.name == "session":
            continue
        value = field.pre_save(template, add=True)
        if isinstance(value, BaseExpression):  # a database default (db_default): the database fills it in
            continue
        columns.append(connection.ops.quote_name(field.column))
        values.append(field.get_db_prep_save(value, connection))
    columns.append(connection.ops.quote_name(Visit._meta.get_field("session").column))
    placeholders = ", ".join(["%s"] * len(values))
    listed = ", ".join(["(%s)"] * len(sessions))
    # WHERE true: SQLite needs it to read ON CONFLICT as the upsert clause rather than a join's ON.
    sql = (
        f"INSERT INTO {Visit._meta.db_table} ({', '.join(columns)}) "  # noqa: S608 — names from the model
        f"SELECT {placeholders}, listed.column1 FROM (VALUES {listed}) AS listed WHERE true "
        "ON CONFLICT DO NOTHING"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [*values, *sessions])


def _lock_visits(*, store: Store, sessions: list[str]) -> list[str]:
    """Lock the visits of these sessions in session order; return those that are final and were never reviewed."""
    reviewed = ReviewDecision.objects.filter(visit=OuterRef("pk"))
    rows = (
        Visit.objects.select_for_update(of=("self",))
        .filter(store=store, session__in=sessions)
        .order_by("session")
        .annotate(reviewed=Exists(reviewed))
        .values_list("session", "settled_at", "reviewed")
    )
    return [session for session, settled_at, reviewed in rows if settled_at is not None and not reviewed]


def _update_figures(
    *, store: Store, sessions: list[str], now: datetime, span: tuple[datetime, datetime] | None
) -> None:
    """One UPDATE: each visit's entry (first session.started), exit (last session.ended), last event, count of
    events, shopper (the token hash of the latest session.started, kept when it has none) and group (the payer's
    session the latest session.started names, spec v1.1) from its events; an open or settling visit is settling once
    it has an exit, open otherwise. Visits without events are left alone."""
    visit, event = Visit._meta.db_table, Event._meta.db_table
    # The one difference between the dialects: reading a key of a JSON field (SQLite: its JSON1 functions).
    postgresql = connection.vendor == "postgresql"
    shopper = "s.payload ->> 'shopper'" if postgresql else "json_extract(s.payload, '$.shopper')"
    group = "s.payload ->> 'group'" if postgresql else "json_extract(s.payload, '$.group')"
    listed = ", ".join(["%s"] * len(sessions))
    within, within_e = ("", "") if span is None else ("AND s.ts >= %s AND s.ts <= %s", "AND e.ts >= %s AND e.ts <= %s")
    status, status_params = lifecycle.presence_sql(column=f"{visit}.status", exited="f.exited")
    # A decided visit closed without an exit (`lifecycle.exit_not_seen`) keeps the exit it was closed at; one still
    # open or settling that hears from its shopper again is open again, its exit to be seen or inferred anew.
    kept = f"(f.exited IS NULL AND {visit}.exit_inferred AND {visit}.status NOT IN (%s, %s))"
    kept_params = [Visit.Status.OPEN.value, Visit.Status.SETTLING.value]
    sql = f"""
        UPDATE {visit} SET
            entered_at = f.entered,
            exited_at = CASE WHEN {kept} THEN {visit}.exited_at ELSE f.exited END,
            exit_inferred = CASE WHEN {kept} THEN TRUE ELSE FALSE END,
            last_event_at = f.last,
            events_count = f.count,
            shopper_token_hash = COALESCE(NULLIF(f.shopper, ''), {visit}.shopper_token_hash),
            "group" = CASE WHEN f.entered IS NULL THEN {visit}."group"
                ELSE COALESCE(NULLIF(f.payer, f.session), '') END,
            status = {status},
            updated_at = %s
        FROM (
            SELECT e.session AS session,
                MIN(CASE WHEN e.type = 'session.started' THEN e.ts END) AS entered,
                MAX(CASE WHEN e.type = 'session.ended' THEN e.ts END) AS exited,
                MAX(e.ts) AS last,
                COUNT(*) AS count,
                (SELECT {shopper} FROM {event} s
                    WHERE s.tenant_id = %s AND s.store_id = %s AND s.session = e.session AND s.type = 'session.started'
                        {within}
                    ORDER BY s.ts DESC, s.id DESC LIMIT 1) AS shopper,
                (SELECT {group} FROM {event} s
                    WHERE s.tenant_id = %s AND s.store_id = %s AND s.session = e.session AND s.type = 'session.started'
                        {within}
                    ORDER BY s.ts DESC, s.id DESC LIMIT 1) AS payer
            FROM {event} e
            WHERE e.tenant_id = %s AND e.store_id = %s AND e.session IN ({listed}) {within_e}
            GROUP BY e.session
        ) AS f
        WHERE {visit}.tenant_id = %s AND {visit}.store_id = %s AND {visit}.session IN ({listed})
            AND {visit}.session = f.session
    """  # noqa: S608 — table names from the models, values bound
    params: list[Any] = [*kept_params, *kept_params, *status_params, connection.ops.adapt_datetimefield_value(now)]
    bounds = [] if span is None else [connection.ops.adapt_datetimefield_value(at) for at in span]
    params += [store.tenant_id, store.pk, *bounds, store.tenant_id, store.pk, *bounds]
    params += [store.tenant_id, store.pk, *sessions, *bounds, store.tenant_id, store.pk, *sessions]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


@transaction.atomic
def review_decide(
    *,
    actor: Actor,
    visit: Visit,
    action: str,
    cart_version: int,
    lines: Sequence[Mapping[str, Any]] = (),
    note: str = "",
) -> Visit:
    """A reviewer's decision: approve the cart as corrected (it is charged), or void the visit (nothing is).

    `cart_version` is the version of the cart the reviewer decided on: a decision on a cart that changed
    since (late events settled it again) is refused, whatever door it came through. `lines` are
    `{"sku", "qty"}`; each is priced at the time the visit entered. Who decided what, and the cart before
    and after, are kept; the charge instruction follows from the decision.
    """
    if action not in ReviewDecision.Action.values:
        raise ValidationError({"action": f"One of {', '.join(ReviewDecision.Action.values)}."})
    visit = Visit.objects.select_for_update(of=("self",)).select_related("store").get(pk=visit.pk)
    if visit.status != Visit.Status.NEEDS_REVIEW:
        raise ValidationError(f"Visit {visit.session} is {visit.get_status_display().lower()}, not waiting for review.")
    if cart_version != visit.cart_version:
        raise ValidationError(
            "The proposed cart changed while you were looking at it (late events arrived). "
            "Nothing was decided: look at the visit again.",
            code="stale_cart",
        )
    wanted = _clean_review_lines(lines) if action == ReviewDecision.Action.APPROVE else {}
    before = [{"sku": line.sku, "qty": line.qty} for line in visit.lines.order_by("sku")]
    at = visit.entered_at or timezone.now()
    prices = settling.prices_for(store=visit.store, skus=set(wanted))
    # A line the engine proposed keeps the price it was taken at; a line the reviewer adds is priced at entry.
    for line in visit.lines.all():
        prices[line.sku] = [pricing.PriceVersion(at, line.unit_price, line.tax_rate)]
    names = dict(Product.objects.filter(sku__in=wanted).values_list("sku", "name"))
    cart = [engine.CartLine(sku, qty, 1.0, at, ()) for sku, qty in sorted(wanted.items())]
    priced = pricing.price_cart(cart, prices=prices)
    if priced.unpriced:
        raise ValidationError({"lines": f"No price in {visit.store.currency} for: {', '.join(priced.unpriced)}."})
    evidence = {line.sku: list(line.evidence) for line in visit.lines.all()}
    takers = {line.sku: list(line.taken_by) for line in visit.lines.all()}
    settling.replace_lines(
        visit=visit, priced=priced, names=names, source=VisitLine.Source.REVIEW, evidence=evidence, taken_by=takers
    )
    visit.subtotal, visit.tax, visit.total = priced.subtotal, priced.tax, priced.total
    visit.currency = visit.store.currency
    visit.cart_version += 1
    visit.updated_at = timezone.now()
    if ChargeInstruction.objects.filter(visit=visit).exists():
        settling.instruct_difference(visit, reason=f"review: {action}")
    else:
        settling.instruct_first_charge(visit)
    visit.save(update_fields=settling.CART_FIELDS)
    decision = ReviewDecision.objects.create(
        tenant_id=visit.tenant_id,
        visit=visit,
        reviewer=actor.user,
        action=action,
        lines_before=before,
        lines_after=[{"sku": sku, "qty": qty} for sku, qty in sorted(wanted.items())],
        note=note.strip()[:2000],
    )
    audit_record(
        actor=actor,
        tenant_id=visit.tenant_id,
        action=AuditAction.VISIT_APPROVED if action == ReviewDecision.Action.APPROVE else AuditAction.VISIT_VOIDED,
        obj=visit,
        changes={"before": before, "after": decision.lines_after, "total": visit.total},
    )
    return visit


def _clean_review_lines(lines: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    wanted: dict[str, int] = {}
    known = set(
        Product.objects.filter(sku__in=[str(line.get("sku", "")) for line in lines]).values_list("sku", flat=True)
    )
    for index, line in enumerate(lines):
        sku, qty = str(line.get("sku", "")).strip(), line.get("qty")
        if sku not in known:
            raise ValidationError({"lines": f"Line {index + 1}: {sku!r} is not a product of the catalog."})
        if not isinstance(qty, int) or isinstance(qty, bool) or not 0 <= qty <= 1000:
            raise ValidationError({"lines": f"Line {index + 1}: the quantity must be a whole number from 0 to 1000."})
        if qty:
            wanted[sku] = wanted.get(sku, 0) + qty
    return wanted


def calibration_learn(*, store: Store, actor: Actor) -> StoreCalibration:
    """Learn what the store's camera scores mean from its recent visits; keep it as the store's latest calibration.

    The visits settled in the last 30 days (the 3,000 that left last, at most) are read again as settling reads
    them, with the store's current calibration. What people decided on the reviewed ones, and the picks that
    needed nobody, label the cameras' picks (`engine.labelled_samples`); the curves are fitted to them, starting
    from the current calibration; the visits are read once more with the new curves, and the risks of that reading
    are what its charge limit is drawn from, as the reviewed ones among them bore those risks out and the disputes
    of those charged without a person showed (`calibration.fit_risks`). Settling reads it for the visits it settles
    from then on.
    """
    visits = list(
        Visit.objects.filter(
            store=store, settled_at__gte=timezone.now() - selectors.LEARN_FROM, exited_at__isnull=False
        ).order_by("-exited_at", "-pk")[:LEARN_AT_MOST]
    )
    latest = selectors.calibration_latest(store=store)
    reading = settling.store_reading(store=store, visits=visits)
    groups = list(settling.events_by_group(store=store, visits=visits))
    carts = settling.read_carts(groups=groups, reading=reading)
    decided = {session: lines for session, lines in _decided_carts(visits).items() if carts[session].payer is None}
    samples = engine.labelled_samples(carts=carts, decided=decided)
    fitted = calibration.fit(samples=samples, prior=reading.calibration, taught=reading.habits.taught)
    again = settling.read_carts(groups=groups, reading=replace(reading, calibration=fitted))
    learnt = calibration.fit_risks(
        calibration.with_risks(fitted, (cart.risk for cart in again.values() if cart.payer is None)),
        visits=engine.labelled_visits(carts=again, decided=decided),
        charged=_charged_without_a_person(store=store, visits=visits, carts=again, decided=decided),
    )
    decisions = settling.read_carts(groups=groups, reading=replace(reading, calibration=learnt))
    charged = sum(cart.decision == "charge" for cart in decisions.values())
    row = StoreCalibration(
        tenant_id=store.tenant_id,
        store=store,
        number=(latest.number if latest is not None else 0) + 1,
        created_by=actor.label[:200],
        calibration=learnt.as_json(),
        samples=learnt.samples,
        reviewed_visits=len(decided),
        visits=len(decisions),
        auto_charge_share=round(charged / len(decisions), 4) if decisions else 0.0,
        overcharge_risk=store.overcharge_risk,
        charge_limit=learnt.charge_limit(reading.risk),
    )
    try:
        with transaction.atomic():
            row.save()
            audit_record(
                actor=actor,
                tenant_id=store.tenant_id,
                action=AuditAction.CALIBRATION_LEARNT,
                obj=row,
                changes={
                    "number": row.number,
                    "visits": row.visits,
                    "reviewed_visits": row.reviewed_visits,
                    "samples": row.samples,
                    "auto_charge_share": row.auto_charge_share,
                    "charge_limit": row.charge_limit,
                },
            )
    except IntegrityError:  # learnt at the same time by another worker, from the same visits: that one stands
        return StoreCalibration.objects.get(store=store, number=row.number)
    return row


def _charged_without_a_person(
    *, store: Store, visits: Sequence[Visit], carts: Mapping[str, engine.Cart], decided: Mapping[str, Any]
) -> list[calibration.ChargedVisit]:
    """The visits charged that no person decided, each with its risk in `carts` and what its disputes showed."""
    charged = [
        visit
        for visit in visits
        if visit.paid > 0 and visit.session not in decided and visit.session in carts
        if carts[visit.session].payer is None
    ]
    outcomes = dispute_selectors.dispute_outcomes(store=store, visit_ids=[visit.pk for visit in charged])
    return calibration.charged_visits(
        (carts[visit.session].risk, outcomes.get(visit.pk, calibration.DisputeOutcome.NONE)) for visit in charged
    )


def _decided_carts(visits: Sequence[Visit]) -> dict[str, dict[str, int]]:
    """What people decided the reviewed ones of these visits took (session → sku → qty): their latest decision."""
    decided: dict[str, dict[str, int]] = {}
    sessions = {visit.pk: visit.session for visit in visits}
    decisions = ReviewDecision.objects.filter(visit_id__in=list(sessions)).order_by("visit_id", "decided_at", "pk")
    for visit_id, lines in decisions.values_list("visit_id", "lines_after"):
        decided[sessions[visit_id]] = {str(line["sku"]): int(line["qty"]) for line in lines}
    return decided
