"""Visits in every state a service level looks at, written as the pipeline leaves them (seeded), and the levels
counted directly from those rows, visit by visit, to compare with the selectors' set-based figures."""

from __future__ import annotations

import random
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.contrib.auth.models import User

from billing.payments.models import Receipt
from stores.models import Store
from visits.models import ReviewDecision, Visit
from visits.tests.support import review_decision


@dataclass(frozen=True)
class Direct:
    visits: int
    settled_without_person: float | None
    refunded: float | None
    receipt_seconds: list[float]
    decision_seconds: list[float]


def reviewer() -> User:
    user, _ = User.objects.get_or_create(username="reviewer@levels.test")
    return user


def make_visits(
    store: Store,
    *,
    count: int,
    start: datetime,
    span: timedelta,
    seed: int,
    review_share: float = 0.15,
    receipt_after: tuple[float, float] = (1.0, 40.0),
    prefix: str = "v",
) -> list[Visit]:
    """`count` exited visits of `store` spread over [start, start + span): charged without a person (receipt
    after `receipt_after` seconds, some refunded), sent to a person (decided or still waiting), voided, still
    settling, and a few paid receipts issued twice (a later cart version)."""
    rng = random.Random(seed)
    person = reviewer()
    made = []
    for n in range(count):
        exited = start + timedelta(seconds=rng.uniform(0, span.total_seconds() - 1))
        kind = rng.random()
        visit = Visit.unscoped.create(
            tenant_id=store.tenant_id,
            store=store,
            session=f"{prefix}-{seed}-{n}",
            entered_at=exited - timedelta(minutes=rng.uniform(1, 20)),
            exited_at=exited,
            currency=store.currency,
            status=Visit.Status.CHARGED,
            settled_at=exited + timedelta(seconds=rng.uniform(0.5, 150)),
        )
        if kind < 0.04:  # still settling: not final, no receipt
            Visit.unscoped.filter(pk=visit.pk).update(status=Visit.Status.SETTLING, settled_at=None)
            continue
        if kind < 0.04 + review_share:  # sent to a person
            decided = rng.random() < 0.8
            if decided:
                decided_at = visit.settled_at + timedelta(seconds=rng.expovariate(1 / 600))
                review_decision(visit, reviewer=person, at=decided_at)
                if rng.random() < 0.5:  # a second look later: the first decision is the one timed
                    review_decision(visit, reviewer=person, at=decided_at + timedelta(hours=2))
                _receipt(visit, at=decided_at + timedelta(seconds=rng.uniform(0.5, 3)), version=1)
            else:
                Visit.unscoped.filter(pk=visit.pk).update(status=Visit.Status.NEEDS_REVIEW)
            continue
        if kind < 0.3:  # nothing taken
            Visit.unscoped.filter(pk=visit.pk).update(status=Visit.Status.NO_CHARGE)
            continue
        receipt_at = exited + timedelta(seconds=rng.uniform(*receipt_after))
        _receipt(visit, at=receipt_at, version=1)
        if rng.random() < 0.08:
            Visit.unscoped.filter(pk=visit.pk).update(refunded=rng.randint(50, 400))
            _receipt(visit, at=receipt_at + timedelta(hours=1), version=2)
        made.append(visit)
    return list(Visit.unscoped.filter(store=store, session__startswith=f"{prefix}-{seed}-"))


def _receipt(visit: Visit, *, at: datetime, version: int) -> None:
    Receipt.unscoped.create(
        tenant_id=visit.tenant_id, visit=visit, cart_version=version, total=100, currency="USD", issued_at=at
    )


def direct(visits: Sequence[Visit], *, start: datetime, end: datetime) -> Direct:
    """The levels counted visit by visit in Python: no aggregate, no subquery."""
    inside = [v for v in visits if v.exited_at is not None and start <= v.exited_at < end]
    n = len(inside)
    without = 0
    refunded = 0
    receipt_seconds: list[float] = []
    decision_seconds: list[float] = []
    for visit in inside:
        decisions = sorted(d.decided_at for d in ReviewDecision.unscoped.filter(visit=visit))
        receipts = sorted(r.issued_at for r in Receipt.unscoped.filter(visit=visit))
        if visit.settled_at is not None and visit.status != Visit.Status.NEEDS_REVIEW and not decisions:
            without += 1
        if visit.refunded > 0:
            refunded += 1
        if receipts:
            receipt_seconds.append(max(0.0, (receipts[0] - visit.exited_at).total_seconds()))
        if decisions and visit.settled_at is not None:
            decision_seconds.append(max(0.0, (decisions[0] - visit.settled_at).total_seconds()))
    return Direct(
        visits=n,
        settled_without_person=without / n if n else None,
        refunded=refunded / n if n else None,
        receipt_seconds=receipt_seconds,
        decision_seconds=decision_seconds,
    )


def quantile(values: list[float], percent: int) -> float:
    """The standard library's linear interpolation between closest ranks (`method="inclusive"`)."""
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[percent - 1]
