"""Stores, layouts and devices through the licensee API (docs/api.md, "Stores and layouts")."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import exceptions, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from core.api.errors import DetailedError
from core.api.params import query_choice, query_instant
from core.api.schema import QUOTA_EXCEEDED
from core.api.views import TenantAPIView, page_of
from stores import selectors, services
from stores.models import (
    DISPUTE_POLICY_RANGES,
    OVERCHARGE_RISK_MAX,
    OVERCHARGE_RISK_MIN,
    UNSEEN_ITEM_REVIEW_COST_MAX,
    Device,
    LayoutVersion,
    Store,
)

RISK_HELP = (
    "The share of visits the licensee accepts to see overcharged, 0.0005 to 0.05 (default 0.005: at most 0.5 % of "
    "visits). Every visit that fits within it is charged without a person; the rest go to review."
)

UNSEEN_REVIEW_COST_HELP = (
    "Minor units: what a person's look at an item no camera saw costs the store (0 to 10,000,000; default 0). Such an "
    "item goes to the shopper singled out (charged within the overcharge risk, or asked about) only when its price "
    "times how likely that shopper took it is at least this much; otherwise it is left uncharged and counted as "
    "shrink. 0: always (when one shopper stands out)."
)


def _unseen_review_cost_field(**kwargs: Any) -> serializers.IntegerField:
    wrong = f"A whole number of the currency's minor unit from 0 to {UNSEEN_ITEM_REVIEW_COST_MAX:,} is required."
    return serializers.IntegerField(
        min_value=0,
        max_value=UNSEEN_ITEM_REVIEW_COST_MAX,
        help_text=UNSEEN_REVIEW_COST_HELP,
        error_messages={"invalid": wrong, "min_value": wrong, "max_value": wrong, "max_string_length": wrong},
        **kwargs,
    )


def _overcharge_risk_field() -> serializers.DecimalField:
    return serializers.DecimalField(
        required=False,
        max_digits=5,
        decimal_places=4,
        min_value=OVERCHARGE_RISK_MIN,
        max_value=OVERCHARGE_RISK_MAX,
        coerce_to_string=False,
        help_text=RISK_HELP,
    )


def _policy_count(source: str, help_text: str) -> serializers.IntegerField:
    """A whole-number field of the store's dispute policy, within the range the store accepts for it."""
    low, high = DISPUTE_POLICY_RANGES[source]
    return serializers.IntegerField(source=source, min_value=low, max_value=high, help_text=help_text)


class DisputePolicySerializer(serializers.Serializer):
    """The store's dispute policy (docs/api.md, "Disputes"): what is decided at once and what waits for a person."""

    window_days = _policy_count(
        "dispute_window_days", "A shopper may dispute a receipt's lines up to this many days after leaving the store."
    )
    auto_refund_limit = _policy_count(
        "dispute_auto_refund_limit",
        "Minor units: a dispute asking this much or less is refunded at once (0: none by amount).",
    )
    refund_unsure_lines = serializers.BooleanField(
        source="dispute_auto_refund_unsure",
        help_text="A dispute of lines the platform was unsure of is refunded at once.",
    )
    review_hours = _policy_count(
        "dispute_review_hours", "A dispute sent to a person must be decided within this many hours, or it is refunded."
    )


class DisputePolicyInputSerializer(DisputePolicySerializer):
    """The same, in a change: only the fields sent change."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for field in self.fields.values():
            field.required = False


class StoreOutputSerializer(serializers.Serializer):
    code = serializers.CharField()
    name = serializers.CharField()
    address = serializers.CharField()
    timezone = serializers.CharField()
    currency = serializers.CharField()
    status = serializers.CharField()
    preauth_amount = serializers.IntegerField(help_text="Minor units held at entry.")
    overcharge_risk = serializers.FloatField(help_text=RISK_HELP)
    settling_window_seconds = serializers.IntegerField()
    unseen_item_review_cost = _unseen_review_cost_field()
    dispute_policy = DisputePolicySerializer(source="*")
    created_at = serializers.DateTimeField()


class StoreCreateInputSerializer(serializers.Serializer):
    code = serializers.CharField(max_length=64)
    name = serializers.CharField(max_length=200)
    timezone = serializers.CharField(max_length=64)
    currency = serializers.CharField(min_length=3, max_length=3)
    address = serializers.CharField(required=False, allow_blank=True, max_length=1000)
    preauth_amount = serializers.IntegerField(required=False, min_value=0)
    overcharge_risk = _overcharge_risk_field()
    settling_window_seconds = serializers.IntegerField(required=False, min_value=0)
    unseen_item_review_cost = _unseen_review_cost_field(required=False)
    dispute_policy = DisputePolicyInputSerializer(required=False)


class StoreUpdateInputSerializer(serializers.Serializer):
    name = serializers.CharField(required=False, max_length=200)
    address = serializers.CharField(required=False, allow_blank=True, max_length=1000)
    timezone = serializers.CharField(required=False, max_length=64)
    status = serializers.ChoiceField(required=False, choices=Store.Status.choices)
    preauth_amount = serializers.IntegerField(required=False, min_value=0)
    overcharge_risk = _overcharge_risk_field()
    settling_window_seconds = serializers.IntegerField(required=False, min_value=0)
    unseen_item_review_cost = _unseen_review_cost_field(required=False)
    dispute_policy = DisputePolicyInputSerializer(required=False)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        fixed = sorted({"code", "currency"} & set(self.initial_data))
        if fixed:
            raise serializers.ValidationError(dict.fromkeys(fixed, "Cannot be changed after the store is created."))
        return attrs


def _store_settings(validated: dict[str, Any]) -> dict[str, Any]:
    """The store's settings as its service takes them: the dispute policy's fields are the store's own."""
    settings = dict(validated)
    settings.update(settings.pop("dispute_policy", {}))
    return settings


class StoreListApi(TenantAPIView):
    @page_of(StoreOutputSerializer)
    def get(self, request: Request) -> QuerySet[Store]:
        """List stores

        The tenant's stores with their code, name, timezone, currency, status and checkout settings. Paged.
        """
        return selectors.store_list()

    @extend_schema(request=StoreCreateInputSerializer, responses={201: StoreOutputSerializer, 409: QUOTA_EXCEEDED})
    def post(self, request: Request) -> Response:
        """Register a store

        Creates a store under a code unique in the tenant. Its code and currency are fixed once it is created; publish
        its layout next (`PUT /stores/{store}/layout`). 409 `quota_exceeded` past the tenant's store limit.
        """
        payload = StoreCreateInputSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        store = services.store_create(
            actor=self.actor,
            tenant=self.tenant,
            **_store_settings(payload.validated_data),
        )
        return Response(StoreOutputSerializer(store).data, status=status.HTTP_201_CREATED)


class StoreDetailApi(TenantAPIView):
    @extend_schema(responses=StoreOutputSerializer)
    def get(self, request: Request, store: str) -> Response:
        """One store

        A store by its code; a code of another tenant's store is 404.
        """
        return Response(StoreOutputSerializer(selectors.store_get(code=store)).data)

    @extend_schema(request=StoreUpdateInputSerializer, responses=StoreOutputSerializer)
    def patch(self, request: Request, store: str) -> Response:
        """Change a store's settings

        Changes only the fields sent: name, address, timezone, status, pre-authorisation amount, overcharge risk,
        settling window, the cost of a look at an unseen item, any field of the dispute policy; code and currency
        cannot change. Every field is checked before anything is written.
        """
        found = selectors.store_get(code=store)
        payload = StoreUpdateInputSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        updated = services.store_update(
            actor=self.actor,
            store=found,
            **_store_settings(payload.validated_data),
        )
        return Response(StoreOutputSerializer(updated).data)


class LayoutOutputSerializer(serializers.Serializer):
    store = serializers.CharField(source="store.code")
    version = serializers.IntegerField(source="number")
    effective_from = serializers.DateTimeField()
    created_at = serializers.DateTimeField()
    created_by = serializers.CharField()
    document = serializers.JSONField()


class LayoutRejectedError(DetailedError):
    status_code = status.HTTP_400_BAD_REQUEST
    default_code = "invalid_layout"


class StoreLayoutApi(TenantAPIView):
    @extend_schema(
        parameters=[
            OpenApiParameter(
                "at",
                OpenApiTypes.DATETIME,
                description="The instant (default: now). Before the store's first version, that first version.",
            )
        ],
        responses=LayoutOutputSerializer,
    )
    def get(self, request: Request, store: str) -> Response:
        """The layout in force at an instant

        The store's layout document in force now, or at `?at=` (an ISO 8601 instant): floor, zones, fixtures, bins with
        their products, and devices (see `docs/layout.md`).
        """
        found = selectors.store_get(code=store)
        at = query_instant(request, "at")
        layout = selectors.layout_in_force(store=found, at=at)
        if layout is None:
            raise exceptions.NotFound(f"Store {found.code!r} has no layout yet.")
        return Response(LayoutOutputSerializer(layout).data)

    @extend_schema(
        request=OpenApiTypes.OBJECT,
        parameters=[
            OpenApiParameter(
                "effective_from", OpenApiTypes.DATETIME, description="When it takes effect (default: now)."
            )
        ],
        responses={201: LayoutOutputSerializer},
    )
    def put(self, request: Request, store: str) -> Response:
        """Publish a new layout version (validated whole; every problem listed)

        Publishes a layout document (see `docs/layout.md`) as the store's next version, in force from `?effective_from`
        or now; a store's first layout also covers earlier events. An invalid document writes nothing and every problem
        is listed.
        """
        found = selectors.store_get(code=store)
        try:
            layout = services.layout_publish(
                actor=self.actor,
                store=found,
                document=request.data,
                effective_from=query_instant(request, "effective_from"),
            )
        except services.LayoutRejected as rejected:
            raise LayoutRejectedError(
                f"The layout has {len(rejected.problems)} problem(s); nothing was stored.",
                details={"problems": [{"path": p.path, "message": p.message} for p in rejected.problems]},
            ) from rejected
        return Response(LayoutOutputSerializer(layout).data, status=status.HTTP_201_CREATED)


class LayoutVersionSummarySerializer(serializers.Serializer):
    version = serializers.IntegerField(source="number")
    effective_from = serializers.DateTimeField()
    created_at = serializers.DateTimeField()
    created_by = serializers.CharField()


class StoreLayoutVersionsApi(TenantAPIView):
    @page_of(LayoutVersionSummarySerializer)
    def get(self, request: Request, store: str) -> QuerySet[LayoutVersion]:
        """The store's layout versions, newest first

        Each published version of the store's layout with its number, the instant it applies from and who published it.
        """
        return selectors.layout_versions(store=selectors.store_get(code=store))


class DeviceOutputSerializer(serializers.Serializer):
    code = serializers.CharField()
    kind = serializers.CharField()
    status = serializers.CharField()
    last_seen_at = serializers.DateTimeField(allow_null=True)
    status_changed_at = serializers.DateTimeField(allow_null=True)


class StoreDeviceListApi(TenantAPIView):
    @extend_schema(
        parameters=[OpenApiParameter("status", str, enum=Device.Health.values), OpenApiParameter("kind", str)]
    )
    @page_of(DeviceOutputSerializer)
    def get(self, request: Request, store: str) -> QuerySet[Device]:
        """The store's devices and their health

        The cameras, scales, gates and handhelds the store's layout declares, each with its health (online, degraded,
        offline, unknown) and when it was last heard from. Filter with `?status=` and `?kind=`.
        """
        status_filter = query_choice(request, "status", Device.Health.values)
        devices = selectors.device_list(store=selectors.store_get(code=store), status=status_filter)
        if kind := request.query_params.get("kind"):
            devices = devices.filter(kind=kind)
        return devices
