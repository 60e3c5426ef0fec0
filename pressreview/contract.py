"""Is an item about a contrat de ville, and which: generation, region, carriers, event.

A pure function of one item's title, text, publication date and outlet (no
store, no network), built once per run with the place matcher. The result
is what ``items.contract`` stores::

    {"generation": "2024-2030" | "2015-2023" | "earlier" | None,
     "region": "hdf" | "other" | "national",
     "carriers": [{"siren": "200093201", "name": "Métropole Européenne de Lille"}],
     "event": "signing" | "adoption" | "preparation" | "amendment" | "evaluation"
              | "programming" | None,
     "event_date": "2024-05-07" | None}

The rules are the domain's, documented in docs/classification.md.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import date, datetime

from pressreview.config import Config
from pressreview.frdates import find_dates
from pressreview.places import Mention, PlaceMatcher
from pressreview.text import fold

Contract = dict[str, object]

GENERATIONS = ("2024-2030", "2015-2023", "earlier")
REGIONS = ("hdf", "other", "national")
EVENTS = ("signing", "adoption", "preparation", "amendment", "evaluation", "programming")
#: The generation a page is about can be read from its date alone before these days.
_OLD_UNTIL = date(2023, 1, 1)  # the 2024 contracts were announced in 2023
_EARLIER_UNTIL = date(2014, 1, 1)  # the 2015 contracts were created by the law of 2014
_CURRENT_FROM = date(2024, 1, 1)  # from 2024, contracts signed or voted are the new ones

_CONTRACT = re.compile(
    r"\bcontrats? de ville\b|\bcontrats? urbains? de cohesion sociale\b|\bcucs\b"
    r"|\bcontrats?\b[^.]{0,40}\bquartiers 2030\b"
)
#: Other programmes in the same news: an item whose title names one is about it,
#: even when its text mentions the contrat de ville in passing.
_OTHER_PROGRAMME = re.compile(
    r"\bconventions? (?:de |d')?(?:renouvellement urbain|npnru|anru)\b|\bnpnru\b|\banru\b"
    r"|\brenouvellement urbain\b|\bcites? educatives?\b|\bcrte\b"
    r"|\bcontrat de relance et de transition ecologique\b"
    r"|\bcontrat pour la reussite de la transition ecologique\b"
    r"|\baction coeur de ville\b|\bpetites? villes? de demain\b"
    r"|\bcontrats? uniques? d'agglomeration\b|\bcites? de l'emploi\b"
)
_QUARTIERS_2030 = re.compile(r"\bquartiers 2030\b")
_NEW = re.compile(
    r"\bquartiers 2030\b|\b2024\s*[-/a]\s*2030\b|\b2030\b|\bnouvelle generation\b"
    r"|\bcontrats? de ville et des solidarites\b|\bfuturs? contrats?\b|\bprochains? contrats?\b"
)
_OLD = re.compile(
    r"\b2015\b|\bprorog\w*|\bprotocoles? d'engagements renforces"
    r"|\bjusqu'(?:en|a fin|a la fin) 202[0-3]\b"
)
_EARLIER = re.compile(
    r"\bcucs\b|\bcontrats? urbains? de cohesion sociale\b|\b(?:1989|1994|2000)\s*[-/a]\s*"
    r"(?:1993|1998|1999|2006)\b"
)

_SIGN_FUTURE = re.compile(
    r"\b(?:sera|seront|doit etre|doivent etre|devrait etre|devraient etre|va etre|vont etre)"
    r"\s+(?:\w+\s+)?signes?\b|\bsigneront\b|\bsignera\b"
    r"|\b(?:avant|en vue de|dans l'attente de) (?:sa|la|leur) signature\b"
    r"|\bsignatures? (?:est |sont )?(?:prevue|prevues|programmee|attendue|repoussee)s?\b"
)
_EVENT_RES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("amendment", re.compile(r"\bavenants?\b|\bprorog\w*|\bprotocoles? d'engagements")),
    (
        "signing",
        re.compile(
            r"\bsign(?:e|es|ee|ees|ent|ait|aient|ature|atures|ataires|ant|eront|era)\b"
            r"|\bparaphe\w*"
        ),
    ),
    (
        "adoption",
        re.compile(
            r"\badopt\w*|\bapprouv\w*|\bvote\w*|\bvalide\w*|\bdeliber\w*|\bse prononce\w*"
            r"|\bsoumis au vote\b|\bexaminera\b"
        ),
    ),
    ("evaluation", re.compile(r"\bevaluation\w*|\bbilans?\b|\bmi-parcours\b|\bevalue\w*")),
    ("programming", re.compile(r"\bappels? a projets?\b|\bprogrammations?\b")),
    (
        "preparation",
        re.compile(
            r"\bconcertations?\b|\bdiagnostics?\b|\bprepar\w*|\belaboration\b|\bateliers?\b"
            r"|\bco-?construction\b|\bcomites? de pilotage\b|\bfuturs? contrats?\b"
            r"|\bprochains? contrats?\b|\bconsult\w*|\ben discussion\b|\bconstruire\b"
        ),
    ),
)
#: What an adoption verb acts on when it is the year's programme, not the contract.
_PROGRAMME_OBJECT = re.compile(r"[^.;]{0,30}?\b(?:programmations?|appels? a projets?)\b")
#: Events that are acts of a day: only they get an event_date.
_DATED_EVENTS = {"signing", "adoption", "amendment"}
_SENTENCE_END = re.compile(r"[.!?;]\s|\n")


def is_current_hdf(contract: Contract | None) -> bool:
    """2024-2030 Hauts-de-France contract news (what the contracts section holds)."""
    return (
        contract is not None
        and contract.get("generation") == "2024-2030"
        and contract.get("region") == "hdf"
    )


class ContractClassifier:
    """Built once per run from the configuration; :meth:`classify` is per item."""

    def __init__(self, config: Config, places: PlaceMatcher | None = None):
        self.places = places or PlaceMatcher(config)
        self._source_territory = {t.name: t for t in config.territories}

    def classify(
        self,
        title: str,
        text: str,
        published: datetime | date | None,
        *,
        outlet: str | None = None,
        source_territory: str | None = None,
        mentions: Sequence[Mention] | None = None,
        folded: tuple[str, str] | None = None,
    ) -> Contract | None:
        """The contract object of an item, or None when it is not about a contrat de ville.

        ``mentions`` (the places of title and text) and ``folded`` (the folded
        title and text) may come from a caller that already has them.
        """
        ftitle, ftext = folded if folded is not None else (fold(title), fold(text))
        if not _about(ftitle, ftext):
            return None
        day = published.date() if isinstance(published, datetime) else published
        if mentions is None:
            mentions = self.places.find(title, text, outlet)
        region = self._region(mentions, source_territory)
        carriers = self._carriers(mentions, source_territory) if region == "hdf" else []
        event, event_date = _event(ftitle, ftext, day)
        return {
            "generation": _generation(ftitle, ftext, day),
            "region": region,
            "carriers": [{"siren": s, "name": self.places.epci_name(s)} for s in carriers],
            "event": event,
            "event_date": event_date.isoformat() if event_date else None,
        }

    def _region(self, mentions: Sequence[Mention], source_territory: str | None) -> str:
        weight = {"hdf": 0, "other": 0}
        for m in mentions:
            weight[m.place.region] += 2 if m.in_title else 1
        kicker = next((m.place.region for m in mentions if m.kicker), None)
        if kicker and weight["hdf"] and weight["other"]:
            # Places of both: the headline's "Place :" says where the story is.
            return kicker
        if weight["hdf"] > weight["other"]:
            return "hdf"
        if weight["other"] > weight["hdf"]:
            return "other"
        if weight["hdf"]:
            # As many places of the region as of others: a story across regions.
            return "national"
        if source_territory and source_territory in self._source_territory:
            return "hdf"
        return "national"

    def _carriers(self, mentions: Sequence[Mention], source_territory: str | None) -> list[str]:
        sirens: list[str] = []
        for m in mentions:
            s = m.place.siren
            if s and m.place.region == "hdf" and not m.official and s not in sirens:
                sirens.append(s)
        if not sirens and not mentions and source_territory:
            territory = self.places.territory_siren(source_territory)
            if territory:
                sirens.append(territory)
        return sirens


def _about(ftitle: str, ftext: str) -> bool:
    """The title names a contrat de ville; or the text does, and the title names
    something that happens to a contract ("Signature officielle à Laon") or the
    generation ("Quartiers 2030") and no other programme. A text that names the
    contract in passing ("en appui des équipes des contrats de ville") under a
    title about something else is not contract news."""
    # Every way of naming a contract has "contrat" or "cucs" in it: most texts
    # are ruled out without running the regex.
    if ("contrat" in ftitle or "cucs" in ftitle) and _CONTRACT.search(ftitle):
        return True
    if not ("contrat" in ftext or "cucs" in ftext) or not _CONTRACT.search(ftext):
        return False
    if _OTHER_PROGRAMME.search(ftitle):
        return False
    return bool(
        _QUARTIERS_2030.search(ftitle)
        or _SIGN_FUTURE.search(ftitle)
        or any(regex.search(ftitle) for _, regex in _EVENT_RES)
    )


def _generation(ftitle: str, ftext: str, day: date | None) -> str | None:
    if day is not None and day < _EARLIER_UNTIL:
        return "earlier"
    if day is not None and day < _OLD_UNTIL:
        return "2015-2023"
    for part in (ftitle, ftext):
        new, old = bool(_NEW.search(part)), bool(_OLD.search(part))
        if new:
            return "2024-2030"
        if old:
            return "2015-2023"
        if _EARLIER.search(part):
            return "earlier"
    if day is not None and day >= _CURRENT_FROM:
        return "2024-2030"
    return None


def _event_matches(folded: str) -> list[tuple[int, int, str]]:
    """(start, end, event) of every event word, a future signing read as preparation."""
    future = [(m.start(), m.end()) for m in _SIGN_FUTURE.finditer(folded)]
    found = [(a, b, "preparation") for a, b in future]
    for event, regex in _EVENT_RES:
        for m in regex.finditer(folded):
            if event == "signing" and any(a <= m.start() < b for a, b in future):
                continue
            if event == "adoption" and _PROGRAMME_OBJECT.match(folded, m.end()):
                # "a validé la programmation 2027": the annual programme, not the contract.
                event_here = "programming"
            else:
                event_here = event
            found.append((m.start(), m.end(), event_here))
    found.sort()
    return found


def _event(ftitle: str, ftext: str, day: date | None) -> tuple[str | None, date | None]:
    in_title = _event_matches(ftitle)
    in_text = _event_matches(ftext)
    event: str | None = None
    # An act on an avenant is an amendment ("signe l'avenant", "adopte un avenant").
    if in_title:
        amended = any(e[2] == "amendment" for e in in_title)
        event = "amendment" if amended else in_title[0][2]
    elif in_text:
        acts = [e for e in in_text if e[2] != "preparation"]
        amended = any(e[2] == "amendment" for e in acts)
        event = "amendment" if amended else (acts or in_text)[0][2]
    if event is None or event not in _DATED_EVENTS or day is None:
        return event, None
    for folded, matches in ((ftext, in_text), (ftitle, in_title)):
        for start, end, kind in matches:
            if kind == event:
                found = _date_near(folded, start, end, day)
                if found is not None:
                    return event, found
    return event, None


def _date_near(folded: str, start: int, end: int, published: date) -> date | None:
    """The date said in the keyword's sentence: just after it, else before it."""
    sentence_start = 0
    for m in _SENTENCE_END.finditer(folded, 0, start):
        sentence_start = m.end()
    stop = _SENTENCE_END.search(folded, end)
    sentence_end = stop.start() if stop else len(folded)
    dates = [
        d
        for d in find_dates(folded[sentence_start:sentence_end], published)
        if d.day <= published and d.day.year >= 1990
    ]
    after = [d for d in dates if d.start + sentence_start >= end - 1]
    near_after = [d for d in after if d.start + sentence_start - end <= 60]
    if near_after:
        return near_after[0].day
    before = [d for d in dates if d.end + sentence_start <= start]
    if before:
        return before[-1].day
    return None
