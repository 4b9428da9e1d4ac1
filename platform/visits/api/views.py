"""Visits and their receipts, where a store's reviews come from, and what another overcharge risk would do, through the
licensee API (docs/api.md, "Visits and receipts", "Where reviews come from" and "What another risk would do")."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import exceptions, serializers
from rest_framework.request import Request
from rest_framework.response import Response

from core.api.params import query_choice, query_count, query_instant
from core.api.views import TenantAPIView
from stores.selectors import store_get
from visits import lifecycle, selectors
from visits.reasons import REASON_CHOICES

REVIEW_CAUSES_DAYS = (1, 90)  # the periods `review-causes` answers for, in days


class ReceiptLineSerializer(serializers.Serializer):
    sku = serializers.CharField()
    name = serializers.CharField()
    qty = serializers.IntegerField()
    unit_price = serializers.IntegerField()
    amount = serializers.IntegerField()
    tax = serializers.IntegerField()
    confidence = serializers.FloatField()
    events = serializers.ListField(child=serializers.CharField())
    taken_by = serializers.ListField(
        child=serializers.CharField(),
        help_text="On a group's receipt, the sessions of the members who took the line; empty for a shopper alone.",
    )


class ReceiptGroupMemberSerializer(serializers.Serializer):
    session = serializers.CharField()
    entered_at = serializers.DateTimeField(allow_null=True)
    exited_at = serializers.DateTimeField(allow_null=True)


class ReceiptGroupSerializer(serializers.Serializer):
    payer = serializers.CharField(help_text="The payer's session: the visit this receipt is on.")
    members = ReceiptGroupMemberSerializer(many=True, help_text="The companions who came in on the payer's card.")


class ReceiptPaymentSerializer(serializers.Serializer):
    status = serializers.CharField(allow_null=True)
    reference = serializers.CharField(allow_null=True)
    charged = serializers.IntegerField()
    refunded = serializers.IntegerField()
    balance_due = serializers.IntegerField(help_text="Owed after a failed payment; 0 otherwise.")
    failure = serializers.CharField(allow_null=True, help_text="Stripe's reason for the last failure.")


class ReceiptReasonSerializer(serializers.Serializer):
    code = serializers.ChoiceField(choices=REASON_CHOICES, help_text="What kind of doubt: a stable name.")
    text = serializers.CharField(help_text="The reason in words, as in `reasons`.")
    event_ids = serializers.ListField(child=serializers.CharField(), help_text="The events it arose from.")
    sku = serializers.CharField(allow_null=True, help_text="The product it is about.")
    bin = serializers.CharField(allow_null=True, help_text="The bin it is about.")
    session = serializers.CharField(
        allow_null=True, help_text="The visit it names: whose age went unchecked, the payer a companion named."
    )
    qty = serializers.IntegerField(allow_null=True, help_text="How many units moved, where a scale counted them.")


class ReceiptReviewSerializer(serializers.Serializer):
    reasons = serializers.ListField(child=serializers.CharField())
    reason_details = ReceiptReasonSerializer(many=True, help_text="The same reasons, in order, as data.")
    decision = serializers.CharField(allow_null=True)
    decided_by = serializers.CharField(allow_null=True)
    decided_at = serializers.DateTimeField(allow_null=True)


class ReceiptSerializer(serializers.Serializer):
    session = serializers.CharField()
    shopper = serializers.IntegerField(
        allow_null=True,
        help_text="The id of the registered shopper whose entry token opened the gate (GET /shoppers/{id}); "
        "null when the token is no registered shopper's. The token itself is never stored.",
    )
    status = serializers.ChoiceField(
        choices=[(status.value, status.label) for status in lifecycle.API_STATUSES],
        help_text="`charged`: the cart was decided for a charge; `payment.status` says whether Stripe has collected it "
        "(`succeeded`) or not yet.",
    )
    entered_at = serializers.DateTimeField(allow_null=True)
    exited_at = serializers.DateTimeField(allow_null=True)
    lines = ReceiptLineSerializer(many=True)
    group = ReceiptGroupSerializer(
        allow_null=True, help_text="A group's payer and companions (v1.1 groups); null for a shopper alone."
    )
    subtotal = serializers.IntegerField()
    tax = serializers.IntegerField()
    total = serializers.IntegerField()
    currency = serializers.CharField()
    payment = ReceiptPaymentSerializer()
    review = ReceiptReviewSerializer(allow_null=True)
    version = serializers.IntegerField()


class StoreVisitListApi(TenantAPIView):
    @extend_schema(
        parameters=[
            OpenApiParameter("status", str, enum=[status.value for status in lifecycle.API_STATUSES]),
            OpenApiParameter("since", OpenApiTypes.DATETIME, description="Visits that entered at or after this."),
            OpenApiParameter("stream", int, description="Visits with events in this event stream."),
        ],
        responses=ReceiptSerializer(many=True),
    )
    def get(self, request: Request, store: str) -> Response:
        """The store's visits as receipts, newest first

        The store's shopper visits, newest first, each as its receipt: status, lines with quantities and prices, totals
        in the store's currency, and what was charged. Filter by `?status=`, `?since=` (entered at or after) and
        `?stream=`. Paged. A group (v1.1) is one receipt, under its payer's session; its companions are not listed on
        their own.
        """
        found = store_get(code=store)
        params = request.query_params
        status = query_choice(request, "status", lifecycle.API_STATUSES)
        since = query_instant(request, "since") if params.get("since") else None
        stream = params.get("stream")
        if stream is not None and not stream.isdigit():
            raise exceptions.ValidationError({"stream": "An event stream id."})
        visits = selectors.visit_list(
            store=found, status=status, since=since, stream_id=int(stream) if stream is not None else None
        )
        return self.paginated_response(
            request, queryset=visits, rows=lambda page: [selectors.receipt(visit) for visit in page]
        )


class StoreVisitDetailApi(TenantAPIView):
    @extend_schema(responses=ReceiptSerializer)
    def get(self, request: Request, store: str, session: str) -> Response:
        """One visit's receipt

        A visit by its session id: its lines, totals, status, review reasons when a person must decide, and its
        payments. A companion's session (v1.1 groups) answers with its group's receipt, the payer's, which says which
        member took each line.
        """
        visit = selectors.visit_get(store=store_get(code=store), session=session)
        return Response(selectors.receipt(visit))


class BinReviewCausesSerializer(serializers.Serializer):
    bin = serializers.CharField()
    sku = serializers.CharField(
        allow_null=True, help_text="The bin's product in the current layout, else the one the reasons named."
    )
    product = serializers.CharField(
        allow_null=True, help_text="The product's name; null when the bin is not in the current layout."
    )
    has_scale = serializers.BooleanField(
        allow_null=True, help_text="A scale under the bin in the current layout; null when the bin is not in it."
    )
    visits = serializers.IntegerField(help_text="Visits sent to a person whose reasons name the bin (each once).")
    share = serializers.FloatField(help_text="`visits` as a share (0–1) of `reviewed_visits`, to 4 places.")
    reasons = serializers.DictField(
        child=serializers.IntegerField(),
        help_text="Per reason `code` (as in a receipt's `reason_details`), the visits it named the bin in; most first.",
    )
    main_reason = serializers.ChoiceField(choices=REASON_CHOICES, help_text="The code that named the bin most.")


class ReviewCausesSerializer(serializers.Serializer):
    store = serializers.CharField()
    since = serializers.DateTimeField(help_text="Visits that exited at or after this: `days` before now.")
    reviewed_visits = serializers.IntegerField(help_text="The store's visits since then sent to a person.")
    visits_naming_a_bin_without_a_scale = serializers.IntegerField(
        help_text="Of them, those whose reasons name a bin without a scale in the current layout."
    )
    visits_naming_no_bin = serializers.IntegerField(help_text="Of them, those whose reasons name no bin.")
    bins = BinReviewCausesSerializer(many=True, help_text="Every bin the reasons named, most visits first.")
    advice = serializers.CharField(
        allow_null=True,
        help_text="Where a scale would help, in one sentence for people, when bins without one send a large share "
        "of the reviews; null otherwise.",
    )


class StoreReviewCausesApi(TenantAPIView):
    @extend_schema(
        parameters=[
            OpenApiParameter(
                "days",
                {
                    "type": "integer",
                    "minimum": REVIEW_CAUSES_DAYS[0],
                    "maximum": REVIEW_CAUSES_DAYS[1],
                    "default": selectors.REVIEW_CAUSES_PERIOD.days,
                },
                description="The period: visits that exited in the last this many days.",
            )
        ],
        responses=ReviewCausesSerializer,
    )
    def get(self, request: Request, store: str) -> Response:
        """Which bins send the store's visits to a person

        Of the store's visits that exited in the last `days` days (default 30, at most 90) and were sent to a person:
        per bin their review reasons name, how many visits, whether the bin has a scale in the current layout, its
        product, the reasons by code, and where a scale would help. Every bin, most visits first; not paged.
        """
        found = store_get(code=store)
        lowest, highest = REVIEW_CAUSES_DAYS
        days = query_count(request, "days", default=selectors.REVIEW_CAUSES_PERIOD.days, lowest=lowest, highest=highest)
        since = timezone.now() - timedelta(days=days)
        causes = selectors.review_causes_by_bin(store=found, since=since)
        return Response(
            {
                "store": found.code,
                "since": since.isoformat(),
                "reviewed_visits": causes.reviewed,
                "visits_naming_a_bin_without_a_scale": causes.without_scale,
                "visits_naming_no_bin": causes.naming_no_bin,
                "bins": [_bin_causes(row) for row in causes.bins],
                "advice": selectors.scale_advice(causes) or None,
            }
        )


def _bin_causes(row: selectors.BinReviewCauses) -> dict[str, Any]:
    """One bin of `review-causes`: its reasons by code, most visits first (`main_reason` first)."""
    in_layout = row.has_scale is not None
    return {
        "bin": row.bin,
        "sku": row.sku or None,
        "product": row.product if in_layout else None,
        "has_scale": row.has_scale,
        "visits": row.visits,
        "share": round(row.share, 4),
        "reasons": {code.value: visits for code, visits in row.reasons_most_first},
        "main_reason": row.main_reason.value,
    }


class RiskOptionSerializer(serializers.Serializer):
    overcharge_risk = serializers.FloatField(help_text="The setting: at most this share (0–1) of visits overcharged.")
    charge_limit = serializers.FloatField(help_text="The highest visit risk it charges without a person.")
    sent_for_risk_share = serializers.FloatField(
        help_text="Share (0–1) of the recent visits whose risk is over that limit: a person is asked about them."
    )
    expected_overcharge_share = serializers.FloatField(
        help_text="Share (0–1) of the recent visits expected overcharged: those charged, each as likely overcharged "
        "as the store's reviews and disputes showed visits of its risk to be."
    )
    current = serializers.BooleanField(help_text="Whether this is the store's own setting.")


class RiskOptionsSerializer(serializers.Serializer):
    store = serializers.CharField()
    overcharge_risk = serializers.FloatField(help_text="The store's own setting.")
    calibration = serializers.IntegerField(
        allow_null=True, help_text="The number of the store's latest calibration; null before its first."
    )
    visits = serializers.IntegerField(
        help_text="How many of the store's latest visits the options are drawn from: the risks its latest calibration "
        "read them at, or before it has drawn any, those settling gave them (0: none settled yet)."
    )
    options = RiskOptionSerializer(many=True, help_text="The usual settings and the store's own, lowest first.")


class StoreRiskOptionsApi(TenantAPIView):
    @extend_schema(responses=RiskOptionsSerializer)
    def get(self, request: Request, store: str) -> Response:
        """What another overcharge risk would do

        For the store's own `overcharge_risk` and the usual settings (0.1 %, 0.25 %, 0.5 %, 1 %, 2 %): the charge limit
        each gives, the share of the store's recent visits it would send to a person for their risk, and the share it
        expects overcharged. What a licensee weighs before it changes the setting (`PATCH /stores/{store}`); a visit
        sent to a person for another reason (an ID check, an item no camera saw) goes at any setting.
        """
        found = store_get(code=store)
        latest = selectors.calibration_latest(store=found)
        options = selectors.risk_options(store=found, latest=latest)
        return Response(
            {
                "store": found.code,
                "overcharge_risk": options.risk,
                "calibration": latest.number if latest is not None else None,
                "visits": options.visits,
                "options": [
                    {
                        "overcharge_risk": option.risk,
                        "charge_limit": round(option.charge_limit, 6),
                        "sent_for_risk_share": option.sent_for_risk,
                        "expected_overcharge_share": option.expected_overcharged,
                        "current": option.risk == options.risk,
                    }
                    for option in options.options
                ],
            }
        )
