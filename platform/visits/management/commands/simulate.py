"""Write a simulated store day to a folder: layout, catalog, shoppers, event stream files, ground truth.

The truth holds each payer's cart (`carts`: a group's items are on its payer's) and the group members
(`groups`: member session → payer session).

`shoppers.csv` lists each payer's session with the entry token its `session.started` carries. These are made up
here (`tok_` and random hex, never registered: they open no gate and charge no card), so writing them in clear
gives nothing away; and the platform keeps nothing of this command — it reads no database and writes only to
`--out`, a folder of the caller's. Uploaded, a day's tokens are hashed at ingest like any (core.entry_tokens).
"""

from __future__ import annotations

import csv
import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from catalog.sample import sample_catalog_rows
from stores.sample import sample_layout
from visits.perception import FAMILIES
from visits.simulator import PROFILES, CatalogItem, simulate


def catalog_items(rows: list[dict[str, Any]]) -> dict[str, CatalogItem]:
    """The simulator's view of catalog rows: unit weight and the default tolerance (max 2 g, 5 %)."""
    items = {}
    for row in rows:
        weight = float(Decimal(str(row["weight_g"])))
        items[row["sku"]] = CatalogItem(row["sku"], weight, max(2.0, 0.05 * weight))
    return items


class Command(BaseCommand):
    help = "Simulate a store day with a noise profile and write the files a licensee would upload, plus the truth."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--profile", choices=sorted(PROFILES), default="realistic")
        parser.add_argument(
            "--stack", choices=sorted(FAMILIES), help="The family of perception stack (default: the profile's)."
        )
        parser.add_argument("--visits", type=int, default=300)
        parser.add_argument("--seed", type=int, default=1)
        parser.add_argument("--products", type=int, default=120)
        parser.add_argument("--currency", default="USD")
        parser.add_argument("--day", default="2026-03-02", help="The simulated day (UTC), YYYY-MM-DD.")
        parser.add_argument("--out", required=True, help="Folder to write into (created if missing).")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            start = datetime.fromisoformat(options["day"]).replace(hour=8, tzinfo=UTC)
        except ValueError as error:
            raise CommandError(f"--day: {error}") from error
        if options["visits"] < 1:
            raise CommandError("--visits must be at least 1")
        out = Path(options["out"])
        out.mkdir(parents=True, exist_ok=True)
        rows = sample_catalog_rows(count=options["products"], currency=options["currency"], seed=options["seed"])
        layout = sample_layout(skus=[row["sku"] for row in rows])
        simulation = simulate(
            layout=layout,
            catalog=catalog_items(rows),
            profile=options["profile"],
            visits=options["visits"],
            start=start,
            seed=options["seed"],
            stack=options["stack"],
        )
        with (out / "catalog.csv").open("w", newline="") as file:
            writer = csv.DictWriter(file, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
        (out / "layout.json").write_text(json.dumps(layout, indent=2))
        with (out / "shoppers.csv").open("w", newline="") as file:
            shoppers = csv.writer(file)
            shoppers.writerow(["session", "entry_token"])
            shoppers.writerows(sorted(simulation.shoppers.items()))
        names = []
        for number, upload in enumerate(simulation.uploads, start=1):
            name = f"events-{number}.ndjson"
            (out / name).write_bytes(upload)
            names.append(name)
        truth = {
            "profile": simulation.profile,
            "seed": options["seed"],
            "stack": simulation.stack.family,
            "carts": simulation.truth,
            "groups": simulation.groups,
            "price_changes": [
                {"sku": sku, "from": at.isoformat(), "factor": factor} for sku, at, factor in simulation.price_changes
            ],
            "sensor_outages": [
                {"sensor": sensor, "from": begin.isoformat(), "until": end.isoformat()}
                for sensor, begin, end in simulation.sensor_outages
            ],
        }
        (out / "truth.json").write_text(json.dumps(truth, indent=2, sort_keys=True))
        events = sum(upload.count(b"\n") for upload in simulation.uploads)
        self.stdout.write(
            f"Wrote {options['profile']} day: {options['visits']} visits, {events} lines in {', '.join(names)}, "
            f"catalog.csv, layout.json, shoppers.csv, truth.json → {out}"
        )
