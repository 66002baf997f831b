"""The synthetic South Tees stakeholder system: people, organisations, places and ties.

Everything is generated as numpy arrays with one seeded generator, in vectorised passes, so a
whole-population network (about 280,000 residents) builds in seconds. `Population.to_networkx`
gives the same system as a networkx graph for drawing, export and analysis.

Example:
    >>> import numpy as np
    >>> from abm.config import load_config
    >>> pop = generate(load_config("south_tees"), np.random.default_rng(1))
    >>> pop.n_agents > 1000 and pop.eu.size > pop.n_agents
    True
"""

from __future__ import annotations

from dataclasses import dataclass, field

import networkx as nx
import numpy as np

from abm import kernels
from abm.config import Config, ConfigError, OrganisationSpec

TIE_KINDS = (
    "within_organisation",
    "between_organisations",
    "cross_sector",
    "professional_resident",
    "resident_resident",
)
KIND = {name: i for i, name in enumerate(TIE_KINDS)}


@dataclass
class Population:
    """Who exists and who knows whom, before any dynamics (structure of arrays)."""

    role_names: list[str]
    ward_names: list[str]
    community_names: list[str]
    sector_names: list[str]
    org_names: list[str]
    org_type: list[str]
    # per agent
    role: np.ndarray
    org: np.ndarray  # -1 for residents
    ward: np.ndarray
    community: np.ndarray  # -1 none
    age_band: np.ndarray  # -1 for staff
    deprivation: np.ndarray  # IMD decile, 1 most deprived
    pa_class: np.ndarray  # -1 for staff, else 0 inactive, 1 fairly active, 2 active
    skills: np.ndarray
    culture: np.ndarray
    # per organisation
    org_sector: np.ndarray
    org_ward: np.ndarray  # -1 when it serves several wards
    org_structure: np.ndarray
    org_culture: np.ndarray
    org_embedded: np.ndarray
    # ties, each once with eu < ev
    eu: np.ndarray
    ev: np.ndarray
    trust: np.ndarray
    kind: np.ndarray
    meta: dict = field(default_factory=dict)

    @property
    def n_agents(self) -> int:
        return int(self.role.size)

    def to_networkx(self) -> nx.Graph:
        """The system as a networkx graph: node and edge attributes named as in the config."""
        g = nx.Graph()
        for i in range(self.n_agents):
            o = int(self.org[i])
            c = int(self.community[i])
            g.add_node(
                i,
                role=self.role_names[self.role[i]],
                ward=self.ward_names[self.ward[i]],
                organisation=self.org_names[o] if o >= 0 else "",
                community=self.community_names[c] if c >= 0 else "",
            )
        g.add_edges_from(
            (int(u), int(v), {"trust": float(t), "kind": TIE_KINDS[k]})
            for u, v, t, k in zip(self.eu, self.ev, self.trust, self.kind, strict=True)
        )
        return g


def _stochastic_round(x: np.ndarray | float, size: int, rng: np.random.Generator) -> np.ndarray:
    """Integers whose mean is x (so a degree of 1.5 gives 1 or 2 partners)."""
    base = np.floor(x)
    return (base + (rng.random(size) < (x - base))).astype(np.int64)


def _largest_remainder(total: int, weights: np.ndarray) -> np.ndarray:
    raw = total * weights / weights.sum()
    out = np.floor(raw).astype(np.int64)
    out[np.argsort(-(raw - out), kind="stable")[: total - out.sum()]] += 1
    return out


def _draw_within(starts: np.ndarray, sizes: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One uniform member of each given contiguous block."""
    return starts + (rng.random(starts.size) * sizes).astype(np.int64)


def _repeat_draws(agents: np.ndarray, counts: np.ndarray) -> np.ndarray:
    return np.repeat(agents, counts)


def check_map_hash(cfg: Config, sha256: str) -> None:
    """Refuse a map whose SHA-256 is not the one `network.source_sha256` pins.

    A saved config.yaml repeats its run only with the same map: a map edited since would give
    other results without a word.

    Raises:
        ConfigError: the hashes differ (one line: the map, both hash prefixes, the way out).
    """
    pinned = cfg.network.source_sha256
    if pinned is None or sha256.lower() == pinned:
        return
    raise ConfigError(
        f"network.source: the map {cfg.network.source} changed since this config was written "
        f"(sha256 was {pinned[:12]}..., now {sha256[:12]}...); remove network.source_sha256 to run "
        "with the map as it is now"
    )


def generate(cfg: Config, rng: np.random.Generator) -> Population:
    """Build the system described by `cfg`, seeded by `rng`.

    With `network.source` set, the people and ties come from that map file (`population_from_graph`);
    otherwise the synthetic South Tees generator builds them.

    Raises:
        ConfigError: (a `MapError`) the map file cannot be used, or it is not the map whose
            SHA-256 `network.source_sha256` records.
    """
    if cfg.network.source:
        from abm.mapio import read_map

        graph = read_map(cfg.network.source, cfg.network.mapping, max_mb=cfg.network.source_max_mb)
        check_map_hash(cfg, str(graph.graph.get("sha256", "")))
        return population_from_graph(graph, cfg, rng)
    role_names = list(cfg.roles)
    ward_names = list(cfg.wards)
    community_names = list(cfg.communities)
    resident_code = role_names.index(cfg.resident_role)
    sectors: list[str] = []

    def sector_code(name: str) -> int:
        if name not in sectors:
            sectors.append(name)
        return sectors.index(name)

    # --- organisations and their staff, contiguous per organisation
    org_names, org_type, org_rows = [], [], []
    staff_role, staff_org, staff_ward = [], [], []
    for type_name, spec in cfg.organisations.items():
        count = cfg.organisation_count(type_name)
        served = ward_names if spec.wards == "all" else list(spec.wards)
        served_codes = np.array([ward_names.index(w) for w in served])
        roles = np.concatenate(
            [np.full(n, role_names.index(r), dtype=np.int64) for r, n in spec.staff.items()]
            or [np.zeros(0, dtype=np.int64)]
        )
        for k in range(count):
            o = len(org_names)
            org_names.append(type_name if count == 1 else f"{type_name}_{k + 1}")
            org_type.append(type_name)
            fixed = count >= served_codes.size
            home = int(served_codes[k % served_codes.size]) if fixed else -1
            org_rows.append((sector_code(spec.sector), home, spec))
            staff_role.append(roles)
            staff_org.append(np.full(roles.size, o, dtype=np.int64))
            patch = (
                np.full(roles.size, home) if fixed else served_codes[(k + np.arange(roles.size)) % served_codes.size]
            )
            staff_ward.append(patch.astype(np.int64))
    sector_code("community")
    s_role = np.concatenate(staff_role) if staff_role else np.zeros(0, dtype=np.int64)
    s_org = np.concatenate(staff_org) if staff_org else np.zeros(0, dtype=np.int64)
    s_ward = np.concatenate(staff_ward) if staff_ward else np.zeros(0, dtype=np.int64)
    n_staff = s_role.size

    # --- residents, contiguous per ward
    shares = np.array([w.share for w in cfg.wards.values()], dtype=float)
    per_ward = _largest_remainder(cfg.population.residents, shares)
    r_ward = np.repeat(np.arange(len(ward_names)), per_ward)
    n_res = r_ward.size
    n = n_staff + n_res
    ward_start = n_staff + np.concatenate([[0], np.cumsum(per_ward)[:-1]])

    role = np.concatenate([s_role, np.full(n_res, resident_code)]).astype(np.int16)
    org = np.concatenate([s_org, np.full(n_res, -1)]).astype(np.int32)
    ward = np.concatenate([s_ward, r_ward]).astype(np.int16)
    staff = np.arange(n) < n_staff
    level = np.array([cfg.roles[r].level for r in role_names])[role]

    # --- individual characteristics (assumptions, documented in docs/ODD.md)
    age_shares = np.array(list(cfg.population.age_bands.values()), dtype=float)
    age_band = np.full(n, -1, dtype=np.int8)
    if n_res and age_shares.sum() > 0:
        age_band[n_staff:] = rng.choice(age_shares.size, size=n_res, p=age_shares / age_shares.sum())
    dep_mean = np.array([w.deprivation_decile for w in cfg.wards.values()])
    deprivation = np.clip(np.rint(dep_mean[ward] + rng.normal(0, 1.0, n)), 1, 10).astype(np.int8)
    mixes = np.array([[w.activity.inactive, w.activity.fairly_active, w.activity.active] for w in cfg.wards.values()])
    pa_class = np.full(n, -1, dtype=np.int8)
    if n_res:
        cum = np.cumsum(mixes[r_ward], axis=1)
        pa_class[n_staff:] = (rng.random(n_res)[:, None] > cum[:, :2]).sum(axis=1)

    community = np.full(n, -1, dtype=np.int16)
    res_coms = [(i, c) for i, c in enumerate(cfg.communities.values()) if c.members == "residents"]
    if n_res and res_coms:
        draw = rng.random(n_res)
        edges = np.cumsum([c.share for _, c in res_coms])
        idx = np.searchsorted(edges, draw, side="right")
        codes = np.array([i for i, _ in res_coms] + [-1])
        community[n_staff:] = codes[idx]
    for i, c in enumerate(cfg.communities.values()):
        if c.members == "staff":
            members = staff & np.isin(role, [role_names.index(r) for r in c.roles]) & (community < 0)
            community[members] = i

    role_skill = np.array([cfg.roles[r].skills for r in role_names])
    skills = role_skill[role] + rng.normal(0, 0.1, n) + np.where(staff, 0.0, 0.02 * (deprivation - 5))
    skills = np.clip(skills, 0.0, 1.0)

    org_sector = np.array([r[0] for r in org_rows], dtype=np.int16)
    org_ward = np.array([r[1] for r in org_rows], dtype=np.int16)
    org_spec: list[OrganisationSpec] = [r[2] for r in org_rows]
    org_structure = np.array([s.structural_alignment for s in org_spec], dtype=float)
    org_culture = np.array([s.cultural_alignment for s in org_spec], dtype=float)
    org_embedded = np.array([s.embedded_processes for s in org_spec], dtype=float)
    ward_culture = np.array([w.cultural_alignment for w in cfg.wards.values()])
    culture = np.where(
        staff,
        0.5 * org_culture[np.maximum(org, 0)] + 0.5 * ward_culture[ward] if org_spec else ward_culture[ward],
        ward_culture[ward] - 0.02 * (5 - deprivation),
    )
    culture = np.clip(culture + rng.normal(0, 0.1, n), 0.0, 1.0)

    sector = np.full(n, len(sectors) - 1, dtype=np.int16)
    if n_staff:
        sector[:n_staff] = org_sector[s_org]
    eu, ev = _ties(
        cfg, rng, staff, org, ward, level, sector, community, per_ward, ward_start, n_staff, org_spec, sectors
    )
    kind = _tie_kind(eu, ev, staff, org, sector)
    kind_trust = np.array(
        [
            cfg.network.trust.within_organisation,
            (cfg.network.trust.within_organisation + cfg.network.trust.cross_sector) / 2,
            cfg.network.trust.cross_sector,
            cfg.network.trust.professional_resident,
            cfg.network.trust.resident_resident,
        ]
    )
    trust = np.clip(kind_trust[kind] + rng.normal(0, cfg.network.trust.noise, eu.size), 0.05, 1.0)

    return Population(
        role_names=role_names,
        ward_names=ward_names,
        community_names=community_names,
        sector_names=sectors,
        org_names=org_names,
        org_type=org_type,
        role=role,
        org=org,
        ward=ward,
        community=community,
        age_band=age_band,
        deprivation=deprivation,
        pa_class=pa_class,
        skills=skills,
        culture=culture,
        org_sector=org_sector,
        org_ward=org_ward,
        org_structure=org_structure,
        org_culture=org_culture,
        org_embedded=org_embedded,
        eu=eu,
        ev=ev,
        trust=trust,
        kind=kind,
        meta={"n_staff": n_staff, "sector": sector, "level": level, "age_bands": list(cfg.population.age_bands)},
    )


def population_from_graph(graph: nx.Graph, cfg: Config, rng: np.random.Generator) -> Population:
    """Build the population from an imported map (any networkx graph, or one from `abm.mapio.read_map`).

    People keep the map's order (agent i is the map's i-th node). Roles, wards, organisations and
    trust come from the map as `abm.mapio.resolve_map` matches them to the config (docs/maps.md);
    organisations take their sector, structures, culture and embedded processes from the matched
    organisation type. Drawn with `rng`, in this order and as in the generator: residents' age bands,
    everyone's deprivation decile (around the ward's), residents' Active Lives class (from the ward's
    mix), skills and culture noise. A tie's kind follows the generator's rule (`_tie_kind`); a tie
    with no trust in the map gets its kind's mean trust from `network.trust`.

    Raises:
        ConfigError: (a `MapError`) the map cannot be matched to the config.
    """
    from abm.mapio import resolve_map

    m = resolve_map(graph, cfg)
    role_names = list(cfg.roles)
    n = len(m.ids)
    role = m.role.astype(np.int16)
    ward = m.ward.astype(np.int16)
    org = m.org.astype(np.int32)
    staff = np.array([cfg.roles[r].staff for r in role_names])[role]
    level = np.array([cfg.roles[r].level for r in role_names])[role]
    res = np.flatnonzero(~staff)

    specs = [cfg.organisations[t] for t in m.org_types]
    sectors: list[str] = []
    for spec in specs:
        if spec.sector not in sectors:
            sectors.append(spec.sector)
    if "community" not in sectors:
        sectors.append("community")
    org_sector = np.array([sectors.index(s.sector) for s in specs], dtype=np.int16)
    org_ward = np.full(len(specs), -1, dtype=np.int16)
    for o in range(len(specs)):
        served = np.unique(ward[org == o])
        if served.size == 1:
            org_ward[o] = served[0]
    org_structure = np.array([s.structural_alignment for s in specs], dtype=float)
    org_culture = np.array([s.cultural_alignment for s in specs], dtype=float)
    org_embedded = np.array([s.embedded_processes for s in specs], dtype=float)

    age_shares = np.array(list(cfg.population.age_bands.values()), dtype=float)
    age_band = np.full(n, -1, dtype=np.int8)
    if res.size and age_shares.sum() > 0:
        age_band[res] = rng.choice(age_shares.size, size=res.size, p=age_shares / age_shares.sum())
    dep_mean = np.array([w.deprivation_decile for w in cfg.wards.values()])
    deprivation = np.clip(np.rint(dep_mean[ward] + rng.normal(0, 1.0, n)), 1, 10).astype(np.int8)
    mixes = np.array([[w.activity.inactive, w.activity.fairly_active, w.activity.active] for w in cfg.wards.values()])
    pa_class = np.full(n, -1, dtype=np.int8)
    if res.size:
        cum = np.cumsum(mixes[ward[res]], axis=1)
        pa_class[res] = (rng.random(res.size)[:, None] > cum[:, :2]).sum(axis=1)

    community = m.community.astype(np.int16)
    for i, c in enumerate(cfg.communities.values()):
        if c.members == "staff":
            members = staff & np.isin(role, [role_names.index(r) for r in c.roles]) & (community < 0)
            community[members] = i

    role_skill = np.array([cfg.roles[r].skills for r in role_names])
    skills = role_skill[role] + rng.normal(0, 0.1, n) + np.where(staff, 0.0, 0.02 * (deprivation - 5))
    skills = np.clip(skills, 0.0, 1.0)
    ward_culture = np.array([w.cultural_alignment for w in cfg.wards.values()])
    own_org_culture = org_culture[np.maximum(org, 0)] if org_culture.size else np.zeros(n)
    culture = np.where(
        staff,
        0.5 * own_org_culture + 0.5 * ward_culture[ward],
        ward_culture[ward] - 0.02 * (5 - deprivation),
    )
    culture = np.clip(culture + rng.normal(0, 0.1, n), 0.0, 1.0)

    sector = np.full(n, sectors.index("community"), dtype=np.int16)
    sector[staff] = org_sector[org[staff]]
    kind = _tie_kind(m.eu, m.ev, staff, org, sector)
    t = cfg.network.trust
    kind_trust = np.array(
        [
            t.within_organisation,
            (t.within_organisation + t.cross_sector) / 2,
            t.cross_sector,
            t.professional_resident,
            t.resident_resident,
        ]
    )
    trust = np.where(np.isnan(m.trust), kind_trust[kind], m.trust)

    return Population(
        role_names=role_names,
        ward_names=list(cfg.wards),
        community_names=list(cfg.communities),
        sector_names=sectors,
        org_names=m.org_names,
        org_type=m.org_types,
        role=role,
        org=org,
        ward=ward,
        community=community,
        age_band=age_band,
        deprivation=deprivation,
        pa_class=pa_class,
        skills=skills,
        culture=culture,
        org_sector=org_sector,
        org_ward=org_ward,
        org_structure=org_structure,
        org_culture=org_culture,
        org_embedded=org_embedded,
        eu=m.eu,
        ev=m.ev,
        trust=trust,
        kind=kind,
        meta={
            "n_staff": int(staff.sum()),
            "sector": sector,
            "level": level,
            "age_bands": list(cfg.population.age_bands),
            "node_ids": m.ids,
            "labels": m.labels,
            "source": m.source,
        },
    )


#: The codes `kernels.tie_kinds` gives, in the order it takes them.
_KIND_CODES = np.array(
    [
        KIND[k]
        for k in (
            "professional_resident",
            "resident_resident",
            "within_organisation",
            "between_organisations",
            "cross_sector",
        )
    ],
    dtype=np.int8,
)


def _tie_kind(eu: np.ndarray, ev: np.ndarray, staff: np.ndarray, org: np.ndarray, sector: np.ndarray) -> np.ndarray:
    """Each tie's kind: professional-resident, resident-resident, or between staff by organisation, then sector."""
    return kernels.tie_kinds(eu, ev, staff, org, sector, _KIND_CODES)


def dedupe(u: np.ndarray, v: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Undirected simple edges: no self-loops, each pair once, sorted, with u < v."""
    keep = u != v
    a, b = np.minimum(u[keep], v[keep]), np.maximum(u[keep], v[keep])
    key = np.unique(a.astype(np.int64) * n + b)
    return (key // n).astype(np.int32), (key % n).astype(np.int32)


def _ties(cfg, rng, staff, org, ward, level, sector, community, per_ward, ward_start, n_staff, org_spec, sectors):
    net = cfg.network
    n = staff.size
    us: list[np.ndarray] = []
    vs: list[np.ndarray] = []

    def add(u: np.ndarray, v: np.ndarray) -> None:
        us.append(u.astype(np.int64))
        vs.append(v.astype(np.int64))

    staff_ids = np.flatnonzero(staff)
    if staff_ids.size:
        # within organisations: random colleagues (staff are contiguous per organisation)
        org_sizes = np.bincount(org[staff_ids], minlength=len(org_spec))
        org_start = np.concatenate([[0], np.cumsum(org_sizes)[:-1]])
        k = _stochastic_round(net.within_org_degree / 2, staff_ids.size, rng)
        src = _repeat_draws(staff_ids, k)
        o = org[src]
        add(src, _draw_within(org_start[o], org_sizes[o], rng))
        if net.hierarchy:
            add(*_hierarchy(staff_ids, org, level, org_start, org_sizes, rng))
        # across sectors: random staff elsewhere, one redraw for those that landed in their own sector
        k = _stochastic_round(net.cross_sector_degree / 2, staff_ids.size, rng)
        src = _repeat_draws(staff_ids, k)
        dst = rng.integers(0, staff_ids.size, src.size)
        same = sector[dst] == sector[src]
        dst[same] = rng.integers(0, staff_ids.size, int(same.sum()))
        ok = sector[dst] != sector[src]
        add(src[ok], dst[ok])
        # frontline workers to residents of their patch
        serves = np.array([s.serves_residents for s in org_spec])[org[staff_ids]] & (level[staff_ids] == 1)
        front = staff_ids[serves & (per_ward[ward[staff_ids]] > 0)]
        k = _stochastic_round(net.frontline_resident_degree, front.size, rng)
        src = _repeat_draws(front, k)
        add(src, _draw_within(ward_start[ward[src]], per_ward[ward[src]], rng))
    # residents: a clustered small world within each ward (ring lattice plus rewiring)
    res = np.arange(n_staff, n)
    if res.size and net.resident_degree >= 2:
        local = res - ward_start[ward[res]]
        size = per_ward[ward[res]]
        for off in range(1, net.resident_degree // 2 + 1):
            ok = size > off
            src = res[ok]
            dst = ward_start[ward[src]] + (local[ok] + off) % size[ok]
            rewire = rng.random(src.size) < net.resident_rewire
            leave = rewire & (rng.random(src.size) < net.cross_ward_share)
            stay = rewire & ~leave
            dst[stay] = _draw_within(ward_start[ward[src[stay]]], per_ward[ward[src[stay]]], rng)
            dst[leave] = rng.integers(n_staff, n, int(leave.sum()))
            add(src, dst)
    # communities of interest: ties among members (across wards) and to the sector serving them
    for c, spec in enumerate(cfg.communities.values()):
        members = np.flatnonzero(community == c)
        if members.size < 2:
            continue
        k = _stochastic_round(net.community_degree / 2, members.size, rng)
        src = _repeat_draws(members, k)
        add(src, members[rng.integers(0, members.size, src.size)])
        if spec.linked_sector and spec.members == "residents":
            _link_to_sector(spec, members, staff_ids, sector, ward, level, sectors, rng, add)
    if not us:
        return np.zeros(0, np.int32), np.zeros(0, np.int32)
    return dedupe(np.concatenate(us), np.concatenate(vs), n)


def _hierarchy(staff_ids, org, level, org_start, org_sizes, rng):
    """Each person tied to a random colleague one or more levels up in the same organisation."""
    lv = level[staff_ids]
    us, vs = [], []
    for o in np.flatnonzero(org_sizes):
        members = np.arange(org_start[o], org_start[o] + org_sizes[o])
        mlv = lv[members]
        for lvl in np.unique(mlv):
            higher = members[mlv > lvl]
            if higher.size == 0:
                continue
            lower = members[mlv == lvl]
            above = higher[mlv[mlv > lvl] == mlv[mlv > lvl].min()]
            us.append(staff_ids[lower])
            vs.append(staff_ids[above[rng.integers(0, above.size, lower.size)]])
    if not us:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate(us), np.concatenate(vs)


def _link_to_sector(spec, members, staff_ids, sector, ward, level, sectors, rng, add) -> None:
    """Members of a community tied to frontline staff of its sector, in their ward when possible."""
    if spec.linked_sector not in sectors:
        return
    pool = staff_ids[(sector[staff_ids] == sectors.index(spec.linked_sector)) & (level[staff_ids] == 1)]
    if pool.size == 0:
        return
    k = _stochastic_round(spec.links, members.size, rng)
    src = _repeat_draws(members, k)
    dst = pool[rng.integers(0, pool.size, src.size)]
    for w in np.unique(ward[src]):
        local = pool[ward[pool] == w]
        pick = ward[src] == w
        if local.size:
            dst[pick] = local[rng.integers(0, local.size, int(pick.sum()))]
    add(src, dst)
