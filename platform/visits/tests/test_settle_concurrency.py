"""Two settling runs on one store share the work instead of waiting on each other's visits."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from django.db import connection, transaction

from core import tenancy
from stores.models import Store
from tenants.models import Tenant
from visits.models import Visit
from visits.settling import visits_settle

EXITED = datetime(2026, 3, 2, 9, tzinfo=UTC)


@pytest.mark.django_db(transaction=True)
def test_a_visit_another_run_holds_is_skipped_not_waited_for(
    make_store_with_layout: Callable[..., Store], tenant_a: Tenant
) -> None:
    store = make_store_with_layout(tenant_a)
    held, free = (
        Visit.unscoped.create(tenant=tenant_a, store=store, session=session, status="settling", exited_at=EXITED)
        for session in ("HELD", "FREE")
    )
    locked, release = threading.Event(), threading.Event()

    def other_run() -> None:
        with transaction.atomic():
            Visit.unscoped.select_for_update().get(pk=held.pk)
            locked.set()
            release.wait(timeout=30)
        connection.close()

    thread = threading.Thread(target=other_run)
    thread.start()
    assert locked.wait(timeout=10)
    try:
        with tenancy.tenant_scope(tenant_a.pk):
            settled = visits_settle(store=store, now=EXITED.replace(hour=12))
    finally:
        release.set()
        thread.join()

    assert [visit.session for visit in settled] == ["FREE"]
    assert Visit.unscoped.get(pk=held.pk).status == "settling"
    assert Visit.unscoped.get(pk=free.pk).status == "no_charge"
