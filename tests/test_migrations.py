"""The migrations squashed on 2026-12-04 (docs/architecture.md, "Migrations"): one per app for what the last
release had (tenants' later 0007 stays a migration of its own), the models and the migrations agree, a database of
the last release runs only what came after it, and one migrated with the whole history of before runs nothing."""

from __future__ import annotations

import importlib
from collections.abc import Mapping, Sequence
from io import StringIO

import pytest
from django.apps import apps
from django.core.management import call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.db.migrations.loader import MigrationLoader
from django.db.migrations.recorder import MigrationRecorder

from core.admin_sites import PLATFORM_GROUPS

# Every migration a database could have recorded before the squash: a squashed migration must keep replacing all
# of them, or a database migrated then would run it again over its tables.
HISTORY_BEFORE = {
    "catalog": ["0001_initial", "0002_catalog_import", "0003_product_min_age", "0004_import_effective_from"],
    "disputes": ["0001_initial"],
    "ingest": [
        "0001_initial",
        "0002_chunk_summary",
        "0003_lean_event_indexes",
        "0004_session_index_without_time",
        "0005_bounded_payloads_unreadable_events",
        "0006_packed_chunks_and_stored_rejections",
        "0007_entry_tokens_hashed",
        "0008_stream_resent_at",
        "0009_events_partitioned_by_day",
        "0010_event_keys_claimed_by_the_writer",
    ],
    "invoicing": ["0001_initial", "0002_service_promises", "0003_plan_event_retention"],
    "payments": ["0001_initial", "0002_shopper_erasure", "0003_refunded_line"],
    "service_levels": ["0001_initial"],
    "stock": ["0001_stock_counts_and_levels"],
    "stores": ["0001_initial", "0002_device_kind_staff_device", "0003_overcharge_risk", "0004_store_dispute_policy"],
    "tenants": [
        "0001_initial",
        "0002_platform_groups",
        "0003_tenant_quotas",
        "0004_audit_action_names",
        "0005_audit_events_retired",
        "0006_audit_action_payment_retried",
        "0007_sign_in_failures",
    ],
    "visits": [
        "0001_initial",
        "0002_chargeinstruction_reviewdecision_visitline_and_more",
        "0003_visit_payment_summary",
        "0004_calibration_and_risk",
        "0005_visit_shopper_token_hash",
        "0006_hash_visits_entry_tokens",
        "0007_visit_group_and_line_takers",
        "0008_review_reasons_as_data",
        "0009_visit_awaiting_payment",
        "0010_visit_exit_inferred",
    ],
    "webhooks": ["0001_initial", "0002_secret_help_text"],
}


# What the last release before the squash (2173eda) had recorded: all of the above but tenants' 0007.
AFTER_THE_RELEASE = {"tenants": ["0007_sign_in_failures"]}
# Migrations made since the squash, numbered on from it, in the order a database of before runs them.
SINCE_THE_SQUASH = [("stores", "0002_store_unseen_item_review_cost"), ("stores", "0003_unseen_item_review_cost_help")]


@pytest.mark.django_db
def test_each_app_has_one_migration_for_the_release_and_the_models_need_no_other() -> None:
    disk = MigrationLoader(None, ignore_no_migrations=True).disk_migrations
    ours = sorted(app for app, _name in disk if app in HISTORY_BEFORE)
    expected = sorted([*HISTORY_BEFORE, *AFTER_THE_RELEASE, *(app for app, _name in SINCE_THE_SQUASH)])
    assert ours == expected, (
        "one migration per app since the squash, one for what came after the release, and those made since"
    )
    for app, history in HISTORY_BEFORE.items():
        if len(history) > 1:
            replaced = [
                old
                for (owner, _name), migration in sorted(disk.items())
                if owner == app
                for _app, old in migration.replaces
            ]
            assert replaced == history, f"{app}'s migrations replace its whole history, in order"
    out = StringIO()
    call_command("makemigrations", *HISTORY_BEFORE, check=True, dry_run=True, stdout=out)  # exits if not
    assert "No changes detected" in out.getvalue()


@pytest.mark.django_db
def test_a_database_migrated_with_the_history_of_before_runs_only_what_was_made_since_the_squash() -> None:
    executor = _migrated_with_the_history_of_before(but={})
    plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    assert [(migration.app_label, migration.name) for migration, _backwards in plan] == SINCE_THE_SQUASH
    executor.loader.check_consistent_history(connection)
    leaves = {app: name for app, name in executor.loader.graph.leaf_nodes() if app in HISTORY_BEFORE}
    applied = executor.loader.applied_migrations
    assert all((app, name) in applied or (app, name) in SINCE_THE_SQUASH for app, name in leaves.items())


@pytest.mark.django_db
def test_a_database_of_the_last_release_runs_only_what_came_after_it() -> None:
    executor = _migrated_with_the_history_of_before(but=AFTER_THE_RELEASE)
    plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    ran = [(migration.app_label, migration.name) for migration, _backwards in plan]
    assert sorted(ran) == sorted([("tenants", "0002_sign_in_failures"), *SINCE_THE_SQUASH])
    executor.loader.check_consistent_history(connection)


@pytest.mark.django_db
def test_the_squashed_tenants_migration_still_seeds_the_platform_groups() -> None:
    """The one data migration kept: a fresh database needs the staff groups (core.admin_sites)."""
    tenants = importlib.import_module("tenants.migrations.0001_squashed_0006_audit_action_payment_retried")
    Group = apps.get_model("auth", "Group")
    Group.objects.filter(name__in=PLATFORM_GROUPS).delete()
    tenants.create_groups(apps, None)
    assert sorted(Group.objects.filter(name__in=PLATFORM_GROUPS).values_list("name", flat=True)) == sorted(
        PLATFORM_GROUPS
    )


def _migrated_with_the_history_of_before(*, but: Mapping[str, Sequence[str]]) -> MigrationExecutor:
    """The test database recorded as migrated with HISTORY_BEFORE's migrations but those named in `but`; an
    executor reading that history."""
    recorder = MigrationRecorder(connection)
    recorder.migration_qs.filter(app__in=HISTORY_BEFORE).delete()
    for app, names in HISTORY_BEFORE.items():
        for name in names:
            if name not in but.get(app, []):
                recorder.record_applied(app, name)
    return MigrationExecutor(connection)
