"""The README and docs hold together: in-page links land on a heading, links to files find the
file, and the README keeps the sections a new user is promised (an edit once dropped seven)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")
IMAGE = re.compile(r"!\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```.*?^```", re.S | re.M)


def _text(path: Path) -> str:
    return FENCE.sub("", path.read_text(encoding="utf-8"))  # links in code blocks are examples


def _anchors(text: str) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens, repeats numbered."""
    seen: dict[str, int] = {}
    out = set()
    for heading in re.findall(r"^#{1,6}\s+(.+?)\s*$", text, re.M):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        n = seen.get(slug, 0)
        seen[slug] = n + 1
        out.add(slug if n == 0 else f"{slug}-{n}")
    return out


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_links_resolve(doc: Path) -> None:
    text = _text(doc)
    anchors = _anchors(text)
    broken = []
    for target in LINK.findall(text) + IMAGE.findall(text):
        if re.match(r"[a-z]+:", target):  # http(s), mailto: not checked offline
            continue
        path, _, anchor = target.partition("#")
        if not path:
            if anchor not in anchors:
                broken.append(target)
            continue
        dest = (doc.parent / path).resolve()
        missing_anchor = dest.exists() and anchor and dest.suffix == ".md" and anchor not in _anchors(_text(dest))
        if not dest.exists() or missing_anchor:
            broken.append(target)
    assert not broken, f"{doc.relative_to(ROOT)}: links that lead nowhere: {broken}"


def test_readme_keeps_its_sections() -> None:
    headings = set(re.findall(r"^##\s+(.+?)\s*$", _text(ROOT / "README.md"), re.M))
    wanted = {
        "Using it from Python",
        "The command line",
        "The workshop app",
        "Scenarios and the patterns they reproduce",
        "Sweeps and sensitivity analysis",
        "Your own system map",
        "Configuration",
        "Outputs",
        "Assumptions",
        "Performance",
        "Reproducibility",
        "Documentation",
        "How to cite",
        "Layout",
    }
    assert not wanted - headings, f"README.md lost sections: {sorted(wanted - headings)}"


def test_readme_opens_with_the_two_commands() -> None:
    first_block = re.search(r"^```(?:bash|sh)?\n(.*?)^```", (ROOT / "README.md").read_text(), re.S | re.M)
    assert first_block is not None
    commands = [ln for ln in first_block.group(1).splitlines() if ln.strip() and not ln.startswith("#")]
    assert [c.split("#")[0].strip() for c in commands] == ["make app", "make test"]
