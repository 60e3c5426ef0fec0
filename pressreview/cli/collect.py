"""`pressreview collect`: fetch the sources."""

from __future__ import annotations

import sys

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from pressreview.cli import display
from pressreview.cli.context import AppContext
from pressreview.cli.display import print_json, table
from pressreview.collect import SourceReport, collect, select_feeds


@click.command("collect")
@click.option(
    "--source",
    "sources",
    multiple=True,
    metavar="NAME",
    help="Collect only this source (repeatable); backed-off sources are tried anyway.",
)
@click.option("--force", is_flag=True, help="Also fetch sources that are backing off or disabled.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON (no progress bar).")
@click.pass_obj
def collect_command(app: AppContext, sources: tuple[str, ...], force: bool, as_json: bool) -> None:
    """Fetch every enabled source and store new items.

    Ends with a table per source: new / updated / unchanged / failed with the
    reason. Exit code 0 when every source succeeded, 1 when some failed,
    2 for usage or configuration errors.

    \b
    Examples:
      pressreview collect
      pressreview collect --source "Le Courrier de Picardie" --force
    """
    config = app.config
    total = len(select_feeds(config, sources or None))
    # The bar is drawn on stderr: only when both streams are a terminal (not in cron, not piped).
    show_bar = display.is_tty() and sys.stderr.isatty() and not as_json and total > 0
    if show_bar:
        with Progress(
            TextColumn("collect"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
            TextColumn("{task.description}"), console=display.console(stderr=True),
            transient=True, auto_refresh=False,  # no refresh thread: collect may fork
        ) as bar:  # fmt: skip
            task = bar.add_task("", total=total)

            def step(rep: SourceReport) -> None:
                bar.update(task, advance=1, description=rep.name, refresh=True)

            report = collect(config, app.store, only=sources or None, force=force, progress=step)
    else:
        report = collect(config, app.store, only=sources or None, force=force)
    if as_json:
        print_json(report.as_dict())
    else:
        rows = []
        for s in report.sources:
            status = s.status.replace("_", " ")
            reason = s.error or s.warning or ""
            if s.moved_to:
                reason = (
                    reason + "; " if reason else ""
                ) + f"moved permanently to {s.moved_to} (URL updated)"
            if s.status == "skipped" and s.next_attempt_at:
                reason = f"backing off until {display.when(s.next_attempt_at, config.tz)}: {reason}"
            rows.append(
                (s.name, status, s.new, s.updated, s.unchanged, s.duplicates, s.filtered, reason)
            )
        table(
            ["source", "status", ("new", {"justify": "right"}), ("upd", {"justify": "right"}),
             ("same", {"justify": "right"}), ("dup", {"justify": "right"}),
             ("filt", {"justify": "right"}), ("reason", {"overflow": "fold"})],
            rows,
        )  # fmt: skip
        click.echo(
            # The new items include those filtered out and the other outlets.
            f"{report.total('new')} new ({report.total('filtered')} filtered out, "
            f"{report.total('duplicates')} other outlets of known stories), "
            f"{report.total('updated')} updated, {len(report.failed)} source(s) failed."
        )
    if report.failed:
        raise SystemExit(1)


commands = [collect_command]
