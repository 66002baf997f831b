"""Plain-language explanations of each mechanism, with the running scenario's own numbers.

For a workshop: what the mechanism is in the pilot's terms, how this model represents it (and
with which values in the scenario now running), and what to try in the app to see it. Details
and equations are in docs/ODD.md.
"""

from __future__ import annotations

from dataclasses import dataclass

from abm.app.svg import esc
from abm.config import Config


@dataclass(frozen=True)
class Mechanism:
    key: str
    title: str
    idea: str  # the pilot's idea, in plain words
    model: str  # how the model does it (may contain {placeholders} filled from the config)
    try_this: str


MECHANISMS: tuple[Mechanism, ...] = (
    Mechanism(
        "ladder",
        "Vision, Value, Collective function = Common purpose",
        "People first hear of the shared vision (active lives as a way of life) and subscribe to it, then "
        "come to value it against their own goals, then act on it with others. Someone who holds all three "
        "for long enough has reached common purpose.",
        "Each person has a vision and a value between 0 and 1 and acts or not each week. They subscribe at "
        "vision ≥ {vision_threshold}, value it at value ≥ {value_threshold}, and reach common purpose when "
        "vision, value and action have been held in at least {sustain_pct} of recent weeks (a memory of about "
        "{sustain_weeks} weeks). The ladder: unaware, engaged, subscribed, valuing, acting, common purpose.",
        "Watch the ladder chart on the System tab: common purpose lags acting by weeks. The ladder is not "
        "strict: as the article says, the process is nonlinear, and people can act in line with the vision "
        "without consciously subscribing (routine action puts them on the acting rung).",
    ),
    Mechanism(
        "effort",
        "The effort budget and how it is split",
        "The pilot has limited time and money each week and chooses where to spend it.",
        "{budget} effort units a week per 1,000 people, split {shares}. Each activity buys a random number of "
        "actions at its own cost. Policy: {policy} (adaptive moves effort towards whatever is most misaligned: "
        "culture or structures).",
        "Halve the budget (Effort section) and Reset; or fire a funding cut mid-run. Is the result half as "
        "good, or much worse?",
    ),
    Mechanism(
        "engagement",
        "Engagement",
        "Meeting people, starting relationships, spreading first awareness of the vision.",
        "Each engagement action reaches a person (weighted towards target wards: {targeting}), makes them "
        "aware and moves their vision {vision_gain} of the way up, and starts a new tie (trust {new_tie}).",
        "Set engagement's share to 0 and Reset: awareness still spreads by influence, but how fast?",
    ),
    Mechanism(
        "insight",
        "Insight",
        "Deep understanding of a person's or a ward's situation, which makes later work there land better.",
        "Insight into a person and their ward offsets cultural misalignment in how influence lands (up to "
        "{insight_effect} of it), narrows misalignment slowly ({culture_shift} a week at full insight) and "
        "fades ({insight_decay} a week) unless renewed.",
        "Exercise 1 of the workshop guide: aim little insight and engagement at one ward and compare.",
    ),
    Mechanism(
        "collaborative",
        "Collaborative working",
        "Joint projects between people who already work together, some brokered across sectors.",
        "An aware member of staff starts a project with someone they are tied to (who may be a resident); "
        "it raises trust ({trust_gain}) and value ({collab_value}); {brokered} of projects are brokered across "
        "sectors and create new ties; when both partners are staff of different organisations, each moves "
        "their own organisation's structures a little ({collab_structure} x their vision x value).",
        "Compare the whole-system and siloed scenarios (Compare tab): cross-sector ties carry common purpose further.",
    ),
    Mechanism(
        "leadership",
        "Collective leadership",
        "Committed leaders sharing power, responsibility and accountability: the capacity that changes structures.",
        "A simplification: a committed senior person (level ≥ {min_level}: managers, commissioners, leaders) "
        "works with an aware senior partner in another organisation; the session raises trust and value, and "
        "the lead's commitment moves both organisations' structural alignment towards the national cap "
        "({lead_structure} a session). Frontline staff and residents do not take part.",
        "Fire 'a leader leaves' while structures are changing: the best connected leader is replaced by a newcomer.",
    ),
    Mechanism(
        "embedding",
        "Embedded processes",
        "Formalising new ways of working so that they outlast the people who made them: the legacy.",
        "Committed staff embed processes in their organisation (success {success} at full commitment). "
        "Embedded processes raise structural alignment, produce routine action even without conscious "
        "commitment (up to {embedded_action}), and protect vision, value, ties and structures when staff "
        "leave. Legacy = 1 − exp(−processes / {legacy_half}).",
        "Raise turnover with and without embedding (workshop exercise 3).",
    ),
    Mechanism(
        "influence",
        "Social influence",
        "People take on the vision and its value from those they trust.",
        "Rule: {rule}. Averaging: each week a person moves {rate} of the way towards the trust- and "
        "influence-weighted mean of their neighbours (slower downwards). Threshold: they jump up once enough "
        "of their neighbours hold it. How far it lands is gated by their cultural alignment and the pilot's "
        "insight.",
        "Switch the influence rule to threshold (People section) and Reset: does change start later and then "
        "run faster?",
    ),
    Mechanism(
        "feedback",
        "Feedback loops",
        "Seeing others act, and seeing results, makes the vision feel worth it; doing it yourself too.",
        "Value rises with neighbours' visible action ({fb_action}), with falling inactivity where one lives or "
        "works ({fb_results}) and with one's own acting ({fb_doing}); value not acted on fades ({fb_forget} a "
        "week).",
        "Look for the bend upwards in the trend chart: once some act, value grows faster.",
    ),
    Mechanism(
        "acting",
        "Acting: the collective function",
        "Commitment becomes action only if structures allow it; routines can produce action without "
        "conscious commitment.",
        "Commitment = vision × value × (0.5 + 0.5 skills) becomes a chance to act above {act_threshold}; "
        "structural alignment multiplies it (exponent {structure_exponent}: misaligned structures block the "
        "committed); embedded processes add routine action; people who acted last week tend to carry on "
        "({habit}).",
        "Compare aligned and misaligned structures: people value the vision but cannot act on it.",
    ),
    Mechanism(
        "culture",
        "Cultural influences, local and national",
        "Ideas, beliefs and values in wards and organisations that make the vision easier or harder to take up.",
        "This model's reading (the article says only that aligned culture makes common purpose easier): "
        "each person's cultural alignment starts near their ward's ({ward_cultures}) and gates how far "
        "influence lands; national culture (×{national_culture}) multiplies it. Insight slowly narrows the "
        "gap.",
        "Lower one ward's cultural alignment (Culture section) and watch that ward in the By ward trends.",
    ),
    Mechanism(
        "structure",
        "Structural influences and the national constraint",
        "Processes, hierarchies and roles, and above them national policy, legal, financial and "
        "accountability frameworks.",
        "This model's reading (the article says only that aligned structures make common purpose easier): "
        "each organisation has a structural alignment between 0 and 1 that gates its staff's acting. Only "
        "collaborative working, collective leadership and embedding raise it, turnover erodes unembedded "
        "gains, and in this model it never goes above the national cap ({cap}): a cap below an "
        "organisation's starting alignment clips it from week 0.",
        "Fire a national policy change with a lower cap mid-run: alignment is clipped at once. Raise the cap "
        "again later: the plateau lifts.",
    ),
    Mechanism(
        "turnover",
        "Turnover and legacy",
        "People leave; relationships and history go with them unless ways of working are embedded.",
        "{turnover_pct} of staff leave each year. A newcomer starts like anyone new to the post, lifted "
        "towards colleagues by the organisation's legacy of embedded processes; up to {tie_loss} of the "
        "post's outside ties are lost, fewer where that legacy is strong.",
        "Raise turnover (People section) with embedding on and off.",
    ),
    Mechanism(
        "residents",
        "Residents' activity (Active Lives)",
        "Residents become more active through contact with professionals who act on the vision, and local culture.",
        "Residents move between inactive (< 30 min a week), fairly active (30-149) and active (150+) with "
        "chances that hold each ward's starting mix steady; professionals in contact with residents (GPs, "
        "housing officers, VCSE and business staff) who act add a chance of moving up ({pro_effect} at full "
        "exposure) and protect against relapse. By design, residents change only through acting "
        "professionals: the model cannot show community-led change.",
        "Compare professionals acting and blocked (pattern P8): this is built in, not discovered; use it to "
        "ask what the assumption leaves out.",
    ),
)


def _pct(x: float) -> str:
    return f"{100 * x:.0f}%"


def values(cfg: Config) -> dict[str, str]:
    """The scenario's numbers that the explanations quote, formatted."""
    a = cfg.activities
    shares = cfg.effort.shares.normalised()
    names = {
        "engagement": "engagement",
        "insight": "insight",
        "collaborative": "collaborative",
        "leadership": "leadership",
        "embedding": "embedding",
    }
    split = ", ".join(f"{names[k]} {_pct(v)}" for k, v in shares.items())
    targeting = (
        ", ".join(f"{(cfg.wards[w].label or w)} ×{weight:g}" for w, weight in cfg.effort.ward_targeting.items())
        or "every ward alike"
    )
    wards = ", ".join(f"{(w.label or k)} {w.cultural_alignment:.2f}" for k, w in cfg.wards.items())
    return {
        "vision_threshold": f"{cfg.ladder.vision_threshold:g}",
        "value_threshold": f"{cfg.ladder.value_threshold:g}",
        "sustain_pct": _pct(cfg.ladder.sustain_level),
        "sustain_weeks": f"{cfg.ladder.sustain_weeks:g}",
        "budget": f"{cfg.effort.budget:g}",
        "shares": split,
        "policy": cfg.effort.policy,
        "targeting": targeting,
        "vision_gain": _pct(a.engagement.vision_gain),
        "new_tie": f"{cfg.network.trust.new_tie:g}",
        "insight_effect": _pct(cfg.influence.insight_effect),
        "culture_shift": f"{a.insight.culture_shift:g}",
        "insight_decay": f"{a.insight.decay:g}",
        "trust_gain": f"+{a.collaborative.trust_gain:g}",
        "collab_value": f"+{a.collaborative.value_gain:g}",
        "brokered": _pct(a.collaborative.brokered_share),
        "collab_structure": f"+{a.collaborative.structure_gain:g}",
        "min_level": str(a.leadership.min_level),
        "lead_structure": f"+{a.leadership.structure_gain:g}",
        "success": _pct(a.embedding.success),
        "embedded_action": _pct(cfg.acting.embedded_action),
        "legacy_half": f"{a.embedding.legacy_half:g}",
        "rule": cfg.influence.rule.replace("_", " "),
        "rate": _pct(cfg.influence.rate),
        "fb_action": f"{cfg.feedback.action:g}",
        "fb_results": f"{cfg.feedback.results:g}",
        "fb_doing": f"{cfg.feedback.doing:g}",
        "fb_forget": f"{cfg.feedback.forgetting:g}",
        "act_threshold": f"{cfg.acting.threshold:g}",
        "structure_exponent": f"{cfg.acting.structure_exponent:g}",
        "habit": _pct(cfg.acting.habit),
        "ward_cultures": wards,
        "national_culture": f"{cfg.national.cultural_alignment:.2f}",
        "cap": f"{cfg.national.structural_cap:.2f}",
        "turnover_pct": _pct(cfg.turnover.annual_rate),
        "tie_loss": _pct(cfg.turnover.tie_loss),
        "pro_effect": f"{cfg.residents_activity.professional_effect:g}",
    }


def explain_html(mechanism: Mechanism, cfg: Config) -> str:
    """One mechanism as HTML: the idea, how the model does it (with this scenario's numbers), what to try."""
    filled = mechanism.model.format(**values(cfg))
    return (
        '<div class="cp-explain">'
        f"<p>{esc(mechanism.idea)}</p>"
        f"<p><b>In this model:</b> {esc(filled)}</p>"
        f"<p><b>Try this:</b> {esc(mechanism.try_this)}</p>"
        "</div>"
    )
