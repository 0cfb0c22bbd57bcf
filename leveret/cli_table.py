"""Aligned text tables for the command line's listings."""

from __future__ import annotations


def aligned(headings: list[str], body: list[list[str]]) -> str:
    """Columns separated by two spaces, each as wide as its widest cell; all-number columns right-aligned."""
    widths = [max(len(r[i]) for r in [headings, *body]) for i in range(len(headings))]
    numeric = [all(r[i].isdigit() or r[i] == "" for r in body) and bool(body) for i in range(len(headings))]
    lines = []
    for r in [headings, *body]:
        cells = [c.rjust(w) if num else c.ljust(w) for c, w, num in zip(r, widths, numeric)]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)
