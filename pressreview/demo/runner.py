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

import io
import os
import re
import secrets
import shutil
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.utils import format_datetime, parsedate_to_datetime
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

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
#: The demo organisation's logo (organisation.logo_file), published with the archive.
LOGO_PNG = DEMO_DIR / "logo.png"
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
    #: The contrats de ville tracker page of the archive, and the issue's count of signed ones.
    tracker_page: Path | None = None
    contracts_line: str = ""
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


#: The date of the demo's issue: the Monday (the digest's day) after the sample feeds'
#: autumn 2026. The digest runs at this date, so the issue and its events stay as the
#: feeds tell them whenever the demo runs.
DEMO_DATE = datetime(2026, 11, 23, 8, 0, tzinfo=ZoneInfo("Europe/Paris"))

_DATE_RE = re.compile(rb"(<(pubDate|lastBuildDate|updated|published|dc:date)>)([^<]+)(</\2>)")


def _parse_feed_date(text: str) -> datetime | None:
    try:
        if text[:1].isdigit():
            return datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
        return parsedate_to_datetime(text.strip())
    except (TypeError, ValueError, IndexError):
        return None


class FeedClock:
    """Moves the sample feeds' dates into the week before :data:`DEMO_DATE`.

    The samples span two months; an issue holds the news of the week before its
    date, so the demo serves them squeezed, in the same order, into that week
    (Monday 10:00 to Sunday 08:00). Dates that do not parse are left as they are.
    """

    def __init__(self, directory: Path, issue_date: datetime = DEMO_DATE) -> None:
        found = [
            d
            for path in sorted(directory.glob("*.xml"))
            for m in _DATE_RE.finditer(path.read_bytes())
            if (d := _parse_feed_date(m.group(3).decode("ascii", "replace"))) is not None
            and d.tzinfo is not None
        ]
        self.first = min(found) if found else issue_date
        self.last = max(found) if found else issue_date
        self.start = issue_date - timedelta(days=7) + timedelta(hours=2)
        self.end = issue_date - timedelta(days=1)

    def move(self, when: datetime) -> datetime:
        span = (self.last - self.first).total_seconds() or 1.0
        share = min(max((when - self.first).total_seconds() / span, 0.0), 1.0)
        moved = self.start + (self.end - self.start) * share
        return moved.astimezone(when.tzinfo).replace(microsecond=0)

    def rewrite(self, body: bytes) -> bytes:
        def one(m: re.Match[bytes]) -> bytes:
            text = m.group(3).decode("ascii", "replace")
            when = _parse_feed_date(text)
            if when is None or when.tzinfo is None:
                return m.group(0)
            moved = self.move(when)
            new = moved.isoformat() if text[:1].isdigit() else format_datetime(moved)
            return m.group(1) + new.encode("ascii") + m.group(4)

        return _DATE_RE.sub(one, body)


class _FeedHandler(SimpleHTTPRequestHandler):
    """Serves the sample feeds; XML as application/xml (so the prolog's encoding rules).

    With a clock, the feeds' dates are moved into the week before the demo's issue.
    """

    clock: FeedClock | None = None

    def __init__(self, *args: Any, clock: FeedClock | None = None, **kwargs: Any) -> None:
        self.clock = clock
        super().__init__(*args, **kwargs)

    def send_head(self) -> Any:
        if self.clock is None or not self.path.split("?", 1)[0].endswith(".xml"):
            return super().send_head()
        path = Path(self.translate_path(self.path))
        try:
            body = self.clock.rewrite(path.read_bytes())
        except OSError:
            self.send_error(404, "File not found")
            return None
        self.send_response(200)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        return io.BytesIO(body)

    # An instance attribute on the base class (not a ClassVar): overridden the same way.
    extensions_map = {  # noqa: RUF012
        **SimpleHTTPRequestHandler.extensions_map,
        ".xml": "application/xml",
    }

    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def serve_feeds(directory: Path = FEEDS_DIR, *, clock: FeedClock | None = None) -> Iterator[int]:
    """Serve ``directory`` on 127.0.0.1 (a free port) in a thread; yields the port.

    With ``clock``, the feeds' dates are moved (see :class:`FeedClock`)."""
    handler = partial(_FeedHandler, directory=str(directory), clock=clock)
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
    with serve_feeds(clock=FeedClock(FEEDS_DIR)) as port:
        config_path = write_config(target, port)

        # Loaded like load_config, but without the caller's PRESSREVIEW_DATABASE_URL.
        data = yaml.safe_load(config_path.read_text("utf-8"))
        config = parse_config(data, base_dir=target, path=config_path, environ=env)
        store = open_store(config)
        report = DemoReport(folder=target, config_path=config_path, database=store.describe())
        report.feeds_served = len(config.feeds)
        say(f"Sample feeds served at http://127.0.0.1:{port}/ ({len(config.feeds)} feeds)")
        try:
            shutil.copyfile(LOGO_PNG, target / "logo.png")
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

            digest = scheduling.run_digest(config, store, DEMO_DATE, environ=env)
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
            tracker = snapshot.get("contracts")
            if isinstance(tracker, dict):
                report.tracker_page = site / "contrats-de-ville" / "index.html"
                counts = tracker["counts"]
                report.contracts_line = (
                    f"{counts['signed']} signed, {counts['adopted']} adopted, "
                    f"{counts['in_preparation']} in preparation of {tracker['expected']} expected"
                )
                say(f"Contrats de ville: {report.contracts_line}")
            archive = digest.summary.get("archive")
            if isinstance(archive, dict):
                report.search = str(archive.get("search_note") or "")
            outbox = config.resolve(config.delivery.outbox_dir)
            report.outbox_dir = outbox
            report.messages = sorted(outbox.rglob("*.eml")) if outbox.is_dir() else []
        finally:
            store.close()
    return report
