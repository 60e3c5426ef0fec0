"""`pressreview issue ...`: newsletter issues (draft, preview, publish) and their email."""

from __future__ import annotations

import os
import sys
import webbrowser
from pathlib import Path

import click

from pressreview import issues, preview
from pressreview.cli import display
from pressreview.cli.context import AppContext
from pressreview.cli.display import print_json, table, warn
from pressreview.config import check_placeholders
from pressreview.errors import UsageError


def _read_intro(path: str | None, text: str | None) -> str | None:
    if path is not None and text is not None:
        raise UsageError("give --intro FILE or --intro-text TEXT, not both")
    if text is not None:
        return text
    if path is None:
        return None
    if path == "-":
        return sys.stdin.read()
    try:
        return Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UsageError(f"--intro: {path}: no such file (give a Markdown file)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"--intro: {path}: cannot read it as UTF-8 text: {exc}") from None


@click.group("issue")
def issue_group() -> None:
    """Newsletter issues: start a draft, look at it, publish it, render its email."""


@issue_group.command("new")
@click.option("--title", required=True, help="Title of the issue (shown in the email and archive).")
@click.option(
    "--intro", "intro_file", metavar="FILE", help="Editorial intro in Markdown ('-': stdin)."
)
@click.option("--intro-text", metavar="TEXT", help="Editorial intro given inline (Markdown).")
@click.option("--json", "as_json", is_flag=True, help="Print the draft as `issue show --json`.")
@click.pass_obj
def issue_new(
    app: AppContext, title: str, intro_file: str | None, intro_text: str | None, as_json: bool
) -> None:
    """Start the draft of the next issue; it gathers the selected items.

    \b
    Examples:
      pressreview issue new --title "Revue de presse du 1er décembre 2026"
      pressreview issue new --title "Quartiers 2030" --intro intro.md --json
    """
    intro = _read_intro(intro_file, intro_text) or ""
    draft = issues.new_draft(app.config, app.store, title=title, intro_md=intro, actor=app.actor)
    outline = issues.draft_outline(app.config, app.store)
    if as_json:
        _print_outline_json(outline)
        return
    click.echo(
        f"Draft started: {draft.title!r} with {outline.snapshot['item_count']} selected item(s). "
        "See it with `pressreview issue show`."
    )
    for message in outline.warnings:
        warn(message)


@issue_group.command("edit")
@click.option("--title", help="New title.")
@click.option("--intro", "intro_file", metavar="FILE", help="New intro in Markdown ('-': stdin).")
@click.option("--intro-text", metavar="TEXT", help="New intro given inline (Markdown).")
@click.pass_obj
def issue_edit(
    app: AppContext, title: str | None, intro_file: str | None, intro_text: str | None
) -> None:
    """Change the title or intro of the draft.

    \b
    Example:
      pressreview issue edit --intro intro.md
    """
    intro = _read_intro(intro_file, intro_text)
    draft = issues.edit_draft(app.config, app.store, title=title, intro_md=intro, actor=app.actor)
    click.echo(f"Draft updated: {draft.title!r}.")


@issue_group.command("refresh")
@click.pass_obj
def issue_refresh(app: AppContext) -> None:
    """Gather newly selected items into the draft (and let go of unselected ones).

    \b
    Example:
      pressreview issue refresh
    """
    report = issues.refresh_draft(app.config, app.store, actor=app.actor)
    click.echo(
        f"{report.joined} item(s) joined, {report.left} left; the draft holds "
        f"{report.item_count} item(s)."
    )


@issue_group.command("discard")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.pass_obj
def issue_discard(app: AppContext, yes: bool) -> None:
    """Drop the draft (its items stay selected for the next one).

    \b
    Example:
      pressreview issue discard --yes
    """
    draft = issues.current_draft(app.config, app.store)
    if draft is not None and not yes:
        click.confirm(f"Drop the draft {draft.title!r}?", abort=True)
    dropped = issues.discard_draft(app.config, app.store, actor=app.actor)
    click.echo(f"Draft {dropped.title!r} dropped.")


def _print_outline(app: AppContext, outline: issues.Outline) -> None:
    snap = outline.snapshot
    state = "published" if outline.published else "draft"
    head = f"n° {snap['number']}" + ("" if outline.published else " (provisional)")
    click.echo(f"{snap['title']}")
    click.echo(f"{state} · {head} · {snap['date']} · {snap['item_count']} item(s)")
    if outline.html_bytes is not None:
        share = 100 * outline.html_bytes / outline.max_html_bytes
        click.echo(
            f"email HTML: {outline.html_bytes / 1000:.1f} kB "
            f"({share:.0f}% of {outline.max_html_bytes / 1000:.0f} kB)"
        )
    for section in snap["sections"]:
        click.echo("")
        table(
            [
                ("id", {"justify": "right"}),
                ("title", {"overflow": "fold", "max_width": 60}),
                "outlet",
                "date",
                "also",
            ],
            [
                (
                    item["id"],
                    item["title"],
                    item["outlet"],
                    item["date"] or "no date",
                    len(item["also"]) or "",
                )
                for item in section["items"]
            ],
            title=f"{section['title']} ({len(section['items'])})",
        )
    for message in outline.warnings:
        warn(message)


@issue_group.command("show")
@click.argument("number", type=int, required=False)
@click.option("--json", "as_json", is_flag=True, help="The snapshot (and warnings) as JSON.")
@click.pass_obj
def issue_show(app: AppContext, number: int | None, as_json: bool) -> None:
    """Outline of the draft (or of published issue NUMBER): sections, items, size, warnings.

    \b
    Examples:
      pressreview issue show
      pressreview issue show 12 --json
    """
    if number is None:
        outline = issues.draft_outline(app.config, app.store)
    else:
        outline = issues.issue_outline(app.config, app.store, number)
    if as_json:
        _print_outline_json(outline)
        return
    _print_outline(app, outline)


def _print_outline_json(outline: issues.Outline) -> None:
    print_json(
        {
            "snapshot": outline.snapshot,
            "warnings": outline.warnings,
            "html_bytes": outline.html_bytes,
            "max_html_bytes": outline.max_html_bytes,
        }
    )


def _report(files: preview.EmailFiles) -> None:
    for path in files.paths:
        click.echo(f"wrote {path}")
    for message in files.warnings:
        warn(message)


@issue_group.command("preview")
@click.argument("number", type=int, required=False)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("preview"),
    show_default=True,
    help="Folder to write the preview into.",
)
@click.option("--open", "open_browser", is_flag=True, help="Open the email in a web browser.")
@click.pass_obj
def issue_preview(app: AppContext, number: int | None, out_dir: Path, open_browser: bool) -> None:
    """Write the email (HTML and text) and the web page of the draft, or of issue NUMBER.

    \b
    Example:
      pressreview issue preview --open
    """
    if number is None:
        snapshot = issues.draft_snapshot(app.config, app.store)
    else:
        snapshot = issues.get_snapshot(app.store, number)
    files = preview.write_preview(app.config, snapshot, out_dir)
    _report(files)
    if open_browser:
        _open_in_browser(files.paths[0])


def _open_in_browser(path: Path) -> None:
    """Open a file in a graphical browser; where there is none (CI, SSH), say where it is.

    Console browsers (lynx, w3m) are never started: they would wait for a
    keyboard that a CI job does not have.
    """
    uri = path.resolve().as_uri()
    graphical = sys.platform in ("darwin", "win32") or any(
        os.environ.get(name) for name in ("DISPLAY", "WAYLAND_DISPLAY")
    )
    if graphical and os.environ.get("CI", "").lower() not in ("1", "true", "yes"):
        try:
            if webbrowser.open(uri):
                return
        except webbrowser.Error:
            pass
    click.echo(f"No browser to open here: open {uri} in one (the files are in {path.parent}).")


@issue_group.command("render")
@click.argument("number", type=int)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Folder to write email.html, email.txt and email.eml into.",
)
@click.pass_obj
def issue_render(app: AppContext, number: int, out_dir: Path) -> None:
    """Render published issue NUMBER: email.html, email.txt and email.eml (a full MIME message).

    \b
    Example:
      pressreview issue render 12 --out out/
    """
    snapshot = issues.get_snapshot(app.store, number)
    _report(preview.write_email_files(app.config, snapshot, out_dir, eml=True))


@issue_group.command("publish")
@click.option(
    "--allow-placeholders",
    is_flag=True,
    help="Go on even if the postal address or contact of the footer is empty or a placeholder.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the issue as `issue show N --json`.")
@click.pass_obj
def issue_publish(app: AppContext, allow_placeholders: bool, as_json: bool) -> None:
    """Freeze the draft into the next numbered issue; its items become published.

    Refused while organisation.postal_address or organisation.contact_email is
    empty or a placeholder such as "[À MODIFIER]" (see --allow-placeholders).

    \b
    Examples:
      pressreview issue publish
      pressreview issue publish --json
    """
    check_placeholders(app.config, allow=allow_placeholders)
    snapshot = issues.publish(app.config, app.store, actor=app.actor)
    if as_json:  # a script needs the number: .snapshot.number
        _print_outline_json(issues.issue_outline(app.config, app.store, int(snapshot["number"])))
        return
    click.echo(
        f"Published n° {snapshot['number']} {snapshot['title']!r}: "
        f"{snapshot['item_count']} item(s) in {len(snapshot['sections'])} section(s). "
        f"Archive page: {snapshot['archive_url']}"
    )


@issue_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print the issues as JSON.")
@click.pass_obj
def issue_list(app: AppContext, as_json: bool) -> None:
    """Published issues, newest first (and the draft in progress, if any).

    \b
    Example:
      pressreview issue list
    """
    rows = issues.list_issues(app.store)
    draft = issues.current_draft(app.config, app.store)
    if as_json:
        print_json(
            {
                "issues": [r.__dict__ for r in rows],
                "draft": None
                if draft is None
                else {"title": draft.title, "updated_at": draft.updated_at},
            }
        )
        return
    if draft is not None:
        click.echo(
            f"draft in progress: {draft.title!r} "
            f"(updated {display.when(draft.updated_at, app.config.tz)})"
        )
    if not rows:
        click.echo("No published issue yet.")
        return
    table(
        [
            ("n°", {"justify": "right"}),
            "date",
            ("title", {"overflow": "fold", "max_width": 60}),
            ("items", {"justify": "right"}),
        ],
        [(r.number, r.date, r.title, r.item_count) for r in rows],
    )


commands = [issue_group]
