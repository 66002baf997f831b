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

from abm import kernels
from abm.acting import STAGES, ladder_findings
from abm.state import as_slice

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


class People:
    """Who is who: the facts about people that change only when people are added.

    The recorder keeps one and renews it when the population grows, so a week's figures need
    no pass over the whole population for staff, residents or group membership.
    """

    def __init__(self, model: CommonPurposeModel):
        s = model.state
        self.n = s.n
        self.staff = np.flatnonzero(s.staff)
        self.residents = np.flatnonzero(~s.staff)
        self.staff_org = s.org[self.staff]
        self.target_residents = self.residents[model.ward_target[s.ward[self.residents]]]
        self.target_rows = as_slice(self.target_residents)  # a view when the target wards are one block
        # slices when staff or residents are one block of rows (as generated): views, not gathers
        self.staff_rows = as_slice(self.staff)
        self.resident_rows = as_slice(self.residents)


def _mean(x: np.ndarray) -> float:
    """`float(x.mean())` (the same sum and division) without `mean`'s Python-level overhead."""
    return float(x.sum()) / x.size if x.size else float("nan")


def model_metrics(model: CommonPurposeModel, people: People | None = None) -> dict[str, float]:
    """This week's system-level figures (`people`: the recorder's cache, built when not given)."""
    s = model.state
    lad = model.config.ladder
    if people is None or people.n != s.n:
        people = People(model)
    n = max(s.n, 1)
    n_res = max(people.residents.size, 1)
    n_staff = max(people.staff.size, 1)
    found = ladder_findings(model)
    if found is None:  # not straight after the ladder: compare the state and count the codes
        subscribed = s.vision >= lad.vision_threshold
        both = subscribed & (s.value >= lad.value_threshold)
        n_subscribed, n_both = np.count_nonzero(subscribed), np.count_nonzero(both)
        n_sub_acting, n_held = np.count_nonzero(s.acting & subscribed), np.count_nonzero(s.acting & both)
        n_acting, n_aware = np.count_nonzero(s.acting), np.count_nonzero(s.aware)
        # counts by comparison: bincount of int8 codes costs more (it converts them first)
        counts = [np.count_nonzero(model.stage == code) for code in range(len(STAGES))]
        cp_staff = np.count_nonzero(model.stage[people.staff_rows] == STAGES.index("common_purpose"))
    else:
        n_subscribed, n_both, n_sub_acting, n_held = found.subscribed, found.both, found.subscribed_acting, found.held
        counts, n_acting, n_aware = found.counts, found.acting, found.aware
        cp_staff = np.count_nonzero(found.common[people.staff_rows])
    n_cp = int(counts[STAGES.index("common_purpose")])
    classes = s.pa_class[people.resident_rows]  # residents' classes are 0..2
    inactive, fairly = np.count_nonzero(classes == 0), np.count_nonzero(classes == 1)
    pa = (inactive, fairly, classes.size - inactive - fairly)
    target_inactive = np.count_nonzero(s.pa_class[people.target_rows] == 0)
    staff_org = people.staff_org
    row = {
        "step": model.week,
        "mean_vision": _mean(s.vision),
        "mean_value": _mean(s.value),
        "aware_share": n_aware / n,
        "subscribed_share": n_subscribed / n,
        "valuing_share": n_both / n,
        "acting_share": n_acting / n,
        "common_purpose_share": n_cp / n,
        "staff_common_purpose_share": cp_staff / n_staff,
        "resident_common_purpose_share": (n_cp - cp_staff) / n_res,
        "acting_low_vision_share": (n_acting - n_sub_acting) / n_acting if n_acting else 0.0,
        "acting_among_valuing_share": n_held / max(n_both, 1),
        "embedded_processes": float(model.org_embedded.sum()),
        "structural_alignment": _mean(model.org_structure[staff_org]) if staff_org.size else 0.0,
        "max_structural_alignment": float(model.org_structure.max()) if model.org_structure.size else 0.0,
        "cultural_alignment": _mean(s.culture),
        "inactive_share": float(pa[0] / n_res),
        "fairly_active_share": float(pa[1] / n_res),
        "active_share": float(pa[2] / n_res),
        "target_inactive_share": target_inactive / max(people.target_residents.size, 1),
        "ties": int(model.ties.count),  # counts stay whole numbers (int64 columns in model.parquet)
        "effort_budget": float(model.effort_budget),
        "national_cap": float(model.national_cap),
        "adopted_share": n_subscribed / n,
    }
    for name, c in zip(STAGES, counts, strict=True):
        row[f"stage_{name}"] = int(c)
    return row


def _indicator(codes: np.ndarray, k: int) -> sp.csr_matrix:
    """A k x n matrix with a 1 where person j belongs to group i (codes < 0 belong nowhere)."""
    ok = np.flatnonzero(codes >= 0)
    return sp.csr_matrix((np.ones(ok.size), (codes[ok].astype(np.int64), ok)), shape=(k, codes.size))


def _fixed_weights(model: CommonPurposeModel) -> np.ndarray:
    """Per person: 1, resident, staff (the sums that change only when people are added)."""
    s = model.state
    w = np.empty((s.n, 3), dtype=np.float32)
    w[:, 0] = 1.0
    w[:, 1] = ~s.staff
    w[:, 2] = s.staff
    return w


class _Groups:
    """The stacked membership matrix of the group kinds recorded, and what follows from who is who.

    Rows are groups (kind after kind), columns people. The fixed sums (count, residents, staff)
    give each metric's denominator once; each week needs one pass over people
    (`kernels.group_sums`) and one division.

    The sums are float32: for a relative rounding of about 1e-6 in a group's mean vision,
    value, structure or embedding (counts of people are exact), half the memory traffic. Each
    group adds its members in increasing order, as the membership matrix times a float32 block
    of the figures would: the same sums, bit for bit.
    """

    def __init__(self, model: CommonPurposeModel, kinds: list[tuple[str, np.ndarray, list[str]]]):
        members = sp.vstack([_indicator(codes, len(names)) for _, codes, names in kinds], format="csr")
        self.members = members
        # each person's row for each kind (-1: in no group of that kind), for `kernels.group_sums`
        starts = np.cumsum([0] + [len(names) for _, _, names in kinds])[:-1]
        self.rows = np.stack(
            [np.where(c >= 0, c.astype(np.intp) + a, -1) for (_, c, _), a in zip(kinds, starts, strict=True)]
        )
        count, n_res, n_staff = (members @ _fixed_weights(model)).T
        self.count = count
        self.denom = np.maximum(count, 1)[:, None]
        # the inactive share is over residents, structure and embedding over staff; none: NaN
        per_member = np.column_stack([n_res, n_staff, n_staff])
        # one division for every mean: the first four by count, the last three by members (1
        # where a group has none: those entries are then set to NaN)
        self.divisor = np.column_stack([np.repeat(self.denom, 4, axis=1), np.where(per_member > 0, per_member, 1.0)])
        none = np.zeros((count.size, len(GROUP_METRICS)), dtype=bool)
        none[:, 5:8] = per_member <= 0
        self.no_members = np.flatnonzero(none)  # flat positions in the block
        self.ends = np.cumsum([len(names) for _, _, names in kinds]).tolist()

    def block(self, model: CommonPurposeModel) -> np.ndarray:
        """Rows: groups; columns: GROUP_METRICS, for this week."""
        s = model.state
        found = ladder_findings(model)  # the ladder's mask of stage 5, else the codes compared
        common = model.stage == STAGES.index("common_purpose") if found is None else found.common
        sums = np.zeros((self.count.size, 7), dtype=np.float32)  # float32: see the class
        kernels.group_sums(
            self.rows, s.vision, s.value, s.acting, common, s.pa_class, s.org,
            model.org_structure.astype(np.float32), model.org_embedded.astype(np.float32), sums,
        )  # fmt: skip
        block = np.empty((self.count.size, len(GROUP_METRICS)))
        block[:, 0] = self.count
        np.divide(sums, self.divisor, out=block[:, 1:8])
        if self.no_members.size:
            block.ravel()[self.no_members] = np.nan
        return block


class Recorder:
    """Collects the weekly rows in memory (small: one row per week, a block per group kind)."""

    def __init__(self, model: CommonPurposeModel):
        self.rows: list[dict[str, float]] = []
        self.blocks: dict[str, list[tuple[int, np.ndarray, list[str]]]] = {k: [] for k in model.config.output.groups}
        self._people: People | None = None
        self._groups: tuple[tuple, _Groups] | None = None

    def _group_sources(self, model: CommonPurposeModel) -> dict[str, tuple[np.ndarray, list[str]]]:
        s = model.state
        return {
            "role": (s.role, model.role_names),
            "ward": (s.ward, model.ward_names),
            "community": (s.community, model.community_names),
            "organisation": (s.org, model.org_names),
        }

    def _group_sums(self, model: CommonPurposeModel, people: People) -> list[tuple[str, np.ndarray, list[str]]]:
        """Every group kind's metrics from one product: stacked membership matrix x weights."""
        if self._groups is None or self._groups[0][0] != people.n:
            sources = self._group_sources(model)
            kinds = [(kind, *sources[kind]) for kind in self.blocks if sources[kind][1]]
            key = (people.n, [(kind, list(names)) for kind, _, names in kinds])
            self._groups = (key, _Groups(model, kinds) if kinds else None)
        (_, kinds), groups = self._groups
        if groups is None:  # e.g. only `community` asked for, and the scenario has no communities
            return []
        block = groups.block(model)
        starts = [0, *groups.ends[:-1]]
        return [(kind, block[a:b], names) for (kind, names), a, b in zip(kinds, starts, groups.ends, strict=True)]

    def record(self, model: CommonPurposeModel) -> dict[str, float]:
        if self._people is None or self._people.n != model.state.n:
            self._people = People(model)
        row = model_metrics(model, self._people)
        self.rows.append(row)
        if self.blocks:
            for kind, block, names in self._group_sums(model, self._people):
                self.blocks[kind].append((model.week, block, names))
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
