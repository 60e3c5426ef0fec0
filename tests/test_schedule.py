"""The scheduler: triggers across DST, the persisted job store, misfires, job runs, schedule.py."""

from __future__ import annotations

import itertools
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_EXECUTED, EVENT_JOB_MISSED

from pressreview import scheduling
from pressreview.config import Config
from pressreview.deliver.campaign import deliveries_for
from pressreview.errors import ConfigError
from pressreview.store import Store
from pressreview.store import jobs as q
from pressreview.subscribers import add_subscriber
from tests.fixtures_deliver import SECRET, Sink, publish_fixed_issue

PARIS = ZoneInfo("Europe/Paris")
PROJECT_ROOT = Path(__file__).resolve().parent.parent
JOB_EVENTS = EVENT_JOB_EXECUTED | EVENT_JOB_ERROR | EVENT_JOB_MISSED


def _runs(store: Store, job: str) -> list[q.JobRunRow]:
    with store.connect() as conn:
        return q.recent_runs(conn, job, limit=100)


def _wait_for(predicate: Callable[[], Any], what: str, timeout: float = 60.0) -> Any:
    """Poll until predicate() is truthy (bounded; not a speed assertion)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


# -- triggers --------------------------------------------------------------------


def test_triggers_come_from_the_schedule_section(make_config: Callable[..., Config]) -> None:
    config = make_config(
        schedule={"collect_every_hours": 2.5, "digest_day_of_week": "thu", "digest_hour": 7,
                  "digest_minute": 30},
    )  # fmt: skip
    triggers = scheduling.build_triggers(config)
    assert triggers["collect"].interval_length == 2.5 * 3600
    start = datetime(2026, 11, 23, 12, 0, tzinfo=PARIS)  # a Monday
    fire = triggers["digest"].get_next_fire_time(None, start)
    assert fire == datetime(2026, 11, 26, 7, 30, tzinfo=PARIS)
    assert scheduling.describe_trigger(triggers["digest"]) == "cron thu 07:30 Europe/Paris"
    assert scheduling.describe_trigger(triggers["collect"]) == "every 2.5 h"


@pytest.mark.parametrize(
    ("previous_utc", "expected_utc"),
    [
        # Autumn: CEST (UTC+2) on 2026-10-19, CET (UTC+1) after 2026-10-25.
        (datetime(2026, 10, 19, 6, 0, tzinfo=UTC), datetime(2026, 10, 26, 7, 0, tzinfo=UTC)),
        # Spring: CET on 2027-03-22, CEST after 2027-03-28.
        (datetime(2027, 3, 22, 7, 0, tzinfo=UTC), datetime(2027, 3, 29, 6, 0, tzinfo=UTC)),
    ],
)
def test_digest_fires_at_local_eight_across_dst(
    make_config: Callable[..., Config], previous_utc: datetime, expected_utc: datetime
) -> None:
    config = make_config()  # Monday 08:00 Europe/Paris by default
    cron = scheduling.build_triggers(config)["digest"]
    previous = previous_utc.astimezone(PARIS)
    assert (previous.hour, previous.minute) == (8, 0)
    fire = cron.get_next_fire_time(previous, previous + timedelta(minutes=1))
    assert fire == expected_utc
    local = fire.astimezone(PARIS)
    assert (local.weekday(), local.hour, local.minute) == (0, 8, 0)
    assert local.utcoffset() != previous.utcoffset()
    # From a cold start just before the change too.
    cold = cron.get_next_fire_time(None, previous + timedelta(days=1))
    assert cold == expected_utc


def test_collect_interval_is_real_hours_across_dst(make_config: Callable[..., Config]) -> None:
    config = make_config(schedule={"collect_every_hours": 3})
    interval = scheduling.build_triggers(config)["collect"]
    before = datetime(2026, 10, 25, 0, 30, tzinfo=PARIS)  # CEST, the night clocks go back
    fire = interval.get_next_fire_time(before, before)
    assert fire.timestamp() - before.timestamp() == 3 * 3600
    assert fire.astimezone(PARIS).hour == 2  # 00:30 CEST + 3 h = 02:30 CET


@pytest.mark.parametrize(
    ("schedule", "key"),
    [
        ({"digest_day_of_week": "lundi"}, "schedule.digest_day_of_week"),
        ({"digest_hour": 24}, "schedule.digest_hour"),
        ({"collect_every_hours": 0}, "schedule.collect_every_hours"),
    ],
)
def test_bad_schedule_is_a_config_error(
    make_config: Callable[..., Config], schedule: dict[str, Any], key: str
) -> None:
    config = make_config(schedule=schedule)
    with pytest.raises(ConfigError, match=re.escape(key)):
        scheduling.build_triggers(config)


# -- the job store ------------------------------------------------------------------


def _open(config: Config) -> Store:
    from pressreview.store import open_store

    return open_store(config)


def test_job_store_survives_a_restart(make_config: Callable[..., Config], store_url: str) -> None:
    config = make_config(database_url=store_url)
    store = _open(config)
    first = scheduling.create_scheduler(config, store)
    first.start(paused=True)
    assert scheduling.sync_jobs(first, config) == {
        "collect": "added",
        "digest": "added",
        "confirmations": "added",
    }
    before = {j.id: j.next_run_time for j in first.get_jobs()}
    first.shutdown()
    store.close()

    store = _open(config)
    second = scheduling.create_scheduler(config, store)
    second.start(paused=True)
    try:
        assert {j.id: j.next_run_time for j in second.get_jobs()} == before
        assert scheduling.sync_jobs(second, config) == {
            "collect": "kept",
            "digest": "kept",
            "confirmations": "kept",
        }
        jobs = {j.id: j for j in second.get_jobs()}
        assert {k: j.next_run_time for k, j in jobs.items()} == before
        assert jobs["collect"].coalesce is True and jobs["collect"].max_instances == 1
        assert jobs["digest"].misfire_grace_time == 3600
        assert jobs["digest"].kwargs == {"config_path": str(config.path.resolve())}  # type: ignore[union-attr]
    finally:
        second.shutdown()
        store.close()


def test_changed_config_reschedules_the_job(
    make_config: Callable[..., Config], store_for: Callable[[Config], Store]
) -> None:
    config = make_config()
    store = store_for(config)
    first = scheduling.create_scheduler(config, store)
    first.start(paused=True)
    scheduling.sync_jobs(first, config)
    old_digest = first.get_job("digest").next_run_time
    first.shutdown()

    changed = make_config(schedule={"digest_day_of_week": "fri", "misfire_grace_minutes": 5})
    second = scheduling.create_scheduler(changed, store)
    second.start(paused=True)
    try:
        changes = scheduling.sync_jobs(second, changed)
        assert changes == {"collect": "kept", "digest": "rescheduled", "confirmations": "kept"}
        digest = second.get_job("digest")
        assert digest.next_run_time != old_digest
        assert digest.next_run_time.astimezone(PARIS).weekday() == 4
        assert digest.misfire_grace_time == 300
    finally:
        second.shutdown()


def _stop_after_past_run(config: Config, hours_ago: float) -> None:
    """A scheduler ran, then was down: the collect job's next run is `hours_ago` in the past."""
    store = _open(config)
    scheduler = scheduling.create_scheduler(config, store)
    scheduler.start(paused=True)
    scheduling.sync_jobs(scheduler, config)
    scheduler.shutdown()
    # Move the stored next run time back, as if the scheduler had been down since.
    from apscheduler.schedulers.background import BackgroundScheduler

    jobstore = q.job_store(store)
    jobstore.start(BackgroundScheduler(), "default")
    job = jobstore.lookup_job("collect")
    job.next_run_time = datetime.now(UTC) - timedelta(hours=hours_ago)
    jobstore.update_job(job)
    store.close()


def test_missed_runs_are_coalesced_into_one(
    make_config: Callable[..., Config], store_url: str
) -> None:
    # Collect every hour; the scheduler was down 3.5 hours (4 missed slots, the
    # last one 30 minutes ago, within the 60-minute grace time).
    config = make_config(database_url=store_url, schedule={"collect_every_hours": 1})
    _stop_after_past_run(config, hours_ago=3.5)
    events: list[Any] = []
    store = _open(config)
    scheduler = scheduling.start_scheduler(
        config, store, listener=events.append, listener_mask=JOB_EVENTS
    )
    try:
        _wait_for(lambda: events, "the missed collect run")
    finally:
        scheduler.shutdown(wait=True)
    assert [e.code for e in events] == [EVENT_JOB_EXECUTED]
    runs = _runs(store, "collect")
    assert len(runs) == 1 and runs[0].outcome == "ok"
    reopened = scheduling.job_status(config, store)
    collect = next(j for j in reopened if j.id == "collect")
    assert collect.next_run is not None and collect.next_run > datetime.now(UTC)
    assert collect.last_run is not None and collect.last_run.id == runs[0].id
    store.close()


def test_a_run_missed_beyond_the_grace_time_is_skipped(
    make_config: Callable[..., Config],
) -> None:
    config = make_config(schedule={"collect_every_hours": 1, "misfire_grace_minutes": 10})
    _stop_after_past_run(config, hours_ago=3.5)  # last missed slot 30 min ago > 10 min
    events: list[Any] = []
    store = _open(config)
    scheduler = scheduling.start_scheduler(
        config, store, listener=events.append, listener_mask=JOB_EVENTS
    )
    try:
        _wait_for(lambda: events, "the misfire event")
    finally:
        scheduler.shutdown(wait=True)
    assert [e.code for e in events] == [EVENT_JOB_MISSED]
    assert _runs(store, "collect") == []
    store.close()


def test_a_failing_job_is_logged_and_the_scheduler_goes_on(
    make_config: Callable[..., Config],
) -> None:
    # Review policy without editors: the digest fails with a configuration error.
    config = make_config(digest={"policy": "review", "editors": []})
    events: list[Any] = []
    store = _open(config)
    scheduler = scheduling.start_scheduler(
        config, store, listener=events.append, listener_mask=JOB_EVENTS
    )
    try:
        scheduler.modify_job("digest", next_run_time=datetime.now(UTC))
        _wait_for(lambda: _runs(store, "digest") and _runs(store, "digest")[0].finished_at,
                  "the digest run")  # fmt: skip
        scheduler.modify_job("collect", next_run_time=datetime.now(UTC))
        _wait_for(lambda: _runs(store, "collect") and _runs(store, "collect")[0].finished_at,
                  "the collect run")  # fmt: skip
        assert scheduler.running
    finally:
        scheduler.shutdown(wait=True)
    (digest,) = _runs(store, "digest")
    assert digest.outcome == "error"
    assert digest.error is not None and "digest.editors" in digest.error
    (collect,) = _runs(store, "collect")
    assert collect.outcome == "ok"
    store.close()


# -- the jobs called directly -----------------------------------------------------------


def test_run_collect_logs_what_it_collected(
    make_config: Callable[..., Config], store_for: Callable[[Config], Store],
    demo_feed_url: Callable[[str], str],
) -> None:  # fmt: skip
    config = make_config(
        feeds=[
            {"name": "Presse", "url": demo_feed_url("presse-hdf.xml")},
            {"name": "Morte", "url": "http://127.0.0.1:9/absent.xml"},
        ]
    )
    store = store_for(config)
    result = scheduling.run_collect(config, store)
    assert result.outcome == "partial"
    assert result.summary["new"] > 0
    assert result.summary["failed_sources"] == ["Morte"]
    assert "1 failed: Morte" in result.message
    (run,) = _runs(store, "collect")
    assert run.id == result.run_id and run.outcome == "partial" and run.finished_at
    assert run.summary["new"] == result.summary["new"]
    assert run.summary["message"] == result.message

    again = scheduling.run_collect(config, store)
    assert again.summary["new"] == 0
    assert len(_runs(store, "collect")) == 2


def test_a_job_error_is_recorded_then_raised(
    make_config: Callable[..., Config], store_for: Callable[[Config], Store]
) -> None:
    config = make_config(digest={"policy": "review"})
    store = store_for(config)
    with pytest.raises(ConfigError, match=r"digest\.editors"):
        scheduling.run_digest(config, store)
    (run,) = _runs(store, "digest")
    assert run.outcome == "error" and run.finished_at is not None
    assert "digest.editors" in (run.error or "")


def test_week_key_uses_the_local_date() -> None:
    # Sunday 23:30 UTC is already Monday in Paris: the next ISO week.
    assert scheduling.week_key(datetime(2026, 11, 22, 23, 30, tzinfo=UTC), PARIS) == "2026-W48"
    assert scheduling.week_key(datetime(2026, 11, 22, 22, 30, tzinfo=UTC), PARIS) == "2026-W47"
    assert scheduling.week_key(datetime(2027, 1, 3, 12, 0, tzinfo=UTC), PARIS) == "2026-W53"


# -- the command line -----------------------------------------------------------------


def test_schedule_status_and_run(
    make_config: Callable[..., Config], cli: Callable[..., Any]
) -> None:
    config = make_config()
    result = cli(config, "schedule", "status")
    assert result.exit_code == 0, result.output
    assert "collect" in result.output and "digest" in result.output
    assert "cron mon 08:00 Europe/Paris" in result.output
    assert "not started" in result.output

    result = cli(config, "schedule", "run", "collect")
    assert result.exit_code == 0, result.output
    assert result.output.startswith("collect: ok: 0 new")

    result = cli(config, "schedule", "status", "--json")
    assert result.exit_code == 0, result.output
    import json

    jobs = {j["job"]: j for j in json.loads(result.output)}
    assert jobs["collect"]["last_run"]["outcome"] == "ok"
    assert jobs["digest"]["last_run"] is None
    assert jobs["digest"]["next_run"].endswith(("+01:00", "+02:00"))

    result = cli(config, "schedule", "run", "nothing")
    assert result.exit_code == 2


def test_schedule_run_failure_is_one_line(
    make_config: Callable[..., Config], cli: Callable[..., Any]
) -> None:
    config = make_config(digest={"policy": "review"})
    result = cli(config, "schedule", "run", "digest")
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    assert "digest.editors" in result.output
    status = cli(config, "schedule", "status")
    assert "error" in status.output


# -- schedule.py as a process --------------------------------------------------------------


@pytest.mark.parametrize("runner", ["schedule.py", "pressreview scheduler"])
def test_schedule_py_stops_cleanly_on_sigterm(
    make_config: Callable[..., Config], runner: str, tmp_path: Path
) -> None:
    """`python schedule.py` of the checkout and `pressreview scheduler`, run from another
    folder, are the same runner."""
    config = make_config()
    assert config.path is not None
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("PRESSREVIEW_DATABASE_URL", None)
    if runner == "schedule.py":
        command = [sys.executable, str(PROJECT_ROOT / "schedule.py"), "--config", str(config.path)]
    else:
        command = [sys.executable, "-m", "pressreview", "--config", str(config.path), "scheduler"]
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    proc = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
        cwd=elsewhere,
    )  # fmt: skip
    lines: list[str] = []
    started = threading.Event()

    def read_stdout() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            if "scheduler running" in line:
                started.set()
        started.set()

    reader = threading.Thread(target=read_stdout, daemon=True)
    reader.start()
    try:
        started.wait(timeout=60)
        assert any("scheduler running" in line for line in lines), lines
        assert any(line.startswith("digest: weekly digest") for line in lines), lines
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
        reader.join(timeout=60)
        assert proc.stderr is not None
        err = proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    output = "".join(lines)
    assert "stopping: waiting for the running job to finish" in output
    assert "scheduler stopped" in output
    assert "Traceback" not in err


def test_schedule_py_reports_a_bad_config(tmp_path: Path) -> None:
    bad = tmp_path / "feeds.yaml"
    bad.write_text("schedule:\n  digest_day_of_week: lundi\n", "utf-8")
    proc = subprocess.run(
        [sys.executable, str(PROJECT_ROOT / "schedule.py"), "--config", str(bad)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 2
    assert "schedule.digest_day_of_week" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_wait_for_stop_shuts_down(make_config: Callable[..., Config]) -> None:
    config = make_config()
    store = _open(config)
    scheduler = scheduling.start_scheduler(config, store)
    stop = threading.Event()
    thread = threading.Thread(target=scheduling.wait_for_stop, args=(scheduler, stop))
    thread.start()
    stop.set()
    thread.join(timeout=60)
    assert not thread.is_alive()
    assert not scheduler.running
    store.close()


def test_sigterm_lets_the_running_job_finish(
    make_config: Callable[..., Config], httpserver: Any
) -> None:
    from werkzeug import Request, Response

    requested, release = threading.Event(), threading.Event()
    body = (PROJECT_ROOT / "pressreview" / "demo" / "feeds" / "presse-hdf.xml").read_bytes()

    def slow_feed(request: Request) -> Response:
        requested.set()
        release.wait(timeout=60)
        return Response(body, content_type="application/rss+xml")

    httpserver.expect_request("/slow.xml").respond_with_handler(slow_feed)
    config = make_config(feeds=[{"name": "Lente", "url": httpserver.url_for("/slow.xml")}])
    assert config.path is not None
    _stop_after_past_run(config, hours_ago=0.1)  # the collect job is due at start
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("PRESSREVIEW_DATABASE_URL", None)
    proc = subprocess.Popen(
        [sys.executable, str(PROJECT_ROOT / "schedule.py"), "--config", str(config.path)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
    )  # fmt: skip
    lines: list[str] = []
    stopping = threading.Event()

    def read_output() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            if line.startswith("stopping:"):
                stopping.set()

    reader = threading.Thread(target=read_output, daemon=True)
    reader.start()
    try:
        assert requested.wait(timeout=60), f"the collect job did not start: {lines}"
        proc.send_signal(signal.SIGTERM)
        assert stopping.wait(timeout=60), lines
        release.set()  # the job can finish only now, after the stop was asked for
        proc.wait(timeout=60)
        reader.join(timeout=60)
    finally:
        release.set()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    output = "".join(lines)
    assert proc.returncode == 0, output
    assert "Traceback" not in output
    collect_line = output.index("collect: ok: ")
    assert collect_line < output.index("scheduler stopped")
    store = _open(config)
    (run,) = _runs(store, "collect")
    assert run.outcome == "ok" and run.summary["new"] > 0
    store.close()


def test_a_killed_run_shows_as_interrupted_then_is_marked_so(
    make_config: Callable[..., Config], httpserver: Any, cli: Callable[..., Any]
) -> None:
    from werkzeug import Request, Response

    requested, release = threading.Event(), threading.Event()

    def hanging_feed(request: Request) -> Response:
        requested.set()
        release.wait(timeout=60)
        return Response(b"", status=503)

    httpserver.expect_request("/hang.xml").respond_with_handler(hanging_feed)
    config = make_config(feeds=[{"name": "Lente", "url": httpserver.url_for("/hang.xml")}])
    assert config.path is not None
    env = {**os.environ}
    env.pop("PRESSREVIEW_DATABASE_URL", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "pressreview", "--config", str(config.path),
         "schedule", "run", "collect"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
    )  # fmt: skip
    try:
        assert requested.wait(timeout=60), "the collect run did not start"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
    finally:
        release.set()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    store = _open(config)
    (killed,) = _runs(store, "collect")
    assert killed.outcome == "running"  # nobody could record the end

    status = {j.id: j for j in scheduling.job_status(config, store)}
    last = status["collect"].last_run
    assert last is not None and last.outcome == "interrupted" and "killed" in (last.error or "")
    assert "interrupted" in cli(config, "schedule", "status").output

    scheduling.run_collect(config, store)  # the next run marks it for good
    runs = _runs(store, "collect")
    assert [r.outcome for r in runs] == ["partial", "interrupted"]
    assert runs[1].id == killed.id
    store.close()


def test_a_run_of_a_live_process_stays_running(
    make_config: Callable[..., Config], store_for: Callable[[Config], Store]
) -> None:
    config = make_config(digest={"policy": "review"})
    store = store_for(config)
    with store.begin() as conn:
        q.start_run(conn, "digest", owner="another-host.example:1")
        q.start_run(conn, "digest", owner=scheduling.process_owner())
    last = {j.id: j for j in scheduling.job_status(config, store)}["digest"].last_run
    assert last is not None and last.outcome == "running"
    with pytest.raises(ConfigError):  # no editors; the run is recorded all the same
        scheduling.run_digest(config, store)
    assert [r.outcome for r in _runs(store, "digest")] == ["error", "running", "running"]


def test_the_job_store_table_lives_beside_the_migrations(
    make_config: Callable[..., Config], store_url: str, cli: Callable[..., Any]
) -> None:
    """apscheduler_jobs is APScheduler's, outside the migrations: `db upgrade` keeps it,
    and the model-vs-database comparison sees it as the only extra table."""
    from alembic import command
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from pressreview.store.schema import metadata

    config = make_config(database_url=store_url)
    store = _open(config)
    scheduler = scheduling.start_scheduler(config, store)
    scheduler.shutdown()
    with store.engine.begin() as conn:  # back to an empty schema, the job store still there
        command.downgrade(store._alembic_config(conn), "base")
    store.close()

    upgraded = cli(config, "db", "upgrade")
    assert upgraded.exit_code == 0 and "upgraded from empty" in upgraded.output, upgraded.output
    assert "up to date" in cli(config, "db", "status").output
    store = _open(config)
    assert {j.id for j in scheduling.job_status(config, store) if j.scheduled} == {
        "collect",
        "digest",
        "confirmations",
    }
    with store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    outside = [d for d in diff if not any(n in str(d) for n in ("items_fts", "ix_items_search"))]
    assert ("remove_table", q.JOBSTORE_TABLE) in [
        (d[0], getattr(d[1], "name", "")) for d in outside
    ]
    assert all(q.JOBSTORE_TABLE in str(d) for d in outside), outside
    store.close()


def _fires(trigger: Any, start: datetime, end: datetime) -> list[datetime]:
    """The fire times the scheduler's loop gets from a trigger, its clock moved by hand:
    the first from a cold start at ``start``, then each from the previous run."""
    fires: list[datetime] = []
    fire = trigger.get_next_fire_time(None, start)
    while fire is not None and fire < end:
        fires.append(fire.astimezone(UTC))
        clock = fire.astimezone(UTC) + timedelta(seconds=5)  # the run took 5 s
        fire = trigger.get_next_fire_time(fire, clock)
    return fires


@pytest.mark.parametrize(
    ("day", "expected_utc"),
    [
        # 29 March 2026, 02:00 CET -> 03:00 CEST: 02:30 does not exist, runs once at 03:30 CEST
        (datetime(2026, 3, 29, tzinfo=PARIS), datetime(2026, 3, 29, 1, 30, tzinfo=UTC)),
        # 25 October 2026, 03:00 CEST -> 02:00 CET: 02:30 happens twice, runs at the first
        (datetime(2026, 10, 25, tzinfo=PARIS), datetime(2026, 10, 25, 0, 30, tzinfo=UTC)),
    ],
    ids=["spring-gap", "autumn-overlap"],
)
def test_a_cron_in_the_dst_gap_or_overlap_runs_once(
    make_config: Callable[..., Config], day: datetime, expected_utc: datetime
) -> None:
    config = make_config(
        schedule={"digest_day_of_week": "sun", "digest_hour": 2, "digest_minute": 30}
    )
    cron = scheduling.build_triggers(config)["digest"]
    start, end = day - timedelta(days=2), day + timedelta(days=2)
    assert _fires(cron, start, end) == [expected_utc]
    # the weeks around are at 02:30 local as usual
    week_before = _fires(cron, start - timedelta(days=7), start)
    week_after = _fires(cron, end, end + timedelta(days=7))
    for fire in week_before + week_after:
        local = fire.astimezone(PARIS)
        assert (local.weekday(), local.hour, local.minute) == (6, 2, 30)
    assert len(week_before) == len(week_after) == 1
    # a scheduler (re)started at any minute of that night fires at most once more
    for minute in range(0, 6 * 60, 10):
        clock = day + timedelta(minutes=minute)  # wall clock: 00:00 .. 05:50
        later = _fires(cron, clock.astimezone(UTC), end)
        assert [f for f in later if f.astimezone(PARIS).date() == day.date()] in (
            [],
            [expected_utc],
        )
        if clock.astimezone(UTC) > expected_utc:
            assert all(f.astimezone(PARIS).date() != day.date() for f in later)


# -- several scheduler instances on one database --------------------------------------


def _schedule_py(config: Config) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "PRESSREVIEW_SECRET_KEY": SECRET}
    env.pop("PRESSREVIEW_DATABASE_URL", None)
    return subprocess.Popen(
        [sys.executable, str(PROJECT_ROOT / "schedule.py"), "--config", str(config.path)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip


def test_two_schedulers_on_one_fresh_database_run_each_job_once(
    make_config: Callable[..., Config], store_url: str, cli: Callable[..., Any]
) -> None:
    """Two schedule.py started at once on a fresh database: no crash, one run per occurrence."""
    interval = 3.0
    config = make_config(database_url=store_url, schedule={"collect_every_hours": interval / 3600})
    procs = [_schedule_py(config), _schedule_py(config)]
    try:
        store = _open(config)
        _wait_for(lambda: len(_runs(store, "collect")) >= 3, "three collect runs", timeout=90)
        store.close()
    finally:
        outputs = []
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            out, err = proc.communicate(timeout=60)
            outputs.append((proc.returncode, out, err))
    for returncode, out, err in outputs:
        assert returncode == 0, err
        assert "Traceback" not in err and "already exists" not in err, err
        assert "scheduler stopped" in out
    store = _open(config)
    runs = sorted(_runs(store, "collect"), key=lambda r: r.started_at)
    assert len(runs) >= 3, [(r.started_at, r.outcome) for r in runs]
    assert {r.outcome for r in runs} == {"ok"}, [(r.outcome, r.error) for r in runs]
    for before, after in itertools.pairwise(runs):
        assert before.finished_at is not None and before.finished_at <= after.started_at
        gap = (after.started_at - before.started_at).total_seconds()
        assert gap > interval / 2, f"two runs of one occurrence, {gap:.2f} s apart"
    owners = {r.summary.get("owner") for r in runs}
    assert len(owners) >= 1
    status = cli(config, "schedule", "status")
    assert status.exit_code == 0 and "error" not in status.output, status.output
    store.close()


def _held_by(conn: Any, holder: str, ttl: timedelta) -> q.Lease | None:
    return q.take_lease(conn, "digest", holder, ttl=ttl, holder_dead=lambda _: False)


def test_a_job_lease_is_held_released_and_taken_over(
    make_config: Callable[..., Config], store_url: str
) -> None:
    config = make_config(database_url=store_url)
    store = _open(config)
    # held by a live process on another host: busy until it expires
    with store.connect() as conn:
        assert _held_by(conn, "autre:123:aa", timedelta(hours=1))
    with (
        pytest.raises(scheduling.JobBusy, match="autre:123:aa"),
        scheduling.job_lease(store, "digest"),
    ):
        pass
    # held by a process of this host that died: taken over at once
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    with store.connect() as conn:
        conn.execute(q.job_leases.delete())
        conn.commit()
        dead_holder = f"{socket.gethostname()}:{gone.pid}:bb"
        assert _held_by(conn, dead_holder, timedelta(hours=1))
    with scheduling.job_lease(store, "digest"):
        with store.connect() as conn:
            lease = q.get_lease(conn, "digest")
        assert lease is not None and lease.holder.startswith(scheduling.process_owner() + ":")
        # while we hold it, another holder (even in this process) is refused
        with pytest.raises(scheduling.JobBusy), scheduling.job_lease(store, "digest"):
            pass
    # released: free again; but within min_gap of the last start it is not run twice
    with (
        pytest.raises(scheduling.JobBusy),
        scheduling.job_lease(store, "digest", min_gap=timedelta(minutes=10)),
    ):
        pass
    with scheduling.job_lease(store, "digest"):
        pass
    # expired on another host: taken over
    with store.connect() as conn:
        conn.execute(q.job_leases.delete())
        conn.commit()
        assert _held_by(conn, "autre:9:cc", timedelta(seconds=-1))
    with scheduling.job_lease(store, "digest"):
        pass
    store.close()


def test_a_campaign_left_by_a_killed_sender_is_finished_when_the_scheduler_starts(
    make_config: Callable[..., Config], store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PRESSREVIEW_SECRET_KEY", SECRET)
    addresses = [f"abonne{i:02d}@example.fr" for i in range(12)]
    with Sink() as sink:
        config = make_config(
            database_url=store_url,
            delivery=sink.delivery_config(pool_size=1, rate_per_second=20),
        )
        store = _open(config)
        publish_fixed_issue(store)
        for address in addresses:
            add_subscriber(store, address, actor="test")
        env = {**os.environ, "PRESSREVIEW_SECRET_KEY": SECRET}
        env.pop("PRESSREVIEW_DATABASE_URL", None)
        sender = subprocess.Popen(
            [sys.executable, "-m", "pressreview", "--config", str(config.path), "send", "12"],
            cwd=PROJECT_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        _wait_for(lambda: len(sink.handler.received) >= 3, "the first messages")
        sender.kill()
        sender.wait()
        left = [r["status"] for r in deliveries_for(store, 12)]
        assert "sending" in left, left
        scheduler = scheduling.start_scheduler(config, store)
        try:
            _wait_for(
                lambda: {r["status"] for r in deliveries_for(store, 12)} <= {"sent", "unconfirmed"},
                "the campaign to be finished",
            )
            _wait_for(lambda: _runs(store, "digest"), "the resumed run to be logged")
        finally:
            scheduler.shutdown(wait=True)
        assert max(sink.handler.per_recipient().values()) == 1
        unconfirmed = [r for r in deliveries_for(store, 12) if r["status"] == "unconfirmed"]
        assert len(sink.handler.per_recipient()) + len(unconfirmed) >= len(addresses)
        assert len(sink.handler.per_recipient()) == len(addresses)
        (run,) = _wait_for(
            lambda: [r for r in _runs(store, "digest") if r.outcome != "running"], "the run"
        )
        assert run.outcome == "resumed" and run.summary["issue"] == 12, run
    store.close()
