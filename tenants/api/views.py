"""The tenant's own account through the API: who am I, API keys, audit log."""

from __future__ import annotations

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from core.api.schema import QUOTA_EXCEEDED
from core.api.views import TenantAPIView, page_of
from tenants import selectors, services
from tenants.audit import Actor
from tenants.models import ApiKey, AuditAction, AuditEntry


class TenantOutputSerializer(serializers.Serializer):
    slug = serializers.CharField()
    name = serializers.CharField()
    status = serializers.CharField()
    created_at = serializers.DateTimeField()


class TenantDetailApi(TenantAPIView):
    @extend_schema(responses=TenantOutputSerializer)
    def get(self, request: Request) -> Response:
        """The tenant this API key belongs to

        The tenant of the calling key: its name, slug and status. A simple way to check a key works.
        """
        return Response(TenantOutputSerializer(self.tenant).data)


class ApiKeyOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    prefix = serializers.CharField(source="display_prefix")
    created_at = serializers.DateTimeField()
    last_used_at = serializers.DateTimeField(allow_null=True)
    revoked_at = serializers.DateTimeField(allow_null=True)


class ApiKeyInputSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100)


class ApiKeyIssuedSerializer(ApiKeyOutputSerializer):
    key = serializers.CharField(help_text="The secret key. Shown this once; store it now.")


class ApiKeyListApi(TenantAPIView):
    @page_of(ApiKeyOutputSerializer)
    def get(self, request: Request) -> QuerySet[ApiKey]:
        """List the tenant's API keys

        Every key of the tenant, live and revoked: its name, prefix, when it was issued, last used and revoked. Secrets
        are never shown again after issue.
        """
        return selectors.api_key_list()

    @extend_schema(request=ApiKeyInputSerializer, responses={201: ApiKeyIssuedSerializer, 409: QUOTA_EXCEEDED})
    def post(self, request: Request) -> Response:
        """Issue a new API key

        Issues a key for the tenant of the calling key. The answer carries the secret once; store it, as only its prefix
        is kept readable. Refused with 409 `quota_exceeded` past the tenant's limit of live keys.
        """
        payload = ApiKeyInputSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        issued = services.api_key_issue(
            actor=Actor.for_request(request, source=AuditEntry.Source.API),
            tenant=self.tenant,
            name=payload.validated_data["name"],
        )
        body = {**ApiKeyOutputSerializer(issued.api_key).data, "key": issued.key}
        return Response(body, status=status.HTTP_201_CREATED)


class ApiKeyDetailApi(TenantAPIView):
    @extend_schema(responses=ApiKeyOutputSerializer)
    def get(self, request: Request, key_id: int) -> Response:
        """One API key

        One of the tenant's keys by id, without its secret; a key of another tenant is 404.
        """
        return Response(ApiKeyOutputSerializer(selectors.api_key_get(key_id=key_id)).data)

    @extend_schema(responses={200: ApiKeyOutputSerializer})
    def delete(self, request: Request, key_id: int) -> Response:
        """Revoke an API key (it stops working at once)

        Revokes the key: the next call made with it is 401. Revoking a revoked key changes nothing. A key of another
        tenant is 404.
        """
        api_key = services.api_key_revoke(
            actor=Actor.for_request(request, source=AuditEntry.Source.API),
            api_key=selectors.api_key_get(key_id=key_id),
        )
        return Response(ApiKeyOutputSerializer(api_key).data)


class AuditLogApi(TenantAPIView):
    class OutputSerializer(serializers.Serializer):
        at = serializers.DateTimeField()
        source = serializers.CharField()  # type: ignore[assignment]
        actor = serializers.CharField(source="actor_label")
        action = serializers.ChoiceField(choices=AuditAction.choices)
        object_type = serializers.CharField()
        object_id = serializers.CharField()
        object_repr = serializers.CharField()
        changes = serializers.JSONField()

    @page_of(OutputSerializer)
    def get(self, request: Request) -> QuerySet[AuditEntry]:
        """The tenant's audit log, newest first

        Who changed what in the tenant — through the API, the store admin or OpenAisle's operators — with the request id
        it came with. Paged.
        """
        return selectors.audit_entry_list()
