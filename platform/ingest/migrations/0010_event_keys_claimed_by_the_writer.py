"""The ingest writer claims a chunk's idempotency keys in one statement, and the per-row trigger stands aside for it.

Migration 0009's trigger claimed each event's (tenant, store, event id) key in `ingest_eventkey` row by row: a
PL/pgSQL call per event, about a third of what writing an event cost. `ingest.processing` now inserts the chunk's
keys in one INSERT … ON CONFLICT DO NOTHING RETURNING and the events whose key it claimed in the same statement,
having set `openaisle.event_keys_claimed` for the transaction; the trigger fires only when that is not set (any
other insert: the ORM, a hand-written one), so every insert still claims its key. PostgreSQL only.
"""

from django.db import migrations

CLAIM_WHEN_NOT_CLAIMED = """
DROP TRIGGER event_key_claim ON ingest_event;
CREATE TRIGGER event_key_claim BEFORE INSERT ON ingest_event FOR EACH ROW
    WHEN (current_setting('openaisle.event_keys_claimed', true) IS DISTINCT FROM 'on')
    EXECUTE FUNCTION ingest_event_key_claim();
"""

CLAIM_ALWAYS = """
DROP TRIGGER event_key_claim ON ingest_event;
CREATE TRIGGER event_key_claim BEFORE INSERT ON ingest_event FOR EACH ROW EXECUTE FUNCTION ingest_event_key_claim();
"""


def claim_when_not_claimed(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CLAIM_WHEN_NOT_CLAIMED)


def claim_always(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CLAIM_ALWAYS)


class Migration(migrations.Migration):
    dependencies = [("ingest", "0009_events_partitioned_by_day")]

    operations = [migrations.RunPython(claim_when_not_claimed, claim_always)]
