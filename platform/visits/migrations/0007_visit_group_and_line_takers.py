"""Groups (spec v1.1): a visit records its payer's session (`group`), a cart line the members who took it
(`taken_by`). Visits stored so far get their group from their session.started events, in batches of
companions' events; lines settled before keep no takers (settling again fills them in)."""

from __future__ import annotations

from django.db import migrations, models, transaction

BATCH = 5_000


def groups_from_entries(apps, schema_editor) -> None:
    Event = apps.get_model("ingest", "Event")
    Visit = apps.get_model("visits", "Visit")
    entries = Event._base_manager.filter(type="session.started", payload__has_key="group").order_by("pk")
    last = 0
    while True:
        batch = list(entries.filter(pk__gt=last).values_list("pk", "store_id", "session", "payload")[:BATCH])
        if not batch:
            return
        last = batch[-1][0]
        with transaction.atomic():
            for _pk, store_id, session, payload in batch:
                group = payload.get("group") if isinstance(payload, dict) else None
                if isinstance(group, str) and group and group != session:
                    Visit._base_manager.filter(store_id=store_id, session=session).update(group=group)


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("stores", "0003_overcharge_risk"),
        ("tenants", "0003_tenant_quotas"),
        ("visits", "0006_hash_visits_entry_tokens"),
        ("ingest", "0007_entry_tokens_hashed"),
    ]

    operations = [
        migrations.AddField(
            model_name="visit",
            name="group",
            field=models.CharField(
                blank=True,
                help_text="A companion's payer: the session whose card pays for this visit (spec v1.1 `group`); "
                "blank for a payer or a lone shopper.",
                max_length=64,
            ),
        ),
        migrations.AddField(
            model_name="visitline",
            name="taken_by",
            field=models.JSONField(
                blank=True,
                default=list,
                help_text="On a group's receipt, the sessions of the members who took the line (the payer's own "
                "included).",
            ),
        ),
        migrations.AddIndex(
            model_name="visit",
            index=models.Index(fields=["tenant", "store", "group"], name="visit_store_group"),
        ),
        migrations.RunPython(groups_from_entries, migrations.RunPython.noop),
    ]
