"""`pressreview feeds ...`: the sources of feeds.yaml and their health."""

from __future__ import annotations

import dataclasses
import shlex
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import click

from pressreview.cli import display
from pressreview.cli.context import AppContext
from pressreview.cli.display import print_json, table
from pressreview.collect import health, select_feeds
from pressreview.collect.discover import Discovery, discover
from pressreview.collect.health import STALE_MONTHS
from pressreview.config import Feed, find_config_path
from pressreview.errors import NotFound, Refused, UsageError
from pressreview.opml import append_feeds, export_opml, new_feeds, parse_opml
from pressreview.store import collect as q
from pressreview.text import fold, host_of


@click.group("feeds")
def feeds_group() -> None:
    """The sources: list, check, discover and add, import and export (OPML)."""


@feeds_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Every field, as JSON.")
@click.pass_obj
def feeds_list(app: AppContext, as_json: bool) -> None:
    """Sources from feeds.yaml with their health (status, last error, failures, next attempt).

    \b
    Example:
      pressreview feeds list --json
    """
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
@click.option(
    "--probe", is_flag=True, help="Fetch each source once now (nothing is stored) instead of "
    "reading what the last collect recorded.",
)  # fmt: skip
@click.option(
    "--months", type=click.IntRange(min=1), default=STALE_MONTHS, show_default=True,
    help="Report a feed whose newest entry is older than this many months.",
)  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
@click.pass_obj
def feeds_check(
    app: AppContext, sources: tuple[str, ...], probe: bool, months: int, as_json: bool
) -> None:
    """Per source, what is wrong and what to try (after a collect run).

    Reads what the last `pressreview collect` recorded for each source (HTTP
    status, content type, redirects, entries, newest entry); with --probe,
    fetches each source once now instead. Sources needing action come first.

    Exit code 0 when no source needs action, 1 when at least one does, 2 for
    a usage or configuration error.

    \b
    Examples:
      pressreview feeds check
      pressreview feeds check --probe --source "Le Courrier de Picardie"
    """
    config = app.config
    feeds = select_feeds(config, sources or None)
    if probe:
        seen = health.probe(config, feeds)
    else:
        with app.store.begin() as conn:
            rows = q.sync_sources(conn, config.feeds)
            newest = q.newest_item_dates(conn)
        seen = {
            f.name: health.observation_from_row(rows[f.name], newest.get(rows[f.name]["id"]))
            for f in feeds
        }
    results = health.order(
        [health.diagnose(f, seen.get(f.name), stale_months=months) for f in feeds]
    )
    if as_json:
        print_json([d.as_dict() for d in results])
    else:
        table(
            ["name", "state", ("what is wrong", {"overflow": "fold"}),
             ("what to try", {"overflow": "fold"})],
            [(d.name, d.problem.replace("_", " "), d.summary, d.advice) for d in results],
        )  # fmt: skip
        act = sum(1 for d in results if d.needs_action)
        waiting = sum(1 for d in results if d.problem == "not_collected")
        line = f"{act} source(s) need action, {len(results) - act - waiting} fine"
        click.echo(line + (f", {waiting} not fetched yet." if waiting else "."))
    if any(d.needs_action for d in results):
        raise SystemExit(1)


def _http_address(url: str) -> str:
    """An http(s) address from what staff typed (``www.site.fr`` gets ``https://``)."""
    url = url.strip()
    if "://" not in url:
        url = f"https://{url}"
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(f"{url!r} is not a web address (http:// or https://)")
    return url


def _show_discovery(found: Discovery, tz: Any) -> None:
    if found.is_feed:
        click.echo(f"{found.url} is a feed:")
    elif not found.feeds:
        click.echo(f"No feed found from {found.url}.")
    else:
        title = f" ({found.page_title})" if found.page_title else ""
        click.echo(f"Feeds found from {found.url}{title}:")
    for n, c in enumerate(found.feeds, 1):
        newest = f", newest {display.when(c.newest, tz, with_time=False)}" if c.newest else ""
        click.echo(f"[{n}] {c.title or c.label or '(no title)'}  ({c.found_by})")
        click.echo(f"    {c.url}")
        click.echo(f"    {c.entries} {'entry' if c.entries == 1 else 'entries'}{newest}")
        for sample in c.sample:
            click.echo(f"    - {sample}")
    if found.rejected:
        click.echo(f"Tried, not feeds ({len(found.rejected)}):")
        for c in found.rejected[:10]:
            click.echo(f"    {c.url}: {c.error}")
    if found.disallowed:
        click.echo("Not tried (robots.txt disallows): " + ", ".join(found.disallowed))


def _discovery_json(found: Discovery) -> dict[str, Any]:
    data = dataclasses.asdict(found)
    for c in data["feeds"] + data["rejected"]:
        c["newest"] = c["newest"].isoformat() if c["newest"] else None
    return data


@feeds_group.command("discover")
@click.argument("url")
@click.option("--json", "as_json", is_flag=True, help="Print the candidates as JSON.")
@click.pass_obj
def feeds_discover(app: AppContext, url: str, as_json: bool) -> None:
    """List the feeds a page or site offers, without adding any.

    Looks at the page's announced feeds (<link rel="alternate">), its links
    that point to feeds and, when it announces none, the usual addresses of
    common CMS (/feed/, /rss.xml, /RSS; robots.txt is honoured). Each is
    fetched once and shown with its title, entry count, newest date and a
    few titles.

    Exit code 0 when at least one feed is found, 1 when none is, 2 for a
    usage error.

    \b
    Example:
      pressreview feeds discover https://www.example-presse.fr/ --json
    """
    config = app.config
    found = discover(_http_address(url), config.collect)
    if as_json:
        print_json(_discovery_json(found))
    else:
        _show_discovery(found, config.tz)
    if not found.feeds:
        raise NotFound(health.no_feed_found(found))


@feeds_group.command("add")
@click.argument("url")
@click.option("--name", help="Name of the source [default: the feed's title].")
@click.option("--territory", help="Territory of the source (a name from territories).")
@click.option("--tags", help="Comma-separated tags, e.g. presse-regionale,nord.")
@click.option(
    "--section", "group", metavar="GROUP",
    help="Put the source at the end of this group of the feeds list (a '# --- Group ---' "
    "comment of feeds.yaml; part of its name is enough) [default: the end of the list].",
)  # fmt: skip
@click.option("--pick", type=click.IntRange(min=1), help="Take the Nth feed found (scripts).")
@click.option("--yes", "-y", is_flag=True, help="Take the first feed found without asking.")
@click.pass_obj
def feeds_add(
    app: AppContext, url: str, name: str | None, territory: str | None, tags: str | None,
    group: str | None, pick: int | None, yes: bool,
) -> None:  # fmt: skip
    """Add a feed to feeds.yaml, from its address or from a page of the site.

    When URL is a feed it is added; when it is a page, its feeds are listed
    (as `feeds discover` does) and you choose one: at the prompt, or with
    --pick N (--yes takes the first). Without a terminal, --pick or --yes is
    required. feeds.yaml keeps its comments and order; it is validated
    before it is saved (nothing is written if it would not load).

    Exit code 0 when added, 1 when no feed is found or the feed is already
    configured, 2 for a usage or configuration error.

    \b
    Example:
      pressreview feeds add https://www.example-presse.fr/ --territory Amiens --yes
    """
    if pick is not None and yes:
        raise UsageError("give --pick N or --yes, not both")
    config = app.config
    path = config.path or find_config_path(app.config_path)
    address = _http_address(url)
    found = discover(address, config.collect)
    if not found.feeds:
        _show_discovery(found, config.tz)
        raise NotFound(health.no_feed_found(found))
    if found.is_feed:
        chosen = found.feeds[0]
    else:
        count = len(found.feeds)
        if pick is None and not yes and not sys.stdin.isatty():
            click.echo(
                f"{count} feed(s) found on {address}; pass --pick N (1-{count}) to choose one "
                f"(`pressreview feeds discover {address}` lists them)"
            )
            raise SystemExit(2)
        if pick is not None and pick > count:
            raise UsageError(f"--pick {pick}: only {count} feed(s) found on {address}")
        if pick is None and not yes:
            _show_discovery(found, config.tz)
            number = click.prompt(
                f"Feed to add (1-{count}, 0 to cancel)", type=click.IntRange(0, count)
            )
            if number == 0:
                click.echo("Nothing added.")
                return
            pick = number
        chosen = found.feeds[(pick or 1) - 1]
    known = next((f for f in config.feeds if f.url in (chosen.url, address)), None)
    if known is not None:
        raise Refused(f"{chosen.url} is already configured, as {known.name!r}")
    feed_name = (name or chosen.title or chosen.label or host_of(chosen.url)).strip()
    if any(fold(f.name) == fold(feed_name) for f in config.feeds):
        raise UsageError(f"a source named {feed_name!r} already exists; choose another --name")
    tag_list = tuple(t.strip() for t in (tags or "").split(",") if t.strip())
    feed = Feed(name=feed_name, url=chosen.url, territory=territory, tags=tag_list)
    append_feeds(path, [feed], group=group)
    click.echo(f"added {feed.name} <{feed.url}> to {path}")
    click.echo(f"Fetch it now with: pressreview collect --source {shlex.quote(feed.name)}")


@feeds_group.command("import")
@click.argument("opml_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--dry-run", is_flag=True, help="Show what would be added; change nothing.")
@click.pass_obj
def feeds_import(app: AppContext, opml_file: Path, dry_run: bool) -> None:
    """Add the sources of an OPML file to feeds.yaml (existing URLs are skipped).

    \b
    Example:
      pressreview feeds import sources.opml
    """
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
    """Write the sources as OPML to standard output.

    \b
    Example:
      pressreview feeds export > sources.opml
    """
    click.echo(export_opml(app.config), nl=False)


commands = [feeds_group]
