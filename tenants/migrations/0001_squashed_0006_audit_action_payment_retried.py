"""The tenants app's schema as of the release before 2026-12-04: migrations 0001–0006 squashed into one
(docs/architecture.md, "Migrations"). 0007 came after that release and stays a migration of its own (0002), so a
database migrated with that release's history upgrades: this one counts as applied, 0002 runs.

Kept from the old history: the platform's staff groups (old 0002), rows a fresh database needs. Renaming old audit
action names (old 0004) only changed rows that existed then: dropped.
"""

import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models

GROUPS = ("operator", "finance")


def create_groups(apps, schema_editor):
    """The platform's staff groups: operators run tenants, finance closes months and exports invoices."""
    Group = apps.get_model("auth", "Group")
    for name in GROUPS:
        Group.objects.get_or_create(name=name)


def delete_groups(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=GROUPS).delete()


class Migration(migrations.Migration):

    replaces = [
        ('tenants', '0001_initial'),
        ('tenants', '0002_platform_groups'),
        ('tenants', '0003_tenant_quotas'),
        ('tenants', '0004_audit_action_names'),
        ('tenants', '0005_audit_events_retired'),
        ('tenants', '0006_audit_action_payment_retried'),
    ]

    initial = True

    dependencies = [
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
        ('auth', '0012_alter_user_first_name_max_length'),
    ]

    operations = [
        migrations.CreateModel(
            name='Tenant',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('name', models.CharField(max_length=200)),
                ('slug', models.SlugField(help_text='Short identifier, fixed once created.', max_length=64, unique=True)),
                ('status', models.CharField(choices=[('active', 'Active'), ('suspended', 'Suspended')], default='active', max_length=16)),
                ('suspended_reason', models.CharField(blank=True, max_length=500)),
                ('created_at', models.DateTimeField(default=django.utils.timezone.now, editable=False)),
                ('status_changed_at', models.DateTimeField(blank=True, editable=False, null=True)),
                ('max_api_keys', models.PositiveIntegerField(blank=True, help_text="Empty: the platform's default.", null=True, verbose_name='live API keys')),
                ('max_webhook_endpoints', models.PositiveIntegerField(blank=True, help_text="Empty: the platform's default.", null=True, verbose_name='webhook endpoints')),
                ('max_stores', models.PositiveIntegerField(blank=True, help_text="Empty: the platform's default.", null=True, verbose_name='stores')),
                ('max_shoppers', models.PositiveIntegerField(blank=True, help_text="Empty: the platform's default.", null=True, verbose_name='registered shoppers (cards)')),
                ('max_streams_in_flight', models.PositiveIntegerField(blank=True, help_text="Empty: the platform's default.", null=True, verbose_name='event uploads being processed at once')),
            ],
            options={
                'ordering': ['name'],
            },
        ),
        migrations.CreateModel(
            name='ApiKey',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('name', models.CharField(max_length=100)),
                ('prefix', models.CharField(editable=False, max_length=16, unique=True)),
                ('secret_hash', models.CharField(editable=False, max_length=64)),
                ('created_at', models.DateTimeField(default=django.utils.timezone.now, editable=False)),
                ('last_used_at', models.DateTimeField(blank=True, editable=False, null=True)),
                ('revoked_at', models.DateTimeField(blank=True, editable=False, null=True)),
                ('created_by', models.ForeignKey(blank=True, editable=False, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
                ('tenant', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='+', to='tenants.tenant')),
            ],
            options={
                'verbose_name': 'API key',
                'ordering': ['-created_at'],
            },
        ),
        migrations.CreateModel(
            name='Membership',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('role', models.CharField(choices=[('manager', 'Manager'), ('staff', 'Staff'), ('viewer', 'Viewer')], default='staff', max_length=16)),
                ('created_at', models.DateTimeField(default=django.utils.timezone.now, editable=False)),
                ('user', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='memberships', to=settings.AUTH_USER_MODEL)),
                ('tenant', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='+', to='tenants.tenant')),
            ],
            options={
                'ordering': ['tenant', 'user__email'],
                'constraints': [models.UniqueConstraint(fields=('tenant', 'user'), name='membership_one_per_tenant_user')],
            },
        ),
        migrations.CreateModel(
            name='AuditEntry',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('at', models.DateTimeField(db_index=True, default=django.utils.timezone.now, editable=False)),
                ('source', models.CharField(choices=[('admin', 'Store admin'), ('ops', 'Operator admin'), ('api', 'API'), ('cli', 'Command line'), ('system', 'System')], max_length=8)),
                ('actor_label', models.CharField(help_text='Who, as it read at the time.', max_length=200)),
                ('action', models.CharField(choices=[('record.created', 'Record created'), ('record.updated', 'Record changed'), ('record.deleted', 'Record deleted'), ('tenant.created', 'Tenant created'), ('tenant.suspended', 'Tenant suspended'), ('tenant.reactivated', 'Tenant reactivated'), ('membership.created', 'Member added'), ('api_key.created', 'API key issued'), ('api_key.revoked', 'API key revoked'), ('login.locked', 'Sign-in locked'), ('login.unlocked', 'Sign-in unlocked'), ('store.created', 'Store created'), ('store.updated', 'Store changed'), ('layout.published', 'Layout published'), ('catalog.imported', 'Catalog imported'), ('catalog.import_refused', 'Catalog import refused'), ('stock.counted', 'Stock counted'), ('low_stock_levels.set', 'Low-stock levels set'), ('visit.approved', 'Visit approved in review'), ('visit.voided', 'Visit voided in review'), ('visit.refunded', 'Visit refunded'), ('visit.payment_retried', "Visit's failed payment retried"), ('calibration.learnt', 'Calibration learnt'), ('dispute.opened', 'Dispute opened'), ('dispute.decided', 'Dispute decided'), ('shopper.registered', 'Shopper registered'), ('shopper.card_replaced', "Shopper's card replaced"), ('shopper.card_detached', "Shopper's card detached"), ('shopper.revoked', 'Shopper revoked'), ('shopper.erased', 'Shopper erased'), ('events.retired', 'Raw events retired (exported, removed)'), ('payment_settings.updated', 'Payment settings changed'), ('webhook_endpoint.created', 'Webhook endpoint created'), ('webhook_endpoint.updated', 'Webhook endpoint changed'), ('webhook_endpoint.secret_rotated', 'Webhook secret rotated'), ('webhook_endpoint.tested', 'Webhook test event sent'), ('webhook_delivery.retried', 'Webhook delivery retried'), ('plan_version.created', 'Plan version created'), ('plan.assigned', 'Plan assigned'), ('invoice.drafted', 'Invoice drafted'), ('invoice.redrafted', 'Invoice draft updated'), ('invoice.finalised', 'Invoice issued'), ('invoice.paid', 'Invoice marked paid'), ('invoice.voided', 'Invoice voided'), ('credit_note.issued', 'Credit note issued'), ('exchange_rate.created', 'Exchange rate set'), ('exchange_rate.updated', 'Exchange rate replaced')], max_length=40)),
                ('object_type', models.CharField(max_length=100)),
                ('object_id', models.CharField(max_length=64)),
                ('object_repr', models.CharField(max_length=200)),
                ('changes', models.JSONField(blank=True, default=dict)),
                ('request_id', models.CharField(blank=True, max_length=64)),
                ('actor_api_key', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to='tenants.apikey')),
                ('actor_user', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
                ('tenant', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='tenants.tenant')),
            ],
            options={
                'verbose_name': 'audit entry',
                'verbose_name_plural': 'audit log',
                'ordering': ['-at', '-id'],
                'indexes': [models.Index(fields=['tenant', '-at'], name='audit_tenant_at')],
            },
        ),
        migrations.AddIndex(
            model_name='apikey',
            index=models.Index(fields=['tenant', '-created_at'], name='apikey_tenant_created'),
        ),
        migrations.RunPython(create_groups, delete_groups),
    ]
