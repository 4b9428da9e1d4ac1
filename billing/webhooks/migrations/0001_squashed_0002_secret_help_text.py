"""The webhooks app's schema as of 2026-12-04: migrations 0001–0002 squashed into one (docs/architecture.md, "Migrations").
"""

import django.db.models.deletion
import django.utils.timezone
import uuid
from django.db import migrations, models


class Migration(migrations.Migration):

    replaces = [
        ('webhooks', '0001_initial'),
        ('webhooks', '0002_secret_help_text'),
    ]

    initial = True

    dependencies = [
        ('tenants', '0001_squashed_0006_audit_action_payment_retried'),
    ]

    operations = [
        migrations.CreateModel(
            name='WebhookEndpoint',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('url', models.CharField(help_text='Where we POST the events (https://…).', max_length=500, verbose_name='URL')),
                ('description', models.CharField(blank=True, help_text='What receives them, for your team.', max_length=200)),
                ('event_types', models.JSONField(blank=True, default=list, help_text='The event types sent to this endpoint; none ticked = all of them.')),
                ('secret_encrypted', models.TextField(help_text="The signing secret, encrypted with the platform's key (core.crypto).")),
                ('is_active', models.BooleanField(default=True, help_text='Only active endpoints get events.', verbose_name='active')),
                ('created_at', models.DateTimeField(default=django.utils.timezone.now, editable=False)),
                ('updated_at', models.DateTimeField(default=django.utils.timezone.now)),
                ('tenant', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='+', to='tenants.tenant')),
            ],
            options={
                'verbose_name': 'webhook endpoint',
                'ordering': ['created_at', 'id'],
            },
        ),
        migrations.CreateModel(
            name='WebhookDelivery',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('event_id', models.UUIDField(default=uuid.uuid4, help_text="The event's id (header OpenAisle-Delivery): the same on every attempt.")),
                ('event_type', models.CharField(max_length=40)),
                ('payload', models.JSONField(help_text="The event's data, sent as the body's `data`.")),
                ('state', models.CharField(choices=[('pending', 'Pending'), ('delivered', 'Delivered'), ('failed', 'Failed (gave up)')], default='pending', max_length=10)),
                ('attempts', models.PositiveIntegerField(default=0)),
                ('next_attempt_at', models.DateTimeField(blank=True, default=django.utils.timezone.now, help_text='When pending: not before this time.', null=True)),
                ('lease_until', models.DateTimeField(blank=True, help_text='While an attempt is in flight: nobody else sends it before this time.', null=True)),
                ('last_status_code', models.PositiveIntegerField(blank=True, null=True)),
                ('last_error', models.CharField(blank=True, max_length=500)),
                ('last_response_excerpt', models.TextField(blank=True)),
                ('last_attempt_at', models.DateTimeField(blank=True, null=True)),
                ('delivered_at', models.DateTimeField(blank=True, null=True)),
                ('created_at', models.DateTimeField(default=django.utils.timezone.now, editable=False)),
                ('tenant', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='+', to='tenants.tenant')),
                ('endpoint', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='deliveries', to='webhooks.webhookendpoint')),
            ],
            options={
                'verbose_name': 'webhook delivery',
                'verbose_name_plural': 'webhook deliveries',
                'ordering': ['-created_at', '-id'],
            },
        ),
        migrations.AddIndex(
            model_name='webhookendpoint',
            index=models.Index(fields=['tenant', 'is_active'], name='webhook_endpoint_active'),
        ),
        migrations.AddIndex(
            model_name='webhookdelivery',
            index=models.Index(fields=['tenant', '-created_at'], name='webhook_delivery_log'),
        ),
        migrations.AddIndex(
            model_name='webhookdelivery',
            index=models.Index(fields=['tenant', 'endpoint', '-created_at'], name='webhook_delivery_endpoint_log'),
        ),
        migrations.AddIndex(
            model_name='webhookdelivery',
            index=models.Index(condition=models.Q(('state', 'pending')), fields=['tenant', 'next_attempt_at'], name='webhook_delivery_due'),
        ),
        migrations.AddConstraint(
            model_name='webhookdelivery',
            constraint=models.UniqueConstraint(fields=('tenant', 'endpoint', 'event_id'), name='webhook_delivery_once_per_event_and_endpoint'),
        ),
    ]
