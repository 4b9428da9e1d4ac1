"""Shelf stock through the licensee API (docs/api.md, "Stock"; docs/stock.md)."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from core.api.errors import DetailedError
from core.api.params import query_instant
from core.api.views import TenantAPIView
from stock import selectors, services, shrink
from stock.models import LowStockLevel
from stores.models import Store
from stores.selectors import store_get


class BinStockSerializer(serializers.Serializer):
    bin = serializers.CharField()
    sku = serializers.CharField()
    units = serializers.IntegerField(allow_null=True, help_text="Units on the bin then; null until it is counted.")
    last_change = serializers.DateTimeField(allow_null=True, help_text="When its units last changed (or were counted).")
    low = serializers.BooleanField(help_text="At or below its low-stock level.")
    low_at = serializers.IntegerField(source="level", allow_null=True, help_text="Its low-stock level, if any.")
    counted_at = serializers.DateTimeField(allow_null=True, help_text="Its last count at or before that instant.")
    has_scale = serializers.BooleanField(help_text="Whether a scale weighs it (otherwise the cameras' counts).")


class StockRejectedError(DetailedError):
    status_code = status.HTTP_400_BAD_REQUEST
    default_code = "invalid_stock_take"


def _refused(rejected: services.StockRefused, *, what: str, code: str) -> StockRejectedError:
    return StockRejectedError(
        f"The {what} has {len(rejected.problems)} problem(s); nothing was stored.",
        details={"problems": [{"index": p.index, "message": p.message} for p in rejected.problems]},
        code=code,
    )


def _stock_answer(store: Store, request: Request) -> Response:
    at = query_instant(request, "at") or timezone.now()
    return Response(BinStockSerializer(selectors.stock_at(store=store, at=at), many=True).data)


AT = OpenApiParameter("at", OpenApiTypes.DATETIME, description="The instant (default: now).")
COUNTS = inline_serializer(
    "StockTakeRow", fields={"bin": serializers.CharField(), "units": serializers.IntegerField(min_value=0)}, many=True
)


class StoreStockApi(TenantAPIView):
    pagination_class = None  # every bin of the store in one answer, not paged

    @extend_schema(parameters=[AT], responses=BinStockSerializer(many=True))
    def get(self, request: Request, store: str) -> Response:
        """Units on every bin at an instant

        For every bin of the store's layout at `?at=` (default now): the units the last stock take counted and what the
        events since changed, and whether it is below its low-stock level.
        """
        return _stock_answer(store_get(code=store), request)

    @extend_schema(
        parameters=[OpenApiParameter("at", OpenApiTypes.DATETIME, description="When it was counted (default: now).")],
        request=COUNTS,
        responses=BinStockSerializer(many=True),
    )
    def put(self, request: Request, store: str) -> Response:
        """Record a stock take (all or nothing); answers the stock at that instant

        Records counted units per bin at an instant. Every row is checked first; with any bad row nothing is written and
        every problem is listed.
        """
        found = store_get(code=store)
        at = query_instant(request, "at") or timezone.now()
        try:
            services.stock_take_record(actor=self.actor, store=found, at=at, rows=request.data)
        except services.StockRefused as rejected:
            raise _refused(rejected, what="stock take", code="invalid_stock_take") from rejected
        return Response(BinStockSerializer(selectors.stock_at(store=found, at=at), many=True).data)


class LowStockLevelSerializer(serializers.Serializer):
    bin = serializers.CharField(allow_blank=True, help_text="One bin, or empty when the level is a product's.")
    sku = serializers.CharField(allow_blank=True, help_text="A product (for all its bins), or empty.")
    units = serializers.IntegerField(help_text="Low at or below this many units.")


LEVELS = inline_serializer(
    "LowStockLevelChange",
    fields={
        "bin": serializers.CharField(required=False),
        "sku": serializers.CharField(required=False),
        "units": serializers.IntegerField(allow_null=True, help_text="null removes the level."),
    },
    many=True,
)


class StoreStockLevelsApi(TenantAPIView):
    pagination_class = None  # every level of the store in one answer, not paged

    @extend_schema(responses=LowStockLevelSerializer(many=True))
    def get(self, request: Request, store: str) -> Response:
        """The store's low-stock levels

        The levels below which a bin counts as low, set per bin or per product.
        """
        levels = LowStockLevel.objects.filter(store=store_get(code=store))
        return Response(LowStockLevelSerializer(levels, many=True).data)

    @extend_schema(request=LEVELS, responses=LowStockLevelSerializer(many=True))
    def put(self, request: Request, store: str) -> Response:
        """Set or remove low-stock levels, per bin or per product (all or nothing)

        Sets levels per bin or per product (a level of null removes it). Every row is checked first; with any bad row
        nothing is written.
        """
        found = store_get(code=store)
        rows = request.data
        if not isinstance(rows, list) or not all(isinstance(row, dict) for row in rows):
            raise serializers.ValidationError({"levels": 'A JSON array of {"bin" or "sku", "units"}.'})
        try:
            services.low_levels_set(actor=self.actor, store=found, levels=rows)
        except services.StockRefused as rejected:
            raise _refused(rejected, what="list of levels", code="invalid_low_stock_levels") from rejected
        return Response(LowStockLevelSerializer(LowStockLevel.objects.filter(store=found), many=True).data)


class ShrinkItemSerializer(serializers.Serializer):
    ts = serializers.DateTimeField(
        help_text="Start of the local day (or of the price in force, if it changed that day)."
    )
    bin = serializers.CharField()
    fixture = serializers.CharField()
    sku = serializers.CharField()
    name = serializers.CharField(help_text="The product's name.")
    units = serializers.IntegerField(help_text="Units that left the bin that day and no cart line explains.")
    value = serializers.IntegerField(help_text="At the product's price in force then, in the currency's minor unit.")


class ShrinkReportSerializer(serializers.Serializer):
    items = ShrinkItemSerializer(many=True)
    units = serializers.IntegerField()
    value = serializers.IntegerField(help_text="Minor units.")
    currency = serializers.CharField()


def read_period(request: Request) -> tuple[datetime, datetime]:
    """`?from=&to=` (default: the 7 days up to now); a 400 naming what is wrong with them."""
    until = query_instant(request, "to") or timezone.now()
    since = query_instant(request, "from") or until - DEFAULT_PERIOD
    try:
        shrink.check_period(since=since, until=until)
    except shrink.PeriodError as wrong:
        raise serializers.ValidationError({"from": str(wrong)}) from wrong
    return since, until


DEFAULT_PERIOD = timedelta(days=7)
PERIOD = [
    OpenApiParameter("from", OpenApiTypes.DATETIME, description="Start, included (default: 7 days before `to`)."),
    OpenApiParameter("to", OpenApiTypes.DATETIME, description="End, excluded (default: now); at most 92 days."),
]


class StoreShrinkApi(TenantAPIView):
    pagination_class = None  # one report, not a page

    @extend_schema(parameters=PERIOD, responses=ShrinkReportSerializer)
    def get(self, request: Request, store: str) -> Response:
        """Shrink: units that left the shelves and no cart line explains

        Per local day, bin and product in the period: the units the scales (or, without one, the cameras) saw leave a
        bin, net of put-backs and restocks, less the units of cart lines of visits charged, owed or not yet decided,
        when positive; valued at the product's price in force then. A period whose start is not before its end, or
        longer than 92 days, is refused.
        """
        found = store_get(code=store)
        since, until = read_period(request)
        report = shrink.shrink_report(store=found, since=since, until=until)
        return Response(ShrinkReportSerializer(report).data)
