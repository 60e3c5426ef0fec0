"""`pressreview demo`: the whole pipeline offline, on bundled sample feeds."""

from __future__ import annotations

import os
import shlex
from pathlib import Path

import click

from pressreview.demo import DEFAULT_FOLDER, run_demo


def _show(path: Path | None) -> str:
    """A path as short as possible, quoted for a shell."""
    if path is None:
        return ""
    try:
        shown = os.path.relpath(path)
        if shown.startswith(".."):
            shown = str(path)
    except ValueError:  # another drive (Windows)
        shown = str(path)
    return shlex.quote(shown)


@click.command("demo")
@click.option(
    "--dir",
    "folder",
    type=click.Path(file_okay=False, path_type=Path),
    default=DEFAULT_FOLDER,
    show_default=True,
    help="Folder to create (must be new or empty).",
)
@click.option(
    "--force",
    is_flag=True,
    help="Replace the folder of a previous demo run (never any other folder).",
)
def demo_command(folder: Path, force: bool) -> None:
    """Run the whole pipeline offline on bundled sample feeds, in a fresh folder.

    Serves the sample feeds from a local HTTP server, then collects them,
    picks the best items, publishes issue n° 1, renders its email, builds
    the web archive and delivers it to an outbox folder for five sample
    subscribers. Needs no network and no configuration; the global --config
    and --database-url options are ignored (the demo writes its own).

    \b
    Examples:
      pressreview demo
      pressreview demo --dir /tmp/essai --force
    """
    report = run_demo(folder, force=force, say=lambda line: click.echo(f"  {line}"))
    config = _show(report.config_path)
    click.echo("")
    click.echo(f"Done: issue n° {report.issue} ({report.items} items) in {_show(report.folder)}")
    click.echo(f"  Email:   {_show(report.issue_dir)}/email.html (also email.txt, email.eml)")
    click.echo(f"  Archive: {_show(report.site_index)}")
    click.echo(f"           browse it with: pressreview --config {config} archive serve")
    click.echo("           then open http://127.0.0.1:8000/")
    if report.tracker_page is not None:
        click.echo(f"  Contrats de ville: {_show(report.tracker_page)} ({report.contracts_line})")
    click.echo(
        f"  Outbox:  {_show(report.outbox_dir)} ({len(report.messages)} messages, "
        "one .eml per subscriber)"
    )
    click.echo(f"  Next:    pressreview --config {config} items list")
    click.echo(f"           pressreview --config {config} schedule status")
    for warning in report.warnings:
        click.echo(f"Warning: {warning}", err=True)


commands = [demo_command]
