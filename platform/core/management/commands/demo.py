"""Seed the demo: an operator, a finance user, two licensees with managers and API keys; print where to look.

Safe to run again: existing people and tenants are kept, passwords reset to the
demo ones, and a fresh API key is issued each time.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth.models import Group, User
from django.core.management.base import BaseCommand
from django.db import transaction

from core.admin_sites import FINANCE_GROUP, OPERATOR_GROUP
from tenants import services
from tenants.audit import Actor
from tenants.models import Membership, Tenant

DEMO_PASSWORD = "open-aisle-demo"  # noqa: S105 — the demo's published login
DEMO_TENANTS = (
    ("northwind", "Northwind Grocers", "manager@northwind.test"),
    ("southgate", "Southgate Foods", "manager@southgate.test"),
)
PLATFORM_STAFF = (("operator@openaisle.test", OPERATOR_GROUP), ("finance@openaisle.test", FINANCE_GROUP))


class Command(BaseCommand):
    help = "Seed the demo data and print the URLs, logins and an API key."

    def handle(self, *args: Any, **options: Any) -> None:
        actor = Actor.cli()
        with transaction.atomic():
            for email, group in PLATFORM_STAFF:
                user = _demo_user(email)
                user.groups.add(Group.objects.get(name=group))
            keys = {}
            for slug, name, manager_email in DEMO_TENANTS:
                tenant = Tenant.objects.filter(slug=slug).first() or services.tenant_create(
                    actor=actor, name=name, slug=slug
                )
                manager = _demo_user(manager_email)
                if not Membership.unscoped.filter(tenant=tenant, user=manager).exists():
                    services.member_add(actor=actor, tenant=tenant, email=manager_email, role=Membership.Role.MANAGER)
                keys[slug] = services.api_key_issue(actor=actor, tenant=tenant, name="demo key").key
        self._print_summary(keys)

    def _print_summary(self, keys: dict[str, str]) -> None:
        base = settings.PUBLIC_BASE_URL.rstrip("/")
        out = self.stdout.write
        out(self.style.SUCCESS("\nOpenAisle demo is ready.\n"))
        out(f"  Operator admin   {base}/ops/     operator@openaisle.test / {DEMO_PASSWORD}")
        out(f"                                    finance@openaisle.test / {DEMO_PASSWORD}")
        out(f"  Store admin      {base}/admin/   manager@northwind.test / {DEMO_PASSWORD}  (or manager@southgate.test)")
        out(f"  API docs         {base}/api/v1/docs/")
        out(f"  Health           {base}/healthz  {base}/readyz")
        out(f"  Northwind API key (shown once):\n    {keys['northwind']}")
        out(f"  Try:  curl -H 'Authorization: Bearer {keys['northwind']}' {base}/api/v1/tenant")


def _demo_user(email: str) -> User:
    user, _ = User.objects.get_or_create(username=email, defaults={"email": email})
    user.is_staff = True
    user.set_password(DEMO_PASSWORD)
    user.save()
    return user
