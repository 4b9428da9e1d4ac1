"""The layout document (docs/layout.md): validation, as a pure function over plain data.

A document is checked whole and every problem is reported with its path
(`fixtures[2].bins[0].sku`) so that a store manager can fix them all in one go.
"""

from __future__ import annotations

import math
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any, TypeGuard

DEVICE_KINDS = ("camera", "weight_sensor", "gate", "staff_device")
DEFAULT_FIXTURE_KIND = "shelf"
FIXTURE_KIND_MAX = 32
CODE_MAX = 64
MAX_FLOOR_M = 1000.0


@dataclass(frozen=True)
class LayoutProblem:
    path: str
    message: str


def _is_number(value: Any) -> TypeGuard[float]:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _point(value: Any, size: int) -> list[float] | None:
    if isinstance(value, list) and len(value) == size and all(_is_number(v) for v in value):
        return [float(v) for v in value]
    return None


def _polygon_area(points: list[list[float]]) -> float:
    total = 0.0
    for (x1, y1), (x2, y2) in zip(points, points[1:] + points[:1], strict=True):
        total += x1 * y2 - x2 * y1
    return abs(total) / 2


class _Checker:
    def __init__(self, known_skus: Collection[str]) -> None:
        self.known_skus = known_skus
        self.problems: list[LayoutProblem] = []
        self.codes: dict[str, str] = {}
        self.width = self.depth = 0.0

    def problem(self, path: str, message: str) -> None:
        self.problems.append(LayoutProblem(path, message))

    def code(self, item: dict[str, Any], path: str) -> str | None:
        code = item.get("code")
        if not isinstance(code, str) or not code.strip() or len(code) > CODE_MAX:
            self.problem(f"{path}.code", f"a code is required: a string of 1 to {CODE_MAX} characters")
            return None
        if code in self.codes:
            self.problem(f"{path}.code", f"code {code!r} is already used by {self.codes[code]}")
            return None
        self.codes[code] = path
        return code

    def inside_floor(self, x: float, y: float) -> bool:
        return 0 <= x <= self.width and 0 <= y <= self.depth

    def items(
        self, container: dict[str, Any], key: str, *, prefix: str = "", required: bool = True
    ) -> list[tuple[str, dict[str, Any]]]:
        """The objects of list `key`, each with its path; anything else is a problem."""
        value = container.get(key, None if required else [])
        path = f"{prefix}{key}"
        if not isinstance(value, list):
            self.problem(path, "must be a list")
            return []
        found = []
        for index, item in enumerate(value):
            if isinstance(item, dict):
                found.append((f"{path}[{index}]", item))
            else:
                self.problem(f"{path}[{index}]", "must be an object")
        return found

    def floor(self, document: dict[str, Any]) -> None:
        floor = document.get("floor")
        if not isinstance(floor, dict):
            self.problem("floor", 'required: {"width_m": …, "depth_m": …}')
            return
        for key in ("width_m", "depth_m"):
            value = floor.get(key)
            if not _is_number(value) or not 0 < value <= MAX_FLOOR_M:
                self.problem(f"floor.{key}", f"must be a number of metres above 0 and at most {MAX_FLOOR_M:g}")
        width, depth = floor.get("width_m"), floor.get("depth_m")
        if _is_number(width) and _is_number(depth):
            self.width, self.depth = float(width), float(depth)

    def zone(self, path: str, zone: dict[str, Any]) -> str | None:
        code = self.code(zone, path)
        name = zone.get("name")
        if not isinstance(name, str) or not name.strip() or len(name) > 200:
            self.problem(f"{path}.name", "a name of 1 to 200 characters is required")
        polygon = zone.get("polygon")
        points = [_point(p, 2) for p in polygon] if isinstance(polygon, list) else []
        if not isinstance(polygon, list) or len(polygon) < 3 or any(p is None for p in points):
            self.problem(f"{path}.polygon", "must be a list of at least 3 [x, y] points in metres")
            return code
        corners = [p for p in points if p is not None]
        outside = [i for i, (x, y) in enumerate(corners) if not self.inside_floor(x, y)]
        if outside and self.width:
            self.problem(f"{path}.polygon[{outside[0]}]", "point lies outside the floor")
        if _polygon_area(corners) <= 0:
            self.problem(f"{path}.polygon", "the polygon has no area")
        return code

    def fixture(self, path: str, fixture: dict[str, Any], zones: set[str]) -> str | None:
        code = self.code(fixture, path)
        zone = fixture.get("zone")
        if zone not in zones:
            self.problem(f"{path}.zone", f"zone {zone!r} is not a zone of this layout")
        kind = fixture.get("kind", DEFAULT_FIXTURE_KIND)
        if not isinstance(kind, str) or not kind.strip() or len(kind) > FIXTURE_KIND_MAX:
            self.problem(
                f"{path}.kind", f"a kind of 1 to {FIXTURE_KIND_MAX} characters is required (shelf, fridge, crate, …)"
            )
        position, size = _point(fixture.get("position"), 2), _point(fixture.get("size"), 2)
        if position is None:
            self.problem(f"{path}.position", "must be [x, y] in metres")
        if size is None or min(size) <= 0:
            self.problem(f"{path}.size", "must be [width, depth] in metres, both above 0")
        if position is not None and size is not None and self.width:
            x, y = position
            if not (self.inside_floor(x, y) and self.inside_floor(x + size[0], y + size[1])):
                self.problem(f"{path}.position", "the fixture does not fit on the floor")
        return code

    def bins(self, path: str, fixture: dict[str, Any], sensors: dict[str, tuple[str, str] | None]) -> None:
        """Check a fixture's bins; `sensors` maps each weight sensor to the (bin, fixture) above it, once."""
        for bin_path, item in self.items(fixture, "bins", prefix=f"{path}.", required=False):
            code = self.code(item, bin_path)
            sku = item.get("sku")
            if not isinstance(sku, str) or not sku:
                self.problem(f"{bin_path}.sku", "a sku is required")
            elif sku not in self.known_skus:
                self.problem(f"{bin_path}.sku", f"sku {sku!r} is not an active product of the catalog")
            capacity = item.get("capacity")
            if not isinstance(capacity, int) or isinstance(capacity, bool) or not 1 <= capacity <= 100_000:
                self.problem(f"{bin_path}.capacity", "must be a whole number of items from 1 to 100000")
            sensor = item.get("sensor")
            if sensor is None:
                continue
            if sensor not in sensors:
                self.problem(f"{bin_path}.sensor", f"sensor {sensor!r} is not a weight_sensor device of this layout")
            elif (taken := sensors[sensor]) is not None:
                self.problem(f"{bin_path}.sensor", f"sensor {sensor!r} is already under bin {taken[0]!r}")
            else:
                sensors[sensor] = (code or "?", str(fixture.get("code")))

    def device(self, path: str, device: dict[str, Any], zones: set[str], fixtures: set[str]) -> None:
        self.code(device, path)
        kind = device.get("kind")
        if kind not in DEVICE_KINDS:
            self.problem(f"{path}.kind", f"must be one of {', '.join(DEVICE_KINDS)}")
            return
        position = device.get("position")
        if kind == "camera":
            point = _point(position, 3)
            if point is None or point[2] <= 0:
                self.problem(f"{path}.position", "a camera needs [x, y, height] in metres, height above 0")
            elif self.width and not self.inside_floor(point[0], point[1]):
                self.problem(f"{path}.position", "the camera lies outside the floor")
            covers = device.get("covers")
            if not isinstance(covers, list) or not covers:
                self.problem(f"{path}.covers", "a camera must cover at least one zone")
            else:
                for index, zone in enumerate(covers):
                    if zone not in zones:
                        self.problem(f"{path}.covers[{index}]", f"zone {zone!r} is not a zone of this layout")
        elif position is not None:
            point = _point(position, 2) or _point(position, 3)
            if point is None:
                self.problem(f"{path}.position", "must be [x, y] in metres")
            elif self.width and not self.inside_floor(point[0], point[1]):
                self.problem(f"{path}.position", "the device lies outside the floor")
        if kind == "weight_sensor":
            fixture = device.get("fixture")
            if fixture not in fixtures:
                self.problem(f"{path}.fixture", f"fixture {fixture!r} is not a fixture of this layout")


def validate_layout(document: Any, *, known_skus: Collection[str]) -> list[LayoutProblem]:
    """Every problem of a layout document; an empty list means it can be stored."""
    if not isinstance(document, dict):
        return [LayoutProblem("", "the layout must be a JSON object")]
    check = _Checker(known_skus)
    check.floor(document)
    zones = {code for path, zone in check.items(document, "zones") if (code := check.zone(path, zone))}
    fixtures = check.items(document, "fixtures")
    fixture_codes = {code for path, fixture in fixtures if (code := check.fixture(path, fixture, zones))}
    devices = check.items(document, "devices")
    for path, device in devices:
        check.device(path, device, zones, fixture_codes)
    sensors: dict[str, tuple[str, str] | None] = {
        d["code"]: None for _, d in devices if d.get("kind") == "weight_sensor" and isinstance(d.get("code"), str)
    }
    for path, fixture in fixtures:
        check.bins(path, fixture, sensors)
    for path, device in devices:
        above = sensors.get(str(device.get("code"))) if device.get("kind") == "weight_sensor" else None
        if above is not None and device.get("fixture") in fixture_codes and device.get("fixture") != above[1]:
            check.problem(f"{path}.fixture", f"the sensor is under bin {above[0]!r}, which is on fixture {above[1]!r}")
    return check.problems
