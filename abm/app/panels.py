"""The page's panels: the header, and the System, Model, Trends, Compare and Export tabs.

Each panel reads `session.changed` (so it redraws when the run changes) and draws from the
session's shared `View`; none of them touches the model directly.
"""

from __future__ import annotations

import html
import threading
from collections.abc import Callable

import numpy as np
import solara

from abm.acting import STAGES
from abm.app import charts, compare, export
from abm.app.controller import Controller
from abm.app.controls import slider
from abm.app.diagram import diagram_svg
from abm.app.explain import MECHANISMS, explain_html
from abm.app.network import NetworkCanvas
from abm.app.session import View
from abm.app.settings import Settings, preset_items, preset_names
from abm.app.svg import esc, sparkline
from abm.app.theme import (
    PA_LABELS,
    PART_NOTES,
    PARTS,
    STAGE_COLOUR_LIST,
    STAGE_COLOURS,
    STAGE_LABEL,
    STAGE_MEANING,
    org_label,
    pretty,
    role_label,
    role_shapes,
)
from abm.app.ui import Guarded, Svg, friendly, guard, title

EQUATION_HTML = "{} + {} + {} = {}".format(
    *(f'<span style="color: {colour}">{label}</span>' for label, colour, _, _ in PARTS)
)


def current(ctl: Controller) -> View | None:
    """The run as drawn now; reading it subscribes the calling component to changes."""
    ctl.session.changed.value  # noqa: B018
    return ctl.session.view()


# --- header ---------------------------------------------------------------------------------------


@solara.component
def Messages(ctl: Controller) -> None:
    ui = ctl.ui
    if ui.message.value:
        with solara.Row(style={"align-items": "center"}):
            solara.Error(ui.message.value, style={"flex": "1 1 auto"})
            solara.Button("Dismiss", on_click=lambda: ui.message.set(""), text=True)


@solara.component
def Header(ctl: Controller) -> None:
    view = current(ctl)
    if view is None:
        solara.Info("No run yet: choose a scenario and a seed in the sidebar, then press Reset.")
        return
    latest = view.frame.iloc[-1]
    # the week and the subtitle as ONE widget, and the cards as another: each week then sends two
    # updates instead of eight (the per-message overhead dominates the server's cost under load)
    sub = esc(
        f"of {view.weeks} · {view.name}"
        + (f" · on your map {view.map_name}" if view.map_name else "")
        + f" · {view.people:,} people · {view.ties:,} ties · seed {view.seed}"
    )
    solara.HTML(
        tag="div",
        unsafe_innerHTML=f'<div class="cp-week">Week {view.week}</div><div class="cp-sub">{sub}</div>',
        classes=["cp-head"],
        style="display: flex; align-items: baseline; flex-wrap: wrap; gap: 16px",
    )
    if view.broken:
        solara.Warning("This run stopped after an error. Press Reset to start again.")
    elif not view.running:
        solara.Success(f"The scenario's {view.weeks} weeks are done. Press Reset to start again.")
    cards = []
    for label, colour, column, _ in PARTS:
        share = float(latest[column])
        cards.append(
            f'<div class="cp-card" style="--cp-colour: {colour}">'
            f'<div class="cp-card-label">{esc(label)}</div>'
            f'<div class="cp-card-value">{100 * share:.1f}%</div>'
            f'<div class="cp-card-note">{esc(f"{PART_NOTES[label]} · {round(share * view.people):,} people")}</div>'
            "</div>"
        )
    solara.HTML(tag="div", unsafe_innerHTML="".join(cards), classes=["cp-cards"])
    solara.HTML(tag="div", unsafe_innerHTML=EQUATION_HTML, classes=["cp-equation"])


# --- System tab: network, inspector, ladder, events -------------------------------------------------


def _legend_html(view: View, shapes_by_role: list[str]) -> str:
    stage_keys = []
    for i, s in enumerate(STAGES):
        colour = STAGE_COLOUR_LIST[i]
        stage_keys.append(
            f'<span class="cp-key" title="{esc(STAGE_MEANING[s])}"><svg width="12" height="12">'
            f'<circle cx="6" cy="6" r="5.5" fill="{colour}"/></svg>{esc(STAGE_LABEL[s])} '
            f"<b>{view.stage_counts[i]:,}</b></span>"
        )
    role_keys = []
    for r, shape in zip(view.role_names, shapes_by_role, strict=True):
        role_keys.append(f'<span class="cp-key">{_shape_icon(shape)}{esc(role_label(r, plural=True))}</span>')
    return (
        f'<div class="cp-legend"><b>Colour: stage</b>{"".join(stage_keys)}</div>'
        f'<div class="cp-legend" style="margin-top: 3px"><b>Shape: role</b>{"".join(role_keys)}</div>'
    )


def _shape_icon(shape: str) -> str:
    c, r = 7, 5.5
    paths = {
        "circle": f'<circle cx="{c}" cy="{c}" r="4"/>',
        "square": '<rect x="2" y="2" width="10" height="10"/>',
        "diamond": '<path d="M7,0.5 L13,7 L7,13.5 L1,7 Z"/>',
        "triangle": '<path d="M7,1 L13,12 L1,12 Z"/>',
        "triangle_down": '<path d="M7,13 L13,2 L1,2 Z"/>',
        "star": '<path d="M7,0.5 L8.8,5.2 L13.5,5.2 L9.7,8.2 L11.1,13 L7,10.1 L2.9,13 L4.3,8.2 L0.5,5.2 L5.2,5.2 Z"/>',
        "hexagon": '<path d="M7,1 L12.2,4 L12.2,10 L7,13 L1.8,10 L1.8,4 Z"/>',
        "plus": '<path d="M5,1 H9 V5 H13 V9 H9 V13 H5 V9 H1 V5 H5 Z"/>',
        "pentagon": '<path d="M7,1 L13,5.5 L10.7,12.5 L3.3,12.5 L1,5.5 Z"/>',
    }
    del r
    return f'<svg width="14" height="14" fill="#4a5568">{paths.get(shape, paths["circle"])}</svg>'


def _times(n: int) -> str:
    """`never`, `once`, `twice`, `3 times`: how often a post changed hands."""
    return {0: "never", 1: "once", 2: "twice"}.get(n, f"{n:,} times")


def _mask(static, roles: list[str], wards: list[str], orgs: list[str], view: View) -> str:
    if not (roles or wards or orgs):
        return ""
    keep = np.ones(static.n, dtype=bool)
    if roles:
        codes = [i for i, r in enumerate(view.role_names) if role_label(r) in roles]
        keep &= np.isin(static.role, codes)
    if wards:
        codes = [i for i, w in enumerate(view.ward_labels) if w in wards]
        keep &= np.isin(static.ward, codes)
    if orgs:
        codes = [i for i, o in enumerate(view.org_names) if org_label(o) in orgs]
        keep &= np.isin(static.org, codes)
    return keep.astype(np.uint8).tobytes().translate(bytes.maketrans(b"\x00\x01", b"01")).decode("ascii")


def _b64_pairs(pairs: np.ndarray) -> str:
    import base64

    return base64.b64encode(pairs.astype("<u2").tobytes()).decode("ascii")


@solara.component
def NetworkPanel(ctl: Controller) -> None:
    ui = ctl.ui
    view = current(ctl)
    if view is None:
        return
    static = ctl.session.network_static()
    mode = ui.view_mode.value
    blocks_mode = view.mode == "blocks" or mode == "Blocks"
    with solara.Column(classes=["cp-panel"], gap="6px"):
        with solara.Row(style={"align-items": "center", "flex-wrap": "wrap"}, gap="10px"):
            title("The stakeholder system")
            solara.ToggleButtonsSingle(
                value="Blocks" if blocks_mode else "People",
                values=["People", "Blocks"],
                on_value=lambda v: ui.view_mode.set(v),
                dense=True,
            )
            if not blocks_mode:
                solara.Checkbox(label="Show ties", value=ui.show_ties)
        if view.mode == "blocks" and mode != "Blocks":
            solara.Info(
                f"{view.people:,} people is too many to draw one by one, so the view groups them in blocks of role "
                "and ward."
            )
        shapes_by_role = role_shapes(list(view.role_names))
        solara.HTML(tag="div", unsafe_innerHTML=_legend_html(view, shapes_by_role))
        if blocks_mode:
            if view.block_data is None:
                # people mode in the session: build the block view from the current model on demand
                from abm.app.layout import blocks as make_blocks

                with ctl.session.lock:
                    data = make_blocks(ctl.session.model)
                view_for_blocks = _with_blocks(view, data)
            else:
                view_for_blocks = view
            Svg(charts.blocks_svg(view_for_blocks), classes=["cp-blocks"])
            return
        if static is not None:
            PeopleView(ctl, view, static)


@solara.component
def PeopleView(ctl: Controller, view: View, static) -> None:
    """Filters and the canvas, person by person."""
    ui = ctl.ui
    mask = solara.use_memo(
        lambda: _mask(static, ui.roles.value, ui.wards.value, ui.orgs.value, view),
        [static.key, tuple(ui.roles.value), tuple(ui.wards.value), tuple(ui.orgs.value)],
    )
    base = solara.use_memo(lambda: _b64_pairs(view.ties_base), [view.ties_key])
    with solara.Row(style={"flex-wrap": "wrap"}, gap="8px"):
        role_names = [role_label(r) for r in view.role_names]
        solara.SelectMultiple(
            "Roles",
            values=ui.roles.value,
            all_values=role_names,
            on_value=ui.roles.set,
            dense=True,
            style={"min-width": "160px", "max-width": "260px"},
        )
        solara.SelectMultiple(
            "Wards",
            values=ui.wards.value,
            all_values=list(view.ward_labels),
            on_value=ui.wards.set,
            dense=True,
            style={"min-width": "160px", "max-width": "260px"},
        )
        solara.SelectMultiple(
            "Organisations",
            values=ui.orgs.value,
            all_values=[org_label(o) for o in view.org_names],
            on_value=ui.orgs.set,
            dense=True,
            style={"min-width": "160px", "max-width": "260px"},
        )
        if ui.roles.value or ui.wards.value or ui.orgs.value:
            solara.Button("Clear filters", on_click=ui.clear_filters, text=True, small=True)
    NetworkCanvas(
        layout_key=static.key,
        xy=static.xy,
        shapes=static.shapes,
        unit=static.unit,
        labels=static.labels,
        tips=static.tips,
        ties_key=view.ties_key,
        ties_base=base,
        ties_add=_b64_pairs(view.ties_add),
        ties_remove=_b64_pairs(view.ties_remove),
        ties_wide=False,
        stages=view.stages[: static.n],
        colours=list(STAGE_COLOUR_LIST),
        mask=mask,
        selected=ui.selected.value,
        week=view.week,
        show_ties=ui.show_ties.value,
        aspect=0.8,
        event_pick=ctl.select,
    )
    solara.HTML(
        tag="div",
        unsafe_innerHTML=(
            "Each mark is a person. Staff sit in the middle, by organisation and sector; residents around them, "
            "by ward. Hover for who someone is; click to inspect them."
        ),
        classes=["cp-muted"],
    )


def _with_blocks(view: View, data) -> View:
    from dataclasses import replace

    return replace(view, block_data=data)


@solara.component
def Inspector(ctl: Controller) -> None:
    ui = ctl.ui
    current(ctl)
    i = ui.selected.value
    with solara.Column(classes=["cp-panel"], gap="4px"):
        title("Agent inspector")
        person = ctl.session.person(i) if i >= 0 else None
        if person is None:
            solara.HTML(
                tag="div",
                unsafe_innerHTML="Click someone in the network to see who they are, their history and their ties.",
                classes=["cp-muted"],
            )
            PickSomeone(ctl)
            return
        stage = STAGES[person.stage]
        chip = (
            f'<span class="cp-chip" style="background: {STAGE_COLOUR_LIST[person.stage]}">'
            f"{esc(STAGE_LABEL[stage])}</span>"
        )
        where = esc(org_label(person.organisation)) + " · " if person.organisation else ""
        head = (
            f'<div style="font-size: 1.05rem"><b>Person {person.index:,}</b>: {esc(role_label(person.role))} · '
            f"{where}{esc(person.ward)} {chip}</div>"
            f'<div class="cp-muted">{esc(STAGE_MEANING[stage])}</div>'
        )
        solara.HTML(tag="div", unsafe_innerHTML=head)
        rows = [
            ("Vision", f"{person.vision:.2f}"),
            ("Value", f"{person.value:.2f}"),
            ("Acting this week", "yes" if person.acting else "no"),
            ("Skills", f"{person.skills:.2f}"),
            ("Cultural alignment", f"{person.culture:.2f}"),
        ]
        if person.structure is not None:
            rows.append(("Organisation's structural alignment", f"{person.structure:.2f}"))
        if person.activity_class >= 0:
            rows.append(("Active Lives", PA_LABELS[person.activity_class]))
        if person.community:
            rows.append(("Community of interest", pretty(person.community)))
        firsts = [
            ("subscribed", person.first_subscribed),
            ("valued", person.first_valued),
            ("acted", person.first_acting),
        ]
        rows.append(("Weeks first subscribed, valued, acted", ", ".join(str(w) if w >= 0 else "—" for _, w in firsts)))
        if person.staff:
            rows.append(("Post changed hands", _times(person.replaced)))
        kv = "".join(f'<div class="k">{esc(k)}</div><div>{esc(v)}</div>' for k, v in rows)
        solara.HTML(tag="div", unsafe_innerHTML=f'<div class="cp-kv">{kv}</div>')
        if person.weeks.size:
            Svg(
                sparkline(
                    person.weeks,
                    [
                        ("vision", STAGE_COLOURS["subscribed"], person.history_vision),
                        ("value", STAGE_COLOURS["valuing"], person.history_value),
                    ],
                    person.history_stage,
                    STAGE_COLOUR_LIST,
                    title="State history",
                )
            )
        solara.HTML(tag="div", unsafe_innerHTML=f"<b>Ties:</b> {person.degree:,} (most trusted first; click to follow)")
        with solara.Column(gap="2px"):
            for j, role, place, st, trust in person.neighbours[:8]:
                label = f"{role_label(role)}, {place}: {STAGE_LABEL[STAGES[st]]} (trust {trust:.2f})"
                solara.Button(
                    label,
                    on_click=lambda j=j: ctl.select(j),
                    text=True,
                    small=True,
                    style={"justify-content": "flex-start", "text-transform": "none"},
                    classes=["cp-neighbour"],
                )
        solara.Button("Close", on_click=lambda: ui.selected.set(-1), text=True, small=True)


@solara.component
def PickSomeone(ctl: Controller) -> None:
    """Pick a random person of a role (a way in without clicking the network)."""
    view = ctl.session.view()
    role = solara.use_reactive("")
    if view is None:
        return
    roles = [role_label(r) for r in view.role_names]

    def pick() -> None:
        with ctl.session.lock:
            model = ctl.session.model
            if model is None:
                return
            chosen = role.value or roles[0]
            code = roles.index(chosen)
            pool = np.flatnonzero(model.state.role == code)
            if pool.size == 0:
                return
            # a fresh generator: picking must not disturb the model's own random stream
            i = int(pool[np.random.default_rng().integers(pool.size)])
        ctl.select(i)

    with solara.Row(style={"align-items": "center"}, gap="6px"):
        solara.Select(
            "Role",
            value=role.value or roles[0],
            values=roles,
            on_value=role.set,
            dense=True,
            style={"max-width": "200px"},
        )
        solara.Button("Pick someone", on_click=guard(ctl.ui, pick, "Pick"), outlined=True, small=True)


@solara.component
def LadderPanel(ctl: Controller) -> None:
    view = current(ctl)
    if view is None:
        return
    with solara.Column(classes=["cp-panel"], gap="2px"):
        Svg(charts.ladder_rungs_svg(view))


@solara.component
def EventButtons(ctl: Controller) -> None:
    ui = ctl.ui
    # the run's status, not every week's change: the buttons only follow running / finished
    _, can = ctl.session.status.value
    cap = solara.use_reactive(0.35)
    keep = solara.use_reactive(0.5)
    with solara.Column(classes=["cp-panel"], gap="4px"):
        title("Fire an event now")
        solara.HTML(
            tag="div",
            unsafe_innerHTML="Takes effect from the next week. Compare with a run without it (same seed).",
            classes=["cp-muted"],
        )
        with solara.Columns([1, 1], gutters_dense=True):
            with solara.Column(gap="0px"):
                solara.Button(
                    "National policy change",
                    icon_name="mdi-bank",
                    on_click=guard(ui, lambda: ctl.fire("national_policy_change", structural_cap=cap.value), "Event"),
                    disabled=not can,
                    outlined=True,
                    small=True,
                    classes=["cp-wrap-btn"],
                )
                slider("New national structural cap", cap.value, 0.0, 1.0, 0.05, cap.set)
            with solara.Column(gap="0px"):
                solara.Button(
                    "Funding cut",
                    icon_name="mdi-cash-minus",
                    on_click=guard(ui, lambda: ctl.fire("funding_cut", factor=keep.value), "Event"),
                    disabled=not can,
                    outlined=True,
                    small=True,
                    classes=["cp-wrap-btn"],
                )
                slider("Share of the budget kept", keep.value, 0.0, 1.0, 0.05, keep.set, f"{100 * keep.value:.0f}%")
        with solara.Row(gap="8px", style={"flex-wrap": "wrap", "margin-top": "6px"}):
            solara.Button(
                "A leader leaves",
                icon_name="mdi-account-arrow-right",
                on_click=guard(ui, lambda: ctl.fire("leader_leaves"), "Event"),
                disabled=not can,
                outlined=True,
                small=True,
                classes=["cp-wrap-btn"],
            )
            solara.Button(
                "A new partner joins",
                icon_name="mdi-account-multiple-plus",
                on_click=guard(ui, lambda: ctl.fire("partner_joins"), "Event"),
                disabled=not can,
                outlined=True,
                small=True,
                classes=["cp-wrap-btn"],
            )
        if ui.notice.value:
            solara.HTML(tag="div", unsafe_innerHTML=esc(ui.notice.value), classes=["cp-muted"])


@solara.component
def EventLog(ctl: Controller) -> None:
    view = current(ctl)
    if view is None:
        return
    with solara.Column(classes=["cp-panel"], gap="4px"):
        title("What happened (newest first)")
        if not view.events:
            solara.HTML(tag="div", unsafe_innerHTML="Nothing yet: press Step or Play.", classes=["cp-muted"])
            return
        items = []
        for e in reversed(view.events[-200:]):
            text = str(e["text"])
            cls = ' class="cp-log-app"' if text.endswith("(fired from the app)") else ""
            items.append(
                f'<li><span class="cp-log-week">week {int(e["week"])}</span><span{cls}>{esc(text)}</span></li>'
            )
        solara.HTML(tag="ul", unsafe_innerHTML="".join(items), classes=["cp-log"])


@solara.component
def SystemTab(ctl: Controller) -> None:
    with solara.Columns([8, 4], gutters_dense=True):
        Guarded(lambda: NetworkPanel(ctl), "network view")
        with solara.Column(gap="10px"):
            Guarded(lambda: Inspector(ctl), "agent inspector")
            Guarded(lambda: LadderPanel(ctl), "ladder")
    with solara.Columns([5, 7], gutters_dense=True):
        Guarded(lambda: EventButtons(ctl), "event buttons")
        Guarded(lambda: EventLog(ctl), "event log")


# --- Model tab: the diagram and the explanations ---------------------------------------------------


@solara.component
def DiagramPanel(ctl: Controller) -> None:
    view = current(ctl)
    if view is None:
        return
    with solara.Column(classes=["cp-panel"], gap="2px"):
        Svg(diagram_svg(view), classes=["cp-diagram"])


@solara.component
def ExplainPanel(ctl: Controller) -> None:
    view = ctl.session.view()
    ctl.session.changed.value  # noqa: B018
    if view is None or ctl.session.model is None:
        return
    cfg = ctl.session.model.config
    with solara.Column(classes=["cp-panel"], gap="2px"):
        title("How each mechanism works (with this scenario's numbers)")
        for m in MECHANISMS:
            with solara.Details(summary=m.title):
                solara.HTML(tag="div", unsafe_innerHTML=explain_html(m, cfg))
        with solara.Details(summary="What happens each week, in order"):
            head, *lines = view.describe.splitlines()
            items = "".join(f"<li>{esc(line.split('. ', 1)[-1])}</li>" for line in lines)
            solara.HTML(tag="div", unsafe_innerHTML=f"<p>{esc(head)}</p><ol>{items}</ol>")


@solara.component
def ModelTab(ctl: Controller) -> None:
    Guarded(lambda: DiagramPanel(ctl), "diagram")
    Guarded(lambda: ExplainPanel(ctl), "explanations")


# --- Trends tab ----------------------------------------------------------------------------------


@solara.component
def TrendsTab(ctl: Controller) -> None:
    ui = ctl.ui
    view = current(ctl)
    if view is None:
        return
    grouping = ui.grouping.value
    with solara.Row(style={"align-items": "center"}, gap="12px"):
        solara.ToggleButtonsSingle(value=ui.grouping, values=list(charts.GROUPINGS), dense=True)
    if grouping == "Overall":
        with solara.Columns([1, 1], gutters_dense=True):
            Svg(charts.trend_svg(view))
            Svg(charts.ladder_time_svg(view))
    else:
        svgs = charts.group_svgs(view, grouping)
        with solara.Columns([1, 1], gutters_dense=True):
            Svg(svgs[0])
            Svg(svgs[1])
        with solara.Columns([1, 1], gutters_dense=True):
            Svg(svgs[2])
            Svg(svgs[3])
        names = charts.group_names(view, grouping)
        from abm.app.theme import GROUP_PALETTE

        keys = "".join(
            f'<span class="cp-key"><svg width="18" height="10"><rect width="18" height="4" y="3" '
            f'fill="{GROUP_PALETTE[k % len(GROUP_PALETTE)]}"/></svg>{esc(name)}</span>'
            for k, name in enumerate(names)
        )
        solara.HTML(tag="div", unsafe_innerHTML=f'<div class="cp-legend">{keys}</div>')
    with solara.Columns([1, 1], gutters_dense=True):
        Svg(charts.active_lives_svg(view))
        Svg(charts.inactive_time_svg(view))
    with solara.Columns([1, 1], gutters_dense=True):
        Svg(charts.structures_svg(view))
        Svg(charts.embedded_svg(view))


# --- Compare tab ---------------------------------------------------------------------------------


@solara.component
def CompareRunner(ctl: Controller) -> None:
    """Runs the requested comparison in a thread; lives at page level so switching tabs keeps it."""
    ui = ctl.ui
    job: compare.Request | None = ui.cmp_request.value

    def work(cancel: threading.Event) -> None:
        if job is None:
            return
        ui.cmp_state.set("running")
        try:
            result = compare.run_comparison(
                job.a, job.b, job.seeds, job.weeks, progress=ui.cmp_progress.set, cancel=cancel
            )
        except compare.Cancelled:
            return  # a newer request replaced this one (its own thread sets the state), or the page closed
        except Exception as exc:
            if not cancel.is_set():
                ui.cmp_error.set(f"The comparison could not run: {friendly(exc)}")
                ui.cmp_state.set("error")
            return
        if cancel.is_set():
            return  # finished just as a newer request came: that one's result is the one to show
        ui.cmp_result.set(result)
        ui.cmp_state.set("done")

    # every press is a new Request (compared by identity), so the thread runs again even when the
    # choices are the same as last time: it then takes the result from the cache at once
    solara.use_thread(work, dependencies=[job], intrusive_cancel=False)


@solara.component
def CompareTab(ctl: Controller) -> None:
    ui = ctl.ui
    names = list(preset_names())
    a, b, reps, weeks, use_mine = ui.cmp_a, ui.cmp_b, ui.cmp_reps, ui.cmp_weeks, ui.cmp_mine
    running = ui.cmp_state.value == "running"
    weeks_error: str | bool = False
    try:
        compare.parse_weeks(weeks.value)
    except ValueError as exc:
        weeks_error = str(exc)

    def start() -> None:
        n_weeks = compare.parse_weeks(weeks.value)  # the button is disabled while Weeks is invalid
        first = int(ctl.session.settings.seed)
        seeds = tuple(first + k for k in range(int(reps.value)))
        if use_mine.value and ui.draft.value.preset == a.value:
            settings_a = ui.draft.value
        else:
            settings_a = Settings.for_preset(a.value)
        settings_b = Settings.for_preset(b.value)
        # build the whole request before touching the state: if anything above fails, the tab
        # is left as it was (never "running" with no thread to finish it)
        request = compare.Request(settings_a, settings_b, seeds, n_weeks)
        ui.cmp_progress.set(0.0)
        ui.cmp_error.set("")
        ui.cmp_state.set("running")
        ui.cmp_request.set(request)  # always a new object, so the runner always starts

    with solara.Column(classes=["cp-panel"], gap="6px"):
        title("Compare two scenarios, run with the same seeds")
        solara.HTML(
            tag="div",
            unsafe_innerHTML=(
                "Both scenarios run once per seed (seed 1, 2, 3, ... from your current seed). The same seed gives "
                "both the same random start, so differences come from the scenario, not luck. Shaded bands: "
                "lowest to highest run."
            ),
            classes=["cp-muted"],
        )
        if ctl.session.map is not None:
            solara.HTML(
                tag="div",
                unsafe_innerHTML=(
                    f"Comparisons run on the scenarios' own networks, not on your map {esc(ctl.session.map.name)}."
                ),
                classes=["cp-pending"],
            )
        with solara.Row(style={"flex-wrap": "wrap", "align-items": "center"}, gap="10px"):
            solara.Select(
                "Scenario A",
                value=a.value,
                values=preset_items(),  # type: ignore[arg-type]  # Vuetify items: the name shown, the file the value
                on_value=lambda v: (a.set(v), b.set(compare.suggested_b(v, names))),
                style={"min-width": "260px", "max-width": "400px"},
            )
            solara.Select(
                "Scenario B",
                value=b.value,
                values=preset_items(),  # type: ignore[arg-type]  # Vuetify items: the name shown, the file the value
                on_value=b.set,
                style={"min-width": "260px", "max-width": "400px"},
            )
            solara.Select(
                "Seeds",
                value=reps.value,
                values=list(compare.REPLICATES),
                on_value=reps.set,
                style={"max-width": "90px"},
            )
            solara.InputText(
                "Weeks",
                value=weeks,
                continuous_update=True,  # the message (and the button) follow what is typed
                error=weeks_error,
                style={"max-width": "300px" if weeks_error else "90px"},
            )
            solara.Checkbox(label="A uses my slider settings", value=use_mine)
            solara.Button(
                "Run comparison",
                icon_name="mdi-compare-horizontal",
                on_click=guard(ui, start, "Compare"),
                color="primary",
                disabled=running or bool(weeks_error),
            )
    if running:
        solara.ProgressLinear(value=100 * ui.cmp_progress.value)
        solara.HTML(tag="div", unsafe_innerHTML=f"Running… {100 * ui.cmp_progress.value:.0f}%", classes=["cp-muted"])
        return
    if ui.cmp_state.value == "error":
        solara.Error(ui.cmp_error.value)
        return
    res = ui.cmp_result.value
    if res is None:
        return
    Guarded(lambda: CompareResults(res), "comparison")


@solara.component
def CompareResults(res: compare.CompareResult) -> None:
    left, right = compare.side_svgs(res)
    with solara.Columns([1, 1], gutters_dense=True, classes=["cp-compare"]):
        Svg(left)
        Svg(right)
    rows = compare.summary_rows(res)
    table = "".join(
        f"<tr><td>{esc(r['measure'])}</td><td class='num'>{esc(r['a'])}</td><td class='num'>{esc(r['b'])}</td>"
        f"<td class='num'>{esc(r['diff'])}</td><td class='num'>{esc(r['ci'])}</td><td>{esc(r['verdict'])}</td></tr>"
        for r in rows
    )
    head = (
        f"<tr><th>At week {res.weeks}</th><th class='num'>A: mean (range)</th><th class='num'>B: mean (range)</th>"
        "<th class='num'>B − A</th><th class='num'>95% CI (paired)</th><th></th></tr>"
    )
    with solara.Column(classes=["cp-panel"]):
        title(f"A: {res.name_a}  ·  B: {res.name_b}")
        solara.HTML(tag="table", unsafe_innerHTML=head + table, classes=["cp-table"])
        solara.HTML(
            tag="div",
            unsafe_innerHTML=esc(
                f"Seeds {', '.join(str(s) for s in res.seeds)}. 'Within the noise': the 95% interval of the "
                "paired difference includes zero. Model outputs: they explore, they do not forecast."
            ),
            classes=["cp-muted"],
        )
    with solara.Columns([1, 1], gutters_dense=True):
        Svg(compare.difference_svg(res))
        Svg(compare.difference_svg(res, "target_inactive_share"))


# --- Export tab ----------------------------------------------------------------------------------


def _maker(ctl: Controller, make: Callable) -> Callable[[], bytes]:
    def data() -> bytes:
        try:
            return make(ctl.session)
        except Exception as exc:  # the download fails quietly in the browser: say why on the page
            ctl.ui.message.set(f"Export failed: {friendly(exc)}")
            raise

    return data


@solara.component
def ExportTab(ctl: Controller) -> None:
    view = current(ctl)
    if view is None:
        return
    with solara.Column(classes=["cp-panel"], gap="6px"):
        title(f"Download this run (week {view.week})")
        solara.HTML(
            tag="div",
            unsafe_innerHTML=(
                "Tables are the model's own outputs (as <code>abm run</code> writes them). "
                "<code>config.yaml</code> holds the scenario, seed and any events you fired, so "
                "<code>abm run config.yaml</code> repeats this run."
            ),
            classes=["cp-muted"],
        )
        if view.map_name:
            solara.HTML(
                tag="div",
                unsafe_innerHTML=(
                    f"This run is on your map <b>{esc(view.map_name)}</b>: <code>config.yaml</code> names it "
                    "(with its SHA-256) and the ZIP below includes it beside the config."
                ),
                classes=["cp-pending"],
            )
        groups = [
            (
                "Series",
                [
                    "weekly.csv",
                    "weekly.parquet",
                    "groups.csv",
                    "groups.parquet",
                    "people.csv",
                    "events.csv",
                    "config.yaml",
                ],
            ),
            (
                "Figures",
                [
                    "trends.png",
                    "ladder.png",
                    "by_role.png",
                    "by_ward.png",
                    "active_lives.png",
                    "structures.png",
                    "network.png",
                ],
            ),
        ]
        for heading, files in groups:
            solara.HTML(tag="div", unsafe_innerHTML=html.escape(heading), classes=["cp-section"])
            with solara.Row(style={"flex-wrap": "wrap"}, gap="8px"):
                for name in files:
                    label, make, mime = export.FILES[name]
                    if name == "network.png" and view.mode == "blocks":
                        continue
                    solara.FileDownload(
                        data=_maker(ctl, make),
                        filename=export.file_name(view, name),
                        label=label,
                        mime_type=mime,
                    )
        solara.HTML(tag="div", unsafe_innerHTML="Everything", classes=["cp-section"])
        solara.FileDownload(
            data=_maker(ctl, export.everything_zip),
            filename=export.file_name(view, "all.zip"),
            label="All of the above (ZIP)",
            mime_type="application/zip",
        )
