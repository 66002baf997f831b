"""Small SVG charts, drawn in Python as text: no plotting library, no JavaScript, no CDN.

A chart is a string of SVG that the page shows as HTML; the browser draws it natively and
crisply at any size. Building one costs well under a millisecond, so the page can redraw every
chart on every week. All text is escaped. Shares (0..1) are shown as percentages.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from abm.app.theme import FONT, GRID, INK, MUTED

WIDTH = 520
HEIGHT = 300


def esc(text: object) -> str:
    return html.escape(str(text), quote=True)


def open_svg(width: float, height: float, label: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width:.0f} {height:.0f}" role="img" '
        f'aria-label="{esc(label)}" font-family="{esc(FONT)}" style="max-width: 100%">'
    )


def text(
    x: float,
    y: float,
    content: object,
    size: float = 12,
    anchor: str = "start",
    fill: str = INK,
    weight: str | None = None,
    extra: str = "",
) -> str:
    w = f' font-weight="{weight}"' if weight else ""
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}" fill="{fill}"{w}{extra}>'
        f"{esc(content)}</text>"
    )


def nice_step(span: float, target: int = 5) -> float:
    """A round step (1, 2, 2.5 or 5 times a power of ten) giving about `target` intervals."""
    if span <= 0 or not math.isfinite(span):
        return 1.0
    raw = span / target
    power = 10 ** math.floor(math.log10(raw))
    for m in (1, 2, 2.5, 5, 10):
        if m * power >= raw:
            return m * power
    return 10 * power


def nice_ceiling(value: float, minimum: float) -> float:
    """The axis top: `value` rounded up to a round number, at least `minimum`."""
    value = max(value, minimum)
    step = nice_step(value, 5)
    return step * math.ceil(value / step - 1e-9)


def share_ceiling(highest: float, minimum: float = 0.05) -> float:
    """The axis top for shares: a round number above `highest` (with some headroom), never above 100%."""
    top = nice_ceiling(highest * 1.1, minimum)
    return min(top, 1.0) if highest <= 1.0 + 1e-9 else top


def fmt(value: float, percent: bool, step: float | None = None, points: bool = False) -> str:
    """A tick or label value: `0.25` -> `25%` (percent), `+25` (points: a difference of shares), `0.25`."""
    if points:
        scaled = None if step is None else round(step * 100, 6)
        digits = 0 if scaled is None or float(scaled).is_integer() else 1
        number = round(100 * value, digits)
        return "0" if number == 0 else f"{number:+.{digits}f}"
    if percent:
        scaled = None if step is None else round(step * 100, 6)
        digits = 0 if scaled is None or float(scaled).is_integer() else 1
        return f"{100 * value:.{digits}f}%"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    if step is not None and step < 1:
        return f"{value:.{max(0, -math.floor(math.log10(step)))}f}"
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.2f}"


@dataclass
class Line:
    """One series of a line chart; `band` is (low, high) arrays drawn as a shaded range."""

    label: str
    x: np.ndarray
    y: np.ndarray
    colour: str
    width: float = 2.4
    dash: str | None = None
    band: tuple[np.ndarray, np.ndarray] | None = None
    end_label: bool = True


@dataclass
class Marker:
    """A vertical line at week `x` (an event), labelled at the top."""

    x: float
    label: str
    colour: str = "#8a5a9e"


class Frame:
    """Plot area and scales shared by the chart builders."""

    def __init__(
        self,
        width: float,
        height: float,
        x_max: float,
        y_max: float,
        y_min: float = 0.0,
        left: float = 52,
        right: float = 16,
        top: float = 34,
        bottom: float = 40,
    ):
        self.width, self.height = width, height
        self.left, self.right, self.top, self.bottom = left, right, top, bottom
        self.x_max = max(float(x_max), 1e-9)
        self.y_min, self.y_max = float(y_min), float(y_max) if y_max > y_min else float(y_min) + 1.0
        self.pw = width - left - right
        self.ph = height - top - bottom

    def sx(self, x: np.ndarray | float) -> np.ndarray | float:
        return self.left + np.asarray(x, dtype=float) / self.x_max * self.pw

    def sy(self, y: np.ndarray | float) -> np.ndarray | float:
        y = np.clip(np.asarray(y, dtype=float), self.y_min, self.y_max)
        return self.top + self.ph - (y - self.y_min) / (self.y_max - self.y_min) * self.ph

    def axes(self, x_label: str, y_label: str, percent: bool, x_step: float | None = None, points: bool = False) -> str:
        parts = []
        step = nice_step(self.y_max - self.y_min, 5)
        tick = step * math.ceil(self.y_min / step - 1e-9)
        while tick <= self.y_max + 1e-9:
            y = float(self.sy(tick))
            parts.append(
                f'<line x1="{self.left:.1f}" x2="{self.left + self.pw:.1f}" y1="{y:.1f}" y2="{y:.1f}" '
                f'stroke="{GRID}" stroke-width="1"/>'
            )
            parts.append(text(self.left - 6, y + 4, fmt(tick, percent, step, points), 11.5, "end", MUTED))
            tick += step
        xs = x_step or nice_step(self.x_max, 6)
        tick = 0.0
        while tick <= self.x_max + 1e-9:
            x = float(self.sx(tick))
            parts.append(
                f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{self.top + self.ph:.1f}" y2="{self.top + self.ph + 4:.1f}" '
                f'stroke="{MUTED}" stroke-width="1"/>'
            )
            parts.append(text(x, self.top + self.ph + 17, fmt(tick, False), 11.5, "middle", MUTED))
            tick += xs
        base = float(self.sy(self.y_min))
        parts.append(
            f'<line x1="{self.left:.1f}" x2="{self.left + self.pw:.1f}" y1="{base:.1f}" y2="{base:.1f}" '
            f'stroke="{MUTED}" stroke-width="1"/>'
        )
        if x_label:
            parts.append(text(self.left + self.pw / 2, self.height - 6, x_label, 12, "middle", MUTED))
        if y_label:
            cy = self.top + self.ph / 2
            parts.append(text(14, cy, y_label, 12, "middle", MUTED, extra=f' transform="rotate(-90 14 {cy:.1f})"'))
        return "".join(parts)


def _points(frame: Frame, x: np.ndarray, y: np.ndarray) -> str:
    px, py = frame.sx(x), frame.sy(y)
    return " ".join(f"{a:.1f},{b:.1f}" for a, b in zip(np.atleast_1d(px), np.atleast_1d(py), strict=True))


def _spread_labels(ys: list[float], gap: float, lo: float, hi: float) -> list[float]:
    """Nudge end-of-line labels apart vertically so they do not overlap."""
    order = sorted(range(len(ys)), key=lambda i: ys[i])
    out = list(ys)
    prev = -1e9
    for i in order:
        out[i] = max(out[i], prev + gap)
        prev = out[i]
    # push back up if the last ones ran off the bottom
    over = max(0.0, (max(out) if out else 0) - hi)
    if over:
        out = [y - over for y in out]
    return [max(lo, y) for y in out]


def line_chart(
    lines: Sequence[Line],
    *,
    title: str,
    y_label: str = "",
    x_label: str = "Week",
    x_max: float | None = None,
    y_max: float | None = None,
    y_min_top: float = 0.05,
    percent: bool = True,
    width: float = WIDTH,
    height: float = HEIGHT,
    markers: Sequence[Marker] = (),
    legend: bool = True,
    subtitle: str = "",
    y_min: float = 0.0,
    zero_line: bool = False,
    points: bool = False,
) -> str:
    """Lines over weeks (with optional shaded bands), a legend on top and labels at the line ends.

    `percent`: shares, shown as percentages (the axis stops at 100% unless `y_max` says otherwise);
    `points`: differences of shares, shown in percentage points (`+3.8 points`).
    """
    longest_label = max((len(line.label) for line in lines if line.end_label), default=0)
    extra = 12 if points else 5
    right = 16 + 6.6 * (longest_label + extra) if longest_label else 16
    highest = 0.0
    longest = 1.0
    for line in lines:
        if line.y.size:
            highest = max(highest, float(np.nanmax(line.y)))
            longest = max(longest, float(np.nanmax(line.x)))
        if line.band is not None and line.band[1].size:
            highest = max(highest, float(np.nanmax(line.band[1])))
    if y_max is not None:
        top_value = y_max
    elif percent and not points:
        top_value = share_ceiling(highest, y_min_top)  # a share never passes 100%: no axis up to 125%
    else:
        top_value = nice_ceiling(highest * 1.1, y_min_top)
    frame = Frame(width, height, x_max or longest, top_value, y_min=y_min, right=right, top=48 if legend else 34)
    parts = [open_svg(width, height, title)]
    parts.append(text(frame.left - 44, 18, title, 14, weight="600"))
    if subtitle:
        parts.append(text(width - 8, 18, subtitle, 11.5, "end", MUTED))
    parts.append(frame.axes(x_label, y_label, percent, points=points))
    if zero_line and y_min < 0:
        y0 = float(frame.sy(0.0))
        parts.append(
            f'<line x1="{frame.left:.1f}" x2="{frame.left + frame.pw:.1f}" y1="{y0:.1f}" y2="{y0:.1f}" '
            f'stroke="{INK}" stroke-width="1.2"/>'
        )
    for m in markers:
        if 0 <= m.x <= frame.x_max:
            x = float(frame.sx(m.x))
            parts.append(
                f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{frame.top:.1f}" y2="{frame.top + frame.ph:.1f}" '
                f'stroke="{m.colour}" stroke-width="1.3" stroke-dasharray="4 3"/>'
            )
            parts.append(text(x + 3, frame.top + 11, m.label, 10.5, "start", m.colour))
    for line in lines:
        if line.band is not None and line.x.size:
            lo, hi = line.band
            px = np.concatenate([line.x, line.x[::-1]])
            py = np.concatenate([hi, lo[::-1]])
            parts.append(
                f'<polygon points="{_points(frame, px, py)}" fill="{line.colour}" fill-opacity="0.18" stroke="none"/>'
            )
    ends = []
    for line in lines:
        if not line.x.size:
            continue
        dash = f' stroke-dasharray="{line.dash}"' if line.dash else ""
        parts.append(
            f'<polyline points="{_points(frame, line.x, line.y)}" fill="none" stroke="{line.colour}" '
            f'stroke-width="{line.width}" stroke-linejoin="round" stroke-linecap="round"{dash}>'
            f"<title>{esc(line.label)}</title></polyline>"
        )
        lx, ly = float(frame.sx(line.x[-1])), float(frame.sy(line.y[-1]))
        parts.append(f'<circle cx="{lx:.1f}" cy="{ly:.1f}" r="3.2" fill="{line.colour}"/>')
        if line.end_label:
            ends.append((ly, line, lx))
    if ends:
        ys = _spread_labels([e[0] + 4 for e in ends], 13, frame.top + 8, frame.top + frame.ph + 4)
        for (_, line, _lx), y in zip(ends, ys, strict=True):
            if points:
                value = fmt(float(line.y[-1]), False, 0.001, points=True) + " points"
            elif percent:  # as the cards say it: one decimal under 10% (0.5%, not 0%)
                pct = 100 * float(line.y[-1])
                value = f"{pct:.1f}%" if 0 < abs(pct) < 9.95 else f"{pct:.0f}%"
            else:
                value = fmt(float(line.y[-1]), percent, None)
            parts.append(text(frame.left + frame.pw + 6, y, f"{value} {line.label}", 11.5, "start", line.colour, "600"))
    if legend:
        x = frame.left
        for line in lines:
            if line.label.startswith("_"):
                continue
            dash = f' stroke-dasharray="{line.dash}"' if line.dash else ""
            parts.append(
                f'<line x1="{x:.1f}" x2="{x + 18:.1f}" y1="33" y2="33" stroke="{line.colour}" stroke-width="3"{dash}/>'
            )
            parts.append(text(x + 23, 37, line.label, 11.5))
            x += 23 + 6.6 * len(line.label) + 16
    parts.append("</svg>")
    return "".join(parts)


def stacked_area(
    x: np.ndarray,
    layers: Sequence[tuple[str, str, np.ndarray]],
    *,
    title: str,
    y_label: str = "People",
    x_max: float | None = None,
    width: float = WIDTH,
    height: float = HEIGHT,
    percent: bool = False,
) -> str:
    """Layers stacked from the bottom (first layer lowest), e.g. people on each rung over time."""
    total = np.zeros_like(x, dtype=float)
    for _, _, values in layers:
        total = total + values
    top_value = nice_ceiling(float(total.max(initial=1.0)), 1.0)
    keys = [(label, colour) for label, colour, _ in layers]
    legend_x = 8  # from the left edge, under the title: six stage names fit on one row at 520 px
    rows = _legend_rows(keys, legend_x, width - 8)
    frame = Frame(
        width, height, x_max or max(float(x.max(initial=1.0)), 1.0), top_value, top=48 + 17 * (rows - 1), right=16
    )
    parts = [open_svg(width, height, title), text(frame.left - 44, 18, title, 14, weight="600")]
    parts.append(frame.axes("Week", y_label, percent))
    base = np.zeros_like(x, dtype=float)
    for label, colour, values in layers:
        upper = base + values
        px = np.concatenate([x, x[::-1]])
        py = np.concatenate([upper, base[::-1]])
        parts.append(
            f'<polygon points="{_points(frame, px, py)}" fill="{colour}" stroke="#ffffff" stroke-width="0.4">'
            f"<title>{esc(label)}</title></polygon>"
        )
        base = upper
    parts.append(_legend_row(keys, legend_x, 33, right=width - 8))
    parts.append("</svg>")
    return "".join(parts)


def _legend_width(label: str) -> float:
    return 16 + 6.4 * len(label) + 14


def _legend_rows(items: Sequence[tuple[str, str]], x: float, right: float) -> int:
    """How many rows a legend starting at `x` takes when it wraps before `right`."""
    rows, at = 1, x
    for label, _ in items:
        if at > x and at + _legend_width(label) - 14 > right:
            rows, at = rows + 1, x
        at += _legend_width(label)
    return rows


def _legend_row(
    items: Sequence[tuple[str, str]], x: float, y: float, size: float = 11.5, right: float | None = None
) -> str:
    """Coloured keys and labels from (x, y); with `right`, an item that would pass it starts a new row."""
    parts = []
    start = x
    for label, colour in items:
        if right is not None and x > start and x + _legend_width(label) - 14 > right:
            x, y = start, y + 17
        parts.append(f'<rect x="{x:.1f}" y="{y - 9:.1f}" width="12" height="12" rx="2" fill="{colour}"/>')
        parts.append(text(x + 16, y + 1, label, size))
        x += 16 + 6.4 * len(label) + 14
    return "".join(parts)


def hbars(
    rows: Sequence[tuple[str, Sequence[float]]],
    colours: Sequence[str],
    legend: Sequence[str],
    *,
    title: str,
    width: float = WIDTH,
    row_height: float = 30,
    percent: bool = True,
    notes: Sequence[str] | None = None,
    ticks: Sequence[tuple[int, float, str]] = (),
    tick_legend: str = "",
) -> str:
    """Horizontal stacked bars, one row per group (values are shares summing to 1 when percent).

    `ticks` marks a value on a row: (row, value, label), e.g. the week-0 inactive share.
    """
    left = 14 + 6.8 * max((len(label) for label, _ in rows), default=10)
    right = 20
    top = 52
    height = top + row_height * len(rows) + 26
    pw = width - left - right
    parts = [open_svg(width, height, title), text(8, 18, title, 14, weight="600")]
    parts.append(_legend_row(list(zip(legend, colours, strict=False)), 8, 38))
    if tick_legend:
        x = 8 + sum(16 + 6.4 * len(label) + 14 for label in legend)
        parts.append(f'<line x1="{x + 5:.1f}" x2="{x + 5:.1f}" y1="27" y2="41" stroke="{INK}" stroke-width="2.5"/>')
        parts.append(text(x + 14, 39, tick_legend, 11.5))
    total_max = max((sum(values) for _, values in rows), default=1.0) if not percent else 1.0
    total_max = total_max or 1.0
    for r, (label, values) in enumerate(rows):
        y = top + r * row_height
        parts.append(text(left - 8, y + row_height / 2 + 4, label, 12, "end"))
        x = left
        for value, colour in zip(values, colours, strict=False):
            w = pw * float(value) / total_max
            if w > 0:
                parts.append(
                    f'<rect x="{x:.1f}" y="{y + 4:.1f}" width="{w:.1f}" height="{row_height - 8:.1f}" fill="{colour}">'
                    f"<title>{esc(label)}: {fmt(float(value), percent, 0.001)}</title></rect>"
                )
                if w > 34:
                    parts.append(
                        text(x + w / 2, y + row_height / 2 + 4, fmt(float(value), percent, 0.1), 11, "middle", INK)
                    )
            x += w
        if notes:
            parts.append(text(left + pw, y + row_height / 2 + 4, notes[r], 10.5, "end", MUTED))
    for row, value, label in ticks:
        y = top + row * row_height
        x = left + pw * value / total_max
        parts.append(
            f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{y + 1:.1f}" y2="{y + row_height - 1:.1f}" stroke="{INK}" '
            f'stroke-width="2"><title>{esc(label)}</title></line>'
        )
    axis_y = top + row_height * len(rows) + 14
    for k in range(0, 5):
        value = total_max * k / 4
        parts.append(
            text(left + pw * k / 4, axis_y, fmt(value, percent, 0.25 if percent else None), 10.5, "middle", MUTED)
        )
    parts.append("</svg>")
    return "".join(parts)


def columns(
    labels: Sequence[str],
    values: Sequence[float],
    colours: Sequence[str],
    *,
    title: str,
    width: float = WIDTH,
    height: float = HEIGHT,
    value_labels: Sequence[str] | None = None,
    y_label: str = "People",
) -> str:
    """Vertical bars with their value above (the commitment ladder now)."""
    top_value = nice_ceiling(max(values, default=1.0) * 1.12, 1.0)
    frame = Frame(width, height, len(labels), top_value, top=34, bottom=46)
    parts = [open_svg(width, height, title), text(frame.left - 44, 18, title, 14, weight="600")]
    # y grid and labels only (the x axis is categorical)
    step = nice_step(top_value, 5)
    tick = 0.0
    while tick <= top_value + 1e-9:
        y = float(frame.sy(tick))
        parts.append(
            f'<line x1="{frame.left:.1f}" x2="{frame.left + frame.pw:.1f}" y1="{y:.1f}" y2="{y:.1f}" stroke="{GRID}"/>'
        )
        parts.append(text(frame.left - 6, y + 4, fmt(tick, False, step), 11.5, "end", MUTED))
        tick += step
    cy = frame.top + frame.ph / 2
    parts.append(text(14, cy, y_label, 12, "middle", MUTED, extra=f' transform="rotate(-90 14 {cy:.1f})"'))
    slot = frame.pw / max(len(labels), 1)
    for i, (label, value, colour) in enumerate(zip(labels, values, colours, strict=True)):
        x = frame.left + i * slot + slot * 0.14
        w = slot * 0.72
        y = float(frame.sy(value))
        h = frame.top + frame.ph - y
        parts.append(
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{w:.1f}" height="{max(h, 0.5):.1f}" rx="3" fill="{colour}">'
            f"<title>{esc(label)}: {value:,.0f}</title></rect>"
        )
        shown = value_labels[i] if value_labels else f"{value:,.0f}"
        parts.append(text(x + w / 2, y - 5, shown, 11.5, "middle", INK, "600"))
        words = label.split(" ")
        for j, word in enumerate(words[:2]):
            parts.append(text(x + w / 2, frame.top + frame.ph + 16 + 13 * j, word, 11.5, "middle", INK))
    parts.append("</svg>")
    return "".join(parts)


def sparkline(
    x: np.ndarray,
    series: Sequence[tuple[str, str, np.ndarray]],
    strip: np.ndarray | None = None,
    strip_colours: Sequence[str] = (),
    *,
    title: str,
    width: float = 360,
    height: float = 130,
) -> str:
    """A small chart of one person's vision and value (0..1) with their stage as a coloured strip."""
    frame = Frame(width, height, max(float(x.max(initial=1.0)), 1.0), 1.0, left=34, right=10, top=26, bottom=34)
    parts = [open_svg(width, height, title), text(6, 15, title, 12, weight="600")]
    for tick in (0.0, 0.5, 1.0):
        y = float(frame.sy(tick))
        parts.append(
            f'<line x1="{frame.left}" x2="{frame.left + frame.pw:.1f}" y1="{y:.1f}" y2="{y:.1f}" stroke="{GRID}"/>'
        )
        parts.append(text(frame.left - 4, y + 4, f"{tick:.1f}", 10, "end", MUTED))
    if strip is not None and x.size:
        y0 = frame.top + frame.ph + 4
        xs = frame.sx(np.append(x, x[-1] + 1))
        for i in range(x.size):
            parts.append(
                f'<rect x="{xs[i]:.1f}" y="{y0:.1f}" width="{max(xs[i + 1] - xs[i], 0.6):.2f}" height="7" '
                f'fill="{strip_colours[int(strip[i])]}"/>'
            )
        parts.append(text(frame.left + frame.pw, height - 3, f"stage by week (0 to {int(x[-1])})", 9.5, "end", MUTED))
    legend_x = width - 10
    for label, colour, values in reversed(series):
        if x.size:
            parts.append(
                f'<polyline points="{_points(frame, x, values)}" fill="none" stroke="{colour}" stroke-width="2"/>'
            )
        legend_x -= 6.2 * len(label) + 20
        parts.append(
            f'<line x1="{legend_x:.1f}" x2="{legend_x + 12:.1f}" y1="11" y2="11" stroke="{colour}" stroke-width="3"/>'
        )
        parts.append(text(legend_x + 15, 15, label, 10.5))
    parts.append("</svg>")
    return "".join(parts)
