"""Requests an attacker or a careless caller sends to the admins and the API: answered, never a 500, never sent
elsewhere (issue 16: findings 9, 10, 11)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.contrib.auth.models import User
from rest_framework.test import APIClient

from conftest import logged_in
from ingest.models import EventStream
from stores.models import Store
from tenants.models import Tenant


def test_the_operators_stream_page_shows_its_progress_and_rejections(
    operator: User, make_store_with_layout: Callable[..., Store], tenant_a: Tenant
) -> None:
    store = make_store_with_layout(tenant_a)
    stream = EventStream.unscoped.create(tenant=tenant_a, store=store, status="processing", rejected=0)
    client = logged_in(operator)

    page = client.get(f"/ops/ingest/eventstream/{stream.pk}/change/")

    assert page.status_code == 200
    assert f"/ops/ingest/eventstream/{stream.pk}/progress/" in page.content.decode()
    progress = client.get(f"/ops/ingest/eventstream/{stream.pk}/progress/")
    assert (progress.status_code, progress.json()["status"]) == (200, "processing")
    assert client.get(f"/ops/ingest/eventstream/{stream.pk}/rejections.csv").status_code == 200


@pytest.mark.parametrize(
    "target", ["//evil.example", "https://evil.example/admin/", "///evil.example", "javascript:alert(1)"]
)
def test_the_tenant_chooser_never_sends_anyone_to_another_site(
    make_member: Callable[..., User], tenant_a: Tenant, tenant_b: Tenant, target: str
) -> None:
    client = logged_in(make_member("ann@both.test", tenant_a, tenant_b))

    response = client.post("/admin/tenant/", {"tenant": tenant_b.pk, "next": target})

    assert (response.status_code, response["Location"]) == (302, "/admin/")


def test_the_tenant_chooser_goes_on_to_a_page_of_this_site(
    make_member: Callable[..., User], tenant_a: Tenant, tenant_b: Tenant
) -> None:
    client = logged_in(make_member("ann@both.test", tenant_a, tenant_b))
    response = client.post("/admin/tenant/", {"tenant": tenant_b.pk, "next": "/admin/stores/store/"})
    assert (response.status_code, response["Location"]) == (302, "/admin/stores/store/")


@pytest.mark.parametrize(
    "path",
    [
        "/admin/visits/visit/?status__exact=%00",
        "/admin/stores/store/?q=a%00b",
        "/admin/ingest/eventstream/?status=%00",
        "/admin/catalog/product/?q=%00",
    ],
)
def test_a_nul_byte_in_a_store_admin_list_filter_is_a_400(manager_a: User, path: str) -> None:
    response = logged_in(manager_a).get(path)
    assert response.status_code == 400
    assert "NUL character" in response.content.decode()


@pytest.mark.parametrize("path", ["/ops/tenants/tenant/?q=%00", "/ops/ingest/eventstream/?tenant__id__exact=%00"])
def test_a_nul_byte_in_an_operators_list_filter_is_a_400(operator: User, path: str) -> None:
    assert logged_in(operator).get(path).status_code == 400


def test_a_nul_byte_in_an_api_address_is_the_contracts_400(
    api_a: APIClient, make_store_with_layout: Callable[..., Store], tenant_a: Tenant
) -> None:
    make_store_with_layout(tenant_a)
    for path in ("/api/v1/stores/S1/visits/a%00b", "/api/v1/stores/S1/visits?status=%00"):
        response = api_a.get(path)
        assert response.status_code == 400
        assert response.json()["error"]["code"] == "invalid"
