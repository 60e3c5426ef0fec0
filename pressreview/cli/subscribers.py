"""`pressreview subscribers ...`: the subscriber list and the proof of consent."""

from __future__ import annotations

from pathlib import Path

import click

from pressreview.cli import display
from pressreview.cli.context import AppContext
from pressreview.cli.display import print_json, table
from pressreview.subscribers import (
    add_subscriber,
    count_subscribers,
    export_csv,
    export_subscribers,
    import_subscribers,
    list_subscribers,
    remove_subscriber,
)

STATUS_CHOICE = click.Choice(["pending", "active", "unsubscribed", "bounced"])


@click.group("subscribers")
def subscribers_group() -> None:
    """Who receives the newsletter: add, import, list, export, remove."""


@subscribers_group.command("add")
@click.argument("email")
@click.option("--name", help="The person's name.")
@click.option(
    "--json", "as_json", is_flag=True, help="Print the subscriber as `subscribers list --json`."
)
@click.pass_obj
def add_command(app: AppContext, email: str, name: str | None, as_json: bool) -> None:
    """Add EMAIL as an active subscriber (consent recorded as given to staff).

    Example: pressreview subscribers add marie@example.fr --name "Marie Dupont"
    """
    subscriber = add_subscriber(app.store, email, name=name, actor=app.actor)
    if as_json:
        print_json(subscriber.as_dict())
        return
    click.echo(f"Added {subscriber.email} (active).")


@subscribers_group.command("import")
@click.argument("csv_file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.pass_obj
def import_command(app: AppContext, csv_file: Path, as_json: bool) -> None:
    """Import subscribers from a CSV file (column email, optional name; "," or ";").

    Bad lines are reported with their number and the reason; the good ones are
    imported as active. Importing the same file again adds nothing. Exit code 1
    when some lines were bad.

    \b
    Example:
      pressreview subscribers import abonnes.csv
    """
    report = import_subscribers(app.store, csv_file, actor=app.actor)
    if as_json:
        print_json(report.as_dict())
    else:
        for line, reason in report.bad:
            click.echo(f"{csv_file}:{line}: {reason}", err=True)
        for line, reason in report.refused:
            click.echo(f"{csv_file}:{line}: {reason}", err=True)
        note = " (read as Windows-1252)" if report.encoding != "utf-8" else ""
        click.echo(
            f"{report.added} added, {report.already} already subscribed, "
            f"{len(report.refused)} left out, {len(report.bad)} bad line(s){note}."
        )
    if report.bad:
        raise SystemExit(1)


@subscribers_group.command("list")
@click.option("--status", type=STATUS_CHOICE, help="Only subscribers with this status.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def list_command(app: AppContext, status: str | None, as_json: bool) -> None:
    """List subscribers, with counts by status.

    \b
    Example:
      pressreview subscribers list --status active
    """
    rows = list_subscribers(app.store, status=status)
    if as_json:
        print_json([s.as_dict() for s in rows])
        return
    tz = app.config.tz
    table(
        ["email", "name", "status", "consent", "since"],
        [
            (
                s.email,
                s.name,
                s.status,
                s.consent_method,
                display.when(s.created_at, tz, with_time=False),
            )
            for s in rows
        ],
    )
    counts = count_subscribers(app.store)
    click.echo(", ".join(f"{n} {status}" for status, n in counts.items()) + ".")


@subscribers_group.command("export")
@click.argument("email", required=False)
@click.option("--csv", "as_csv", is_flag=True, help="CSV instead of JSON.")
@click.pass_obj
def export_command(app: AppContext, email: str | None, as_csv: bool) -> None:
    """Everything stored about EMAIL (right of access), or about every subscriber.

    JSON holds, for one subscriber, the consent record, the delivery history and
    the audit events. Example: pressreview subscribers export marie@example.fr
    """
    records = export_subscribers(app.store, email)
    if as_csv:
        click.echo(export_csv(records), nl=False)
    else:
        print_json(records[0] if email else records)


@subscribers_group.command("remove")
@click.argument("email")
@click.option(
    "--forget",
    is_flag=True,
    help="Erase the person's data (right to erasure) instead of marking them unsubscribed.",
)
@click.pass_obj
def remove_command(app: AppContext, email: str, forget: bool) -> None:
    """Unsubscribe EMAIL (kept as a record), or erase it with --forget.

    \b
    Examples:
      pressreview subscribers remove marie@example.fr
      pressreview subscribers remove marie@example.fr --forget
    """
    subscriber = remove_subscriber(app.store, email, actor=app.actor, forget=forget)
    if forget:
        click.echo(
            f"Erased {subscriber.email}: the subscriber row is deleted, delivery rows anonymized."
        )
    else:
        click.echo(f"Unsubscribed {subscriber.email}.")


commands = [subscribers_group]
