from django.urls import path

from disputes.api import views

urlpatterns = [
    path(
        "stores/<str:store>/visits/<str:session>/disputes",
        views.VisitDisputeOpenApi.as_view(),
        name="visit-dispute-open",
    ),
    path("stores/<str:store>/disputes", views.StoreDisputeListApi.as_view(), name="store-dispute-list"),
    path("disputes/<int:dispute_id>", views.DisputeDetailApi.as_view(), name="dispute-detail"),
]
