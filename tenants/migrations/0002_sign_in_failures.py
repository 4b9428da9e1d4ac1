"""Failed sign-ins (django-axes' access attempts) as the operators' admin lists them. It replaces the old history's
0007, which some databases recorded before the squash: for them it counts as applied."""

from django.db import migrations


class Migration(migrations.Migration):

    replaces = [
        ('tenants', '0007_sign_in_failures'),
    ]

    dependencies = [
        ('axes', '0010_accessattemptexpiration'),
        ('tenants', '0001_squashed_0006_audit_action_payment_retried'),
    ]

    operations = [
        migrations.CreateModel(
            name='SignInFailure',
            fields=[
            ],
            options={
                'verbose_name': 'failed sign-in',
                'verbose_name_plural': 'failed sign-ins',
                'proxy': True,
                'indexes': [],
                'constraints': [],
            },
            bases=('axes.accessattempt',),
        ),
    ]
