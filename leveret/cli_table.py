"""Tables for the command line's listings: fitted to the terminal on a terminal, plain text elsewhere.

On a terminal a table is drawn by rich at the terminal's width: a cell too wide for its share folds onto
more lines rather than widening the table. Into a pipe or file the same rows are aligned plain text, one
line per row and never wrapped, so `grep`, `awk` and `cut` work on them (`--json` is for programs).
"""

from __future__ import annotations

import shutil
import sys

import click


def aligned(headings: list[str], body: list[list[str]]) -> str:
    """Columns separated by two spaces, each as wide as its widest cell; all-number columns right-aligned."""
    widths = [max(len(r[i]) for r in [headings, *body]) for i in range(len(headings))]
    numeric = [_numeric(body, i) for i in range(len(headings))]
    lines = []
    for r in [headings, *body]:
        cells = [c.rjust(w) if num else c.ljust(w) for c, w, num in zip(r, widths, numeric)]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def _numeric(body: list[list[str]], column: int) -> bool:
    return bool(body) and all(_is_number(row[column]) for row in body)


def _is_number(cell: str) -> bool:
    if cell == "":
        return True
    try:
        float(cell)
    except ValueError:
        return False
    return True


def fitted(headings: list[str], body: list[list[str]], width: int) -> str:
    """The table drawn by rich for a terminal `width` columns wide (cells fold, the table never overflows)."""
    from rich.console import Console  # imported here: only a terminal pays for rich's import
    from rich.table import Table

    table = Table(box=None, pad_edge=False, padding=(0, 2, 0, 0), show_edge=False, header_style="bold")
    for i, heading in enumerate(headings):
        table.add_column(heading, justify="right" if _numeric(body, i) else "left", overflow="fold")
    for row in body:
        table.add_row(*row)
    console = Console(width=width, record=True, file=_Discard(), force_terminal=True)
    console.print(table)
    return console.export_text(styles=True).rstrip("\n")


class _Discard:
    """A file that drops what the recording console writes (the text is taken from its record)."""

    def write(self, text: str) -> int:
        return len(text)

    def flush(self) -> None:
        pass


def print_table(headings: list[str], body: list[list[str]]) -> None:
    """Print a table: fitted to the terminal when stdout is one, aligned plain text otherwise."""
    if sys.stdout.isatty():
        click.echo(fitted(headings, body, shutil.get_terminal_size((100, 24)).columns), color=True)
    else:
        click.echo(aligned(headings, body))
