"""Never a double charge: a task run twice, a worker dying between Stripe's answer and our write, two workers."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import pytest
import stripe
from django.db import connection
from django.utils import timezone

from billing.payments import attempts, refunds
from billing.payments.models import PaymentAttempt
from billing.payments.tests.support import decide_cart, intents_of, preauthorise, settle_payment
from core import tenancy
from tenants.audit import Actor
from visits.models import Visit


class WorkerDied(Exception):
    """Stands for a worker killed after Stripe answered and before the outcome was written."""


def _settle_dying_after_the_call(visit: Visit, monkeypatch: pytest.MonkeyPatch) -> None:
    """settle_payment, its worker killed after Stripe answered and before the outcome was written."""

    def die(**_: Any) -> None:
        raise WorkerDied

    with monkeypatch.context() as patch:
        patch.setattr(attempts, "attempt_record", die)
        with pytest.raises(WorkerDied):
            settle_payment(visit)


def _lease_runs_out(visit: Visit) -> None:
    PaymentAttempt.unscoped.filter(visit=visit, state="processing").update(
        lease_until=timezone.now() - timedelta(seconds=1)
    )


@pytest.mark.django_db
def test_running_the_settlement_twice_charges_once(visit: Visit) -> None:
    visit = decide_cart(visit, [("COLA", 3, 199)])

    settle_payment(visit)
    visit = settle_payment(visit)

    assert visit.paid == 597
    assert PaymentAttempt.unscoped.filter(visit=visit).count() == 1
    assert [i["amount"] for i in intents_of(visit)] == [597]


@pytest.mark.django_db
def test_a_crash_after_stripe_charged_is_reconciled_not_charged_again(
    visit: Visit, monkeypatch: pytest.MonkeyPatch
) -> None:
    visit = decide_cart(visit, [("COLA", 3, 199)])
    _settle_dying_after_the_call(visit, monkeypatch)
    assert [i["status"] for i in intents_of(visit)] == ["succeeded"]  # Stripe charged; we wrote nothing
    assert PaymentAttempt.unscoped.get(visit=visit).state == "processing"
    assert Visit.unscoped.get(pk=visit.pk).status == "awaiting_payment"  # not `charged` before we recorded it

    assert settle_payment(visit).paid == 0  # the lease still holds: nobody touches the attempt
    _lease_runs_out(visit)
    visit = settle_payment(visit)

    attempt = PaymentAttempt.unscoped.get(visit=visit)
    assert (attempt.state, attempt.tries, visit.paid, visit.status) == ("succeeded", 2, 597, "charged")
    assert len(intents_of(visit)) == 1


@pytest.mark.django_db
def test_a_crash_after_a_capture_or_refund_is_reconciled(visit: Visit, monkeypatch: pytest.MonkeyPatch) -> None:
    preauthorise(visit)
    visit = decide_cart(visit, [("COLA", 3, 199)])
    _settle_dying_after_the_call(visit, monkeypatch)
    _lease_runs_out(visit)
    visit = settle_payment(visit)
    assert (visit.paid, visit.status) == (597, "charged")
    assert [(a.purpose, a.state) for a in PaymentAttempt.unscoped.filter(visit=visit).order_by("id")] == [
        ("preauth", "succeeded"),
        ("capture", "succeeded"),
    ]

    with tenancy.tenant_scope(visit.tenant_id):
        refunds.visit_refund(actor=Actor.system(), visit=visit, reason_code="goodwill", amount=100)
    _settle_dying_after_the_call(visit, monkeypatch)
    _lease_runs_out(visit)
    visit = settle_payment(visit)
    assert (visit.paid, visit.refunded) == (597, 100)
    assert PaymentAttempt.unscoped.filter(visit=visit, purpose="refund").get().tries == 2


@pytest.mark.django_db(transaction=True)
def test_two_workers_on_one_visit_charge_once(visit: Visit) -> None:
    visit = decide_cart(visit, [("COLA", 3, 199)])
    start = threading.Barrier(4)
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            start.wait()
            settle_payment(visit)
        except BaseException as error:  # noqa: BLE001 — reported below
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    visit.refresh_from_db()
    assert visit.paid == 597
    assert PaymentAttempt.unscoped.filter(visit=visit).count() == 1
    assert len(intents_of(visit)) == 1


@pytest.mark.django_db
def test_every_money_creating_call_carries_the_attempts_idempotency_key(
    visit: Visit, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Stripe's idempotency key is the second line behind our attempts: a create resent after a lost answer is the
    same PaymentIntent or Refund at Stripe (localstripe ignores the header; what is sent is what is checked)."""
    sent: list[tuple[str, str, str | None]] = []
    request = stripe.RequestsClient.request

    def recorded(self: Any, method: str, url: str, headers: dict[str, str] | None, post_data: Any = None) -> Any:
        sent.append((method, url.split("/v1/")[-1].split("?")[0], (headers or {}).get("Idempotency-Key")))
        return request(self, method, url, headers, post_data)

    monkeypatch.setattr(stripe.RequestsClient, "request", recorded)
    visit = settle_payment(decide_cart(visit, [("COLA", 3, 199)]))
    with tenancy.tenant_scope(visit.tenant_id):
        refunds.visit_refund(actor=Actor.system(), visit=visit, reason_code="goodwill", amount=100)
    settle_payment(visit)

    attempts_made = {a.purpose: a.key for a in PaymentAttempt.unscoped.filter(visit=visit)}
    creates = [(path, key) for method, path, key in sent if method == "post" and path in ("payment_intents", "refunds")]
    assert creates == [("payment_intents", attempts_made["charge"]), ("refunds", attempts_made["refund"])]
