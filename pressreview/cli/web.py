"""`pressreview serve`: the subscription endpoints on a development server."""

from __future__ import annotations

import click

from pressreview.cli.context import AppContext
from pressreview.tokens import secret_key


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8080, show_default=True, type=int, help="Port to listen on.")
@click.pass_obj
def serve_command(app: AppContext, host: str, port: int) -> None:
    """Run the subscribe / confirm / unsubscribe endpoints (development server).

    In production run the WSGI application `pressreview.web:create_app()` under
    waitress or gunicorn (see docs/delivery.md).

    \b
    Example:
      pressreview serve --port 8080
    """
    # Imported here: Flask and werkzeug add about 110 ms to the start of every `pressreview`
    # command (python -X importtime), and only this one needs them.
    from werkzeug.serving import make_server

    from pressreview.web import RedactingRequestHandler, create_app

    secret_key()  # a clear error now rather than at the first request
    application = create_app(app.config, app.store)
    try:
        server = make_server(
            host, port, application, threaded=True, request_handler=RedactingRequestHandler
        )
    except OSError as exc:
        raise click.ClickException(
            f"cannot listen on {host}:{port}: {exc.strerror or exc}"
        ) from None
    # One line (werkzeug's own "Running on" banner is not printed by make_server).
    click.echo(
        f"Serving on http://{host}:{server.port}/ (public address {app.config.web.base_url}; "
        "Ctrl-C to stop)"
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        click.echo("stopped")
    finally:
        server.server_close()


commands = [serve_command]
