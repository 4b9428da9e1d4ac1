"""Audit actions: one `noun.verb` name per kind of write, from one enum, at every writer and in old rows."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest
from django.apps import apps

from tenants.audit import Actor, audit_entry, audit_record
from tenants.models import AuditAction, AuditEntry, Tenant

ROOT = Path(__file__).resolve().parents[2]
WRITERS = {"audit_record", "audit_entry"}


def _production_files() -> list[Path]:
    return [
        path
        for folder in ("platform", "billing", "tenants")
        for path in (ROOT / folder).rglob("*.py")
        if "tests" not in path.parts and "migrations" not in path.parts
    ]


def test_every_member_is_a_dotted_noun_and_verb() -> None:
    for action in AuditAction:
        noun, _, verb = action.value.partition(".")
        assert noun and verb and "." not in verb and action.value == action.value.lower(), action


def test_no_writer_names_its_action_in_a_string() -> None:
    """Every call that writes an audit entry names its action from `AuditAction`, never as a bare string."""
    written_as_strings = []
    for path in _production_files():
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if not isinstance(node, ast.Call):
                continue
            name = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", "")
            if name not in WRITERS:
                continue
            action = next((k.value for k in node.keywords if k.arg == "action"), None)
            if action is None or isinstance(action, ast.Constant | ast.JoinedStr):
                written_as_strings.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert written_as_strings == []


def test_an_action_outside_the_enum_is_refused_and_nothing_is_written(tenant_a: Tenant) -> None:
    before = AuditEntry.unscoped.count()
    with pytest.raises(ValueError, match="review:approve"):
        audit_record(actor=Actor.system(), tenant_id=tenant_a.pk, action="review:approve", obj=tenant_a)  # type: ignore[arg-type]
    assert AuditEntry.unscoped.count() == before


def test_plain_admin_writes_are_named_by_their_model() -> None:
    assert AuditAction.of_write(model_label="stores.store", verb="create") == AuditAction.STORE_CREATED
    assert AuditAction.of_write(model_label="stores.device", verb="delete") == AuditAction.RECORD_DELETED
    with pytest.raises(ValueError, match=r"record\.erased"):
        AuditAction.of_write(model_label="stores.device", verb="erase")


@pytest.mark.parametrize(
    ("old", "object_type", "new"),
    [
        ("review:approve", "visits.visit", "visit.approved"),
        ("calibration:learn", "visits.storecalibration", "calibration.learnt"),
        ("assign_plan", "invoicing.planassignment", "plan.assigned"),
        ("create", "stores.store", "store.created"),
        ("create", "tenants.apikey", "api_key.created"),
        ("create", "stores.device", "record.created"),
        ("void", "invoicing.invoice", "invoice.voided"),
        ("finalise", "invoicing.invoice", "invoice.finalised"),
        ("shopper.registered", "payments.shopper", "shopper.registered"),
    ],
)
def test_old_rows_take_the_new_names(tenant_a: Tenant, old: str, object_type: str, new: str) -> None:
    migration = importlib.import_module("tenants.migrations.0004_audit_action_names")
    entry = audit_entry(actor=Actor.system(), tenant_id=tenant_a.pk, action=AuditAction.RECORD_CREATED, obj=tenant_a)
    entry.action, entry.object_type = old, object_type
    entry.save()
    migration.rename(apps, None)
    renamed = AuditEntry.unscoped.get(pk=entry.pk).action
    assert renamed == new
    assert renamed in AuditAction.values
