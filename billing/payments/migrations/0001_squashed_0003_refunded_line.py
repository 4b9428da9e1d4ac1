"""The payments app's schema as of 2026-12-04: migrations 0001–0003 squashed into one (docs/architecture.md, "Migrations").

Its data migration (the line-refund ledger filled from earlier refunds) only copied rows that existed then: a
fresh database has none, and an old one has run it.
"""

import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    replaces = [
        ('payments', '0001_initial'),
        ('payments', '0002_shopper_erasure'),
        ('payments', '0003_refunded_line'),
    ]

    initial = True

    dependencies = [
        ('tenants', '0001_squashed_0006_audit_action_payment_retried'),
        ('visits', '0001_squashed_0010_visit_exit_inferred'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name='Shopper',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('external_ref', models.CharField(help_text="The licensee's own id for the shopper.", max_length=128)),
                ('email', models.EmailField(blank=True, help_text='Where receipts go.', max_length=254)),
                ('stripe_customer_id', models.CharField(max_length=64)),
                ('payment_method_id', models.CharField(max_length=64)),
                ('card_brand', models.CharField(blank=True, max_length=32)),
                ('card_last4', models.CharField(blank=True, max_length=4)),
                ('token_prefix', models.CharField(help_text='The start of the entry token, to recognise it.', max_length=16)),
                ('token_hash', models.CharField(help_text='SHA-256 of the entry token; the token is shown once.', max_length=64)),
                ('revoked_at', models.DateTimeField(blank=True, null=True)),
                ('erased_at', models.DateTimeField(blank=True, help_text="When the shopper's personal data was erased on request.", null=True)),
                ('created_at', models.DateTimeField(default=django.utils.timezone.now, editable=False)),
                ('updated_at', models.DateTimeField(default=django.utils.timezone.now)),
                ('tenant', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='+', to='tenants.tenant')),
            ],
            options={
                'ordering': ['external_ref'],
            },
        ),
        migrations.CreateModel(
            name='PaymentAttempt',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('purpose', models.CharField(choices=[('preauth', 'Pre-authorisation at entry'), ('capture', 'Capture of the hold'), ('charge', 'Charge (beyond the hold, an increase, or without a hold)'), ('cancel', 'Release of the hold'), ('refund', 'Refund')], max_length=8)),
                ('sequence', models.PositiveIntegerField(default=1)),
                ('amount', models.BigIntegerField(help_text='Minor units, always positive.')),
                ('currency', models.CharField(max_length=3)),
                ('state', models.CharField(choices=[('pending', 'Pending'), ('processing', 'Sent to Stripe (outcome not yet recorded)'), ('succeeded', 'Succeeded'), ('failed', 'Failed')], default='pending', max_length=10)),
                ('stripe_id', models.CharField(blank=True, help_text='PaymentIntent (pi_) or refund (re_).', max_length=64)),
                ('payment_intent_id', models.CharField(blank=True, help_text='The PaymentIntent acted on.', max_length=64)),
                ('failure_code', models.CharField(blank=True, max_length=64)),
                ('failure_message', models.CharField(blank=True, max_length=500)),
                ('tries', models.PositiveIntegerField(default=0)),
                ('next_try_at', models.DateTimeField(blank=True, null=True)),
                ('lease_until', models.DateTimeField(blank=True, help_text='While processing: nobody else touches the attempt before this time.', null=True)),
                ('reason_code', models.CharField(blank=True, help_text='Refunds: why.', max_length=32)),
                ('note', models.CharField(blank=True, max_length=500)),
                ('refund_lines', models.JSONField(blank=True, default=list, help_text='Refunds per line: [{sku, qty, amount}].')),
                ('created_at', models.DateTimeField(default=django.utils.timezone.now, editable=False)),
                ('updated_at', models.DateTimeField(default=django.utils.timezone.now)),
                ('instruction', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='attempts', to='visits.chargeinstruction')),
                ('requested_by', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to=settings.AUTH_USER_MODEL)),
                ('tenant', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='+', to='tenants.tenant')),
                ('visit', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='payment_attempts', to='visits.visit')),
                ('shopper', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='payments.shopper')),
            ],
            options={
                'ordering': ['visit_id', 'created_at', 'id'],
            },
        ),
        migrations.CreateModel(
            name='StripeEvent',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('stripe_event_id', models.CharField(max_length=64)),
                ('type', models.CharField(max_length=64)),
                ('payload', models.JSONField()),
                ('received_at', models.DateTimeField(default=django.utils.timezone.now)),
                ('processed_at', models.DateTimeField(blank=True, null=True)),
                ('outcome', models.CharField(blank=True, max_length=200)),
                ('tenant', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='+', to='tenants.tenant')),
            ],
            options={
                'ordering': ['-received_at'],
            },
        ),
        migrations.CreateModel(
            name='PaymentSettings',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('secret_key_encrypted', models.TextField(blank=True)),
                ('webhook_secret_encrypted', models.TextField(blank=True)),
                ('receipt_from_email', models.EmailField(blank=True, help_text="Sender of shoppers' receipts; the platform's if empty.", max_length=254)),
                ('updated_at', models.DateTimeField(default=django.utils.timezone.now)),
                ('tenant', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='+', to='tenants.tenant')),
            ],
            options={
                'verbose_name': 'payment settings',
                'verbose_name_plural': 'payment settings',
                'constraints': [models.UniqueConstraint(fields=('tenant',), name='payment_settings_one_per_tenant')],
            },
        ),
        migrations.CreateModel(
            name='Receipt',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('cart_version', models.PositiveIntegerField()),
                ('total', models.BigIntegerField()),
                ('currency', models.CharField(max_length=3)),
                ('emailed_to', models.EmailField(blank=True, max_length=254)),
                ('issued_at', models.DateTimeField(default=django.utils.timezone.now)),
                ('tenant', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='+', to='tenants.tenant')),
                ('visit', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='receipts', to='visits.visit')),
            ],
            options={
                'ordering': ['-issued_at'],
                'constraints': [models.UniqueConstraint(fields=('tenant', 'visit', 'cart_version'), name='receipt_once_per_version')],
            },
        ),
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
        migrations.AddConstraint(
            model_name='shopper',
            constraint=models.UniqueConstraint(condition=models.Q(('erased_at__isnull', True)), fields=('tenant', 'external_ref'), name='shopper_external_ref_unique'),
        ),
        migrations.AddConstraint(
            model_name='shopper',
            constraint=models.UniqueConstraint(fields=('tenant', 'token_hash'), name='shopper_token_unique'),
        ),
        migrations.AddIndex(
            model_name='paymentattempt',
            index=models.Index(fields=['tenant', 'state', 'next_try_at'], name='payment_attempt_retry'),
        ),
        migrations.AddIndex(
            model_name='paymentattempt',
            index=models.Index(fields=['tenant', 'stripe_id'], name='payment_attempt_stripe_id'),
        ),
        migrations.AddIndex(
            model_name='paymentattempt',
            index=models.Index(fields=['tenant', 'purpose', 'state', 'updated_at'], name='payment_attempt_purpose_day'),
        ),
        migrations.AddConstraint(
            model_name='paymentattempt',
            constraint=models.UniqueConstraint(fields=('tenant', 'visit', 'purpose', 'sequence'), name='payment_attempt_once_per_purpose_sequence'),
        ),
        migrations.AddConstraint(
            model_name='stripeevent',
            constraint=models.UniqueConstraint(fields=('tenant', 'stripe_event_id'), name='stripe_event_once'),
        ),
    ]
