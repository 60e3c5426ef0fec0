"""Store queries of the scheduling stage: the job_runs log, digest candidates, the job store.

``job_runs`` holds one row per run of a job (scheduled or started by hand)
with its outcome and a JSON summary. The scheduler's own job store (the
APScheduler table ``apscheduler_jobs``) lives in the same database and is
built here too, so that every piece of SQL stays in the store package.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, desc, insert, select, update

from pressreview.store import Store
from pressreview.store.schema import issues, items, job_runs, now

#: Name of the APScheduler table holding the persisted jobs and their next run times.
JOBSTORE_TABLE = "apscheduler_jobs"


@dataclass(frozen=True)
class JobRunRow:
    """One logged run of a job."""

    id: int
    job: str
    started_at: datetime
    finished_at: datetime | None
    outcome: str
    summary: dict[str, Any] = field(default_factory=dict)
    error: str | None = None


def _row(row: Any) -> JobRunRow:
    return JobRunRow(
        id=row.id,
        job=row.job,
        started_at=row.started_at,
        finished_at=row.finished_at,
        outcome=row.outcome,
        summary=dict(row.summary or {}),
        error=row.error,
    )


def start_run(
    conn: Connection, job: str, *, started_at: datetime | None = None, owner: str | None = None
) -> int:
    """Insert a ``running`` row for a job (``owner``: "host:pid" of the process); returns its id."""
    summary = {"owner": owner} if owner else {}
    result = conn.execute(
        insert(job_runs).values(
            job=job, started_at=started_at or now(), outcome="running", summary=summary
        )
    )
    return int(result.inserted_primary_key[0])  # type: ignore[index]


def running_runs(conn: Connection, job: str) -> list[JobRunRow]:
    """The runs of a job still marked ``running``, oldest first."""
    query = (
        select(job_runs)
        .where(and_(job_runs.c.job == job, job_runs.c.outcome == "running"))
        .order_by(job_runs.c.started_at, job_runs.c.id)
    )
    return [_row(r) for r in conn.execute(query)]


def mark_interrupted(conn: Connection, run_id: int, *, error: str) -> bool:
    """Mark a run that is still ``running`` as ``interrupted`` (its process is gone)."""
    result = conn.execute(
        update(job_runs)
        .where(and_(job_runs.c.id == run_id, job_runs.c.outcome == "running"))
        .values(outcome="interrupted", error=error)
    )
    return result.rowcount == 1


def finish_run(
    conn: Connection,
    run_id: int,
    *,
    outcome: str,
    summary: dict[str, Any] | None = None,
    error: str | None = None,
) -> None:
    """Record how a run ended."""
    conn.execute(
        update(job_runs)
        .where(job_runs.c.id == run_id)
        .values(finished_at=now(), outcome=outcome, summary=summary or {}, error=error)
    )


def get_run(conn: Connection, run_id: int) -> JobRunRow | None:
    row = conn.execute(select(job_runs).where(job_runs.c.id == run_id)).one_or_none()
    return _row(row) if row is not None else None


def recent_runs(conn: Connection, job: str | None = None, *, limit: int = 20) -> list[JobRunRow]:
    """The latest runs, newest first (of one job, or of all)."""
    query = select(job_runs).order_by(desc(job_runs.c.started_at), desc(job_runs.c.id)).limit(limit)
    if job is not None:
        query = query.where(job_runs.c.job == job)
    return [_row(r) for r in conn.execute(query)]


def last_run(conn: Connection, job: str) -> JobRunRow | None:
    runs = recent_runs(conn, job, limit=1)
    return runs[0] if runs else None


def runs_with_outcome(
    conn: Connection, job: str, outcomes: Sequence[str], *, limit: int = 50
) -> list[JobRunRow]:
    """The latest runs of a job that ended with one of ``outcomes``, newest first."""
    query = (
        select(job_runs)
        .where(and_(job_runs.c.job == job, job_runs.c.outcome.in_(list(outcomes))))
        .order_by(desc(job_runs.c.started_at), desc(job_runs.c.id))
        .limit(limit)
    )
    return [_row(r) for r in conn.execute(query)]


# -- digest ---------------------------------------------------------------------


@dataclass(frozen=True)
class PublishedIssue:
    id: int
    number: int
    published_at: datetime


def last_published_issue(conn: Connection) -> PublishedIssue | None:
    """The most recently published issue."""
    row = conn.execute(
        select(issues.c.id, issues.c.number, issues.c.published_at)
        .where(and_(issues.c.status == "published", issues.c.published_at.is_not(None)))
        .order_by(desc(issues.c.published_at), desc(issues.c.number))
        .limit(1)
    ).one_or_none()
    if row is None:
        return None
    return PublishedIssue(id=row.id, number=row.number, published_at=row.published_at)


def selected_item_ids(conn: Connection) -> list[int]:
    """Items staff selected that are not in a published issue yet."""
    rows = conn.execute(
        select(items.c.id)
        .outerjoin(issues, issues.c.id == items.c.issue_id)
        .where(
            and_(
                items.c.status == "selected",
                (items.c.issue_id.is_(None)) | (issues.c.status != "published"),
            )
        )
        .order_by(items.c.id)
    )
    return [r.id for r in rows]


@dataclass(frozen=True)
class Candidate:
    id: int
    section: str | None
    score: int
    published_at: datetime


def digest_candidates(conn: Connection, *, since: datetime | None) -> list[Candidate]:
    """Relevant items a digest may pick: status new, lead item of their story,
    first seen after ``since`` (the last issue), best score first, then newest."""
    conditions = [
        items.c.status == "new",
        items.c.duplicate_of.is_(None),
    ]
    if since is not None:
        conditions.append(items.c.first_seen_at > since)
    rows = conn.execute(
        select(items.c.id, items.c.section, items.c.score, items.c.published_at)
        .where(and_(*conditions))
        .order_by(desc(items.c.score), desc(items.c.published_at), items.c.id)
    )
    return [Candidate(r.id, r.section, r.score, r.published_at) for r in rows]


# -- the scheduler's job store -----------------------------------------------------


def job_store(store: Store) -> Any:
    """An APScheduler SQLAlchemyJobStore on the project's database (engine shared with Store)."""
    # Imported when used: APScheduler costs about 300 ms at every start otherwise.
    from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore

    store.ensure_schema()
    return SQLAlchemyJobStore(engine=store.engine, tablename=JOBSTORE_TABLE)
