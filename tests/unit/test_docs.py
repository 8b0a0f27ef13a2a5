"""The documents the code and README cite exist in the repository, down to the section."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CITATION = re.compile(r"(docs/[\w./-]+\.md)(?: sections? (\d+)(?:(?: and|,) (\d+))*)?")


def cited_files() -> list[Path]:
    files = [ROOT / "README.md", ROOT / "config" / "README.md", ROOT / "docs" / "architecture.md"]
    for folder in ("reminders", "tests", "bench"):
        files += sorted((ROOT / folder).rglob("*.py"))
    return files


def test_every_cited_document_and_section_exists() -> None:
    missing: list[str] = []
    seen = 0
    for path in cited_files():
        for match in CITATION.finditer(path.read_text(encoding="utf-8")):
            seen += 1
            doc = ROOT / match.group(1)
            where = f"{path.relative_to(ROOT)}: {match.group(0)}"
            if not doc.is_file():
                missing.append(where)
                continue
            sections = [n for n in match.groups()[1:] if n]
            headings = set(re.findall(r"^## (\d+)\.", doc.read_text(encoding="utf-8"), re.M))
            missing += [f"{where} (no section {n})" for n in sections if n not in headings]
    assert seen > 20, "the citations were not found: has their form changed?"
    assert not missing, missing


def test_no_citation_points_outside_the_repository() -> None:
    outside = re.compile(r"\.\./shared|DESIGN section|DESIGN\.md")
    found = [
        str(path.relative_to(ROOT))
        for path in cited_files()
        if path != Path(__file__) and outside.search(path.read_text(encoding="utf-8"))
    ]
    assert not found, found
