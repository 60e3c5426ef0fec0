"""The straightforward implementations the fast per-item paths must agree with.

The package normalizes and classifies every collected item; its fast paths
(nh3 cleaners built once, the plain-URL shortcuts of ``canonical_url``, one
phrase index for every term, words split once for places and terms) are
checked against these, which are the code as first written: one regex per
term, ``nh3.clean`` with its options on every call, the standard library's
reading of every URL. Shared by tests/test_matching_reference.py and
benchmarks/normalize.py (the "before" of the speed figures).
"""

from __future__ import annotations

import contextlib
import html
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit, urlunsplit

import nh3

from pressreview import places as pl
from pressreview.collect.classify import Classification, Classifier
from pressreview.contract import is_current_hdf
from pressreview.places import Mention, PlaceMatcher
from pressreview.text import (
    _ALLOWED_ATTRIBUTES,
    _ALLOWED_TAGS,
    _BREAKING_TAG_RE,
    _CONTROL_RE,
    _FOLD,
    _SURROGATE_RE,
    _WORD_RE,
    _is_tracking,
    fold,
    words,
)

# -- normalize -------------------------------------------------------------------

_WS_RE = re.compile(r"\s+")


def valid_text(text: str) -> str:
    text = _SURROGATE_RE.sub("\ufffd", text)
    return _CONTROL_RE.sub("", text)


def sanitize_html(fragment: str | None) -> str:
    if not fragment:
        return ""
    fragment = re.sub(
        r"(<(?:hr|/?(?:div|dl|dt|dd|h[1-6]|tr|td|th|table|caption|pre|section|article|aside|"
        r"nav|main|header|footer|address|figure|figcaption|center|details|summary|fieldset|"
        r"legend|hgroup))\b[^<>]*>)",
        r" \1",
        valid_text(fragment),
        flags=re.IGNORECASE,
    )
    cleaned = nh3.clean(
        fragment,
        tags=_ALLOWED_TAGS,
        attributes=_ALLOWED_ATTRIBUTES,
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer nofollow",
        strip_comments=True,
    )
    cleaned = _WS_RE.sub(" ", cleaned).strip()
    # A no-break space beside an ordinary space: one space.
    return re.sub(
        r"(?:&nbsp;| )+", lambda m: " " if " " in m[0] and "&nbsp;" in m[0] else m[0], cleaned
    ).strip()


def _clean_once(text: str) -> str:
    listed = False
    if "<" in text:
        # List items are separated by " ;" (none after an item ending with a mark).
        text, found = re.subn(r"</li[ \t\n]*>(?=[ \t\n]*<li\b)", "</li> ;", text, flags=re.I)
        listed = found > 0
        text = _BREAKING_TAG_RE.sub(lambda m: " " + m.group(0), text)
        text = nh3.clean(text, tags=set(), attributes={})
    text = html.unescape(html.unescape(text)) if "&" in text else text
    text = _WS_RE.sub(" ", valid_text(text)).strip()
    if listed:
        text = re.sub(r";(?: ;)+", ";", text)
        text = re.sub(r"(?<=[.:!?…,]) ;(?= |$)|^;(?: |$)| ;$", "", text)
    return text


def clean_text(text: str | None) -> str:
    if not text:
        return ""
    for _ in range(8):
        cleaned = _clean_once(text)
        if cleaned == text:
            break
        text = cleaned
    return text


def excerpt(text: str, limit: int = 300) -> str:
    text = clean_text(text)
    if len(text) <= limit:
        return text
    cut = text[: limit + 1]
    space = cut.rfind(" ")
    cut = cut[:space] if space > limit // 2 else cut[:limit]
    return cut.rstrip(" ,;:.-–—") + "…"


def canonical_url(url: str) -> str:
    url = url.strip()
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
    if ":" in host:
        host = f"[{host}]"
    if port is not None and not (
        (scheme == "http" and port == 80) or (scheme == "https" and port == 443)
    ):
        host = f"{host}:{port}"
    if parts.username:
        userinfo = parts.username + (f":{parts.password}" if parts.password else "")
        host = f"{userinfo}@{host}"
    path = _path(parts.path) or "/"
    try:
        pairs = parse_qsl(parts.query, keep_blank_values=True, errors="strict")
        query = urlencode(
            [(k, v) for k, v in pairs if not _is_tracking(k)], doseq=True, safe="/:@!$'()*,;~-._"
        )
    except UnicodeDecodeError:  # Latin-1 escapes: kept as they are, upper-cased
        query = "&".join(
            _upper(field)
            for field in parts.query.split("&")
            if field and not _is_tracking(unquote(field.split("=")[0], errors="replace"))
        )
    fragment = parts.fragment
    route = fragment[1:] if fragment[:1] in ("!", "/") and len(fragment) > 1 else None
    return urlunsplit((scheme, host, path, query, "")) + (
        "#" + fragment[0] + _path(fragment[1:]) if route is not None else ""
    )


def _upper(text: str) -> str:
    return re.sub(r"%[0-9A-Fa-f]{2}", lambda m: m.group(0).upper(), text)


def _path(path: str) -> str:
    """Each piece between escaped slashes decoded and encoded again, if it is UTF-8."""
    pieces = []
    for piece in re.split(r"%2[Ff]", path):
        try:
            pieces.append(quote(unquote(piece, errors="strict"), safe="/:@!$&'()*+,;=~-._"))
        except UnicodeDecodeError:
            pieces.append(_upper(piece))
    return "%2F".join(pieces)


# -- classify --------------------------------------------------------------------


def unaccent(text: str) -> str:
    return text if text.isascii() else text.translate(_FOLD)


class TermMatcher:
    """One regex per term, a set test first."""

    def __init__(self, terms: Iterable[str]):
        self.terms = [t for t in terms if t.strip()]
        patterns = []
        for term in self.terms:
            tokens = words(term)
            if tokens:
                patterns.append(r"\b" + r"\W+".join(re.escape(t) for t in tokens) + r"\b")
        self._regexes = [re.compile(p) for p in patterns]
        self._folded_terms = [t for t in self.terms if words(t)]
        self._tokens = [frozenset(words(t)) for t in self._folded_terms]

    def matches(
        self, text: str, *, folded: bool = False, present: set[str] | None = None
    ) -> list[str]:
        haystack = text if folded else fold(text)
        if present is None:
            present = set(_WORD_RE.findall(haystack))
        return [
            term
            for term, tokens, regex in zip(
                self._folded_terms, self._tokens, self._regexes, strict=True
            )
            if tokens <= present and regex.search(haystack)
        ]

    def first_match(self, folded_text: str) -> int | None:
        starts = [m.start() for regex in self._regexes if (m := regex.search(folded_text))]
        return min(starts) if starts else None


def find_places(
    matcher: PlaceMatcher, title: str, text: str = "", outlet: str | None = None
) -> list[Mention]:
    """``PlaceMatcher.find`` reading each text with ``re.finditer``, token by token."""
    title, text = unaccent(title), unaccent(text)
    mentions = _scan(matcher, _blank_outlets(matcher, title, outlet), True)
    mentions += _scan(matcher, _blank_outlets(matcher, text, outlet), False)
    return matcher._resolve_context(mentions)


def _blank_outlets(matcher: PlaceMatcher, text: str, outlet: str | None) -> str:
    if "’" in text:
        text = text.replace("’", "'")
    if not text or not outlet:
        return text
    words_ = tuple(fold(w) for w in pl._WORD.findall(unaccent(outlet)))
    skip = words_ in matcher._known_outlets or matcher.is_place(outlet)
    regex = None if skip else pl._outlet_regex((outlet,))
    return regex.sub(pl._blank, text) if regex is not None else text


def _scan(matcher: PlaceMatcher, text: str, in_title: bool) -> list[Mention]:
    tokens = list(pl._WORD.finditer(text))
    words_exact = [t.group(0) for t in tokens]
    words_folded = [w.casefold() for w in words_exact]
    index = matcher._index
    found: list[Mention] = []
    n = len(tokens)
    resume = 0
    for i in range(n):
        if i < resume or words_folded[i] not in index.starts:
            continue
        matched = 0
        for length in index.starts[words_folded[i]]:
            if length > n - i:
                continue
            place = index.exact.get(tuple(words_exact[i : i + length])) or index.folded.get(
                tuple(words_folded[i : i + length])
            )
            if place is None:
                continue
            if length > 1 and not all(
                pl._JOIN.fullmatch(text, tokens[k].end(), tokens[k + 1].start())
                for k in range(i, i + length - 1)
            ):
                continue
            if place.kind == "outlet":
                matched = length
                break
            span = tokens[i : i + length]
            start, end = span[0].start(), span[-1].end()
            if place.official_name and not pl._standalone(text, start, end):
                continue
            before = text[max(0, start - 40) : start]
            if place.kind == "commune" and pl._STREET.search(before):
                matched = length
                break
            official = bool(pl._OFFICIAL.search(before))
            kicker = in_title and not text[:start].strip() and text[end:].lstrip()[:1] == ":"
            found.append(Mention(place, start, in_title, official, kicker))
            matched = length
            break
        resume = i + matched
    return found


@dataclass
class ReferenceClassifier:
    """``Classifier.classify`` with a regex per term and the token-by-token place scan."""

    classifier: Classifier

    def __post_init__(self) -> None:
        config_terms = self.classifier
        self.include = TermMatcher(config_terms.include.terms)
        self.exclude = TermMatcher(config_terms.exclude.terms)
        self.sections = [(key, TermMatcher(m.terms)) for key, m in config_terms.sections]

    def classify(
        self,
        title: str,
        text: str,
        source_territory: str | None = None,
        *,
        published: datetime | date | None = None,
        outlet: str | None = None,
    ) -> Classification:
        c = self.classifier
        plain_title, plain_text = unaccent(title), unaccent(text)
        folded = f"{plain_title}\n{plain_text}".casefold()
        present = set(_WORD_RE.findall(folded))
        included = self.include.matches(folded, folded=True, present=present)
        excluded = self.exclude.matches(folded, folded=True, present=present)
        folded_title = plain_title.casefold()
        in_title = self.include.matches(folded_title, folded=True) if included else []
        score = len(included) + len(in_title) - 2 * len(excluded)
        relevant = (not c.has_include or score >= c.min_score) and not excluded
        mentions = find_places(c.places, plain_title, plain_text, outlet)
        contract = c.contracts.classify(
            title,
            text,
            published,
            outlet=outlet,
            source_territory=source_territory,
            mentions=mentions,
            folded=(folded_title, plain_text.casefold()),
        )
        current = is_current_hdf(contract)
        reserved = c.settings.contracts_section
        section = None
        best: tuple[int, int] = (0, 0)
        for key, matcher in self.sections:
            if key == reserved and not current:
                continue
            found = matcher.matches(folded, folded=True, present=present)
            if not found:
                continue
            weight = len(found) + len(matcher.matches(folded_title, folded=True))
            where = matcher.first_match(folded_title)
            rank = (weight, -(where if where is not None else len(folded_title) + 1))
            if section is None or rank > best:
                section, best = key, rank
        reason = None
        if current and reserved:
            section = reserved
        elif contract is not None and not current:
            generation, region = contract["generation"], contract["region"]
            if generation in ("2015-2023", "earlier") and c.settings.filter_old_generations:
                reason = f"contrat de ville of the {generation} generation"
            elif region == "other" and c.settings.other_regions == "filter":
                reason = "contrat de ville of another region"
            elif region in ("other", "national") and c.settings.national_section:
                section = c.settings.national_section
        territories: list[str] = [source_territory] if source_territory else []
        for name in c.places.territories(mentions):
            if name not in territories:
                territories.append(name)
        return Classification(
            score=score,
            relevant=relevant and reason is None,
            section=section,
            territories=territories,
            matched=included,
            contract=contract,
            filter_reason=reason if relevant else None,
        )
