"""A decided cart whose money has not moved yet is `awaiting_payment` ("Being charged"), no longer `charged`.

Visits that settling marked `charged` (or `refunded`) while payments had not recorded Stripe's answer yet — a charge
instruction still pending, or no successful payment on file — become `awaiting_payment`; payments makes them
`charged` (or `refunded`, `no_charge`) when it records the outcome, as it does for every visit from now on.
"""

from __future__ import annotations

from django.db import migrations, models
from django.db.models import Exists, OuterRef, Q


def awaiting_payment(apps, schema_editor) -> None:
    Visit = apps.get_model("visits", "Visit")
    ChargeInstruction = apps.get_model("visits", "ChargeInstruction")
    pending = ChargeInstruction._base_manager.filter(visit=OuterRef("pk"), state="pending")
    Visit._base_manager.filter(
        Q(Exists(pending), status__in=("charged", "refunded"))
        | Q(status="charged", payment_status__in=("none", "pending"))
    ).update(status="awaiting_payment")


def charged_again(apps, schema_editor) -> None:
    Visit = apps.get_model("visits", "Visit")
    Visit._base_manager.filter(status="awaiting_payment").update(status="charged")


class Migration(migrations.Migration):
    dependencies = [
        ("visits", "0008_review_reasons_as_data"),
    ]

    operations = [
        migrations.AlterField(
            model_name="visit",
            name="status",
            field=models.CharField(
                choices=[
                    ("open", "Open (shopper in the store)"),
                    ("settling", "Settling (waiting for late events)"),
                    ("needs_review", "Needs review"),
                    ("awaiting_payment", "Being charged (the cart is decided, Stripe has not answered yet)"),
                    ("charged", "Charged"),
                    ("payment_failed", "Payment failed"),
                    ("refunded", "Refunded"),
                    ("no_charge", "No charge (empty cart)"),
                ],
                default="open",
                max_length=16,
            ),
        ),
        migrations.RunPython(awaiting_payment, charged_again),
    ]
