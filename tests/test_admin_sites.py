"""The two admin sites: who gets in, what they may do, and that every write is audited."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db.models import Model
from django.test import Client

from billing.invoicing.tests.helpers import make_store
from conftest import PASSWORD, logged_in
from tenants.models import ApiKey, AuditEntry, Membership, Tenant


def test_manager_sees_the_dashboard_of_their_tenant(manager_a: User) -> None:
    response = logged_in(manager_a).get("/admin/")
    assert response.status_code == 200
    body = response.content.decode()
    assert "Alpha Markets" in body
    assert "Team members" in body and "Live API keys" in body


def test_a_person_without_membership_cannot_enter_the_store_admin(db: None) -> None:
    User.objects.create_user("stranger@x.test", password=PASSWORD, is_staff=True)
    client = Client()
    client.login(username="stranger@x.test", password=PASSWORD)
    response = client.get("/admin/")
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_member_of_two_tenants_chooses_one(
    make_member: Callable[..., User], tenant_a: Tenant, tenant_b: Tenant
) -> None:
    client = logged_in(make_member("pat@both.test", tenant_a, tenant_b))
    response = client.get("/admin/")
    assert response.status_code == 302 and response["Location"].startswith("/admin/tenant/")
    chooser = client.get(response["Location"]).content.decode()
    assert "Alpha Markets" in chooser and "Bravo Foods" in chooser
    client.post("/admin/tenant/", {"tenant": tenant_b.pk, "next": "/admin/"})
    body = client.get("/admin/").content.decode()
    assert "Bravo Foods" in body and "Alpha Markets" not in body


def test_chooser_refuses_a_tenant_the_person_does_not_belong_to(manager_a: User, tenant_b: Tenant) -> None:
    client = logged_in(manager_a)
    client.post("/admin/tenant/", {"tenant": tenant_b.pk, "next": "/admin/"})
    body = client.get("/admin/").content.decode()
    assert "Alpha Markets" in body and "Bravo Foods" not in body


def test_viewer_reads_but_cannot_write(make_member: Callable[..., User], tenant_a: Tenant, api_a) -> None:
    client = logged_in(make_member("vic@alpha.test", tenant_a, role=Membership.Role.VIEWER))
    assert client.get("/admin/tenants/membership/").status_code == 200
    assert client.get("/admin/tenants/apikey/add/").status_code == 302
    response = client.post("/admin/tenants/apikey/add/", {"name": "sneaky"})
    assert response.status_code == 302
    assert not ApiKey.unscoped.filter(name="sneaky").exists()


def test_manager_issues_a_key_in_the_admin_and_sees_it_once(manager_a: User, tenant_a: Tenant) -> None:
    client = logged_in(manager_a)
    response = client.post("/admin/tenants/apikey/add/", {"name": "till gateway"})
    assert response.status_code == 200
    key = re.search(r'id="issued-api-key"[^>]*>(oa_[^<]+)<', response.content.decode())
    assert key is not None
    assert Client().get("/api/v1/tenant", HTTP_AUTHORIZATION=f"Bearer {key.group(1)}").json()["slug"] == "alpha"
    listing = client.get("/admin/tenants/apikey/").content.decode()
    assert "till gateway" in listing and key.group(1) not in listing
    entry = AuditEntry.unscoped.filter(tenant=tenant_a, object_type="tenants.apikey").latest("at")
    assert (entry.source, entry.actor_label, entry.action) == ("admin", "alice@alpha.test", "api_key.created")


def test_issuing_a_key_with_no_name_is_refused(manager_a: User) -> None:
    response = logged_in(manager_a).post("/admin/tenants/apikey/add/", {"name": ""})
    assert response.status_code == 200
    assert "issued-api-key" not in response.content.decode()
    assert ApiKey.unscoped.count() == 0


def test_manager_adds_a_team_member_and_it_is_audited(manager_a: User, tenant_a: Tenant) -> None:
    client = logged_in(manager_a)
    response = client.post("/admin/tenants/membership/add/", {"email": "new@alpha.test", "role": "staff"})
    assert response.status_code == 302
    assert Membership.unscoped.filter(tenant=tenant_a, user__username="new@alpha.test", role="staff").exists()
    bad = client.post("/admin/tenants/membership/add/", {"email": "not-an-email", "role": "staff"})
    assert bad.status_code == 200
    assert Membership.unscoped.filter(tenant=tenant_a).count() == 2


def test_manager_revokes_a_key_through_the_action(manager_a: User, api_a) -> None:
    client = logged_in(manager_a)
    key = api_a.api_key
    client.post("/admin/tenants/apikey/", {"action": "revoke_selected", "_selected_action": [key.pk]})
    key.refresh_from_db()
    assert key.revoked_at is not None
    assert AuditEntry.unscoped.filter(action="api_key.revoked", object_id=str(key.pk), source="admin").exists()


def test_manager_cannot_revoke_another_tenants_key_through_the_action(manager_a: User, api_b) -> None:
    logged_in(manager_a).post(
        "/admin/tenants/apikey/", {"action": "revoke_selected", "_selected_action": [api_b.api_key.pk]}
    )
    api_b.api_key.refresh_from_db()
    assert api_b.api_key.revoked_at is None


def test_store_staff_cannot_enter_the_operator_site(manager_a: User) -> None:
    response = logged_in(manager_a).get("/ops/")
    assert response.status_code == 302 and "/ops/login/" in response["Location"]


def test_operator_sees_every_tenant_and_suspends_one(operator: User, tenant_a: Tenant, tenant_b: Tenant) -> None:
    client = logged_in(operator)
    dashboard = client.get("/ops/").content.decode()
    assert "Alpha Markets" in dashboard and "Bravo Foods" in dashboard
    client.post("/ops/tenants/tenant/", {"action": "suspend_selected", "_selected_action": [tenant_b.pk]})
    tenant_b.refresh_from_db()
    assert tenant_b.status == Tenant.Status.SUSPENDED
    entry = AuditEntry.unscoped.get(tenant=tenant_b, action="tenant.suspended")
    assert (entry.source, entry.actor_label) == ("ops", "olga@openaisle.test")
    client.post("/ops/tenants/tenant/", {"action": "reactivate_selected", "_selected_action": [tenant_b.pk]})
    tenant_b.refresh_from_db()
    assert tenant_b.is_active


def test_operator_creates_a_tenant_and_issues_its_key(operator: User) -> None:
    client = logged_in(operator)
    response = client.post(
        "/ops/tenants/tenant/add/",
        {
            "name": "Corner Shop",
            "slug": "corner",
            "tenants-membership-TOTAL_FORMS": "0",
            "tenants-membership-INITIAL_FORMS": "0",
            "tenants-apikey-TOTAL_FORMS": "0",
            "tenants-apikey-INITIAL_FORMS": "0",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    tenant = Tenant.objects.get(slug="corner")
    assert AuditEntry.unscoped.filter(tenant=tenant, action="tenant.created", source="ops").exists()
    issued = client.post("/ops/tenants/apikey/add/", {"tenant": tenant.pk, "name": "pos"})
    assert 'id="issued-api-key"' in issued.content.decode()
    assert ApiKey.unscoped.filter(tenant=tenant, name="pos").exists()


def test_operator_audit_log_lists_every_tenant(operator: User, tenant_a: Tenant, tenant_b: Tenant) -> None:
    body = logged_in(operator).get("/ops/tenants/auditentry/").content.decode()
    assert "Alpha Markets" in body and "Bravo Foods" in body


def test_finance_can_look_but_not_change_tenants(finance: User, tenant_a: Tenant) -> None:
    client = logged_in(finance)
    assert client.get("/ops/tenants/tenant/").status_code == 200
    client.post("/ops/tenants/tenant/", {"action": "suspend_selected", "_selected_action": [tenant_a.pk]})
    tenant_a.refresh_from_db()
    assert tenant_a.is_active


@pytest.mark.parametrize("path", ["/admin/", "/ops/"])
def test_admin_login_pages_render_and_lead_to_their_own_dashboard(client: Client, path: str, db: None) -> None:
    response = client.get(f"{path}login/", follow=True)
    assert response.status_code == 200
    assert response.redirect_chain == [(f"{path}login/?next=%2F{path.strip('/')}%2F", 302)]
    assert b'name="password"' in response.content


def test_logging_in_on_the_bare_login_page_lands_on_the_dashboard(manager_a: User, operator: User) -> None:
    for user, path in ((manager_a, "/admin/"), (operator, "/ops/")):
        client = Client()
        login_url = client.get(f"{path}login/")["Location"]
        response = client.post(login_url, {"username": user.username, "password": PASSWORD})
        assert response.status_code == 302
        assert response["Location"] == path


@pytest.mark.parametrize(
    ("site", "person", "other_site", "says"),
    [
        ("/ops/", "manager_a", "/admin/", "This is a store admin account"),
        ("/admin/", "operator", "/ops/", "This is an OpenAisle operations account"),
        ("/admin/", "finance", "/ops/", "This is an OpenAisle operations account"),
    ],
)
def test_the_right_password_at_the_wrong_site_names_the_right_one(
    request: pytest.FixtureRequest, site: str, person: str, other_site: str, says: str
) -> None:
    user: User = request.getfixturevalue(person)
    client = Client()
    login = f"{site}login/?next={site}"
    response = client.post(login, {"username": user.username, "password": PASSWORD, "next": site})
    assert response.status_code == 200
    body = response.content.decode()
    assert says in body
    assert f'<a href="{other_site}"' in body
    assert "_auth_user_id" not in client.session  # not signed in at a site they cannot use
    assert client.get(site).status_code == 302


def test_a_wrong_password_still_says_only_that(manager_a: User) -> None:
    response = Client().post("/ops/login/?next=/ops/", {"username": manager_a.username, "password": "nope"})
    body = response.content.decode()
    assert "correct username and password" in body
    assert "store admin account" not in body  # the account is not confirmed to someone without its password


def test_signed_in_at_one_site_and_opening_the_other_says_where_to_go(manager_a: User) -> None:
    client = logged_in(manager_a)
    response = client.get("/ops/", follow=True)
    body = response.content.decode()
    assert "This is a store admin account" in body and '<a href="/admin/"' in body


def test_a_person_of_no_site_is_told_to_ask_for_access(db: None) -> None:
    User.objects.create_user("stranger@x.test", password=PASSWORD, is_staff=True)
    body = Client().post("/admin/login/?next=/admin/", {"username": "stranger@x.test", "password": PASSWORD})
    assert "not a member of any licensee yet" in body.content.decode()


def test_the_audit_log_reads_as_words_not_as_our_internal_names_json_or_cents(
    operator: User, manager_a: User, tenant_a: Tenant
) -> None:
    store = make_store(tenant_a, "EU1", currency="EUR")
    entry = _audited(
        store,
        tenant=tenant_a,
        source=AuditEntry.Source.ADMIN,
        actor_label="alice@alpha.test",
        action="visit.refunded",
        changes={"amount": 1250, "reason_code": "damaged", "lines": [{"sku": "SKU-1", "qty": 2}]},
    )
    for client, site in ((logged_in(operator), "ops"), (logged_in(manager_a), "admin")):
        listing = _visible(client.get(f"/{site}/tenants/auditentry/").content.decode())
        assert "EU1 — Store EU1" in listing and " Store " in listing and "stores.store" not in listing
        page = _visible(client.get(f"/{site}/tenants/auditentry/{entry.pk}/change/").content.decode())
        assert "Visit refunded: EU1 — Store EU1, by alice@alpha.test" in page  # the title
        assert "amount : €12.50" in page and "reason code : damaged" in page and "lines : qty 2, sku SKU-1" in page
        assert "1250" not in page and '"sku"' not in page and "stores.store" not in page


def _audited(obj: Model, **entry: Any) -> AuditEntry:
    """An audit log entry about `obj`, named as the audit log names what it records (tenants.audit.audit_entry)."""
    return AuditEntry.unscoped.create(
        object_type=obj._meta.label_lower, object_id=str(obj.pk), object_repr=str(obj), **entry
    )


def _visible(html: str) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


def test_an_empty_list_says_why_in_words_that_fit_it(manager_a: User) -> None:
    client = logged_in(manager_a)
    calibrations = _visible(client.get("/admin/visits/storecalibration/").content.decode())
    assert "No store has learnt a calibration yet. A store learns one as soon as people have reviewed" in calibrations
    stripe_events = _visible(client.get("/admin/payments/stripeevent/").content.decode())
    assert "None yet." in stripe_events
    searched = _visible(client.get("/admin/payments/stripeevent/", {"q": "nothing-like-this"}).content.decode())
    assert "Nothing matches this search or these filters." in searched
    for page in (calibrations, stripe_events, searched):
        assert "Create a new item" not in page and "yielded" not in page


def test_list_times_name_their_clock(operator: User, tenant_a: Tenant) -> None:
    _audited(
        tenant_a,
        at=datetime(2026, 3, 2, 14, 5, tzinfo=UTC),
        tenant=tenant_a,
        source=AuditEntry.Source.OPS,
        actor_label="op",
        action="tenant.suspended",
    )
    listing = _visible(logged_in(operator).get("/ops/tenants/auditentry/").content.decode())
    assert "2 Mar 2026 14:05 UTC" in listing and "p.m." not in listing  # not "March 2, 2026, 2:05 p.m."


def test_work_nobody_signed_in_for_is_by_its_source_not_cli(operator: User, tenant_a: Tenant) -> None:
    _audited(tenant_a, tenant=tenant_a, source=AuditEntry.Source.CLI, actor_label="cli", action="tenant.suspended")
    client = logged_in(operator)
    listing = _visible(client.get("/ops/tenants/auditentry/").content.decode())
    assert "Command line Tenant suspended" in listing and " cli " not in listing
    activity = client.get("/ops/").context["dashboard_tables"]
    rows = next(t["table"]["rows"] for t in activity if t["title"] == "Recent activity")
    assert rows[0][2] == "Command line"  # When, Tenant, Who
