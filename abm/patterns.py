"""Pattern-oriented validation: the MODEL.md patterns P1-P9 as scenario comparisons.

Each pattern runs its scenario files (configs/patterns/) over replicate seeds, computes one
statistic per run, and judges the result with a stated criterion, usually: the 95% t
confidence interval of the paired difference (same seeds in both scenarios) lies wholly on
the predicted side of zero. Used by the test-suite and by `abm validate` later.

Example:
    >>> from abm.patterns import check
    >>> result = check("P7", seeds=range(3))   # doctest: +SKIP
    >>> result.passed                          # doctest: +SKIP
    True
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import stats

from abm.model import CommonPurposeModel


@dataclass
class PatternResult:
    pattern: str
    claim: str
    statistic: str
    criterion: str
    values: dict[str, list[float]]
    effect: float
    ci: tuple[float, float]
    passed: bool
    extra: dict[str, Any] = field(default_factory=dict)

    def line(self) -> str:
        mark = "PASS" if self.passed else "FAIL"
        lo, hi = self.ci
        if self.pattern == "P9":  # a model comparison, not a paired difference: say what the numbers are
            return (
                f"{self.pattern} {mark}: {self.statistic}: linear SSE / logistic SSE {self.effect:.1f}, "
                f"tipping region budget {lo:.0f} to {hi:.0f}"
            )
        return f"{self.pattern} {mark}: {self.statistic}: effect {self.effect:+.4f} (95% CI {lo:+.4f} to {hi:+.4f})"


# --- per-run statistics (top-level functions so they can cross process boundaries) --------------


def _final(df, col: str) -> float:
    return float(df[col].iloc[-1])


def _mean_between(df, col: str, start: int, end: int) -> float:
    window = df[(df["step"] >= start) & (df["step"] <= end)]
    return float(window[col].mean())


def stat_sequence(model: CommonPurposeModel) -> dict[str, float]:
    """Mean lags (weeks) subscribe -> value and value -> act, among people who did all three in the run."""
    s = model.state
    done = (s.first_subscribed > 0) & (s.first_valued > 0) & (s.first_acting > 0)
    if done.sum() < 5:
        return {"vision_to_value": np.nan, "value_to_act": np.nan, "n": float(done.sum())}
    return {
        "vision_to_value": float(np.mean(s.first_valued[done] - s.first_subscribed[done])),
        "value_to_act": float(np.mean(s.first_acting[done] - s.first_valued[done])),
        "n": float(done.sum()),
    }


def stat_low_vision_acting(model: CommonPurposeModel) -> dict[str, float]:
    df = model.model_frame()
    return {"low_vision_share": _mean_between(df, "acting_low_vision_share", 26, model.week)}


def _ward_metric(model: CommonPurposeModel, ward: str, metric: str) -> float:
    g = model.groups_frame()
    sel = g[(g.step == model.week) & (g.group_kind == "ward") & (g.group == ward) & (g.metric == metric)]
    return float(sel["value"].iloc[0])


def stat_grangetown(model: CommonPurposeModel) -> dict[str, float]:
    g = model.groups_frame()
    ward = g[(g.group_kind == "ward") & (g.group == "grangetown")]
    path = ward[ward.metric.isin(["mean_vision", "mean_value"])].groupby("step")["value"].mean()
    return {
        "cp": _ward_metric(model, "grangetown", "common_purpose_share"),
        "vision": _ward_metric(model, "grangetown", "mean_vision"),
        "progress": float(path.mean()),
    }


def stat_structure(model: CommonPurposeModel) -> dict[str, float]:
    df = model.model_frame()
    return {
        "acting_among_valuing": _mean_between(df, "acting_among_valuing_share", model.week - 52, model.week),
        "acting": _final(df, "acting_share"),
        "structure": _final(df, "structural_alignment"),
    }


def stat_national(model: CommonPurposeModel) -> dict[str, float]:
    df = model.model_frame().set_index("step")
    return {
        "s104": float(df.loc[104, "structural_alignment"]),
        "s208": float(df.loc[model.week, "structural_alignment"]),
        "smax_before": float(df.loc[:103, "max_structural_alignment"].max()),
        "smax_tight": float(df["max_structural_alignment"].max()),
        "cap": float(df.loc[100, "national_cap"]),
    }


def stat_legacy(model: CommonPurposeModel) -> dict[str, float]:
    df = model.model_frame().set_index("step")
    peak = float(df.loc[100:120, "staff_common_purpose_share"].mean())
    end = float(df.loc[model.week - 12 : model.week, "staff_common_purpose_share"].mean())
    return {"peak": peak, "end": end, "change": end - peak}


def stat_common_purpose(model: CommonPurposeModel) -> dict[str, float]:
    df = model.model_frame()
    return {"cp": _final(df, "common_purpose_share"), "subscribed": _final(df, "subscribed_share")}


def stat_inactivity(model: CommonPurposeModel) -> dict[str, float]:
    df = model.model_frame()
    start = float(df["target_inactive_share"].iloc[0])
    return {"change": _final(df, "target_inactive_share") - start}


def _run_one(args: tuple[str, int, dict[str, Any], Callable]) -> dict[str, float]:
    config, seed, overrides, stat = args
    model = CommonPurposeModel(config, rng=seed, overrides=overrides or None)
    model.run()
    return stat(model)


def run_many(
    config: str, seeds: Iterable[int], stat: Callable, overrides: dict[str, Any] | None = None, workers: int = 1
) -> list[dict[str, float]]:
    """One statistic dict per seed (in seed order), in parallel when workers > 1."""
    jobs = [(config, int(s), overrides or {}, stat) for s in seeds]
    if workers > 1:
        with ProcessPoolExecutor(workers) as pool:
            return list(pool.map(_run_one, jobs))
    return [_run_one(j) for j in jobs]


def paired_ci(diff: np.ndarray, level: float = 0.95) -> tuple[float, tuple[float, float]]:
    """Mean and t confidence interval of paired differences."""
    diff = np.asarray(diff, dtype=float)
    diff = diff[np.isfinite(diff)]
    mean = float(diff.mean())
    if diff.size < 2 or np.allclose(diff, diff[0]):
        return mean, (mean, mean)
    half = float(stats.t.ppf(0.5 + level / 2, diff.size - 1) * diff.std(ddof=1) / np.sqrt(diff.size))
    return mean, (mean - half, mean + half)


def _pair(name, claim, statistic, a, b, key, seeds, workers, stat, greater=True, extra_check=None):
    va = [r[key] for r in run_many(a, seeds, stat, workers=workers)]
    vb = [r[key] for r in run_many(b, seeds, stat, workers=workers)]
    diff = np.array(va) - np.array(vb)
    effect, ci = paired_ci(diff if greater else -diff)
    passed = ci[0] > 0
    extra = {}
    if extra_check is not None:
        ok, extra = extra_check(va, vb)
        passed = passed and ok
    return PatternResult(
        name,
        claim,
        statistic,
        "95% CI of the paired difference (same seeds) lies above 0"
        + (" and " + extra.get("also", "") if extra else ""),
        {a: va, b: vb},
        effect,
        ci,
        passed,
        extra,
    )


def p1(seeds, workers=1) -> PatternResult:
    rows = run_many("patterns/p1_sequence", seeds, stat_sequence, workers=workers)
    lag1 = np.array([r["vision_to_value"] for r in rows])
    lag2 = np.array([r["value_to_act"] for r in rows])
    e1, ci1 = paired_ci(lag1)
    e2, ci2 = paired_ci(lag2)
    return PatternResult(
        "P1",
        "people subscribe before they value, and value before they act",
        "mean weeks from subscribing to valuing, and from valuing to acting (people who did all three)",
        "95% CI of both mean lags over seeds lies above 0",
        {"vision_to_value": lag1.tolist(), "value_to_act": lag2.tolist()},
        min(e1, e2),
        (min(ci1[0], ci2[0]), min(ci1[1], ci2[1])),
        ci1[0] > 0 and ci2[0] > 0,
        {"vision_to_value": (e1, ci1), "value_to_act": (e2, ci2), "people": [r["n"] for r in rows]},
    )


def p2(seeds, workers=1) -> PatternResult:
    def visible(va, vb):
        return float(np.mean(va)) >= 0.1, {"also": "the mean share with strong processes is at least 0.10"}

    return _pair(
        "P2",
        "with strong embedded processes a visible share of the acting have low vision",
        "share of the acting below the vision threshold, weeks 26-208",
        "patterns/p2_embedded_strong",
        "patterns/p2_embedded_none",
        "low_vision_share",
        seeds,
        workers,
        stat_low_vision_acting,
        extra_check=visible,
    )


def p3(seeds, workers=1) -> PatternResult:
    slowed = _pair(
        "P3a",
        "lower cultural alignment in a ward slows common purpose there",
        "Grangetown's progress towards common purpose: mean of vision and value, averaged over the run "
        "(default minus low culture)",
        "south_tees",
        "patterns/p3_culture_low",
        "progress",
        seeds,
        workers,
        stat_grangetown,
    )
    recovered = _pair(
        "P3",
        "insight and engagement aimed at a misaligned ward recover more than the same effort elsewhere",
        "Grangetown common purpose share at week 208 (aimed there minus aimed elsewhere)",
        "patterns/p3_culture_targeted",
        "patterns/p3_culture_elsewhere",
        "cp",
        seeds,
        workers,
        stat_grangetown,
    )
    recovered.passed = recovered.passed and slowed.passed
    recovered.extra["slowed"] = slowed.line()
    recovered.criterion += "; and low culture slows Grangetown's progress (95% CI above 0)"
    return recovered


def p4(seeds, workers=1) -> PatternResult:
    blocked = _pair(
        "P4a",
        "misaligned structures block acting even at high vision and value",
        "share acting among people with vision and value, last year",
        "patterns/p4_structure_aligned",
        "patterns/p4_structure_misaligned",
        "acting_among_valuing",
        seeds,
        workers,
        stat_structure,
    )
    shifted = _pair(
        "P4",
        "collaborative and collective work shifts structures and action follows",
        "acting share at week 208 (with structural work minus without)",
        "patterns/p4_structure_worked",
        "patterns/p4_structure_misaligned",
        "acting",
        seeds,
        workers,
        stat_structure,
    )
    shifted.passed = shifted.passed and blocked.passed
    shifted.extra["blocked"] = blocked.line()
    shifted.criterion += "; and acting among committed people is higher with aligned structures"
    return shifted


def p5(seeds, workers=1) -> PatternResult:
    tight = run_many("patterns/p5_national_tight", seeds, stat_national, workers=workers)
    relaxed = run_many("patterns/p5_national_relaxed", seeds, stat_national, workers=workers)
    capped = all(r["smax_before"] <= r["cap"] + 1e-9 for r in tight + relaxed)
    held = all(r["smax_tight"] <= r["cap"] + 1e-9 for r in tight)
    lifted = all(r["s208"] > r["cap"] for r in relaxed)
    diff = np.array([r["s208"] for r in relaxed]) - np.array([r["s208"] for r in tight])
    effect, ci = paired_ci(diff)
    return PatternResult(
        "P5",
        "a tight national constraint caps local structural change; relaxing it lifts the plateau",
        "structural alignment at week 208 (relaxed at week 104 minus kept tight)",
        "no organisation's alignment exceeds the cap while it holds (every run); every relaxed run ends "
        "above the old cap (staff-weighted mean); 95% CI of the paired difference above 0",
        {"tight": [r["s208"] for r in tight], "relaxed": [r["s208"] for r in relaxed]},
        effect,
        ci,
        capped and held and lifted and ci[0] > 0,
        {"capped_before_104": capped, "tight_held": held, "relaxed_lifted": lifted},
    )


def p6(seeds, workers=1) -> PatternResult:
    def decays(va, vb):
        return float(np.mean(vb)) < 0, {"also": "common purpose falls without embedded processes"}

    return _pair(
        "P6",
        "under turnover common purpose decays without embedded processes and holds with them",
        "change in staff common purpose share from weeks 100-120 to the last 12 weeks (embedded minus none)",
        "patterns/p6_legacy_embedded",
        "patterns/p6_legacy_none",
        "change",
        seeds,
        workers,
        stat_legacy,
        extra_check=decays,
    )


def p7(seeds, workers=1) -> PatternResult:
    return _pair(
        "P7",
        "cross-sector ties spread common purpose further than siloed networks for the same effort",
        "common purpose share at week 208 (whole system minus siloed)",
        "patterns/p7_whole_system",
        "patterns/p7_siloed",
        "cp",
        seeds,
        workers,
        stat_common_purpose,
    )


def p8(seeds, workers=1) -> PatternResult:
    def flat(va, vb):
        mean, ci = paired_ci(np.array(va))
        return ci[0] > -EQUIVALENCE and ci[1] < EQUIVALENCE, {
            "also": f"with professionals blocked the change is equivalent to 0: its 95% CI lies within "
            f"+/-{EQUIVALENCE} (two one-sided tests at 2.5%)",
            "blocked_change": (mean, ci),
        }

    return _pair(
        "P8",
        "residents' inactivity in target wards falls only when professionals act",
        "change in inactive share in the target wards, week 0 to 208 (blocked minus acting)",
        "patterns/p8_professionals_blocked",
        "patterns/p8_professionals_act",
        "change",
        seeds,
        workers,
        stat_inactivity,
        extra_check=flat,
    )


#: P8: a change in the target wards' inactive share smaller than this counts as no change.
EQUIVALENCE = 0.03

#: Fewest replicate seeds a pattern's criterion has the power for. P8's equivalence half needs a
#: CI narrower than +/-EQUIVALENCE: one seed's change has a standard deviation of about 0.02-0.03,
#: so with 8 seeds the CI's half-width alone is about 0.02-0.03 and a null effect fails by chance.
MIN_SEEDS = {"P8": 16}


def logistic(x: np.ndarray, lo: float, hi: float, mid: float, scale: float) -> np.ndarray:
    return lo + (hi - lo) / (1.0 + np.exp(-(x - mid) / scale))


def rise_region(mid: float, scale: float) -> tuple[float, float]:
    """The tipping region of a logistic with midpoint `mid` and scale `scale`: where it rises from
    10% to 90% of the way between its levels, mid -/+ |scale| ln 9 (as `abm sweep report` shows it).

    Example:
        >>> [round(v, 2) for v in rise_region(50.0, 10.0)]
        [28.03, 71.97]
    """
    half = abs(scale) * math.log(9)
    return (mid - half, mid + half)


def p9(seeds, workers=1, budgets=(0, 10, 20, 30, 40, 50, 60, 80, 100, 140)) -> PatternResult:
    from scipy.optimize import curve_fit

    xs, ys = [], []
    means = []
    for b in budgets:
        rows = run_many("patterns/p9_tipping", seeds, stat_common_purpose, {"effort.budget": b}, workers)
        vals = [r["cp"] for r in rows]
        xs += [b] * len(vals)
        ys += vals
        means.append(float(np.mean(vals)))
    x, y = np.array(xs, float), np.array(ys, float)
    lin = np.polyfit(x, y, 1)
    sse_lin = float(np.sum((np.polyval(lin, x) - y) ** 2))
    try:
        p0 = [min(means), max(means), float(np.median(budgets)), (max(budgets) - min(budgets)) / 10]
        par, _ = curve_fit(logistic, x, y, p0=p0, maxfev=20_000)
        sse_log = float(np.sum((logistic(x, *par) - y) ** 2))
    except RuntimeError:
        par, sse_log = np.array([np.nan] * 4), np.inf
    lo_b, hi_b = min(budgets), max(budgets)
    mid, scale = float(par[2]), abs(float(par[3]))
    interior = lo_b < mid < hi_b and scale < (hi_b - lo_b) / 4
    better = sse_log < 0.5 * sse_lin
    return PatternResult(
        "P9",
        "common purpose against effort budget is an S-curve with a tipping region",
        "final common purpose share against effort budget: logistic against linear fit",
        "logistic SSE under half the linear SSE, its midpoint inside the budget range and its width "
        "(scale) under a quarter of the range",
        {"budget": [float(b) for b in budgets], "mean_cp": means},
        sse_lin / max(sse_log, 1e-12),
        rise_region(mid, scale),
        bool(better and interior),
        {
            "logistic": par.tolist(),
            "sse_linear": sse_lin,
            "sse_logistic": sse_log,
            "tipping_region": rise_region(mid, scale),
        },
    )


PATTERNS: dict[str, Callable[..., PatternResult]] = {
    "P1": p1,
    "P2": p2,
    "P3": p3,
    "P4": p4,
    "P5": p5,
    "P6": p6,
    "P7": p7,
    "P8": p8,
    "P9": p9,
}


def check(name: str, seeds: Iterable[int] | None = None, workers: int = 1) -> PatternResult:
    """Run one pattern's comparison over the given replicate seeds.

    Args:
        name: "P1" to "P9".
        seeds: replicate seeds; default 0-7, or as many as the criterion needs (`MIN_SEEDS`: P8 16).
            Fewer than `MIN_SEEDS` runs anyway, with a warning: a true null may then fail by chance.
        workers: processes to run the scenarios on.
    """
    need = MIN_SEEDS.get(name, 0)
    seeds = list(range(max(8, need)) if seeds is None else seeds)
    if len(seeds) < need:
        warnings.warn(
            f"{name} with {len(seeds)} seeds: its criterion needs at least {need} (MIN_SEEDS) to have the power "
            "it states; with fewer a true null can fail by chance",
            stacklevel=2,
        )
    return PATTERNS[name](seeds, workers=workers)
