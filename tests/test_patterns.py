"""MODEL.md patterns P1-P9, each a scenario comparison over replicate seeds (slow: run in CI).

Each test runs `abm.patterns.check`, which states its statistic and criterion; most are
"the 95% t confidence interval of the paired difference over the same seeds lies on the
predicted side of zero". Run one by hand: `python -m pytest tests/test_patterns.py -k P6 -s`.
"""

from __future__ import annotations

import pytest

from abm.patterns import MIN_SEEDS, PATTERNS, check

SEEDS = 8  # P9: 4 (each seed runs ten budgets); more where a criterion needs them (MIN_SEEDS)


@pytest.mark.slow
@pytest.mark.parametrize("name", list(PATTERNS))
def test_pattern(name):
    result = check(name, seeds=range(4 if name == "P9" else max(SEEDS, MIN_SEEDS.get(name, 0))))
    print(result.line(), result.criterion, result.extra)
    assert result.passed, f"{result.line()} | criterion: {result.criterion} | {result.extra} | {result.values}"


def test_check_uses_enough_seeds_by_default_and_warns_below(monkeypatch):
    """A pattern is never checked by default with fewer seeds than its criterion has power for."""
    seen: dict[str, list[int]] = {}
    for name in ("P1", "P8"):
        monkeypatch.setitem(PATTERNS, name, lambda seeds, workers, _n=name: seen.setdefault(_n, seeds))
    check("P1")
    check("P8")
    assert seen == {"P1": list(range(8)), "P8": list(range(MIN_SEEDS["P8"]))}
    with pytest.warns(UserWarning, match=r"P8 with 4 seeds: its criterion needs at least 16"):
        check("P8", seeds=range(4))
