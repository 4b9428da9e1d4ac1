"""Billing tasks: thin, idempotent, on the default queue (names start with "invoicing.")."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from celery import shared_task
from django.utils import timezone

from billing.invoicing import services
from billing.invoicing.calculations import previous_month
from core import tenancy
from tenants.audit import Actor


@shared_task(name="invoicing.close_previous_month")
def close_previous_month() -> dict[str, Any]:
    """Beat, on the 1st: the previous month's drafts for every tenant on a plan (closing twice changes nothing)."""
    start, _ = previous_month(timezone.localdate())
    with tenancy.platform_wide_scope():
        return services.month_close(actor=Actor.system(), period_start=start).as_dict()


@shared_task(name="invoicing.refresh_recent_usage")
def refresh_recent_usage() -> int:
    """Beat, every 10 minutes: yesterday's and today's usage for the consoles (every timezone's today is covered)."""
    today = timezone.localdate()
    with tenancy.platform_wide_scope():
        return services.usage_recompute(start=today - timedelta(days=1), end=today + timedelta(days=1))
