"""The second world's sensors: what its gates, ID desk, cameras and scales report of a day, and how the store
delivers it."""

from __future__ import annotations

import math
import random
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import orjson

from visits.perception import PerceptionStack
from visits.simulator import CatalogItem

from .floor import Action, Day, Floor, Shopper
from .store import GONDOLA_Y, ID_DESK, STAFF_TABLET, Place, aisles


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
    for aisle, (x0, x1) in enumerate(aisles()):
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


def deliver(report: Report, day: Day, rng: random.Random) -> list[bytes]:
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


def report_gates(report: Report, floor: Floor) -> None:
    """Gate passes and the ID desk's checks."""
    for shopper in floor.shoppers:
        started = {"type": "session.started", "session": shopper.session, "shopper": shopper.token}
        started |= {"gate": shopper.gate} | ({"group": shopper.payer.session} if shopper.payer else {})
        report.emit("gate", shopper.entered, started)
        report.emit("gate", shopper.left, {"type": "session.ended", "session": shopper.session, "gate": "EXIT-EAST"})
    for at, session, result, age in floor.id_checks:
        body = {"type": "id.checked", "session": session, "device": ID_DESK, "result": result, "min_age": age}
        report.emit("staff", at, body)


def sense(report: Report, floor: Floor, stack: PerceptionStack, start: datetime, rng: random.Random) -> None:
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
