"""Receipts: issued once per cart version once the money is collected, emailed and announced by webhook."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction

from billing.payments.attempts import shopper_of
from billing.payments.models import PaymentSettings, Receipt
from billing.webhooks.services import webhook_emit
from catalog.currencies import format_money
from visits import selectors as visit_selectors
from visits.models import Visit


def _receipt_text(visit: Visit, receipt: dict[str, Any]) -> str:
    currency = receipt["currency"]
    rows = [
        f"{line['qty']} × {line['name']} ({line['sku']})  {format_money(line['amount'], currency)}"
        for line in receipt["lines"]
    ]
    return "\n".join(
        [
            f"Thank you for shopping at {visit.store.name}.",
            f"Visit {visit.session}, {visit.exited_at:%Y-%m-%d %H:%M} UTC"
            if visit.exited_at
            else f"Visit {visit.session}",
            "",
            *rows,
            "",
            f"Subtotal  {format_money(receipt['subtotal'], currency)}",
            f"Tax       {format_money(receipt['tax'], currency)}",
            f"Total     {format_money(receipt['total'], currency)}",
            f"Paid by card ({receipt['payment']['reference']})",
        ]
    )


def receipt_issue(*, visit_id: int) -> Receipt | None:
    """Issue the receipt of the visit's current cart: once per cart version, emailed and announced by webhook."""
    with transaction.atomic():
        visit = Visit.objects.select_for_update(of=("self",), no_key=True).select_related("store").get(pk=visit_id)
        if visit.payment_status != Visit.PaymentStatus.SUCCEEDED:
            return None
        shopper = shopper_of(visit)
        receipt, created = Receipt.objects.get_or_create(
            tenant_id=visit.tenant_id,
            visit=visit,
            cart_version=visit.cart_version,
            defaults={"total": visit.total, "currency": visit.currency, "emailed_to": shopper.email if shopper else ""},
        )
        if not created:
            return None
        body = visit_selectors.receipt(visit)
        if receipt.emailed_to:
            account = PaymentSettings.objects.filter(tenant_id=visit.tenant_id).first()
            sender = (account.receipt_from_email if account else "") or settings.DEFAULT_FROM_EMAIL
            subject = f"Your receipt from {visit.store.name}: {format_money(visit.total, visit.currency)}"
            message = _receipt_text(visit, body)
            transaction.on_commit(lambda: send_mail(subject, message, sender, [receipt.emailed_to]))
        webhook_emit(
            tenant=visit.store.tenant,
            event_type="receipt.issued",
            payload={"store": visit.store.code, "receipt": body},
            event_key=f"{visit.pk}:{visit.cart_version}",
        )
    return receipt
