"""Compiled loops for the weekly step: one pass over everyone where numpy would take a dozen.

Each kernel does, person by person, exactly the arithmetic the numpy version it replaced did on
whole arrays, in the same order and at the same precision (float32 where the neighbour sums are
float32), so the figures are the same bit for bit; only the passes over memory and the
Python-level calls are fewer. Random numbers are still drawn with the model's generator, as
whole arrays, outside the kernels: the stream of draws does not change.

Kernels are compiled by numba on first use and cached on disk (`cache=True`), so only the first
run on a machine pays for compiling. No `fastmath`: IEEE arithmetic, no reordering, no fused
multiply-adds. numpy's own `exp` and powers stay in numpy (its rounding may differ from libm's).

Writing one that is fast (each of these cost a factor of 2 to 10 when missed, at 10k people):
- numpy's error model (`_JIT`): Python's checks each division for zero, which stops SIMD;
- contiguous inputs: read a column of the (n, k) neighbour sums with `column` first, and spread
  per-ward or per-organisation tables over people in numpy (`by_ward`) before the loop, since a
  strided read or a gather inside the loop stops SIMD;
- no branches that store conditionally: `x = a if c else b` and unconditional stores;
- counts in local variables, not array elements (which stay in memory, one add at a time).

Example:
    >>> import numpy as np
    >>> x = np.array([-0.5, 0.25, 2.0])
    >>> clip01_inplace(x)
    >>> x.tolist()
    [0.0, 0.25, 1.0]
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numba
import numpy as np

_F32 = np.float32

#: Compile options for every kernel: numpy's error model (a division by zero gives inf or nan, as
#: in numpy, instead of raising), which also lets the loops use SIMD.
_JIT = {"error_model": "numpy"}


def njit(**options: Any) -> Callable[[Callable], Callable]:
    """`numba.njit` with a cache on disk, or without one where nowhere is writable.

    numba caches beside the module (`abm/__pycache__`) or else in the user's cache directory;
    when neither can be written (a read-only install and home), it refuses `cache=True` at import
    time. The kernels then compile in each process instead of failing to import.
    """

    def decorate(fn: Callable) -> Callable:
        try:
            return numba.njit(cache=True, **options)(fn)
        except RuntimeError:  # "cannot cache function ...: no locator available"
            return numba.njit(**options)(fn)

    return decorate


@njit(**_JIT, inline="always")
def _maximum(a: float, b: float) -> float:
    """`np.maximum(a, b)` for two numbers: NaN if either is, else the larger (b of two equal).

    (Python's `max` keeps `a` when `b` is NaN, and the first of two equal zeros.)
    """
    return a if (a > b) | (a != a) else b


@njit(**_JIT, inline="always")
def _minimum(a: float, b: float) -> float:
    """`np.minimum(a, b)` for two numbers: NaN if either is, else the smaller (b of two equal)."""
    return a if (a < b) | (a != a) else b


@njit(**_JIT, inline="always")
def _clip01(x: float) -> float:
    """`np.clip(x, 0, 1) + 0.0` for one number (adding 0.0 turns -0.0 into 0.0)."""
    return _minimum(_maximum(x, 0.0), 1.0) + 0.0


@njit(**_JIT)
def clip01_inplace(x: np.ndarray) -> None:
    """Clip `x` to [0, 1] in place."""
    for i in range(x.size):
        x[i] = _clip01(x[i])


@njit(**_JIT)
def column(nb: np.ndarray, k: int, col: int, rows: np.ndarray | None = None) -> np.ndarray:
    """Column `col` of the flattened (n, k) block `nb` (at `rows`, if given) as a contiguous array.

    Kernels read their columns of the neighbour sums this way first: a loop that reads every
    k-th number cannot use SIMD, the loop over contiguous columns that follows can.
    """
    if rows is None:
        n = nb.size // k
        out = np.empty(n, dtype=nb.dtype)
        for i in range(n):
            out[i] = nb[i * k + col]
    else:
        out = np.empty(rows.size, dtype=nb.dtype)
        for j in range(rows.size):
            out[j] = nb[rows[j] * k + col]
    return out


@njit(**_JIT)
def averaging(
    nb: np.ndarray,
    k: int,
    weight_col: int,
    vision_col: int,
    value_col: int,
    self_weight: float,
    influence: np.ndarray,
    gate: np.ndarray,
    susceptibility: np.ndarray,
    decline: float,
    rate: float,
    aware_threshold: float,
    vision: np.ndarray,
    value: np.ndarray,
    aware: np.ndarray,
) -> None:
    """The averaging rule (see `influence.social_influence`), then the clip and awareness.

    `nb` is the (n, k) block of neighbour sums, flattened. Value moves first, gated by last
    week's vision; a person with no weight (no ties and no self weight) does not move.
    """
    weights, to_values, to_visions = column(nb, k, weight_col), column(nb, k, value_col), column(nb, k, vision_col)
    for i in range(vision.size):
        own = self_weight * influence[i]
        w = np.float64(weights[i])
        to_value = np.float64(to_values[i])
        to_vision = np.float64(to_visions[i])
        v, x = vision[i], value[i]
        if self_weight != 0.0:
            w = w + own
            to_value = to_value + own * x
            to_vision = to_vision + own * v
        has = w > 0.0
        safe = w if has else 1.0
        g = gate[i]
        d = susceptibility[i]
        gap = to_value / safe
        gap = gap - x
        gap = gap if has else 0.0
        up = _maximum(gap, 0.0) * g
        up = up * v
        down = _minimum(gap, 0.0) * decline
        down = down * d
        up = up + down
        x = x + up * rate
        gap = to_vision / safe
        gap = gap - v
        gap = gap if has else 0.0
        up = _maximum(gap, 0.0) * g
        down = _minimum(gap, 0.0) * decline
        down = down * d
        up = up + down
        v = _clip01(v + up * rate)
        vision[i] = v
        value[i] = _clip01(x)
        aware[i] = aware[i] | (v >= aware_threshold)


@njit(**_JIT)
def feedback(
    nb: np.ndarray,
    k: int,
    weight_col: int,
    acting_col: int,
    action: float,
    results: np.ndarray,
    gate: np.ndarray,
    doing: float,
    forgetting: float,
    acting: np.ndarray,
    vision: np.ndarray,
    value: np.ndarray,
) -> None:
    """Feedback from visible action and results, doing, and fading (see `influence.feedback`).

    `results` is per person (their ward's, times the `results` weight). The acting share of one's ties is
    float32, as the sums are, and `action` multiplies it in float32 (as numpy does a Python float
    and a float32 array).
    """
    action32 = _F32(action)
    half_forgetting = 0.5 * forgetting
    weights, acting_sums = column(nb, k, weight_col), column(nb, k, acting_col)
    for i in range(vision.size):
        w = weights[i]
        share = acting_sums[i] / (w if w > 0 else _F32(1.0))
        visible = share if w > 0 else _F32(0.0)
        pull = np.float64(action32 * visible) + results[i]
        pull = pull * vision[i]
        pull = pull * gate[i]
        x = value[i]
        pull = pull * (1.0 - x)
        x = x + pull
        a = 1.0 if acting[i] else 0.0
        room = (1.0 - x) * a
        x = x + room * doing
        idle = 1.0 - a
        fade = x * forgetting
        x = x - fade * idle
        fade = vision[i] * half_forgetting
        vision[i] = vision[i] - fade * idle
        value[i] = _clip01(x)


@njit(**_JIT)
def acting_probability(
    skills: np.ndarray,
    vision: np.ndarray,
    value: np.ndarray,
    threshold: float,
    width: float,
    structure: np.ndarray,
    routine: np.ndarray,
    habit: float,
    acting: np.ndarray,
) -> np.ndarray:
    """This week's chance of acting for each person (see `acting.acting_probability`).

    `structure` is each person's p_structure and `routine` their 1 - p_routine (spread from the
    per-organisation and per-ward tables beforehand: a gather per person would stop SIMD).
    """
    out = np.empty(vision.size)
    stay = 1.0 - habit
    for i in range(vision.size):
        x = skills[i] * 0.5
        x = x + 0.5
        x = x * (vision[i] * value[i])
        x = x - threshold
        x = _clip01(x / width)
        p = x * x
        p = p * (x * -2.0 + 3.0)  # smoothstep: x^2 (3 - 2x)
        p = p * structure[i]
        p = 1.0 - (1.0 - p) * routine[i]
        q = 1.0 - p
        if habit != 0.0 and p > 0.0 and acting[i]:
            q = q * stay
        out[i] = 1.0 - q
    return out


@njit(**_JIT)
def ladder(
    vision: np.ndarray,
    value: np.ndarray,
    acting: np.ndarray,
    aware: np.ndarray,
    sustain: np.ndarray,
    vision_threshold: float,
    value_threshold: float,
    sustain_weeks: float,
    sustain_level: float,
    week: int,
    first_subscribed: np.ndarray,
    first_valued: np.ndarray,
    first_acting: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sustained commitment, stage codes and first-passage weeks (see `acting.update_ladder`).

    Returns the stage codes (int8), the mask of common purpose, and the counts the record needs:
    subscribed, both (vision and value), held (both and acting), acting, common, subscribed and
    acting, aware, and aware but neither subscribed nor acting.
    """
    n = vision.size
    stage = np.empty(n, dtype=np.int8)
    common = np.empty(n, dtype=np.bool_)
    c0 = c1 = c2 = c3 = c4 = c5 = c6 = c7 = 0  # local counters: sums kept in registers
    for i in range(n):  # branch-free (selects and unconditional stores), so it can use SIMD
        sub = vision[i] >= vision_threshold
        val = value[i] >= value_threshold
        both = sub & val
        act = acting[i]
        aw = aware[i]
        held = both & act
        sustained = sustain[i] + ((1.0 if held else 0.0) - sustain[i]) / sustain_weeks
        sustain[i] = sustained
        com = held & (sustained >= sustain_level)
        code = 2 if sub else (1 if aw else 0)
        code = 3 if both else code
        code = 4 if act else code
        stage[i] = 5 if com else code
        common[i] = com
        c0 += sub
        c1 += both
        c2 += held
        c3 += act
        c4 += com
        c5 += sub & act
        c6 += aw
        c7 += aw & (not (sub | act))
        f = first_subscribed[i]
        first_subscribed[i] = week if (sub & (f < 0)) else f
        f = first_valued[i]
        first_valued[i] = week if (val & (f < 0)) else f
        f = first_acting[i]
        first_acting[i] = week if (act & (f < 0)) else f
    counts = np.array([c0, c1, c2, c3, c4, c5, c6, c7], dtype=np.int64)
    return stage, common, counts


@njit(**_JIT)
def class_moves(
    saturation: np.ndarray,
    resident_ties: np.ndarray,
    acting_resident_ties: np.ndarray,
    culture: np.ndarray,
    national_culture: float,
    culture_weight: float,
    professional_effect: float,
    peer_effect: float,
    protection: float,
    uptake_inactive: np.ndarray,
    uptake_fairly: np.ndarray,
    relapse_fairly: float,
    relapse_active: float,
    r: np.ndarray,
    pa_class: np.ndarray,
) -> None:
    """One week of class moves for residents (see `residents.move_classes`), `pa_class` in place.

    Per resident: `saturation` is exp(-trust-weighted acting professionals) (float32, numpy's exp),
    `resident_ties` and `acting_resident_ties` their trust-weighted resident ties and acting ones
    (float32 sums), `uptake_inactive` and `uptake_fairly` their ward's baseline uptake from each
    class, and `r` one uniform draw. Float32 products are kept in float32, as numpy kept them.
    """
    effect32 = _F32(professional_effect)
    peer32 = _F32(peer_effect)
    protection32 = _F32(protection)
    for j in range(pa_class.size):
        pro = _F32(1.0) - saturation[j]
        ties = resident_ties[j]
        peers = acting_resident_ties[j] / _maximum(ties, _F32(1e-12))
        peers = peers if ties > 0 else _F32(0.0)
        uplift = culture[j] * national_culture
        uplift = 1.0 - (1.0 - uplift) * culture_weight  # the culture gate
        uplift = uplift * (pro * effect32)
        uplift = uplift * (peers * peer32 + _F32(1.0))
        c = pa_class[j]
        base = uptake_inactive[j] if c == 0 else (uptake_fairly[j] if c == 1 else 0.0)
        up = (base + uplift) * (1.0 if c < 2 else 0.0)  # the active cannot move up
        relapse = 0.0 if c == 0 else (relapse_fairly if c == 1 else relapse_active)
        down = relapse * (_F32(1.0) - pro * protection32)
        rise = r[j] < up
        fall = r[j] < up + down
        pa_class[j] = c + rise - (fall != rise)  # fall xor rise: down, not up


@njit(**_JIT)
def fill_sums_block(
    block: np.ndarray,
    vision_col: int,
    value_col: int,
    acting_cols: tuple[int, int, int],
    influence: np.ndarray,
    vision: np.ndarray,
    value: np.ndarray,
    acting: np.ndarray,
    acting_factors: np.ndarray,
) -> None:
    """This week's columns of the (n, k) float32 block the neighbour sums are taken of.

    Vision and value weighted by influence (products in float64, rounded to float32), and the
    three acting columns: each person's float32 factor (`acting_factors`, one row per column)
    where they act, else 0.
    """
    for i in range(vision.size):
        w = influence[i]
        block[i, vision_col] = w * vision[i]
        block[i, value_col] = w * value[i]
        a = _F32(1.0) if acting[i] else _F32(0.0)
        for r in range(3):
            block[i, acting_cols[r]] = acting_factors[r, i] * a


@njit(**_JIT)
def group_sums(
    rows: np.ndarray,
    vision: np.ndarray,
    value: np.ndarray,
    acting: np.ndarray,
    common: np.ndarray,
    pa_class: np.ndarray,
    org: np.ndarray,
    org_structure: np.ndarray,
    org_embedded: np.ndarray,
    sums: np.ndarray,
) -> None:
    """Add each person's figures to the rows of `sums` of the groups they belong to, in float32.

    `rows` is (kinds, people): each person's row in `sums` for each group kind, -1 for none.
    The columns are vision, value, acting, common purpose, inactive (class 0), and their
    organisation's structural alignment and embedded processes (float32; none for residents).
    Person after person, so each group adds its members in increasing order: the same sums, bit
    for bit, as the membership matrix times the (people x columns) float32 block.
    """
    for j in range(vision.size):
        w0 = _F32(vision[j])
        w1 = _F32(value[j])
        w2 = _F32(1.0) if acting[j] else _F32(0.0)
        w3 = _F32(1.0) if common[j] else _F32(0.0)
        w4 = _F32(1.0) if pa_class[j] == 0 else _F32(0.0)
        o = org[j]
        has_org = o >= 0
        for k in range(rows.shape[0]):
            g = rows[k, j]
            if g >= 0:
                sums[g, 0] += w0
                sums[g, 1] += w1
                sums[g, 2] += w2
                sums[g, 3] += w3
                sums[g, 4] += w4
                if has_org:
                    sums[g, 5] += org_structure[o]
                    sums[g, 6] += org_embedded[o]


@njit(**_JIT)
def insight_shifts_culture(
    insight: np.ndarray, ward_insight: np.ndarray, shift: float, decay: float, culture: np.ndarray
) -> None:
    """Insight held by a person or their ward (`ward_insight`: per person) narrows their cultural
    misalignment, culture += shift x max(insight, ward's) x (1 - culture); then insight fades."""
    keep = 1.0 - decay
    for i in range(culture.size):
        q = _maximum(insight[i], ward_insight[i])
        q = q * shift
        q = q * (1.0 - culture[i])
        culture[i] = culture[i] + q
        insight[i] = insight[i] * keep


@njit(**_JIT)
def csr_product8(indptr: np.ndarray, indices: np.ndarray, data: np.ndarray, x: np.ndarray, out: np.ndarray) -> None:
    """out = A @ x for a CSR matrix A and a flattened (n, 8) float32 block x (out flattened too).

    Row by row, each row's terms added in the order of its (sorted) columns into eight running
    sums kept in registers: for a symmetric matrix, the same sums in the same order as scipy's
    column-by-column `csc_matvecs`, bit for bit, and a little faster.
    """
    for i in range(indptr.size - 1):
        s0 = s1 = s2 = s3 = s4 = s5 = s6 = s7 = _F32(0.0)
        for p in range(indptr[i], indptr[i + 1]):
            a = data[p]
            b = indices[p] * 8
            s0 += a * x[b]
            s1 += a * x[b + 1]
            s2 += a * x[b + 2]
            s3 += a * x[b + 3]
            s4 += a * x[b + 4]
            s5 += a * x[b + 5]
            s6 += a * x[b + 6]
            s7 += a * x[b + 7]
        o = i * 8
        out[o] = s0
        out[o + 1] = s1
        out[o + 2] = s2
        out[o + 3] = s3
        out[o + 4] = s4
        out[o + 5] = s5
        out[o + 6] = s6
        out[o + 7] = s7


@njit(**_JIT)
def merge_sorted(
    keys: np.ndarray, ids: np.ndarray, new_keys: np.ndarray, new_ids: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Sorted `new_keys` (with their ids) merged into sorted `keys` (with theirs), in one pass.

    A new key equal to an old one goes first, as `np.insert` at `searchsorted` (left) puts it.
    """
    n, m = keys.size, new_keys.size
    out_keys = np.empty(n + m, dtype=keys.dtype)
    out_ids = np.empty(n + m, dtype=ids.dtype)
    i = j = 0
    for o in range(n + m):
        if j < m and (i >= n or new_keys[j] <= keys[i]):
            out_keys[o], out_ids[o] = new_keys[j], new_ids[j]
            j += 1
        else:
            out_keys[o], out_ids[o] = keys[i], ids[i]
            i += 1
    return out_keys, out_ids


@njit(**_JIT)
def culture_gate(
    culture: np.ndarray,
    national_culture: float,
    base: np.ndarray,
    insight: np.ndarray,
    ward_insight: np.ndarray,
    insight_effect: float,
) -> np.ndarray:
    """How well influence lands on each person (see `activities.culture_gate`).

    base = clip(culture x national culture) (or `base` itself when given, e.g. raised to a power
    by numpy); gate = base + (1 - base) x insight_effect x max(insight, ward's insight).
    """
    given = base.size > 0
    out = np.empty(culture.size)
    for i in range(culture.size):
        b = base[i] if given else _clip01(culture[i] * national_culture)
        q = _maximum(insight[i], ward_insight[i])
        g = (1.0 - b) * insight_effect
        out[i] = g * q + b
    return out


@njit(**_JIT)
def refill_posts(
    leavers: np.ndarray,
    orgs: np.ndarray,
    leg: np.ndarray,
    staff_index: np.ndarray,
    org: np.ndarray,
    size: np.ndarray,
    init_aware: np.ndarray,
    init_vision: np.ndarray,
    init_value: np.ndarray,
    aware_draw: np.ndarray,
    start_noise: np.ndarray,
    skill_mean: np.ndarray,
    skill_noise: np.ndarray,
    vision: np.ndarray,
    value: np.ndarray,
    aware: np.ndarray,
    acting: np.ndarray,
    sustain: np.ndarray,
    insight: np.ndarray,
    skills: np.ndarray,
    first_subscribed: np.ndarray,
    first_valued: np.ndarray,
    first_acting: np.ndarray,
    acted_after: np.ndarray,
    replaced: np.ndarray,
) -> None:
    """Newcomers take over the posts in `leavers` (sorted, distinct): see `turnover._refill`.

    `orgs` and `leg` are each leaver's organisation and its legacy; `size` staff per
    organisation (at least 1). A newcomer is aware with chance max(post's, legacy)
    (`aware_draw`, uniform); starts at the post's vision and value (plus `start_noise`, rows
    vision and value, where they are above 0), lifted towards colleagues' mean by the legacy;
    skills are the role's mean plus `skill_noise`. Colleagues' means are taken before anyone is
    replaced, each organisation's sum in staff order (as `np.bincount` adds).
    """
    n_org = size.size
    sum_vision = np.zeros(n_org)
    sum_value = np.zeros(n_org)
    for i in staff_index:
        o = org[i]
        sum_vision[o] += vision[i]
        sum_value[o] += value[i]
    for j in range(leavers.size):
        p = leavers[j]
        o = orgs[j]
        now_aware = aware_draw[j] < _maximum(init_aware[p], leg[j])
        for row in range(2):
            init = init_vision[p] if row == 0 else init_value[p]
            mean = (sum_vision[o] if row == 0 else sum_value[o]) / size[o]
            start = _clip01(init + start_noise[row, j] * (1.0 if init > 0 else 0.0))
            lifted = start + leg[j] * _maximum(mean - start, 0.0) if now_aware else 0.0
            if row == 0:
                vision[p] = lifted
            else:
                value[p] = lifted
        aware[p] = now_aware
        acting[p] = False
        sustain[p] = 0.0
        insight[p] = 0.0
        skills[p] = _clip01(skill_mean[j] + skill_noise[j])
        first_subscribed[p] = -1
        first_valued[p] = -1
        first_acting[p] = -1
        acted_after[p] = -1
        replaced[p] += 1


@njit(**_JIT)
def incident_ties(
    nodes: np.ndarray,
    mask: np.ndarray,
    indptr: np.ndarray,
    tie_at: np.ndarray,
    side_u: np.ndarray,
    side_v: np.ndarray,
    side_lo: int,
    alive: np.ndarray,
) -> np.ndarray:
    """Ids of the live ties touching `nodes` (sorted; `mask` marks them): see `Ties.incident`.

    The main matrix's ties from the nodes' rows (sorted, each once), then the side ties (ids
    from `side_lo`, in id order) with an end in the mask.
    """
    count = 0
    for node in nodes:
        if node < 0 or node >= indptr.size - 1:
            raise IndexError("node out of range")
        count += indptr[node + 1] - indptr[node]
    found = np.empty(count, dtype=np.int64)
    k = 0
    for node in nodes:
        for q in range(indptr[node], indptr[node + 1]):
            found[k] = tie_at[q]
            k += 1
    found.sort()
    out = np.empty(count + side_u.size, dtype=np.int64)
    m = 0
    for q in range(count):
        t = found[q]
        if (q == 0 or t != found[q - 1]) and alive[t]:
            out[m] = t
            m += 1
    for q in range(side_u.size):
        t = side_lo + q
        if (mask[side_u[q]] or mask[side_v[q]]) and alive[t]:
            out[m] = t
            m += 1
    return out[:m]


@njit(**_JIT)
def find_sorted(keys: np.ndarray, key_tie: np.ndarray, key: np.ndarray, out: np.ndarray) -> None:
    """Where `key[i]` is in the sorted `keys`, `out[i] = max(out[i], its tie id)` (else unchanged).

    With `out` at -1 this gives the tie ids of the keys found, -1 for the others; a second call
    on another part's keys fills in the ties found there (a pair is in one part at most). When
    `key` is sorted (as a week's staged pairs are), each search gallops on from where the last
    one ended: a few nearby reads instead of a binary search over everything.
    """
    n = keys.size
    pos = 0
    for i in range(key.size):
        k = key[i]
        if i > 0 and k < key[i - 1]:  # not sorted here: search from the start
            pos = 0
        lo, hi, step = pos, pos, 1  # gallop: find hi with keys[hi] >= k (or the end)
        while hi < n and keys[hi] < k:
            lo = hi + 1
            hi = lo + step
            step *= 2
        if hi > n:
            hi = n
        while lo < hi:  # then the first position in [lo, hi) not below k
            mid = (lo + hi) >> 1
            if keys[mid] < k:
                lo = mid + 1
            else:
                hi = mid
        pos = lo
        if lo < n and keys[lo] == k and key_tie[lo] > out[i]:
            out[i] = key_tie[lo]


@njit(**_JIT)
def write_trust(
    tie: np.ndarray,
    value: np.ndarray,
    m: int,
    trust: np.ndarray,
    alive: np.ndarray,
    main_pos: np.ndarray,
    main_data: np.ndarray,
    m_main: int,
    side_data: np.ndarray,
) -> None:
    """New trust for ties (ids below `m`; repeats allowed: the last write wins), and the matrices'
    float32 copies (0 for removed ties): the main matrix's two entries per tie, or the side's one."""
    for j in range(tie.size):
        if tie[j] < 0 or tie[j] >= m:
            raise IndexError("tie id out of range")
        trust[tie[j]] = value[j]
    for j in range(tie.size):
        t = tie[j]
        live = np.float32(trust[t] * (1.0 if alive[t] else 0.0))
        if t < m_main:
            main_data[main_pos[0, t]] = live
            main_data[main_pos[1, t]] = live
        else:
            side_data[t - m_main] = live


@njit(**_JIT)
def tie_kinds(
    eu: np.ndarray, ev: np.ndarray, staff: np.ndarray, org: np.ndarray, sector: np.ndarray, codes: np.ndarray
) -> np.ndarray:
    """The kind of each tie (u, v), by the generator's rule (see `network._tie_kind`).

    `codes`: the codes of professional-resident, resident-resident, within-organisation,
    between-organisations and cross-sector ties.
    """
    out = np.empty(eu.size, dtype=np.int8)
    for i in range(eu.size):
        a, b = eu[i], ev[i]
        if staff[a] != staff[b]:
            out[i] = codes[0]
        elif not staff[a]:
            out[i] = codes[1]
        elif org[a] == org[b]:
            out[i] = codes[2]
        elif sector[a] == sector[b]:
            out[i] = codes[3]
        else:
            out[i] = codes[4]
    return out


@njit(**_JIT, inline="always")
def _first_at_least(keys: np.ndarray, key: int) -> int:
    """The first position in sorted `keys` whose key is not below `key` (searchsorted, left)."""
    lo, hi = 0, keys.size
    while lo < hi:
        mid = (lo + hi) >> 1
        if keys[mid] < key:
            lo = mid + 1
        else:
            hi = mid
    return lo


@njit(**_JIT)
def random_neighbours(
    nodes: np.ndarray,
    draw: np.ndarray,
    indptr: np.ndarray,
    tie_at: np.ndarray,
    row_keys: np.ndarray,
    side_lo: int,
    alive: np.ndarray,
    eu: np.ndarray,
    ev: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """One random live neighbour of each node and the tie to them, -1 for none (see
    `Ties.random_neighbour`): entry int(draw x degree) of the node's main row, then side ties.

    `row_keys` (sorted node << 32 | end << 31 | id - side_lo) lists each node's side ties.
    """
    rel_mask = (1 << 31) - 1
    neighbour = np.full(nodes.size, -1, dtype=np.int64)
    tie = np.full(nodes.size, -1, dtype=np.int64)
    for j in range(nodes.size):
        node = nodes[j]
        if node < 0 or node >= indptr.size - 1:
            raise IndexError("node out of range")
        start = indptr[node]
        deg = indptr[node + 1] - start
        side_start = side_deg = 0
        if row_keys.size:
            key = np.int64(node) << 32
            side_start = _first_at_least(row_keys, key)
            side_deg = _first_at_least(row_keys, key + (np.int64(1) << 32)) - side_start
        total = deg + side_deg
        if total == 0:
            continue
        r = np.intp(draw[j] * total)
        t = tie_at[start + r] if r < deg else (row_keys[side_start + r - deg] & rel_mask) + side_lo
        if not alive[t]:
            continue
        tie[j] = t
        neighbour[j] = ev[t] if eu[t] == node else eu[t]
    return neighbour, tie


@njit(**_JIT)
def staged_pairs(
    code: np.ndarray, n_calls: int, n: int, gain: np.ndarray, trust: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The week's distinct pairs from sorted (pair key x n_calls + call) codes (see
    `Ties._pairs_by_call`), self-pairs dropped.

    Returns each pair's key (u x n + v), its two ends, the product of (1 - gain) over its
    distinct calls in call order (what is left of its distance to full trust) and the highest
    trust its calls staged.
    """
    m = code.size
    key = np.empty(m, dtype=np.int64)
    room = np.empty(m)
    best = np.empty(m)
    p = -1
    for q in range(m):
        c = code[q]
        if q > 0 and c == code[q - 1]:  # each (pair, call) once
            continue
        k = c // n_calls
        call = c - k * n_calls
        if p < 0 or k != key[p]:
            p += 1
            key[p] = k
            room[p] = 1.0 - gain[call]
            best[p] = trust[call]
        else:
            room[p] = room[p] * (1.0 - gain[call])
            best[p] = _maximum(best[p], trust[call])
    keep = 0  # drop self-pairs (u == v), keeping the order
    lo = np.empty(p + 1, dtype=np.int64)
    hi = np.empty(p + 1, dtype=np.int64)
    for q in range(p + 1):
        u = key[q] // n
        v = key[q] - u * n
        if u != v:
            key[keep], room[keep], best[keep], lo[keep], hi[keep] = key[q], room[q], best[q], u, v
            keep += 1
    return key[:keep], lo[:keep], hi[:keep], room[:keep], best[:keep]


@njit(**_JIT)
def strengthened(
    existing: np.ndarray, room: np.ndarray, trust: np.ndarray, alive: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The live ties among `existing` (-1: none) that gain trust (room below 1), and their new
    trust 1 - room x (1 - trust)."""
    tie = np.empty(existing.size, dtype=np.int64)
    value = np.empty(existing.size)
    k = 0
    for i in range(existing.size):
        t = existing[i]
        if t >= 0 and room[i] < 1.0 and alive[t]:
            tie[k] = t
            value[k] = 1.0 - room[i] * (1.0 - trust[t])
            k += 1
    return tie[:k], value[:k]


@njit(**_JIT)
def shift_structure(orgs: np.ndarray, gain: np.ndarray, cap: float, structure: np.ndarray) -> None:
    """Move organisations' structural alignment towards the national cap `cap`, never past it.

    Each organisation's gains (`gain[j]` for `orgs[j]`; negative orgs move nothing) are summed in
    order, times its room before any, max(cap - structure, 0); then every organisation is held
    at or below max(cap, 0).
    """
    total = np.zeros(structure.size)
    for j in range(orgs.size):
        o = orgs[j]
        if o >= 0:
            total[o] += gain[j]
    ceiling = _maximum(cap, 0.0)
    for o in range(structure.size):
        x = structure[o] + total[o] * _maximum(cap - structure[o], 0.0)
        structure[o] = _minimum(x, ceiling)
