"""Writes of licensee billing: plans and assignments, usage, closing a month, finalising, paying, voiding,
credit notes. Keyword-only, atomic, audited with the `Actor` given.

Closing a month builds one draft invoice per tenant on a plan that month and is idempotent: a second close
recomputes every draft and writes only what changed (nothing, when usage did not change); finalised, paid and
void invoices are never touched. Finalising gives the next number of the year in the same transaction, under a
row lock on the year's counter, so numbers have no gaps: a rolled-back finalisation rolls the counter back too.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Count, Prefetch, Q, Sum
from django.utils import timezone

from billing.invoicing import calculations as calc
from billing.invoicing import usage
from billing.invoicing.models import (
    BillingAccount,
    CreditNote,
    CreditNoteLine,
    DailyUsage,
    DocumentCounter,
    ExchangeRate,
    Invoice,
    InvoiceLine,
    MonthClose,
    Plan,
    PlanAssignment,
    PlanVersion,
)
from catalog.currencies import is_supported
from service_levels.selectors import ServiceLevels, service_levels_by_tenant
from tenants.audit import Actor, audit_entry, audit_record, audit_record_many
from tenants.models import AuditAction, Tenant

INVOICE_SERIES = "INV"
CREDIT_NOTE_SERIES = "CN"
LINE_FIELDS = (
    "kind",
    "description",
    "plan_version_id",
    "starts_on",
    "ends_on",
    "quantity",
    "unit",
    "unit_price",
    "amount",
    "tax",
)


# --- Plans -------------------------------------------------------------------------------------


def _check_currency(code: str) -> str:
    code = (code or "").strip().upper()
    if not is_supported(code):
        raise ValidationError({"currency": f"{code or 'empty'} is not a supported currency."})
    return code


@transaction.atomic
def plan_version_create(
    *,
    actor: Actor,
    plan: Plan,
    currency: str,
    store_fee: int,
    visit_fee: int,
    revenue_share_bps: int,
    monthly_minimum: int,
    promises: calc.Promises | None = None,
    note: str = "",
) -> PlanVersion:
    """A new version of a plan's prices and service promises (the next number); earlier versions stay as they
    were. A promise needs a credit, a credit a promise."""
    promises = promises or calc.Promises()
    errors = {}
    for name, value in (("store_fee", store_fee), ("visit_fee", visit_fee), ("monthly_minimum", monthly_minimum)):
        if not _whole(value) or value < 0:
            errors[name] = "A whole number of minor units, zero or more."
    if not _whole(revenue_share_bps) or not 0 <= revenue_share_bps <= 10_000:
        errors["revenue_share_bps"] = "Basis points between 0 and 10,000."
    errors |= _promise_errors(promises)
    if errors:
        raise ValidationError(errors)
    currency = _check_currency(currency)
    locked = Plan.objects.select_for_update().get(pk=plan.pk)
    last = locked.versions.order_by("-number").values_list("number", flat=True).first() or 0
    version = PlanVersion.objects.create(
        plan=locked,
        number=last + 1,
        currency=currency,
        store_fee=store_fee,
        visit_fee=visit_fee,
        revenue_share_bps=revenue_share_bps,
        monthly_minimum=monthly_minimum,
        promised_without_person_bps=promises.without_person_bps,
        promised_exit_to_receipt_p95_s=promises.exit_to_receipt_p95_s,
        promised_review_p95_s=promises.review_p95_s,
        service_credit_bps=promises.credit_bps,
        note=note.strip()[:200],
        created_by=actor.label[:200],
    )
    audit_record(
        actor=actor,
        tenant_id=None,
        action=AuditAction.PLAN_VERSION_CREATED,
        obj=version,
        changes={
            "currency": currency,
            "store_fee": store_fee,
            "visit_fee": visit_fee,
            "revenue_share_bps": revenue_share_bps,
            "monthly_minimum": monthly_minimum,
            "promised_without_person_bps": promises.without_person_bps,
            "promised_exit_to_receipt_p95_s": promises.exit_to_receipt_p95_s,
            "promised_review_p95_s": promises.review_p95_s,
            "service_credit_bps": promises.credit_bps,
        },
    )
    return version


def _whole(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


PROMISED_SECONDS_MAX = 7 * 24 * 3600


def _promise_errors(promises: calc.Promises) -> dict[str, str]:
    """What is wrong with a version's promises, by field (nothing: they may be written)."""
    errors = {}
    share = promises.without_person_bps
    if share is not None and (not _whole(share) or not 0 < share <= 10_000):
        errors["promised_without_person_bps"] = "A share above 0 and at most 100 % (basis points 1 to 10,000)."
    for name, seconds in (
        ("promised_exit_to_receipt_p95_s", promises.exit_to_receipt_p95_s),
        ("promised_review_p95_s", promises.review_p95_s),
    ):
        if seconds is not None and (not _whole(seconds) or not 0 < seconds <= PROMISED_SECONDS_MAX):
            errors[name] = "A whole number of seconds, from 1 to 604,800 (a week)."
    credit = promises.credit_bps
    if not _whole(credit) or not 0 <= credit <= 10_000:
        errors["service_credit_bps"] = "Basis points between 0 and 10,000."
    elif promises.made and credit == 0:
        errors["service_credit_bps"] = "Say what a missed promise credits (a share of the month's fees above 0)."
    elif credit and not promises.made:
        errors["service_credit_bps"] = "A service credit needs at least one promise to be missed."
    return errors


def _issued_from(tenant_id: int, day: date) -> Invoice | None:
    """The first issued (finalised or paid) invoice of the tenant covering `day` or later, if any."""
    return (
        Invoice.unscoped.filter(
            tenant_id=tenant_id,
            period_end__gte=day,
            status__in=[Invoice.Status.FINALISED, Invoice.Status.PAID],
        )
        .order_by("period_start")
        .first()
    )


@transaction.atomic
def plan_assign(*, actor: Actor, tenant: Tenant, plan_version: PlanVersion, starts_on: date) -> PlanAssignment:
    """Put the tenant on `plan_version` from `starts_on` on: the plan in force that day ends the day before, later
    assignments are replaced. Refused for a day already billed on an issued invoice (correct it with a credit
    note) and for a plan in another currency than the tenant's billing account."""
    if not isinstance(starts_on, date):
        raise ValidationError({"starts_on": "A date."})
    Tenant.objects.select_for_update().filter(pk=tenant.pk).first()  # one plan change per tenant at a time
    issued = _issued_from(tenant.pk, starts_on)
    if issued is not None:
        raise ValidationError(
            {"starts_on": f"{starts_on} is already billed on invoice {issued.number}; correct it with a credit note."}
        )
    account = BillingAccount.unscoped.filter(tenant=tenant).first()
    if account is not None and account.currency != plan_version.currency:
        raise ValidationError(
            {"plan_version": f"The plan bills in {plan_version.currency}, {tenant.name} in {account.currency}."}
        )
    assignments = PlanAssignment.unscoped.filter(tenant=tenant)
    other_currency = assignments.exclude(plan_version__currency=plan_version.currency).filter(
        Q(ends_on__isnull=True) | Q(ends_on__gte=starts_on.replace(day=1))
    )
    if account is None and other_currency.filter(starts_on__lt=starts_on).exists():
        raise ValidationError({"plan_version": "A month cannot be billed in two currencies; set a billing account."})
    replaced = list(assignments.filter(starts_on__gte=starts_on).values_list("pk", flat=True))
    assignments.filter(pk__in=replaced).delete()
    current = assignments.filter(starts_on__lt=starts_on).filter(Q(ends_on__isnull=True) | Q(ends_on__gte=starts_on))
    current.update(ends_on=starts_on - timedelta(days=1))
    assignment = PlanAssignment.unscoped.create(
        tenant=tenant, plan_version=plan_version, starts_on=starts_on, created_by=actor.label[:200]
    )
    audit_record(
        actor=actor,
        tenant_id=tenant.pk,
        action=AuditAction.PLAN_ASSIGNED,
        obj=assignment,
        changes={"plan_version": str(plan_version), "starts_on": starts_on.isoformat(), "replaced": replaced},
    )
    return assignment


def billing_account_clean(*, tenant: Tenant, currency: str, tax_rate_bps: int) -> str:
    """Check a billing account's currency and tax rate; returns the currency normalised."""
    currency = _check_currency(currency)
    if not 0 <= tax_rate_bps <= 10_000:
        raise ValidationError({"tax_rate_bps": "Basis points between 0 and 10,000."})
    clashing = PlanAssignment.unscoped.filter(tenant=tenant).exclude(plan_version__currency=currency)
    clashing = clashing.filter(Q(ends_on__isnull=True) | Q(ends_on__gte=timezone.localdate().replace(day=1)))
    if clashing.exists():
        raise ValidationError({"currency": f"{tenant.name} is on a plan in another currency than {currency}."})
    return currency


# --- Usage -------------------------------------------------------------------------------------


def usage_recompute(*, start: date, end: date, tenant_ids: Sequence[int] | None = None) -> int:
    """Derive the usage rows of `start`..`end` (store-local dates) anew from visits and payments, for the tenants
    given or every tenant; returns the number of rows. Safe to run any number of times (see `usage`)."""
    return usage.recompute(start=start, end=end, tenant_ids=tenant_ids)


# --- Closing a month ---------------------------------------------------------------------------


@dataclass
class CloseResult:
    period_start: date
    period_end: date
    usage_rows: int = 0
    created: list[int] = field(default_factory=list)
    updated: list[int] = field(default_factory=list)
    unchanged: list[int] = field(default_factory=list)
    issued: list[int] = field(default_factory=list)
    voided: list[int] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "period": f"{self.period_start:%Y-%m}",
            "usage_rows": self.usage_rows,
            "created": len(self.created),
            "updated": len(self.updated),
            "unchanged": len(self.unchanged),
            "already_issued": len(self.issued),
            "voided": len(self.voided),
            "failed": self.failed,
        }


def issuer_details() -> dict[str, str]:
    """The operator as printed on invoices (settings.BILLING_ISSUER)."""
    return {k: str(v) for k, v in getattr(settings, "BILLING_ISSUER", {}).items()}


def _bill_to(tenant: Tenant, account: BillingAccount | None) -> dict[str, Any]:
    if account is None:
        return {"name": tenant.name, "slug": tenant.slug, "address": "", "email": "", "tax_id": "", "terms_days": 30}
    return {
        "name": account.legal_name or tenant.name,
        "slug": tenant.slug,
        "address": account.address,
        "email": account.email,
        "tax_id": account.tax_id,
        "terms_days": account.payment_terms_days,
    }


def _terms_of(version: PlanVersion) -> calc.Terms:
    return calc.Terms(
        plan_version_id=version.pk,
        label=f"{version.plan.name} v{version.number}",
        currency=version.currency,
        store_fee=version.store_fee,
        visit_fee=version.visit_fee,
        revenue_share_bps=version.revenue_share_bps,
        monthly_minimum=version.monthly_minimum,
        promises=promises_of(version),
    )


def promises_of(version: PlanVersion) -> calc.Promises:
    return calc.Promises(
        without_person_bps=version.promised_without_person_bps,
        exit_to_receipt_p95_s=version.promised_exit_to_receipt_p95_s,
        review_p95_s=version.promised_review_p95_s,
        credit_bps=version.service_credit_bps,
    )


def month_levels_of(levels: ServiceLevels) -> calc.MonthLevels:
    """The measured levels as the invoice's arithmetic reads them."""
    return calc.MonthLevels(
        visits=levels.visits,
        without_person=levels.without_person,
        exit_to_receipt_p95_s=levels.exit_to_receipt_s.p95,
        review_p95_s=levels.review_time_to_decision_s.p95,
    )


def month_levels(*, start: date, end: date, tenant_ids: Sequence[int]) -> dict[int, calc.MonthLevels]:
    """Each tenant's service levels on its stores' local days `start`..`end`, as invoices read them."""
    if not tenant_ids:
        return {}
    measured = service_levels_by_tenant(first_day=start, last_day=end, tenant_ids=tenant_ids)
    return {tenant_id: month_levels_of(levels) for tenant_id, levels in measured.items()}


def _usage_by_tenant(*, start: date, end: date, tenant_ids: Sequence[int]) -> dict[int, list[calc.DayUsage]]:
    """Per tenant, per day and sales currency: one GROUP BY over the usage rows."""
    rows = (
        DailyUsage.unscoped.filter(tenant_id__in=list(tenant_ids), day__gte=start, day__lte=end)
        .values("tenant_id", "day", "currency")
        .annotate(
            store_days=Count("id", filter=Q(store_active=True)),
            visits=Sum("visits_settled"),
            gross=Sum("gross_sales"),
            refunds=Sum("refunds"),
        )
        .order_by()
    )
    found: dict[int, list[calc.DayUsage]] = defaultdict(list)
    for row in rows:
        found[row["tenant_id"]].append(
            calc.DayUsage(
                day=row["day"],
                currency=row["currency"],
                store_days=row["store_days"],
                visits=row["visits"] or 0,
                gross_sales=row["gross"] or 0,
                refunds=row["refunds"] or 0,
            )
        )
    return found


def _lines_key(lines: Sequence[Any]) -> list[tuple[Any, ...]]:
    return [tuple(getattr(line, f) for f in LINE_FIELDS) for line in lines]


def month_close(
    *,
    actor: Actor,
    period_start: date,
    tenant_ids: Sequence[int] | None = None,
    recompute_usage: bool = True,
) -> CloseResult:
    """Build (or bring up to date) the draft invoice of every tenant on a plan in the month of `period_start`.

    Usage of the month is recomputed first (unless told not to). A tenant whose invoice cannot be computed (e.g.
    a missing exchange rate) is reported in `failed` and the others go on.
    """
    start, end = calc.month_bounds(period_start.year, period_start.month)
    result = CloseResult(period_start=start, period_end=end)
    MonthClose.objects.get_or_create(period_start=start)
    with transaction.atomic():
        close = MonthClose.objects.select_for_update().get(period_start=start)  # one close of a month at a time
        if recompute_usage:
            result.usage_rows = usage_recompute(start=start, end=end, tenant_ids=tenant_ids)
        assignments = PlanAssignment.unscoped.filter(starts_on__lte=end).filter(
            Q(ends_on__isnull=True) | Q(ends_on__gte=start)
        )
        if tenant_ids is not None:
            assignments = assignments.filter(tenant_id__in=list(tenant_ids))
        by_tenant: dict[int, list[tuple[calc.Terms, date, date | None]]] = defaultdict(list)
        for assignment in assignments.select_related("plan_version__plan"):
            by_tenant[assignment.tenant_id].append(
                (_terms_of(assignment.plan_version), assignment.starts_on, assignment.ends_on)
            )
        billed = sorted(by_tenant)
        tenants = Tenant.objects.in_bulk(billed)
        accounts = {a.tenant_id: a for a in BillingAccount.unscoped.filter(tenant_id__in=billed)}
        usage_of = _usage_by_tenant(start=start, end=end, tenant_ids=billed)
        promised = [t for t in billed if any(terms.promises.made for terms, _, _ in by_tenant[t])]
        levels_of = month_levels(start=start, end=end, tenant_ids=promised)
        rates = {(r.base, r.quote): r.rate for r in ExchangeRate.objects.filter(month=start)}
        live = Invoice.unscoped.filter(period_start=start).exclude(status=Invoice.Status.VOID)
        if tenant_ids is not None:
            live = live.filter(tenant_id__in=list(tenant_ids))
        lines = Prefetch("lines", queryset=InvoiceLine.unscoped.order_by("position"))
        existing = {invoice.tenant_id: invoice for invoice in live.prefetch_related(lines)}
        orphans = [i for t, i in existing.items() if t not in by_tenant and i.is_draft]
        issuer = issuer_details()
        new_invoices: list[tuple[Invoice, calc.InvoiceDraft]] = []
        changed: list[tuple[Invoice, calc.InvoiceDraft]] = []
        now = timezone.now()
        for tenant_id in billed:
            tenant, account = tenants[tenant_id], accounts.get(tenant_id)
            current = existing.get(tenant_id)
            if current is not None and not current.is_draft:
                result.issued.append(current.pk)
                continue
            try:
                segments = calc.segments_in_period(by_tenant[tenant_id], start=start, end=end)
                currency = account.currency if account else segments[0].terms.currency
                draft = calc.invoice_draft(
                    start=start,
                    end=end,
                    segments=segments,
                    usage=usage_of.get(tenant_id, []),
                    currency=currency,
                    tax_rate_bps=account.tax_rate_bps if account else 0,
                    rates=rates,
                    levels=levels_of.get(tenant_id, calc.MonthLevels()),
                )
            except calc.BillingError as error:
                result.failed[tenant.slug] = str(error)
                continue
            fields = {
                "currency": draft.currency,
                "subtotal": draft.subtotal,
                "tax": draft.tax,
                "total": draft.total,
                "tax_label": (account.tax_label if account else "") or "Tax",
                "tax_rate_bps": account.tax_rate_bps if account else 0,
                "bill_to": _bill_to(tenant, account),
                "issuer": issuer,
            }
            if current is None:
                invoice = Invoice(tenant_id=tenant_id, period_start=start, period_end=end, updated_at=now, **fields)
                new_invoices.append((invoice, draft))
                continue
            same = all(getattr(current, k) == v for k, v in fields.items()) and _lines_key(
                current.lines.all()
            ) == _lines_key(draft.lines)
            if same:
                result.unchanged.append(current.pk)
                continue
            for key, value in fields.items():
                setattr(current, key, value)
            current.updated_at = now
            changed.append((current, draft))

        Invoice.unscoped.bulk_create([invoice for invoice, _ in new_invoices], batch_size=1000)
        if changed:
            Invoice.unscoped.bulk_update(
                [invoice for invoice, _ in changed],
                [
                    "currency",
                    "subtotal",
                    "tax",
                    "total",
                    "tax_label",
                    "tax_rate_bps",
                    "bill_to",
                    "issuer",
                    "updated_at",
                ],
                batch_size=1000,
            )
            InvoiceLine.unscoped.filter(invoice__in=[invoice for invoice, _ in changed]).delete()
        InvoiceLine.unscoped.bulk_create(
            [
                InvoiceLine(
                    tenant_id=invoice.tenant_id,
                    invoice=invoice,
                    position=position,
                    **{f: getattr(line, f) for f in LINE_FIELDS},
                )
                for invoice, draft in [*new_invoices, *changed]
                for position, line in enumerate(draft.lines, start=1)
            ],
            batch_size=5000,
        )
        result.created = [invoice.pk for invoice, _ in new_invoices]
        result.updated = [invoice.pk for invoice, _ in changed]
        _audit_many(actor, [invoice for invoice, _ in new_invoices], AuditAction.INVOICE_DRAFTED)
        _audit_many(actor, [invoice for invoice, _ in changed], AuditAction.INVOICE_REDRAFTED)
        for orphan in orphans:  # its tenant has no plan that month any more
            invoice_void(actor=actor, invoice=orphan, reason="No plan in the period any more.")
        result.voided = [orphan.pk for orphan in orphans]
        close.runs += 1
        close.closed_at = now
        close.outcome = result.as_dict()
        close.save(update_fields=["runs", "closed_at", "outcome"])
    return result


def _audit_many(actor: Actor, invoices: Sequence[Invoice], action: AuditAction) -> None:
    """One audit entry per invoice, written in bulk (a close touches up to every tenant)."""
    audit_record_many(
        audit_entry(
            actor=actor,
            tenant_id=invoice.tenant_id,
            action=action,
            obj=invoice,
            changes={"period": f"{invoice.period_start:%Y-%m}", "total": invoice.total, "currency": invoice.currency},
        )
        for invoice in invoices
    )


# --- Numbers, finalising, paying, voiding --------------------------------------------------------


def _next_numbers(series: str, year: int, count: int) -> list[tuple[int, str]]:
    """Reserve `count` consecutive numbers of `series` in `year` (the caller's transaction holds the lock)."""
    DocumentCounter.objects.get_or_create(series=series, year=year)
    counter = DocumentCounter.objects.select_for_update().get(series=series, year=year)
    first = counter.last + 1
    counter.last += count
    counter.save(update_fields=["last"])
    prefix = getattr(settings, "BILLING_NUMBER_PREFIX", {}).get(series, series)
    return [(n, f"{prefix}-{year}-{n:06d}") for n in range(first, first + count)]


def invoice_finalise(*, actor: Actor, invoice: Invoice, issued_on: date | None = None) -> Invoice:
    """Give a draft its number and issue date; from now on it never changes."""
    return invoices_finalise(actor=actor, invoices=[invoice], issued_on=issued_on)[0]


@transaction.atomic
def invoices_finalise(*, actor: Actor, invoices: Sequence[Invoice], issued_on: date | None = None) -> list[Invoice]:
    """Finalise drafts together: consecutive numbers in the order of tenant name, in one transaction."""
    issued_on = issued_on or timezone.localdate()
    ids = sorted({invoice.pk for invoice in invoices})
    locked = list(
        Invoice.unscoped.select_for_update(of=("self",)).filter(pk__in=ids).select_related("tenant").order_by("pk")
    )
    if len(locked) != len(ids):
        raise ValidationError("An invoice to finalise does not exist.")
    not_draft = [str(invoice) for invoice in locked if not invoice.is_draft]
    if not_draft:
        raise ValidationError(f"Only drafts can be finalised: {', '.join(not_draft)} already are issued or void.")
    locked.sort(key=lambda invoice: (invoice.period_start, invoice.tenant.name.lower(), invoice.pk))
    numbers = _next_numbers(INVOICE_SERIES, issued_on.year, len(locked))
    now = timezone.now()
    for invoice, (sequence, number) in zip(locked, numbers, strict=True):
        invoice.status = Invoice.Status.FINALISED
        invoice.number = number
        invoice.year = issued_on.year
        invoice.sequence = sequence
        invoice.issued_on = issued_on
        invoice.due_on = issued_on + timedelta(days=int(invoice.bill_to.get("terms_days", 30)))
        invoice.finalised_at = now
        invoice.finalised_by = actor.label[:200]
        invoice.updated_at = now
    Invoice.unscoped.bulk_update(
        locked,
        ["status", "number", "year", "sequence", "issued_on", "due_on", "finalised_at", "finalised_by", "updated_at"],
        batch_size=1000,
    )
    _audit_many(actor, locked, AuditAction.INVOICE_FINALISED)
    return locked


@transaction.atomic
def invoice_mark_paid(*, actor: Actor, invoice: Invoice, paid_on: date | None = None) -> Invoice:
    locked = Invoice.unscoped.select_for_update().get(pk=invoice.pk)
    if locked.status != Invoice.Status.FINALISED:
        raise ValidationError(
            f"Only a finalised invoice can be marked paid; {locked} is {locked.get_status_display()}."
        )
    locked.status = Invoice.Status.PAID
    locked.paid_on = paid_on or timezone.localdate()
    locked.updated_at = timezone.now()
    locked.save(update_fields=["status", "paid_on", "updated_at"])
    audit_record(
        actor=actor,
        tenant_id=locked.tenant_id,
        action=AuditAction.INVOICE_PAID,
        obj=locked,
        changes={"paid_on": str(locked.paid_on)},
    )
    return locked


@transaction.atomic
def invoice_void(*, actor: Actor, invoice: Invoice, reason: str) -> Invoice:
    """Void a draft (it never had a number) or a finalised invoice nobody paid or credited (it keeps its number,
    so the sequence stays whole). A month whose invoice is void is billed again by the next close."""
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": "Say why the invoice is void."})
    locked = Invoice.unscoped.select_for_update().get(pk=invoice.pk)
    if locked.status not in (Invoice.Status.DRAFT, Invoice.Status.FINALISED):
        raise ValidationError(f"{locked} is {locked.get_status_display()} and cannot be voided.")
    if CreditNote.unscoped.filter(invoice=locked).exists():
        raise ValidationError(f"{locked} has credit notes; credit the rest instead of voiding it.")
    locked.status = Invoice.Status.VOID
    locked.voided_at = locked.updated_at = timezone.now()
    locked.void_reason = reason[:500]
    locked.save(update_fields=["status", "voided_at", "void_reason", "updated_at"])
    audit_record(
        actor=actor,
        tenant_id=locked.tenant_id,
        action=AuditAction.INVOICE_VOIDED,
        obj=locked,
        changes={"reason": reason},
    )
    return locked


# --- Credit notes ------------------------------------------------------------------------------


@dataclass(frozen=True)
class CreditLineInput:
    description: str
    amount: int
    invoice_line_id: int | None = None


def credited_by_line(invoice: Invoice) -> dict[int | None, int]:
    """What credit notes so far took off each invoice line (None: lines not tied to one)."""
    rows = (
        CreditNoteLine.unscoped.filter(credit_note__invoice=invoice)
        .values("invoice_line_id")
        .annotate(total=Sum("amount"))
        .order_by()
    )
    return {row["invoice_line_id"]: row["total"] for row in rows}


@transaction.atomic
def credit_note_issue(
    *, actor: Actor, invoice: Invoice, reason: str, lines: Sequence[CreditLineInput], issued_on: date | None = None
) -> CreditNote:
    """Credit part of an issued invoice. Each line credits a positive amount, at most what its invoice line has
    left; the credit notes of an invoice never add up to more than its subtotal. Tax at the invoice's rate."""
    reason = (reason or "").strip()
    errors: dict[str, str] = {}
    if not reason:
        errors["reason"] = "Say why the invoice is credited."
    if not lines:
        errors["lines"] = "A credit note needs at least one line."
    if errors:
        raise ValidationError(errors)
    locked = Invoice.unscoped.select_for_update().get(pk=invoice.pk)
    if locked.status not in (Invoice.Status.FINALISED, Invoice.Status.PAID):
        raise ValidationError(f"Only issued invoices can be credited; {locked} is {locked.get_status_display()}.")
    own_lines = {line.pk: line for line in InvoiceLine.unscoped.filter(invoice=locked)}
    credited = credited_by_line(locked)
    asked: dict[int | None, int] = defaultdict(int)
    for index, line in enumerate(lines, start=1):
        if not isinstance(line.amount, int) or isinstance(line.amount, bool) or line.amount <= 0:
            raise ValidationError({"lines": f"Line {index}: the amount must be a positive number of minor units."})
        if not line.description.strip():
            raise ValidationError({"lines": f"Line {index}: say what is credited."})
        if line.invoice_line_id is not None and line.invoice_line_id not in own_lines:
            raise ValidationError({"lines": f"Line {index}: that line is not on invoice {locked.number}."})
        asked[line.invoice_line_id] += line.amount
    for line_id, amount in asked.items():
        if line_id is not None and credited.get(line_id, 0) + amount > own_lines[line_id].amount:
            left = own_lines[line_id].amount - credited.get(line_id, 0)
            raise ValidationError(
                {"lines": f"“{own_lines[line_id].description[:60]}…” has only {left} left to credit."}
            )
    if sum(credited.values()) + sum(asked.values()) > locked.subtotal:
        left = locked.subtotal - sum(credited.values())
        raise ValidationError({"lines": f"Invoice {locked.number} has only {left} (before tax) left to credit."})
    issued_on = issued_on or timezone.localdate()
    (sequence, number), *_ = _next_numbers(CREDIT_NOTE_SERIES, issued_on.year, 1)
    taxes = [calc.tax_of(line.amount, locked.tax_rate_bps) for line in lines]
    subtotal = sum(line.amount for line in lines)
    note = CreditNote.unscoped.create(
        tenant_id=locked.tenant_id,
        invoice=locked,
        number=number,
        year=issued_on.year,
        sequence=sequence,
        issued_on=issued_on,
        reason=reason[:500],
        currency=locked.currency,
        subtotal=subtotal,
        tax=sum(taxes),
        total=subtotal + sum(taxes),
        created_by=actor.label[:200],
    )
    CreditNoteLine.unscoped.bulk_create(
        [
            CreditNoteLine(
                tenant_id=locked.tenant_id,
                credit_note=note,
                position=position,
                invoice_line_id=line.invoice_line_id,
                description=line.description.strip()[:300],
                amount=line.amount,
                tax=tax,
            )
            for position, (line, tax) in enumerate(zip(lines, taxes, strict=True), start=1)
        ]
    )
    audit_record(
        actor=actor,
        tenant_id=locked.tenant_id,
        action=AuditAction.CREDIT_NOTE_ISSUED,
        obj=note,
        changes={"invoice": locked.number, "total": note.total, "reason": note.reason},
    )
    return note


def exchange_rate_set(*, actor: Actor, month: date, base: str, quote: str, rate: Decimal) -> ExchangeRate:
    """The rate of a month (first day), created or replaced while no issued invoice of the month used it."""
    base, quote = _check_currency(base), _check_currency(quote)
    if base == quote:
        raise ValidationError({"quote": "Two different currencies."})
    if not isinstance(rate, Decimal) or rate <= 0:
        raise ValidationError({"rate": "A positive decimal."})
    month = month.replace(day=1)
    used = Invoice.unscoped.filter(
        period_start=month, currency=quote, status__in=[Invoice.Status.FINALISED, Invoice.Status.PAID]
    )
    if used.exists():
        raise ValidationError({"month": f"Invoices in {quote} of {month:%Y-%m} are issued; the rate is fixed."})
    with transaction.atomic():
        found, created = ExchangeRate.objects.update_or_create(
            month=month, base=base, quote=quote, defaults={"rate": rate}
        )
        audit_record(
            actor=actor,
            tenant_id=None,
            action=AuditAction.EXCHANGE_RATE_CREATED if created else AuditAction.EXCHANGE_RATE_UPDATED,
            obj=found,
            changes={"rate": str(rate)},
        )
    return found
