"""Billing in the admins: finance closes, finalises, credits and exports in /ops/; licensee managers see and
download only their own issued invoices in /admin/."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable
from datetime import date
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from openpyxl import load_workbook

from billing.invoicing import services
from billing.invoicing.calculations import previous_month
from billing.invoicing.models import CreditNote, DailyUsage, ExchangeRate, Invoice, Plan, PlanAssignment, PlanVersion
from billing.invoicing.tests.helpers import account, assign, at, make_plan, make_store, sale
from catalog.currencies import format_money
from conftest import logged_in
from core import tenancy
from ingest.tests.conftest import stored_names
from tenants.audit import Actor
from tenants.models import AuditEntry, Membership, Tenant

SYSTEM = Actor.system()


@pytest.fixture
def billed(tenant_a: Tenant, tenant_b: Tenant, last_month: date) -> dict[str, Invoice]:
    """Last month: Alpha and Bravo finalised, Alpha's older month finalised too, and a draft for a third tenant."""
    charlie = Tenant.objects.create(name="Charlie Stores", slug="charlie")
    version = make_plan(store_fee=31_000, visit_fee=10, revenue_share_bps=100)
    for tenant in (tenant_a, tenant_b, charlie):
        assign(tenant, version, date(2025, 1, 1))
        sale(make_store(tenant, "S1"), at=at(last_month.replace(day=5)), amount=10_000 + tenant.pk)
    account(tenant_a, tax_rate_bps=2000)
    older = previous_month(last_month)[0]
    with tenancy.platform_wide_scope():
        services.month_close(actor=SYSTEM, period_start=older)
        old = services.invoice_finalise(actor=SYSTEM, invoice=Invoice.unscoped.get(tenant=tenant_a, period_start=older))
        services.month_close(actor=SYSTEM, period_start=last_month)
        issued = services.invoices_finalise(
            actor=SYSTEM,
            invoices=list(Invoice.unscoped.filter(period_start=last_month, tenant__in=[tenant_a, tenant_b])),
        )
    found = {i.tenant.slug: i for i in issued}
    found["old"] = old
    found["draft"] = Invoice.unscoped.get(tenant=charlie, period_start=last_month)
    return found


# --- /ops/: finance -------------------------------------------------------------------------------


def test_exports_and_pdfs_are_made_when_asked_for_and_kept_on_no_disk(
    finance: User, billed: dict[str, Invoice], settings, tmp_path: Path
) -> None:
    """Exports and invoice PDFs are made from the database for each download and sent in the answer: no file on the
    web process's disk, nothing added to storage (the bucket with S3) — nothing a second machine would miss."""
    settings.MEDIA_ROOT = tmp_path
    kept = stored_names("")
    client = logged_in(finance)
    downloads = [
        client.get("/ops/invoicing/invoice/export.xlsx", {"period": "last"}),
        client.get("/ops/invoicing/invoice/export.csv", {"table": "lines", "period": "last"}),
        client.get("/ops/invoicing/dailyusage/export.csv", {"period": "last"}),
        client.get(f"/ops/invoicing/invoice/{billed['alpha'].pk}/pdf/"),
    ]
    assert [download.status_code for download in downloads] == [200] * 4
    assert downloads[-1].content.startswith(b"%PDF-")
    assert stored_names("") == kept
    assert not any(tmp_path.rglob("*"))


def test_finance_filters_a_period_and_exports_xlsx_csv_and_pdf(
    finance: User, billed: dict[str, Invoice], last_month: date
) -> None:
    client = logged_in(finance)
    listing = client.get("/ops/invoicing/invoice/", {"period": "last"})
    body = listing.content.decode()
    assert listing.status_code == 200
    assert billed["alpha"].number in body and billed["bravo"].number in body
    assert billed["old"].number not in body
    assert 'id="export-xlsx"' in body and "period=last" in body

    xlsx = client.get("/ops/invoicing/invoice/export.xlsx", {"period": "last"})
    assert xlsx.status_code == 200 and xlsx["Content-Type"].startswith("application/vnd.openxmlformats")
    rows = list(load_workbook(io.BytesIO(xlsx.content))["Invoices"].iter_rows(values_only=True))
    numbers = [r[0] for r in rows[1:] if not str(r[0]).startswith("TOTAL")]
    assert sorted(numbers) == sorted([billed["alpha"].number, billed["bravo"].number, f"draft-{billed['draft'].pk}"])

    issued_only = client.get(
        "/ops/invoicing/invoice/export.csv", {"table": "lines", "period": "last", "status": "finalised"}
    )
    lines = list(csv.DictReader(io.StringIO(issued_only.content.decode())))
    assert {r["invoice"] for r in lines} == {billed["alpha"].number, billed["bravo"].number}
    assert sum(int(r["amount_minor"]) for r in lines) == billed["alpha"].subtotal + billed["bravo"].subtotal

    searched = client.get("/ops/invoicing/invoice/export.csv", {"q": "bravo", "period": f"{last_month:%Y-%m}"})
    assert [r["tenant"] for r in csv.DictReader(io.StringIO(searched.content.decode()))] == ["bravo"]

    pdf = client.get(f"/ops/invoicing/invoice/{billed['alpha'].pk}/pdf/")
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF-")
    assert billed["alpha"].number in pdf["Content-Disposition"]

    usage = client.get("/ops/invoicing/dailyusage/export.csv", {"period": "last"})
    assert usage.status_code == 200
    assert [r["tenant"] for r in csv.DictReader(io.StringIO(usage.content.decode()))] == ["alpha", "bravo", "charlie"]


def test_an_operator_reads_invoices_but_does_not_export_or_finalise(operator: User, billed: dict[str, Invoice]) -> None:
    client = logged_in(operator)
    listing = client.get("/ops/invoicing/invoice/").content.decode()
    assert billed["alpha"].number in listing and 'id="export-xlsx"' not in listing
    assert client.get("/ops/invoicing/invoice/export.xlsx").status_code == 403
    assert client.get("/ops/invoicing/invoice/export.csv").status_code == 403
    assert client.get("/ops/invoicing/dailyusage/export.xlsx").status_code == 403
    assert client.post(f"/ops/invoicing/invoice/{billed['draft'].pk}/finalise/").status_code == 403
    assert client.post("/ops/invoicing/invoice/close-month/", {"month": "2026-01"}).status_code == 403
    assert Invoice.unscoped.get(pk=billed["draft"].pk).status == "draft"


def test_finance_closes_a_month_in_the_admin_and_bad_input_changes_nothing(
    finance: User, tenant_a: Tenant, last_month: date
) -> None:
    assign(tenant_a, make_plan(), date(2025, 1, 1))
    make_store(tenant_a, "S1")
    client = logged_in(finance)
    assert client.get("/ops/invoicing/invoice/close-month/").status_code == 200
    for bad in ("2026-13", "May", ""):
        response = client.post("/ops/invoicing/invoice/close-month/", {"month": bad, "recompute_usage": "on"})
        assert response.status_code == 200 and "YYYY-MM" in response.content.decode()
    assert not Invoice.unscoped.exists()

    response = client.post(
        "/ops/invoicing/invoice/close-month/", {"month": f"{last_month:%Y-%m}", "recompute_usage": "on"}
    )
    assert response.status_code == 302 and response["Location"].endswith(f"?period={last_month:%Y-%m}")
    assert Invoice.unscoped.get(tenant=tenant_a).status == "draft"
    client.post("/ops/invoicing/invoice/close-month/", {"month": f"{last_month:%Y-%m}", "recompute_usage": "on"})
    assert Invoice.unscoped.count() == 1


def test_finance_finalises_credits_and_voids_from_the_invoice_page(finance: User, billed: dict[str, Invoice]) -> None:
    client = logged_in(finance)
    draft = billed["draft"]
    page = client.get(f"/ops/invoicing/invoice/{draft.pk}/change/")
    assert page.status_code == 200 and "Finalise" in page.content.decode()
    client.get(f"/ops/invoicing/invoice/{draft.pk}/finalise/")
    numbered = Invoice.unscoped.get(pk=draft.pk)
    assert numbered.status == "finalised" and numbered.number.endswith("000004")

    alpha = billed["alpha"]
    credit_url = f"/ops/invoicing/invoice/{alpha.pk}/credit/"
    fee = alpha.lines.model.unscoped.get(invoice=alpha, kind="store_fee")
    too_much = client.post(
        credit_url, {"invoice_line": fee.pk, "description": "x", "amount": "310.01", "reason": "outage"}
    )
    assert too_much.status_code == 200 and "left to credit" in too_much.content.decode()
    odd = client.post(credit_url, {"invoice_line": fee.pk, "description": "x", "amount": "1.001", "reason": "y"})
    assert odd.status_code == 200
    assert not CreditNote.unscoped.exists()
    ok = client.post(credit_url, {"invoice_line": fee.pk, "description": "Outage", "amount": "10.00", "reason": "y"})
    assert ok.status_code == 302
    note = CreditNote.unscoped.get()
    assert (note.subtotal, note.tax, note.invoice_id) == (1_000, 200, alpha.pk)
    assert AuditEntry.unscoped.filter(action="credit_note.issued", source="ops", actor_label=finance.username).exists()

    refused = client.post(f"/ops/invoicing/invoice/{alpha.pk}/void/", {"reason": "mistake"})
    assert "has credit notes" in refused.content.decode()
    client.post(f"/ops/invoicing/invoice/{billed['bravo'].pk}/void/", {"reason": "issued twice"})
    assert Invoice.unscoped.get(pk=billed["bravo"].pk).status == "void"


def test_an_invoice_page_names_a_draft_by_tenant_and_month_and_shows_net_sales_as_money(
    finance: User, billed: dict[str, Invoice], last_month: date
) -> None:
    draft = billed["draft"]
    html = logged_in(finance).get(f"/ops/invoicing/invoice/{draft.pk}/change/").content.decode()
    text = " ".join(re.sub(r"<[^>]+>", " ", html).split())
    assert f"Draft of {last_month:%B %Y} for Charlie Stores" in text and f"#{draft.pk}" not in text
    share = draft.lines.model.unscoped.get(invoice=draft, kind="revenue_share")
    assert share.quantity > 1_000  # kept in cents …
    assert f"{format_money(share.quantity, draft.currency)} net sales" in text  # … shown as money
    assert f" {share.quantity} " not in text and f" {share.quantity:,} " not in text
    assert text.count(share.description) == 1, "each line's description once, not again as its title"


def test_usage_rows_are_read_only_in_the_admin(finance: User, operator: User, billed: dict[str, Invoice]) -> None:
    row = DailyUsage.unscoped.first()
    for user in (finance, operator):
        client = logged_in(user)
        page = client.get(f"/ops/invoicing/dailyusage/{row.pk}/change/")
        assert page.status_code == 200 and 'name="_save"' not in page.content.decode()
        client.post(f"/ops/invoicing/dailyusage/{row.pk}/change/", {"visits_settled": 999})
        assert client.get("/ops/invoicing/dailyusage/add/").status_code == 403
    assert DailyUsage.unscoped.get(pk=row.pk).visits_settled == row.visits_settled


def test_operators_version_plans_and_change_a_tenants_plan(operator: User, tenant_a: Tenant) -> None:
    client = logged_in(operator)
    from billing.invoicing.models import Plan

    plan = Plan.objects.create(code="standard", name="Standard")
    bad = client.post(
        "/ops/invoicing/planversion/add/",
        {
            "plan": plan.pk,
            "currency": "JPY",
            "store_fee": "10.5",
            "visit_fee": "1",
            "revenue_share_percent": "1",
            "monthly_minimum": "0",
        },
    )
    assert bad.status_code == 200 and "no decimals" in bad.content.decode()
    client.post(
        "/ops/invoicing/planversion/add/",
        {
            "plan": plan.pk,
            "currency": "USD",
            "store_fee": "300",
            "visit_fee": "0.05",
            "revenue_share_percent": "1.5",
            "monthly_minimum": "500",
        },
    )
    version = PlanVersion.objects.get()
    assert (version.number, version.store_fee, version.visit_fee, version.revenue_share_bps) == (1, 30_000, 5, 150)
    assert client.post(f"/ops/invoicing/planversion/{version.pk}/change/", {"store_fee": 1}).status_code in (302, 403)
    assert PlanVersion.objects.get().store_fee == 30_000

    client.post(
        "/ops/invoicing/planassignment/add/",
        {"tenant": tenant_a.pk, "plan_version": version.pk, "starts_on": "2026-05-11"},
    )
    assert PlanAssignment.unscoped.get(tenant=tenant_a).starts_on == date(2026, 5, 11)
    account(tenant_a, currency="EUR")
    refused = client.post(
        "/ops/invoicing/planassignment/add/",
        {"tenant": tenant_a.pk, "plan_version": version.pk, "starts_on": "2026-06-01"},
    )
    assert "bills in USD" in refused.content.decode()


def test_operators_write_service_promises_as_a_new_version(operator: User) -> None:
    client = logged_in(operator)
    first = make_plan("standard", store_fee=30_000, visit_fee=5, revenue_share_bps=150)
    form = client.get(f"/ops/invoicing/planversion/add/?from={first.pk}").content.decode()
    assert 'value="300.00"' in form and "Promise: settled without a person" in form  # filled in from v1
    fields = {
        "plan": first.plan_id,
        "currency": "USD",
        "store_fee": "300",
        "visit_fee": "0.05",
        "revenue_share_percent": "1.5",
        "monthly_minimum": "0",
        "promised_without_person_percent": "90",
        "promised_exit_to_receipt_p95_s": "60",
    }
    refused = client.post("/ops/invoicing/planversion/add/", fields)  # a promise with no credit
    assert refused.status_code == 200 and "Say what a missed promise credits" in refused.content.decode()
    too_high = client.post("/ops/invoicing/planversion/add/", {**fields, "promised_without_person_percent": "120"})
    assert "at most 100 %" in too_high.content.decode()
    assert PlanVersion.objects.count() == 1  # nothing written
    client.post("/ops/invoicing/planversion/add/", {**fields, "service_credit_percent": "10"})
    second = PlanVersion.objects.get(number=2)
    assert (second.promised_without_person_bps, second.promised_exit_to_receipt_p95_s) == (9_000, 60)
    assert (second.promised_review_p95_s, second.service_credit_bps) == (None, 1_000)
    listed = client.get("/ops/invoicing/planversion/").content.decode()
    assert "≥ 90.00 % settled without a person · p95 exit to receipt ≤ 60 s" in listed
    assert "credit 10.00 % of the month&#x27;s fees per missed promise" in listed


def test_only_finance_sets_exchange_rates(operator: User, finance: User) -> None:
    assert logged_in(operator).get("/ops/invoicing/exchangerate/add/").status_code == 403
    client = logged_in(finance)
    bad = client.post(
        "/ops/invoicing/exchangerate/add/", {"month": "2026-05", "base": "EUR", "quote": "EUR", "rate": "1"}
    )
    assert "different" in bad.content.decode()
    client.post(
        "/ops/invoicing/exchangerate/add/", {"month": "2026-05", "base": "EUR", "quote": "USD", "rate": "1.085"}
    )
    assert str(ExchangeRate.objects.get().rate) == "1.0850000000"


# --- /admin/: the licensee's managers ---------------------------------------------------------------


def test_a_manager_sees_and_downloads_only_their_own_issued_invoices(
    manager_a: User, manager_b: User, billed: dict[str, Invoice]
) -> None:
    client = logged_in(manager_a)
    listing = client.get("/admin/invoicing/invoice/").content.decode()
    assert billed["alpha"].number in listing and billed["old"].number in listing
    assert billed["bravo"].number not in listing and "Bravo" not in listing

    pdf = client.get(f"/admin/invoicing/invoice/{billed['alpha'].pk}/pdf/")
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF-")
    # Another tenant's invoice answers 404, exactly like one that does not exist; so does a draft.
    assert client.get(f"/admin/invoicing/invoice/{billed['bravo'].pk}/pdf/").status_code == 404
    assert client.get("/admin/invoicing/invoice/999999/pdf/").status_code == 404
    assert client.get(f"/admin/invoicing/invoice/{billed['draft'].pk}/pdf/").status_code == 404
    theirs = client.get(f"/admin/invoicing/invoice/{billed['bravo'].pk}/change/", follow=True)
    assert billed["bravo"].number not in theirs.content.decode()

    bob = logged_in(manager_b).get("/admin/invoicing/invoice/").content.decode()
    assert billed["bravo"].number in bob and billed["alpha"].number not in bob


def test_a_manager_sees_credit_notes_and_nobody_writes(manager_a: User, billed: dict[str, Invoice]) -> None:
    with tenancy.platform_wide_scope():
        note = services.credit_note_issue(
            actor=SYSTEM,
            invoice=billed["alpha"],
            reason="goodwill",
            lines=[services.CreditLineInput(description="Goodwill", amount=500)],
        )
    client = logged_in(manager_a)
    assert note.number in client.get("/admin/invoicing/creditnote/").content.decode()
    assert client.get(f"/admin/invoicing/creditnote/{note.pk}/pdf/").content.startswith(b"%PDF-")
    assert client.get("/admin/invoicing/invoice/add/").status_code == 403
    client.post(f"/admin/invoicing/invoice/{billed['alpha'].pk}/change/", {"status": "paid"})
    client.post(f"/admin/invoicing/invoice/{billed['alpha'].pk}/delete/", {"post": "yes"})
    assert Invoice.unscoped.get(pk=billed["alpha"].pk).status == "finalised"


def test_staff_and_viewers_of_a_licensee_do_not_see_invoices(
    make_member: Callable[..., User], tenant_a: Tenant, billed: dict[str, Invoice]
) -> None:
    for role in (Membership.Role.STAFF, Membership.Role.VIEWER):
        client = logged_in(make_member(f"{role}@alpha.test", tenant_a, role=role))
        assert client.get("/admin/invoicing/invoice/").status_code == 403
        assert client.get(f"/admin/invoicing/invoice/{billed['alpha'].pk}/pdf/").status_code == 403


def test_a_plans_event_retention_is_listed_and_set_in_the_operator_console_and_is_one_day_or_more(
    operator: User,
) -> None:
    version = make_plan("standard")
    client = logged_in(operator)
    listing = client.get("/ops/invoicing/plan/")
    assert listing.status_code == 200
    assert "Event retention (days)" in listing.content.decode()
    url = f"/ops/invoicing/plan/{version.plan_id}/change/"
    form = {
        "name": "Standard",
        "description": "",
        "versions-TOTAL_FORMS": "1",
        "versions-INITIAL_FORMS": "1",
        "versions-MIN_NUM_FORMS": "0",
        "versions-MAX_NUM_FORMS": "1000",
        "versions-0-id": str(version.pk),
        "versions-0-plan": str(version.plan_id),
    }

    refused = client.post(url, {**form, "event_retention_days": "0"})
    assert refused.status_code == 200
    assert "Ensure this value is greater than or equal to 1." in refused.content.decode()
    assert Plan.objects.get(pk=version.plan_id).event_retention_days == 395

    saved = client.post(url, {**form, "event_retention_days": "90"})
    assert saved.status_code == 302, saved.content.decode()[:2000]
    assert Plan.objects.get(pk=version.plan_id).event_retention_days == 90
