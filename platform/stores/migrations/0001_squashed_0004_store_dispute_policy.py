"""The stores app's schema as of 2026-12-04: migrations 0001–0004 squashed into one (docs/architecture.md, "Migrations").
"""

import django.core.validators
import django.db.models.deletion
import django.utils.timezone
from decimal import Decimal
from django.db import migrations, models


class Migration(migrations.Migration):

    replaces = [
        ('stores', '0001_initial'),
        ('stores', '0002_device_kind_staff_device'),
        ('stores', '0003_overcharge_risk'),
        ('stores', '0004_store_dispute_policy'),
    ]

    initial = True

    dependencies = [
        ('catalog', '0001_squashed_0004_import_effective_from'),
        ('tenants', '0001_squashed_0006_audit_action_payment_retried'),
    ]

    operations = [
        migrations.CreateModel(
            name='Store',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('code', models.CharField(help_text="The store's code in event streams and API paths.", max_length=64)),
                ('name', models.CharField(max_length=200)),
                ('address', models.TextField(blank=True)),
                ('timezone', models.CharField(default='UTC', help_text='IANA name, e.g. America/New_York.', max_length=64)),
                ('currency', models.CharField(help_text='ISO 4217, e.g. USD.', max_length=3)),
                ('status', models.CharField(choices=[('onboarding', 'Onboarding'), ('active', 'Active'), ('closed', 'Closed')], default='onboarding', max_length=16)),
                ('preauth_amount', models.PositiveBigIntegerField(default=5000, help_text="Held on the shopper's card at entry, in the currency's minor unit.", verbose_name='pre-authorisation amount')),
                ('overcharge_risk', models.DecimalField(decimal_places=4, default=Decimal('0.005'), help_text='At most this share of visits overcharged (0.005 = 0.5 %): every visit that fits in it is charged without a person, the rest go to review.', max_digits=5, validators=[django.core.validators.MinValueValidator(Decimal('0.0005')), django.core.validators.MaxValueValidator(Decimal('0.05'))])),
                ('settling_window_seconds', models.PositiveIntegerField(default=120, help_text='How long after exit late events are still awaited before a visit is final.')),
                ('dispute_window_days', models.PositiveSmallIntegerField(default=7, help_text="A shopper may dispute a receipt's lines up to this many days after leaving the store.", validators=[django.core.validators.MinValueValidator(1), django.core.validators.MaxValueValidator(365)], verbose_name='dispute window (days)')),
                ('dispute_auto_refund_limit', models.PositiveBigIntegerField(default=500, help_text='A dispute asking this much or less (minor units) is refunded at once; 0 refunds none by amount.', verbose_name='auto-refund limit')),
                ('dispute_auto_refund_unsure', models.BooleanField(default=True, help_text="A dispute of lines the engine was unsure of (above the store's charge limit) is refunded at once.", verbose_name='auto-refund lines the platform was unsure of')),
                ('dispute_review_hours', models.PositiveSmallIntegerField(default=48, help_text='A dispute sent to the queue must be decided within this many hours, or it is refunded.', validators=[django.core.validators.MinValueValidator(1), django.core.validators.MaxValueValidator(720)], verbose_name='deadline for a person (hours)')),
                ('created_at', models.DateTimeField(default=django.utils.timezone.now, editable=False)),
                ('tenant', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='+', to='tenants.tenant')),
            ],
            options={
                'ordering': ['code'],
            },
        ),
        migrations.CreateModel(
            name='LayoutVersion',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('number', models.PositiveIntegerField()),
                ('effective_from', models.DateTimeField()),
                ('document', models.JSONField(help_text='The layout document as uploaded.')),
                ('floor_width_m', models.DecimalField(decimal_places=2, max_digits=7)),
                ('floor_depth_m', models.DecimalField(decimal_places=2, max_digits=7)),
                ('created_at', models.DateTimeField(default=django.utils.timezone.now, editable=False)),
                ('created_by', models.CharField(blank=True, max_length=200)),
                ('tenant', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='+', to='tenants.tenant')),
                ('store', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='layouts', to='stores.store')),
            ],
            options={
                'ordering': ['store', '-effective_from'],
            },
        ),
        migrations.CreateModel(
            name='Device',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('code', models.CharField(max_length=64)),
                ('kind', models.CharField(choices=[('camera', 'Camera'), ('weight_sensor', 'Weight sensor'), ('gate', 'Gate'), ('staff_device', 'Staff device')], max_length=16)),
                ('status', models.CharField(choices=[('unknown', 'Not heard from yet'), ('online', 'Online'), ('degraded', 'Degraded'), ('offline', 'Offline')], default='unknown', max_length=16)),
                ('last_seen_at', models.DateTimeField(blank=True, null=True)),
                ('status_changed_at', models.DateTimeField(blank=True, null=True)),
                ('created_at', models.DateTimeField(default=django.utils.timezone.now, editable=False)),
                ('tenant', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='+', to='tenants.tenant')),
                ('store', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='devices', to='stores.store')),
            ],
            options={
                'ordering': ['store', 'code'],
            },
        ),
        migrations.CreateModel(
            name='Zone',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('code', models.CharField(max_length=64)),
                ('name', models.CharField(max_length=200)),
                ('polygon', models.JSONField(help_text='[[x, y], …] in metres.')),
                ('layout', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='zones', to='stores.layoutversion')),
                ('tenant', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='+', to='tenants.tenant')),
            ],
            options={
                'ordering': ['layout', 'code'],
            },
        ),
        migrations.CreateModel(
            name='Fixture',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('code', models.CharField(max_length=64)),
                ('kind', models.CharField(max_length=32)),
                ('x_m', models.FloatField()),
                ('y_m', models.FloatField()),
                ('width_m', models.FloatField()),
                ('depth_m', models.FloatField()),
                ('tenant', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='+', to='tenants.tenant')),
                ('layout', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='fixtures', to='stores.layoutversion')),
                ('zone', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='fixtures', to='stores.zone')),
            ],
            options={
                'ordering': ['layout', 'code'],
            },
        ),
        migrations.CreateModel(
            name='DevicePlacement',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('position', models.JSONField(blank=True, help_text='[x, y] or [x, y, height] in metres.', null=True)),
                ('covers', models.JSONField(blank=True, default=list, help_text='Zone codes a camera sees.')),
                ('device', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='placements', to='stores.device')),
                ('tenant', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='+', to='tenants.tenant')),
                ('fixture', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='stores.fixture')),
                ('layout', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='placements', to='stores.layoutversion')),
            ],
            options={
                'ordering': ['layout', 'device__code'],
                'constraints': [models.UniqueConstraint(fields=('tenant', 'layout', 'device'), name='placement_once_per_layout')],
            },
        ),
        migrations.CreateModel(
            name='Bin',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('code', models.CharField(max_length=64)),
                ('sku', models.CharField(max_length=64)),
                ('capacity', models.PositiveIntegerField()),
                ('product', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='+', to='catalog.product')),
                ('tenant', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='+', to='tenants.tenant')),
                ('sensor', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='stores.device')),
                ('fixture', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='bins', to='stores.fixture')),
                ('layout', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='bins', to='stores.layoutversion')),
            ],
            options={
                'ordering': ['layout', 'code'],
                'constraints': [models.UniqueConstraint(fields=('tenant', 'layout', 'code'), name='bin_code_unique')],
            },
        ),
        migrations.AddConstraint(
            model_name='store',
            constraint=models.UniqueConstraint(fields=('tenant', 'code'), name='store_code_unique_per_tenant'),
        ),
        migrations.AddConstraint(
            model_name='layoutversion',
            constraint=models.UniqueConstraint(fields=('tenant', 'store', 'number'), name='layout_number_unique_per_store'),
        ),
        migrations.AddConstraint(
            model_name='layoutversion',
            constraint=models.UniqueConstraint(fields=('tenant', 'store', 'effective_from'), name='layout_one_per_instant'),
        ),
        migrations.AddIndex(
            model_name='device',
            index=models.Index(fields=['tenant', 'status'], name='device_tenant_status'),
        ),
        migrations.AddConstraint(
            model_name='device',
            constraint=models.UniqueConstraint(fields=('tenant', 'store', 'code'), name='device_code_unique_per_store'),
        ),
        migrations.AddConstraint(
            model_name='zone',
            constraint=models.UniqueConstraint(fields=('tenant', 'layout', 'code'), name='zone_code_unique'),
        ),
        migrations.AddConstraint(
            model_name='fixture',
            constraint=models.UniqueConstraint(fields=('tenant', 'layout', 'code'), name='fixture_code_unique'),
        ),
    ]
