"""The labelled contrat de ville items and how the classifier is scored on them.

Shared by tests/test_contract_items.py and benchmarks/classify.py.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from pressreview.config import Config, load_config
from pressreview.contract import ContractClassifier, is_current_hdf

ROOT = Path(__file__).resolve().parent.parent
LABELLED = ROOT / "tests" / "data" / "contract_items.yaml"


def load_items(path: Path = LABELLED) -> list[dict[str, Any]]:
    data = yaml.safe_load(path.read_text("utf-8"))
    assert isinstance(data, list)
    return data


def expected_target(expect: dict[str, Any]) -> bool:
    return (
        bool(expect["about"]) and expect["generation"] == "2024-2030" and expect["region"] == "hdf"
    )


@dataclass
class Scores:
    items: int = 0
    tp: int = 0
    fp: int = 0
    fn: int = 0
    carrier_total: int = 0
    carrier_ok: int = 0
    event_total: int = 0
    event_ok: int = 0
    date_total: int = 0
    date_ok: int = 0
    seconds: float = 0.0
    errors: list[str] = field(default_factory=list)

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0

    @property
    def carrier_accuracy(self) -> float:
        return self.carrier_ok / self.carrier_total if self.carrier_total else 1.0

    @property
    def event_accuracy(self) -> float:
        return self.event_ok / self.event_total if self.event_total else 1.0

    @property
    def date_accuracy(self) -> float:
        return self.date_ok / self.date_total if self.date_total else 1.0

    @property
    def per_second(self) -> float:
        return self.items / self.seconds if self.seconds else 0.0


def score(config: Config | None = None, items: list[dict[str, Any]] | None = None) -> Scores:
    """Classify every labelled item and compare.

    Carrier accuracy: on the items that are 2024-2030 Hauts-de-France contract
    news and name at least one carrier, the classifier's carriers must be
    exactly the labelled set. Event accuracy: on the same news, the event
    must be the labelled one (null included); the date, where one is labelled.
    """
    config = config or load_config(ROOT / "feeds.yaml")
    items = items if items is not None else load_items()
    classifier = ContractClassifier(config)
    s = Scores(items=len(items))
    results = []
    start = time.perf_counter()
    for item in items:
        results.append(
            classifier.classify(item["title"], item["excerpt"], item["date"], outlet=item["outlet"])
        )
    s.seconds = time.perf_counter() - start
    for item, got in zip(items, results, strict=True):
        expect = item["expect"]
        want, have = expected_target(expect), is_current_hdf(got)
        if want and have:
            s.tp += 1
        elif have:
            s.fp += 1
            s.errors.append(f"#{item['id']} false positive: {got}")
        elif want:
            s.fn += 1
            s.errors.append(f"#{item['id']} missed: {got}")
        if not (want and have):
            continue
        assert got is not None
        if expect["carriers"]:
            s.carrier_total += 1
            sirens = sorted(c["siren"] for c in got["carriers"])  # type: ignore[attr-defined]
            if sirens == sorted(expect["carriers"]):
                s.carrier_ok += 1
            else:
                s.errors.append(f"#{item['id']} carriers {sirens} != {sorted(expect['carriers'])}")
        s.event_total += 1
        if got["event"] == expect["event"]:
            s.event_ok += 1
        else:
            s.errors.append(f"#{item['id']} event {got['event']} != {expect['event']}")
        if expect["event_date"] is not None:
            s.date_total += 1
            if got["event_date"] == str(expect["event_date"]):
                s.date_ok += 1
            else:
                s.errors.append(
                    f"#{item['id']} event_date {got['event_date']} != {expect['event_date']}"
                )
    return s
