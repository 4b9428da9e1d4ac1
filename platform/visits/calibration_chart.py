"""A store's calibration as a picture: one reliability chart per kind of evidence, as an SVG.

Each chart reads left to right as the camera grows surer of its pick (its margin: the top pick's
confidence minus the runner-up's) and bottom to top as the pick is more often right. The curve
learnt in the store is solid, the starting point every store has before it learns is dashed, and
the labelled examples it learnt from are dots at the share that were right, sized by how many.
A green line marks how sure a pick must be to be charged on its own within the store's risk.
A pure function of the calibrations, like `stores.floor_plan`; every value drawn is escaped.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

from core.dashboards import format_share
from visits.calibration import BINS, Calibration, Curve, Evidence

KIND_TITLES = {
    Evidence.WEIGHED_ALONE: ("Scale agrees, nobody else near", "a scale weighed it; nobody else in view"),
    Evidence.WEIGHED_CONTESTED: ("Scale agrees, others near", "a scale weighed it; others listed or close"),
    Evidence.CAMERA_ONLY: ("Camera alone", "no working scale: the camera says what and who"),
}
WIDTH = 960
PANEL = 300
SIDE = 30
PLOT_LEFT = 52
PLOT_WIDTH = 228
PLOT_TOP = 64
PLOT_HEIGHT = 220
LEARNT_COLOUR = "#4f46e5"
PRIOR_COLOUR = "#64748b"
LIMIT_COLOUR = "#16a34a"
GRID_COLOUR = "#e2e8f0"
TEXT_COLOUR = "#0f172a"
MUTED_COLOUR = "#475569"
TICKS = (0.0, 0.25, 0.5, 0.75, 1.0)
LEGEND_TOP = PLOT_TOP + PLOT_HEIGHT + 58
HEIGHT = LEGEND_TOP + 64


class _Svg:
    def __init__(self) -> None:
        self.parts: list[str] = []

    def add(self, tag: str, attrs: Mapping[str, Any], text: str = "", title: str = "") -> None:
        rendered = " ".join(f'{k.replace("_", "-")}="{escape(str(v))}"' for k, v in attrs.items())
        inner = (f"<title>{escape(title)}</title>" if title else "") + escape(text)
        self.parts.append(f"<{tag} {rendered}>{inner}</{tag}>")


def _x(panel: int, margin: float) -> float:
    return round(SIDE + panel * PANEL + PLOT_LEFT + margin * PLOT_WIDTH, 1)


def _y(probability: float) -> float:
    return round(PLOT_TOP + (1.0 - probability) * PLOT_HEIGHT, 1)


def _curve_points(curve: Curve) -> list[tuple[float, float]]:
    """The curve across the whole margin axis: its knots, extended flat to 0 and 1 as `Curve` reads it."""
    inside = [x for x, _ in curve.points if 0.0 < x < 1.0]
    return [(x, min(1.0, max(0.0, curve(x)))) for x in [0.0, *inside, 1.0]]


def _polyline(svg: _Svg, panel: int, curve: Curve, **style: Any) -> None:
    points = " ".join(f"{_x(panel, x)},{_y(y)}" for x, y in _curve_points(curve))
    svg.add("polyline", {"points": points, "fill": "none", "stroke_linejoin": "round", **style})


def _axes(svg: _Svg, panel: int) -> None:
    left, right = _x(panel, 0.0), _x(panel, 1.0)
    svg.add(
        "rect",
        {"x": left, "y": PLOT_TOP, "width": PLOT_WIDTH, "height": PLOT_HEIGHT, "fill": "#ffffff"},
    )
    for tick in TICKS:
        svg.add("line", {"x1": left, "x2": right, "y1": _y(tick), "y2": _y(tick), "stroke": GRID_COLOUR})
        svg.add("line", {"x1": _x(panel, tick), "x2": _x(panel, tick), "y1": _y(0), "y2": _y(1), "stroke": GRID_COLOUR})
        svg.add(
            "text",
            {"x": left - 6, "y": _y(tick) + 4, "font_size": 11, "text_anchor": "end", "fill": MUTED_COLOUR},
            text=format_share(tick),
        )
        svg.add(
            "text",
            {"x": _x(panel, tick), "y": _y(0) + 16, "font_size": 11, "text_anchor": "middle", "fill": MUTED_COLOUR},
            text=f"{tick:g}",
        )
    svg.add(
        "rect",
        {
            "x": left,
            "y": PLOT_TOP,
            "width": PLOT_WIDTH,
            "height": PLOT_HEIGHT,
            "fill": "none",
            "stroke": "#94a3b8",
        },
    )


def _examples(svg: _Svg, panel: int, rows: Sequence[tuple[float, int, int]], most: int) -> None:
    for margin, count, right in rows:
        radius = round(3.0 + 8.0 * math.sqrt(count / most), 1)
        low, high = max(0.0, margin - 0.5 / BINS), min(1.0, margin + 0.5 / BINS)
        svg.add(
            "circle",
            {
                "cx": _x(panel, margin),
                "cy": _y(right / count),
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
    svg: _Svg, panel: int, kind: Evidence, learnt: Calibration, prior: Calibration, limit: float | None, most: int
) -> None:
    title, subtitle = KIND_TITLES[kind]
    rows = learnt.support.get(kind, ())
    examples = sum(count for _, count, _ in rows)
    left = _x(panel, 0.0)
    svg.add("text", {"x": left, "y": 22, "font_size": 14, "font_weight": 600, "fill": TEXT_COLOUR}, text=title)
    svg.add("text", {"x": left, "y": 39, "font_size": 11, "fill": MUTED_COLOUR}, text=subtitle)
    count = f"{examples:,} labelled example{'s' if examples != 1 else ''}" if examples else "no examples yet"
    svg.add("text", {"x": left, "y": 54, "font_size": 11, "font_weight": 600, "fill": MUTED_COLOUR}, text=count)
    _axes(svg, panel)
    if limit is not None:
        svg.add(
            "line",
            {
                "x1": left,
                "x2": _x(panel, 1.0),
                "y1": _y(1.0 - limit),
                "y2": _y(1.0 - limit),
                "stroke": LIMIT_COLOUR,
                "stroke_width": 1.5,
                "class": "charge-limit",
            },
            title=f"Picks at least {format_share(1.0 - limit)} sure are charged on their own without a person",
        )
    _polyline(
        svg,
        panel,
        prior.curves[kind],
        stroke=PRIOR_COLOUR,
        stroke_width=1.75,
        stroke_dasharray="6 4",
        **{"class": "curve-prior", "data_kind": str(kind)},
    )
    _examples(svg, panel, rows, most)
    _polyline(
        svg,
        panel,
        learnt.curves[kind],
        stroke=LEARNT_COLOUR,
        stroke_width=2.75,
        **{"class": "curve-learnt", "data_kind": str(kind)},
    )
    if not examples:
        svg.add(
            "text",
            {
                "x": _x(panel, 0.5),
                "y": _y(0.1),
                "font_size": 11,
                "text_anchor": "middle",
                "fill": MUTED_COLOUR,
            },
            text="nothing learnt here yet: the starting point holds",
        )


def _legend(svg: _Svg, limit: float | None) -> None:
    rows = [
        ("line", {"stroke": LEARNT_COLOUR, "stroke_width": 2.75}, "learnt from this store's own visits"),
        (
            "line",
            {"stroke": PRIOR_COLOUR, "stroke_width": 1.75, "stroke_dasharray": "6 4"},
            "where every store starts, before it learns",
        ),
        ("dot", {}, "labelled examples: bigger = more, higher = more often right"),
    ]
    if limit is not None:
        rows.append(
            (
                "line",
                {"stroke": LIMIT_COLOUR, "stroke_width": 1.5},
                f"sure enough to charge one item alone (≥ {format_share(1.0 - limit)})",
            )
        )
    for index, (kind, style, label) in enumerate(rows):
        column, row = index % 2, index // 2
        x = SIDE + column * (WIDTH - 2 * SIDE) / 2
        y = LEGEND_TOP + row * 24
        if kind == "line":
            svg.add("line", {"x1": x, "x2": x + 34, "y1": y, "y2": y, **style})
        else:
            for offset, radius in ((6, 3.5), (20, 6.5)):
                svg.add(
                    "circle",
                    {
                        "cx": x + offset,
                        "cy": y,
                        "r": radius,
                        "fill": LEARNT_COLOUR,
                        "fill_opacity": 0.28,
                        "stroke": LEARNT_COLOUR,
                    },
                )
        svg.add("text", {"x": x + 44, "y": y + 4, "font_size": 12, "fill": TEXT_COLOUR}, text=label)


def render_reliability(*, learnt: Calibration, prior: Calibration, charge_limit: float | None) -> str:
    """The calibration `learnt` beside `prior`, one chart per kind of evidence; `charge_limit` (the highest visit
    risk charged without a person) draws the line above which a single pick is charged on its own."""
    svg = _Svg()
    most = max((count for rows in learnt.support.values() for _, count, _ in rows), default=1)
    for panel, kind in enumerate(Evidence):
        _panel(svg, panel, kind, learnt, prior, charge_limit, most)
    axis_y = PLOT_TOP + PLOT_HEIGHT + 38
    svg.add(
        "text",
        {"x": WIDTH / 2, "y": axis_y, "font_size": 12, "text_anchor": "middle", "fill": TEXT_COLOUR},
        text="→ how sure the camera was: its top pick's confidence minus the runner-up's (its margin)",
    )
    svg.add(
        "text",
        {
            "x": 14,
            "y": PLOT_TOP + PLOT_HEIGHT / 2,
            "font_size": 12,
            "text_anchor": "middle",
            "fill": TEXT_COLOUR,
            "transform": f"rotate(-90 14 {PLOT_TOP + PLOT_HEIGHT / 2})",
        },
        text="chance its pick is right →",
    )
    _legend(svg, charge_limit)
    body = "".join(svg.parts)
    label = "Reliability of the store's cameras: the chance a pick is right against how sure the camera was"
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" width="100%" role="img" '
        f'aria-label="{escape(label)}" font-family="system-ui, -apple-system, Segoe UI, Roboto, sans-serif" '
        f'class="calibration-chart">{body}</svg>'
    )
