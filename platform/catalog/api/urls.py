from django.urls import path

from catalog.api import views

urlpatterns = [
    path("catalog/import", views.CatalogImportApi.as_view(), name="catalog-import"),
    path("catalog/imports/<int:import_id>", views.CatalogImportDetailApi.as_view(), name="catalog-import-detail"),
    path("products", views.ProductListApi.as_view(), name="product-list"),
    path("products/<str:sku>", views.ProductDetailApi.as_view(), name="product-detail"),
]
