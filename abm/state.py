"""Model state as arrays: one numpy array per attribute, ties in scipy.sparse matrices.

`Ties` keeps every tie once (u < v) with its trust and kind, and symmetric matrices whose
entries are trust: a main CSR matrix, and a small side matrix of the ties added since the last
merge (edge lists, appended to in O(new ties)), merged in when it grows past a few per cent.
New ties are staged during the week and applied together at the week's flush (one look-up and
one write for all of them). Trust changes are written straight into the matrices (each tie
knows its positions); removed ties are zeroed and compacted at the next merge. So engagement
and turnover cost O(changed ties) per step, not a rebuild. The matrices hold float32 (half the
memory traffic of the neighbour sums); tie arrays keep float64.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, NamedTuple

import numpy as np
import scipy.sparse as sp
from scipy.sparse import _sparsetools

try:  # the ufunc behind np.clip, without np.clip's Python wrapper
    from numpy._core.umath import clip as _clip
except ImportError:  # pragma: no cover - numpy's private layout changed
    _clip = np.clip

from abm import kernels
from abm.config import Config
from abm.network import Population, _tie_kind

if TYPE_CHECKING:
    from abm.model import CommonPurposeModel


class _Part:
    """The main matrix: a symmetric CSR matrix over the ties with ids 0..m-1, with maps both ways.

    `keys` (sorted u * n + v, u < v) with their tie ids `key_tie` find ties by their two ends.
    """

    def __init__(self, ties: Ties, m: int):
        n = ties.n
        eu, ev = ties.eu[:m], ties.ev[:m]
        rows = np.concatenate([eu, ev])
        cols = np.concatenate([ev, eu])
        indptr = np.empty(n + 1, dtype=np.int32)
        indices = np.empty(2 * m, dtype=np.int32)
        slot = np.empty(2 * m, dtype=np.intp)  # intp: fancy indexing with other integer types is slower
        # linear-time counting sort into rows, then columns sorted within each row, carrying slots
        # (slot s < m is tie s seen from eu, s >= m the same tie s - m seen from ev)
        order = np.arange(2 * m, dtype=slot.dtype)
        _sparsetools.coo_tocsr(n, n, 2 * m, rows, cols, order, indptr, indices, slot)
        # columns sorted within rows make row*n+col globally sorted: lookups need no argsort
        _sparsetools.csr_sort_indices(n, indptr, indices, slot)
        self.n = n
        # tie id -> its two CSR positions (row 0 from eu, row 1 from ev): the inverse of slot
        self.pos = np.empty(2 * m, dtype=slot.dtype)
        self.pos[slot] = order
        self.pos = self.pos.reshape(2, m)
        lower = slot >= m  # entries seen from ev, the tie's upper end (below the diagonal)
        self.tie_at = slot  # CSR position -> tie id: slot, less m where it counts the ev side (in place)
        np.subtract(slot, m, out=slot, where=lower)
        # each tie once (its u < v entry), in CSR order: row * n + column, already sorted
        upper = ~lower  # (half the keys of every entry: a binary search touches less memory)
        self.keys = np.repeat(np.arange(n, dtype=np.int64), np.diff(indptr))[upper]  # rows in order
        self.keys *= n
        self.keys += indices[upper]
        self.key_tie = self.tie_at[upper]
        live = (ties.trust[:m] * ties.alive[:m]).astype(np.float32)
        # the CSR arrays are kept bare: a scipy matrix costs checks at every build (see `A`)
        self.data, self.indices, self.indptr = live[self.tie_at], indices, indptr

    @property
    def A(self) -> sp.csr_matrix:
        """The matrix as scipy's CSR, sharing this part's arrays (for products other than float32 blocks)."""
        return sp.csr_matrix((self.data, self.indices, self.indptr), shape=(self.n, self.n), copy=False)

    def add_product(self, x: np.ndarray, out: np.ndarray) -> None:
        """out += self.A @ x for C-ordered float32 (n, k) blocks, accumulated straight into `out`.

        (No temporary block: sparsetools adds each row's products to what `out` holds.) The matrix
        is symmetric, so its CSR arrays are also its CSC arrays: it is multiplied column by
        column, which is about a fifth faster here (it scatters each person's columns instead of
        gathering them) and, rows being sorted, adds every row's terms in the same order: the
        same sums.
        """
        n, k = self.n, x.shape[1]
        _sparsetools.csc_matvecs(n, n, k, self.indptr, self.indices, self.data, x.ravel(), out.ravel())


#: `_Side.row_keys`: the bit marking a tie's v end, and the bits of its id - lo
_V_END = 1 << 31
_REL = _V_END - 1


class _Side:
    """The side matrix: ties with ids lo, lo + 1, ... added since the last merge, kept as edge lists.

    Each tie is one entry in the `ends` arrays (its two ends u < v) and one trust in `data`; a week's
    new ties are appended, which costs O(new ties), not O(people) as building row pointers would.
    The product adds every tie's u-row term (u, v), then every tie's v-row term (v, u), each in id
    order: each person's terms in the order a CSR matrix built from (u, v) then (v, u) entries
    adds them (the same sums). `keys` (sorted u * n + v) with `key_tie` find ties by their ends;
    `row_keys` (sorted person << 32 | end << 31 | id - lo, end 0 for u and 1 for v) list each
    person's side ties in that order, for draws of a random neighbour.
    """

    def __init__(self, n: int, lo: int):
        self.n, self.lo, self.m = n, lo, 0
        self.ends = np.empty((2, 0), dtype=np.int32)
        self.data = np.empty(0, dtype=np.float32)
        self.keys = np.empty(0, dtype=np.int64)
        self.key_tie = np.empty(0, dtype=np.intp)
        self.row_keys = np.empty(0, dtype=np.int64)

    def append(self, u: np.ndarray, v: np.ndarray, trust: np.ndarray, key: np.ndarray) -> None:
        """Add ties lo + m, lo + m + 1, ... with ends u < v, their trust and their sorted keys u * n + v."""
        m, k = self.m, u.size
        if m + k > self.data.size:  # room grows geometrically: appending costs O(added)
            cap = max(m + k, int(self.data.size * Ties.GROWTH) + 256)
            ends, data = np.empty((2, cap), dtype=np.int32), np.empty(cap, dtype=np.float32)
            ends[:, :m], data[:m] = self.ends[:, :m], self.data[:m]
            self.ends, self.data = ends, data
        self.ends[0, m : m + k], self.ends[1, m : m + k] = u, v
        self.data[m : m + k] = trust
        rel = np.arange(m, m + k)
        self.keys, self.key_tie = kernels.merge_sorted(self.keys, self.key_tie, key, rel + self.lo)
        new = np.sort(np.concatenate([(u.astype(np.int64) << 32) | rel, (v.astype(np.int64) << 32) | (rel | _V_END)]))
        self.row_keys, _ = kernels.merge_sorted(self.row_keys, self.row_keys, new, new)  # (keys are distinct)
        self.m = m + k

    @property
    def A(self) -> sp.csr_matrix:
        """The side matrix as scipy's CSR (a copy; for products other than float32 blocks)."""
        u, v, w = self.ends[0, : self.m], self.ends[1, : self.m], self.data[: self.m]
        rows, cols = np.concatenate([u, v]), np.concatenate([v, u])
        return sp.coo_matrix((np.concatenate([w, w]), (rows, cols)), shape=(self.n, self.n)).tocsr()

    def add_product(self, x: np.ndarray, out: np.ndarray) -> None:
        """out += self.A @ x for C-ordered float32 (n, k) blocks (see the class for the order)."""
        m, k, x, out = self.m, x.shape[1], x.ravel(), out.ravel()
        u, v, w = self.ends[0, :m], self.ends[1, :m], self.data[:m]
        _sparsetools.coo_matmat_dense(m, k, u, v, w, x, out)
        _sparsetools.coo_matmat_dense(m, k, v, u, w, x, out)

    def rows(self, nodes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Where each node's run of `row_keys` starts, and its length (the node's side ties)."""
        key = nodes.astype(np.int64) << 32
        start = self.row_keys.searchsorted(key)
        return start, self.row_keys.searchsorted(key + (1 << 32)) - start

    def nth(self, start: np.ndarray, j: np.ndarray) -> np.ndarray:
        """Ids of the ties at `start` + j in `row_keys` (see `rows`)."""
        return (self.row_keys[start + j] & _REL) + self.lo


def sorted_unique(x: np.ndarray) -> np.ndarray:
    """`np.unique(x)` for a 1-d array: a sort, then each value that differs from the one before.

    numpy's `np.unique` costs about 10 us even for a few hundred values (its Python-level
    dispatch); this is several times faster on the small arrays a week's activities produce.
    """
    x = np.sort(x)
    if x.size > 1:
        x = x[np.concatenate(([True], x[1:] != x[:-1]))]
    return x


class Ties:
    """Undirected weighted ties with O(1) trust updates and amortised additions and removals.

    Ties live in two bands of ids: [0, m_main) in the main matrix, [m_main, m) in the side
    matrix. `add` stages new ties, and `work_on` trust gains on existing ones, until the next
    `flush` (at the step's neighbour sums), so a week's new ties start carrying influence
    together, at the next synchronous update; until then `find`, `random_neighbour` and
    `incident` do not see them.

    Example:
        >>> t = Ties(4, np.array([0]), np.array([1]), np.array([0.5]), np.zeros(1, np.int8))
        >>> t.add(np.array([2, 3]), np.array([1, 2]), 0.3, np.zeros(2, np.int8))
        >>> int(t.find(np.array([1]), np.array([2]))[0]), t.flush(), t.count
        (-1, 2, 3)
    """

    #: Merge everything into the main matrix when newer ties exceed this share of it. The merge
    #: schedule sets the order of each person's entries, which `random_neighbour` draws from:
    #: changing it changes which neighbour a given draw picks (outputs change, not their statistics).
    MERGE_SHARE = 0.15

    #: Tie arrays grow by this factor when full (additions cost O(added), not O(ties)).
    GROWTH = 1.5

    def __init__(
        self,
        n: int,
        eu: np.ndarray,
        ev: np.ndarray,
        trust: np.ndarray,
        kind: np.ndarray,
        kind_rule: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None,
    ):
        self.n = n
        #: gives the kind of new ties staged without one (see `add`)
        self.kind_rule = kind_rule
        #: (u, v, trust of a new tie, kind or None, gain for an existing tie) per staged call
        self._staged: list[tuple[np.ndarray, np.ndarray, float | np.ndarray, np.ndarray | None, float]] = []
        self.m = int(np.size(eu))  # ties stored (live or removed); the arrays below have spare room
        self._eu = np.asarray(eu, dtype=np.int32).copy()
        self._ev = np.asarray(ev, dtype=np.int32).copy()
        self._trust = np.asarray(trust, dtype=np.float64).copy()
        self._kind = np.asarray(kind, dtype=np.int8).copy()
        self._alive = np.ones(self.m, dtype=bool)
        self._dead = 0  # removed ties not yet compacted
        self.merges = 0
        self._rebuild()

    # --- storage: views of the first m entries of arrays with spare room ---------------------
    @property
    def eu(self) -> np.ndarray:
        """Lower end of each tie (eu < ev)."""
        return self._eu[: self.m]

    @property
    def ev(self) -> np.ndarray:
        """Upper end of each tie."""
        return self._ev[: self.m]

    @property
    def trust(self) -> np.ndarray:
        """Trust of each tie (writes through `set_trust`, which keeps the matrices in step)."""
        return self._trust[: self.m]

    @property
    def kind(self) -> np.ndarray:
        """Kind of each tie (codes of `abm.network.TIE_KINDS`)."""
        return self._kind[: self.m]

    @property
    def alive(self) -> np.ndarray:
        """False for removed ties (kept until the next merge compacts them)."""
        return self._alive[: self.m]

    def _reserve(self, extra: int) -> None:
        """Room for `extra` more ties (the arrays grow geometrically)."""
        need = self.m + extra
        if need <= self._eu.size:
            return
        cap = max(need, int(self._eu.size * self.GROWTH) + 16)
        for name in ("_eu", "_ev", "_trust", "_kind", "_alive"):
            old = getattr(self, name)
            new = np.empty(cap, dtype=old.dtype)
            new[: self.m] = old[: self.m]
            setattr(self, name, new)

    # --- structure -------------------------------------------------------------------------
    @property
    def count(self) -> int:
        """Number of live ties (staged ones count from the flush that applies them)."""
        return self.m - self._dead

    @property
    def A(self) -> sp.csr_matrix:
        """The main trust matrix (newer ties are in the side matrix or pending)."""
        return self.main.A

    def _rebuild(self) -> None:
        """Compact removed ties and put every live tie in the main matrix."""
        if self._dead:
            keep = self.alive
            self._eu, self._ev = self.eu[keep], self.ev[keep]
            self._trust, self._kind = self.trust[keep], self.kind[keep]
            self.m = self._eu.size
            self._alive = np.ones(self.m, dtype=bool)
            self._dead = 0
        self.m_main = self.m
        self.main = _Part(self, self.m_main)
        self.side: _Side | None = None
        self.merges += 1

    def flush(self) -> int:
        """Apply the staged work (see `add` and `work_on`); returns how many ties were added or revived.

        One look-up for every pair staged this week: existing live ties gain the trust staged for
        them (each call's gain once per tie), and new pairs become ties.
        """
        if not self._staged:
            return 0
        staged, self._staged = self._staged, []
        if self.kind_rule is None and any(b[3] is None for b in staged):
            raise ValueError("ties staged without a kind need Ties.kind_rule")
        by_call = all(b[3] is None and not isinstance(b[2], np.ndarray) for b in staged)
        key, lo, hi, trust, kind, existing = self._pairs_by_call(staged) if by_call else self._pairs(staged)
        if key.size == 0:
            return 0
        if kind is None:  # only pairs that become ties need a kind (most pairs worked on exist)
            kind = np.zeros(key.size, dtype=np.int8)
            new = existing < 0
            if self._dead:
                new[~new] = ~self._alive[existing[~new]]
            kind[new] = self.kind_rule(lo[new], hi[new])
        revived = 0
        if self._dead:  # removed ties come back with the new trust and kind
            dead = (existing >= 0).nonzero()[0]
            dead = dead[~self.alive[existing[dead]]]
            if dead.size:
                tie = existing[dead]
                self.alive[tie] = True
                self._dead -= tie.size
                self.kind[tie] = kind[dead]
                self.set_trust(tie, trust[dead])
                revived = tie.size
        fresh = (existing < 0).nonzero()[0]
        if fresh.size < key.size:
            key, lo, hi, trust, kind = key[fresh], lo[fresh], hi[fresh], trust[fresh], kind[fresh]
        if fresh.size:
            self._reserve(fresh.size)
            new = slice(self.m, self.m + fresh.size)
            self._eu[new], self._ev[new] = lo, hi
            self._trust[new], self._kind[new] = trust, kind
            self._alive[new] = True
            self.m += fresh.size
            if self.m - self.m_main > max(2048, self.MERGE_SHARE * self.m_main):
                self._rebuild()
            else:  # appended to the side (the new keys, sorted, join its sorted ones: no re-sort)
                if self.side is None:
                    self.side = _Side(self.n, self.m_main)
                self.side.append(lo, hi, trust.astype(np.float32), key)
        return int(fresh.size + revived)

    def _keys(self, staged: list) -> np.ndarray:
        u = np.concatenate([b[0] for b in staged]).astype(np.int64, copy=False)
        v = np.concatenate([b[1] for b in staged]).astype(np.int64, copy=False)
        return np.minimum(u, v) * self.n + np.maximum(u, v)

    def _pairs_by_call(self, staged: list) -> tuple[np.ndarray, ...]:
        """The week's distinct pairs when every call staged one trust and no kinds (the model's calls).

        Sorting (pair, call) codes gives each pair once with its calls in order: no per-entry sort
        by trust is needed, a pair's trust being the highest of its calls'. Returns the pairs' keys,
        lower and upper ends, trust, None (kinds come from the rule) and existing tie ids (-1: none),
        after the gains on existing ties are applied; self-pairs are dropped.
        """
        n_calls = len(staged)
        code = self._keys(staged) * n_calls
        code += np.arange(n_calls).repeat([b[0].size for b in staged])
        code.sort()
        gain = np.array([b[4] for b in staged], dtype=np.float64)
        trust = np.array([b[2] for b in staged], dtype=np.float64)
        key, lo, hi, room, trust = kernels.staged_pairs(code, n_calls, self.n, gain, trust)
        existing = self._find_any(key)
        if gain.any():  # each call's gain once per pair, compounding in call order
            self._strengthen(existing, room)
        return key, lo, hi, trust, None, existing

    def _pairs(self, staged: list) -> tuple[np.ndarray, ...]:
        """`_pairs_by_call` for any staged calls: per-entry trust, and kinds given or from the rule.

        Entries are sorted by pair, then trust: a pair's last entry has the highest trust (the
        latest such entry on a tie), and its kind is the pair's.
        """
        n_calls, sizes = len(staged), [b[0].size for b in staged]
        key = self._keys(staged)
        trust = np.concatenate([b[2] if isinstance(b[2], np.ndarray) else np.full(b[0].size, b[2]) for b in staged])
        kinds = [b[3] for b in staged]
        kind = None
        if any(k is not None for k in kinds):  # given, or else the rule's for every entry
            if all(k is not None for k in kinds):
                kind = np.concatenate(kinds).astype(np.int8)
            else:
                kind = self.kind_rule(key // self.n, key % self.n)
        order = np.lexsort((trust, key))
        key = key[order]
        last = np.empty(key.size, dtype=bool)
        np.not_equal(key[1:], key[:-1], out=last[:-1])
        last[-1] = True
        existing = self._find_any(key[last])  # per distinct pair
        gain = np.array([b[4] for b in staged])
        if gain.any():
            pair = np.concatenate(([0], last[:-1])).cumsum()  # each sorted entry's pair
            code = sorted_unique(pair * n_calls + np.arange(n_calls).repeat(sizes)[order])  # (pair, call) once
            pair = code // n_calls
            first = np.concatenate(([True], pair[1:] != pair[:-1])).nonzero()[0]
            self._strengthen(existing, np.multiply.reduceat(1.0 - gain[code - pair * n_calls], first))
        pick = order[last]  # each pair's entry with the highest trust
        key = key[last]
        lo = key // self.n
        hi = key - lo * self.n
        keep = lo != hi  # no self-ties
        pick = pick[keep]
        key, lo, hi, existing = key[keep], lo[keep], hi[keep], existing[keep]
        return key, lo, hi, trust[pick], None if kind is None else kind[pick], existing

    def _strengthen(self, existing: np.ndarray, room: np.ndarray) -> None:
        """Live ties among `existing` (per pair, -1: none) keep `room` of their distance to full trust.

        `room` is the product of (1 - gain) over the calls that worked on the pair this week, so
        several calls compound: 1 - trust becomes (1 - trust) x (1 - gain) per call.
        """
        tie, value = kernels.strengthened(existing, room, self._trust, self._alive)
        if tie.size:
            self.set_trust(tie, value)

    def matmul(self, x: np.ndarray) -> np.ndarray:
        """Trust-weighted neighbour sums, W @ x, for a vector or an (n, k) block (flushes first)."""
        if self._staged:
            self.flush()
        if x.ndim != 2 or x.dtype != np.float32 or not x.flags.c_contiguous:
            out = self.main.A @ x
            if self.side is not None:
                out += self.side.A @ x
            return out
        if x.shape[1] == 8:  # the averaging rule's block: a compiled product (the same sums)
            out = np.empty((self.n, 8), dtype=np.float32)
            m = self.main
            kernels.csr_product8(m.indptr, m.indices, m.data, x.ravel(), out.ravel())
        else:  # straight to sparsetools (as scipy's own product does, without its per-call checks)
            out = np.zeros((self.n, x.shape[1]), dtype=np.float32)
            self.main.add_product(x, out)
        if self.side is not None:
            self.side.add_product(x, out)
        return out

    def _key(self, u: np.ndarray, v: np.ndarray) -> np.ndarray:
        """Pair keys min * n + max (int64), the order ties are looked up by."""
        u, v = np.asarray(u, dtype=np.int64), np.asarray(v, dtype=np.int64)
        return np.minimum(u, v) * self.n + np.maximum(u, v)

    def _find_any(self, key: np.ndarray) -> np.ndarray:
        """Tie ids for pair keys (see `_key`), live or removed (each pair is stored at most once)."""
        out = np.full(key.size, -1, dtype=np.int64)
        kernels.find_sorted(self.main.keys, self.main.key_tie, key, out)
        if self.side is not None:  # a pair is in one part at most
            kernels.find_sorted(self.side.keys, self.side.key_tie, key, out)
        return out

    def find(self, u: np.ndarray, v: np.ndarray) -> np.ndarray:
        """Tie ids for the pairs (u, v), -1 where there is no live tie (staged ones are not found)."""
        out = self._find_any(self._key(u, v))
        if self._dead:  # (a miss, -1, reads some flag and stays -1 either way)
            out = np.where(self._alive[out], out, -1)
        return out

    def set_trust(self, tie: np.ndarray, value: np.ndarray | float) -> None:
        """Write new trust for ties (ties may repeat, the last write wins), and the matrices' copies."""
        tie = np.asarray(tie, dtype=np.int64)
        if tie.size == 0:
            return
        value = np.asarray(value, dtype=np.float64)
        if value.shape != tie.shape:  # a scalar or a single value for every tie, as numpy assigns
            value = np.broadcast_to(value, tie.shape).copy()
        side = self.side.data if self.side is not None else np.empty(0, dtype=np.float32)
        main = self.main
        kernels.write_trust(tie, value, self.m, self._trust, self._alive, main.pos, main.data, self.m_main, side)

    def add(self, u: np.ndarray, v: np.ndarray, trust: float | np.ndarray, kind: np.ndarray | None = None) -> None:
        """Stage ties between the pairs (u, v), applied together at the next `flush`.

        Pairs already tied are left as they are; removed ties are revived with the new trust and
        kind; self-ties are dropped; a pair staged twice gets the higher trust. `kind` (codes of
        `abm.network.TIE_KINDS`) may be None when `kind_rule` is set.
        """
        if np.size(u):
            self._staged.append((np.asarray(u), np.asarray(v), trust, kind, 0.0))

    def work_on(self, u: np.ndarray, v: np.ndarray, gain: float, new_trust: float) -> None:
        """Stage joint work between the pairs (u, v), applied at the next `flush`.

        A live tie between a pair moves `gain` of the way to full trust (once however often the
        pair is listed in this call); a pair without one gets a new tie with `new_trust` (as `add`).
        """
        if np.size(u):
            self._staged.append((np.asarray(u), np.asarray(v), new_trust, None, float(gain)))

    def remove(self, tie: np.ndarray, zero_trust: bool = True) -> None:
        """Remove ties: they stop carrying influence at once and are compacted at a later merge.

        `zero_trust=False`: the caller has already set these (distinct) ties' trust to 0 (with
        other trust changes, in one `set_trust`).
        """
        tie = np.asarray(tie, dtype=np.int64)
        if zero_trust:
            tie = sorted_unique(tie)
        self._dead += int(np.count_nonzero(self._alive[tie]))
        self._alive[tie] = False
        if zero_trust:
            self.set_trust(tie, np.zeros(tie.size))
        if self._dead > max(2048, 0.2 * self.m_main):
            self._rebuild()

    def incident(self, nodes_mask: np.ndarray, nodes: np.ndarray | None = None) -> np.ndarray:
        """Ids of live ties touching any node in the boolean mask (cost: their degree).

        `nodes`, if given, are the mask's nodes in increasing order (saves a pass over the mask).
        """
        if nodes is None:
            nodes = nodes_mask.nonzero()[0]
        side = self.side
        ends = side.ends[:, : side.m] if side is not None else np.empty((2, 0), dtype=np.int32)
        # side ids are above main ones and in order: main ties (sorted, once each), then side ties
        lo = side.lo if side is not None else self.m_main
        return kernels.incident_ties(
            nodes, nodes_mask, self.main.indptr, self.main.tie_at, ends[0], ends[1], lo, self._alive
        )

    def grow(self, n: int) -> None:
        """Make room for new nodes (a partner joining)."""
        self.n = n
        self._rebuild()

    def random_neighbour(self, nodes: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """One random live neighbour of each node (-1 when none) and the tie id (staged ties excluded).

        Each node's entries are its main-matrix row, then its side ties (`_Side.nth`); one uniform
        draw each.
        """
        side = self.side
        row_keys = side.row_keys if side is not None else np.empty(0, dtype=np.int64)
        lo = side.lo if side is not None else self.m_main
        draw = rng.random(nodes.size)
        return kernels.random_neighbours(
            nodes, draw, self.main.indptr, self.main.tie_at, row_keys, lo, self._alive, self._eu, self._ev
        )

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
    init_vision: np.ndarray  # starting means for whoever holds the post (role, or organisation override)
    init_value: np.ndarray
    init_aware: np.ndarray

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
            init_vision=iv,
            init_value=ival,
            init_aware=iaware,
        )

    def append(self, other: State) -> None:
        """Add people (a partner organisation joining mid-run)."""
        for f in fields(self):
            setattr(self, f.name, np.concatenate([getattr(self, f.name), getattr(other, f.name)]))


def tie_kinds(state: State, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """The kind of each new tie, by the same rule as the generator."""
    return _tie_kind(u, v, state.staff, state.org, state.sector)


def clip01(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """`x` clipped to [0, 1] (-0.0 becomes 0.0), like `np.clip` without its Python-level overhead.

    The clip ufunc is about 5 times faster than `np.maximum` / `np.minimum` with a scalar bound
    (those miss numpy's vectorised loops); adding 0.0 turns -0.0 into 0.0, as they did.
    """
    r = _clip(x, 0.0, 1.0, out=out)
    return np.add(r, 0.0, out=r)


def as_slice(index: np.ndarray) -> slice | np.ndarray:
    """Sorted unique `index` as the equivalent slice when it is a run of consecutive rows, else unchanged.

    Indexing with a slice gives a view (free); with an index array, a gather.
    """
    if index.size and int(index[-1]) - int(index[0]) == index.size - 1:
        return slice(int(index[0]), int(index[-1]) + 1)
    return index


def ward_index(model: CommonPurposeModel) -> np.ndarray:
    """Everyone's ward as `np.intp`: indexing with it is several times faster than with int16."""
    return model.fixed("ward_index", lambda m: m.state.ward.astype(np.intp))


class Runs(NamedTuple):
    """An index array as runs of one value, so a table can be read once per run and repeated.

    People are stored in such runs (residents by ward, staff by organisation), and spreading a
    small table over everyone this way is a few times cheaper than a gather per person.
    """

    row: np.ndarray  # each run's value; or, when there are hardly any runs, each entry's
    length: np.ndarray | None  # each run's length; None when `row` is per entry

    @classmethod
    def of(cls, index: np.ndarray) -> Runs:
        """The runs of `index`, or `index` itself when runs would not pay (over a quarter as many)."""
        starts = np.concatenate(([True], index[1:] != index[:-1])).nonzero()[0] if index.size else index
        if starts.size > index.size // 4:  # entries in no order: one gather is cheaper
            return cls(index, None)
        return cls(index[starts], np.diff(np.append(starts, index.size)))

    def spread(self, table: np.ndarray) -> np.ndarray:
        """`table[index]`, the same values."""
        values = table.take(self.row)
        return values if self.length is None else values.repeat(self.length)


def by_ward(model: CommonPurposeModel, table: np.ndarray) -> np.ndarray:
    """`table[ward]` for everyone: a per-ward figure spread over the people of each ward (see `Runs`)."""
    return model.fixed("ward_runs", lambda m: Runs.of(ward_index(m))).spread(table)


def ward_residents(model: CommonPurposeModel) -> np.ndarray:
    """Residents per ward (at least 1); fixed while nobody joins, so kept with `model.fixed`."""
    s = model.state
    return np.maximum(np.bincount(s.ward[~s.staff], minlength=len(model.ward_names)), 1)


def by_organisation(values: np.ndarray, org: np.ndarray, default: float = 0.0) -> np.ndarray:
    """Each person's organisation's value (`default` for residents, or when there are no organisations)."""
    if values.size == 0:
        return np.full(org.size, default, dtype=float)
    return np.where(org >= 0, values[np.maximum(org, 0)], default)
