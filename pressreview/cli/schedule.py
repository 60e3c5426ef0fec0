"""`pressreview schedule status` and `pressreview schedule run collect|digest`."""

from __future__ import annotations

import click

from pressreview import scheduling
from pressreview.cli.context import AppContext
from pressreview.cli.display import print_json, table, when


@click.group("schedule")
def schedule_group() -> None:
    """The scheduled jobs (run them with `pressreview scheduler`)."""


@schedule_group.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print the jobs as JSON.")
@click.pass_obj
def schedule_status(app: AppContext, as_json: bool) -> None:
    """Show the jobs, their triggers, next run times (in the configured time zone)
    and the outcome of their last run.

    \b
    Example:
      pressreview schedule status
    """
    config = app.config
    jobs = scheduling.job_status(config, app.store)
    if as_json:
        print_json(
            [
                {
                    "job": j.id,
                    "trigger": j.trigger,
                    "next_run": j.next_run.astimezone(config.tz) if j.next_run else None,
                    "scheduled": j.scheduled,
                    "config_changed": j.config_changed,
                    "last_run": None
                    if j.last_run is None
                    else {
                        "started_at": j.last_run.started_at,
                        "finished_at": j.last_run.finished_at,
                        "outcome": j.last_run.outcome,
                        "summary": j.last_run.summary,
                        "error": j.last_run.error,
                    },
                }
                for j in jobs
            ]
        )
        return
    rows = []
    details = []
    for j in jobs:
        next_run = when(j.next_run, config.tz)
        if not j.scheduled:
            next_run += " (not started)"
        elif j.config_changed:
            next_run += " (config changed: restart schedule.py)"
        last = j.last_run
        rows.append(
            (
                j.id,
                j.trigger,
                next_run,
                when(last.started_at, config.tz) if last else "never",
                last.outcome if last else "",
            )
        )
        if last is not None:
            details.append(f"{j.id}: {last.error or last.summary.get('message', '')}")
    table(["job", "trigger", f"next run ({config.timezone})", "last run", "outcome"], rows)
    if details:
        click.echo("")
        click.echo("Last runs:")
        for line in details:
            click.echo(f"  {line}")
    if not any(j.scheduled for j in jobs):
        click.echo(
            "The scheduler has not run on this database yet: start it with `python schedule.py`."
        )


@schedule_group.command("run")
@click.argument("job", type=click.Choice(list(scheduling.JOBS)))
@click.option("--json", "as_json", is_flag=True, help="Print the run's summary as JSON.")
@click.pass_obj
def schedule_run(app: AppContext, job: str, as_json: bool) -> None:
    """Run one job now: the same code the scheduler runs, logged the same way.

    Exit code 1 when the job failed (or, for collect, some sources failed).

    \b
    Example:
      pressreview schedule run digest
    """
    result = scheduling.run_job(app.config, app.store, job)
    if as_json:
        print_json({"job": result.job, "outcome": result.outcome, "summary": result.summary})
    else:
        click.echo(f"{job}: {result.outcome}: {result.message}")
    if result.failed:
        raise SystemExit(1)


@click.command("scheduler")
@click.option("-v", "--verbose", is_flag=True, help="Log the scheduler's details.")
@click.pass_obj
def scheduler_command(app: AppContext, verbose: bool) -> None:
    """Run the scheduler until stopped (Ctrl-C or SIGTERM): collection and the weekly digest.

    The same as `python schedule.py` of a checkout, from any folder. The running
    job finishes before it stops.

    \b
    Example:
      pressreview --config /etc/pressreview/feeds.yaml scheduler
    """
    scheduling.configure_logging(verbose)
    stop = scheduling.stop_on_signals()
    scheduling.run_forever(app.config, app.store, stop, lambda line: click.echo(line))


commands = [schedule_group, scheduler_command]
