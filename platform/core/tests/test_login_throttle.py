"""Sign-in throttling on /admin/ and /ops/: 40 wrong passwords then the right one was let in (issue 16, finding 6)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from axes.models import AccessAttempt
from django.conf import settings
from django.contrib.auth.models import User
from django.test import Client

from conftest import PASSWORD
from tenants.models import AuditEntry

ROOT = Path(__file__).resolve().parents[3]
SITES = [("/admin/", "manager_a"), ("/ops/", "operator")]
LOCKED_OUT = "Too many failed sign-ins for this account from your address"


def _sign_in(client: Client, site: str, username: str, password: str, **extra: str):
    return client.post(f"{site}login/?next={site}", {"username": username, "password": password}, **extra)


def _signed_in(client: Client) -> bool:
    return "_auth_user_id" in client.session


@pytest.mark.parametrize(("site", "who"), SITES)
def test_forty_wrong_passwords_lock_the_account_at_that_address_until_the_cool_off_ends(
    site: str, who: str, request: pytest.FixtureRequest
) -> None:
    user: User = request.getfixturevalue(who)
    attacker = Client(REMOTE_ADDR="203.0.113.7")
    limit = settings.AXES_FAILURE_LIMIT
    statuses = [_sign_in(attacker, site, user.username, f"guess-{n}").status_code for n in range(40)]
    assert statuses == [200] * (limit - 1) + [429] * (40 - limit + 1)

    refused = _sign_in(attacker, site, user.username, PASSWORD)
    assert refused.status_code == 429
    assert LOCKED_OUT in refused.content.decode()
    assert 'id="login-form"' in refused.content.decode()  # the site's own sign-in page, saying why
    assert not _signed_in(attacker)

    # The lock is on this username at this address: the person, from elsewhere, signs in.
    elsewhere = Client(REMOTE_ADDR="198.51.100.20")
    assert _sign_in(elsewhere, site, user.username, PASSWORD).status_code == 302
    assert _signed_in(elsewhere)

    # Written to the audit log once, when it started.
    locked = AuditEntry.unscoped.filter(action="login.locked")
    assert [(entry.source, entry.changes["username"], entry.changes["ip_address"]) for entry in locked] == [
        (site.strip("/"), user.username, "203.0.113.7")
    ]
    assert locked.get().changes["failures"] == limit

    # Once the cool-off has passed since the last try, the right password works again and clears the count.
    AccessAttempt.objects.update(attempt_time=AccessAttempt.objects.get().attempt_time - settings.AXES_COOLOFF_TIME)
    assert AccessAttempt.objects.get(ip_address="203.0.113.7").failures_since_start == 41
    logged_in = _sign_in(attacker, site, user.username, PASSWORD)
    assert logged_in.status_code == 302
    assert logged_in["Location"] == site
    assert _signed_in(attacker)
    assert not AccessAttempt.objects.filter(username=user.username).exists()


def test_a_lock_shows_in_ops_and_an_operator_lifts_it_audited(manager_a: User, operator: User) -> None:
    attacker = Client(REMOTE_ADDR="203.0.113.9")
    for n in range(settings.AXES_FAILURE_LIMIT):
        _sign_in(attacker, "/admin/", manager_a.username, f"guess-{n}")
    assert _sign_in(attacker, "/admin/", manager_a.username, PASSWORD).status_code == 429

    ops = Client()
    assert ops.login(username=operator.username, password=PASSWORD)  # the test client: no address to throttle
    listing = ops.get("/ops/tenants/signinfailure/")
    assert listing.status_code == 200
    page = listing.content.decode()
    assert manager_a.username in page and "203.0.113.9" in page and "Locked until" in page
    assert "not locked" not in page
    attempt = AccessAttempt.objects.get()
    unlocked = ops.post(
        "/ops/tenants/signinfailure/", {"action": "unlock_selected", "_selected_action": [attempt.pk]}, follow=True
    )
    assert "Unlocked" in unlocked.content.decode()
    assert not AccessAttempt.objects.exists()
    entry = AuditEntry.unscoped.get(action="login.unlocked")
    assert (entry.source, entry.actor_label) == ("ops", operator.username)
    assert entry.changes["username"] == manager_a.username

    assert _sign_in(attacker, "/admin/", manager_a.username, PASSWORD).status_code == 302


def test_operators_find_failed_sign_ins_by_a_business_name_and_finance_does_not_see_them(
    operator: User, finance: User
) -> None:
    ops = Client()
    assert ops.login(username=operator.username, password=PASSWORD)
    sidebar = [(app["name"], [m["name"] for m in app["models"]]) for app in ops.get("/ops/").context["app_list"]]
    assert ("Tenants and access", ["API keys", "Audit log", "Failed sign-ins", "Memberships", "Tenants"]) in sidebar
    assert not [name for name, models in sidebar if name == "Axes" or "Access attempts" in models]
    books = Client()
    assert books.login(username=finance.username, password=PASSWORD)
    names = [m["name"] for app in books.get("/ops/").context["app_list"] for m in app["models"]]
    assert "Failed sign-ins" not in names and "Invoices" in names
    assert books.get("/ops/tenants/signinfailure/").status_code == 403


def test_a_licensee_manager_cannot_see_or_lift_locks(manager_a: User) -> None:
    client = Client()
    assert client.login(username=manager_a.username, password=PASSWORD)
    assert client.get("/admin/tenants/signinfailure/").status_code == 404


def test_a_few_wrong_passwords_are_forgotten_after_the_right_one(manager_a: User) -> None:
    client = Client(REMOTE_ADDR="203.0.113.10")
    for _ in range(2):
        for n in range(settings.AXES_FAILURE_LIMIT - 1):
            assert _sign_in(client, "/admin/", manager_a.username, f"typo-{n}").status_code == 200
        assert _sign_in(client, "/admin/", manager_a.username, PASSWORD).status_code == 302
        client.logout()
    assert not AuditEntry.unscoped.filter(action="login.locked").exists()


def test_behind_a_declared_proxy_the_forwarded_address_is_locked(settings, manager_a: User) -> None:
    settings.LOGIN_PROXY_COUNT = 1
    proxy = "10.0.0.5"
    for n in range(settings.AXES_FAILURE_LIMIT):
        _sign_in(Client(REMOTE_ADDR=proxy), "/admin/", manager_a.username, f"guess-{n}", HTTP_X_FORWARDED_FOR="1.2.3.4")
    attempt = AccessAttempt.objects.get()
    assert attempt.ip_address == "1.2.3.4"
    # Another caller through the same proxy is not locked; a forged left-most entry changes nothing.
    other = _sign_in(
        Client(REMOTE_ADDR=proxy), "/admin/", manager_a.username, PASSWORD, HTTP_X_FORWARDED_FOR="1.2.3.4, 5.6.7.8"
    )
    assert other.status_code == 302
    again = Client(REMOTE_ADDR=proxy)
    assert _sign_in(again, "/admin/", manager_a.username, PASSWORD, HTTP_X_FORWARDED_FOR="1.2.3.4").status_code == 429


def test_limit_cool_off_and_proxies_come_from_the_environment(
    run_in_checkout: Callable[..., subprocess.CompletedProcess[str]],
) -> None:
    names = "s.AXES_FAILURE_LIMIT, s.AXES_COOLOFF_TIME, s.LOGIN_PROXY_COUNT"
    code = f"from django.conf import settings as s; print({names})"
    env = {
        **os.environ,
        "PYTHONPATH": f"{ROOT}:{ROOT / 'platform'}",
        "LOGIN_FAILURE_LIMIT": "3",
        "LOGIN_COOLOFF_MINUTES": "60",
        "LOGIN_PROXY_COUNT": "1",
    }
    done = run_in_checkout([sys.executable, "manage.py", "shell", "--no-imports", "-c", code], env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["3", "1:00:00", "1"]
