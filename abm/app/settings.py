"""The app's controls as data: which scenario, which seed, and the values of the main sliders.

`Settings.for_preset` reads a scenario's own values, so the sliders start where the scenario
file puts them; `Settings.overrides` turns the sliders back into `{dotted.key: value}` overrides
for `CommonPurposeModel`, listing only what differs from the file (so an unchanged scenario is
built from the file alone, and exported configs stay small).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

import abm
from abm.config import ACTIVITIES, CONFIG_DIR, Config, load_config

DEFAULT_PRESET = "south_tees"
DEFAULT_SEED = 1
MAX_SEED = 2**63 - 1
#: Largest model one browser session may build (protects a server shared by a room).
MAX_AGENTS = int(os.environ.get("CP_APP_MAX_AGENTS", "150000"))
#: Largest map file (or CSV pair) one session may upload, in megabytes.
MAX_UPLOAD_MB = float(os.environ.get("CP_APP_MAX_UPLOAD_MB", "10"))
#: Population multipliers offered in the app ("as the scenario", x10, x50).
SCALES = (1, 10, 50)
#: Overrides the population multiplier sets (left out when the people come from a map).
SCALE_KEYS = ("network.agents", "population.residents", "population.staff_scale")
INFLUENCE_RULES = ("averaging", "threshold", "independent_cascade")
POLICIES = ("fixed", "adaptive")
ACTIVITY_LABELS = {
    "engagement": "Engagement",
    "insight": "Insight",
    "collaborative": "Collaborative working",
    "leadership": "Collective leadership",
    "embedding": "Embedded processes",
}


def parse_seed(text: str | int | None) -> int:
    """The seed typed into the page as an int.

    Raises:
        ValueError: with a message fit to show to the user, if `text` is not a whole number
            from 0 to 2**63 - 1.
    """
    cleaned = str(text) if isinstance(text, int) else (text or "").strip()
    if not cleaned:
        raise ValueError("Enter a seed: a whole number such as 1 or 42.")
    try:
        seed = int(cleaned)
    except ValueError:
        raise ValueError(f"The seed must be a whole number such as 1 or 42, not {cleaned[:20]!r}.") from None
    if not 0 <= seed <= MAX_SEED:
        raise ValueError(f"The seed must be between 0 and {MAX_SEED}.")
    return seed


@lru_cache(maxsize=1)
def preset_names() -> tuple[str, ...]:
    """Every scenario file in configs/ (sweep definitions are not scenarios), default first.

    Order: the default, the workshop exercises, the pattern scenarios, then the docking models.
    """
    names = set(abm.presets())
    docking = CONFIG_DIR / "docking"
    if docking.is_dir():
        names |= {f"docking/{p.stem}" for p in docking.glob("*.yaml")}

    def key(name: str) -> tuple[int, str]:
        group = 0 if name == DEFAULT_PRESET else 1 if name.startswith("workshop/") else 3 if "docking/" in name else 2
        return group, name

    return tuple(sorted(names, key=key))


@lru_cache(maxsize=1)
def preset_items() -> list[dict[str, str]]:
    """The scenarios as a select's items: their names to read ("Workshop 2: tight national
    constraint"), their file names (`workshop/w2_national_tight`) as values."""
    return [{"text": scenario_title(name), "value": name} for name in preset_names()]


def scenario_title(preset: str) -> str:
    """A scenario's name as its file gives it, else its file name."""
    try:
        return preset_config(preset).name or preset
    except Exception:  # a broken file still gets a line in the list (choosing it says what is wrong)
        return preset


@lru_cache(maxsize=64)
def preset_config(preset: str) -> Config:
    """A scenario file, validated (cached: the files do not change while the app runs)."""
    if preset not in preset_names():
        raise abm.ConfigError(f"unknown scenario {preset!r}")
    return load_config(preset)


def _round(x: float, digits: int = 3) -> float:
    return round(float(x), digits)


@dataclass(frozen=True)
class Settings:
    """Everything that decides a run: scenario, seed and the sliders' values."""

    preset: str
    seed: int
    budget: float
    shares: tuple[float, ...]  # in ACTIVITIES order
    policy: str
    ward_culture: tuple[float, ...]  # in the config's ward order
    structure_scale: float  # multiplies every organisation type's starting structural alignment
    national_cap: float
    turnover: float
    influence_rule: str
    scale: int = 1

    @classmethod
    def for_preset(cls, preset: str, seed: int = DEFAULT_SEED) -> Settings:
        cfg = preset_config(preset)
        shares = cfg.effort.shares
        return cls(
            preset=preset,
            seed=seed,
            budget=_round(cfg.effort.budget, 1),
            shares=tuple(_round(getattr(shares, a), 3) for a in ACTIVITIES),
            policy=cfg.effort.policy,
            ward_culture=tuple(_round(w.cultural_alignment, 3) for w in cfg.wards.values()),
            structure_scale=1.0,
            national_cap=_round(cfg.national.structural_cap, 3),
            turnover=_round(cfg.turnover.annual_rate, 3),
            influence_rule=cfg.influence.rule,
            scale=1,
        )

    def with_(self, **changes: Any) -> Settings:
        return replace(self, **changes)

    @property
    def config(self) -> Config:
        return preset_config(self.preset)

    def overrides(self) -> dict[str, Any]:
        """`{dotted.key: value}` for every slider that differs from the scenario file."""
        base = Settings.for_preset(self.preset, self.seed)
        cfg = self.config
        out: dict[str, Any] = {}
        if self.budget != base.budget:
            out["effort.budget"] = float(self.budget)
        for a, mine, theirs in zip(ACTIVITIES, self.shares, base.shares, strict=True):
            if mine != theirs:
                out[f"effort.shares.{a}"] = float(mine)
        if self.policy != base.policy:
            out["effort.policy"] = self.policy
        for w, mine, theirs in zip(cfg.wards, self.ward_culture, base.ward_culture, strict=True):
            if mine != theirs:
                out[f"wards.{w}.cultural_alignment"] = float(mine)
        if self.structure_scale != 1.0:
            for name, org in cfg.organisations.items():
                out[f"organisations.{name}.structural_alignment"] = float(
                    min(1.0, max(0.0, org.structural_alignment * self.structure_scale))
                )
        if self.national_cap != base.national_cap:
            out["national.structural_cap"] = float(self.national_cap)
        if self.turnover != base.turnover:
            out["turnover.annual_rate"] = float(self.turnover)
        if self.influence_rule != base.influence_rule:
            out["influence.rule"] = self.influence_rule
        if self.scale != 1:
            if cfg.network.generator != "south_tees" and not cfg.network.source:
                out["network.agents"] = int(cfg.network.agents * self.scale)
            else:
                out["population.residents"] = int(cfg.population.residents * self.scale)
                out["population.staff_scale"] = float(cfg.population.staff_scale * self.scale)
        return out

    def resolved(self, map_source: str | Path | None = None, map_people: int = 0) -> Config:
        """The validated configuration these settings give (raises ConfigError with one line).

        Args:
            map_source: a map uploaded in this session (`network.source`), used instead of the
                scenario's network; the population multiplier does not apply to it.
            map_people: how many people that map has (checked against `MAX_AGENTS`).
        """
        preset_config(self.preset)  # only shipped scenarios: never a path from the page
        overrides = self.overrides()
        if map_source is not None:
            # the map decides who is there: no scaling, and the map's own size is what counts
            overrides = {k: v for k, v in overrides.items() if not k.startswith(SCALE_KEYS)}
            overrides["network.source"] = str(map_source)
            overrides["network.source_max_mb"] = MAX_UPLOAD_MB
        cfg = load_config(self.preset, overrides or None)
        count = map_people if map_source is not None else cfg.agent_count()
        if count > MAX_AGENTS:
            raise abm.ConfigError(
                f"{count:,} people is more than this app allows per session ({MAX_AGENTS:,}); "
                "choose a smaller population (the command line `abm run` has no such limit)"
            )
        return cfg

    def changes(self, other: Settings) -> list[str]:
        """Plain-language list of what differs from `other` (for the 'press Reset' note)."""
        out = []
        if self.preset != other.preset:
            out.append("scenario")
        if self.seed != other.seed:
            out.append("seed")
        if self.budget != other.budget:
            out.append("effort budget")
        if self.shares != other.shares:
            out.append("effort split")
        if self.policy != other.policy:
            out.append("allocation policy")
        if self.ward_culture != other.ward_culture:
            out.append("ward culture")
        if self.structure_scale != other.structure_scale:
            out.append("structural alignment")
        if self.national_cap != other.national_cap:
            out.append("national constraint")
        if self.turnover != other.turnover:
            out.append("turnover")
        if self.influence_rule != other.influence_rule:
            out.append("influence rule")
        if self.scale != other.scale:
            out.append("population")
        return out
