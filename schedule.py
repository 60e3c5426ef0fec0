"""Run pressreview's scheduler until stopped: ``python schedule.py [--config feeds.yaml]``.

The same as ``pressreview scheduler`` (which an installed pressreview runs from
any folder): collection runs every ``schedule.collect_every_hours``; the weekly
digest on ``schedule.digest_day_of_week`` at ``digest_hour:digest_minute`` in
the configured time zone. The jobs and their next run times are kept in the
project's database. SIGTERM or Ctrl-C stops after the running job.
This file only calls the core's runner (pressreview.scheduling.run_forever).
"""

from __future__ import annotations

import argparse
import sys

from pressreview import scheduling
from pressreview.config import load_config
from pressreview.errors import PressreviewError
from pressreview.store import open_store


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="schedule.py", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--config", help="configuration file [default: ./feeds.yaml; env PRESSREVIEW_CONFIG]"
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log scheduler details")
    args = parser.parse_args(argv)
    scheduling.configure_logging(args.verbose)
    stop = scheduling.stop_on_signals()
    try:
        config = load_config(args.config)
        store = open_store(config)
    except PressreviewError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return exc.exit_code
    try:
        scheduling.run_forever(config, store, stop, lambda line: print(line, flush=True))
    except PressreviewError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return exc.exit_code
    finally:
        store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
