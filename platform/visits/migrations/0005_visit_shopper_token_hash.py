"""A visit keeps the hash of the shopper's entry token, not the token (issue 16, finding 13)."""

from __future__ import annotations

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("visits", "0004_calibration_and_risk")]

    operations = [
        migrations.RenameField(model_name="visit", old_name="shopper_token", new_name="shopper_token_hash"),
        migrations.AlterField(
            model_name="visit",
            name="shopper_token_hash",
            field=models.CharField(
                blank=True,
                help_text="SHA-256 of the entry token the visit came in with (core.entry_tokens).",
                max_length=128,
            ),
        ),
    ]
