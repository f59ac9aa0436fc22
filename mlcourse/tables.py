"""Plain-text tables for ``print`` (the shipped results of chapters 01/03/05, chapter 05's comparison,
the benchmark report of ``mlcourse bench``): one formatter for the package."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def format_table(rows: Sequence[Sequence[Any]], headers: Sequence[str], align: str | None = None) -> str:
    """A monospace table; cells are shown as given (format numbers first).

    ``align`` holds one letter per column, ``l`` (default) or ``r``, e.g. ``"llrr"``.
    """
    if align is not None and (len(align) != len(headers) or set(align) - {"l", "r"}):
        raise ValueError(f"align={align!r} must have one letter 'l' or 'r' per column ({len(headers)} columns)")
    cells = [[str(h) for h in headers]] + [[str(c) for c in row] for row in rows]
    for row in cells[1:]:
        if len(row) != len(headers):
            raise ValueError(f"a row has {len(row)} cells but the table has {len(headers)} columns: {row}")
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    align = align or "l" * len(headers)

    def line(row: list[str]) -> str:
        return "  ".join(c.rjust(w) if a == "r" else c.ljust(w) for c, w, a in zip(row, widths, align)).rstrip()

    return "\n".join([line(cells[0]), "  ".join("-" * w for w in widths)] + [line(r) for r in cells[1:]])


__all__ = ["format_table"]
