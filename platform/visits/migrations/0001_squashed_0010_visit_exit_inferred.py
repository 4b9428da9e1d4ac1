"""The visits app's schema as of 2026-12-04: migrations 0001–0010 squashed into one (docs/architecture.md, "Migrations").

Its data migrations (entry tokens hashed, groups read from entries, review reasons as data, decided carts
awaiting payment) only changed rows that existed then: a fresh database has none, and an old one has run them.
"""

import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    replaces = [
        ('visits', '0001_initial'),
        ('visits', '0002_chargeinstruction_reviewdecision_visitline_and_more'),
        ('visits', '0003_visit_payment_summary'),
        ('visits', '0004_calibration_and_risk'),
        ('visits', '0005_visit_shopper_token_hash'),
        ('visits', '0006_hash_visits_entry_tokens'),
        ('visits', '0007_visit_group_and_line_takers'),
        ('visits', '0008_review_reasons_as_data'),
        ('visits', '0009_visit_awaiting_payment'),
        ('visits', '0010_visit_exit_inferred'),
    ]

    initial = True

    dependencies = [
        ('stores', '0001_squashed_0004_store_dispute_policy'),
        ('tenants', '0001_squashed_0006_audit_action_payment_retried'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name='Visit',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('session', models.CharField(max_length=64)),
                ('shopper_token_hash', models.CharField(blank=True, help_text='SHA-256 of the entry token the visit came in with (core.entry_tokens).', max_length=128)),
                ('group', models.CharField(blank=True, help_text="A companion's payer: the session whose card pays for this visit (spec v1.1 `group`); blank for a payer or a lone shopper.", max_length=64)),
                ('status', models.CharField(choices=[('open', 'Open (shopper in the store)'), ('settling', 'Settling (waiting for late events)'), ('needs_review', 'Needs review'), ('awaiting_payment', 'Being charged (the cart is decided, Stripe has not answered yet)'), ('charged', 'Charged'), ('payment_failed', 'Payment failed'), ('refunded', 'Refunded'), ('no_charge', 'No charge (empty cart)')], default='open', max_length=16)),
                ('entered_at', models.DateTimeField(blank=True, null=True)),
                ('exited_at', models.DateTimeField(blank=True, null=True)),
                ('last_event_at', models.DateTimeField(blank=True, null=True)),
                ('exit_inferred', models.BooleanField(default=False, help_text='No exit event arrived: the visit was closed at its last event after VISIT_EXIT_TIMEOUT_MINUTES.')),
                ('events_count', models.PositiveIntegerField(default=0)),
                ('currency', models.CharField(blank=True, max_length=3)),
                ('subtotal', models.BigIntegerField(default=0)),
                ('tax', models.BigIntegerField(default=0)),
                ('total', models.BigIntegerField(default=0)),
                ('charged_total', models.BigIntegerField(default=0, help_text='What the charge instructions so far add up to.')),
                ('payment_status', models.CharField(choices=[('none', 'Nothing to pay yet'), ('pending', 'Pending'), ('succeeded', 'Paid'), ('failed', 'Failed (balance open)')], default='none', help_text='Where the money stands.', max_length=10)),
                ('payment_reference', models.CharField(blank=True, help_text="Stripe's id of the main payment.", max_length=64)),
                ('paid', models.BigIntegerField(default=0, help_text='Captured and charged so far, minor units.')),
                ('refunded', models.BigIntegerField(default=0, help_text='Refunded so far, minor units.')),
                ('payment_failure', models.CharField(blank=True, help_text="Stripe's reason for the last failure.", max_length=500)),
                ('review_reasons', models.JSONField(blank=True, default=list)),
                ('risk', models.FloatField(blank=True, help_text="The chance that something on the engine's cart is not the shopper's, as settling saw it.", null=True)),
                ('cart_version', models.PositiveIntegerField(default=0)),
                ('settled_at', models.DateTimeField(blank=True, help_text='When the visit became final.', null=True)),
                ('created_at', models.DateTimeField(default=django.utils.timezone.now, editable=False)),
                ('updated_at', models.DateTimeField(default=django.utils.timezone.now)),
                ('store', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='visits', to='stores.store')),
                ('tenant', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='+', to='tenants.tenant')),
            ],
            options={
                'ordering': ['-entered_at'],
            },
        ),
        migrations.CreateModel(
            name='ReviewDecision',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('action', models.CharField(choices=[('approve', 'Approved (charge)'), ('void', 'Voided (no charge)')], max_length=8)),
                ('lines_before', models.JSONField()),
                ('lines_after', models.JSONField()),
                ('note', models.TextField(blank=True)),
                ('decided_at', models.DateTimeField(default=django.utils.timezone.now)),
                ('reviewer', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='+', to=settings.AUTH_USER_MODEL)),
                ('tenant', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='+', to='tenants.tenant')),
                ('visit', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='reviews', to='visits.visit')),
            ],
            options={
                'ordering': ['-decided_at'],
            },
        ),
        migrations.CreateModel(
            name='ChargeInstruction',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('sequence', models.PositiveIntegerField()),
                ('kind', models.CharField(choices=[('capture', 'Capture the cart total'), ('adjust', 'Charge or refund a difference'), ('release', 'Release the hold (nothing to charge)')], max_length=8)),
                ('amount', models.BigIntegerField(help_text='Minor units; negative for a refund.')),
                ('currency', models.CharField(max_length=3)),
                ('reason', models.CharField(max_length=200)),
                ('state', models.CharField(choices=[('pending', 'Pending'), ('done', 'Done'), ('failed', 'Failed')], default='pending', max_length=8)),
                ('created_at', models.DateTimeField(default=django.utils.timezone.now)),
                ('tenant', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='+', to='tenants.tenant')),
                ('visit', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='charge_instructions', to='visits.visit')),
            ],
            options={
                'ordering': ['visit_id', 'sequence'],
            },
        ),
        migrations.CreateModel(
            name='VisitLine',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('sku', models.CharField(max_length=64)),
                ('name', models.CharField(max_length=200)),
                ('qty', models.PositiveIntegerField()),
                ('unit_price', models.BigIntegerField(help_text='Minor units, the price in force when first taken.')),
                ('amount', models.BigIntegerField()),
                ('tax_rate', models.DecimalField(decimal_places=4, max_digits=7)),
                ('tax', models.BigIntegerField()),
                ('confidence', models.FloatField()),
                ('evidence', models.JSONField(default=list, help_text='Ids of the events that produced the line.')),
                ('source', models.CharField(choices=[('engine', 'Engine'), ('review', 'Reviewer')], default='engine', max_length=8)),
                ('taken_by', models.JSONField(blank=True, default=list, help_text="On a group's receipt, the sessions of the members who took the line (the payer's own included).")),
                ('tenant', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='+', to='tenants.tenant')),
                ('visit', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='lines', to='visits.visit')),
            ],
            options={
                'ordering': ['visit_id', 'sku'],
            },
        ),
        migrations.CreateModel(
            name='StoreCalibration',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('number', models.PositiveIntegerField(help_text="1, 2, … per store: the store's calibrations in order.")),
                ('created_at', models.DateTimeField(default=django.utils.timezone.now, editable=False)),
                ('created_by', models.CharField(blank=True, help_text='Who asked for it, as it read at the time.', max_length=200)),
                ('calibration', models.JSONField(help_text='The curves and the visit risks the engine reads (visits.calibration).')),
                ('samples', models.PositiveIntegerField(help_text='Labelled examples it learnt from.')),
                ('reviewed_visits', models.PositiveIntegerField(help_text='Visits a person decided that it learnt from.')),
                ('visits', models.PositiveIntegerField(help_text="The store's recent visits it was learnt on.")),
                ('auto_charge_share', models.FloatField(help_text='Share of those visits it charges without a person.')),
                ('overcharge_risk', models.DecimalField(decimal_places=4, help_text="The store's risk at the time.", max_digits=5)),
                ('charge_limit', models.FloatField(help_text='The highest visit risk charged without a person, at that risk.')),
                ('store', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='calibrations', to='stores.store')),
                ('tenant', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='+', to='tenants.tenant')),
            ],
            options={
                'ordering': ['store', '-number'],
                'constraints': [models.UniqueConstraint(fields=('tenant', 'store', 'number'), name='store_calibration_number_unique')],
            },
        ),
        migrations.AddIndex(
            model_name='visit',
            index=models.Index(fields=['tenant', 'store', 'status'], name='visit_store_status'),
        ),
        migrations.AddIndex(
            model_name='visit',
            index=models.Index(fields=['tenant', 'status', 'exited_at'], name='visit_status_exited'),
        ),
        migrations.AddIndex(
            model_name='visit',
            index=models.Index(fields=['tenant', 'store', 'group'], name='visit_store_group'),
        ),
        migrations.AddConstraint(
            model_name='visit',
            constraint=models.UniqueConstraint(fields=('tenant', 'store', 'session'), name='visit_session_unique'),
        ),
        migrations.AddIndex(
            model_name='reviewdecision',
            index=models.Index(fields=['tenant', '-decided_at'], name='review_tenant_decided'),
        ),
        migrations.AddIndex(
            model_name='chargeinstruction',
            index=models.Index(fields=['tenant', 'state'], name='charge_instruction_state'),
        ),
        migrations.AddConstraint(
            model_name='chargeinstruction',
            constraint=models.UniqueConstraint(fields=('tenant', 'visit', 'sequence'), name='charge_instruction_sequence'),
        ),
        migrations.AddConstraint(
            model_name='visitline',
            constraint=models.UniqueConstraint(fields=('tenant', 'visit', 'sku'), name='visit_line_one_per_sku'),
        ),
    ]
