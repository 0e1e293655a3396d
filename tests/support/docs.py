"""Reading the docs the way the tests check them: code blocks and tables marked for a test.

A block or table is marked by an HTML comment on the line before it,
``<!-- docs-test: NAME -->``, which renders as nothing, so the tests run exactly what a reader
sees.
"""

from __future__ import annotations

import re
from pathlib import Path

DOCS = Path(__file__).resolve().parents[2] / "docs"


def _after_marker(text: str, name: str) -> list[str]:
    marker = f"<!-- docs-test: {name} -->"
    lines = text.splitlines()
    found = [i for i, line in enumerate(lines) if line.strip() == marker]
    assert len(found) == 1, f"{marker} must appear once, found {len(found)}"
    return lines[found[0] + 1 :]


def marked_code(doc: Path, name: str) -> str:
    """The fenced code block right after the marker ``name`` in ``doc``."""
    lines = _after_marker(doc.read_text(encoding="utf-8"), name)
    assert lines and lines[0].startswith("```"), f"no code block after the marker {name!r}"
    end = next(i for i in range(1, len(lines)) if lines[i].startswith("```"))
    return "\n".join(lines[1:end]) + "\n"


def marked_table_keys(doc: Path, name: str) -> list[str]:
    """The first cell of each row of the table right after the marker ``name``, without its
    backticks (the header and alignment rows left out)."""
    lines = _after_marker(doc.read_text(encoding="utf-8"), name)
    rows = []
    for line in lines:
        if not line.startswith("|"):
            break
        rows.append(line)
    assert len(rows) > 2, f"no table after the marker {name!r}"
    return [re.sub(r"`", "", row.split("|")[1]).strip() for row in rows[2:]]
