"""The Common Purpose Model as a diagram, drawn by the app and annotated with the run's figures.

Vision -> Value -> Collective function = Common purpose, with the pilot's five activities
feeding in from above (arrow widths follow this week's effort split), cultural influences
(local and national) gating vision and value, structural influences (local and national)
gating action, the feedback loop from action back to value, and residents' activity
downstream. Every number on it is the current week's.
"""

from __future__ import annotations

import math

from abm.app.settings import ACTIVITY_LABELS
from abm.app.svg import esc, open_svg, text
from abm.app.theme import INK, MUTED, PARTS, STAGE_COLOURS
from abm.config import ACTIVITIES

W, H = 1000, 580
BOX_Y, BOX_H, BOX_W = 190, 112, 196
BOX_X = (30, 282, 534, 786)
ACT_Y, ACT_H, ACT_W = 56, 62, 176
ACT_X = tuple(30 + i * 194 for i in range(5))
#: Which parts each activity pushes (indices into PARTS), as in the ODD's submodels.
ACTIVITY_TARGETS = {
    "engagement": (0,),
    "insight": (0, 1),
    "collaborative": (1, 2),
    "leadership": (2,),
    "embedding": (2,),
}
ACTIVITY_NOTES = {
    "engagement": "new ties, first awareness",
    "insight": "makes influence land",
    "collaborative": "trust, value, ties",
    "leadership": "shifts structures",
    "embedding": "routines that last",
}


def _pct(x: float) -> str:
    if not math.isfinite(x):
        return "n/a"
    return f"{100 * x:.1f}%"


def _gauge(x: float, y: float, w: float, value: float, colour: str, cap: float | None = None) -> str:
    """A horizontal 0..1 bar with the value filled and an optional cap line."""
    v = max(0.0, min(1.0, value))
    out = [
        f'<rect x="{x:.1f}" y="{y:.1f}" width="{w:.1f}" height="10" rx="5" fill="#e9edf2"/>',
        f'<rect x="{x:.1f}" y="{y:.1f}" width="{w * v:.1f}" height="10" rx="5" fill="{colour}"/>',
    ]
    if cap is not None:
        cx = x + w * max(0.0, min(1.0, cap))
        out.append(
            f'<line x1="{cx:.1f}" x2="{cx:.1f}" y1="{y - 4:.1f}" y2="{y + 14:.1f}" stroke="#b3261e" '
            'stroke-width="2.5"/>'
        )
    return "".join(out)


def _arrow_defs() -> str:
    return (
        "<defs>"
        '<marker id="cp-arrow" viewBox="0 0 10 10" refX="8" refY="5" markerWidth="12" markerHeight="12" '
        'markerUnits="userSpaceOnUse" orient="auto-start-reverse">'
        '<path d="M0,0 L10,5 L0,10 z" fill="#7b8794"/></marker>'
        '<marker id="cp-arrow-dark" viewBox="0 0 10 10" refX="8" refY="5" markerWidth="11" markerHeight="11" '
        'markerUnits="userSpaceOnUse" orient="auto-start-reverse">'
        '<path d="M0,0 L10,5 L0,10 z" fill="#1d3557"/></marker>'
        "</defs>"
    )


def diagram_svg(view) -> str:  # view: abm.app.session.View
    """The annotated diagram for this week of the run."""
    latest = view.frame.iloc[-1]
    parts = [open_svg(W, H, "The Common Purpose Model, annotated with this run"), _arrow_defs()]
    parts.append(f'<rect x="0" y="0" width="{W}" height="{H}" fill="#ffffff"/>')
    parts.append(text(30, 26, f"The Common Purpose Model — week {view.week}", 20, weight="700", fill="#1d3557"))
    units = view.effort_units
    parts.append(
        text(
            W - 30,
            26,
            f"Effort budget {view.effort_budget:g} per 1,000 people a week = {units:,.0f} units",
            14,
            "end",
            MUTED,
        )
    )

    # the five activities, with this week's effort
    parts.append(text(30, 48, "The pilot's five activities (this week's effort)", 14, fill=MUTED, weight="600"))
    for i, a in enumerate(ACTIVITIES):
        x = ACT_X[i]
        on = view.activities_on.get(a, True)
        share = float(view.allocation.get(a, 0.0)) if on else 0.0
        fill = "#eef3f8" if on else "#f4f4f4"
        stroke = "#1d3557" if on else "#c4c9d0"
        parts.append(
            f'<rect x="{x}" y="{ACT_Y}" width="{ACT_W}" height="{ACT_H}" rx="12" fill="{fill}" stroke="{stroke}" '
            f'stroke-width="1.4"><title>{esc(ACTIVITY_LABELS[a])}: {ACTIVITY_NOTES[a]}</title></rect>'
        )
        parts.append(text(x + ACT_W / 2, ACT_Y + 22, ACTIVITY_LABELS[a], 15, "middle", INK if on else MUTED, "700"))
        detail = f"{share * units:,.0f} units · {100 * share:.0f}%" if on else "switched off"
        parts.append(text(x + ACT_W / 2, ACT_Y + 42, detail, 13.5, "middle", INK if on else MUTED))
        parts.append(text(x + ACT_W / 2, ACT_Y + 57, ACTIVITY_NOTES[a], 11.5, "middle", MUTED))
        # arrows to the parts they push, as wide as the effort
        for target in ACTIVITY_TARGETS[a]:
            if not on or share <= 0:
                continue
            x0 = x + ACT_W / 2 + (target - sum(ACTIVITY_TARGETS[a]) / len(ACTIVITY_TARGETS[a])) * 24
            y0 = ACT_Y + ACT_H
            x1 = BOX_X[target] + BOX_W / 2 + (i - 2) * 10
            y1 = BOX_Y - 4
            width = 1.2 + 9 * share
            parts.append(
                f'<path d="M{x0:.1f},{y0:.1f} C{x0:.1f},{y0 + 40:.1f} {x1:.1f},{y1 - 40:.1f} {x1:.1f},{y1:.1f}" '
                f'fill="none" stroke="#9aa5b1" stroke-opacity="0.8" stroke-width="{width:.1f}" '
                'marker-end="url(#cp-arrow)"/>'
            )

    # the equation: four boxes with this week's shares
    n = max(view.people, 1)
    for j, (label, colour, column, _code) in enumerate(PARTS):
        x = BOX_X[j]
        share = float(latest[column])
        parts.append(
            f'<rect x="{x}" y="{BOX_Y}" width="{BOX_W}" height="{BOX_H}" rx="14" fill="{colour}" fill-opacity="0.1" '
            f'stroke="{colour}" stroke-width="3"/>'
        )
        parts.append(text(x + BOX_W / 2, BOX_Y + 28, label, 18, "middle", colour, "700"))
        parts.append(text(x + BOX_W / 2, BOX_Y + 64, _pct(share), 30, "middle", INK, "700"))
        note = {
            0: "share the vision",
            1: "share it and value it",
            2: "act on it this week",
            3: "all three, held over time",
        }[j]
        parts.append(text(x + BOX_W / 2, BOX_Y + 86, note, 13, "middle", MUTED))
        people = round(share * n)
        parts.append(text(x + BOX_W / 2, BOX_Y + 104, f"{people:,} of {n:,} people", 12, "middle", MUTED))
    for j, sign in enumerate(("+", "+", "=")):
        x = BOX_X[j] + BOX_W + (BOX_X[j + 1] - BOX_X[j] - BOX_W) / 2
        parts.append(text(x, BOX_Y + BOX_H / 2 + 11, sign, 34, "middle", "#1d3557", "700"))

    # feedback: action and results raise value (a loop under the boxes)
    fx0 = BOX_X[2] + BOX_W * 0.3
    fx1 = BOX_X[1] + BOX_W * 0.7
    fy = BOX_Y + BOX_H
    parts.append(
        f'<path d="M{fx0:.1f},{fy + 2:.1f} C{fx0:.1f},{fy + 42:.1f} {fx1:.1f},{fy + 42:.1f} {fx1:.1f},{fy + 6:.1f}" '
        'fill="none" stroke="#1d3557" stroke-width="2" stroke-dasharray="6 4" marker-end="url(#cp-arrow-dark)"/>'
    )
    parts.append(
        text((fx0 + fx1) / 2, fy + 46, "feedback: visible action and results raise value", 12.5, "middle", "#1d3557")
    )

    # cultural influences (gate vision and value) and structural influences (gate action)
    py = 380
    ph = 170
    parts.append(
        f'<rect x="30" y="{py}" width="448" height="{ph}" rx="12" fill="#fbf7ee" stroke="#d9c7a0" stroke-width="1.4"/>'
    )
    parts.append(text(46, py + 24, "Cultural influences", 16, weight="700", fill="#7a5a12"))
    parts.append(text(462, py + 24, "gate how far influence lands", 12, "end", MUTED))
    parts.append(text(46, py + 50, "Local: people's cultural alignment", 13.5))
    parts.append(_gauge(290, py + 40, 120, view.cultural_alignment, "#c7a24a"))
    parts.append(text(418, py + 50, f"{view.cultural_alignment:.2f}", 13.5, weight="600"))
    # per ward
    wards = list(zip(view.ward_labels, view.ward_culture, strict=True))[:6]
    for k, (label, c) in enumerate(wards):
        yy = py + 66 + k * 13
        parts.append(text(62, yy + 9, label, 11, fill=MUTED))
        parts.append(f'<rect x="230" y="{yy + 1}" width="{max(1.0, 150 * c):.1f}" height="8" rx="3" fill="#e0c98a"/>')
        parts.append(text(386, yy + 9, f"{c:.2f}", 11, fill=MUTED))
    parts.append(text(46, py + 156, f"National: national culture ×{view.national_culture:.2f}", 13.5))
    # gate arrows up to vision and value
    for gx in (BOX_X[0] + BOX_W / 2, BOX_X[1] + 50):
        parts.append(
            f'<path d="M{gx:.1f},{py - 2} L{gx:.1f},{BOX_Y + BOX_H + 6}" stroke="#c7a24a" stroke-width="2.5" '
            'marker-end="url(#cp-arrow)"/>'
        )

    sx = 522
    parts.append(
        f'<rect x="{sx}" y="{py}" width="448" height="{ph}" rx="12" fill="#eef4f8" stroke="#a9c1d6" '
        'stroke-width="1.4"/>'
    )
    parts.append(text(sx + 16, py + 24, "Structural influences", 16, weight="700", fill="#1d4e79"))
    parts.append(text(sx + 432, py + 24, "gate whether commitment becomes action", 12, "end", MUTED))
    parts.append(text(sx + 16, py + 50, "Local: structural alignment (staff mean)", 13.5))
    parts.append(_gauge(sx + 292, py + 40, 100, view.structural_alignment, "#4f81b0", view.national_cap))
    parts.append(text(sx + 400, py + 50, f"{view.structural_alignment:.2f}", 13.5, weight="600"))
    parts.append(text(sx + 16, py + 72, f"highest organisation {view.max_structural_alignment:.2f}", 12.5, fill=MUTED))
    parts.append(
        text(
            sx + 16,
            py + 94,
            f"Embedded processes: {view.embedded_processes:,.0f} in {view.organisations_embedding} "
            f"organisation{'' if view.organisations_embedding == 1 else 's'}",
            13.5,
        )
    )
    parts.append(text(sx + 16, py + 128, "National: structural cap (red line)", 13.5))
    parts.append(_gauge(sx + 292, py + 118, 100, view.national_cap, "#b3261e"))
    parts.append(text(sx + 400, py + 128, f"{view.national_cap:.2f}", 13.5, weight="600"))
    parts.append(text(sx + 16, py + 156, "local structures can never rise above the national cap", 12, fill=MUTED))
    parts.append(
        f'<path d="M{BOX_X[2] + BOX_W / 2 + 40},{py - 2} L{BOX_X[2] + BOX_W / 2 + 40},{BOX_Y + BOX_H + 4}" '
        'stroke="#4f81b0" stroke-width="2.5" marker-end="url(#cp-arrow)"/>'
    )

    # downstream: residents' activity in the target wards
    start, now = view.inactive_target_start, view.inactive_target_now
    if math.isfinite(start) and math.isfinite(now):
        change = now - start
        arrow = "down" if change < -0.0005 else "up" if change > 0.0005 else "no change"
        line = (
            f"Downstream, residents of the target wards: inactive {_pct(start)} at week 0, {_pct(now)} now ({arrow}"
            + (f" {abs(change) * 100:.1f} points)" if arrow != "no change" else ")")
        )
        # green only when inactivity fell; a rise is shown in the national cap's red
        colour = STAGE_COLOURS["acting"] if arrow == "down" else "#b3261e" if arrow == "up" else INK
        parts.append(text(W / 2, H - 8, line, 14.5, "middle", colour, "600"))
    parts.append("</svg>")
    return "".join(parts)
