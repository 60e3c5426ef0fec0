"""`pressreview review` (triage new items with single keys) and `pressreview log` (audit trail)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import click

from pressreview import agenda, curate
from pressreview.cli import display
from pressreview.cli.context import AppContext
from pressreview.cli.display import print_json, table, when
from pressreview.cli.items import (
    build_query,
    cut,
    describe_event,
    edit_in_editor,
    filter_options,
)
from pressreview.errors import PressreviewError
from pressreview.typography import wrap

# -- review ---------------------------------------------------------------------------

REVIEW_HELP = """\
  s  select (then a section number, or Enter for the detected one)
  r  reject            R  reject with a reason
  e  edit title and summary ($EDITOR)
  k  or space: skip    u  undo the last decision
  q  quit              ?  this help"""


@click.command("review")
@filter_options(status_default="new")
@click.pass_obj
def review_command(app: AppContext, /, **kw: Any) -> None:
    """Triage new items one by one with single keys (s, r, e, k, u, q, ?).

    Each item is shown wrapped at word boundaries to the terminal's width.

    \b
    Examples:
      pressreview review
      pressreview review --section signatures
    """
    kw["status"] = kw.get("status") or ("new",)
    ids = curate.review_queue(app.config, app.store, build_query(app, kw))
    if not ids:
        click.echo("Nothing to review: no new item.")
        return
    session = curate.ReviewSession(app.config, app.store, ids, actor=app.actor)
    sections = app.config.ordered_sections()
    click.echo(f"{session.total} item(s) to review. Keys: s r e k u q, ? for help.")
    shown: tuple[int, int] | None = None
    while True:
        item = session.current()
        for passed in session.passed:
            click.echo(f"(#{passed['id']} is already {passed['status']}: passed over)")
        if item is None:
            break
        if shown != (session.index, item["version"]):
            _show_for_review(app, session, item)
            shown = (session.index, item["version"])
        key = _key("> ")
        try:
            if key in ("q", "", "\x1b"):
                break
            if key == "?":
                click.echo(REVIEW_HELP)
            elif key == "s":
                section = _choose_section(sections, item["section"])
                if section is not _CANCEL:
                    after = session.select(section)  # type: ignore[arg-type]
                    click.echo(
                        f"✓ selected #{after['id']}"
                        + (f" into {after['section']}" if after["section"] else "")
                    )
            elif key in ("r", "R"):
                reason = (
                    click.prompt("reason", default="", show_default=False) if key == "R" else None
                )
                session.reject(reason or None)
                click.echo(f"✗ rejected #{item['id']}")
            elif key == "e":
                edit_in_editor(item, lambda t, s: session.edit(title=t, summary=s))
            elif key in ("k", " ", "\r", "\n"):
                session.skip()
            elif key == "u":
                step = session.undo()
                if step is None:
                    click.echo("Nothing to undo.")
                else:
                    click.echo(f"↶ undone: {step.kind} #{step.item_id}")
            else:
                click.echo(f"unknown key {key!r}; ? for help")
        except PressreviewError as exc:
            # The item is read again and shown as it is now: decide again, nothing is lost.
            click.echo(f"Error: {exc}", err=True)
            shown = None
    counts = session.counts()
    click.echo(
        f"Reviewed {min(session.index, session.total)} / {session.total}: "
        f"{counts['selected']} selected, {counts['rejected']} rejected, "
        f"{counts['edited']} edited, {counts['skipped']} skipped."
    )


_CANCEL = object()


def _key(prompt: str) -> str:
    click.echo(prompt, nl=False)
    try:
        key = click.getchar()
    except (KeyboardInterrupt, EOFError):
        key = "q"
    click.echo(key if key.isprintable() else "")
    return key


def _choose_section(sections: Sequence[Any], detected: str | None) -> object:
    if not sections:
        return None
    choices = "  ".join(f"{i}={s.key}" for i, s in enumerate(sections, start=1))
    click.echo(f"section: {choices}  0=none  Enter={detected or 'none'}  Esc=cancel")
    if len(sections) <= 9:
        key = _key("section> ")
    else:
        key = click.prompt("section number", default="", show_default=False)
    if key in ("\r", "\n", "", "s"):
        return detected
    if key == "\x1b":
        click.echo("cancelled: not selected")
        return _CANCEL
    if key.isdigit():
        n = int(key)
        if n == 0:
            return None
        if 1 <= n <= len(sections):
            return sections[n - 1].key
    click.echo(f"no section {key!r}; not selected")
    return _CANCEL


def _show_for_review(
    app: AppContext, session: curate.ReviewSession, item: Mapping[str, Any]
) -> None:
    tz = app.config.tz
    # Lines are wrapped at word boundaries to the terminal's width (never inside a word
    # nor at the hyphen of a place name; an address stays whole on its line).
    width = max(display.console().width - 1, 40)
    click.echo("")
    click.echo(
        f"[{session.index + 1} / {session.total}]  #{item['id']}  "
        f"{when(item['published_at'], tz, with_time=False)}  {item['outlet'] or ''}"
    )
    click.secho(wrap(" ".join(curate.display_title(item).split()), width), bold=True)
    summary = item["summary_edited"] if item["summary_edited"] is not None else item["excerpt"]
    if summary:
        click.echo(wrap(cut(summary, 400), width))
    click.echo(
        wrap(
            f"section: {item['section'] or '(none)'} · territories: "
            f"{', '.join(item['territories']) or '(none)'} · {item['url']}",
            width,
        )
    )
    if item.get("also"):
        others = ", ".join(f"{o['outlet']} (#{o['id']})" for o in item["also"])
        click.echo(wrap(f"also in: {others}", width))
    proposed = [e for e in agenda.events_for_item(app.store, item["id"]) if e.status == "proposed"]
    if proposed:
        dates = "; ".join(
            agenda.format_when(e.starts_at, e.ends_at, e.all_day, app.config) for e in proposed
        )
        click.echo(
            f"agenda (proposed): {dates} · accept: pressreview events from-item {item['id']}"
        )


# -- log ------------------------------------------------------------------------------


@click.command("log")
@click.option("--item", "item_id", type=int, metavar="ID", help="Only the changes of this item.")
@click.option("--since", metavar="DATE", help="Only changes since: 2024-05-01 or 7d.")
@click.option("--actor", metavar="NAME", help="Only changes made by NAME.")
@click.option("--action", metavar="NAME", help="Only this kind of change (e.g. item.edit, item).")
@click.option(
    "--limit", type=int, default=50, show_default=True, help="At most N entries (0 = all)."
)
@click.option("--json", "as_json", is_flag=True, help="Print the entries as JSON.")
@click.pass_obj
def log_command(
    app: AppContext,
    item_id: int | None,
    since: str | None,
    actor: str | None,
    action: str | None,
    limit: int,
    as_json: bool,
) -> None:
    """Who changed what, when (newest first).

    \b
    Examples:
      pressreview log --item 42
      pressreview log --since 7d --actor marie
    """
    entries = curate.read_log(
        app.store,
        item_id=item_id,
        actor=actor,
        action=action,
        limit=limit or None,
        since=curate.parse_when(since, app.config.tz) if since else None,
    )
    if as_json:
        print_json(entries)
        return
    if not entries:
        click.echo("No change recorded.")
        return
    rows = []
    for e in entries:
        target = (
            f"#{e['item_id']}"
            if e["item_id"]
            else (f"issue {e['issue_id']}" if e["issue_id"] else "")
        )
        rows.append([when(e["at"], app.config.tz), cut(e["actor"], 12), target, describe_event(e)])
    used = 16 + max(len(r[1]) for r in rows) + max([len(r[2]) for r in rows] + [4]) + 2 * 3 + 1
    for row in rows:
        row[3] = cut(row[3], max(display.console().width - used, 20))
    table(["when", "who", "item", ("what", {"no_wrap": True})], rows)


commands = [review_command, log_command]
