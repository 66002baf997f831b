"""Write docs/config_reference.md from the pydantic schema in abm/config.py.

Walks `Config` and every nested model (`model_fields`, field annotations, and the ge/gt/le/lt
metadata that `Field(...)` and the `Unit`/`NonNeg`/`Positive` aliases attach), and writes one
Markdown table per section: dotted key, type, schema default, allowed range, description.

Run from the repository root:

    python docs/make_config_reference.py            # writes docs/config_reference.md
    python docs/make_config_reference.py --check    # exit 1 if the file is out of date
"""

from __future__ import annotations

import argparse
import inspect
import sys
import types
import typing
from pathlib import Path
from typing import Annotated, Any, Literal, Union

import annotated_types as at
from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from abm import config as C  # noqa: E402

OUT = ROOT / "docs" / "config_reference.md"

#: Descriptions for fields that have none in abm/config.py (shown with a dagger).
FALLBACK = {
    "name": "scenario name (shown in outputs and run.json)",
    "description": "free text describing the scenario",
    "seed": "seed of the single random generator, used when the caller passes none; null: fresh entropy",
    "roles": "roles by name; exactly one must have staff: false (the residents)",
    "wards": "places by name: the target wards and the rest of South Tees",
    "organisations": "organisation types by name, each instantiated count x staff_scale times",
    "communities": "communities of interest by name",
    "events": "scenario events, each fired at the start of its week (see the event types below)",
    "label": "display name",
    "sector": "sector name (ties between different sectors are cross-sector ties)",
    "staff": "staff per instance, by role name",
    "activity": "Active Lives class mix of the ward's residents at week 0 (sums to 1)",
    "inactive": "share inactive (< 30 minutes a week)",
    "fairly_active": "share fairly active (30-149 minutes a week)",
    "active": "share active (150+ minutes a week)",
    "cultural_alignment@organisations": (
        "fit of the organisation's ideas and beliefs to the vision (staff culture: mean of this and their ward's)"
    ),
    "members": "who belongs: residents (drawn with `share`) or staff (by `roles`)",
    "residents": "number of resident agents (the residents are a sample, not all ~280,000 people)",
    "generator": "network generator (only the synthetic South Tees generator exists; not used when `source` is set)",
    "within_org_degree": "mean ties per staff member to colleagues in the same organisation",
    "within_organisation": "mean initial trust of ties within an organisation",
    "cross_sector": (
        "mean initial trust of ties across sectors (ties between organisations of one sector get the mean of "
        "this and within_organisation)"
    ),
    "professional_resident": "mean initial trust of staff-resident ties",
    "resident_resident": "mean initial trust of resident-resident ties",
    "policy": "allocation policy: fixed shares, or shares tilted by measured misalignment",
    "shares": "shares of the budget per activity (normalised to sum 1; a disabled activity's share is not spent)",
    "engagement@shares": "relative share of effort for engagement",
    "insight@shares": "relative share of effort for insight",
    "collaborative@shares": "relative share of effort for collaborative working",
    "leadership@shares": "relative share of effort for collective leadership",
    "embedding@shares": "relative share of effort for embedded processes",
    "enabled": "switch this stage or activity on or off",
    "cost": "effort units per action (actions per week ~ Poisson(units / cost))",
    "trust_gain@collaborative": "rise in a tie's trust per project, times (1 - trust)",
    "value_gain@collaborative": "rise in both partners' value per project, times vision x culture gate x (1 - value)",
    "value_gain@leadership": "rise in both participants' value per session, times vision x (1 - value)",
    "rule": "social influence rule: averaging (simple contagion) or threshold (complex contagion)",
    "groups": "group kinds recorded in groups.parquet",
    "week": "week (step) at whose start the event fires",
    "type": "event type (discriminator)",
    "structural_cap@national_policy_change": "new national structural cap (null: unchanged)",
    "cultural_alignment@national_policy_change": "new national cultural alignment (null: unchanged)",
    "count@leader_leaves": "how many holders of the role leave",
    "role@leader_leaves": "role of the people who leave",
    "who": "most_connected (highest degree first) or random",
    "name@partner_joins": "name of the new organisation",
    "sector@partner_joins": "its sector (a new sector name is allowed)",
    "staff@partner_joins": "its staff, by role name",
    "structural_alignment@partner_joins": "its structural alignment (capped by the national cap)",
    "cultural_alignment@partner_joins": "its cultural alignment (staff culture: mean of this and their ward's)",
    "wards@partner_joins": "wards its staff are spread over",
    "ties_per_staff": "cross-sector ties per new staff member (rounded)",
}

#: Clarifications from the code, appended to a schema description (shown with a double dagger).
NOTES = {
    "count@organisations": "instances of this type, before `population.staff_scale` (at least 1 when count > 0)",
    "habit@acting": "combined with this week's probability p as 1 - (1 - p)(1 - habit), only when p > 0",
    "residents_structure@acting": (
        "residents' structure is 1 - this x (1 - staff-weighted alignment of their ward's organisations); "
        "a ward without staff uses the mean over all staff"
    ),
    "legacy_half@embedding": "63% (not 50%) of legacy at this many embedded processes",
    "sustain_weeks@ladder": "the moving average has weight 1/sustain_weeks",
    "decline@influence": "downward moves are gated by susceptibility only; upward moves also by the culture gate",
    "budget@effort": "agents include residents; a disabled activity's share is not reallocated",
    "ward_targeting@effort": "applies to staff (by the ward they work in) and residents alike",
    "vision_gain@engagement": "at every contact (aware people are drawn at 0.3 of the weight), times the culture gate",
    "ward_gain@insight": (
        "only contacts with the ward's residents count; contacts/residents is capped at 1 and ward insight at 1"
    ),
    "structure_gain@collaborative": (
        "only when both partners are staff of different organisations; each organisation's shift is times "
        "the vision x value of its own member of the pair"
    ),
    "structure_gain@leadership": (
        "both the lead's and the partner's organisation, times the lead's vision x value and the room below the cap"
    ),
    "trust_gain@leadership": (
        "times (1 - trust), for lead-partner pairs in different organisations; a missing tie starts at "
        "network.trust.new_tie"
    ),
    "new_tie@trust": (
        "also for ties started by collective leadership and partner_joins (collaborative: new_tie + trust_gain "
        "x (1 - new_tie)); a leaver's kept ties above it are lowered towards it"
    ),
    "culture_weight@residents_activity": (
        "the gate is 1 - culture_weight x (1 - own culture x national cultural alignment)"
    ),
    "cultural_alignment@national": (
        "in the culture gate, the residents' activity gate and the adaptive allocation's cultural gap"
    ),
    "tie_loss@turnover": "within-organisation ties are never lost",
    "resident_contact@roles": "only staff roles' values are used",
    "initial_vision@roles": "also newcomers' starting mean at turnover, unless their organisation overrides it",
    "initial_value@roles": "also newcomers' starting mean at turnover, unless their organisation overrides it",
    "initial_aware@roles": "newcomers at turnover are aware with chance max(this, legacy), unless overridden",
    "initial_vision@organisations": "also newcomers' starting mean at turnover",
    "initial_value@organisations": "also newcomers' starting mean at turnover",
    "initial_aware@organisations": "also for newcomers at turnover (aware with chance max(this, legacy))",
    "age_bands@population": "drawn for residents at initialisation; no process uses them",
    "brokered_share@collaborative": "non-brokered partners are random neighbours, residents included",
}

#: Placeholder used in dotted paths for the keys of each named mapping.
PLACEHOLDER = {"roles": "role", "wards": "ward", "organisations": "type", "communities": "community"}

TOP_TITLE = "Scenario (top level)"


# --- rendering types and constraints ----------------------------------------------------------


def _strip(tp: Any) -> tuple[Any, list[Any]]:
    """Remove Annotated layers, collecting their metadata."""
    meta: list[Any] = []
    while typing.get_origin(tp) is Annotated:
        tp, *extra = typing.get_args(tp)
        for m in extra:
            meta.extend(m.metadata if isinstance(m, FieldInfo) else [m])
    return tp, meta


def _is_union(tp: Any) -> bool:
    return typing.get_origin(tp) in (Union, types.UnionType)


def type_name(tp: Any) -> str:
    tp, _ = _strip(tp)
    origin = typing.get_origin(tp)
    if tp is type(None):
        return "null"
    if _is_union(tp):
        return " or ".join(type_name(a) for a in typing.get_args(tp))
    if origin is Literal:
        return "str"
    if origin is list:
        inner, _ = _strip(typing.get_args(tp)[0])
        return "list of str" if typing.get_origin(inner) is Literal else f"list of {type_name(inner)}"
    if origin is dict:
        k, v = typing.get_args(tp)
        return f"mapping {type_name(k)} → {type_name(v)}"
    if inspect.isclass(tp) and issubclass(tp, BaseModel):
        return "section"
    return getattr(tp, "__name__", str(tp))


def _bounds(meta: list[Any]) -> str:
    lo = hi = None
    lo_open = hi_open = False
    for m in meta:
        if isinstance(m, at.Ge):
            lo = m.ge
        elif isinstance(m, at.Gt):
            lo, lo_open = m.gt, True
        elif isinstance(m, at.Le):
            hi = m.le
        elif isinstance(m, at.Lt):
            hi, hi_open = m.lt, True
    if lo is None and hi is None:
        return ""

    def num(x: Any) -> str:
        if isinstance(x, float) and x.is_integer() and abs(x) < 1e15:
            x = int(x)
        if isinstance(x, int) and abs(x) >= 10_000:
            return f"{x:,}" if x < 2**62 else "2⁶³−1"
        return str(x)

    left = ("(" if lo_open else "[") + (num(lo) if lo is not None else "−∞")
    right = (num(hi) if hi is not None else "∞") + (")" if hi_open or hi is None else "]")
    return f"{left}, {right}"


def range_text(tp: Any, field_meta: list[Any]) -> str:
    """Allowed values: numeric bounds, literal choices, or bounds of the values of a mapping."""
    tp, meta = _strip(tp)
    meta = list(field_meta) + meta
    if _is_union(tp):
        parts = []
        for a in typing.get_args(tp):
            inner, _ = _strip(a)
            if inner is type(None):
                parts.append("null")
            elif typing.get_origin(inner) is Literal:
                parts.append(", ".join(f"`{x}`" for x in typing.get_args(inner)))
            else:
                parts.append(range_text(a, []) or type_name(a))
        own = _bounds(meta)
        return own or " or ".join(parts)
    origin = typing.get_origin(tp)
    if origin is Literal:
        return "one of " + ", ".join(f"`{a}`" for a in typing.get_args(tp))
    if origin is dict:
        inner = range_text(typing.get_args(tp)[1], [])
        return f"values {inner}" if inner else ""
    if origin is list:
        inner = range_text(typing.get_args(tp)[0], [])
        return f"items {inner}" if inner and not inner.startswith("values") else ""
    return _bounds(meta)


def default_text(info: FieldInfo) -> str:
    if info.default is not PydanticUndefined:
        value = info.default
    elif info.default_factory is not None:
        value = info.default_factory()
    else:
        return "*required*"
    if isinstance(value, BaseModel):
        return "(section)"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, dict):
        return "{}" if not value else "{" + ", ".join(f"{k}: {v}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[]" if not value else "[" + ", ".join(str(v) for v in value) + "]"
    if isinstance(value, str):
        return f"`{value}`" if value else '`""`'
    return str(value)


def _plain(value: Any) -> str:
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_plain(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_plain(v) for v in value) + "]"
    if value is None:
        return "null"
    return str(value).lower() if isinstance(value, bool) else str(value)


def _model_of(tp: Any) -> tuple[str, type[BaseModel]] | None:
    """(kind, model) when the field holds a section, a mapping of sections, or a list of sections."""
    tp, _ = _strip(tp)
    if inspect.isclass(tp) and issubclass(tp, BaseModel):
        return "section", tp
    origin = typing.get_origin(tp)
    if origin is dict:
        inner, _ = _strip(typing.get_args(tp)[1])
        if inspect.isclass(inner) and issubclass(inner, BaseModel):
            return "mapping", inner
    return None


def _event_models() -> list[type[BaseModel]]:
    inner, _ = _strip(typing.get_args(C.Config.model_fields["events"].annotation)[0])
    return list(typing.get_args(inner))


# --- walking the schema ----------------------------------------------------------------------


Row = tuple[str, str, str, str, str]


Nested = list[tuple[str, type[BaseModel], str]]


def rows_for(model: type[BaseModel], prefix: str, context: str) -> tuple[list[Row], Nested]:
    """Leaf rows of one model, and the nested sections found in it (path, model, context)."""
    rows: list[Row] = []
    nested: Nested = []
    for name, info in model.model_fields.items():
        path = f"{prefix}{name}"
        sub = _model_of(info.annotation)
        if sub is not None:
            kind, sub_model = sub
            placeholder = PLACEHOLDER.get(name, name)
            nested.append((f"{path}.<{placeholder}>." if kind == "mapping" else f"{path}.", sub_model, name))
            if kind == "section":
                continue
        desc = info.description or FALLBACK.get(f"{name}@{context}") or FALLBACK.get(name)
        if desc and not info.description:
            desc += " †"
        note = NOTES.get(f"{name}@{context}")
        if note:
            desc = f"{desc}; {note} ‡" if desc else f"{note} ‡"
        if name == "events":
            rows.append((path, "list of events", "[]", "see [events](#events)", desc or ""))
            continue
        rows.append(
            (
                path,
                type_name(info.annotation),
                default_text(info) if sub is None else "*required*" if info.is_required() else default_text(info),
                range_text(info.annotation, info.metadata),
                desc or "",
            )
        )
    return rows, nested


def _doc(model: type[BaseModel]) -> str:
    doc = inspect.cleandoc(model.__dict__.get("__doc__") or "")
    return doc.splitlines()[0] if doc else ""


def table(rows: list[Row]) -> list[str]:
    out = ["| key | type | default | allowed | description |", "|---|---|---|---|---|"]
    for r in rows:
        cells = [c.replace("|", "\\|") for c in r]
        out.append(f"| `{cells[0]}` | {cells[1]} | {cells[2]} | {cells[3]} | {cells[4]} |")
    return out


def sections() -> list[tuple[str, str, list[Row]]]:
    """(title, intro, rows) for the top level and every nested section, depth first."""
    out: list[tuple[str, str, list[Row]]] = []

    def walk(model: type[BaseModel], prefix: str, context: str, title: str) -> None:
        rows, nested = rows_for(model, prefix, context)
        if rows:
            out.append((title, _doc(model), rows))
        for path, sub, ctx in nested:
            walk(sub, path, ctx, f"`{path.rstrip('.')}`")

    walk(C.Config, "", "", TOP_TITLE)
    return out


def event_sections() -> list[tuple[str, str, list[Row]]]:
    out = []
    for model in _event_models():
        kind = typing.get_args(model.model_fields["type"].annotation)[0]
        rows, _ = rows_for(model, "events[].", kind)
        rows = [r if not r[0].endswith(".type") else (r[0], "string", f"`{kind}`", f"`{kind}`", r[4]) for r in rows]
        out.append((f"events[]: type `{kind}`", _doc(model), rows))
    return out


def differences_from_schema() -> list[Row]:
    """Keys outside the named mappings whose value in configs/south_tees.yaml differs from the schema."""
    cfg = C.load_config("south_tees").to_dict()
    skip = {"roles", "wards", "organisations", "communities", "events", "name", "description"}
    rows: list[Row] = []

    def walk(model: type[BaseModel], data: dict[str, Any], prefix: str) -> None:
        for name, info in model.model_fields.items():
            if not prefix and name in skip:
                continue
            sub = _model_of(info.annotation)
            if sub is not None and sub[0] == "section":
                walk(sub[1], data[name], f"{prefix}{name}.")
                continue
            if info.default is not PydanticUndefined:
                default = info.default
            elif info.default_factory is not None:
                default = info.default_factory()
            else:
                continue
            value = data.get(name)
            if value != default:
                rows.append((f"{prefix}{name}", "", _plain(default), _plain(value), ""))

    walk(C.Config, cfg, "")
    return rows


def render() -> str:
    lines = [
        "# Configuration reference",
        "",
        "<!-- Generated by docs/make_config_reference.py from abm/config.py. Do not edit by hand. -->",
        "",
        "Every key of a scenario file, as validated by the pydantic schema in `abm/config.py`.",
        "Unknown keys are errors. *default* is the schema default (used when a file leaves the key out);",
        "the shipped scenario `configs/south_tees.yaml` sets the required mappings (`roles`, `wards`,",
        "`organisations`, `communities`) and overrides a few defaults (listed at the end). Numbers must",
        "be finite. A scenario file may start with `extends: other.yaml` (mappings merge key by key,",
        "anything else replaces), and any key can be set from the command line or the API as",
        '`--set dotted.key=value` / `overrides={"dotted.key": value}`.',
        "",
        "`<role>`, `<ward>`, `<type>` and `<community>` stand for the names you choose in those mappings.",
        "Descriptions marked † are not in the schema; they were written for this reference. A description",
        "ending in ‡ adds, after a semicolon, a clarification taken from the code (docs/ODD.md, section 7).",
        "",
        "Units: one step is one week. Effort is in *effort units per week per 1,000 agents*; each",
        "activity's units divided by its `cost` give the mean of a Poisson count of actions that week.",
        "",
        "## Contents",
        "",
    ]
    secs = sections()
    evs = event_sections()
    anchors = []
    for title, _, _ in secs + evs:
        anchors.append(title)
    for title in anchors:
        slug = "".join(ch for ch in title.lower().replace(" ", "-") if ch.isalnum() or ch in "-_")
        lines.append(f"- [{title}](#{slug})")
    lines += [
        "- [Rules across keys](#rules-across-keys)",
        "- [South Tees values that differ from the schema defaults]"
        "(#south-tees-values-that-differ-from-the-schema-defaults)",
        "",
    ]
    for title, intro, rows in secs:
        lines += [f"## {title}", ""]
        if intro:
            lines += [intro, ""]
        lines += [*table(rows), ""]
    lines += [
        "## events",
        "",
        "A list; each item has `type` and `week` and the keys of its type. Events due in a week fire",
        "in list order at the start of that week (stage 1 of the step).",
        "",
    ]
    for title, intro, rows in evs:
        lines += [f"### {title}", ""]
        if intro:
            lines += [intro, ""]
        lines += [*table(rows), ""]
    lines += [
        "## Rules across keys",
        "",
        "Checked when a scenario is loaded (`Config._cross_references`, `ActivityMix._sums_to_one`):",
        "",
        "- exactly one role has `staff: false` (the residents); at least one ward;",
        "- `wards.<ward>.activity`: `inactive + fairly_active + active` = 1 (within 0.001);",
        "- role names in `organisations.<type>.staff`, `communities.<community>.roles`,",
        "  `turnover.protect_roles` and events must be staff roles; ward names in `wards` lists and",
        "  `effort.ward_targeting` must exist;",
        "- the `share`s of resident communities sum to at most 1 (a resident is in at most one);",
        f"- the population (staff after `staff_scale`, plus residents) is at most {C.MAX_AGENTS:,} agents.",
        "",
        "## South Tees values that differ from the schema defaults",
        "",
        "Outside the named mappings, `configs/south_tees.yaml` changes these keys:",
        "",
        "| key | schema default | south_tees |",
        "|---|---|---|",
    ]
    for path, _, default, value, _ in differences_from_schema():
        lines.append(f"| `{path}` | {default} | {value} |")
    lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="exit 1 if docs/config_reference.md is out of date")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)
    text = render()
    if args.check:
        current = args.out.read_text(encoding="utf-8") if args.out.exists() else ""
        if current != text:
            print(f"{args.out} is out of date: run python docs/make_config_reference.py", file=sys.stderr)
            return 1
        return 0
    args.out.write_text(text, encoding="utf-8")
    print(f"wrote {args.out} ({text.count(chr(10))} lines)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
