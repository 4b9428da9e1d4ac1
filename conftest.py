"""Fixtures shared by the whole suite: two tenants, Alpha and Bravo, so that every test can ask
"and what does the other tenant see?" (healthchecks' alice-and-bob, here with tenants)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import Group, User
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from rest_framework.test import APIClient

from core.admin_sites import FINANCE_GROUP, OPERATOR_GROUP
from tenants import services
from tenants.audit import Actor
from tenants.models import Membership, Tenant

PASSWORD = "correct-horse-battery-staple"
ROOT = Path(__file__).resolve().parent


@pytest.fixture(scope="session", autouse=True)
def _cache_of_earlier_runs_dropped() -> None:
    """The cache (Redis) outlives the test database, whose ids start again at 1 every run: drop what earlier runs
    kept under those ids (for the gate: API keys, stores, shoppers' standing; a store's live pushes waiting to be
    finished)."""
    from django.conf import settings
    from django.core.cache import cache

    location = settings.CACHES["default"].get("LOCATION", "")
    if not str(location).startswith("redis"):
        cache.clear()
        return
    import redis

    client = redis.Redis.from_url(location)
    try:
        for family in ("api-key", "store-at-gate", "standing", "push-finish-pending", "push-summary"):
            for key in client.scan_iter(cache.make_key(f"{family}:*"), count=1000):
                client.delete(key)
    finally:
        client.close()


@pytest.fixture(scope="session", autouse=True)
def _object_store() -> Iterator[None]:
    """With the services (DATABASE_URL, as `make test` runs) every file is kept in an S3 bucket of moto's server on
    127.0.0.1, started for the run as localstripe is — by this process and by every process a test starts (their
    environment names the bucket). The embedded mode keeps the local disk; a configured S3_BUCKET is used as is."""
    if not os.environ.get("DATABASE_URL") or os.environ.get("S3_BUCKET"):
        yield
        return
    from django.test import override_settings

    from core.object_store_standin import LocalS3

    with LocalS3() as store, pytest.MonkeyPatch.context() as environment:
        for name, value in store.environment.items():
            environment.setenv(name, value)
        with override_settings(
            STORAGES={"default": store.storage, "staticfiles": _static_files()}, S3_BUCKET=store.bucket
        ):
            yield


@pytest.fixture
def files_on_local_disk(settings: Any, tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """This test, and the processes it starts, keep their files on the local disk under a folder of its own — for a
    test that needs a file to be a local path (a FIFO that holds a worker reading it)."""
    settings.STORAGES = {**settings.STORAGES, "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"}}
    settings.MEDIA_ROOT = tmp_path
    settings.S3_BUCKET = ""
    monkeypatch.delenv("S3_BUCKET", raising=False)
    monkeypatch.setenv("MEDIA_ROOT", str(tmp_path))
    return settings


def _static_files() -> dict[str, Any]:
    from django.conf import settings

    return dict(settings.STORAGES["staticfiles"])


def logged_in(user: User) -> Client:
    """A test client logged in as `user` (every test user's password is PASSWORD)."""
    client = Client()
    assert client.login(username=user.username, password=PASSWORD)
    return client


def api_views(resolver: URLResolver | None = None, prefix: str = "") -> list[tuple[str, type]]:
    """Every view of the licensee API (the routes under api/), with its route: what the suite checks one by one."""
    found = []
    for pattern in (resolver or get_resolver()).url_patterns:
        route = prefix + str(pattern.pattern)
        if isinstance(pattern, URLResolver):
            found += api_views(pattern, route)
        elif isinstance(pattern, URLPattern) and route.startswith("api/"):
            found.append((route, pattern.callback.view_class))  # type: ignore[attr-defined]
    return found


def checkout_env(**settings: str) -> dict[str, str]:
    """This process's environment for another Django process of the checkout (its import path, its settings module),
    with `settings` added."""
    return {
        **os.environ,
        "PYTHONPATH": f"{ROOT}:{ROOT / 'platform'}",
        "DJANGO_SETTINGS_MODULE": "config.settings",
        **settings,
    }


@pytest.fixture
def run_in_checkout() -> Callable[..., subprocess.CompletedProcess[str]]:
    """Runs a command from the checkout's root in a process of its own, with the environment given: its return code
    and output (as text) for the test to read; two minutes at most."""

    def run(argv: list[str], *, env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
        return subprocess.run(  # noqa: S603 — the tests' own commands
            argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False
        )

    return run


@pytest.fixture
def tenant_a(db: None) -> Tenant:
    return services.tenant_create(actor=Actor.system(), name="Alpha Markets", slug="alpha")


@pytest.fixture
def tenant_b(db: None) -> Tenant:
    return services.tenant_create(actor=Actor.system(), name="Bravo Foods", slug="bravo")


def _api_client(tenant: Tenant) -> APIClient:
    issued = services.api_key_issue(actor=Actor.system(), tenant=tenant, name=f"{tenant.slug} test key")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {issued.key}")
    client.api_key = issued.api_key  # type: ignore[attr-defined]
    return client


@pytest.fixture
def api_a(tenant_a: Tenant) -> APIClient:
    """An API client holding a key of tenant Alpha."""
    return _api_client(tenant_a)


@pytest.fixture
def api_b(tenant_b: Tenant) -> APIClient:
    """An API client holding a key of tenant Bravo."""
    return _api_client(tenant_b)


@pytest.fixture
def make_member(db: None) -> Callable[..., User]:
    """Make a person with a password and a role in one or more tenants."""

    def make(email: str, *tenants: Tenant, role: str = Membership.Role.MANAGER) -> User:
        user, _ = User.objects.get_or_create(username=email, defaults={"email": email, "is_staff": True})
        user.set_password(PASSWORD)
        user.save()
        for tenant in tenants:
            services.member_add(actor=Actor.system(), tenant=tenant, email=email, role=role)
        return user

    return make


@pytest.fixture
def manager_a(make_member: Callable[..., User], tenant_a: Tenant) -> User:
    return make_member("alice@alpha.test", tenant_a)


@pytest.fixture
def viewer_a(make_member: Callable[..., User], tenant_a: Tenant) -> User:
    """A member of tenant A who may read but not write."""
    return make_member("vic@alpha.test", tenant_a, role=Membership.Role.VIEWER)


@pytest.fixture
def manager_b(make_member: Callable[..., User], tenant_b: Tenant) -> User:
    return make_member("bob@bravo.test", tenant_b)


def _platform_user(email: str, group: str) -> User:
    user = User.objects.create_user(username=email, email=email, password=PASSWORD, is_staff=True)
    user.groups.add(Group.objects.get_or_create(name=group)[0])
    return user


@pytest.fixture
def operator(db: None) -> User:
    return _platform_user("olga@openaisle.test", OPERATOR_GROUP)


@pytest.fixture
def finance(db: None) -> User:
    return _platform_user("fred@openaisle.test", FINANCE_GROUP)


@pytest.fixture
def celery_worker(transactional_db: None) -> Iterator[None]:
    """A real Celery worker on the configured broker, consuming every queue, for the length of a test.

    In embedded mode (no broker) tasks run in-process already, and this does nothing.
    """
    from django.conf import settings

    if settings.CELERY_TASK_ALWAYS_EAGER:
        yield
        return
    from config.celery import QUEUES, app
    from core.tests.support import worker_in_thread

    app.control.purge()
    with worker_in_thread(app, queues=list(QUEUES)):
        yield


@pytest.fixture
def make_store_with_layout(db: None) -> Callable[..., Any]:
    """Make a store with a catalog and the sample layout in force since LAYOUT_FROM."""
    from stores.sample_store import sample_products_add, sample_store

    def make(tenant: Tenant, code: str = "S1") -> Any:
        sample_products_add(tenant=tenant)
        return sample_store(actor=Actor.system(), tenant=tenant, code=code)

    return make


@pytest.fixture(scope="session")
def _stripe_standin() -> Iterator[Any]:
    from billing.payments.stripe_standin import LocalStripe

    with LocalStripe() as standin:
        yield standin


@pytest.fixture
def localstripe(_stripe_standin: Any, settings: Any) -> Any:
    """localstripe on 127.0.0.1, emptied for this test, and the Stripe gateway pointed at it."""
    _stripe_standin.reset()
    settings.STRIPE_API_BASE = _stripe_standin.base_url
    return _stripe_standin
