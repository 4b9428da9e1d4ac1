"""The catalog app's schema as of 2026-12-04: migrations 0001–0004 squashed into one (docs/architecture.md, "Migrations").
"""

import catalog.models
import django.core.validators
import django.db.models.deletion
import django.utils.timezone
from decimal import Decimal
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    replaces = [
        ('catalog', '0001_initial'),
        ('catalog', '0002_catalog_import'),
        ('catalog', '0003_product_min_age'),
        ('catalog', '0004_import_effective_from'),
    ]

    initial = True

    dependencies = [
        ('tenants', '0001_squashed_0006_audit_action_payment_retried'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name='Product',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('sku', models.CharField(max_length=64, verbose_name='SKU')),
                ('name', models.CharField(max_length=200)),
                ('barcodes', models.JSONField(blank=True, default=list, help_text='GTINs printed on the item.')),
                ('unit_weight_g', models.DecimalField(decimal_places=2, max_digits=10, validators=[django.core.validators.MinValueValidator(Decimal('0.01'))], verbose_name='unit weight (g)')),
                ('weight_tolerance_g', models.DecimalField(decimal_places=2, help_text='How far one unit may weigh from its nominal weight and still count as one unit.', max_digits=10, verbose_name='weight tolerance (g)')),
                ('image_url', models.URLField(blank=True, max_length=500)),
                ('min_age', models.PositiveSmallIntegerField(blank=True, help_text="Age-restricted product (e.g. 18 or 21): a visit holding one is charged only once staff checked the shopper's ID at that age. Empty when anyone may buy it.", null=True, validators=[django.core.validators.MinValueValidator(1), django.core.validators.MaxValueValidator(150)], verbose_name='minimum age')),
                ('status', models.CharField(choices=[('active', 'Active'), ('archived', 'Archived')], default='active', max_length=16)),
                ('created_at', models.DateTimeField(default=django.utils.timezone.now, editable=False)),
                ('updated_at', models.DateTimeField(default=django.utils.timezone.now, editable=False)),
                ('tenant', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='+', to='tenants.tenant')),
            ],
            options={
                'ordering': ['sku'],
            },
        ),
        migrations.CreateModel(
            name='ProductPrice',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('currency', models.CharField(help_text='ISO 4217, e.g. USD.', max_length=3)),
                ('unit_price', models.PositiveBigIntegerField(help_text="In the currency's minor unit (cents).")),
                ('tax_rate', models.DecimalField(decimal_places=4, help_text='A percentage, e.g. 8.25.', max_digits=7, verbose_name='tax rate (%)')),
                ('effective_from', models.DateTimeField(default=django.utils.timezone.now)),
                ('created_at', models.DateTimeField(default=django.utils.timezone.now, editable=False)),
                ('product', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='prices', to='catalog.product')),
                ('tenant', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='+', to='tenants.tenant')),
            ],
            options={
                'ordering': ['product', 'currency', '-effective_from'],
            },
        ),
        migrations.CreateModel(
            name='CatalogImport',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('status', models.CharField(choices=[('queued', 'Queued'), ('processing', 'Processing'), ('done', 'Done'), ('failed', 'Failed')], default='queued', max_length=16)),
                ('file', models.FileField(blank=True, max_length=300, upload_to=catalog.models.catalog_import_upload_to)),
                ('filename', models.CharField(blank=True, help_text="The uploaded file's name.", max_length=255)),
                ('size_bytes', models.PositiveBigIntegerField(default=0)),
                ('partial', models.BooleanField(default=False, help_text='Keep the good rows when some rows are bad.')),
                ('default_currency', models.CharField(blank=True, help_text='For rows that name no currency.', max_length=3)),
                ('effective_from', models.DateTimeField(blank=True, help_text="The past instant the new prices apply from; empty: the import's time.", null=True, verbose_name='prices apply from')),
                ('source', models.CharField(help_text='Where it came from: api or admin.', max_length=8)),
                ('rows', models.PositiveIntegerField(default=0, help_text='Product rows in the file.')),
                ('created_count', models.PositiveIntegerField(default=0, verbose_name='created')),
                ('updated_count', models.PositiveIntegerField(default=0, verbose_name='updated')),
                ('unchanged_count', models.PositiveIntegerField(default=0, verbose_name='unchanged')),
                ('error_count', models.PositiveIntegerField(default=0, verbose_name='bad rows')),
                ('errors', models.JSONField(blank=True, default=list, help_text='[{"row", "message"}], in file order.')),
                ('message', models.TextField(blank=True, help_text='Why the import failed, in a sentence.')),
                ('progress', models.FloatField(default=0.0, help_text='0 to 1.')),
                ('request_id', models.CharField(blank=True, editable=False, max_length=64)),
                ('created_at', models.DateTimeField(default=django.utils.timezone.now, editable=False)),
                ('started_at', models.DateTimeField(blank=True, editable=False, null=True)),
                ('finished_at', models.DateTimeField(blank=True, editable=False, null=True)),
                ('api_key', models.ForeignKey(blank=True, editable=False, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to='tenants.apikey')),
                ('created_by', models.ForeignKey(blank=True, editable=False, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
                ('tenant', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='+', to='tenants.tenant')),
            ],
            options={
                'verbose_name': 'catalog import',
                'ordering': ['-created_at', '-id'],
                'indexes': [models.Index(fields=['tenant', '-created_at'], name='catalogimport_tenant_created'), models.Index(fields=['tenant', 'status'], name='catalogimport_tenant_status')],
            },
        ),
        migrations.AddIndex(
            model_name='product',
            index=models.Index(fields=['tenant', 'status', 'sku'], name='product_tenant_status_sku'),
        ),
        migrations.AddConstraint(
            model_name='product',
            constraint=models.UniqueConstraint(fields=('tenant', 'sku'), name='product_sku_unique_per_tenant'),
        ),
        migrations.AddIndex(
            model_name='productprice',
            index=models.Index(fields=['tenant', 'product', 'currency', '-effective_from'], name='price_lookup'),
        ),
        migrations.AddConstraint(
            model_name='productprice',
            constraint=models.UniqueConstraint(fields=('tenant', 'product', 'currency', 'effective_from'), name='price_one_version_per_instant'),
        ),
    ]
