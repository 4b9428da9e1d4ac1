"""A seeded store simulator: shoppers walk a store's floor, take and put back items, alone or in groups;
a perception stack (`visits.perception`) reports it, imperfectly.

It writes what a licensee's store would send — the event stream, in one or more uploads — and what
really happened (the ground-truth carts), so that the cart engine can be measured.

The world: every bin stands at a place on the floor (its fixture's position, bins side by side
along the fixture's length); a shopper enters at the entry gate, walks to a few fixtures (popular
ones more often), stands at a bin for a few seconds and acts there, and leaves by the exit gate.
Who stands within the stack's reach of a bin at the moment of an action is who the cameras can
confuse. Companions of a group (spec v1.1) enter on the payer's token and follow the payer round
the store; everything they take is the payer's.

Traffic profiles (`PROFILES`) set how busy the day is and how the store delivers its events:

* **clean** — a quiet day, delivered once and in order (with the `perfect` stack: exact carts).
* **realistic** — a normal day: some groups, returns, duplicates, out-of-order and late delivery,
  a few malformed lines.
* **crowded** — a rush: three times the shoppers per hour, more groups and put-backs into other
  products' bins, more broken delivery, a price change in the middle of the day.

Given the shelves' units at opening (`opening_stock`), the day also has staff restocking every bin that
falls to a quarter of its capacity (`shelf.restocked` from the layout's staff device, and the scale's rise),
and the simulation knows the true units of each bin's product on it at closing (`Simulation.shelves`).

Age-restricted products (a catalog item's `min_age`) bring staff: most shoppers reaching for one are asked for
their ID first (`id.checked` from the layout's staff device); the few too young are stopped and take nothing.
Companions hand items to one another: a companion's put-back can be of an item another member of the group took.
Both draw from a random stream of their own, so that a day without restricted products or groups is the same day
it was before they existed.
"""

from __future__ import annotations

import bisect
import math
import random
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import orjson

from visits.perception import PerceptionStack, draw_stack


@dataclass(frozen=True)
class Traffic:
    name: str
    day_hours: float
    group_share: float
    returns: float
    multi_qty: float
    wrong_bin_putback: float
    duplicates: float
    out_of_order: float
    late: float
    malformed: float
    price_change: bool
    default_stack: str


PROFILES: dict[str, Traffic] = {
    "clean": Traffic("clean", 12, 0.0, 0.08, 0.1, 0.0, 0.0, 0.0, 0.0, 0.0, False, "perfect"),
    "realistic": Traffic("realistic", 10, 0.08, 0.1, 0.12, 0.05, 0.01, 0.05, 0.03, 0.002, False, "calibrated"),
    "crowded": Traffic("crowded", 3.5, 0.12, 0.15, 0.15, 0.2, 0.03, 0.1, 0.05, 0.005, True, "calibrated"),
}
# Of the shoppers reaching for an age-restricted product: how many staff check first, and how many checks fail.
ID_CHECKED = 0.8
TOO_YOUNG = 0.04
# Of a companion's put-backs: how many are of an item another member of its group took (handed over).
HANDED_OVER = 0.4
# With `groups=True` (a day of families): at least this share of payers bring companions, and a companion stays on
# after its payer has left this often, one to five minutes.
FAMILY_SHARE = 0.35
LINGERS = 0.3
WALKING_SPEED = (0.7, 1.3)
DWELL_SECONDS = (4.0, 25.0)
STOPS = (0, 1, 2, 2, 3, 3, 3, 4, 4, 5, 6, 8)


@dataclass(frozen=True)
class CatalogItem:
    sku: str
    unit_weight_g: float
    tolerance_g: float
    min_age: int = 0  # an age-restricted product (catalog `min_age`): 18, 21, …


@dataclass
class Simulation:
    profile: str
    stack: PerceptionStack
    uploads: list[bytes]
    truth: dict[str, dict[str, int]]
    shoppers: dict[str, str]
    groups: dict[str, str] = field(default_factory=dict)
    recoverable: set[str] = field(default_factory=set)
    actors: dict[str, str | None] = field(default_factory=dict)
    price_changes: list[tuple[str, datetime, float]] = field(default_factory=list)
    sensor_outages: list[tuple[str, datetime, datetime]] = field(default_factory=list)
    shelves: dict[str, int] = field(default_factory=dict)
    # Visits whose ID staff checked, with the ages proved (a failed check proves none).
    id_checks: dict[str, int] = field(default_factory=dict)
    hand_overs: int = 0  # companions' put-backs of an item another member of the group took
    # Units of each bin's own product that shoppers took off it, net of what they put back on it (restocks aside),
    # and of those, the ones put back on another product's bin: they left the bin and are on nobody's cart.
    left: dict[str, int] = field(default_factory=dict)
    misplaced: dict[str, int] = field(default_factory=dict)
    # Per bin: by how many units the cameras' picks less put-backs of its own product exceed what truly left it
    # (takes and put-backs they missed or miscounted, takes they imagined) — what a bin read from the cameras is off.
    misseen: dict[str, int] = field(default_factory=dict)

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


@dataclass(frozen=True)
class _Spot:
    """A bin where a shopper can stand: its place on the floor and what it holds."""

    bin: str
    sku: str
    sensor: str | None
    fixture: str
    zone: str
    x: float
    y: float


def bin_positions(layout: Mapping[str, Any]) -> dict[str, tuple[float, float]]:
    """Where each bin of a layout document stands: side by side along its fixture's longer side.

    The engine reads shoppers' whereabouts from the same places (`visits.engine.Bin.position`).
    """
    places: dict[str, tuple[float, float]] = {}
    for fixture in layout["fixtures"]:
        x, y = (float(v) for v in fixture.get("position") or (0.0, 0.0))
        width, depth = (float(v) for v in fixture.get("size") or (1.0, 1.0))
        count = max(1, len(fixture["bins"]))
        for index, item in enumerate(fixture["bins"]):
            share = (index + 0.5) / count
            places[item["code"]] = (
                (round(x + share * width, 2), round(y + depth / 2, 2))
                if width >= depth
                else (round(x + width / 2, 2), round(y + share * depth, 2))
            )
    return places


@dataclass
class _Shopper:
    session: str
    token: str
    entered: datetime
    payer: _Shopper | None = None
    exited: datetime = field(init=False)
    # Where the shopper stands, when: (arrives, leaves, x, y), in time order.
    stays: list[tuple[datetime, datetime, float, float]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.exited = self.entered

    @property
    def charged_to(self) -> str:
        return self.payer.session if self.payer else self.session

    def position(self, at: datetime) -> tuple[float, float] | None:
        if not (self.entered <= at <= self.exited) or not self.stays:
            return None
        index = bisect.bisect_right([stay[0] for stay in self.stays], at) - 1
        if index < 0:
            return self.stays[0][2], self.stays[0][3]
        _, leaves, x, y = self.stays[index]
        if at <= leaves or index + 1 >= len(self.stays):
            return x, y
        next_arrives, _, nx, ny = self.stays[index + 1]
        share = (at - leaves) / (next_arrives - leaves)
        return x + share * (nx - x), y + share * (ny - y)


class _World:
    def __init__(
        self,
        layout: Mapping[str, Any],
        catalog: Mapping[str, CatalogItem],
        traffic: Traffic,
        stack: PerceptionStack,
        seed: int,
        id_prefix: str = "sim",
    ) -> None:
        self.id_prefix = id_prefix
        self.rng = random.Random(seed)
        self.aside = random.Random(f"{seed}:v1.1")  # ID checks and hand-overs: see the module's docstring
        self.traffic, self.stack, self.catalog = traffic, stack, catalog
        places = bin_positions(layout)
        self.spots = [
            _Spot(
                item["code"], item["sku"], item.get("sensor"), fixture["code"], fixture["zone"], *places[item["code"]]
            )
            for fixture in layout["fixtures"]
            for item in fixture["bins"]
            if item["sku"] in catalog
        ]
        self.by_bin = {spot.bin: spot for spot in self.spots}
        self.by_fixture: dict[str, list[_Spot]] = defaultdict(list)
        for spot in self.spots:
            self.by_fixture[spot.fixture].append(spot)
        fixtures = sorted(self.by_fixture)
        # Some fixtures draw far more shoppers than others: that is where shoppers stand close together.
        self.popularity = [1.0 / (rank + 1) ** 0.8 for rank in range(len(fixtures))]
        self.rng.shuffle(self.popularity)
        self.fixtures = fixtures
        self.cameras: dict[str, list[str]] = defaultdict(list)
        for device in layout["devices"]:
            if device["kind"] == "camera":
                for zone in device.get("covers", []):
                    self.cameras[zone].append(device["code"])
        gates = [d for d in layout["devices"] if d["kind"] == "gate"]
        self.gate_in, self.gate_out = gates[0], gates[-1]
        self.events: list[tuple[datetime, int, dict[str, Any]]] = []
        self.weighings: dict[str, list[tuple[datetime, str, float]]] = defaultdict(list)
        self.counter = 0
        self.truth: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        self.unobserved: set[str] = set()
        self.actors: dict[str, str | None] = {}
        self.outages: list[tuple[str, datetime, datetime]] = []
        self.shoppers: list[_Shopper] = []
        # Units of each bin's own product leaving (−) or coming back to (+) it, when: for true shelf counts.
        self.moves: list[tuple[datetime, str, int]] = []
        self.misplaced: dict[str, int] = defaultdict(int)
        self.misseen: dict[str, int] = defaultdict(int)
        self.capacity = {
            item["code"]: int(item["capacity"]) for fixture in layout["fixtures"] for item in fixture["bins"]
        }
        staff = [d["code"] for d in layout["devices"] if d["kind"] == "staff_device"]
        self.staff_device = staff[0] if staff else None
        self.id_checks: dict[str, int] = {}
        # Per payer: the items members of its group hold, (when taken, bin, product, who took it), to hand over.
        self.baskets: dict[str, list[tuple[datetime, _Spot, str, str]]] = defaultdict(list)
        self.hand_overs = 0
        self.families = False  # a day of families (`simulate(groups=True)`)

    def gate_place(self, gate: Mapping[str, Any]) -> tuple[float, float]:
        position = gate.get("position") or (0.0, 0.0)
        return float(position[0]), float(position[1])

    def event_id(self, number: int) -> str:
        return f"{self.id_prefix}-{number}"

    def emit(self, at: datetime, body: dict[str, Any]) -> None:
        self.counter += 1
        self.events.append((at, self.counter, {"id": self.event_id(self.counter), "ts": _stamp(at), **body}))

    def sensor_down(self, sensor: str, at: datetime) -> bool:
        return any(s == sensor and start <= at <= end for s, start, end in self.outages)

    def within(self, metres: float, actor: _Shopper, at: datetime, spot: _Spot) -> list[_Shopper]:
        """The other shoppers standing within `metres` of `spot` at that moment, nearest first."""
        near = []
        for other in self.shoppers:
            if other is actor or not (other.entered <= at <= other.exited):
                continue
            place = other.position(at)
            if place is not None and (distance := math.dist(place, (spot.x, spot.y))) <= metres:
                near.append((distance, other.session, other))
        return [other for _, _, other in sorted(near, key=lambda n: n[:2])]

    def weigh(self, at: datetime, spot: _Spot, sku: str, grams_sign: int, qty: int) -> bool:
        """The scale under `spot` notes a change (reported later, with its lag); False if it has none or is down."""
        if spot.sensor is None or self.sensor_down(spot.sensor, at):
            return False
        unit = self.catalog[sku].unit_weight_g
        noise = self.rng.gauss(0, self.stack.scale_noise * unit) if self.stack.scale_noise else 0.0
        settled = at + timedelta(seconds=self.rng.uniform(*self.stack.scale_lag_s))
        self.weighings[spot.bin].append((settled, spot.sensor, grams_sign * qty * unit + noise))
        return True


def simulate(
    *,
    layout: Mapping[str, Any],
    catalog: Mapping[str, CatalogItem],
    profile: str,
    visits: int,
    start: datetime,
    seed: int = 1,
    shopper_tokens: Sequence[str] = (),
    stack: str | PerceptionStack | None = None,
    opening_stock: Mapping[str, int] | None = None,
    id_prefix: str = "sim",
    groups: bool = False,
) -> Simulation:
    """A day of `visits` shopper visits in a store, as the events a store would send, and the truth.

    `stack` is a perception stack or the family to draw one from with `seed` (default: the profile's).
    `shopper_tokens`, when given, are the entry tokens of registered shoppers, handed out in turn to payers.
    `opening_stock` (bin → units at `start`) adds staff restocks and the true units at closing.
    Event ids are `<id_prefix>-<n>`: give each simulated day of a store its own prefix, or its events are duplicates.
    `groups` makes it a day of families: more groups (`FAMILY_SHARE`), and companions who stay on after their payer
    has left (`LINGERS`); members hand items over on any day.
    """
    traffic = PROFILES[profile]
    chosen = (
        stack if isinstance(stack, PerceptionStack) else draw_stack(family=stack or traffic.default_stack, seed=seed)
    )
    world = _World(layout, catalog, traffic, chosen, seed, id_prefix)
    world.families = groups
    group_share = max(traffic.group_share, FAMILY_SHARE) if groups else traffic.group_share
    rng = world.rng
    day = timedelta(hours=traffic.day_hours)
    _plan_outages(world, start, day)
    number = 0
    for index in range(visits):
        entered = start + day * rng.random()
        token = shopper_tokens[index % len(shopper_tokens)] if shopper_tokens else f"tok_{rng.randrange(16**12):012x}"
        payer = _Shopper(f"{profile[:1]}{seed}-{number:05d}", token, entered)
        number += 1
        world.shoppers.append(payer)
        if rng.random() < group_share:
            for _ in range(rng.choice((1, 1, 2, 3))):
                companion = _Shopper(
                    f"{profile[:1]}{seed}-{number:05d}", token, entered + timedelta(seconds=rng.uniform(0.5, 8)), payer
                )
                number += 1
                world.shoppers.append(companion)
    world.shoppers.sort(key=lambda s: (s.entered, s.session))
    plans = {shopper.session: _walk(world, shopper) for shopper in world.shoppers if shopper.payer is None}
    for shopper in world.shoppers:
        if shopper.payer is not None:
            plans[shopper.session] = _follow(world, shopper, plans[shopper.payer.session])
    for shopper in world.shoppers:
        _shop(world, shopper, plans[shopper.session])
    shelves = _restock(world, opening_stock) if opening_stock is not None else {}
    _report_weighings(world)
    price_changes = []
    if traffic.price_change:
        changed = sorted(world.catalog)[: max(1, len(world.catalog) // 10)]
        price_changes = [(sku, start + day / 2, 1.1) for sku in changed]
    payers = [s for s in world.shoppers if s.payer is None]
    return Simulation(
        profile=profile,
        stack=chosen,
        uploads=_deliver(world),
        truth={s.session: {k: v for k, v in world.truth[s.session].items() if v > 0} for s in payers},
        shoppers={s.session: s.token for s in payers},
        groups={s.session: s.payer.session for s in world.shoppers if s.payer is not None},
        recoverable={s.session for s in payers} - world.unobserved,
        actors=world.actors,
        price_changes=price_changes,
        sensor_outages=list(world.outages),
        shelves=shelves,
        hand_overs=world.hand_overs,
        id_checks={session: proved for session, proved in world.id_checks.items() if proved >= 0},
        left=_left(world),
        misplaced=dict(world.misplaced),
        misseen={code: units for code, units in world.misseen.items() if units},
    )


def _left(world: _World) -> dict[str, int]:
    left: dict[str, int] = defaultdict(int)
    for _, bin_code, units in world.moves:
        left[bin_code] -= units
    return dict(left)


def _plan_outages(world: _World, start: datetime, day: timedelta) -> None:
    """Some scales go offline for a while; the stack announces it (device.status) or just goes quiet."""
    sensored = sorted({spot.sensor for spot in world.spots if spot.sensor})
    for sensor in world.rng.sample(sensored, min(len(sensored), world.stack.outages)):
        begins = start + day * world.rng.uniform(0.1, 0.8)
        ends = begins + timedelta(minutes=world.rng.uniform(20, 60))
        world.outages.append((sensor, begins, ends))
        if world.rng.random() < world.stack.reports_outages:
            world.emit(begins, {"type": "device.status", "device": sensor, "status": "offline"})
            world.emit(ends, {"type": "device.status", "device": sensor, "status": "online"})


_Step = tuple[datetime, _Spot]


def _walk(world: _World, shopper: _Shopper) -> list[_Step]:
    """A payer's (or lone shopper's) round: fixtures chosen by popularity, a few seconds at a bin of each."""
    rng = world.rng
    speed = rng.uniform(*WALKING_SPEED)
    place = world.gate_place(world.gate_in)
    at = shopper.entered
    shopper.stays = [(at, at, *place)]
    steps: list[_Step] = []
    for _ in range(rng.choice(STOPS)):
        fixture = rng.choices(world.fixtures, weights=world.popularity)[0]
        spot = rng.choice(world.by_fixture[fixture])
        at += timedelta(seconds=math.dist(place, (spot.x, spot.y)) / speed + rng.uniform(2, 20))
        dwell = timedelta(seconds=rng.uniform(*DWELL_SECONDS))
        shopper.stays.append((at, at + dwell, spot.x, spot.y))
        steps.append((at + dwell * rng.uniform(0.2, 0.8), spot))
        place = (spot.x, spot.y)
        at += dwell
    out = world.gate_place(world.gate_out)
    shopper.exited = at + timedelta(seconds=math.dist(place, out) / speed + rng.uniform(2, 10))
    shopper.stays.append((shopper.exited, shopper.exited, *out))
    return steps


def _follow(world: _World, companion: _Shopper, leader_steps: list[_Step]) -> list[_Step]:
    """A companion's round: beside the payer at each stop (a neighbouring bin), acting at some of them."""
    rng = world.rng
    assert companion.payer is not None
    lag = companion.entered - companion.payer.entered
    companion.stays = [
        (arrives + lag, leaves + lag, x + rng.uniform(-0.8, 0.8), y + rng.uniform(-0.4, 0.4))
        for arrives, leaves, x, y in companion.payer.stays
    ]
    companion.exited = companion.payer.exited + lag
    if world.families and world.aside.random() < LINGERS:
        *inside, (_out, _also_out, gate_x, gate_y) = companion.stays
        _arrives, leaves, x, y = inside[-1]
        companion.exited += timedelta(minutes=world.aside.uniform(1, 5))
        out = companion.exited
        companion.stays = [*inside, (leaves, out, x, y), (out, out, gate_x, gate_y)]
    steps: list[_Step] = []
    for at, spot in leader_steps:
        if rng.random() < 0.5:
            neighbours = world.by_fixture[spot.fixture]
            index = neighbours.index(spot) + rng.choice((-1, 1))
            steps.append((at + lag + timedelta(seconds=rng.uniform(-2, 2)), neighbours[index % len(neighbours)]))
    return steps


def _shop(world: _World, shopper: _Shopper, steps: list[_Step]) -> None:
    rng, traffic = world.rng, world.traffic
    started: dict[str, Any] = {
        "type": "session.started",
        "session": shopper.session,
        "shopper": shopper.token,
        "gate": world.gate_in["code"],
    }
    if shopper.payer is not None:
        started["group"] = shopper.payer.session
    world.emit(shopper.entered, started)
    taken: list[tuple[_Spot, str]] = []
    for at, planned in steps:
        if taken and rng.random() < traffic.returns:
            origin, sku = _put_back_which(world, shopper, at, taken, taken.pop(rng.randrange(len(taken))))
            spot = planned if rng.random() < traffic.wrong_bin_putback else origin
            if sku != spot.sku:
                world.misplaced[origin.bin] += 1
            _act(world, shopper, at, spot, sku, -1, 1)
            continue
        qty = 2 if rng.random() < traffic.multi_qty else 1
        if not _may_take(world, shopper, at, planned.sku):
            continue
        _act(world, shopper, at, planned, planned.sku, 1, qty)
        taken += [(planned, planned.sku)] * qty
        world.baskets[shopper.charged_to] += [(at, planned, planned.sku, shopper.session)] * qty
    if steps and rng.random() < world.stack.phantom_per_visit:
        at, spot = rng.choice(steps)
        _phantom(world, shopper, at + timedelta(seconds=rng.uniform(1, 6)), spot)
    world.emit(shopper.exited, {"type": "session.ended", "session": shopper.session, "gate": world.gate_out["code"]})


def _put_back_which(
    world: _World, shopper: _Shopper, at: datetime, taken: list[tuple[_Spot, str]], own: tuple[_Spot, str]
) -> tuple[_Spot, str]:
    """What a shopper puts back: the item of its own it chose, or — a companion, now and then — one that another
    member of its group took earlier and handed over (the companion then keeps its own)."""
    basket = world.baskets[shopper.charged_to]
    others = [n for n, (when, _, _, who) in enumerate(basket) if who != shopper.session and when < at]
    if shopper.payer is not None and others and world.aside.random() < HANDED_OVER:
        _, spot, sku, _ = basket.pop(world.aside.choice(others))
        world.hand_overs += 1
        taken.append(own)
        return spot, sku
    mine = next(n for n, (_, spot, sku, who) in enumerate(basket) if who == shopper.session and (spot, sku) == own)
    basket.pop(mine)
    return own


def _may_take(world: _World, shopper: _Shopper, at: datetime, sku: str) -> bool:
    """Whether the shopper takes the product: staff ask most shoppers reaching for an age-restricted one for their ID
    first (once a visit, for the age it needs); one too young is stopped and takes nothing."""
    age = world.catalog[sku].min_age
    if not age or world.staff_device is None:
        return True
    proved = world.id_checks.get(shopper.session)
    if proved is None or (proved and proved < age):
        if proved is None and world.aside.random() >= ID_CHECKED:
            world.id_checks[shopper.session] = -1  # nobody asked: takes it unchecked (and is not asked again)
            return True
        passed = world.aside.random() >= TOO_YOUNG
        proved = age if passed else 0
        world.id_checks[shopper.session] = proved
        checked = max(shopper.entered, at - timedelta(seconds=world.aside.uniform(3, 30)))
        world.emit(
            checked,
            {
                "type": "id.checked",
                "session": shopper.session,
                "device": world.staff_device,
                "result": "passed" if passed else "failed",
                "min_age": age,
            },
        )
    return proved != 0


def _act(world: _World, shopper: _Shopper, at: datetime, spot: _Spot, sku: str, sign: int, qty: int) -> None:
    """A hand takes or puts back `qty` × `sku` at `spot`: the truth, the cameras' report, the scale's change."""
    world.truth[shopper.charged_to][sku] += sign * qty
    if sku == spot.sku:
        world.moves.append((at, spot.bin, -sign * qty))
    seen = _camera(world, shopper, at, spot, sku, sign, qty)
    weighed = world.weigh(at, spot, sku, -sign, qty)
    if not (seen or weighed):
        world.unobserved.add(shopper.charged_to)


def _camera(world: _World, actor: _Shopper, at: datetime, spot: _Spot, sku: str, sign: int, qty: int) -> bool:
    """What the stack's cameras say about an action; False when they miss it."""
    rng, stack = world.rng, world.stack
    own = sku == spot.sku
    if rng.random() < stack.missed:
        world.misseen[spot.bin] -= sign * qty if own else 0
        return False
    near = world.within(stack.reach_m, actor, at, spot)
    in_view = world.within(max(stack.reach_m, stack.listing_reach_m), actor, at, spot)
    alternatives: list[tuple[str, float]] = []
    if near and rng.random() < stack.id_switch:
        winner = rng.choice(near)
        confidence = stack.confidence(rng, stack.confident)
        if rng.random() < stack.switch_lists_actor:
            alternatives.append((actor.session, round(confidence * rng.uniform(0.1, 0.5), 3)))
    elif near and rng.random() < stack.hesitates:
        other = near[0]
        winner, runner_up = (other, actor) if rng.random() < stack.wrong_when_hesitant else (actor, other)
        confidence = stack.confidence(rng, stack.hesitant)
        if stack.lists_bystanders > 0:
            alternatives.append((runner_up.session, round(confidence * rng.uniform(0.4, 0.85), 3)))
    else:
        winner = actor
        confidence = stack.confidence(rng, stack.confident)
    listed = {winner.session, *(session for session, _ in alternatives)}
    for bystander in in_view:
        if bystander.session not in listed and rng.random() < stack.lists_bystanders:
            alternatives.append((bystander.session, round(confidence * rng.uniform(*stack.bystander_confidence), 3)))
    seen_qty = qty
    if rng.random() < stack.miscount:
        seen_qty = max(1, qty + rng.choice((-1, 1)))
        world.misseen[spot.bin] += sign * (seen_qty - qty) if own else 0
    body: dict[str, Any] = {
        "type": "item.picked" if sign > 0 else "item.returned",
        "session": winner.session,
        "bin": spot.bin,
        "device": rng.choice(world.cameras[spot.zone]),
        "qty": seen_qty,
        "confidence": confidence,
    }
    if alternatives:
        body["alternatives"] = [
            {"session": session, "confidence": value} for session, value in sorted(alternatives, key=lambda a: -a[1])
        ]
    if sku != spot.sku or rng.random() < stack.reports_sku:
        body["sku"] = sku
    world.emit(at + timedelta(seconds=rng.uniform(-0.3, 0.3)), body)
    world.actors[world.event_id(world.counter)] = actor.charged_to
    return True


def _phantom(world: _World, shopper: _Shopper, at: datetime, spot: _Spot) -> None:
    """A camera imagines a take that never happened (no scale moves)."""
    rng, stack = world.rng, world.stack
    world.actors[world.event_id(world.counter + 1)] = None
    world.misseen[spot.bin] += 1
    world.emit(
        at,
        {
            "type": "item.picked",
            "session": shopper.session,
            "bin": spot.bin,
            "device": rng.choice(world.cameras[spot.zone]),
            "qty": 1,
            "confidence": stack.confidence(rng, stack.hesitant),
        },
    )


RESTOCK_AT_SHARE = 0.25
RESTOCK_DELAY_S = (120.0, 900.0)


def _restock(world: _World, opening: Mapping[str, int]) -> dict[str, int]:
    """Staff fill each bin back to capacity a few minutes after it falls to a quarter of it; the true units at
    closing. A restock is announced (`shelf.restocked`) and weighed like any change."""
    counts = {spot.bin: int(opening.get(spot.bin, 0)) for spot in world.spots}
    moves = sorted(world.moves)
    by_bin: dict[str, list[tuple[datetime, int]]] = defaultdict(list)
    for at, bin_code, units in moves:
        by_bin[bin_code].append((at, units))
    end = max((at for at, _, _ in moves), default=None)
    for spot in world.spots:
        due: datetime | None = None
        for at, units in [*by_bin.get(spot.bin, []), *([(end, 0)] if end else [])]:
            if due is not None and due <= at:
                _restock_bin(world, spot, due, counts)
                due = None
            counts[spot.bin] += units
            if due is None and counts[spot.bin] <= world.capacity[spot.bin] * RESTOCK_AT_SHARE:
                due = at + timedelta(seconds=world.rng.uniform(*RESTOCK_DELAY_S))
    return counts


def _restock_bin(world: _World, spot: _Spot, at: datetime, counts: dict[str, int]) -> None:
    qty = world.capacity[spot.bin] - counts[spot.bin]
    if qty <= 0 or world.staff_device is None:
        return
    counts[spot.bin] += qty
    world.emit(at, {"type": "shelf.restocked", "bin": spot.bin, "device": world.staff_device, "qty": qty})
    world.weigh(at + timedelta(seconds=world.rng.uniform(5, 60)), spot, spot.sku, 1, qty)


def _report_weighings(world: _World) -> None:
    """The scales' reports: changes closer together than the merge window come as one; drift adds small ones."""
    rng, stack = world.rng, world.stack
    for bin_code, changes in world.weighings.items():
        changes.sort()
        merged: list[list[Any]] = []
        for settled, sensor, grams in changes:
            if merged and (settled - merged[-1][0]).total_seconds() <= stack.merge_window_s:
                merged[-1][0], merged[-1][2] = settled, merged[-1][2] + grams
            else:
                merged.append([settled, sensor, grams])
        for settled, sensor, grams in merged:
            world.emit(
                settled, {"type": "shelf.weight_changed", "bin": bin_code, "device": sensor, "delta_g": round(grams, 1)}
            )
    if stack.drift_per_scale_hour and world.events:
        first, last = min(e[0] for e in world.events), max(e[0] for e in world.events)
        hours = (last - first).total_seconds() / 3600
        sensored = [spot for spot in world.spots if spot.sensor]
        for _ in range(int(hours * stack.drift_per_scale_hour * len(sensored))):
            spot = rng.choice(sensored)
            at = first + (last - first) * rng.random()
            if spot.sensor is not None and not world.sensor_down(spot.sensor, at):
                drift = round(rng.choice((-1, 1)) * rng.uniform(1.0, 6.0), 1)
                world.emit(
                    at, {"type": "shelf.weight_changed", "bin": spot.bin, "device": spot.sensor, "delta_g": drift}
                )


def _deliver(world: _World) -> list[bytes]:
    """The events as a store would send them: in time order, with duplicates, shuffles, late and broken lines."""
    rng, traffic = world.rng, world.traffic
    ordered = [event for _, _, event in sorted(world.events, key=lambda e: (e[0], e[1]))]
    main: list[bytes] = []
    late: list[bytes] = []
    for event in ordered:
        line = orjson.dumps(event)
        arrives_late = event["type"] != "session.started" and rng.random() < traffic.late
        (late if arrives_late else main).append(line)
        if rng.random() < traffic.duplicates:
            main.append(line)
        if rng.random() < traffic.malformed:
            main.append(line[: len(line) // 2])
    for index in range(len(main) - 1):
        if rng.random() < traffic.out_of_order:
            swap = min(len(main) - 1, index + rng.randint(1, 20))
            main[index], main[swap] = main[swap], main[index]
    uploads = [b"\n".join(main) + b"\n"]
    if late:
        uploads.append(b"\n".join(late) + b"\n")
    return uploads


# Shoppers reading their receipts: how many contest an item they were charged for and did not take, and how many
# contest one they did take (a mistake, or trying it on).
NOTICES_OVERCHARGE = 0.7
CONTESTS_RIGHT_LINE = 0.01


def shopper_disputes(
    *, truth: Mapping[str, Mapping[str, int]], charged: Mapping[str, Mapping[str, int]], seed: int
) -> dict[str, dict[str, int]]:
    """What each payer disputes on its receipt (sku → units): most of what it was charged for and did not take,
    and now and then a line it did take. `charged` is each charged payer's receipt (sku → units)."""
    rng = random.Random(f"{seed}:disputes")
    disputed: dict[str, dict[str, int]] = {}
    for payer in sorted(charged):
        lines, took = charged[payer], truth.get(payer, {})
        asked = {
            sku: lines[sku] - took.get(sku, 0)
            for sku in sorted(lines)
            if lines[sku] > took.get(sku, 0) and rng.random() < NOTICES_OVERCHARGE
        }
        if not asked and lines and rng.random() < CONTESTS_RIGHT_LINE:
            asked[rng.choice(sorted(lines))] = 1
        if asked:
            disputed[payer] = asked
    return disputed
