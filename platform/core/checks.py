"""Production checks run by `manage.py check --deploy`: no secret may be one this repository publishes.

The defaults in platform/config/settings.py and the examples in deploy/env.example are public; a
platform that runs with one of them can have its sessions forged (SECRET_KEY), its Stripe webhooks
forged (STRIPE_WEBHOOK_SECRET), its metrics read (METRICS_TOKEN), and so on. Each such setting is an
error (`openaisle.E001`), so that a deploy that runs the check stops (the compose file's `migrate`
service does).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from django.apps import AppConfig
from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, register

# Every secret value this repository publishes: the settings' defaults and deploy/env.example's examples
# (a test keeps this list and env.example in step). Values saying "change me" count as published too.
PUBLISHED_SECRETS = frozenset(
    {
        "embedded-mode-insecure-key-set-SECRET_KEY-in-production",
        "change-me-to-50-random-characters-python-c-import-secrets-print-secrets-token-urlsafe-50",
        "sk_test_openaisle_platform",
        "sk_test_change_me",
        "whsec_openaisle_platform",
        "whsec_change_me",
        "change-me-metrics-token",
        "change-me-postgres-password",
        "change-me-object-storage-secret",
    }
)
_CHANGE_ME = ("change-me", "change_me", "changeme")

# The settings holding a secret; an empty value is not checked (a setting that is off, or derived from another).
SECRET_SETTINGS = (
    "SECRET_KEY",
    "STRIPE_SECRET_KEY",
    "STRIPE_WEBHOOK_SECRET",
    "METRICS_TOKEN",
    "FIELD_ENCRYPTION_KEY",
    "S3_SECRET_ACCESS_KEY",
)


def is_published(value: str) -> bool:
    """Whether a secret is one anybody can read in this repository."""
    return value in PUBLISHED_SECRETS or any(marker in value.lower() for marker in _CHANGE_ME)


def _secrets() -> Iterator[tuple[str, str]]:
    for name in SECRET_SETTINGS:
        yield name, str(getattr(settings, name, "") or "")
    yield "The password in DATABASE_URL", str(settings.DATABASES["default"].get("PASSWORD") or "")


@register(Tags.security, deploy=True)
def published_secrets(app_configs: Sequence[AppConfig] | None = None, **kwargs: Any) -> list[CheckMessage]:
    """`openaisle.E001` for every secret setting left at a value published in this repository."""
    return [
        Error(
            f"{name} is a value published in this repository (a default of platform/config/settings.py or an "
            "example of deploy/env.example): anybody can read it.",
            hint="Set a new random value in the production environment (deploy/env.example says how to make one).",
            id="openaisle.E001",
        )
        for name, value in _secrets()
        if value and is_published(value)
    ]
