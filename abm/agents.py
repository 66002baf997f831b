"""Stakeholders as Mesa agents: a thin view over the model's arrays.

Each `Stakeholder` holds only its index. Reading `agent.vision` reads the array; writing it
writes the array. So Mesa's AgentSet tools (`select`, `groupby`, `agg`), DataCollector agent
reporters and SolaraViz work, while the step itself runs on whole arrays.

Example:
    >>> from abm import CommonPurposeModel
    >>> model = CommonPurposeModel(rng=3)
    >>> gps = model.agents.select(lambda a: a.role == "gp")
    >>> round(sum(a.vision for a in gps) / len(gps), 3) >= 0
    True
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import mesa
import numpy as np

from abm.acting import STAGES
from abm.config import PA_CLASSES

if TYPE_CHECKING:
    from abm.model import CommonPurposeModel


class Stakeholder(mesa.Agent):
    """One person in the system (a post, for staff: a newcomer takes over the same agent)."""

    model: CommonPurposeModel

    def __init__(self, model: CommonPurposeModel, index: int):
        super().__init__(model)
        self.index = int(index)

    # --- fixed characteristics
    @property
    def role(self) -> str:
        return self.model.role_names[self.model.state.role[self.index]]

    @property
    def ward(self) -> str:
        return self.model.ward_names[self.model.state.ward[self.index]]

    @property
    def organisation(self) -> str | None:
        o = int(self.model.state.org[self.index])
        return self.model.org_names[o] if o >= 0 else None

    @property
    def sector(self) -> str:
        return self.model.sector_names[self.model.state.sector[self.index]]

    @property
    def community(self) -> str | None:
        c = int(self.model.state.community[self.index])
        return self.model.community_names[c] if c >= 0 else None

    @property
    def is_staff(self) -> bool:
        return bool(self.model.state.staff[self.index])

    @property
    def skills(self) -> float:
        return float(self.model.state.skills[self.index])

    @property
    def age_band(self) -> str | None:
        a = int(self.model.state.age_band[self.index])
        return self.model.age_band_names[a] if a >= 0 else None

    @property
    def deprivation_decile(self) -> int:
        return int(self.model.state.deprivation[self.index])

    # --- state (read and write the arrays)
    @property
    def vision(self) -> float:
        return float(self.model.state.vision[self.index])

    @vision.setter
    def vision(self, x: float) -> None:
        self.model.state.vision[self.index] = np.clip(x, 0.0, 1.0)

    @property
    def value(self) -> float:
        return float(self.model.state.value[self.index])

    @value.setter
    def value(self, x: float) -> None:
        self.model.state.value[self.index] = np.clip(x, 0.0, 1.0)

    @property
    def acting(self) -> bool:
        return bool(self.model.state.acting[self.index])

    @acting.setter
    def acting(self, x: bool) -> None:
        self.model.state.acting[self.index] = bool(x)

    @property
    def cultural_alignment(self) -> float:
        return float(self.model.state.culture[self.index])

    @property
    def structural_alignment(self) -> float | None:
        o = int(self.model.state.org[self.index])
        return float(self.model.org_structure[o]) if o >= 0 else None

    @property
    def stage(self) -> str:
        return STAGES[self.model.stage[self.index]]

    @property
    def stage_code(self) -> int:
        return int(self.model.stage[self.index])

    @property
    def activity_class(self) -> str | None:
        c = int(self.model.state.pa_class[self.index])
        return PA_CLASSES[c] if c >= 0 else None

    def neighbours(self) -> list[Stakeholder]:
        """The people this one has live ties with."""
        return [self.model.agent_at(int(j)) for j in self.model.ties.neighbours(self.index)]

    def __repr__(self) -> str:
        return f"Stakeholder({self.index}, {self.role}, {self.ward}, stage={self.stage})"
