"""The email of an issue: a snapshot in, a :class:`RenderedEmail` (MJML compiled, text) out.

Everything a render needs comes from an issue *snapshot* (see issues.py): a
published issue renders the same email years later, whatever happened in the
store since. The Jinja environment and its filters are templating.py's; the
files of ``issue preview`` / ``issue render`` are preview.py's.

The email is rendered once per issue. The personal unsubscribe link is
:data:`UNSUBSCRIBE_PLACEHOLDER` (random for each process) in both parts; deliver.message
substitutes each subscriber's link (escaped for the HTML part).
"""

from __future__ import annotations

import html as html_lib
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from html.parser import HTMLParser
from typing import Any, cast

import mjml
from markupsafe import Markup

from pressreview import typography, urls
from pressreview.agenda import upcoming_in_snapshot
from pressreview.config import Config
from pressreview.errors import RenderError
from pressreview.model import Snapshot
from pressreview.templating import email_env, render_template
from pressreview.text import safe_url

#: Stands for a subscriber's own unsubscribe link in a rendered email (HTML and
#: text). An absolute URL that survives HTML escaping unchanged, drawn at random
#: for each process: delivery puts each subscriber's link wherever it appears,
#: so a feed's link or text that could spell it would get every subscriber's
#: link, sent to the feed's own address when clicked.
UNSUBSCRIBE_PLACEHOLDER = (
    f"https://desabonnement.invalid/pressreview-unsubscribe-{secrets.token_hex(8)}"
)

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
    #: What stands for the subscriber's unsubscribe link in ``html`` and ``text``.
    unsubscribe_placeholder: str = UNSUBSCRIBE_PLACEHOLDER

    @property
    def html_bytes(self) -> int:
        """Size of the HTML part in UTF-8 bytes (what Gmail's clipping counts)."""
        return len(self.html.encode("utf-8"))


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


def preheader_for(snapshot: Snapshot, limit: int = 140) -> str:
    """The hidden preview text: the intro's start, else the first items' titles."""
    text = " ".join(html_to_text(snapshot.get("intro_html") or "", links=False).split())
    if not text:
        titles = [item["title"] for section in snapshot["sections"] for item in section["items"]]
        text = " · ".join(titles[:3])
    if len(text) > limit:
        cut = text[: limit - 1].rsplit(" ", 1)[0].rstrip(" ,;:·–-")
        text = cut + "…"
    return text


def email_subject(config: Config, snapshot: Snapshot) -> str:
    """The subject frozen in the snapshot, else ``email.subject`` of the config (typeset)."""
    subject = snapshot.get("subject")
    if subject:
        return typography.typeset(" ".join(str(subject).split()))
    return format_subject(config.email.subject, snapshot)


def format_subject(pattern: str, snapshot: Snapshot) -> str:
    """``email.subject`` with {number}, {title} and {date} ("1er décembre 2026") replaced."""
    locale = str(snapshot.get("locale") or "fr_FR")
    try:
        subject = pattern.format(
            title=snapshot["title"],
            number=snapshot["number"],
            date=typography.format_date(snapshot.get("date"), "long", locale),
        )
    except (KeyError, IndexError, ValueError) as exc:
        raise RenderError(
            f"email.subject: cannot format {pattern!r} ({exc}); "
            "use only the fields {number}, {date} and {title}"
        ) from None
    return typography.typeset(" ".join(subject.split()))


#: An issue with more items than this opens with an "Au sommaire" block.
TOC_MIN_ITEMS = 6
#: Links longer than this (or Google News redirects) become numbered references
#: at the end of their section in the plain-text part.
TEXT_LINK_MAX = 80


def _long_link(url: str) -> bool:
    return len(url) > TEXT_LINK_MAX or "/CBMi" in url


def _text_links(sections: list[dict[str, Any]]) -> None:
    """Give each item (and other outlet) a ``text_link`` for the plain-text part:
    the URL itself, or ``[n]`` with the URL listed in its section's ``text_refs``."""
    number = 0
    for section in sections:
        refs: list[tuple[int, str]] = []
        for item in section["items"]:
            for entry in (item, *item.get("also", ())):
                # Only http(s) links are written out (a feed may carry javascript:).
                url = safe_url(entry.get("url"))
                if not url:
                    entry["text_link"] = ""
                elif _long_link(url):
                    number += 1
                    refs.append((number, url))
                    entry["text_link"] = f"[{number}]"
                else:
                    entry["text_link"] = url
        section["text_refs"] = refs


def organisation_context(config: Config, org: Mapping[str, Any]) -> dict[str, Any]:
    """The organisation as templates use it: its name inside sentences and the
    reason a reader receives the email ("de l’IREV", "par l’IREV")."""
    short = str(org.get("short_name") or config.organisation.short_name or org["name"])
    out = dict(org)
    out["short_name"] = typography.typeset(short)
    out["of"] = typography.with_preposition("de", short)
    out["by"] = typography.with_preposition("par", short)
    reason = str(org.get("reason") or "").strip()
    out["reason"] = typography.typeset(" ".join(reason.split())) or (
        f"Vous recevez cette lettre parce que vous êtes abonné·e à la revue de presse {out['of']}."
    )
    out["logo_alt"] = typography.typeset(str(org["name"]))
    return out


def email_context(
    config: Config, snapshot: Snapshot, *, now: datetime | None = None
) -> dict[str, Any]:
    """What the email templates see (everything from the snapshot, typeset).

    The agenda leaves out the events already over at ``now`` (the time of
    sending): an issue never announces a past event.
    """
    issue = typography.typeset_snapshot(snapshot)
    intro_html = issue.get("intro_html") or ""
    sections = issue["sections"]
    for index, section in enumerate(sections):
        section["anchor"] = f"rubrique-{index + 1}"
    _text_links(sections)
    locale = str(snapshot.get("locale", config.locale))
    upcoming = (
        upcoming_in_snapshot(snapshot.get("agenda") or [], now or datetime.now(UTC))
        if config.agenda.in_email
        else []
    )
    return {
        "agenda": upcoming,
        "agenda_position": config.agenda.position,
        "issue": issue,
        "org": organisation_context(config, snapshot["organisation"]),
        "sections": sections,
        "subject": email_subject(config, snapshot),
        # mjml-python writes non-ASCII spaces of <mj-title> as "\u{a0}" in aria-label.
        "subject_plain": re.sub("[\u00a0\u202f]", " ", email_subject(config, snapshot)),
        "preheader": preheader_for(cast(Snapshot, issue)),  # typeset, same shape
        "intro_email_html": style_fragment(intro_html),
        "intro_text": html_to_text(intro_html),
        "archive_url": snapshot["archive_url"],
        "unsubscribe_url": UNSUBSCRIBE_PLACEHOLDER,
        "locale": locale,
        "lang": locale.split("_")[0],
        "toc": issue.get("item_count", 0) > TOC_MIN_ITEMS and len(sections) > 1,
        # The header says the date only when the title does not already say it.
        "date_in_title": typography.names_date(issue["title"], issue.get("date"), locale),
        **urls.legal_links(config),
    }


def render_email(
    config: Config, snapshot: Snapshot, *, now: datetime | None = None
) -> RenderedEmail:
    """The email of an issue snapshot: subject, HTML (MJML compiled, minified), text, preheader.

    Raises RenderError naming the template and line on a missing variable, a
    broken template or an MJML error.
    """
    if snapshot.get("schema") != 1:
        raise RenderError(f"unsupported issue snapshot schema {snapshot.get('schema')!r}")
    env = email_env(config)
    context = email_context(config, snapshot, now=now)
    source = render_template(env, EMAIL_HTML_TEMPLATE, context)
    html = minify_html(compile_mjml(source))
    # <title> keeps the subject's no-break spaces (mj-title got plain ones, see email_context).
    plain_title = f"<title>{html_lib.escape(context['subject_plain'], quote=False)}</title>"
    html = html.replace(
        plain_title, f"<title>{html_lib.escape(context['subject'], quote=False)}</title>", 1
    )
    text = render_template(env, EMAIL_TEXT_TEMPLATE, context)
    text = re.sub(r"\n{3,}", "\n\n", text).strip() + "\n"
    return RenderedEmail(
        subject=context["subject"], html=html, text=text, preheader=context["preheader"]
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
    """Problems of a rendered email HTML: leftover MJML, relative links, images without alt.

    Links to an anchor of the email itself ("#rubrique-2", the "Au sommaire" block) are fine.
    """
    problems: list[str] = []
    if "<mj-" in document:
        problems.append("MJML tag left in the HTML")
    for _quote, url in _HREF_RE.findall(document):
        url = html_lib.unescape(url).strip()
        if not re.match(r"(https?://[^/\s]+|mailto:|#[\w-]+$)", url, re.I):
            problems.append(f"link or image not absolute: {url!r}")
    for tag in _IMG_RE.findall(document):
        if not re.search(r"""\balt\s*=\s*["']""", tag):
            problems.append(f"image without alt: {tag[:80]}")
    if re.search(r"<script\b|<link\b[^>]*stylesheet", document, re.I):
        problems.append("script or external stylesheet in the HTML")
    return problems
