"""The catalog through the licensee API (docs/api.md, "Catalog"): import, imports' progress, products."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.conf import settings
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import exceptions, serializers, status
from rest_framework.parsers import MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response

from catalog import selectors, services
from catalog.importing import MAX_ERRORS_LISTED, STATUSES
from catalog.models import CatalogImport, Product, ProductPrice
from core.api.errors import DetailedError, PayloadTooLarge
from core.api.params import INSTANT_HELP, parse_instant
from core.api.parsers import OrjsonParser
from core.api.schema import error_response
from core.api.views import TenantAPIView

# --- import --------------------------------------------------------------------------------------


class CatalogImportRowErrorSerializer(serializers.Serializer):
    row = serializers.IntegerField(
        allow_null=True,
        help_text="The row as a spreadsheet shows it (header = 1); for a JSON array, the item's position from 1. "
        "Null for a problem with the file as a whole.",
    )
    message = serializers.CharField()


ERRORS_HELP = f"The problems, by row: the first {MAX_ERRORS_LISTED:,}, then one (row null) saying how many more."


class CatalogImportResultSerializer(serializers.Serializer):
    created = serializers.IntegerField()
    updated = serializers.IntegerField()
    unchanged = serializers.IntegerField()
    errors = CatalogImportRowErrorSerializer(many=True, help_text=ERRORS_HELP)  # type: ignore[assignment]


class CatalogImportAcceptedSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    status = serializers.ChoiceField(choices=CatalogImport.Status.choices)
    url = serializers.URLField(help_text="Where to follow it: GET it until the status is done or failed.")


class CatalogImportUploadSerializer(serializers.Serializer):
    file = serializers.FileField(help_text="CSV (UTF-8) or XLSX with the catalog columns in the first row.")


class CatalogImportRowInputSerializer(serializers.Serializer):
    sku = serializers.CharField(max_length=64)
    name = serializers.CharField(max_length=200)
    price = serializers.CharField(help_text="Major units, e.g. 3.49 (a string or a number).")
    currency = serializers.CharField(help_text="ISO 4217, e.g. USD.")
    tax_rate = serializers.CharField(help_text="A percentage, e.g. 8.25.")
    weight_g = serializers.CharField(help_text="Grams per unit.")
    barcode = serializers.CharField(required=False, allow_blank=True, help_text="GTIN(s), several separated by |.")
    weight_tolerance_g = serializers.CharField(required=False, allow_blank=True, help_text="Default max(2, 5 %).")
    image_url = serializers.URLField(required=False, allow_blank=True)
    status = serializers.ChoiceField(required=False, choices=STATUSES)
    min_age = serializers.CharField(
        required=False,
        allow_blank=True,
        help_text="Age-restricted product: the age an ID check must prove (18, 21); empty when anyone may buy it.",
    )


class CatalogImportQuerySerializer(serializers.Serializer):
    partial = serializers.BooleanField(required=False, default=False)  # type: ignore[assignment]
    background = serializers.BooleanField(required=False, default=False)
    currency = serializers.CharField(required=False, min_length=3, max_length=3)
    effective_from = serializers.CharField(required=False)

    def validate_effective_from(self, raw: str) -> datetime:
        try:
            value = parse_instant(raw)
        except ValueError:
            raise serializers.ValidationError(INSTANT_HELP) from None
        problem = services.effective_from_problem(effective_from=value)
        if problem:
            raise serializers.ValidationError(problem)
        return value


class CatalogImportStatusSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    status = serializers.ChoiceField(choices=CatalogImport.Status.choices)
    progress = serializers.FloatField(help_text="0 to 1.")
    filename = serializers.CharField()
    partial = serializers.BooleanField()  # type: ignore[assignment]
    rows = serializers.IntegerField(help_text="Product rows in the file (known once it has been read).")
    created = serializers.IntegerField(source="created_count")
    updated = serializers.IntegerField(source="updated_count")
    unchanged = serializers.IntegerField(source="unchanged_count")
    errors = CatalogImportRowErrorSerializer(many=True, help_text=ERRORS_HELP)  # type: ignore[assignment]
    bad_rows = serializers.IntegerField(source="error_count", help_text="Rows with a problem, all of them.")
    message = serializers.CharField(help_text="Why it failed, when it did.")
    created_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)


class CatalogImportRefusedError(DetailedError):
    status_code = status.HTTP_400_BAD_REQUEST
    default_code = "import_refused"


IMPORT_PARAMETERS = [
    OpenApiParameter("partial", OpenApiTypes.BOOL, description="Keep the good rows when some are bad."),
    OpenApiParameter(
        "background",
        OpenApiTypes.BOOL,
        description="Run in the background and answer 202 at once (files above the size limit always do).",
    ),
    OpenApiParameter("currency", OpenApiTypes.STR, description="The currency of rows that name none."),
    OpenApiParameter(
        "effective_from",
        OpenApiTypes.DATETIME,
        description="The past instant (RFC 3339, with an offset) the file's new prices apply from, to back-fill a "
        "past day; default: the time of the import. A version starting at exactly that instant is replaced. A "
        "product's first price applies to earlier events anyway.",
    ),
]


class CatalogImportApi(TenantAPIView):
    parser_classes = [MultiPartParser, OrjsonParser]

    @extend_schema(
        parameters=IMPORT_PARAMETERS,
        request={
            "multipart/form-data": CatalogImportUploadSerializer,
            "application/json": CatalogImportRowInputSerializer(many=True),
        },
        responses={
            200: CatalogImportResultSerializer,
            202: CatalogImportAcceptedSerializer,
            400: error_response(
                "Nothing was imported: `import_refused` with every bad row in `details` (created, updated, "
                "unchanged, errors), `invalid_file`, or `invalid` for a bad parameter or body."
            ),
        },
    )
    def post(self, request: Request) -> Response:
        """Import the catalog (CSV, XLSX or a JSON array of rows)

        All-or-nothing unless `?partial=true`: with any bad row nothing is written and every bad row is listed (400). A
        changed price or tax rate applies from the time of the import on, or from `?effective_from`. Large files — by
        what they hold: an XLSX workbook once unzipped — and `?background=true` are processed in the background: 202
        with the import's URL.
        """
        query = CatalogImportQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        options = query.validated_data
        source: dict[str, Any]
        background: bool
        if request.content_type.startswith("multipart/"):
            upload = request.FILES.get("file")
            if upload is None:
                raise exceptions.ValidationError({"file": ["Send the catalog as the multipart field 'file'."]})
            size = upload.size or 0
            if size > settings.CATALOG_IMPORT_MAX_BYTES:
                raise PayloadTooLarge(f"The file is larger than {settings.CATALOG_IMPORT_MAX_BYTES} bytes.")
            source = {"file": upload, "filename": upload.name or ""}
            background = services.catalog_import_is_large(file=upload, filename=upload.name or "")
        else:
            if not isinstance(request.data, list):
                raise exceptions.ValidationError(
                    {"non_field_errors": ["Send a JSON array of row objects, or a CSV/XLSX file as 'file'."]}
                )
            source = {"rows": request.data}
            background = int(request.headers.get("Content-Length") or 0) > settings.CATALOG_IMPORT_BACKGROUND_BYTES
        actor = self.actor
        common = {"actor": actor, "tenant": self.tenant, "partial": options["partial"]}
        common["currency"] = options["currency"].upper() if options.get("currency") else None
        common["effective_from"] = options.get("effective_from")

        if options["background"] or background:
            record = services.catalog_import_enqueue(**common, **source)
            record.refresh_from_db(fields=["status"])
            url = request.build_absolute_uri(reverse("catalog-import-detail", args=[record.pk]))
            body = {"id": record.pk, "status": record.status, "url": url}
            return Response(body, status=status.HTTP_202_ACCEPTED, headers={"Location": url})
        try:
            result = services.catalog_import(**common, **source)
        except services.CatalogImportRefused as refused:
            raise CatalogImportRefusedError(
                refused.message, details=refused.result.as_body(), code=refused.code
            ) from refused
        return Response(result.as_body())


class CatalogImportDetailApi(TenantAPIView):
    @extend_schema(responses=CatalogImportStatusSerializer)
    def get(self, request: Request, import_id: int) -> Response:
        """One catalog import: status, progress, result

        The state of an import sent to the background (202 from `POST /catalog/import`): queued, running, done or
        failed, rows read so far, and once done the same result a direct import answers, bad rows included.
        """
        record = selectors.catalog_import_get(import_id=import_id)
        data = CatalogImportStatusSerializer(record).data
        data["progress"] = selectors.catalog_import_progress(record=record)
        return Response(data)


# --- products ------------------------------------------------------------------------------------


class CatalogPriceSerializer(serializers.Serializer):
    currency = serializers.CharField()
    unit_price = serializers.IntegerField(help_text="In the currency's minor unit.")
    tax_rate = serializers.DecimalField(max_digits=7, decimal_places=4, help_text="A percentage.")
    effective_from = serializers.DateTimeField()


class CatalogProductSerializer(serializers.Serializer):
    sku = serializers.CharField()
    name = serializers.CharField()
    status = serializers.ChoiceField(choices=Product.Status.choices)
    barcodes = serializers.ListField(child=serializers.CharField())
    weight_g = serializers.DecimalField(source="unit_weight_g", max_digits=10, decimal_places=2)
    weight_tolerance_g = serializers.DecimalField(max_digits=10, decimal_places=2)
    image_url = serializers.CharField()
    min_age = serializers.IntegerField(
        allow_null=True, help_text="The age an ID check must prove for this product (null: not age-restricted)."
    )
    prices = serializers.SerializerMethodField(help_text="The price in force now, one per currency.")
    updated_at = serializers.DateTimeField()

    @extend_schema_field(CatalogPriceSerializer(many=True))
    def get_prices(self, product: Product) -> Any:
        current: dict[int, list[ProductPrice]] = self.context.get("prices", {})
        return CatalogPriceSerializer(current.get(product.pk, []), many=True).data


class CatalogProductDetailSerializer(CatalogProductSerializer):
    created_at = serializers.DateTimeField()
    price_history = serializers.SerializerMethodField(help_text="Every price version, by currency, newest first.")

    @extend_schema_field(CatalogPriceSerializer(many=True))
    def get_price_history(self, product: Product) -> Any:
        return CatalogPriceSerializer(selectors.price_history(product=product), many=True).data


class CatalogProductPageSerializer(serializers.Serializer):
    count = serializers.IntegerField()
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    results = CatalogProductSerializer(many=True)


class CatalogProductFilterSerializer(serializers.Serializer):
    sku = serializers.CharField(required=False)
    q = serializers.CharField(required=False, max_length=200)
    status = serializers.ChoiceField(required=False, choices=Product.Status.choices)
    barcode = serializers.CharField(required=False, max_length=14)


class ProductListApi(TenantAPIView):
    @extend_schema(
        operation_id="products_list",
        parameters=[
            OpenApiParameter("sku", OpenApiTypes.STR, description="Exactly this SKU."),
            OpenApiParameter("q", OpenApiTypes.STR, description="Name or SKU contains (any case)."),
            OpenApiParameter("status", OpenApiTypes.STR, enum=list(Product.Status.values)),
            OpenApiParameter("barcode", OpenApiTypes.STR, description="Products carrying this GTIN."),
            OpenApiParameter("page", OpenApiTypes.INT),
            OpenApiParameter("page_size", OpenApiTypes.INT, description="At most 500."),
        ],
        responses=CatalogProductPageSerializer,
    )
    def get(self, request: Request) -> Response:
        """List products with their current prices

        The tenant's catalog: each product's SKU, name, unit weight and tolerance, and its price and tax rate in force
        now in each currency. Paged; `?q=` searches name and SKU, `?sku=`, `?status=` and `?barcode=` filter.
        """
        filters = CatalogProductFilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        products = selectors.product_search(**filters.validated_data)
        return self.paginated_response(request, queryset=products, rows=self._with_prices)

    def _with_prices(self, page: list[Product]) -> Any:
        context = {"prices": selectors.current_prices_of(products=page)}
        return CatalogProductSerializer(page, many=True, context=context).data


class ProductDetailApi(TenantAPIView):
    @extend_schema(operation_id="products_retrieve", responses=CatalogProductDetailSerializer)
    def get(self, request: Request, sku: str) -> Response:
        """One product with its price history

        A product by SKU with every price version it has had, each with the instant it applies from, so a past day's
        receipt can be explained.
        """
        product = selectors.product_get(sku=sku)
        context = {"prices": selectors.current_prices_of(products=[product])}
        return Response(CatalogProductDetailSerializer(product, context=context).data)
