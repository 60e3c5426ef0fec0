"""The ``pressreview`` command: argument handling and display only.

Each sub-module adds the commands of one stage (``commands`` list); the core
functions they call never import click. Errors of the project's hierarchy
become one line on stderr and an exit code (1 refused or failed, 2 usage or
configuration); no traceback for a mistake the user can fix.
"""

from __future__ import annotations

import functools
import importlib
import sys
from typing import Any

import click

from pressreview import __version__
from pressreview.cli.context import AppContext
from pressreview.errors import PressreviewError

#: Exit code after Ctrl-C (128 + SIGINT, as shells report it).
INTERRUPTED = 130

# One module per stage, in pipeline order; each exposes `commands`.
COMMAND_MODULES = (
    "db",
    "feeds",
    "collect",
    "items",
    "contracts",
    "review",
    "issue",
    "events",
    "archive",
    "subscribers",
    "deliver",
    "web",
    "schedule",
    "demo",
)


@functools.cache
def _click_error(exit_code: int) -> type[click.ClickException]:
    """A ClickException class exiting with ``exit_code`` (click declares it per class)."""
    return type(f"ExitCode{exit_code}", (click.ClickException,), {"exit_code": exit_code})


class ErrorHandlingGroup(click.Group):
    """Turns the project's errors into one line and an exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except PressreviewError as exc:
            raise _click_error(exc.exit_code)(str(exc)) from None
        except KeyboardInterrupt:
            # Every write is one transaction: what was committed stays, the rest was not begun.
            click.echo(
                "Interrupted: what was saved before stays, nothing is half-written; "
                "run the command again to finish.",
                err=True,
            )
            raise SystemExit(INTERRUPTED) from None


@click.group(cls=ErrorHandlingGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="pressreview")
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    envvar="PRESSREVIEW_CONFIG",
    help="Configuration file [default: ./feeds.yaml; env PRESSREVIEW_CONFIG].",
)
@click.option(
    "--database-url",
    help="Database URL, overriding database_url of the config "
    "(env PRESSREVIEW_DATABASE_URL wins over both).",
)
@click.option(
    "--as", "actor", metavar="NAME", help="Who is acting, for the audit log [default: $USER]."
)
@click.pass_context
def main(
    ctx: click.Context, config_path: str | None, database_url: str | None, actor: str | None
) -> None:
    """pressreview: collect territorial news, curate it, publish a weekly press review.

    \b
    Typical week:
      pressreview collect                  fetch the sources of feeds.yaml
      pressreview review                   triage new items one by one
      pressreview issue new --title TEXT   start the draft with the selected items
      pressreview issue preview --open     look at its email and archive page
      pressreview issue publish            freeze the draft into a numbered issue
      pressreview archive build            put it on the public web archive
      pressreview send N                   email it to the subscribers
    `pressreview scheduler` runs collect (and, if set, the weekly digest) on its own.
    """
    app = AppContext(config_path, database_url, actor)
    ctx.obj = app
    ctx.call_on_close(app.close)


def _register() -> None:
    for name in COMMAND_MODULES:
        module = importlib.import_module(f"pressreview.cli.{name}")
        for command in getattr(module, "commands", ()):
            main.add_command(command)


_register()


def run() -> None:  # pragma: no cover - console script entry point
    main(prog_name="pressreview")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
