"""Rendering: Jinja2 templates, MJML compiled by mjml-python, and the plain-text part.

Everything a render needs comes from an issue *snapshot* (see issues.py): a
published issue renders the same email years later, whatever happened in the
store since. Templates live in ``templates/<subdir>/`` of the project; a
``templates_dir`` in the configuration is searched first
(``<templates_dir>/<subdir>/``), so an organisation can restyle one file
without forking the others.

The email is rendered once per issue. The personal unsubscribe link is the
constant :data:`UNSUBSCRIBE_PLACEHOLDER` in both parts; :func:`personalize`
substitutes a subscriber's link (escaped for the HTML part).
"""

from __future__ import annotations

import dataclasses
import functools
import html as html_lib
import re
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import jinja2
import mjml
from babel.dates import format_date as babel_format_date
from babel.dates import format_datetime as babel_format_datetime
from babel.numbers import format_decimal
from markupsafe import Markup

from pressreview.config import Config
from pressreview.errors import RenderError
from pressreview.text import safe_url


def _default_templates() -> Path:
    """The default theme: templates/ at the repository's root (a checkout or an
    editable install), or its copy installed as pressreview/templates (a wheel)."""
    here = Path(__file__).resolve().parent
    for candidate in (here.parent / "templates", here / "templates"):
        if (candidate / "email").is_dir():
            return candidate
    return here / "templates"  # pragma: no cover - a broken installation


#: Where the default theme lives: templates/<subdir>/.
TEMPLATES_ROOT = _default_templates()

#: Stands for a subscriber's own unsubscribe link in a rendered email (HTML and
#: text). An absolute URL that survives HTML escaping unchanged.
UNSUBSCRIBE_PLACEHOLDER = "https://desabonnement.invalid/pressreview-unsubscribe-placeholder"

EMAIL_HTML_TEMPLATE = "issue.mjml.j2"
EMAIL_TEXT_TEMPLATE = "issue.txt.j2"

#: ``issue show`` warns when the email HTML passes this share of email.max_html_bytes.
SIZE_WARNING_RATIO = 0.85


@dataclass(frozen=True)
class RenderedEmail:
    """One issue as an email: rendered once, personalised per recipient."""

    subject: str
    html: str
    text: str
    preheader: str

    @property
    def html_bytes(self) -> int:
        """Size of the HTML part in UTF-8 bytes (what Gmail's clipping counts)."""
        return len(self.html.encode("utf-8"))


# -- the Jinja environment -----------------------------------------------------


def _as_date(value: Any) -> date | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value[:10])
        except ValueError:
            raise RenderError(f"format_date: not an ISO date: {value!r}") from None
    raise RenderError(f"format_date: cannot format {type(value).__name__} as a date")


@functools.lru_cache(maxsize=4096)
def _babel_date(d: date, format: str, locale: str) -> str:
    return str(babel_format_date(d, format=format, locale=locale))


def _date_filter(locale: str) -> Callable[..., str]:
    def format_date_filter(value: Any, format: str = "long") -> str:
        """A date in words for readers: ``lundi 3 juin 2024`` (format="full")."""
        d = _as_date(value)
        return "" if d is None else _babel_date(d, format, locale)

    return format_date_filter


def _datetime_filter(locale: str, tz: Any) -> Callable[..., str]:
    def format_datetime_filter(value: Any, format: str = "medium") -> str:
        if value is None or value == "":
            return ""
        if isinstance(value, str):
            value = datetime.fromisoformat(value)
        return babel_format_datetime(value, format=format, tzinfo=tz, locale=locale)

    return format_datetime_filter


def _number_filter(locale: str) -> Callable[..., str]:
    def format_number_filter(value: Any) -> str:
        return "" if value is None else format_decimal(value, locale=locale)

    return format_number_filter


def template_dirs(config: Config, subdir: str) -> list[Path]:
    """Folders searched for the templates of ``subdir``, first match wins."""
    dirs: list[Path] = []
    if config.templates_dir:
        dirs.append(config.resolve(config.templates_dir) / subdir)
    dirs.append(TEMPLATES_ROOT / subdir)
    return dirs


def template_env(config: Config, subdir: str) -> jinja2.Environment:
    """The Jinja2 environment for ``templates/<subdir>`` (email, archive, web).

    ``<templates_dir>/<subdir>`` of the configuration is searched first, then
    the project's default theme. Autoescape is on (except for ``*.txt.j2``
    templates, which produce plain text), undefined variables are errors, and
    the filters ``format_date`` (Babel: ``value|format_date("full")`` gives
    "lundi 3 juin 2024"), ``format_datetime`` and ``format_number`` use
    ``config.locale`` and ``config.timezone``.
    """
    loader = jinja2.FileSystemLoader([str(d) for d in template_dirs(config, subdir)])
    env = jinja2.Environment(
        loader=loader,
        autoescape=jinja2.select_autoescape(
            disabled_extensions=("txt.j2", "txt"), default_for_string=True, default=True
        ),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["format_date"] = _date_filter(config.locale)
    env.filters["format_datetime"] = _datetime_filter(config.locale, config.tz)
    env.filters["format_number"] = _number_filter(config.locale)
    env.filters["safe_url"] = safe_url
    return env


@functools.lru_cache(maxsize=16)
def _cached_env(dirs: tuple[str, ...], locale: str, timezone: str) -> jinja2.Environment:
    config = Config(templates_dir=None, locale=locale, timezone=timezone)
    env = template_env(config, "email")
    env.loader = jinja2.FileSystemLoader(list(dirs))
    return env


def email_env(config: Config) -> jinja2.Environment:
    """The (cached) environment of the email templates; templates reload when their file changes."""
    dirs = tuple(str(d) for d in template_dirs(config, "email"))
    return _cached_env(dirs, config.locale, config.timezone)


def _template_location(exc: BaseException, name: str) -> str:
    """``name, line N`` from a Jinja error or from the traceback of a render."""
    lineno = getattr(exc, "lineno", None)
    filename = getattr(exc, "filename", None) or getattr(exc, "name", None)
    if lineno is None:
        for frame in reversed(traceback.extract_tb(exc.__traceback__)):
            if frame.filename.endswith(".j2") or frame.filename == "<template>":
                lineno, filename = frame.lineno, frame.filename
                break
    where = filename or name
    return f"{where}, line {lineno}" if lineno else str(where)


def render_template(env: jinja2.Environment, name: str, context: Mapping[str, Any]) -> str:
    """Render one template; any failure becomes a RenderError naming the template and line."""
    try:
        template = env.get_template(name)
        return template.render(**context)
    except jinja2.TemplateNotFound as exc:
        searched = ", ".join(str(p) for p in getattr(env.loader, "searchpath", []))
        raise RenderError(f"template {exc.name} not found (searched {searched})") from None
    except jinja2.TemplateSyntaxError as exc:
        raise RenderError(
            f"{_template_location(exc, name)}: template syntax error: {exc.message}"
        ) from None
    except jinja2.UndefinedError as exc:
        raise RenderError(f"{_template_location(exc, name)}: {exc.message}") from None
    except RenderError as exc:
        raise RenderError(f"{_template_location(exc, name)}: {exc}") from None
    except (TypeError, ValueError, AttributeError, KeyError) as exc:
        raise RenderError(f"{_template_location(exc, name)}: {type(exc).__name__}: {exc}") from None


# -- email -----------------------------------------------------------------------

_COMMENT_RE = re.compile(r"<!--(?!\[if|<!\[endif|\[endif)(?:(?!-->).)*?-->", re.S)
_BETWEEN_TAGS_RE = re.compile(r">\s+<")
_SPACES_RE = re.compile(r"[ \t\r\n]{2,}")


def minify_html(document: str) -> str:
    """Remove whitespace between tags and runs of blanks (conditional comments kept).

    MJML output has no <pre> or <textarea>; collapsing blanks there is safe.
    """
    document = _COMMENT_RE.sub("", document)
    document = _BETWEEN_TAGS_RE.sub("><", document)
    return _SPACES_RE.sub(" ", document)


def compile_mjml(source: str, *, template: str = EMAIL_HTML_TEMPLATE) -> str:
    """MJML to HTML; a broken document is a RenderError, never a half-rendered email."""
    try:
        html = mjml.mjml2html(source, disable_comments=True)
    except (ValueError, RuntimeError) as exc:
        raise RenderError(f"{template}: MJML error in the generated document: {exc}") from None
    leftover = re.search(r"<(mj-[a-z-]+)", html)
    if leftover:
        line = source[: source.find(f"<{leftover.group(1)}")].count("\n") + 1
        raise RenderError(
            f"{template}: MJML error: <{leftover.group(1)}> is not an MJML element or is "
            f"misplaced (line {line} of the generated MJML)"
        )
    return html


_TAG_STYLES = {
    "p": "margin:0 0 12px 0;",
    "ul": "margin:0 0 12px 0;padding-left:22px;",
    "ol": "margin:0 0 12px 0;padding-left:22px;",
    "li": "margin:0 0 4px 0;",
    "h2": "margin:16px 0 8px 0;font-size:18px;line-height:1.3;",
    "h3": "margin:14px 0 6px 0;font-size:16px;line-height:1.3;",
    "h4": "margin:12px 0 6px 0;font-size:15px;line-height:1.3;",
    "blockquote": "margin:0 0 12px 0;padding-left:12px;border-left:3px solid #c7ced8;",
    "a": "color:#1a4f8b;text-decoration:underline;",
}
_OPEN_TAG_RE = re.compile(r"<(p|ul|ol|li|h2|h3|h4|blockquote|a)(?=[\s>])")


def style_fragment(fragment: str) -> Markup:
    """Inline styles on sanitized HTML (email clients ignore most <style> rules).

    Only used on HTML that was sanitized when the snapshot was made: tags have
    no style attribute of their own.
    """
    return Markup(
        _OPEN_TAG_RE.sub(lambda m: f'<{m.group(1)} style="{_TAG_STYLES[m.group(1)]}"', fragment)
    )


class _TextExtractor(HTMLParser):
    """Sanitized HTML fragment (intro) to readable text: paragraphs, bullets, links."""

    def __init__(self, *, links: bool = True) -> None:
        super().__init__(convert_charrefs=True)
        self.links = links
        self.blocks: list[str] = []
        self.current: list[str] = []
        self.href: str | None = None
        self.link_text: list[str] = []
        self.list_stack: list[list[int]] = []

    def _flush(self) -> None:
        text = " ".join("".join(self.current).split())
        if text:
            self.blocks.append(text)
        self.current = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("p", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "br"):
            self._flush()
        elif tag in ("ul", "ol"):
            self._flush()
            self.list_stack.append([0] if tag == "ol" else [-1])
        elif tag == "li":
            self._flush()
            if self.list_stack and self.list_stack[-1][0] >= 0:
                self.list_stack[-1][0] += 1
                self.current.append(f"{self.list_stack[-1][0]}. ")
            else:
                self.current.append("- ")
        elif tag == "a":
            self.href = dict(attrs).get("href")
            self.link_text = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("p", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "li"):
            self._flush()
        elif tag in ("ul", "ol"):
            self._flush()
            if self.list_stack:
                self.list_stack.pop()
        elif tag == "a":
            text = "".join(self.link_text).strip()
            if self.links and self.href and self.href != text:
                self.current.append(f" ({self.href})")
            self.href = None

    def handle_data(self, data: str) -> None:
        self.current.append(data)
        if self.href is not None:
            self.link_text.append(data)

    def text(self) -> str:
        self._flush()
        return "\n\n".join(self.blocks)


def html_to_text(fragment: str, *, links: bool = True) -> str:
    """Readable plain text of a sanitized HTML fragment (links as ``text (url)``)."""
    parser = _TextExtractor(links=links)
    parser.feed(fragment or "")
    parser.close()
    return parser.text()


def preheader_for(snapshot: Mapping[str, Any], limit: int = 140) -> str:
    """The hidden preview text: the intro's start, else the first items' titles."""
    text = " ".join(html_to_text(snapshot.get("intro_html") or "", links=False).split())
    if not text:
        titles = [item["title"] for section in snapshot["sections"] for item in section["items"]]
        text = " · ".join(titles[:3])
    if len(text) > limit:
        cut = text[: limit - 1].rsplit(" ", 1)[0].rstrip(" ,;:·–-")
        text = cut + "…"
    return text


def email_subject(config: Config, snapshot: Mapping[str, Any]) -> str:
    """The subject frozen in the snapshot, else ``email.subject`` of the config."""
    subject = snapshot.get("subject")
    if subject:
        return str(subject)
    return format_subject(config.email.subject, snapshot)


def format_subject(pattern: str, snapshot: Mapping[str, Any]) -> str:
    try:
        return pattern.format(title=snapshot["title"], number=snapshot["number"])
    except (KeyError, IndexError, ValueError) as exc:
        raise RenderError(
            f"email.subject: cannot format {pattern!r} ({exc}); "
            "use only the fields {title} and {number}"
        ) from None


def email_context(config: Config, snapshot: Mapping[str, Any]) -> dict[str, Any]:
    """What the email templates see (everything from the snapshot)."""
    intro_html = snapshot.get("intro_html") or ""
    return {
        "issue": snapshot,
        "org": snapshot["organisation"],
        "sections": snapshot["sections"],
        "subject": email_subject(config, snapshot),
        "preheader": preheader_for(snapshot),
        "intro_email_html": style_fragment(intro_html),
        "intro_text": html_to_text(intro_html),
        "archive_url": snapshot["archive_url"],
        "unsubscribe_url": UNSUBSCRIBE_PLACEHOLDER,
        "locale": snapshot.get("locale", config.locale),
        "lang": str(snapshot.get("locale", config.locale)).split("_")[0],
    }


def render_email(config: Config, snapshot: Mapping[str, Any]) -> RenderedEmail:
    """The email of an issue snapshot: subject, HTML (MJML compiled, minified), text, preheader.

    Raises RenderError naming the template and line on a missing variable, a
    broken template or an MJML error.
    """
    if snapshot.get("schema") != 1:
        raise RenderError(f"unsupported issue snapshot schema {snapshot.get('schema')!r}")
    env = email_env(config)
    context = email_context(config, snapshot)
    source = render_template(env, EMAIL_HTML_TEMPLATE, context)
    html = minify_html(compile_mjml(source))
    text = render_template(env, EMAIL_TEXT_TEMPLATE, context)
    text = re.sub(r"\n{3,}", "\n\n", text).strip() + "\n"
    return RenderedEmail(
        subject=context["subject"], html=html, text=text, preheader=context["preheader"]
    )


def personalize(rendered: RenderedEmail, unsubscribe_url: str) -> RenderedEmail:
    """The email for one subscriber: the placeholder replaced by their unsubscribe link."""
    return dataclasses.replace(
        rendered,
        html=rendered.html.replace(
            UNSUBSCRIBE_PLACEHOLDER, html_lib.escape(unsubscribe_url, quote=True)
        ),
        text=rendered.text.replace(UNSUBSCRIBE_PLACEHOLDER, unsubscribe_url),
    )


def size_warning(config: Config, rendered: RenderedEmail) -> str | None:
    """A warning when the HTML is close to (or past) email.max_html_bytes."""
    limit = config.email.max_html_bytes
    size = rendered.html_bytes
    if size <= limit * SIZE_WARNING_RATIO:
        return None
    share = round(100 * size / limit)
    verdict = "over" if size > limit else "close to"
    return (
        f"the email HTML is {size / 1000:.1f} kB, {share}% of email.max_html_bytes "
        f"({limit / 1000:.0f} kB), {verdict} the size past which Gmail clips messages: "
        "remove items or shorten summaries"
    )


# -- checks (used by tests and by `issue render`) -------------------------------

_HREF_RE = re.compile(r"""\b(?:href|src)\s*=\s*(["'])(.*?)\1""", re.I | re.S)
_IMG_RE = re.compile(r"<img\b[^>]*>", re.I)


def check_email_html(document: str) -> list[str]:
    """Problems of a rendered email HTML: leftover MJML, relative links, images without alt."""
    problems: list[str] = []
    if "<mj-" in document:
        problems.append("MJML tag left in the HTML")
    for _quote, url in _HREF_RE.findall(document):
        url = html_lib.unescape(url).strip()
        if not re.match(r"(https?://[^/\s]+|mailto:)", url, re.I):
            problems.append(f"link or image not absolute: {url!r}")
    for tag in _IMG_RE.findall(document):
        if not re.search(r"""\balt\s*=\s*["']""", tag):
            problems.append(f"image without alt: {tag[:80]}")
    if re.search(r"<script\b|<link\b[^>]*stylesheet", document, re.I):
        problems.append("script or external stylesheet in the HTML")
    return problems


# -- files -------------------------------------------------------------------------


@dataclass
class EmailFiles:
    """What ``issue render`` / ``issue preview`` wrote, and what to warn about."""

    rendered: RenderedEmail
    paths: list[Path]
    warnings: list[str]


def write_email_files(
    config: Config, snapshot: Mapping[str, Any], out_dir: Path, *, eml: bool = True
) -> EmailFiles:
    """Write email.html, email.txt and (``eml``) email.eml, a complete MIME message.

    The MIME message is addressed to ``email.from_address`` and keeps the
    unsubscribe placeholder: it is for looking at, not for sending.
    """
    rendered = render_email(config, snapshot)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        paths = [out_dir / "email.html", out_dir / "email.txt"]
        paths[0].write_text(rendered.html, encoding="utf-8")
        paths[1].write_text(rendered.text, encoding="utf-8")
        if eml:
            from pressreview.deliver.message import build_message

            message = build_message(
                config,
                rendered,
                to=config.email.from_address,
                unsubscribe_url=UNSUBSCRIBE_PLACEHOLDER,
            )
            paths.append(out_dir / "email.eml")
            paths[-1].write_bytes(message.as_bytes())
    except OSError as exc:
        raise RenderError(f"cannot write into {out_dir}: {exc.strerror or exc}") from None
    warnings = [w for w in [size_warning(config, rendered)] if w]
    warnings.extend(check_email_html(rendered.html))
    return EmailFiles(rendered, paths, warnings)


def write_preview(config: Config, snapshot: Mapping[str, Any], out_dir: Path) -> EmailFiles:
    """Write email.html, email.txt and page.html (the issue's archive page) of a snapshot.

    The snapshot is a draft's (``issues.draft_snapshot``) or a published
    issue's. Both renders happen before anything is written: a broken template
    leaves no half-made preview.
    """
    # Imported here: the archive builds its templates with this module's template_env.
    from pressreview.archive import render_issue_page

    page_html = render_issue_page(config, snapshot)
    files = write_email_files(config, snapshot, out_dir, eml=False)
    page = out_dir / "page.html"
    try:
        page.write_text(page_html, encoding="utf-8")
    except OSError as exc:
        raise RenderError(f"cannot write into {out_dir}: {exc.strerror or exc}") from None
    files.paths.append(page)
    return files
