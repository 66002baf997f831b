"""Two scenarios side by side, run with the same seeds, with replicate bands.

Running both scenarios with the same seeds pairs the runs: with seed 3 both start from the same
random stream, so the difference between the two is the scenario's doing, not luck. The bands
show the spread over seeds (lowest to highest run); the table gives the paired difference at
the last week with a 95% confidence interval.

Comparisons are pure functions of their inputs (scenario, settings, seeds, weeks), so finished
ones are kept in a small server-wide cache: when thirty laptops in a room run the workshop's
comparison, it is computed once. Nothing about any session is kept, only these results. Runs
are serialised (one at a time) so a room pressing Compare together cannot starve everyone's Play.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import stats

from abm import CommonPurposeModel
from abm.app.settings import Settings
from abm.app.svg import Line, line_chart, nice_ceiling, share_ceiling
from abm.app.theme import PARTS

#: What a comparison records each week (model columns) and how it is labelled.
METRICS: tuple[tuple[str, str], ...] = (
    *((column, label) for label, _, column, _ in PARTS),
    ("target_inactive_share", "Inactive residents, target wards"),
    # staff alone: about nine in ten people are residents, who never turn over (workshop exercise 3)
    ("staff_common_purpose_share", "Common purpose among staff"),
)
REPLICATES = (3, 5, 8)
MAX_WEEKS = 520
CACHE_SIZE = 24


def parse_weeks(text: str | int | None) -> int:
    """The weeks typed into the Compare tab as an int.

    Raises:
        ValueError: with a message fit to show to the user, if `text` is not a whole number from
            1 to `MAX_WEEKS`.
    """
    cleaned = str(text) if isinstance(text, int) else (text or "").strip().replace(",", "")
    rule = f"a whole number of weeks from 1 to {MAX_WEEKS} (ten years)"
    try:
        weeks = int(cleaned)
    except ValueError:
        shown = f", not {cleaned[:20]!r}" if cleaned else ""
        raise ValueError(f"Weeks must be {rule}{shown}.") from None
    if not 1 <= weeks <= MAX_WEEKS:
        raise ValueError(f"Weeks must be {rule}.")
    return weeks


_cache: OrderedDict[tuple, CompareResult] = OrderedDict()
_cache_lock = threading.Lock()
_run_lock = threading.Lock()  # one comparison at a time on this server


class Cancelled(Exception):
    """The comparison was abandoned (the page closed or a new comparison started)."""


@dataclass(frozen=True, eq=False)
class Request:
    """One press of Run comparison: what to compare, for how many weeks, with which seeds.

    Compared by identity, never by value: a page's comparison thread re-runs when its request
    changes, so a second press with the same choices (or with Weeks that clamp to the same value)
    must still count as a new request. It then takes the result from the cache at once.
    """

    a: Settings
    b: Settings
    seeds: tuple[int, ...]
    weeks: int


@dataclass(frozen=True)
class CompareResult:
    name_a: str
    name_b: str
    label_a: str
    label_b: str
    seeds: tuple[int, ...]
    weeks: int
    #: metric column -> array (2 scenarios, replicates, weeks + 1)
    series: dict[str, np.ndarray]


def _key(a: Settings, b: Settings, seeds: tuple[int, ...], weeks: int) -> tuple:
    # the seed inside Settings is not used (each replicate has its own); drop it from the key
    return (a.with_(seed=0), b.with_(seed=0), seeds, weeks)


def run_comparison(
    a: Settings,
    b: Settings,
    seeds: tuple[int, ...],
    weeks: int,
    progress: Callable[[float], None] | None = None,
    cancel: threading.Event | None = None,
) -> CompareResult:
    """Run scenario `a` and scenario `b` for `weeks` weeks with each seed (or take them from the cache).

    Raises:
        ConfigError: a scenario or setting is invalid (one readable line).
        Cancelled: `cancel` was set.
    """
    weeks = int(max(1, min(weeks, MAX_WEEKS)))
    key = _key(a, b, seeds, weeks)
    with _cache_lock:
        if key in _cache:
            _cache.move_to_end(key)
            if progress:
                progress(1.0)
            return _cache[key]
    configs = [a.resolved(), b.resolved()]  # validate both before running anything
    out = {column: np.full((2, len(seeds), weeks + 1), np.nan) for column, _ in METRICS}
    total = 2 * len(seeds) * weeks
    done = 0
    with _run_lock:
        for s_i, cfg in enumerate(configs):
            for r, seed in enumerate(seeds):
                model = CommonPurposeModel(cfg, rng=seed, steps=max(weeks, 1))
                for _ in range(weeks):
                    if cancel is not None and cancel.is_set():
                        raise Cancelled()
                    model.step()
                    done += 1
                    if progress and done % 25 == 0:
                        progress(done / total)
                frame = model.model_frame()
                for column, _ in METRICS:
                    values = frame[column].to_numpy(dtype=float)
                    out[column][s_i, r, : values.size] = values[: weeks + 1]
    result = CompareResult(
        name_a=configs[0].name,
        name_b=configs[1].name,
        label_a=a.preset,
        label_b=b.preset,
        seeds=tuple(seeds),
        weeks=weeks,
        series=out,
    )
    with _cache_lock:
        _cache[key] = result
        while len(_cache) > CACHE_SIZE:
            _cache.popitem(last=False)
    if progress:
        progress(1.0)
    return result


def side_svgs(result: CompareResult) -> tuple[str, str]:
    """Scenario A and scenario B: the four shares, mean over seeds with the lowest-to-highest band."""
    x = np.arange(result.weeks + 1)
    top = 0.0
    for column, _ in METRICS[:4]:
        top = max(top, float(np.nanmax(result.series[column])))
    top = share_ceiling(top)
    out = []
    for s, name in enumerate((result.name_a, result.name_b)):
        lines = []
        for label, colour, column, _ in PARTS:
            data = result.series[column][s]
            lines.append(
                Line(
                    label, x, np.nanmean(data, axis=0), colour, band=(np.nanmin(data, axis=0), np.nanmax(data, axis=0))
                )
            )
        letter = "AB"[s]
        out.append(
            line_chart(
                lines,
                title=f"{letter}: {name}",
                y_label="Share of everyone",
                x_max=result.weeks,
                y_max=top,
                subtitle=f"{len(result.seeds)} seeds",
            )
        )
    return out[0], out[1]


def difference_svg(result: CompareResult, column: str = "common_purpose_share") -> str:
    """B minus A for one measure, seed by seed: the mean difference and its spread."""
    x = np.arange(result.weeks + 1)
    data = result.series[column]
    diff = data[1] - data[0]
    mean = np.nanmean(diff, axis=0)
    lo, hi = np.nanmin(diff, axis=0), np.nanmax(diff, axis=0)
    label = dict(METRICS)[column]
    reach = max(float(np.nanmax(np.abs(np.concatenate([lo, hi])))), 0.01)
    top = nice_ceiling(reach * 1.1, 0.01)
    colour = dict((c, col) for _, col, c, _ in PARTS).get(column, "#1d3557")
    return line_chart(
        [Line("B − A", x, mean, colour, band=(lo, hi))],  # the title names the measure: a short end label
        title=f"Difference, B minus A, same seeds: {label}",
        y_label="Difference (points)",
        x_max=result.weeks,
        y_max=top,
        y_min=-top,
        zero_line=True,
        legend=False,
        points=True,
    )


def summary_rows(result: CompareResult) -> list[dict[str, str]]:
    """At the last week, per measure: A and B (mean, range) and B - A (mean, 95% CI over paired seeds)."""
    rows = []
    for column, label in METRICS:
        data = result.series[column][:, :, -1]
        a, b = data[0], data[1]
        diff = b - a
        k = diff.size
        mean = float(np.nanmean(diff))
        if k > 1 and np.nanstd(diff, ddof=1) > 0:
            half = float(stats.t.ppf(0.975, k - 1) * np.nanstd(diff, ddof=1) / np.sqrt(k))
            ci = f"{100 * (mean - half):+.1f} to {100 * (mean + half):+.1f}"
            clear = (mean - half > 0) or (mean + half < 0)
        else:
            ci, clear = "n/a", abs(mean) > 0
        rows.append(
            {
                "measure": label,
                "a": f"{100 * np.nanmean(a):.1f}% ({100 * np.nanmin(a):.1f}–{100 * np.nanmax(a):.1f})",
                "b": f"{100 * np.nanmean(b):.1f}% ({100 * np.nanmin(b):.1f}–{100 * np.nanmax(b):.1f})",
                "diff": f"{100 * mean:+.1f} points",
                "ci": ci,
                "verdict": "clear difference" if clear else "within the noise",
            }
        )
    return rows


#: Suggested B for each A (the pairs of MODEL.md's patterns and the workshop exercises).
PAIRS = {
    "south_tees": "workshop/w2_national_tight",
    "workshop/w0_baseline": "workshop/w2_national_tight",
    "patterns/p2_embedded_strong": "patterns/p2_embedded_none",
    "patterns/p3_culture_targeted": "patterns/p3_culture_elsewhere",
    "patterns/p4_structure_worked": "patterns/p4_structure_misaligned",
    "patterns/p4_structure_aligned": "patterns/p4_structure_misaligned",
    "patterns/p5_national_relaxed": "patterns/p5_national_tight",
    "patterns/p6_legacy_embedded": "patterns/p6_legacy_none",
    "patterns/p7_whole_system": "patterns/p7_siloed",
    "patterns/p8_professionals_act": "patterns/p8_professionals_blocked",
    "workshop/w1_grangetown_insight": "workshop/w1_grangetown_no_insight",
    "workshop/w1_grangetown_no_insight": "workshop/w1_grangetown_insight",
    "workshop/w2_national_tight": "workshop/w0_baseline",
    "workshop/w3_turnover_embedded": "workshop/w3_turnover_not_embedded",
    "workshop/w3_turnover_not_embedded": "workshop/w3_turnover_embedded",
    "workshop/w4_whole_system": "workshop/w4_siloed",
    "workshop/w4_siloed": "workshop/w4_whole_system",
    "workshop/w5_low_budget": "workshop/w0_baseline",
}


def suggested_b(a: str, names: list[str]) -> str:
    """A sensible scenario B for scenario A: its pattern or workshop pair, else the default."""
    if a in PAIRS and PAIRS[a] in names:
        return PAIRS[a]
    return "south_tees" if a != "south_tees" and "south_tees" in names else (names[1] if len(names) > 1 else a)
