"""Events keep the hash of a shopper's entry token, not the token (issue 16, finding 13): every stored
`session.started` has its `shopper` replaced by the SHA-256 of it (core.entry_tokens), in batches of ids,
each its own transaction. A value that is already a hash is left alone, so a run cut short can run again."""

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
                f"UPDATE {table} SET payload = jsonb_set(payload, '{{shopper}}', "
                "to_jsonb(encode(sha256(convert_to(payload ->> 'shopper', 'UTF8')), 'hex'))) "
                "WHERE id >= %s AND id < %s AND type = 'session.started' "
                "AND jsonb_typeof(payload -> 'shopper') = 'string' AND payload ->> 'shopper' !~ '^[0-9a-f]{64}$'",
                [start, start + BATCH],
            )


def _any_database(Event) -> None:
    last = 0
    while True:
        batch = list(Event._base_manager.filter(type="session.started", pk__gt=last).order_by("pk")[:5_000])
        if not batch:
            return
        last = batch[-1].pk
        changed = []
        for event in batch:
            token = event.payload.get("shopper") if isinstance(event.payload, dict) else None
            if isinstance(token, str) and not HASHED.match(token):
                event.payload = {**event.payload, "shopper": hashlib.sha256(token.encode()).hexdigest()}
                changed.append(event)
        with transaction.atomic():
            Event._base_manager.bulk_update(changed, ["payload"])


def hash_tokens(apps, schema_editor) -> None:
    Event = apps.get_model("ingest", "Event")
    if schema_editor.connection.vendor == "postgresql":
        _postgresql(schema_editor.connection, Event._meta.db_table)
    else:
        _any_database(Event)


class Migration(migrations.Migration):
    atomic = False

    dependencies = [("ingest", "0006_packed_chunks_and_stored_rejections")]

    operations = [migrations.RunPython(hash_tokens, migrations.RunPython.noop)]
