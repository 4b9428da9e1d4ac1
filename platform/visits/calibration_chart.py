"""A store's calibration as a picture: one reliability chart per kind of evidence, as an SVG.

Each chart reads left to right as the camera grows surer of its pick (its margin: the top pick's
confidence minus the runner-up's) and bottom to top as the pick is more often right. The curve
learnt in the store is solid, the starting point every store has before it learns is dashed, and
the labelled examples it learnt from are dots at the share that were right, sized by how many.
A green line marks how sure a pick must be to be charged on its own within the store's risk.
Charts sit three to a row. A pure function of the calibrations, like `stores.floor_plan`; every
value drawn is escaped.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from html import escape
from typing import Any

from core.formatting import format_share
from visits.calibration import BINS, KIND_TITLES, Calibration, Curve, Evidence

WIDTH = 960
COLUMNS = 3
PANEL_WIDTH = 300
SIDE = 30
PLOT_LEFT = 52
PLOT_WIDTH = 228
PLOT_TOP = 64
PLOT_HEIGHT = 220
ROW_HEIGHT = PLOT_TOP + PLOT_HEIGHT + 56
LEGEND_ROW = 24
LEARNT_COLOUR = "#4f46e5"
PRIOR_COLOUR = "#64748b"
LIMIT_COLOUR = "#16a34a"
GRID_COLOUR = "#e2e8f0"
TEXT_COLOUR = "#0f172a"
MUTED_COLOUR = "#475569"
TICKS = (0.0, 0.25, 0.5, 0.75, 1.0)


class _Svg:
    def __init__(self) -> None:
        self.parts: list[str] = []

    def add(self, tag: str, attrs: Mapping[str, Any], text: str = "", title: str = "") -> None:
        rendered = " ".join(f'{k.replace("_", "-")}="{escape(str(v))}"' for k, v in attrs.items())
        inner = (f"<title>{escape(title)}</title>" if title else "") + escape(text)
        self.parts.append(f"<{tag} {rendered}>{inner}</{tag}>")


@dataclass(frozen=True)
class _Frame:
    """Where one chart sits: its column and row in the grid."""

    column: int
    row: int

    @property
    def top(self) -> float:
        return self.row * ROW_HEIGHT

    def x(self, margin: float) -> float:
        return round(SIDE + self.column * PANEL_WIDTH + PLOT_LEFT + margin * PLOT_WIDTH, 1)

    def y(self, probability: float) -> float:
        return round(self.top + PLOT_TOP + (1.0 - probability) * PLOT_HEIGHT, 1)


def _curve_points(curve: Curve) -> list[tuple[float, float]]:
    """The curve across the whole margin axis: its knots, extended flat to 0 and 1 as `Curve` reads it."""
    inside = [x for x, _ in curve.points if 0.0 < x < 1.0]
    return [(x, min(1.0, max(0.0, curve(x)))) for x in [0.0, *inside, 1.0]]


def _polyline(svg: _Svg, frame: _Frame, curve: Curve, **style: Any) -> None:
    points = " ".join(f"{frame.x(x)},{frame.y(y)}" for x, y in _curve_points(curve))
    svg.add("polyline", {"points": points, "fill": "none", "stroke_linejoin": "round", **style})


def _axes(svg: _Svg, frame: _Frame) -> None:
    left, right, top = frame.x(0.0), frame.x(1.0), frame.y(1.0)
    svg.add("rect", {"x": left, "y": top, "width": PLOT_WIDTH, "height": PLOT_HEIGHT, "fill": "#ffffff"})
    for tick in TICKS:
        svg.add("line", {"x1": left, "x2": right, "y1": frame.y(tick), "y2": frame.y(tick), "stroke": GRID_COLOUR})
        svg.add(
            "line",
            {"x1": frame.x(tick), "x2": frame.x(tick), "y1": frame.y(0), "y2": top, "stroke": GRID_COLOUR},
        )
        svg.add(
            "text",
            {"x": left - 6, "y": frame.y(tick) + 4, "font_size": 11, "text_anchor": "end", "fill": MUTED_COLOUR},
            text=format_share(tick),
        )
        svg.add(
            "text",
            {"x": frame.x(tick), "y": frame.y(0) + 16, "font_size": 11, "text_anchor": "middle", "fill": MUTED_COLOUR},
            text=f"{tick:g}",
        )
    svg.add(
        "rect",
        {"x": left, "y": top, "width": PLOT_WIDTH, "height": PLOT_HEIGHT, "fill": "none", "stroke": "#94a3b8"},
    )


def _examples(svg: _Svg, frame: _Frame, rows: Sequence[tuple[float, int, int]], most: int) -> None:
    for margin, count, right in rows:
        radius = round(3.0 + 8.0 * math.sqrt(count / most), 1)
        low, high = max(0.0, margin - 0.5 / BINS), min(1.0, margin + 0.5 / BINS)
        svg.add(
            "circle",
            {
                "cx": frame.x(margin),
                "cy": frame.y(right / count),
                "r": radius,
                "fill": LEARNT_COLOUR,
                "fill_opacity": 0.28,
                "stroke": LEARNT_COLOUR,
                "stroke_width": 1,
                "class": "example",
                "data_count": count,
            },
            title=f"{count} example{'s' if count != 1 else ''} with a margin of {low:.2f}–{high:.2f}: "
            f"{right} right ({format_share(right / count)})",
        )


def _panel(
    svg: _Svg,
    frame: _Frame,
    kind: Evidence,
    learnt: Calibration,
    prior: Calibration,
    limit: float | None,
    most: int,
    taught: int,
) -> None:
    title, subtitle = KIND_TITLES.get(kind, (str(kind).replace("_", " ").capitalize(), ""))
    rows = learnt.support.get(kind, ())
    examples = sum(count for _, count, _ in rows)
    left, top = frame.x(0.0), frame.top
    svg.add("text", {"x": left, "y": top + 22, "font_size": 14, "font_weight": 600, "fill": TEXT_COLOUR}, text=title)
    svg.add("text", {"x": left, "y": top + 39, "font_size": 11, "fill": MUTED_COLOUR}, text=subtitle)
    if examples:
        count = f"{examples:,} labelled example{'s' if examples != 1 else ''}"
    else:
        count = f"taught by its scales: {taught:,} picks" if taught else "no examples yet"
    svg.add("text", {"x": left, "y": top + 54, "font_size": 11, "font_weight": 600, "fill": MUTED_COLOUR}, text=count)
    _axes(svg, frame)
    if limit is not None:
        svg.add(
            "line",
            {
                "x1": left,
                "x2": frame.x(1.0),
                "y1": frame.y(1.0 - limit),
                "y2": frame.y(1.0 - limit),
                "stroke": LIMIT_COLOUR,
                "stroke_width": 1.5,
                "class": "charge-limit",
            },
            title=f"Picks at least {format_share(1.0 - limit)} sure are charged on their own without a person",
        )
    prior_style = {"class": "curve-prior", "data_kind": str(kind), "stroke_dasharray": "6 4"}
    _polyline(svg, frame, prior.curves[kind], stroke=PRIOR_COLOUR, stroke_width=1.75, **prior_style)
    _examples(svg, frame, rows, most)
    learnt_style = {"class": "curve-learnt", "data_kind": str(kind)}
    _polyline(svg, frame, learnt.curves[kind], stroke=LEARNT_COLOUR, stroke_width=2.75, **learnt_style)
    if not examples and not taught:
        svg.add(
            "text",
            {"x": frame.x(0.5), "y": frame.y(0.1), "font_size": 11, "text_anchor": "middle", "fill": MUTED_COLOUR},
            text="nothing learnt here yet: the starting point holds",
        )


def _row_captions(svg: _Svg, row: int) -> None:
    top = row * ROW_HEIGHT
    svg.add(
        "text",
        {"x": WIDTH / 2, "y": top + PLOT_TOP + PLOT_HEIGHT + 38, "font_size": 12, "text_anchor": "middle"},
        text="→ how sure the camera was: its top pick's confidence minus the runner-up's (its margin)",
    )
    middle = top + PLOT_TOP + PLOT_HEIGHT / 2
    svg.add(
        "text",
        {"x": 14, "y": middle, "font_size": 12, "text_anchor": "middle", "transform": f"rotate(-90 14 {middle})"},
        text="chance its pick is right →",
    )


def _legend(svg: _Svg, top: float, limit: float | None) -> None:
    rows: list[tuple[str, dict[str, Any], str]] = [
        ("line", {"stroke": LEARNT_COLOUR, "stroke_width": 2.75}, "learnt from this store's own visits"),
        (
            "line",
            {"stroke": PRIOR_COLOUR, "stroke_width": 1.75, "stroke_dasharray": "6 4"},
            "where every store starts, before it learns",
        ),
        ("dot", {}, "labelled examples: bigger = more, higher = more often right"),
    ]
    if limit is not None:
        label = f"sure enough to charge one item alone (≥ {format_share(1.0 - limit)})"
        rows.append(("line", {"stroke": LIMIT_COLOUR, "stroke_width": 1.5}, label))
    for index, (kind, style, label) in enumerate(rows):
        x = SIDE + (index % 2) * (WIDTH - 2 * SIDE) / 2
        y = top + (index // 2) * LEGEND_ROW
        if kind == "line":
            svg.add("line", {"x1": x, "x2": x + 34, "y1": y, "y2": y, **style})
        else:
            for offset, radius in ((6, 3.5), (20, 6.5)):
                dot = {"cx": x + offset, "cy": y, "r": radius, "fill": LEARNT_COLOUR, "fill_opacity": 0.28}
                svg.add("circle", {**dot, "stroke": LEARNT_COLOUR})
        svg.add("text", {"x": x + 44, "y": y + 4, "font_size": 12}, text=label)


def render_reliability(
    *,
    learnt: Calibration,
    prior: Calibration,
    charge_limit: float | None,
    taught_from: Mapping[Evidence, int] | None = None,
) -> str:
    """The calibration `learnt` beside `prior`, one chart per kind of evidence; `charge_limit` (the highest visit
    risk charged without a person) draws the line above which a single pick is charged on its own. `taught_from`:
    for a store that has learnt nothing yet, the picks its scales weighed that taught a kind's curve."""
    svg = _Svg()
    most = max((count for rows in learnt.support.values() for _, count, _ in rows), default=1)
    kinds = list(Evidence)
    rows = math.ceil(len(kinds) / COLUMNS)
    for index, kind in enumerate(kinds):
        taught = (taught_from or {}).get(kind, 0)
        _panel(svg, _Frame(index % COLUMNS, index // COLUMNS), kind, learnt, prior, charge_limit, most, taught)
    for row in range(rows):
        _row_captions(svg, row)
    legend_top = rows * ROW_HEIGHT + 8
    _legend(svg, legend_top, charge_limit)
    height = legend_top + 2 * LEGEND_ROW + 8
    label = "Reliability of the store's cameras: the chance a pick is right against how sure the camera was"
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height}" width="100%" role="img" '
        f'aria-label="{escape(label)}" font-family="system-ui, -apple-system, Segoe UI, Roboto, sans-serif" '
        f'fill="{TEXT_COLOUR}" class="calibration-chart">{"".join(svg.parts)}</svg>'
    )
