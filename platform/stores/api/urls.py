from django.urls import path

from stores.api import views

urlpatterns = [
    path("stores", views.StoreListApi.as_view(), name="store-list"),
    path("stores/<str:store>", views.StoreDetailApi.as_view(), name="store-detail"),
    path("stores/<str:store>/layout", views.StoreLayoutApi.as_view(), name="store-layout"),
    path("stores/<str:store>/layouts", views.StoreLayoutVersionsApi.as_view(), name="store-layout-versions"),
    path("stores/<str:store>/devices", views.StoreDeviceListApi.as_view(), name="store-device-list"),
]
