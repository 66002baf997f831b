"""The sidebar: scenario, seed, Step / Play / Reset, speed, and the main parameters."""

from __future__ import annotations

import html
import threading
from typing import Any, cast

import solara
import traitlets
from ipyvue import Template
from ipywidgets import widget_serialization
from solara.components.file_drop import FileDropZone

from abm.app.controller import Controller
from abm.app.settings import (
    ACTIVITY_LABELS,
    INFLUENCE_RULES,
    MAX_UPLOAD_MB,
    POLICIES,
    SCALES,
    Settings,
    parse_seed,
    preset_config,
    preset_items,
)
from abm.app.ui import MAX_SPEED, MIN_SPEED, guard, log
from abm.app.upload import ACCEPT, UploadedMap
from abm.config import ACTIVITIES
from abm.labels import pretty

SCALE_LABELS = {1: "As in the scenario", 10: "×10 (drawn as blocks)", 50: "×50 (drawn as blocks)"}


@solara.component
def RunButtons(ctl: Controller) -> None:
    """Step, Play / Pause, +1 year, Reset, and the speed slider."""
    ui = ctl.ui
    # the run's status, not every week's change: the buttons only follow running / finished
    _, can_step = ctl.session.status.value
    playing = ui.playing.value
    with solara.Row(gap="6px", style={"flex-wrap": "wrap"}):
        solara.Button(
            "Step",
            icon_name="mdi-step-forward",
            on_click=guard(ui, ctl.step, "Step"),
            disabled=not can_step or playing,
            color="primary",
        )
        solara.Button(
            "Pause" if playing else "Play",
            icon_name="mdi-pause" if playing else "mdi-play",
            on_click=guard(ui, ctl.toggle_play, "Play"),
            disabled=not can_step and not playing,
            color="primary",
            outlined=True,
        )
        solara.Button(
            "+1 year",
            icon_name="mdi-fast-forward",
            on_click=guard(ui, lambda: ctl.jump(52), "+1 year"),
            disabled=not can_step or playing,
            outlined=True,
        )
        solara.Button("Reset", icon_name="mdi-restore", on_click=guard(ui, ctl.reset, "Reset"), outlined=True)
    slider("Speed (weeks per second)", ui.speed.value, MIN_SPEED, MAX_SPEED, 1.0, ui.speed.set)


@solara.component
def ScenarioPicker(ctl: Controller) -> None:
    ui = ctl.ui
    draft = ui.draft.value
    solara.Select(
        label="Scenario",
        value=draft.preset,
        values=preset_items(),  # type: ignore[arg-type]  # Vuetify items: the name shown, the file the value
        on_value=guard(ui, ctl.choose_preset, "Scenario"),
    )
    try:
        cfg = preset_config(draft.preset)
        about = cfg.description or cfg.name
    except Exception:
        about = ""
    if about:
        solara.HTML(tag="div", unsafe_innerHTML=html.escape(about), classes=["cp-muted"])
    seed_error: str | bool = False
    try:
        parse_seed(ui.seed_text.value)
    except ValueError as exc:
        seed_error = str(exc)
    solara.InputText(
        label="Seed",
        value=ui.seed_text.value,
        on_value=guard(ui, ctl.apply_seed, "Seed"),
        continuous_update=False,
        error=seed_error,
        message="Same scenario + same seed = the same run. Press Enter to start it.",
    )


@solara.component
def PendingNote(ctl: Controller) -> None:
    """Tells the user that changed sliders take effect at the next Reset."""
    ctl.session.status.value  # noqa: B018 (the running settings change only with a new run)
    draft = ctl.ui.draft.value
    running = ctl.session.settings
    changes = draft.with_(seed=running.seed).changes(running) if draft.preset == running.preset else []
    if changes:
        solara.HTML(
            tag="div",
            unsafe_innerHTML=html.escape(f"Changed: {', '.join(changes)}. Press Reset to start a run with them."),
            classes=["cp-pending"],
        )


#: What the two choices mean, in a line each (under the select, as the seed box has its message).
POLICY_HELP = (
    "Fixed: effort is split as above, every week. Adaptive: each week it shifts towards the larger gap "
    "(culture: engagement and insight; structures: collaborative working and leadership) and towards the "
    "wards and organisations furthest behind."
)
INFLUENCE_HELP = (
    "How people sway the people they are tied to. Averaging: vision and value drift a little towards "
    "trusted neighbours' average each week. Threshold: someone moves up once enough neighbours hold "
    "the view. Independent cascade: each new holder gets one chance to pass it to each neighbour."
)


def no_effort_note(draft: Settings) -> str:
    """A note when the settings spend no effort at all (the run still works, with no activities)."""
    if not any(share > 0 for share in draft.shares):
        return "All five activities are at 0, so no effort is spent on any of them."
    if draft.budget <= 0:
        return "The effort budget is 0, so no effort is spent on any activity."
    return ""


def hint(text: str) -> None:
    """A short explanation under a control."""
    solara.HTML(tag="div", unsafe_innerHTML=html.escape(text), classes=["cp-hint"])


def choice_label(name: str) -> str:
    """`independent_cascade` -> `Independent cascade`, for the selects' items."""
    return pretty(name)


def slider(label: str, value: float, lo: float, hi: float, step: float, on_value, shown: str | None = None) -> None:
    """A slider with its label and value on a line above it (sidebar sliders are narrow)."""
    text = shown if shown is not None else f"{value:g}"
    solara.HTML(
        tag="div",
        unsafe_innerHTML=f"<span>{html.escape(label)}</span><b>{html.escape(text)}</b>",
        classes=["cp-slider-label"],
    )
    solara.SliderFloat(label="", value=value, min=lo, max=hi, step=step, on_value=on_value, thumb_label=False)


@solara.component
def Parameters(ctl: Controller) -> None:
    """The main parameters, grouped; they take effect at the next Reset."""
    ui = ctl.ui
    draft: Settings = ui.draft.value

    def change(**kwargs) -> None:
        ui.draft.set(ui.draft.value.with_(**kwargs))

    def set_share(i: int):
        def on(value: float) -> None:
            shares = list(ui.draft.value.shares)
            shares[i] = round(float(value), 3)
            change(shares=tuple(shares))

        return on

    def set_culture(i: int):
        def on(value: float) -> None:
            cultures = list(ui.draft.value.ward_culture)
            cultures[i] = round(float(value), 3)
            change(ward_culture=tuple(cultures))

        return on

    try:
        cfg = preset_config(draft.preset)
    except Exception:
        return
    total = sum(draft.shares) or 1.0
    with solara.Details(summary="Effort: budget and how it is split", expand=True):
        slider(
            "Effort budget (per 1,000 people a week)",
            draft.budget,
            0,
            200,
            5,
            lambda v: change(budget=round(float(v), 1)),
        )
        for i, a in enumerate(ACTIVITIES):
            share = draft.shares[i] / total
            slider(
                ACTIVITY_LABELS[a],
                draft.shares[i],
                0,
                1,
                0.05,
                set_share(i),
                f"{draft.shares[i]:g} → {100 * share:.0f}% of effort",
            )
        no_effort = no_effort_note(draft)
        if no_effort:
            solara.HTML(tag="div", unsafe_innerHTML=html.escape(no_effort), classes=["cp-pending"])
        solara.Select(
            label="Allocation policy",
            value=choice_label(draft.policy),
            values=[choice_label(p) for p in POLICIES],
            on_value=lambda v: change(policy=next(p for p in POLICIES if choice_label(p) == v)),
        )
        hint(POLICY_HELP)
    with solara.Details(summary="Culture: cultural alignment by ward"):
        for i, (name, ward) in enumerate(cfg.wards.items()):
            slider(ward.label or name, draft.ward_culture[i], 0, 1, 0.05, set_culture(i))
    with solara.Details(summary="Structures: local and national"):
        slider(
            "Structural alignment at start (× scenario)",
            draft.structure_scale,
            0.25,
            2.0,
            0.05,
            lambda v: change(structure_scale=round(float(v), 2)),
        )
        slider(
            "National constraint: structural cap",
            draft.national_cap,
            0,
            1,
            0.05,
            lambda v: change(national_cap=round(float(v), 3)),
        )
    with solara.Details(summary="People: turnover, influence, population"):
        slider(
            "Staff turnover (share leaving a year)",
            draft.turnover,
            0,
            0.6,
            0.02,
            lambda v: change(turnover=round(float(v), 3)),
        )
        solara.Select(
            label="Influence rule",
            value=choice_label(draft.influence_rule),
            values=[choice_label(r) for r in INFLUENCE_RULES],
            on_value=lambda v: change(influence_rule=next(r for r in INFLUENCE_RULES if choice_label(r) == v)),
        )
        hint(INFLUENCE_HELP)
        solara.Select(
            label="Population",
            value=SCALE_LABELS[draft.scale],
            values=[SCALE_LABELS[s] for s in SCALES],
            on_value=lambda v: change(scale=next(s for s in SCALES if SCALE_LABELS[s] == v)),
        )
    solara.Button(
        "Scenario's own values",
        icon_name="mdi-undo",
        on_click=guard(ui, ctl.restore_scenario_values, "Restore"),
        text=True,
        small=True,
    )


class MapDropZone(FileDropZone):
    """Solara's lazy file drop (the server asks for the bytes only after seeing name and size),
    with a file picker as well as dropping, and an `accept` list (upload.vue)."""

    template = traitlets.Instance(Template).tag(sync=True, **widget_serialization)  # type: ignore[assignment]
    template_file = (__file__, "upload.vue")


@solara.component
def MapDrop(on_files: Any, label: str) -> None:
    """A drop zone / file picker; `on_files` gets Solara `FileInfo` dicts (lazy: nothing read yet).

    As `solara.FileDropMultiple`, but with a picker (keyboard users, and people who cannot drag from
    their file manager) and the map types offered first. `on_files` runs in a thread: reading a lazy
    file waits for the browser's chunks, which must not block the page's message handling.
    """
    info, set_info = solara.use_state(cast(Any, None))
    wired, set_wired = solara.use_state(cast(Any, None))
    zone = MapDropZone.element(label=label, on_file_info=set_info, multiple=True, accept=ACCEPT)  # type: ignore

    def wire() -> None:
        if not info:
            return
        real = cast(MapDropZone, solara.get_widget(zone))
        real.version += 1  # as solara's FileDrop: a new version for every new choice of files
        real.reset_stats()
        set_wired(real.get_files())

    solara.use_effect(wire, [info])

    def handle(cancel: threading.Event) -> None:
        if not wired:
            return
        try:
            on_files(wired)
        finally:
            try:
                cast(MapDropZone, solara.get_widget(zone)).clear()
            except Exception:  # the page went away meanwhile
                log.debug("could not clear the map drop zone", exc_info=True)

    # not intrusive: a redraw of the page must never cancel an upload half-way
    solara.use_thread(handle, [wired], intrusive_cancel=False)


@solara.component
def MapPanel(ctl: Controller) -> None:
    """Run the scenario on a map of one's own: upload, summary, clear."""
    ui = ctl.ui
    ctl.session.status.value  # noqa: B018 (the map changes only with a new run)
    current = ctl.session.map
    busy, set_busy = solara.use_state(False)

    def on_files(files: list[dict[str, Any]]) -> None:
        set_busy(True)
        try:
            ctl.upload_map(files)
        except Exception as exc:  # upload_map reports its own failures; this is a last resort
            log.warning("upload failed", exc_info=True)
            ui.message.set(f"Map not used: {type(exc).__name__}")
        finally:
            set_busy(False)

    with solara.Details(summary="Your own map (GraphML, GEXF, Kumu, PRSM, CSV)", expand=current is not None):
        # three children always, in this order: the drop zone keeps its place (and its upload
        # thread) whether or not a map is in use or being read
        with solara.Column(gap="4px"):
            if current is not None:
                MapSummary(ctl, current)
        MapDrop(
            on_files,
            f"Drop a map here (one file, or nodes.csv + edges.csv), up to {MAX_UPLOAD_MB:g} MB. The scenario "
            "and sliders above run on it; it stays in use until cleared.",
        )
        with solara.Column(gap="0"):
            if busy:
                solara.HTML(tag="div", unsafe_innerHTML="Reading the map…", classes=["cp-muted"])


@solara.component
def MapSummary(ctl: Controller, current: UploadedMap) -> None:
    """What the map in use holds, what was fixed up, and the button to stop using it."""
    roles = ", ".join(f"{r} {c:,}" for r, c in current.roles)
    lines = [
        f"<b>{html.escape(current.name)}</b> ({html.escape(current.format)}, {current.size / 1e3:,.1f} kB)",
        f"{current.people:,} people, {current.ties:,} ties",
        f"Roles: {html.escape(roles)}",
    ]
    if current.defaulted:
        lines.append(
            f"{current.defaulted:,} of them had no role and got the default role '{html.escape(current.default_role)}'"
        )
    lines += [f"⚠ {html.escape(w)}" for w in current.warnings]
    solara.HTML(tag="div", unsafe_innerHTML="<br>".join(lines), classes=["cp-map-summary"])
    solara.Button(
        "Clear map: back to the scenario's network",
        icon_name="mdi-close",
        on_click=guard(ctl.ui, ctl.clear_map, "Clear map"),
        outlined=True,
        small=True,
        classes=["cp-wrap-btn"],
    )


@solara.component
def Sidebar(ctl: Controller) -> None:
    with solara.Column(gap="8px", style={"padding": "4px 4px 30px 4px"}):
        ScenarioPicker(ctl)
        RunButtons(ctl)
        PendingNote(ctl)
        MapPanel(ctl)
        solara.HTML(tag="div", unsafe_innerHTML="Parameters (apply with Reset)", classes=["cp-section"])
        Parameters(ctl)
