"""Display helpers shared by the command modules: tables, JSON, dates."""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from typing import Any

import click
from rich.console import Console
from rich.table import Table
from rich.text import Text

from pressreview.text import valid_text


def console(*, stderr: bool = False) -> Console:
    """A rich console on the current standard output or error (so CliRunner captures it).

    Its width is $COLUMNS when set, else the terminal's, else 100 columns (output
    piped to a file or a program).
    """
    stream = sys.stderr if stderr else sys.stdout
    size = shutil.get_terminal_size((100, 24)) if stream.isatty() else os.terminal_size((100, 24))
    columns = os.environ.get("COLUMNS", "")
    if columns.isdigit() and int(columns) >= 40:  # an explicit width wins, piped or not
        size = os.terminal_size((int(columns), size.lines))
    return Console(
        file=stream, width=size.columns, height=size.lines, highlight=False, soft_wrap=False
    )


def is_tty() -> bool:
    return sys.stdout.isatty()


def table(
    columns: Sequence[str | tuple[str, dict[str, Any]]],
    rows: Iterable[Sequence[Any]],
    *,
    title: str | None = None,
) -> None:
    """Print rows as a table that fits the terminal."""
    t = Table(title=title, header_style="bold", box=None, pad_edge=False, expand=False)
    for column in columns:
        if isinstance(column, tuple):
            t.add_column(column[0], **column[1])
        else:
            t.add_column(column)
    for row in rows:
        # Cells are plain text: a title or a name holding "[link=...]" is not rich
        # markup, and control characters (a terminal's escape sequences) are dropped.
        t.add_row(*(Text("" if v is None else valid_text(str(v))) for v in row))
    out = console()
    with out.capture() as captured:
        out.print(t)
    # rich pads every cell to its column's width: drop the trailing spaces.
    click.echo("\n".join(line.rstrip() for line in captured.get().splitlines()))


def _default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


def print_json(data: Any) -> None:
    click.echo(json.dumps(data, ensure_ascii=False, indent=2, default=_default))


def when(value: datetime | None, tz: Any = None, *, with_time: bool = True) -> str:
    """A short local date for tables: 2024-05-07 14:03."""
    if value is None:
        return ""
    local = value.astimezone(tz) if tz is not None else value
    return local.strftime("%Y-%m-%d %H:%M" if with_time else "%Y-%m-%d")


def warn(message: str) -> None:
    click.echo(f"Warning: {message}", err=True)


def flush() -> None:
    sys.stdout.flush()
