"""Print what a tenant-sharded PostgreSQL (Citus) would distribute, replicate and refuse in this database's schema."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.db import connection

from core.sharding import sharding_plan


class Command(BaseCommand):
    help = "The figures of deploy/README.md's database plan, read from the live schema (PostgreSQL), as JSON."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "--blockers", action="store_true", help="List every blocker, one a line, after the figures."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if connection.vendor != "postgresql":
            raise CommandError("The plan reads PostgreSQL's catalogs: set DATABASE_URL to a PostgreSQL database.")
        plan = sharding_plan(connection)
        self.stdout.write(json.dumps({**plan.figures(), "reference": plan.reference}, indent=2))
        if options["blockers"]:
            self.stdout.write("\n".join(plan.blockers))
