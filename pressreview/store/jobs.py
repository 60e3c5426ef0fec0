"""Store queries of the scheduling stage: the job_runs log, digest candidates, the job store.

``job_runs`` holds one row per run of a job (scheduled or started by hand)
with its outcome and a JSON summary. The scheduler's own job store (the
APScheduler table ``apscheduler_jobs``) lives in the same database and is
built here too, so that every piece of SQL stays in the store package.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from sqlalchemy import Connection, and_, desc, insert, select, update
from sqlalchemy.exc import IntegrityError

from pressreview.store import Store
from pressreview.store.schema import deliveries, issues, items, job_leases, job_runs, now

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


def update_summary(conn: Connection, run_id: int, summary: dict[str, Any]) -> None:
    """Record progress of a running run (what a later run needs if this one dies)."""
    conn.execute(update(job_runs).where(job_runs.c.id == run_id).values(summary=summary))


# -- leases: which scheduler instance runs a job now ---------------------------------


@dataclass(frozen=True)
class Lease:
    job: str
    holder: str
    acquired_at: datetime
    expires_at: datetime


def get_lease(conn: Connection, job: str) -> Lease | None:
    row = conn.execute(select(job_leases).where(job_leases.c.job == job)).one_or_none()
    if row is None:
        return None
    return Lease(row.job, row.holder, row.acquired_at, row.expires_at)


def take_lease(
    conn: Connection,
    job: str,
    holder: str,
    *,
    ttl: timedelta,
    holder_dead: Callable[[str], bool],
    min_gap: timedelta | None = None,
) -> Lease | None:
    """Take the lease of ``job`` for ``holder`` (commits); None when another holds it.

    Free: no row, an expired or released lease, or a holder known dead. With
    ``min_gap``, a lease taken less than that long ago is not taken again (the
    other instance already ran this occurrence of the job). Compare-and-set:
    of two instances trying at once, one wins.
    """
    stamp = now()
    current = get_lease(conn, job)
    conn.commit()
    if current is None:
        try:
            conn.execute(
                insert(job_leases).values(
                    job=job, holder=holder, acquired_at=stamp, expires_at=stamp + ttl
                )
            )
            conn.commit()
            return Lease(job, holder, stamp, stamp + ttl)
        except IntegrityError:
            conn.rollback()
            current = get_lease(conn, job)
            conn.commit()
            if current is None:  # pragma: no cover - inserted then released meanwhile
                return None
    if current.expires_at > stamp and not holder_dead(current.holder):
        return None
    if min_gap is not None and current.acquired_at > stamp - min_gap:
        return None
    result = conn.execute(
        update(job_leases)
        .where(
            job_leases.c.job == job,
            job_leases.c.holder == current.holder,
            job_leases.c.acquired_at == current.acquired_at,
        )
        .values(holder=holder, acquired_at=stamp, expires_at=stamp + ttl)
    )
    conn.commit()
    return Lease(job, holder, stamp, stamp + ttl) if result.rowcount == 1 else None


def renew_lease(conn: Connection, job: str, holder: str, *, ttl: timedelta) -> bool:
    """Push the expiry of a lease we hold (commits); False when it was taken from us."""
    result = conn.execute(
        update(job_leases)
        .where(job_leases.c.job == job, job_leases.c.holder == holder)
        .values(expires_at=now() + ttl)
    )
    conn.commit()
    return result.rowcount == 1


def release_lease(conn: Connection, job: str, holder: str) -> None:
    """Let the lease go (its row stays: when it was taken is kept for ``min_gap``)."""
    conn.execute(
        update(job_leases)
        .where(job_leases.c.job == job, job_leases.c.holder == holder)
        .values(expires_at=now())
    )


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


def issues_with_open_deliveries(conn: Connection) -> dict[int, list[tuple[str, datetime]]]:
    """Issue number -> (claim, last change) of its delivery rows left ``sending``."""
    rows = conn.execute(
        select(issues.c.number, deliveries.c.claimed_by, deliveries.c.updated_at)
        .join(issues, issues.c.id == deliveries.c.issue_id)
        .where(deliveries.c.status == "sending")
    )
    out: dict[int, list[tuple[str, datetime]]] = {}
    for number, claim, updated in rows:
        out.setdefault(int(number), []).append((claim or "", updated))
    return out


# -- the scheduler's job store -----------------------------------------------------


def job_store(store: Store) -> Any:
    """An APScheduler SQLAlchemyJobStore on the project's database (engine shared with Store)."""
    store.ensure_schema()
    jobstore = SQLAlchemyJobStore(engine=store.engine, tablename=JOBSTORE_TABLE)
    # APScheduler creates its table when it starts, check-then-create: two schedulers
    # starting at once on a fresh database both try. Create it first, under the lock.
    with store.schema_lock() as conn:
        jobstore.jobs_t.create(conn, checkfirst=True)
    return jobstore
