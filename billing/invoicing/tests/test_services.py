"""Closing a month, finalising with gap-free numbers, paying, voiding, credit notes, plans."""

from __future__ import annotations

import threading
from datetime import date
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import connection, transaction

from billing.invoicing import services
from billing.invoicing.models import (
    CreditNote,
    DailyUsage,
    DocumentCounter,
    Invoice,
    InvoiceLine,
    MonthClose,
    Plan,
    PlanAssignment,
)
from billing.invoicing.tests.helpers import account, assign, at, make_plan, make_store, sale
from tenants.audit import Actor
from tenants.models import AuditEntry, Tenant

pytestmark = pytest.mark.usefixtures("platform_wide")

MAY = date(2026, 5, 1)
SYSTEM = Actor.system()


def _close(**kwargs: object) -> services.CloseResult:
    return services.month_close(actor=SYSTEM, period_start=MAY, **kwargs)  # type: ignore[arg-type]


def _invoice(tenant: Tenant) -> Invoice:
    return Invoice.unscoped.exclude(status="void").get(tenant=tenant, period_start=MAY)


def _lines(invoice: Invoice) -> list[tuple[str, int | None, int, int]]:
    return [(line.kind, line.plan_version_id, line.quantity, line.amount) for line in invoice.lines.all()]


# --- Must show: proration on a mid-month plan change -------------------------------------------------


def test_a_mid_month_plan_change_is_prorated_by_day(tenant_a: Tenant) -> None:
    standard = make_plan("standard", store_fee=31_000, visit_fee=5, revenue_share_bps=150)
    premium = make_plan("premium", store_fee=62_000, visit_fee=2, revenue_share_bps=100, monthly_minimum=100_000)
    assign(tenant_a, standard, date(2026, 1, 1))
    assign(tenant_a, premium, date(2026, 5, 11))  # Standard 1–10 May, Premium 11–31 May
    make_store(tenant_a, "S1")
    make_store(tenant_a, "S2")
    sale(make_store(tenant_a, "S3"), at=at(date(2026, 5, 5)), amount=10_000)
    sale(make_store(tenant_a, "S4"), at=at(date(2026, 5, 20)), amount=30_000)

    result = _close()

    assert result.as_dict()["created"] == 1
    invoice = _invoice(tenant_a)
    assert _lines(invoice) == [
        ("store_fee", standard.pk, 40, 40_000),  # 4 stores × 10 days × $310 / 31
        ("visit_fee", standard.pk, 1, 5),
        ("revenue_share", standard.pk, 10_000, 150),
        ("store_fee", premium.pk, 84, 168_000),  # 4 stores × 21 days × $620 / 31
        ("visit_fee", premium.pk, 1, 2),
        ("revenue_share", premium.pk, 30_000, 300),
    ]  # Premium's minimum ($1,000 × 21/31 = $677.42) is below its fees: no top-up
    line = invoice.lines.get(kind="store_fee", plan_version=premium)
    assert (line.starts_on, line.ends_on) == (date(2026, 5, 11), date(2026, 5, 31))
    assert invoice.subtotal == invoice.total == 40_000 + 5 + 150 + 168_000 + 2 + 300
    assert invoice.status == "draft" and invoice.number == ""


def test_a_plan_change_replaces_later_changes_and_ends_the_plan_in_force(tenant_a: Tenant) -> None:
    one, two, three = make_plan("one"), make_plan("two"), make_plan("three")
    assign(tenant_a, one, date(2026, 1, 1))
    assign(tenant_a, two, date(2026, 7, 1))
    assign(tenant_a, three, date(2026, 5, 11))
    found = [(a.plan_version.plan.code, a.starts_on, a.ends_on) for a in PlanAssignment.unscoped.order_by("starts_on")]
    assert found == [("one", date(2026, 1, 1), date(2026, 5, 10)), ("three", date(2026, 5, 11), None)]
    assert AuditEntry.unscoped.filter(tenant=tenant_a, action="plan.assigned").count() == 3


# --- Must show: a month with refunds and a credit note ---------------------------------------------


def test_a_month_with_refunds_and_a_credit_note(tenant_a: Tenant) -> None:
    account(tenant_a, tax_rate_bps=2000)
    version = make_plan(store_fee=31_000, visit_fee=10, revenue_share_bps=200)
    assign(tenant_a, version, date(2026, 1, 1))
    store = make_store(tenant_a, "S1")
    sale(store, at=at(date(2026, 5, 2)), amount=50_000, refund=5_000, refund_at=at(date(2026, 5, 3)))
    sale(store, at=at(date(2026, 5, 12)), amount=20_000, refund=20_000, refund_at=at(date(2026, 5, 30)))
    sale(store, at=at(date(2026, 5, 20)), amount=35_000)
    sale(store, at=at(date(2026, 4, 28)), amount=99_000, refund=9_000, refund_at=at(date(2026, 5, 6)))  # April sale

    _close()
    invoice = _invoice(tenant_a)
    share = invoice.lines.get(kind="revenue_share")
    # May's gross 105,000 − May's refunds 34,000 (incl. the April sale's refund): a share of 2 % of 71,000.
    assert share.quantity == 71_000 and share.amount == 1_420
    assert "gross $1,050.00 − refunds $340.00" in share.description
    usage = DailyUsage.unscoped.filter(tenant=tenant_a, day__month=5)
    assert sum(u.refunds_count for u in usage) == 3
    assert _lines(invoice)[:2] == [("store_fee", version.pk, 31, 31_000), ("visit_fee", version.pk, 3, 30)]
    assert invoice.tax == 6_200 + 6 + 284 and invoice.total == invoice.subtotal + invoice.tax
    assert invoice.tax_label == "VAT" and invoice.bill_to["name"] == "Alpha Markets Ltd"

    invoice = services.invoice_finalise(actor=SYSTEM, invoice=invoice, issued_on=date(2026, 6, 1))
    note = services.credit_note_issue(
        actor=SYSTEM,
        invoice=invoice,
        reason="Store S1 was closed 1–3 May for works",
        lines=[
            services.CreditLineInput(
                description="Store fee, 3 days", amount=3_000, invoice_line_id=invoice.lines.get(kind="store_fee").pk
            )
        ],
        issued_on=date(2026, 6, 5),
    )
    assert note.number == "CN-2026-000001"
    assert (note.subtotal, note.tax, note.total) == (3_000, 600, 3_600)
    again = Invoice.unscoped.get(pk=invoice.pk)
    assert (again.subtotal, again.total, again.status) == (invoice.subtotal, invoice.total, "finalised")
    assert again.lines.count() == 3

    # Closing the month again leaves the issued invoice exactly as it was.
    assert _close().as_dict()["already_issued"] == 1
    assert Invoice.unscoped.get(pk=invoice.pk).updated_at == again.updated_at


def test_a_credit_note_cannot_take_more_than_is_left(tenant_a: Tenant, tenant_b: Tenant) -> None:
    assign(tenant_a, make_plan(store_fee=31_000, visit_fee=0, revenue_share_bps=0), date(2026, 1, 1))
    assign(tenant_b, make_plan("other", store_fee=31_000, visit_fee=0, revenue_share_bps=0), date(2026, 1, 1))
    make_store(tenant_a, "S1")
    make_store(tenant_b, "S1")
    _close()
    mine, theirs = _invoice(tenant_a), _invoice(tenant_b)
    with pytest.raises(ValidationError, match="Only issued invoices"):
        services.credit_note_issue(
            actor=SYSTEM, invoice=mine, reason="x", lines=[services.CreditLineInput(description="x", amount=1)]
        )
    services.invoices_finalise(actor=SYSTEM, invoices=[mine, theirs])
    fee = mine.lines.get()
    bad_inputs = [
        ("", [services.CreditLineInput(description="x", amount=1)], "Say why"),
        ("why", [], "at least one line"),
        ("why", [services.CreditLineInput(description="x", amount=0)], "positive"),
        ("why", [services.CreditLineInput(description="x", amount=-5)], "positive"),
        ("why", [services.CreditLineInput(description=" ", amount=5)], "say what"),
        ("why", [services.CreditLineInput(description="x", amount=31_001, invoice_line_id=fee.pk)], "only 31000 left"),
        ("why", [services.CreditLineInput(description="x", amount=31_001)], "only 31000"),
        # A line of another tenant's invoice is "not on this invoice", like a line that does not exist.
        (
            "why",
            [services.CreditLineInput(description="x", amount=1, invoice_line_id=theirs.lines.get().pk)],
            "not on invoice",
        ),
        ("why", [services.CreditLineInput(description="x", amount=1, invoice_line_id=999_999)], "not on invoice"),
    ]
    for reason, lines, message in bad_inputs:
        with pytest.raises(ValidationError, match=message):
            services.credit_note_issue(actor=SYSTEM, invoice=mine, reason=reason, lines=lines)
    assert not CreditNote.unscoped.exists()
    assert not DocumentCounter.objects.filter(series="CN").exclude(last=0).exists()

    def credit(amount: int, reason: str) -> None:
        lines = [services.CreditLineInput(description="x", amount=amount, invoice_line_id=fee.pk)]
        services.credit_note_issue(actor=SYSTEM, invoice=mine, reason=reason, lines=lines)

    credit(30_000, "goodwill")
    with pytest.raises(ValidationError, match="only 1000 left"):
        credit(1_001, "more")
    with pytest.raises(ValidationError, match="credit notes"):
        services.invoice_void(actor=SYSTEM, invoice=mine, reason="mistake")


# --- Must show: closing twice -------------------------------------------------------------------


def test_closing_a_month_twice_changes_nothing(tenant_a: Tenant, tenant_b: Tenant) -> None:
    version = make_plan(monthly_minimum=50_000)
    for tenant in (tenant_a, tenant_b):
        assign(tenant, version, date(2026, 1, 1))
        sale(make_store(tenant, "S1"), at=at(date(2026, 5, 7)), amount=12_345, refund=345)

    first = _close()
    assert first.as_dict() | {"failed": {}} == {
        "period": "2026-05",
        "usage_rows": 62,
        "created": 2,
        "updated": 0,
        "unchanged": 0,
        "already_issued": 0,
        "voided": 0,
        "failed": {},
    }
    before = {
        i.pk: (i.updated_at, i.total, _lines(i), list(i.lines.values_list("pk", flat=True)))
        for i in Invoice.unscoped.all()
    }
    audit_before = AuditEntry.unscoped.count()

    second = _close()

    assert (len(second.created), len(second.updated), len(second.unchanged)) == (0, 0, 2)
    after = {
        i.pk: (i.updated_at, i.total, _lines(i), list(i.lines.values_list("pk", flat=True)))
        for i in Invoice.unscoped.all()
    }
    assert after == before
    assert AuditEntry.unscoped.count() == audit_before
    assert MonthClose.objects.get(period_start=MAY).runs == 2


def test_a_draft_follows_the_usage_and_an_issued_invoice_does_not(tenant_a: Tenant, tenant_b: Tenant) -> None:
    version = make_plan(store_fee=0, visit_fee=100, revenue_share_bps=0)
    assign(tenant_a, version, date(2026, 1, 1))
    assign(tenant_b, version, date(2026, 1, 1))
    store_a, store_b = make_store(tenant_a, "S1"), make_store(tenant_b, "S1")
    sale(store_a, at=at(date(2026, 5, 7)), amount=100)
    sale(store_b, at=at(date(2026, 5, 7)), amount=100)
    _close()
    services.invoice_finalise(actor=SYSTEM, invoice=_invoice(tenant_b))

    sale(store_a, at=at(date(2026, 5, 8)), amount=100)  # late-settled visits of May
    sale(store_b, at=at(date(2026, 5, 8)), amount=100)
    result = _close()

    assert (len(result.updated), len(result.issued)) == (1, 1)
    assert _invoice(tenant_a).total == 200 and _invoice(tenant_a).status == "draft"
    assert _invoice(tenant_b).total == 100 and _invoice(tenant_b).status == "finalised"


def test_a_tenant_that_cannot_be_billed_is_reported_and_the_others_are_billed(
    tenant_a: Tenant, tenant_b: Tenant
) -> None:
    version = make_plan(revenue_share_bps=100)
    assign(tenant_a, version, date(2026, 1, 1))
    assign(tenant_b, version, date(2026, 1, 1))
    sale(make_store(tenant_a, "EU", currency="EUR"), at=at(date(2026, 5, 7)), amount=10_000)
    make_store(tenant_b, "S1")

    result = _close()
    assert result.failed == {"alpha": "no exchange rate EUR→USD for the month"}
    assert len(result.created) == 1 and not Invoice.unscoped.filter(tenant=tenant_a).exists()

    services.exchange_rate_set(actor=SYSTEM, month=MAY, base="EUR", quote="USD", rate=Decimal("1.1"))
    result = _close()
    assert result.failed == {} and len(result.created) == 1
    assert _invoice(tenant_a).lines.get(kind="revenue_share").quantity == 11_000


def test_tenants_without_a_plan_get_no_invoice_and_their_stale_drafts_are_voided(tenant_a: Tenant) -> None:
    assign(tenant_a, make_plan(), date(2026, 5, 1))
    make_store(tenant_a, "S1")
    _close()
    PlanAssignment.unscoped.filter(tenant=tenant_a).delete()
    result = _close()
    assert len(result.voided) == 1
    assert Invoice.unscoped.get(tenant=tenant_a).status == "void"


# --- Numbers ---------------------------------------------------------------------------------------


def _drafts(*tenants: Tenant) -> list[Invoice]:
    version = make_plan()
    for tenant in tenants:
        assign(tenant, version, date(2026, 1, 1))
        make_store(tenant, "S1")
    _close()
    return list(Invoice.unscoped.filter(status="draft").order_by("pk"))


def test_finalised_invoices_get_consecutive_numbers_per_year(
    tenant_a: Tenant, tenant_b: Tenant, make_member: object
) -> None:
    tenant_c = Tenant.objects.create(name="Charlie Stores", slug="charlie")
    drafts = _drafts(tenant_a, tenant_b, tenant_c)
    first = services.invoice_finalise(actor=SYSTEM, invoice=drafts[0], issued_on=date(2026, 6, 1))
    rest = services.invoices_finalise(actor=SYSTEM, invoices=drafts[1:], issued_on=date(2026, 6, 1))
    assert [first.number, *(i.number for i in rest)] == ["OA-2026-000001", "OA-2026-000002", "OA-2026-000003"]
    assert first.due_on == date(2026, 7, 1) and first.issued_on == date(2026, 6, 1)
    with pytest.raises(ValidationError, match="Only drafts"):
        services.invoice_finalise(actor=SYSTEM, invoice=first)
    assert DocumentCounter.objects.get(series="INV", year=2026).last == 3


def test_a_finalisation_that_rolls_back_leaves_no_gap(tenant_a: Tenant, tenant_b: Tenant) -> None:
    first, second = _drafts(tenant_a, tenant_b)

    def finalise_then_fail() -> None:
        with transaction.atomic():
            services.invoice_finalise(actor=SYSTEM, invoice=first, issued_on=date(2026, 6, 1))
            raise RuntimeError("the request failed after numbering")

    with pytest.raises(RuntimeError):
        finalise_then_fail()
    assert Invoice.unscoped.get(pk=first.pk).number == ""
    done = services.invoice_finalise(actor=SYSTEM, invoice=second, issued_on=date(2026, 6, 1))
    assert done.number == "OA-2026-000001"
    later = services.invoice_finalise(actor=SYSTEM, invoice=first, issued_on=date(2027, 1, 2))
    assert later.number == "OA-2027-000001"  # a new year starts again at 1


@pytest.mark.skipif(connection.vendor != "postgresql", reason="row locks: PostgreSQL (SQLite locks whole tables)")
@pytest.mark.django_db(transaction=True)
def test_two_finance_people_finalising_at_once_get_different_numbers(tenant_a: Tenant, tenant_b: Tenant) -> None:
    drafts = _drafts(tenant_a, tenant_b)
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def finalise(invoice: Invoice) -> None:
        try:
            barrier.wait()
            services.invoice_finalise(actor=SYSTEM, invoice=invoice, issued_on=date(2026, 6, 1))
        except BaseException as error:  # noqa: BLE001 — reported below
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=finalise, args=(invoice,)) for invoice in drafts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    numbers = sorted(Invoice.unscoped.values_list("number", flat=True))
    assert numbers == ["OA-2026-000001", "OA-2026-000002"]


# --- Paying and voiding --------------------------------------------------------------------------


def test_paid_and_void_follow_their_rules(tenant_a: Tenant, tenant_b: Tenant) -> None:
    draft, other = _drafts(tenant_a, tenant_b)
    with pytest.raises(ValidationError, match="Only a finalised"):
        services.invoice_mark_paid(actor=SYSTEM, invoice=draft)
    with pytest.raises(ValidationError, match="Say why"):
        services.invoice_void(actor=SYSTEM, invoice=draft, reason="  ")
    void = services.invoice_void(actor=SYSTEM, invoice=draft, reason="duplicate")
    assert (void.status, void.number) == ("void", "")

    issued = services.invoice_finalise(actor=SYSTEM, invoice=other)
    paid = services.invoice_mark_paid(actor=SYSTEM, invoice=issued, paid_on=date(2026, 6, 20))
    assert (paid.status, paid.paid_on) == ("paid", date(2026, 6, 20))
    with pytest.raises(ValidationError, match="cannot be voided"):
        services.invoice_void(actor=SYSTEM, invoice=paid, reason="late")
    actions = list(AuditEntry.unscoped.filter(object_type="invoicing.invoice").values_list("action", flat=True))
    assert {"invoice.drafted", "invoice.voided", "invoice.finalised", "invoice.paid"} <= set(actions)

    # The voided month is billed again by the next close; the paid one is left alone.
    result = _close()
    assert len(result.created) == 1 and len(result.issued) == 1


# --- Plans: bad input ----------------------------------------------------------------------------


def test_plan_versions_refuse_bad_prices(db: None) -> None:
    plan = Plan.objects.create(code="p", name="P")
    good = {"currency": "USD", "store_fee": 1, "visit_fee": 1, "revenue_share_bps": 1, "monthly_minimum": 1}
    for field, value, message in [
        ("store_fee", -1, "store_fee"),
        ("visit_fee", 1.5, "visit_fee"),
        ("revenue_share_bps", 10_001, "revenue_share_bps"),
        ("monthly_minimum", True, "monthly_minimum"),
        ("currency", "XXX", "currency"),
    ]:
        with pytest.raises(ValidationError, match=message):
            services.plan_version_create(actor=SYSTEM, plan=plan, **{**good, field: value})  # type: ignore[arg-type]
    first = services.plan_version_create(actor=SYSTEM, plan=plan, **good)  # type: ignore[arg-type]
    second = services.plan_version_create(actor=SYSTEM, plan=plan, **{**good, "store_fee": 2})  # type: ignore[arg-type]
    assert (first.number, second.number, first.store_fee) == (1, 2, 1)


def test_plan_changes_refuse_an_issued_month_and_another_currency(tenant_a: Tenant) -> None:
    account(tenant_a, currency="USD")
    with pytest.raises(ValidationError, match="bills in EUR"):
        assign(tenant_a, make_plan("euro", currency="EUR"), date(2026, 5, 1))
    version = make_plan()
    assign(tenant_a, version, date(2026, 5, 1))
    make_store(tenant_a, "S1")
    _close()
    issued = services.invoice_finalise(actor=SYSTEM, invoice=_invoice(tenant_a))
    with pytest.raises(ValidationError, match=f"already billed on invoice {issued.number}"):
        assign(tenant_a, make_plan("later"), date(2026, 5, 20))
    assign(tenant_a, make_plan("june"), date(2026, 6, 1))
    with pytest.raises(ValidationError, match="starts_on"):
        services.plan_assign(actor=SYSTEM, tenant=tenant_a, plan_version=version, starts_on="2026-07-01")  # type: ignore[arg-type]


def test_exchange_rates_refuse_bad_input_and_issued_months(tenant_a: Tenant) -> None:
    for kwargs, message in [
        ({"base": "EUR", "quote": "EUR", "rate": Decimal("1")}, "different"),
        ({"base": "EUR", "quote": "USD", "rate": Decimal("0")}, "positive"),
        ({"base": "ZZZ", "quote": "USD", "rate": Decimal("1")}, "currency"),
    ]:
        with pytest.raises(ValidationError, match=message):
            services.exchange_rate_set(actor=SYSTEM, month=MAY, **kwargs)  # type: ignore[arg-type]
    assign(tenant_a, make_plan(), date(2026, 1, 1))
    make_store(tenant_a, "S1")
    _close()
    services.invoice_finalise(actor=SYSTEM, invoice=_invoice(tenant_a))
    with pytest.raises(ValidationError, match="issued"):
        services.exchange_rate_set(actor=SYSTEM, month=MAY, base="EUR", quote="USD", rate=Decimal("1.1"))


def test_invoice_lines_and_totals_always_agree(tenant_a: Tenant) -> None:
    account(tenant_a, tax_rate_bps=1950)
    assign(tenant_a, make_plan(monthly_minimum=999_999), date(2026, 1, 1))
    sale(make_store(tenant_a, "S1"), at=at(date(2026, 5, 7)), amount=33_333)
    _close()
    invoice = _invoice(tenant_a)
    lines = list(InvoiceLine.unscoped.filter(invoice=invoice))
    assert invoice.subtotal == sum(line.amount for line in lines)
    assert invoice.tax == sum(line.tax for line in lines)
    assert invoice.total == invoice.subtotal + invoice.tax
    assert lines[-1].kind == "minimum" and invoice.subtotal == 999_999
