"""A minimal Solara page for the Common Purpose Model: step a run week by week and watch it.

Run it with `make app` (or `solara run app.py --host 127.0.0.1 --port 8765`). Every browser
session builds its own model inside the `Page` component; nothing model-related lives at
module level, so two people on the same server never see each other's runs.

Vision + Value + Collective function = Common purpose: the page shows the share of people at
each of the three parts and at common purpose over the weeks, and the commitment ladder now.
"""

from __future__ import annotations

import html
import threading
from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd
import solara
from matplotlib.figure import Figure

import abm
from abm import CommonPurposeModel
from abm.acting import STAGE_LABELS, STAGES

#: Scenario and seed a new session starts with.
DEFAULT_PRESET = "south_tees"
DEFAULT_SEED = "1"
#: Play delay limits, in milliseconds between weeks (below ~50 ms Solara's plot building races).
MIN_INTERVAL_MS = 100
MAX_INTERVAL_MS = 1000
DEFAULT_INTERVAL_MS = 200
#: Seeds are numpy SeedSequence entropy: a non-negative whole number.
MAX_SEED = 2**63 - 1

#: One colour per part of the equation, shared by the cards, the lines and the equation.
COLOURS = {"Vision": "#1f77b4", "Value": "#ff7f0e", "Collective function": "#2ca02c", "Common purpose": "#9467bd"}
#: The four lines of the trend chart: model column, label, colour.
SERIES: tuple[tuple[str, str, str], ...] = (
    ("subscribed_share", "Vision", COLOURS["Vision"]),
    ("valuing_share", "Value", COLOURS["Value"]),
    ("acting_share", "Acting (Collective function)", COLOURS["Collective function"]),
    ("common_purpose_share", "Common purpose", COLOURS["Common purpose"]),
)
#: What each line counts, for the figure cards.
SERIES_NOTES = {
    "subscribed_share": "share the vision",
    "valuing_share": "share the vision and value it",
    "acting_share": "act on it (collective function)",
    "common_purpose_share": "all three, held over time",
}
LADDER_COLOURS = ("#c7c7c7", "#9ecae1", *COLOURS.values())

#: The explanation under the headline figures (fixed, trusted HTML; Markdown would pull KaTeX, not bundled).
EQUATION_HTML = "{} + {} + {} = {}".format(
    *(f'<span style="color: {colour}">{part}</span>' for part, colour in COLOURS.items())
)
EXPLANATION_HTML = (
    "People first hear of the shared <em>vision</em> and subscribe to it, then come to <em>value</em> working "
    "towards it, then act on it together with others (the <em>collective function</em>). Someone who holds "
    "all three for long enough has reached <em>common purpose</em>. Each step is one week. The lines show "
    "the share of everyone (staff and residents) at each part; the bars show how many people stand on "
    "each rung of the commitment ladder now."
)

CSS = """
.cp-figure img { max-width: 100%; height: auto; }
.cp-week { font-size: 2rem; font-weight: 600; line-height: 1.2; }
.cp-sub { color: #555; }
.cp-card { border-left: 6px solid var(--cp-colour); padding: 6px 12px; background: #fafafa;
           border-radius: 4px; min-width: 170px; flex: 1 1 170px; }
.cp-card-label { font-weight: 600; }
.cp-card-value { font-size: 1.6rem; font-weight: 600; }
.cp-card-note { color: #666; font-size: 0.85rem; }
.cp-equation { font-size: 1.2rem; font-weight: 600; margin: 4px 0 0 0; }
.cp-explain { margin: 0; max-width: 70em; line-height: 1.5; }
"""


def parse_seed(text: str | None) -> int:
    """The seed typed into the page as an int.

    Raises:
        ValueError: with a message fit to show to the user, if `text` is not a whole number
            from 0 to 2**63 - 1.
    """
    cleaned = (text or "").strip()
    if not cleaned:
        raise ValueError("Enter a seed: a whole number such as 1 or 42.")
    try:
        seed = int(cleaned)
    except ValueError:
        raise ValueError(f"The seed must be a whole number such as 1 or 42, not {cleaned[:20]!r}.") from None
    if not 0 <= seed <= MAX_SEED:
        raise ValueError(f"The seed must be between 0 and {MAX_SEED}.")
    return seed


def preset_names() -> list[str]:
    """The shipped scenarios, default first."""
    names = abm.presets()
    return sorted(names, key=lambda n: (n != DEFAULT_PRESET, n))


@dataclass(frozen=True)
class Snapshot:
    """What the page shows of a model, read in one go under the session lock."""

    generation: int
    week: int
    weeks: int
    running: bool
    name: str
    people: int
    seed: int
    frame: pd.DataFrame
    ladder: tuple[int, ...]
    describe: str


class Session:
    """One browser session's model, stepped from button clicks and from the Play thread.

    All access to the model goes through `lock`, so a Step click and the Play thread never
    step or read it at the same time. `generation` counts models built, so a Play thread
    started for an old model stops instead of stepping the new one. After a step fails the
    model may be half-updated, so it is `broken` and steps no more until a Reset.
    """

    def __init__(self, preset: str, seed: int) -> None:
        self.lock = threading.RLock()
        self.model: CommonPurposeModel | None = None
        self.generation = 0
        self.broken = False
        self.preset = preset
        self.reset(preset, seed)

    def reset(self, preset: str, seed: int) -> None:
        """Build a fresh model (raises whatever the model raises; the old model is kept then)."""
        model = CommonPurposeModel(preset, rng=seed)
        with self.lock:
            self.model = model
            self.preset = preset
            self.broken = False
            self.generation += 1

    def step(self, generation: int | None = None, stop: threading.Event | None = None) -> bool:
        """Advance one week; False if there is nothing to step.

        Nothing to step: the run is finished or broken, `generation` names an older model, or
        `stop` is set (Pause was pressed; checked under the lock, so no step lands after it).
        """
        with self.lock:
            model = self.model
            if model is None or not model.running or self.broken:
                return False
            if generation is not None and generation != self.generation:
                return False
            if stop is not None and stop.is_set():
                return False
            try:
                model.step()
            except Exception:
                self.broken = True
                raise
            return True

    def snapshot(self) -> Snapshot | None:
        """The current state for drawing, or None before the first model is built."""
        with self.lock:
            model = self.model
            if model is None:
                return None
            frame = model.model_frame().copy()
            last = frame.iloc[-1]
            return Snapshot(
                generation=self.generation,
                week=model.week,
                weeks=int(model.config.steps),
                running=bool(model.running) and not self.broken,
                name=str(model.config.name),
                people=int(model.state.n),
                seed=int(model.seed),
                frame=frame,
                ladder=tuple(int(last[f"stage_{s}"]) for s in STAGES),
                describe=model.describe_step(),
            )


def trend_figure(frame: pd.DataFrame, weeks: int) -> Figure:
    """Shares at Vision, Value, Acting (Collective function) and Common purpose, by week."""
    fig = Figure(figsize=(7.2, 3.9), dpi=100, layout="constrained")
    ax = fig.subplots()
    for column, label, colour in SERIES:
        ax.plot(frame["step"], 100 * frame[column], label=label, color=colour, linewidth=2.2)
        ax.plot(frame["step"].iloc[-1:], 100 * frame[column].iloc[-1:], "o", color=colour, markersize=5, label="_")
    ax.set_xlim(0, max(weeks, int(frame["step"].max()), 1))
    highest = max(float(frame[column].max()) for column, _, _ in SERIES) * 100
    ax.set_ylim(0, min(100.0, max(5.0, 1.15 * highest)))  # zoomed in while shares are small
    ax.set_xlabel("Week")
    ax.set_ylabel("Share of everyone (%)")
    ax.grid(alpha=0.3)
    ax.spines[["top", "right"]].set_visible(False)
    # above the plot, where the rising lines never run through it
    fig.legend(loc="outside upper center", ncols=4, frameon=False, fontsize=9)
    return fig


def ladder_figure(counts: tuple[int, ...], week: int) -> Figure:
    """People on each rung of the commitment ladder this week."""
    fig = Figure(figsize=(5.0, 3.9), dpi=100, layout="constrained")
    ax = fig.subplots()
    labels = [label.replace(" ", "\n") for label in STAGE_LABELS]
    bars = ax.bar(labels, counts, color=LADDER_COLOURS[: len(counts)])
    ax.bar_label(bars, labels=[f"{c:,}" for c in counts], fontsize=8, padding=2)
    ax.set_ylim(0, max(max(counts, default=0), 1) * 1.15)
    ax.set_ylabel("People")
    ax.set_title(f"Commitment ladder, week {week}", fontsize=11, loc="left")
    ax.tick_params(axis="x", labelsize=8)
    ax.grid(axis="y", alpha=0.3)
    ax.spines[["top", "right"]].set_visible(False)
    return fig


def describe_html(text: str) -> str:
    """`describe_step()` as escaped HTML: the heading line, then its numbered lines as a list."""
    head, *lines = text.splitlines()
    items = "".join(f"<li>{html.escape(line.split('. ', 1)[-1])}</li>" for line in lines)
    return f"<p>{html.escape(head)}</p><ol>{items}</ol>" if items else f"<p>{html.escape(head)}</p>"


@dataclass
class PageState:
    """Per-page holder: the session (None if the first build failed) and the message shown."""

    session: Session | None
    error: str = ""


def first_state(preset: str, seed_text: str) -> PageState:
    """The page's first model (or the reason there is none), built once per browser page."""
    try:
        return PageState(Session(preset, parse_seed(seed_text)))
    except Exception as exc:  # a readable message on the page instead of a traceback
        return PageState(None, f"Could not build the model for {preset!r}: {exc}")


@solara.component
def MetricCard(label: str, share: float, note: str, colour: str) -> None:
    """One headline figure (a share of everyone) with a coloured edge matching its line."""
    with solara.Div(classes=["cp-card"], style={"--cp-colour": colour}):
        solara.Div(children=[label], classes=["cp-card-label"])
        solara.Div(children=[f"{100 * share:.1f}%"], classes=["cp-card-value"])
        solara.Div(children=[note], classes=["cp-card-note"])


@solara.component
def Controls(
    presets: list[str],
    preset: solara.Reactive[str],
    seed_text: solara.Reactive[str],
    seed_error: str | None,
    interval_ms: solara.Reactive[int],
    playing: bool,
    on_play_pause: Callable[[], None],
    can_step: bool,
    on_step: Callable[[], None],
    on_reset: Callable[[], None],
) -> None:
    """Scenario, seed, speed and the Step / Play / Reset buttons."""
    solara.Select(label="Scenario", values=presets, value=preset)
    solara.InputText(
        label="Seed",
        value=seed_text,
        error=seed_error or False,
        message="A whole number; the same seed gives the same run. Press Enter to apply.",
    )
    with solara.Row(gap="8px", style={"flex-wrap": "wrap"}):
        solara.Button(
            "Step",
            icon_name="mdi-step-forward",
            on_click=on_step,
            disabled=not can_step or playing,
            color="primary",
        )
        solara.Button(
            "Pause" if playing else "Play",
            icon_name="mdi-pause" if playing else "mdi-play",
            on_click=on_play_pause,
            disabled=not can_step and not playing,
            color="primary",
            outlined=True,
        )
        solara.Button(
            "Reset", icon_name="mdi-restore", on_click=on_reset, disabled=seed_error is not None, outlined=True
        )
    solara.SliderInt(
        label="Delay between weeks (ms)",
        value=interval_ms,
        min=MIN_INTERVAL_MS,
        max=MAX_INTERVAL_MS,
        step=50,
    )


@solara.component
def Page() -> None:
    """The whole page: one model per browser session, built here and kept in `use_memo`."""
    presets = solara.use_memo(preset_names, [])
    preset = solara.use_reactive(DEFAULT_PRESET if DEFAULT_PRESET in presets else (presets[0] if presets else ""))
    seed_text = solara.use_reactive(DEFAULT_SEED)
    interval_ms = solara.use_reactive(DEFAULT_INTERVAL_MS)
    playing = solara.use_reactive(False)
    # Set by Pause before `playing` changes, so the Play thread takes no step after the click.
    stop = solara.use_memo(threading.Event, [])
    version = solara.use_reactive(0)  # bumped after every change to the model or message, to redraw
    state = solara.use_memo(lambda: first_state(preset.value, seed_text.value), [])
    session = state.session

    seed_error: str | None = None
    try:
        parse_seed(seed_text.value)
    except ValueError as exc:
        seed_error = str(exc)

    def show(message: str) -> None:
        state.error = message
        version.set(version.value + 1)

    def rebuild() -> None:
        """Reset: a new model from the chosen scenario and seed (keeps the old one on error)."""
        set_playing(False)
        try:
            seed = parse_seed(seed_text.value)
            if state.session is None:
                state.session = Session(preset.value, seed)
            else:
                state.session.reset(preset.value, seed)
        except Exception as exc:  # a readable message on the page instead of a traceback
            show(f"Could not build the model for {preset.value!r}: {exc}")
            return
        show("")

    def set_playing(on: bool) -> None:
        if on:
            stop.clear()
        else:
            stop.set()
        playing.set(on)

    def advance(generation: int | None = None, until: threading.Event | None = None) -> bool:
        """One week; on failure stop playing and show the error. Returns whether to go on."""
        current = state.session
        if current is None:
            return False
        try:
            stepped = current.step(generation, until)
        except Exception as exc:
            set_playing(False)
            show(f"The model failed during a step: {type(exc).__name__}: {exc}. Press Reset to start again.")
            return False
        version.set(version.value + 1)
        if not stepped:
            set_playing(False)
        return stepped

    settings_seen = solara.use_ref((preset.value, seed_text.value))

    def watch_settings() -> None:
        """A new scenario or seed rebuilds the model (a bad seed only shows its message)."""
        settings = (preset.value, seed_text.value)
        if settings != settings_seen.current:
            settings_seen.current = settings
            if seed_error is None:
                rebuild()

    solara.use_effect(watch_settings, [preset.value, seed_text.value])

    generation = session.generation if session is not None else -1
    interval_s = max(interval_ms.value, MIN_INTERVAL_MS) / 1000
    # Reading `version.value` subscribes the page: every step, reset or message redraws it.
    key = (version.value, generation)

    # Set once the page has drawn the latest version (effects run after a render is committed).
    drawn = solara.use_memo(threading.Event, [])

    def mark_drawn() -> None:
        drawn.set()

    solara.use_effect(mark_drawn, [key])

    def play_loop(cancel: threading.Event) -> None:
        """Step, wait until the page has drawn it, then `interval_s`; until paused, finished or replaced.

        Waiting for the drawing paces Play to the renderer: a step never lands while the page is
        still drawing the last one, so a slow machine plays slower instead of piling up redraws.
        """
        if not playing.value:
            return
        while not cancel.wait(interval_s):
            drawn.clear()
            if not advance(generation, until=stop):
                return
            while not drawn.wait(0.05):
                if cancel.is_set():
                    return

    solara.use_thread(play_loop, dependencies=[playing.value, generation, interval_s], intrusive_cancel=False)

    snap = session.snapshot() if session is not None else None
    trend = solara.use_memo(lambda: trend_figure(snap.frame, snap.weeks) if snap else None, [key])
    ladder = solara.use_memo(lambda: ladder_figure(snap.ladder, snap.week) if snap else None, [key])

    solara.Title("Common purpose")
    solara.Style(CSS)
    with solara.Sidebar():
        Controls(
            presets=presets,
            preset=preset,
            seed_text=seed_text,
            seed_error=seed_error,
            interval_ms=interval_ms,
            playing=playing.value,
            on_play_pause=lambda: set_playing(not playing.value),
            can_step=bool(snap and snap.running),
            on_step=lambda: advance(),
            on_reset=rebuild,
        )

    with solara.Column(gap="14px", style={"padding": "8px 16px", "max-width": "1400px"}):
        solara.HTML(tag="h2", unsafe_innerHTML="Common purpose: a whole system coming to share a purpose")
        if state.error:
            solara.Error(state.error)
        if snap is None:
            solara.Info("No model yet: choose a scenario and a seed, then press Reset.")
            return
        with solara.Row(style={"align-items": "baseline", "flex-wrap": "wrap"}, gap="16px"):
            solara.Div(children=[f"Week {snap.week}"], classes=["cp-week"])
            solara.Div(
                children=[f"of {snap.weeks} · {snap.name} · {snap.people:,} people · seed {snap.seed}"],
                classes=["cp-sub"],
            )
        if not snap.running and not state.error:
            solara.Success(f"The scenario's {snap.weeks} weeks are done. Press Reset to start again.")
        latest = snap.frame.iloc[-1]
        with solara.Row(gap="12px", style={"flex-wrap": "wrap"}):
            for column, label, colour in SERIES:
                MetricCard(label=label, share=float(latest[column]), note=SERIES_NOTES[column], colour=colour)
        solara.HTML(tag="div", unsafe_innerHTML=EQUATION_HTML, classes=["cp-equation"])
        solara.HTML(tag="p", unsafe_innerHTML=EXPLANATION_HTML, classes=["cp-explain"])
        with solara.Columns([3, 2]):
            with solara.Div(classes=["cp-figure"]):
                solara.FigureMatplotlib(trend, dependencies=[key], format="png")
            with solara.Div(classes=["cp-figure"]):
                solara.FigureMatplotlib(ladder, dependencies=[key], format="png")
        with solara.Details(summary="What happens each week (the order of one step)"):
            solara.HTML(tag="div", unsafe_innerHTML=describe_html(snap.describe))
