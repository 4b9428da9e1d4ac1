"""The demo's steps, on the embedded fast path: seeded people, stores, a processed day of events."""

from __future__ import annotations

import re
from io import StringIO

import pytest
from django.core.management import call_command
from django.test import Client

from billing.invoicing.models import Invoice
from billing.payments.models import Receipt
from config.celery import app
from ingest.models import Event, EventStream
from stores.models import Bin, Store
from tenants.models import Tenant
from visits.models import Visit


@pytest.fixture
def in_process_tasks(settings):
    previous = app.conf.task_always_eager
    settings.CELERY_TASK_ALWAYS_EAGER = True
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = previous


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("in_process_tasks", "localstripe")
def test_demo_seeds_and_runs_a_day_of_events() -> None:
    out = StringIO()
    call_command("demo", visits=25, stdout=out)
    printed = out.getvalue()
    assert set(Tenant.objects.values_list("slug", flat=True)) >= {"northwind", "southgate"}
    stores = Store.unscoped.filter(code__in=["NW-001", "SG-001"])
    assert stores.count() == 2
    for store in stores:
        assert Bin.unscoped.filter(layout__store=store).count() >= 100
        streams = EventStream.unscoped.filter(store=store)
        assert {s.status for s in streams} == {"done"}
        assert sum(s.accepted for s in streams) > 0
        visits = Visit.unscoped.filter(store=store)
        entries = Event.unscoped.filter(store=store, type="session.started")
        assert entries.exclude(payload__has_key="group").count() == 25, "25 visits, and the companions of groups"
        assert visits.count() == entries.count()
        assert not visits.filter(status__in=["open", "settling"]).exists()
        assert visits.filter(status="charged", payment_status="succeeded").exists()
        assert visits.filter(status="payment_failed", payment_failure__icontains="declined").exists()
    assert Visit.unscoped.filter(store__code="NW-001", refunded__gt=0).count() == 1
    receipt = re.search(r"NW-001 a charged receipt: visit (\S+),", printed)
    assert receipt is not None
    charged = Visit.unscoped.get(store__code="NW-001", session=receipt.group(1))
    assert charged.payment_status == "succeeded" and charged.paid == charged.total > 0
    assert Receipt.unscoped.filter(visit=charged).exists()
    assert "payment failed" in printed and "refunded" in printed
    invoices = Invoice.unscoped.filter(tenant__slug__in=["northwind", "southgate"], status="finalised")
    assert invoices.count() == 2 and all(invoice.number and invoice.total > 0 for invoice in invoices)
    assert all(invoice.number in printed for invoice in invoices)
    assert "review queue" in printed
    key = re.search(r"(oa_[0-9a-f]{8}_\S+)", printed)
    assert key is not None
    response = Client().get("/api/v1/stores", HTTP_AUTHORIZATION=f"Bearer {key.group(1)}")
    assert [s["code"] for s in response.json()["results"]] == ["NW-001"]
    assert Client().login(username="manager@northwind.test", password="open-aisle-demo")
    before = EventStream.unscoped.filter(store__code="NW-001").count()
    call_command("demo", visits=5, stdout=StringIO())
    assert EventStream.unscoped.filter(store__code="NW-001").count() > before
