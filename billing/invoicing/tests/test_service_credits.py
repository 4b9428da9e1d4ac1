"""Service promises on plans and the credit a month that misses one gets on its invoice (issue 20)."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, timedelta

import pytest
from django.core.exceptions import ValidationError
from openpyxl import load_workbook
from pypdf import PdfReader

from billing.invoicing import calculations as calc
from billing.invoicing import documents, exports, services
from billing.invoicing.models import Invoice, Plan, PlanVersion
from billing.invoicing.tests.helpers import account, assign, make_plan, make_store
from catalog.currencies import format_money
from service_levels.tests.support import direct, make_visits
from tenants.audit import Actor
from tenants.models import Tenant

pytestmark = pytest.mark.usefixtures("platform_wide")

SYSTEM = Actor.system()
MAY = date(2026, 5, 1)
MAY_START, JUNE_START = datetime(2026, 5, 1, tzinfo=UTC), datetime(2026, 6, 1, tzinfo=UTC)
PROMISES = calc.Promises(without_person_bps=9_000, exit_to_receipt_p95_s=60, credit_bps=1_000)


def _close() -> services.CloseResult:
    return services.month_close(actor=SYSTEM, period_start=MAY)


def _invoice(tenant: Tenant) -> Invoice:
    return Invoice.unscoped.exclude(status="void").get(tenant=tenant, period_start=MAY)


def test_a_missed_promise_credits_the_invoice_and_a_kept_one_does_not(tenant_a: Tenant, tenant_b: Tenant) -> None:
    # Receipts of visits a person decides wait for the decision: an hour at the 95th percentile is kept here.
    kept_receipts = calc.Promises(without_person_bps=9_000, exit_to_receipt_p95_s=3_600, credit_bps=1_000)
    promised = make_plan("assured", store_fee=31_000, visit_fee=5, revenue_share_bps=0, promises=kept_receipts)
    account(tenant_a, tax_rate_bps=2000)
    for tenant in (tenant_a, tenant_b):
        assign(tenant, promised, date(2026, 1, 1))
    # Alpha: a third of its visits go to a person (under 90 % settled without one).
    alpha = make_visits(make_store(tenant_a, "A1"), count=150, start=MAY_START, span=timedelta(days=30), seed=1,
                        review_share=0.3)  # fmt: skip
    # Bravo: no visit goes to a person (96 % settled without one, 4 % still settling); receipts within 40 s.
    bravo = make_visits(make_store(tenant_b, "B1"), count=150, start=MAY_START, span=timedelta(days=30), seed=2,
                        review_share=0.0)  # fmt: skip
    measured = direct(alpha, start=MAY_START, end=JUNE_START)
    assert measured.settled_without_person is not None and measured.settled_without_person < 0.9
    assert direct(bravo, start=MAY_START, end=JUNE_START).settled_without_person >= 0.9  # type: ignore[operator]

    _close()

    mine = _invoice(tenant_a)
    fees = [line for line in mine.lines.order_by("position") if line.kind != "service_credit"]
    credits = list(mine.lines.filter(kind="service_credit"))
    assert len(credits) == 1  # the receipts' promise is kept
    credit = credits[0]
    fee_total = sum(line.amount for line in fees)
    assert credit.amount == -calc.round_half_up(fee_total * 1_000, 10_000) < 0
    assert credit.tax == calc.tax_of(credit.amount, 2000) < 0
    assert credit.plan_version_id == promised.pk and credit.unit == "missed promise"
    share = calc.round_half_up(round(measured.settled_without_person * 150) * 10_000, 150)
    assert f"settled without a person {calc._percent(share)}, promised at least 90.00 %" in credit.description
    assert mine.subtotal == fee_total + credit.amount and mine.total == mine.subtotal + mine.tax

    theirs = _invoice(tenant_b)
    assert not theirs.lines.filter(kind="service_credit").exists()

    again = _close()  # closing the month twice changes nothing and adds no second credit
    assert set(again.unchanged) == {mine.pk, theirs.pk} and not again.updated and not again.created
    assert _invoice(tenant_a).lines.filter(kind="service_credit").count() == 1


def test_the_credit_is_on_the_pdf_and_in_the_exports(tenant_a: Tenant) -> None:
    promised = make_plan("assured", store_fee=31_000, visit_fee=5, revenue_share_bps=0, promises=PROMISES)
    assign(tenant_a, promised, date(2026, 1, 1))
    make_visits(make_store(tenant_a, "A1"), count=60, start=MAY_START, span=timedelta(days=30), seed=3,
                review_share=0.5, receipt_after=(50.0, 120.0))  # fmt: skip
    _close()
    invoice = services.invoice_finalise(actor=SYSTEM, invoice=_invoice(tenant_a), issued_on=date(2026, 6, 2))
    credits = list(invoice.lines.filter(kind="service_credit").order_by("position"))
    assert len(credits) == 2  # both promises missed: too many to a person, receipts too slow

    pages = PdfReader(io.BytesIO(documents.invoice_pdf(invoice))).pages
    text = " ".join(" ".join(page.extract_text() for page in pages).split())  # lines wrap in the table's cells
    assert "Service credit" in text and "p95 exit to receipt" in text
    assert format_money(credits[0].amount, "USD") in text
    assert "of which service credits" in text and format_money(sum(c.amount for c in credits), "USD") in text

    lines_csv = exports.invoices_csv(Invoice.unscoped.filter(pk=invoice.pk), table="lines")
    rows = list(csv.DictReader(io.StringIO(lines_csv.decode("utf-8"))))
    credited = [r for r in rows if r["kind"] == "service_credit"]
    assert [int(r["amount_minor"]) for r in credited] == [c.amount for c in credits]
    assert sum(int(r["amount_minor"]) for r in rows) == invoice.subtotal
    book = load_workbook(io.BytesIO(exports.invoices_xlsx(Invoice.unscoped.filter(pk=invoice.pk))))
    sheet = list(book["Lines"].iter_rows(values_only=True))
    kind, amount = exports.LINE_HEADERS.index("kind"), exports.LINE_HEADERS.index("amount_minor")
    assert [r[amount] for r in sheet[1:] if r[kind] == "service_credit"] == [c.amount for c in credits]


def test_promises_measure_the_whole_month_and_credit_only_their_own_segment(tenant_a: Tenant) -> None:
    plain = make_plan("plain", store_fee=31_000, visit_fee=5, revenue_share_bps=0)
    share_only = calc.Promises(without_person_bps=9_000, credit_bps=1_000)
    promised = make_plan("assured", store_fee=31_000, visit_fee=5, revenue_share_bps=0, promises=share_only)
    assign(tenant_a, plain, date(2026, 1, 1))
    assign(tenant_a, promised, date(2026, 5, 16))
    make_visits(make_store(tenant_a, "A1"), count=80, start=MAY_START, span=timedelta(days=30), seed=4,
                review_share=0.4)  # fmt: skip
    _close()
    invoice = _invoice(tenant_a)
    credit = invoice.lines.get(kind="service_credit")
    own_fees = sum(line.amount for line in invoice.lines.filter(plan_version=promised).exclude(kind="service_credit"))
    assert credit.plan_version_id == promised.pk and (credit.starts_on, credit.ends_on) == (
        date(2026, 5, 16),
        date(2026, 5, 31),
    )
    assert credit.amount == -calc.round_half_up(own_fees * 1_000, 10_000)


def test_nothing_to_measure_misses_nothing_and_credits_never_exceed_the_fees() -> None:
    promises = calc.Promises(without_person_bps=9_500, exit_to_receipt_p95_s=30, review_p95_s=600, credit_bps=6_000)
    assert calc.missed_promises(promises, calc.MonthLevels()) == []
    levels = calc.MonthLevels(visits=100, without_person=50, exit_to_receipt_p95_s=31.5, review_p95_s=601)
    assert len(calc.missed_promises(promises, levels)) == 3
    assert calc.missed_promises(promises, calc.MonthLevels(visits=100, without_person=95)) == []  # exactly kept
    terms = calc.Terms(
        plan_version_id=1, label="Assured v1", currency="USD", store_fee=31_000, visit_fee=0, revenue_share_bps=0,
        monthly_minimum=0, promises=promises,
    )  # fmt: skip
    start, end = calc.month_bounds(2026, 5)
    usage = [calc.DayUsage(day=start + timedelta(days=n), currency="USD", store_days=1) for n in range(31)]
    draft = calc.invoice_draft(
        start=start, end=end, segments=[calc.Segment(terms, start, end)], usage=usage, currency="USD",
        tax_rate_bps=0, rates={}, levels=levels,
    )  # fmt: skip
    assert [line.amount for line in draft.lines] == [31_000, -18_600, -12_400]  # 60 %, then what is left
    assert draft.subtotal == 0


@pytest.mark.parametrize(
    ("promises", "field"),
    [
        (calc.Promises(without_person_bps=0, credit_bps=1_000), "promised_without_person_bps"),
        (calc.Promises(without_person_bps=10_001, credit_bps=1_000), "promised_without_person_bps"),
        (calc.Promises(exit_to_receipt_p95_s=0, credit_bps=1_000), "promised_exit_to_receipt_p95_s"),
        (calc.Promises(review_p95_s=-5, credit_bps=1_000), "promised_review_p95_s"),
        (calc.Promises(review_p95_s="60", credit_bps=1_000), "promised_review_p95_s"),  # type: ignore[arg-type]
        (calc.Promises(exit_to_receipt_p95_s=60), "service_credit_bps"),
        (calc.Promises(credit_bps=1_000), "service_credit_bps"),
        (calc.Promises(exit_to_receipt_p95_s=60, credit_bps=10_001), "service_credit_bps"),
    ],
)
def test_invalid_promises_are_refused_with_the_field_and_nothing_written(
    db: None, promises: calc.Promises, field: str
) -> None:
    plan = Plan.objects.create(code="assured", name="Assured")
    with pytest.raises(ValidationError) as refused:
        services.plan_version_create(
            actor=SYSTEM, plan=plan, currency="USD", store_fee=1, visit_fee=1, revenue_share_bps=0,
            monthly_minimum=0, promises=promises,
        )  # fmt: skip
    assert list(refused.value.message_dict) == [field]
    assert not PlanVersion.objects.filter(plan=plan).exists()
