"""Audit actions: one `noun.verb` name per kind of write, from one enum and at every writer."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tenants.audit import Actor, audit_record
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
