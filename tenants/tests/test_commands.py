"""The operator's command line: create_tenant and create_api_key."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.test import Client

from tenants.models import ApiKey, Membership, Tenant


def _run(*args: str) -> list[str]:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue().strip().splitlines()


@pytest.mark.django_db
def test_create_tenant_prints_a_working_key_alone_on_the_last_line() -> None:
    lines = _run(
        "create_tenant", "corner-shop", "--name", "Corner Shop", "--manager-email", "Sam@Corner.test", "--api-key"
    )
    key = lines[-1]
    assert key.startswith("oa_") and " " not in key
    tenant = Tenant.objects.get(slug="corner-shop")
    membership = Membership.unscoped.get(tenant=tenant)
    assert (membership.user.username, membership.role) == ("sam@corner.test", "manager")
    response = Client().get("/api/v1/tenant", HTTP_AUTHORIZATION=f"Bearer {key}")
    assert response.json()["slug"] == "corner-shop"
    assert any("/accounts/reset/" in line for line in lines)


@pytest.mark.django_db
def test_create_tenant_with_a_password_lets_the_manager_log_in() -> None:
    _run(
        "create_tenant",
        "deli",
        "--name",
        "Deli",
        "--manager-email",
        "d@deli.test",
        "--manager-password",
        "s3cret-pass!",
    )
    assert Client().login(username="d@deli.test", password="s3cret-pass!")


def test_create_tenant_with_a_taken_slug_fails_and_writes_nothing(tenant_a: Tenant) -> None:
    with pytest.raises(CommandError, match="slug"):
        _run("create_tenant", "alpha", "--name", "Again", "--manager-email", "x@x.test", "--api-key")
    assert Tenant.objects.count() == 1
    assert Membership.unscoped.count() == 0
    assert ApiKey.unscoped.count() == 0


@pytest.mark.django_db
def test_create_tenant_with_a_bad_email_writes_nothing() -> None:
    with pytest.raises(CommandError, match="email"):
        _run("create_tenant", "newco", "--name", "New Co", "--manager-email", "nobody")
    assert not Tenant.objects.filter(slug="newco").exists()


def test_create_api_key(tenant_a: Tenant) -> None:
    key = _run("create_api_key", "alpha", "--name", "pos")[-1]
    assert Client().get("/api/v1/tenant", HTTP_AUTHORIZATION=f"Bearer {key}").json()["slug"] == "alpha"
    with pytest.raises(CommandError, match="No tenant"):
        _run("create_api_key", "nope")
