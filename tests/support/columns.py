"""Reading the admin commands' tables: a heading line, then rows, columns aligned by the width
a terminal gives them (a Chinese character takes two columns)."""

from __future__ import annotations

import re
import unicodedata

_CELL = re.compile(r"\S+(?: \S+)*")  # cells are two or more spaces apart


def _width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def table(out: str, headings: tuple[str, ...]) -> list[list[str]]:
    """The rows of `out` (cells as text), after checking its first line is `headings` and that
    every cell starts where its heading does; no line ends in a space."""
    lines = out.splitlines()
    assert lines, "no table"
    head = list(_CELL.finditer(lines[0]))
    assert [m.group() for m in head] == list(headings), lines[0]
    starts = [_width(lines[0][: m.start()]) for m in head]
    rows = []
    for line in lines[1:]:
        assert line == line.rstrip(), repr(line)
        cells = list(_CELL.finditer(line))
        assert [_width(line[: m.start()]) for m in cells] == starts[: len(cells)], (
            f"misaligned:\n{lines[0]}\n{line}"
        )
        rows.append([m.group() for m in cells])
    return rows
