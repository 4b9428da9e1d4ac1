"""A second store world, written apart from `visits.simulator`: a held-out check that the cart engine does not
just fit the world it was built in. Never tune on it; `bench/accuracy.py --world second` reports it apart.

It shares only the contract (docs/event-stream.md, docs/layout.md), the perception stacks' rates
(`visits.perception`) and the containers the benchmark scores (`Simulation`, `CatalogItem`). The rest is its own:

* the store: long double-sided gondolas with endcaps, a fridge wall of multipacks and alcohol (camera-only doors on
  every other bin), a wall rack, entry gates on the west and south walls and the exit on the east wall; shoppers
  stand in the aisle in front of a bin, not where the layout's fixture centre puts it;
* the shoppers: arrivals in waves (a lunchtime and an evening rush), a shopping list walked aisle by aisle in a
  serpentine, queues at a bin someone stands at, browsing pauses, couples who walk together and both take items,
  label readers who pick up, read and put back (and sometimes take the neighbour instead), and now and then an item
  put back on whatever shelf the shopper stands at;
* the cameras: one camera per aisle, so only shoppers in the same aisle confuse it (never one behind the gondola);
  track switches that last a few seconds and take every action of both shoppers meanwhile; confidences drawn from
  skewed distributions within the stack's bands; bystanders listed closer-is-surer; misses more likely in a crowd;
  phantom takes where a shopper browsed; miscounts mostly of multipacks;
* the scales: lag skewed early within the stack's band, noise growing with the load moved, a gram's resolution,
  temperature creep in one direction per scale, and outages of a whole fixture's sensor bus at once;
* delivery: one upload per device kind (gates and staff, cameras, scales), batches re-sent after a lost
  acknowledgement, and a camera uplink that drops for a while and sends its backlog last.
"""

from __future__ import annotations

import math
import random
from collections import Counter, defaultdict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from visits.engine import Product, StoreModel, store_model_from_layout
from visits.perception import PerceptionStack
from visits.simulator import CatalogItem, Simulation

PRODUCTS = 140
SINCE = datetime(2026, 1, 1, tzinfo=UTC)
FLOOR = {"width_m": 24.0, "depth_m": 20.0}
GONDOLAS = 5  # double-sided, north to south, each with an endcap at its south end
GONDOLA_X = [3.0 + 3.2 * k for k in range(GONDOLAS)]
GONDOLA_Y = (4.0, 15.0)
SIDE_BINS = 13
FRIDGE_BINS = 18
RACK_BINS = 10
BACK_WALK_Y, FRONT_WALK_Y = 2.3, 16.6  # the cross-aisles shoppers walk along
RACK_X = 22.6
GATES = {"ENTRY-WEST": (0.3, 17.5), "ENTRY-SOUTH": (12.0, 19.7), "EXIT-EAST": (23.7, 17.5)}
ID_DESK, STAFF_TABLET = "ID-DESK", "STAFF-TAB"


@dataclass(frozen=True)
class Day:
    """How a day of a traffic profile runs: opening hours, its rushes (hour, spread in hours, height over the base
    flow), the shopping list's length, and how shoppers and staff behave."""

    hours: tuple[float, float]
    rushes: tuple[tuple[float, float, float], ...]
    list_stop: float  # chance the list ends after each item: a grab-and-go crowd stops sooner
    couples: float
    reads_label: float
    wrong_shelf: float
    fridge_pull: float  # how much more the fridge wall draws than its popularity says
    id_checked: float
    resends: float
    pace: float  # walking speed against a quiet day's: a crowd walks slower


DAYS = {
    "realistic": Day((8.0, 20.0), ((12.5, 0.7, 3.0), (17.8, 0.8, 2.0)), 0.3, 0.10, 0.12, 0.04, 1.0, 0.85, 0.01, 1.0),
    "crowded": Day((11.0, 15.0), ((12.5, 0.5, 6.0),), 0.45, 0.15, 0.08, 0.10, 3.0, 0.7, 0.03, 0.8),
}
FAMILY_COUPLES = 0.35  # `groups=True`: a day of families
TOO_YOUNG = 0.03


@dataclass(frozen=True)
class Place:
    """A bin as the world sees it: where a shopper stands to reach it, the aisle that is (0…5, or -1 for the fridge
    wall's cross-aisle and the front), and the camera that watches that aisle."""

    bin: str
    sku: str
    sensor: str | None
    fixture: str
    aisle: int
    x: float
    y: float
    camera: str


def second_catalog(seed: int, *, age_restricted: int) -> dict[str, CatalogItem]:
    """Its own products: weights log-normal around 300 g (20 g to 2.5 kg), 3 % + 2 g tolerance; `age_restricted`
    of the fridge wall's products for 18+ (the first for 21+)."""
    rng = random.Random(f"second:{seed}:catalog")
    items = {}
    for number in range(1, PRODUCTS + 1):
        grams = float(round(min(2500.0, max(20.0, rng.lognormvariate(math.log(300), 0.8)))))
        items[f"G-{number:04d}"] = CatalogItem(f"G-{number:04d}", grams, round(0.03 * grams + 2.0, 1))
    fridge = _fridge_products()
    restricted = rng.sample(fridge, min(age_restricted, len(fridge)))
    for rank, sku in enumerate(restricted):
        base = items[sku]
        items[sku] = CatalogItem(sku, base.unit_weight_g, base.tolerance_g, 21 if rank == 0 else 18)
    return items


def second_prices(seed: int) -> dict[str, int]:
    """Prices in cents, $0.49 to $19.99, heavier products dearer on the whole."""
    rng = random.Random(f"second:{seed}:prices")
    weights = second_catalog(seed, age_restricted=0)
    return {
        sku: min(1999, max(49, round(rng.lognormvariate(math.log(150 + item.unit_weight_g), 0.5))))
        for sku, item in weights.items()
    }


def _fridge_products() -> list[str]:
    return [f"G-{n:04d}" for n in range(1, FRIDGE_BINS + 1)]


def second_layout() -> dict[str, Any]:
    """The store's layout document: a fridge wall along the north, five double-sided gondolas with endcaps, a wall
    rack on the east, two entry gates and an exit gate; two products have a second facing, and the endcaps repeat
    ten of the aisles' products."""
    fixtures = [_fridge_wall(), *_gondolas(), _rack()]
    zones = [{"code": "Z-FRIDGE", "name": "Fridge wall", "polygon": [[0, 0], [24, 0], [24, 3.5], [0, 3.5]]}]
    zones += [
        {"code": f"Z-AISLE-{a}", "name": f"Aisle {a}", "polygon": [[x0, 3.5], [x1, 3.5], [x1, 15.2], [x0, 15.2]]}
        for a, (x0, x1) in enumerate(_aisles())
    ]
    zones.append({"code": "Z-FRONT", "name": "Front", "polygon": [[0, 15.2], [24, 15.2], [24, 20], [0, 20]]})
    return {"floor": dict(FLOOR), "zones": zones, "fixtures": fixtures, "devices": _devices(fixtures)}


def _aisles() -> list[tuple[float, float]]:
    """Each aisle's west and east edge: the wall or a gondola's east side, and the next gondola or the rack."""
    west = [0.5] + [x + 1.2 for x in GONDOLA_X]
    return list(zip(west, [*GONDOLA_X, RACK_X], strict=True))


def _bins(prefix: str, skus: list[str], sensored: Iterator[bool]) -> list[dict[str, Any]]:
    bins = []
    for index, sku in enumerate(skus, start=1):
        code = f"{prefix}-{index:02d}"
        item: dict[str, Any] = {"code": code, "sku": sku, "capacity": 30}
        if next(sensored):
            item["sensor"] = f"S-{code}"
        bins.append(item)
    return bins


def _fridge_wall() -> dict[str, Any]:
    every_other = iter([n % 2 == 0 for n in range(FRIDGE_BINS)])
    return {
        "code": "FW",
        "zone": "Z-FRIDGE",
        "kind": "fridge",
        "position": [1.0, 0.3],
        "size": [22.0, 0.8],
        "bins": _bins("FW", _fridge_products(), every_other),
    }


def _gondolas() -> list[dict[str, Any]]:
    """Each gondola: a west side facing the aisle west of it, an east side facing the aisle east, an endcap."""
    fixtures, number = [], FRIDGE_BINS + 1
    length = GONDOLA_Y[1] - GONDOLA_Y[0]
    for k, x in enumerate(GONDOLA_X, start=1):
        for side, offset, aisle in (("W", 0.0, k - 1), ("E", 0.6, k)):
            skus = [f"G-{(number + n - 1) % PRODUCTS + 1:04d}" for n in range(SIDE_BINS)]
            number += SIDE_BINS
            sensored = iter([n % 4 != 3 for n in range(SIDE_BINS)])
            fixtures.append(
                {
                    "code": f"G{k}{side}",
                    "zone": f"Z-AISLE-{aisle}",
                    "kind": "shelf",
                    "position": [x + offset, GONDOLA_Y[0]],
                    "size": [0.6, length],
                    "bins": _bins(f"G{k}{side}", skus, sensored),
                }
            )
        promoted = [f"G-{FRIDGE_BINS + 1 + 7 * (2 * k - 1) + n:04d}" for n in range(2)]
        fixtures.append(
            {
                "code": f"G{k}END",
                "zone": "Z-FRONT",
                "kind": "endcap",
                "position": [x, GONDOLA_Y[1] + 0.1],
                "size": [1.2, 0.6],
                "bins": _bins(f"G{k}END", promoted, iter([False, False])),
            }
        )
    return fixtures


def _rack() -> dict[str, Any]:
    first = PRODUCTS - RACK_BINS + 1
    return {
        "code": "EW",
        "zone": f"Z-AISLE-{GONDOLAS}",
        "kind": "rack",
        "position": [RACK_X, GONDOLA_Y[0]],
        "size": [0.8, GONDOLA_Y[1] - GONDOLA_Y[0]],
        "bins": _bins("EW", [f"G-{first + n:04d}" for n in range(RACK_BINS)], iter([True] * RACK_BINS)),
    }


def _devices(fixtures: list[dict[str, Any]]) -> list[dict[str, Any]]:
    cameras = [{"code": "CAM-FRIDGE-W", "kind": "camera", "position": [6.0, 2.0, 3.4], "covers": ["Z-FRIDGE"]}]
    cameras.append({"code": "CAM-FRIDGE-E", "kind": "camera", "position": [18.0, 2.0, 3.4], "covers": ["Z-FRIDGE"]})
    for a, (x0, x1) in enumerate(_aisles()):
        cameras.append(
            {"code": f"CAM-A{a}", "kind": "camera", "position": [(x0 + x1) / 2, 9.5, 3.6], "covers": [f"Z-AISLE-{a}"]}
        )
    cameras.append({"code": "CAM-FRONT", "kind": "camera", "position": [12.0, 17.0, 3.8], "covers": ["Z-FRONT"]})
    sensors = [
        {"code": item["sensor"], "kind": "weight_sensor", "fixture": fixture["code"]}
        for fixture in fixtures
        for item in fixture["bins"]
        if "sensor" in item
    ]
    gates = [{"code": code, "kind": "gate", "position": list(place)} for code, place in GATES.items()]
    staff = [
        {"code": ID_DESK, "kind": "staff_device", "position": [12.0, 3.0]},
        {"code": STAFF_TABLET, "kind": "staff_device"},
    ]
    return cameras + sensors + gates + staff


def second_places(layout: Mapping[str, Any]) -> list[Place]:
    """Where a shopper stands to reach each bin: 0.5 m out from the fixture's face, level with the bin."""
    places = []
    for fixture in layout["fixtures"]:
        x, y = fixture["position"]
        width, depth = fixture["size"]
        count = len(fixture["bins"])
        for index, item in enumerate(fixture["bins"]):
            share = (index + 0.5) / count
            stand, aisle, camera = _stand(fixture["code"], x, y, width, depth, share)
            places.append(
                Place(item["code"], item["sku"], item.get("sensor"), fixture["code"], aisle, *stand, camera=camera)
            )
    return places


def _stand(
    code: str, x: float, y: float, width: float, depth: float, share: float
) -> tuple[tuple[float, float], int, str]:
    if code == "FW":
        at_x = x + share * width
        return (at_x, y + depth + 0.5), -1, "CAM-FRIDGE-W" if at_x < 12 else "CAM-FRIDGE-E"
    if code.endswith("END"):
        return (x + share * width, y + depth + 0.5), -1, "CAM-FRONT"
    along = y + share * depth
    if code == "EW" or code.endswith("W"):
        aisle = GONDOLAS if code == "EW" else int(code[1]) - 1
        return (x - 0.5, along), aisle, f"CAM-A{aisle}"
    aisle = int(code[1])
    return (x + width + 0.5, along), aisle, f"CAM-A{aisle}"


def second_store(seed: int, *, age_restricted: int) -> tuple[dict[str, Any], dict[str, CatalogItem], StoreModel]:
    """The store of `seed`: its layout, catalog and the engine's model of it, priced."""
    layout = second_layout()
    catalog = second_catalog(seed, age_restricted=age_restricted)
    weights = {sku: (item.unit_weight_g, item.tolerance_g) for sku, item in catalog.items()}
    ages = {sku: item.min_age for sku, item in catalog.items() if item.min_age}
    model = store_model_from_layout(layout=layout, weights=weights, since=SINCE, ages=ages)
    prices = second_prices(seed)
    priced = {sku: _priced(product, prices[sku]) for sku, product in model.products.items()}
    return layout, catalog, StoreModel(model.layouts, priced)


def _priced(product: Product, cents: int) -> Product:
    return Product(product.sku, product.unit_weight_g, product.tolerance_g, product.min_age, cents)


# --- shoppers -----------------------------------------------------------------------------------------------------


@dataclass
class Shopper:
    session: str
    token: str
    gate: str
    entered: datetime
    payer: Shopper | None = None
    # Where the shopper is, when: (time, x, y) corners of its path, walking straight between them.
    track: list[tuple[datetime, float, float]] = field(default_factory=list)

    @property
    def pays(self) -> str:
        return self.payer.session if self.payer else self.session

    @property
    def left(self) -> datetime:
        return self.track[-1][0]

    def where(self, at: datetime) -> tuple[float, float] | None:
        if not self.track or not self.track[0][0] <= at <= self.track[-1][0]:
            return None
        for (t0, x0, y0), (t1, x1, y1) in zip(self.track, self.track[1:], strict=False):
            if t0 <= at <= t1:
                share = (at - t0) / (t1 - t0) if t1 > t0 else 1.0
                return x0 + share * (x1 - x0), y0 + share * (y1 - y0)
        return self.track[-1][1], self.track[-1][2]


@dataclass(frozen=True)
class Action:
    """A hand taking (`sign` 1) or putting back (-1) `qty` of `sku` at a place."""

    at: datetime
    shopper: Shopper
    place: Place
    sku: str
    sign: int
    qty: int


@dataclass
class Floor:
    """The day's shoppers and what they do, before any sensor reports it."""

    places: list[Place]
    catalog: Mapping[str, CatalogItem]
    day: Day
    rng: random.Random
    shoppers: list[Shopper] = field(default_factory=list)
    actions: list[Action] = field(default_factory=list)
    browsed: dict[str, list[tuple[datetime, Place]]] = field(default_factory=lambda: defaultdict(list))
    id_checks: list[tuple[datetime, str, str, int]] = field(default_factory=list)  # when, session, result, age
    standing: dict[str, list[tuple[datetime, datetime]]] = field(default_factory=lambda: defaultdict(list))

    def __post_init__(self) -> None:
        self.by_bin = {place.bin: place for place in self.places}
        picks = [place for place in self.places if not place.fixture.endswith("END")]
        self.shelf_of = {place.sku: place for place in picks}
        self.products = sorted(self.shelf_of)
        popularity = [1.0 / (rank + 1) ** 0.7 for rank in range(len(self.products))]
        random.Random(f"{self.rng.random()}").shuffle(popularity)
        self.popularity = [
            weight * (self.day.fridge_pull if self.shelf_of[sku].fixture == "FW" else 1.0)
            for sku, weight in zip(self.products, popularity, strict=True)
        ]


def _arrivals(rng: random.Random, day: Day, start: datetime, visits: int) -> list[datetime]:
    """Entry times in waves: a base flow over the opening hours with the day's rushes on top."""
    opens, closes = day.hours
    peak = 1.0 + sum(height for _, _, height in day.rushes)
    times: list[datetime] = []
    while len(times) < visits:
        hour = rng.uniform(opens, closes)
        flow = 1.0 + sum(h * math.exp(-(((hour - at) / spread) ** 2) / 2) for at, spread, h in day.rushes)
        if rng.random() * peak < flow:
            times.append(start.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(hours=hour))
    return sorted(times)


def _shopping_list(floor: Floor) -> list[Place]:
    rng, wanted = floor.rng, []
    while True:
        wanted.append(rng.choices(floor.products, weights=floor.popularity)[0])
        if rng.random() < floor.day.list_stop or len(wanted) >= 14:
            break
    stops = [floor.shelf_of[sku] for sku in dict.fromkeys(wanted)]
    promoted = [p for p in floor.places if p.fixture.endswith("END")]
    if rng.random() < 0.25:
        stops.append(rng.choice(promoted))
    return stops


def _route(stops: list[Place], eastward: bool) -> list[Place]:
    """Aisle by aisle, north up the first and back down the next; the front's endcaps on the way out."""

    def order(place: Place) -> tuple[int, float]:
        if place.fixture.endswith("END"):
            return 99, place.x
        aisle = place.aisle if place.aisle >= 0 else min(GONDOLAS, max(0, round((place.x - 1.5) / 3.2)))
        aisle = aisle if eastward else GONDOLAS - aisle
        return aisle, place.y if aisle % 2 else -place.y

    return sorted(stops, key=order)


def _walk_to(track: list[tuple[datetime, float, float]], x: float, y: float, speed: float) -> None:
    """Walk from the track's end to (x, y): straight within an aisle or cross-aisle, else round a gondola's end."""
    at, x0, y0 = track[-1]
    corners = [(x, y)]
    if abs(x - x0) > 1.0 and GONDOLA_Y[0] - 0.5 < max(y, y0) and min(y, y0) < GONDOLA_Y[1] + 0.5:
        via = BACK_WALK_Y if (y + y0) / 2 < sum(GONDOLA_Y) / 2 else FRONT_WALK_Y
        corners = [(x0, via), (x, via), (x, y)]
    for cx, cy in corners:
        at += timedelta(seconds=math.dist((x0, y0), (cx, cy)) / speed)
        track.append((at, cx, cy))
        x0, y0 = cx, cy


def _stand_at(floor: Floor, shopper: Shopper, place: Place, seconds: float) -> tuple[datetime, datetime]:
    """Stand at a bin for `seconds`, first waiting for whoever stands there to leave (a queue)."""
    arrive = shopper.track[-1][0]
    for begins, ends in floor.standing[place.bin]:
        if begins <= arrive < ends:
            arrive = ends + timedelta(seconds=0.5)
    leave = arrive + timedelta(seconds=seconds)
    floor.standing[place.bin].append((arrive, leave))
    shopper.track += [(arrive, place.x, place.y), (leave, place.x, place.y)]
    return arrive, leave


def _plan_visit(floor: Floor, shopper: Shopper, speed: float) -> list[tuple[datetime, datetime, Place]]:
    """A payer's walk: its list in route order, with browsing pauses in the aisles it passes. Returns its stops."""
    rng = floor.rng
    gate = GATES[shopper.gate]
    shopper.track = [(shopper.entered, *gate)]
    stops = []
    for place in _route(_shopping_list(floor), eastward=shopper.gate == "ENTRY-WEST" or rng.random() < 0.5):
        while place.aisle >= 0 and rng.random() < 0.45:  # browsing pauses on the way: none, one, or a few
            _browse(floor, shopper, place, speed)
        _walk_to(shopper.track, place.x, place.y, speed)
        stops.append((*_stand_at(floor, shopper, place, rng.lognormvariate(math.log(9.0), 0.7)), place))
    _walk_to(shopper.track, *GATES["EXIT-EAST"], speed)
    return stops


def _browse(floor: Floor, shopper: Shopper, towards: Place, speed: float) -> None:
    same_aisle = [p for p in floor.places if p.aisle == towards.aisle and p.fixture != "FW"]
    place = floor.rng.choice(same_aisle)
    _walk_to(shopper.track, place.x, place.y, speed)
    begins, ends = _stand_at(floor, shopper, place, floor.rng.uniform(4.0, 25.0))
    floor.browsed[shopper.session].append((begins + (ends - begins) / 2, place))


def _follow(floor: Floor, companion: Shopper, payer: Shopper) -> None:
    """A companion walks beside its payer, a step behind and to one side."""
    rng = floor.rng
    behind = timedelta(seconds=rng.uniform(1.0, 3.0))
    dx, dy = rng.choice((-1, 1)) * rng.uniform(0.3, 0.6), rng.uniform(-0.5, 0.5)
    companion.track = [(at + behind, x + dx, y + dy) for at, x, y in payer.track]
    companion.entered = companion.track[0][0]


# --- what hands do ------------------------------------------------------------------------------------------------


def _act_at_stop(floor: Floor, shopper: Shopper, begins: datetime, ends: datetime, place: Place) -> None:
    """At a stop: maybe read a label and put it back (and take the neighbour instead), maybe put back something
    carried on this shelf, else take the product (multipacks from the fridge wall). All while standing there."""
    rng, day = floor.rng, floor.day
    stay = ends - begins
    moment = begins + stay * rng.uniform(0.3, 0.6)
    if not _may_take(floor, shopper, moment, place):
        return
    if rng.random() < day.reads_label:
        floor.actions.append(Action(begins + stay * rng.uniform(0.1, 0.25), shopper, place, place.sku, 1, 1))
        floor.actions.append(Action(begins + stay * rng.uniform(0.5, 0.65), shopper, place, place.sku, -1, 1))
        if rng.random() < 0.5:
            return
        place = _neighbour(floor, place)
        moment = begins + stay * rng.uniform(0.75, 0.9)
        if not _may_take(floor, shopper, moment, place):
            return
    qty = rng.choice((2, 3, 4, 6)) if place.fixture == "FW" and rng.random() < 0.25 else 1
    qty = 2 if qty == 1 and rng.random() < 0.08 else qty
    floor.actions.append(Action(moment, shopper, place, place.sku, 1, qty))


def _neighbour(floor: Floor, place: Place) -> Place:
    shelf = [p for p in floor.places if p.fixture == place.fixture]
    index = shelf.index(place) + floor.rng.choice((-1, 1))
    return shelf[index % len(shelf)]


def _may_take(floor: Floor, shopper: Shopper, at: datetime, place: Place) -> bool:
    """Staff at the ID desk check most shoppers reaching for an 18+ product, once a visit for the age it needs;
    one too young puts it down. Unchecked shoppers take it."""
    age = floor.catalog[place.sku].min_age
    if not age:
        return True
    proved = [(result, proved) for _, session, result, proved in floor.id_checks if session == shopper.session]
    if any(result == "passed" and years >= age for result, years in proved):
        return True
    if any(result == "failed" for result, _ in proved):
        return False
    if floor.rng.random() >= floor.day.id_checked:
        return True
    passed = floor.rng.random() >= TOO_YOUNG
    asked = max(shopper.entered, at - timedelta(seconds=floor.rng.uniform(5.0, 40.0)))
    floor.id_checks.append((asked, shopper.session, "passed" if passed else "failed", age))
    return passed


def _wrong_shelf(floor: Floor, shopper: Shopper, stops: list[tuple[datetime, datetime, Place]]) -> None:
    """Now and then a shopper leaves something it carries on whatever shelf it stands at later."""
    if len(stops) < 2 or floor.rng.random() >= floor.day.wrong_shelf:
        return
    mine = [a for a in floor.actions if a.shopper is shopper and a.sign > 0]
    later = [(b, e, p) for b, e, p in stops if mine and b > min(a.at for a in mine) + timedelta(seconds=15)]
    if not later:
        return
    begins, ends, place = floor.rng.choice(later)
    carried = floor.rng.choice([a for a in mine if a.at < begins])
    if place.sku != carried.sku and _net(floor, shopper, carried.sku) > 0:
        floor.actions.append(Action(ends - timedelta(seconds=1.0), shopper, place, carried.sku, -1, 1))


def _net(floor: Floor, shopper: Shopper, sku: str) -> int:
    return sum(a.sign * a.qty for a in floor.actions if a.shopper is shopper and a.sku == sku)


def _companion_acts(
    floor: Floor, companion: Shopper, payer: Shopper, stops: list[tuple[datetime, datetime, Place]]
) -> None:
    """A companion takes something at a third of the payer's stops, while standing there a step behind: the same
    product or its neighbour."""
    behind = companion.entered - payer.entered
    for begins, ends, place in stops:
        if floor.rng.random() < 0.35:
            chosen = place if floor.rng.random() < 0.5 else _neighbour(floor, place)
            at = begins + behind + (ends - begins) * floor.rng.uniform(0.2, 0.9)
            if _may_take(floor, companion, at, chosen):
                floor.actions.append(Action(at, companion, chosen, chosen.sku, 1, 1))


def populate(floor: Floor, *, visits: int, start: datetime, seed: int, couples: float) -> None:
    """The day's visits: payers arriving in waves, some with a companion; their walks and what their hands do."""
    rng = floor.rng
    for number, entered in enumerate(_arrivals(rng, floor.day, start, visits)):
        gate = "ENTRY-WEST" if rng.random() < 0.6 else "ENTRY-SOUTH"
        payer = Shopper(f"s{seed}-{number:04d}", f"shp_{rng.randrange(16**16):016x}", gate, entered)
        floor.shoppers.append(payer)
        stops = _plan_visit(floor, payer, rng.uniform(0.5, 1.2) * floor.day.pace)
        for begins, ends, place in stops:
            _act_at_stop(floor, payer, begins, ends, place)
        _wrong_shelf(floor, payer, stops)
        if rng.random() < couples:
            companion = Shopper(f"s{seed}-{number:04d}-c", payer.token, gate, entered, payer)
            _follow(floor, companion, payer)
            floor.shoppers.append(companion)
            _companion_acts(floor, companion, payer, stops)
    floor.actions.sort(key=lambda a: (a.at, a.shopper.session))


# --- what the sensors report --------------------------------------------------------------------------------------


@dataclass
class Report:
    """The day's events per delivery channel (gates and staff, cameras, scales), and what the benchmark must know
    of them: who truly did each camera event (None: imagined), and the payers one of whose items no sensor saw."""

    prefix: str
    channels: dict[str, list[tuple[datetime, dict[str, Any]]]] = field(default_factory=lambda: defaultdict(list))
    actors: dict[str, str | None] = field(default_factory=dict)
    unseen: set[str] = field(default_factory=set)
    switches: list[tuple[Shopper, Shopper, datetime]] = field(default_factory=list)  # tracks swapped until then
    count: int = 0

    def emit(self, channel: str, at: datetime, body: dict[str, Any]) -> str:
        self.count += 1
        event_id = f"{self.prefix}{channel[0]}{self.count}"
        stamp = at.isoformat(timespec="milliseconds").replace("+00:00", "Z")
        self.channels[channel].append((at, {"id": event_id, "type": body.pop("type"), "ts": stamp, **body}))
        return event_id


def _zone(x: float, y: float) -> str:
    """The zone a camera sees a point in: the fridge wall's strip, the front, or an aisle between two gondolas."""
    if y < 3.5:
        return "fridge"
    if y > GONDOLA_Y[1] + 0.2:
        return "front"
    for aisle, (x0, x1) in enumerate(_aisles()):
        if x0 <= x <= x1:
            return f"aisle-{aisle}"
    return "behind"  # inside a gondola's footprint: hidden from both aisles


class Presence:
    """Who is in the store when, to ask who stands near a place at a moment."""

    def __init__(self, shoppers: list[Shopper]) -> None:
        self.shoppers = sorted(shoppers, key=lambda s: s.entered)
        self.longest = max((s.left - s.entered for s in shoppers), default=timedelta(0))

    def near(self, actor: Shopper, at: datetime, place: Place, metres: float) -> list[tuple[float, Shopper]]:
        """Others within `metres` of the place, in the same camera's zone, nearest first."""
        zone = _zone(place.x, place.y)
        found = []
        for other in self.shoppers:
            if other.entered > at:
                break
            if other is actor or other.entered < at - self.longest or (spot := other.where(at)) is None:
                continue
            distance = math.dist(spot, (place.x, place.y))
            if distance <= metres and _zone(*spot) == zone:
                found.append((distance, other))
        return sorted(found, key=lambda pair: (pair[0], pair[1].session))


def _draw(stack: PerceptionStack, rng: random.Random, band: tuple[float, float], skew: tuple[float, float]) -> float:
    """A confidence within the stack's band, on its scale, from a beta distribution of this world's choosing."""
    low, high = band
    return round(stack.ceiling * (low + (high - low) * rng.betavariate(*skew)), 3)


SURE, UNSURE = (4.0, 1.3), (2.0, 2.0)


def _switched_with(
    report: Report, action: Action, near: list[tuple[float, Shopper]], stack: PerceptionStack, rng: random.Random
) -> Shopper | None:
    """The shopper whose track the actor's is swapped with now: a swap begun earlier and still running (the two
    may have walked apart since: the tracks stay swapped), or a new one, lasting 3 to 20 s, with the nearest."""
    me = action.shopper
    for first, second, until in report.switches:
        if action.at <= until and me in (first, second):
            partner = second if me is first else first
            return partner if partner.left >= action.at else None
    if near and rng.random() < stack.id_switch:
        partner = near[0][1]
        report.switches.append((me, partner, action.at + timedelta(seconds=rng.uniform(3.0, 20.0))))
        return partner
    return None


def _camera(report: Report, presence: Presence, stack: PerceptionStack, rng: random.Random, action: Action) -> bool:
    """What the aisle's camera says of an action; False when it misses it (more often in a crowd)."""
    actor, place = action.shopper, action.place
    near = presence.near(actor, action.at, place, stack.reach_m)
    if rng.random() < min(0.5, stack.missed * (1.0 + 0.5 * len(near))):
        return False
    alternatives: dict[str, float] = {}
    partner = _switched_with(report, action, near, stack, rng)
    if partner is not None:
        winner, confidence = partner, _draw(stack, rng, stack.confident, SURE)
        if rng.random() < stack.switch_lists_actor:
            alternatives[actor.session] = round(confidence * rng.uniform(0.15, 0.6), 3)
    elif near and rng.random() < stack.hesitates:
        wrong = rng.random() < stack.wrong_when_hesitant
        winner, runner_up = (near[0][1], actor) if wrong else (actor, near[0][1])
        confidence = _draw(stack, rng, stack.hesitant, UNSURE)
        if stack.lists_bystanders > 0:
            alternatives[runner_up.session] = round(confidence * rng.uniform(0.5, 0.9), 3)
    else:
        winner, confidence = actor, _draw(stack, rng, stack.confident, SURE)
    _list_bystanders(alternatives, presence, stack, rng, action, winner, confidence)
    _report_action(report, stack, rng, action, winner.session, confidence, alternatives)
    return True


def _list_bystanders(
    alternatives: dict[str, float],
    presence: Presence,
    stack: PerceptionStack,
    rng: random.Random,
    action: Action,
    winner: Shopper,
    confidence: float,
) -> None:
    """Others in view are listed now and then, the closer the surer."""
    reach = max(stack.listing_reach_m, stack.reach_m)
    low, high = stack.bystander_confidence
    for distance, other in presence.near(action.shopper, action.at, action.place, reach):
        if other is not winner and other.session not in alternatives and rng.random() < stack.lists_bystanders:
            closeness = 1.0 - distance / reach if reach else 0.0
            alternatives[other.session] = round(confidence * (low + (high - low) * closeness), 3)
    alternatives.pop(winner.session, None)


def _report_action(
    report: Report,
    stack: PerceptionStack,
    rng: random.Random,
    action: Action,
    session: str,
    confidence: float,
    alternatives: dict[str, float],
) -> None:
    seen = action.qty
    if rng.random() < stack.miscount * (1.5 if action.qty > 1 else 0.6):
        seen = max(1, action.qty + rng.choice((-1, 1)))
    body: dict[str, Any] = {
        "type": "item.picked" if action.sign > 0 else "item.returned",
        "session": session,
        "bin": action.place.bin,
        "device": action.place.camera,
        "qty": seen,
        "confidence": confidence,
    }
    if alternatives:
        ranked = sorted(alternatives.items(), key=lambda pair: (-pair[1], pair[0]))[:16]
        body["alternatives"] = [{"session": s, "confidence": c} for s, c in ranked]
    if action.sku != action.place.sku or rng.random() < stack.reports_sku:
        body["sku"] = action.sku
    at = action.at + timedelta(seconds=rng.gauss(0.0, 0.15))
    report.actors[report.emit("camera", at, body)] = action.shopper.pays


def _phantoms(report: Report, floor: Floor, stack: PerceptionStack, rng: random.Random) -> None:
    """Hands that reached without taking: a camera now and then reports a take where a shopper browsed."""
    acted: dict[str, list[tuple[datetime, Place]]] = defaultdict(list)
    for action in floor.actions:
        acted[action.shopper.session].append((action.at, action.place))
    for shopper in floor.shoppers:
        spots = floor.browsed.get(shopper.session) or acted.get(shopper.session)
        threshold, draws = math.exp(-stack.phantom_per_visit), rng.random()
        while spots and draws > threshold:  # a Poisson count of imagined takes, one per draw above e^-rate
            at, place = rng.choice(spots)
            body = {"type": "item.picked", "session": shopper.session, "bin": place.bin, "device": place.camera}
            confidence = _draw(stack, rng, stack.hesitant, UNSURE)
            at += timedelta(seconds=rng.uniform(-2.0, 2.0))
            report.actors[report.emit("camera", at, {**body, "qty": 1, "confidence": confidence})] = None
            draws *= rng.random()


@dataclass
class Scales:
    """The load cells: what each bin's scale felt, (settled at, grams), and which fixtures' sensor buses were down
    when."""

    stack: PerceptionStack
    rng: random.Random
    catalog: Mapping[str, CatalogItem]
    felt: dict[Place, list[tuple[datetime, float]]] = field(default_factory=lambda: defaultdict(list))
    down: list[tuple[str, datetime, datetime]] = field(default_factory=list)

    def is_down(self, fixture: str, at: datetime) -> bool:
        return any(f == fixture and begins <= at <= ends for f, begins, ends in self.down)

    def feel(self, place: Place, at: datetime, sku: str, units: int) -> bool:
        """A change of `units` of `sku` on the bin (+ onto it); False when it has no scale or its bus is down."""
        if place.sensor is None or self.is_down(place.fixture, at):
            return False
        unit = self.catalog[sku].unit_weight_g
        low, high = self.stack.scale_lag_s
        settled = at + timedelta(seconds=low + (high - low) * self.rng.betavariate(2.0, 3.0))
        noise = self.rng.gauss(0.0, self.stack.scale_noise * unit * math.sqrt(abs(units)))
        self.felt[place].append((settled, units * unit + noise))
        return True


def _plan_outages(report: Report, scales: Scales, places: list[Place], opens: datetime, day: timedelta) -> None:
    """A whole fixture's sensor bus drops for 15 to 45 minutes; the stack announces it for each scale, or not."""
    rng = scales.rng
    fixtures = sorted({place.fixture for place in places if place.sensor})
    for fixture in rng.sample(fixtures, min(len(fixtures), scales.stack.outages)):
        begins = opens + day * rng.uniform(0.1, 0.8)
        ends = begins + timedelta(minutes=rng.uniform(15.0, 45.0))
        scales.down.append((fixture, begins, ends))
        if rng.random() < scales.stack.reports_outages:
            for place in places:
                if place.fixture == fixture and place.sensor:
                    report.emit("scale", begins, {"type": "device.status", "device": place.sensor, "status": "offline"})
                    report.emit("scale", ends, {"type": "device.status", "device": place.sensor, "status": "online"})


def _restocks(report: Report, scales: Scales, places: list[Place], opens: datetime, day: timedelta, count: int) -> None:
    """Staff top up a few shelves during the day from the tablet; the scale feels the stock arrive a little later."""
    rng = scales.rng
    sensored = [place for place in places if place.sensor]
    for _ in range(count):
        place, at = rng.choice(sensored), opens + day * rng.random()
        units = rng.randint(6, 18)
        report.emit("staff", at, {"type": "shelf.restocked", "bin": place.bin, "device": STAFF_TABLET, "qty": units})
        scales.feel(place, at + timedelta(seconds=rng.uniform(20.0, 120.0)), place.sku, units)


def _report_scales(report: Report, scales: Scales, opens: datetime, day: timedelta) -> None:
    """Each scale reports what it felt at a gram's resolution, changes settling within its merge window as one,
    and its temperature creep: small steps in one direction, some per hour."""
    stack, rng = scales.stack, scales.rng
    for place, changes in sorted(scales.felt.items(), key=lambda pair: pair[0].bin):
        merged: list[tuple[datetime, float]] = []
        for settled, grams in sorted(changes):
            if merged and (settled - merged[-1][0]).total_seconds() <= stack.merge_window_s:
                merged[-1] = (settled, merged[-1][1] + grams)
            else:
                merged.append((settled, grams))
        creep, hours = rng.choice((-1.0, 1.0)), math.ceil(day.total_seconds() / 3600)
        steps = sum(rng.random() < stack.drift_per_scale_hour for _ in range(hours))
        merged += [(opens + day * rng.random(), creep * rng.uniform(1.5, 4.0)) for _ in range(steps)]
        for settled, grams in merged:
            if round(grams) and not scales.is_down(place.fixture, settled):
                body = {"type": "shelf.weight_changed", "bin": place.bin, "device": place.sensor}
                report.emit("scale", settled, {**body, "delta_g": float(round(grams))})


def _deliver(report: Report, day: Day, rng: random.Random) -> list[bytes]:
    """One upload per channel, gates and staff first, each in time order; batches of 40 lines sent again now and
    then (a lost acknowledgement); and a quarter hour of camera events that the uplink dropped, sent last."""
    ordered = {name: sorted(found, key=lambda e: (e[0], e[1]["id"])) for name, found in report.channels.items()}
    cameras = ordered.get("camera", [])
    backlog: list[tuple[datetime, dict[str, Any]]] = []
    if cameras:
        drops = cameras[rng.randrange(len(cameras))][0]
        backlog = [e for e in cameras if drops <= e[0] <= drops + timedelta(minutes=15)]
        ordered["camera"] = [e for e in cameras if not drops <= e[0] <= drops + timedelta(minutes=15)]
    channels = (ordered.get("gate", []) + ordered.get("staff", []), ordered.get("camera", []), ordered.get("scale", []))
    uploads = []
    for found in (*channels, backlog):
        lines = [orjson.dumps(body) for _, body in found]
        for first in range(0, len(lines), 40):
            if rng.random() < day.resends:
                lines += lines[first : first + 40]
        if lines:
            uploads.append(b"\n".join(lines) + b"\n")
    return uploads


# --- a day --------------------------------------------------------------------------------------------------------


def simulate_second(
    *,
    catalog: Mapping[str, CatalogItem],
    profile: str,
    visits: int,
    start: datetime,
    seed: int,
    stack: PerceptionStack,
    groups: bool = False,
    everyone_id_checked: bool = False,
) -> Simulation:
    """A day of `visits` payers in the second world (`profile`: realistic or crowded), as the store's uploads and
    the truth. `groups`: a day of families (more couples); `everyone_id_checked`: staff ask every shopper reaching
    for an 18+ product (for exact tests)."""
    day = DAYS[profile]
    day = replace(day, id_checked=1.0) if everyone_id_checked else day
    rng = random.Random(f"second:{seed}:{profile}")
    floor = Floor(second_places(second_layout()), catalog, day, rng)
    couples = max(day.couples, FAMILY_COUPLES) if groups else day.couples
    populate(floor, visits=visits, start=start, seed=seed, couples=couples)
    report = Report(prefix=f"w{seed}-")
    _gates(report, floor)
    _sense(report, floor, stack, start, rng)
    return Simulation(
        profile=profile,
        stack=stack,
        uploads=_deliver(report, day, rng),
        truth=_truth(floor),
        shoppers={s.session: s.token for s in floor.shoppers if s.payer is None},
        groups={s.session: s.payer.session for s in floor.shoppers if s.payer is not None},
        recoverable={s.session for s in floor.shoppers if s.payer is None} - report.unseen,
        actors=report.actors,
        id_checks={session: age for _, session, result, age in floor.id_checks if result == "passed"},
    )


def _gates(report: Report, floor: Floor) -> None:
    """Gate passes and the ID desk's checks."""
    for shopper in floor.shoppers:
        started = {"type": "session.started", "session": shopper.session, "shopper": shopper.token}
        started |= {"gate": shopper.gate} | ({"group": shopper.payer.session} if shopper.payer else {})
        report.emit("gate", shopper.entered, started)
        report.emit("gate", shopper.left, {"type": "session.ended", "session": shopper.session, "gate": "EXIT-EAST"})
    for at, session, result, age in floor.id_checks:
        body = {"type": "id.checked", "session": session, "device": ID_DESK, "result": result, "min_age": age}
        report.emit("staff", at, body)


def _sense(report: Report, floor: Floor, stack: PerceptionStack, start: datetime, rng: random.Random) -> None:
    """Cameras and scales over the day's actions, with the scales' outages and the staff's restocks."""
    opens = start.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(hours=floor.day.hours[0])
    length = timedelta(hours=floor.day.hours[1] - floor.day.hours[0])
    scales = Scales(stack, rng, floor.catalog)
    _plan_outages(report, scales, floor.places, opens, length)
    presence = Presence(floor.shoppers)
    for action in floor.actions:
        seen = _camera(report, presence, stack, rng, action)
        weighed = scales.feel(action.place, action.at, action.sku, -action.sign * action.qty)
        if not (seen or weighed):
            report.unseen.add(action.shopper.pays)
    _phantoms(report, floor, stack, rng)
    _restocks(report, scales, floor.places, opens, length, count=max(1, len(floor.shoppers) // 60))
    _report_scales(report, scales, opens, length)


def _truth(floor: Floor) -> dict[str, dict[str, int]]:
    """Each payer's true cart: what it and its companion took, less what they put back."""
    carts: dict[str, Counter[str]] = {s.session: Counter() for s in floor.shoppers if s.payer is None}
    for action in floor.actions:
        carts[action.shopper.pays][action.sku] += action.sign * action.qty
    return {payer: {sku: qty for sku, qty in sorted(cart.items()) if qty > 0} for payer, cart in carts.items()}


def store_day(
    *,
    stack: PerceptionStack,
    profile: str,
    store_seed: int,
    seed: int,
    visits: int,
    start: datetime,
    age_restricted: int = 0,
    groups: bool = False,
    everyone_id_checked: bool = False,
) -> tuple[Simulation, StoreModel]:
    """Day `seed` of the store `store_seed` (its layout, catalog and prices stay the store's all its days)."""
    _, catalog, store = second_store(store_seed, age_restricted=age_restricted)
    simulation = simulate_second(
        catalog=catalog,
        profile=profile,
        visits=visits,
        start=start,
        seed=seed,
        stack=stack,
        groups=groups,
        everyone_id_checked=everyone_id_checked,
    )
    return simulation, store
