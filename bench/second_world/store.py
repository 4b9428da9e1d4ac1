"""The second world's store: its floor, fixtures, bins, devices and catalogue, and where a shopper stands to reach
each bin."""

from __future__ import annotations

import math
import random
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from visits.engine import Product, StoreModel, store_model_from_layout
from visits.simulator import CatalogItem

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
        for a, (x0, x1) in enumerate(aisles())
    ]
    zones.append({"code": "Z-FRONT", "name": "Front", "polygon": [[0, 15.2], [24, 15.2], [24, 20], [0, 20]]})
    return {"floor": dict(FLOOR), "zones": zones, "fixtures": fixtures, "devices": _devices(fixtures)}


def aisles() -> list[tuple[float, float]]:
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
    for a, (x0, x1) in enumerate(aisles()):
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
