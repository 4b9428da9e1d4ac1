"""Create a tenant and its first manager; optionally print a new API key (alone on the last line)."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from tenants import services
from tenants.audit import Actor
from tenants.models import Membership


class Command(BaseCommand):
    help = "Create a tenant with its first manager. With --api-key, the key is printed alone on the last line."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("slug", help="Short identifier: lowercase letters, digits, hyphens.")
        parser.add_argument("--name", required=True)
        parser.add_argument("--manager-email", required=True)
        parser.add_argument("--manager-password", help="Set this password instead of printing a set-password link.")
        parser.add_argument("--api-key", action="store_true", help="Also issue an API key and print it last.")

    def handle(self, *args: Any, **options: Any) -> None:
        actor = Actor.cli()
        try:
            with transaction.atomic():
                tenant = services.tenant_create(actor=actor, name=options["name"], slug=options["slug"])
                membership = services.member_add(
                    actor=actor, tenant=tenant, email=options["manager_email"], role=Membership.Role.MANAGER
                )
                if options["manager_password"]:
                    membership.user.set_password(options["manager_password"])
                    membership.user.save(update_fields=["password"])
                issued = (
                    services.api_key_issue(actor=actor, tenant=tenant, name="initial key")
                    if options["api_key"]
                    else None
                )
        except ValidationError as error:
            raise CommandError("; ".join(f"{k}: {' '.join(v)}" for k, v in error.message_dict.items())) from error
        self.stdout.write(f"Created tenant {tenant.slug} ({tenant.name}).")
        self.stdout.write(f"Manager: {membership.user.get_username()}")
        if not options["manager_password"]:
            self.stdout.write(
                f"Set-password link (sent by email too): {services.password_set_link(user=membership.user)}"
            )
        if issued is not None:
            self.stdout.write(f"API key {issued.api_key.display_prefix} issued; it is shown once, on the next line:")
            self.stdout.write(issued.key)
