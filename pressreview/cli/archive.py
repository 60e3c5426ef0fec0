"""`pressreview archive build` and `pressreview archive serve`."""

from __future__ import annotations

import os
from pathlib import Path

import click

from pressreview.archive import build_archive, resolve_out_dir
from pressreview.archive.serve import make_server
from pressreview.cli.context import AppContext
from pressreview.cli.display import print_json
from pressreview.config import check_placeholders


@click.group("archive")
def archive_group() -> None:
    """The public web archive: a static site of every published issue."""


@archive_group.command("build")
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False),
    metavar="DIR",
    help="Folder to publish the site in [default: archive.out_dir of the config].",
)
@click.option(
    "--base-url",
    metavar="URL",
    help="Public address of the site [default: archive.base_url of the config].",
)
@click.option("--no-search", is_flag=True, help="Do not build the search index.")
@click.option("--json", "as_json", is_flag=True, help="Print the build report as JSON.")
@click.option(
    "--allow-placeholders",
    is_flag=True,
    help="Go on even if the postal address or contact of the footer is empty or a placeholder.",
)
@click.pass_obj
def build_command(
    app: AppContext,
    out_dir: str | None,
    base_url: str | None,
    no_search: bool,
    as_json: bool,
    allow_placeholders: bool,
) -> None:
    """Build the site from every published issue, then switch it into place at once.

    Only pages whose inputs changed are rendered again; a build that fails or
    is killed leaves the previous site as it was. Refused while the footer's
    postal address or contact is empty or a placeholder (see --allow-placeholders).

    \b
    Examples:
      pressreview archive build
      pressreview archive build --out /srv/www/veille --base-url https://veille.example.org/
    """
    check_placeholders(app.config, allow=allow_placeholders)
    report = build_archive(
        app.config, app.store, out_dir=out_dir, base_url=base_url, search_index=not no_search
    )
    if as_json:
        print_json(report.as_dict())
        return
    click.echo(
        f"{report.out_dir}: {report.issues} issue(s), {report.files} files "
        f"({report.written} written, {report.reused} unchanged) in {report.seconds:.2f} s"
    )
    click.echo(report.search_note)
    click.echo(f"site address: {report.base_url}")


@archive_group.command("serve")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=8000,
    show_default=True,
    help="Port to listen on.",
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False),
    metavar="DIR",
    help="Site folder to serve [default: archive.out_dir of the config].",
)
def serve_command(port: int, host: str, directory: str | None) -> None:
    """Serve the built site over HTTP for local viewing (Ctrl-C to stop).

    \b
    Example:
      pressreview archive serve --port 8000
    """
    app = click.get_current_context().obj
    # With --dir no configuration is needed.
    folder = Path(os.path.abspath(directory)) if directory else resolve_out_dir(app.config)
    server = make_server(folder, host=host, port=port)
    host_name, port_number = server.server_address[:2]
    if isinstance(host_name, bytes):
        host_name = host_name.decode()
    click.echo(f"serving {folder} at http://{host_name}:{port_number}/ (Ctrl-C to stop)")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        click.echo("stopped")
    finally:
        server.server_close()


commands = [archive_group]
