"""The tenant scope fails closed: no scope, no tenant data."""

from __future__ import annotations

import pytest
from django.apps import apps

from core import tenancy
from core.models import TenantScopedManager
from tenants.models import ApiKey, Membership, Tenant


def _tenant_owned_models() -> list[type]:
    return [m for m in apps.get_models() if isinstance(m._default_manager, TenantScopedManager)]


def test_tenant_owned_models_are_found() -> None:
    names = {m.__name__ for m in _tenant_owned_models()}
    assert {"Membership", "ApiKey", "AuditEntry"} <= names


@pytest.mark.django_db
@pytest.mark.parametrize("model", _tenant_owned_models(), ids=lambda m: m.__name__)
def test_querying_tenant_data_outside_a_scope_raises(model: type) -> None:
    with pytest.raises(tenancy.TenantScopeMissing):
        list(model.objects.all())
    with pytest.raises(tenancy.TenantScopeMissing):
        model.objects.count()


def test_scope_filters_to_the_tenant_and_platform_wide_sees_all(
    api_a, api_b, tenant_a: Tenant, tenant_b: Tenant
) -> None:
    with tenancy.tenant_scope(tenant_a.pk):
        assert set(ApiKey.objects.values_list("tenant_id", flat=True)) == {tenant_a.pk}
        with tenancy.tenant_scope(tenant_b.pk):
            assert set(ApiKey.objects.values_list("tenant_id", flat=True)) == {tenant_b.pk}
        assert set(ApiKey.objects.values_list("tenant_id", flat=True)) == {tenant_a.pk}
    with tenancy.platform_wide_scope():
        assert set(ApiKey.objects.values_list("tenant_id", flat=True)) == {tenant_a.pk, tenant_b.pk}
    with pytest.raises(tenancy.TenantScopeMissing):
        ApiKey.objects.first()


def test_another_tenants_row_is_invisible_by_id(api_a, api_b, tenant_a: Tenant) -> None:
    with tenancy.tenant_scope(tenant_a.pk):
        assert not ApiKey.objects.filter(pk=api_b.api_key.pk).exists()
        assert ApiKey.objects.filter(pk=api_a.api_key.pk).exists()


def test_the_unscoped_manager_is_the_explicit_escape_hatch(api_a, api_b) -> None:
    assert ApiKey.unscoped.count() == 2


def test_current_tenant_id_needs_one_tenant() -> None:
    with pytest.raises(tenancy.TenantScopeMissing):
        tenancy.current_tenant_id()
    with tenancy.platform_wide_scope(), pytest.raises(tenancy.TenantScopeMissing):
        tenancy.current_tenant_id()
    with tenancy.tenant_scope(7):
        assert tenancy.current_tenant_id() == 7


def test_scope_takes_an_id_not_an_object(tenant_a: Tenant) -> None:
    with pytest.raises(TypeError):
        tenancy.tenant_scope(tenant_a).__enter__()  # type: ignore[arg-type]


def test_tasks_enter_the_scope_of_their_tenant_id(manager_a, tenant_a: Tenant, tenant_b: Tenant) -> None:
    @tenancy.in_tenant_scope
    def count_members(*, tenant_id: int) -> int:
        return Membership.objects.count()

    assert count_members(tenant_id=tenant_a.pk) == 1
    assert count_members(tenant_id=tenant_b.pk) == 0
    with pytest.raises(tenancy.TenantScopeMissing):
        count_members()  # type: ignore[call-arg]
