"""Colours, marker shapes, labels and the page's CSS, shared by every view of the app.

The stage colours are the Okabe-Ito colour-blind-safe palette (Okabe and Ito 2008): a workshop
room always has someone who cannot tell red from green. The four parts of the equation use the
same colours everywhere: cards, lines, network nodes, the diagram.
"""

from __future__ import annotations

from abm.acting import STAGE_LABELS, STAGES
from abm.labels import plural as _plural
from abm.labels import pretty

#: Commitment stages, in ladder order (codes 0..5 as in `model.stage`).
STAGE_COLOURS: dict[str, str] = {
    "unaware": "#cfd5dd",
    "engaged": "#8fc7ea",
    "subscribed": "#0072b2",
    "valuing": "#e69f00",
    "acting": "#009e73",
    "common_purpose": "#c0398c",
}
STAGE_COLOUR_LIST: tuple[str, ...] = tuple(STAGE_COLOURS[s] for s in STAGES)
STAGE_LABEL = dict(zip(STAGES, STAGE_LABELS, strict=True))
#: What each rung means, in a few plain words (legend and inspector).
STAGE_MEANING = {
    "unaware": "has not heard of the vision",
    "engaged": "has heard of it",
    "subscribed": "shares the vision",
    "valuing": "shares it and values it",
    "acting": "acts on it this week",
    "common_purpose": "vision, value and action, held over time",
}

#: The four parts of the equation: label, colour, the overall share that measures it, the stage code.
PARTS: tuple[tuple[str, str, str, int], ...] = (
    ("Vision", STAGE_COLOURS["subscribed"], "subscribed_share", 2),
    ("Value", STAGE_COLOURS["valuing"], "valuing_share", 3),
    ("Collective function", STAGE_COLOURS["acting"], "acting_share", 4),
    ("Common purpose", STAGE_COLOURS["common_purpose"], "common_purpose_share", 5),
)
PART_COLOURS = {label: colour for label, colour, _, _ in PARTS}
#: What each share counts, in plain words (cards and chart legends).
PART_NOTES = {
    "Vision": "share the vision",
    "Value": "share it and value it",
    "Collective function": "act on it together",
    "Common purpose": "all three, held over time",
}

#: Active Lives classes (residents only), codes 0..2 as in `state.pa_class`.
PA_LABELS = ("Inactive", "Fairly active", "Active")
PA_NOTES = ("under 30 minutes a week", "30 to 149 minutes", "150 minutes or more")
PA_COLOURS = ("#d55e00", "#f0c75e", "#56b4e9")

#: Marker shapes the network canvas and the legends can draw (the code is the index).
SHAPES = ("circle", "square", "diamond", "triangle", "triangle_down", "star", "hexagon", "plus", "pentagon")
#: Shapes for the South Tees roles; other roles take the shapes left over, in order.
ROLE_SHAPES = {
    "resident": "circle",
    "leader": "star",
    "commissioner": "diamond",
    "manager": "square",
    "gp": "plus",
    "housing_officer": "triangle",
    "vcse_worker": "hexagon",
    "business": "triangle_down",
}

#: A categorical palette for groups (roles, wards) in the by-group charts: not the stage colours.
GROUP_PALETTE = (
    "#4e79a7",
    "#f28e2b",
    "#59a14f",
    "#e15759",
    "#76b7b2",
    "#b07aa1",
    "#edc948",
    "#9c755f",
    "#ff9da7",
    "#7f7f7f",
)
INK = "#1f2933"
MUTED = "#5f6b7a"
GRID = "#e4e8ee"
ACCENT = "#1d3557"
FONT = "'Segoe UI', 'Helvetica Neue', Arial, 'Liberation Sans', sans-serif"


def role_shapes(role_names: list[str]) -> list[str]:
    """A marker shape per role: the South Tees ones by name, others from the unused shapes."""
    used = {ROLE_SHAPES[r] for r in role_names if r in ROLE_SHAPES}
    spare = [s for s in SHAPES if s not in used and s != "circle"] or list(SHAPES[1:])
    out = []
    for i, role in enumerate(role_names):
        out.append(ROLE_SHAPES.get(role) or spare[i % len(spare)])
    return out


def role_label(name: str, plural: bool = False) -> str:
    """`gp` -> `GP` (`GPs` with `plural`), `vcse_worker` -> `VCSE worker(s)`."""
    text = pretty(name)
    return _plural(text) if plural else text


def org_label(name: str | None) -> str:
    """`pilot_team` -> `Pilot team`, `gp_practice_4` -> `GP practice 4`; an uploaded map's names as they are."""
    return pretty(name) if name else ""


CSS = """
/* Solara's "runs on Solara" badge sits over the charts and the inspector (app.py and serve.py turn it
   off; this hides it when the page was served before the app was imported) */
div:has(> b > a[href="https://solara.dev"]) { display: none !important; }
.v-navigation-drawer { width: 330px !important; }
.v-navigation-drawer .v-input__slot { margin-bottom: 0; }
.cp-page { padding: 6px 18px 40px 18px; max-width: 1500px; }
.cp-title { font-size: 1.35rem; font-weight: 600; color: #1d3557; margin: 4px 0 0 0; }
.cp-week { font-size: 2.3rem; font-weight: 700; line-height: 1.1; color: #1d3557; }
.cp-sub { color: #5f6b7a; font-size: 0.95rem; }
.cp-cards { display: flex; flex-wrap: wrap; gap: 10px; }
.cp-card { border-left: 7px solid var(--cp-colour); padding: 6px 12px; background: #f7f9fb;
           border-radius: 6px; min-width: 165px; flex: 1 1 165px; }
.cp-card-label { font-weight: 700; color: var(--cp-colour); }
.cp-card-value { font-size: 1.7rem; font-weight: 700; color: #1f2933; line-height: 1.15; }
.cp-card-note { color: #5f6b7a; font-size: 0.82rem; }
.cp-equation { font-size: 1.15rem; font-weight: 700; letter-spacing: 0.01em; }
.cp-svg svg { width: 100%; height: auto; display: block; }
.cp-panel { background: #ffffff; border: 1px solid #e4e8ee; border-radius: 8px; padding: 10px 12px; }
.cp-panel-title { font-weight: 700; color: #1d3557; font-size: 1.02rem; margin-bottom: 4px; }
.cp-muted { color: #5f6b7a; font-size: 0.88rem; }
.cp-legend { display: flex; flex-wrap: wrap; gap: 4px 14px; font-size: 0.85rem; color: #1f2933;
             align-items: center; }
.cp-legend span.cp-key { display: inline-flex; align-items: center; gap: 5px; white-space: nowrap; }
.cp-log { max-height: 300px; overflow-y: auto; font-size: 0.9rem; margin: 0; padding-left: 0;
          list-style: none; }
.cp-log li { padding: 3px 0; border-bottom: 1px solid #eef1f5; }
.cp-log .cp-log-week { display: inline-block; min-width: 64px; color: #5f6b7a; font-variant-numeric: tabular-nums; }
.cp-log .cp-log-app { color: #c0398c; font-weight: 600; }
.cp-chip { display: inline-block; padding: 1px 8px; border-radius: 10px; color: #fff; font-size: 0.8rem;
           font-weight: 600; }
.cp-table { border-collapse: collapse; font-size: 0.9rem; width: 100%; }
.cp-table th, .cp-table td { text-align: left; padding: 3px 8px; border-bottom: 1px solid #eef1f5; }
.cp-table td.num, .cp-table th.num { text-align: right; font-variant-numeric: tabular-nums; }
.cp-explain h4 { margin: 2px 0 4px 0; color: #1d3557; }
.cp-explain p { margin: 0 0 6px 0; line-height: 1.5; }
.cp-kv { display: grid; grid-template-columns: max-content 1fr; gap: 2px 12px; font-size: 0.9rem; }
.cp-kv .k { color: #5f6b7a; }
.cp-pending { background: #fff6e0; border-left: 4px solid #e69f00; padding: 6px 10px; border-radius: 4px;
              font-size: 0.88rem; }
.cp-slider-label { display: flex; justify-content: space-between; font-size: 0.86rem; color: #1f2933;
                   margin: 6px 2px -10px 2px; gap: 8px; }
.cp-slider-label b { font-weight: 600; color: #1d3557; white-space: nowrap; }
.v-navigation-drawer .v-slider { margin-left: 0; margin-right: 0; }
.cp-neighbour { height: auto !important; min-height: 22px; padding: 2px 6px !important; width: 100%;
                justify-content: flex-start !important; }
.cp-neighbour .v-btn__content { white-space: normal; text-align: left; font-size: 0.78rem; letter-spacing: 0;
                                font-weight: 500; line-height: 1.25; flex: 1 1 auto; justify-content: flex-start;
                                text-transform: none; }
/* buttons whose label may not fit their column (at 1440 px "National policy change" did not): the
   label wraps inside the border, icon included, rather than running out of it */
.v-btn.cp-wrap-btn { height: auto !important; min-height: 28px; max-width: 100%; padding-top: 3px;
                     padding-bottom: 3px; }
.v-btn.cp-wrap-btn .v-btn__content { white-space: normal; flex: 1 1 auto; min-width: 0; line-height: 1.25;
                                     text-align: left; }
.cp-hint { color: #5f6b7a; font-size: 0.78rem; line-height: 1.3; margin: -14px 2px 4px 2px; }
.cp-section { font-weight: 700; color: #1d3557; margin: 10px 0 0 0; font-size: 0.95rem; }
.cp-network { position: relative; width: 100%; }
.cp-network canvas { width: 100%; display: block; cursor: crosshair; border-radius: 6px; background: #fbfcfd; }
.cp-network .cp-tip { position: absolute; pointer-events: none; background: rgba(29, 53, 87, 0.94); color: #fff;
                      padding: 4px 8px; border-radius: 4px; font-size: 12px; white-space: nowrap; z-index: 5; }
"""
