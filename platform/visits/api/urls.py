from django.urls import path

from visits.api import views

urlpatterns = [
    path("stores/<str:store>/visits", views.StoreVisitListApi.as_view(), name="store-visit-list"),
    path("stores/<str:store>/review-causes", views.StoreReviewCausesApi.as_view(), name="store-review-causes"),
    path("stores/<str:store>/risk-options", views.StoreRiskOptionsApi.as_view(), name="store-risk-options"),
    path("stores/<str:store>/visits/<str:session>", views.StoreVisitDetailApi.as_view(), name="store-visit-detail"),
]
