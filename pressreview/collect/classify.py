"""Relevance, sections, territories and contrat de ville of an item, from the configuration."""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from datetime import date, datetime

from pressreview.config import Config
from pressreview.contract import Contract, ContractClassifier, is_current_hdf
from pressreview.places import PlaceMatcher, Words
from pressreview.text import PhraseIndex, TermMatcher, unaccent


@dataclass(frozen=True)
class Classification:
    score: int
    relevant: bool
    section: str | None
    territories: list[str]
    matched: list[str]
    #: The contrat de ville the item is about (see pressreview.contract), or None.
    contract: Contract | None = None
    #: Why the item is kept as ``filtered`` when the contract rules filtered it.
    filter_reason: str | None = None
    #: The folded words of the title and of the text (``text.words`` of each), read
    #: once here and reused by the store's preparation (search text, shingles).
    title_words: list[str] | None = field(default=None, compare=False, repr=False)
    text_words: list[str] | None = field(default=None, compare=False, repr=False)


class Classifier:
    """Built once per run from the config; ``classify`` is called per item."""

    def __init__(self, config: Config):
        self.include = TermMatcher(config.filters.include)
        self.exclude = TermMatcher(config.filters.exclude)
        self.min_score = config.filters.min_score
        self.has_include = bool(self.include.terms)
        self.sections = [(s.key, TermMatcher(s.match)) for s in config.ordered_sections()]
        # Every term of every matcher in one index: each item's words are read once.
        # A phrase found → the (matcher, term) pairs it stands for; matcher 0 is
        # include, 1 exclude, then the sections in order.
        matchers = [self.include, self.exclude, *(m for _, m in self.sections)]
        self._owners: dict[tuple[str, ...], list[tuple[int, int]]] = {}
        for m, matcher in enumerate(matchers):
            for t, key in enumerate(matcher.keys):
                self._owners.setdefault(key, []).append((m, t))
        self._terms = PhraseIndex(self._owners)
        self.settings = config.classification
        self.places = PlaceMatcher(config)
        self.contracts = ContractClassifier(config, self.places)
        #: The words a term or a place name starts with: one pass over an item's
        #: words finds where both matchers have something to try.
        self._first_words = self._terms.first_words | self.places.first_words

    def territories(
        self, title: str, text: str = "", source_territory: str | None = None
    ) -> list[str]:
        """Configured territories named in the item (a commune counts for its EPCI
        and its département), the source's own territory first."""
        found: list[str] = [source_territory] if source_territory else []
        for name in self.places.territories(self.places.find(title, text)):
            if name not in found:
                found.append(name)
        return found

    def classify(
        self,
        title: str,
        text: str,
        source_territory: str | None = None,
        *,
        published: datetime | date | None = None,
        outlet: str | None = None,
    ) -> Classification:
        # Accents removed once: the place matcher keeps the capitals, the rest folds.
        plain_title, plain_text = unaccent(title), unaccent(text)
        folded_title, folded_text = plain_title.casefold(), plain_text.casefold()
        # Split in words once, for places and terms: the words of the folded
        # "title\ntext" are the title's folded words, then the text's. One scan
        # finds every term, and where it first starts says whether the title holds it.
        title_words, text_words = Words.of(plain_title), Words.of(plain_text)
        n_title = len(title_words.folded)
        words = title_words.folded + text_words.folded
        first_words = self._first_words
        candidates = [k for k, w in enumerate(words) if w in first_words]
        found = self._terms.find(words, candidates)
        in_text = bisect.bisect_left(candidates, n_title)
        title_candidates = candidates[:in_text]
        text_candidates = [k - n_title for k in candidates[in_text:]]
        # Per matcher: the indexes of its terms found, in the text and in the title,
        # and the first word of the title where one of them starts.
        hits: dict[int, list[int]] = {}
        titled: dict[int, list[int]] = {}
        first: dict[int, int] = {}
        for phrase, where in found.items():
            in_title = where + len(phrase) <= n_title
            for m, t in self._owners[phrase]:
                hits.setdefault(m, []).append(t)
                if in_title:
                    titled.setdefault(m, []).append(t)
                    first[m] = min(where, first.get(m, where))
        included = [self.include.terms_found[t] for t in sorted(hits.get(0, ()))]
        excluded = hits.get(1, ())
        # Title matches count double: a headline about the subject beats a passing mention.
        score = len(included) + len(titled.get(0, ())) - 2 * len(excluded)
        relevant = (not self.has_include or score >= self.min_score) and not excluded
        mentions = self.places.find_words(
            title_words, text_words, outlet, (title_candidates, text_candidates)
        )
        contract = self.contracts.classify(
            title,
            text,
            published,
            outlet=outlet,
            source_territory=source_territory,
            mentions=mentions,
            folded=(folded_title, folded_text),
        )
        current = is_current_hdf(contract)
        reserved = self.settings.contracts_section
        # The section whose terms weigh most (title matches double); on a tie, the
        # one the title names first ("Lutte contre les discriminations : ... Quartiers
        # 2030" is about discrimination), then the section placed first.
        section = None
        best: tuple[int, int] = (0, 0)
        # The sections with a term found, in their order (matcher 2 is the first).
        for m in sorted(hits):
            if m < 2:
                continue
            key = self.sections[m - 2][0]
            if key == reserved and not current:
                # The contracts section holds 2024-2030 Hauts-de-France contract news only.
                continue
            weight = len(hits[m]) + len(titled.get(m, ()))
            # Where the title names the section first, counted in words (the order is
            # the same as in characters); not named in the title: after its last word.
            rank = (weight, -first.get(m, n_title + 1))
            if section is None or rank > best:
                section, best = key, rank
        reason = None
        if current and reserved:
            section = reserved
        elif contract is not None and not current:
            generation, region = contract["generation"], contract["region"]
            if generation in ("2015-2023", "earlier") and self.settings.filter_old_generations:
                reason = f"contrat de ville of the {generation} generation"
            elif region == "other" and self.settings.other_regions == "filter":
                reason = "contrat de ville of another region"
            elif region in ("other", "national") and self.settings.national_section:
                section = self.settings.national_section
        territories: list[str] = [source_territory] if source_territory else []
        for name in self.places.territories(mentions):
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
            # Splitting then folding gives text.words (tests/test_matching_reference.py).
            title_words=title_words.folded,
            text_words=text_words.folded,
        )
