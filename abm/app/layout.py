"""Where each person sits in the network view: a fast, deterministic layout grouped by place.

No force-directed layout (a spring layout takes tens of seconds at a few thousand nodes and moves
every node when anything changes). Instead, in O(n):

- staff sit in the middle, one small disc per organisation, organisations in sector order along a
  spiral, so colleagues are together and sectors are neighbours;
- residents sit around them, one disc per ward (area in proportion to its residents), filled
  along a spiral in index order, so the generator's ring-lattice neighbours sit side by side and
  most resident ties are short.

The layout is computed once per network (per model build) and kept; people who join later (a
new partner organisation) get positions in free space without moving anyone else.

Models too big to draw person by person use `blocks`: one block per role and ward, with the
ties between blocks counted as flows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from abm.model import CommonPurposeModel

GOLDEN_ANGLE = np.pi * (3.0 - np.sqrt(5.0))
#: Distance between neighbouring residents in a ward's disc (layout units).
SPACING = 1.0
#: Distance between neighbouring staff in an organisation's disc.
STAFF_SPACING = 1.8
#: Gap between discs, in layout units.
GAP = 4.0


@dataclass
class Label:
    x: float
    y: float
    text: str
    kind: str  # "ward" or "sector"


@dataclass
class Layout:
    """Positions (layout units) for people 0..n-1 and labels for the groups they sit in."""

    x: np.ndarray
    y: np.ndarray
    labels: list[Label] = field(default_factory=list)
    #: Centre and radius of the free ring where later organisations are placed.
    spare_centre: tuple[float, float] = (0.0, 0.0)
    spare_radius: float = 0.0
    spare_used: int = 0

    @property
    def n(self) -> int:
        return int(self.x.size)


def sunflower(k: int, spacing: float = SPACING) -> tuple[np.ndarray, np.ndarray]:
    """k points evenly filling a disc (Vogel's model), centred on 0; returns x, y."""
    if k <= 0:
        return np.zeros(0), np.zeros(0)
    i = np.arange(k, dtype=float)
    r = spacing * 0.55 * np.sqrt(i + 0.5)
    theta = i * GOLDEN_ANGLE
    return r * np.cos(theta), r * np.sin(theta)


def spiral(k: int, spacing: float = SPACING) -> tuple[np.ndarray, np.ndarray]:
    """k points along an Archimedean spiral at equal arc steps, so index neighbours are neighbours."""
    if k <= 0:
        return np.zeros(0), np.zeros(0)
    # r = b * theta with b = spacing / (2 pi): turns are `spacing` apart; arc length ~ b theta^2 / 2
    b = spacing / (2 * np.pi)
    s = (np.arange(k, dtype=float) + 0.5) * spacing
    theta = np.sqrt(2.0 * s / b)
    r = b * theta
    return r * np.cos(theta), r * np.sin(theta)


def disc_radius(k: int, spacing: float = SPACING) -> float:
    """Radius of a disc holding k people at the given spacing (matches sunflower and spiral)."""
    return spacing * 0.58 * np.sqrt(max(k, 1)) + 0.5 * spacing


def place_on_spiral(radii: np.ndarray, gap: float) -> tuple[np.ndarray, np.ndarray]:
    """Centres for discs of the given radii, in order, along a spiral: consecutive discs adjacent.

    The arc step is the largest diameter plus the gap, so no two discs overlap; O(k).
    """
    k = radii.size
    if k <= 1:
        return np.zeros(k), np.zeros(k)
    step = 2 * float(radii.max()) + gap
    # skip the innermost half turn, whose points bunch up, by starting a little way along
    cx, cy = spiral(k + 1, step)
    return cx[1:], cy[1:]


def _ring(radii: np.ndarray, inner: float, gap: float) -> tuple[np.ndarray, np.ndarray, float]:
    """Centres for discs around a core of radius `inner`: each as close to the core as it can be.

    Angles are shared out in proportion to the discs' sizes; each disc starts just outside the
    core and is pushed outwards only as far as needed to clear its neighbours.
    """
    k = radii.size
    if k == 1:
        return np.zeros(1), np.zeros(1), 0.0
    widths = 2 * radii + gap
    angles = np.cumsum(widths) - widths / 2
    angles = angles / widths.sum() * 2 * np.pi - np.pi / 2 - widths[0] / widths.sum() * np.pi
    dist = inner + radii + gap
    for _ in range(2000):
        x, y = dist * np.cos(angles), dist * np.sin(angles)
        dx = x[:, None] - x[None, :]
        dy = y[:, None] - y[None, :]
        clash = np.hypot(dx, dy) - (radii[:, None] + radii[None, :] + gap)
        np.fill_diagonal(clash, np.inf)
        if clash.min() >= 0:
            break
        pushed = (clash < 0).any(axis=1)
        dist = dist + pushed * 0.5
    x, y = dist * np.cos(angles), dist * np.sin(angles)
    return x, y, float(dist.max())


def _cluster(radii: np.ndarray, gap: float) -> tuple[np.ndarray, np.ndarray, float]:
    """Discs packed around a point along a spiral; centres and the radius of the whole cluster."""
    cx, cy = place_on_spiral(radii, gap)
    if radii.size:
        mx, my = cx.mean(), cy.mean()
        cx, cy = cx - mx, cy - my
    extent = float(np.max(np.hypot(cx, cy) + radii)) if radii.size else 0.0
    return cx, cy, extent


def grouped_layout(model: CommonPurposeModel) -> Layout:
    """Positions for everyone in `model`: organisations by sector in the middle, wards around them.

    Staff discs use a wider spacing than residents' (there are far fewer staff, and they are the
    system's main actors), so the middle of the view is not lost among the wards.
    """
    s = model.state
    n = s.n
    x = np.zeros(n)
    y = np.zeros(n)
    labels: list[Label] = []

    # staff: a disc per organisation; organisations of a sector packed together; sectors in a ring
    staff = np.flatnonzero(s.staff)
    n_org = len(model.org_names)
    org_members: dict[int, np.ndarray] = {}
    if staff.size:
        orgs = s.org[staff]
        order = np.argsort(orgs, kind="stable")
        sorted_staff, sorted_orgs = staff[order], orgs[order]
        cuts = np.flatnonzero(np.diff(sorted_orgs)) + 1
        for members in np.split(sorted_staff, cuts):
            org_members[int(s.org[members[0]])] = members
    sectors: dict[int, list[int]] = {}
    for o in org_members:
        sector = int(model.org_sector[o]) if 0 <= o < n_org else -1
        sectors.setdefault(sector, []).append(o)
    sector_ids = sorted(sectors)
    # each sector is one disc filled along a spiral in organisation order, a free slot between
    # organisations: colleagues sit on one stretch of the spiral, sectors stay compact
    sector_points = []
    for sector in sector_ids:
        members = [org_members[o] for o in sectors[sector]]
        offsets = np.cumsum([0] + [m.size for m in members[:-1]])
        slots = np.concatenate([np.arange(m.size) + offsets[i] + i for i, m in enumerate(members)])
        px, py = spiral(int(slots.max()) + 1, STAFF_SPACING)
        sector_points.append((np.concatenate(members), px[slots], py[slots]))
    extents = np.array([float(np.max(np.hypot(px, py))) + STAFF_SPACING for _, px, py in sector_points])
    names = [_sector_name(model, sector) for sector in sector_ids]
    hub = names.index("pilot") if "pilot" in names and len(names) > 1 else -1
    ring_ids = [i for i in range(len(sector_ids)) if i != hub]
    centres = np.zeros((len(sector_ids), 2))
    inner = extents[hub] if hub >= 0 else 0.0
    if ring_ids:
        rx, ry, _ = _ring(extents[ring_ids], inner + GAP * 0.5, GAP * 0.8)
        centres[ring_ids, 0], centres[ring_ids, 1] = rx, ry
    core = 0.0
    for i in range(len(sector_ids)):
        members, px, py = sector_points[i]
        sx, sy = centres[i]
        x[members] = sx + px
        y[members] = sy + py
        core = max(core, float(np.hypot(sx, sy)) + extents[i])
        labels.append(Label(float(sx), float(sy - extents[i] - 1.0), _sector_label(names[i]), "sector"))

    # residents: one disc per ward, around the staff
    res = np.flatnonzero(~s.staff)
    wards = len(model.ward_names)
    counts = np.bincount(s.ward[res], minlength=wards) if res.size else np.zeros(wards, int)
    present = np.flatnonzero(counts > 0)
    if present.size:
        w_radii = np.array([disc_radius(int(counts[w])) for w in present])
        if staff.size == 0 and present.size == 1:
            wx, wy = np.zeros(1), np.zeros(1)
        elif present.size == 1:
            wx, wy = np.array([core + GAP + w_radii[0]]), np.zeros(1)
        else:
            wx, wy, _ = _ring(w_radii, core + GAP, GAP * 1.5)
        for j, w in enumerate(present):
            members = res[s.ward[res] == w]
            px, py = spiral(members.size)
            x[members] = wx[j] + px
            y[members] = wy[j] + py
            # the label sits just outside the disc, away from the middle
            norm = float(np.hypot(wx[j], wy[j]))
            ux, uy = (wx[j] / norm, wy[j] / norm) if norm > 0 else (0.0, -1.0)
            reach = w_radii[j] + 2.2
            labels.append(Label(float(wx[j] + ux * reach), float(wy[j] + uy * reach), model.ward_labels[w], "ward"))
    return Layout(x=x, y=y, labels=labels, spare_centre=(0.0, 0.0), spare_radius=core)


def _sector_name(model: CommonPurposeModel, sector: int) -> str:
    if sector < 0:
        return "no organisation"
    return model.sector_names[sector] if sector < len(model.sector_names) else f"sector {sector}"


SECTOR_LABELS = {
    "pilot": "Pilot team",
    "council": "Councils",
    "health": "Health",
    "housing": "Housing",
    "vcse": "Voluntary sector",
    "business": "Business",
}


def _sector_label(name: str) -> str:
    return SECTOR_LABELS.get(name, name.replace("_", " ").capitalize())


def extend_layout(layout: Layout, model: CommonPurposeModel) -> Layout:
    """Positions for people added since the layout was made; nobody already placed moves.

    New people are grouped by organisation and each new organisation is placed as a disc just
    outside everything drawn so far (the view zooms out a little to fit it).
    """
    n = model.state.n
    if n <= layout.n:
        return layout
    s = model.state
    new = np.arange(layout.n, n)
    x = np.concatenate([layout.x, np.zeros(new.size)])
    y = np.concatenate([layout.y, np.zeros(new.size)])
    labels = list(layout.labels)
    used = layout.spare_used
    extent = float(max(np.abs(layout.x).max(initial=1.0), np.abs(layout.y).max(initial=1.0)))
    for o in np.unique(s.org[new]):
        members = new[s.org[new] == o]
        r = disc_radius(members.size, STAFF_SPACING)
        # just outside everything drawn so far, one corner after another
        angle = -np.pi / 4 + used * 0.7
        reach = extent + r + GAP * 0.5
        cx, cy = reach * np.cos(angle), reach * np.sin(angle)
        px, py = sunflower(members.size, STAFF_SPACING)
        x[members] = cx + px
        y[members] = cy + py
        name = model.org_names[o] if 0 <= o < len(model.org_names) else "new people"
        labels.append(Label(cx, cy - r - 1.6, name, "sector"))
        used += 1
    return Layout(
        x=x, y=y, labels=labels, spare_centre=layout.spare_centre, spare_radius=layout.spare_radius, spare_used=used
    )


def normalised(layout: Layout, size: int = 30000) -> tuple[np.ndarray, np.ndarray, float, float, float]:
    """Positions as integers in [0, size] (for the browser) with the scale and offsets used."""
    xmin, xmax = float(layout.x.min(initial=0.0)), float(layout.x.max(initial=1.0))
    ymin, ymax = float(layout.y.min(initial=0.0)), float(layout.y.max(initial=1.0))
    pad = 2.0
    span = max(xmax - xmin, ymax - ymin, 1e-9) + 2 * pad
    scale = size / span
    ox = xmin - pad - (span - (xmax - xmin) - 2 * pad) / 2
    oy = ymin - pad - (span - (ymax - ymin) - 2 * pad) / 2
    qx = np.clip(np.rint((layout.x - ox) * scale), 0, size).astype(np.uint16)
    qy = np.clip(np.rint((layout.y - oy) * scale), 0, size).astype(np.uint16)
    return qx, qy, scale, ox, oy


# --- the aggregated view --------------------------------------------------------------------------


@dataclass
class Blocks:
    """People grouped by role and ward: codes, sizes, stage counts, and ties between blocks."""

    role: np.ndarray  # per block: role code
    ward: np.ndarray  # per block: ward code
    count: np.ndarray  # per block: people
    stages: np.ndarray  # (blocks, 6): people per stage
    flow_a: np.ndarray  # per flow: block index
    flow_b: np.ndarray
    flow_ties: np.ndarray  # per flow: ties between the two blocks (or within, when a == b)


def block_codes(model: CommonPurposeModel) -> np.ndarray:
    """Each person's block: role code * wards + ward code."""
    s = model.state
    return s.role.astype(np.int64) * len(model.ward_names) + s.ward.astype(np.int64)


def blocks(model: CommonPurposeModel, with_flows: bool = True) -> Blocks:
    """The role-by-ward blocks now, and (optionally) the ties between them."""
    wards = len(model.ward_names)
    k = len(model.role_names) * wards
    code = block_codes(model)
    count = np.bincount(code, minlength=k)
    stages = np.zeros((k, 6), dtype=np.int64)
    np.add.at(stages, (code, model.stage.astype(np.int64)), 1)
    keep = np.flatnonzero(count > 0)
    remap = np.full(k, -1)
    remap[keep] = np.arange(keep.size)
    fa = fb = ft = np.zeros(0, dtype=np.int64)
    if with_flows:
        t = model.ties
        live = t.alive
        a = remap[code[t.eu[live]]]
        b = remap[code[t.ev[live]]]
        lo, hi = np.minimum(a, b), np.maximum(a, b)
        pair = lo * keep.size + hi
        uniq, ties = np.unique(pair, return_counts=True)
        fa, fb, ft = uniq // keep.size, uniq % keep.size, ties
    return Blocks(
        role=keep // wards,
        ward=keep % wards,
        count=count[keep],
        stages=stages[keep],
        flow_a=fa,
        flow_b=fb,
        flow_ties=ft,
    )
