"""Background catalog work: thin, id-based, idempotent tasks that run in their tenant's scope."""

from __future__ import annotations

from celery import shared_task

from catalog import services
from core.tenancy import in_tenant_scope


@shared_task(name="catalog.import_run", acks_late=True, ignore_result=True)
@in_tenant_scope
def catalog_import_run(*, import_id: int, tenant_id: int) -> None:
    """Process a queued catalog import. Running it again for a finished import does nothing."""
    services.catalog_import_process(import_id=import_id)
