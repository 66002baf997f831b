"""The tie store's weekly staging and the activities' weighted draws keep their meaning.

New ties are staged during the week and applied together at the flush; draws by ward and the
unaware-first thinning follow the weights they stand for (checked against exact expectations).
"""

from __future__ import annotations

import numpy as np
from scipy import stats

from abm.activities import AWARE_WEIGHT, _ByWard
from abm.state import Ties


def _ties(n: int = 6) -> Ties:
    # 0-1 and 1-2 to start with
    return Ties(n, np.array([0, 1]), np.array([1, 2]), np.array([0.5, 0.6]), np.zeros(2, np.int8))


def test_staged_ties_appear_at_the_flush_once_each_with_the_highest_trust() -> None:
    ties = _ties()
    ties.add(np.array([3, 4, 2]), np.array([4, 3, 2]), 0.2, np.array([1, 1, 1], np.int8))  # 3-4 twice, a self-tie
    ties.add(np.array([4, 0]), np.array([3, 1]), np.array([0.7, 0.9]), np.array([1, 1], np.int8))  # 0-1 exists
    assert ties.find(np.array([3]), np.array([4]))[0] == -1 and ties.count == 2  # not before the flush
    assert ties.flush() == 1
    assert ties.count == 3 and ties.flush() == 0
    tie = ties.find(np.array([4]), np.array([3]))[0]
    assert tie >= 0 and ties.trust[tie] == 0.7 and ties.kind[tie] == 1
    assert ties.trust[ties.find(np.array([0]), np.array([1]))[0]] == 0.5  # an existing tie is left as it was
    x = np.eye(6)
    assert ties.matmul(x)[3, 4] == np.float32(0.7) and ties.matmul(x)[2, 2] == 0.0


def test_a_removed_tie_comes_back_with_the_new_trust_and_kind() -> None:
    ties = _ties()
    ties.remove(np.array([0]))
    assert ties.find(np.array([0]), np.array([1]))[0] == -1 and ties.count == 1
    ties.add(np.array([1]), np.array([0]), 0.3, np.array([2], np.int8))
    assert ties.flush() == 1
    tie = ties.find(np.array([0]), np.array([1]))[0]
    assert tie == 0 and ties.trust[0] == 0.3 and ties.kind[0] == 2 and ties.count == 2
    assert ties.matmul(np.eye(6))[0, 1] == np.float32(0.3)


def test_kinds_come_from_the_rule_when_not_given() -> None:
    ties = Ties(4, np.array([0]), np.array([1]), np.array([0.5]), np.zeros(1, np.int8), kind_rule=lambda u, v: u + v)
    ties.add(np.array([1, 3]), np.array([2, 2]), 0.4)
    ties.flush()
    assert ties.kind[ties.find(np.array([1, 2]), np.array([2, 3]))].tolist() == [3, 5]


def test_random_neighbour_draws_every_neighbour_equally_across_main_and_side() -> None:
    n = 8
    ties = Ties(n, np.array([0, 0, 0]), np.array([1, 2, 3]), np.full(3, 0.5), np.zeros(3, np.int8))
    ties.add(np.array([0, 0]), np.array([4, 5]), 0.5, np.zeros(2, np.int8))
    ties.flush()  # 0-4 and 0-5 in the side matrix
    assert ties.side is not None
    ties.remove(ties.find(np.array([0]), np.array([2])))  # a removed tie is never drawn
    nb, tie = ties.random_neighbour(np.zeros(50_000, np.int64), np.random.default_rng(1))
    ok = tie >= 0
    assert (ties.eu[tie[ok]] == 0).all() and np.array_equal(ties.ev[tie[ok]], nb[ok]) and (nb[~ok] == -1).all()
    counts = np.bincount(nb[nb >= 0], minlength=n)
    assert counts[2] == 0 and counts[[6, 7]].sum() == 0
    # 5 entries, one removed: the 4 live neighbours equally likely, the removed one's share -1
    assert stats.chisquare(counts[[1, 3, 4, 5]]).pvalue > 0.001
    assert abs((nb < 0).mean() - 0.2) < 0.01
    lonely, _ = ties.random_neighbour(np.array([7, 6]), np.random.default_rng(2))
    assert lonely.tolist() == [-1, -1]


def test_draws_by_ward_follow_the_ward_weights_and_are_uniform_within_a_ward() -> None:
    ward = np.array([0, 0, 0, 1, 1, 2, 0, 1, 3, 3])  # ward 2 has one person, ward 3 is weighted 0
    people = np.arange(10)
    weight = np.array([1.0, 2.0, 4.0, 0.0])
    by_ward = _ByWard(people, ward, 4)
    draws = by_ward.draw(np.random.default_rng(3), 100_000, weight)
    expected = weight[ward] / weight[ward].sum()
    observed = np.bincount(draws, minlength=10)
    assert observed[ward == 3].sum() == 0
    keep = expected > 0
    assert stats.chisquare(observed[keep], expected[keep] * draws.size).pvalue > 0.001
    assert by_ward.draw(np.random.default_rng(3), 5, np.zeros(4)).size == 0


def test_unaware_first_draws_weigh_the_aware_less() -> None:
    ward = np.zeros(6, dtype=np.int64)
    aware = np.array([True, True, True, False, False, False])
    by_ward = _ByWard(np.arange(6), ward, 1)
    draws = by_ward.draw_unaware_first(np.random.default_rng(4), 60_000, np.ones(1), aware)
    assert draws.size == 60_000
    expected = np.where(aware, AWARE_WEIGHT, 1.0)
    expected /= expected.sum()
    assert stats.chisquare(np.bincount(draws, minlength=6), expected * draws.size).pvalue > 0.001


def test_unaware_first_draws_stay_exact_when_awareness_changes_between_draws() -> None:
    # each round is sized by the share kept last time: a stale share (nobody aware, then most)
    # means too few candidates, and further rounds must make up the count without bias
    by_ward = _ByWard(np.arange(6), np.zeros(6, dtype=np.int64), 1)
    rng = np.random.default_rng(6)
    nobody, most = np.zeros(6, bool), np.array([True, True, True, True, True, False])
    counts = np.zeros(6)
    for week in range(400):
        aware = nobody if week % 2 == 0 else most
        draws = by_ward.draw_unaware_first(rng, 50, np.ones(1), aware)
        assert draws.size == 50
        if week % 2:
            counts += np.bincount(draws, minlength=6)
    expected = np.where(most, AWARE_WEIGHT, 1.0)
    expected /= expected.sum()
    assert stats.chisquare(counts, expected * counts.sum()).pvalue > 0.001


def test_work_on_strengthens_existing_ties_once_per_call_and_starts_missing_ones() -> None:
    ties = _ties()  # 0-1 (0.5), 1-2 (0.6)
    ties.kind_rule = lambda u, v: np.full(u.size, 3, np.int8)  # new ties' kinds come from the rule
    ties.remove(np.array([1]))  # 1-2 removed
    ties.work_on(np.array([0, 1, 3, 2]), np.array([1, 0, 4, 1]), 0.5, 0.4)  # 0-1 twice, 3-4 new, 1-2 removed
    ties.work_on(np.array([1]), np.array([0]), 0.2, 0.4)  # a second call on 0-1 compounds
    assert ties.trust[0] == 0.5  # nothing happens before the flush
    assert ties.flush() == 2  # 3-4 added, 1-2 revived
    assert np.isclose(ties.trust[0], 1.0 - 0.5 * 0.5 * 0.8)
    assert ties.trust[1] == 0.4 and ties.alive[1] and ties.kind[1] == 3  # revived as new, not strengthened
    assert ties.trust[ties.find(np.array([3]), np.array([4]))[0]] == 0.4
    assert np.isclose(ties.matmul(np.eye(6))[0, 1], 1.0 - 0.5 * 0.5 * 0.8)


def test_every_tie_keeps_the_generators_kind_after_a_run() -> None:
    from abm import CommonPurposeModel
    from abm.state import tie_kinds

    model = CommonPurposeModel(rng=3, overrides={"turnover.annual_rate": 0.4}, steps=40).run()
    ties = model.ties
    assert ties.m > model.population.eu.size  # ties were added (and some revived) on the way
    assert np.array_equal(ties.kind, tie_kinds(model.state, ties.eu, ties.ev))


def test_side_ties_multiply_and_list_like_a_csr_matrix_built_from_them() -> None:
    rng = np.random.default_rng(5)
    n = 40
    ties = Ties(n, np.array([0, 1]), np.array([1, 2]), np.array([0.5, 0.6]), np.zeros(2, np.int8))
    for _ in range(6):  # a few weeks of new ties, all kept in the side (far below a merge)
        ties.add(rng.integers(0, n, 30), rng.integers(0, n, 30), rng.random(30), np.zeros(30, np.int8))
        ties.flush()
        live = np.flatnonzero(ties.alive)
        ties.set_trust(live[rng.integers(0, live.size, 5)], rng.random(5))
    ties.remove(np.flatnonzero(ties.alive)[-3:])
    side = ties.side
    assert side is not None and ties.merges == 1 and side.m == ties.m - ties.m_main > 100
    live = ties.alive
    dense = np.zeros((n, n))
    np.add.at(dense, (ties.eu[live], ties.ev[live]), ties.trust[live])
    dense += dense.T
    x = rng.random((n, 8)).astype(np.float32)  # the fast path: C-ordered float32 blocks
    assert np.allclose(ties.matmul(x), dense @ x, rtol=1e-5, atol=1e-5)
    # each person's side ties: those where they are the lower end, then the upper end, by id
    ids = np.arange(ties.m_main, ties.m)
    start, deg = side.rows(np.arange(n))
    for node in range(n):
        listed = side.nth(np.full(deg[node], start[node]), np.arange(deg[node]))
        expected = np.concatenate([ids[ties.eu[ids] == node], ids[ties.ev[ids] == node]])
        assert listed.tolist() == expected.tolist()
    mask = np.zeros(n, bool)
    mask[[3, 7]] = True
    touching = ties.incident(mask)
    expected = np.flatnonzero(live & (mask[ties.eu] | mask[ties.ev]))
    assert touching.tolist() == expected.tolist()


def test_calls_with_one_trust_each_flush_as_the_same_calls_given_per_pair_trust_and_kinds() -> None:
    # the model's calls (one trust per call, kinds from the rule) take a shorter path at the flush;
    # given the same work as per-pair arrays, every tie must come out the same
    rng = np.random.default_rng(7)
    n = 30

    def rule(u: np.ndarray, v: np.ndarray) -> np.ndarray:
        return ((u + v) % 4).astype(np.int8)

    def week(ties: Ties, arrays: bool, pairs: list) -> None:
        for u, v, trust, gain in pairs:
            if gain:
                ties.work_on(u, v, gain, trust)
            elif arrays:
                ties.add(u, v, np.full(u.size, trust), rule(np.minimum(u, v), np.maximum(u, v)))
            else:
                ties.add(u, v, trust)
        ties.flush()

    u0, v0 = np.array([0, 1, 2, 5]), np.array([1, 2, 3, 9])
    by_call = Ties(n, u0, v0, np.full(4, 0.5), np.zeros(4, np.int8), kind_rule=rule)
    by_pair = Ties(n, u0, v0, np.full(4, 0.5), np.zeros(4, np.int8), kind_rule=rule)
    for _ in range(12):
        pairs = [
            (rng.integers(0, n, 40), rng.integers(0, n, 40), 0.3, 0.0),  # repeats and self-pairs among them
            (rng.integers(0, n, 25), rng.integers(0, n, 25), 0.45, 0.2),
            (rng.integers(0, n, 10), rng.integers(0, n, 10), 0.3, 0.1),
        ]
        week(by_call, False, pairs)
        # the general path needs work_on's new ties' kinds from the rule too: it is set, so they are
        week(by_pair, True, pairs)
        gone = np.flatnonzero(by_call.alive)[:2]
        by_call.remove(gone)
        by_pair.remove(gone)
    assert by_call.m == by_pair.m and by_call.count == by_pair.count
    for attr in ("eu", "ev", "trust", "kind", "alive"):
        assert np.array_equal(getattr(by_call, attr), getattr(by_pair, attr)), attr
    x = rng.random((n, 8)).astype(np.float32)
    assert np.array_equal(by_call.matmul(x), by_pair.matmul(x))
