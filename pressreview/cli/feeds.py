"""`pressreview feeds ...`: the sources of feeds.yaml and their health."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from pressreview.cli import display
from pressreview.cli.context import AppContext
from pressreview.cli.display import print_json, table
from pressreview.collect import check_feeds
from pressreview.config import find_config_path
from pressreview.errors import UsageError
from pressreview.opml import append_feeds, export_opml, new_feeds, parse_opml
from pressreview.store import collect as q


@click.group("feeds")
def feeds_group() -> None:
    """The sources: list, check, import and export (OPML)."""


@feeds_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Every field, as JSON.")
@click.pass_obj
def feeds_list(app: AppContext, as_json: bool) -> None:
    """Sources from feeds.yaml with their health (status, last error, failures, next attempt)."""
    config = app.config
    with app.store.begin() as conn:
        rows = q.sync_sources(conn, config.feeds)
    data: list[dict[str, Any]] = []
    for feed in config.feeds:
        row = rows[feed.name]
        data.append(
            {
                "name": feed.name,
                "url": row["url"],
                "config_url": feed.url,
                "enabled": feed.enabled,
                "territory": feed.territory,
                "tags": list(feed.tags),
                "status": row["status"] if feed.enabled else "off",
                "failures": row["failures"],
                "last_error": row["last_error"],
                "last_fetched_at": row["last_fetched_at"],
                "last_success_at": row["last_success_at"],
                "next_attempt_at": row["next_attempt_at"],
                "entries_seen": row["entries_seen"],
            }
        )
    if as_json:
        print_json(data)
        return
    tz = config.tz
    table(
        ["name", "status", ("fails", {"justify": "right"}), "last success", "next attempt",
         ("last error", {"overflow": "fold", "max_width": 40})],
        [
            (d["name"], d["status"], d["failures"] or "", display.when(d["last_success_at"], tz),
             display.when(d["next_attempt_at"], tz), d["last_error"] or "")
            for d in data
        ],
    )  # fmt: skip
    moved = [d for d in data if d["url"] != d["config_url"]]
    for d in moved:
        click.echo(f"{d['name']}: moved permanently to {d['url']} (update feeds.yaml)")


@feeds_group.command("check")
@click.option("--source", "sources", multiple=True, metavar="NAME", help="Check only this source.")
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
@click.pass_obj
def feeds_check(app: AppContext, sources: tuple[str, ...], as_json: bool) -> None:
    """Fetch each source once and report what it holds; change nothing.

    Exit code 1 when a source cannot be fetched or read.
    """
    results = check_feeds(app.config, sources or None)
    if as_json:
        print_json([r.__dict__ for r in results])
    else:
        table(
            ["name", "ok", ("entries", {"justify": "right"}), "newest", "parser",
             ("title or error", {"overflow": "fold"})],
            [
                (r.name, "yes" if r.ok else "NO", r.entries if r.ok else "",
                 display.when(r.newest, app.config.tz), r.parser or "",
                 (r.title if r.ok else r.error) or "")
                for r in results
            ],
        )  # fmt: skip
    if any(not r.ok for r in results):
        raise SystemExit(1)


@feeds_group.command("import")
@click.argument("opml_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--dry-run", is_flag=True, help="Show what would be added; change nothing.")
@click.pass_obj
def feeds_import(app: AppContext, opml_file: Path, dry_run: bool) -> None:
    """Add the sources of an OPML file to feeds.yaml (existing URLs are skipped)."""
    config = app.config
    candidates = parse_opml(opml_file.read_bytes())
    if not candidates:
        raise UsageError(f"{opml_file}: no feed found (no outline with an xmlUrl)")
    added, skipped = new_feeds(config, candidates)
    for line in skipped:
        click.echo(f"skipped {line}")
    if not dry_run:
        append_feeds(config.path or find_config_path(app.config_path), added)
    verb = "would add" if dry_run else "added"
    for feed in added:
        click.echo(f"{verb} {feed.name} <{feed.url}>")
    click.echo(f"{len(added)} source(s) {verb.split()[-1]}, {len(skipped)} skipped.")


@feeds_group.command("export")
@click.pass_obj
def feeds_export(app: AppContext) -> None:
    """Write the sources as OPML to standard output."""
    click.echo(export_opml(app.config), nl=False)


commands = [feeds_group]
