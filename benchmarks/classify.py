"""Contrat de ville classification measured on the labelled set.

    python benchmarks/classify.py [--config feeds.yaml] [--repeat 20] [--errors]

Classifies every item of tests/data/contract_items.yaml (titles, excerpts,
dates and outlets labelled by hand) with the shipped configuration and prints:

* precision and recall of "2024-2030 Hauts-de-France contract news" (the
  items the contracts section receives);
* carrier accuracy: among that news, the items that name a carrier whose
  carriers are exactly the labelled ones;
* event accuracy (event, null included) and event-date accuracy (where a
  date is labelled);
* throughput: items per second through the whole per-item classification of
  collect (relevance, section, territories, contract), after the one-off
  build of the matchers, which is timed apart.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

from fixtures_contract import load_items, score  # noqa: E402

from pressreview.collect.classify import Classifier  # noqa: E402
from pressreview.config import load_config  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--config", type=Path, default=HERE.parent / "feeds.yaml")
    parser.add_argument("--repeat", type=int, default=20, help="passes over the set for items/s")
    parser.add_argument("--errors", action="store_true", help="list the items classified wrong")
    args = parser.parse_args(argv)
    config = load_config(args.config)
    items = load_items()
    s = score(config, items)
    print(f"labelled items: {s.items} ({s.tp + s.fn} are 2024-2030 Hauts-de-France contract news)")
    print(f"precision: {s.precision:.3f}  ({s.tp} of {s.tp + s.fp} kept)")
    print(f"recall:    {s.recall:.3f}  ({s.tp} of {s.tp + s.fn})")
    print(f"carriers:  {s.carrier_accuracy:.3f}  ({s.carrier_ok} of {s.carrier_total})")
    print(f"events:    {s.event_accuracy:.3f}  ({s.event_ok} of {s.event_total})")
    print(f"dates:     {s.date_accuracy:.3f}  ({s.date_ok} of {s.date_total})")
    start = time.perf_counter()
    classifier = Classifier(config)
    built = time.perf_counter() - start
    start = time.perf_counter()
    for _ in range(args.repeat):
        for item in items:
            classifier.classify(
                item["title"], item["excerpt"], published=item["date"], outlet=item["outlet"]
            )
    elapsed = time.perf_counter() - start
    print(
        f"speed:     {args.repeat * len(items) / elapsed:,.0f} items/s "
        f"(matchers built once per run in {built * 1000:.0f} ms)"
    )
    if args.errors:
        print("\n".join(s.errors))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
