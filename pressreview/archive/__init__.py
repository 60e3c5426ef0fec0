"""The public web archive: a static site of every published issue.

``build_archive(config, store)`` renders, from the frozen snapshots of the
published issues only: the home page (latest issue, then every issue,
paginated), one permanent page per issue (``numeros/<n>/``), a page per
section and per territory listing their items newest first (with one page
per year), an about/subscribe page, a search page, a 404 page, the Atom
feed, sitemap.xml and robots.txt. Templates come from ``templates/archive``
(overridable through ``templates_dir``, like the email's); static assets get
content-hashed names. Search is a Pagefind index, built offline and served
with the site.

Builds are incremental (a page whose inputs hash the same as in the live
build is linked, not rendered again) and atomic (see ``output.py``).
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import functools
import gc
import hashlib
import json
import mimetypes
import os
import re
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from jinja2 import Environment, FileSystemBytecodeCache, TemplateError
from markupsafe import escape

from pressreview import __version__, agenda, urls
from pressreview.agenda import EventView
from pressreview.agenda.ics import agenda_ics
from pressreview.archive import contracts as contract_pages
from pressreview.archive import feeds, search
from pressreview.archive.model import PageSpec, SiteModel, build_model, issue_page
from pressreview.archive.output import SiteSwap
from pressreview.config import Config
from pressreview.errors import RenderError
from pressreview.model import Snapshot
from pressreview.render import organisation_context
from pressreview.store import Store
from pressreview.store.archive import published_snapshot_texts
from pressreview.templating import template_env
from pressreview.text import clean_text, excerpt

__all__ = [
    "BuildReport",
    "build_archive",
    "render_issue_page",
    "resolve_out_dir",
]

#: The agenda page lists upcoming events, then a year of past ones.
AGENDA_PAST = timedelta(days=365)

#: Bumped when the builder's output changes for the same inputs (forces a full build).
BUILD_FORMAT = "2"
STATIC_PREFIX = "static/"


@dataclass
class BuildReport:
    """What a build did."""

    out_dir: Path
    build_dir: Path
    base_url: str
    issues: int
    latest_issue: int | None
    files: int = 0
    written: int = 0
    #: Files not rendered: linked from the live build or already in the recycled folder.
    reused: int = 0
    #: Of those, files already in place in the recycled folder (nothing done).
    kept: int = 0
    search: bool = False
    search_note: str = ""
    volumes_indexed: int = 0
    volumes_reused: int = 0
    seconds: float = 0.0
    #: Seconds spent in each phase (read, render, search, switch).
    timings: dict[str, float] = field(default_factory=dict)
    written_paths: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["out_dir"] = str(self.out_dir)
        data["build_dir"] = str(self.build_dir)
        return data


def resolve_out_dir(config: Config, out_dir: str | os.PathLike[str] | None = None) -> Path:
    """The folder the site is served from (``--out``, else ``archive.out_dir``)."""
    if out_dir is not None:
        return Path(os.path.abspath(Path(out_dir).expanduser()))
    return Path(os.path.abspath(config.resolve(config.archive.out_dir)))


def _sha(*parts: str | bytes) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode() if isinstance(part, str) else part)
        digest.update(b"\0")
    return digest.hexdigest()


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


def _canonical_json(data: Any) -> str:
    return json.dumps(data, sort_keys=True, ensure_ascii=False, default=_json_default)


def _language(locale: str) -> str:
    return locale.replace("-", "_").split("_")[0] or "fr"


@dataclass
class _Theme:
    env: Environment
    digest: str
    assets: dict[str, str]  # logical name ("style.css") -> output path
    asset_data: dict[str, bytes]  # output path -> bytes


def _load_theme(config: Config, bytecode_dir: Path | None = None) -> _Theme:
    env = template_env(config, "archive")
    if bytecode_dir is not None:  # compiled templates, reused by the next builds
        bytecode_dir.mkdir(exist_ok=True)
        env.bytecode_cache = FileSystemBytecodeCache(str(bytecode_dir))
    # The same few hundred dates are formatted tens of thousands of times.
    env.filters["format_date"] = functools.lru_cache(maxsize=8192)(env.filters["format_date"])
    loader = env.loader
    if loader is None:  # pragma: no cover - template_env always sets one
        raise RenderError("the archive templates have no loader")
    digest = hashlib.sha256()
    assets: dict[str, str] = {}
    asset_data: dict[str, bytes] = {}
    for name in sorted(env.list_templates()):
        source = loader.get_source(env, name)[0]
        digest.update(name.encode() + b"\0" + source.encode() + b"\0")
        if name.startswith(STATIC_PREFIX):
            data = source.encode("utf-8")
            stem, dot, ext = name[len(STATIC_PREFIX) :].rpartition(".")
            hashed = f"{stem}.{hashlib.sha256(data).hexdigest()[:10]}.{ext}" if dot else name
            path = STATIC_PREFIX + hashed
            assets[name[len(STATIC_PREFIX) :]] = path
            asset_data[path] = data
    for needed in ("style.css", "search.js"):
        if needed not in assets:
            raise RenderError(f"the archive theme has no static/{needed}")
    return _Theme(env, digest.hexdigest(), assets, asset_data)


def _page_meta(spec: PageSpec, site: dict[str, Any]) -> dict[str, Any]:
    if spec.url_path is None:  # the 404 page is served at any address
        root = site["base_path"]
        canonical = None
    else:
        depth = spec.url_path.count("/")
        root = "../" * depth
        canonical = site["base_url"] + spec.url_path
    first = (spec.url_path or "").split("/", 1)[0]
    nav = {"": "numeros", "page": "numeros", urls.ISSUES_DIR: "numeros"}.get(first, first)
    return {
        "path": spec.url_path,
        "canonical": canonical,
        "url": canonical or site["base_url"],
        "root": root,
        "home": root or "./",
        "nav": nav,
        "og_type": "article" if first == urls.ISSUES_DIR else "website",
    }


def _organisation(config: Config) -> dict[str, Any]:
    """The organisation for the templates, with its name in sentences (``of``: "de l’IREV",
    ``by``: "par l’IREV")."""
    return organisation_context(config, dataclasses.asdict(config.organisation))


def _logo_bytes(config: Config) -> bytes | None:
    """organisation.logo_file, published at the site's root for the email's logo."""
    if not config.organisation.logo_file:
        return None
    path = config.resolve(config.organisation.logo_file)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise RenderError(
            f"organisation.logo_file: cannot read {path}: {exc.strerror or exc}"
        ) from None
    if not data.startswith(b"\x89PNG\r\n\x1a\n"):
        raise RenderError(f"organisation.logo_file: {path} is not a PNG image")
    return data


def _site_context(config: Config, theme: _Theme, base: str, *, search: bool) -> dict[str, Any]:
    """What every page knows of the site (``site`` in the templates)."""
    return {
        "title": config.archive.title,
        "base_url": base,
        "base_path": urlsplit(base).path or "/",
        "lang": _language(config.locale),
        "locale": config.locale,
        "og_locale": config.locale.replace("-", "_"),
        "organisation": _organisation(config),
        "legal": dataclasses.asdict(config.legal),
        "assets": theme.assets,
        "search": search,
        "feed_path": urls.FEED_PATH,
        "paths": urls.archive_paths(),
    }


def _render_page(
    theme: _Theme, spec: PageSpec, site: dict[str, Any], page: dict[str, Any] | None = None
) -> bytes:
    assert spec.template is not None
    try:
        html = theme.env.get_template(spec.template).render(
            site=site, page=page or _page_meta(spec, site), **spec.make_context()
        )
    except TemplateError as exc:
        raise RenderError(f"archive template {spec.template}: {exc}") from None
    return (html.rstrip() + "\n").encode("utf-8")


def _render_atom(
    theme: _Theme,
    spec: PageSpec,
    site: dict[str, Any],
    fragments: tuple[str, dict[str, Any], dict[str, str]],
) -> bytes:
    """The feed; each entry's HTML is kept for the next builds (it never changes)."""
    assert spec.template is not None
    template = theme.env.get_template(spec.template)
    global_hash, previous, kept = fragments

    context = spec.make_context()
    processed: Callable[[int], dict[str, Any]] = context["processed"]

    def entry_html(issue: dict[str, Any]) -> str:
        key = _sha(global_hash, issue["digest"])
        cached = previous.get(key)
        if isinstance(cached, str):
            kept[key] = cached
            return cached
        try:
            html = template.render(
                site=site, issue=processed(issue["number"]), root=site["base_url"]
            ).strip()
        except TemplateError as exc:
            raise RenderError(f"archive template {spec.template}: {exc}") from None
        kept[key] = html
        return html

    def summary(issue: dict[str, Any]) -> str:
        return excerpt(clean_text(issue["intro_html"]), 300)

    return feeds.atom_feed(
        site=site, issues=context["issues"], entry_html=entry_html, summary=summary
    )


def build_archive(
    config: Config,
    store: Store,
    *,
    out_dir: str | os.PathLike[str] | None = None,
    base_url: str | None = None,
    search_index: bool = True,
    progress: Callable[[str], None] | None = None,
) -> BuildReport:
    """Build the static site of every published issue into ``out_dir`` (atomically).

    ``out_dir`` defaults to ``archive.out_dir``, ``base_url`` to
    ``archive.base_url``. ``search_index=False`` (or no Pagefind executable)
    builds the site without search, and says so in the report.
    """
    with _gc_paused():
        return _build(
            config,
            store,
            out_dir=out_dir,
            base_url=base_url,
            search_index=search_index,
            progress=progress,
        )


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """No cyclic garbage collection during a build.

    A build holds tens of thousands of small objects (the snapshots) that the
    collector would scan again and again: that cost more than the rest of an
    incremental build. A build makes few reference cycles; the collector
    finds them later, with the long-lived objects.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            # What the build left behind would otherwise be scanned at once as
            # young objects; move it with the old ones instead.
            gc.freeze()
            gc.enable()
            gc.unfreeze()


def _build(
    config: Config,
    store: Store,
    *,
    out_dir: str | os.PathLike[str] | None,
    base_url: str | None,
    search_index: bool,
    progress: Callable[[str], None] | None,
) -> BuildReport:
    started = time.perf_counter()
    say = progress or (lambda _message: None)
    out = resolve_out_dir(config, out_dir)
    base = urls.site_root(base_url or config.archive.base_url)
    texts = published_snapshot_texts(store)
    now = datetime.now(UTC)
    events = agenda.list_events(store, start=now - AGENDA_PAST)
    with SiteSwap(out) as swap:
        say(f"building into {swap.dir}")
        cache = swap.previous_manifest.get("index")
        model = build_model(config, texts, cache if isinstance(cache, dict) else None)
        theme = _load_theme(config, swap.builds / ".jinja-cache")
        read = time.perf_counter() - started
        tracker = contract_pages.latest_block(config, texts)
        report = _write_site(
            config,
            model,
            theme,
            swap,
            base,
            search_index,
            say,
            events=events,
            now=now,
            tracker=tracker,
        )
        report.timings["read"] = round(read, 3)
    report.seconds = round(time.perf_counter() - started, 3)
    return report


def _write_site(
    config: Config,
    model: SiteModel,
    theme: _Theme,
    swap: SiteSwap,
    base: str,
    search_index: bool,
    say: Callable[[str], None],
    *,
    events: Sequence[EventView] = (),
    now: datetime | None = None,
    tracker: dict[str, Any] | None = None,
) -> BuildReport:
    binary = search.find_pagefind() if search_index else None
    if not search_index:
        search_note = "search disabled (--no-search)"
    elif binary is None:
        search_note = (
            "search disabled: the Pagefind executable was not found "
            "(pip install 'pagefind[bin]' or set PAGEFIND_BINARY_PATH)"
        )
    else:
        search_note = ""
    indexer: dict[str, str] = {}
    if binary is not None:  # the version is part of the search volumes' hash
        stat = binary.stat()
        indexer["key"] = f"{binary}:{stat.st_size}:{stat.st_mtime_ns}"
        known = swap.previous_manifest.get("indexer")
        if isinstance(known, dict) and known.get("key") == indexer["key"]:
            indexer["version"] = str(known.get("version"))
        else:
            indexer["version"] = search.pagefind_version(binary)
    indexer_version = indexer.get("version", "")
    volumes = model.volumes() if binary else {}

    site = _site_context(config, theme, base, search=binary is not None)
    site["tracker"] = tracker is not None  # the contrats de ville page, in the navigation
    all_pages = [*model.pages, *contract_pages.pages(tracker)]
    # Section titles appear on many pages (the latest title of a section wins).
    global_hash = _sha(
        BUILD_FORMAT,
        __version__,
        theme.digest,
        _canonical_json(site),
        _canonical_json(model.section_titles),
    )

    previous_fragments = swap.previous_manifest.get("fragments")
    if not isinstance(previous_fragments, dict):
        previous_fragments = {}
    kept_fragments: dict[str, str] = {}
    # Every output: its path, the hash of its inputs, and how to make it.
    outputs: list[tuple[str, str, Callable[[], bytes]]] = []
    for spec in all_pages:
        input_hash = _sha(global_hash, spec.path, spec.key)
        make: Callable[[], bytes]
        if spec.kind == "atom":
            fragments = (global_hash, previous_fragments, kept_fragments)
            make = functools.partial(_render_atom, theme, spec, site, fragments)
        else:
            make = functools.partial(_render_page, theme, spec, site)
        outputs.append((spec.path, input_hash, make))
    outputs.extend(_agenda_outputs(config, theme, site, global_hash, events, now))
    sitemap_urls = [
        (s.url_path, s.lastmod)
        for s in all_pages
        if s.kind == "html" and s.in_sitemap and s.url_path is not None
    ]
    sitemap_urls.append((urls.AGENDA_PATH, None))
    outputs.append(
        (
            urls.SITEMAP_PATH,
            _sha(global_hash, _canonical_json(sitemap_urls)),
            lambda: feeds.sitemap(base, sitemap_urls),
        )
    )
    outputs.append((urls.ROBOTS_PATH, _sha(global_hash, "robots"), lambda: feeds.robots(base)))
    for path, data in theme.asset_data.items():
        outputs.append((path, _sha(data), lambda d=data: d))  # type: ignore[misc]
    logo = _logo_bytes(config)
    if logo is not None:
        outputs.append((urls.LOGO_PATH, _sha(logo), lambda: logo))
    for path, key, data in contract_pages.files(tracker):
        outputs.append((path, _sha(key), lambda d=data: d))  # type: ignore[misc]

    report = BuildReport(
        out_dir=swap.out,
        build_dir=swap.dir,
        base_url=base,
        issues=len(model.issues),
        latest_issue=model.issues[-1].number if model.issues else None,
        search_note=search_note,
    )
    hashes: dict[str, str] = {}
    clock = time.perf_counter()
    # Files are linked and written by a worker thread while this one renders:
    # on a busy disk, creating folders and links costs as much as rendering.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="archive-files") as files:
        pending: list[Future[None]] = []
        to_render: list[tuple[str, Callable[[], bytes]]] = []
        for path, input_hash, producer in outputs:
            hashes[path] = input_hash
            action = swap.plan(path, input_hash)
            if action == "keep":
                swap.keep(path)
            elif action == "link":
                pending.append(files.submit(swap.link, path))
            else:
                to_render.append((path, producer))
        for path, producer in to_render:
            pending.append(files.submit(swap.write, path, producer()))
            report.written_paths.append(path)
        pending.append(files.submit(swap.remove_stale, set(hashes)))
        for future in pending:
            future.result()
    report.timings["render"] = round(time.perf_counter() - clock, 3)
    clock = time.perf_counter()
    volume_hashes: dict[str, str] = {}
    if binary is not None:
        for year, pages in sorted(volumes.items()):
            folder = f"pagefind/{year}"
            volume_hash = _sha(indexer_version, _canonical_json([(p, hashes[p]) for p in pages]))
            volume_hashes[folder] = volume_hash
            if swap.reuse_tree(folder, "search", volume_hash):
                report.volumes_reused += 1
                continue
            say(f"indexing {len(pages)} issue(s) of {year} for search")
            stage = swap.builds / f"{swap.build_id}.stage-{year}"
            search.index_volume(binary, swap.dir, pages, swap.dir / folder, stage)
            report.volumes_indexed += 1
        report.search = True
        report.search_note = (
            f"search: {len(volumes)} volume(s), {report.volumes_indexed} indexed, "
            f"{report.volumes_reused} reused"
            if volumes
            else "search: no issue to index yet"
        )
    swap.remove_stale_trees("search", set(volume_hashes))
    report.timings["search"] = round(time.perf_counter() - clock, 3)
    clock = time.perf_counter()
    if urls.FEED_PATH not in report.written_paths:  # the feed was linked: keep what it used
        kept_fragments = {k: v for k, v in previous_fragments.items() if isinstance(v, str)}
    swap.commit(
        {
            "base_url": base,
            "outputs": hashes,
            "search": volume_hashes,
            "index": model.index,
            "fragments": kept_fragments,
            "indexer": indexer,
        }
    )
    report.timings["switch"] = round(time.perf_counter() - clock, 3)
    report.files = len(outputs)
    report.written = swap.written
    report.reused = swap.reused
    report.kept = swap.kept
    return report


def _agenda_outputs(
    config: Config,
    theme: _Theme,
    site: dict[str, Any],
    global_hash: str,
    events: Sequence[EventView],
    now: datetime | None,
) -> list[tuple[str, str, Callable[[], bytes]]]:
    """The agenda page and ``agenda.ics`` (from the store's confirmed events)."""
    content = agenda.archive_agenda(config, events, now or datetime.now(UTC))
    spec = PageSpec(
        urls.AGENDA_PATH + "index.html", "html", "agenda.html.j2", "agenda",
        lambda: {"agenda": content}, url_path=urls.AGENDA_PATH,
    )  # fmt: skip
    page_hash = _sha(global_hash, "agenda", _canonical_json(content))
    ics_hash = _sha(global_hash, "agenda.ics", _canonical_json([e.as_dict() for e in events]))
    page_url = site["base_url"] + urls.AGENDA_PATH
    return [
        (spec.path, page_hash, functools.partial(_render_page, theme, spec, site)),
        (urls.AGENDA_ICS_PATH, ics_hash, lambda: agenda_ics(config, events, page_url=page_url)),
    ]


def render_issue_page(config: Config, snapshot: Snapshot) -> str:
    """One issue's archive page as a standalone HTML document (``issue preview``'s page.html).

    ``snapshot`` is a published snapshot or a draft's (``issues.draft_snapshot``:
    ``"draft": true``, provisional number). The page is made by the build's own
    model, theme and template (``issue.html.j2``); only the links differ, so
    that it can be opened from any folder, as a file:

    - links to other pages of the archive are absolute (``archive.base_url``);
    - the theme's assets are inlined: stylesheets as ``<style>``, the others
      (icon, scripts) as ``data:`` URIs. ``url()`` references inside a
      stylesheet are left as they are;
    - there is no search (the menu has no search entry) and no link to the
      previous issue (the preview reads no other issue);
    - a draft has no canonical link and is ``noindex``.
    """
    number = snapshot.get("number")
    if isinstance(number, bool) or not isinstance(number, int) or number < 1:
        raise RenderError(f"the issue snapshot has no valid number ({number!r})")
    base = urls.site_root(config.archive.base_url)
    model = build_model(config, [(number, _canonical_json(dict(snapshot)))])
    spec = next(s for s in model.pages if s.path == issue_page(number))
    theme = _load_theme(config)
    site = _site_context(config, theme, base, search=False)
    page = {**_page_meta(spec, site), "root": base, "home": base}
    if snapshot.get("draft"):  # its address does not exist yet
        page.update(canonical=None, url=base)
    html = _render_page(theme, spec, site, page).decode("utf-8")
    return _inline_assets(html, theme, base)


_LINK_TAG = re.compile(r"<link\b[^>]*>", re.IGNORECASE)
_STYLESHEET = re.compile(r"""\brel\s*=\s*["']?stylesheet\b""", re.IGNORECASE)


def _inline_assets(html: str, theme: _Theme, base: str) -> str:
    """Replace the references to the theme's assets (absolute, under ``base``) by their content."""
    for name, path in theme.assets.items():
        data = theme.asset_data[path]
        url = str(escape(base + path))
        attribute = re.compile(r"""(\b(?:href|src)\s*=\s*)(["'])""" + re.escape(url) + r"\2")
        if name.endswith(".css"):
            css = data.decode("utf-8").replace("</style", "<\\/style")

            def to_style(
                match: re.Match[str], css: str = css, attribute: re.Pattern[str] = attribute
            ) -> str:
                tag = match.group(0)
                if _STYLESHEET.search(tag) and attribute.search(tag):
                    return f"<style>\n{css.rstrip()}\n</style>"
                return tag

            html = _LINK_TAG.sub(to_style, html)
        mime = mimetypes.guess_type(name)[0] or "application/octet-stream"
        uri = f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"
        html = attribute.sub(r"\g<1>\g<2>" + uri + r"\g<2>", html)  # no backslash in uri
    return html


def model_for(config: Config, store: Store) -> SiteModel:
    """The site's data and pages without building them."""
    return build_model(config, published_snapshot_texts(store))
