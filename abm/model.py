"""CommonPurposeModel: the Common Purpose Model of system change as a Mesa model.

Vision + Value + Collective function = Common purpose, in a whole-system stakeholder
network. State lives in arrays (`model.state`, `model.ties`); each week runs the stages in
`STEP_ORDER` on whole arrays; Mesa agents are views over the arrays.

Example:
    >>> from abm import CommonPurposeModel
    >>> model = CommonPurposeModel(rng=3, steps=20)
    >>> _ = model.run()  # (returns the model, for chaining)
    >>> df = model.model_frame()
    >>> len(df), model.week
    (21, 20)
    >>> print(model.describe_step().splitlines()[0])
    Each week (one step), in this order:
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import mesa
import networkx as nx
import numpy as np
import pandas as pd

from abm.acting import STAGES, LadderWeek, decide_acting, update_ladder
from abm.activities import ACTIVITY_CODE, culture_gate, run_activities
from abm.agents import Stakeholder
from abm.config import Config, load_config
from abm.events import check_events, fire_events
from abm.generators import generic_population, seed_initial_state
from abm.influence import feedback, neighbour_sums, social_influence
from abm.labels import one_of, plain, plural
from abm.metrics import MODEL_COLUMNS, Recorder
from abm.network import TIE_KINDS, generate
from abm.residents import baseline_rates, move_classes
from abm.state import State, Ties, as_slice, tie_kinds
from abm.turnover import staff_turnover

#: Keyword shortcuts for the most used settings (for batch_run and SolaraViz sliders).
KEYWORDS = {
    "effort_budget": "effort.budget",
    "allocation_policy": "effort.policy",
    "national_cap": "national.structural_cap",
    "turnover_rate": "turnover.annual_rate",
    "influence_rule": "influence.rule",
    "residents": "population.residents",
    "cross_sector_degree": "network.cross_sector_degree",
}


@dataclass(frozen=True)
class Stage:
    """One stage of the weekly step: what it does, and the config section that switches it."""

    name: str
    does: str
    run: Callable[[CommonPurposeModel], None]
    switch: str | None = None


def _record(model: CommonPurposeModel) -> None:
    model.latest = model.recorder.record(model)
    model.log_transitions()


STEP_ORDER: tuple[Stage, ...] = (
    Stage(
        "events",
        "scenario events due this week fire (policy change, funding cut, leader leaves, partner joins)",
        fire_events,
    ),
    Stage(
        "activities",
        "the pilot spends its effort budget: engagement, insight, collaborative working, collective "
        "leadership, embedded processes (each switchable)",
        run_activities,
    ),
    Stage(
        "influence",
        "vision and value spread through ties, weighted by trust and role, gated by culture",
        social_influence,
        "influence",
    ),
    Stage(
        "feedback",
        "visible action and results raise value; acting raises one's own; value not acted on fades",
        feedback,
        "feedback",
    ),
    Stage(
        "acting",
        "each person acts or not, given vision, value, skills, structures and embedded routines",
        decide_acting,
        "acting",
    ),
    Stage(
        "residents",
        "residents move between Active Lives classes through acting professionals and culture",
        move_classes,
        "residents_activity",
    ),
    Stage(
        "turnover",
        "staff leave and are replaced; ties, history and unembedded structures go with them",
        staff_turnover,
        "turnover",
    ),
    Stage("ladder", "commitment stages and first-passage weeks are updated", update_ladder),
    Stage("record", "the week's figures are recorded (model row, groups, event log)", _record),
)


#: Activity codes as the event log names them.
_ACTIVITY_NAMES = {v: k.replace("collaborative", "collaborative working") for k, v in ACTIVITY_CODE.items()}


#: The model-table figures readable as attributes (`model.acting_share`): see `__getattr__`.
_FIGURES = frozenset(MODEL_COLUMNS) - {"step"}


def _metric(model: CommonPurposeModel, key: str) -> float:
    return model.latest[key]


class _Collector(mesa.DataCollector):
    """Mesa's DataCollector; the model's own figures are stored straight from `model.latest`.

    Mesa deep-copies every reporter's result each week, which costs more than the figures
    themselves in small models; ours are fresh floats, so they need no copy. Any other
    reporter (added by a user) is collected by Mesa as usual.
    """

    def collect(self, model: mesa.Model) -> None:
        reporters = self.model_reporters
        ours = self._ours(reporters)
        if not ours:
            super().collect(model)
            return
        self._collection_steps.append(model.time)
        latest = model.latest
        for column, key in ours:
            column.append(latest[key])
        if self.agent_reporters or self.agenttype_reporters:  # Mesa collects those
            self.model_reporters = {}
            try:
                super().collect(model)
            finally:
                self.model_reporters = reporters

    def _ours(self, reporters: dict) -> list[tuple[list, str]]:
        """(column list, key of model.latest) per reporter when all are the model's own, else []."""
        key = (*reporters, *reporters.values())  # kept while no reporter is added or replaced
        cached = getattr(self, "_ours_cache", None)
        if cached is not None and cached[0] == key:
            return cached[1]
        ok = bool(reporters) and all(isinstance(r, partial) and r.func is _metric for r in reporters.values())
        ours = [(self.model_vars[var], r.keywords["key"]) for var, r in reporters.items()] if ok else []
        self._ours_cache = (key, ours)
        return ours


class CommonPurposeModel(mesa.Model):
    """The whole-system Common Purpose model (one step = one week).

    Args:
        config: a Config, a YAML path, a preset name (default `south_tees`) or a mapping.
        rng: seed (int, or anything Mesa accepts); default: the config's seed, else fresh
            entropy (the seed used is kept in `model.seed` and written with every run).
        overrides: `{"effort.budget": 30}` or `["effort.budget=30"]`, applied to the config.
        steps: weeks to run (overrides `config.steps`).
        effort_budget, allocation_policy, national_cap, turnover_rate, influence_rule,
            residents, cross_sector_degree: shortcuts for common settings (see `KEYWORDS`).
        collect_agents: also collect role, vision, value, acting and stage per agent.
    """

    def __init__(
        self,
        config: Config | str | Path | dict | None = None,
        *,
        rng: Any = None,
        overrides: dict[str, Any] | list[str] | None = None,
        steps: int | None = None,
        effort_budget: float | None = None,
        allocation_policy: str | None = None,
        national_cap: float | None = None,
        turnover_rate: float | None = None,
        influence_rule: str | None = None,
        residents: int | None = None,
        cross_sector_degree: float | None = None,
        collect_agents: bool = False,
    ):
        t0 = time.perf_counter()
        shortcuts = {
            "effort_budget": effort_budget,
            "allocation_policy": allocation_policy,
            "national_cap": national_cap,
            "turnover_rate": turnover_rate,
            "influence_rule": influence_rule,
            "residents": residents,
            "cross_sector_degree": cross_sector_degree,
        }
        extra: dict[str, Any] = {KEYWORDS[k]: v for k, v in shortcuts.items() if v is not None}
        if steps is not None:
            extra["steps"] = steps
        if isinstance(overrides, list):
            cfg = load_config(load_config(config, overrides), extra or None)
        else:
            cfg = load_config(config, {**(overrides or {}), **extra} or None)
        if isinstance(rng, str):  # Solara's InputText gives strings
            text = rng.strip()
            if text and not text.isdigit():
                raise ValueError(f"rng = {rng!r}: the seed must be a whole number, 0 or more (empty: a fresh one)")
            rng = int(text) if text else None
        if rng is None:
            rng = cfg.seed if cfg.seed is not None else int(np.random.SeedSequence().entropy % 2**63)
        super().__init__(rng=rng)
        self.seed = rng
        self.config = cfg
        self.stages = STEP_ORDER
        self._build()
        check_events(self)
        self.latest: dict[str, float] = {}
        self.events_log: list[dict[str, Any]] = []
        self.leavers_total = 0
        self._prev_acting = self.state.acting.copy()
        self.recorder = Recorder(self)
        update_ladder(self)
        self.latest = self.recorder.record(self)
        self._agents_by_index: list[Stakeholder] = []
        self.add_agents(np.arange(self.state.n))
        reporters = {k: partial(_metric, key=k) for k in MODEL_COLUMNS if k != "step"}
        agent_reporters = (
            {"role": "role", "vision": "vision", "value": "value", "acting": "acting", "stage": "stage"}
            if collect_agents
            else None
        )
        self.datacollector = _Collector(model_reporters=reporters, agent_reporters=agent_reporters)
        self.datacollector.collect(self)
        self.build_seconds = time.perf_counter() - t0
        self.running = True

    # --- construction ---------------------------------------------------------------------
    def _build(self) -> None:
        cfg = self.config
        canonical = cfg.network.generator != "south_tees" and not cfg.network.source
        pop = generic_population(cfg, self.rng) if canonical else generate(cfg, self.rng)
        self.population = pop
        self.state = State.from_population(pop, cfg, self.rng)
        self.ties = Ties(pop.n_agents, pop.eu, pop.ev, pop.trust, pop.kind, kind_rule=partial(tie_kinds, self.state))
        self.docking = canonical or cfg.initial.adopters > 0
        seed_initial_state(self)
        self.role_names = pop.role_names
        self.ward_names = pop.ward_names
        self.ward_labels = [w.label or name.replace("_", " ").title() for name, w in cfg.wards.items()]
        self.community_names = pop.community_names
        self.sector_names = pop.sector_names
        self.age_band_names = list(cfg.population.age_bands)
        self.org_names = pop.org_names
        self.org_type = pop.org_type
        self.org_sector = pop.org_sector
        self.org_ward = pop.org_ward
        self.national_cap = cfg.national.structural_cap
        self.national_culture = cfg.national.cultural_alignment
        self.org_structure = np.minimum(pop.org_structure.copy(), self.national_cap)
        self.org_structure_start = self.org_structure.copy()
        self.org_embedded = pop.org_embedded.copy()
        self.effort_budget = cfg.effort.budget
        self.ward_target = np.array([w.target for w in cfg.wards.values()])
        self.ward_insight = np.zeros(len(self.ward_names))
        res = ~self.state.staff
        counts = np.maximum(np.bincount(self.state.ward[res], minlength=len(self.ward_names)), 1)
        inactive = np.bincount(self.state.ward[res], weights=(self.state.pa_class[res] == 0), minlength=counts.size)
        self.ward_inactive_baseline = inactive / counts
        self.inactive_baseline = float(self.ward_inactive_baseline.mean())
        mixes = np.array(
            [[w.activity.inactive, w.activity.fairly_active, w.activity.active] for w in cfg.wards.values()]
        )
        ra = cfg.residents_activity
        self.uptake_rates = baseline_rates(mixes, ra.relapse_fairly, ra.relapse_active)
        roles = [cfg.roles[r] for r in self.role_names]
        self.role_initial = {
            key: np.array([getattr(r, attr) for r in roles], dtype=float)
            for key, attr in (
                ("vision", "initial_vision"),
                ("value", "initial_value"),
                ("aware", "initial_aware"),
                ("skills", "skills"),
                ("influence", "influence"),
                ("susceptibility", "susceptibility"),
                ("resident_contact", "resident_contact"),
            )
        }
        self.protected_roles = np.array([r in cfg.turnover.protect_roles for r in self.role_names])
        self.stage = np.zeros(self.state.n, dtype=np.int8)
        self.adopted_before = np.zeros(self.state.n, dtype=bool)  # for the independent cascade
        self.nb: np.ndarray | None = None
        self._gate: np.ndarray | None = None
        self.ladder_week: LadderWeek | None = None  # what the ladder found, for the record (see `ladder_findings`)
        self._fixed: dict[str, Any] = {}
        self._fixed_n = -1
        self.last_allocation: dict[str, float] = {}

    def add_agents(self, indices: np.ndarray) -> None:
        """Create the Mesa view agents for new array rows."""
        for i in indices:
            self._agents_by_index.append(Stakeholder(self, int(i)))

    def agent_at(self, index: int) -> Stakeholder:
        """The Mesa agent for an array index (agent.unique_id is index + 1)."""
        return self._agents_by_index[index]

    def __getattr__(self, name: str) -> Any:
        """This week's figures by name, as Mesa's string reporters read them.

        Example:
            >>> m = CommonPurposeModel(rng=1)
            >>> dc = mesa.DataCollector(model_reporters={"cp": "common_purpose_share"})
            >>> dc.collect(m); m.common_purpose_share == m.latest["common_purpose_share"]
            True
        """
        if name in _FIGURES:  # only called when ordinary look-up fails: real attributes come first
            latest = self.__dict__.get("latest")
            if latest:
                return latest[name]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    # --- running ----------------------------------------------------------------------------
    @property
    def week(self) -> int:
        """Weeks simulated so far (0 before the first step)."""
        return int(self.steps)

    def fixed(self, name: str, make: Callable[[CommonPurposeModel], Any]) -> Any:
        """`make(model)`, kept until people are added: for facts that depend only on who is here.

        A person's role, organisation, ward, community, sector, level and being staff never
        change (a newcomer takes over the post), so arrays derived from them need computing once.
        """
        n = self.state.role.size  # (State.n, without the property call: this runs ~40 times a week)
        if self._fixed_n != n:
            self._fixed.clear()
            self._fixed_n = n
        value = self._fixed.get(name)
        if value is None:
            value = self._fixed[name] = make(self)
        return value

    @property
    def staff_index(self) -> np.ndarray:
        """Indices of staff (cached until people are added)."""
        return self.fixed("staff_index", lambda m: np.flatnonzero(m.state.staff))

    @property
    def resident_index(self) -> np.ndarray:
        """Indices of residents (cached until people are added)."""
        return self.fixed("resident_index", lambda m: np.flatnonzero(~m.state.staff))

    @property
    def staff_rows(self) -> slice | np.ndarray:
        """Staff as a slice when they are one block of rows (a view is free, a gather is not), else indices."""
        return self.fixed("staff_rows", lambda m: as_slice(m.staff_index))

    @property
    def resident_rows(self) -> slice | np.ndarray:
        """Residents as a slice when they are one block of rows (as generated), else indices."""
        return self.fixed("resident_rows", lambda m: as_slice(m.resident_index))

    def gate(self) -> np.ndarray:
        """This week's culture gate for everyone, once culture has stopped changing (influence on)."""
        if self._gate is None:
            self._gate = culture_gate(self)
        return self._gate

    def snapshot(self) -> np.ndarray:
        """This week's neighbour sums, taken once before anyone moves (synchronous update)."""
        if self.nb is None:
            self.nb = neighbour_sums(self)
        return self.nb

    def enabled(self, stage: Stage) -> bool:
        return stage.switch is None or bool(getattr(self.config, stage.switch).enabled)

    def step(self) -> None:
        """One week: every enabled stage of STEP_ORDER, in order, on whole arrays."""
        self.nb = self._gate = None
        for stage in self.stages:
            if self.enabled(stage):
                stage.run(self)
        self.datacollector.collect(self)
        if self.week >= self.config.steps:
            self.running = False

    def run(self, steps: int | None = None, progress: bool = False) -> CommonPurposeModel:
        """Run `steps` more weeks (default: up to `config.steps`), optionally with a progress bar."""
        todo = (self.config.steps - self.week) if steps is None else steps
        if steps is None and todo <= 0:
            warnings.warn(
                f"run(): already at week {self.week} of the {self.config.steps} configured; "
                "run(steps=N) runs N more weeks",
                stacklevel=2,
            )
        it = range(max(todo, 0))
        if progress:
            from tqdm import tqdm

            it = tqdm(it, desc=self.config.name, unit="week", leave=False)
        for _ in it:
            self.step()
        return self

    def describe_step(self) -> str:
        """The order of what happens in a week, with each stage's switch (for teaching)."""
        lines = ["Each week (one step), in this order:"]
        for i, stage in enumerate(self.stages, 1):
            flag = "" if self.enabled(stage) else "  [switched off]"
            lines.append(f"{i}. {stage.name}: {stage.does}{flag}")
        return "\n".join(lines)

    # --- outputs -----------------------------------------------------------------------------
    def model_frame(self) -> pd.DataFrame:
        """One row per week (week 0 = start): the columns in `abm.metrics.MODEL_COLUMNS`."""
        return self.recorder.model_frame(docking=self.docking)

    def groups_frame(self) -> pd.DataFrame:
        """Long table: step, group_kind, group, metric, value."""
        return self.recorder.groups_frame()

    def people_frame(self) -> pd.DataFrame:
        """One row per person now: characteristics, state and first-passage weeks."""
        s = self.state
        return pd.DataFrame(
            {
                "index": np.arange(s.n),
                "role": np.array(self.role_names, dtype=object)[s.role],
                "ward": np.array(self.ward_names, dtype=object)[s.ward],
                "organisation": [self.org_names[o] if o >= 0 else None for o in s.org],
                "vision": s.vision,
                "value": s.value,
                "acting": s.acting,
                "stage": np.array(STAGES, dtype=object)[self.stage],
                "first_subscribed": s.first_subscribed,
                "first_valued": s.first_valued,
                "first_acting": s.first_acting,
                "replaced": s.replaced,
            }
        )

    def to_networkx(self) -> nx.Graph:
        """The current system as a networkx graph with people's state as node attributes."""
        s = self.state
        g = nx.Graph()
        for i in range(s.n):
            o, c = int(s.org[i]), int(s.community[i])
            g.add_node(
                i,
                role=self.role_names[s.role[i]],
                ward=self.ward_names[s.ward[i]],
                organisation=self.org_names[o] if o >= 0 else "",
                community=self.community_names[c] if c >= 0 else "",
                vision=float(s.vision[i]),
                value=float(s.value[i]),
                acting=bool(s.acting[i]),
                stage=STAGES[self.stage[i]],
            )
        t = self.ties
        live = np.flatnonzero(t.alive)
        g.add_edges_from(
            (int(t.eu[e]), int(t.ev[e]), {"trust": float(t.trust[e]), "kind": TIE_KINDS[t.kind[e]]}) for e in live
        )
        return g

    # --- event log -----------------------------------------------------------------------
    def log_event(self, text: str) -> None:
        self.events_log.append({"week": self.week, "text": text})

    def log_transitions(self) -> None:
        """Plain-language line when people start acting: how many, after which activity, where."""
        s = self.state
        if self._prev_acting.size != s.n:
            self._prev_acting = np.concatenate([self._prev_acting, np.zeros(s.n - self._prev_acting.size, bool)])
        # those who reached acting for the first time this week (few), then who of them started now
        first = np.flatnonzero(s.first_acting == self.week)
        started = first[s.acting[first] & ~self._prev_acting[first]]
        np.copyto(self._prev_acting, s.acting)
        k = int(started.size)
        if k == 0:
            return
        after = s.acted_after[started]
        known = after[after >= 0]
        activity = _ACTIVITY_NAMES[int(np.bincount(known).argmax())] if known.size else "influence from others"
        ward = self.ward_labels[int(np.bincount(s.ward[started]).argmax())]
        role = self.role_names[int(np.bincount(s.role[started]).argmax())]
        if k == 1:
            self.log_event(f"1 started acting for the first time: {one_of(role)}, after {activity}, in {ward}")
            return
        self.log_event(
            f"{k} started acting for the first time, mostly {plural(plain(role))}, most often after {activity}, "
            f"most in {ward}"
        )

    def __repr__(self) -> str:
        return (
            f"CommonPurposeModel({self.config.name!r}, agents={self.state.n}, ties={self.ties.count}, "
            f"week={self.week}, seed={self.seed})"
        )
