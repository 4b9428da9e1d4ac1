"""Event streams and live pushes through the licensee API (docs/api.md, "Events")."""

from __future__ import annotations

from django.conf import settings
from django.db.models import QuerySet
from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import exceptions, serializers, status
from rest_framework.parsers import MultiPartParser
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api.errors import PayloadTooLarge
from core.api.schema import QUOTA_EXCEEDED
from core.api.views import TenantAPIView, page_of
from ingest import services
from ingest.models import EventStream, Rejection
from ingest.validation import SCHEMA_PATH
from stores.selectors import store_get, store_with_layout_versions

EVENT_SCHEMA = SCHEMA_PATH.read_bytes()


class EventSchemaApi(APIView):
    """The event stream's contract, public like the OpenAPI document: no key needed."""

    authentication_classes = []
    permission_classes = [AllowAny]
    throttle_classes = []

    @extend_schema(auth=[], responses={(200, "application/schema+json"): OpenApiTypes.OBJECT})
    def get(self, request: Request) -> HttpResponse:
        """The JSON Schema of a store event

        The JSON Schema (draft 2020-12) every line of an event stream and every pushed event must match: the
        machine-readable form of the event stream contract (types `session.started`, `session.ended`, `item.picked`,
        `item.returned`, `shelf.weight_changed`, `device.status`, and since v1.1 `id.checked` and `shelf.restocked`).
        The platform validates exactly this, then reads each event against the store's layout of its time.
        """
        return HttpResponse(EVENT_SCHEMA, content_type="application/schema+json")


class EventStreamOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    store = serializers.CharField(source="store.code")
    source = serializers.CharField()  # type: ignore[assignment]
    status = serializers.CharField()
    lines = serializers.IntegerField()
    accepted = serializers.IntegerField()
    duplicates = serializers.IntegerField()
    rejected = serializers.IntegerField()
    rejections_stored = serializers.IntegerField(
        help_text="Rejected lines listed with their line and reason (at most 10,000 a stream; the rest are counted)."
    )
    progress = serializers.FloatField()
    failure_reason = serializers.CharField()
    original_name = serializers.CharField()
    size_bytes = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)


class EventStreamAcceptedSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    status = serializers.CharField()
    url = serializers.CharField()


class RejectionOutputSerializer(serializers.Serializer):
    line = serializers.IntegerField()
    event_id = serializers.CharField(allow_blank=True)
    reason = serializers.CharField()


def _stream_url(request: Request, stream: EventStream) -> str:
    return request.build_absolute_uri(reverse("event-stream-detail", args=[stream.pk]))


class StoreEventStreamListApi(TenantAPIView):
    parser_classes = [MultiPartParser]

    @extend_schema(
        request={"multipart/form-data": inline_serializer("EventStreamUpload", {"file": serializers.FileField()})},
        responses={202: EventStreamAcceptedSerializer, 409: QUOTA_EXCEEDED},
    )
    def post(self, request: Request, store: str) -> Response:
        """Upload an NDJSON (or gzip) file of events; processed in the background

        Accepts a file of one event per line (the event stream format, see `docs/event-stream.md` and
        `/api/v1/schema/event-stream.json`), gzip-compressed or not, and answers 202 with the stream to poll. Events are
        validated against the store's layout of their time; duplicates (same id) are counted, not stored twice.
        """
        found = store_get(code=store)
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
        if declared > settings.INGEST_MAX_UPLOAD_BYTES:
            raise PayloadTooLarge(f"Uploads are limited to {settings.INGEST_MAX_UPLOAD_BYTES} bytes; split the file.")
        upload = request.FILES.get("file")
        if upload is None:
            raise exceptions.ValidationError(
                {"file": "Send the NDJSON (or .ndjson.gz) file as multipart field 'file'."}
            )
        stream = services.stream_upload(actor=self.actor, store=found, upload=upload)
        body = {"id": stream.pk, "status": stream.status, "url": _stream_url(request, stream)}
        return Response(body, status=status.HTTP_202_ACCEPTED)

    @page_of(EventStreamOutputSerializer)
    def get(self, request: Request, store: str) -> QuerySet[EventStream]:
        """The store's event streams, newest first

        Uploads and live pushes of the store, newest first, with their status and counts. Paged.
        """
        return EventStream.objects.filter(store=store_get(code=store)).select_related("store")


class EventStreamDetailApi(TenantAPIView):
    @extend_schema(responses=EventStreamOutputSerializer)
    def get(self, request: Request, stream_id: int) -> Response:
        """An event stream's status, counts and progress

        An uploaded stream as it is processed: its status, bytes read, lines accepted, duplicate and rejected, and why
        it failed if it did. Poll it until `done` or `failed`.
        """
        stream = get_object_or_404(EventStream.objects.select_related("store"), pk=stream_id)
        return Response(EventStreamOutputSerializer(stream).data)


class EventStreamRejectionListApi(TenantAPIView):
    @page_of(RejectionOutputSerializer)
    def get(self, request: Request, stream_id: int) -> QuerySet[Rejection]:
        """The lines a stream refused, by line

        Each refused line of a stream with its line number, the event id when it had one and the reason, in line order.
        Paged.
        """
        stream = get_object_or_404(EventStream.objects.all(), pk=stream_id)
        return Rejection.objects.filter(stream=stream).order_by("line", "pk")


class PushRejectionSerializer(serializers.Serializer):
    index = serializers.IntegerField()
    event_id = serializers.CharField(allow_null=True)
    reason = serializers.CharField()


class PushResultSerializer(serializers.Serializer):
    accepted = serializers.IntegerField()
    duplicates = serializers.IntegerField()
    rejected = PushRejectionSerializer(many=True)
    stream = serializers.IntegerField(help_text="The push as an event stream, finished in the background.")
    url = serializers.URLField(
        help_text="The stream's status: `done` once finished; events of a session never started are "
        "rejected then, and listed at its rejections."
    )


class StoreEventPushApi(TenantAPIView):
    @extend_schema(request={"application/json": OpenApiTypes.OBJECT}, responses={202: PushResultSerializer})
    def post(self, request: Request, store: str) -> Response:
        """Push up to 1,000 events live; answered with what was accepted, duplicate or rejected

        Answered once the events are validated and stored; what follows from them (visits, carts, payments) runs in the
        background and never delays the answer.
        """
        found, versions = store_with_layout_versions(code=store)
        result = services.events_push(actor=self.actor, store=found, events=request.data, layout_versions=versions)
        body = {
            "accepted": result.accepted,
            "duplicates": result.duplicates,
            "rejected": result.rejected,
            "stream": result.stream.pk,
            "url": _stream_url(request, result.stream),
        }
        return Response(body, status=status.HTTP_202_ACCEPTED)
