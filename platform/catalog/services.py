"""Writes on the catalog: importing products and prices (now, or queued for a worker).

An import is all-or-nothing unless `partial=True`: with any bad row nothing is
written and every problem is reported. A changed price or tax rate adds a new
price version effective from the time of the import, or from a past instant
(`effective_from`, to back-fill a past day; a version starting at exactly that
instant is replaced). Earlier versions stay, for the visits of their time; other
changed fields update the product; identical rows are counted as unchanged.
The work is set-based (see `catalog.bulk`): one query per few thousand SKUs to
read what exists, bulk writes for what changes.
Every import is recorded as a `CatalogImport` and audited once, with its counts.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import IO, Any, Final

import orjson
from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.cache import cache
from django.core.files.base import ContentFile, File
from django.db import connection, transaction
from django.utils import timezone

from catalog import bulk
from catalog.importing import (
    MAX_ERRORS_LISTED,
    CatalogFileError,
    CatalogRow,
    JsonSource,
    ParsedCatalog,
    RowError,
    RowSource,
    open_source,
    parse_catalog,
    size_to_read,
)
from catalog.models import CatalogImport, Product
from tenants.audit import Actor, audit_record
from tenants.models import ApiKey, AuditAction, Tenant

logger = logging.getLogger(__name__)

PARSE_SHARE: Final = 0.5  # progress 0..0.5 reading and checking the file, 0.5..1 writing
PROGRESS_CACHE_SECONDS: Final = 3600
FINISHED_PROGRESS_CACHE_SECONDS: Final = 60
MAX_STORED_FILENAME: Final = 100


@dataclass(frozen=True)
class ImportResult:
    """What an import did: the body of `POST /catalog/import` (docs/api.md, "Catalog")."""

    import_id: int
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)

    def as_body(self) -> dict[str, Any]:
        return {"created": self.created, "updated": self.updated, "unchanged": self.unchanged, "errors": self.errors}

    @classmethod
    def of(cls, record: CatalogImport) -> ImportResult:
        return cls(
            import_id=record.pk,
            created=record.created_count,
            updated=record.updated_count,
            unchanged=record.unchanged_count,
            errors=list(record.errors),
        )


class CatalogImportRefused(Exception):
    """Nothing was written: the file cannot be read, or rows are bad and `partial` is off."""

    def __init__(self, result: ImportResult, *, message: str, code: str) -> None:
        super().__init__(message)
        self.result = result
        self.message = message
        self.code = code


def effective_from_problem(*, effective_from: datetime, now: datetime | None = None) -> str | None:
    """Why prices cannot apply from this instant (it needs a time zone and must not be in the future), or None."""
    if timezone.is_naive(effective_from):
        return "Give the instant with its offset, e.g. 2026-11-21T06:00:00Z."
    if effective_from > (now or timezone.now()):
        return "Prices cannot apply from a future instant: import them when they take effect."
    return None


def _check_effective_from(effective_from: datetime | None) -> None:
    problem = effective_from and effective_from_problem(effective_from=effective_from)
    if problem:
        raise ValueError(f"effective_from: {problem}")


class _Progress:
    """Reports an import's progress: to the cache as it goes (visible inside the write transaction too),
    and to the row every tenth of the way while no transaction is open."""

    def __init__(self, record: CatalogImport) -> None:
        self.record = record
        self._cached = 0.0
        self._stored = record.progress

    def __call__(self, fraction: float) -> None:
        fraction = max(0.0, min(1.0, fraction))
        if fraction - self._cached >= 0.01 or fraction == 1.0:
            cache.set(self.record.progress_cache_key, fraction, PROGRESS_CACHE_SECONDS)
            self._cached = fraction
        if fraction - self._stored >= 0.1 and not connection.in_atomic_block:
            CatalogImport.unscoped.filter(pk=self.record.pk).update(progress=fraction)
            self._stored = fraction


def _report_finished(record: CatalogImport) -> None:
    """Report 1.0 for a while after the import's transaction commits (the row says so from then on).

    Not a delete: a reader that loaded the row just before the commit would then fall back to the row's
    stale progress, and the bar would jump back from 85 % to 50 %.
    """
    cache.set(record.progress_cache_key, 1.0, FINISHED_PROGRESS_CACHE_SECONDS)


# --- entry points ----------------------------------------------------------------------------------


def catalog_import(
    *,
    actor: Actor,
    tenant: Tenant,
    file: IO[bytes] | None = None,
    filename: str = "",
    rows: Any = None,
    partial: bool = False,
    currency: str | None = None,
    effective_from: datetime | None = None,
    created_by: AbstractBaseUser | None = None,
) -> ImportResult:
    """Import a catalog file (`file`, CSV or XLSX) or a JSON array of row objects (`rows`) now.

    New prices apply from `effective_from` (a past instant; default: now).
    Returns the counts (and, with `partial=True`, the bad rows that were left out).
    Raises `CatalogImportRefused` — with every error — when nothing was written.
    """
    if (file is None) == (rows is None):
        raise TypeError("catalog_import takes either file= or rows=")
    _check_effective_from(effective_from)
    record = _new_record(
        actor=actor,
        tenant=tenant,
        status=CatalogImport.Status.PROCESSING,
        filename=filename,
        size_bytes=_size_of(file) if file is not None else len(orjson.dumps(rows)),
        partial=partial,
        currency=currency,
        effective_from=effective_from,
        created_by=created_by,
    )
    record.save()

    def make_source() -> RowSource:
        if file is not None:
            return open_source(file, filename=filename)
        return JsonSource(rows)

    return _run(record=record, actor=actor, make_source=make_source)


def catalog_import_is_large(*, file: IO[bytes], filename: str) -> bool:
    """Whether an upload is to be imported in the background: what it holds — an XLSX workbook once unzipped (a
    779 kB one can hold 228 MB) — is more than CATALOG_IMPORT_BACKGROUND_BYTES. A file that cannot be read is
    refused at once by the import itself."""
    try:
        return size_to_read(file, filename=filename) > settings.CATALOG_IMPORT_BACKGROUND_BYTES
    except CatalogFileError:
        return False


@transaction.atomic
def catalog_import_enqueue(
    *,
    actor: Actor,
    tenant: Tenant,
    file: IO[bytes] | None = None,
    filename: str = "",
    rows: Any = None,
    partial: bool = False,
    currency: str | None = None,
    effective_from: datetime | None = None,
    created_by: AbstractBaseUser | None = None,
) -> CatalogImport:
    """Store the file, record a queued import and hand it to a worker once this transaction commits."""
    from catalog import tasks

    if (file is None) == (rows is None):
        raise TypeError("catalog_import_enqueue takes either file= or rows=")
    _check_effective_from(effective_from)
    record = _new_record(
        actor=actor,
        tenant=tenant,
        status=CatalogImport.Status.QUEUED,
        filename=filename,
        size_bytes=0,
        partial=partial,
        currency=currency,
        effective_from=effective_from,
        created_by=created_by,
    )
    if file is not None:
        content: File[Any] = File(file, name=_stored_name(filename, default="catalog.csv"))
    else:
        content = ContentFile(orjson.dumps(rows), name="rows.json")
    record.size_bytes = content.size or 0
    record.file.save(content.name or "catalog", content, save=False)
    record.save()
    import_id, tenant_id = record.pk, tenant.pk
    transaction.on_commit(lambda: tasks.catalog_import_run.delay(import_id=import_id, tenant_id=tenant_id))
    return record


def catalog_import_process(*, import_id: int) -> CatalogImport | None:
    """Run a queued import (the worker's side). Safe to run twice: a finished import is left as it is.

    Runs inside the tenant's scope (the task enters it); an import of another tenant is not found.
    """
    record = CatalogImport.objects.filter(pk=import_id).select_related("tenant", "created_by", "api_key").first()
    if record is None:
        logger.warning("catalog import %s not found (deleted, or another tenant's)", import_id)
        return None
    if record.is_finished:
        return record
    CatalogImport.unscoped.filter(pk=record.pk, status=CatalogImport.Status.QUEUED).update(
        status=CatalogImport.Status.PROCESSING, started_at=timezone.now()
    )
    record.status = CatalogImport.Status.PROCESSING
    actor = Actor(source=record.source, user=record.created_by, api_key=record.api_key, request_id=record.request_id)

    def make_source() -> RowSource:
        if not record.file:
            raise CatalogFileError("The uploaded file is missing from storage.")
        stream = record.file.open("rb")
        return open_source(stream, filename=record.file.name)

    try:
        _run(record=record, actor=actor, make_source=make_source)
    except CatalogImportRefused:
        pass  # recorded as failed, with its errors
    finally:
        if record.file:
            record.file.close()
    record.refresh_from_db()
    return record


# --- the work --------------------------------------------------------------------------------------


def _size_of(file: IO[bytes]) -> int:
    size = getattr(file, "size", None)
    if isinstance(size, int):
        return size
    try:
        position = file.tell()
        end = file.seek(0, os.SEEK_END)
        file.seek(position)
    except (OSError, ValueError):
        return 0
    return int(end)


def _stored_name(filename: str, *, default: str) -> str:
    name = os.path.basename(filename.replace("\\", "/")).strip() or default
    stem, extension = os.path.splitext(name)
    return f"{stem[: MAX_STORED_FILENAME - len(extension)]}{extension[:10]}"


def _new_record(
    *,
    actor: Actor,
    tenant: Tenant,
    status: str,
    filename: str,
    size_bytes: int,
    partial: bool,
    currency: str | None,
    effective_from: datetime | None,
    created_by: AbstractBaseUser | None,
) -> CatalogImport:
    user = created_by if created_by is not None else actor.user
    return CatalogImport(
        tenant=tenant,
        status=status,
        filename=os.path.basename(filename.replace("\\", "/"))[:255],
        size_bytes=size_bytes,
        partial=partial,
        default_currency=currency or "",
        effective_from=effective_from,
        source=actor.source,
        created_by_id=user.pk if isinstance(user, AbstractBaseUser) else None,
        api_key=actor.api_key if isinstance(actor.api_key, ApiKey) else None,
        request_id=actor.request_id[:64],
        started_at=timezone.now() if status == CatalogImport.Status.PROCESSING else None,
    )


def _run(*, record: CatalogImport, actor: Actor, make_source: Callable[[], RowSource]) -> ImportResult:
    try:
        return _import(record=record, actor=actor, make_source=make_source)
    except CatalogImportRefused:
        raise
    except Exception:
        logger.exception("catalog import %s failed", record.pk)
        CatalogImport.unscoped.filter(pk=record.pk).exclude(status=CatalogImport.Status.DONE).update(
            status=CatalogImport.Status.FAILED,
            message="The import stopped on an unexpected error; nothing was imported. It has been logged.",
            finished_at=timezone.now(),
        )
        raise


def _import(*, record: CatalogImport, actor: Actor, make_source: Callable[[], RowSource]) -> ImportResult:
    tenant = record.tenant
    progress = _Progress(record)
    try:
        source = make_source()
        parsed = parse_catalog(
            source,
            default_currency=record.default_currency or None,
            on_progress=lambda fraction: progress(fraction * PARSE_SHARE),
            stop_after_errors=None if record.partial else MAX_ERRORS_LISTED,
        )
    except CatalogFileError as error:
        _refuse(
            record,
            actor=actor,
            errors=[RowError(error.row, error.message).as_dict()],
            bad_rows=1,
            message=error.message,
            rows=0,
        )
        raise CatalogImportRefused(
            ImportResult.of(record), message=f"The file cannot be imported: {error.message}", code="invalid_file"
        ) from error
    errors = _listed(parsed)
    total_rows = len(parsed.rows) + parsed.bad_rows
    if parsed.bad_rows and not record.partial:
        bad = parsed.bad_rows
        read = "" if parsed.stopped_at is None else f" (reading stopped at row {parsed.stopped_at:,})"
        message = (
            f"{bad} of {total_rows} row{'s' if total_rows != 1 else ''}{read} {'have' if bad != 1 else 'has'} "
            "errors; nothing was imported. Fix them, or import again keeping the good rows (partial=true)."
        )
        _refuse(record, actor=actor, errors=errors, bad_rows=bad, message=message, rows=total_rows)
        raise CatalogImportRefused(ImportResult.of(record), message=message, code="import_refused")
    progress(PARSE_SHARE)

    with transaction.atomic():
        # One import at a time per tenant (a second waits here), without blocking the tenant's other writes:
        # FOR NO KEY UPDATE does not conflict with the key-share locks that inserts referencing the tenant take.
        list(Tenant.objects.select_for_update(no_key=True).filter(pk=tenant.pk).values_list("pk", flat=True))
        locked = CatalogImport.unscoped.select_for_update().get(pk=record.pk)
        if locked.status == CatalogImport.Status.DONE:  # a second delivery of the same task
            return ImportResult.of(locked)
        at = timezone.now()
        prices_from = record.effective_from or at
        created, updated, unchanged = _apply(
            tenant_id=tenant.pk,
            rows=parsed.rows,
            at=at,
            prices_from=prices_from,
            on_progress=lambda fraction: progress(PARSE_SHARE + fraction * (1 - PARSE_SHARE)),
        )
        _finish(
            record,
            status=CatalogImport.Status.DONE,
            rows=total_rows,
            counts=(created, updated, unchanged),
            errors=errors,
            bad_rows=parsed.bad_rows,
            message="",
        )
        audit_record(
            actor=actor,
            tenant_id=tenant.pk,
            action=AuditAction.CATALOG_IMPORTED,
            obj=record,
            changes={
                "file": record.filename,
                "rows": total_rows,
                "created": created,
                "updated": updated,
                "unchanged": unchanged,
                "bad_rows": parsed.bad_rows,
                "partial": record.partial,
                "effective_from": prices_from.isoformat(),
            },
        )
    _report_finished(record)
    return ImportResult.of(record)


def _finish(
    record: CatalogImport,
    *,
    status: str,
    rows: int,
    counts: tuple[int, int, int],
    errors: list[dict[str, Any]],
    bad_rows: int,
    message: str,
) -> None:
    record.status = status
    record.rows = rows
    record.created_count, record.updated_count, record.unchanged_count = counts
    record.error_count = bad_rows
    record.errors = errors
    record.message = message
    record.progress = 1.0
    record.finished_at = timezone.now()
    record.save(
        update_fields=[
            "status",
            "rows",
            "created_count",
            "updated_count",
            "unchanged_count",
            "error_count",
            "errors",
            "message",
            "progress",
            "finished_at",
        ]
    )


def _listed(parsed: ParsedCatalog) -> list[dict[str, Any]]:
    """The problems to list: the first MAX_ERRORS_LISTED, then a line (row null) saying how many more there are."""
    listed = [error.as_dict() for error in parsed.errors]
    more = parsed.bad_rows - len(listed)
    if more > 0:
        listed.append(
            RowError(None, f"…and {more:,} more row{'s' if more != 1 else ''} with errors, not listed").as_dict()
        )
    return listed


def _refuse(
    record: CatalogImport, *, actor: Actor, errors: list[dict[str, Any]], bad_rows: int, message: str, rows: int
) -> None:
    with transaction.atomic():
        _finish(
            record,
            status=CatalogImport.Status.FAILED,
            rows=rows,
            counts=(0, 0, 0),
            errors=errors,
            bad_rows=bad_rows,
            message=message,
        )
        audit_record(
            actor=actor,
            tenant_id=record.tenant_id,
            action=AuditAction.CATALOG_IMPORT_REFUSED,
            obj=record,
            changes={"file": record.filename, "rows": rows, "bad_rows": record.error_count, "reason": message[:500]},
        )
    _report_finished(record)


def _apply(
    *,
    tenant_id: int,
    rows: Sequence[CatalogRow],
    at: datetime,
    prices_from: datetime,
    on_progress: Callable[[float], None],
) -> tuple[int, int, int]:
    """Write the difference between `rows` and what the tenant has, new prices in force from `prices_from`.
    Returns (created, updated, unchanged)."""
    existing = bulk.load_products(tenant_id=tenant_id, skus=[row.sku for row in rows])
    prices = bulk.load_current_prices(
        tenant_id=tenant_id, product_ids=[e.id for e in existing.values()], at=prices_from
    )
    on_progress(0.2)

    new_products: list[bulk.NewProduct] = []
    new_product_rows: list[CatalogRow] = []
    changes: list[bulk.ProductChange] = []
    new_prices: list[bulk.NewPrice] = []
    replaced: list[tuple[int, str]] = []
    updated = unchanged = 0
    for row in rows:
        product = existing.get(row.sku)
        if product is None:
            new_product_rows.append(row)
            new_products.append(
                bulk.NewProduct(
                    sku=row.sku,
                    name=row.name,
                    barcodes=list(row.barcodes or ()),
                    unit_weight_g=row.weight_g,
                    weight_tolerance_g=row.weight_tolerance_g,
                    image_url=row.image_url or "",
                    status=row.status or Product.Status.ACTIVE,
                    min_age=row.min_age or None,
                )
            )
            continue
        change = bulk.ProductChange(
            id=product.id,
            name=row.name,
            barcodes=list(row.barcodes) if row.barcodes is not None else product.barcodes,
            unit_weight_g=row.weight_g,
            weight_tolerance_g=row.weight_tolerance_g,
            image_url=row.image_url if row.image_url is not None else product.image_url,
            status=row.status or product.status,
            min_age=(row.min_age or None) if row.min_age is not None else product.min_age,
        )
        fields_changed = any(getattr(change, name) != getattr(product, name) for name in bulk.UPDATED_FIELDS)
        price = prices.get((product.id, row.currency))
        price_changed = price is None or price.unit_price != row.unit_price or price.tax_rate != row.tax_rate
        if fields_changed:
            changes.append(change)
        if price_changed:
            new_prices.append(bulk.NewPrice(product.id, row.currency, row.unit_price, row.tax_rate))
            if price is not None and price.effective_from == prices_from:
                replaced.append((product.id, row.currency))
        if fields_changed or price_changed:
            updated += 1
        else:
            unchanged += 1

    ids = bulk.insert_products(tenant_id=tenant_id, products=new_products, at=at)
    on_progress(0.5)
    bulk.update_products(tenant_id=tenant_id, changes=changes, at=at)
    on_progress(0.7)
    new_prices.extend(
        bulk.NewPrice(ids[row.sku], row.currency, row.unit_price, row.tax_rate) for row in new_product_rows
    )
    bulk.delete_prices(tenant_id=tenant_id, keys=replaced, effective_from=prices_from)
    bulk.insert_prices(tenant_id=tenant_id, prices=new_prices, effective_from=prices_from, at=at)
    on_progress(1.0)
    return len(new_products), updated, unchanged
