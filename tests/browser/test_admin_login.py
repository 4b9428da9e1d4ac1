"""The two admin sites in a real browser: logging in, what each kind of user sees, and what they cannot see."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from playwright.sync_api import Page, expect

from conftest import PASSWORD
from tenants.models import Tenant
from tests.browser.support import api_get, log_in

Screenshot = Callable[[str], Path]

LANDED_ELSEWHERE = (
    "logging in on the bare login page must land on the site's dashboard; landing on /accounts/profile/ means "
    "the login form did not post the `next` field (unfold's admin/login.html has no hidden `next` input)"
)


@pytest.mark.browser
def test_manager_logs_in_and_sees_only_their_tenant(
    page: Page, live_server, screenshot: Screenshot, manager_a: User, tenant_b: Tenant
) -> None:
    log_in(page, f"{live_server.url}/admin/login/", manager_a)

    expect(page, LANDED_ELSEWHERE).to_have_url(f"{live_server.url}/admin/")
    main = page.locator("#content, main").first
    expect(page.get_by_text("Alpha Markets").first).to_be_visible()
    for kpi in ("Account", "Team members", "Live API keys"):
        expect(main.get_by_text(kpi, exact=True).first).to_be_visible()
    expect(main.get_by_text("Recent activity")).to_be_visible()
    assert "Bravo Foods" not in page.content()
    screenshot("admin-dashboard-manager")


@pytest.mark.browser
def test_manager_issues_an_api_key_that_works(
    page: Page, live_server, screenshot: Screenshot, manager_a: User, tenant_a: Tenant
) -> None:
    log_in(page, f"{live_server.url}/admin/tenants/apikey/", manager_a)
    expect(page).to_have_url(f"{live_server.url}/admin/tenants/apikey/")
    page.locator('a[href="/admin/tenants/apikey/add/"]').first.click()
    expect(page).to_have_url(f"{live_server.url}/admin/tenants/apikey/add/")
    screenshot("admin-apikey-add-form")

    page.fill('input[name="name"]', "till gateway")
    page.get_by_role("button", name="Issue key").click()
    issued = page.locator("#issued-api-key")
    expect(issued).to_have_text(re.compile(r"^\s*oa_\S+\s*$"))
    key = issued.inner_text().strip()
    screenshot("admin-apikey-issued")

    page.get_by_role("link", name="Back to API keys").click()
    expect(page).to_have_url(f"{live_server.url}/admin/tenants/apikey/")
    expect(page.locator("#result_list")).to_contain_text("till gateway")
    assert key not in page.content(), "the secret must only be shown once"
    screenshot("admin-apikey-list")

    status, body = api_get(f"{live_server.url}/api/v1/tenant", key)
    assert status == 200
    assert body["slug"] == "alpha"
    assert body["name"] == "Alpha Markets"


@pytest.mark.browser
def test_operator_sees_every_tenant_on_the_ops_dashboard(
    page: Page, live_server, screenshot: Screenshot, operator: User, tenant_a: Tenant, tenant_b: Tenant
) -> None:
    log_in(page, f"{live_server.url}/ops/login/", operator)

    expect(page, LANDED_ELSEWHERE).to_have_url(f"{live_server.url}/ops/")
    expect(page.get_by_text("Active tenants").first).to_be_visible()
    expect(page.get_by_text("Suspended tenants").first).to_be_visible()
    tenants_table = page.locator("table").filter(has=page.get_by_text("Slug", exact=True)).first
    expect(tenants_table).to_contain_text("Alpha Markets")
    expect(tenants_table).to_contain_text("Bravo Foods")
    screenshot("ops-dashboard-operator")


@pytest.mark.browser
def test_manager_cannot_use_the_ops_site(
    page: Page, live_server, screenshot: Screenshot, manager_a: User, tenant_b: Tenant
) -> None:
    log_in(page, f"{live_server.url}/admin/", manager_a)
    expect(page).to_have_url(f"{live_server.url}/admin/")

    page.goto(f"{live_server.url}/ops/")

    expect(page).to_have_url(re.compile(r"/ops/login/"))
    expect(page.locator('input[name="password"]')).to_be_visible()
    expect(page.get_by_text("Active tenants")).to_have_count(0)
    assert "Bravo Foods" not in page.content()
    screenshot("ops-login-refuses-manager")


@pytest.mark.browser
def test_member_of_two_tenants_chooses_one(
    page: Page,
    live_server,
    screenshot: Screenshot,
    make_member: Callable[..., User],
    tenant_a: Tenant,
    tenant_b: Tenant,
) -> None:
    person = make_member("casey@both.test", tenant_a, tenant_b)
    log_in(page, f"{live_server.url}/admin/", person)

    expect(page).to_have_url(re.compile(r"/admin/tenant/"))
    expect(page.get_by_role("button", name=re.compile("Alpha Markets"))).to_be_visible()
    bravo = page.get_by_role("button", name=re.compile("Bravo Foods"))
    expect(bravo).to_be_visible()
    screenshot("admin-choose-tenant")

    bravo.click()

    expect(page).to_have_url(f"{live_server.url}/admin/")
    expect(page.get_by_text("Bravo Foods").first).to_be_visible()
    expect(page.get_by_text("Live API keys").first).to_be_visible()
    assert "Alpha Markets" not in page.content()
    screenshot("admin-dashboard-after-choosing-bravo")


@pytest.mark.browser
def test_a_manager_at_the_operations_login_is_sent_to_the_store_admin(
    page: Page, live_server, screenshot: Screenshot, manager_a: User
) -> None:
    log_in(page, f"{live_server.url}/ops/login/", manager_a)
    expect(page.get_by_text("This is a store admin account")).to_be_visible()
    screenshot("ops-login-wrong-site")
    page.get_by_role("link", name="store admin").click()
    log_in(page, page.url, manager_a)
    expect(page).to_have_url(f"{live_server.url}/admin/")


@pytest.mark.browser
def test_too_many_wrong_passwords_show_why_on_the_sign_in_page(
    page: Page, live_server, screenshot: Screenshot, operator: User
) -> None:
    from django.conf import settings

    page.goto(f"{live_server.url}/ops/login/")
    for n in range(settings.AXES_FAILURE_LIMIT):
        page.fill('input[name="username"]', operator.get_username())
        page.fill('input[name="password"]', f"wrong-{n}")
        page.click('#login-form button[type="submit"]')
        page.wait_for_load_state()
    locked = page.locator("#login-locked-out")
    expect(locked).to_contain_text("Too many failed sign-ins for this account from your address")
    expect(locked).to_contain_text("Try again in 15 minutes")
    expect(page.locator("#login-form")).to_be_visible()
    screenshot("ops-login-locked-out")

    page.fill('input[name="username"]', operator.get_username())
    page.fill('input[name="password"]', PASSWORD)
    page.click('#login-form button[type="submit"]')
    page.wait_for_load_state()
    expect(page.locator("#login-locked-out")).to_be_visible()
    assert page.url.startswith(f"{live_server.url}/ops/login/")
