"""`close_month` and `export_billing` from the command line; the beat jobs through a real worker."""

from __future__ import annotations

import csv
import io
import json
import time
from datetime import date
from pathlib import Path

import pytest
from celery.schedules import crontab
from django.conf import settings
from django.core.management import CommandError, call_command
from django.utils import timezone
from openpyxl import load_workbook
from pypdf import PdfReader

from billing.invoicing.calculations import previous_month
from billing.invoicing.models import DailyUsage, Invoice
from billing.invoicing.tests.helpers import assign, at, make_plan, make_store, sale
from tenants.models import Tenant


@pytest.fixture
def on_plans(tenant_a: Tenant, tenant_b: Tenant) -> None:
    version = make_plan()
    for tenant in (tenant_a, tenant_b):
        assign(tenant, version, date(2025, 1, 1))
        sale(make_store(tenant, "S1"), at=at(date(2026, 5, 9)), amount=8_000)


def _run(*args: str) -> dict:
    out = io.StringIO()
    call_command(*args, stdout=out)
    return json.loads(out.getvalue())


def test_close_month_builds_drafts_once_and_finalises_on_request(on_plans: None, tenant_a: Tenant) -> None:
    first = _run("close_month", "2026-05")
    assert (first["created"], first["usage_rows"]) == (2, 62)
    second = _run("close_month", "2026-05")
    assert (second["created"], second["updated"], second["unchanged"]) == (0, 0, 2)
    finalised = _run("close_month", "2026-05", "--finalise", "--tenant", "alpha")
    assert finalised["finalised"] == 1 and finalised["numbers"][0].startswith("OA-")
    assert Invoice.unscoped.get(tenant=tenant_a).status == "finalised"
    assert Invoice.unscoped.exclude(tenant=tenant_a).get().status == "draft"


@pytest.mark.parametrize(
    ("args", "message"),
    [(("2026-13",), "YYYY-MM"), (("May",), "YYYY-MM"), (("2026-05", "--tenant", "nobody"), "No tenant nobody")],
)
def test_close_month_refuses_bad_input(db: None, args: tuple[str, ...], message: str) -> None:
    with pytest.raises(CommandError, match=message):
        call_command("close_month", *args, stdout=io.StringIO())
    assert not Invoice.unscoped.exists()


def test_export_billing_writes_spreadsheets_usage_and_pdfs(on_plans: None, tmp_path: Path) -> None:
    call_command("close_month", "2026-05", "--finalise", stdout=io.StringIO())
    number = Invoice.unscoped.order_by("number").first().number

    call_command("export_billing", "invoices", "2026-05", "--format", "xlsx", "-o", str(tmp_path / "i.xlsx"))
    book = load_workbook(tmp_path / "i.xlsx")
    assert book.sheetnames == ["Invoices", "Lines", "Credit notes"]
    call_command(
        "export_billing", "invoices", "2026-05", "--format", "csv", "--table", "lines", "--tenant", "bravo",
        "-o", str(tmp_path / "l.csv"),
    )  # fmt: skip
    lines = list(csv.DictReader((tmp_path / "l.csv").open()))
    assert {r["tenant"] for r in lines} == {"bravo"} and len(lines) == 3

    call_command("export_billing", "usage", "2026-05", "--format", "csv", "-o", str(tmp_path / "u.csv"))
    usage = list(csv.DictReader((tmp_path / "u.csv").open()))
    assert [(r["tenant"], r["store"], r["visits_settled"]) for r in usage] == [
        ("alpha", "S1", "1"),
        ("bravo", "S1", "1"),
    ]

    call_command("export_billing", "pdf", number, "-o", str(tmp_path / "i.pdf"))
    assert number in PdfReader(tmp_path / "i.pdf").pages[0].extract_text()
    with pytest.raises(CommandError, match="No invoice or credit note"):
        call_command("export_billing", "pdf", "OA-1999-000001", "-o", str(tmp_path / "x.pdf"))
    with pytest.raises(CommandError, match="YYYY-MM"):
        call_command("export_billing", "usage", "05-2026", "-o", str(tmp_path / "x.csv"))


def test_the_month_is_closed_by_beat_on_the_first_at_14_utc() -> None:
    entry = settings.CELERY_BEAT_SCHEDULE["invoicing-close-month"]
    assert entry["task"] == "invoicing.close_previous_month"
    assert entry["schedule"] == crontab(minute=0, hour=14, day_of_month=1)
    from config.celery import app

    assert app.amqp.router.route({}, "invoicing.close_previous_month")["queue"].name == "default"


@pytest.mark.usefixtures("celery_worker")
def test_the_beat_job_closes_the_previous_month_through_a_worker(tenant_a: Tenant) -> None:
    last_month = previous_month(timezone.localdate())[0]
    assign(tenant_a, make_plan(), date(2025, 1, 1))
    sale(make_store(tenant_a, "S1"), at=at(last_month.replace(day=3)), amount=1_000)
    from billing.invoicing import tasks

    tasks.close_previous_month.delay()
    tasks.refresh_recent_usage.delay()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not Invoice.unscoped.filter(tenant=tenant_a).exists():
        time.sleep(0.2)
    invoice = Invoice.unscoped.get(tenant=tenant_a)
    assert (invoice.period_start, invoice.status) == (last_month, "draft")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not DailyUsage.unscoped.filter(day=timezone.localdate()).exists():
        time.sleep(0.2)
    assert DailyUsage.unscoped.filter(tenant=tenant_a, day=timezone.localdate()).exists()
