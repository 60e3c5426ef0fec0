"""`pressreview items ...`: listing and curating items one command at a time."""

from __future__ import annotations

import csv
import io
import re
import tempfile
from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime
from pathlib import Path
from typing import Any

import click

from pressreview import curate
from pressreview.cli import display
from pressreview.cli.context import AppContext
from pressreview.cli.display import print_json, table, when
from pressreview.errors import PressreviewError, UsageError

STATUS_SHORT = {
    "new": "new",
    "selected": "sel",
    "rejected": "rej",
    "filtered": "fil",
    "published": "pub",
}


# -- shared options -------------------------------------------------------------------


def filter_options(*, section: bool = True, status_default: str = "new") -> Callable[[Any], Any]:
    """The options that choose items (for list, review and the bulk changes)."""

    def decorate(f: Any) -> Any:
        options = [
            click.option(
                "--status",
                "status",
                multiple=True,
                metavar="STATUS",
                help=f"new, selected, rejected, filtered, published or all "
                f"(repeatable) [default: {status_default}].",
            ),
            click.option(
                "--since",
                metavar="DATE",
                help="Published on or after: 2024-05-01, 2024-05-01T14:00 or 7d (days ago).",
            ),
            click.option("--until", metavar="DATE", help="Published before the end of this date."),
            click.option(
                "--source",
                "sources",
                multiple=True,
                metavar="NAME",
                help="Only items of this source of feeds.yaml (repeatable).",
            ),
            click.option("--outlet", metavar="TEXT", help="Outlet name contains TEXT."),
            click.option(
                "--territory",
                "territories",
                multiple=True,
                metavar="NAME",
                help="Tagged with this territory (name or alias; repeatable).",
            ),
            click.option(
                "--search",
                metavar="WORDS",
                help="Full-text search, accent- and case-insensitive, every word.",
            ),
            click.option(
                "--duplicates",
                is_flag=True,
                help="Include the other outlets of a story (hidden by default).",
            ),
        ]
        if section:
            options.append(
                click.option(
                    "--section",
                    "sections",
                    multiple=True,
                    metavar="KEY",
                    help="Only this section (repeatable; 'none' for no section).",
                )
            )
        for option in reversed(options):
            f = option(f)
        return f

    return decorate


def build_query(
    app: AppContext,
    kw: Mapping[str, Any],
    *,
    default_status: tuple[str, ...] = ("new",),
    **extra: Any,
) -> curate.ItemQuery:
    tz = app.config.tz
    return curate.ItemQuery(
        status=kw.get("status") or default_status,
        since=curate.parse_when(kw["since"], tz) if kw.get("since") else None,
        until=curate.parse_when(kw["until"], tz, end=True) if kw.get("until") else None,
        source=kw.get("sources") or (),
        outlet=kw.get("outlet"),
        section=kw.get("sections") or (),
        territory=kw.get("territories") or (),
        search=kw.get("search"),
        duplicates=bool(kw.get("duplicates")),
        **extra,
    )


FILTER_KEYS = (
    "status",
    "since",
    "until",
    "sources",
    "outlet",
    "territories",
    "search",
    "duplicates",
    "sections",
)


def _has_filter(kw: Mapping[str, Any]) -> bool:
    return any(kw.get(k) for k in FILTER_KEYS)


def _ids_or_filter(
    app: AppContext,
    ids: Sequence[str],
    kw: Mapping[str, Any],
    verb: str,
    yes: bool,
    default_status: tuple[str, ...] = ("new",),
) -> tuple[list[int], dict[int, int] | None]:
    """The ids given, or (bulk) every match of the filters after confirmation."""
    if ids and _has_filter(kw):
        raise UsageError(f"give item ids or filters (--search, --since, ...) to {verb}, not both")
    if ids:
        return curate.parse_ids(ids), None
    if not _has_filter(kw):
        raise UsageError(
            f"which items? give ids (42 43 50-57) or filters (--search, --since) to {verb}"
        )
    query = build_query(app, kw, default_status=default_status)
    found = curate.list_items(app.config, app.store, query).items
    if not found:
        click.echo("No item matches.")
        raise SystemExit(0)
    noun = "item" if len(found) == 1 else "items"
    if not yes:
        for item in found[:10]:
            click.echo(f"  {item['id']:>5}  {cut(curate.display_title(item), 80)}")
        if len(found) > 10:
            click.echo(f"  ... and {len(found) - 10} more")
        if not click.confirm(f"{verb.capitalize()} these {len(found)} {noun}?", default=False):
            click.echo("Nothing changed.")
            raise SystemExit(1)
    return [i["id"] for i in found], {i["id"]: i["version"] for i in found}


def cut(text: str | None, width: int) -> str:
    text = " ".join((text or "").split())
    if width <= 0:
        return ""
    return text if len(text) <= width else text[: max(width - 1, 0)].rstrip() + "…"


def _ids_text(items: Sequence[Mapping[str, Any]]) -> str:
    ids = [str(i["id"]) for i in items]
    return ", ".join(ids[:20]) + (f" and {len(ids) - 20} more" if len(ids) > 20 else "")


# -- items list -----------------------------------------------------------------------


@click.group("items")
def items_group() -> None:
    """Curate collected items: list, show, select, reject, edit, order, add."""


@items_group.command("list")
@filter_options()
@click.option(
    "--limit",
    type=int,
    metavar="N",
    help="At most N items [default: 50 in the table, all for --json/--csv; 0 = all].",
)
@click.option(
    "--sort",
    type=click.Choice(sorted(curate.SORTS)),
    default="date",
    show_default=True,
    help="date = newest first; position = newsletter order.",
)
@click.option("--json", "as_json", is_flag=True, help="Every field of every item, as JSON.")
@click.option("--csv", "as_csv", is_flag=True, help="Every field of every item, as CSV.")
@click.pass_obj
def list_command(
    app: AppContext, /, limit: int | None, sort: str, as_json: bool, as_csv: bool, **kw: Any
) -> None:
    """List items: new ones (not other outlets), newest first, by default.

    \b
    Examples:
      pressreview items list --status selected --section signatures
      pressreview items list --territory Amiens --since 2024-05-01
      pressreview items list --search "contrat de ville signé" --json
    """
    if as_json and as_csv:
        raise UsageError("choose --json or --csv, not both")
    machine = as_json or as_csv
    if limit == 0 or (limit is None and machine):
        limit = None
    elif limit is None:
        limit = 50
    result = curate.list_items(app.config, app.store, build_query(app, kw, limit=limit, sort=sort))
    if as_json:
        print_json(result.items)
        return
    if as_csv:
        _write_csv(result.items)
        return
    statuses = kw.get("status") or ("new",)
    _items_table(app, result.items, several_statuses=len(statuses) > 1 or "all" in statuses)
    shown = len(result.items)
    if result.total > shown:
        click.echo(f"{shown} of {result.total} items shown; --limit 0 shows them all.")
    elif shown == 0:
        click.echo("No item matches.")
    else:
        click.echo(f"{shown} item{'s' if shown > 1 else ''}.")


def _items_table(
    app: AppContext, rows: Sequence[Mapping[str, Any]], *, several_statuses: bool
) -> None:
    """id, date, (status), outlet, section, title: cut so that a line fits the terminal."""
    width = display.console().width
    outlet_w = min(18, max([len(r["outlet"] or "") for r in rows] + [6]))
    section_w = min(14, max([len(r["section"] or "") for r in rows] + [7]))
    id_w = max([len(str(r["id"])) for r in rows] + [2])
    columns: list[Any] = [("id", {"justify": "right", "no_wrap": True}), "date"]
    widths = [id_w, 10]
    if several_statuses:
        columns.append("st")
        widths.append(3)
    columns += ["outlet", "section", ("title", {"no_wrap": True})]
    widths += [outlet_w, section_w]
    # Columns are separated by two spaces (rich's padding without box).
    title_w = max(width - sum(widths) - 2 * len(widths) - 1, 20)
    out = []
    for r in rows:
        title = curate.display_title(r)
        if r.get("title_edited"):
            title = "✎ " + title
        row: list[Any] = [r["id"], when(r["published_at"], app.config.tz, with_time=False)]
        if several_statuses:
            row.append(STATUS_SHORT.get(r["status"], r["status"]))
        row += [
            cut(r["outlet"], outlet_w),
            cut(r["section"] or "", section_w),
            cut(title, title_w),
        ]
        out.append(row)
    if out:
        table(columns, out)


def _write_csv(rows: Sequence[Mapping[str, Any]]) -> None:
    buffer = io.StringIO()
    if rows:
        writer = csv.DictWriter(buffer, fieldnames=list(rows[0].keys()), lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow(
                {
                    k: (
                        "; ".join(map(str, v))
                        if isinstance(v, list)
                        else v.isoformat()
                        if isinstance(v, datetime)
                        else v
                    )
                    for k, v in row.items()
                }
            )
    click.echo(buffer.getvalue(), nl=False)


# -- items show -----------------------------------------------------------------------


@items_group.command("show")
@click.argument("item_id", type=int)
@click.option(
    "--json", "as_json", is_flag=True, help="Every field, other outlets and events as JSON."
)
@click.pass_obj
def show_command(app: AppContext, item_id: int, as_json: bool) -> None:
    """Everything about one item: original and edited text, other outlets, history.

    \b
    Example:
      pressreview items show 42 --json
    """
    item = curate.show_item(app.store, item_id)
    if as_json:
        print_json(item)
        return
    tz = app.config.tz
    status = item["status"]
    if item.get("issue_number"):
        status += f" (issue n° {item['issue_number']}, {item['issue_status']})"
    head = f"#{item['id']}  {status}"
    if item["section"]:
        head += f"  · section {item['section']}"
    click.echo(head)
    lines: list[tuple[str, str]] = []
    if item["title_edited"]:
        lines += [("title", item["title_edited"] + "  (edited)"), ("original", item["title"])]
    else:
        lines.append(("title", item["title"]))
    date = when(item["published_at"], tz) + (
        "  (date unknown: first seen)" if item["date_is_fallback"] else ""
    )
    lines += [("outlet", item["outlet"] or ""), ("date", date)]
    if not item["link"]:
        lines.append(
            ("link", f"none (the feed gave no web link; add one: "
                     f"`pressreview items edit {item['id']} --link URL`)")
        )  # fmt: skip
    else:
        lines.append(("url", item["url"]))
        if item["link"] != item["url"]:
            lines.append(("link", item["link"]))
    origin = item["source"] or ("added by hand" if item["origin"] == "manual" else "")
    lines.append(("source", origin))
    if item["territories"]:
        lines.append(("territories", ", ".join(item["territories"])))
    if item["tags"]:
        lines.append(("tags", ", ".join(item["tags"])))
    lines.append(("score", str(item["score"])))
    if item.get("contract") is not None or item.get("contract_source") == "staff":
        by = "  (corrected by staff)" if item.get("contract_source") == "staff" else ""
        lines.append(("contract", _contract_line(item.get("contract")) + by))
    if item["reject_reason"]:
        label = "filtered" if item["status"] == "filtered" else "rejected"
        lines.append((label, item["reject_reason"]))
    if item["summary_edited"] is not None:
        lines += [
            ("summary", (item["summary_edited"] or "(empty)") + "  (edited)"),
            ("original", item["excerpt"]),
        ]
    elif item["excerpt"]:
        lines.append(("summary", item["excerpt"]))
    lines.append(("version", str(item["version"])))
    for label, value in lines:
        click.echo(f"  {label:<12} {value}")
    if item["lead"]:
        lead = item["lead"]
        click.echo(
            f"\nOther outlet of #{lead['id']}: {lead['outlet']} — {curate.display_title(lead)}"
        )
    if item["also"]:
        click.echo(f"\nAlso in {len(item['also'])} other outlet(s):")
        for other in item["also"]:
            click.echo(
                f"  #{other['id']:<5} {when(other['published_at'], tz, with_time=False)}  "
                f"{other['outlet']}: {cut(other['title'], 60)}"
            )
            click.echo(f"         {other['url']}")
    if item["events"]:
        click.echo("\nHistory:")
        for event in item["events"]:
            click.echo(f"  {when(event['at'], tz)}  {event['actor']}: {describe_event(event)}")


def describe_event(event: Mapping[str, Any]) -> str:
    details = event.get("details") or {}
    action = str(event["action"]).removeprefix("item.")
    if isinstance(details, dict) and details.get("changes"):
        text = f"{action}: {curate.format_changes(details['changes'])}"
        extra = {k: v for k, v in details.items() if k in ("before", "after")}
        if extra:
            text += " (" + ", ".join(f"{k} #{v}" for k, v in extra.items()) + ")"
        return text
    if isinstance(details, dict) and details:
        shown = {k: v for k, v in details.items() if k != "version"}
        return f"{action}: " + ", ".join(f"{k}={cut(str(v), 60)}" for k, v in shown.items())
    return action


# -- select / reject / reset ---------------------------------------------------------


def _bulk_options(status_default: str = "new") -> Callable[[Any], Any]:
    def decorate(f: Any) -> Any:
        f = click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation (bulk).")(f)
        return filter_options(section=False, status_default=status_default)(f)

    return decorate


@items_group.command("select")
@click.argument("ids", nargs=-1)
@click.option(
    "--section", metavar="KEY", help="Put the items in this section [default: the detected one]."
)
@_bulk_options()
@click.option(
    "--json", "as_json", is_flag=True, help="Print the changed items as `items show --json` does."
)
@click.pass_obj
def select_command(
    app: AppContext,
    /,
    ids: tuple[str, ...],
    section: str | None,
    yes: bool,
    as_json: bool,
    **kw: Any,
) -> None:
    """Select items for the next issue: ids (42 43 50-57) or every match of the filters.

    \b
    Examples:
      pressreview items select 42 43 50-57 --section signatures
      pressreview items select --search "Quartiers 2030" --since 7d --yes
    """
    chosen, versions = _ids_or_filter(app, ids, kw, "select", yes)
    result = curate.select_items(
        app.store,
        chosen,
        section=section,
        actor=app.actor,
        config=app.config,
        expected_versions=versions,
    )
    if as_json:
        _print_items(app, result)
        return
    _report("Selected", result, extra=f" into section {section}" if section else "")


@items_group.command("reject")
@click.argument("ids", nargs=-1)
@click.option("--reason", metavar="TEXT", help="Why (kept with the item, shown in the log).")
@_bulk_options()
@click.option(
    "--json", "as_json", is_flag=True, help="Print the changed items as `items show --json` does."
)
@click.pass_obj
def reject_command(
    app: AppContext,
    /,
    ids: tuple[str, ...],
    reason: str | None,
    yes: bool,
    as_json: bool,
    **kw: Any,
) -> None:
    """Reject items (they stay stored, so a re-fetch does not bring them back).

    \b
    Examples:
      pressreview items reject 44 45 --reason "hors sujet"
      pressreview items reject --outlet "Oise Hebdo" --since 7d --yes --json
    """
    chosen, versions = _ids_or_filter(app, ids, kw, "reject", yes)
    result = curate.reject_items(
        app.store, chosen, reason=reason, actor=app.actor, expected_versions=versions
    )
    if as_json:
        _print_items(app, result)
        return
    _report("Rejected", result)


@items_group.command("reset")
@click.argument("ids", nargs=-1)
@_bulk_options(status_default="selected, rejected")
@click.pass_obj
def reset_command(app: AppContext, /, ids: tuple[str, ...], yes: bool, **kw: Any) -> None:
    """Put items back to new (undecided); section and edits are kept.

    \b
    Examples:
      pressreview items reset 42 43
      pressreview items reset --since 7d --yes
    """
    # In bulk, reset acts on decided items: new ones are already undecided.
    chosen, versions = _ids_or_filter(
        app, ids, kw, "reset", yes, default_status=("selected", "rejected")
    )
    result = curate.reset_items(app.store, chosen, actor=app.actor, expected_versions=versions)
    _report("Reset", result, extra=" to new")


def _print_items(app: AppContext, result: Sequence[Mapping[str, Any]]) -> None:
    """The changed items, each as `items show --json` prints it (a JSON list)."""
    print_json([curate.show_item(app.store, int(item["id"])) for item in result])


def _report(verb: str, result: Sequence[Mapping[str, Any]], extra: str = "") -> None:
    noun = "item" if len(result) == 1 else "items"
    click.echo(f"{verb} {len(result)} {noun}{extra}: {_ids_text(result)}.")


# -- edit -----------------------------------------------------------------------------

FORM_HELP = """\
# Edit item {id} (version {version}). Lines starting with # are ignored.
# Write the title on the "Title:" line and the summary below "Summary:".
# A text equal to the original, or `pressreview items edit {id} --revert`,
# goes back to the original.
#
# Original title: {title}
# Original summary: {excerpt}
"""


def edit_form(item: Mapping[str, Any]) -> str:
    summary = item["summary_edited"] if item["summary_edited"] is not None else item["excerpt"]
    return (
        FORM_HELP.format(
            id=item["id"],
            version=item["version"],
            title=item["title"],
            excerpt=" ".join((item["excerpt"] or "").split()) or "(none)",
        )
        + f"\nTitle: {curate.display_title(item)}\n\nSummary:\n{summary}\n"
    )


def parse_form(text: str) -> tuple[str, str]:
    """(title, summary) from an edited form."""
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    title: str | None = None
    summary_lines: list[str] = []
    in_summary = False
    for line in lines:
        if in_summary:
            summary_lines.append(line)
        elif re.match(r"^\s*title\s*:", line, re.I):
            title = line.split(":", 1)[1].strip()
        elif re.match(r"^\s*summary\s*:", line, re.I):
            in_summary = True
            rest = line.split(":", 1)[1].strip()
            if rest:
                summary_lines.append(rest)
    if title is None:
        raise UsageError('the form has no "Title:" line; nothing was saved')
    return title, " ".join(" ".join(summary_lines).split())


def edit_in_editor(item: Mapping[str, Any], save: Callable[[str | None, str | None], Any]) -> Any:
    """Open $EDITOR on the form, then save what changed; on a conflict the text is kept."""
    form = edit_form(item)
    edited = click.edit(form, extension=".txt", require_save=True)
    if edited is None or edited == form:
        click.echo("No change.")
        return None
    title, summary = parse_form(edited)
    current_summary = (
        item["summary_edited"] if item["summary_edited"] is not None else item["excerpt"]
    )
    new_title = title if title != curate.display_title(item) else None
    new_summary = summary if summary != " ".join((current_summary or "").split()) else None
    if new_title is None and new_summary is None:
        click.echo("No change.")
        return None
    try:
        return save(new_title, new_summary)
    except PressreviewError as exc:
        kept = Path(tempfile.gettempdir()) / f"pressreview-item-{item['id']}-edit.txt"
        kept.write_text(edited, "utf-8")
        error = type(exc)(f"{exc}; your text is kept in {kept}")
        raise error from None


@items_group.command("edit")
@click.argument("item_id", type=int)
@click.option("--title", help="New title shown to readers (the original is kept).")
@click.option("--summary", help="New summary shown to readers (the original is kept).")
@click.option("--revert", is_flag=True, help="Go back to the original title and summary.")
@click.option("--link", help="The item's web address (http or https), when the feed gave none.")
@click.option(
    "--carrier",
    "carriers",
    multiple=True,
    metavar="SIREN",
    help="Contrat de ville: the EPCI carrying it (repeat for several; replaces the list).",
)
@click.option(
    "--generation",
    type=click.Choice(["2024-2030", "2015-2023", "earlier", "none"]),
    help="Contrat de ville: its generation (none: unknown).",
)
@click.option(
    "--region",
    type=click.Choice(["hdf", "other", "national"]),
    help="Contrat de ville: Hauts-de-France, another region, or national news.",
)
@click.option(
    "--event",
    type=click.Choice(
        ["signing", "adoption", "preparation", "amendment", "evaluation", "programming", "none"]
    ),
    help="Contrat de ville: what happened to it.",
)
@click.option("--event-date", metavar="YYYY-MM-DD", help="Contrat de ville: when (none: clear).")
@click.option(
    "--no-contract", is_flag=True, help="The item is not about a contrat de ville (clears it)."
)
@click.option(
    "--version",
    "expected_version",
    type=int,
    metavar="N",
    help="Refuse the edit if the item is no longer at version N (for scripts).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the item as `items show --json` does.")
@click.pass_obj
def edit_command(
    app: AppContext,
    item_id: int,
    title: str | None,
    summary: str | None,
    revert: bool,
    carriers: tuple[str, ...],
    generation: str | None,
    region: str | None,
    event: str | None,
    event_date: str | None,
    no_contract: bool,
    link: str | None,
    expected_version: int | None,
    as_json: bool,
) -> None:
    """Edit an item's title, summary or link; without options, opens $EDITOR on a small form.

    The contrat de ville options correct the classification (audited; a later
    collect never overwrites a correction):

      pressreview items edit 42 --carrier 200093201 --generation 2024-2030 \\
          --event signing --event-date 2024-05-07

    An item of a published issue is refused before the editor opens.

    \b
    Examples:
      pressreview items edit 42
      pressreview items edit 42 --title "Amiens : l’avenant du contrat de ville signé" --json
      pressreview items edit 42 --link https://www.example.org/article
      pressreview items edit 42 --revert
    """
    text_given = title is not None or summary is not None or revert or link is not None
    contract_given = (
        bool(carriers)
        or no_contract
        or any(v is not None for v in (generation, region, event, event_date))
    )
    if contract_given:
        result = _edit_contract(
            app, item_id, carriers, generation, region, event, event_date, no_contract,
            None if text_given else expected_version,
        )  # fmt: skip
        if not text_given:
            line = _contract_line(result["contract"])
            click.echo(f"Item {item_id} (version {result['version']}): contract {line}")
            return
    if not text_given:
        item = curate.item_to_edit(app.store, item_id, expected_version=expected_version)

        def save(new_title: str | None, new_summary: str | None) -> Any:
            return curate.edit_item(
                app.store,
                item_id,
                title=new_title,
                summary=new_summary,
                expected_version=item["version"],
                actor=app.actor,
            )

        result = edit_in_editor(item, save)
        if result is None:
            return
    else:
        result = curate.edit_item(
            app.store,
            item_id,
            title=title,
            summary=summary,
            revert=revert,
            link=link,
            expected_version=expected_version,
            actor=app.actor,
        )
    if as_json:
        print_json(curate.show_item(app.store, item_id))
        return
    state = (
        "edited" if result["title_edited"] or result["summary_edited"] is not None else "original"
    )
    click.echo(
        f"Item {item_id} ({state} text, version {result['version']}): "
        f"{curate.display_title(result)}"
    )


def _edit_contract(
    app: AppContext,
    item_id: int,
    carriers: tuple[str, ...],
    generation: str | None,
    region: str | None,
    event: str | None,
    event_date: str | None,
    no_contract: bool,
    expected_version: int | None,
) -> Any:
    keep = curate.KEEP
    day: Any = keep
    if event_date is not None:
        if event_date.strip().lower() in ("", "none"):
            day = None
        else:
            try:
                day = date.fromisoformat(event_date.strip())
            except ValueError:
                raise UsageError(
                    f"--event-date: {event_date!r} is not a date (YYYY-MM-DD)"
                ) from None
    return curate.edit_contract(
        app.store,
        item_id,
        generation=keep if generation is None else (None if generation == "none" else generation),
        region=keep if region is None else region,
        carriers=list(carriers) if carriers else None,
        event=keep if event is None else (None if event == "none" else event),
        event_date=day,
        clear=no_contract,
        expected_version=expected_version,
        actor=app.actor,
    )


def _contract_line(contract: Any) -> str:
    """``2024-2030, hdf, signing on 2024-05-07, carriers: Métropole Européenne de Lille``."""
    if not contract:
        return "(not about a contrat de ville)"
    parts = [contract.get("generation") or "generation unknown", contract.get("region") or "?"]
    if contract.get("event"):
        when = f" on {contract['event_date']}" if contract.get("event_date") else ""
        parts.append(f"{contract['event']}{when}")
    carriers = contract.get("carriers") or []
    if carriers:
        parts.append("carriers: " + ", ".join(f"{c['name']} ({c['siren']})" for c in carriers))
    return ", ".join(parts)


# -- move -----------------------------------------------------------------------------


@items_group.command("move")
@click.argument("item_id", type=int)
@click.option("--before", type=int, metavar="ID", help="Just before this item of the same section.")
@click.option("--after", type=int, metavar="ID", help="Just after this item of the same section.")
@click.option("--json", "as_json", is_flag=True, help="Print the item as `items show --json` does.")
@click.pass_obj
def move_command(
    app: AppContext, item_id: int, before: int | None, after: int | None, as_json: bool
) -> None:
    """Order a selected item inside its section (the order of the newsletter).

    \b
    Examples:
      pressreview items move 42 --before 17
      pressreview items move 42 --after 50 --json
    """
    item = curate.move_item(app.store, item_id, before=before, after=after, actor=app.actor)
    if as_json:
        print_json(curate.show_item(app.store, item_id))
        return
    ordered = curate.list_items(
        app.config,
        app.store,
        curate.ItemQuery(
            status=("selected",),
            section=(item["section"] or "none",),
            sort="position",
            duplicates=True,
        ),
    ).items
    click.echo(f"Section {item['section'] or '(none)'} now reads:")
    for row in ordered:
        mark = "→" if row["id"] == item_id else " "
        click.echo(f" {mark} {row['id']:>5}  {cut(curate.display_title(row), 85)}")


# -- add ------------------------------------------------------------------------------


@items_group.command("add")
@click.argument("url")
@click.option("--title", help="Title (overrides the page's).")
@click.option("--summary", help="Summary (overrides the page's description).")
@click.option("--date", "date_", metavar="DATE", help="Publication date (overrides the page's).")
@click.option("--outlet", help="Outlet or site name (overrides the page's).")
@click.option("--section", metavar="KEY", help="Section [default: the detected one].")
@click.option("--no-select", is_flag=True, help="Leave the item new instead of selecting it.")
@click.option("--no-fetch", is_flag=True, help="Do not fetch the page; use the options only.")
@click.option("--json", "as_json", is_flag=True, help="Print the stored item as JSON.")
@click.pass_obj
def add_command(
    app: AppContext,
    url: str,
    title: str | None,
    summary: str | None,
    date_: str | None,
    outlet: str | None,
    section: str | None,
    no_select: bool,
    no_fetch: bool,
    as_json: bool,
) -> None:
    """Add a story no feed carried, from its web page (OpenGraph, meta, JSON-LD).

    The page is fetched with the same rules as collect (timeouts, size cap);
    if it cannot be, the item is stored with the fields given here (--title
    at least). The item is selected unless --no-select.

    \b
    Example:
      pressreview items add https://www.example.fr/article --section signatures
    """
    published = curate.parse_when(date_, app.config.tz) if date_ else None
    result = curate.add_item_by_url(
        app.config,
        app.store,
        url,
        title=title,
        summary=summary,
        published_at=published,
        outlet=outlet,
        section=section,
        select=not no_select,
        fetch=not no_fetch,
        actor=app.actor,
    )
    item = result.item
    if result.fetch_error and not no_fetch:
        display.warn(f"could not read {url}: {result.fetch_error}; stored with the fields given")
    if as_json:
        print_json(item)
        return
    where = f" in section {item['section']}" if item["section"] else ""
    click.echo(f"Added item {item['id']} ({item['status']}{where}): {item['title']}")
    click.echo(
        f"  {item['outlet']} · {when(item['published_at'], app.config.tz)}"
        + ("  (date unknown)" if item["date_is_fallback"] else "")
    )


commands = [items_group]
