from django.urls import path

from service_levels.api import views

urlpatterns = [
    path("service-levels", views.TenantServiceLevelsApi.as_view(), name="service-levels"),
    path("stores/<str:store>/service-levels", views.StoreServiceLevelsApi.as_view(), name="store-service-levels"),
]
