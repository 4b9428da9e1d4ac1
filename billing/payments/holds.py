"""Card holds (pre-authorisations): placed at entry, raised for a group, renewed before they lapse."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import DateTimeField, Exists, ExpressionWrapper, OuterRef, Q, QuerySet, Subquery

from billing.payments.attempts import IN_FLIGHT, Purpose, State, attempt_execute, new_attempt, usable_hold
from billing.payments.models import PaymentAttempt
from billing.payments.shoppers import shopper_for_token_hash
from stores.models import Store
from visits.models import Visit


def hold_amount(visit: Visit) -> int:
    """What to hold for a visit: the store's pre-authorisation amount for each member of its group (spec v1.1: the
    payer and the companions known so far), so that a family shopping on one card is held as several shoppers."""
    companions = Visit.objects.filter(store_id=visit.store_id, group=visit.session).count()
    return visit.store.preauth_amount * (1 + companions)


def visit_preauthorise(*, visit_id: int) -> PaymentAttempt | None:
    """Hold the store's pre-authorisation amount on the shopper's card, once per visit; a companion's visit holds
    nothing of its own (its payer's hold covers the group, `group_hold_raise`)."""
    with transaction.atomic():
        visit = Visit.objects.select_for_update(of=("self",), no_key=True).select_related("store").get(pk=visit_id)
        if visit.payment_attempts.filter(purpose=Purpose.PREAUTH).exists() or visit.group:
            return None
        if visit.status != Visit.Status.OPEN or not visit.shopper_token_hash or visit.store.preauth_amount <= 0:
            return None  # a hold only helps while the shopper is in the store; afterwards the cart is charged
        shopper = shopper_for_token_hash(visit.shopper_token_hash)
        if shopper is None or shopper.is_revoked:
            return None
        attempt = new_attempt(visit, Purpose.PREAUTH, hold_amount(visit), shopper=shopper)
    return attempt_execute(attempt_id=attempt.pk)


def group_hold_raise(*, store: Store, payer_session: str) -> str:
    """A companion came in on the payer's card: the group's one hold is raised to cover it — a new hold of the group's
    amount (`hold_amount`) on the payer's visit, then the old one released. A card that refuses the larger hold keeps
    the one it had (the cart is charged in full at the end all the same). Returns what was done."""
    with transaction.atomic():
        payer = (
            Visit.objects.select_for_update(of=("self",), no_key=True)
            .select_related("store")
            .filter(store=store, session=payer_session, group="")
            .first()
        )
        if payer is None or payer.status not in (Visit.Status.OPEN, Visit.Status.SETTLING):
            return "no payer still shopping"
        hold = usable_hold(payer)
        if hold is None or hold.amount >= hold_amount(payer):
            return "nothing to do"
        if payer.payment_attempts.filter(purpose=Purpose.PREAUTH, state__in=IN_FLIGHT).exists():
            return "raise pending"
        raised = new_attempt(payer, Purpose.PREAUTH, hold_amount(payer), shopper=hold.shopper)
    recorded = attempt_execute(attempt_id=raised.pk)
    if recorded is None or recorded.state in IN_FLIGHT:
        return "raise pending"
    if recorded.state != State.SUCCEEDED:
        return "card refused a larger hold; the group's hold stays as it was"
    with transaction.atomic():
        payer = Visit.objects.select_for_update(of=("self",), no_key=True).get(pk=payer.pk)
        release = new_attempt(
            payer, Purpose.CANCEL, hold.amount, payment_intent_id=hold.stripe_id, shopper=hold.shopper
        )
    attempt_execute(attempt_id=release.pk)
    return "raised"


def visits_preauthorise(*, store: Store, sessions: list[str]) -> int:
    """Pre-authorise the visits of these sessions that have a registered shopper and no hold yet, and raise the hold
    of each group a companion among them joined. Returns the holds placed or raised."""
    open_visits = Visit.objects.filter(store=store, session__in=sessions, status=Visit.Status.OPEN)
    visits = open_visits.exclude(shopper_token_hash="")
    held = 0
    for visit_id in (
        visits.filter(group="").exclude(payment_attempts__purpose=Purpose.PREAUTH).values_list("pk", flat=True)
    ):
        held += visit_preauthorise(visit_id=visit_id) is not None
    for payer_session in sorted(set(open_visits.exclude(group="").values_list("group", flat=True))):
        held += group_hold_raise(store=store, payer_session=payer_session) == "raised"
    return held


# A line the engine was this sure of is owed whatever a person decides about the rest of the visit.
CERTAIN_LINE_CONFIDENCE = 0.99
UNDECIDED = (Visit.Status.OPEN, Visit.Status.SETTLING, Visit.Status.NEEDS_REVIEW)


def hold_expires_at(hold: PaymentAttempt) -> datetime:
    """When a card hold lapses: its authorisation (the moment its success was recorded) plus the hold lifetime."""
    return hold.updated_at + timedelta(hours=settings.PAYMENTS_HOLD_LIFETIME_HOURS)


def _renew_by(now: datetime) -> datetime:
    """Holds authorised before this lapse within the renewal margin."""
    return now - timedelta(hours=settings.PAYMENTS_HOLD_LIFETIME_HOURS - settings.PAYMENTS_HOLD_RENEW_BEFORE_HOURS)


def _holds_outstanding() -> QuerySet[PaymentAttempt]:
    """Holds authorised and neither captured nor released: the ones that can still lapse."""
    used = PaymentAttempt.objects.filter(
        Q(purpose=Purpose.CAPTURE) | Q(purpose=Purpose.CANCEL, state=State.SUCCEEDED),
        payment_intent_id=OuterRef("stripe_id"),
    )
    return PaymentAttempt.objects.filter(purpose=Purpose.PREAUTH, state=State.SUCCEEDED).exclude(Exists(used))


def hold_lapses_at(*, visit: Visit) -> datetime | None:
    """When the visit's card hold lapses, while it has one (neither captured nor released yet)."""
    hold = usable_hold(visit)
    return hold_expires_at(hold) if hold is not None else None


def hold_lapse_of_visit() -> ExpressionWrapper:
    """`hold_lapses_at` for a queryset of visits, to annotate and sort by (null: no hold outstanding)."""
    authorised = _holds_outstanding().filter(visit=OuterRef("pk")).order_by("-id").values("updated_at")[:1]
    lifetime = timedelta(hours=settings.PAYMENTS_HOLD_LIFETIME_HOURS)
    return ExpressionWrapper(Subquery(authorised) + lifetime, output_field=DateTimeField())


def holds_lapsing(*, now: datetime, limit: int = 500) -> list[tuple[int, int]]:
    """(tenant id, visit id) of undecided visits whose hold lapses within the renewal margin (platform-wide)."""
    lapsing = _holds_outstanding().filter(updated_at__lte=_renew_by(now), visit__status__in=UNDECIDED)
    return sorted(set(lapsing.values_list("tenant_id", "visit_id")[:limit]))


def hold_renew(*, visit_id: int, now: datetime) -> str:
    """Keep an undecided visit's money from lapsing with its hold: a new hold of the same amount on the shopper's
    card, then the old one released; when the card refuses a new hold, the lines the engine was sure of are captured
    from the old one before it lapses (a person's decision later charges or refunds the difference as usual).
    Safe to run again: each step is an attempt with its own Stripe idempotency key. Returns what was done."""
    with transaction.atomic():
        visit = Visit.objects.select_for_update(of=("self",), no_key=True).select_related("store").get(pk=visit_id)
        hold = usable_hold(visit)
        if visit.status not in UNDECIDED or hold is None or hold.updated_at > _renew_by(now):
            return "nothing to do"
        refused = visit.payment_attempts.filter(purpose=Purpose.PREAUTH, state=State.FAILED, pk__gt=hold.pk)
        if refused.filter(amount=hold.amount).exists():  # a refused raise for a group (a larger amount) is no renewal
            renewal = None  # the card refused a new hold once: asking again every run would only annoy the bank
        else:
            renewal = new_attempt(visit, Purpose.PREAUTH, hold.amount, shopper=hold.shopper)
    if renewal is not None:
        renewed = attempt_execute(attempt_id=renewal.pk)
        if renewed is None or renewed.state in IN_FLIGHT:
            return "renewal pending"  # Stripe's answer is unknown: the sweep reconciles it, the next run goes on
        if renewed.state == State.SUCCEEDED:
            with transaction.atomic():
                visit = Visit.objects.select_for_update(of=("self",), no_key=True).get(pk=visit_id)
                release = new_attempt(
                    visit, Purpose.CANCEL, hold.amount, payment_intent_id=hold.stripe_id, shopper=hold.shopper
                )
            attempt_execute(attempt_id=release.pk)
            return "renewed"
    return _capture_certain_part(visit_id=visit_id, hold=hold)


def _capture_certain_part(*, visit_id: int, hold: PaymentAttempt) -> str:
    with transaction.atomic():
        visit = Visit.objects.select_for_update(of=("self",), no_key=True).get(pk=visit_id)
        certain = sum(
            line.amount + line.tax for line in visit.lines.all() if line.confidence >= CERTAIN_LINE_CONFIDENCE
        )
        amount = min(certain, hold.amount)
        if amount <= 0:
            return "renewal refused; nothing certain to capture"
        capture = new_attempt(visit, Purpose.CAPTURE, amount, payment_intent_id=hold.stripe_id, shopper=hold.shopper)
    attempt_execute(attempt_id=capture.pk)
    return "renewal refused; certain part captured"
