from django.urls import path

from billing.payments.api import views

urlpatterns = [
    path(
        "stores/<str:store>/entry-check", views.EntryCheckApi.as_view(), name="store-entry-check"
    ),  # first: asked at every gate, all day
    path("shoppers", views.ShopperListApi.as_view(), name="shopper-list"),
    path("shoppers/<int:shopper_id>", views.ShopperDetailApi.as_view(), name="shopper-detail"),
    path("shoppers/<int:shopper_id>/erase", views.ShopperEraseApi.as_view(), name="shopper-erase"),
]
