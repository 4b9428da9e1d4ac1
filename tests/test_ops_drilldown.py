"""The operators' drill-down into one tenant (/ops/): only its rows, one status action, links to what it has."""

from __future__ import annotations

from collections.abc import Callable

from django.contrib.auth.models import User

from billing.invoicing.tests.helpers import make_store
from conftest import logged_in
from tenants import services
from tenants.audit import Actor
from tenants.models import Tenant


def _table(response, title: str) -> list[list[object]]:
    return next(t["table"]["rows"] for t in response.context["dashboard_tables"] if t["title"] == title)


def test_a_tenants_console_lists_only_that_tenants_rows(
    operator: User, tenant_a: Tenant, tenant_b: Tenant, make_member: Callable[..., User]
) -> None:
    make_member("alice@alpha.test", tenant_a)
    make_member("bob@bravo.test", tenant_b)
    response = logged_in(operator).get(f"/ops/?tenant={tenant_a.pk}")
    tenants = _table(response, "Tenants")
    assert len(tenants) == 1 and "Alpha Markets" in str(tenants[0][0])
    activity = _table(response, "Recent activity")
    assert activity and all("bravo" not in " ".join(map(str, row)).lower() for row in activity)
    assert any("alice@alpha.test" in " ".join(map(str, row)) for row in activity)
    assert all(str(row[0]).endswith(" UTC") for row in activity)
    assert all(":" in str(row[-1]) and "." not in str(row[-1]).split(":")[0] for row in activity)
    links = str(response.context["console"]["tenant_links"])
    assert f"/ops/stores/store/?tenant__id__exact={tenant_a.pk}" in links
    assert f"/ops/tenants/membership/?tenant__id__exact={tenant_a.pk}" in links
    assert f"/ops/invoicing/invoice/?tenant__id__exact={tenant_a.pk}" in links
    everyone = _table(logged_in(operator).get("/ops/"), "Tenants")
    assert len(everyone) == 2


def test_an_unknown_tenant_in_the_address_shows_no_other_tenants_rows(operator: User, tenant_b: Tenant) -> None:
    response = logged_in(operator).get("/ops/?tenant=999999")
    assert response.status_code == 200
    assert _table(response, "Tenants") == [] and _table(response, "Recent activity") == []


def test_an_active_tenant_offers_suspend_only_and_a_suspended_one_reactivate_only(
    operator: User, tenant_a: Tenant
) -> None:
    client = logged_in(operator)
    page = client.get(f"/ops/tenants/tenant/{tenant_a.pk}/change/").content.decode()
    assert "/suspend/" in page and "/reactivate/" not in page
    for link in ("stores/store", "tenants/membership", "invoicing/invoice", "tenants/auditentry"):
        assert f"/ops/{link}/?tenant__id__exact={tenant_a.pk}" in page
    client.get(f"/ops/tenants/tenant/{tenant_a.pk}/suspend/")
    tenant_a.refresh_from_db()
    assert tenant_a.status == Tenant.Status.SUSPENDED
    page = client.get(f"/ops/tenants/tenant/{tenant_a.pk}/change/").content.decode()
    assert "/reactivate/" in page and "/suspend/" not in page


def test_reactivating_an_active_tenant_by_its_address_is_refused(operator: User, tenant_a: Tenant) -> None:
    response = logged_in(operator).get(f"/ops/tenants/tenant/{tenant_a.pk}/reactivate/")
    assert response.status_code == 403
    tenant_a.refresh_from_db()
    assert tenant_a.status == Tenant.Status.ACTIVE and tenant_a.status_changed_at is None


def test_finance_cannot_suspend_a_tenant(finance: User, tenant_a: Tenant) -> None:
    client = logged_in(finance)
    assert "/suspend/" not in client.get(f"/ops/tenants/tenant/{tenant_a.pk}/change/").content.decode()
    assert client.get(f"/ops/tenants/tenant/{tenant_a.pk}/suspend/").status_code == 403
    tenant_a.refresh_from_db()
    assert tenant_a.status == Tenant.Status.ACTIVE


def test_the_stores_list_filters_by_tenant_and_is_read_only(operator: User, tenant_a: Tenant, tenant_b: Tenant) -> None:
    make_store(tenant_a, "A1")
    make_store(tenant_b, "B1")
    client = logged_in(operator)
    page = client.get(f"/ops/stores/store/?tenant__id__exact={tenant_a.pk}").content.decode()
    assert "Store A1" in page and "Store B1" not in page  # (a bare "B1" can be in the CSRF token)
    assert client.get("/ops/stores/store/add/").status_code == 403


def test_a_suspended_tenants_reason_stays_on_its_page(operator: User, tenant_a: Tenant) -> None:
    services.tenant_suspend(actor=Actor.system(), tenant=tenant_a, reason="unpaid invoices")
    page = logged_in(operator).get(f"/ops/tenants/tenant/{tenant_a.pk}/change/").content.decode()
    assert "unpaid invoices" in page
