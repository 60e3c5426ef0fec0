"""Per-item CPU of normalize and classify, straightforward code against the package's.

    python benchmarks/normalize.py [--items 5000] [--rounds 5]

Generates items as benchmarks/collect.py does (French titles and HTML
summaries about urban policy in Hauts-de-France, links with tracking
parameters) and times, in CPU time per item:

* normalize: the text work collect does on every entry (title cleaned,
  summary sanitized, excerpt, canonical URL);
* classify: the whole per-item classification of collect (relevance,
  section, territories, contrat de ville) with the project's feeds.yaml;

each with the straightforward implementation (tests/fixtures_reference.py: a
regex per term, ``nh3.clean`` with its options on every call, the standard
library's reading of every URL) and with the package's, whose results the
benchmark checks are identical. Rounds alternate the two; the best round of
each is kept (the least disturbed by other work on the machine).
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))
sys.path.insert(0, str(HERE))

import fixtures_reference as ref  # noqa: E402
from collect import _summary, _title  # noqa: E402

from pressreview import text  # noqa: E402
from pressreview.collect.classify import Classifier  # noqa: E402
from pressreview.config import load_config  # noqa: E402

Item = tuple[str, str, str]


def generate(n: int, seed: int = 2026) -> list[Item]:
    rng = random.Random(seed)
    return [
        (
            _title(rng),
            _summary(rng),
            f"https://journal-{i % 100}.example.fr/articles/{i}-{rng.getrandbits(32):08x}"
            f"?utm_source=rss&xtor=RSS-{i % 100}",
        )
        for i in range(n)
    ]


def normalize_reference(items: list[Item]) -> list[tuple[str, str, str, str]]:
    return [
        (ref.clean_text(t), ref.sanitize_html(s), ref.excerpt(s, 300), ref.canonical_url(u))
        for t, s, u in items
    ]


def normalize_package(items: list[Item]) -> list[tuple[str, str, str, str]]:
    return [
        (text.clean_text(t), text.sanitize_html(s), text.excerpt(s, 300), text.canonical_url(u))
        for t, s, u in items
    ]


def cpu_per_item(run: Callable[[], object], n: int) -> float:
    start = time.process_time()
    run()
    return (time.process_time() - start) / n * 1e6


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--items", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--config", type=Path, default=HERE.parent / "feeds.yaml")
    args = parser.parse_args(argv)
    items = generate(args.items)
    classifier = Classifier(load_config(args.config))
    reference = ref.ReferenceClassifier(classifier)
    outlet = "Journal 1 des Hauts-de-France"
    normalized = normalize_package(items)
    if normalized != normalize_reference(items):
        print("normalize: the package and the reference differ", file=sys.stderr)
        return 1
    pairs = [(t, e) for (t, _, e, _) in normalized]

    def classify_reference() -> list[object]:
        return [reference.classify(t, e, None, outlet=outlet) for t, e in pairs]

    def classify_package() -> list[object]:
        return [classifier.classify(t, e, None, outlet=outlet) for t, e in pairs]

    if classify_package() != classify_reference():
        print("classify: the package and the reference differ", file=sys.stderr)
        return 1
    runs: dict[str, Callable[[], object]] = {
        "normalize reference": lambda: normalize_reference(items),
        "normalize package": lambda: normalize_package(items),
        "classify reference": classify_reference,
        "classify package": classify_package,
    }
    best = {name: float("inf") for name in runs}
    for _ in range(args.rounds):
        for name, run in runs.items():
            best[name] = min(best[name], cpu_per_item(run, len(items)))
    print(f"{len(items)} items, best of {args.rounds} rounds, CPU µs per item")
    best["both reference"] = best["normalize reference"] + best["classify reference"]
    best["both package"] = best["normalize package"] + best["classify package"]
    for stage in ("normalize", "classify", "both"):
        before, after = best[f"{stage} reference"], best[f"{stage} package"]
        print(
            f"{stage:10s} reference {before:6.1f}  package {after:6.1f}  "
            f"ratio {before / after:4.2f}x"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
