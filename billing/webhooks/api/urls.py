from django.urls import path

from billing.webhooks.api import views

urlpatterns = [
    path("webhook-endpoints", views.WebhookEndpointListApi.as_view(), name="webhook-endpoint-list"),
    path(
        "webhook-endpoints/<int:endpoint_id>", views.WebhookEndpointDetailApi.as_view(), name="webhook-endpoint-detail"
    ),
]
