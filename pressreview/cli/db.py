"""`pressreview db ...`: create or migrate the database."""

from __future__ import annotations

import click

from pressreview.cli.context import AppContext
from pressreview.store import open_store


@click.group("db")
def db_group() -> None:
    """The store: create or migrate the database."""


@db_group.command("upgrade")
@click.pass_obj
def db_upgrade(app: AppContext) -> None:
    """Create the database or apply pending migrations (no row is lost).

    \b
    Example:
      pressreview db upgrade
    """
    store = open_store(app.config, auto_upgrade=False)
    try:
        before, after = store.upgrade()
    finally:
        store.close()
    if before == after:
        click.echo(f"{store.describe()}: already at schema {after}.")
    else:
        click.echo(f"{store.describe()}: upgraded from {before or 'empty'} to schema {after}.")


@db_group.command("status")
@click.pass_obj
def db_status(app: AppContext) -> None:
    """Show the database URL and its schema revision.

    \b
    Example:
      pressreview db status
    """
    store = open_store(app.config, auto_upgrade=False)
    try:
        current, head = store.current_revision(), store.head_revision()
    finally:
        store.close()
    state = "up to date" if current == head else "run `pressreview db upgrade`"
    click.echo(f"{store.describe()}: schema {current or 'none'} (latest {head}): {state}.")


commands = [db_group]
