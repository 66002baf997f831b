"""Canonical random graphs for docking the engine against published models.

`erdos_renyi` (G(n, p) with p = z / (n - 1)) and `ring_lattice` (a ring where each node is tied
to its k nearest neighbours, each tie rewired with probability p, as in Watts-Strogatz and
Centola-Macy) give a population of one role in one place: everyone has the config's resident
role and first ward, cultural alignment exactly the ward's (no noise), and ties of the
resident-resident kind with the configured trust. Everything is drawn from the model's seeded
generator.

Example:
    >>> import numpy as np
    >>> from abm.generators import erdos_renyi_edges
    >>> u, v = erdos_renyi_edges(1000, 4.0, np.random.default_rng(1))
    >>> 1800 < u.size < 2200
    True
"""

from __future__ import annotations

import numpy as np

from abm.config import Config
from abm.network import KIND, Population, dedupe


def erdos_renyi_edges(n: int, mean_degree: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """G(n, p) with p = mean_degree / (n - 1): a binomial number of distinct uniform pairs."""
    if n < 2 or mean_degree <= 0:
        return np.zeros(0, np.int32), np.zeros(0, np.int32)
    pairs = n * (n - 1) // 2
    m = int(rng.binomial(pairs, min(mean_degree / (n - 1), 1.0)))
    if m > pairs // 2:  # dense: draw the pairs left out instead (topping up m of them would take ever longer)
        gone_u, gone_v = _distinct_pairs(n, pairs - m, rng)
        u, v = np.triu_indices(n, 1)
        keep = np.ones(pairs, dtype=bool)
        # pair (a, b), a < b, is entry a * n - a (a + 1) / 2 + b - a - 1 of the upper triangle in row order
        a, b = gone_u.astype(np.int64), gone_v.astype(np.int64)
        keep[a * n - a * (a + 1) // 2 + b - a - 1] = False
        return u[keep].astype(np.int32), v[keep].astype(np.int32)
    return _distinct_pairs(n, m, rng)


def _distinct_pairs(n: int, m: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """m distinct uniform pairs u < v of 0..n-1 (m at most half of all pairs), sorted."""
    u = np.zeros(0, np.int32)
    v = np.zeros(0, np.int32)
    while u.size < m:  # draw, drop self-loops and repeats, top up (a few rounds at most)
        need = m - u.size
        a = rng.integers(0, n, int(need * 1.1) + 16)
        b = rng.integers(0, n, a.size)
        u, v = dedupe(np.concatenate([u, a]), np.concatenate([v, b]), n)
    keep = np.sort(rng.permutation(u.size)[:m])
    return u[keep], v[keep]


def ring_lattice_edges(n: int, k: int, rewire_p: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Each node tied to its k nearest ring neighbours (k even); each tie's far end rewired with probability p."""
    half = max(k // 2, 0)
    if n < 2 or half == 0:
        return np.zeros(0, np.int32), np.zeros(0, np.int32)
    src = np.repeat(np.arange(n, dtype=np.int64), half)
    dst = (src + np.tile(np.arange(1, half + 1), n)) % n
    rewire = rng.random(src.size) < rewire_p
    dst[rewire] = rng.integers(0, n, int(rewire.sum()))
    return dedupe(src, dst, n)


def generic_population(cfg: Config, rng: np.random.Generator) -> Population:
    """A one-role, one-place population on a canonical graph (`network.generator`)."""
    net = cfg.network
    n = net.agents
    if net.generator == "erdos_renyi":
        eu, ev = erdos_renyi_edges(n, net.mean_degree, rng)
    else:
        eu, ev = ring_lattice_edges(n, round(net.mean_degree), net.rewire_p, rng)
    role_names = list(cfg.roles)
    ward_names = list(cfg.wards)
    ward = next(iter(cfg.wards.values()))
    mix = np.array([ward.activity.inactive, ward.activity.fairly_active, ward.activity.active])
    resident = role_names.index(cfg.resident_role)
    spec = cfg.roles[cfg.resident_role]
    trust = np.clip(net.trust.resident_resident + rng.normal(0, net.trust.noise, eu.size), 0.05, 1.0)
    if net.trust.noise == 0:
        trust = np.full(eu.size, net.trust.resident_resident)
    return Population(
        role_names=role_names,
        ward_names=ward_names,
        community_names=list(cfg.communities),
        sector_names=["community"],
        org_names=[],
        org_type=[],
        role=np.full(n, resident, dtype=np.int16),
        org=np.full(n, -1, dtype=np.int32),
        ward=np.zeros(n, dtype=np.int16),
        community=np.full(n, -1, dtype=np.int16),
        age_band=np.full(n, -1, dtype=np.int8),
        deprivation=np.full(n, round(ward.deprivation_decile), dtype=np.int8),
        pa_class=rng.choice(3, size=n, p=mix / mix.sum()).astype(np.int8),
        skills=np.full(n, spec.skills),
        culture=np.full(n, ward.cultural_alignment),
        org_sector=np.zeros(0, dtype=np.int16),
        org_ward=np.zeros(0, dtype=np.int16),
        org_structure=np.zeros(0),
        org_culture=np.zeros(0),
        org_embedded=np.zeros(0),
        eu=eu,
        ev=ev,
        trust=trust,
        kind=np.full(eu.size, KIND["resident_resident"], dtype=np.int8),
        meta={"n_staff": 0, "sector": np.zeros(n, dtype=np.int16), "level": np.zeros(n, dtype=np.int8)},
    )


def seed_initial_state(model) -> None:
    """Apply `config.initial`: uniform opinions, and adopters at random or in one cluster."""
    init = model.config.initial
    s = model.state
    rng = model.rng
    if init.opinions == "uniform":
        s.vision[:] = rng.random(s.n)
        s.value[:] = rng.random(s.n)
        s.aware[:] = True
    k = min(init.adopters, s.n)
    if k == 0:
        return
    if init.seeding == "random":
        seeds = rng.choice(s.n, size=k, replace=False)
    else:  # a random person and the people nearest them (breadth first over ties)
        seeds = [int(rng.integers(s.n))]
        frontier, seen = list(seeds), set(seeds)
        while len(seeds) < k and frontier:
            nxt = []
            for i in frontier:
                for j in sorted(int(x) for x in model.ties.neighbours(i)):
                    if j not in seen and len(seeds) < k:
                        seen.add(j)
                        seeds.append(j)
                        nxt.append(j)
            frontier = nxt
        seeds = np.array(seeds)
    s.vision[seeds] = 1.0
    s.value[seeds] = 1.0
    s.aware[seeds] = True
