"""The Stripe gateway: the only module that imports `stripe`.

One `StripeGateway` per tenant, built from the tenant's own secret key (or the platform's default), pointed at
`STRIPE_API_BASE` when set (localstripe in tests and the demo) with the SDK's own retries off: retrying is ours,
after asking Stripe what happened. Everything returned is our own result objects; Stripe's optional fields are
read defensively because the stand-in leaves some out.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import stripe
from django.conf import settings


class GatewayUnavailable(Exception):
    """Stripe could not be reached or failed on its side: the outcome of the call is unknown."""


class GatewayRejected(Exception):
    """Stripe refused the request as invalid (a state or parameter problem, not a decline)."""

    def __init__(self, message: str, *, code: str = "", http_status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.http_status = http_status


class InvalidSignature(Exception):
    """A webhook whose signature does not verify with the tenant's secret, or was signed too long ago or ahead."""


class InvalidEvent(Exception):
    """A webhook that verifies but is not a Stripe event we can store once (no event id)."""


@dataclass(frozen=True)
class Card:
    payment_method_id: str
    brand: str
    last4: str


@dataclass(frozen=True)
class Outcome:
    """What Stripe says happened to one money movement."""

    succeeded: bool
    stripe_id: str = ""
    status: str = ""
    amount: int = 0
    failure_code: str = ""
    failure_message: str = ""


def _get(obj: Any, name: str, default: Any = None) -> Any:
    try:
        value = obj.get(name, default) if hasattr(obj, "get") else getattr(obj, name, default)
    except (AttributeError, KeyError):
        return default
    return default if value is None else value


def _intent_outcome(intent: Any) -> Outcome:
    status = _get(intent, "status", "")
    error = _get(intent, "last_payment_error", {}) or {}
    return Outcome(
        succeeded=status in ("requires_capture", "succeeded"),
        stripe_id=_get(intent, "id", ""),
        status=status,
        amount=int(_get(intent, "amount_received", 0) or _get(intent, "amount", 0)),
        failure_code=_get(error, "decline_code", "") or _get(error, "code", ""),
        failure_message=_get(error, "message", ""),
    )


def _decline(error: stripe.CardError) -> Outcome:
    body = error.json_body or {}
    detail = body.get("error", {}) if isinstance(body, dict) else {}
    intent = detail.get("payment_intent") or {}
    return Outcome(
        succeeded=False,
        stripe_id=intent.get("id", "") if isinstance(intent, dict) else "",
        status="declined",
        failure_code=detail.get("decline_code") or detail.get("code") or error.code or "card_declined",
        failure_message=detail.get("message") or error.user_message or str(error),
    )


class StripeGateway:
    """Calls on one Stripe account."""

    def __init__(self, *, secret_key: str) -> None:
        base = settings.STRIPE_API_BASE
        self._client = stripe.StripeClient(
            secret_key,
            base_addresses={"api": base} if base else None,
            max_network_retries=0,
            http_client=stripe.RequestsClient(timeout=settings.STRIPE_TIMEOUT_SECONDS),
        )

    def _call(self, method: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(*args, **kwargs)
        except stripe.CardError:
            raise
        except (stripe.APIConnectionError, stripe.RateLimitError) as error:
            raise GatewayUnavailable(str(error)) from error
        except stripe.StripeError as error:
            if not isinstance(error, stripe.InvalidRequestError) and (error.http_status or 500) >= 500:
                raise GatewayUnavailable(str(error)) from error
            message = error.user_message or str(error)
            raise GatewayRejected(message, code=error.code or "", http_status=error.http_status or 400) from error

    def create_customer(self, *, external_ref: str, email: str, tenant_id: int) -> str:
        params: dict[str, Any] = {"metadata": {"external_ref": external_ref, "openaisle_tenant": str(tenant_id)}}
        if email:
            params["email"] = email
        customer = self._call(self._client.v1.customers.create, params)
        return str(_get(customer, "id"))

    def attach_card(self, *, customer_id: str, payment_method: str) -> Card:
        """Attach a card to the customer. A card Stripe refuses raises `GatewayRejected` with its reason."""
        try:
            method = self._call(self._client.v1.payment_methods.attach, payment_method, {"customer": customer_id})
        except stripe.CardError as error:
            raise GatewayRejected(error.user_message or str(error), code=error.code or "card_declined") from error
        card = _get(method, "card", {}) or {}
        return Card(
            payment_method_id=str(_get(method, "id")),
            brand=str(_get(card, "brand", "")),
            last4=str(_get(card, "last4", "")),
        )

    def erase_customer(self, *, customer_id: str) -> list[str]:
        """Detach every card of the customer and clear what names the shopper (the email, our reference), keeping
        the customer and its payments, which refunds still need. Returns the cards detached; safe to repeat, and a
        customer Stripe no longer has is nothing to erase."""
        try:
            listing = self._call(
                self._client.v1.payment_methods.list, {"customer": customer_id, "type": "card", "limit": 100}
            )
            cards = [str(_get(method, "id")) for method in listing.auto_paging_iter()]
        except GatewayRejected as error:
            if error.http_status == 404:
                return []
            raise
        for card in cards:
            self._call(self._client.v1.payment_methods.detach, card)
        self._call(self._client.v1.customers.update, customer_id, {"email": "", "metadata": {"external_ref": ""}})
        return cards

    def create_intent(
        self, *, customer_id: str, payment_method: str, amount: int, currency: str, key: str, hold: bool
    ) -> Outcome:
        """A confirmed off-session PaymentIntent: a hold (manual capture) or a charge. Declines are outcomes."""
        params = {
            "amount": amount,
            "currency": currency.lower(),
            "customer": customer_id,
            "payment_method": payment_method,
            "capture_method": "manual" if hold else "automatic",
            "confirm": True,
            "off_session": True,
            "metadata": {"openaisle_attempt": key},
        }
        try:
            created = self._call(self._client.v1.payment_intents.create, params, {"idempotency_key": key})
            return _intent_outcome(created)
        except stripe.CardError as error:
            return _decline(error)

    def capture(self, *, payment_intent_id: str, amount: int) -> Outcome:
        intent = self._call(self._client.v1.payment_intents.capture, payment_intent_id, {"amount_to_capture": amount})
        outcome = _intent_outcome(intent)
        return Outcome(
            succeeded=outcome.status == "succeeded", stripe_id=outcome.stripe_id, status=outcome.status, amount=amount
        )

    def cancel(self, *, payment_intent_id: str) -> Outcome:
        intent = self._call(self._client.v1.payment_intents.cancel, payment_intent_id)
        return Outcome(succeeded=_get(intent, "status") == "canceled", stripe_id=payment_intent_id, status="canceled")

    def refund(self, *, payment_intent_id: str, amount: int, key: str, reason_code: str) -> Outcome:
        params = {
            "payment_intent": payment_intent_id,
            "amount": amount,
            "metadata": {"openaisle_attempt": key, "reason_code": reason_code},
        }
        refund = self._call(self._client.v1.refunds.create, params, {"idempotency_key": key})
        status = str(_get(refund, "status", ""))
        return Outcome(
            succeeded=status in ("succeeded", "pending"),
            stripe_id=str(_get(refund, "id")),
            status=status,
            amount=int(_get(refund, "amount", amount)),
            failure_message=str(_get(refund, "failure_reason", "")),
        )

    def intent(self, *, payment_intent_id: str) -> Outcome:
        return _intent_outcome(self._call(self._client.v1.payment_intents.retrieve, payment_intent_id))

    def find_intent(self, *, customer_id: str, key: str) -> Outcome | None:
        """The PaymentIntent an earlier, unrecorded attempt created, if Stripe has it."""
        for intent in self._intents_of(customer_id):
            if _get(_get(intent, "metadata", {}), "openaisle_attempt") == key:
                return _intent_outcome(intent)
        return None

    def find_refund(self, *, payment_intent_id: str, key: str) -> Outcome | None:
        listing = self._call(self._client.v1.refunds.list, {"payment_intent": payment_intent_id, "limit": 100})
        for refund in listing.auto_paging_iter():
            if _get(_get(refund, "metadata", {}), "openaisle_attempt") == key:
                status = str(_get(refund, "status", ""))
                return Outcome(
                    succeeded=status in ("succeeded", "pending"),
                    stripe_id=str(_get(refund, "id")),
                    status=status,
                    amount=int(_get(refund, "amount", 0)),
                )
        return None

    def _intents_of(self, customer_id: str) -> Iterator[Any]:
        try:
            listing = self._call(self._client.v1.payment_intents.list, {"customer": customer_id, "limit": 100})
            yield from listing.auto_paging_iter()
        except GatewayRejected:
            # The stand-in cannot filter by customer: walk every intent and filter here.
            listing = self._call(self._client.v1.payment_intents.list, {"limit": 100})
            for intent in listing.auto_paging_iter():
                if _get(intent, "customer") == customer_id:
                    yield intent


def verified_event(*, payload: bytes, signature: str, secret: str) -> dict[str, Any]:
    """The webhook's event, if its `Stripe-Signature` verifies with the secret and was made within
    `STRIPE_WEBHOOK_TOLERANCE_SECONDS` of now, either way (Stripe's library checks only the past: a signature
    dated ahead would stay replayable until that date), and the event has its id (what stores it once)."""
    tolerance = settings.STRIPE_WEBHOOK_TOLERANCE_SECONDS
    try:
        event = stripe.Webhook.construct_event(payload, signature, secret, tolerance=tolerance)
    except (ValueError, stripe.SignatureVerificationError) as error:
        raise InvalidSignature(str(error)) from error
    signed_at = _signed_at(signature)
    if signed_at > time.time() + tolerance:
        raise InvalidSignature(f"Timestamp outside the tolerance zone ({signed_at}): ahead of this server's clock.")
    found = dict(event.to_dict())
    event_id = found.get("id")
    if not isinstance(event_id, str) or not event_id.strip():
        raise InvalidEvent("The event has no id.")
    return found


def _signed_at(signature: str) -> int:
    """The `t=` timestamp of a `Stripe-Signature` header that has verified."""
    return int(next(part[2:] for part in signature.split(",") if part.startswith("t=")))
