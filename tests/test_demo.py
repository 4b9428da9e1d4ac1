"""The demo: its steps on the embedded fast path (seeded people, stores, a processed day, a refund, this month's
invoices of both licensees, one short screen), a second run adding a day, and SIGTERM stopping all it started."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from io import StringIO
from pathlib import Path
from zoneinfo import ZoneInfo

import psutil
import pytest
import requests
from django.conf import settings as django_settings
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.utils import timezone

from billing.invoicing.models import ExchangeRate, Invoice, InvoiceLine
from billing.payments.models import PaymentAttempt, Receipt
from catalog.models import CatalogImport, ProductPrice
from config.celery import app
from console.management.commands import demo as demo_command
from core import tenancy
from core.ports import free_port
from disputes.models import Dispute
from ingest.models import Event, EventStream
from stock.models import LowStockLevel, StockCount
from stores.health import store_device_health
from stores.models import Bin, Store
from tenants.models import Tenant
from visits.models import ReviewDecision, StoreCalibration, Visit

PROJECT_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def in_process_tasks(settings):
    previous = app.conf.task_always_eager
    settings.CELERY_TASK_ALWAYS_EAGER = True
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = previous


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("in_process_tasks", "localstripe")
def test_demo_seeds_runs_a_day_and_shows_one_screen(settings, tmp_path: Path, monkeypatch) -> None:
    settings.VAR_DIR = tmp_path
    out = StringIO()
    call_command("demo", visits=60, stdout=out)
    printed = out.getvalue()
    assert set(Tenant.objects.values_list("slug", flat=True)) >= {"northwind", "southgate"}
    stores = Store.unscoped.filter(code__in=["NW-001", "SG-001"])
    assert stores.count() == 2
    for store in stores:
        assert Bin.unscoped.filter(layout__store=store).count() >= 100
        streams = EventStream.unscoped.filter(store=store)
        assert {s.status for s in streams} == {"done"}
        visits = Visit.unscoped.filter(store=store)
        entries = Event.unscoped.filter(store=store, type="session.started")
        assert entries.exclude(payload__has_key="group").count() == 60, "60 visits, and the companions of groups"
        assert visits.count() == entries.count()
        assert not visits.filter(status__in=["open", "settling"]).exists()
        assert visits.filter(status="charged", payment_status="succeeded").exists()
        assert not visits.filter(review_reasons__icontains="no price").exists(), "priced by the back-filled catalog"
    # The catalog went in through the import, its prices back-filled from the start of the year.
    assert set(ProductPrice.unscoped.values_list("effective_from", flat=True)) == {datetime(2026, 1, 1, tzinfo=UTC)}
    assert CatalogImport.unscoped.filter(effective_from=datetime(2026, 1, 1, tzinfo=UTC)).count() == 2
    refund = re.search(r"A refund +NW-001 visit (\S+): (\$\d+\.\d\d) USD back", printed)
    assert refund is not None, printed
    refunded = Visit.unscoped.get(store__code="NW-001", session=refund.group(1))
    assert f"${refunded.refunded / 100:.2f}" == refund.group(2)
    damaged = PaymentAttempt.unscoped.filter(visit=refunded, reason_code="damaged", state="succeeded")
    assert damaged.count() == 1 and damaged.get().amount == refunded.refunded

    # Most of the first store's review queue decided by its manager as the video shows, a few left to try; the store
    # learnt its calibration from those decisions, and the screen says where to see it.
    review = re.search(r"· review +NW-001: (\d+) of yesterday's (\d+) visits in review decided by its manager", printed)
    assert review is not None, printed
    decided, waiting = int(review.group(1)), int(review.group(2))
    assert 0 < decided < waiting, review.group(0)
    assert waiting - decided == min(demo_command.LEFT_TO_REVIEW, (waiting + 1) // 2)
    assert ReviewDecision.unscoped.filter(visit__store__code="NW-001").count() == decided
    learnt = StoreCalibration.unscoped.get(store__code="NW-001")
    assert learnt.reviewed_visits == decided and learnt.created_by == "manager@northwind.test"
    page = f"/admin/visits/storecalibration/store/{learnt.store_id}/"
    assert re.search(rf"Calibration +NW-001: learnt from {decided} reviewed visits; .* → \S+{page}", printed), printed
    # Where those reviews came from: the calibration page's advice on scales, or the bin that sent the most.
    causes = re.search(rf"Reviews +NW-001: (.*) → \S+{page}#review-causes", printed)
    assert causes is not None, printed
    said = causes.group(1)
    assert said.startswith("Bins without a scale sent ") or re.match(r"\d+ visits sent to a person, the most", said)

    receipt = re.search(r"A receipt +NW-001 visit (\S+), paid (\$\d+\.\d\d) USD", printed)
    assert receipt is not None, printed
    charged = Visit.unscoped.get(store__code="NW-001", session=receipt.group(1))
    assert charged.payment_status == "succeeded" and charged.paid == charged.total > 0
    assert Receipt.unscoped.filter(visit=charged).exists()
    assert "A refund" in printed and "review queue" in printed

    month = timezone.now().date().replace(day=1)
    assert ExchangeRate.objects.filter(month=month, base="EUR", quote="USD").exists()
    invoices = Invoice.unscoped.filter(tenant__slug__in=["northwind", "southgate"], period_start=month)
    assert invoices.count() == 2, "the EUR licensee is billed too"
    for invoice in invoices:
        billed = re.search(rf"Invoice +{invoice.tenant.name}, .*: \$[\d,.]+ USD for (\d+) visits", printed)
        assert billed is not None and int(billed.group(1)) > 0, printed
        assert invoice.total > 0

    # The shelves: every bin counted at opening, levels at a quarter of each bin's capacity, the staff's restocks, the
    # bins low now and yesterday's shrink, with where to read them.
    nw = stores.get(code="NW-001")
    (opening,) = set(StockCount.unscoped.filter(store=nw).values_list("counted_at", flat=True))
    assert opening.astimezone(ZoneInfo(nw.timezone)).hour == 8
    assert StockCount.unscoped.filter(store=nw).count() == Bin.unscoped.filter(layout__store=nw).count()
    assert LowStockLevel.unscoped.filter(store=nw).count() == StockCount.unscoped.filter(store=nw).count()
    stock = re.search(
        r"· stock +NW-001: (\d+) bins counted at 08:00, (\d+) restocks, (\d+) bins low now, shrink", printed
    )
    assert stock is not None and int(stock.group(3)) > 0, printed
    assert int(stock.group(2)) == Event.unscoped.filter(store=nw, type="shelf.restocked").count()
    for page in ("", "shrink/?from=", "heat-map/?from="):
        assert f"/admin/stock/stockcount/store/{nw.pk}/{page}" in printed, printed
    # A dispute the store's policy decided at once, the plan's promises and the month's service levels.
    dispute = Dispute.unscoped.get(store=nw)
    assert re.search(
        rf"A dispute +visit {dispute.visit.session}, \$\d+\.\d\d USD: .* → "
        rf"\S+/admin/disputes/dispute/{dispute.pk}/change/",
        printed,
    ), printed
    if dispute.decided_by == "policy":
        assert "refunded by the store's policy" in printed and dispute.refund > 0
    assert "Promised      ≥ 90.00 % settled without a person — credit 10.00 %" in printed, printed
    assert re.search(r"· service +Northwind Grocers: \d+ visits, [\d.]+ % settled without a person", printed), printed
    assert "/admin/service_levels/servicelevel/" in printed and "/ops/service_levels/servicelevel/" in printed
    credits = InvoiceLine.unscoped.filter(invoice__in=invoices, kind="service_credit")
    assert ("credit -$" in printed) == credits.exists(), printed

    # The stores are open now: their devices report as a live store's do, and keep reporting while it serves.
    for store in stores:
        with tenancy.tenant_scope(store.tenant_id):
            healths = store_device_health(store=store)
        assert healths and {h.key for h in healths.values()} == {"online"}, store.code
        assert re.search(rf"· devices +.*{store.code}: all {len(healths)} online", printed), printed
    pushes = EventStream.unscoped.filter(source="push")
    before = pushes.count()
    monkeypatch.setattr(demo_command, "DEVICE_REPORT_SECONDS", 0.2)
    with demo_command._devices_keep_reporting(demo_command.Demo(stores=list(stores))):
        deadline = time.monotonic() + 30
        while pushes.count() < before + 2 and time.monotonic() < deadline:
            time.sleep(0.2)
    assert pushes.count() >= before + 2, "each store reported again while serving"

    # One screen: the details (Stripe calls, e-mails, logs) are in the log, not here.
    assert len(printed.splitlines()) < 48, printed
    assert "Stripe API" not in printed and "Subject:" not in printed
    log = (tmp_path / "demo.log").read_text()
    # The migrations' report and the tasks' log lines are written here by the demo's own process whatever the
    # suite did before (the Stripe SDK's lines go through the `stripe` logger, which the suite's other tests may
    # have quieted by the time this one runs).
    assert "Operations to perform" in log and '"tenant_id"' in log

    key = re.search(r"(oa_[0-9a-f]{8}_\S+)", printed)
    assert key is not None
    response = Client().get("/api/v1/stores", HTTP_AUTHORIZATION=f"Bearer {key.group(1)}")
    assert [s["code"] for s in response.json()["results"]] == ["NW-001"]
    assert Client().login(username="manager@northwind.test", password="open-aisle-demo")

    before = Visit.unscoped.filter(store__code="NW-001").count()
    call_command("demo", visits=5, stdout=StringIO())
    assert Visit.unscoped.filter(store__code="NW-001").count() > before, "a second run adds visits, not duplicates"


@pytest.mark.django_db(transaction=True)
def test_sigterm_stops_the_demo_and_everything_it_started(tmp_path: Path) -> None:
    """The demo as `make demo` runs it, against the test database: serving, then SIGTERM."""
    web, stripe = free_port(), free_port()
    database = connection.settings_dict
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{database['USER']}@{database['HOST']}:{database['PORT']}/{database['NAME']}",
        "VAR_DIR": str(tmp_path),
        "PYTHONPATH": f"{PROJECT_ROOT}:{PROJECT_ROOT / 'platform'}",
    }
    env.pop("STRIPE_API_BASE", None)
    for name in ("S3_BUCKET", "S3_ENDPOINT_URL"):  # with the services, the demo starts its own S3 stand-in
        env.pop(name, None)
    env.pop("PUBLIC_BASE_URL", None)  # the addresses it prints are where it serves, unless told otherwise
    if django_settings.CELERY_TASK_ALWAYS_EAGER:
        env.pop("REDIS_URL", None)
    command = ["manage.py", "demo", "--visits", "3", "--serve", f"127.0.0.1:{web}", "--stripe-port", str(stripe)]
    demo = subprocess.Popen([sys.executable, *command], cwd=PROJECT_ROOT, env=env, stdout=subprocess.PIPE, text=True)
    try:
        screen = _read_until(demo, "Serving on", timeout=300)  # said once the server accepts connections
        assert f"Serving on http://127.0.0.1:{web}/" in screen and f"http://127.0.0.1:{web}/admin/" in screen
        assert requests.get(f"http://127.0.0.1:{web}/healthz", timeout=10).status_code == 200
        started = psutil.Process(demo.pid).children(recursive=True)
        assert any("stripe_standin" in " ".join(child.cmdline()) for child in started)
        assert any("moto.server" in " ".join(child.cmdline()) for child in started)
        assert "files in moto's S3 stand-in" in screen
        demo.send_signal(signal.SIGTERM)
        demo.wait(timeout=60)
    finally:
        if demo.poll() is None:  # the test failed before SIGTERM: leave nothing running
            for process in [*psutil.Process(demo.pid).children(recursive=True), psutil.Process(demo.pid)]:
                with contextlib.suppress(psutil.NoSuchProcess):
                    process.kill()
    assert "Stopped" in (demo.stdout.read() if demo.stdout else ""), screen
    _, alive = psutil.wait_procs(started, timeout=10)
    assert not alive, f"still running: {[p.cmdline() for p in alive]}"
    for port in (web, stripe):
        with pytest.raises(requests.ConnectionError):
            requests.get(f"http://127.0.0.1:{port}/", timeout=5)


def _read_until(process: subprocess.Popen[str], marker: str, *, timeout: float) -> str:
    deadline, seen = time.monotonic() + timeout, []
    assert process.stdout is not None
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line and process.poll() is not None:
            break
        seen.append(line)
        if marker in line:
            return "".join(seen)
    raise AssertionError("the demo did not get ready:\n" + "".join(seen))
