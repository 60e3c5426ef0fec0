"""`pressreview events ...`: the agenda (upcoming events)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import click

from pressreview import agenda
from pressreview.cli.context import AppContext
from pressreview.cli.display import print_json, table
from pressreview.errors import UsageError

STATUSES = ("confirmed", "proposed", "dismissed", "cancelled")


@click.group("events")
def events_group() -> None:
    """The agenda: events from calendars, announced in items, or added by staff.

    \b
    Example:
      pressreview events list --proposed
      pressreview events from-item 42
      pressreview events add --title "Réseau des chefs de projet" \\
          --start "2027-03-01 17:00" --end "2027-03-01 19:00" --online
    """


def _day_bound(value: str | None, tz: object, *, end: bool) -> datetime | None:
    if value is None:
        return None
    start, _ = agenda.parse_when(value, tz)
    return start + timedelta(days=1) if end and len(value.strip()) == 10 else start


@events_group.command("list")
@click.option("--from", "from_", metavar="DATE", help="From this date [default: now].")
@click.option("--to", metavar="DATE", help="Until the end of this date.")
@click.option("--proposed", is_flag=True, help="Events read in items, waiting for staff.")
@click.option(
    "--status", "statuses", multiple=True, type=click.Choice(STATUSES), help="Repeatable."
)
@click.option("--all", "everything", is_flag=True, help="Past events too, every status.")
@click.option("--json", "as_json", is_flag=True, help="Print the events as JSON.")
@click.pass_obj
def list_command(
    app: AppContext,
    from_: str | None,
    to: str | None,
    proposed: bool,
    statuses: tuple[str, ...],
    everything: bool,
    as_json: bool,
) -> None:
    """Upcoming events of the agenda (confirmed ones unless told otherwise).

    \b
    Example:
      pressreview events list --from 2027-03-01 --to 2027-03-31 --json
    """
    tz = app.config.tz
    wanted: tuple[str, ...] = statuses or (("proposed",) if proposed else ("confirmed",))
    if everything:
        wanted = statuses or ()
    start = _day_bound(from_, tz, end=False)
    if start is None and not everything:
        start = datetime.now(UTC)
    events = agenda.list_events(
        app.store, start=start, end=_day_bound(to, tz, end=True), statuses=wanted
    )
    if as_json:
        print_json([e.as_dict() for e in events])
        return
    if not events:
        click.echo("No event.")
        return
    rows = []
    for e in events:
        where = "en visio" if e.online else (e.place or "")
        origin = e.source or (f"item {e.item_id}" if e.item_id else e.origin)
        rows.append(
            (
                e.id,
                agenda.format_when(e.starts_at, e.ends_at, e.all_day, app.config, with_year=True),
                e.title,
                where,
                e.status,
                origin,
            )
        )
    table(["id", "when", "title", "where", "status", "from"], rows)


@events_group.command("add")
@click.option("--title", required=True, help="What the event is.")
@click.option("--start", required=True, metavar="WHEN", help='"2027-03-01 17:00" or 2027-03-01.')
@click.option("--end", metavar="WHEN", help="When it ends (same forms).")
@click.option("--place", metavar="PLACE", help="Where it happens.")
@click.option("--online", is_flag=True, help="It happens online (en visio).")
@click.option("--url", metavar="URL", help="Registration or information page (http/https).")
@click.option("--territory", metavar="NAME", help="A territory of feeds.yaml.")
@click.option("--json", "as_json", is_flag=True, help="Print the new event as JSON.")
@click.pass_obj
def add_command(
    app: AppContext,
    title: str,
    start: str,
    end: str | None,
    place: str | None,
    online: bool,
    url: str | None,
    territory: str | None,
    as_json: bool,
) -> None:
    """Add an event to the agenda.

    \b
    Example:
      pressreview events add --title "Webinaire Quartiers 2030" \\
          --start "2027-03-01 17:00" --end "2027-03-01 19:00" --online \\
          --url https://example.org/inscription
    """
    if place and online:
        raise UsageError("give --place or --online, not both")
    event = agenda.add_event(
        app.config,
        app.store,
        title=title,
        start=start,
        end=end,
        place=place,
        online=online,
        url=url,
        territory=territory,
        actor=app.actor,
    )
    if as_json:
        print_json(event.as_dict())
        return
    when = agenda.format_when(
        event.starts_at, event.ends_at, event.all_day, app.config, with_year=True
    )
    click.echo(f"Event {event.id} added: {when} · {event.title}")


@events_group.command("edit")
@click.argument("event_id", type=int)
@click.option("--title")
@click.option("--start", metavar="WHEN")
@click.option("--end", metavar="WHEN", help='"" removes the end.')
@click.option("--place", metavar="PLACE", help='"" removes the place.')
@click.option("--online/--in-person", default=None)
@click.option("--url", metavar="URL", help='"" removes the link.')
@click.option("--territory", metavar="NAME", help='"" removes the territory.')
@click.option("--status", type=click.Choice(STATUSES))
@click.option("--json", "as_json", is_flag=True, help="Print the event as JSON.")
@click.pass_obj
def edit_command(
    app: AppContext,
    event_id: int,
    title: str | None,
    start: str | None,
    end: str | None,
    place: str | None,
    online: bool | None,
    url: str | None,
    territory: str | None,
    status: str | None,
    as_json: bool,
) -> None:
    """Correct an event (a proposed event that staff edit becomes confirmed).

    \b
    Example:
      pressreview events edit 7 --start "2027-04-05 17:30" --place "Lille, salle du conseil"
    """
    event = agenda.edit_event(
        app.config,
        app.store,
        event_id,
        actor=app.actor,
        title=title,
        start=start,
        end=end,
        place=place,
        online=online,
        url=url,
        territory=territory,
        status=status,
    )
    if as_json:
        print_json(event.as_dict())
        return
    click.echo(f"Event {event.id} ({event.status}): {event.title}")


@events_group.command("remove")
@click.argument("event_id", type=int)
@click.pass_obj
def remove_command(app: AppContext, event_id: int) -> None:
    """Delete an event (recorded in the audit log).

    \b
    Example:
      pressreview events remove 7
    """
    event = agenda.remove_event(app.store, event_id, actor=app.actor)
    click.echo(f"Event {event.id} removed: {event.title}")


@events_group.command("dismiss")
@click.argument("event_id", type=int)
@click.pass_obj
def dismiss_command(app: AppContext, event_id: int) -> None:
    """Dismiss a proposed event (it stays out of the agenda; a new collect does not bring it back).

    \b
    Example:
      pressreview events dismiss 7
    """
    event = agenda.edit_event(app.config, app.store, event_id, actor=app.actor, status="dismissed")
    click.echo(f"Event {event.id} dismissed: {event.title}")


@events_group.command("from-item")
@click.argument("item_id", type=int)
@click.option("--json", "as_json", is_flag=True, help="Print the accepted events as JSON.")
@click.pass_obj
def from_item_command(app: AppContext, item_id: int, as_json: bool) -> None:
    """Accept the event(s) an item announces into the agenda.

    \b
    Example:
      pressreview events from-item 42
    """
    events = agenda.accept_from_item(app.config, app.store, item_id, actor=app.actor)
    if as_json:
        print_json([e.as_dict() for e in events])
        return
    for e in events:
        when = agenda.format_when(e.starts_at, e.ends_at, e.all_day, app.config, with_year=True)
        click.echo(f"Event {e.id} confirmed: {when} · {e.title}")


commands = [events_group]
