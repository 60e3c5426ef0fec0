"""Run pressreview's scheduler until stopped: ``python schedule.py [--config feeds.yaml]``.

Collection runs every ``schedule.collect_every_hours``; the weekly digest on
``schedule.digest_day_of_week`` at ``digest_hour:digest_minute`` in the
configured time zone. The jobs and their next run times are kept in the
project's database. SIGTERM or Ctrl-C stops after the running job.
This file only wires the core's jobs (pressreview.scheduling) to triggers.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading

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
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if not args.verbose:
        for noisy in ("apscheduler", "alembic"):
            logging.getLogger(noisy).setLevel(logging.WARNING)

    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())

    try:
        config = load_config(args.config)
        store = open_store(config)
        scheduler = scheduling.start_scheduler(config, store)
    except PressreviewError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return exc.exit_code
    try:
        for job in scheduler.get_jobs():
            when = job.next_run_time
            at = f"{when.astimezone(config.tz):%Y-%m-%d %H:%M %Z}" if when else "paused"
            trigger = scheduling.describe_trigger(job.trigger)
            print(f"{job.name} ({trigger}): next run {at}", flush=True)
        print("scheduler running; stop with Ctrl-C or SIGTERM", flush=True)
        scheduling.wait_for_stop(
            scheduler,
            stop,
            on_stop=lambda: print("stopping: waiting for the running job to finish...", flush=True),
        )
    finally:
        store.close()
    print("scheduler stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
