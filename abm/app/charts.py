"""The app's charts: SVG for the page (cheap enough to redraw every week) and PNG for export.

Each chart is a function of a `View` (one week of one run). The PNG versions are drawn with
matplotlib (object API, never pyplot: it is not thread-safe) only when someone downloads them.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure

from abm.acting import STAGES
from abm.app.svg import Line, Marker, columns, hbars, line_chart, nice_ceiling, share_ceiling, stacked_area
from abm.app.theme import (
    GROUP_PALETTE,
    PA_COLOURS,
    PA_LABELS,
    PARTS,
    STAGE_COLOUR_LIST,
    STAGE_LABEL,
    role_label,
)

#: The by-group views: what the Trends tab can split the four shares by.
GROUPINGS = ("Overall", "By role", "By ward")


def _markers(view) -> list[Marker]:
    return [Marker(week, label) for week, label in view.markers]


def _x_max(view) -> int:
    return max(view.weeks, view.week, 1)


def trend_svg(view) -> str:
    """Vision, Value, Collective function and Common purpose over time: shares of everyone."""
    x = view.frame["step"].to_numpy()
    lines = [Line(label, x, view.frame[column].to_numpy(), colour) for label, colour, column, _ in PARTS]
    return line_chart(
        lines,
        title="Vision, Value, Collective function and Common purpose",
        y_label="Share of everyone",
        x_max=_x_max(view),
        markers=_markers(view),
        subtitle=f"week {view.week} of {view.weeks}",
    )


def group_names(view, grouping: str) -> list[str]:
    if grouping == "By role":
        return [role_label(r) for r in view.role_names]
    return list(view.ward_labels)


def group_svgs(view, grouping: str, chosen: Sequence[str] | None = None) -> list[str]:
    """One chart per part of the equation, one line per role or ward."""
    data = view.role_shares if grouping == "By role" else view.ward_shares
    names = group_names(view, grouping)
    x = np.arange(data.shape[0])
    keep = [i for i, name in enumerate(names) if not chosen or name in chosen]
    out = []
    for p, (label, _, _, _) in enumerate(PARTS):
        top = share_ceiling(float(data[:, keep, p].max(initial=0.0))) if keep else 0.05
        lines = [
            Line(names[i], x, data[:, i, p], GROUP_PALETTE[k % len(GROUP_PALETTE)], width=2.0)
            for k, i in enumerate(keep)
        ]
        out.append(
            line_chart(
                lines,
                title=f"{label}, {grouping.lower()}",
                y_label="Share of the group",
                x_max=_x_max(view),
                y_max=top,
                legend=False,
                markers=_markers(view),
                height=280,
            )
        )
    return out


def ladder_svg(view, width: float = 520, height: float = 300) -> str:
    """How many people stand on each rung of the commitment ladder this week."""
    labels = [STAGE_LABEL[s] for s in STAGES]
    total = max(sum(view.stage_counts), 1)
    value_labels = [f"{c:,} ({share_text(c, total)})" for c in view.stage_counts]
    return columns(
        labels,
        list(view.stage_counts),
        list(STAGE_COLOUR_LIST),
        title=f"The commitment ladder, week {view.week}",
        value_labels=value_labels,
        width=width,
        height=height,
    )


def ladder_rungs_svg(view, width: float = 360) -> str:
    """The commitment ladder as rungs, common purpose at the top: people on each rung this week."""
    from abm.app.svg import esc, open_svg, text

    total = max(sum(view.stage_counts), 1)
    row, top, left, right = 34, 34, 112, 92  # right: room for the longest bar's "12,345 (94%)"
    height = top + row * len(STAGES) + 8
    pw = width - left - right
    largest = max(max(view.stage_counts), 1)
    parts = [
        open_svg(width, height, "The commitment ladder"),
        text(4, 18, f"The commitment ladder, week {view.week}", 14, weight="600"),
    ]
    for r, k in enumerate(reversed(range(len(STAGES)))):
        stage = STAGES[k]
        y = top + r * row
        count = view.stage_counts[k]
        w = max(pw * count / largest, 1.5 if count else 0)
        parts.append(text(left - 8, y + row / 2 + 4, STAGE_LABEL[stage], 13, "end"))
        parts.append(f'<line x1="{left}" x2="{left + pw}" y1="{y + row - 2}" y2="{y + row - 2}" stroke="#eef1f5"/>')
        parts.append(
            f'<rect x="{left}" y="{y + 5:.1f}" width="{w:.1f}" height="{row - 10}" rx="3" '
            f'fill="{STAGE_COLOUR_LIST[k]}"><title>{esc(STAGE_LABEL[stage])}: {count:,}</title></rect>'
        )
        parts.append(
            text(
                left + w + 6, y + row / 2 + 4, f"{count:,} ({share_text(count, total)})", 12, "start", "#1f2933", "600"
            )
        )
    parts.append("</svg>")
    return "".join(parts)


def share_text(count: int, total: int) -> str:
    """`count` of `total` as a percentage that never reads 0% for someone or 100% for not everyone:
    `0%`, `<1%`, `1.5%` (one decimal under 10%), `43%`, `>99%`, `100%`."""
    if count <= 0 or total <= 0:
        return "0%"
    if count >= total:
        return "100%"
    pct = 100 * count / total
    if pct < 1:
        return "<1%"
    if pct > 99:
        return ">99%"
    return f"{pct:.1f}%" if pct < 10 else f"{pct:.0f}%"


def ladder_time_svg(view) -> str:
    """People on each rung, week by week (stacked)."""
    x = view.frame["step"].to_numpy()
    layers = [
        (STAGE_LABEL[s], STAGE_COLOUR_LIST[i], view.frame[f"stage_{s}"].to_numpy(dtype=float))
        for i, s in enumerate(STAGES)
    ]
    return stacked_area(x, layers, title="The commitment ladder over time", x_max=_x_max(view))


def active_lives_svg(view) -> str:
    """Residents' Active Lives classes by ward this week, with each ward's week-0 inactive share."""
    rows, notes, ticks = [], [], []
    now = view.ward_pa[-1]
    start = view.ward_pa[0]
    for w, label in enumerate(view.ward_labels):
        if view.ward_residents[w] == 0:
            continue
        target = " (target)" if view.ward_target[w] else ""
        rows.append((label + target, [float(v) for v in now[w]]))
        notes.append("")
        ticks.append((len(rows) - 1, float(start[w, 0]), f"inactive at week 0: {100 * start[w, 0]:.1f}%"))
    return hbars(
        rows,
        PA_COLOURS,
        PA_LABELS,
        title=f"Residents' Active Lives classes, week {view.week}",
        notes=notes,
        ticks=ticks,
        tick_legend="inactive at week 0",
    )


def inactive_time_svg(view) -> str:
    """Inactive share of residents in each ward over time."""
    x = np.arange(view.ward_pa.shape[0])
    lines = []
    for w, label in enumerate(view.ward_labels):
        if view.ward_residents[w] == 0:
            continue
        colour = GROUP_PALETTE[w % len(GROUP_PALETTE)]
        lines.append(
            Line(label, x, view.ward_pa[:, w, 0], colour, width=2.0, dash=None if view.ward_target[w] else "6 4")
        )
    top = float(view.ward_pa[:, :, 0].max(initial=0.1))
    return line_chart(
        lines,
        title="Inactive residents by ward (dashed: not a target ward)",
        y_label="Share of residents",
        x_max=_x_max(view),
        y_max=min(1.0, max(0.05, top * 1.25)),
        legend=False,
        markers=_markers(view),
    )


def structures_svg(view) -> str:
    """Structural alignment (mean and highest) against the national cap, over time."""
    f = view.frame
    x = f["step"].to_numpy()
    lines = [
        Line("Mean (staff)", x, f["structural_alignment"].to_numpy(), "#4f81b0"),
        Line("Highest organisation", x, f["max_structural_alignment"].to_numpy(), "#1d4e79", width=1.8, dash="5 3"),
        Line("National cap", x, f["national_cap"].to_numpy(), "#b3261e", width=2.0, dash="2 3"),
    ]
    return line_chart(
        lines,
        title="Structural alignment and the national cap",
        y_label="Structural alignment",
        x_max=_x_max(view),
        y_max=1.0,
        percent=False,
        markers=_markers(view),
    )


def embedded_svg(view) -> str:
    """Embedded processes (all organisations) over time."""
    f = view.frame
    x = f["step"].to_numpy()
    lines = [Line("Embedded processes", x, f["embedded_processes"].to_numpy(), "#009e73")]
    top = max(float(f["embedded_processes"].max()), 5.0)
    return line_chart(
        lines,
        title="Embedded processes (count, all organisations)",
        y_label="Processes",
        x_max=_x_max(view),
        y_max=nice_ceiling(top * 1.1, 5.0),
        percent=False,
        legend=False,
        markers=_markers(view),
    )


# --- PNG versions for export --------------------------------------------------------------------


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=150)
    return buf.getvalue()


def _style(ax, title: str, ylabel: str, xlabel: str = "Week") -> None:
    ax.set_title(title, loc="left", fontsize=11, fontweight="bold")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.spines[["top", "right"]].set_visible(False)


def _caption(fig: Figure, view) -> None:
    fig.text(
        0.01,
        0.005,
        f"{view.name} · seed {view.seed} · week {view.week} · common-purpose model "
        "(explores and teaches; not a forecast)",
        fontsize=7,
        color="#5f6b7a",
    )


def trend_png(view) -> bytes:
    fig = Figure(figsize=(8, 4.5), layout="constrained")
    ax = fig.subplots()
    x = view.frame["step"]
    for label, colour, column, _ in PARTS:
        ax.plot(x, 100 * view.frame[column], color=colour, linewidth=2.2, label=label)
    for week, label in view.markers:
        ax.axvline(week, color="#8a5a9e", linestyle="--", linewidth=1)
        ax.annotate(label, (week, 1), xycoords=("data", "axes fraction"), fontsize=7, color="#8a5a9e")
    ax.set_xlim(0, _x_max(view))
    ax.set_ylim(0, None)
    _style(ax, "Vision, Value, Collective function and Common purpose", "Share of everyone (%)")
    ax.legend(frameon=False, fontsize=8)
    _caption(fig, view)
    return _png(fig)


def groups_png(view, grouping: str) -> bytes:
    data = view.role_shares if grouping == "By role" else view.ward_shares
    names = group_names(view, grouping)
    fig = Figure(figsize=(10, 6.5), layout="constrained")
    axes = fig.subplots(2, 2, sharex=True, sharey=True).ravel()
    x = np.arange(data.shape[0])
    for p, (label, _, _, _) in enumerate(PARTS):
        ax = axes[p]
        for i, name in enumerate(names):
            ax.plot(x, 100 * data[:, i, p], color=GROUP_PALETTE[i % len(GROUP_PALETTE)], linewidth=1.8, label=name)
        _style(ax, label, "Share of the group (%)")
    axes[0].legend(frameon=False, fontsize=7)
    _caption(fig, view)
    return _png(fig)


def ladder_png(view) -> bytes:
    fig = Figure(figsize=(8, 4.5), layout="constrained")
    ax = fig.subplots(1, 2, width_ratios=[2, 3])
    labels = [STAGE_LABEL[s].replace(" ", "\n") for s in STAGES]
    bars = ax[0].bar(labels, view.stage_counts, color=STAGE_COLOUR_LIST)
    ax[0].bar_label(bars, labels=[f"{c:,}" for c in view.stage_counts], fontsize=7)
    ax[0].tick_params(axis="x", labelsize=7)
    _style(ax[0], f"Ladder, week {view.week}", "People", "")
    x = view.frame["step"]
    ax[1].stackplot(
        x,
        [view.frame[f"stage_{s}"] for s in STAGES],
        colors=STAGE_COLOUR_LIST,
        labels=[STAGE_LABEL[s] for s in STAGES],
    )
    ax[1].set_xlim(0, _x_max(view))
    _style(ax[1], "Ladder over time", "People")
    ax[1].legend(frameon=False, fontsize=7, loc="upper left")
    _caption(fig, view)
    return _png(fig)


def active_lives_png(view) -> bytes:
    fig = Figure(figsize=(8, 4.5), layout="constrained")
    ax = fig.subplots()
    rows = [w for w in range(len(view.ward_labels)) if view.ward_residents[w] > 0]
    now = view.ward_pa[-1]
    left = np.zeros(len(rows))
    for c in range(3):
        values = np.array([now[w, c] for w in rows]) * 100
        ax.barh([view.ward_labels[w] for w in rows], values, left=left, color=PA_COLOURS[c], label=PA_LABELS[c])
        left += values
    ax.scatter(
        [100 * view.ward_pa[0][w, 0] for w in rows],
        range(len(rows)),
        marker="|",
        s=300,
        color="black",
        label="Inactive at week 0",
        zorder=3,
    )
    ax.invert_yaxis()
    _style(ax, f"Residents' Active Lives classes by ward, week {view.week}", "", "Share of residents (%)")
    ax.legend(frameon=False, fontsize=7, ncols=4, loc="lower center", bbox_to_anchor=(0.5, 1.05))
    _caption(fig, view)
    return _png(fig)


def structures_png(view) -> bytes:
    fig = Figure(figsize=(8, 4.5), layout="constrained")
    ax = fig.subplots(1, 2)
    f = view.frame
    ax[0].plot(f["step"], f["structural_alignment"], color="#4f81b0", linewidth=2, label="Mean (staff)")
    ax[0].plot(f["step"], f["max_structural_alignment"], color="#1d4e79", linestyle="--", label="Highest organisation")
    ax[0].plot(f["step"], f["national_cap"], color="#b3261e", linestyle=":", linewidth=2, label="National cap")
    ax[0].set_ylim(0, 1)
    _style(ax[0], "Structural alignment", "Alignment")
    ax[0].legend(frameon=False, fontsize=7)
    ax[1].plot(f["step"], f["embedded_processes"], color="#009e73", linewidth=2)
    _style(ax[1], "Embedded processes", "Count")
    for a in ax:
        a.set_xlim(0, _x_max(view))
    _caption(fig, view)
    return _png(fig)


def network_png(view, layout, stages: np.ndarray, ties: np.ndarray, shapes: Sequence[str]) -> bytes:
    """The network as drawn in the page (same positions and colours), as a PNG."""
    from matplotlib.collections import LineCollection

    fig = Figure(figsize=(9, 7.5), layout="constrained")
    ax = fig.subplots()
    x, y = layout.x, -layout.y  # the page's y axis points down
    if ties.size:
        a, b = ties[0::2], ties[1::2]
        ok = (a < x.size) & (b < x.size)
        a, b = a[ok], b[ok]
        segments = np.stack([np.column_stack([x[a], y[a]]), np.column_stack([x[b], y[b]])], axis=1)
        ax.add_collection(LineCollection(segments, colors="#485466", linewidths=0.3, alpha=0.08))
    markers = {
        "circle": "o",
        "square": "s",
        "diamond": "D",
        "triangle": "^",
        "triangle_down": "v",
        "star": "*",
        "hexagon": "h",
        "plus": "P",
        "pentagon": "p",
    }
    shapes_arr = np.array(shapes)
    for st in range(len(STAGES)):
        for shape in np.unique(shapes_arr):
            pick = (stages == st) & (shapes_arr == shape)
            if pick.any():
                size = 5 if shape == "circle" else 28
                ax.scatter(
                    x[pick],
                    y[pick],
                    s=size,
                    c=STAGE_COLOUR_LIST[st],
                    marker=markers.get(shape, "o"),
                    linewidths=0.3,
                    edgecolors="white" if shape != "circle" else "none",
                )
    for label in layout.labels:
        ax.text(
            label.x,
            -label.y,
            label.text,
            ha="center",
            va="center",
            fontsize=9 if label.kind == "ward" else 7,
            fontweight="bold",
            color="#1d3557",
        )
    handles = [ax.scatter([], [], c=STAGE_COLOUR_LIST[i], s=30, label=STAGE_LABEL[s]) for i, s in enumerate(STAGES)]
    ax.legend(handles=handles, frameon=False, fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    ax.set_aspect("equal")
    ax.set_axis_off()
    ax.set_title(f"The stakeholder system, week {view.week}", loc="left", fontsize=11, fontweight="bold")
    _caption(fig, view)
    return _png(fig)


# --- the aggregated network view -----------------------------------------------------------------


def _pie(cx: float, cy: float, r: float, shares: np.ndarray, colours: Sequence[str]) -> str:
    """A pie of `shares` (summing to 1) as SVG paths, starting at twelve o'clock."""
    from math import cos, pi, sin

    parts = []
    start = -pi / 2
    nonzero = [i for i, s in enumerate(shares) if s > 0]
    if len(nonzero) == 1:
        return f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="{r:.1f}" fill="{colours[nonzero[0]]}"/>'
    for i, share in enumerate(shares):
        if share <= 0:
            continue
        end = start + 2 * pi * float(share)
        large = 1 if end - start > pi else 0
        x0, y0 = cx + r * cos(start), cy + r * sin(start)
        x1, y1 = cx + r * cos(end), cy + r * sin(end)
        parts.append(
            f'<path d="M{cx:.1f},{cy:.1f} L{x0:.1f},{y0:.1f} A{r:.1f},{r:.1f} 0 {large} 1 {x1:.1f},{y1:.1f} Z" '
            f'fill="{colours[i]}"/>'
        )
        start = end
    return "".join(parts)


def blocks_svg(view, max_flows: int = 60) -> str:
    """People grouped by role (rings: leaders inside, residents outside) and ward (sectors of the
    circle); each block a pie of commitment stages, area in proportion to its people; lines are
    the ties between blocks, as wide as their number."""
    from math import cos, pi, sin

    from abm.app.svg import esc, open_svg, text

    b = view.block_data
    width, height = 900, 720
    cx, cy = width / 2, height / 2 + 10
    parts = [open_svg(width, height, "The system in blocks of role and ward")]
    parts.append(f'<rect width="{width}" height="{height}" fill="#fbfcfd"/>')
    if b is None or b.count.size == 0:
        parts.append(text(cx, cy, "Nothing to draw", 16, "middle"))
        parts.append("</svg>")
        return "".join(parts)
    n_wards = len(view.ward_labels)
    roles = sorted(set(int(r) for r in b.role))
    # ring by role: residents (no organisation) outermost, then the order of the roles in the config
    ring_of = {r: k for k, r in enumerate(roles)}
    radii = np.linspace(55, 255, max(len(roles), 2))
    pos = np.zeros((b.count.size, 2))
    for i in range(b.count.size):
        w = int(b.ward[i])
        angle = -pi / 2 + 2 * pi * (w + 0.5) / max(n_wards, 1)
        k = ring_of[int(b.role[i])]
        r = radii[k] if len(roles) > 1 else 0.0
        pos[i] = cx + r * cos(angle), cy + r * sin(angle)
    largest = float(b.count.max())
    size = 6 + 34 * np.sqrt(b.count / largest)
    # flows
    if b.flow_ties.size:
        between = b.flow_a != b.flow_b
        fa, fb, ft = b.flow_a[between], b.flow_b[between], b.flow_ties[between]
        order = np.argsort(-ft)[:max_flows]
        top = float(ft[order[0]]) if order.size else 1.0
        for j in order[::-1]:
            a, c = int(fa[j]), int(fb[j])
            (x0, y0), (x1, y1) = pos[a], pos[c]
            mx, my = (x0 + x1) / 2, (y0 + y1) / 2
            # bend towards the centre so flows between wards arc inside the circle
            qx, qy = mx + (cx - mx) * 0.25, my + (cy - my) * 0.25
            w = 0.6 + 9 * np.sqrt(ft[j] / top)
            parts.append(
                f'<path d="M{x0:.1f},{y0:.1f} Q{qx:.1f},{qy:.1f} {x1:.1f},{y1:.1f}" fill="none" stroke="#485466" '
                f'stroke-opacity="0.16" stroke-width="{w:.1f}"><title>{int(ft[j]):,} ties</title></path>'
            )
    for i in range(b.count.size):
        x, y = pos[i]
        count = int(b.count[i])
        shares = b.stages[i] / max(count, 1)
        parts.append(
            f"<g><title>{esc(role_label(view.role_names[int(b.role[i])]))}, "
            f"{esc(view.ward_labels[int(b.ward[i])])}: {count:,} people</title>"
        )
        parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{size[i] + 2:.1f}" fill="#ffffff"/>')
        parts.append(_pie(x, y, float(size[i]), shares, STAGE_COLOUR_LIST))
        parts.append("</g>")
    # ward names around the outside, role names along the first sector
    for w, label in enumerate(view.ward_labels):
        angle = -pi / 2 + 2 * pi * (w + 0.5) / max(n_wards, 1)
        r = radii[-1] + float(size.max()) + 22
        lx, ly = cx + r * cos(angle), cy + r * sin(angle) + 5
        anchor = "middle" if abs(cos(angle)) < 0.3 else "start" if cos(angle) > 0 else "end"
        parts.append(text(lx, ly, label, 16, anchor, "#1d3557", "700"))
    for r_code in roles:
        k = ring_of[r_code]
        y0 = height - 30 - 17 * (len(roles) - k)
        parts.append(text(12, y0, f"{k + 1}. {role_label(view.role_names[r_code], True)}", 13, "start", "#3c4858"))
    parts.append(
        text(12, height - 32 - 17 * (len(roles) + 1), "Rings, from the middle out:", 13, "start", "#1d3557", "700")
    )
    parts.append(
        text(
            width - 12,
            height - 10,
            "Each pie: one role in one ward, area by people, slices by stage; lines: ties between them",
            11.5,
            "end",
            "#5f6b7a",
        )
    )
    parts.append("</svg>")
    return "".join(parts)
