"""Tenants, members, API keys and the audit log: the writes and their guards."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.core import mail
from django.core.exceptions import ValidationError

from tenants import services
from tenants.audit import Actor
from tenants.models import ApiKey, AuditEntry, Membership, Tenant


def test_api_key_is_stored_hashed_and_authenticates(tenant_a: Tenant) -> None:
    issued = services.api_key_issue(actor=Actor.system(), tenant=tenant_a, name="gateway")
    stored = ApiKey.unscoped.get(pk=issued.api_key.pk)
    assert issued.key.startswith(f"oa_{stored.prefix}_")
    assert issued.key not in (stored.secret_hash, stored.prefix)
    assert len(stored.secret_hash) == 64
    assert services.api_key_authenticate(key=issued.key) == stored
    assert services.api_key_authenticate(key=issued.key[:-1] + ("A" if issued.key[-1] != "A" else "B")) is None


def test_last_used_is_recorded_at_most_once_a_minute(tenant_a: Tenant, monkeypatch: pytest.MonkeyPatch) -> None:
    issued = services.api_key_issue(actor=Actor.system(), tenant=tenant_a, name="gateway")
    first = services.api_key_authenticate(key=issued.key)
    assert first is not None and first.last_used_at is not None
    second = services.api_key_authenticate(key=issued.key)
    assert second is not None and second.last_used_at == first.last_used_at
    later = first.last_used_at + timedelta(minutes=5)
    monkeypatch.setattr(services.timezone, "now", lambda: later)
    third = services.api_key_authenticate(key=issued.key)
    assert third is not None and third.last_used_at == later
    assert ApiKey.unscoped.get(pk=first.pk).last_used_at == later


def test_a_revoked_key_stops_working_at_once_though_it_was_kept_in_the_cache(tenant_a: Tenant) -> None:
    issued = services.api_key_issue(actor=Actor.system(), tenant=tenant_a, name="gateway")
    assert services.api_key_authenticate(key=issued.key) is not None  # now kept in the cache
    services.api_key_revoke(actor=Actor.system(), api_key=issued.api_key)
    assert services.api_key_authenticate(key=issued.key) is None


@pytest.mark.parametrize("name", ["", "   ", "x" * 101])
def test_api_key_needs_a_name(tenant_a: Tenant, name: str) -> None:
    with pytest.raises(ValidationError):
        services.api_key_issue(actor=Actor.system(), tenant=tenant_a, name=name)
    assert ApiKey.unscoped.count() == 0


def test_revoking_twice_is_one_revocation(tenant_a: Tenant) -> None:
    issued = services.api_key_issue(actor=Actor.system(), tenant=tenant_a, name="gateway")
    first = services.api_key_revoke(actor=Actor.system(), api_key=issued.api_key)
    second = services.api_key_revoke(actor=Actor.system(), api_key=issued.api_key)
    assert first.revoked_at == second.revoked_at
    assert AuditEntry.unscoped.filter(action="api_key.revoked").count() == 1
    assert services.api_key_authenticate(key=issued.key) is None


@pytest.mark.parametrize(("name", "slug"), [("", "ok"), ("Shop", "Not A Slug"), ("Shop", ""), ("Shop", "alpha")])
def test_tenant_create_refuses_bad_input(tenant_a: Tenant, name: str, slug: str) -> None:
    with pytest.raises(ValidationError):
        services.tenant_create(actor=Actor.system(), name=name, slug=slug)
    assert Tenant.objects.count() == 1


def test_suspend_and_reactivate_are_audited_once(tenant_a: Tenant) -> None:
    services.tenant_suspend(actor=Actor.system(), tenant=tenant_a, reason="  late payment  ")
    services.tenant_suspend(actor=Actor.system(), tenant=tenant_a, reason="again")
    tenant_a.refresh_from_db()
    assert tenant_a.status == Tenant.Status.SUSPENDED
    assert tenant_a.suspended_reason == "late payment"
    services.tenant_reactivate(actor=Actor.system(), tenant=tenant_a)
    tenant_a.refresh_from_db()
    assert tenant_a.is_active and tenant_a.suspended_reason == ""
    actions = list(AuditEntry.unscoped.filter(tenant=tenant_a).order_by("at", "id").values_list("action", flat=True))
    assert actions == ["tenant.created", "tenant.suspended", "tenant.reactivated"]


@pytest.mark.django_db(transaction=True)
def test_a_new_member_is_emailed_a_set_password_link(tenant_a: Tenant) -> None:
    membership = services.member_add(
        actor=Actor.system(), tenant=tenant_a, email=" New.Person@Alpha.TEST ", role="staff"
    )
    assert membership.user.username == "new.person@alpha.test"
    assert not membership.user.has_usable_password()
    assert len(mail.outbox) == 1
    assert "/accounts/reset/" in mail.outbox[0].body
    assert mail.outbox[0].to == ["new.person@alpha.test"]


def test_one_person_can_belong_to_two_tenants_but_once_each(tenant_a: Tenant, tenant_b: Tenant) -> None:
    services.member_add(actor=Actor.system(), tenant=tenant_a, email="pat@example.test", role="manager")
    services.member_add(actor=Actor.system(), tenant=tenant_b, email="pat@example.test", role="viewer")
    with pytest.raises(ValidationError):
        services.member_add(actor=Actor.system(), tenant=tenant_a, email="pat@example.test", role="staff")
    assert User.objects.filter(username="pat@example.test").count() == 1
    assert Membership.unscoped.filter(user__username="pat@example.test").count() == 2


@pytest.mark.parametrize(("email", "role"), [("not-an-email", "staff"), ("x@y.test", "owner")])
def test_member_add_refuses_bad_input(tenant_a: Tenant, email: str, role: str) -> None:
    with pytest.raises(ValidationError):
        services.member_add(actor=Actor.system(), tenant=tenant_a, email=email, role=role)
    assert Membership.unscoped.count() == 0


def test_audit_entries_are_append_only(tenant_a: Tenant) -> None:
    entry = AuditEntry.unscoped.filter(tenant=tenant_a).first()
    assert entry is not None
    written = entry.action
    entry.action = "tampered"
    with pytest.raises(ValueError, match="append-only"):
        entry.save()
    with pytest.raises(ValueError, match="append-only"):
        entry.delete()
    assert AuditEntry.unscoped.get(pk=entry.pk).action == written
