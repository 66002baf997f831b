"""`abm sweep report DIR`: PNG figures and one self-contained HTML page for a sweep directory.

What it shows:

- an overview: design, base config, parameters, runs planned / finished / failed;
- for each outcome, the outcome against each parameter: the mean over runs at each value
  (or bin of values), a darker band for the 95% confidence interval of that mean, a lighter
  band from the 10th to the 90th percentile of the runs (the replicate spread), and the runs
  as dots. In a grid with one other parameter of few levels, one line per level of it;
- with a single numeric parameter, a logistic (S-curve) fit per outcome: the midpoint (the
  tipping point) with its 95% interval and the 10-90% rise region;
- time series (when the sweep kept them) for levels of the first parameter;
- Morris designs: mu* with its bootstrap 95% interval, mu and sigma (SALib), ranked, and the
  noise floor replicate variation alone would give; Sobol designs: first-order and total
  indices with 95% intervals, ranked, and the strongest second-order pairs;
- failed runs that have not yet succeeded on a rerun.

Figures are drawn with `matplotlib.figure.Figure` (no pyplot state) and embedded in
`index.html` as base64, so the page can be mailed or archived on its own.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from abm.io import DiskFullError, check_out_dir, format_bytes, free_bytes, is_disk_full
from abm.patterns import rise_region
from abm.sweep import (
    FINAL_METRICS,
    KEY_COLUMNS,
    PLAN_FILE,
    STATE_FILE,
    SUMMARY_FILE,
    MorrisDesign,
    SobolDesign,
    SweepError,
    SweepSpec,
    build_summary,
    read_failures,
    read_series,
    write_atomic,
)

DEFAULT_OUTCOMES = ("common_purpose_share", "acting_share", "inactive_share")
MAX_EXACT_LEVELS = 25
BINS = 12
MAX_SERIES_LEVELS = 8
MAX_SERIES_RUNS_PER_LEVEL = 300
DPI = 110


class ReportError(SweepError):
    """The directory is not a sweep directory, or an outcome is unknown: one line, exit 2."""


@dataclass
class _Page:
    title: str
    sections: list[str] = field(default_factory=list)
    figures: dict[str, bytes] = field(default_factory=dict)
    #: tables also written as CSV files beside the figures (the sensitivity indices, for papers)
    data: dict[str, pd.DataFrame] = field(default_factory=dict)

    def figure(self, name: str, fig: Any, caption: str) -> None:
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None})
        data = buf.getvalue()
        self.figures[name] = data
        b64 = base64.b64encode(data).decode("ascii")
        self.sections.append(
            f'<figure><img alt="{html.escape(caption)}" src="data:image/png;base64,{b64}">'
            f"<figcaption>{html.escape(caption)}</figcaption></figure>"
        )

    def heading(self, text: str, level: int = 2) -> None:
        self.sections.append(f"<h{level}>{html.escape(text)}</h{level}>")

    def para(self, text: str, cls: str = "") -> None:
        attr = f' class="{cls}"' if cls else ""
        self.sections.append(f"<p{attr}>{html.escape(text)}</p>")

    def table(self, rows: list[dict[str, Any]], columns: list[str] | None = None) -> None:
        if not rows:
            return
        columns = columns or list(rows[0])
        head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
        body = "".join(
            "<tr>" + "".join(f"<td>{html.escape(_cell(r.get(c)))}</td>" for c in columns) + "</tr>" for r in rows
        )
        self.sections.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")

    def html(self) -> str:
        css = (
            "body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1100px;margin:2em auto;"
            "padding:0 1em;color:#222;line-height:1.45}h1{font-size:1.6em}h2{margin-top:2em;border-bottom:1px solid "
            "#ddd;padding-bottom:.2em}table{border-collapse:collapse;margin:1em 0;font-size:.9em}th,td{border:1px "
            "solid #ccc;padding:.25em .6em;text-align:left}th{background:#f3f3f3}td{font-variant-numeric:tabular-nums}"
            "figure{margin:1em 0}img{max-width:100%}figcaption{font-size:.9em;color:#555}.note{color:#7a4b00;"
            "background:#fff6e0;padding:.4em .7em;border-left:3px solid #e0a000}"
        )
        return (
            '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f"<title>{html.escape(self.title)}</title><style>{css}</style></head><body>\n"
            + "\n".join(self.sections)
            + "\n</body></html>\n"
        )


def _cell(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, (float, np.floating)):
        if not math.isfinite(v):
            return "–"
        return f"{v:.4g}"
    return str(v)


def _load(sweep_dir: Path) -> tuple[dict[str, Any], SweepSpec]:
    state_path = sweep_dir / STATE_FILE
    if not state_path.is_file() or not (sweep_dir / PLAN_FILE).is_file():
        raise ReportError(f"{sweep_dir}: not a sweep directory (no {STATE_FILE} or {PLAN_FILE}; run 'abm sweep' first)")
    try:
        state = json.loads(state_path.read_text(encoding="utf-8"))
        spec = SweepSpec.model_validate(state["spec"])
    except (ValueError, KeyError) as exc:
        raise ReportError(f"{state_path}: unreadable ({type(exc).__name__}: {exc})") from None
    return state, spec


def write_report(sweep_dir: str | Path, out: str | Path | None = None, outcomes: list[str] | None = None) -> Path:
    """Write the report of a sweep directory; return the path of its index.html.

    Args:
        sweep_dir: a directory written by `abm sweep`.
        out: where the PNGs and index.html go (default: DIR/report).
        outcomes: final outputs to show (default: the sweep file's report.outcomes, else up to 3).

    Raises:
        ReportError: not a sweep directory, an unknown outcome, or matplotlib missing.
    """
    sweep_dir = Path(sweep_dir)
    state, spec = _load(sweep_dir)
    try:
        from matplotlib.figure import Figure  # noqa: F401
    except ImportError:
        raise ReportError("abm sweep report needs matplotlib: pip install matplotlib") from None
    if not (sweep_dir / SUMMARY_FILE).is_file():
        build_summary(sweep_dir)
    summary = pd.read_parquet(sweep_dir / SUMMARY_FILE)
    plan = pd.read_parquet(sweep_dir / PLAN_FILE)
    names = list(spec.parameters)
    available = [c for c in summary.columns if c not in KEY_COLUMNS and c not in names]
    chosen = outcomes or spec.report.outcomes
    if chosen is None:
        finals = [m for m in available if m in FINAL_METRICS]
        chosen = [m for m in DEFAULT_OUTCOMES if m in finals]
        chosen += [m for m in finals + available if m not in chosen][: max(0, 3 - len(chosen))]
    for o in chosen:
        if o not in available:
            shown = ", ".join(available[:12]) + (" ..." if len(available) > 12 else "")
            raise ReportError(f"{sweep_dir}: outcome '{o}' is not in the summary (have: {shown or 'nothing yet'})")
    report_dir = check_out_dir(out if out is not None else sweep_dir / "report")
    report_dir.mkdir(parents=True, exist_ok=True)

    name = state.get("name", sweep_dir.name)
    page = _Page(f"Sweep report: {name}")
    page.sections.append(f"<h1>Sweep report: {html.escape(name)}</h1>")
    _overview(page, state, spec, plan, summary, sweep_dir)
    if summary.empty:
        page.para("No run has finished yet: nothing to plot. Run the sweep (again) and rebuild this report.", "note")
    else:
        for o in chosen:
            _outcome_section(page, spec, summary, names, o)
        _series_section(page, spec, summary, names, chosen, sweep_dir)
        if isinstance(spec.design, MorrisDesign):
            _morris_section(page, spec, plan, summary, names, chosen)
        elif isinstance(spec.design, SobolDesign):
            _sobol_section(page, spec, plan, summary, names, chosen)
    _failures_section(page, sweep_dir)

    index = report_dir / "index.html"
    try:  # index.html last: the page never points at a figure not yet written
        for fname, data in page.figures.items():
            write_atomic(report_dir / f"{fname}.png", data, sync=False)
        for fname, frame in page.data.items():
            write_atomic(report_dir / f"{fname}.csv", frame.to_csv(index=False).encode("utf-8"), sync=False)
        write_atomic(index, page.html().encode("utf-8"), sync=False)
    except OSError as exc:
        if not is_disk_full(exc):
            raise
        need = sum(len(d) for d in page.figures.values()) + len(page.html()) + 100 * sum(map(len, page.data.values()))
        raise DiskFullError(
            f"disk full writing {exc.filename or report_dir}: the report needs about {format_bytes(need)}, "
            f"{format_bytes(free_bytes(report_dir))} free there; the sweep is untouched: free some space "
            "(or choose another --out) and run 'abm sweep report' again"
        ) from None
    return index


# --- sections ----------------------------------------------------------------------------------------


def _overview(
    page: _Page, state: dict[str, Any], spec: SweepSpec, plan: pd.DataFrame, summary: pd.DataFrame, d: Path
) -> None:
    if spec.description:
        page.para(spec.description)
    unique = plan["run_id"].nunique()
    done = summary["run_id"].nunique() if not summary.empty else 0
    failed = len(read_failures(d))
    design = spec.design
    detail = {
        "grid": "full factorial grid",
        "lhs": f"Latin hypercube, {getattr(design, 'samples', '')} samples",
        "morris": f"Morris, {getattr(design, 'trajectories', '')} trajectories, {getattr(design, 'levels', '')} levels",
        "sobol": f"Sobol (Saltelli), N = {getattr(design, 'samples', '')}"
        + (", second order" if getattr(design, "second_order", False) else ""),
    }[design.method]
    page.table(
        [
            {"": "design", "value": detail},
            {"": "base config", "value": state.get("base_config", spec.base)},
            {"": "fixed overrides", "value": ", ".join(f"{k}={v}" for k, v in spec.set.items()) or "none"},
            {"": "design points", "value": f"{plan['point'].nunique():,}"},
            {
                "": "replicates per point",
                "value": f"{spec.replicates} (sweep seed {spec.seed}, "
                + ("common seeds across points" if spec.common_seeds else "independent seeds per point")
                + ")",
            },
            {"": "runs planned / distinct", "value": f"{len(plan):,} / {unique:,}"},
            {"": "runs finished", "value": f"{done:,}"},
            {"": "runs failed (not yet retried)", "value": f"{failed:,}"},
            {"": "final value", "value": f"mean over the last {spec.outputs.final_window} week(s)"},
        ],
        ["", "value"],
    )
    if done < unique:
        page.para(
            f"{unique - done:,} of {unique:,} runs have no result yet (failed, or the sweep is unfinished): "
            "run the same 'abm sweep' command again to finish them, then rebuild this report.",
            "note",
        )
    rows = []
    for n, p in spec.parameters.items():
        what = (
            ", ".join(_cell(v) for v in p.grid_values())
            if not p.is_range
            else f"{p.low:g} to {p.high:g}"
            + (" (log scale)" if p.log else "")
            + (", whole numbers" if p.integer else "")
        )
        keys = state.get("parameters", {}).get(n, p.keys or [n])
        rows.append({"parameter": n, "config keys": ", ".join(keys), "values": what})
    page.heading("Parameters")
    page.table(rows)


def _is_numeric(s: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s)


def _levels(x: pd.Series, exact: bool = False) -> tuple[pd.Series, np.ndarray, list[str] | None]:
    """Group keys per run, the x position of each group, and tick labels for categories.

    Numeric values are binned into equal-count bins when there are many distinct ones, unless
    `exact` (grid designs: every grid value is its own group).
    """
    if not _is_numeric(x):
        cats = list(dict.fromkeys(x.astype(str)))
        pos = {c: i for i, c in enumerate(cats)}
        key = x.astype(str).map(pos)
        return key, np.arange(len(cats), dtype=float), cats
    distinct = np.unique(x.to_numpy(dtype=float))
    if exact or len(distinct) <= MAX_EXACT_LEVELS:
        return x.astype(float), distinct, None
    bins = min(BINS, max(4, len(x) // 10))
    codes = pd.qcut(x.rank(method="first"), bins, labels=False)
    centres = x.groupby(codes).mean().to_numpy(dtype=float)
    return codes.map(dict(enumerate(centres))), centres, None


def _band_stats(y: pd.Series, key: pd.Series) -> pd.DataFrame:
    g = y.groupby(key)
    stats = pd.DataFrame(
        {
            "mean": g.mean(),
            "n": g.count(),
            "sd": g.std(ddof=1),
            "p10": g.quantile(0.10),
            "p90": g.quantile(0.90),
        }
    )
    stats["ci"] = 1.96 * stats["sd"].fillna(0.0) / np.sqrt(stats["n"].clip(lower=1))
    return stats.sort_index()


def _draw_bands(ax: Any, xs: np.ndarray, st: pd.DataFrame, color: str, label: str | None) -> None:
    ax.fill_between(xs, st["p10"], st["p90"], color=color, alpha=0.15, linewidth=0)
    ax.fill_between(xs, st["mean"] - st["ci"], st["mean"] + st["ci"], color=color, alpha=0.35, linewidth=0)
    ax.plot(
        xs, st["mean"], color=color, linewidth=1.8, marker="o" if len(xs) <= 30 else None, markersize=3, label=label
    )


def _logistic(x: np.ndarray, lo: float, hi: float, x0: float, s: float) -> np.ndarray:
    z = np.clip(-(x - x0) / s, -500, 500)
    return lo + (hi - lo) / (1.0 + np.exp(z))


def _curve_fit(x: np.ndarray, y: np.ndarray, p0: list[float]) -> tuple[np.ndarray, np.ndarray] | None:
    from scipy.optimize import curve_fit

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return curve_fit(_logistic, x, y, p0=p0, maxfev=20000)
    except (RuntimeError, ValueError, TypeError):
        return None


def fit_tipping(
    x: np.ndarray, y: np.ndarray, groups: np.ndarray | None = None, n_boot: int = 200, seed: int = 0
) -> dict[str, Any] | None:
    """Fit y = lo + (hi - lo) / (1 + exp(-(x - x0) / s)) to all runs; None if it does not hold.

    Returns the midpoint `x0` (the tipping point) with a 95% interval, the 10-90% rise region
    `x0 -/+ s ln 9`, the levels at the low and high ends and R^2. None when the fit fails, the
    midpoint lies outside the swept range, or the curve explains little (R^2 < 0.5).

    With `groups` (the replicate of each run) and at least 3 of them, the interval comes from a
    bootstrap over whole replicates (`n_boot` resamples, refitting each): with common seeds the
    runs of one replicate are correlated across x, which the fit's own standard error ignores.
    Otherwise it is x0 -/+ 1.96 standard errors from the fit's covariance.
    """
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok].astype(float), y[ok].astype(float)
    if groups is not None:
        groups = np.asarray(groups)[ok]
    if len(np.unique(x)) < 5 or np.ptp(y) == 0:
        return None
    xs = np.unique(x)
    means = np.array([y[x == v].mean() for v in xs])
    lo, hi = float(means[0]), float(means[-1])
    if hi == lo:
        lo, hi = float(means.min()), float(means.max())
    cross = int(np.argmin(np.abs(means - (lo + hi) / 2)))
    fitted = _curve_fit(x, y, [lo, hi, float(xs[cross]), max(float(np.ptp(xs)) / 10, 1e-9)])
    if fitted is None:
        return None
    popt, pcov = fitted
    lo, hi, x0, s = (float(v) for v in popt)
    resid = y - _logistic(x, *popt)
    r2 = 1 - float(np.sum(resid**2)) / max(float(np.sum((y - y.mean()) ** 2)), 1e-300)
    if not (xs[0] <= x0 <= xs[-1]) or r2 < 0.5 or s == 0:
        return None
    se = float(np.sqrt(pcov[2, 2])) if np.all(np.isfinite(pcov)) else math.nan
    x0_low, x0_high, how = x0 - 1.96 * se, x0 + 1.96 * se, "fit standard error"
    if groups is not None and len(np.unique(groups)) >= 3:
        rng = np.random.default_rng(seed)
        members = [np.flatnonzero(groups == g) for g in np.unique(groups)]
        boots = []
        for _ in range(n_boot):
            idx = np.concatenate([members[i] for i in rng.integers(0, len(members), len(members))])
            refit = _curve_fit(x[idx], y[idx], list(popt))
            if refit is not None:
                boots.append(float(refit[0][2]))
        if len(boots) >= n_boot // 2:
            x0_low, x0_high = (float(v) for v in np.percentile(boots, [2.5, 97.5]))
            how = f"bootstrap over {len(members)} replicates"
    a, b = rise_region(x0, s)
    return {
        "x0": x0,
        "x0_low": x0_low,
        "x0_high": x0_high,
        "interval": how,
        "rise_from": a,
        "rise_to": b,
        "level_at_low_x": lo if s > 0 else hi,
        "level_at_high_x": hi if s > 0 else lo,
        "r2": r2,
        "params": list(popt),
    }


def _outcome_section(page: _Page, spec: SweepSpec, summary: pd.DataFrame, names: list[str], outcome: str) -> None:
    from matplotlib import colormaps
    from matplotlib.figure import Figure

    page.heading(f"{outcome} against each parameter")
    d = len(names)
    cols = min(3, d)
    rows = math.ceil(d / cols)
    fig = Figure(figsize=(4.4 * cols, 3.4 * rows), layout="constrained")
    y = summary[outcome]
    fits: list[dict[str, Any]] = []
    for i, n in enumerate(names):
        ax = fig.add_subplot(rows, cols, i + 1)
        x = summary[n]
        others = [m for m in names if m != n]
        split = None
        if spec.design.method == "grid" and len(others) == 1 and summary[others[0]].nunique() <= 8:
            split = others[0]
        key, xs, cats = _levels(x, exact=spec.design.method == "grid")
        if split is None:
            st = _band_stats(y, key)
            _draw_bands(ax, st.index.to_numpy(dtype=float) if cats is None else xs, st, "#1f5fa8", None)
            if len(summary) <= 20000:
                jitter = 0.0 if cats is None else 0.08
                xk = key.to_numpy(dtype=float) + np.random.default_rng(0).uniform(-jitter, jitter, len(key))
                ax.scatter(xk, y, s=4, color="#333", alpha=0.25, linewidths=0)
        else:
            levels = list(dict.fromkeys(summary[split].sort_values()))
            cmap = colormaps["viridis"]
            for j, lev in enumerate(levels):
                sel = summary[split] == lev
                st = _band_stats(y[sel], key[sel])
                xx = st.index.to_numpy(dtype=float)
                _draw_bands(ax, xx, st, cmap(j / max(len(levels) - 1, 1) * 0.9), f"{split} = {_cell(lev)}")
            ax.legend(fontsize=7, frameon=False)
        if cats is not None:
            ax.set_xticks(xs, cats, rotation=30 if len(cats) > 4 else 0, fontsize=8)
        if d == 1 and _is_numeric(x):
            fit = fit_tipping(
                x.to_numpy(dtype=float), y.to_numpy(dtype=float), summary["replicate"].to_numpy(), seed=spec.seed
            )
            if fit is not None:
                grid = np.linspace(float(x.min()), float(x.max()), 300)
                ax.plot(
                    grid, _logistic(grid, *fit["params"]), "--", color="#c0392b", linewidth=1.2, label="logistic fit"
                )
                ax.axvspan(fit["rise_from"], fit["rise_to"], color="#c0392b", alpha=0.08, linewidth=0)
                ax.axvline(fit["x0"], color="#c0392b", linewidth=0.8)
                ax.legend(fontsize=7, frameon=False)
                fits.append({"parameter": n, **{k: v for k, v in fit.items() if k != "params"}})
        ax.set_xlabel(n, fontsize=9)
        ax.set_ylabel(outcome, fontsize=9)
        ax.tick_params(labelsize=8)
        ax.grid(alpha=0.25)
    caption = (
        f"{outcome}: line = mean over runs at each value"
        + (" (binned into equal-count bins when there are many values)" if spec.design.method != "grid" else "")
        + "; dark band = 95% CI of the mean; light band = 10th-90th percentile of runs (replicate spread)"
        + ("; other parameters vary across the runs at each value" if d > 1 else "")
        + "."
    )
    page.figure(f"outcome_{_slug(outcome)}", fig, caption)
    if fits:
        f = fits[0]
        page.para(
            f"Tipping point: {outcome} {'rises' if f['level_at_high_x'] > f['level_at_low_x'] else 'falls'} "
            f"from {f['level_at_low_x']:.3g} to {f['level_at_high_x']:.3g}; half the change has happened at "
            f"{f['parameter']} = {f['x0']:.3g} (95% CI {f['x0_low']:.3g} to {f['x0_high']:.3g}, {f['interval']}), "
            "and 10-90% of it "
            f"between {f['rise_from']:.3g} and {f['rise_to']:.3g} (logistic fit to every run, R^2 = {f['r2']:.2f})."
        )
        page.table(
            fits,
            ["parameter", "x0", "x0_low", "x0_high", "rise_from", "rise_to", "level_at_low_x", "level_at_high_x", "r2"],
        )
    elif d == 1 and _is_numeric(summary[names[0]]):
        page.para(f"No S-curve fits {outcome} within the swept range (no tipping point located).")


def _series_section(
    page: _Page, spec: SweepSpec, summary: pd.DataFrame, names: list[str], outcomes: list[str], d: Path
) -> None:
    from matplotlib import colormaps
    from matplotlib.figure import Figure

    if spec.outputs.series is None:
        return
    metrics = [o for o in outcomes if o in spec.outputs.series_metrics()] or spec.outputs.series_metrics()[:1]
    first = names[0]
    x = summary[first]
    if _is_numeric(x):
        distinct = np.unique(x.to_numpy(dtype=float))
        if len(distinct) > MAX_SERIES_LEVELS:
            if spec.design.method == "grid":
                idx = np.unique(np.linspace(0, len(distinct) - 1, MAX_SERIES_LEVELS).round().astype(int))
                chosen = list(distinct[idx])
                group = x.astype(float).where(x.astype(float).isin(chosen))
            else:
                codes = pd.qcut(x.rank(method="first"), min(6, len(x)), labels=False)
                group = x.groupby(codes).transform("mean")
        else:
            group = x.astype(float)
    else:
        group = x.astype(str)
    levels = [v for v in dict.fromkeys(group.dropna().sort_values())]
    rng = np.random.default_rng(0)
    wanted: dict[Any, list[str]] = {}
    for lev in levels:
        ids = summary.loc[group == lev, "run_id"].drop_duplicates().to_numpy()
        if len(ids) > MAX_SERIES_RUNS_PER_LEVEL:
            ids = np.sort(rng.choice(ids, MAX_SERIES_RUNS_PER_LEVEL, replace=False))
        wanted[lev] = list(ids)
    all_ids = sorted({i for ids in wanted.values() for i in ids})
    series = read_series(d, metrics, all_ids).to_pandas()
    if series.empty:
        return
    page.heading("Over time")
    cmap = colormaps["viridis"]
    fig = Figure(figsize=(5.2 * len(metrics), 3.6), layout="constrained")
    for k, m in enumerate(metrics):
        ax = fig.add_subplot(1, len(metrics), k + 1)
        sm = series[series["metric"] == m]
        for j, lev in enumerate(levels):
            part = sm[sm["run_id"].isin(wanted[lev])]
            if part.empty:
                continue
            g = part.groupby("step")["value"]
            steps = np.array(sorted(part["step"].unique()))
            color = cmap(j / max(len(levels) - 1, 1) * 0.9)
            ax.fill_between(
                steps,
                g.quantile(0.1).reindex(steps),
                g.quantile(0.9).reindex(steps),
                color=color,
                alpha=0.15,
                linewidth=0,
            )
            ax.plot(steps, g.mean().reindex(steps), color=color, linewidth=1.6, label=f"{first} = {_cell(lev)}")
        ax.set_xlabel("week", fontsize=9)
        ax.set_ylabel(m, fontsize=9)
        ax.tick_params(labelsize=8)
        ax.grid(alpha=0.25)
        ax.legend(fontsize=7, frameon=False)
    page.figure(
        "series",
        fig,
        f"Mean over runs at each value of {first} (band: 10th-90th percentile of runs)"
        + ("; other parameters vary across those runs" if len(names) > 1 else "")
        + ".",
    )


def _point_means(plan: pd.DataFrame, summary: pd.DataFrame, names: list[str], outcome: str) -> tuple[Any, ...]:
    points = plan.drop_duplicates("point").sort_values("point")
    unit = points[[f"u:{n}" for n in names]].to_numpy(dtype=float)
    g = summary.groupby("point")[outcome]
    y = g.mean().reindex(points["point"]).to_numpy(dtype=float)
    within_sd = (
        float(np.sqrt(np.nanmean(g.var(ddof=1).to_numpy(dtype=float))))
        if summary["replicate"].nunique() > 1
        else math.nan
    )
    return unit, y, within_sd


def _morris_section(
    page: _Page, spec: SweepSpec, plan: pd.DataFrame, summary: pd.DataFrame, names: list[str], outcomes: list[str]
) -> None:
    from matplotlib.figure import Figure
    from SALib.analyze import morris

    design = spec.design
    assert isinstance(design, MorrisDesign)
    page.heading("Morris screening (elementary effects)")
    page.para(
        "mu* is the mean absolute elementary effect of moving a parameter by Delta = levels / (2 (levels - 1)) of "
        "its range (all parameters on one normalised scale, so mu* ranks importance); the interval is SALib's "
        "bootstrap 95% CI. sigma large against mu* means non-linear effects or interactions. Outcomes are "
        f"averaged over the {spec.replicates} replicate(s) of each point first."
    )
    d = len(names)
    problem = {"num_vars": d, "names": names, "bounds": [[0.0, 1.0]] * d}
    delta = design.levels / (2 * (design.levels - 1))
    for outcome in outcomes:
        unit, y, within_sd = _point_means(plan, summary, names, outcome)
        blocks = len(y) // (d + 1)
        keep = [t for t in range(blocks) if np.all(np.isfinite(y[t * (d + 1) : (t + 1) * (d + 1)]))]
        if len(keep) < 2:
            page.para(f"{outcome}: too few complete trajectories ({len(keep)}) to estimate effects.", "note")
            continue
        rows_idx = np.concatenate([np.arange(t * (d + 1), (t + 1) * (d + 1)) for t in keep])
        if np.ptp(y[rows_idx]) == 0:
            page.para(f"{outcome}: does not vary across the design (all effects are zero).", "note")
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = morris.analyze(
                problem,
                unit[rows_idx],
                y[rows_idx],
                num_resamples=1000,
                conf_level=0.95,
                num_levels=design.levels,
                seed=spec.seed,
            )
        floor = 2 * within_sd / (math.sqrt(math.pi * spec.replicates) * delta) if math.isfinite(within_sd) else math.nan
        order = np.argsort(-np.asarray(res["mu_star"], dtype=float))
        rows = [
            {
                "rank": r + 1,
                "parameter": names[i],
                "mu*": float(res["mu_star"][i]),
                "mu* 95% CI ±": float(res["mu_star_conf"][i]),
                "mu": float(res["mu"][i]),
                "sigma": float(res["sigma"][i]),
                "above noise": "yes"
                if not math.isfinite(floor) or res["mu_star"][i] - res["mu_star_conf"][i] > floor
                else "no",
            }
            for r, i in enumerate(order)
        ]
        page.heading(outcome, 3)
        if len(keep) < blocks:
            page.para(
                f"{blocks - len(keep)} of {blocks} trajectories left out: some of their runs have no result.", "note"
            )
        fig = Figure(figsize=(10, 0.35 * d + 1.8), layout="constrained")
        ax = fig.add_subplot(1, 2, 1)
        ranked = order[::-1]
        ax.barh(
            [names[i] for i in ranked],
            np.asarray(res["mu_star"])[ranked],
            xerr=np.asarray(res["mu_star_conf"])[ranked],
            color="#1f5fa8",
            alpha=0.8,
            capsize=2,
        )
        if math.isfinite(floor):
            ax.axvline(floor, color="#c0392b", linestyle="--", linewidth=1, label="replicate-noise floor")
            ax.legend(fontsize=7, frameon=False)
        ax.set_xlabel(f"mu* ({outcome})", fontsize=9)
        ax.tick_params(labelsize=8)
        ax2 = fig.add_subplot(1, 2, 2)
        ax2.scatter(res["mu_star"], res["sigma"], color="#1f5fa8")
        for i, n in enumerate(names):
            ax2.annotate(n, (res["mu_star"][i], res["sigma"][i]), fontsize=7, xytext=(3, 3), textcoords="offset points")
        top = max(float(np.nanmax(res["mu_star"])), float(np.nanmax(res["sigma"])), 1e-12)
        ax2.plot([0, top], [0, top], color="#999", linewidth=0.8, linestyle=":")
        ax2.set_xlabel("mu*", fontsize=9)
        ax2.set_ylabel("sigma", fontsize=9)
        ax2.tick_params(labelsize=8)
        ax2.grid(alpha=0.25)
        page.figure(f"morris_{_slug(outcome)}", fig, f"Morris mu* (bootstrap 95% CI) and sigma for {outcome}, ranked.")
        page.table(rows)
        page.data[f"morris_{_slug(outcome)}"] = pd.DataFrame(
            {
                "parameter": [r["parameter"] for r in rows],
                "mu_star": [r["mu*"] for r in rows],
                "mu_star_conf95": [r["mu* 95% CI ±"] for r in rows],
                "mu": [r["mu"] for r in rows],
                "sigma": [r["sigma"] for r in rows],
                "noise_floor": floor,
                "above_noise": [r["above noise"] == "yes" for r in rows],
            }
        )
        if math.isfinite(floor):
            page.para(
                f"Noise floor: replicate spread alone (within-point SD {within_sd:.3g}, {spec.replicates} replicates) "
                f"would give mu* about {floor:.3g}; effects whose CI lies above it are marked 'above noise'."
            )


def _sobol_section(
    page: _Page, spec: SweepSpec, plan: pd.DataFrame, summary: pd.DataFrame, names: list[str], outcomes: list[str]
) -> None:
    from matplotlib.figure import Figure
    from SALib.analyze import sobol

    design = spec.design
    assert isinstance(design, SobolDesign)
    page.heading("Sobol indices (variance-based)")
    page.para(
        "S1: share of the outcome's variance due to a parameter alone; ST: including all its interactions (95% "
        "bootstrap CIs, SALib). ST much above S1 means interactions. Outcomes are averaged over the "
        f"{spec.replicates} replicate(s) of each point first; replicate noise inflates ST and the intervals."
    )
    d = len(names)
    problem = {"num_vars": d, "names": names, "bounds": [[0.0, 1.0]] * d}
    for outcome in outcomes:
        page.heading(outcome, 3)
        _unit, y, within_sd = _point_means(plan, summary, names, outcome)
        missing = int(np.sum(~np.isfinite(y)))
        if missing:
            page.para(
                f"{missing} of {len(y)} design points have no result yet: Sobol indices need every point. "
                "Run the sweep again to retry the failed runs.",
                "note",
            )
            continue
        if np.ptp(y) == 0:
            page.para(f"{outcome} does not vary across the design: every index is zero.", "note")
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = sobol.analyze(
                problem,
                y,
                calc_second_order=design.second_order,
                num_resamples=1000,
                conf_level=0.95,
                seed=spec.seed,
            )
        order = np.argsort(-np.asarray(res["ST"], dtype=float))
        rows = [
            {
                "rank": r + 1,
                "parameter": names[i],
                "ST": float(res["ST"][i]),
                "ST 95% CI ±": float(res["ST_conf"][i]),
                "S1": float(res["S1"][i]),
                "S1 95% CI ±": float(res["S1_conf"][i]),
            }
            for r, i in enumerate(order)
        ]
        fig = Figure(figsize=(7, 0.4 * d + 1.8), layout="constrained")
        ax = fig.add_subplot(1, 1, 1)
        ranked = order[::-1]
        pos = np.arange(d)
        ax.barh(
            pos + 0.2,
            np.asarray(res["ST"])[ranked],
            height=0.4,
            xerr=np.asarray(res["ST_conf"])[ranked],
            color="#1f5fa8",
            capsize=2,
            label="ST (total)",
        )
        ax.barh(
            pos - 0.2,
            np.asarray(res["S1"])[ranked],
            height=0.4,
            xerr=np.asarray(res["S1_conf"])[ranked],
            color="#7fb3e6",
            capsize=2,
            label="S1 (first order)",
        )
        ax.set_yticks(pos, [names[i] for i in ranked], fontsize=8)
        ax.axvline(0, color="#999", linewidth=0.8)
        ax.set_xlabel(f"Sobol index ({outcome})", fontsize=9)
        ax.legend(fontsize=8, frameon=False)
        ax.grid(alpha=0.25, axis="x")
        page.figure(f"sobol_{_slug(outcome)}", fig, f"Sobol total and first-order indices for {outcome}, ranked by ST.")
        page.table(rows)
        table = pd.DataFrame(
            {
                "parameter": [r["parameter"] for r in rows],
                "ST": [r["ST"] for r in rows],
                "ST_conf95": [r["ST 95% CI ±"] for r in rows],
                "S1": [r["S1"] for r in rows],
                "S1_conf95": [r["S1 95% CI ±"] for r in rows],
            }
        )
        if design.second_order and "S2" in res:  # one row per pair after the parameters' rows
            i, j = np.triu_indices(d, 1)
            pairs = pd.DataFrame(
                {
                    "parameter": [f"{names[a]} x {names[b]}" for a, b in zip(i, j, strict=True)],
                    "S2": np.asarray(res["S2"])[i, j],
                    "S2_conf95": np.asarray(res["S2_conf"])[i, j],
                }
            )
            table = pd.concat([table, pairs], ignore_index=True)
        page.data[f"sobol_{_slug(outcome)}"] = table
        if design.second_order and "S2" in res:
            pairs = []
            for i in range(d):
                for j in range(i + 1, d):
                    pairs.append(
                        {
                            "pair": f"{names[i]} x {names[j]}",
                            "S2": float(res["S2"][i, j]),
                            "S2 95% CI ±": float(res["S2_conf"][i, j]),
                        }
                    )
            pairs.sort(key=lambda r: -r["S2"] if math.isfinite(r["S2"]) else math.inf)
            page.para("Strongest second-order interactions:")
            page.table(pairs[:10])
        if math.isfinite(within_sd):
            page.para(
                f"Replicate spread: within-point SD of {outcome} = {within_sd:.3g} (outcome SD across points "
                f"{float(np.std(y)):.3g})."
            )


def _failures_section(page: _Page, d: Path) -> None:
    failures = read_failures(d)
    if not failures:
        return
    page.heading("Failed runs")
    page.para(
        f"{len(failures)} run(s) failed and have not succeeded since (latest error shown; full tracebacks in "
        "failures.jsonl). Running the same 'abm sweep' command again retries them."
    )
    page.table(
        [
            {
                "run_id": f["run_id"],
                "point": f.get("point"),
                "replicate": f.get("replicate"),
                "parameters": ", ".join(f"{k}={_cell(v)}" for k, v in (f.get("params") or {}).items()),
                "error": f.get("error", ""),
            }
            for f in failures[:50]
        ]
    )


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in text)
