"""Text helpers shared by the stages: folding, URLs, titles, HTML, matching.

Pure functions, no I/O: the collection, curation and rendering stages all use
them so that "Creil" and "CREIL", or a link with and without ``utm_source``,
mean the same thing everywhere.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import html
import itertools
import re
import unicodedata
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import NamedTuple
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit, urlunsplit

import nh3

# -- folding ------------------------------------------------------------------

_LIGATURES = str.maketrans({"œ": "oe", "Œ": "OE", "æ": "ae", "Æ": "AE", "ß": "ss"})
_WORD_RE = re.compile(r"\w+", re.UNICODE)


class _FoldTable(dict[int, str]):
    """Per-character folding, computed on first sight of each character.

    Removing combining marks after NFKD is a per-character operation (the
    canonical reordering only moves the marks that are removed), so a cached
    translation table gives the same result as folding the whole string, at
    the speed of ``str.translate``.
    """

    def __missing__(self, code: int) -> str:
        char = chr(code).translate(_LIGATURES)
        nfkd = unicodedata.normalize("NFKD", char)
        # after NFKD too: a compatibility form may decompose to a ligature (U+A7F9 -> œ)
        folded = "".join(c for c in nfkd if not unicodedata.combining(c)).translate(_LIGATURES)
        self[code] = folded
        return folded


_FOLD = _FoldTable()


def _fold_slowly(text: str) -> str:
    return text.translate(_FOLD).casefold()


def _latin1_folding(
    per_char: Callable[[str], str] = _fold_slowly,
) -> tuple[bytes, re.Pattern[str]]:
    """Folding (or another per-character mapping) as a byte table for the Latin-1
    characters that map to one Latin-1 character (most accented letters), and a
    pattern of every other character."""
    table = bytearray(range(256))
    others = []
    for code in range(256):
        folded = per_char(chr(code))
        if len(folded) == 1 and ord(folded) < 256:
            table[code] = ord(folded)
        else:  # "ß" -> "ss", "µ" -> "μ", "½" -> "1⁄2"
            others.append(re.escape(chr(code)))
    return bytes(table), re.compile("[\u0100-\U0010ffff" + "".join(others) + "]")


_LATIN1_FOLD, _NOT_LATIN1_FOLD_RE = _latin1_folding()
#: The same for ``unaccent`` (accents dropped, case kept).
_LATIN1_UNACCENT, _NOT_LATIN1_UNACCENT_RE = _latin1_folding(lambda c: c.translate(_FOLD))


def fold(text: str) -> str:
    """Lower-case, accent-free form: ``"Cœur d'Ostrevent"`` → ``"coeur d'ostrevent"``.

    Folding is a per-character mapping (accents dropped, then case folded): a
    text of Latin-1 characters that each fold to one (most French prose) is
    folded by a byte table, three times as fast as through the table of every
    character.
    """
    if text.isascii():
        return text.casefold()
    if _NOT_LATIN1_FOLD_RE.search(text) is None:
        return text.encode("latin-1").translate(_LATIN1_FOLD).decode("latin-1")
    return _fold_slowly(text)


#: Marks that French alphabetical order passes over: apostrophes.
_SORT_IGNORED = str.maketrans(dict.fromkeys("'’‘ʼ", None))


def sort_key(text: str) -> str:
    """French alphabetical order: case, accents and apostrophes ignored.

    ``"CA d’Hénin-Carvin"`` sorts before ``"CA du Saint-Quentinois"`` ("dh" before
    "du"), as a French index has it; a plain :func:`fold` would put the
    apostrophe after every letter.
    """
    return fold(text).translate(_SORT_IGNORED)


def unaccent(text: str) -> str:
    """Accent-free form that keeps the case: ``"Cœur d'Ostrevent"`` → ``"Coeur d'Ostrevent"``.

    ``fold(text) == unaccent(text).casefold()``: the place matcher needs the
    capitals (``Somme`` the département, ``somme`` an amount).
    """
    if text.isascii():
        return text
    if _NOT_LATIN1_UNACCENT_RE.search(text) is None:
        # Most French prose: a byte table, as in ``fold``.
        return text.encode("latin-1").translate(_LATIN1_UNACCENT).decode("latin-1")
    # Only the runs of other characters need the table (ASCII maps to itself).
    return _NON_ASCII_RE.sub(_unaccent_run, text)


_NON_ASCII_RE = re.compile(r"[^\x00-\x7f]+")


def _unaccent_run(match: re.Match[str]) -> str:
    return match.group().translate(_FOLD)


def words(text: str) -> list[str]:
    """The folded words of a text (letters and digits; apostrophes and dashes split)."""
    return _WORD_RE.findall(fold(text))


def folded_words(folded: str) -> set[str]:
    """The set of words of an already folded text (for ``TermMatcher.matches``)."""
    return set(_WORD_RE.findall(folded))


def search_text(*parts: str | None) -> str:
    """The folded text that full-text search indexes (same on every backend)."""
    return " ".join(" ".join(words(p)) for p in parts if p)


# -- clean text -------------------------------------------------------------

#: Control characters (C0 but tab and line breaks, C1), the directional
#: embeddings, overrides and isolates (which can make a title read backwards,
#: "gnp.exe" shown as "exe.png"), and non-characters.
_DROPPED = r"\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ufffe\uffff"
_CONTROL_RE = re.compile(f"[{_DROPPED}]")
_SURROGATE_RE = re.compile(r"[\ud800-\udfff]")
_INVALID_RE = re.compile(f"[{_DROPPED}\\ud800-\\udfff]")


def valid_text(text: str) -> str:
    """Drop what cannot be stored or shown, or would mislead the reader: control
    characters, directional overrides; lone surrogates become U+FFFD."""
    # Printable text (no control, surrogate, separator other than " ", nor
    # non-character) has nothing to drop, and the test is cheaper than a scan.
    if text.isprintable() or not _INVALID_RE.search(text):
        return text  # the common case: one scan, nothing to replace
    text = _SURROGATE_RE.sub("\ufffd", text)
    return _CONTROL_RE.sub("", text)


def _squeeze(text: str) -> str:
    """Every run of whitespace as one space, none at either end."""
    if "  " not in text and text.isprintable():
        return text.strip()  # the common case: the only whitespace is single spaces
    return " ".join(text.split())


def clean_text(text: str | None) -> str:
    """Entities decoded, tags removed, whitespace folded, invalid characters dropped.

    Idempotent: decoding ``&lt;b&gt;`` gives a tag, which is removed in turn,
    until nothing changes.
    """
    if not text:
        return ""
    for _ in range(8):
        cleaned = _clean_once(text)
        if cleaned == text or ("<" not in cleaned and "&" not in cleaned):
            # Without a tag or an entity left, another pass would only redo what
            # this one did (valid, whitespace folded, stripped): a fixed point.
            return cleaned
        text = cleaned
    return text


# Tags that separate words when a browser shows them (blocks, line breaks, cells).
_BREAKING_TAG_RE = re.compile(
    r"<(?:br|hr|/?(?:p|div|li|ul|ol|dl|dt|dd|h[1-6]|tr|td|th|table|blockquote|pre|"
    r"section|article|header|footer|figure|figcaption))\b[^<>]*+>",
    re.IGNORECASE,
)


#: Elements deeper than this lose their tags (not their text) before the HTML
#: parser reads a fragment: its work grows with the square of the depth (a feed
#: summary of 100,000 nested ``<div>`` took over a minute), and no summary a
#: reader would want nests thirty deep.
MAX_DEPTH = 32
_ANY_TAG_RE = re.compile(r"<(/?)([A-Za-z][A-Za-z0-9]*+)[^<>]*+>")
#: Void elements, and those a sibling closes (they do not nest as written).
_FLAT_TAGS = frozenset(
    {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param",
     "source", "track", "wbr", "p", "li", "dt", "dd", "tr", "td", "th", "option"}
)  # fmt: skip


def _shallow(fragment: str) -> str:
    """``fragment`` without the tags of elements nested deeper than MAX_DEPTH.

    Linear: one pass over the tags, counting opening and closing ones.
    """
    if fragment.count("<") <= MAX_DEPTH:
        return fragment  # cannot nest that deep
    depth = 0
    out: list[str] = []
    last = 0
    for match in _ANY_TAG_RE.finditer(fragment):
        closing, name = match.group(1), match.group(2).lower()
        if name in _FLAT_TAGS or match.group(0).endswith("/>"):
            continue
        if closing:
            depth = max(0, depth - 1)
        elif depth < MAX_DEPTH:
            depth += 1
        else:
            out.append(fragment[last : match.start()])
            last = match.end()
    if not out:
        return fragment
    out.append(fragment[last:])
    return "".join(out)


#: Built once: nh3 converts its options on every ``nh3.clean`` call, which costs
#: more than the cleaning of a short summary.
_TEXT_CLEANER = nh3.Cleaner(tags=set(), attributes={})


#: A tag of the markup most summaries are made of (``_SIMPLE_MARKUP_RE``).
_SIMPLE_TAG = (
    r"</?(?:a|abbr|b|blockquote|br|cite|code|em|i|li|ol|p|q|s|small|span|strong|sub|sup|u|ul)"
    r'(?:[ \t\n]++[a-z][a-z-]*+(?:="[^"<>\ud800-\udfff]*+")?)*+[ \t\n]*+/?>'
)
_SIMPLE_TAG_RE = re.compile(_SIMPLE_TAG)
#: Text without entity, carriage return, NUL, byte order mark (the parser
#: drops or changes these) or lone surrogate (nh3 raises on one, and so must
#: clean_text), between tags of elements that the
#: HTML parser never reads in a special way (no raw text, table, form, foreign
#: or void content but ``<br>``), whose attributes are double-quoted without
#: ``<`` or ``>``. Its plain text, as ``_TEXT_CLEANER`` gives it, is the text
#: between the tags: the tags are removed without parsing the HTML. (Possessive
#: quantifiers: a failed match costs linear time, not exponential.)
_SIMPLE_MARKUP_RE = re.compile(rf"(?:[^<&\r\x00\ud800-\udfff\ufeff]++|{_SIMPLE_TAG})*+")


#: The end of a list item that another item follows.
_ITEM_BOUNDARY_RE = re.compile(r"</li[ \t\n]*+>(?=[ \t\n]*+<li\b)", re.IGNORECASE)
#: The separator added between list items where the item already ends with a
#: mark, or where an empty item left it first.
_NEEDLESS_SEPARATOR_RE = re.compile(r"(?<=[.:!?…,]) ;(?= |$)|^;(?: |$)| ;$")
#: Separators in a row (empty items, an item ending with its own ";"): one.
_SEPARATOR_RUN_RE = re.compile(r";(?: ;)++")


def _clean_once(text: str) -> str:
    listed = False
    if "<" in text:
        if "</" in text:
            # Items of a list read as an enumeration: "204 QPV ; 700 000 habitants".
            text, found = _ITEM_BOUNDARY_RE.subn("</li> ;", text)
            listed = found > 0
        # "<li>204 QPV</li><li>700 000 habitants</li>" reads as two phrases, not one word.
        if _SIMPLE_MARKUP_RE.fullmatch(text):
            # Each of its tags is one _BREAKING_TAG_RE match or none at all.
            text = _SIMPLE_TAG_RE.sub("", _BREAKING_TAG_RE.sub(" ", text))
        else:
            text = _BREAKING_TAG_RE.sub(lambda m: " " + m.group(0), text)
            text = _TEXT_CLEANER.clean(_shallow(text))
    text = html.unescape(html.unescape(text)) if "&" in text else text
    text = _squeeze(valid_text(text))
    if listed:
        text = _NEEDLESS_SEPARATOR_RE.sub("", _SEPARATOR_RUN_RE.sub(";", text))
    return text


def split_publisher(title: str, known: str | None = None) -> tuple[str, str | None]:
    """Split Google News' trailing `` - Publisher`` off a title.

    With ``known`` (the ``<source>`` element's text) only that suffix is split;
    otherwise the last `` - `` segment is taken when it is short enough to be
    a publisher's name.
    """
    if known:
        for sep in (" - ", " – ", " — "):
            suffix = f"{sep}{known}"
            if title.endswith(suffix) and len(title) > len(suffix):
                return title[: -len(suffix)].strip(), known
        return title, known
    for sep in (" - ", " – ", " — "):
        head, found, tail = title.rpartition(sep)
        if found and head and 0 < len(tail) <= 60 and len(tail.split()) <= 7:
            return head.strip(), tail.strip()
    return title, None


def excerpt(text: str, limit: int = 300) -> str:
    """A plain-text excerpt cut at a word boundary, with an ellipsis when cut."""
    text = clean_text(text)
    if len(text) <= limit:
        return text
    cut = text[: limit + 1]
    space = cut.rfind(" ")
    cut = cut[:space] if space > limit // 2 else cut[:limit]
    return cut.rstrip(" ,;:.-–—") + "…"


# -- HTML -------------------------------------------------------------------

_ALLOWED_TAGS = {
    "a", "abbr", "b", "blockquote", "br", "cite", "code", "em", "i", "li", "ol",
    "p", "q", "s", "small", "strong", "sub", "sup", "u", "ul",
}  # fmt: skip
_ALLOWED_ATTRIBUTES = {"a": {"href", "title"}, "abbr": {"title"}}
_HTML_CLEANER = nh3.Cleaner(
    tags=_ALLOWED_TAGS,
    attributes=_ALLOWED_ATTRIBUTES,
    url_schemes={"http", "https", "mailto"},
    link_rel="noopener noreferrer nofollow",
    strip_comments=True,
)


#: Tags that separate words on screen but are not kept (``_ALLOWED_TAGS``): the
#: sanitizer drops them and keeps their text, so a space takes their place. (No
#: ``<`` inside a tag, and a possessive quantifier: linear time on ``<div<div<div...``.)
_DROPPED_BREAK_RE = re.compile(
    r"<(?:hr|/?(?:div|dl|dt|dd|h[1-6]|tr|td|th|table|caption|pre|section|article|aside|"
    r"nav|main|header|footer|address|figure|figcaption|center|details|summary|fieldset|"
    r"legend|hgroup))\b[^<>]*+>",
    re.IGNORECASE,
)


#: A run of spaces and no-break spaces (the sanitizer writes U+00A0 as ``&nbsp;``).
_SPACE_RUN_RE = re.compile(r"(?:&nbsp;| )+")


def _loose_space(match: re.Match[str]) -> str:
    run = match.group(0)
    # A no-break space beside an ordinary one only widens the gap: one space.
    return " " if " " in run and "&nbsp;" in run else run


def sanitize_html(fragment: str | None) -> str:
    """Feed HTML reduced to a safe subset: no script, style, event or image.

    A dropped block (``<div>``, ``<h2>``, a table cell...) leaves a space, so
    ``<h2>Titre</h2>Texte`` reads "Titre Texte", not "TitreTexte". A
    no-break space that stood between two blocks then reads as one space,
    not three (``<div>a</div>&nbsp;<div>b</div>``): a run of spaces where
    at least one is an ordinary space is one space. A no-break space alone
    (``Lille&nbsp;:``) is kept.
    """
    if not fragment:
        return ""
    fragment = valid_text(fragment)
    if "<" in fragment:
        fragment = _DROPPED_BREAK_RE.sub(r" \g<0>", fragment)
    # No <pre> is allowed, so runs of whitespace mean one space.
    cleaned = _squeeze(_HTML_CLEANER.clean(_shallow(fragment)))
    if "&nbsp;" in cleaned:
        cleaned = _SPACE_RUN_RE.sub(_loose_space, cleaned).strip()
    return cleaned


# -- URLs -------------------------------------------------------------------

TRACKING_PARAMS = frozenset(
    {
        "fbclid", "gclid", "dclid", "gbraid", "wbraid", "msclkid", "yclid", "igshid",
        "mc_cid", "mc_eid", "_hsenc", "_hsmi", "mkt_tok", "xtor", "at_medium",
        "at_campaign", "ns_source", "ns_mchannel", "ns_campaign", "ocid", "cmpid",
        "ref_src", "spm", "__twitter_impression",
        # Matomo (Piwik) and AT Internet campaign fields, by name: their prefixes
        # also begin a site's own fields ("fiche.php?pk_id=80021", "at_id").
        "pk_campaign", "pk_cpn", "pk_kwd", "pk_keyword", "pk_source", "pk_medium",
        "pk_content", "pk_cid", "pk_vid", "at_platform",
        "at_creation", "at_variant", "at_format", "at_type", "at_link", "at_send_date",
        "at_recipient_id", "at_recipient_list", "at_emailtype", "at_ptr_name", "at_xtor",
        "at_custom1", "at_custom2", "at_custom3", "at_custom4",
    }
)  # fmt: skip
TRACKING_PREFIXES = ("utm_", "mtm_", "oly_")


def _is_tracking(key: str) -> bool:
    k = key.lower()
    return k in TRACKING_PARAMS or k.startswith(TRACKING_PREFIXES)


def canonical_url(url: str) -> str:
    """The form of a link used for identity.

    Scheme and host lower-cased, default port and fragment dropped (not a
    ``#!`` or ``#/`` route of a one-page site, which names the article),
    tracking parameters (utm_*, fbclid, gclid, ...) removed, the rest of the
    query kept in its order, percent-encoding normalized without changing what
    the link means (``%2F`` in a path, ``%2B`` in a query and escapes of
    Latin-1 text stay escapes). Idempotent. A string that is not an absolute
    http(s) URL is returned stripped, otherwise unchanged.
    """
    url = url.strip()
    plain = _PLAIN_URL_RE.fullmatch(url)
    if plain:
        # Most links: what the general path below would do reduces to this.
        scheme, host, path, query, fragment = plain.group(
            "scheme", "host", "path", "query", "fragment"
        )
        query = _canonical_query(query or "")
        return (
            f"{scheme.lower()}://{host.lower()}{path or '/'}"
            + (f"?{query}" if query else "")
            + _kept_fragment(fragment or "")
        )
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return url
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        return url
    host = parts.hostname.lower().rstrip(".")
    with contextlib.suppress(UnicodeError):
        host = host.encode("idna").decode("ascii") if not host.isascii() else host
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    if port is not None and not (
        (scheme == "http" and port == 80) or (scheme == "https" and port == 443)
    ):
        host = f"{host}:{port}"
    if parts.username:
        userinfo = parts.username + (f":{parts.password}" if parts.password else "")
        host = f"{userinfo}@{host}"
    path = parts.path
    if not _PLAIN_PATH_RE.fullmatch(path):  # else the canonical path is path itself
        path = _canonical_path(path)
    return urlunsplit(
        (scheme, host, path or "/", _canonical_query(parts.query), "")
    ) + _kept_fragment(parts.fragment and "#" + parts.fragment)


def _kept_fragment(fragment: str) -> str:
    """A ``#!`` or ``#/`` route (the article of a one-page site), else nothing."""
    if fragment.startswith(("#!", "#/")) and len(fragment) > 2:
        return "#" + _canonical_path(fragment[1:])
    return ""


_ESCAPE_RE = re.compile(r"%[0-9A-Fa-f]{2}")


def _upper_escape(match: re.Match[str]) -> str:
    return match.group(0).upper()


def _canonical_path(path: str) -> str:
    """Escapes decoded where that changes nothing, the rest percent-encoded.

    An escaped ``/`` stays escaped (``rapport%2F2026`` is one segment), as does
    ``%25``; escapes that are not UTF-8 (``actualit%E9s``, Latin-1) are kept,
    upper-cased, rather than read as U+FFFD.
    """
    pieces = re.split(r"%2[Ff]", path)
    out = []
    for piece in pieces:
        try:
            text = unquote(piece, errors="strict")
        except UnicodeDecodeError:
            out.append(_ESCAPE_RE.sub(_upper_escape, piece))
            continue
        out.append(quote(text, safe="/:@!$&'()*+,;=~-._"))
    return "%2F".join(out)


#: An http(s) link with a plain host name (no port, no user), a path ``quote`` leaves
#: alone, and nothing ``urlsplit`` would remove (tabs, line breaks).
_PLAIN_URL_RE = re.compile(
    r"(?P<scheme>[Hh][Tt][Tt][Pp][Ss]?)://(?P<host>[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*)"
    r"(?P<path>/[A-Za-z0-9_.~/:@!$&'()*+,;=-]*)?(?:\?(?P<query>[^#\s]*))?(?P<fragment>#\S*)?"
)
#: What ``quote(unquote(s), safe=...)`` gives back unchanged: the canonical path
#: of most links, which then costs one match instead of a decoding and an encoding.
_PLAIN_PATH_RE = re.compile(r"[A-Za-z0-9_.~/:@!$&'()*+,;=-]*")
#: A query field ``urlencode(parse_qsl(...))`` gives back unchanged (no ``%``,
#: ``+``, ``=``, ``&`` or character to encode).
_PLAIN_FIELD_RE = re.compile(r"[A-Za-z0-9_.~/:@!$'()*,;-]*")


def _canonical_query(query: str) -> str:
    """The query without its tracking parameters, the rest encoded one way."""
    if not query:
        return ""
    kept = []
    for field in query.split("&"):
        if not field:
            continue
        key, _, value = field.partition("=")
        if not (_PLAIN_FIELD_RE.fullmatch(key) and _PLAIN_FIELD_RE.fullmatch(value)):
            break
        if not _is_tracking(key):
            kept.append(f"{key}={value}")
    else:
        return "&".join(kept)
    # A field to decode or encode: the standard library's reading of the query.
    try:
        pairs = parse_qsl(query, keep_blank_values=True, errors="strict")
    except UnicodeDecodeError:
        # Escapes of Latin-1 text: read as U+FFFD, two different links would be one.
        return "&".join(
            _ESCAPE_RE.sub(_upper_escape, field)
            for field in query.split("&")
            if field and not _is_tracking(unquote(field.partition("=")[0], errors="replace"))
        )
    # A "+" of the text is written %2B (a "+" in a query reads as a space).
    return urlencode(
        [(k, v) for k, v in pairs if not _is_tracking(k)], doseq=True, safe="/:@!$'()*,;~-._"
    )


_WEB_URL_RE = re.compile(r"https?://[^\s/?#@]+(?:[/?#][^\s]*)?", re.IGNORECASE | re.ASCII)
_URL_SPACE_RE = re.compile(r"[\x00-\x20\x7f]")


def safe_url(value: object) -> str:
    """``value`` when it is an absolute ``http``/``https`` URL, else ``""``.

    The one check every template applies before writing an ``href`` or a
    ``src`` that comes from item data: ``javascript:``, ``data:``,
    ``vbscript:``, relative or protocol-relative links and anything carrying
    control characters or spaces give ``""`` (templates then show no link).
    """
    if not isinstance(value, str):
        return ""
    url = value.strip()
    if _URL_SPACE_RE.search(url) or not _WEB_URL_RE.fullmatch(url):
        return ""
    parts = url_parts(url)
    if parts is None or not parts.port_ok:
        return ""
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return ""
    return url


def host_of(url: str) -> str:
    parts = url_parts(url)
    return (parts.hostname or "").lower() if parts is not None else ""


class URLParts(NamedTuple):
    """What the link checks read of ``urlsplit(url)``."""

    #: Lower-cased, as ``urlsplit`` gives it.
    scheme: str
    hostname: str | None
    #: False when reading the port raises ``ValueError`` (not a number, out of range).
    port_ok: bool


@functools.lru_cache(maxsize=256)
def url_parts(url: str) -> URLParts | None:
    """``urlsplit(url)``'s scheme, host name and port check; ``None`` when it raises.

    Cached: collection checks each entry's link several times (is it valid, is
    it safe, which host), and most links are plain (``_PLAIN_URL_RE``), read
    without ``urlsplit``.
    """
    plain = _PLAIN_URL_RE.fullmatch(url)
    if plain:
        return URLParts(plain["scheme"].lower(), plain["host"].lower(), True)
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    try:
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        port_ok = False
    else:
        port_ok = True
    return URLParts(parts.scheme, parts.hostname, port_ok)


# -- titles and near-duplicates ------------------------------------------------

_STOP_WORDS = frozenset(
    {
        "le", "la", "les", "l", "un", "une", "des", "de", "du", "d", "et", "a", "au", "aux",
        "en", "sur", "pour", "par", "dans", "avec", "ce", "cette", "ces", "son", "sa", "ses",
        "qui", "que", "quoi", "est", "sont", "ou", "the", "of", "and", "to", "in", "on", "for",
    }
)  # fmt: skip


def title_tokens(title: str) -> list[str]:
    """Significant folded words of a title (stop words dropped)."""
    return [w for w in words(title) if w not in _STOP_WORDS]


def shingles(title: str) -> set[str]:
    """Word pairs of a title (single words for very short titles)."""
    return shingles_of_words(words(title))


def shingles_of_words(title_words: Sequence[str]) -> set[str]:
    """``shingles`` of a title given its ``words``."""
    tokens = [w for w in title_words if w not in _STOP_WORDS]
    if len(tokens) < 3:
        return set(tokens)
    return {f"{a} {b}" for a, b in itertools.pairwise(tokens)}


def similarity(a: str, b: str) -> float:
    """Jaccard similarity of the two titles' shingles (0..1)."""
    return jaccard(shingles(a), shingles(b))


def jaccard(sa: set[str], sb: set[str]) -> float:
    """Jaccard similarity of two shingle sets (0..1)."""
    if not sa or not sb:
        return 0.0
    return len(sa & sb) / len(sa | sb)


def keys_of_shingles(sh: set[str], k: int = 4) -> list[str]:
    """``title_keys`` from already computed shingles."""
    if len(sh) < 2:
        return []
    return keys_of_hashes(shingle_hashes(sh), k)


def shingle_hashes(sh: Iterable[str]) -> list[int]:
    """The CRC-32 of each shingle: what the title keys and the store's masks are made of."""
    return [zlib.crc32(s.encode()) for s in sh]


def keys_of_hashes(hashes: Sequence[int], k: int = 4) -> list[str]:
    """``keys_of_shingles`` from the shingles' ``shingle_hashes``."""
    if len(hashes) < 2:
        return []
    return [f"{h:08x}" for h in sorted(hashes)[:k]]


def title_keys(title: str, k: int = 4) -> list[str]:
    """Lookup keys for near-duplicate candidates: a bottom-k sketch of the shingles.

    The k shingles with the smallest hashes stand for the title; two titles
    whose shingle sets are similar share some of them with high probability.
    Candidates found through these keys (an indexed lookup, so the cost does
    not grow with the store) are then confirmed with ``similarity``.
    """
    sh = shingles(title)
    if len(sh) < 2:
        return []
    hashed = sorted(zlib.crc32(s.encode()) for s in sh)
    return [f"{h:08x}" for h in hashed[:k]]


# -- matching terms -----------------------------------------------------------


class PhraseIndex:
    """Where phrases (tuples of folded words) occur in a list of words, in one pass.

    A term matches a text, whole words, when its words are consecutive words of
    the text (``words``): the same answer as a ``\\bterm\\W+words\\b`` regex per
    term, for every term at once, at the cost of one dictionary lookup per word.
    """

    def __init__(self, phrases: Iterable[tuple[str, ...]]):
        self.phrases = frozenset(p for p in phrases if p)
        lengths: dict[str, set[int]] = {}
        for phrase in self.phrases:
            lengths.setdefault(phrase[0], set()).add(len(phrase))
        #: The lengths of the phrases starting with a word, shortest first.
        self._starts = {w: tuple(sorted(n)) for w, n in lengths.items()}
        #: The words a phrase starts with.
        self.first_words = frozenset(self._starts)

    def find(
        self, words: Sequence[str], candidates: Iterable[int] | None = None
    ) -> dict[tuple[str, ...], int]:
        """Each phrase found in ``words`` → the index of the word where it first starts.

        ``candidates``: the indexes, in order, of the words to try, when the caller
        already knows which may start a phrase (every index of a word in
        ``first_words`` must be there; others are skipped).
        """
        found: dict[tuple[str, ...], int] = {}
        starts, phrases, n = self._starts, self.phrases, len(words)
        if candidates is None:
            candidates = [k for k, w in enumerate(words) if w in starts]
        for i in candidates:
            for length in starts.get(words[i], ()):
                if i + length > n:
                    break
                key = tuple(words[i : i + length])
                if key in phrases and key not in found:
                    found[key] = i
        return found


class TermMatcher:
    """Whole-word, case- and accent-insensitive matching of terms and phrases."""

    def __init__(self, terms: Iterable[str]):
        self.terms = [t for t in terms if t.strip()]
        #: The terms that have words, and their folded words (what ``PhraseIndex`` finds).
        self.terms_found = [t for t in self.terms if words(t)]
        self.keys = [tuple(words(t)) for t in self.terms_found]
        self.index = PhraseIndex(self.keys)

    def matches(
        self, text: str, *, folded: bool = False, present: set[str] | None = None
    ) -> list[str]:
        """The terms found in text (each once, in configuration order).

        ``present`` may give ``set(words(text))`` when the caller already has it.
        """
        haystack = text if folded else fold(text)
        if present is not None and not any(k[0] in present for k in self.keys):
            return []
        return self.found(self.index.find(_WORD_RE.findall(haystack)))

    def found(self, phrases: Mapping[tuple[str, ...], int]) -> list[str]:
        """The terms among phrases found by a ``PhraseIndex`` (in configuration order)."""
        return [t for t, k in zip(self.terms_found, self.keys, strict=True) if k in phrases]

    def first_match(self, folded_text: str) -> int | None:
        """Where the earliest of the terms starts in an already folded text (None: nowhere)."""
        tokens = list(_WORD_RE.finditer(folded_text))
        found = self.index.find([t.group(0) for t in tokens])
        return tokens[min(found.values())].start() if found else None


def sha256(data: bytes | str) -> str:
    if isinstance(data, str):
        data = data.encode("utf-8", "surrogatepass")
    return hashlib.sha256(data).hexdigest()
