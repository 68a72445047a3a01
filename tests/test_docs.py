"""The README and docs/ point at things that exist: every relative link (and its #anchor)
and every repository path they name. The README stays a front door."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
# a path into the repository, as the documents name files: `engine/holds.py`, lua/x.lua
REPO_PATH = re.compile(
    r"(?<![\w./-])((?:amphi|engine|ledger|api|workers|services|runtime|lua|loadtests|tests|docs)"
    r"/[\w./*-]*\w)")
GENERATED = "loadtests/results/"  # a benchmark's output, written when it runs


def slug(heading: str) -> str:
    """GitHub's anchor for a heading."""
    text = re.sub(r"[`*_]", "", heading.strip().lower())
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(document: Path) -> set[str]:
    return {slug(line.lstrip("#")) for line in document.read_text().splitlines()
            if line.startswith("#")}


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda d: d.name)
def test_links_reach_their_targets(document: Path) -> None:
    broken = []
    for target in LINK.findall(document.read_text()):
        if target.startswith(("http://", "https://", "mailto:")):
            continue
        path, _, anchor = target.partition("#")
        file = (document.parent / path).resolve() if path else document
        unknown_anchor = anchor and file.suffix == ".md" and anchor not in anchors(file)
        if not file.exists() or unknown_anchor:
            broken.append(target)
    assert not broken, f"{document.name}: broken links {broken}"


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda d: d.name)
def test_named_paths_exist(document: Path) -> None:
    missing = [p for p in REPO_PATH.findall(document.read_text())
               if not p.startswith(GENERATED) and not any(ROOT.glob(p))]
    assert not missing, f"{document.name} names paths that do not exist: {missing}"


def test_the_readme_is_a_front_door() -> None:
    lines = (ROOT / "README.md").read_text().splitlines()
    assert len(lines) <= 250, f"README.md has {len(lines)} lines; the rest belongs in docs/"
    for section in ("## Two commands", "## Architecture", "## Documentation"):
        assert section in lines, section
