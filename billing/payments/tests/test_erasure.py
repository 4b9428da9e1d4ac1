"""Erasing a shopper's personal data (issue 21): gone from every table and from Stripe's customer, the money
records kept pseudonymised with invoices and totals unchanged; refused while money may be owed; another tenant's
shopper is 404."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

import pytest
import requests
from django.conf import settings
from django.db import connection
from django.test import Client
from rest_framework.test import APIClient

from billing.invoicing import services as invoicing
from billing.invoicing.models import Invoice
from billing.invoicing.tests.helpers import account, assign, make_plan, pay
from billing.payments import movements, receipts, refunds, shoppers
from billing.payments.models import PaymentAttempt, Receipt, Shopper, StripeEvent
from billing.payments.shoppers import RegisteredShopper
from billing.payments.tests.support import ENTERED, decide_cart, open_visit, preauthorise, settle_payment
from conftest import PASSWORD
from core import tenancy
from core.entry_tokens import entry_token_hash
from disputes.models import Dispute
from ingest.models import Event, EventStream, Rejection
from stores.models import Store
from tenants.audit import Actor
from tenants.models import AuditEntry, Membership, Tenant
from visits.models import Visit

pytestmark = pytest.mark.django_db

MARCH = date(2026, 3, 1)


def _tables_holding(values: list[str]) -> dict[str, list[str]]:
    """Every table of the database (not only the models') whose rows, as text, contain one of the values."""
    found: dict[str, list[str]] = {}
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names(cursor):
            quoted = connection.ops.quote_name(table)
            for value in values:
                cursor.execute(f"SELECT 1 FROM {quoted} r WHERE strpos(lower(r::text), lower(%s)) > 0 LIMIT 1", [value])  # noqa: S608 — names from the catalog
                if cursor.fetchone():
                    found.setdefault(table, []).append(value)
    return found


def _stripe(path: str, **params: Any) -> dict[str, Any]:
    answer = requests.get(
        f"{settings.STRIPE_API_BASE}/v1/{path}", params=params, auth=(settings.STRIPE_SECRET_KEY, ""), timeout=5
    )
    answer.raise_for_status()
    return dict(answer.json())


def _cards_at_stripe(customer_id: str) -> list[str]:
    return [card["id"] for card in _stripe("payment_methods", customer=customer_id, type="card")["data"]]


def _march_invoice(tenant: Tenant) -> tuple[int, int, list[tuple[str, int, int]]]:
    with tenancy.platform_wide_scope():
        invoicing.month_close(actor=Actor.system(), period_start=MARCH)
        invoice = Invoice.unscoped.get(tenant=tenant, period_start=MARCH)
        lines = sorted((line.description, line.quantity, line.amount) for line in invoice.lines.all())
    return invoice.subtotal, invoice.total, lines


def _charged_visit(store: Store, registered: RegisteredShopper, session: str) -> Visit:
    visit = open_visit(store, registered.entry_token, session)
    preauthorise(visit)
    return settle_payment(decide_cart(visit, [("COLA", 2, 199), ("CHIPS", 1, 349)]))


def _money_of(visit: Visit) -> tuple[Any, ...]:
    visit.refresh_from_db()
    attempts = PaymentAttempt.unscoped.filter(visit=visit).order_by("pk")
    return (
        visit.status,
        visit.total,
        visit.paid,
        visit.refunded,
        [(a.purpose, a.state, a.amount, a.stripe_id, a.shopper_id) for a in attempts],
    )


def test_erasure_removes_personal_data_everywhere_and_keeps_the_money_records(
    store_a: Store, register: Callable[..., RegisteredShopper], api_a: APIClient, manager_a: Any
) -> None:
    tenant = store_a.tenant
    account(tenant)
    assign(tenant, make_plan(store_fee=31_000, visit_fee=7, revenue_share_bps=125), date(2026, 1, 1))
    registered = register(tenant, ref="erase-me-7781", email="erase.me@example.com")
    kept = register(tenant, ref="keep-me-5512", payment_method="pm_card_chargeCustomerFail", email="keep@example.com")
    shopper = registered.shopper
    old_hash, old_card = shopper.token_hash, shopper.payment_method_id
    visit = _charged_visit(store_a, registered, "V1")
    with tenancy.tenant_scope(tenant.pk):
        refunds.visit_refund(
            actor=Actor(source="admin", user=manager_a), visit=visit, reason_code="damaged", amount=199
        )
        movements.visit_settle_payment(visit_id=visit.pk)
        assert receipts.receipt_issue(visit_id=visit.pk) is not None
    # What the platform keeps of the token elsewhere: the session.started event, a rejected line, a Stripe event.
    started = {"id": "e-1", "type": "session.started", "session": "V1", "shopper": old_hash, "gate": "G1"}
    Event.unscoped.create(
        tenant=tenant, store=store_a, event_id="e-1", type="session.started", ts=ENTERED, session="V1", device="G1",
        payload=started,
    )  # fmt: skip
    Dispute.unscoped.create(
        tenant=tenant, store=store_a, visit=visit, status=Dispute.Status.REJECTED, reason=Dispute.Reason.OTHER,
        note="Ring me on 555-0199, Erase Me", asked=199, currency="USD",
    )  # fmt: skip
    stream = EventStream.unscoped.create(tenant=tenant, store=store_a)
    Rejection.unscoped.create(tenant=tenant, stream=stream, line=1, reason="unknown gate", raw=str(started))
    intent = PaymentAttempt.unscoped.filter(visit=visit, purpose="preauth").get().stripe_id
    StripeEvent.unscoped.create(
        tenant=tenant, stripe_event_id="evt_before", type="payment_intent.succeeded",
        payload={"id": "evt_before", "type": "payment_intent.succeeded", "data": {"object": {
            "id": intent, "status": "succeeded", "amount": 747, "customer": shopper.stripe_customer_id,
            "payment_method": old_card, "receipt_email": "erase.me@example.com",
        }}},
    )  # fmt: skip
    personal = [
        "erase-me-7781", "erase.me@example.com", registered.entry_token, old_hash, shopper.token_prefix,
        shopper.stripe_customer_id, old_card, "•••• 4242", "555-0199",
    ]  # fmt: skip
    assert set(_tables_holding(personal)) >= {
        "payments_shopper", "visits_visit", "ingest_event", "tenants_auditentry", "disputes_dispute",
    }  # fmt: skip
    assert _cards_at_stripe(shopper.stripe_customer_id) == [old_card]
    money_before, invoice_before = _money_of(visit), _march_invoice(tenant)
    assert invoice_before[1] > 0

    answer = api_a.post(f"/api/v1/shoppers/{shopper.pk}/erase")

    assert answer.status_code == 200, answer.content
    body = answer.json()
    assert body["id"] == shopper.pk and body["erased_at"] and body["revoked"]
    assert (body["external_ref"], body["email"], body["card_last4"], body["token_prefix"]) == ("", "", "", "")
    assert _tables_holding(personal) == {}
    # Stripe's customer: no card, no email, no reference (its payments stay, for refunds).
    customer = _stripe(f"customers/{shopper.stripe_customer_id}")
    assert not customer.get("email") and not (customer.get("metadata") or {}).get("external_ref")
    assert _cards_at_stripe(shopper.stripe_customer_id) == []
    # The money records: the same, pointing to the same (now pseudonymous) shopper; the invoice unchanged.
    assert _money_of(visit) == money_before
    assert _march_invoice(tenant) == invoice_before
    receipt = api_a.get(f"/api/v1/stores/{store_a.code}/visits/V1").json()
    assert (receipt["shopper"], receipt["total"], receipt["payment"]["refunded"]) == (shopper.pk, 747, 199)
    assert Receipt.unscoped.get(visit=visit).total == 747
    erased = Shopper.unscoped.get(pk=shopper.pk)
    assert Visit.unscoped.get(pk=visit.pk).shopper_token_hash == erased.token_hash != old_hash
    assert Event.unscoped.get(event_id="e-1").payload == {**started, "shopper": erased.token_hash}
    assert StripeEvent.unscoped.get(stripe_event_id="evt_before").payload["data"]["object"] == {
        "id": intent, "status": "succeeded", "amount": 747,
    }  # fmt: skip
    # The token opens nothing, the other shopper is untouched, and the erasure is in the audit log.
    with tenancy.tenant_scope(tenant.pk):
        assert not shoppers.entry_check(tenant=tenant, store=store_a, token=registered.entry_token).allowed
        assert shoppers.entry_check(tenant=tenant, store=store_a, token=kept.entry_token).allowed
    assert set(_tables_holding(["keep-me-5512", "keep@example.com"])) >= {"payments_shopper", "tenants_auditentry"}
    [entry] = AuditEntry.unscoped.filter(action="shopper.erased")
    assert (entry.tenant_id, entry.source, entry.object_id) == (tenant.pk, "api", str(shopper.pk))
    assert entry.actor_label.startswith("API key") and entry.changes == {"visits_pseudonymised": 1, "cards_detached": 1}

    # Erasing again answers the same and records nothing more; the licensee may register the reference anew.
    again = api_a.post(f"/api/v1/shoppers/{shopper.pk}/erase")
    assert again.status_code == 200 and again.json() == body
    assert AuditEntry.unscoped.filter(action="shopper.erased").count() == 1
    anew = register(tenant, ref="erase-me-7781")
    assert anew.created and anew.shopper.pk != shopper.pk
    # A refund of the erased shopper's visit still goes through.
    with tenancy.tenant_scope(tenant.pk):
        refunds.visit_refund(actor=Actor(source="admin", user=manager_a), visit=visit, reason_code="goodwill")
        assert movements.visit_settle_payment(visit_id=visit.pk).refunded == 747


def test_a_shopper_who_may_owe_money_is_not_erased_and_is_told_why(
    store_a: Store, register: Callable[..., RegisteredShopper], api_a: APIClient
) -> None:
    tenant = store_a.tenant
    declined = register(tenant, ref="owes-1", payment_method="pm_card_chargeCustomerFail")
    owing = settle_payment(decide_cart(open_visit(store_a, declined.entry_token, "OWED"), [("COLA", 2, 199)]))
    assert owing.status == "payment_failed"
    in_store = register(tenant, ref="in-store-1")
    open_visit(store_a, in_store.entry_token, "INSIDE")
    paying = register(tenant, ref="paying-1")
    charged = _charged_visit(store_a, paying, "PAID")
    pay(charged, purpose="refund", amount=100, at=ENTERED, state="pending")
    disputing = register(tenant, ref="disputing-1")
    Dispute.unscoped.create(
        tenant=tenant, store=store_a, visit=_charged_visit(store_a, disputing, "DISPUTED"),
        status=Dispute.Status.IN_REVIEW, reason=Dispute.Reason.NOT_TAKEN, asked=349, currency="USD",
    )  # fmt: skip

    refusals = {
        ref.shopper.external_ref: api_a.post(f"/api/v1/shoppers/{ref.shopper.pk}/erase")
        for ref in (declined, in_store, paying, disputing)
    }

    assert {ref: answer.status_code for ref, answer in refusals.items()} == dict.fromkeys(refusals, 409)
    errors = {ref: answer.json()["error"] for ref, answer in refusals.items()}
    assert errors["owes-1"]["code"] == "open_balance"
    assert errors["owes-1"]["details"] == {"open_balance": 398, "currency": "USD", "visits": ["OWED"]}
    assert errors["owes-1"]["message"] == "The shopper owes $3.98 from 1 visit(s) whose payment failed."
    assert (errors["in-store-1"]["code"], errors["in-store-1"]["details"]) == (
        "visit_not_settled",
        {"visits": ["INSIDE"]},
    )
    assert (errors["paying-1"]["code"], errors["paying-1"]["details"]) == ("payment_in_progress", {"visits": ["PAID"]})
    assert (errors["disputing-1"]["code"], errors["disputing-1"]["details"]) == (
        "dispute_in_review",
        {"visits": ["DISPUTED"]},
    )
    # Nothing was erased, here or at Stripe.
    for registered in (declined, in_store, paying, disputing):
        shopper = Shopper.unscoped.get(pk=registered.shopper.pk)
        assert shopper.erased_at is None and shopper.token_hash == entry_token_hash(registered.entry_token)
        assert _cards_at_stripe(shopper.stripe_customer_id) == [shopper.payment_method_id]
    assert not AuditEntry.unscoped.filter(action="shopper.erased").exists()


def test_another_tenants_shopper_unknown_ids_and_stripe_down_erase_nothing(
    store_a: Store,
    register: Callable[..., RegisteredShopper],
    api_a: APIClient,
    api_b: APIClient,
    settings: Any,
) -> None:
    registered = register(store_a.tenant, ref="mine-1", email="mine@example.com")
    shopper = registered.shopper

    assert api_b.post(f"/api/v1/shoppers/{shopper.pk}/erase").status_code == 404
    unknown = api_a.post(f"/api/v1/shoppers/{shopper.pk + 1000}/erase")
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "not_found"
    assert api_a.post("/api/v1/shoppers/mine-1/erase").status_code == 404
    assert api_a.get(f"/api/v1/shoppers/{shopper.pk}/erase").status_code == 405
    live = settings.STRIPE_API_BASE
    settings.STRIPE_API_BASE = "http://127.0.0.1:9"  # nothing listens: Stripe cannot be reached
    down = api_a.post(f"/api/v1/shoppers/{shopper.pk}/erase")
    assert down.status_code == 503 and down.json()["error"]["code"] == "payment_provider_unavailable"
    settings.STRIPE_API_BASE = live

    kept = Shopper.unscoped.get(pk=shopper.pk)
    assert (kept.external_ref, kept.email, kept.erased_at) == ("mine-1", "mine@example.com", None)
    assert _cards_at_stripe(kept.stripe_customer_id) == [kept.payment_method_id]
    assert not AuditEntry.unscoped.filter(action="shopper.erased").exists()


def test_a_manager_erases_shoppers_in_the_store_admin_after_confirming(
    store_a: Store,
    register: Callable[..., RegisteredShopper],
    manager_a: Any,
    manager_b: Any,
    make_member: Callable[..., Any],
) -> None:
    tenant = store_a.tenant
    leaving = register(tenant, ref="leaving-1", email="leaving@example.com").shopper
    declined = register(tenant, ref="owing-1", payment_method="pm_card_chargeCustomerFail")
    settle_payment(decide_cart(open_visit(store_a, declined.entry_token, "OWED"), [("COLA", 2, 199)]))
    chosen = {"action": "erase_personal_data", "_selected_action": [str(leaving.pk), str(declined.shopper.pk)]}
    manager = Client()
    assert manager.login(username=manager_a.username, password=PASSWORD)

    confirm = manager.post("/admin/payments/shopper/", chosen)

    assert confirm.status_code == 200
    page = confirm.content.decode()
    assert "This cannot be undone" in page and "leaving@example.com" in page and "owing-1" in page
    assert Shopper.unscoped.get(pk=leaving.pk).erased_at is None  # nothing yet

    done = manager.post("/admin/payments/shopper/", {**chosen, "confirmed": "yes"}, follow=True)

    said = [str(message) for message in done.context["messages"]]
    assert said == [
        "owing-1 was not erased: The shopper owes $3.98 from 1 visit(s) whose payment failed.",
        "Erased the personal data of 1 shopper.",
    ]
    assert Shopper.unscoped.get(pk=leaving.pk).erased_at is not None
    assert Shopper.unscoped.get(pk=declined.shopper.pk).erased_at is None
    [entry] = AuditEntry.unscoped.filter(action="shopper.erased")
    assert (entry.source, entry.actor_user, entry.object_id) == ("admin", manager_a, str(leaving.pk))
    listing = manager.get("/admin/payments/shopper/").content.decode()
    assert "leaving-1" not in listing and "leaving@example.com" not in listing and "Erased shopper" in listing

    # Staff may not erase; another tenant's manager cannot reach these shoppers.
    staff = make_member("sam@alpha.test", tenant, role=Membership.Role.STAFF)
    for user in (staff, manager_b):
        other = Client()
        assert other.login(username=user.username, password=PASSWORD)
        other.post(
            "/admin/payments/shopper/", {**chosen, "_selected_action": [str(declined.shopper.pk)], "confirmed": "yes"}
        )
    assert Shopper.unscoped.get(pk=declined.shopper.pk).external_ref == "owing-1"
    assert AuditEntry.unscoped.filter(action="shopper.erased").count() == 1
