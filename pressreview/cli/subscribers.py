"""`pressreview subscribers ...`, `pressreview send N` and `pressreview serve`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from pressreview.cli import display
from pressreview.cli.display import print_json, table

STATUS_CHOICE = click.Choice(["pending", "active", "unsubscribed", "bounced"])


@click.group("subscribers")
def subscribers_group() -> None:
    """Who receives the newsletter: add, import, list, export, remove."""


@subscribers_group.command("add")
@click.argument("email")
@click.option("--name", help="The person's name.")
@click.pass_obj
def add_command(app: Any, email: str, name: str | None) -> None:
    """Add EMAIL as an active subscriber (consent recorded as given to staff).

    Example: pressreview subscribers add marie@example.fr --name "Marie Dupont"
    """
    from pressreview.subscribers import add_subscriber

    subscriber = add_subscriber(app.store, email, name=name, actor=app.actor)
    click.echo(f"Added {subscriber.email} (active).")


@subscribers_group.command("import")
@click.argument("csv_file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.pass_obj
def import_command(app: Any, csv_file: Path, as_json: bool) -> None:
    """Import subscribers from a CSV file (column email, optional name; "," or ";").

    Bad lines are reported with their number and the reason; the good ones are
    imported as active. Importing the same file again adds nothing. Exit code 1
    when some lines were bad.
    """
    from pressreview.subscribers import import_subscribers

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
def list_command(app: Any, status: str | None, as_json: bool) -> None:
    """List subscribers, with counts by status."""
    from pressreview.subscribers import count_subscribers, list_subscribers

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
def export_command(app: Any, email: str | None, as_csv: bool) -> None:
    """Everything stored about EMAIL (right of access), or about every subscriber.

    JSON holds, for one subscriber, the consent record, the delivery history and
    the audit events. Example: pressreview subscribers export marie@example.fr
    """
    from pressreview.subscribers import export_csv, export_subscribers

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
def remove_command(app: Any, email: str, forget: bool) -> None:
    """Unsubscribe EMAIL (kept as a record), or erase it with --forget."""
    from pressreview.subscribers import remove_subscriber

    subscriber = remove_subscriber(app.store, email, actor=app.actor, forget=forget)
    if forget:
        click.echo(
            f"Erased {subscriber.email}: the subscriber row is deleted, delivery rows anonymized."
        )
    else:
        click.echo(f"Unsubscribed {subscriber.email}.")


@click.command("send")
@click.argument("number", type=int)
@click.option(
    "--test-to", metavar="ADDR", help='Send one "[TEST]" copy to ADDR only (counts for nobody).'
)
@click.option("--dry-run", is_flag=True, help="List who would receive it; send and queue nothing.")
@click.option(
    "--retry-failed", is_flag=True, help="Queue the failed rows of this issue again first."
)
@click.option(
    "--retry-unconfirmed",
    is_flag=True,
    help="Send again the rows left unconfirmed by a crash (same Message-ID).",
)
@click.option(
    "--limit", type=click.IntRange(min=1), help="Send at most this many messages in this run."
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.pass_obj
def send_command(
    app: Any,
    number: int,
    test_to: str | None,
    dry_run: bool,
    retry_failed: bool,
    retry_unconfirmed: bool,
    limit: int | None,
    as_json: bool,
) -> None:
    """Email published issue NUMBER to every active subscriber not yet sent to.

    Re-running continues where a previous run stopped and never sends a
    subscriber the same issue twice. Ends with the counts (sent, failed,
    skipped). Exit code 1 when some messages failed or the server is unavailable.
    """
    from pressreview.deliver.campaign import send_issue

    if test_to and dry_run:
        raise click.UsageError("--test-to and --dry-run cannot be combined")
    config, store = app.config, app.store
    show_bar = display.is_tty() and not as_json and not dry_run and not test_to
    if show_bar:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
        )

        with Progress(
            TextColumn(f"n° {number}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            TextColumn("{task.description}"),
            console=display.console(stderr=True),
            transient=True,
        ) as bar:
            task = bar.add_task("", total=None)

            def step(outcome: str, done: int, total: int) -> None:
                bar.update(task, completed=done, total=total, description=outcome)

            report = send_issue(
                config,
                store,
                number,
                retry_failed=retry_failed,
                retry_unconfirmed=retry_unconfirmed,
                progress=step,
                limit=limit,
            )
    else:
        report = send_issue(
            config,
            store,
            number,
            test_to=test_to,
            dry_run=dry_run,
            retry_failed=retry_failed,
            retry_unconfirmed=retry_unconfirmed,
            limit=limit,
        )
    if as_json:
        print_json(report.as_dict())
    elif dry_run:
        for address in report.recipients:
            click.echo(address)
        click.echo(
            f"{len(report.recipients)} subscriber(s) would receive issue n° {number}; "
            f"{report.skipped} already have it. Nothing sent."
        )
    elif test_to:
        click.echo(f"Test copy of issue n° {number} sent to {report.test_to} ({report.transport}).")
    else:
        for address, error in report.errors:
            click.echo(f"{address}: {error}", err=True)
        if report.requeued or report.marked_unconfirmed:
            click.echo(
                f"Previous run interrupted: {report.requeued} message(s) queued again, "
                f"{report.marked_unconfirmed} possibly delivered marked unconfirmed.",
                err=True,
            )
        extra = f", {report.unconfirmed} unconfirmed" if report.unconfirmed else ""
        queued = report.totals.get("queued", 0)
        left = f", {queued} still queued" if queued else ""
        earlier = report.totals.get("failed", 0) - report.failed
        if earlier > 0:
            left += f", {earlier} failed earlier (--retry-failed)"
        click.echo(
            f"{report.sent} sent, {report.failed} failed, {report.skipped} skipped{extra}{left} "
            f"({report.transport})."
        )
    if report.failed:
        raise SystemExit(1)


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8080, show_default=True, type=int, help="Port to listen on.")
@click.pass_obj
def serve_command(app: Any, host: str, port: int) -> None:
    """Run the subscribe / confirm / unsubscribe endpoints (development server).

    In production run the WSGI application `pressreview.web:create_app()` under
    waitress or gunicorn (see docs/delivery.md).
    """
    from werkzeug.serving import run_simple

    from pressreview.tokens import secret_key
    from pressreview.web import RedactingRequestHandler, create_app

    secret_key()  # a clear error now rather than at the first request
    application = create_app(app.config, app.store)
    click.echo(f"Serving {app.config.web.base_url} on http://{host}:{port}/ (Ctrl-C to stop)")
    run_simple(
        host,
        port,
        application,
        use_reloader=False,
        threaded=True,
        request_handler=RedactingRequestHandler,
    )


commands = [subscribers_group, send_command, serve_command]
