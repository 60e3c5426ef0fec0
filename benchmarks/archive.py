"""Archive build times: 500 issues × 40 items, full build then one more issue.

    python benchmarks/archive.py [--issues 500] [--items 40] [--repeat 3] [--no-search] [--keep DIR]

Each round uses a fresh SQLite store and output folder: a full build of
every issue, then an incremental build after publishing one more issue,
twice; the second one (which recycles the folder of the build before the
live one, as every weekly build does) is the incremental figure.
Prints each round, the medians and their ratio (target: incremental < 1/10
of full). Data are fixture snapshots following the published-issue contract.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

from fixtures_archive import insert_published, make_snapshot  # noqa: E402

from pressreview.archive import build_archive  # noqa: E402
from pressreview.config import Config, parse_config  # noqa: E402
from pressreview.store import Store  # noqa: E402

START = date(2017, 1, 2)


def snapshot(number: int, items: int) -> dict[str, object]:
    return make_snapshot(number, START + timedelta(weeks=number - 1), items_per_issue=items)


def one_round(work: Path, issues: int, items: int, search: bool) -> tuple[float, float]:
    work.mkdir(parents=True, exist_ok=True)
    config: Config = parse_config(
        {
            "sections": [
                {"key": "signatures", "title": "Signatures"},
                {"key": "renouvellement", "title": "Renouvellement urbain"},
                {"key": "vie-des-quartiers", "title": "Vie des quartiers"},
            ],
            "archive": {"base_url": "https://veille.example.org/", "out_dir": "site"},
        },
        base_dir=work,
        environ={},
    )
    store = Store(f"sqlite:///{work / 'bench.db'}")
    try:
        insert_published(store, [snapshot(n, items) for n in range(1, issues + 1)])
        started = time.perf_counter()
        full = build_archive(config, store, search_index=search)
        full_s = time.perf_counter() - started
        print(
            f"  full: {full.files} files, {full.search_note or 'no search'}: {full_s:.2f} s "
            f"{full.timings}"
        )
        times = []
        for extra in (1, 2):
            # The first build after the full one makes a new folder; from the second
            # on, the build before the live one is recycled (the weekly steady state).
            insert_published(store, [snapshot(issues + extra, items)])
            started = time.perf_counter()
            incremental = build_archive(config, store, search_index=search)
            times.append(time.perf_counter() - started)
            print(
                f"  +{extra} issue: {incremental.written} written, {incremental.reused} reused "
                f"({incremental.kept} already in place), {incremental.volumes_indexed} search "
                f"volume(s) indexed: {times[-1]:.2f} s {incremental.timings}"
            )
        incremental_s = times[-1]
    finally:
        store.close()
    return full_s, incremental_s


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--issues", type=int, default=500)
    parser.add_argument("--items", type=int, default=40)
    parser.add_argument("--repeat", type=int, default=3, help="rounds (medians are reported)")
    parser.add_argument("--no-search", action="store_true", help="skip the Pagefind index")
    parser.add_argument("--keep", type=Path, help="work in this folder and keep it")
    args = parser.parse_args()

    fulls: list[float] = []
    incrementals: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        base = args.keep or Path(tmp)
        for round_number in range(1, args.repeat + 1):
            print(f"round {round_number}: {args.issues} issues x {args.items} items")
            full_s, incremental_s = one_round(
                base / f"round-{round_number}", args.issues, args.items, not args.no_search
            )
            fulls.append(full_s)
            incrementals.append(incremental_s)
    full = statistics.median(fulls)
    incremental = statistics.median(incrementals)
    ratio = incremental / full
    print(f"full build (median): {full:.2f} s")
    print(f"incremental build after one more issue (median): {incremental:.2f} s")
    verdict = "OK" if ratio < 0.1 else "ABOVE TARGET"
    print(f"ratio incremental/full: {ratio:.3f} (1/{1 / ratio:.0f}); target < 0.1: {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
