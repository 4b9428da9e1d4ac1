from django.urls import path

from ingest.api import views

urlpatterns = [
    path("stores/<str:store>/event-streams", views.StoreEventStreamListApi.as_view(), name="store-event-streams"),
    path("stores/<str:store>/events", views.StoreEventPushApi.as_view(), name="store-event-push"),
    path("event-streams/<int:stream_id>", views.EventStreamDetailApi.as_view(), name="event-stream-detail"),
    path(
        "event-streams/<int:stream_id>/rejections",
        views.EventStreamRejectionListApi.as_view(),
        name="event-stream-rejections",
    ),
]
