"""The entry check answered from state kept ready (billing/payments/standing.py): a change is seen at the very
next check, and a check once the state is kept asks the database nothing and Stripe nothing."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.core.cache import cache
from rest_framework.test import APIClient

from billing.payments.models import Shopper, StripeEvent
from billing.payments.stripe_events import stripe_event_process
from billing.payments.tests.support import decide_cart, open_visit, settle_payment
from core import tenancy
from stores import services as store_services
from stores.models import Store
from tenants import services as tenant_services
from tenants.audit import Actor

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("localstripe")]  # every check here pays by Stripe


def _check(api: APIClient, token: str, store: str = "PAY-1") -> dict[str, Any]:
    response = api.post(f"/api/v1/stores/{store}/entry-check", {"token": token}, format="json")
    assert response.status_code == 200, response.content
    return dict(response.json())


def _register(api: APIClient, ref: str, payment_method: str = "pm_card_visa") -> dict[str, Any]:
    response = api.post("/api/v1/shoppers", {"external_ref": ref, "payment_method": payment_method}, format="json")
    assert response.status_code in (200, 201), response.content
    return dict(response.json())


def test_a_card_declined_just_now_is_refused_at_the_very_next_check_with_no_query(
    api_a: APIClient,
    store_a: Store,
    django_capture_on_commit_callbacks: Callable[..., Any],
    django_assert_num_queries: Callable[..., Any],
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        shopper = _register(api_a, "declines", payment_method="pm_card_chargeCustomerFail")
    assert _check(api_a, shopper["entry_token"])["allowed"] is True

    with django_capture_on_commit_callbacks(execute=True):
        visit = settle_payment(decide_cart(open_visit(store_a, shopper["entry_token"]), [("COLA", 2, 199)]))
    assert visit.status == "payment_failed"

    with django_assert_num_queries(0):  # written when the decline committed: nothing to read at the gate
        denied = _check(api_a, shopper["entry_token"])
    assert denied == {
        "allowed": False,
        "code": "open_balance",
        "reason": "The shopper has an unpaid balance from an earlier visit.",
        "open_balance": 398,
        "currency": "USD",
    }


def test_a_decline_is_seen_at_once_even_before_its_transaction_commits(api_a: APIClient, store_a: Store) -> None:
    """The entry is dropped with the change itself: a check in between reads the database, never the old entry."""
    shopper = _register(api_a, "declines", payment_method="pm_card_chargeCustomerFail")
    assert _check(api_a, shopper["entry_token"])["allowed"] is True

    settle_payment(decide_cart(open_visit(store_a, shopper["entry_token"]), [("COLA", 1, 250)]))

    assert (_check(api_a, shopper["entry_token"])["code"], _check(api_a, shopper["entry_token"])["open_balance"]) == (
        "open_balance",
        250,
    )


def test_paying_what_is_owed_with_a_new_card_opens_the_gate_again(
    api_a: APIClient, store_a: Store, django_capture_on_commit_callbacks: Callable[..., Any]
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        shopper = _register(api_a, "owes", payment_method="pm_card_chargeCustomerFail")
        visit = settle_payment(decide_cart(open_visit(store_a, shopper["entry_token"]), [("COLA", 2, 199)]))
    assert _check(api_a, shopper["entry_token"])["code"] == "open_balance"

    with django_capture_on_commit_callbacks(execute=True):
        renewed = _register(api_a, "owes", payment_method="pm_card_visa")
        assert settle_payment(visit, retry_now=True).status == "charged"

    assert _check(api_a, renewed["entry_token"])["allowed"] is True
    assert _check(api_a, shopper["entry_token"])["code"] == "unknown_token"


def test_a_tenant_suspended_just_now_is_refused_at_the_very_next_check(
    api_a: APIClient,
    store_a: Store,
    django_capture_on_commit_callbacks: Callable[..., Any],
    django_assert_max_num_queries: Callable[..., Any],
) -> None:
    shopper = _register(api_a, "regular")
    assert _check(api_a, shopper["entry_token"])["allowed"] is True

    with django_capture_on_commit_callbacks(execute=True):
        tenant_services.tenant_suspend(actor=Actor.system(), tenant=store_a.tenant, reason="unpaid invoice")
    with django_assert_max_num_queries(1):  # the API key and its tenant, read again once
        assert _check(api_a, shopper["entry_token"])["code"] == "tenant_suspended"

    with django_capture_on_commit_callbacks(execute=True):
        tenant_services.tenant_reactivate(actor=Actor.system(), tenant=store_a.tenant)
    assert _check(api_a, shopper["entry_token"])["allowed"] is True


def test_a_fresh_registration_is_admitted_at_the_next_check_with_no_query(
    api_a: APIClient,
    store_a: Store,
    django_capture_on_commit_callbacks: Callable[..., Any],
    django_assert_num_queries: Callable[..., Any],
) -> None:
    _check(api_a, "shp_warms_the_key_and_the_store")
    with django_capture_on_commit_callbacks(execute=True):
        shopper = _register(api_a, "newcomer")

    with django_assert_num_queries(0):
        assert _check(api_a, shopper["entry_token"])["code"] == "ok"


def test_a_revoked_token_and_a_closed_store_are_refused_at_the_next_check(
    api_a: APIClient, store_a: Store, django_capture_on_commit_callbacks: Callable[..., Any]
) -> None:
    shopper = _register(api_a, "leaver")
    other = _register(api_a, "stays")
    assert _check(api_a, shopper["entry_token"])["allowed"] and _check(api_a, other["entry_token"])["allowed"]

    with django_capture_on_commit_callbacks(execute=True):
        assert api_a.delete(f"/api/v1/shoppers/{shopper['id']}").status_code == 204
    assert _check(api_a, shopper["entry_token"])["code"] == "token_revoked"

    with django_capture_on_commit_callbacks(execute=True), tenancy.tenant_scope(store_a.tenant_id):
        store_services.store_update(actor=Actor.system(), store=store_a, status=Store.Status.CLOSED)
    assert _check(api_a, other["entry_token"])["code"] == "store_closed"
    with django_capture_on_commit_callbacks(execute=True), tenancy.tenant_scope(store_a.tenant_id):
        store_services.store_update(actor=Actor.system(), store=store_a, status=Store.Status.ACTIVE)
    assert _check(api_a, other["entry_token"])["allowed"] is True


def test_a_card_detached_at_stripe_is_refused_at_the_next_check(
    api_a: APIClient, store_a: Store, django_capture_on_commit_callbacks: Callable[..., Any]
) -> None:
    shopper = _register(api_a, "detaches")
    assert _check(api_a, shopper["entry_token"])["allowed"] is True
    card = Shopper.unscoped.get(pk=shopper["id"]).payment_method_id
    payload = {"id": "evt_detach", "type": "payment_method.detached", "data": {"object": {"id": card}}}
    stored = StripeEvent.unscoped.create(
        tenant=store_a.tenant, stripe_event_id="evt_detach", type="payment_method.detached", payload=payload
    )

    with django_capture_on_commit_callbacks(execute=True), tenancy.tenant_scope(store_a.tenant_id):
        assert stripe_event_process(stripe_event_pk=stored.pk).outcome.startswith("recorded")

    assert _check(api_a, shopper["entry_token"])["code"] == "no_payment_method"


def test_a_detached_card_nobody_holds_changes_no_one(tenant_a: Any) -> None:
    payload = {"id": "evt_x", "type": "payment_method.detached", "data": {"object": {"id": "pm_nobody"}}}
    stored = StripeEvent.unscoped.create(
        tenant=tenant_a, stripe_event_id="evt_x", type="payment_method.detached", payload=payload
    )
    with tenancy.tenant_scope(tenant_a.pk):
        assert stripe_event_process(stripe_event_pk=stored.pk).outcome == "ignored: no shopper has this card"


def test_another_tenants_shopper_is_refused_at_its_own_stores_and_not_found_at_the_others(
    api_a: APIClient, api_b: APIClient, store_a: Store, tenant_b: Any
) -> None:
    shopper = _register(api_a, "alpha-shopper")
    assert _check(api_a, shopper["entry_token"])["allowed"] is True

    response = api_b.post("/api/v1/stores/PAY-1/entry-check", {"token": shopper["entry_token"]}, format="json")
    assert response.status_code == 404
    Store.unscoped.create(tenant=tenant_b, code="PAY-1", name="Bravo's shop", currency="EUR")
    answer = _check(api_b, shopper["entry_token"])
    assert (answer["allowed"], answer["code"], answer["currency"]) == (False, "unknown_token", "EUR")


def test_entry_checks_count_against_the_keys_rate_like_every_call(
    api_a: APIClient, api_b: APIClient, store_a: Store
) -> None:
    """The entry check counts the call with its read of the cache (one round trip): past the rate it is a 429."""
    from tenants.authentication import ApiKeyRateThrottle

    shopper = _register(api_a, "counted")
    cache.clear()  # the registration counted too: start the key's window from nothing
    original = ApiKeyRateThrottle.THROTTLE_RATES
    ApiKeyRateThrottle.THROTTLE_RATES = {"api_key": "3/min"}
    try:
        answers = [
            api_a.post("/api/v1/stores/PAY-1/entry-check", {"token": shopper["entry_token"]}, format="json")
            for _ in range(4)
        ]
        assert [answer.status_code for answer in answers] == [200, 200, 200, 429]
        assert answers[0].json()["allowed"] is True
        assert answers[3].json()["error"]["code"] == "throttled"
        assert api_b.post("/api/v1/stores/PAY-1/entry-check", {"token": "x"}, format="json").status_code == 404
    finally:
        ApiKeyRateThrottle.THROTTLE_RATES = original


def test_an_entry_check_without_a_token_is_refused_with_the_field_named_and_an_unknown_store_is_404(
    api_a: APIClient, store_a: Store
) -> None:
    refused = api_a.post("/api/v1/stores/PAY-1/entry-check", {}, format="json")
    assert refused.status_code == 400
    assert "token" in refused.content.decode()
    assert api_a.post("/api/v1/stores/NOPE/entry-check", {}, format="json").status_code == 404


def test_a_gate_asking_again_is_answered_from_the_cache_alone_exactly_as_the_api_answers(
    api_a: APIClient, store_a: Store, django_assert_num_queries: Callable[..., Any]
) -> None:
    """The second check of a key this process knows is answered before DRF (core/api/views.py,
    `count_and_read_first`): with no query, and the same answer, headers included."""
    shopper = _register(api_a, "regular")
    path = "/api/v1/stores/PAY-1/entry-check"
    first = api_a.post(path, {"token": shopper["entry_token"]}, format="json")  # the store not kept yet: DRF's way
    with django_assert_num_queries(0):
        again = api_a.post(path, {"token": shopper["entry_token"]}, format="json")
    assert (first.status_code, again.status_code) == (200, 200)
    assert (
        first.json()
        == again.json()
        == {
            "allowed": True,
            "code": "ok",
            "reason": "Welcome.",
            "open_balance": 0,
            "currency": "USD",
        }
    )
    assert {name: value for name, value in first.items() if name != "X-Request-ID"} == {
        name: value for name, value in again.items() if name != "X-Request-ID"
    }


def test_a_key_revoked_just_now_is_refused_at_the_next_check_though_the_gate_used_it_all_day(
    api_a: APIClient, store_a: Store, django_capture_on_commit_callbacks: Callable[..., Any]
) -> None:
    from tenants.models import ApiKey

    shopper = _register(api_a, "regular")
    assert _check(api_a, shopper["entry_token"])["allowed"] is True
    assert _check(api_a, shopper["entry_token"])["allowed"] is True
    with django_capture_on_commit_callbacks(execute=True):
        for api_key in ApiKey.unscoped.filter(tenant=store_a.tenant, revoked_at__isnull=True):
            tenant_services.api_key_revoke(actor=Actor.system(), api_key=api_key)

    refused = api_a.post("/api/v1/stores/PAY-1/entry-check", {"token": shopper["entry_token"]}, format="json")
    assert refused.status_code == 401


@pytest.mark.parametrize(
    ("body", "headers", "status"),
    [
        (b'{"token": ', {}, 400),  # not JSON: said by DRF's parser
        (b'["shp_x"]', {}, 400),  # not an object: the serializer names the field
        (b'{"token": 12345}', {}, 200),  # a number the serializer takes as text: an unknown token
        (b'{"token": "shp_x"}', {"HTTP_ACCEPT": "text/html"}, 406),  # the API answers JSON only
    ],
)
def test_anything_but_a_plain_check_is_answered_the_api_s_way_even_for_a_known_key(
    api_a: APIClient, store_a: Store, body: bytes, headers: dict[str, str], status: int
) -> None:
    _check(api_a, "shp_warms_the_key_and_the_store")
    _check(api_a, "shp_warms_the_key_and_the_store")
    answer = api_a.post("/api/v1/stores/PAY-1/entry-check", data=body, content_type="application/json", **headers)
    assert answer.status_code == status, answer.content
    if status == 200:
        assert answer.json()["code"] == "unknown_token"
