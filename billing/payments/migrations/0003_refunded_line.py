"""The line-refund ledger, filled from the line refunds staff granted so far (the rows each refund attempt kept).

A refund split over two payments kept the same rows on each attempt: the units are capped at the line's quantity.
"""

import django.db.models.deletion
import django.utils.timezone
from django.db import migrations, models


def ledger_from_earlier_refunds(apps, schema_editor):
    PaymentAttempt = apps.get_model("payments", "PaymentAttempt")
    RefundedLine = apps.get_model("payments", "RefundedLine")
    VisitLine = apps.get_model("visits", "VisitLine")
    refunded = {}
    attempts = PaymentAttempt.objects.filter(purpose="refund").exclude(state="failed").exclude(refund_lines=[])
    for attempt in attempts.only("tenant_id", "visit_id", "refund_lines").iterator(chunk_size=2000):
        for row in attempt.refund_lines:
            key = (attempt.tenant_id, attempt.visit_id, str(row.get("sku", "")))
            refunded[key] = refunded.get(key, 0) + int(row.get("qty") or 0)
    visits = {visit_id for _, visit_id, _ in refunded}
    charged = {
        (line.visit_id, line.sku): line.qty for line in VisitLine.objects.filter(visit_id__in=visits).only("visit_id", "sku", "qty")
    }
    RefundedLine.objects.bulk_create(
        [
            RefundedLine(
                tenant_id=tenant_id,
                visit_id=visit_id,
                sku=sku,
                units_charged=charged[(visit_id, sku)],
                units_refunded=min(units, charged[(visit_id, sku)]),
            )
            for (tenant_id, visit_id, sku), units in refunded.items()
            if (visit_id, sku) in charged
        ],
        batch_size=2000,
    )


class Migration(migrations.Migration):

    dependencies = [
        ('payments', '0002_shopper_erasure'),
        ('tenants', '0003_tenant_quotas'),
        ('visits', '0006_hash_visits_entry_tokens'),
    ]

    operations = [
        migrations.CreateModel(
            name='RefundedLine',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('sku', models.CharField(max_length=64)),
                ('units_charged', models.PositiveIntegerField(help_text="The line's quantity when units of it were last refunded.")),
                ('units_refunded', models.PositiveIntegerField(default=0)),
                ('updated_at', models.DateTimeField(default=django.utils.timezone.now)),
                ('tenant', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='+', to='tenants.tenant')),
                ('visit', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='refunded_lines', to='visits.visit')),
            ],
            options={
                'constraints': [models.UniqueConstraint(fields=('tenant', 'visit', 'sku'), name='refunded_line_one_per_sku'), models.CheckConstraint(condition=models.Q(('units_refunded__lte', models.F('units_charged'))), name='refunded_line_at_most_charged')],
            },
        ),
        migrations.RunPython(ledger_from_earlier_refunds, migrations.RunPython.noop),
    ]
