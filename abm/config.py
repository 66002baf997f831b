"""Scenario configuration: a pydantic schema, YAML loading, `extends`, and `--set` overrides.

Every number the model uses lives here, with its default, its allowed range and a one-line
meaning. Defaults that are assumptions rather than published facts say so.

Example:
    >>> cfg = load_config("south_tees", overrides=["effort.budget=30"])
    >>> cfg.effort.budget
    30.0
"""

from __future__ import annotations

import copy
import difflib
import hashlib
import json
import math
import os
import re
import stat
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_core import PydanticCustomError

#: Where the shipped scenario files live (a preset name resolves here).
CONFIG_DIR = Path(__file__).resolve().parent.parent / "configs"
ACTIVITIES = ("engagement", "insight", "collaborative", "leadership", "embedding")
PA_CLASSES = ("inactive", "fairly_active", "active")
#: Largest population the schema accepts (about 8 GB of state at the bench's degree).
MAX_AGENTS = 2_000_000
#: Largest scenario or sweep file read (they are a few kilobytes; this stops a huge or endless file).
MAX_YAML_BYTES = 2 * 2**20
#: Most values a YAML file may hold once its aliases (`*name`) are expanded: stops "billion laughs".
MAX_YAML_NODES = 100_000
#: Longest chain of `extends:` (a scenario extends a preset, which may extend another).
MAX_EXTENDS = 20
#: Environment variable: the memory (MB) a run may use, instead of what the machine has available.
MEMORY_LIMIT_ENV = "ABM_MEMORY_LIMIT_MB"
#: pydantic error type for true/false given where a number belongs (see `Strict`).
BOOL_AS_NUMBER = "bool_as_number"

Unit = Annotated[float, Field(ge=0.0, le=1.0, allow_inf_nan=False)]
NonNeg = Annotated[float, Field(ge=0.0, allow_inf_nan=False)]
Positive = Annotated[float, Field(gt=0.0, allow_inf_nan=False)]
#: Effort units per action: a floor, since the weekly actions are the budget divided by the cost.
Cost = Annotated[float, Field(ge=0.01, le=1e6, allow_inf_nan=False)]


class ConfigError(ValueError):
    """A configuration problem, phrased as one line for the user."""


class ScenarioWarning(UserWarning):
    """Something in a scenario that runs but will not do what it seems to ask (one line): an event
    after the last week, more leavers than holders of a role, a map's fix-ups (`MapWarning`), ..."""


def _is_number_type(tp: Any) -> bool:
    """True for int and float, optionally with None (pydantic would read true/false as 1/0 for them)."""
    if tp in (int, float):
        return True
    args = typing.get_args(tp)
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        kinds = [a for a in args if a is not type(None)]
        return bool(kinds) and all(_is_number_type(a) for a in kinds)
    if typing.get_origin(tp) is Annotated:
        return _is_number_type(args[0])
    return False


class Strict(BaseModel):
    """Base for every section: unknown keys are errors, values are validated on assignment."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    @model_validator(mode="before")
    @classmethod
    def _no_booleans_as_numbers(cls, data: Any) -> Any:
        # `steps: true` would silently mean 1 week: a number field (or a mapping of numbers) wants a number.
        if not isinstance(data, dict):
            return data
        for name, value in data.items():
            field = cls.model_fields.get(name) if isinstance(name, str) else None
            if field is None:
                continue
            tp = field.annotation
            if isinstance(value, bool) and _is_number_type(tp):
                raise PydanticCustomError(BOOL_AS_NUMBER, "expected a number, not true/false", {"key": name})
            if isinstance(value, dict) and typing.get_origin(tp) is dict and _is_number_type(typing.get_args(tp)[1]):
                for key, item in value.items():
                    if isinstance(item, bool):
                        raise PydanticCustomError(
                            BOOL_AS_NUMBER, "expected a number, not true/false", {"key": f"{name}.{key}"}
                        )
        return data


# --- who is in the system -------------------------------------------------------------------


class RoleSpec(Strict):
    """One role (GP, housing officer, resident, ...). New roles need no code changes."""

    staff: bool = Field(True, description="works in an organisation (False: a resident)")
    level: int = Field(1, ge=0, le=5, description="hierarchy: 0 resident, 1 frontline, 2 manager, 3 leader")
    influence: Annotated[float, Field(ge=0.0, le=10.0)] = Field(1.0, description="weight as a source of influence")
    susceptibility: Unit = Field(0.5, description="how readily this role is influenced by others")
    skills: Unit = Field(0.5, description="mean skills for acting on the vision")
    initial_vision: Unit = Field(0.05, description="mean vision at week 0")
    initial_value: Unit = Field(0.05, description="mean value at week 0")
    initial_aware: Unit = Field(0.05, description="share aware of the vision at week 0")
    resident_contact: NonNeg = Field(0.0, description="weight of this role's action on residents' activity")


class ActivityMix(Strict):
    """Shares of people in the Active Lives classes (must sum to 1)."""

    inactive: Unit
    fairly_active: Unit
    active: Unit

    @model_validator(mode="after")
    def _sums_to_one(self) -> ActivityMix:
        total = self.inactive + self.fairly_active + self.active
        if abs(total - 1.0) > 1e-3:
            raise ValueError(f"inactive + fairly_active + active must sum to 1 (got {total:.4f})")
        return self


class WardSpec(Strict):
    """A place: one of the four target wards or the rest of South Tees."""

    label: str = ""
    share: Positive = Field(description="share of residents living here (normalised over wards)")
    target: bool = Field(False, description="one of the pilot's target wards")
    cultural_alignment: Unit = Field(0.5, description="how far local ideas and beliefs fit the vision")
    deprivation_decile: Annotated[float, Field(ge=1.0, le=10.0)] = Field(5.0, description="mean IMD decile")
    activity: ActivityMix


class OrganisationSpec(Strict):
    """A type of organisation, instantiated `count` times (times `population.staff_scale`)."""

    sector: str
    count: int = Field(1, ge=0, le=100_000)
    staff: dict[str, Annotated[int, Field(ge=0, le=100_000)]]
    structural_alignment: Unit = Field(0.3, description="fit of processes and hierarchy to the new ways")
    cultural_alignment: Unit = Field(0.5)
    embedded_processes: NonNeg = Field(0.0, description="processes already embedded at week 0")
    wards: list[str] | Literal["all"] = Field("all", description="wards served (organisations spread over them)")
    serves_residents: bool = Field(True, description="frontline staff have ties to residents")
    initial_vision: Unit | None = Field(None, description="overrides the roles' initial vision for its staff")
    initial_value: Unit | None = Field(None, description="overrides the roles' initial value for its staff")
    initial_aware: Unit | None = Field(None, description="overrides the roles' initial awareness")


class CommunitySpec(Strict):
    """A community of interest (prehabilitation, type 2 diabetes, weight loss, clinical pathway)."""

    label: str = ""
    members: Literal["residents", "staff"] = "residents"
    share: Unit = Field(0.0, description="share of residents (members=residents) in this community")
    roles: list[str] = Field(default_factory=list, description="staff roles in it (members=staff)")
    linked_sector: str | None = Field(None, description="sector whose staff serve this community")
    links: NonNeg = Field(1.0, description="ties per member to staff of the linked sector")


class PopulationSpec(Strict):
    residents: int = Field(1800, ge=0, le=MAX_AGENTS)
    staff_scale: Positive = Field(1.0, le=10_000, description="multiplies every organisation count")
    age_bands: dict[str, Unit] = Field(
        default_factory=lambda: {"16-34": 0.31, "35-54": 0.32, "55-74": 0.26, "75+": 0.11},
        description="assumption: shares of adult residents by age band",
    )


class TrustSpec(Strict):
    within_organisation: Unit = 0.6
    cross_sector: Unit = 0.3
    professional_resident: Unit = 0.4
    resident_resident: Unit = 0.5
    new_tie: Unit = Field(0.3, description="trust of a tie started by engagement or brokering")
    noise: Unit = Field(0.1, description="spread of initial trust around the kind's mean")


#: Model fields an imported map's columns can be renamed to (see `MapMappingSpec.columns`).
MapColumn = Literal["id", "label", "role", "ward", "organisation", "community", "trust", "source", "target"]


class MapMappingSpec(Strict):
    """How an imported map's columns and labels become the model's roles, wards and organisations.

    Names and labels are matched case-insensitively, with spaces and hyphens read as underscores.
    """

    columns: dict[MapColumn, str] = Field(
        default_factory=dict, description="the map's column for a model field, e.g. {role: Job title}"
    )
    roles: dict[str, str] = Field(default_factory=dict, description="map label -> role, e.g. {Practice nurse: gp}")
    wards: dict[str, str] = Field(default_factory=dict, description="map label -> ward")
    organisations: dict[str, str] = Field(
        default_factory=dict, description="organisation name in the map -> organisation type in the config"
    )
    default_role: str | None = Field(None, description="role of people with none (default: the resident role)")
    default_ward: str | None = Field(
        None, description="ward of people with none or an unknown one (default: first non-target ward)"
    )
    default_organisation: str | None = Field(
        None, description="organisation of staff with none (default: one per role and ward)"
    )


class NetworkSpec(Strict):
    generator: Literal["south_tees", "erdos_renyi", "ring_lattice"] = Field(
        "south_tees", description="south_tees, or a canonical graph for docking (one role, one ward)"
    )
    agents: int = Field(1000, ge=1, le=MAX_AGENTS, description="erdos_renyi / ring_lattice: number of people")
    mean_degree: NonNeg = Field(4.0, le=10_000, description="erdos_renyi: z; ring_lattice: k (even)")
    rewire_p: Unit = Field(0.0, description="ring_lattice: chance each tie is rewired at random")
    source: str | None = Field(
        None, description="a map file to use instead of the generator (GraphML, GEXF, CSV, Kumu, PRSM)"
    )
    source_sha256: str | None = Field(
        None,
        description=(
            "SHA-256 of the map at `source` (64 hex characters; a CSV pair: of its two files' hashes), "
            "written by `abm run` and the app's export; a map whose hash differs is refused "
            "(null: not checked)"
        ),
    )
    source_max_mb: Positive = Field(50.0, le=10_000, description="largest map file accepted (megabytes)")
    mapping: MapMappingSpec = Field(default_factory=MapMappingSpec)
    within_org_degree: NonNeg = Field(6.0, le=1000)
    hierarchy: bool = Field(True, description="each person tied to someone one level up")
    cross_sector_degree: NonNeg = Field(1.5, le=1000, description="ties per staff member to other sectors")
    frontline_resident_degree: NonNeg = Field(8.0, le=10_000, description="resident ties per frontline worker")
    resident_degree: int = Field(6, ge=0, le=1000, description="ring-lattice degree among residents of a ward")
    resident_rewire: Unit = Field(0.1, description="share of resident ties rewired at random (small world)")
    cross_ward_share: Unit = Field(0.05, description="share of rewired resident ties that leave the ward")
    community_degree: NonNeg = Field(2.0, le=1000, description="ties per member within a community of interest")
    trust: TrustSpec = Field(default_factory=TrustSpec)

    @field_validator("source_sha256", mode="before")
    @classmethod
    def _hex_digest(cls, value: Any) -> str | None:
        # before pydantic's own check, so a number or a short string gets the same plain message
        if value is None:
            return None
        if not isinstance(value, str) or not re.fullmatch(r"[0-9a-fA-F]{64}", value):
            raise ValueError("must be the map's SHA-256: 64 hexadecimal characters (0-9, a-f), or null")
        return value.lower()


# --- what the pilot does ------------------------------------------------------------------------


class Shares(Strict):
    engagement: NonNeg = 0.3
    insight: NonNeg = 0.2
    collaborative: NonNeg = 0.2
    leadership: NonNeg = 0.15
    embedding: NonNeg = 0.15

    def normalised(self) -> dict[str, float]:
        raw = {a: getattr(self, a) for a in ACTIVITIES}
        total = sum(raw.values())
        return {a: (v / total if total > 0 else 0.0) for a, v in raw.items()}


class EffortSpec(Strict):
    budget: NonNeg = Field(40.0, le=1e6, description="effort units per week per 1,000 agents")
    policy: Literal["fixed", "adaptive"] = "fixed"
    shares: Shares = Field(default_factory=Shares)
    adaptive_strength: Unit = Field(0.7, description="adaptive: weight given to measured misalignment")
    ward_targeting: dict[str, NonNeg] = Field(
        default_factory=dict, description="weights of engagement and insight effort by ward (default 1)"
    )
    staff_focus: Unit = Field(0.5, description="share of engagement and insight aimed at staff")


class EngagementSpec(Strict):
    enabled: bool = True
    cost: Cost = 1.0
    vision_gain: Unit = Field(0.3, description="move towards full vision on first contacts")
    new_ties: bool = Field(True, description="engagement starts a relationship (a new tie)")


class InsightSpec(Strict):
    enabled: bool = True
    cost: Cost = 2.0
    gain: Unit = Field(0.5, description="rise in the pilot's insight into a person per contact")
    ward_gain: NonNeg = Field(2.0, description="rise in ward insight per contact, times contacts/residents")
    culture_shift: Unit = Field(0.01, description="weekly narrowing of cultural misalignment at full insight")
    decay: Unit = Field(0.01, description="weekly fading of insight that is not renewed")


class CollaborativeSpec(Strict):
    enabled: bool = True
    cost: Cost = 2.0
    trust_gain: Unit = 0.15
    value_gain: Unit = 0.1
    brokered_share: Unit = Field(0.3, description="share of projects brokered across sectors")
    structure_gain: Unit = Field(0.01, description="structural shift per project in each partner organisation")


class LeadershipSpec(Strict):
    enabled: bool = True
    cost: Cost = 3.0
    structure_gain: Unit = Field(0.03, description="structural shift per session towards the national cap")
    value_gain: Unit = 0.05
    trust_gain: Unit = Field(0.1, description="rise in trust between the lead and the partner of a session")
    min_level: int = Field(2, ge=0, le=5, description="lowest hierarchy level that takes part")


class EmbeddingSpec(Strict):
    enabled: bool = True
    cost: Cost = 8.0
    success: Unit = Field(0.5, description="chance an attempt embeds a process, at full commitment")
    structure_gain: Unit = Field(0.03, description="structural shift per embedded process")
    legacy_half: float = Field(
        3.0,
        ge=0.01,
        le=1000,
        allow_inf_nan=False,
        description="legacy scale: legacy = 1 - exp(-processes / legacy_half)",
    )


class ActivitiesSpec(Strict):
    engagement: EngagementSpec = Field(default_factory=EngagementSpec)
    insight: InsightSpec = Field(default_factory=InsightSpec)
    collaborative: CollaborativeSpec = Field(default_factory=CollaborativeSpec)
    leadership: LeadershipSpec = Field(default_factory=LeadershipSpec)
    embedding: EmbeddingSpec = Field(default_factory=EmbeddingSpec)


# --- how people change --------------------------------------------------------------------------


class InfluenceSpec(Strict):
    enabled: bool = True
    rule: Literal["averaging", "threshold", "independent_cascade"] = "averaging"
    rate: Unit = Field(0.08, description="averaging: weekly step towards neighbours' weighted mean")
    self_weight: NonNeg = Field(
        0.0, le=1000, description="averaging: own weight in the mean, times own influence (DeGroot: 1)"
    )
    decline: Unit = Field(0.3, description="speed of moving down towards sceptics, relative to up")
    threshold: Annotated[float, Field(ge=0.0, le=1000.0, allow_inf_nan=False)] = Field(
        0.25, description="threshold: weighted share (or count) of holders needed"
    )
    threshold_mode: Literal["fraction", "count"] = Field(
        "fraction", description="threshold: compare a share of neighbours, or a count weighted by trust x influence"
    )
    transmissibility: Unit = Field(0.2, description="independent cascade: chance T per tie of passing it on")
    jump: Unit = Field(0.5, description="threshold: move towards 1 when the threshold is met")
    culture_exponent: Positive = Field(1.0, le=10, description="how sharply culture gates influence")
    insight_effect: Unit = Field(0.7, description="how far insight offsets cultural misalignment")


class FeedbackSpec(Strict):
    enabled: bool = True
    action: Unit = Field(0.04, description="weekly value gain from neighbours' visible action")
    results: Unit = Field(0.05, description="weekly value gain from falling inactivity (results)")
    doing: Unit = Field(0.02, description="weekly value gain from one's own acting")
    forgetting: Unit = Field(0.005, description="weekly fading of value (and half as fast of vision) not acted on")


class ActingSpec(Strict):
    enabled: bool = True
    threshold: Unit = Field(0.25, description="commitment, vision x value x (0.5 + 0.5 skills), where acting starts")
    width: Positive = Field(0.2, le=1, description="commitment range over which acting becomes likely")
    structure_exponent: NonNeg = Field(1.5, le=10, description="how hard misaligned structures block")
    habit: Unit = Field(0.6, description="chance of carrying on acting from last week")
    embedded_action: Unit = Field(0.4, description="routine action that fully embedded processes produce")
    residents_structure: Unit = Field(0.7, description="weight of local structures for residents' acting")


class LadderSpec(Strict):
    vision_threshold: Unit = Field(0.5, description="vision at or above which a person subscribes")
    value_threshold: Unit = Field(0.5, description="value at or above which a person values the vision")
    aware_threshold: Unit = Field(0.02, description="vision at which someone has heard of it")
    sustain_weeks: float = Field(
        12.0, ge=1.0, le=520, allow_inf_nan=False, description="time constant of 'sustained' (weeks)"
    )
    sustain_level: Unit = Field(0.7, description="sustained share of recent weeks for common purpose")


class TurnoverSpec(Strict):
    enabled: bool = True
    annual_rate: Unit = Field(0.12, description="assumption: share of staff leaving per year")
    tie_loss: Unit = Field(0.8, description="share of a leaver's outside ties lost with no legacy")
    protect_roles: list[str] = Field(default_factory=list, description="roles that never leave")


class ResidentsSpec(Strict):
    enabled: bool = True
    relapse_fairly: Unit = Field(0.02, description="weekly chance fairly active -> inactive")
    relapse_active: Unit = Field(0.006, description="weekly chance active -> fairly active")
    professional_effect: Unit = Field(0.02, description="extra weekly chance of moving up, full exposure")
    protection: Unit = Field(0.5, description="cut in relapse at full exposure")
    peer_effect: NonNeg = Field(1.0, le=10, description="amplification by acting neighbours")
    culture_weight: Unit = Field(
        0.5, description="how far a resident's own fit (culture x national culture) gates the professional effect"
    )


class NationalSpec(Strict):
    structural_cap: Unit = Field(0.7, description="national frameworks cap local structural alignment")
    cultural_alignment: Unit = Field(1.0, description="national culture multiplies local culture")


# --- scenario events ----------------------------------------------------------------------------


class EventBase(Strict):
    week: int = Field(ge=1, le=100_000)


class NationalPolicyChange(EventBase):
    type: Literal["national_policy_change"]
    structural_cap: Unit | None = None
    cultural_alignment: Unit | None = None


class FundingCut(EventBase):
    type: Literal["funding_cut"]
    factor: Unit = Field(description="the budget is multiplied by this")


class LeaderLeaves(EventBase):
    type: Literal["leader_leaves"]
    count: int = Field(1, ge=1, le=100_000)
    role: str = "leader"
    who: Literal["most_connected", "random"] = "most_connected"


class PartnerJoins(EventBase):
    type: Literal["partner_joins"]
    name: str
    sector: str
    staff: dict[str, Annotated[int, Field(ge=0, le=100_000)]]
    structural_alignment: Unit = 0.5
    cultural_alignment: Unit = 0.6
    wards: list[str] | Literal["all"] = "all"
    ties_per_staff: NonNeg = Field(4.0, le=1000)


Event = Annotated[NationalPolicyChange | FundingCut | LeaderLeaves | PartnerJoins, Field(discriminator="type")]


class InitialSpec(Strict):
    """Starting conditions beyond the roles' defaults (used for docking runs)."""

    adopters: int = Field(0, ge=0, le=MAX_AGENTS, description="people who start holding vision and value (1.0)")
    seeding: Literal["random", "cluster"] = Field(
        "random", description="adopters drawn at random, or a random person and their nearest ties"
    )
    opinions: Literal["roles", "uniform"] = Field(
        "roles", description="starting vision and value: by role, or uniform in [0, 1] for everyone"
    )


class OutputSpec(Strict):
    groups: list[Literal["role", "ward", "community", "organisation"]] = Field(
        default_factory=lambda: ["role", "ward", "community", "organisation"]
    )


# --- the whole scenario ---------------------------------------------------------------------------


class Config(Strict):
    """A complete, validated scenario."""

    name: str = "scenario"
    description: str = ""
    steps: int = Field(208, ge=1, le=100_000, description="weeks to simulate")
    seed: int | None = Field(None, ge=0, le=2**63 - 1)
    roles: dict[str, RoleSpec]
    wards: dict[str, WardSpec]
    organisations: dict[str, OrganisationSpec]
    communities: dict[str, CommunitySpec] = Field(default_factory=dict)
    population: PopulationSpec = Field(default_factory=PopulationSpec)
    network: NetworkSpec = Field(default_factory=NetworkSpec)
    effort: EffortSpec = Field(default_factory=EffortSpec)
    activities: ActivitiesSpec = Field(default_factory=ActivitiesSpec)
    influence: InfluenceSpec = Field(default_factory=InfluenceSpec)
    feedback: FeedbackSpec = Field(default_factory=FeedbackSpec)
    acting: ActingSpec = Field(default_factory=ActingSpec)
    ladder: LadderSpec = Field(default_factory=LadderSpec)
    turnover: TurnoverSpec = Field(default_factory=TurnoverSpec)
    residents_activity: ResidentsSpec = Field(default_factory=ResidentsSpec)
    national: NationalSpec = Field(default_factory=NationalSpec)
    events: list[Event] = Field(default_factory=list)
    initial: InitialSpec = Field(default_factory=InitialSpec)
    output: OutputSpec = Field(default_factory=OutputSpec)

    @model_validator(mode="after")
    def _cross_references(self) -> Config:
        if self.influence.threshold_mode == "fraction" and self.influence.threshold > 1:
            raise ValueError(
                f"influence.threshold = {self.influence.threshold}: a fraction must be at most 1 "
                "(or set influence.threshold_mode: count)"
            )
        residents = [r for r, spec in self.roles.items() if not spec.staff]
        if len(residents) != 1:
            raise ValueError(f"exactly one role must have staff: false (found {residents or 'none'})")
        staff_roles = {r for r, spec in self.roles.items() if spec.staff}
        if not self.wards:
            raise ValueError("at least one ward is needed")

        def check_roles(where: str, names: list[str] | dict[str, int]) -> None:
            for role in names:
                if role not in staff_roles:
                    allowed = ", ".join(sorted(staff_roles))
                    raise ValueError(f"{where}: unknown staff role '{role}' (allowed: {allowed})")

        def check_wards(where: str, wards: list[str] | str) -> None:
            if wards != "all":
                for ward in wards:
                    if ward not in self.wards:
                        raise ValueError(f"{where}: unknown ward '{ward}' (allowed: {', '.join(self.wards)})")

        for name, org in self.organisations.items():
            check_roles(f"organisations.{name}.staff", org.staff)
            check_wards(f"organisations.{name}.wards", org.wards)
        for name, com in self.communities.items():
            check_roles(f"communities.{name}.roles", com.roles)
        for key in self.effort.ward_targeting:
            if key not in self.wards:
                raise ValueError(f"effort.ward_targeting: unknown ward '{key}' (allowed: {', '.join(self.wards)})")
        for role in self.turnover.protect_roles:
            check_roles("turnover.protect_roles", [role])
        joined: dict[str, int] = {}
        for i, event in enumerate(self.events):
            if isinstance(event, PartnerJoins):
                check_roles(f"events.{i}.staff", event.staff)
                check_wards(f"events.{i}.wards", event.wards)
                if event.name in joined:  # (names already in the population are checked when it is built)
                    raise ValueError(
                        f"events.{i}.name = '{event.name}': events.{joined[event.name]} already brings in a "
                        "partner of that name (each organisation needs its own name)"
                    )
                joined[event.name] = i
            if isinstance(event, LeaderLeaves):
                check_roles(f"events.{i}.role", [event.role])
        share = sum(c.share for c in self.communities.values() if c.members == "residents")
        if share > 1.0 + 1e-9:
            raise ValueError(f"communities: resident shares sum to {share:.3f}, more than 1")
        net = self.network
        if net.generator != "south_tees" and not net.source and net.mean_degree > net.agents - 1:
            raise ValueError(
                f"network.mean_degree = {net.mean_degree:g}: more than network.agents - 1 = {net.agents - 1} "
                "(everyone tied to everyone else)"
            )
        if (
            net.generator == "ring_lattice"
            and not net.source
            and (net.mean_degree % 2 or net.mean_degree != int(net.mean_degree))
        ):
            k = int(net.mean_degree) // 2 * 2
            raise ValueError(
                f"network.mean_degree = {net.mean_degree:g}: a ring lattice needs an even whole number "
                f"(k / 2 neighbours on each side); try {k} or {k + 2}"
            )
        if self.network.generator != "south_tees" and self.initial.adopters > self.network.agents:
            raise ValueError(f"initial.adopters = {self.initial.adopters}: more than the {self.network.agents} agents")
        if not self.network.source and self.agent_count() == 0:  # every weekly mean would be 0 / 0
            raise ValueError("the population is empty: set population.residents or an organisation's count above 0")
        if self.agent_count() > MAX_AGENTS:
            raise ValueError(
                f"the population would be {self.agent_count():,} agents, more than the {MAX_AGENTS:,} allowed"
            )
        return self

    @property
    def resident_role(self) -> str:
        return next(r for r, spec in self.roles.items() if not spec.staff)

    def organisation_count(self, name: str) -> int:
        """Instances of an organisation type after `population.staff_scale`."""
        org = self.organisations[name]
        if org.count == 0:
            return 0
        return max(1, round(org.count * self.population.staff_scale))

    def agent_count(self) -> int:
        if self.network.generator != "south_tees" and not self.network.source:
            return self.network.agents
        staff = sum(self.organisation_count(n) * sum(o.staff.values()) for n, o in self.organisations.items())
        return staff + self.population.residents

    def to_dict(self) -> dict[str, Any]:
        data = self.model_dump(mode="json")
        # Left out while unset, so configs without a map keep the bytes (and digests) they always had.
        if data["network"].get("source_sha256") is None:
            data["network"].pop("source_sha256", None)
        return data

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False, allow_unicode=True)

    def digest(self) -> str:
        """A stable hash of the resolved configuration (seed and `network.source_sha256` excluded).

        The map's hash is left out because `abm run` adds it to the config it writes: the run and
        its rerun from that config.yaml get the same digest.
        """
        data = self.to_dict()
        data.pop("seed", None)
        data["network"].pop("source_sha256", None)
        blob = json.dumps(data, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


# --- loading ------------------------------------------------------------------------------------


def resolve_path(name: str | Path) -> Path:
    """A config path, or the name of a shipped preset (`south_tees`, `patterns/p6_legacy`)."""
    path = Path(name)
    if path.exists():
        return path
    for candidate in (CONFIG_DIR / path, CONFIG_DIR / f"{path}.yaml"):
        if candidate.is_file():
            return candidate
    return path


def presets() -> list[str]:
    """Names of the shipped scenario files, e.g. `south_tees`, `patterns/p1_sequence`."""
    return sorted(
        str(p.relative_to(CONFIG_DIR).with_suffix(""))
        for p in CONFIG_DIR.rglob("*.yaml")
        if "sweeps" not in p.parts and "docking" not in p.parts
    )


class _PlainLoader(yaml.SafeLoader):
    """`yaml.SafeLoader` for plain data only: mappings, lists, text, numbers, true/false, null.

    Tags that build other objects (`!!python/...`, `!!binary`, `!!set`, ...) are refused with a
    message; dates stay as text (a scenario has no date fields). Composing stops after
    `MAX_YAML_NODES` nodes, so a long flat file cannot keep the (pure Python) parser busy for minutes.
    """

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.nodes = 0

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node:
        self.nodes += 1
        if self.nodes > MAX_YAML_NODES:
            raise yaml.YAMLError(f"more than {MAX_YAML_NODES:,} values (a scenario needs a few hundred)")
        return super().compose_node(parent, index)


def _refuse_tag(loader: yaml.SafeLoader, node: yaml.Node) -> Any:
    raise yaml.constructor.ConstructorError(
        None,
        None,
        f"the tag '{node.tag.replace('tag:yaml.org,2002:', '!!')}' is not allowed "
        "(only plain mappings, lists, text, numbers, true/false and null)",
        node.start_mark,
    )


for _tag in ("binary", "omap", "pairs", "set"):
    _PlainLoader.add_constructor(f"tag:yaml.org,2002:{_tag}", _refuse_tag)
_PlainLoader.add_constructor(None, _refuse_tag)
_PlainLoader.add_constructor("tag:yaml.org,2002:timestamp", yaml.SafeLoader.construct_yaml_str)


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def _check_nodes(root: yaml.Node, limit: int = MAX_YAML_NODES) -> None:
    """Refuse a YAML tree too big once aliases are expanded, with a recursive alias or a duplicate key.

    Aliases are shared, not copied, when composed, so this counts each distinct node once (an
    iterative walk: no recursion limit) and sums the expanded sizes, stopping at `limit`.
    """
    size: dict[int, int] = {}
    open_: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, finished = stack.pop()
        key = id(node)
        if finished:
            open_.discard(key)
            total = 1 + sum(size[id(c)] for c in _children(node))
            if total > limit:
                raise yaml.YAMLError(
                    f"more than {limit:,} values once its aliases (*name) are expanded: "
                    "write the values out (a scenario needs a few hundred)"
                )
            size[key] = total
            continue
        if key in size:
            continue
        if key in open_:
            mark = node.start_mark
            raise yaml.YAMLError(f"an alias at line {mark.line + 1} refers to itself (a recursive structure)")
        open_.add(key)
        stack.append((node, True))
        if isinstance(node, yaml.MappingNode):
            seen: set[str] = set()
            for k, _ in node.value:
                if isinstance(k, yaml.ScalarNode) and k.tag != "tag:yaml.org,2002:merge":
                    if k.value in seen:
                        raise yaml.YAMLError(f"duplicate key '{k.value}' at line {k.start_mark.line + 1}")
                    seen.add(k.value)
        stack.extend((c, False) for c in _children(node) if id(c) not in size)


def parse_yaml(text: str) -> Any:
    """Parse one YAML document as plain data, safely (never builds arbitrary objects).

    Raises:
        yaml.YAMLError: bad syntax, a refused tag, too many values after alias expansion, a
            recursive alias, a duplicate key, a number too long to read or nesting too deep;
            `str(exc)`'s first line says which.
    """
    loader = _PlainLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _check_nodes(node)
        return loader.construct_document(node)
    except RecursionError:
        raise yaml.YAMLError("nested too deeply") from None
    except ValueError as exc:  # int() of a number with thousands of digits
        problem = "a number has too many digits" if "digits" in str(exc) else f"cannot be read: {_first_line(exc)}"
        raise yaml.YAMLError(problem) from None
    finally:
        loader.dispose()


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def read_yaml_file(
    path: Path, error: type[ConfigError] = ConfigError, kind: str = "YAML file", missing: str = "file not found"
) -> tuple[str, dict[str, Any]]:
    """Read a YAML mapping safely (plain data only, see `parse_yaml`), raising `error` with one readable line.

    Returns the text and the parsed mapping. Shared by scenario and sweep files.
    """
    if not path.exists():
        raise error(f"{path}: {missing}")
    if path.is_dir():
        raise error(f"{path}: is a directory, not a {kind}")
    if not path.is_file():  # a device or a pipe could be endless or block forever
        raise error(f"{path}: is not a regular file, so not a {kind}")
    try:
        with path.open("rb") as f:
            raw = f.read(MAX_YAML_BYTES + 1)
    except OSError as exc:
        raise error(f"{path}: cannot be read ({exc.strerror or exc.__class__.__name__})") from None
    if len(raw) > MAX_YAML_BYTES:
        raise error(f"{path}: larger than {MAX_YAML_BYTES // 2**20} MB, too big for a {kind} (they are a few kB)")
    if b"\x00" in raw:
        raise error(f"{path}: is a binary file, not YAML")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise error(f"{path}: cannot be read as UTF-8 text (is it a {kind}?)") from None
    try:
        data = parse_yaml(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or _first_line(exc)
        context = getattr(exc, "context", None)
        if context and problem.startswith("but "):  # "expected a single document ... but found another"
            problem = f"{context} {problem}"
        raise error(f"{path}: not valid YAML{where}: {problem}") from None
    if data is None:
        raise error(f"{path}: the file is empty")
    if not isinstance(data, dict):
        raise error(f"{path}: must be a mapping of keys to values, not {type(data).__name__}")
    return text, data


#: Scenario files already parsed, by (path, modification time in ns, size): parsing a preset
#: in pure Python takes about 10 ms, far longer than building a small model from it.
_PARSED: dict[tuple[str, int, int], dict[str, Any]] = {}
_PARSED_MAX = 64


def _missing_hint(path: Path) -> str:
    """What to say after 'file not found': the closest preset's name, and where the list is."""
    names = presets()
    by_short = {n.rsplit("/", 1)[-1]: n for n in names}
    stem = path.stem if path.suffix in (".yaml", ".yml") else path.name
    close = difflib.get_close_matches(stem, [*names, *by_short], n=1)
    mean = f"did you mean '{by_short.get(close[0], close[0])}'? " if close else ""
    return f" (not a file, nor one of the {len(names)} presets; {mean}`abm presets` lists them)"


def _read_yaml(path: Path) -> dict[str, Any]:
    """A scenario file's mapping (a fresh copy: callers change it), parsed again only when the file changes."""
    try:
        st = path.stat()
        key = (str(path), st.st_mtime_ns, st.st_size) if stat.S_ISREG(st.st_mode) else None
    except OSError:
        key = None
    if key is not None and key in _PARSED:
        return copy.deepcopy(_PARSED[key])
    hint = "" if path.exists() else _missing_hint(path)
    data = read_yaml_file(path, missing=f"file not found{hint}")[1]
    if key is not None:
        if len(_PARSED) >= _PARSED_MAX:
            _PARSED.clear()
        _PARSED[key] = copy.deepcopy(data)
    return data


def deep_merge(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    """Merge `top` into `base`: mappings merge key by key, anything else replaces."""
    out = dict(base)
    for key, value in top.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def _load_raw(path: Path, seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    path = path.resolve()
    if path in seen:
        raise ConfigError(f"{path}: 'extends' forms a loop")
    if len(seen) >= MAX_EXTENDS:
        raise ConfigError(f"{seen[0]}: 'extends' goes more than {MAX_EXTENDS} files deep (at {path})")
    data = _read_yaml(path)
    parent = data.pop("extends", None)
    if parent is None:
        return data
    if not isinstance(parent, str):
        raise ConfigError(f"{path}: 'extends' must be a file name, got {parent!r}")
    parent_path = (path.parent / parent) if (path.parent / parent).exists() else resolve_path(parent)
    if not parent_path.exists():
        raise ConfigError(f"{path}: extends '{parent}': file not found{_missing_hint(parent_path)}")
    return deep_merge(_load_raw(parent_path, (*seen, path)), data)


def parse_override(text: str) -> tuple[list[str], Any]:
    """Split `dotted.key=value`; the value is read as YAML (numbers, booleans, lists)."""
    if "=" not in text:
        raise ConfigError(f"--set {text!r}: expected dotted.key=value, e.g. effort.budget=30")
    key, raw = text.split("=", 1)
    parts = [p for p in key.strip().split(".")]
    if not key.strip() or any(not p for p in parts):
        raise ConfigError(f"--set {text!r}: the key is empty or has an empty part")
    try:
        value = parse_yaml(raw) if raw.strip() else ""
    except yaml.MarkedYAMLError as exc:
        if isinstance(exc, yaml.constructor.ConstructorError):
            raise ConfigError(f"--set {key.strip()}: {exc.problem}") from None
        value = raw  # not YAML: the text as it stands (e.g. a name with a colon)
    except yaml.YAMLError as exc:
        raise ConfigError(f"--set {key.strip()}: {_first_line(exc)}") from None
    return parts, value


def apply_overrides(data: dict[str, Any], overrides: list[str] | dict[str, Any]) -> dict[str, Any]:
    """Apply `--set` style overrides (a list of `k=v` strings or a {dotted: value} mapping)."""
    items = (
        [parse_override(o) for o in overrides]
        if isinstance(overrides, list)
        else [(k.split("."), v) for k, v in overrides.items()]
    )
    data = json.loads(json.dumps(data, default=str))  # a deep copy that is plain data
    for parts, value in items:
        node = data
        for i, part in enumerate(parts[:-1]):
            if isinstance(node, list):
                if not part.isdigit() or int(part) >= len(node):
                    raise ConfigError(f"--set {'.'.join(parts)}: no list item '{part}'")
                node = node[int(part)]
                continue
            nxt = node.get(part)
            if nxt is None:
                nxt = node[part] = {}
            if not isinstance(nxt, (dict, list)):
                raise ConfigError(f"--set {'.'.join(parts)}: '{'.'.join(parts[: i + 1])}' is a value, not a section")
            node = nxt
        if isinstance(node, list):
            raise ConfigError(f"--set {'.'.join(parts)}: cannot set inside a list this way")
        node[parts[-1]] = value
    return data


def _format_error(exc: ValidationError, source: str, data: Any = None) -> str:
    err = exc.errors()[0]
    loc = ".".join(str(p) for p in err["loc"] if not str(p).startswith("function-after"))
    loc = loc.replace(".national_policy_change", "").replace(".funding_cut", "")
    loc = loc.replace(".leader_leaves", "").replace(".partner_joins", "")
    msg = err["msg"].removeprefix("Value error, ")
    value = err.get("input")
    if err["type"] == BOOL_AS_NUMBER:  # raised by the section, so the key comes from the context
        key = err.get("ctx", {}).get("key", "")
        loc = f"{loc}.{key}" if loc else key
        value = _dig(value, key.split(".")) if isinstance(value, dict) else value
    if err["type"] == "extra_forbidden":
        raw = [str(p) for p in err["loc"] if not str(p).startswith("function-after")]
        allowed = allowed_keys(raw[:-1])
        bad = loc.rsplit(".", 1)[-1]
        close = difflib.get_close_matches(bad, allowed, n=1)
        said = [f"unknown key '{loc}'"]
        said += [f"did you mean '{close[0]}'?"] if close else []
        said += [f"allowed here: {', '.join(allowed)}"] if 0 < len(allowed) <= 16 else []
        return f"{source}: {'; '.join(said)} (every key: docs/config_reference.md)"
    if err["type"] == "missing":
        return f"{source}: missing required key '{loc}'{_new_entry_hint(loc.split('.'), data)}"
    shown = "" if isinstance(value, dict) or value is None else f" = {value!r}"
    where = f"'{loc}'{shown}: " if loc else ""
    extra = f" ({len(exc.errors()) - 1} more problem(s) after fixing this one)" if len(exc.errors()) > 1 else ""
    return f"{source}: {where}{msg}{extra}"


def _new_entry_hint(parts: list[str], data: Any) -> str:
    """For a key missing inside a named entry (`wards.<name>.share`): the entries there are, since a
    misspelled name starts a new entry, which then needs every required key."""
    if len(parts) < 3 or not isinstance(data, dict) or not isinstance(data.get(parts[0]), dict):
        return ""
    names = [str(k) for k in data[parts[0]] if k != parts[1]]
    if not names or len(names) > 30:
        return ""
    close = difflib.get_close_matches(parts[1], names, n=1)
    mean = f"did you mean '{close[0]}'? " if close else ""
    return f" ('{parts[1]}' is a new entry in {parts[0]}; {mean}the others: {', '.join(names)})"


def _models_in(tp: Any) -> tuple[list[type[BaseModel]], bool]:
    """The schema models inside an annotation, and whether they sit in a mapping or a list
    (then the next part of a dotted key is a name or an index, not a field)."""
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return [tp], False
    origin, found, container = typing.get_origin(tp), [], False
    for arg in typing.get_args(tp):
        inner, nested = _models_in(arg)
        found += [m for m in inner if m not in found]
        container = container or nested
    return found, container or origin in (dict, list)


def allowed_keys(parts: list[str], root: type[BaseModel] | None = None) -> list[str]:
    """The keys a schema allows in the section at `parts` (a dotted location, split), if known.

    Names of the user's own (a ward, an organisation) and list indices are stepped over; in a
    tagged union (events, sweep designs) a part naming a branch's tag narrows to that branch.

    Example:
        >>> allowed_keys(["effort", "shares"])
        ['collaborative', 'embedding', 'engagement', 'insight', 'leadership']
    """
    models: list[type[BaseModel]] = [root or Config]
    skip = False
    for part in parts:
        if skip:
            skip = False
            continue
        field = next((m.model_fields[part] for m in models if part in m.model_fields), None)
        if field is None:  # a branch's tag, as pydantic names the branch of the union it tried
            models = [m for m in models if any(part in _literal_args(f.annotation) for f in m.model_fields.values())]
            if not models:
                return []
            continue
        models, skip = _models_in(field.annotation)
        if not models:
            return []
    return sorted({name for m in models for name in m.model_fields})


def _literal_args(tp: Any) -> tuple[Any, ...]:
    return typing.get_args(tp) if typing.get_origin(tp) is Literal else ()


def _dig(data: dict[str, Any], keys: list[str]) -> Any:
    for key in keys:
        data = data.get(key) if isinstance(data, dict) else None
    return data


#: Control characters (escape sequences could rewrite the terminal a name is printed to); tab and newlines are fine.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def _reject_non_finite(data: Any, path: str = "") -> None:
    """Refuse NaN and infinity anywhere, and control characters in text and keys."""
    if isinstance(data, float) and not math.isfinite(data):
        raise ConfigError(f"'{path}' = {data}: must be a finite number")
    if isinstance(data, str) and (bad := _CONTROL.search(data)):
        raise ConfigError(f"'{path}': text with a control character ({bad.group()!r}) is not allowed")
    if isinstance(data, dict):
        for k, v in data.items():
            where = f"{path}.{k}" if path else str(k)
            if isinstance(k, str) and (bad := _CONTROL.search(k)):
                raise ConfigError(f"'{where!r}': a key with a control character ({bad.group()!r}) is not allowed")
            _reject_non_finite(v, where)
    elif isinstance(data, list):
        for i, v in enumerate(data):
            _reject_non_finite(v, f"{path}.{i}")


# --- memory guard -------------------------------------------------------------------------------

#: Bytes of peak memory per agent, per tie, per group-week of group outputs and per weekly activity
#: contact, and the libraries' fixed share, measured as the peak RSS increase of building, running
#: and writing South Tees runs from 405 to 300,205 agents (1.0 M-4.6 M ties, 3,117-4,280 groups,
#: up to 2,000 weeks), rounded up. The group outputs dominate long runs with many organisations.
BYTES_PER_AGENT = 1_000
BYTES_PER_TIE = 250
BYTES_PER_GROUP_WEEK = 2_000
BYTES_PER_CONTACT = 300
BYTES_FIXED = 200 * 2**20


@dataclass(frozen=True)
class MemoryEstimate:
    """What a run will hold at its peak, and the bytes that takes (see `estimate_memory`)."""

    agents: int
    ties: int
    group_weeks: int
    contacts_per_week: int
    bytes: int

    def describe(self) -> str:
        """E.g. 'about 2.3 GB (282,197 agents, about 2,900,000 ties, 890,240 group-weeks of outputs)'."""
        parts = [f"{self.agents:,} agents", f"about {self.ties:,} ties"]
        if self.group_weeks:
            parts.append(f"{self.group_weeks:,} group-weeks of outputs")
        if self.contacts_per_week:
            parts.append(f"{self.contacts_per_week:,} activity contacts a week")
        return f"about {_size(self.bytes)} ({', '.join(parts)})"


def _size(n_bytes: float) -> str:
    if n_bytes >= 2**40:
        return f"{n_bytes / 2**40:,.1f} TB"
    if n_bytes >= 2**30:
        return f"{n_bytes / 2**30:.1f} GB"
    return f"{n_bytes / 2**20:,.0f} MB"


def estimate_memory(cfg: Config) -> MemoryEstimate:
    """Peak memory of building, running and writing `cfg`, from its sizes alone (nothing is allocated).

    An upper-end estimate: ties are counted as drawn (before duplicates are dropped), ties started
    by activities as if every contact started one, and the adaptive policy's activity as tripled
    (its tilt can triple an activity's share). A map (`network.source`) is sized by its own reader
    (`abm.mapio` caps its people and megabytes), so only the config's other parts count here.
    """
    net = cfg.network
    agents, ties, orgs = 0.0, 0.0, 0
    if net.source:
        pass  # people and ties come from the map
    elif net.generator != "south_tees":
        agents = float(net.agents)
        half = round(net.mean_degree) // 2 if net.generator == "ring_lattice" else net.mean_degree / 2
        ties = agents * half
    else:
        role_staff = dict.fromkeys(cfg.roles, 0.0)
        frontline = 0.0
        residents = float(cfg.population.residents)
        for name, org in cfg.organisations.items():
            count = cfg.organisation_count(name)
            orgs += count
            for role, n in org.staff.items():
                role_staff[role] = role_staff.get(role, 0.0) + count * n
                if org.serves_residents and residents and role in cfg.roles and cfg.roles[role].level == 1:
                    frontline += count * n
        staff = sum(role_staff.values())
        agents = staff + residents
        per_staff = net.within_org_degree / 2 + net.cross_sector_degree / 2 + (1 if net.hierarchy else 0)
        ties = staff * per_staff + frontline * net.frontline_resident_degree + residents * (net.resident_degree // 2)
        for com in cfg.communities.values():
            members = com.share * residents if com.members == "residents" else sum(role_staff[r] for r in com.roles)
            links = com.links if com.linked_sector and com.members == "residents" else 0.0
            ties += members * (net.community_degree / 2 + links)
    for event in cfg.events:
        if isinstance(event, PartnerJoins):
            joining = sum(event.staff.values())
            agents, ties, orgs = agents + joining, ties + joining * event.ties_per_staff, orgs + 1
    # activity contacts a week (arrays of this length are drawn), and the ties they may start
    shares = cfg.effort.shares.normalised()
    specs = cfg.activities
    per_unit = {a: shares[a] / getattr(specs, a).cost if getattr(specs, a).enabled else 0.0 for a in ACTIVITIES}
    boost = 3.0 if cfg.effort.policy == "adaptive" else 1.0
    units = cfg.effort.budget * agents / 1000.0 * boost
    contacts = units * sum(per_unit.values())
    starting = per_unit["collaborative"] + per_unit["leadership"]
    starting += per_unit["engagement"] if specs.engagement.new_ties else 0.0
    pairs = agents * max(agents - 1, 0) / 2
    ties = min(ties + cfg.steps * units * starting, pairs)
    groups = {
        "role": len(cfg.roles),
        "ward": len(cfg.wards),
        "community": len(cfg.communities),
        "organisation": orgs,
    }
    group_weeks = sum(groups[k] for k in cfg.output.groups) * (cfg.steps + 1)
    return memory_estimate(agents, ties, group_weeks, contacts)


def memory_estimate(agents: float, ties: float, group_weeks: float = 0, contacts_per_week: float = 0) -> MemoryEstimate:
    """The peak memory of a run of these sizes (the measured bytes per item, see `BYTES_PER_AGENT`)."""
    total = (
        BYTES_FIXED
        + agents * BYTES_PER_AGENT
        + ties * BYTES_PER_TIE
        + group_weeks * BYTES_PER_GROUP_WEEK
        + contacts_per_week * BYTES_PER_CONTACT
    )
    return MemoryEstimate(round(agents), round(ties), round(group_weeks), round(contacts_per_week), round(total))


def _meminfo_available() -> int | None:
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        import psutil

        return int(psutil.virtual_memory().available)
    except Exception:  # no psutil, or it cannot read this platform: no limit known
        return None


def _cgroup_room() -> int | None:
    """Memory left under a cgroup v2 limit (containers), if there is one.

    `memory.current` counts the page cache too; its inactive part is given back on demand, so it
    counts as room (else a container that has read many files would look full).
    """
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        if limit == "max":
            return None
        room = int(limit) - int(Path("/sys/fs/cgroup/memory.current").read_text().strip())
    except (OSError, ValueError):
        return None
    try:
        for line in Path("/sys/fs/cgroup/memory.stat").read_text().splitlines():
            key, _, value = line.partition(" ")
            if key == "inactive_file":
                room += int(value)
                break
    except (OSError, ValueError):
        pass
    return room


def memory_limit() -> tuple[int, str] | None:
    """Bytes a run may use and where that figure comes from, or None when it cannot be known.

    `ABM_MEMORY_LIMIT_MB` (megabytes) overrides what the machine reports as available (MemAvailable,
    or the room under a container's cgroup limit, whichever is smaller).

    Raises:
        ConfigError: the environment variable is not a positive number.
    """
    env = os.environ.get(MEMORY_LIMIT_ENV)
    if env is not None and env.strip():
        try:
            mb = float(env)
        except ValueError:
            mb = math.nan
        if not (math.isfinite(mb) and mb > 0):
            raise ConfigError(f"{MEMORY_LIMIT_ENV} = {env!r}: must be a number of megabytes above 0")
        return round(mb * 2**20), f"set by {MEMORY_LIMIT_ENV}"
    found = [b for b in (_meminfo_available(), _cgroup_room()) if b is not None]
    return (min(found), "available on this machine") if found else None


def check_memory(cfg: Config) -> MemoryEstimate:
    """Refuse a run whose estimated peak memory is more than the machine has, before anything is built.

    Returns:
        The estimate (for callers that want to show it).

    Raises:
        ConfigError: one line naming the estimate, the limit and what to make smaller.
    """
    return refuse_over_memory(estimate_memory(cfg))


def refuse_over_memory(
    est: MemoryEstimate, smaller: str = "the population, network degrees, effort budget, steps or group outputs"
) -> MemoryEstimate:
    """Raise ConfigError (one line: the estimate, the limit, what to make smaller) if `est` exceeds the limit."""
    limit = memory_limit()
    if limit is not None and est.bytes > limit[0]:
        raise ConfigError(
            f"the run would need {est.describe()} of memory, more than the {_size(limit[0])} {limit[1]}: "
            f"make {smaller} smaller (or set {MEMORY_LIMIT_ENV})"
        )
    return est


def validate(data: dict[str, Any], source: str = "config") -> Config:
    """Validate plain data into a Config, raising ConfigError with one readable line.

    A config whose run would need more memory than this machine has (`check_memory`) is refused
    here too, so every face (command line, app, sweeps) refuses it before allocating anything.
    """
    try:
        _reject_non_finite(data)
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from None
    try:
        cfg = Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_format_error(exc, source, data)) from None
    try:
        check_memory(cfg)
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from None
    return cfg


def load_config(
    source: str | Path | dict[str, Any] | Config | None = None,
    overrides: list[str] | dict[str, Any] | None = None,
) -> Config:
    """Load a scenario: a path, a preset name, a mapping or a Config; then apply overrides.

    Args:
        source: YAML path or preset name (default: `south_tees`), or already-parsed data.
        overrides: `["effort.budget=30"]` or `{"effort.budget": 30}`.

    Raises:
        ConfigError: one line naming the file, key, value and what is allowed.
    """
    if isinstance(source, Config):
        data, label = source.to_dict(), "config"
    elif isinstance(source, dict):
        data, label = source, "config"
    else:
        path = resolve_path(source if source is not None else "south_tees")
        data, label = _load_raw(path), str(source if source is not None else path)
    if overrides:
        data = apply_overrides(data, overrides)
    return validate(data, label)
