"""Relevance, sections, territories and contrat de ville of an item, from the configuration."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from pressreview.config import Config
from pressreview.contract import Contract, ContractClassifier, is_current_hdf
from pressreview.places import PlaceMatcher
from pressreview.text import TermMatcher, folded_words, unaccent


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


class Classifier:
    """Built once per run from the config; ``classify`` is called per item."""

    def __init__(self, config: Config):
        self.include = TermMatcher(config.filters.include)
        self.exclude = TermMatcher(config.filters.exclude)
        self.min_score = config.filters.min_score
        self.has_include = bool(self.include.terms)
        self.sections = [(s.key, TermMatcher(s.match)) for s in config.ordered_sections()]
        self.settings = config.classification
        self.places = PlaceMatcher(config)
        self.contracts = ContractClassifier(config, self.places)

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
        folded = f"{plain_title}\n{plain_text}".casefold()
        present = folded_words(folded)
        included = self.include.matches(folded, folded=True, present=present)
        excluded = self.exclude.matches(folded, folded=True, present=present)
        # Title matches count double: a headline about the subject beats a passing mention.
        folded_title = plain_title.casefold()
        in_title = self.include.matches(folded_title, folded=True) if included else []
        score = len(included) + len(in_title) - 2 * len(excluded)
        relevant = (not self.has_include or score >= self.min_score) and not excluded
        # The section whose terms weigh most (title matches double); on a tie, the
        # one the title names first ("Lutte contre les discriminations : ... Quartiers
        # 2030" is about discrimination), then the section placed first.
        mentions = self.places.find(plain_title, plain_text, outlet, unaccented=True)
        contract = self.contracts.classify(
            title,
            text,
            published,
            outlet=outlet,
            source_territory=source_territory,
            mentions=mentions,
            folded=(folded_title, plain_text.casefold()),
        )
        current = is_current_hdf(contract)
        reserved = self.settings.contracts_section
        section = None
        best: tuple[int, int] = (0, 0)
        for key, matcher in self.sections:
            if key == reserved and not current:
                # The contracts section holds 2024-2030 Hauts-de-France contract news only.
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
        )
