"""Visits keep the hash of the shopper's entry token (issue 16, finding 13): every token stored so far is
replaced by its SHA-256 (core.entry_tokens), the one the shopper table and ingest use, so a visit still
finds its shopper. In batches of ids, each its own transaction; a value that is already a hash is left alone,
so a run cut short can run again."""

from __future__ import annotations

import hashlib
import re

from django.db import migrations, transaction

BATCH = 50_000
HASHED = re.compile(r"^[0-9a-f]{64}$")


def _postgresql(connection, table: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT MIN(id), MAX(id) FROM {table}")
        low, high = cursor.fetchone()
    if low is None:
        return
    for start in range(low, high + 1, BATCH):
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {table} SET shopper_token_hash = encode(sha256(convert_to(shopper_token_hash, 'UTF8')), 'hex') "
                "WHERE id >= %s AND id < %s AND shopper_token_hash <> '' AND shopper_token_hash !~ '^[0-9a-f]{64}$'",
                [start, start + BATCH],
            )


def _any_database(Visit) -> None:
    last = 0
    while True:
        batch = list(Visit._base_manager.exclude(shopper_token_hash="").filter(pk__gt=last).order_by("pk")[:5_000])
        if not batch:
            return
        last = batch[-1].pk
        changed = [visit for visit in batch if not HASHED.match(visit.shopper_token_hash)]
        for visit in changed:
            visit.shopper_token_hash = hashlib.sha256(visit.shopper_token_hash.encode()).hexdigest()
        with transaction.atomic():
            Visit._base_manager.bulk_update(changed, ["shopper_token_hash"])


def hash_tokens(apps, schema_editor) -> None:
    Visit = apps.get_model("visits", "Visit")
    if schema_editor.connection.vendor == "postgresql":
        _postgresql(schema_editor.connection, Visit._meta.db_table)
    else:
        _any_database(Visit)


class Migration(migrations.Migration):
    atomic = False

    dependencies = [("visits", "0005_visit_shopper_token_hash"), ("ingest", "0007_entry_tokens_hashed")]

    operations = [migrations.RunPython(hash_tokens, migrations.RunPython.noop)]
