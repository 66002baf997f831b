"""Recompute every figure docs/workshop.md quotes, the way the app computes it.

Comparisons go through the Compare tab's own function (`abm.app.compare.run_comparison` and
`summary_rows`, seeds 1, 2, ... as the tab uses them from seed 1); single runs go through the
app's own session (`abm.app.session.Session`: scenario, seed 1, sliders, **+1 year**, fired
events), as a participant's browser tab does. Run from the repository root:

    python docs/workshop_figures.py          # about a minute on one core
"""

from __future__ import annotations

from abm.app import compare
from abm.app.session import Session
from abm.app.settings import Settings

WEEKS = 208


def seeds(n: int, first: int = 1) -> tuple[int, ...]:
    return tuple(first + k for k in range(n))


def show_compare(a: str, b: str, n: int = 5) -> compare.CompareResult:
    res = compare.run_comparison(Settings.for_preset(a), Settings.for_preset(b), seeds(n), WEEKS)
    print(f"\nCompare A = {a}, B = {b}, seeds {res.seeds[0]}-{res.seeds[-1]}, {WEEKS} weeks")
    for r in compare.summary_rows(res):
        print(f"  {r['measure']:<34} A {r['a']:<20} B {r['b']:<20} {r['diff']:>13}  CI {r['ci']:<14} {r['verdict']}")
    return res


def seed_one(res: compare.CompareResult, s: int) -> str:
    """Scenario s (0 = A, 1 = B) with the first seed, at the last week (the four cards and inactivity)."""
    return "  ".join(f"{label} {100 * res.series[c][s, 0, -1]:.1f}%" for c, label in compare.METRICS)


def session(preset: str, seed: int = 1, **sliders) -> Session:
    settings = Settings.for_preset(preset, seed).with_(**sliders)
    ses = Session(settings)
    ses.reset(settings, map=None)
    return ses


def cards(ses: Session) -> str:
    f = ses.view().frame.iloc[-1]
    return "  ".join(f"{label} {100 * f[c]:.1f}%" for c, label in compare.METRICS)


def main() -> None:
    # Getting everyone in: the baseline (seed 1 is what the room sees; seeds 1-5 for the range)
    res = show_compare("workshop/w0_baseline", "workshop/w2_national_tight")
    print("  seed 1, A:", seed_one(res, 0))
    print("  seed 1, B:", seed_one(res, 1))

    # Exercise 1: Grangetown in the Trends tab (seed 1), then the comparison
    for preset in ("workshop/w1_grangetown_no_insight", "workshop/w1_grangetown_insight"):
        shares = []
        for seed in seeds(5):
            ses = session(preset, seed)
            ses.advance(WEEKS)
            v = ses.view()
            shares.append(100 * v.ward_shares[-1, v.ward_names.index("grangetown"), 3])
            if seed == 1:
                print(f"\n{preset}, seed 1, week {v.week}: Grangetown common purpose {shares[0]:.1f}%")
                print("  whole system:", cards(ses))
        print(f"  Grangetown common purpose, seeds 1-5: {', '.join(f'{x:.1f}%' for x in shares)}")
    show_compare("workshop/w1_grangetown_no_insight", "workshop/w1_grangetown_insight")
    show_compare("workshop/w1_grangetown_no_insight", "workshop/w1_grangetown_insight", 8)

    # Exercise 2: the tight cap, seed 1, relaxed to 0.9 at week 104 from "Fire an event now"
    ses = session("workshop/w2_national_tight")
    ses.advance(104)
    v = ses.view()
    print(
        f"\nworkshop/w2_national_tight, seed 1: week 104 staff-mean structural alignment {v.structural_alignment:.2f}, "
        f"highest organisation {v.max_structural_alignment:.2f}"
    )
    print("  week 104:", cards(ses))
    ses.fire("national_policy_change", structural_cap=0.9)
    ses.advance(16)
    print(f"  relaxed to 0.9: week {ses.view().week} alignment {ses.view().structural_alignment:.2f}")
    ses.advance(WEEKS)
    v = ses.view()
    print(f"  relaxed to 0.9: week {v.week} alignment {v.structural_alignment:.2f}; {cards(ses)}")
    tight = session("workshop/w2_national_tight")
    tight.advance(WEEKS)
    f = tight.view().frame
    print(
        f"  not relaxed, seed 1, week {WEEKS}: {cards(tight)}; highest organisation ever "
        f"{f['max_structural_alignment'].max():.3f}"
    )

    # Exercise 3: turnover and legacy
    res = show_compare("workshop/w3_turnover_embedded", "workshop/w3_turnover_not_embedded")
    for c, label in compare.METRICS[:4]:
        m = 100 * res.series[c].mean(axis=1)
        print(
            f"  {label:<20} mean over seeds: A week 130 {m[0, 130]:.1f}% -> 208 {m[0, -1]:.1f}%;"
            f" B week 130 {m[1, 130]:.1f}% -> 208 {m[1, -1]:.1f}%"
        )
    ses = session("workshop/w3_turnover_embedded")
    ses.advance(WEEKS)
    s, lad = ses.model.state, ses.model.config.ladder
    acting = s.acting & s.staff
    routine = acting & (s.vision < lad.vision_threshold)
    print(
        f"  A, seed 1, week {WEEKS}: {acting.sum()} staff act, {routine.sum()} of them without the vision, "
        f"{(routine & (s.replaced > 0)).sum()} of those in a post that changed hands"
    )

    # Exercise 4: whole system or silos, with the app's 5 and 8 seeds, and 20 seeds (Python only)
    for n in (5, 8, 20):
        res = show_compare("workshop/w4_whole_system", "workshop/w4_siloed", n)
    print("  seed 1, A:", seed_one(res, 0))
    print("  seed 1, B:", seed_one(res, 1))

    # Exercise 5: the budget slider, seed 1, Reset each time
    print("\nworkshop/w5_low_budget, seed 1, week 208, common purpose by effort budget:")
    for budget in (25, 50, 75, 100, 140):
        ses = session("workshop/w5_low_budget", budget=float(budget))
        ses.advance(WEEKS)
        print(f"  budget {budget:>3}: {cards(ses)}")


if __name__ == "__main__":
    main()
