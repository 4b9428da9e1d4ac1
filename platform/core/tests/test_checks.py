"""`manage.py check --deploy` fails while any secret is one this repository publishes (issue 16, finding 7)."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from core.checks import SECRET_SETTINGS, is_published, published_secrets

ROOT = Path(__file__).resolve().parents[3]
ENV_EXAMPLE = ROOT / "deploy" / "env.example"
Done = subprocess.CompletedProcess[str]


def _env_example() -> dict[str, str]:
    lines = ENV_EXAMPLE.read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))


@pytest.fixture
def check_deploy(run_in_checkout: Callable[..., Done]) -> Callable[[dict[str, str]], Done]:
    """`manage.py check --deploy` in a process of its own, with only the environment given (and the paths)."""

    def check(environment: dict[str, str]) -> Done:
        env = {
            **{name: os.environ[name] for name in ("PATH", "HOME") if name in os.environ},
            "PYTHONPATH": f"{ROOT}:{ROOT / 'platform'}",
            "DJANGO_SETTINGS_MODULE": "config.settings",
            **environment,
        }
        return run_in_checkout([sys.executable, "manage.py", "check", "--deploy", "--fail-level", "ERROR"], env=env)

    return check


def _strong() -> str:
    return secrets.token_urlsafe(50)


def _production(**overrides: str) -> dict[str, str]:
    return {
        "HTTPS": "true",
        "SECRET_KEY": _strong(),
        "ALLOWED_HOSTS": "openaisle.example.com",
        "DATABASE_URL": f"postgres://openaisle:{_strong()}@postgres:5432/openaisle",
        "STRIPE_SECRET_KEY": f"sk_live_{_strong()}",
        "STRIPE_WEBHOOK_SECRET": f"whsec_{_strong()}",
        "METRICS_TOKEN": _strong(),
        **overrides,
    }


def test_env_example_as_it_stands_fails_the_production_check_naming_every_published_secret(
    check_deploy: Callable[[dict[str, str]], Done],
) -> None:
    done = check_deploy(_env_example())
    assert done.returncode != 0
    for name in (
        "SECRET_KEY",
        "STRIPE_SECRET_KEY",
        "STRIPE_WEBHOOK_SECRET",
        "METRICS_TOKEN",
        "DATABASE_URL",
        "S3_SECRET_ACCESS_KEY",
    ):
        assert f"(openaisle.E001) {name}" in done.stderr or f"(openaisle.E001) The password in {name}" in done.stderr
    assert done.stderr.count("openaisle.E001") == 6


def test_the_settings_defaults_fail_it_and_new_secrets_pass_it(check_deploy: Callable[[dict[str, str]], Done]) -> None:
    defaults = _production()
    for name in ("STRIPE_SECRET_KEY", "STRIPE_WEBHOOK_SECRET"):
        del defaults[name]
    done = check_deploy(defaults)
    assert done.returncode != 0
    assert "(openaisle.E001) STRIPE_SECRET_KEY" in done.stderr
    assert "(openaisle.E001) STRIPE_WEBHOOK_SECRET" in done.stderr
    assert done.stderr.count("openaisle.E001") == 2

    passed = check_deploy(_production())
    assert passed.returncode == 0, passed.stderr
    assert "openaisle.E001" not in passed.stderr + passed.stdout


def test_every_secret_env_example_shows_is_known_as_published() -> None:
    example = _env_example()
    shown = [name for name in (*SECRET_SETTINGS, "POSTGRES_PASSWORD", "MINIO_ROOT_PASSWORD") if example.get(name)]
    assert len(shown) >= 7
    for name in shown:
        assert is_published(example[name]), name


def test_each_secret_setting_is_checked(settings) -> None:
    settings.SECRET_KEY = _strong()
    settings.STRIPE_SECRET_KEY = f"sk_live_{_strong()}"
    settings.STRIPE_WEBHOOK_SECRET = f"whsec_{_strong()}"
    settings.METRICS_TOKEN = ""  # off: nothing to guess
    settings.FIELD_ENCRYPTION_KEY = ""  # derived from SECRET_KEY
    assert published_secrets() == []
    for name, value in (
        ("SECRET_KEY", "embedded-mode-insecure-key-set-SECRET_KEY-in-production"),
        ("METRICS_TOKEN", "change-me-metrics-token"),
        ("FIELD_ENCRYPTION_KEY", "CHANGE_ME"),
        ("STRIPE_WEBHOOK_SECRET", "whsec_openaisle_platform"),
        ("S3_SECRET_ACCESS_KEY", "change-me-object-storage-secret"),
    ):
        previous = getattr(settings, name)
        setattr(settings, name, value)
        errors = published_secrets()
        assert [(error.id, error.msg.split(" ")[0]) for error in errors] == [("openaisle.E001", name)]
        setattr(settings, name, previous)
