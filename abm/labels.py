"""Human labels for the ids in a config: `gp_practice_4` -> `GP practice 4`, `vcse_worker` -> `VCSE workers`.

Roles and organisations have ids only (wards and communities carry a `label`), so what people read
is made from the id: underscores become spaces, known acronyms are upper case. Names that already
read as text (an uploaded map's "Middlesbrough Council") are left as they are.
"""

from __future__ import annotations

#: Words written in capitals wherever an id is shown.
ACRONYMS = frozenset({"gp", "gps", "vcse", "nhs", "icb", "ics", "pcn", "ccg", "ae", "ld", "cvs"})


def plain(name: str) -> str:
    """`vcse_worker` -> `VCSE worker`, for the middle of a sentence (no capital unless an acronym)."""
    words = str(name).replace("_", " ").split()
    return " ".join(w.upper() if w.lower() in ACRONYMS else w for w in words)


def pretty(name: str) -> str:
    """`housing_officer` -> `Housing officer`; `gp` -> `GP`; `council_1` -> `Council 1`."""
    text = plain(name)
    return text[:1].upper() + text[1:]


def plural(text: str, count: int = 2) -> str:
    """`GP` -> `GPs`, `resident` -> `residents`, `business` -> `business` (unchanged), for `count` != 1."""
    if count == 1 or not text or text.endswith("s"):
        return text
    return text + "s"


def one_of(name: str) -> str:
    """`a leader`, `a GP`, `an officer`: one person of a role, in plain words."""
    text = plain(name)
    article = "an" if text[:1].lower() in "aeiou" and not text[:2].isupper() else "a"
    return f"{article} {text}"


def count_of(count: int, name: str) -> str:
    """`1 leader`, `3 housing officers`, `2 GPs`: a count with the role id in plain words."""
    return f"{count:,} {plural(plain(name), count)}"
