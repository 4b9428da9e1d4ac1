"""The second world's shoppers: when they come, how they walk the store, and what their hands do."""

from __future__ import annotations

import math
import random
from collections import Counter, defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from visits.simulator import CatalogItem

from .store import BACK_WALK_Y, FRONT_WALK_Y, GATES, GONDOLA_Y, GONDOLAS, Place


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
READING = timedelta(seconds=8)  # a label is read for two seconds or more between pick-up and put-back
FAMILY_COUPLES = 0.35  # `groups=True`: a day of families
TOO_YOUNG = 0.03


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
    """At a stop: maybe read a label and put it back (and take the neighbour instead), else take the product
    (multipacks from the fridge wall). All while standing there; reading needs a stop of `READING` or more."""
    rng, day = floor.rng, floor.day
    stay = ends - begins
    moment = begins + stay * rng.uniform(0.3, 0.6)
    if not _may_take(floor, shopper, moment, place):
        return
    if stay >= READING and rng.random() < day.reads_label:
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


def true_carts(floor: Floor) -> dict[str, dict[str, int]]:
    """Each payer's true cart: what it and its companion took, less what they put back."""
    carts: dict[str, Counter[str]] = {s.session: Counter() for s in floor.shoppers if s.payer is None}
    for action in floor.actions:
        carts[action.shopper.pays][action.sku] += action.sign * action.qty
    return {payer: {sku: qty for sku, qty in sorted(cart.items()) if qty > 0} for payer, cart in carts.items()}
