"""`pressreview send N`: email a published issue to the subscribers."""

from __future__ import annotations

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from pressreview.cli import display
from pressreview.cli.context import AppContext
from pressreview.cli.display import print_json
from pressreview.config import check_placeholders
from pressreview.deliver.campaign import send_issue


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
@click.option(
    "--allow-placeholders",
    is_flag=True,
    help="Go on even if the postal address or contact of the footer is empty or a placeholder.",
)
@click.pass_obj
def send_command(
    app: AppContext,
    number: int,
    test_to: str | None,
    dry_run: bool,
    retry_failed: bool,
    retry_unconfirmed: bool,
    limit: int | None,
    as_json: bool,
    allow_placeholders: bool,
) -> None:
    """Email published issue NUMBER to every active subscriber not yet sent to.

    Re-running continues where a previous run stopped and never sends a
    subscriber the same issue twice. Ends with the counts (sent, failed,
    skipped). Exit code 1 when some messages failed or the server is unavailable.
    Refused (exit 1) while the footer's postal address or contact is empty or a
    placeholder, except for --dry-run and --test-to (see --allow-placeholders).

    \b
    Examples:
      pressreview send 12 --test-to moi@example.fr
      pressreview send 12
    """
    if test_to and dry_run:
        raise click.UsageError("--test-to and --dry-run cannot be combined")
    if not (dry_run or test_to):
        check_placeholders(app.config, allow=allow_placeholders)
    config, store = app.config, app.store
    show_bar = display.is_tty() and not as_json and not dry_run and not test_to
    if show_bar:
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


commands = [send_command]
