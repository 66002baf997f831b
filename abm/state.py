"""Model state as arrays: one numpy array per attribute, ties in a scipy.sparse matrix.

`Ties` keeps every tie once (u < v) with its trust and kind, and a symmetric CSR matrix whose
entries are trust. Trust changes are written straight into the matrix (each tie knows its two
positions); new ties go to a small side matrix that is merged in when it grows past a few per
cent; removed ties are zeroed and compacted at the next merge. So engagement and turnover cost
O(changed ties), not a rebuild, per step.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
import scipy.sparse as sp

from abm.config import Config
from abm.network import Population, _tie_kind


class Ties:
    """Undirected weighted ties with O(1) trust updates and amortised additions and removals."""

    def __init__(self, n: int, eu: np.ndarray, ev: np.ndarray, trust: np.ndarray, kind: np.ndarray):
        self.n = n
        self.eu = np.asarray(eu, dtype=np.int32)
        self.ev = np.asarray(ev, dtype=np.int32)
        self.trust = np.asarray(trust, dtype=np.float64).copy()
        self.kind = np.asarray(kind, dtype=np.int8)
        self.alive = np.ones(self.eu.size, dtype=bool)
        self.merges = 0
        self._rebuild()

    # --- structure -------------------------------------------------------------------------
    @property
    def count(self) -> int:
        """Number of live ties."""
        return int(self.alive.sum())

    def _rebuild(self) -> None:
        """Compact dead ties and build the main CSR matrix with every live tie."""
        keep = self.alive
        if not keep.all():
            self.eu, self.ev = self.eu[keep], self.ev[keep]
            self.trust, self.kind = self.trust[keep], self.kind[keep]
            self.alive = np.ones(self.eu.size, dtype=bool)
        m = self.eu.size
        rows = np.concatenate([self.eu, self.ev]).astype(np.int64)
        cols = np.concatenate([self.ev, self.eu]).astype(np.int64)
        order = np.argsort(rows * self.n + cols, kind="stable")
        eid = np.concatenate([np.arange(m), np.arange(m)])[order]
        indptr = np.zeros(self.n + 1, dtype=np.int64)
        np.cumsum(np.bincount(rows, minlength=self.n), out=indptr[1:])
        self.A = sp.csr_matrix((self.trust[eid], cols[order].astype(np.int32), indptr), shape=(self.n, self.n))
        self.pos_edge = eid  # CSR position -> tie id
        self.pos = np.empty((2, m), dtype=np.int64)  # tie id -> its two CSR positions
        # the (u, v) entry sits in row u; the (v, u) entry in row v
        in_row_u = np.concatenate([np.ones(m, bool), np.zeros(m, bool)])[order]
        self.pos[0, eid[in_row_u]] = np.flatnonzero(in_row_u)
        self.pos[1, eid[~in_row_u]] = np.flatnonzero(~in_row_u)
        self.m_main = m
        self.key_main = np.minimum(self.eu, self.ev).astype(np.int64) * self.n + np.maximum(self.eu, self.ev)
        self.key_order = np.argsort(self.key_main, kind="stable")
        self.key_sorted = self.key_main[self.key_order]
        self.B: sp.csr_matrix | None = None
        self._extra_dirty = False
        self._keys_cache: tuple[int, np.ndarray, np.ndarray] | None = None
        self.merges += 1

    def _extra(self) -> sp.csr_matrix | None:
        if self._extra_dirty:
            e = np.arange(self.m_main, self.eu.size)
            w = self.trust[e] * self.alive[e]
            rows = np.concatenate([self.eu[e], self.ev[e]])
            cols = np.concatenate([self.ev[e], self.eu[e]])
            self.B = sp.csr_matrix((np.concatenate([w, w]), (rows, cols)), shape=(self.n, self.n))
            self._extra_dirty = False
        return self.B if self.eu.size > self.m_main else None

    def matmul(self, x: np.ndarray) -> np.ndarray:
        """Trust-weighted neighbour sums: W @ x for a vector or an (n, k) block."""
        out = self.A @ x
        extra = self._extra()
        if extra is not None:
            out += extra @ x
        return out

    def find(self, u: np.ndarray, v: np.ndarray) -> np.ndarray:
        """Tie ids for the pairs (u, v), -1 where there is no live tie."""
        key = np.minimum(u, v).astype(np.int64) * self.n + np.maximum(u, v)
        out = np.full(key.size, -1, dtype=np.int64)
        if self.key_sorted.size:
            i = np.clip(np.searchsorted(self.key_sorted, key), 0, self.key_sorted.size - 1)
            hit = self.key_sorted[i] == key
            out[hit] = self.key_order[i[hit]]
            out[(out >= 0) & ~self.alive[np.maximum(out, 0)]] = -1  # a removed tie may be re-added later
        if self.eu.size > self.m_main:
            keys, order = self._extra_keys()
            j = np.flatnonzero(out < 0)
            i = np.clip(np.searchsorted(keys, key[j]), 0, keys.size - 1)
            hit = keys[i] == key[j]
            out[j[hit]] = self.m_main + order[i[hit]]
        found = out >= 0
        out[found & ~self.alive[np.maximum(out, 0)]] = -1
        return out

    def _extra_keys(self) -> tuple[np.ndarray, np.ndarray]:
        """Sorted keys of the ties added since the last merge (cached until the next addition)."""
        if self._keys_cache is None or self._keys_cache[0] != self.eu.size:
            a, b = self.eu[self.m_main :], self.ev[self.m_main :]
            keys = np.minimum(a, b).astype(np.int64) * self.n + np.maximum(a, b)
            keys[~self.alive[self.m_main :]] = -1  # removed ties are never found
            order = np.argsort(keys, kind="stable")
            self._keys_cache = (self.eu.size, keys[order], order)
        return self._keys_cache[1], self._keys_cache[2]

    def set_trust(self, tie: np.ndarray, value: np.ndarray) -> None:
        """Write new trust for live ties (vectorised; ties may repeat, the last write wins)."""
        self.trust[tie] = value
        main = tie < self.m_main
        t = tie[main]
        self.A.data[self.pos[0, t]] = self.trust[t]
        self.A.data[self.pos[1, t]] = self.trust[t]
        if (~main).any():
            self._extra_dirty = True

    def add(self, u: np.ndarray, v: np.ndarray, trust: float | np.ndarray, kind: np.ndarray) -> np.ndarray:
        """Add ties between distinct pairs not already tied; returns how many were added."""
        u, v = np.asarray(u, dtype=np.int64), np.asarray(v, dtype=np.int64)
        ok = (u != v) & (self.find(u, v) < 0)
        if not ok.any():
            return np.zeros(0, dtype=np.int64)
        a, b = np.minimum(u[ok], v[ok]), np.maximum(u[ok], v[ok])
        key, first = np.unique(a * self.n + b, return_index=True)
        t = np.broadcast_to(np.asarray(trust, dtype=float), u.shape)[ok][first]
        k = np.asarray(kind, dtype=np.int8)[ok][first]
        start = self.eu.size
        self.eu = np.concatenate([self.eu, (key // self.n).astype(np.int32)])
        self.ev = np.concatenate([self.ev, (key % self.n).astype(np.int32)])
        self.trust = np.concatenate([self.trust, t])
        self.kind = np.concatenate([self.kind, k])
        self.alive = np.concatenate([self.alive, np.ones(key.size, dtype=bool)])
        self._extra_dirty = True
        if self.eu.size - self.m_main > max(2048, 0.05 * self.m_main):
            self._rebuild()
            return self.find(key // self.n, key % self.n)
        return np.arange(start, self.eu.size)

    def remove(self, tie: np.ndarray) -> None:
        """Remove live ties (they stop carrying influence at once and are compacted later)."""
        tie = np.unique(tie)
        self.alive[tie] = False
        self._keys_cache = None
        self.set_trust(tie, np.zeros(tie.size))
        if (~self.alive).sum() > max(2048, 0.2 * self.m_main):
            self._rebuild()

    def incident(self, nodes_mask: np.ndarray) -> np.ndarray:
        """Ids of live ties touching any node in the boolean mask."""
        return np.flatnonzero(self.alive & (nodes_mask[self.eu] | nodes_mask[self.ev]))

    def grow(self, n: int) -> None:
        """Make room for new nodes (a partner joining)."""
        self.n = n
        self._rebuild()

    def random_neighbour(self, nodes: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """One random live neighbour of each node (-1 when none) and the tie id."""
        start, end = self.A.indptr[nodes], self.A.indptr[nodes + 1]
        deg = end - start
        pos = start + (rng.random(nodes.size) * deg).astype(np.int64)
        has = deg > 0
        nb = np.where(has, self.A.indices[np.minimum(pos, self.A.indices.size - 1)], -1)
        tie = np.where(has, self.pos_edge[np.minimum(pos, self.pos_edge.size - 1)], -1)
        dead = has & ~self.alive[np.maximum(tie, 0)]
        nb[dead], tie[dead] = -1, -1
        return nb.astype(np.int64), tie

    def neighbours(self, i: int) -> np.ndarray:
        """Live neighbours of one node (for inspection, not for the step)."""
        mask = self.alive & ((self.eu == i) | (self.ev == i))
        return np.where(self.eu[mask] == i, self.ev[mask], self.eu[mask])

    def degree(self) -> np.ndarray:
        live = self.alive
        return np.bincount(self.eu[live], minlength=self.n) + np.bincount(self.ev[live], minlength=self.n)


@dataclass
class State:
    """Per-person arrays (index = agent index). Staff and residents share one set of arrays."""

    role: np.ndarray
    org: np.ndarray
    ward: np.ndarray
    community: np.ndarray
    sector: np.ndarray
    level: np.ndarray
    staff: np.ndarray
    age_band: np.ndarray
    deprivation: np.ndarray
    skills: np.ndarray
    culture: np.ndarray
    influence: np.ndarray  # weight as a source, from the role
    susceptibility: np.ndarray
    resident_contact: np.ndarray
    aware: np.ndarray
    vision: np.ndarray
    value: np.ndarray
    acting: np.ndarray
    sustain: np.ndarray  # moving share of recent weeks with vision, value and action all held
    insight: np.ndarray  # the pilot's insight into this person's situation
    pa_class: np.ndarray
    first_subscribed: np.ndarray  # week, -1 never
    first_valued: np.ndarray
    first_acting: np.ndarray
    acted_after: np.ndarray  # last activity that touched the person (for the event log), -1 none
    replaced: np.ndarray  # how many times this post changed hands

    @property
    def n(self) -> int:
        return int(self.role.size)

    @classmethod
    def from_population(cls, pop: Population, cfg: Config, rng: np.random.Generator) -> State:
        n = pop.n_agents
        roles = [cfg.roles[r] for r in pop.role_names]
        pick = lambda attr: np.array([getattr(r, attr) for r in roles], dtype=float)[pop.role]  # noqa: E731
        iv, ival, iaware = pick("initial_vision"), pick("initial_value"), pick("initial_aware")
        org_specs = [cfg.organisations[t] for t in pop.org_type]
        for o, spec in enumerate(org_specs):
            members = pop.org == o
            if spec.initial_vision is not None:
                iv[members] = spec.initial_vision
            if spec.initial_value is not None:
                ival[members] = spec.initial_value
            if spec.initial_aware is not None:
                iaware[members] = spec.initial_aware
        aware = rng.random(n) < iaware
        vision = np.where(aware, np.clip(iv + rng.normal(0, 0.1, n) * (iv > 0), 0, 1), 0.0)
        value = np.where(aware, np.clip(ival + rng.normal(0, 0.1, n) * (ival > 0), 0, 1), 0.0)
        level = pop.meta["level"]
        return cls(
            role=pop.role,
            org=pop.org,
            ward=pop.ward,
            community=pop.community,
            sector=pop.meta["sector"],
            level=np.asarray(level, dtype=np.int8),
            staff=pop.pa_class < 0,
            age_band=pop.age_band,
            deprivation=pop.deprivation,
            skills=pop.skills,
            culture=pop.culture,
            influence=pick("influence"),
            susceptibility=pick("susceptibility"),
            resident_contact=pick("resident_contact"),
            aware=aware,
            vision=vision,
            value=value,
            acting=np.zeros(n, dtype=bool),
            sustain=np.zeros(n),
            insight=np.zeros(n),
            pa_class=pop.pa_class.copy(),
            first_subscribed=np.full(n, -1, dtype=np.int32),
            first_valued=np.full(n, -1, dtype=np.int32),
            first_acting=np.full(n, -1, dtype=np.int32),
            acted_after=np.full(n, -1, dtype=np.int8),
            replaced=np.zeros(n, dtype=np.int32),
        )

    def append(self, other: State) -> None:
        """Add people (a partner organisation joining mid-run)."""
        for f in fields(self):
            setattr(self, f.name, np.concatenate([getattr(self, f.name), getattr(other, f.name)]))


def tie_kinds(state: State, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """The kind of each new tie, by the same rule as the generator."""
    return _tie_kind(u, v, state.staff, state.org, state.sector)
