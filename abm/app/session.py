"""One browser session's run: the model, its lock, what the page shows of it, and its history.

Every browser page builds its own `Session` (inside the page component), so two people on the
same server never share a model. All access to the model goes through `Session.lock`: a Step
click, the Play thread, an event button, an export and the page's drawing never touch the model
at the same time. `View` is an immutable copy of everything the page draws, taken under the lock
once per change and shared by all the page's panels.
"""

from __future__ import annotations

import base64
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import solara

from abm import CommonPurposeModel
from abm.acting import STAGES
from abm.activities import allocation
from abm.app.layout import Blocks, Layout, blocks, extend_layout, grouped_layout, normalised
from abm.app.settings import Settings
from abm.app.theme import SHAPES, STAGE_LABEL, org_label, role_label, role_shapes
from abm.app.upload import MapStore, UploadedMap, fixups
from abm.config import ACTIVITIES, FundingCut, LeaderLeaves, NationalPolicyChange, PartnerJoins
from abm.events import apply_event

#: Draw person by person up to this many people and ties; above, the role-by-ward block view.
MAX_DRAWN_PEOPLE = 12_000
MAX_DRAWN_TIES = 60_000
#: Keep every person's weekly state for the inspector up to this many people.
HISTORY_MAX_PEOPLE = 20_000
#: Resend the whole tie list after this many weeks, or when changes pile up past this share.
TIES_REFRESH_WEEKS = 26
TIES_REFRESH_SHARE = 0.25
#: The four shares recorded by group, in this order (as in theme.PARTS).
GROUP_SHARES = ("Vision", "Value", "Collective function", "Common purpose")
#: Event kinds the page can fire.
#: `Session.reset`'s default: keep the map in use.
KEEP = object()
EVENT_KINDS = ("national_policy_change", "funding_cut", "leader_leaves", "partner_joins")


class StepError(RuntimeError):
    """A step failed; the message is fit for the page."""


def tie_keys(model: CommonPurposeModel) -> np.ndarray:
    """Live ties as sorted int64 keys u * 2**32 + v (u < v)."""
    t = model.ties
    live = t.alive
    u = np.minimum(t.eu[live], t.ev[live]).astype(np.int64)
    v = np.maximum(t.eu[live], t.ev[live]).astype(np.int64)
    return np.unique((u << 32) | v)


def keys_to_pairs(keys: np.ndarray) -> np.ndarray:
    """Keys back to a flat [u0, v0, u1, v1, ...] array."""
    out = np.empty(keys.size * 2, dtype=np.int64)
    out[0::2] = keys >> 32
    out[1::2] = keys & 0xFFFFFFFF
    return out


@dataclass
class RunSeries:
    """Per-week figures by role and by ward that the model's own tables do not keep in this form."""

    role: list[np.ndarray] = field(default_factory=list)  # each (roles, 4): the GROUP_SHARES
    ward: list[np.ndarray] = field(default_factory=list)  # each (wards, 4)
    ward_pa: list[np.ndarray] = field(default_factory=list)  # each (wards, 3): residents' classes

    def record(self, model: CommonPurposeModel) -> None:
        s = model.state
        lad = model.config.ladder
        subscribed = s.vision >= lad.vision_threshold
        valuing = subscribed & (s.value >= lad.value_threshold)
        flags = (subscribed, valuing, s.acting, model.stage == 5)
        for codes, k, out in ((s.role, len(model.role_names), self.role), (s.ward, len(model.ward_names), self.ward)):
            count = np.maximum(np.bincount(codes, minlength=k), 1)
            out.append(np.column_stack([np.bincount(codes, weights=f, minlength=k) / count for f in flags]))
        res = ~s.staff
        wards = len(model.ward_names)
        w, pa = s.ward[res], s.pa_class[res]
        n_res = np.maximum(np.bincount(w, minlength=wards), 1)
        self.ward_pa.append(
            np.column_stack([np.bincount(w, weights=pa == c, minlength=wards) / n_res for c in range(3)])
        )


@dataclass
class PersonHistory:
    """Everyone's vision, value and stage each week (for the inspector), for models up to a size."""

    vision: list[np.ndarray] = field(default_factory=list)
    value: list[np.ndarray] = field(default_factory=list)
    stage: list[np.ndarray] = field(default_factory=list)
    on: bool = True

    def record(self, model: CommonPurposeModel) -> None:
        if not self.on:
            return
        s = model.state
        self.vision.append(s.vision.astype(np.float16))
        self.value.append(s.value.astype(np.float16))
        self.stage.append(model.stage.astype(np.int8))

    def of(self, i: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Weeks, vision, value, stage for person i (weeks before they existed are left out)."""
        weeks = [w for w, arr in enumerate(self.vision) if i < arr.size]
        vision = np.array([float(self.vision[w][i]) for w in weeks])
        value = np.array([float(self.value[w][i]) for w in weeks])
        stage = np.array([int(self.stage[w][i]) for w in weeks], dtype=int)
        return np.array(weeks), vision, value, stage


@dataclass(frozen=True)
class Person:
    """What the inspector shows of one person now."""

    index: int
    role: str
    ward: str
    organisation: str | None
    sector: str
    community: str | None
    staff: bool
    stage: int
    vision: float
    value: float
    acting: bool
    skills: float
    culture: float
    activity_class: int
    first_subscribed: int
    first_valued: int
    first_acting: int
    replaced: int
    structure: float | None
    neighbours: tuple[tuple[int, str, str, int, float], ...]  # index, role, where, stage, trust
    degree: int
    weeks: np.ndarray
    history_vision: np.ndarray
    history_value: np.ndarray
    history_stage: np.ndarray


@dataclass(frozen=True)
class View:
    """Everything the page draws, copied from the model under the lock (never changed after)."""

    version: int
    generation: int
    week: int
    weeks: int
    running: bool
    broken: bool
    name: str
    description: str
    preset: str
    seed: int
    people: int
    ties: int
    frame: pd.DataFrame
    stage_counts: tuple[int, ...]
    stages: str  # one digit per person
    role_names: tuple[str, ...]
    ward_names: tuple[str, ...]
    ward_labels: tuple[str, ...]
    org_names: tuple[str, ...]
    role_shares: np.ndarray  # (weeks + 1, roles, 4)
    ward_shares: np.ndarray  # (weeks + 1, wards, 4)
    ward_pa: np.ndarray  # (weeks + 1, wards, 3)
    ward_target: tuple[bool, ...]
    ward_residents: tuple[int, ...]
    ward_culture: tuple[float, ...]  # mean individual cultural alignment now
    events: tuple[dict[str, Any], ...]
    markers: tuple[tuple[int, str], ...]  # (week, short label) of events that fired
    allocation: dict[str, float]
    effort_budget: float
    effort_units: float
    national_cap: float
    national_culture: float
    structural_alignment: float
    max_structural_alignment: float
    embedded_processes: float
    organisations_embedding: int
    cultural_alignment: float
    inactive_target_now: float
    inactive_target_start: float
    describe: str
    activities_on: dict[str, bool]
    mode: str  # "people" or "blocks"
    layout_key: int
    ties_key: int
    ties_base: np.ndarray  # flat pairs
    ties_add: np.ndarray
    ties_remove: np.ndarray
    block_data: Blocks | None
    map_name: str = ""  # the uploaded map the run is on ("" for the scenario's own network)


@dataclass(frozen=True)
class NetworkStatic:
    """What the network canvas needs once per layout: positions, shapes, labels, tooltips."""

    key: int
    n: int
    xy: str  # base64 of little-endian uint16 pairs, positions scaled to 0..30000
    unit: float  # canvas units per layout unit
    labels: list[dict[str, Any]]
    shapes: str  # one digit per person: the marker shape code (theme.SHAPES)
    tips: dict[str, Any]
    role: np.ndarray
    ward: np.ndarray
    org: np.ndarray


class Session:
    """One browser session's model, stepped from button clicks and from the Play thread.

    Create it, then `reset(settings)` to build the first model (which may fail readably).
    """

    def __init__(self, settings: Settings) -> None:
        self.lock = threading.RLock()
        self.changed = solara.reactive(0)  # bumped after every change, so panels redraw
        # (generation, running): changes only when a new run starts or the run finishes or breaks,
        # so the sidebar need not redraw every week
        self.status = solara.reactive((0, False))
        self.version = 0
        self.generation = 0
        self.model: CommonPurposeModel | None = None
        self.settings = settings
        self.broken = False
        self.layout: Layout | None = None
        self.series = RunSeries()
        self.history = PersonHistory()
        self.app_events: list[dict[str, Any]] = []
        self._ties_base = np.zeros(0, dtype=np.int64)
        self._ties_base_week = 0
        self._ties_key = 0
        self._blocks_flows: Blocks | None = None
        self._blocks_week = -1
        self._view: View | None = None
        self._static: tuple[int, NetworkStatic] | None = None
        self._layout_key = 0
        self.maps = MapStore()  # this session's uploads, in its own temporary directory
        self.map: UploadedMap | None = None

    # --- changing the run ----------------------------------------------------------------------
    def reset(self, settings: Settings, map: UploadedMap | object | None = KEEP) -> None:
        """Build a fresh model (raises ConfigError or the model's error; the old run is kept then).

        Args:
            settings: the scenario, seed and sliders.
            map: the uploaded map to build on; `None` for the scenario's own network; by default
                the map in use now (so an uploaded map survives Reset and seed changes).
        """
        chosen = self.map if map is KEEP else map
        assert chosen is None or isinstance(chosen, UploadedMap)
        model, _ = self.build(settings, chosen.source if chosen else None, chosen.people if chosen else 0)
        self.install(model, settings, chosen)

    def build(
        self, settings: Settings, map_source: Path | None = None, map_people: int = 0
    ) -> tuple[CommonPurposeModel, list[str]]:
        """A new model for `settings`, on the map at `map_source` if given (the session is not changed).

        Returns:
            The model, and the fix-ups made to the map (`MapWarning` lines; shown once, at upload).
        """
        cfg = settings.resolved(map_source, map_people)
        if map_source is None:
            return CommonPurposeModel(cfg, rng=settings.seed), []
        with fixups(Path(map_source)) as notes:
            model = CommonPurposeModel(cfg, rng=settings.seed)
        return model, notes

    def install(self, model: CommonPurposeModel, settings: Settings, map: UploadedMap | None) -> None:
        """Make `model` (built by `build`) this session's run, with the map it was built on."""
        series, history = RunSeries(), PersonHistory(on=model.state.n <= HISTORY_MAX_PEOPLE)
        series.record(model)
        history.record(model)
        drawn = model.state.n <= MAX_DRAWN_PEOPLE and model.ties.count <= MAX_DRAWN_TIES
        layout = grouped_layout(model) if drawn else None
        with self.lock:
            self.model = model
            self.settings = settings
            self.map = map
            self.broken = False
            self.generation += 1
            self.layout = layout
            self._layout_key += 1
            self.series, self.history = series, history
            self.app_events = []
            self._new_ties_base()
            self._blocks_flows = None
        self.touch()

    def close(self) -> None:
        """The session is over: delete its uploaded maps."""
        self.maps.close()

    def _new_ties_base(self) -> None:
        assert self.model is not None
        self._ties_base = tie_keys(self.model) if self.layout is not None else np.zeros(0, dtype=np.int64)
        self._ties_base_week = self.model.week
        self._ties_key += 1

    def touch(self) -> None:
        """Mark the run changed: every panel that shows it redraws."""
        with self.lock:
            self.version += 1
            version = self.version
            model = self.model
            status = (self.generation, model is not None and bool(model.running) and not self.broken)
        self.changed.set(version)
        self.status.set(status)  # a no-op (no redraw) unless it differs

    def _after_step(self) -> None:
        model = self.model
        assert model is not None
        self.series.record(model)
        self.history.record(model)
        if self.history.on and model.state.n > HISTORY_MAX_PEOPLE:
            self.history.on = False

    def step(self, generation: int | None = None, stop: threading.Event | None = None, weeks: int = 1) -> int:
        """Advance up to `weeks` weeks (stopping at the end of the run), then redraw once.

        Returns the number of weeks stepped; 0 if there is nothing to step: the run is finished
        or broken, `generation` names an older model, or `stop` is set (Pause was pressed; checked
        under the lock, so no step lands after it).

        Raises:
            StepError: a step failed; the run is kept but marked broken until a Reset.
        """
        done = 0
        failure: Exception | None = None
        with self.lock:
            model = self.model
            if generation is not None and generation != self.generation:
                return 0
            if stop is not None and stop.is_set():
                return 0
            while done < weeks and model is not None and model.running and not self.broken:
                target = model.week + 1
                try:
                    model.step()
                    self._after_step()
                except Exception as exc:
                    self.broken = True
                    failure = exc
                    break
                done += 1
        if done or failure is not None:
            self.touch()
        if failure is not None:
            raise StepError(
                f"The model failed during week {target}: {type(failure).__name__}: {failure}. "
                "Press Reset to start again."
            ) from failure
        return done

    def advance(self, weeks: int) -> int:
        """Step up to `weeks` weeks at once (stops at the end of the run); returns weeks stepped."""
        return self.step(weeks=weeks)

    def fire(self, kind: str, **params: Any) -> str:
        """Fire an event now (between this week and the next); returns the plain-language line.

        The event is also kept (as if scheduled for the next week) so an exported config repeats
        the run.
        """
        with self.lock:
            model = self.model
            if model is None:
                raise ValueError("There is no run to change: press Reset first.")
            if self.broken:
                raise ValueError("This run stopped after an error: press Reset first.")
            if not model.running:
                raise ValueError("This run has finished: press Reset to start again.")
            event = make_event(kind, model, **params)
            text = apply_event(model, event)
            model.log_event(f"{text} (fired from the app)")
            self.app_events.append({"week": model.week, "kind": kind, "text": text, "event": event})
            n_before = self.layout.n if self.layout is not None else 0
            if self.layout is not None and model.state.n > n_before:
                self.layout = extend_layout(self.layout, model)
                self._layout_key += 1
            if self.layout is not None and model.state.n > MAX_DRAWN_PEOPLE:
                self.layout = None
                self._layout_key += 1
            self._new_ties_base()
            self._blocks_flows = None
        self.touch()
        return text

    def exported_config(self) -> dict[str, Any]:
        """The resolved config of this run, seed and events fired from the app included."""
        with self.lock:
            assert self.model is not None
            data = self.model.config.to_dict()
            data["seed"] = int(self.model.seed)
            extra = [dict(e["event"].model_dump(mode="json"), week=e["week"] + 1) for e in self.app_events]
            data["events"] = list(data.get("events", [])) + extra
            if self.map is not None:
                # not the server's temporary file: the map's own name, kept beside the config, and
                # its hash under the key `abm run` writes (an edited map is then refused, not rerun)
                net = data["network"]
                net.pop("source_sha256", None)
                data["network"] = {}
                for key, value in net.items():
                    data["network"][key] = value
                    if key == "source":
                        data["network"]["source"] = self.map.export_name
                        data["network"]["source_sha256"] = self.map.sha256
            return data

    # --- reading the run -----------------------------------------------------------------------
    def network_static(self) -> NetworkStatic | None:
        """The canvas's per-layout data (cached until the layout changes), or None in block mode."""
        with self.lock:
            model, layout = self.model, self.layout
            if model is None or layout is None:
                return None
            key = self._layout_key
            if self._static is not None and self._static[0] == key:
                return self._static[1]
            qx, qy, scale, ox, oy = normalised(layout)
            xy = np.empty(qx.size * 2, dtype="<u2")
            xy[0::2], xy[1::2] = qx, qy
            shape_of_role = [SHAPES.index(shape) for shape in role_shapes(list(model.role_names))]
            s = model.state
            shapes = np.array(shape_of_role, dtype=np.uint8)[s.role]
            codes = np.empty(s.n * 3, dtype="<u2")
            codes[0::3], codes[1::3], codes[2::3] = s.role, s.ward, s.org + 1
            labels = [
                {"x": round((lab.x - ox) * scale), "y": round((lab.y - oy) * scale), "text": lab.text, "kind": lab.kind}
                for lab in layout.labels
            ]
            static = NetworkStatic(
                key=key,
                n=int(s.n),
                xy=base64.b64encode(xy.tobytes()).decode("ascii"),
                unit=float(scale),
                labels=labels,
                shapes=shapes.tobytes().translate(_DIGITS).decode("ascii"),
                tips={
                    "roles": [role_label(r) for r in model.role_names],
                    "wards": list(model.ward_labels),
                    "orgs": [org_label(o) for o in model.org_names],
                    "stages": [STAGE_LABEL[x] for x in STAGES],
                    "codes": base64.b64encode(codes.tobytes()).decode("ascii"),
                },
                role=s.role.copy(),
                ward=s.ward.copy(),
                org=s.org.copy(),
            )
            self._static = (key, static)
            return static

    def person(self, i: int) -> Person | None:
        """The inspector's view of person i, or None if there is no such person."""
        with self.lock:
            model = self.model
            if model is None or not 0 <= i < model.state.n:
                return None
            s = model.state
            o = int(s.org[i])
            c = int(s.community[i])
            nbrs = model.ties.neighbours(i)
            t = model.ties
            # trust of each tie: find the tie ids for the pairs
            ids = t.find(np.full(nbrs.size, i), nbrs) if nbrs.size else np.zeros(0, dtype=np.int64)
            trust = np.where(ids >= 0, t.trust[np.maximum(ids, 0)], np.nan) if nbrs.size else np.zeros(0)
            order = np.argsort(-np.nan_to_num(trust, nan=-1), kind="stable")[:12]
            neighbours = []
            for k in order:
                j = int(nbrs[k])
                oj = int(s.org[j])
                where = org_label(model.org_names[oj]) if oj >= 0 else model.ward_labels[int(s.ward[j])]
                neighbours.append((j, model.role_names[int(s.role[j])], where, int(model.stage[j]), float(trust[k])))
            weeks, hv, hu, hs = self.history.of(i) if self.history.on else (np.zeros(0),) * 4
            sector = model.sector_names[int(s.sector[i])] if 0 <= int(s.sector[i]) < len(model.sector_names) else ""
            return Person(
                index=i,
                role=model.role_names[int(s.role[i])],
                ward=model.ward_labels[int(s.ward[i])],
                organisation=model.org_names[o] if o >= 0 else None,
                sector=sector,
                community=model.community_names[c] if c >= 0 else None,
                staff=bool(s.staff[i]),
                stage=int(model.stage[i]),
                vision=float(s.vision[i]),
                value=float(s.value[i]),
                acting=bool(s.acting[i]),
                skills=float(s.skills[i]),
                culture=float(s.culture[i]),
                activity_class=int(s.pa_class[i]),
                first_subscribed=int(s.first_subscribed[i]),
                first_valued=int(s.first_valued[i]),
                first_acting=int(s.first_acting[i]),
                replaced=int(s.replaced[i]),
                structure=float(model.org_structure[o]) if o >= 0 else None,
                neighbours=tuple(neighbours),
                degree=int(nbrs.size),
                weeks=weeks,
                history_vision=hv,
                history_value=hu,
                history_stage=hs,
            )

    def view(self) -> View | None:
        """The current run as the page draws it (computed once per change, then shared)."""
        with self.lock:
            if self._view is not None and self._view.version == self.version:
                return self._view
            model = self.model
            if model is None:
                return None
            self._view = self._make_view(model)
            return self._view

    def _make_view(self, model: CommonPurposeModel) -> View:
        s = model.state
        frame = model.model_frame()
        counts = np.bincount(model.stage, minlength=len(STAGES))
        res = ~s.staff
        wards = len(model.ward_names)
        ward_res = np.bincount(s.ward[res], minlength=wards)
        ward_culture = np.bincount(s.ward, weights=s.culture, minlength=wards) / np.maximum(
            np.bincount(s.ward, minlength=wards), 1
        )
        alloc = dict(model.last_allocation) or allocation(model)
        staff_org = s.org[s.staff]
        legacy_orgs = int((model.org_embedded > 0).sum())
        markers = [(int(e.week), _event_label(e)) for e in model.config.events if e.week <= model.week]
        markers += [(int(e["week"]), _event_label(e["event"])) for e in self.app_events]
        mode = "people" if self.layout is not None else "blocks"
        add = remove = base = np.zeros(0, dtype=np.int64)
        block_data = None
        if mode == "people":
            current = tie_keys(model)
            add = np.setdiff1d(current, self._ties_base, assume_unique=True)
            remove = np.setdiff1d(self._ties_base, current, assume_unique=True)
            stale = model.week - self._ties_base_week >= TIES_REFRESH_WEEKS
            if stale or add.size + remove.size > TIES_REFRESH_SHARE * max(self._ties_base.size, 1):
                self._ties_base, self._ties_base_week = current, model.week
                self._ties_key += 1
                add = remove = np.zeros(0, dtype=np.int64)
            base = self._ties_base
        else:
            # flows between blocks change slowly: recount them every few weeks
            if self._blocks_flows is None or model.week - self._blocks_week >= 4:
                self._blocks_flows = blocks(model, with_flows=True)
                self._blocks_week = model.week
            now = blocks(model, with_flows=False)
            flows = self._blocks_flows
            if flows.count.size == now.count.size:
                now = Blocks(now.role, now.ward, now.count, now.stages, flows.flow_a, flows.flow_b, flows.flow_ties)
            block_data = now
        target_res = res & model.ward_target[s.ward]
        inactive_now = float((s.pa_class[target_res] == 0).mean()) if target_res.any() else float("nan")
        inactive_start = float(frame["target_inactive_share"].iloc[0]) if len(frame) else float("nan")
        return View(
            version=self.version,
            generation=self.generation,
            week=model.week,
            weeks=int(model.config.steps),
            running=bool(model.running) and not self.broken,
            broken=self.broken,
            name=str(model.config.name),
            description=str(model.config.description or ""),
            preset=self.settings.preset,
            seed=int(model.seed),
            people=int(s.n),
            ties=int(model.ties.count),
            frame=frame,
            stage_counts=tuple(int(c) for c in counts),
            stages=model.stage.astype(np.uint8).tobytes().translate(_DIGITS).decode("ascii"),
            role_names=tuple(model.role_names),
            ward_names=tuple(model.ward_names),
            ward_labels=tuple(model.ward_labels),
            org_names=tuple(model.org_names),
            role_shares=np.stack(self.series.role),
            ward_shares=np.stack(self.series.ward),
            ward_pa=np.stack(self.series.ward_pa),
            ward_target=tuple(bool(t) for t in model.ward_target),
            ward_residents=tuple(int(c) for c in ward_res),
            ward_culture=tuple(float(c) for c in ward_culture),
            events=tuple(dict(e) for e in model.events_log),
            markers=tuple(sorted(set(markers))),
            allocation=alloc,
            effort_budget=float(model.effort_budget),
            effort_units=float(model.effort_budget) * s.n / 1000.0,
            national_cap=float(model.national_cap),
            national_culture=float(model.national_culture),
            structural_alignment=float(model.org_structure[staff_org].mean()) if staff_org.size else 0.0,
            max_structural_alignment=float(model.org_structure.max()) if model.org_structure.size else 0.0,
            embedded_processes=float(model.org_embedded.sum()),
            organisations_embedding=legacy_orgs,
            cultural_alignment=float(s.culture.mean()) if s.n else 0.0,
            inactive_target_now=inactive_now,
            inactive_target_start=inactive_start,
            describe=model.describe_step(),
            activities_on={a: bool(getattr(model.config.activities, a).enabled) for a in ACTIVITIES},
            mode=mode,
            layout_key=self._layout_key,
            ties_key=self._ties_key,
            ties_base=keys_to_pairs(base),
            ties_add=keys_to_pairs(add),
            ties_remove=keys_to_pairs(remove),
            block_data=block_data,
            map_name=self.map.name if self.map is not None else "",
        )


_DIGITS = bytes.maketrans(bytes(range(10)), b"0123456789")


def _event_label(event: Any) -> str:
    return {
        "national_policy_change": "policy change",
        "funding_cut": "funding cut",
        "leader_leaves": "leader leaves",
        "partner_joins": "partner joins",
    }.get(getattr(event, "type", ""), "event")


def make_event(kind: str, model: CommonPurposeModel, **params: Any) -> Any:
    """An event object for `apply_event`, with defaults that suit the running scenario.

    Raises:
        ValueError: an unknown kind or a parameter out of range (message fit for the page).
    """
    week = model.week + 1
    try:
        if kind == "national_policy_change":
            cap = params.get("structural_cap")
            culture = params.get("cultural_alignment")
            return NationalPolicyChange(type=kind, week=week, structural_cap=cap, cultural_alignment=culture)
        if kind == "funding_cut":
            return FundingCut(type=kind, week=week, factor=float(params.get("factor", 0.5)))
        if kind == "leader_leaves":
            role = params.get("role") or leader_role(model)
            if role is None:
                raise ValueError("this scenario has no staff roles, so no leader can leave")
            return LeaderLeaves(
                type=kind,
                week=week,
                role=role,
                count=int(params.get("count", 1)),
                who=params.get("who", "most_connected"),
            )
        if kind == "partner_joins":
            staff = params.get("staff") or partner_staff(model)
            if not staff:
                raise ValueError("this scenario has no staff roles for a new partner")
            number = sum(1 for e in model.events_log if "joined with" in e["text"]) + 1
            return PartnerJoins(
                type=kind,
                week=week,
                name=params.get("name") or f"New partner {number}",
                sector=params.get("sector") or partner_sector(model, staff),
                staff=staff,
                structural_alignment=float(params.get("structural_alignment", 0.5)),
                cultural_alignment=float(params.get("cultural_alignment", 0.6)),
            )
    except ValueError:
        raise
    except Exception as exc:  # pydantic's ValidationError: one readable line
        errors = getattr(exc, "errors", None)
        if callable(errors):
            first = errors()[0]
            where = ".".join(str(p) for p in first.get("loc", ()))
            raise ValueError(f"{kind.replace('_', ' ')}: {where}: {first.get('msg')}") from None
        raise ValueError(f"{kind.replace('_', ' ')}: {exc}") from None
    raise ValueError(f"unknown event {kind!r} (allowed: {', '.join(EVENT_KINDS)})")


def leader_role(model: CommonPurposeModel) -> str | None:
    """The role that leaves in 'a leader leaves': `leader` if there is one, else the highest level."""
    cfg = model.config
    staff_roles = [r for r in model.role_names if cfg.roles[r].staff]
    if not staff_roles:
        return None
    if "leader" in staff_roles:
        return "leader"
    return max(staff_roles, key=lambda r: cfg.roles[r].level)


def partner_staff(model: CommonPurposeModel) -> dict[str, int]:
    """A new partner's staff: six frontline workers (voluntary sector if the scenario has one), one manager."""
    cfg = model.config
    staff_roles = [r for r in model.role_names if cfg.roles[r].staff]
    if not staff_roles:
        return {}
    frontline = [r for r in staff_roles if cfg.roles[r].level == 1] or staff_roles
    main = max(frontline, key=lambda r: (r == "vcse_worker", cfg.roles[r].resident_contact))
    out = {main: 6}
    managers = [r for r in staff_roles if cfg.roles[r].level == 2 and r != main]
    if managers:
        out["manager" if "manager" in managers else managers[0]] = 1
    return out


def partner_sector(model: CommonPurposeModel, staff: dict[str, int]) -> str:
    """The sector of the organisation types that employ the partner's main role (else 'partner')."""
    main = max(staff, key=lambda r: staff[r]) if staff else None
    for spec in model.config.organisations.values():
        if main in spec.staff and spec.sector != "pilot":
            return spec.sector
    return "partner"
