"""The invoicing app's schema as of 2026-12-04: migrations 0001–0003 squashed into one (docs/architecture.md, "Migrations").
"""

import django.core.validators
import django.db.models.deletion
import django.db.models.expressions
import django.utils.timezone
from django.db import migrations, models


class Migration(migrations.Migration):

    replaces = [
        ('invoicing', '0001_initial'),
        ('invoicing', '0002_service_promises'),
        ('invoicing', '0003_plan_event_retention'),
    ]

    initial = True

    dependencies = [
        ('stores', '0001_squashed_0004_store_dispute_policy'),
        ('tenants', '0001_squashed_0006_audit_action_payment_retried'),
    ]

    operations = [
        migrations.CreateModel(
            name='MonthClose',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('period_start', models.DateField(unique=True)),
                ('closed_at', models.DateTimeField(blank=True, null=True)),
                ('runs', models.PositiveIntegerField(default=0)),
                ('outcome', models.JSONField(blank=True, default=dict)),
            ],
            options={
                'ordering': ['-period_start'],
            },
        ),
        migrations.CreateModel(
            name='Plan',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('code', models.SlugField(help_text='Short identifier, fixed once created.', max_length=64, unique=True)),
                ('name', models.CharField(max_length=200)),
                ('description', models.TextField(blank=True)),
                ('event_retention_days', models.PositiveIntegerField(default=395, help_text='Raw store events older than this are exported to storage (gzip NDJSON, re-importable through an upload) and removed from the database, daily. Visits, receipts, payments and invoices are kept.', validators=[django.core.validators.MinValueValidator(1)], verbose_name='event retention (days)')),
                ('created_at', models.DateTimeField(default=django.utils.timezone.now, editable=False)),
            ],
            options={
                'ordering': ['name'],
            },
        ),
        migrations.CreateModel(
            name='DocumentCounter',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('series', models.CharField(max_length=8)),
                ('year', models.PositiveIntegerField()),
                ('last', models.PositiveIntegerField(default=0)),
            ],
            options={
                'constraints': [models.UniqueConstraint(fields=('series', 'year'), name='document_counter_one_per_year')],
            },
        ),
        migrations.CreateModel(
            name='ExchangeRate',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('month', models.DateField(help_text='First day of the month the rate applies to.')),
                ('base', models.CharField(help_text='Currency of the sales, e.g. EUR.', max_length=3)),
                ('quote', models.CharField(help_text='Billing currency, e.g. USD.', max_length=3)),
                ('rate', models.DecimalField(decimal_places=10, help_text='1 base = rate quote.', max_digits=20)),
            ],
            options={
                'ordering': ['-month', 'base', 'quote'],
                'constraints': [models.UniqueConstraint(fields=('month', 'base', 'quote'), name='exchange_rate_one_per_month'), models.CheckConstraint(condition=models.Q(('rate__gt', 0)), name='exchange_rate_positive')],
            },
        ),
        migrations.CreateModel(
            name='Invoice',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('period_start', models.DateField()),
                ('period_end', models.DateField(help_text='Last day of the period (inclusive).')),
                ('status', models.CharField(choices=[('draft', 'Draft'), ('finalised', 'Finalised'), ('paid', 'Paid'), ('void', 'Void')], default='draft', max_length=10)),
                ('number', models.CharField(blank=True, help_text='Given at finalisation, gap-free per year.', max_length=32)),
                ('year', models.PositiveIntegerField(blank=True, editable=False, null=True)),
                ('sequence', models.PositiveIntegerField(blank=True, editable=False, null=True)),
                ('currency', models.CharField(max_length=3)),
                ('subtotal', models.BigIntegerField(default=0)),
                ('tax', models.BigIntegerField(default=0)),
                ('total', models.BigIntegerField(default=0)),
                ('tax_label', models.CharField(blank=True, max_length=32)),
                ('tax_rate_bps', models.PositiveIntegerField(default=0)),
                ('bill_to', models.JSONField(default=dict, help_text="The licensee's details as printed.")),
                ('issuer', models.JSONField(default=dict, help_text="The operator's details as printed.")),
                ('issued_on', models.DateField(blank=True, null=True)),
                ('due_on', models.DateField(blank=True, null=True)),
                ('created_at', models.DateTimeField(default=django.utils.timezone.now, editable=False)),
                ('updated_at', models.DateTimeField(default=django.utils.timezone.now)),
                ('finalised_at', models.DateTimeField(blank=True, null=True)),
                ('finalised_by', models.CharField(blank=True, max_length=200)),
                ('paid_on', models.DateField(blank=True, null=True)),
                ('voided_at', models.DateTimeField(blank=True, null=True)),
                ('void_reason', models.CharField(blank=True, max_length=500)),
                ('tenant', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='+', to='tenants.tenant')),
            ],
            options={
                'ordering': ['-period_start', 'tenant'],
            },
        ),
        migrations.CreateModel(
            name='CreditNote',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('number', models.CharField(max_length=32)),
                ('year', models.PositiveIntegerField(editable=False)),
                ('sequence', models.PositiveIntegerField(editable=False)),
                ('issued_on', models.DateField()),
                ('reason', models.CharField(max_length=500)),
                ('currency', models.CharField(max_length=3)),
                ('subtotal', models.BigIntegerField()),
                ('tax', models.BigIntegerField()),
                ('total', models.BigIntegerField()),
                ('created_at', models.DateTimeField(default=django.utils.timezone.now, editable=False)),
                ('created_by', models.CharField(blank=True, max_length=200)),
                ('tenant', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='+', to='tenants.tenant')),
                ('invoice', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='credit_notes', to='invoicing.invoice')),
            ],
            options={
                'ordering': ['-issued_on', '-sequence'],
            },
        ),
        migrations.CreateModel(
            name='InvoiceLine',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('position', models.PositiveIntegerField()),
                ('kind', models.CharField(choices=[('store_fee', 'Store fee'), ('visit_fee', 'Visit fee'), ('revenue_share', 'Revenue share'), ('minimum', 'Monthly minimum top-up'), ('service_credit', 'Service credit (a missed promise)')], max_length=16)),
                ('description', models.CharField(max_length=300)),
                ('starts_on', models.DateField()),
                ('ends_on', models.DateField()),
                ('quantity', models.BigIntegerField(help_text='Store-days, visits, or net sales in minor units.')),
                ('unit', models.CharField(help_text='What the quantity counts.', max_length=32)),
                ('unit_price', models.BigIntegerField(help_text='Minor units per unit; for a share, basis points.')),
                ('amount', models.BigIntegerField()),
                ('tax', models.BigIntegerField(default=0)),
                ('invoice', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='lines', to='invoicing.invoice')),
                ('tenant', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='+', to='tenants.tenant')),
            ],
            options={
                'ordering': ['invoice', 'position'],
            },
        ),
        migrations.CreateModel(
            name='CreditNoteLine',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('position', models.PositiveIntegerField()),
                ('description', models.CharField(max_length=300)),
                ('amount', models.BigIntegerField(help_text='Credited, minor units, positive.')),
                ('tax', models.BigIntegerField(default=0)),
                ('credit_note', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='lines', to='invoicing.creditnote')),
                ('tenant', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='+', to='tenants.tenant')),
                ('invoice_line', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='invoicing.invoiceline')),
            ],
            options={
                'ordering': ['credit_note', 'position'],
            },
        ),
        migrations.CreateModel(
            name='PlanVersion',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('number', models.PositiveIntegerField(editable=False)),
                ('currency', models.CharField(help_text='ISO 4217; the currency the plan bills in.', max_length=3)),
                ('store_fee', models.BigIntegerField(help_text='Per active store and month, minor units (prorated by day).')),
                ('visit_fee', models.BigIntegerField(help_text='Per settled visit, minor units.')),
                ('revenue_share_bps', models.PositiveIntegerField(help_text='Share of net sales (gross minus refunds); 150 = 1.5 %.', verbose_name='revenue share (basis points)')),
                ('monthly_minimum', models.BigIntegerField(help_text='Minimum fees per month, minor units (prorated by day).')),
                ('promised_without_person_bps', models.PositiveIntegerField(blank=True, help_text="At least this share of a month's visits settled with no person; 9000 = 90 %. Empty: no promise.", null=True, verbose_name='promised share settled without a person (basis points)')),
                ('promised_exit_to_receipt_p95_s', models.PositiveIntegerField(blank=True, help_text="95 % of a month's receipts within this many seconds of the exit. Empty: no promise.", null=True, verbose_name='promised p95 exit to receipt (seconds)')),
                ('promised_review_p95_s', models.PositiveIntegerField(blank=True, help_text="95 % of a month's review decisions within this many seconds in the queue. Empty: no promise.", null=True, verbose_name='promised p95 review time to decision (seconds)')),
                ('service_credit_bps', models.PositiveIntegerField(default=0, help_text="Credited on the invoice for each promise a month misses, as a share of the month's fees on this version (store, visit, revenue share and minimum top-up); 1000 = 10 %.", verbose_name='service credit per missed promise (basis points)')),
                ('note', models.CharField(blank=True, help_text="Why this version, e.g. 'price list 2026'.", max_length=200)),
                ('created_at', models.DateTimeField(default=django.utils.timezone.now, editable=False)),
                ('created_by', models.CharField(blank=True, editable=False, max_length=200)),
                ('plan', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='versions', to='invoicing.plan')),
            ],
            options={
                'ordering': ['plan', '-number'],
            },
        ),
        migrations.CreateModel(
            name='PlanAssignment',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('starts_on', models.DateField()),
                ('ends_on', models.DateField(blank=True, help_text='Last day on this plan; empty = until changed.', null=True)),
                ('created_at', models.DateTimeField(default=django.utils.timezone.now, editable=False)),
                ('created_by', models.CharField(blank=True, editable=False, max_length=200)),
                ('tenant', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='+', to='tenants.tenant')),
                ('plan_version', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='assignments', to='invoicing.planversion')),
            ],
            options={
                'ordering': ['tenant', 'starts_on'],
            },
        ),
        migrations.AddField(
            model_name='invoiceline',
            name='plan_version',
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='invoicing.planversion'),
        ),
        migrations.CreateModel(
            name='BillingAccount',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('legal_name', models.CharField(max_length=200)),
                ('address', models.TextField(blank=True)),
                ('email', models.EmailField(blank=True, help_text='Where invoices go.', max_length=254)),
                ('tax_id', models.CharField(blank=True, help_text='VAT / GST number, printed on invoices.', max_length=64, verbose_name='tax id')),
                ('currency', models.CharField(help_text='The billing currency; plans assigned must bill in it.', max_length=3)),
                ('tax_rate_bps', models.PositiveIntegerField(default=0, help_text='Tax added to every line; 2000 = 20 %, 0 = no tax.', verbose_name='tax rate (basis points)')),
                ('tax_label', models.CharField(blank=True, default='Tax', help_text='e.g. VAT, GST, Sales tax.', max_length=32)),
                ('payment_terms_days', models.PositiveIntegerField(default=30, help_text='Due date = issue date + this.')),
                ('updated_at', models.DateTimeField(default=django.utils.timezone.now)),
                ('tenant', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='+', to='tenants.tenant')),
            ],
            options={
                'constraints': [models.UniqueConstraint(fields=('tenant',), name='billing_account_one_per_tenant'), models.CheckConstraint(condition=models.Q(('tax_rate_bps__lte', 10000)), name='billing_account_tax_rate_valid')],
            },
        ),
        migrations.CreateModel(
            name='DailyUsage',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('day', models.DateField(help_text="The store's local date.")),
                ('currency', models.CharField(max_length=3)),
                ('store_active', models.BooleanField(help_text='The store counts towards the store fee that day.')),
                ('visits_settled', models.PositiveIntegerField(default=0)),
                ('gross_sales', models.BigIntegerField(default=0, help_text='Captured and charged, minor units.')),
                ('refunds', models.BigIntegerField(default=0, help_text='Refunded (overcharge corrections), minor units.')),
                ('refunds_count', models.PositiveIntegerField(default=0)),
                ('sent_to_review', models.PositiveIntegerField(default=0, help_text='Visits settled that day that went to a person.')),
                ('decisions', models.PositiveIntegerField(default=0, help_text='Review decisions taken that day.')),
                ('decision_seconds', models.BigIntegerField(default=0, help_text='Sum of exit-to-decision times of those decisions.')),
                ('computed_at', models.DateTimeField(default=django.utils.timezone.now, help_text='When these figures last changed.')),
                ('store', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='+', to='stores.store')),
                ('tenant', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='+', to='tenants.tenant')),
            ],
            options={
                'verbose_name_plural': 'daily usage',
                'ordering': ['-day', 'store'],
                'indexes': [models.Index(fields=['tenant', 'day'], name='daily_usage_tenant_day')],
                'constraints': [models.UniqueConstraint(fields=('tenant', 'store', 'day'), name='daily_usage_one_per_store_day')],
            },
        ),
        migrations.AddIndex(
            model_name='invoice',
            index=models.Index(fields=['tenant', 'period_start'], name='invoice_tenant_period'),
        ),
        migrations.AddIndex(
            model_name='invoice',
            index=models.Index(fields=['tenant', 'status'], name='invoice_tenant_status'),
        ),
        migrations.AddConstraint(
            model_name='invoice',
            constraint=models.UniqueConstraint(condition=models.Q(('status', 'void'), _negated=True), fields=('tenant', 'period_start'), name='invoice_one_live_per_period'),
        ),
        migrations.AddConstraint(
            model_name='invoice',
            constraint=models.UniqueConstraint(condition=models.Q(('number', ''), _negated=True), fields=('tenant', 'number'), name='invoice_number_unique'),
        ),
        migrations.AddConstraint(
            model_name='invoice',
            constraint=models.CheckConstraint(condition=models.Q(models.Q(('number', ''), ('status', 'draft')), models.Q(models.Q(('status', 'draft'), _negated=True), models.Q(('number', ''), _negated=True)), ('status', 'void'), _connector='OR'), name='invoice_number_iff_issued'),
        ),
        migrations.AddConstraint(
            model_name='invoice',
            constraint=models.CheckConstraint(condition=models.Q(('total', django.db.models.expressions.CombinedExpression(models.F('subtotal'), '+', models.F('tax')))), name='invoice_total_sum'),
        ),
        migrations.AddIndex(
            model_name='creditnote',
            index=models.Index(fields=['tenant', 'invoice'], name='credit_note_tenant_invoice'),
        ),
        migrations.AddConstraint(
            model_name='creditnote',
            constraint=models.UniqueConstraint(fields=('tenant', 'number'), name='credit_note_number_unique'),
        ),
        migrations.AddConstraint(
            model_name='creditnote',
            constraint=models.CheckConstraint(condition=models.Q(('subtotal__gt', 0), ('total', django.db.models.expressions.CombinedExpression(models.F('subtotal'), '+', models.F('tax')))), name='credit_note_totals'),
        ),
        migrations.AddConstraint(
            model_name='creditnoteline',
            constraint=models.UniqueConstraint(fields=('tenant', 'credit_note', 'position'), name='credit_note_line_position'),
        ),
        migrations.AddConstraint(
            model_name='planversion',
            constraint=models.UniqueConstraint(fields=('plan', 'number'), name='plan_version_number_unique'),
        ),
        migrations.AddConstraint(
            model_name='planversion',
            constraint=models.CheckConstraint(condition=models.Q(('monthly_minimum__gte', 0), ('revenue_share_bps__lte', 10000), ('store_fee__gte', 0), ('visit_fee__gte', 0)), name='plan_version_amounts_valid'),
        ),
        migrations.AddConstraint(
            model_name='planversion',
            constraint=models.CheckConstraint(condition=models.Q(('service_credit_bps__lte', 10000), models.Q(('promised_without_person_bps__isnull', True), ('promised_without_person_bps__lte', 10000), _connector='OR')), name='plan_version_promises_valid'),
        ),
        migrations.AddConstraint(
            model_name='planassignment',
            constraint=models.UniqueConstraint(fields=('tenant', 'starts_on'), name='plan_assignment_one_per_start'),
        ),
        migrations.AddConstraint(
            model_name='planassignment',
            constraint=models.CheckConstraint(condition=models.Q(('ends_on__isnull', True), ('ends_on__gte', models.F('starts_on')), _connector='OR'), name='plan_assignment_ends_after_start'),
        ),
        migrations.AddConstraint(
            model_name='invoiceline',
            constraint=models.UniqueConstraint(fields=('tenant', 'invoice', 'position'), name='invoice_line_position'),
        ),
    ]
