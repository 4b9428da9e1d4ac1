"""Shoppers' disputes through the licensee API (docs/api.md, "Shoppers' disputes")."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from core.api.errors import Conflict
from core.api.params import query_choice
from core.api.views import TenantAPIView
from disputes import selectors, services
from disputes.models import Dispute
from stores.selectors import store_get
from visits import selectors as visit_selectors


class DisputeLineInSerializer(serializers.Serializer):
    sku = serializers.CharField(max_length=64, help_text="A line of the receipt.")
    qty = serializers.IntegerField(min_value=1, help_text="Units contested, at most those charged and not refunded.")


class DisputeOpenSerializer(serializers.Serializer):
    lines = DisputeLineInSerializer(many=True)
    reason = serializers.ChoiceField(choices=Dispute.Reason.values)
    note = serializers.CharField(required=False, allow_blank=True, max_length=services.NOTE_LIMIT)


class DisputeLineSerializer(serializers.Serializer):
    sku = serializers.CharField()
    name = serializers.CharField(allow_null=True, help_text="The product's name on the receipt; null: not on it.")
    qty = serializers.IntegerField()
    amount = serializers.IntegerField(help_text="What those units cost with their tax, minor units.")


class DisputeDecisionSerializer(serializers.Serializer):
    by = serializers.ChoiceField(choices=Dispute.DecidedBy.values, help_text="Who decided: policy, person, deadline.")
    decided_by = serializers.CharField(allow_null=True, help_text="The person's login; null for the policy.")
    decided_at = serializers.DateTimeField()
    reason = serializers.CharField(help_text="Why, in words the shopper can be shown.")


class DisputeSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    store = serializers.CharField()
    session = serializers.CharField()
    status = serializers.ChoiceField(choices=Dispute.Status.values)
    reason = serializers.ChoiceField(choices=Dispute.Reason.values, help_text="The shopper's reason, as sent.")
    note = serializers.CharField(allow_blank=True)
    lines = DisputeLineSerializer(many=True)
    asked = serializers.IntegerField(help_text="What the disputed lines cost, minor units.")
    refund = serializers.IntegerField(help_text="What was refunded, minor units.")
    currency = serializers.CharField()
    created_at = serializers.DateTimeField()
    deadline = serializers.DateTimeField(allow_null=True, help_text="While in review: a person decides by then.")
    decision = DisputeDecisionSerializer(allow_null=True, help_text="null while in review.")


class VisitDisputeOpenApi(TenantAPIView):
    @extend_schema(request=DisputeOpenSerializer, responses={201: DisputeSerializer})
    def post(self, request: Request, store: str, session: str) -> Response:
        """Open a shopper's dispute of receipt lines

        A shopper contests lines of a visit's receipt. The store's policy decides at once: `refunded` (within the
        auto-refund limit, or lines the platform was unsure of), `rejected` with the reason (outside the dispute window,
        or a line not on the receipt), or `in_review` with a deadline for a person. 400 for more units than were charged
        and not refunded; 409 `already_disputed` for a line disputed before, `not_charged` for a visit with nothing
        charged.
        """
        found = store_get(code=store)
        visit = visit_selectors.visit_get(store=found, session=session)
        body = DisputeOpenSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            dispute = services.dispute_open(
                actor=self.actor,
                store=found,
                visit=visit,
                lines=[dict(line) for line in body.validated_data["lines"]],
                reason=body.validated_data["reason"],
                note=body.validated_data.get("note", ""),
            )
        except services.DisputeConflict as conflict:
            raise Conflict(str(conflict), code=conflict.code) from conflict
        return Response(
            selectors.dispute_json(selectors.dispute_get(dispute_id=dispute.pk)), status=status.HTTP_201_CREATED
        )


class StoreDisputeListApi(TenantAPIView):
    @extend_schema(
        parameters=[OpenApiParameter("status", str, enum=Dispute.Status.values)],
        responses=DisputeSerializer(many=True),
    )
    def get(self, request: Request, store: str) -> Response:
        """The store's disputes, newest first

        The store's shoppers' disputes, newest first, each with its lines and decision. Filter by `?status=`. Paged.
        """
        found = store_get(code=store)
        disputes = selectors.dispute_list(store=found, status=query_choice(request, "status", Dispute.Status.values))
        return self.paginated_response(
            request, queryset=disputes, rows=lambda page: [selectors.dispute_json(dispute) for dispute in page]
        )


class DisputeDetailApi(TenantAPIView):
    @extend_schema(responses=DisputeSerializer)
    def get(self, request: Request, dispute_id: int) -> Response:
        """One dispute, with its decision

        A dispute by its id: its lines, status, refund and decision (who, when and why).
        """
        return Response(selectors.dispute_json(selectors.dispute_get(dispute_id=dispute_id)))
