from django.contrib.auth import views as auth_views
from django.urls import URLPattern, URLResolver, include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView
from rest_framework.permissions import AllowAny

from billing.payments.api.views import stripe_webhook
from core import health, landing, metrics
from core.admin_sites import licensee_site, ops_site
from ingest.api.views import EventSchemaApi

public = {"authentication_classes": [], "permission_classes": [AllowAny], "throttle_classes": []}

api_v1: list[URLPattern | URLResolver] = [
    # First the calls a store makes all day long, entry checks and live pushes: Django tries the patterns in order,
    # and walking thirty others before them cost an entry check 66 µs against 28 (~5 % of its CPU). No pattern of one
    # app matches a path of another's.
    path("", include("billing.payments.api.urls")),
    path("", include("ingest.api.urls")),
    path("", include("tenants.api.urls")),
    path("", include("stores.api.urls")),
    path("", include("catalog.api.urls")),
    path("", include("visits.api.urls")),
    path("", include("stock.api.urls")),
    path("", include("service_levels.api.urls")),
    path("", include("disputes.api.urls")),
    path("", include("billing.webhooks.api.urls")),
    path("schema/event-stream.json", EventSchemaApi.as_view(), name="event-stream-schema"),
    path("schema/", SpectacularAPIView.as_view(**public), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="schema", **public), name="api-docs"),
    path("redoc/", SpectacularRedocView.as_view(url_name="schema", **public), name="api-redoc"),
]

urlpatterns = [
    path("api/v1/", include(api_v1)),  # first: the entry checks and pushes that stores send all day (see above)
    path("", landing.landing, name="landing"),
    path("favicon.ico", landing.favicon, name="favicon"),
    path("docs/<slug:name>.md", landing.doc, name="doc"),
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("metrics", metrics.metrics_view, name="metrics"),
    path("stripe/webhook/<slug:tenant_slug>", stripe_webhook, name="stripe-webhook"),
    path("ops/", ops_site.urls),
    path("admin/", licensee_site.urls),
    path(
        "accounts/reset/<uidb64>/<token>/",
        auth_views.PasswordResetConfirmView.as_view(success_url="/accounts/reset/done/"),
        name="password_reset_confirm",
    ),
    path("accounts/reset/done/", auth_views.PasswordResetCompleteView.as_view(), name="password_reset_complete"),
]

handler404 = "core.api.errors.not_found"
handler500 = "core.api.errors.server_error"
