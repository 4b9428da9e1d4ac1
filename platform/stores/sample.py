"""A realistic small-format store layout, for the demo, the simulator and tests.

24 m by 16 m: five zones, twelve fixtures (shelves, fridges, a produce table),
about ten bins per fixture, a weight sensor under most bins, cameras over
every zone, two gates and a staff handheld. Deterministic for a given list of SKUs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

FLOOR = {"width_m": 24.0, "depth_m": 16.0}
ZONES = [
    ("Z-DRINKS", "Drinks", [[0, 0], [8, 0], [8, 7], [0, 7]]),
    ("Z-SNACKS", "Snacks", [[8, 0], [16, 0], [16, 7], [8, 7]]),
    ("Z-DAIRY", "Dairy & chilled", [[16, 0], [24, 0], [24, 7], [16, 7]]),
    ("Z-PRODUCE", "Fresh produce", [[0, 7], [12, 7], [12, 13], [0, 13]]),
    ("Z-HOME", "Household", [[12, 7], [24, 7], [24, 13], [12, 13]]),
]
# code, zone, kind, position (x, y), size (w, d), bins, share of bins with a weight sensor (every n-th without)
FIXTURES = [
    ("F01", "Z-DRINKS", "fridge", (0.5, 0.5), (7.0, 0.8), 10, 0),
    ("F02", "Z-DRINKS", "shelf", (0.5, 3.0), (7.0, 0.9), 10, 5),
    ("F03", "Z-DRINKS", "shelf", (0.5, 5.2), (7.0, 0.9), 8, 4),
    ("F04", "Z-SNACKS", "shelf", (8.5, 0.5), (7.0, 0.8), 10, 0),
    ("F05", "Z-SNACKS", "shelf", (8.5, 3.0), (7.0, 0.9), 10, 3),
    ("F06", "Z-SNACKS", "rack", (8.5, 5.2), (7.0, 0.9), 8, 0),
    ("F07", "Z-DAIRY", "fridge", (16.5, 0.5), (7.0, 0.8), 10, 0),
    ("F08", "Z-DAIRY", "fridge", (16.5, 3.0), (7.0, 0.9), 10, 0),
    ("F09", "Z-PRODUCE", "table", (1.0, 8.0), (4.5, 2.0), 8, 4),
    ("F10", "Z-PRODUCE", "table", (6.5, 8.0), (4.5, 2.0), 8, 0),
    ("F11", "Z-HOME", "shelf", (12.5, 8.0), (11.0, 0.9), 12, 6),
    ("F12", "Z-HOME", "shelf", (12.5, 10.5), (11.0, 0.9), 12, 0),
]
CAMERAS = [
    ("CAM-01", (4.0, 2.0, 3.2), ["Z-DRINKS"]),
    ("CAM-02", (4.0, 5.5, 3.2), ["Z-DRINKS"]),
    ("CAM-03", (12.0, 2.0, 3.2), ["Z-SNACKS"]),
    ("CAM-04", (12.0, 5.5, 3.2), ["Z-SNACKS"]),
    ("CAM-05", (20.0, 3.5, 3.2), ["Z-DAIRY"]),
    ("CAM-06", (6.0, 10.0, 3.5), ["Z-PRODUCE"]),
    ("CAM-07", (18.0, 10.0, 3.5), ["Z-HOME"]),
    ("CAM-08", (12.0, 7.0, 4.0), ["Z-SNACKS", "Z-PRODUCE", "Z-HOME"]),
]
GATES = [("GATE-IN", (9.0, 15.5)), ("GATE-OUT", (15.0, 15.5))]
STAFF_DEVICE = "HANDHELD-01"  # the staff's handheld: stock takes, restocks (shelf.restocked), id checks


def sample_bin_count() -> int:
    return sum(fixture[5] for fixture in FIXTURES)


def sample_layout(*, skus: Sequence[str]) -> dict[str, Any]:
    """A layout document whose bins hold `skus` in order (repeating when there are fewer SKUs than bins)."""
    if not skus:
        raise ValueError("A layout needs at least one SKU for its bins.")
    fixtures: list[dict[str, Any]] = []
    sensors: list[dict[str, Any]] = []
    slot = 0
    for code, zone, kind, position, size, bin_count, every_nth_without_sensor in FIXTURES:
        bins = []
        for index in range(1, bin_count + 1):
            item: dict[str, Any] = {"code": f"{code}-B{index:02d}", "sku": skus[slot % len(skus)], "capacity": 24}
            slot += 1
            if not (every_nth_without_sensor and index % every_nth_without_sensor == 0):
                sensor_code = f"W-{code}-B{index:02d}"
                item["sensor"] = sensor_code
                sensors.append({"code": sensor_code, "kind": "weight_sensor", "fixture": code})
            bins.append(item)
        fixtures.append(
            {"code": code, "zone": zone, "kind": kind, "position": list(position), "size": list(size), "bins": bins}
        )
    devices: list[dict[str, Any]] = [
        {"code": code, "kind": "camera", "position": list(position), "covers": covers}
        for code, position, covers in CAMERAS
    ]
    devices += sensors
    devices += [{"code": code, "kind": "gate", "position": list(position)} for code, position in GATES]
    devices.append({"code": STAFF_DEVICE, "kind": "staff_device"})
    return {
        "floor": dict(FLOOR),
        "zones": [{"code": code, "name": name, "polygon": polygon} for code, name, polygon in ZONES],
        "fixtures": fixtures,
        "devices": devices,
    }


# Layouts a store manager can start a store from (the admin's "Start from a template"): name → (title, zones).
TEMPLATES = {
    "convenience": ("Small convenience store: 24 × 16 m, 5 zones, 12 fixtures, 116 bins", None),
    "aisle": ("Grocery aisle: 16 × 9 m, drinks and snacks, 6 fixtures, 56 bins", ("Z-DRINKS", "Z-SNACKS")),
}
AISLE_FLOOR = {"width_m": 16.0, "depth_m": 9.0}
AISLE_GATES = {"GATE-IN": [5.0, 8.5], "GATE-OUT": [11.0, 8.5]}


def template_layout(*, name: str, skus: Sequence[str]) -> dict[str, Any]:
    """The layout of template `name` (a key of TEMPLATES) with `skus` in its bins, in order."""
    if name not in TEMPLATES:
        raise ValueError(f"No layout template {name!r}: one of {', '.join(TEMPLATES)}.")
    document = sample_layout(skus=skus)
    zones = TEMPLATES[name][1]
    if zones is None:
        return document
    fixtures = [f for f in document["fixtures"] if f["zone"] in zones]
    kept = {f["code"] for f in fixtures}
    devices = []
    for device in document["devices"]:
        if device["kind"] == "camera":
            covers = [zone for zone in device["covers"] if zone in zones]
            if covers:
                devices.append({**device, "covers": covers})
        elif device["kind"] == "weight_sensor":
            if device["fixture"] in kept:
                devices.append(device)
        elif device["kind"] == "gate":
            devices.append({**device, "position": AISLE_GATES[device["code"]]})
        else:
            devices.append(device)
    return {
        "floor": dict(AISLE_FLOOR),
        "zones": [z for z in document["zones"] if z["code"] in zones],
        "fixtures": fixtures,
        "devices": devices,
    }
