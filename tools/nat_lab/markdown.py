"""Markdown for the documents the tools write (docs/benchmarks.md, docs/egress.md): tables, and
generated blocks inside hand-written prose.

A document keeps its prose by hand; what a tool measures goes between markers that the tool
rewrites, leaving everything outside them as it was:

    <!-- BEGIN generated: summary -->
    | ... |
    <!-- END generated -->
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from pathlib import Path

BEGIN = "<!-- BEGIN generated: {name} -->"
END = "<!-- END generated -->"
_BLOCK = re.compile(r"^<!-- BEGIN generated: ([\w-]+) -->\n(.*?)^<!-- END generated -->$", re.M | re.S)


def table(header: Sequence[str], rows: Iterable[Sequence[object]], align: str = "") -> list[str]:
    """A table's lines. `align` has one letter per column, `l` or `r` (numbers); left by default."""
    align = align or "l" * len(header)
    if len(align) != len(header):
        raise ValueError(f"{len(header)} columns, alignment {align!r}")
    lines = [_row(header), "|" + "|".join("---:" if a == "r" else "---" for a in align) + "|"]
    for row in rows:
        if len(row) != len(header):
            raise ValueError(f"{len(header)} columns, row {row!r}")
        lines.append(_row(row))
    return lines


def _row(cells: Sequence[object]) -> str:
    return "| " + " | ".join(str(cell) for cell in cells) + " |"


def blocks(document: str) -> dict[str, str]:
    """The generated blocks of a document: name -> body (the lines between the markers)."""
    found: dict[str, str] = {}
    for name, body in _BLOCK.findall(document):
        if name in found:
            raise ValueError(f"generated block {name!r} appears twice")
        found[name] = body
    begins = re.findall(r"^<!-- BEGIN generated: ", document, re.M)
    ends = re.findall(r"^<!-- END generated -->$", document, re.M)
    if len(begins) != len(found) or len(ends) != len(found):
        raise ValueError("a generated block's BEGIN or END marker is missing or malformed")
    return found


def fill(document: str, bodies: dict[str, str]) -> str:
    """`document` with each named block's body replaced; the prose outside the blocks untouched.
    Every block the document has must be given, and every one given must be in the document."""
    present = blocks(document)
    if set(present) != set(bodies):
        raise ValueError(f"the document's generated blocks {sorted(present)} are not the ones written {sorted(bodies)}")

    def body(match: re.Match) -> str:
        text = bodies[match.group(1)].strip("\n")
        return f"{BEGIN.format(name=match.group(1))}\n{text}\n{END}"

    return _BLOCK.sub(body, document)


def skeleton(title: str, names: Iterable[str]) -> str:
    """A document with only a title and empty blocks, for a path that has none yet."""
    parts = [f"# {title}", ""]
    for name in names:
        parts += [BEGIN.format(name=name), END, ""]
    return "\n".join(parts)


def write(path: Path, title: str, bodies: dict[str, str]) -> Path:
    """Rewrite the generated blocks of the document at `path` (made from a skeleton if missing)."""
    document = path.read_text() if path.exists() else skeleton(title, bodies)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(fill(document, bodies))
    return path
