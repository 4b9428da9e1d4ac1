"""Shoppers and entry checks through the licensee API (docs/api.md, "Shoppers and the gate"), and Stripe's webhooks."""

from __future__ import annotations

from typing import Any

import orjson
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseBase, JsonResponse
from django.shortcuts import get_object_or_404
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from billing.payments import erasure, shoppers, stripe_events
from billing.payments.gateway import GatewayUnavailable, InvalidEvent, InvalidSignature
from billing.payments.models import Shopper
from core import bounded_json, tenancy
from core.api.errors import DetailedError
from core.api.schema import QUOTA_EXCEEDED, error_response
from core.api.views import TenantAPIView, page_of
from stores.selectors import StoreAtGate, store_at_gate, store_at_gate_key
from tenants.audit import Actor
from tenants.models import Tenant


class PaymentProviderUnavailable(exceptions.APIException):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_code = "payment_provider_unavailable"
    default_detail = "Stripe could not be reached; try again shortly."


class ErasureRefused(DetailedError):
    status_code = status.HTTP_409_CONFLICT
    default_code = "erasure_refused"


class ShopperRegisterSerializer(serializers.Serializer):
    external_ref = serializers.CharField(max_length=128, help_text="Your own id for the shopper.")
    payment_method = serializers.CharField(max_length=64, help_text="A Stripe PaymentMethod id, e.g. pm_card_visa.")
    email = serializers.EmailField(required=False, allow_blank=True, help_text="Where receipts are emailed.")


class ShopperSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    external_ref = serializers.CharField()
    email = serializers.EmailField()
    card_brand = serializers.CharField()
    card_last4 = serializers.CharField()
    token_prefix = serializers.CharField(help_text="The start of the current entry token.")
    revoked = serializers.BooleanField(source="is_revoked")
    erased_at = serializers.DateTimeField(
        allow_null=True, help_text="When the shopper's personal data was erased (null: it was not)."
    )
    created_at = serializers.DateTimeField()


class ShopperRegisteredSerializer(ShopperSerializer):
    entry_token = serializers.CharField(help_text="Shown once: the token `session.started` carries as `shopper`.")


class EntryCheckRequestSerializer(serializers.Serializer):
    token = serializers.CharField(max_length=128, help_text="The entry token the shopper presents at the gate.")


class EntryCheckSerializer(serializers.Serializer):
    allowed = serializers.BooleanField()
    code = serializers.ChoiceField(
        choices=[
            "ok",
            "tenant_suspended",
            "store_closed",
            "unknown_token",
            "token_revoked",
            "no_payment_method",
            "open_balance",
        ]
    )
    reason = serializers.CharField()
    open_balance = serializers.IntegerField(help_text="Minor units owed from earlier visits.")
    currency = serializers.CharField()


class ShopperListApi(TenantAPIView):
    @page_of(ShopperSerializer)
    def get(self, request: Request) -> QuerySet[Shopper]:
        """Registered shoppers

        The tenant's shoppers with a card on file: their reference, card brand and last four digits, and whether their
        entry token is live. Paged.
        """
        return Shopper.objects.order_by("external_ref")

    @extend_schema(
        request=ShopperRegisterSerializer,
        responses={
            201: ShopperRegisteredSerializer,
            200: ShopperRegisteredSerializer,
            409: QUOTA_EXCEEDED,
            503: error_response("`payment_provider_unavailable`: Stripe could not be reached; try again shortly."),
        },
    )
    def post(self, request: Request) -> Response:
        """Register a shopper's card (again: replaces the card and the entry token)

        Registers a shopper's payment method (a Stripe payment method id) under the licensee's own shopper reference and
        answers a new entry token for the gate. Registering the same reference again replaces its card and token.
        """
        body = ShopperRegisterSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            registered = shoppers.shopper_register(
                actor=Actor.for_request(request, source="api"), tenant=self.tenant, **body.validated_data
            )
        except GatewayUnavailable as error:
            raise PaymentProviderUnavailable() from error
        answer = ShopperSerializer(registered.shopper).data | {"entry_token": registered.entry_token}
        return Response(answer, status=status.HTTP_201_CREATED if registered.created else status.HTTP_200_OK)


class ShopperDetailApi(TenantAPIView):
    @extend_schema(responses=ShopperSerializer)
    def get(self, request: Request, shopper_id: int) -> Response:
        """One shopper

        One registered shopper by id; a shopper of another tenant is 404.
        """
        return Response(ShopperSerializer(get_object_or_404(Shopper.objects, pk=shopper_id)).data)

    @extend_schema(responses={204: None})
    def delete(self, request: Request, shopper_id: int) -> Response:
        """Revoke the shopper's entry token

        The shopper's entry token stops opening gates at once; the card and the shopper's visits are kept. Registering
        the card again issues a new token.
        """
        shopper = get_object_or_404(Shopper.objects, pk=shopper_id)
        shoppers.shopper_revoke(actor=Actor.for_request(request, source="api"), shopper=shopper)
        return Response(status=status.HTTP_204_NO_CONTENT)


class ShopperEraseApi(TenantAPIView):
    @extend_schema(
        request=None,
        responses={
            200: ShopperSerializer,
            409: error_response(
                "The shopper may still owe money, and is not erased: `open_balance` (a failed payment is owed; "
                "`details` has `open_balance`, `currency` and the `visits`), `visit_not_settled` (a visit is in "
                "the store, settling or in review) or `payment_in_progress` (a payment or refund is on its way); "
                "`details.visits` lists the visits' sessions."
            ),
            503: error_response("`payment_provider_unavailable`: Stripe could not be reached; nothing was erased."),
        },
    )
    def post(self, request: Request, shopper_id: int) -> Response:
        """Erase the shopper's personal data

        Erases the shopper's reference, email, card and Stripe customer link (the cards are detached at Stripe) and
        makes the entry token unusable; the shopper's visits, payments, refunds and receipts are kept, with their
        amounts, under the shopper's id. Refused while the shopper may still owe money. Erasing an erased shopper again
        answers the same.
        """
        shopper = get_object_or_404(Shopper.objects, pk=shopper_id)
        try:
            erased = erasure.shopper_erase(actor=Actor.for_request(request, source="api"), shopper=shopper)
        except erasure.ErasureRefused as refused:
            raise ErasureRefused(str(refused), details=refused.details, code=refused.code) from refused
        except GatewayUnavailable as error:
            raise PaymentProviderUnavailable() from error
        return Response(ShopperSerializer(erased).data)


_TOKEN_FIELD: Any = EntryCheckRequestSerializer().fields["token"]
_TOKEN_MAX_LENGTH: int = _TOKEN_FIELD.max_length


def _entry_token_of(data: Any) -> tuple[str, Any]:
    """The entry token of an entry check's body and no errors, or "" and the serializer's errors.

    A body that is an object with a token of text the serializer would take as it is is read directly (0.3 µs; the
    serializer takes ~50 µs, ~4 % of an entry check's CPU). Any other body goes through the serializer, which says
    what is wrong (or accepts what it converts, such as a number)."""
    token = data.get("token") if isinstance(data, dict) else None
    if isinstance(token, str) and token.strip() and len(token.strip()) <= _TOKEN_MAX_LENGTH:
        return token.strip(), None
    body = EntryCheckRequestSerializer(data=data)
    return (body.validated_data["token"], None) if body.is_valid() else ("", body.errors)


def _entry_token_of_body(request: HttpRequest) -> str | None:
    """The token of an entry check read from the request itself, without DRF: a small JSON object with a usable
    token, from a caller that takes JSON. None for anything else, which DRF's parsing and the serializer answer."""
    accept = request.META.get("HTTP_ACCEPT", "")
    if accept and not any(kind in accept for kind in ("*/*", "application/json", "application/*")):
        return None
    if request.content_type != "application/json" or not request.META.get("CONTENT_LENGTH", "").isdigit():
        return None
    if not 0 < int(request.META["CONTENT_LENGTH"]) <= _SMALL_BODY_BYTES:
        return None
    try:
        data = bounded_json.loads(request.body, what="The JSON body")
    except bounded_json.JSONRefused:
        return None
    token, errors = _entry_token_of(data)
    return None if errors else token


_SMALL_BODY_BYTES = 4096


def _entry_answer(decision: shoppers.EntryDecision, store: StoreAtGate) -> dict[str, Any]:
    return {
        "allowed": decision.allowed,
        "code": decision.code,
        "reason": decision.reason,
        "open_balance": decision.open_balance,
        "currency": store.currency,
    }


class EntryCheckApi(TenantAPIView):
    answers_suspended_tenants = True  # the gate gets a denial it can show ("tenant_suspended"), not an error
    throttle_reads_along = True  # the key's rate counted in `post`, with the cache's read

    def dispatch(self, request: Any, *args: Any, **kwargs: Any) -> HttpResponseBase:
        """A gate asks all day with the same key: answered from the cache alone, in one round trip to Redis and no
        query, when everything it needs is there (`count_and_read_first`); any other call, as every API call is."""
        answer = self._answer_from_cache(request, store=kwargs["store"]) if request.method == "POST" else None
        return answer if answer is not None else super().dispatch(request, *args, **kwargs)

    def _answer_from_cache(self, request: HttpRequest, *, store: str) -> HttpResponse | None:
        token = _entry_token_of_body(request)
        if token is None:
            return None

        def keys_of(tenant_id: int) -> list[str]:
            return shoppers.gate_entry_keys(tenant_id=tenant_id, store_code=store, token=token)

        read = self.count_and_read_first(request, keys_of=keys_of)
        if read is None:
            return None
        api_key, kept = read
        if store_at_gate_key(tenant_id=api_key.tenant_id, code=store) not in kept:
            return None  # not kept yet, or no such store (404): DRF's way
        request.auth = api_key  # type: ignore[attr-defined] # as DRF sets it: the request's log line names the tenant
        with tenancy.tenant_scope(api_key.tenant_id):
            found = store_at_gate(tenant_id=api_key.tenant_id, code=store, kept=kept)
            decision = shoppers.entry_check(tenant=api_key.tenant, store=found, token=token, kept=kept)
        answer = HttpResponse(orjson.dumps(_entry_answer(decision, found)), content_type="application/json")
        answer["Allow"] = ", ".join(self.allowed_methods)  # as DRF's answer has it
        return answer

    @extend_schema(request=EntryCheckRequestSerializer, responses=EntryCheckSerializer)
    def post(self, request: Request, store: str) -> Response:
        """May this entry token open the store's gate?

        Always 200 for a known store: `allowed` says whether the gate opens, `code` and `reason` why not.
        """
        token, errors = _entry_token_of(request.data)
        # The store's entry and the shopper's standing, read with the key's rate counter: one round trip to Redis.
        kept = self.check_throttles_reading(
            request, shoppers.gate_entry_keys(tenant_id=self.tenant.pk, store_code=store, token=token)
        )
        found = store_at_gate(tenant_id=self.tenant.pk, code=store, kept=kept)  # an unknown store: 404 first
        if errors:
            raise exceptions.ValidationError(errors)
        decision = shoppers.entry_check(tenant=self.tenant, store=found, token=token, kept=kept)
        return Response(_entry_answer(decision, found))


@csrf_exempt
@require_POST
def stripe_webhook(request: HttpRequest, tenant_slug: str) -> HttpResponse:
    """Stripe's events for one tenant's account, verified with that tenant's webhook secret."""
    tenant = get_object_or_404(Tenant, slug=tenant_slug)
    with tenancy.tenant_scope(tenant.pk):
        try:
            stored = stripe_events.stripe_event_receive(
                tenant=tenant, payload=request.body, signature=request.headers.get("Stripe-Signature", "")
            )
        except InvalidSignature as refused:
            return JsonResponse(
                {
                    "error": {
                        "code": "invalid_signature",
                        "message": f"The Stripe-Signature header does not verify: {refused}",
                    }
                },
                status=400,
            )
        except InvalidEvent as refused:
            return JsonResponse({"error": {"code": "invalid_event", "message": str(refused)}}, status=400)
    return JsonResponse({"received": True, "duplicate": stored is None})
