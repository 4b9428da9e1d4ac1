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

import random
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime

from visits.engine import StoreModel
from visits.perception import PerceptionStack
from visits.simulator import CatalogItem, Simulation

from .floor import DAYS, FAMILY_COUPLES, Floor, populate, true_carts
from .sensors import Report, deliver, report_gates, sense
from .store import second_catalog, second_layout, second_places, second_store

__all__ = ["second_catalog", "second_layout", "second_store", "simulate_second", "store_day"]


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
    report_gates(report, floor)
    sense(report, floor, stack, start, rng)
    return Simulation(
        profile=profile,
        stack=stack,
        uploads=deliver(report, day, rng),
        truth=true_carts(floor),
        shoppers={s.session: s.token for s in floor.shoppers if s.payer is None},
        groups={s.session: s.payer.session for s in floor.shoppers if s.payer is not None},
        recoverable={s.session for s in floor.shoppers if s.payer is None} - report.unseen,
        actors=report.actors,
        id_checks={session: age for _, session, result, age in floor.id_checks if result == "passed"},
    )


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
