"""What a run reports: one row per week for the system, and a long table by group.

Model columns (one row per week, week 0 = the starting state): see `MODEL_COLUMNS`.
Group table (long): step, group_kind (role, ward, community, organisation), group (the name
used in the config), metric, value. Group metrics: see `GROUP_METRICS`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import scipy.sparse as sp

from abm.acting import STAGES
from abm.state import by_organisation

if TYPE_CHECKING:
    from abm.model import CommonPurposeModel

MODEL_COLUMNS = (
    "step",
    "mean_vision",
    "mean_value",
    "aware_share",
    "subscribed_share",
    "valuing_share",
    "acting_share",
    "common_purpose_share",
    "staff_common_purpose_share",
    "resident_common_purpose_share",
    "acting_low_vision_share",
    "acting_among_valuing_share",
    "embedded_processes",
    "structural_alignment",
    "max_structural_alignment",
    "cultural_alignment",
    "inactive_share",
    "fairly_active_share",
    "active_share",
    "target_inactive_share",
    "ties",
    "effort_budget",
    "national_cap",
    *(f"stage_{s}" for s in STAGES),
)
GROUP_METRICS = (
    "count",
    "mean_vision",
    "mean_value",
    "acting_share",
    "common_purpose_share",
    "inactive_share",
    "structural_alignment",
    "embedded_processes",
)


def model_metrics(model: CommonPurposeModel) -> dict[str, float]:
    """This week's system-level figures."""
    s = model.state
    lad = model.config.ladder
    n = max(s.n, 1)
    subscribed = s.vision >= lad.vision_threshold
    valued = s.value >= lad.value_threshold
    cp = model.stage == 5
    res = ~s.staff
    n_res = max(int(res.sum()), 1)
    n_staff = max(int(s.staff.sum()), 1)
    pa = s.pa_class[res]
    target_res = res & model.ward_target[s.ward]
    n_acting = int(s.acting.sum())
    staff_org = s.org[s.staff]
    row = {
        "step": model.week,
        "mean_vision": float(s.vision.mean()),
        "mean_value": float(s.value.mean()),
        "aware_share": float(s.aware.sum() / n),
        "subscribed_share": float(subscribed.sum() / n),
        "valuing_share": float((subscribed & valued).sum() / n),
        "acting_share": n_acting / n,
        "common_purpose_share": float(cp.sum() / n),
        "staff_common_purpose_share": float((cp & s.staff).sum() / n_staff),
        "resident_common_purpose_share": float((cp & res).sum() / n_res),
        "acting_low_vision_share": float((s.acting & ~subscribed).sum() / n_acting) if n_acting else 0.0,
        "acting_among_valuing_share": float(
            (s.acting & subscribed & valued).sum() / max(int((subscribed & valued).sum()), 1)
        ),
        "embedded_processes": float(model.org_embedded.sum()),
        "structural_alignment": float(model.org_structure[staff_org].mean()) if staff_org.size else 0.0,
        "max_structural_alignment": float(model.org_structure.max()) if model.org_structure.size else 0.0,
        "cultural_alignment": float(s.culture.mean()),
        "inactive_share": float((pa == 0).sum() / n_res),
        "fairly_active_share": float((pa == 1).sum() / n_res),
        "active_share": float((pa == 2).sum() / n_res),
        "target_inactive_share": float((s.pa_class[target_res] == 0).sum() / max(int(target_res.sum()), 1)),
        "ties": float(model.ties.count),
        "effort_budget": float(model.effort_budget),
        "national_cap": float(model.national_cap),
        "adopted_share": float(subscribed.sum() / n),
    }
    counts = np.bincount(model.stage, minlength=len(STAGES))
    for name, c in zip(STAGES, counts, strict=True):
        row[f"stage_{name}"] = float(c)
    return row


def _indicator(codes: np.ndarray, k: int) -> sp.csr_matrix:
    """A k x n matrix with a 1 where person j belongs to group i (codes < 0 belong nowhere)."""
    ok = np.flatnonzero(codes >= 0)
    return sp.csr_matrix((np.ones(ok.size), (codes[ok].astype(np.int64), ok)), shape=(k, codes.size))


def _weights(model: CommonPurposeModel) -> np.ndarray:
    """Per person, the quantities that group metrics sum (columns follow _SUMS)."""
    s = model.state
    res = ~s.staff
    w = np.empty((s.n, len(_SUMS)), dtype=np.float32)
    w[:, 0] = 1.0
    w[:, 1] = s.vision
    w[:, 2] = s.value
    w[:, 3] = s.acting
    w[:, 4] = model.stage == 5
    w[:, 5] = res & (s.pa_class == 0)
    w[:, 6] = res
    w[:, 7] = s.staff
    w[:, 8] = by_organisation(model.org_structure, s.org)
    w[:, 9] = by_organisation(model.org_embedded, s.org)
    return w


_SUMS = ("count", "vision", "value", "acting", "cp", "inactive", "residents", "staff", "structure", "embedded")


def _group_block(sums: np.ndarray) -> np.ndarray:
    """Rows: groups; columns: GROUP_METRICS, from the group sums of _weights."""
    count, vision, value, acting, cp, inactive, n_res, n_staff, struct, embedded = sums.T
    denom = np.maximum(count, 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.column_stack(
            [
                count,
                vision / denom,
                value / denom,
                acting / denom,
                cp / denom,
                np.where(n_res > 0, inactive / n_res, np.nan),
                np.where(n_staff > 0, struct / n_staff, np.nan),
                np.where(n_staff > 0, embedded / n_staff, np.nan),
            ]
        )


class Recorder:
    """Collects the weekly rows in memory (small: one row per week, a block per group kind)."""

    def __init__(self, model: CommonPurposeModel):
        self.rows: list[dict[str, float]] = []
        self.blocks: dict[str, list[tuple[int, np.ndarray, list[str]]]] = {k: [] for k in model.config.output.groups}
        self._indicators: dict[str, tuple[int, sp.csr_matrix]] = {}

    def _group_sums(self, kind: str, codes: np.ndarray, k: int, w: np.ndarray) -> np.ndarray:
        cached = self._indicators.get(kind)
        if cached is None or cached[0] != codes.size or cached[1].shape[0] != k:
            cached = self._indicators[kind] = (codes.size, _indicator(codes, k))
        return cached[1] @ w

    def record(self, model: CommonPurposeModel) -> dict[str, float]:
        row = model_metrics(model)
        self.rows.append(row)
        s = model.state
        sources = {
            "role": (s.role, model.role_names),
            "ward": (s.ward, model.ward_names),
            "community": (s.community, model.community_names),
            "organisation": (s.org, model.org_names),
        }
        w = _weights(model) if self.blocks else None
        for kind, blocks in self.blocks.items():
            codes, names = sources[kind]
            if names:
                block = _group_block(self._group_sums(kind, codes, len(names), w))
                blocks.append((model.week, block, list(names)))
        return row

    def model_frame(self, docking: bool = False) -> pd.DataFrame:
        """One row per week; docking runs add `adopted_share` (share holding the vision)."""
        df = pd.DataFrame(self.rows, columns=list(MODEL_COLUMNS) + (["adopted_share"] if docking else []))
        df["step"] = df["step"].astype("int64")
        return df

    def groups_frame(self) -> pd.DataFrame:
        """Long table of every group metric, every week (rows with no value, e.g. the inactive
        share of a group with no residents, are left out)."""
        m = len(GROUP_METRICS)
        steps, kinds, groups, values = [], [], [], []
        for kind, blocks in self.blocks.items():
            for step, block, names in blocks:
                g = len(names)
                steps.append(np.full(g * m, step, dtype=np.int64))
                kinds.append(np.full(g * m, kind, dtype=object))
                groups.append(np.repeat(np.array(names, dtype=object), m))
                values.append(block.reshape(-1))
        if not steps:
            return pd.DataFrame(columns=["step", "group_kind", "group", "metric", "value"])
        value = np.concatenate(values).astype(float)
        keep = ~np.isnan(value)
        metric = np.tile(np.array(GROUP_METRICS, dtype=object), value.size // m)
        df = pd.DataFrame(
            {
                "step": np.concatenate(steps)[keep],
                "group_kind": np.concatenate(kinds)[keep],
                "group": np.concatenate(groups)[keep],
                "metric": metric[keep],
                "value": value[keep],
            }
        )
        return df
