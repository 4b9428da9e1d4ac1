from django.urls import path

from stock.api import views

urlpatterns = [
    path("stores/<str:store>/stock", views.StoreStockApi.as_view(), name="store-stock"),
    path("stores/<str:store>/shrink", views.StoreShrinkApi.as_view(), name="store-shrink"),
    path("stores/<str:store>/stock/levels", views.StoreStockLevelsApi.as_view(), name="store-stock-levels"),
]
