"""The floor plan of a layout as an SVG picture: a pure function of the layout document.

Zones are tinted areas, fixtures are drawn with their bins labelled by product (the kinds the
plan knows — fridges, freezers, crates, … — in their own colours, any other kind as a plain
fixture), cameras with their coverage, weight sensors under their bins, gates on the floor,
staff devices where they are placed; every device is coloured by its health. Hovering any
shape shows its details.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from html import escape
from typing import Any

# Device health (stores.health) as colours and words; "unknown" is a status not reported (a visit's past).
HEALTH_COLOURS = {
    "online": "#16a34a",
    "degraded": "#d97706",
    "offline": "#dc2626",
    "silent": "#7c3aed",
    "never": "#9ca3af",
    "unknown": "#9ca3af",
}
HEALTH_WORDS = {"never": "not heard from yet", "unknown": "not reported"}
LEGEND = ["online", "degraded", "offline", "silent", "never"]


def _health_words(status: str) -> str:
    return HEALTH_WORDS.get(status, status)


ZONE_FILLS = ("#eff6ff", "#f0fdf4", "#fefce8", "#fdf2f8", "#f5f3ff", "#ecfeff", "#fff7ed")
CANVAS_WIDTH_PX = 960
MARGIN_PX = 24
LEGEND_PX = 28
CAMERA_REACH_PER_METRE_OF_HEIGHT = 0.9
# Fixture kinds the plan draws in their own colours (fill, outline, dashes); any other kind is drawn as GENERIC.
FIXTURE_LOOKS = {
    "shelf": ("#e2e8f0", "#475569", ""),
    "rack": ("#e2e8f0", "#475569", ""),
    "display": ("#f1f5f9", "#475569", ""),
    "fridge": ("#dbeafe", "#1d4ed8", ""),
    "freezer": ("#e0f2fe", "#0369a1", ""),
    "crate": ("#fef3c7", "#b45309", "5 3"),
    "bin": ("#fef3c7", "#b45309", "5 3"),
    "endcap": ("#ede9fe", "#6d28d9", ""),
    "table": ("#ecfccb", "#4d7c0f", ""),
    "counter": ("#fce7f3", "#be185d", ""),
}
GENERIC_FIXTURE_LOOK = ("#f8fafc", "#64748b", "2 2")
# A heat map's colours, from a fixture with nothing (NO_HEAT) through the least to the most.
NO_HEAT = "#f1f5f9"
HEAT_STOPS = ((254, 243, 199), (251, 146, 60), (185, 28, 28))
LOW_STOCK = "#dc2626"


@dataclass(frozen=True)
class FixtureHeat:
    """How much happened at a fixture, as a share of the busiest one (0 to 1), with its figure and a note."""

    share: float
    label: str
    note: str = ""


@dataclass(frozen=True)
class _BinNotes:
    """What a bin's title and outline tell: its product's name, its scale's health, whether it is one the page
    points at (`highlighted`), and who took from it."""

    product_names: Mapping[str, str]
    sensor_health: Mapping[str, str]
    highlighted: Collection[str]
    takers: Mapping[str, Sequence[str]]


@dataclass(frozen=True)
class _Overlay:
    """What a heat map adds to the plan: fixtures' heat, and each bin's units now and whether it is low."""

    heat: Mapping[str, FixtureHeat] = field(default_factory=dict)
    words: str = ""
    bin_stock: Mapping[str, tuple[int | None, bool]] = field(default_factory=dict)

    @property
    def on(self) -> bool:
        return bool(self.words)


def heat_colour(share: float) -> str:
    """The colour of a share from 0 (pale yellow) to 1 (deep red), through orange."""
    share = min(1.0, max(0.0, share))
    low, high = (HEAT_STOPS[0], HEAT_STOPS[1]) if share <= 0.5 else (HEAT_STOPS[1], HEAT_STOPS[2])
    mix = share * 2 if share <= 0.5 else share * 2 - 1
    return "#" + "".join(f"{round(a + (b - a) * mix):02x}" for a, b in zip(low, high, strict=True))


def _num(value: Any, default: float = 0.0) -> float:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else default


class _Canvas:
    def __init__(self, width_m: float, depth_m: float) -> None:
        self.scale = (CANVAS_WIDTH_PX - 2 * MARGIN_PX) / max(width_m, 0.1)
        self.width_m, self.depth_m = width_m, depth_m
        self.parts: list[str] = []

    def x(self, metres: float) -> float:
        return round(MARGIN_PX + metres * self.scale, 1)

    def y(self, metres: float) -> float:
        return round(MARGIN_PX + metres * self.scale, 1)

    def length(self, metres: float) -> float:
        return round(metres * self.scale, 1)

    @property
    def height_px(self) -> float:
        return self.y(self.depth_m) + MARGIN_PX + LEGEND_PX

    def shape(self, tag: str, attrs: Mapping[str, Any], title: str = "", text: str = "") -> None:
        if tag == "text":
            attrs = {**attrs, "pointer_events": "none"}  # labels never hide the shape under them from the pointer
        rendered = " ".join(f'{k.replace("_", "-")}="{escape(str(v))}"' for k, v in attrs.items())
        inner = (f"<title>{escape(title)}</title>" if title else "") + escape(text)
        self.parts.append(f"<{tag} {rendered}>{inner}</{tag}>")


def _zones(canvas: _Canvas, zones: list[dict[str, Any]]) -> None:
    for index, zone in enumerate(zones):
        points = [p for p in zone.get("polygon") or [] if isinstance(p, list) and len(p) == 2]
        if len(points) < 3:
            continue
        coords = " ".join(f"{canvas.x(_num(x))},{canvas.y(_num(y))}" for x, y in points)
        canvas.shape(
            "polygon",
            {
                "points": coords,
                "fill": ZONE_FILLS[index % len(ZONE_FILLS)],
                "stroke": "#93c5fd",
                "stroke_width": 1,
                "class": "zone",
                "data_code": zone.get("code", ""),
            },
            title=f"Zone {zone.get('code')}: {zone.get('name')}",
        )
        left = min(_num(x) for x, _ in points)
        bottom = max(_num(y) for _, y in points)
        canvas.shape(
            "text",
            {
                "x": canvas.x(left) + 6,
                "y": canvas.y(bottom) - 6,
                "font_size": 13,
                "font_weight": 600,
                "fill": "#1e3a8a",
            },
            text=str(zone.get("name") or zone.get("code")),
        )


def _bins(canvas: _Canvas, fixture: dict[str, Any], notes: _BinNotes, overlay: _Overlay) -> None:
    bins = [b for b in fixture.get("bins") or [] if isinstance(b, dict)]
    if not bins:
        return
    x, y = (_num(v) for v in fixture["position"])
    width, depth = (_num(v) for v in fixture["size"])
    horizontal = width >= depth
    step = (width if horizontal else depth) / len(bins)
    for index, item in enumerate(bins):
        bx, by = (x + index * step, y) if horizontal else (x, y + index * step)
        bw, bd = (step, depth) if horizontal else (width, step)
        sku = str(item.get("sku", ""))
        is_hot = item.get("code") in notes.highlighted
        title = f"Bin {item.get('code')}: {sku} {notes.product_names.get(sku, '')} · capacity {item.get('capacity')}"
        if item.get("sensor"):
            title += f" · sensor {item['sensor']} ({_health_words(notes.sensor_health.get(item['sensor'], 'unknown'))})"
        took = notes.takers.get(str(item.get("code", "")), ())
        if took:
            title += f" · taken by {', '.join(took)}"
        units, low = overlay.bin_stock.get(str(item.get("code")), (None, False))
        if overlay.on:
            title += " · not counted yet" if units is None else f" · {units} on the shelf" + (" (low)" if low else "")
        fill, stroke, stroke_width = ("#fde68a", "#dc2626", 2.5) if is_hot else ("#ffffff", "#cbd5e1", 0.75)
        if overlay.on:  # the fixture's heat shows through; a low bin is outlined in red
            fill, stroke, stroke_width = ("none", LOW_STOCK, 2.5) if low else ("none", "#64748b", 0.75)
        canvas.shape(
            "rect",
            {
                "x": canvas.x(bx),
                "y": canvas.y(by),
                "width": canvas.length(bw),
                "height": canvas.length(bd),
                "fill": fill,
                "stroke": stroke,
                "stroke_width": stroke_width,
                "class": "bin low" if overlay.on and low else "bin",
                "data_code": item.get("code", ""),
            },
            title=title,
        )
        if overlay.on and units is not None:
            _stock_badge(canvas, bx, by, bw, bd, horizontal=horizontal, units=units, low=low)
        font, rotated = _label_fit(canvas.length(bw), canvas.length(bd), sku)
        cx, cy = canvas.x(bx + bw / 2), canvas.y(by + bd / 2)
        canvas.shape(
            "text",
            {
                "x": cx,
                "y": round(cy + font / 3, 1),
                "font_size": font,
                "text_anchor": "middle",
                "fill": "#334155",
                # A white halo: the heat map paints fixtures up to deep red, under which dark text cannot be read.
                **({"stroke": "#ffffff", "stroke_width": 2, "paint_order": "stroke"} if overlay.on else {}),
                "transform": f"rotate(-90 {cx} {cy})" if rotated else "",
                "class": "bin-label",
            },
            text=sku,
        )
        if took:
            canvas.shape(
                "text",
                {
                    "x": cx,
                    "y": canvas.y(by + bd) + 10,
                    "font_size": 9,
                    "text_anchor": "middle",
                    "fill": "#b91c1c",
                    "stroke": "#ffffff",
                    "stroke_width": 3,
                    "paint_order": "stroke",
                    "font_weight": 700,
                    "class": "taker",
                },
                text=", ".join(took),
            )
        if item.get("sensor") and not overlay.on:
            health = notes.sensor_health.get(item["sensor"], "unknown")
            canvas.shape(
                "rect",
                {
                    "x": canvas.x(bx + bw) - 7,
                    "y": canvas.y(by + bd) - 7,
                    "width": 5,
                    "height": 5,
                    "fill": HEALTH_COLOURS.get(health, HEALTH_COLOURS["unknown"]),
                    "class": "sensor",
                },
                title=f"Weight sensor {item['sensor']}: {_health_words(health)}",
            )


def _label_fit(width_px: float, depth_px: float, text: str) -> tuple[float, bool]:
    """The font size of a bin's label and whether it runs up the bin: whichever way the whole label fits larger,
    never more than 10 px nor less than 5."""
    per_px = 0.62 * max(1, len(text))  # a label's length per pixel of font
    across, up = (width_px - 3) / per_px, (depth_px - 3) / per_px
    rotated = up > across
    limit = min(10.0, (width_px if rotated else depth_px) * 0.8)
    return round(max(5.0, min(limit, up if rotated else across)), 1), rotated


BADGE_HEIGHT_PX = 11


def _stock_badge(
    canvas: _Canvas, bx: float, by: float, bw: float, bd: float, *, horizontal: bool, units: int, low: bool
) -> None:
    """The units on a bin, beside it outside its fixture — below a bin of a fixture running across the floor, right
    of one running down it — so that it hides neither the bin's label nor its neighbours': white on red when low."""
    text = str(units)
    width = 5 + 5.5 * len(text)
    if horizontal:
        x, y = canvas.x(bx + bw / 2) - width / 2, canvas.y(by + bd) + 2
    else:
        x, y = canvas.x(bx + bw) + 2, canvas.y(by + bd / 2) - BADGE_HEIGHT_PX / 2
    canvas.shape(
        "rect",
        {
            "x": round(x, 1),
            "y": round(y, 1),
            "width": round(width, 1),
            "height": BADGE_HEIGHT_PX,
            "rx": 2,
            "fill": LOW_STOCK if low else "#ffffff",
            "stroke": LOW_STOCK if low else "#64748b",
            "stroke_width": 0.75,
            "class": "stock-badge",
            "pointer_events": "none",
        },
    )
    canvas.shape(
        "text",
        {
            "x": round(x + width / 2, 1),
            "y": round(y + 8.5, 1),
            "font_size": 8.5,
            "font_weight": 700,
            "text_anchor": "middle",
            "fill": "#ffffff" if low else "#0f172a",
        },
        text=text,
    )


def _fixtures(canvas: _Canvas, fixtures: list[dict[str, Any]], notes: _BinNotes, overlay: _Overlay) -> None:
    for fixture in fixtures:
        position, size = fixture.get("position"), fixture.get("size")
        if not (isinstance(position, list) and isinstance(size, list) and len(position) == 2 and len(size) == 2):
            continue
        x, y = (_num(v) for v in position)
        width, depth = (_num(v) for v in size)
        kind = str(fixture.get("kind", "shelf"))
        known = kind.strip().lower() in FIXTURE_LOOKS
        fill, outline, dashes = FIXTURE_LOOKS.get(kind.strip().lower(), GENERIC_FIXTURE_LOOK)
        title = f"Fixture {fixture.get('code')} ({kind}) in zone {fixture.get('zone')}"
        heat = overlay.heat.get(str(fixture.get("code")))
        if overlay.on:
            fill = heat_colour(heat.share) if heat and heat.share > 0 else NO_HEAT
            title += f": {heat.label if heat else 0} {overlay.words}" + (
                f" · {heat.note}" if heat and heat.note else ""
            )
        canvas.shape(
            "rect",
            {
                "x": canvas.x(x),
                "y": canvas.y(y),
                "width": canvas.length(width),
                "height": canvas.length(depth),
                "fill": fill,
                "stroke": outline,
                "stroke_width": 1.5,
                "stroke_dasharray": dashes or "none",
                "rx": 2,
                "class": "fixture" if known else "fixture other-kind",
                "data_code": fixture.get("code", ""),
                "data_kind": kind,
                **({"data_heat": heat.label if heat else "0"} if overlay.on else {}),
            },
            title=title,
        )
        _bins(canvas, fixture, notes, overlay)
        label = str(fixture.get("code", "")) + ("" if kind == "shelf" else f" · {kind}")
        if overlay.on:
            label += f" · {heat.label if heat else 0} {overlay.words}"
        canvas.shape(
            "text",
            {
                "x": canvas.x(x),
                "y": canvas.y(y) - 3,
                "font_size": 10,
                "font_weight": 600,
                "fill": "#0f172a",
                "stroke": "#ffffff",
                "stroke_width": 3,
                "paint_order": "stroke",
            },
            text=label,
        )


def _devices(canvas: _Canvas, devices: list[dict[str, Any]], health: Mapping[str, str]) -> None:
    gates = [d for d in devices if d.get("kind") == "gate"]
    for device in devices:
        kind, code = device.get("kind"), str(device.get("code", ""))
        status = health.get(code, "unknown")
        colour = HEALTH_COLOURS.get(status, HEALTH_COLOURS["unknown"])
        position = device.get("position") if isinstance(device.get("position"), list) else None
        if kind == "camera" and position and len(position) >= 2:
            cx, cy = canvas.x(_num(position[0])), canvas.y(_num(position[1]))
            reach = canvas.length(
                _num(position[2] if len(position) > 2 else 3.0, 3.0) * CAMERA_REACH_PER_METRE_OF_HEIGHT
            )
            covers = ", ".join(str(z) for z in device.get("covers") or [])
            canvas.shape(
                "circle",
                {
                    "cx": cx,
                    "cy": cy,
                    "r": reach,
                    "clip_path": "url(#floor-clip)",
                    "pointer_events": "none",
                    "fill": colour,
                    "fill_opacity": 0.07,
                    "stroke": colour,
                    "stroke_dasharray": "4 3",
                    "stroke_width": 1,
                    "class": "coverage",
                },
                title=f"Camera {code} covers {covers}",
            )
            canvas.shape(
                "circle",
                {
                    "cx": cx,
                    "cy": cy,
                    "r": 6,
                    "fill": colour,
                    "stroke": "#ffffff",
                    "stroke_width": 1.5,
                    "class": f"device camera {status}",
                    "data_code": code,
                },
                title=f"Camera {code}: {_health_words(status)} · covers {covers}",
            )
        elif kind == "gate":
            if position and len(position) >= 2:
                gx, gy = _num(position[0]), _num(position[1])
            else:
                gx, gy = canvas.width_m * (gates.index(device) + 1) / (len(gates) + 1), canvas.depth_m
            canvas.shape(
                "rect",
                {
                    "x": canvas.x(gx) - 14,
                    "y": canvas.y(gy) - 5,
                    "width": 28,
                    "height": 10,
                    "rx": 3,
                    "fill": colour,
                    "class": f"device gate {status}",
                    "data_code": code,
                },
                title=f"Gate {code}: {_health_words(status)}",
            )
            canvas.shape(
                "text",
                {
                    "x": canvas.x(gx),
                    "y": canvas.y(gy) + 18,
                    "font_size": 10,
                    "text_anchor": "middle",
                    "fill": "#0f172a",
                },
                text=code,
            )
        elif kind == "staff_device" and position and len(position) >= 2:
            sx, sy = canvas.x(_num(position[0])), canvas.y(_num(position[1]))
            canvas.shape(
                "polygon",
                {
                    "points": f"{sx},{sy - 7} {sx + 7},{sy} {sx},{sy + 7} {sx - 7},{sy}",
                    "fill": colour,
                    "stroke": "#ffffff",
                    "stroke_width": 1.5,
                    "class": f"device staff_device {status}",
                    "data_code": code,
                },
                title=f"Staff device {code}: {_health_words(status)}",
            )


def _legend(canvas: _Canvas) -> None:
    y = canvas.y(canvas.depth_m) + MARGIN_PX + 6
    x = float(MARGIN_PX)
    for status in LEGEND:
        label = _health_words(status)
        canvas.shape("circle", {"cx": x + 5, "cy": y, "r": 5, "fill": HEALTH_COLOURS[status]})
        canvas.shape("text", {"x": x + 14, "y": y + 4, "font_size": 11, "fill": "#334155"}, text=label)
        x += 30 + 6.2 * len(label)
    canvas.shape(
        "text",
        {"x": x + 10, "y": y + 4, "font_size": 11, "fill": "#64748b"},
        text="● camera (dashed: coverage)   ▬ gate   ▪ weight sensor   ◆ staff device   hover for details",
    )


def render_floor_plan(
    document: Mapping[str, Any],
    *,
    device_health: Mapping[str, str] | None = None,
    product_names: Mapping[str, str] | None = None,
    highlighted_bins: Collection[str] = (),
    bin_takers: Mapping[str, Sequence[str]] | None = None,
    heat: Mapping[str, FixtureHeat] | None = None,
    heat_words: str = "",
    bin_stock: Mapping[str, tuple[int | None, bool]] | None = None,
) -> str:
    """An SVG picture of a (valid) layout document; `bin_takers` labels bins with who took from them (a group's
    members on a review page).

    With `heat_words` (what the heat measures, e.g. "picks") it is a heat map: each fixture coloured by its
    `heat` (fixture code → share of the busiest) and labelled with its figure, each bin showing its units from
    `bin_stock` (bin code → units or None when never counted, and whether it is low), low bins outlined in red.
    """
    overlay = _Overlay(heat or {}, heat_words, bin_stock or {})
    floor = document.get("floor") or {}
    canvas = _Canvas(_num(floor.get("width_m"), 10.0), _num(floor.get("depth_m"), 10.0))
    health = device_health or {}
    canvas.shape(
        "rect",
        {
            "x": canvas.x(0),
            "y": canvas.y(0),
            "width": canvas.length(canvas.width_m),
            "height": canvas.length(canvas.depth_m),
            "fill": "#ffffff",
            "stroke": "#0f172a",
            "stroke_width": 2,
        },
        title=f"Floor {canvas.width_m:g} m by {canvas.depth_m:g} m",
    )
    _zones(canvas, [z for z in document.get("zones") or [] if isinstance(z, dict)])
    notes = _BinNotes(product_names or {}, health, set(highlighted_bins), bin_takers or {})
    _fixtures(canvas, [f for f in document.get("fixtures") or [] if isinstance(f, dict)], notes, overlay)
    devices = [d for d in document.get("devices") or [] if isinstance(d, dict)]
    if overlay.on:  # a heat map shows the shelves: of the devices only the gates, and no health legend
        _devices(canvas, [d for d in devices if d.get("kind") == "gate"], health)
    else:
        _devices(canvas, devices, health)
        _legend(canvas)
    clip = (
        f'<defs><clipPath id="floor-clip"><rect x="{canvas.x(0)}" y="{canvas.y(0)}" '
        f'width="{canvas.length(canvas.width_m)}" height="{canvas.length(canvas.depth_m)}"/></clipPath></defs>'
    )
    body = clip + "".join(canvas.parts)
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {CANVAS_WIDTH_PX} {canvas.height_px}" '
        f'width="100%" role="img" aria-label="Store floor plan" font-family="system-ui, sans-serif">{body}</svg>'
    )
