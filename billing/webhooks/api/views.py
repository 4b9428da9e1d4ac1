"""The tenant's webhook endpoints through the licensee API (docs/webhooks.md).

The signing secret is in the answer to the POST that creates an endpoint, and nowhere else in the API
(managers see it in the store admin, where they can also rotate it).
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from billing.webhooks import selectors, services
from billing.webhooks.models import EventType, WebhookEndpoint
from core.api.schema import QUOTA_EXCEEDED
from core.api.views import TenantAPIView, page_of
from tenants.audit import Actor
from tenants.models import AuditEntry


class WebhookEndpointOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    url = serializers.CharField()
    description = serializers.CharField()
    event_types = serializers.ListField(
        child=serializers.ChoiceField(choices=EventType.choices), help_text="Empty: every event type."
    )
    is_active = serializers.BooleanField()
    created_at = serializers.DateTimeField()


class WebhookEndpointCreatedSerializer(WebhookEndpointOutputSerializer):
    secret = serializers.CharField(help_text="The signing secret (whsec_…). Keep it on your server.")


class WebhookEndpointInputSerializer(serializers.Serializer):
    url = serializers.CharField(max_length=services.MAX_URL_LENGTH, help_text="https://… in production.")
    description = serializers.CharField(max_length=services.MAX_DESCRIPTION_LENGTH, required=False, default="")
    # Items checked by the service (one message naming the unknown types), not by a per-item ChoiceField.
    event_types = serializers.ListField(
        child=serializers.CharField(),
        required=False,
        default=list,
        help_text=f"The event types to receive ({', '.join(EventType.values)}); empty or absent: all of them.",
    )
    is_active = serializers.BooleanField(required=False, default=True)


class WebhookEndpointUpdateSerializer(serializers.Serializer):
    url = serializers.CharField(max_length=services.MAX_URL_LENGTH, required=False)
    description = serializers.CharField(max_length=services.MAX_DESCRIPTION_LENGTH, required=False, allow_blank=True)
    event_types = serializers.ListField(child=serializers.CharField(), required=False)
    is_active = serializers.BooleanField(required=False)


def _endpoint(endpoint_id: int) -> WebhookEndpoint:
    try:
        return selectors.endpoint_get(endpoint_id=endpoint_id)
    except WebhookEndpoint.DoesNotExist:
        raise exceptions.NotFound() from None


def _actor(request: Request) -> Actor:
    return Actor.for_request(request, source=AuditEntry.Source.API)


class WebhookEndpointListApi(TenantAPIView):
    @page_of(WebhookEndpointOutputSerializer)
    def get(self, request: Request) -> QuerySet[WebhookEndpoint]:
        """List the webhook endpoints

        The tenant's endpoints that receive signed event notifications, with their URL, event types and whether they are
        active; secrets are shown only at creation.
        """
        return selectors.endpoint_list()

    @extend_schema(
        request=WebhookEndpointInputSerializer,
        responses={201: WebhookEndpointCreatedSerializer, 409: QUOTA_EXCEEDED},
    )
    def post(self, request: Request) -> Response:
        """Register a webhook endpoint (the answer carries its signing secret)

        Registers an HTTPS endpoint for the listed event types (see `docs/webhooks.md`). The answer carries the secret
        used to sign deliveries, once. 409 `quota_exceeded` past the tenant's limit of endpoints.
        """
        payload = WebhookEndpointInputSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        endpoint = services.webhook_endpoint_create(actor=_actor(request), tenant=self.tenant, **payload.validated_data)
        body: dict[str, Any] = {
            **WebhookEndpointOutputSerializer(endpoint).data,
            "secret": services.signing_secret_of(endpoint),
        }
        return Response(body, status=status.HTTP_201_CREATED)


class WebhookEndpointDetailApi(TenantAPIView):
    @extend_schema(responses=WebhookEndpointOutputSerializer)
    def get(self, request: Request, endpoint_id: int) -> Response:
        """One webhook endpoint

        One of the tenant's endpoints, without its secret; an endpoint of another tenant is 404.
        """
        return Response(WebhookEndpointOutputSerializer(_endpoint(endpoint_id)).data)

    @extend_schema(request=WebhookEndpointUpdateSerializer, responses=WebhookEndpointOutputSerializer)
    def patch(self, request: Request, endpoint_id: int) -> Response:
        """Change a webhook endpoint (url, description, event types, active)

        Changes only the fields sent. Deactivating an endpoint stops new deliveries to it; reactivating resumes them.
        """
        endpoint = _endpoint(endpoint_id)
        payload = WebhookEndpointUpdateSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        endpoint = services.webhook_endpoint_update(actor=_actor(request), endpoint=endpoint, **payload.validated_data)
        return Response(WebhookEndpointOutputSerializer(endpoint).data)
