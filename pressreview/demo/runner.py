"""The offline demo: the real pipeline on bundled sample feeds, in a fresh folder.

``run_demo(folder)``:

1. makes the folder (refusing a non-empty one, see ``prepare_folder``);
2. serves ``pressreview/demo/feeds/`` from a local HTTP server (127.0.0.1,
   a free port) and writes ``feeds.yaml`` from ``demo.yaml`` with that port;
3. imports the sample subscribers (``subscribers.csv``: active, consent "import");
4. runs the collect job, then the weekly digest job with the ``auto`` policy
   (pick the best-scored relevant items, publish issue n° 1, build the archive
   into ``site/``, deliver to ``outbox/``): the same functions the scheduler runs;
5. renders the issue's email into ``issue/`` (email.html, email.txt, email.eml).

Nothing leaves the machine: the feeds come from the loopback server and the
messages are written as .eml files.
"""

from __future__ import annotations

import os
import secrets
import shutil
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml

from pressreview import scheduling
from pressreview.archive import resolve_out_dir
from pressreview.config import parse_config
from pressreview.errors import PressreviewError, Refused, UsageError
from pressreview.issues import get_snapshot
from pressreview.preview import write_email_files
from pressreview.store import open_store
from pressreview.subscribers import import_subscribers
from pressreview.tokens import MIN_SECRET_LENGTH, SECRET_ENV

DEMO_DIR = Path(__file__).resolve().parent
FEEDS_DIR = DEMO_DIR / "feeds"
CONFIG_TEMPLATE = DEMO_DIR / "demo.yaml"
SUBSCRIBERS_CSV = DEMO_DIR / "subscribers.csv"
DEFAULT_FOLDER = "pressreview-demo"
#: A file marking a folder made by the demo (only such a folder is replaced by --force).
MARKER = ".pressreview-demo"
PORT_PLACEHOLDER = "{port}"
DEMO_ACTOR = "demo"

Say = Callable[[str], None]


@dataclass
class DemoReport:
    """Where everything the demo made is."""

    folder: Path
    config_path: Path
    database: str
    feeds_served: int = 0
    collect: str = ""
    subscribers: int = 0
    digest: str = ""
    issue: int | None = None
    items: int = 0
    issue_dir: Path | None = None
    email_files: list[Path] = field(default_factory=list)
    site_dir: Path | None = None
    site_index: Path | None = None
    issue_page: Path | None = None
    search: str = ""
    outbox_dir: Path | None = None
    messages: list[Path] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


# -- the folder ----------------------------------------------------------------------


def prepare_folder(folder: Path, *, force: bool = False) -> Path:
    """Create ``folder`` for a demo run.

    A missing or empty folder is used as is. A folder holding a previous demo
    run (it has the ``.pressreview-demo`` marker) is emptied when ``force``;
    any other non-empty folder is refused, with or without ``force``.
    """
    folder = folder.expanduser()
    if folder.exists() and not folder.is_dir():
        raise UsageError(f"{folder}: exists and is not a folder; give another --dir")
    if folder.is_dir() and any(folder.iterdir()):
        if not (folder / MARKER).is_file():
            raise Refused(
                f"{folder}: the folder is not empty and was not made by the demo; "
                "give an empty or new folder with --dir"
            )
        if not force:
            raise Refused(
                f"{folder}: holds a previous demo run; give --force to replace it, "
                "or another folder with --dir"
            )
        for child in folder.iterdir():
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child)
            else:
                child.unlink()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / MARKER).write_text(
            "Made by `pressreview demo`; `pressreview demo --force` may replace this folder.\n",
            "utf-8",
        )
    except OSError as exc:
        raise UsageError(f"{folder}: cannot create the folder: {exc.strerror or exc}") from None
    return folder


def write_config(folder: Path, port: int) -> Path:
    """Write ``folder/feeds.yaml`` from the demo template, pointing at the local server."""
    text = CONFIG_TEMPLATE.read_text("utf-8").replace(PORT_PLACEHOLDER, str(port))
    path = folder / "feeds.yaml"
    path.write_text(text, "utf-8")
    return path


# -- the feed server -------------------------------------------------------------------


class _FeedHandler(SimpleHTTPRequestHandler):
    """Serves the sample feeds; XML as application/xml (so the prolog's encoding rules)."""

    # An instance attribute on the base class (not a ClassVar): overridden the same way.
    extensions_map = {  # noqa: RUF012
        **SimpleHTTPRequestHandler.extensions_map,
        ".xml": "application/xml",
    }

    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def serve_feeds(directory: Path = FEEDS_DIR) -> Iterator[int]:
    """Serve ``directory`` on 127.0.0.1 (a free port) in a thread; yields the port."""
    handler = partial(_FeedHandler, directory=str(directory))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, name="demo-feeds", daemon=True)
    thread.start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


# -- the run ---------------------------------------------------------------------------


def _environ(environ: Mapping[str, str] | None) -> dict[str, str]:
    """The environment for sending: a throw-away signing key when none is set."""
    env = dict(os.environ if environ is None else environ)
    if len(env.get(SECRET_ENV, "")) < MIN_SECRET_LENGTH:
        env[SECRET_ENV] = secrets.token_urlsafe(32)
    # The demo's own database, whatever the caller's environment says.
    env.pop("PRESSREVIEW_DATABASE_URL", None)
    return env


def run_demo(
    folder: str | os.PathLike[str] = DEFAULT_FOLDER,
    *,
    force: bool = False,
    say: Say | None = None,
    environ: Mapping[str, str] | None = None,
) -> DemoReport:
    """Run the whole pipeline offline in ``folder``; see the module docstring."""
    say = say or (lambda _message: None)
    env = _environ(environ)
    target = prepare_folder(Path(folder), force=force)
    target = target.resolve()
    with serve_feeds() as port:
        config_path = write_config(target, port)

        # Loaded like load_config, but without the caller's PRESSREVIEW_DATABASE_URL.
        data = yaml.safe_load(config_path.read_text("utf-8"))
        config = parse_config(data, base_dir=target, path=config_path, environ=env)
        store = open_store(config)
        report = DemoReport(folder=target, config_path=config_path, database=store.describe())
        report.feeds_served = len(config.feeds)
        say(f"Sample feeds served at http://127.0.0.1:{port}/ ({len(config.feeds)} feeds)")
        try:
            shutil.copyfile(SUBSCRIBERS_CSV, target / "subscribers.csv")
            imported = import_subscribers(store, target / "subscribers.csv", actor=DEMO_ACTOR)
            report.subscribers = imported.added
            say(f"Subscribers: {imported.added} imported from subscribers.csv")

            collected = scheduling.run_collect(config, store)
            report.collect = collected.message
            say(f"Collect: {collected.message}")
            if collected.summary.get("failed_sources"):
                report.warnings.append(
                    "some sample feeds failed: " + ", ".join(collected.summary["failed_sources"])
                )

            digest = scheduling.run_digest(config, store, environ=env)
            report.digest = digest.message
            say(f"Digest: {digest.message}")
            number = digest.summary.get("issue")
            if digest.outcome != "published" or not isinstance(number, int):
                raise PressreviewError(f"the demo published nothing: {digest.message}")
            report.issue = number

            snapshot = get_snapshot(store, number)
            report.items = int(snapshot.get("item_count") or 0)
            report.issue_dir = target / "issue"
            files = write_email_files(config, snapshot, report.issue_dir, eml=True)
            report.email_files = files.paths
            report.warnings.extend(files.warnings)
            say(f"Email of issue n° {number} written to {report.issue_dir}")

            site = resolve_out_dir(config)
            report.site_dir = site
            report.site_index = site / "index.html"
            report.issue_page = site / "numeros" / str(number) / "index.html"
            archive = digest.summary.get("archive")
            if isinstance(archive, dict):
                report.search = str(archive.get("search_note") or "")
            outbox = config.resolve(config.delivery.outbox_dir)
            report.outbox_dir = outbox
            report.messages = sorted(outbox.rglob("*.eml")) if outbox.is_dir() else []
        finally:
            store.close()
    return report
