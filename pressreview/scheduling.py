"""The jobs the scheduler runs, their triggers, and the log of every run.

Two jobs, both plain functions of the core that the command line runs too:

- ``run_collect(config, store)``: fetch every source (``collect``).
- ``run_digest(config, store, now=None)``: the weekly digest, by the policy of
  ``digest.policy``: ``review`` refreshes the draft and emails a preview to
  ``digest.editors``, then waits for a person; ``auto`` picks the best-scored
  relevant items when staff selected nothing, publishes, builds the archive
  and sends. A week (ISO week in ``timezone``) is published or previewed at
  most once, however often the digest runs.

Every run is logged in ``job_runs`` with its outcome (ok, partial, published,
previewed, empty, skipped, error) and a summary. ``schedule.py`` wires the
jobs to APScheduler triggers built from ``schedule``; the job store lives in
the project's database, so a restart keeps next run times and a run missed
while the scheduler was down runs once (coalesced) within
``schedule.misfire_grace_minutes``.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import signal
import socket
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from pressreview import issues
from pressreview.archive import build_archive
from pressreview.collect import collect
from pressreview.config import Config, check_placeholders, load_config
from pressreview.curate import select_items
from pressreview.deliver.campaign import LEASE, claim_is_dead, send_issue
from pressreview.deliver.message import dkim_signer, make_message_id
from pressreview.deliver.single import send_test_copies
from pressreview.deliver.transports import open_transport
from pressreview.errors import ConfigError, PressreviewError, Refused, UsageError
from pressreview.model import Snapshot
from pressreview.process import process_alive
from pressreview.render import render_email
from pressreview.signup import drain_confirmations
from pressreview.store import Store, open_store
from pressreview.store import jobs as q
from pressreview.store.schema import now as store_now
from pressreview.tokens import secret_key
from pressreview.typography import format_date

__all__ = [
    "DIGEST_ACTOR",
    "JOBS",
    "JobResult",
    "JobStatus",
    "auto_select",
    "build_triggers",
    "collect_job",
    "create_scheduler",
    "digest_job",
    "job_status",
    "run_collect",
    "run_digest",
    "run_job",
    "start_scheduler",
    "sync_jobs",
    "week_key",
]

log = logging.getLogger("pressreview.scheduling")

#: Who the digest acts as in the audit trail (events.actor).
DIGEST_ACTOR = "digest"

#: Job id -> importable reference of the function the scheduler calls (the job
#: store pickles references, not functions).
JOBS: dict[str, str] = {
    "collect": "pressreview.scheduling:collect_job",
    "digest": "pressreview.scheduling:digest_job",
    "confirmations": "pressreview.scheduling:confirmations_job",
}

DESCRIPTIONS = {
    "collect": "fetch every source",
    "digest": "weekly digest",
    "confirmations": "send the confirmation emails of the subscription form",
}


# ---------------------------------------------------------------------------
# Job runs


@dataclass
class JobResult:
    """What one run of a job did (also stored in ``job_runs``)."""

    job: str
    outcome: str = "ok"
    message: str = ""
    summary: dict[str, Any] = field(default_factory=dict)
    run_id: int | None = None

    @property
    def failed(self) -> bool:
        return self.outcome in ("error", "partial")


def process_owner() -> str:
    """``host:pid`` of this process, recorded with each run it starts."""
    return f"{socket.gethostname()}:{os.getpid()}"


def owner_alive(owner: object) -> bool | None:
    """Whether the process that started a run still exists: None when it cannot be
    told (a run recorded on another host, or without an owner)."""
    if not isinstance(owner, str) or ":" not in owner:
        return None
    host, _, pid = owner.rpartition(":")
    if not pid.isdigit():
        return None
    return process_alive(host, int(pid))


INTERRUPTED_ERROR = "interrupted: its process ended without recording an outcome (killed?)"


def as_interrupted(run: q.JobRunRow) -> q.JobRunRow:
    """A ``running`` run whose process is gone, as ``interrupted``; other runs as they are."""
    if run.outcome == "running" and owner_alive(run.summary.get("owner")) is False:
        return dataclasses.replace(run, outcome="interrupted", error=INTERRUPTED_ERROR)
    return run


@contextmanager
def _recorded(store: Store, job: str, started_at: datetime | None = None) -> Iterator[JobResult]:
    """Log a run in job_runs: a ``running`` row first, then its outcome or error.

    Earlier runs of the job left ``running`` by a process that is gone (killed
    with SIGKILL, a power cut) are marked ``interrupted`` first.
    """
    with store.begin() as conn:
        for stale in q.running_runs(conn, job):
            if as_interrupted(stale).outcome == "interrupted":
                q.mark_interrupted(conn, stale.id, error=INTERRUPTED_ERROR)
        run_id = q.start_run(conn, job, started_at=started_at, owner=process_owner())
    result = JobResult(job=job, run_id=run_id)
    try:
        yield result
    except BaseException as exc:
        error = str(exc) if isinstance(exc, PressreviewError) else f"{type(exc).__name__}: {exc}"
        if isinstance(exc, KeyboardInterrupt | SystemExit):
            error = f"interrupted ({type(exc).__name__})"
        result.summary["message"] = error
        with store.begin() as conn:
            q.finish_run(conn, run_id, outcome="error", summary=result.summary, error=error)
        raise
    else:
        result.summary["message"] = result.message
        with store.begin() as conn:
            q.finish_run(conn, run_id, outcome=result.outcome, summary=result.summary)


def run_collect(config: Config, store: Store) -> JobResult:
    """Collect every enabled source (what ``pressreview collect`` does), logged as a job run.

    Outcome ``ok``, or ``partial`` when some sources failed (they are backed off
    and named in the message).
    """
    with _recorded(store, "collect") as result:
        report = collect(config, store)
        totals = report.as_dict()["totals"]
        assert isinstance(totals, dict)
        failed = [s.name for s in report.failed]
        result.summary.update(totals, sources=len(report.sources), failed_sources=failed)
        result.outcome = "partial" if failed else "ok"
        result.message = (
            f"{totals['new']} new ({totals['filtered']} filtered out, "
            f"{totals['duplicates']} other outlets of known stories), "
            f"{totals['updated']} updated from {len(report.sources)} source(s)"
        )
        if failed:
            result.message += f"; {len(failed)} failed: {', '.join(failed)}"
    return result


def week_key(when: datetime, tz: Any) -> str:
    """The ISO week of an instant in the configured time zone: ``2026-W48``."""
    iso = when.astimezone(tz).isocalendar()
    return f"{iso.year}-W{iso.week:02d}"


def _digest_done(store: Store, week: str, policy: str) -> q.JobRunRow | None:
    """The run that already published (auto) or previewed (review) this week, if any."""
    outcome = "published" if policy == "auto" else "previewed"
    with store.connect() as conn:
        for run in q.runs_with_outcome(conn, "digest", [outcome]):
            if run.summary.get("week") == week:
                return run
    return None


def run_digest(
    config: Config,
    store: Store,
    now: datetime | None = None,
    *,
    environ: Mapping[str, str] | None = None,
) -> JobResult:
    """The weekly digest, by ``digest.policy`` (see the module docstring).

    Never publishes, sends or previews twice for the same week: a second run
    in the week is logged with outcome ``skipped``. An auto digest that
    published but failed to send resumes the sending of that issue.
    ``environ`` (default ``os.environ``) holds the secrets sending needs
    (PRESSREVIEW_SECRET_KEY, SMTP credentials).
    """
    now = now or store_now()
    week = week_key(now, config.tz)
    policy = config.digest.policy
    with _recorded(store, "digest") as result:
        result.summary.update(week=week, policy=policy)
        done = _digest_done(store, week, policy)
        if done is not None:
            result.outcome = "skipped"
            what = "published" if policy == "auto" else "previewed"
            issue = done.summary.get("issue")
            detail = f" (issue n° {issue})" if issue else ""
            result.message = (
                f"week {week} already {what}{detail} by the run of "
                f"{done.started_at.astimezone(config.tz):%Y-%m-%d %H:%M}; nothing done"
            )
            result.summary["already_done_by"] = done.id
        elif policy == "auto":
            _auto_digest(config, store, now, week, result, environ)
        else:
            _review_digest(config, store, now, week, result, environ)
    return result


def default_title(config: Config, now: datetime) -> str:
    """The title of an issue the digest builds: « Revue de presse du 1er décembre 2026 »."""
    local = now.astimezone(config.tz).date()
    return f"Revue de presse du {format_date(local, 'long', config.locale)}"


def pick_items(config: Config, store: Store, *, since: datetime | None) -> list[int]:
    """Best-scored relevant items first seen after ``since``, at most
    ``digest.per_section_limit`` per section, best first within a section,
    sections in newsletter order (items without a section last)."""
    limit = config.digest.per_section_limit
    with store.connect() as conn:
        candidates = q.digest_candidates(conn, since=since)
    by_section: dict[str | None, list[int]] = {}
    for c in candidates:
        chosen = by_section.setdefault(c.section, [])
        if len(chosen) < limit:
            chosen.append(c.id)
    order = {s.key: i for i, s in enumerate(config.ordered_sections())}
    keys = sorted(by_section, key=lambda k: (k is None, order.get(k or "", len(order)), k or ""))
    return [item_id for k in keys for item_id in by_section[k]]


def auto_select(
    config: Config, store: Store, *, since: datetime | None = None, actor: str = DIGEST_ACTOR
) -> list[int]:
    """Select the items an automatic digest publishes (see ``pick_items``).

    ``since`` defaults to the publication of the last issue (every item when
    there is none). Returns the selected ids (empty when nothing qualifies).
    The selection goes through the curation stage, so it is in the audit trail.
    """
    if since is None:
        with store.connect() as conn:
            last = q.last_published_issue(conn)
        since = last.published_at if last else None
    ids = pick_items(config, store, since=since)
    if ids:
        select_items(store, ids, actor=actor)
    return ids


def _issue_of_week(config: Config, store: Store, week: str) -> q.PublishedIssue | None:
    with store.connect() as conn:
        last = q.last_published_issue(conn)
    if last is not None and week_key(last.published_at, config.tz) == week:
        return last
    return None


def _ensure_draft(config: Config, store: Store, now: datetime) -> None:
    if issues.current_draft(config, store) is None:
        issues.new_draft(
            config, store, title=default_title(config, now), intro_md="", actor=DIGEST_ACTOR
        )


def _auto_digest(
    config: Config,
    store: Store,
    now: datetime,
    week: str,
    result: JobResult,
    environ: Mapping[str, str] | None,
) -> None:
    secret_key(environ)  # a missing signing key fails here, before anything is published
    check_placeholders(config)  # so does a placeholder in the footer's legal values
    existing = _issue_of_week(config, store, week)
    if existing is not None:
        number = existing.number
        result.summary.update(issue=number, resumed=True)
        how = f"issue n° {number}, already published this week"
    else:
        with store.connect() as conn:
            selected = q.selected_item_ids(conn)
            last = q.last_published_issue(conn)
        if selected:
            result.summary["picked_by"] = "staff"
        else:
            picked = auto_select(config, store, since=last.published_at if last else None)
            result.summary["picked_by"] = DIGEST_ACTOR
            if not picked:
                result.outcome = "empty"
                since = (
                    f"since issue n° {last.number} of "
                    f"{last.published_at.astimezone(config.tz):%Y-%m-%d}"
                    if last
                    else "collected yet"
                )
                result.message = (
                    f"week {week}: nothing to publish (no new relevant item {since}); "
                    "no issue published, nothing sent"
                )
                return
        _ensure_draft(config, store, now)
        snapshot = issues.publish(config, store, actor=DIGEST_ACTOR, now=now)
        number = int(snapshot["number"])
        result.summary.update(issue=number, items=snapshot.get("item_count"))
        how = f"published issue n° {number} ({snapshot.get('item_count')} items)"
    # Publishing is recorded before the slow steps: a failure below is resumed next run.
    result.summary["archive"] = "pending"
    report = build_archive(config, store)
    result.summary["archive"] = _pick(
        _as_summary(report), ("out_dir", "issues", "files", "written", "reused", "search_note")
    )
    result.summary["send"] = "pending"
    if result.run_id is not None:  # if this process dies now, the next scheduler run resumes
        with store.begin() as conn:
            q.update_summary(conn, result.run_id, result.summary)
    send = send_issue(config, store, number, environ=environ)
    result.summary["send"] = _pick(
        _as_summary(send), ("transport", "sent", "failed", "skipped", "unconfirmed", "totals")
    )
    result.outcome = "published"
    result.message = f"week {week}: {how}, archive built, {send.sent} message(s) sent"
    if send.skipped:
        result.message += f" ({send.skipped} already sent or unsubscribed)"
    if send.failed:
        result.message += f"; {send.failed} failed: see `pressreview send {number}`"


def _review_digest(
    config: Config,
    store: Store,
    now: datetime,
    week: str,
    result: JobResult,
    environ: Mapping[str, str] | None,
) -> None:
    if not config.digest.editors:
        raise ConfigError(
            "digest.editors: empty; list the addresses that receive the preview "
            "(or set digest.policy: auto)"
        )
    if issues.current_draft(config, store) is None:
        _ensure_draft(config, store, now)
    else:
        issues.refresh_draft(config, store, actor=DIGEST_ACTOR)
    snapshot = issues.draft_snapshot(config, store)
    count = int(snapshot.get("item_count") or 0)
    result.summary["items"] = count
    if count == 0:
        result.outcome = "empty"
        result.message = (
            f"week {week}: the draft has no selected item; no preview sent "
            "(select items with `pressreview review`, then run the digest again)"
        )
        return
    send_preview(config, snapshot, list(config.digest.editors), environ=environ)
    result.summary["editors"] = list(config.digest.editors)
    result.outcome = "previewed"
    result.message = (
        f"week {week}: draft « {snapshot.get('title')} » ({count} items) previewed to "
        f"{', '.join(config.digest.editors)}; waiting for `pressreview issue publish`"
    )


def send_preview(
    config: Config,
    snapshot: Snapshot,
    recipients: list[str],
    *,
    environ: Mapping[str, str] | None = None,
) -> int:
    """Email a "[TEST]" copy of a (draft) snapshot to each recipient through
    ``delivery.transport``; the unsubscribe link is a sample. Returns the count."""
    rendered = render_email(config, snapshot)
    sent = send_test_copies(
        config,
        rendered,
        recipients,
        transport=open_transport(config, environ=environ),
        signer=dkim_signer(config, environ),
        message_id=lambda index: make_message_id(config, "preview", snapshot.get("number"), index),
    )
    return len(sent)


def _as_summary(report: Any) -> Any:
    """A JSON-able summary of another stage's report object."""
    if report is None or isinstance(report, str | int | float | bool):
        return report
    if isinstance(report, dict):
        return {str(k): _as_summary(v) for k, v in report.items()}
    if isinstance(report, list | tuple):
        return [_as_summary(v) for v in report]
    if hasattr(report, "as_dict"):
        return _as_summary(report.as_dict())
    if dataclasses.is_dataclass(report) and not isinstance(report, type):
        return _as_summary(dataclasses.asdict(report))
    if isinstance(report, datetime):
        return report.isoformat()
    if isinstance(report, Path):
        return str(report)
    return str(report)


def _pick(summary: Any, keys: tuple[str, ...]) -> Any:
    """Only the keys worth keeping in a job run's summary (no long lists of paths)."""
    if not isinstance(summary, dict):
        return summary
    return {k: summary[k] for k in keys if k in summary}


#: How often the scheduler drains the sign-up queue.
CONFIRMATIONS_EVERY = timedelta(minutes=1)


def run_confirmations(config: Config, store: Store) -> JobResult:
    """Drain the sign-up queue (pressreview.signup); every minute, so not logged in job_runs."""
    report = drain_confirmations(config, store)
    summary = report.as_dict()
    outcome = "partial" if report.deferred or report.failed else "ok"
    message = ", ".join(f"{n} {k}" for k, n in summary.items())
    return JobResult(job="confirmations", outcome=outcome, message=message, summary=summary)


RUNNERS: dict[str, Callable[[Config, Store], JobResult]] = {
    "collect": run_collect,
    "digest": run_digest,
    "confirmations": run_confirmations,
}

#: How long a job's lease lasts without renewal (renewed every third of it while the
#: job runs): how long another instance waits before it takes over from one that died
#: on another host (on this host, a dead holder is seen at once).
LEASE_TTL = timedelta(seconds=60)


class JobBusy(Refused):
    """Another process (another scheduler instance) runs this job now."""


def lease_holder() -> str:
    """``host:pid:random`` of this process, as a job lease holder."""
    return f"{process_owner()}:{uuid.uuid4().hex[:8]}"


def _holder_dead(holder: str) -> bool:
    owner = holder.rpartition(":")[0]  # host:pid
    return owner_alive(owner) is False


@contextmanager
def job_lease(
    store: Store, job: str, *, min_gap: timedelta | None = None, ttl: timedelta = LEASE_TTL
) -> Iterator[None]:
    """Hold the lease of ``job`` in the database while the block runs (several
    scheduler instances on one database: one runs a job at a time).

    Raises JobBusy when another live process holds it (or, with ``min_gap``,
    took it that recently: it already ran this occurrence). The lease is
    renewed every ``ttl / 3`` by a thread and released at the end; a holder
    that died is taken over at once on the same host, after ``ttl`` elsewhere.
    """
    holder = lease_holder()
    with store.connect() as conn:
        lease = q.take_lease(conn, job, holder, ttl=ttl, holder_dead=_holder_dead, min_gap=min_gap)
        if lease is None:
            current = q.get_lease(conn, job)
            who = current.holder if current else "another process"
            raise JobBusy(f"{job} is running in another process ({who}); not run here")
    stop = threading.Event()

    def renew() -> None:
        with store.connect() as conn:
            while not stop.wait(ttl.total_seconds() / 3):
                try:
                    if not q.renew_lease(conn, job, holder, ttl=ttl):
                        log.error("%s: lost its lease to another process", job)
                        return
                except Exception:  # pragma: no cover - database gone: retried next time
                    log.exception("%s: cannot renew its lease", job)
                    conn.rollback()

    renewer = threading.Thread(target=renew, name=f"lease-{job}", daemon=True)
    renewer.start()
    try:
        yield
    finally:
        stop.set()
        renewer.join()
        with store.begin() as conn:
            q.release_lease(conn, job, holder)


def run_job(
    config: Config, store: Store, job: str, *, min_gap: timedelta | None = None
) -> JobResult:
    """Run one job now by name (what ``pressreview schedule run JOB`` does), holding
    its lease: raises JobBusy when another process runs it."""
    try:
        runner = RUNNERS[job]
    except KeyError:
        raise UsageError(f"unknown job {job!r} (jobs: {', '.join(JOBS)})") from None
    with job_lease(store, job, min_gap=min_gap):
        return runner(config, store)


# ---------------------------------------------------------------------------
# Campaigns left unfinished by a process that died


def unfinished_campaigns(store: Store) -> list[int]:
    """Issues with delivery rows left ``sending`` by a run that is gone."""
    limit = store_now() - LEASE
    with store.connect() as conn:
        open_rows = q.issues_with_open_deliveries(conn)
        runs = q.running_runs(conn, "digest")
    numbers = {
        number
        for number, claims in open_rows.items()
        if any(claim_is_dead(claim) or updated < limit for claim, updated in claims)
    }
    # a digest that died between two batches leaves no "sending" row: its summary says
    # (once a later run marked it interrupted, it is not looked at again)
    for run in runs:
        interrupted = as_interrupted(run).outcome == "interrupted"
        if interrupted and run.summary.get("send") == "pending" and run.summary.get("issue"):
            numbers.add(int(run.summary["issue"]))
    return sorted(numbers)


def resume_unfinished(
    config: Config, store: Store, *, environ: Mapping[str, str] | None = None
) -> list[JobResult]:
    """Finish the sending of every campaign a dead process left unfinished.

    Logged as ``digest`` runs with outcome ``resumed``. Sending is safe to run
    beside another live sender (rows are claimed), so no lease is needed.
    """
    results = []
    for number in unfinished_campaigns(store):
        with _recorded(store, "digest") as result:
            result.summary.update(issue=number, resumed=True, send="pending")
            report = send_issue(config, store, number, environ=environ)
            result.summary["send"] = _pick(
                _as_summary(report), ("transport", "sent", "failed", "skipped", "unconfirmed")
            )
            result.outcome = "resumed"
            result.message = (
                f"issue n° {number}: finished the sending a stopped process left unfinished: "
                f"{report.sent} sent, {report.requeued} taken back, "
                f"{report.marked_unconfirmed} unconfirmed"
            )
        log.info("digest: resumed: %s", result.message)
        results.append(result)
    return results


# ---------------------------------------------------------------------------
# The functions the scheduler calls (importable references, pickled by the job store)


def _scheduled(job: str, config_path: str) -> dict[str, Any] | None:
    """Load the configuration afresh (edits apply to the next run) and run a job.

    Errors are logged and recorded in job_runs; they never reach the scheduler.
    """
    try:
        config = load_config(config_path)
        store = open_store(config)
    except PressreviewError as exc:
        log.error("%s: cannot start: %s", job, exc)
        return None
    try:
        try:
            resume_unfinished(config, store)
        except PressreviewError as exc:
            log.error("resuming an unfinished campaign failed: %s", exc)
        if job == RESUME_JOB:
            return None
        result = run_job(config, store, job, min_gap=_min_gap(config, job))
    except JobBusy as exc:
        log.info("%s", exc)
        return None
    except PressreviewError as exc:
        log.error("%s: failed: %s", job, exc)
        return None
    except Exception:
        log.exception("%s: failed with an unexpected error", job)
        return None
    finally:
        store.close()
    level = logging.WARNING if result.failed else logging.INFO
    log.log(level, "%s: %s: %s", job, result.outcome, result.message)
    return result.summary


def collect_job(config_path: str) -> dict[str, Any] | None:
    """Scheduled collection."""
    return _scheduled("collect", config_path)


def digest_job(config_path: str) -> dict[str, Any] | None:
    """Scheduled weekly digest."""
    return _scheduled("digest", config_path)


def confirmations_job(config_path: str) -> dict[str, Any] | None:
    """Scheduled drain of the sign-up queue."""
    return _scheduled("confirmations", config_path)


#: The one-off job a starting scheduler runs: finish campaigns left unfinished.
RESUME_JOB = "resume"


def resume_job(config_path: str) -> dict[str, Any] | None:
    """At start: finish the campaigns a dead process left unfinished."""
    return _scheduled(RESUME_JOB, config_path)


def _min_gap(config: Config, job: str) -> timedelta:
    """Within this time of the last start, another instance already ran this occurrence."""
    periods = {
        "collect": timedelta(hours=config.schedule.collect_every_hours),
        "confirmations": CONFIRMATIONS_EVERY,
    }
    return min(timedelta(minutes=10), periods.get(job, timedelta(days=1)) / 2)


# ---------------------------------------------------------------------------
# Triggers and the scheduler


def _repeated_wall_time(when: datetime, tz: Any) -> bool:
    """Whether ``when`` is the second occurrence of its local time (clocks went back)."""
    local = when.astimezone(tz).replace(tzinfo=None)
    first = local.replace(tzinfo=tz, fold=0)
    second = local.replace(tzinfo=tz, fold=1)
    if first.utcoffset() == second.utcoffset():
        return False
    # in a gap (clocks went forward) neither reading round-trips: not a repeat
    back = second.astimezone(UTC).astimezone(tz).replace(tzinfo=None)
    return back == local and when.astimezone(UTC) == second.astimezone(UTC) != first.astimezone(UTC)


class OnceCronTrigger(CronTrigger):  # type: ignore[misc]  # APScheduler 3 has no type hints
    """A CronTrigger that fires once at a local time that occurs twice.

    When clocks go back (Europe/Paris, last Sunday of October, 03:00 CEST ->
    02:00 CET) a cron at 02:30 matches two instants and APScheduler fires at
    both; this one skips the second. A local time that does not exist (clocks
    go forward, 02:00 -> 03:00, last Sunday of March) fires once, at 03:30
    summer time (02:30 read in winter time).
    """

    def get_next_fire_time(
        self, previous_fire_time: datetime | None, now: datetime
    ) -> datetime | None:
        fire: datetime | None = super().get_next_fire_time(previous_fire_time, now)
        while fire is not None and _repeated_wall_time(fire, self.timezone):
            after = fire.astimezone(UTC) + timedelta(microseconds=1)  # not wall-clock math
            fire = super().get_next_fire_time(fire, after)
        return fire


def build_triggers(config: Config) -> dict[str, Any]:
    """The APScheduler trigger of each job, from ``schedule`` in ``timezone``."""
    s = config.schedule
    if not s.collect_every_hours > 0:
        raise ConfigError("schedule.collect_every_hours: must be more than 0 (e.g. 3)")
    if not 0 <= s.digest_hour <= 23:
        raise ConfigError(f"schedule.digest_hour: must be 0 to 23, not {s.digest_hour}")
    if not 0 <= s.digest_minute <= 59:
        raise ConfigError(f"schedule.digest_minute: must be 0 to 59, not {s.digest_minute}")
    if s.misfire_grace_minutes < 0:
        raise ConfigError("schedule.misfire_grace_minutes: must be 0 or more")
    try:
        cron = OnceCronTrigger(
            day_of_week=s.digest_day_of_week,
            hour=s.digest_hour,
            minute=s.digest_minute,
            timezone=config.tz,
        )
    except ValueError as exc:
        raise ConfigError(
            f"schedule.digest_day_of_week: {s.digest_day_of_week!r}: {exc} "
            "(e.g. mon, or mon-fri, or mon,thu)"
        ) from None
    return {
        "collect": IntervalTrigger(hours=s.collect_every_hours, timezone=config.tz),
        "digest": cron,
        "confirmations": IntervalTrigger(
            seconds=CONFIRMATIONS_EVERY.total_seconds(), timezone=config.tz
        ),
    }


def describe_trigger(trigger: Any) -> str:
    """A short human description: ``every 3 h`` / ``cron mon 08:00 Europe/Paris``."""
    if isinstance(trigger, IntervalTrigger):
        hours = trigger.interval_length / 3600
        return f"every {hours:g} h" if hours >= 1 else f"every {hours * 60:g} min"
    if isinstance(trigger, CronTrigger):
        fields = {f.name: str(f) for f in trigger.fields}
        hour, minute = fields["hour"], fields["minute"]
        at = (
            f"{int(hour):02d}:{int(minute):02d}"
            if hour.isdigit() and minute.isdigit()
            else (f"hour={hour} minute={minute}")
        )
        return f"cron {fields['day_of_week']} {at} {trigger.timezone}"
    return str(trigger)


def _trigger_signature(trigger: Any) -> tuple[Any, ...]:
    """What identifies a trigger's schedule (not its start date)."""
    if isinstance(trigger, IntervalTrigger):
        return ("interval", trigger.interval_length, str(trigger.timezone))
    if isinstance(trigger, CronTrigger):  # the class too: a stored plain CronTrigger is replaced
        return ("cron", type(trigger).__name__, str(trigger), str(trigger.timezone))
    return ("other", repr(trigger))


def _config_path(config: Config) -> str:
    if config.path is None:
        raise UsageError("the scheduler needs a configuration file (give --config PATH)")
    return str(Path(config.path).resolve())


def create_scheduler(config: Config, store: Store, *, max_workers: int = 2) -> Any:
    """A BackgroundScheduler (not started) with its job store in the project's database.

    Defaults of every job: coalesce missed runs into one, one instance at a
    time, misfire grace time from ``schedule.misfire_grace_minutes``.
    """
    build_triggers(config)  # validate the schedule before touching the store
    return BackgroundScheduler(
        jobstores={"default": q.job_store(store)},
        executors={"default": ThreadPoolExecutor(max_workers=max_workers)},
        job_defaults={
            "coalesce": True,
            "max_instances": 1,
            "misfire_grace_time": config.schedule.misfire_grace_minutes * 60,
        },
        timezone=config.tz,
    )


def sync_jobs(scheduler: Any, config: Config) -> dict[str, str]:
    """Make the stored jobs match the configuration; the scheduler must be started (paused).

    A job whose trigger is unchanged keeps its stored next run time (so a run
    missed while the scheduler was down still happens); a changed trigger is
    rescheduled; other settings are updated in place; unknown stored jobs are
    removed. Returns job id -> ``added`` | ``rescheduled`` | ``kept`` | ``removed``.
    """
    triggers = build_triggers(config)
    path = _config_path(config)
    options = {
        "coalesce": True,
        "max_instances": 1,
        "misfire_grace_time": config.schedule.misfire_grace_minutes * 60,
        "kwargs": {"config_path": path},
    }
    changes: dict[str, str] = {}
    for job in scheduler.get_jobs():
        if job.id not in JOBS:
            scheduler.remove_job(job.id)
            changes[job.id] = "removed"
    for job_id, ref in JOBS.items():
        trigger = triggers[job_id]
        name = f"{job_id}: {DESCRIPTIONS[job_id]}"
        existing = scheduler.get_job(job_id)
        if existing is None:
            scheduler.add_job(ref, trigger, id=job_id, name=name, replace_existing=True, **options)
            changes[job_id] = "added"
            continue
        scheduler.modify_job(job_id, func=ref, name=name, args=(), **options)
        if _trigger_signature(existing.trigger) != _trigger_signature(trigger):
            scheduler.reschedule_job(job_id, trigger=trigger)
            changes[job_id] = "rescheduled"
        else:
            changes[job_id] = "kept"
    return changes


def start_scheduler(
    config: Config,
    store: Store,
    *,
    listener: Callable[[Any], None] | None = None,
    listener_mask: int | None = None,
) -> Any:
    """Create the scheduler, sync its jobs with the configuration and start it.

    Stop it with ``scheduler.shutdown(wait=True)``: the running job finishes first.
    """
    scheduler = create_scheduler(config, store)
    if listener is not None:
        if listener_mask is None:
            scheduler.add_listener(listener)
        else:
            scheduler.add_listener(listener, listener_mask)
    scheduler.start(paused=True)
    try:
        changes = sync_jobs(scheduler, config)
    except BaseException:
        scheduler.shutdown(wait=False)
        raise
    for job_id, change in changes.items():
        log.debug("job %s: %s", job_id, change)
    scheduler.resume()
    # At once, beside the scheduler: finish campaigns a dead process left unfinished
    # (not a daemon: a stop lets it finish its message batch).
    threading.Thread(
        target=resume_job, args=(_config_path(config),), name="resume", daemon=False
    ).start()
    return scheduler


def wait_for_stop(
    scheduler: Any, stop: threading.Event, *, on_stop: Callable[[], None] | None = None
) -> None:
    """Block until ``stop`` is set (a signal handler sets it), then shut the
    scheduler down once the running job has finished."""
    stop.wait()
    if on_stop is not None:
        on_stop()
    scheduler.shutdown(wait=True)


def configure_logging(verbose: bool = False) -> None:
    """Log lines with a time stamp; APScheduler's and Alembic's details only when ``verbose``."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if not verbose:
        for noisy in ("apscheduler", "alembic"):
            logging.getLogger(noisy).setLevel(logging.WARNING)


def stop_on_signals() -> threading.Event:
    """An event that SIGTERM and SIGINT (Ctrl-C) set (call it from the main thread)."""
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    return stop


def run_forever(
    config: Config, store: Store, stop: threading.Event, say: Callable[[str], None]
) -> None:
    """Run the scheduler until ``stop`` is set: what ``pressreview scheduler`` and
    ``python schedule.py`` do. ``say`` prints the jobs' next runs and the progress
    of the stop; the running job finishes before it returns."""
    scheduler = start_scheduler(config, store)
    for job in scheduler.get_jobs():
        when = job.next_run_time
        at = f"{when.astimezone(config.tz):%Y-%m-%d %H:%M %Z}" if when else "paused"
        say(f"{job.name} ({describe_trigger(job.trigger)}): next run {at}")
    say("scheduler running; stop with Ctrl-C or SIGTERM")
    wait_for_stop(
        scheduler, stop, on_stop=lambda: say("stopping: waiting for the running job to finish...")
    )
    say("scheduler stopped")


# ---------------------------------------------------------------------------
# Status


@dataclass
class JobStatus:
    """A job as ``schedule status`` shows it."""

    id: str
    description: str
    trigger: str
    next_run: datetime | None
    scheduled: bool  # present in the job store (the scheduler has run with it)
    config_changed: bool  # the stored trigger differs from the configuration
    last_run: q.JobRunRow | None


def _stored_jobs(store: Store) -> dict[str, Any]:
    """The jobs in the job store, read without starting a scheduler."""
    jobstore = q.job_store(store)
    jobstore.start(BackgroundScheduler(), "default")
    try:
        return {job.id: job for job in jobstore.get_all_jobs()}
    except LookupError:  # pragma: no cover - job of a removed function
        return {}


def job_status(config: Config, store: Store, *, now: datetime | None = None) -> list[JobStatus]:
    """Each job: trigger from the configuration, next run time (stored, or what
    the configuration gives when the scheduler never ran), last logged run."""
    now = now or store_now()
    triggers = build_triggers(config)
    stored = _stored_jobs(store)
    out = []
    with store.connect() as conn:
        for job_id in JOBS:
            trigger = triggers[job_id]
            job = stored.get(job_id)
            last = q.last_run(conn, job_id)
            if job is not None:
                next_run = job.next_run_time
                changed = _trigger_signature(job.trigger) != _trigger_signature(trigger)
            else:
                next_run = trigger.get_next_fire_time(None, now.astimezone(config.tz))
                changed = False
            out.append(
                JobStatus(
                    id=job_id,
                    description=DESCRIPTIONS[job_id],
                    trigger=describe_trigger(trigger),
                    next_run=next_run,
                    scheduled=job is not None,
                    config_changed=changed,
                    last_run=None if last is None else as_interrupted(last),
                )
            )
    return out
