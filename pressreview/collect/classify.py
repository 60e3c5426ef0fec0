"""Relevance, sections and territories of an item, from the configuration's rules."""

from __future__ import annotations

import re
from dataclasses import dataclass

from pressreview.config import Config
from pressreview.text import TermMatcher, fold, folded_words, words


@dataclass(frozen=True)
class Classification:
    score: int
    relevant: bool
    section: str | None
    territories: list[str]
    matched: list[str]


class Classifier:
    """Built once per run from the config; ``classify`` is called per item."""

    def __init__(self, config: Config):
        self.include = TermMatcher(config.filters.include)
        self.exclude = TermMatcher(config.filters.exclude)
        self.min_score = config.filters.min_score
        self.has_include = bool(self.include.terms)
        self.sections = [(s.key, TermMatcher(s.match)) for s in config.ordered_sections()]
        # One alternation over every territory name and alias: one regex search per item.
        self._territory_of: dict[str, str] = {}
        alternatives: list[str] = []
        for territory in config.territories:
            for label in (territory.name, *territory.aliases):
                tokens = words(label)
                if not tokens:
                    continue
                key = " ".join(tokens)
                self._territory_of.setdefault(key, territory.name)
                alternatives.append(r"\W+".join(re.escape(t) for t in tokens))
        alternatives.sort(key=len, reverse=True)
        self._territory_re = (
            re.compile(r"\b(?:" + "|".join(alternatives) + r")\b") if alternatives else None
        )

    def territories(self, folded: str, source_territory: str | None = None) -> list[str]:
        found: list[str] = [source_territory] if source_territory else []
        if self._territory_re is not None:
            for match in self._territory_re.finditer(folded):
                name = self._territory_of.get(" ".join(words(match.group(0))))
                if name and name not in found:
                    found.append(name)
        return found

    def classify(
        self, title: str, text: str, source_territory: str | None = None
    ) -> Classification:
        folded = fold(f"{title}\n{text}")
        present = folded_words(folded)
        included = self.include.matches(folded, folded=True, present=present)
        excluded = self.exclude.matches(folded, folded=True, present=present)
        # Title matches count double: a headline about the subject beats a passing mention.
        in_title = self.include.matches(fold(title), folded=True) if included else []
        score = len(included) + len(in_title) - 2 * len(excluded)
        relevant = (not self.has_include or score >= self.min_score) and not excluded
        # The section whose terms weigh most (title matches double); on a tie, the
        # one the title names first ("Lutte contre les discriminations : ... Quartiers
        # 2030" is about discrimination), then the section placed first.
        section = None
        best: tuple[int, int] = (0, 0)
        folded_title: str | None = None
        for key, matcher in self.sections:
            found = matcher.matches(folded, folded=True, present=present)
            if not found:
                continue
            if folded_title is None:
                folded_title = fold(title)
            weight = len(found) + len(matcher.matches(folded_title, folded=True))
            where = matcher.first_match(folded_title)
            rank = (weight, -(where if where is not None else len(folded_title) + 1))
            if section is None or rank > best:
                section, best = key, rank
        return Classification(
            score=score,
            relevant=relevant,
            section=section,
            territories=self.territories(folded, source_territory),
            matched=included,
        )
