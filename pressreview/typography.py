"""French typography for reader-facing text: spaces, apostrophes, dates, wrapping.

Applied to everything a reader sees, including the text that comes from feeds
and from the staff (titles, excerpts, intros, section titles, subject), not
only to the templates' fixed strings:

- a narrow no-break space (U+202F) before ``; ! ?`` and ``»`` and after ``«``;
- a no-break space (U+00A0) before ``:`` (the Imprimerie nationale's rule: a
  full-width space before the colon, narrow before the other high signs);
- a no-break space in "n° 12", between a number and its unit or the word it
  counts ("40 millions d’euros", "204 QPV", "10 h 30", "1er décembre");
- a narrow no-break space between groups of digits ("1 200");
- straight apostrophes between letters become ’ and "..." becomes "…".

Addresses (``http://``, ``www.``, e-mail addresses) are never touched, and
:func:`typeset_html` changes only the text between tags of an HTML fragment,
never its attributes nor what ``<code>`` / ``<pre>`` hold. Every function is
idempotent: typesetting typeset text changes nothing.

Dates go through :func:`format_date` (Babel, then "1er" for the first day of
a month); the plain-text email is wrapped by :func:`wrap`, which breaks lines
only at ordinary spaces: never inside the pairs above, nor at the hyphen of a
place name ("CA de Lens-Liévin").

Why not a library: ``french-typo`` (1.6) writes ``&nbsp;`` entities and only
U+00A0 (unusable in the plain-text part and double-escaped by autoescaping
templates) and does not protect addresses in plain text; ``typographeur``
(0.5, last release 2020) works on HTML only and also writes entities. The rules
we need fit in a few tested regular expressions (tests/test_typography.py).
"""

from __future__ import annotations

import functools
import html
import re
import textwrap
from collections.abc import Callable, Mapping
from datetime import date, datetime
from typing import Any

from babel.dates import format_date as babel_format_date

from pressreview.errors import RenderError

NBSP = "\u00a0"
NNBSP = "\u202f"

_MONTHS = "janvier|février|mars|avril|mai|juin|juillet|août|septembre|octobre|novembre|décembre"
#: Words a number stays attached to (units, counted things, months).
_UNITS = (
    r"millions?|milliards?|milliers?|euros?|€|k€|M€|Md€|%|km|km²|m²|m2|m|cm|ha|kg|t|h|min|s"
    r"|ans?|mois|semaines?|jours?|heures?|minutes?|habitants?|logements?|personnes?"
    r"|emplois?|communes?|quartiers?|agents?|jeunes|places?|salariés?|élèves?|familles?"
    r"|participants?|candidatures?|territoires?|actions?|projets?|contrats?|cités?"
    r"|fois|points?|pages?|" + _MONTHS
)

# Addresses and e-mails: kept verbatim.
_PROTECTED_RE = re.compile(
    r"(?:https?://|ftp://|mailto:|www\.)[^\s<>\"«»]+|[\w.+-]+@[\w-]+(?:\.[\w-]+)+", re.I
)
_SPACES = r"[ \u00a0\u202f\u2009\t]"


_Replacement = str | Callable[[re.Match[str]], str]
#: A digit then a space: the number rules apply only to texts that have one.
_DIGIT_SPACE_RE = re.compile(rf"\d(?:er|re|e|ème)?{_SPACES}")
_NUMBERS = ("<digit+space>",)
_GROUPS = ("<digit+space+3 digits>",)
_DIGIT_GROUPS_RE = re.compile(rf"\d{_SPACES}\d{{3}}")

_S = _SPACES  # one space of any kind
#: (strings of which one must be in the text for the rule to apply, pattern, replacement):
#: the check skips most rules on most texts (a regex scan costs far more than ``in``), and
#: patterns begin with a literal or a class where they can, lookbehinds after it (faster).
_RULES: list[tuple[tuple[str, ...], re.Pattern[str], _Replacement]] = [
    # apostrophes and ellipsis
    (("'",), re.compile(r"'(?<=\w')(?=\w)"), "’"),
    (("...",), re.compile(r"\.\.\.(?!\.)"), "…"),
    # guillemets
    (("«",), re.compile(rf"«{_S}*"), "«" + NNBSP),
    (("»",), re.compile(rf"{_S}*»"), NNBSP + "»"),
    # high signs: existing space made non-breaking; missing space added after a word
    ((";", "!", "?"), re.compile(rf"{_S}+([;!?])"), NNBSP + r"\1"),
    (
        (";", "!", "?"),
        re.compile(r"([;!?])(?<=[\w…)\]’\u00bb][;!?])(?=\s|$|[»)!?.,])"),
        NNBSP + r"\1",
    ),
    ((":",), re.compile(rf"{_S}+:"), NBSP + ":"),
    ((":",), re.compile(r":(?<=[A-Za-zÀ-ÿ…)’]:)(?=\s|$)"), NBSP + ":"),
    # the first day of a month: 1er décembre
    (_NUMBERS, re.compile(rf"1(?<![\d,.]1)(?={_S}+(?:{_MONTHS})\b)"), "1er"),
    # n° 12
    (("°",), re.compile(rf"°(?<=\b[nN]°){_S}*(?=\d)"), "°" + NBSP),
    # groups of digits: 1 200, 90 000, 1 609 (not "mars 2026 100 logements", not "3,5 000")
    (
        _GROUPS,
        re.compile(
            rf"{_S}(?<=\d{_S})(?<!\d{{4}}{_S})(?<![,.]\d{_S})(?<![,.]\d\d{_S})"
            rf"(?<![,.]\d{{3}}{_S})(?=\d{{3}}(?![\d,]))"
        ),
        NNBSP,
    ),
    # 10 h 30
    (
        (" h ", " h\u00a0", "\u00a0h ", "\u00a0h\u00a0"),
        re.compile(rf"{_S}+h{_S}+(?<=\d{_S}h{_S})(?=\d\d\b)"),
        NBSP + "h" + NBSP,
    ),
    # a number and its unit, or the thing it counts: 40 millions, 204 QPV, 1er décembre
    (
        _NUMBERS,
        re.compile(
            rf"{_S}(?:(?<=\d{_S})|(?<=\der{_S})|(?<=\dre{_S})|(?<=\de{_S})|(?<=\dème{_S}))"
            rf"(?=(?:{_UNITS})(?![\w²])|[A-Z]{{2,}}\b)"
        ),
        NBSP,
    ),
    (("€", "%"), re.compile(r"(\d)(?=(?:€|%)(?!\w))"), r"\1" + NBSP),
    # "millions d’euros" stays together with its number
    (("milli",), re.compile(rf"\b(millions?|milliards?){_S}+(?=d[’']euros)"), r"\1" + NBSP),
]


def _typeset_plain(text: str) -> str:
    numbers = _DIGIT_SPACE_RE.search(text) is not None
    groups = numbers and _DIGIT_GROUPS_RE.search(text) is not None
    for trigger, pattern, replacement in _RULES:
        if trigger is _NUMBERS:
            applies = numbers
        elif trigger is _GROUPS:
            applies = groups
        else:
            applies = any(map(text.__contains__, trigger))
        if applies:
            text = pattern.sub(replacement, text)
    return text


@functools.lru_cache(maxsize=16384)
def typeset(text: str) -> str:
    """French typography for a plain text (not HTML): see the module's docstring."""
    if not text:
        return text
    if not any(mark in text for mark in ("://", "www.", "@", "mailto:")):
        return _typeset_plain(text)  # no address to protect (the common case, and faster)
    out: list[str] = []
    last = 0
    for match in _PROTECTED_RE.finditer(text):
        out.append(_typeset_plain(text[last : match.start()]))
        out.append(match.group(0))
        last = match.end()
    out.append(_typeset_plain(text[last:]))
    return "".join(out)


def typeset_value(value: Any) -> Any:
    """:func:`typeset` for strings (the ``typo`` template filter); anything else as is."""
    if value is None:
        return ""
    return typeset(str(value))


_TAG_RE = re.compile(r"(<!--.*?-->|<[^>]*>)", re.S)
_SKIP_TAGS = ("code", "pre", "kbd", "samp", "script", "style")


def typeset_html(fragment: str) -> str:
    """French typography on the text of an HTML fragment; tags and attributes untouched."""
    if not fragment:
        return fragment
    out: list[str] = []
    skipping: list[str] = []
    for index, part in enumerate(_TAG_RE.split(fragment)):
        if index % 2:  # a tag or a comment
            name = re.match(r"<\s*(/?)\s*([a-zA-Z0-9]+)", part)
            if name and name.group(2).lower() in _SKIP_TAGS and not part.endswith("/>"):
                if name.group(1):
                    if skipping:
                        skipping.pop()
                else:
                    skipping.append(name.group(2).lower())
            out.append(part)
        elif skipping or not part.strip():
            out.append(part)
        else:
            out.append(html.escape(typeset(html.unescape(part)), quote=False))
    return "".join(out)


# -- dates ----------------------------------------------------------------------

_FIRST_RE = re.compile(rf"(?<!\d)1(?=[ \u00a0]+(?:{_MONTHS})\b)", re.I)


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


@functools.lru_cache(maxsize=8192)
def _format(d: date, format: str, locale: str) -> str:
    text = str(babel_format_date(d, format=format, locale=locale))
    if locale.split("_")[0].lower() == "fr":
        text = typeset(_FIRST_RE.sub("1er", text))
    return text


def format_date(value: Any, format: str = "long", locale: str = "fr_FR") -> str:
    """A date for readers, through Babel: ``mardi 1er décembre 2026`` (format="full").

    ``value`` is a date, a datetime or an ISO string; None or "" give "". The
    one date formatter of the project: subject, email, archive, Atom.
    """
    d = _as_date(value)
    return "" if d is None else _format(d, format, locale)


def names_date(title: Any, value: Any, locale: str = "fr_FR") -> bool:
    """Whether ``title`` already says the date ``value`` in words ("Revue du 23
    novembre 2026"), whatever its spaces: then a heading need not repeat it."""
    said = format_date(value, "long", locale)
    if not said or title is None:
        return False
    return " ".join(said.split()).casefold() in " ".join(str(title).split()).casefold()


# -- wrapping the plain-text part ---------------------------------------------------


def wrap(text: str, width: int = 72, indent: str = "", first_indent: str | None = None) -> str:
    """Wrap for the plain-text email: break only at ordinary spaces.

    No-break spaces (U+00A0, U+202F) are not break points (``textwrap`` splits
    on ASCII whitespace only), hyphens are not break points, and a long word
    (an address) stays whole on its own line.
    """
    if not text:
        return ""
    wrapper = textwrap.TextWrapper(
        width=width,
        initial_indent=indent if first_indent is None else first_indent,
        subsequent_indent=indent,
        break_long_words=False,
        break_on_hyphens=False,
    )
    return "\n".join(wrapper.fill(p) if p.strip() else "" for p in text.split("\n"))


# -- organisation names in sentences --------------------------------------------------

_CONTRACTIONS = {
    ("de", "le"): "du",
    ("de", "les"): "des",
    ("à", "le"): "au",
    ("à", "les"): "aux",
}


def with_preposition(preposition: str, name: str) -> str:
    """``de`` + ``l'IREV`` → ``de l’IREV``; ``de`` + ``le Centre`` → ``du Centre``.

    ``name`` is a name with its article ("l'IREV", "le Centre de ressources",
    "la Maison de l'habitat", "les Ateliers"); the contractions of French
    ("du", "des", "au", "aux") are made, the apostrophe is typographic.
    """
    name = typeset(" ".join(name.split()))
    first, _, rest = name.partition(" ")
    contracted = _CONTRACTIONS.get((preposition.lower(), first.lower()))
    if contracted and rest:
        if preposition[:1].isupper():
            contracted = contracted.capitalize()
        return f"{contracted} {rest}"
    return f"{preposition} {name}" if preposition else name


# -- an issue snapshot, typeset --------------------------------------------------------


def typeset_snapshot(snapshot: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of an issue snapshot whose reader-facing texts are typeset.

    Titles, section titles, outlets, excerpts, staff summaries, the intro
    (text between tags only) and the subject; addresses and ids unchanged.
    Snapshots stay as frozen: typography is applied when they are rendered.
    """
    out = dict(snapshot)
    for key in ("title", "subject"):
        if isinstance(out.get(key), str):
            out[key] = typeset(out[key])
    if isinstance(out.get("intro_html"), str):
        out["intro_html"] = typeset_html(out["intro_html"])
    sections = []
    for section in snapshot.get("sections") or ():
        new_section = dict(section)
        new_section["title"] = typeset(str(section.get("title") or ""))
        items = []
        for item in section.get("items") or ():
            new_item = dict(item)
            for key in ("title", "outlet", "excerpt"):
                if isinstance(item.get(key), str):
                    new_item[key] = typeset(item[key])
            new_item["territories"] = [typeset(str(t)) for t in item.get("territories") or ()]
            if isinstance(item.get("summary_html"), str):
                new_item["summary_html"] = typeset_html(item["summary_html"])
            new_item["also"] = [
                {
                    **other,
                    "outlet": typeset(str(other.get("outlet") or "")),
                    "title": typeset(str(other.get("title") or "")),
                }
                for other in item.get("also") or ()
            ]
            items.append(new_item)
        new_section["items"] = items
        sections.append(new_section)
    out["sections"] = sections
    return out
