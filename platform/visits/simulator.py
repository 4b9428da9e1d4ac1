"""A seeded store simulator: shoppers take and put back items; cameras and scales report it, imperfectly.

It writes what a licensee's perception stack would send — the event stream, in one or more
uploads — and what really happened (the ground-truth carts), so that the cart engine can be
measured. Noise profiles:

* **clean** — every action seen once, attributed surely, weighed exactly.
* **realistic** — shoppers sometimes close together (the camera hesitates between them, and is
  now and then wrong, with the right shopper among its alternatives), a few missed and phantom
  camera events, bins without scales, scale noise, duplicates, out-of-order and late delivery,
  and a few malformed lines.
* **crowded** — more of all of it, items put back into another product's bin, a scale that goes
  offline for a while, and a price change in the middle of the day.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import orjson


@dataclass(frozen=True)
class NoiseProfile:
    name: str
    day_hours: float
    close_together: float
    wrong_when_close: float
    confident_wrong: float
    missed_camera: float
    phantom_per_visit: float
    weight_noise: float
    duplicates: float
    out_of_order: float
    late: float
    malformed: float
    wrong_bin_putback: float
    returns: float
    multi_qty: float
    sensor_outage: bool
    price_change: bool


PROFILES: dict[str, NoiseProfile] = {
    "clean": NoiseProfile("clean", 12, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.08, 0.1, False, False),
    "realistic": NoiseProfile(
        "realistic", 10, 0.02, 0.3, 0.0005, 0.01, 0.12, 0.02, 0.01, 0.05, 0.03, 0.002, 0.0, 0.1, 0.12, False, False
    ),
    "crowded": NoiseProfile(
        "crowded", 4, 0.15, 0.3, 0.001, 0.04, 0.15, 0.03, 0.03, 0.1, 0.05, 0.005, 0.3, 0.15, 0.15, True, True
    ),
}


@dataclass(frozen=True)
class CatalogItem:
    sku: str
    unit_weight_g: float
    tolerance_g: float


@dataclass
class Simulation:
    profile: str
    uploads: list[bytes]
    truth: dict[str, dict[str, int]]
    shoppers: dict[str, str]
    price_changes: list[tuple[str, datetime, float]] = field(default_factory=list)
    sensor_outages: list[tuple[str, datetime, datetime]] = field(default_factory=list)

    @property
    def events(self) -> list[dict[str, Any]]:
        """The well-formed events of every upload, as delivered (duplicates included)."""
        found = []
        for upload in self.uploads:
            for line in upload.splitlines():
                try:
                    value = orjson.loads(line)
                except orjson.JSONDecodeError:
                    continue
                if isinstance(value, dict):
                    found.append(value)
        return found


def _stamp(at: datetime) -> str:
    return at.isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class _Shopper:
    session: str
    token: str
    entered: datetime
    exited: datetime
    zone_at: list[tuple[datetime, str]] = field(default_factory=list)


class _World:
    def __init__(self, layout: Mapping[str, Any], catalog: Mapping[str, CatalogItem], profile: NoiseProfile, seed: int):
        self.rng = random.Random(seed)
        self.profile = profile
        self.catalog = catalog
        self.bins = [
            (item, fixture) for fixture in layout["fixtures"] for item in fixture["bins"] if item["sku"] in catalog
        ]
        self.cameras: dict[str, list[str]] = defaultdict(list)
        for device in layout["devices"]:
            if device["kind"] == "camera":
                for zone in device.get("covers", []):
                    self.cameras[zone].append(device["code"])
        gates = [d["code"] for d in layout["devices"] if d["kind"] == "gate"]
        self.gate_in, self.gate_out = gates[0], gates[-1]
        self.events: list[tuple[datetime, int, dict[str, Any]]] = []
        self.counter = 0
        self.truth: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        self.outages: list[tuple[str, datetime, datetime]] = []

    def emit(self, at: datetime, body: dict[str, Any]) -> None:
        self.counter += 1
        self.events.append((at, self.counter, {"id": f"sim-{self.counter}", "ts": _stamp(at), **body}))

    def sensor_down(self, sensor: str, at: datetime) -> bool:
        return any(s == sensor and start <= at <= end for s, start, end in self.outages)

    def weigh(self, at: datetime, item: dict[str, Any], sku: str, grams_sign: int, qty: int) -> None:
        sensor = item.get("sensor")
        if sensor is None or self.sensor_down(sensor, at):
            return
        unit = self.catalog[sku].unit_weight_g
        noise = (
            self.rng.gauss(0, self.profile.weight_noise * unit)
            if self.profile.weight_noise
            else self.rng.uniform(-0.5, 0.5)
        )
        delta = grams_sign * qty * unit + noise
        self.emit(
            at + timedelta(milliseconds=self.rng.randint(300, 1500)),
            {"type": "shelf.weight_changed", "bin": item["code"], "device": sensor, "delta_g": round(delta, 1)},
        )


def _attribution(world: _World, shopper: _Shopper, others: list[_Shopper]) -> tuple[str, float, list[dict[str, Any]]]:
    """What the camera says about who did it: (session, confidence, alternatives)."""
    rng, profile = world.rng, world.profile
    if others and rng.random() < profile.confident_wrong:
        return rng.choice(others).session, round(rng.uniform(0.93, 0.99), 3), []
    if others and rng.random() < profile.close_together:
        other = rng.choice(others)
        if rng.random() < profile.wrong_when_close:
            wrong = round(rng.uniform(0.5, 0.62), 3)
            return (
                other.session,
                wrong,
                [{"session": shopper.session, "confidence": round(rng.uniform(0.33, wrong - 0.05), 3)}],
            )
        if rng.random() < 0.5:
            right = round(rng.uniform(0.55, 0.75), 3)
            return (
                shopper.session,
                right,
                [{"session": other.session, "confidence": round(rng.uniform(0.25, right - 0.1), 3)}],
            )
        return (
            shopper.session,
            round(rng.uniform(0.93, 0.99), 3),
            [{"session": other.session, "confidence": round(rng.uniform(0.01, 0.06), 3)}],
        )
    return shopper.session, round(rng.uniform(0.935, 0.995), 3), []


def _nearby(shoppers: list[_Shopper], shopper: _Shopper, at: datetime, zone: str) -> list[_Shopper]:
    """Shoppers who could stand close: those in the same zone around then.

    Only they can be the camera's alternatives or be mistaken for the shopper (the contract: the
    alternatives are "shoppers standing close together"); a shopper at the other end of the store
    is not someone a camera hesitates over.
    """
    present = [s for s in shoppers if s is not shopper and s.entered <= at <= s.exited]
    return [s for s in present if any(z == zone and abs((t - at).total_seconds()) <= 60 for t, z in s.zone_at)]


def simulate(
    *,
    layout: Mapping[str, Any],
    catalog: Mapping[str, CatalogItem],
    profile: str,
    visits: int,
    start: datetime,
    seed: int = 1,
    shopper_tokens: Sequence[str] = (),
) -> Simulation:
    """A day of `visits` shopper visits in a store, as the events a store would send, and the truth.

    `shopper_tokens`, when given, are the entry tokens of registered shoppers, handed out in turn.
    """
    noise = PROFILES[profile]
    world = _World(layout, catalog, noise, seed)
    rng = world.rng
    day = timedelta(hours=noise.day_hours)
    if noise.sensor_outage:
        sensored = [item["sensor"] for item, _ in world.bins if item.get("sensor")]
        sensor = rng.choice(sensored)
        begins = start + day * 0.3
        world.outages.append((sensor, begins, begins + timedelta(minutes=45)))
        world.emit(begins, {"type": "device.status", "device": sensor, "status": "offline"})
        world.emit(begins + timedelta(minutes=45), {"type": "device.status", "device": sensor, "status": "online"})
    shoppers = []
    for number in range(visits):
        entered = start + day * rng.random()
        token = f"tok_{rng.randrange(16**12):012x}"
        if shopper_tokens:
            token = shopper_tokens[number % len(shopper_tokens)]
        shoppers.append(_Shopper(f"{profile[:1]}{seed}-{number:05d}", token, entered, entered))
    shoppers.sort(key=lambda s: s.entered)
    plans = []
    for shopper in shoppers:
        at = shopper.entered
        steps = []
        for _ in range(rng.choice((0, 1, 2, 2, 3, 3, 3, 4, 4, 5, 6, 8))):
            at += timedelta(seconds=rng.uniform(10, 80))
            item, fixture = rng.choice(world.bins)
            steps.append((at, item, fixture))
            shopper.zone_at.append((at, fixture["zone"]))
        shopper.exited = at + timedelta(seconds=rng.uniform(15, 60))
        plans.append(steps)
    for shopper, steps in zip(shoppers, plans, strict=True):
        _shop(world, shoppers, shopper, steps)
    price_changes = []
    if noise.price_change:
        changed = sorted(world.catalog)[: max(1, len(world.catalog) // 10)]
        price_changes = [(sku, start + day / 2, 1.1) for sku in changed]
    return Simulation(
        profile=profile,
        uploads=_deliver(world),
        truth={s.session: {k: v for k, v in world.truth[s.session].items() if v > 0} for s in shoppers},
        shoppers={s.session: s.token for s in shoppers},
        price_changes=price_changes,
        sensor_outages=list(world.outages),
    )


def _shop(
    world: _World,
    shoppers: list[_Shopper],
    shopper: _Shopper,
    steps: list[tuple[datetime, dict[str, Any], dict[str, Any]]],
) -> None:
    rng, noise = world.rng, world.profile
    world.emit(
        shopper.entered,
        {"type": "session.started", "session": shopper.session, "shopper": shopper.token, "gate": world.gate_in},
    )
    taken: list[tuple[dict[str, Any], dict[str, Any], str]] = []
    for at, planned_item, planned_fixture in steps:
        returning = taken and rng.random() < noise.returns
        if returning:
            item, fixture, sku = taken.pop(rng.randrange(len(taken)))
            if rng.random() < noise.wrong_bin_putback:
                item, fixture = rng.choice(world.bins)
            _act(world, shoppers, shopper, at, item, fixture, sku, -1, 1)
            world.truth[shopper.session][sku] -= 1
            continue
        item, fixture = planned_item, planned_fixture
        qty = 2 if rng.random() < noise.multi_qty else 1
        _act(world, shoppers, shopper, at, item, fixture, item["sku"], 1, qty)
        world.truth[shopper.session][item["sku"]] += qty
        taken += [(item, fixture, item["sku"])] * qty
    if steps and rng.random() < noise.phantom_per_visit:
        item, fixture = rng.choice(world.bins)
        at = rng.choice(steps)[0] + timedelta(seconds=rng.uniform(1, 8))
        world.emit(
            at,
            {
                "type": "item.picked",
                "session": shopper.session,
                "bin": item["code"],
                "device": rng.choice(world.cameras[fixture["zone"]]),
                "qty": 1,
                "confidence": round(rng.uniform(0.45, 0.85), 3),
            },
        )
    world.emit(shopper.exited, {"type": "session.ended", "session": shopper.session, "gate": world.gate_out})


def _act(
    world: _World,
    shoppers: list[_Shopper],
    shopper: _Shopper,
    at: datetime,
    item: dict[str, Any],
    fixture: dict[str, Any],
    sku: str,
    sign: int,
    qty: int,
) -> None:
    rng, noise = world.rng, world.profile
    if rng.random() >= noise.missed_camera:
        session, confidence, alternatives = _attribution(
            world, shopper, _nearby(shoppers, shopper, at, fixture["zone"])
        )
        body: dict[str, Any] = {
            "type": "item.picked" if sign > 0 else "item.returned",
            "session": session,
            "bin": item["code"],
            "device": rng.choice(world.cameras[fixture["zone"]]),
            "qty": qty,
            "confidence": confidence,
        }
        if alternatives:
            body["alternatives"] = alternatives
        if sku != item["sku"] or rng.random() < 0.2:
            body["sku"] = sku
        world.emit(at, body)
    world.weigh(at, item, sku, -sign, qty)


def _deliver(world: _World) -> list[bytes]:
    """The events as a store would send them: in time order, with duplicates, shuffles, late and broken lines."""
    rng, noise = world.rng, world.profile
    ordered = [event for _, _, event in sorted(world.events, key=lambda e: (e[0], e[1]))]
    main: list[bytes] = []
    late: list[bytes] = []
    for event in ordered:
        line = orjson.dumps(event)
        arrives_late = event["type"] != "session.started" and rng.random() < noise.late
        (late if arrives_late else main).append(line)
        if rng.random() < noise.duplicates:
            main.append(line)
        if rng.random() < noise.malformed:
            main.append(line[: len(line) // 2])
    for index in range(len(main) - 1):
        if rng.random() < noise.out_of_order:
            swap = min(len(main) - 1, index + rng.randint(1, 20))
            main[index], main[swap] = main[swap], main[index]
    uploads = [b"\n".join(main) + b"\n"]
    if late:
        uploads.append(b"\n".join(late) + b"\n")
    return uploads
