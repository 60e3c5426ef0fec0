"""Places named in a text: territories of the configuration and the official division.

One :class:`PlaceMatcher` is built per run (from the configuration and the
bundled geography); :meth:`PlaceMatcher.find` is then a pure function of a
text. Matching works on words (accents removed, case kept), longest name
first, so "Saint-Quentin-en-Yvelines" is not Saint-Quentin, "Val-d'Oise" is not
Oise and "Nord-Pas-de-Calais" (the former region) is neither Nord nor
Pas-de-Calais. The rules that keep ordinary words out:

- names of the official division count only as written (capitals): "Somme"
  the département, not "une somme"; single-word communes of the region only
  from 2,000 inhabitants (smaller ones collide with words: Rue, Y);
- a name followed by a hyphen and another word is part of a longer name
  ("Croix-Rouge" is not Croix), except a quarter's "-Nord", "-Sud"...;
  preceded by a hyphen, it is the end of a longer name ("Hauts-de-Rouen");
- a name after "rue", "avenue", "place"... is an address, not the story's place;
- a name after "préfet de" / "sous-préfète de" is where a State official sits:
  it says the region, not the carrier of a contract;
- outlet names ("La Voix du Nord", the configured feeds) are blanked first;
- configured acronyms count only in capitals; "context" acronyms (MEL, ARC,
  CAB, CUA...) only when another place of the same département is named.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from pressreview.config import Config, Territory
from pressreview.geo import Geography, load_geography
from pressreview.text import fold, unaccent

_WORD = re.compile(r"\w+")
_WORD_SPLIT = re.compile(r"(\w+)")
#: ``_WORD_SPLIT`` for a text of Latin-1 characters (most texts): ``\w`` written as
#: the set of those characters it matches, the same words without the per-character
#: Unicode lookups of ``\w``.
_LATIN1_WORD_SPLIT = re.compile(
    "([" + "".join(re.escape(c) for c in map(chr, range(256)) if c.isalnum() or c == "_") + "]+)"
)
_NOT_LATIN1 = re.compile(r"[^\x00-\xff]")
#: The non-ASCII characters a case-insensitive regex matches with ASCII letters.
_ASCII_CASE_PARTNERS = "\u0130\u0131\u017f\u212a"
#: Words between two tokens of one name: spaces, hyphens, apostrophes, a comma.
_JOIN = re.compile(r"[\s'’\-–,.]{1,4}")
_QUARTER_SUFFIX = {"Nord", "Sud", "Est", "Ouest", "Centre"}
_STREET = re.compile(
    r"\b(?:rue|avenue|av|boulevard|bd|place|allee|quai|chemin|route|impasse|square|cours)"
    r"\s+(?:de\s+la\s+|de\s+l'|du\s+|des\s+|de\s+|d')?$",
    re.IGNORECASE,
)
_OFFICIAL = re.compile(
    r"\b(?:sous-)?prefe(?:t|te|cture)s?\s+(?:de\s+la\s+|de\s+l'|du\s+|des\s+|de\s+|d')?$",
    re.IGNORECASE,
)
#: Former regions (before 2016): the division lists only today's.
FORMER_REGIONS_HDF = ("Nord-Pas-de-Calais", "Picardie")
FORMER_REGIONS_OTHER = (
    "Alsace", "Aquitaine", "Auvergne", "Basse-Normandie", "Champagne-Ardenne",
    "Franche-Comte", "Haute-Normandie", "Languedoc-Roussillon", "Limousin", "Lorraine",
    "Midi-Pyrenees", "Poitou-Charentes", "Rhone-Alpes", "Provence",
)  # fmt: skip
#: Prefixes of the official EPCI names, and how the press writes them.
_EPCI_PREFIXES = {
    "CA": ("CA", "communauté d'agglomération", "agglomération", "agglo"),
    "CC": ("CC", "communauté de communes"),
    "CU": ("CU", "communauté urbaine"),
}
#: Single-word communes of the region below this population are not matched.
MIN_SINGLE_WORD_POPULATION = 2000
#: Compound names below this population are not matched either.
MIN_COMPOUND_POPULATION = 500


@dataclass(frozen=True)
class Place:
    label: str
    region: str  # "hdf" | "other"
    kind: str  # territory | acronym | commune | epci | department | region
    department: str | None = None
    siren: str | None = None
    territory: str | None = None
    context: bool = False
    population: int = 0
    #: A name of the official division: the hyphen and address rules apply.
    official_name: bool = False


@dataclass(frozen=True)
class Mention:
    place: Place
    start: int
    in_title: bool
    #: Named as the seat of a State official ("préfet de l'Aisne").
    official: bool = False
    #: The headline's kicker: the title opens with this place and a colon
    #: ("Val-d'Oise : ..."), the French press's way of saying where the story is.
    kicker: bool = False


@dataclass
class _Index:
    exact: dict[tuple[str, ...], Place] = field(default_factory=dict)
    folded: dict[tuple[str, ...], Place] = field(default_factory=dict)
    longest: int = 1
    #: Lengths (in words) of the names that start with a word, longest first.
    starts: dict[str, tuple[int, ...]] = field(default_factory=dict)

    #: The first two (folded) words of the longer names: most word pairs are none.
    pairs: set[tuple[str, str]] = field(default_factory=set)

    def finish(self) -> None:
        lengths: dict[str, set[int]] = {}
        for key in [*(tuple(fold(w) for w in k) for k in self.exact), *self.folded]:
            lengths.setdefault(key[0], set()).add(len(key))
            if len(key) > 1:
                self.pairs.add((key[0], key[1]))
        self.starts = {w: tuple(sorted(n, reverse=True)) for w, n in lengths.items()}

    def add(self, name: str, place: Place, *, sensitive: bool, replace: bool = False) -> None:
        tokens = tuple(_WORD.findall(unaccent(name)))
        if not tokens:
            return
        target, key = (
            (self.exact, tokens) if sensitive else (self.folded, tuple(fold(t) for t in tokens))
        )
        old = target.get(key)
        if old is None and sensitive:
            # A configured name, whatever its case, stands before the division's.
            old = self.folded.get(tuple(fold(t) for t in tokens))
        # Homonyms: the configuration first, then the larger place.
        if (
            old is not None
            and not replace
            and (old.kind in ("territory", "acronym") or old.population >= place.population)
        ):
            return
        target[key] = place
        self.longest = max(self.longest, len(tokens))


class Words:
    """A text's words as the place matcher reads them: the text (accents removed,
    capitals kept, ’ read as '), its words as written and folded, the runs of
    characters between them and where each word starts and ends."""

    __slots__ = ("_at", "exact", "folded", "parts", "text")

    def __init__(self, text: str):
        self.text = text
        # One split gives the words and what lies between them: [gap, word, gap, ...].
        #: ``parts[2 * k + 1]`` is word k, ``parts[2 * k]`` what lies before it.
        latin1 = text.isascii() or _NOT_LATIN1.search(text) is None
        self.parts = parts = (_LATIN1_WORD_SPLIT if latin1 else _WORD_SPLIT).split(text)
        self.exact: list[str] = parts[1::2]
        # The text has no accents left: folding a word is lower-casing it, and
        # lower-casing the text or each of its words gives the same words.
        self.folded: list[str] = list(map(str.casefold, self.exact))
        #: A part already reached and where it starts in the text.
        self._at = (0, 0)

    @classmethod
    def of(cls, unaccented: str) -> Words:
        """The words of an unaccented text (``text.unaccent``)."""
        return cls(unaccented.replace("’", "'") if "’" in unaccented else unaccented)

    def start(self, k: int) -> int:
        """Where word k starts in the text."""
        # Most texts name a place or two, asked for in order: the lengths are added
        # from the last word asked for, up to this one (not every word's bounds).
        part, position = self._at
        if part > 2 * k + 1:
            part, position = 0, 0
        position += sum(map(len, self.parts[part : 2 * k + 1]))
        self._at = (2 * k + 1, position)
        return position

    def end(self, k: int) -> int:
        """Where word k ends in the text."""
        return self.start(k) + len(self.parts[2 * k + 1])


def _article_forms(name: str) -> list[str]:
    """ "Le Quesnoy" is also written "du Quesnoy", "au Quesnoy"."""
    for article, forms in (
        ("Le ", ("le ", "du ", "au ")),
        ("La ", ("la ",)),
        ("Les ", ("les ", "des ", "aux ")),
    ):
        if name.startswith(article):
            rest = name[len(article) :]
            return [name, *(f + rest for f in forms)]
    return [name]


class PlaceMatcher:
    """Built once per run; :meth:`find` is a pure function of the text."""

    def __init__(self, config: Config, geo: Geography | None = None):
        geo = geo or load_geography()
        self.geo = geo
        cls = config.classification
        ignored = {fold(n) for n in cls.ignore_places}
        display_only = {fold(t.name) for t in config.territories if not t.match_name}
        skip = ignored | display_only
        index = _Index()
        self._shared_acronyms: dict[tuple[str, ...], list[Place]] = {}
        self._siren_territory: dict[str, str] = {}
        self._territory_siren: dict[str, str] = {}
        self._department_territory: dict[str, str] = {}
        dep_names = {fold(n): c for c, n in geo.departments.items()}
        # EPCI names as staff may write them: "CA Béthune-Bruay Artois Lys Romane"
        # is the division's "CA de Béthune-Bruay, Artois-Lys Romane".
        epci_by_name: dict[tuple[str, ...], str] = {}
        for e in geo.epcis.values():
            core = _epci_core(e.name)
            for variant in [*_epci_variants(e.name), *([core] if core else [])]:
                epci_by_name.setdefault(_name_key(variant), e.siren)
        commune_by_name: dict[str, str] = {}
        for c in geo.communes.values():
            key = fold(c.name)
            best = commune_by_name.get(key)
            if best is None or geo.communes[best].population < c.population:
                commune_by_name[key] = c.code

        # 1. The configuration: names, aliases, acronyms (staff own them).
        for t in config.territories:
            siren = t.siren or _resolve_siren(geo, t, epci_by_name, commune_by_name)
            department = t.department
            if department is None and siren in geo.epcis:
                members = geo.epcis[siren].members
                department = members[0][:2] if members else None
            region = "hdf" if department is None or department in geo.departments else "other"
            if siren and fold(t.name) not in dep_names:
                # The first territory of an EPCI stands for it (carriers come first).
                self._siren_territory.setdefault(siren, t.name)
            if fold(t.name) in dep_names and t.department:
                self._department_territory[t.department] = t.name
            if siren:
                self._territory_siren[t.name] = siren
            place = Place(t.name, region, "territory", department, siren, t.name)
            labels = ([t.name] if t.match_name else []) + list(t.aliases)
            for label in labels:
                if fold(label) in ignored:
                    continue
                tokens = _WORD.findall(unaccent(label))
                # One capitalised word is a proper noun: matched as written.
                sensitive = len(tokens) == 1 and tokens[0][:1].isupper()
                index.add(label, place, sensitive=sensitive, replace=True)
            for acronym in t.acronyms:
                index.add(acronym, _acronym(place, acronym, False), sensitive=True, replace=True)
            for acronym in t.context_acronyms:
                akey = tuple(_WORD.findall(unaccent(acronym)))
                other = index.exact.get(akey)
                # Shared by two territories (CAB): only the département tells them apart.
                shared = other is not None and other.kind == "acronym" and other.siren != siren
                if shared:
                    assert other is not None
                    index.exact[akey] = Place(
                        acronym, "hdf", "acronym", None, None, None, context=True
                    )
                    self._shared_acronyms.setdefault(akey, [other]).append(
                        _acronym(place, acronym, True)
                    )
                elif akey in self._shared_acronyms:
                    self._shared_acronyms[akey].append(_acronym(place, acronym, True))
                else:
                    index.add(acronym, _acronym(place, acronym, True), sensitive=True, replace=True)

        # 2. The official division of the region.
        for name in (geo.region_name, *FORMER_REGIONS_HDF):
            index.add(name, Place(name, "hdf", "region"), sensitive=True)
        for code, name in geo.departments.items():
            if fold(name) not in skip:
                index.add(
                    name,
                    Place(name, "hdf", "department", code, official_name=True),
                    sensitive=True,
                )
        for e in geo.epcis.values():
            department = _main_department(e, geo)
            place = Place(e.name, "hdf", "epci", department, e.siren, official_name=True)
            for variant in _epci_variants(e.name):
                index.add(variant, place, sensitive=False)
            core = _epci_core(e.name)
            if core and fold(core) not in skip:
                index.add(core, place, sensitive=True)
        for c in geo.communes.values():
            if fold(c.name) in skip:
                continue
            single = len(_WORD.findall(c.name)) == 1
            floor = MIN_SINGLE_WORD_POPULATION if single else MIN_COMPOUND_POPULATION
            if c.population < floor:
                continue
            place = Place(
                c.name, "hdf", "commune", c.department, c.epci, None,
                population=c.population, official_name=True,
            )  # fmt: skip
            for form in _article_forms(c.name):
                index.add(form, place, sensitive=True)

        # 3. Elsewhere: every other région and département, the larger communes.
        for name in (*geo.other_regions, *FORMER_REGIONS_OTHER):
            index.add(name, Place(name, "other", "region"), sensitive=True)
        for code, name in geo.other_departments.items():
            if fold(name) not in skip:
                index.add(
                    name,
                    Place(name, "other", "department", code, official_name=True),
                    sensitive=True,
                )
        for name, department in geo.other_epcis:
            place = Place(name, "other", "epci", department, official_name=True)
            for variant in _epci_variants(name):
                index.add(variant, place, sensitive=False)
            core = _epci_core(name)
            if core and fold(core) not in skip:
                index.add(core, place, sensitive=True)
        for o in geo.other_communes:
            if fold(o.name) in skip:
                continue
            place = Place(
                o.name, "other", "commune", o.department,
                population=o.population, official_name=True,
            )  # fmt: skip
            for form in _article_forms(o.name):
                index.add(form, place, sensitive=True)
        # Outlet names are words to skip, unless the outlet is itself a place (an EPCI's site).
        self._known_outlets: set[tuple[str, ...]] = set()
        #: Per outlet of an item: the regex that blanks its name (None: nothing to do)
        #: and its first word lower-cased (None: no shortcut).
        self._outlet_regexes: dict[str, tuple[re.Pattern[str] | None, str | None]] = {}
        for name in dict.fromkeys([*cls.outlets, *(f.name for f in config.feeds)]):
            words = tuple(fold(w) for w in _WORD.findall(unaccent(name)))
            if words and not self._is_place(index, name):
                index.folded[words] = Place(name, "none", "outlet")
                index.longest = max(index.longest, len(words))
                self._known_outlets.add(words)
        index.finish()
        self._index = index

    # -- matching ---------------------------------------------------------------

    def find(
        self, title: str, text: str = "", outlet: str | None = None, *, unaccented: bool = False
    ) -> list[Mention]:
        """The places named in a title and a text, in order (outlet names left out).

        ``unaccented``: the caller already removed the accents (``text.unaccent``).
        """
        if not unaccented:
            title, text = unaccent(title), unaccent(text)
        return self.find_words(Words.of(title), Words.of(text), outlet)

    def find_words(
        self,
        title: Words,
        text: Words,
        outlet: str | None = None,
        candidates: tuple[list[int], list[int]] | None = None,
    ) -> list[Mention]:
        """``find`` on texts already split in words (the caller reads the words too).

        ``candidates``: per text, the indexes (in order) of its words that may
        start a name, when the caller already has them: at least every word
        of ``first_words`` (the others are skipped).
        """
        title_candidates, text_candidates = candidates or (None, None)
        scanned = self._blank_outlets(title, outlet)
        mentions = self._scan(scanned, True, title_candidates if scanned is title else None)
        scanned = self._blank_outlets(text, outlet)
        mentions += self._scan(scanned, False, text_candidates if scanned is text else None)
        return self._resolve_context(mentions)

    @property
    def first_words(self) -> frozenset[str]:
        """The folded words a name starts with (``Words.folded``)."""
        return frozenset(self._index.starts)

    def is_place(self, name: str) -> bool:
        """Is the whole name a place (``"Valenciennes Métropole"``: yes; a newspaper: no)?"""
        return self._is_place(self._index, name)

    @staticmethod
    def _is_place(index: _Index, name: str) -> bool:
        words = tuple(_WORD.findall(unaccent(name)))
        place = index.exact.get(words) or index.folded.get(tuple(fold(w) for w in words))
        return place is not None and place.kind != "outlet"

    def _blank_outlets(self, words: Words, outlet: str | None) -> Words:
        """The words to scan, the item's own outlet blanked when it is not one of
        the outlets the index already skips."""
        if not words.text or not outlet:
            return words
        if outlet in self._outlet_regexes:
            regex, first = self._outlet_regexes[outlet]
        else:
            names = _WORD.findall(unaccent(outlet))
            key = tuple(fold(w) for w in names)
            skip = key in self._known_outlets or self.is_place(outlet)
            regex = None if skip else _outlet_regex((outlet,))
            # The regex (case-insensitive) can only match where the name's first word
            # is, in any case: an ASCII word is found by lower-casing, unless the text
            # has one of the few other letters that case-insensitive matching equates
            # with ASCII ones (İ ı ſ K).
            first = names[0].lower() if regex is not None and names[0].isascii() else None
            if len(self._outlet_regexes) < 1000:
                self._outlet_regexes[outlet] = (regex, first)
        if regex is None:
            return words
        if (
            first is not None
            and first not in words.text.lower()
            and not any(c in words.text for c in _ASCII_CASE_PARTNERS)
        ):
            return words
        blanked = regex.sub(_blank, words.text)
        return words if blanked == words.text else Words.of(blanked)

    def _scan(
        self, words: Words, in_title: bool, candidates: list[int] | None = None
    ) -> list[Mention]:
        text, words_exact, words_folded = words.text, words.exact, words.folded
        index = self._index
        starts, pairs = index.starts, index.pairs
        found: list[Mention] = []
        n = len(words_exact)
        resume = 0  # words before this one belong to a name already read
        # Only the words that start a name are looked at (a set test in C for the rest).
        if candidates is None:
            candidates = [k for k, w in enumerate(words_folded) if w in starts]
        for i in candidates:
            if i < resume:
                continue
            word = words_folded[i]
            lengths = starts.get(word)
            if lengths is None:
                continue  # (a candidate of another matcher)
            if lengths[0] > 1 and (i + 1 >= n or (word, words_folded[i + 1]) not in pairs):
                # No longer name starts with these two words.
                if lengths[-1] != 1:
                    continue
                lengths = (1,)
            matched = 0
            for length in lengths:
                if length > n - i:
                    continue
                place = index.exact.get(tuple(words_exact[i : i + length])) or index.folded.get(
                    tuple(words_folded[i : i + length])
                )
                if place is None:
                    continue
                if length > 1 and not all(
                    _JOIN.fullmatch(gap) for gap in words.parts[2 * i + 2 : 2 * (i + length) : 2]
                ):
                    continue
                if place.kind == "outlet":
                    matched = length  # an outlet's name: skip its words, no place
                    break
                start, end = words.start(i), words.end(i + length - 1)
                if place.official_name and not _standalone(text, start, end):
                    continue
                before = text[max(0, start - 40) : start]
                if place.kind == "commune" and _STREET.search(before):
                    matched = length  # an address: skip the words, no place
                    break
                # (Every way of naming an official's seat has "pref" in it.)
                official = "pref" in before.lower() and bool(_OFFICIAL.search(before))
                kicker = in_title and not text[:start].strip() and text[end:].lstrip()[:1] == ":"
                found.append(Mention(place, start, in_title, official, kicker))
                matched = length
                break
            resume = i + matched
        return found

    def _resolve_context(self, mentions: list[Mention]) -> list[Mention]:
        """Context acronyms count only beside another place of their département."""
        if not any(m.place.context for m in mentions):
            return mentions
        departments = {m.place.department for m in mentions if not m.place.context}
        departments.discard(None)
        kept: list[Mention] = []
        for m in mentions:
            if not m.place.context:
                kept.append(m)
                continue
            key = tuple(_WORD.findall(m.place.label))
            candidates = self._shared_acronyms.get(key, [m.place])
            for candidate in candidates:
                if candidate.department in departments:
                    kept.append(Mention(candidate, m.start, m.in_title, m.official, m.kicker))
                    break
        return kept

    # -- what the mentions say ----------------------------------------------------

    def territories(self, mentions: Iterable[Mention]) -> list[str]:
        """Configured territories: named ones, a commune's EPCI and its département."""
        found: list[str] = []
        for m in mentions:
            p = m.place
            if p.region != "hdf":
                continue
            names = [
                p.territory,
                self._siren_territory.get(p.siren or ""),
                self._department_territory.get(p.department or "") if p.kind != "region" else None,
            ]
            for name in names:
                if name and name not in found:
                    found.append(name)
        return found

    def territory_siren(self, name: str) -> str | None:
        """The EPCI SIREN a configured territory stands for (None: a département...)."""
        return self._territory_siren.get(name)

    def epci_name(self, siren: str) -> str:
        epci = self.geo.epcis.get(siren)
        return epci.name if epci else siren


_NAME_STOPWORDS = frozenset({"de", "du", "des", "la", "le", "les", "l", "d", "et", "en"})


def _name_key(name: str) -> tuple[str, ...]:
    """The words of a name that tell it apart (articles and "et" dropped)."""
    return tuple(w for w in (fold(t) for t in _WORD.findall(name)) if w not in _NAME_STOPWORDS)


def _resolve_siren(
    geo: Geography,
    t: Territory,
    epci_by_name: dict[tuple[str, ...], str],
    commune_by_name: dict[str, str],
) -> str | None:
    """The EPCI a configured territory names: an EPCI's name, else a commune's EPCI."""
    for label in (t.name, *t.aliases):
        key = _name_key(label)
        if key in epci_by_name:
            return epci_by_name[key]
    for label in (t.name, *t.aliases):
        code = commune_by_name.get(fold(label))
        if code is not None:
            return geo.communes[code].epci
    return None


def _acronym(place: Place, acronym: str, context: bool) -> Place:
    return Place(
        acronym, place.region, "acronym", place.department, place.siren, place.territory, context
    )


def _main_department(e: object, geo: Geography) -> str | None:
    members = getattr(e, "members", ())
    counts: dict[str, int] = {}
    for code in members:
        if code[:2] in geo.departments:
            counts[code[:2]] = counts.get(code[:2], 0) + 1
    return max(counts, key=lambda d: counts[d]) if counts else None


def _epci_variants(name: str) -> list[str]:
    first, _, rest = name.partition(" ")
    if first in _EPCI_PREFIXES and rest:
        return [f"{prefix} {rest}" for prefix in _EPCI_PREFIXES[first]]
    return [name]


_CORE_ARTICLE = re.compile(r"^(?:de la |de l'|du |des |de |d')")


def _epci_core(name: str) -> str | None:
    """The name without "CA du": "Porte du Hainaut", "Saint-Quentin-en-Yvelines".

    Only names of two words or more: a single word ("Boulonnais") is left to
    the configuration's aliases.
    """
    first, _, rest = name.partition(" ")
    if first not in _EPCI_PREFIXES or not rest:
        return None
    core = _CORE_ARTICLE.sub("", rest)
    return core if len(_WORD.findall(core)) >= 2 and core[:1].isupper() else None


def _standalone(text: str, start: int, end: int) -> bool:
    """Not the middle of a longer hyphenated name ("Croix-Rouge", "Hauts-de-Rouen")."""
    if start > 0 and text[start - 1] in "-–":
        return False
    if end < len(text) and text[end] in "-–":
        following = _WORD.match(text, end + 1)
        if following is None or following.group(0) not in _QUARTER_SUFFIX:
            return False
    return True


def _blank(m: re.Match[str]) -> str:
    return " " * len(m.group(0))


@functools.lru_cache(maxsize=256)
def _outlet_regex(names: tuple[str, ...]) -> re.Pattern[str] | None:
    parts = []
    for name in names:
        tokens = _WORD.findall(unaccent(name))
        if tokens:
            parts.append(r"\W+".join(re.escape(t) for t in tokens))
    if not parts:
        return None
    parts.sort(key=len, reverse=True)
    return re.compile(r"\b(?:" + "|".join(parts) + r")\b", re.IGNORECASE)
