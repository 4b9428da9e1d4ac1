"""Service levels through the licensee API (docs/api.md, "Service levels")."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import exceptions, serializers
from rest_framework.request import Request
from rest_framework.response import Response

from core.api.params import query_instant
from core.api.views import TenantAPIView
from service_levels import selectors
from service_levels.selectors import PeriodError, ServiceLevels
from stores.selectors import store_get

DEFAULT_PERIOD = timedelta(days=30)
PERIOD = [
    OpenApiParameter(
        "from", OpenApiTypes.DATETIME, description="Visits that exited at or after this (default: 30 days before `to`)."
    ),
    OpenApiParameter("to", OpenApiTypes.DATETIME, description="…and before this (default: now). At most 366 days."),
]


class PercentilesSerializer(serializers.Serializer):
    p50 = serializers.FloatField(allow_null=True, help_text="Seconds; null when nothing was measured.")
    p95 = serializers.FloatField(allow_null=True, help_text="Seconds; null when nothing was measured.")
    measured = serializers.IntegerField(help_text="How many visits the times are of.")


def _figures() -> dict[str, serializers.Field]:
    """The figures' fields (new instances each time: a field belongs to one serializer)."""
    return {
        "from": serializers.DateTimeField(help_text="The period's start (included)."),
        "to": serializers.DateTimeField(help_text="The period's end (excluded)."),
        "visits": serializers.IntegerField(help_text="Visits that exited in the period."),
        "settled_without_person": serializers.FloatField(
            allow_null=True, help_text="Share (0–1) settled with no person deciding; null without visits."
        ),
        "exit_to_receipt_s": PercentilesSerializer(
            help_text="From the exit to the first receipt, over visits with one."
        ),
        "review_time_to_decision_s": PercentilesSerializer(
            help_text="From the visit's arrival in the review queue to the first decision, over visits decided."
        ),
        "disputes": serializers.FloatField(allow_null=True, help_text="Share (0–1) of visits a shopper disputed."),
        "refunded": serializers.FloatField(allow_null=True, help_text="Share (0–1) of visits with any refund."),
    }


STORE_LEVELS = inline_serializer("StoreServiceLevels", fields={"store": serializers.CharField(), **_figures()})
TENANT_LEVELS = inline_serializer(
    "TenantServiceLevels",
    fields={
        **_figures(),
        "stores": inline_serializer(
            "StoreServiceLevelsItem",
            fields={"store": serializers.CharField(), **_figures()},
            many=True,
            help_text="Every store of the account, in code order.",
        ),
    },
)


def _share(value: float | None) -> float | None:
    return round(value, 4) if value is not None else None


def _seconds(value: float | None) -> float | None:
    return round(value, 1) if value is not None else None


def levels_body(levels: ServiceLevels) -> dict[str, Any]:
    """The figures of docs/api.md ("Service levels"): shares rounded to 4 places, seconds to tenths."""
    return {
        "visits": levels.visits,
        "settled_without_person": _share(levels.settled_without_person),
        "exit_to_receipt_s": {
            "p50": _seconds(levels.exit_to_receipt_s.p50),
            "p95": _seconds(levels.exit_to_receipt_s.p95),
            "measured": levels.exit_to_receipt_s.measured,
        },
        "review_time_to_decision_s": {
            "p50": _seconds(levels.review_time_to_decision_s.p50),
            "p95": _seconds(levels.review_time_to_decision_s.p95),
            "measured": levels.review_time_to_decision_s.measured,
        },
        "disputes": _share(levels.disputes),
        "refunded": _share(levels.refunded),
    }


def _period(request: Request) -> tuple[datetime, datetime]:
    end = query_instant(request, "to") or timezone.now()
    start = query_instant(request, "from") or end - DEFAULT_PERIOD
    try:
        selectors.check_period(start, end)
    except PeriodError as error:
        raise exceptions.ValidationError({"from": str(error)}) from error
    return start, end


def _period_body(start: datetime, end: datetime) -> dict[str, str]:
    return {"from": start.isoformat(), "to": end.isoformat()}


class StoreServiceLevelsApi(TenantAPIView):
    @extend_schema(parameters=PERIOD, responses=STORE_LEVELS)
    def get(self, request: Request, store: str) -> Response:
        """A store's service levels over a period

        Of the store's visits that exited in the period: how many, the share settled without a person, exit-to-receipt
        and review-to-decision times (p50, p95, seconds), and the shares disputed and refunded. A period that ends
        before it starts, or is longer than 366 days, is refused.
        """
        found = store_get(code=store)
        start, end = _period(request)
        levels = selectors.store_service_levels(store=found, start=start, end=end)
        return Response({"store": found.code, **_period_body(start, end), **levels_body(levels)})


class TenantServiceLevelsApi(TenantAPIView):
    @extend_schema(parameters=PERIOD, responses=TENANT_LEVELS)
    def get(self, request: Request) -> Response:
        """The account's service levels over a period, in total and per store

        The figures of `GET /stores/{store}/service-levels` over every store of the account together, and for each store
        (stores without visits in the period too).
        """
        start, end = _period(request)
        levels = selectors.tenant_service_levels(start=start, end=end)
        period = _period_body(start, end)
        stores = [{"store": store.code, **period, **levels_body(own)} for store, own in levels.stores]
        return Response({**period, **levels_body(levels.total), "stores": stores})
