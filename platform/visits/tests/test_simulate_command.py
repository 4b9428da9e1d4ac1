from __future__ import annotations

import csv
import json
from io import StringIO
from pathlib import Path

import orjson
import pytest
from django.core.management import CommandError, call_command

from visits.simulator import PROFILES


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_simulate_writes_the_day_and_its_truth(tmp_path: Path, profile: str) -> None:
    out = StringIO()
    call_command("simulate", "--profile", profile, "--visits", "20", "--seed", "4", "--out", str(tmp_path), stdout=out)
    truth = json.loads((tmp_path / "truth.json").read_text())
    assert len(truth["carts"]) == 20
    with (tmp_path / "shoppers.csv").open() as file:
        shoppers = list(csv.DictReader(file))
    assert len(shoppers) == 20
    assert all(row["entry_token"].startswith("tok_") for row in shoppers)  # made up: no registered shopper's
    layout = json.loads((tmp_path / "layout.json").read_text())
    skus = {row["sku"] for row in csv.DictReader((tmp_path / "catalog.csv").open())}
    assert {b["sku"] for f in layout["fixtures"] for b in f["bins"]} <= skus
    events = []
    for path in sorted(tmp_path.glob("events-*.ndjson")):
        for line in path.read_bytes().splitlines():
            try:
                events.append(orjson.loads(line))
            except orjson.JSONDecodeError:
                assert profile != "clean"
    sessions = {e["session"] for e in events if e.get("type") == "session.started"}
    assert sessions == set(truth["carts"]) | set(truth["groups"]), "every visit is a payer's or a group member's"
    assert set(truth["groups"].values()) <= set(truth["carts"])
    assert not set(truth["groups"]) & set(truth["carts"])
    assert truth["stack"] == ("perfect" if profile == "clean" else "calibrated")
    assert bool(truth["price_changes"]) == (profile == "crowded")


def test_simulate_draws_the_stack_asked_for(tmp_path: Path) -> None:
    call_command("simulate", "--stack", "compressed", "--visits", "5", "--out", str(tmp_path), stdout=StringIO())
    assert json.loads((tmp_path / "truth.json").read_text())["stack"] == "compressed"


def test_simulate_refuses_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(CommandError):
        call_command("simulate", "--visits", "0", "--out", str(tmp_path), stdout=StringIO())
    with pytest.raises(CommandError):
        call_command("simulate", "--day", "someday", "--out", str(tmp_path), stdout=StringIO())
    with pytest.raises(CommandError):
        call_command("simulate", "--stack", "psychic", "--out", str(tmp_path), stdout=StringIO())
