"""The tables, as SQLAlchemy Core metadata.

This is the current model that queries are written against. The database is
created and changed only by the migrations in ``migrations/versions``; a test
checks that the migrated database and this module agree.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware datetime, stored as UTC on every backend.

    SQLite has no time zones: values are stored naive in UTC and come back
    aware. Naive datetimes are refused so that no local time slips in.
    """

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store; use an aware datetime")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        moment: datetime = (
            datetime.fromisoformat(value)  # pragma: no cover - SQLite without type info
            if isinstance(value, str)
            else value
        )
        if moment.tzinfo is None:
            return moment.replace(tzinfo=UTC)
        return moment.astimezone(UTC)


def now() -> datetime:
    """The store's clock: aware UTC."""
    return datetime.now(UTC)


# Sources: state kept per feed of feeds.yaml (keyed by name).
sources = Table(
    "sources",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(200), nullable=False, unique=True),
    Column("config_url", Text, nullable=False),
    Column("url", Text, nullable=False),
    Column("etag", Text),
    Column("last_modified", Text),
    Column("body_hash", String(64)),
    Column("status", String(20), nullable=False, default="new"),
    Column("last_error", Text),
    Column("failures", Integer, nullable=False, default=0),
    Column("next_attempt_at", UTCDateTime),
    Column("last_fetched_at", UTCDateTime),
    Column("last_success_at", UTCDateTime),
    Column("entries_seen", Integer, nullable=False, default=0),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    # What the last fetch answered (HTTP status, Content-Type, address after
    # redirects) and the newest entry date the feed held: for `feeds check`.
    Column("last_status", Integer),
    Column("last_content_type", String(200)),
    Column("last_url", Text),
    Column("newest_entry_at", UTCDateTime),
)

# Newsletter issues: a draft, then a published, frozen snapshot.
issues = Table(
    "issues",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("number", Integer, unique=True),
    Column("title", Text, nullable=False),
    Column("intro_md", Text, nullable=False, default=""),
    Column("status", String(20), nullable=False, default="draft"),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("published_at", UTCDateTime),
    Column("snapshot", JSON),
    Column("version", Integer, nullable=False, default=1),
)

# Items: one per story seen (or added by hand); staff edits kept beside the original.
items = Table(
    "items",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("source_id", Integer, ForeignKey("sources.id", ondelete="SET NULL")),
    Column("guid", Text),
    Column("url", Text, nullable=False, unique=True),
    Column("link", Text, nullable=False),
    Column("title", Text, nullable=False),
    Column("summary_html", Text, nullable=False, default=""),
    Column("excerpt", Text, nullable=False, default=""),
    Column("outlet", Text),
    Column("language", String(20)),
    Column("published_at", UTCDateTime, nullable=False),
    Column("date_is_fallback", Boolean, nullable=False, default=False),
    Column("first_seen_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("tags", JSON, nullable=False, default=list),
    Column("territories", JSON, nullable=False, default=list),
    Column("score", Integer, nullable=False, default=0),
    Column("status", String(20), nullable=False, default="new"),
    Column("section", String(100)),
    Column("position", Float),
    Column("reject_reason", Text),
    Column("title_edited", Text),
    Column("summary_edited", Text),
    Column("duplicate_of", Integer, ForeignKey("items.id", ondelete="SET NULL")),
    Column("content_hash", String(64), nullable=False, default=""),
    Column("issue_id", Integer, ForeignKey("issues.id", ondelete="SET NULL")),
    Column("origin", String(20), nullable=False, default="feed"),
    Column("search_text", Text, nullable=False, default=""),
    Column("version", Integer, nullable=False, default=1),
    # Contrat de ville classification (generation, region, carriers, event,
    # event_date) or NULL when the item is not about a contrat de ville;
    # contract_source says who set it: "auto" (the classifier) or "staff".
    Column("contract", JSON),
    Column("contract_source", String(10)),
    # The author's name when the feed gives one (shown with the item in the archive).
    Column("author", Text),
    UniqueConstraint("source_id", "guid"),
    Index(None, "status", "published_at"),
    Index(None, "duplicate_of"),
    Index(None, "first_seen_at"),
)
# Lists and their totals (status, not another outlet, newest first) read this
# index alone; the outlet filter reads the second one, whose leading column also
# gives the distinct outlet names without a scan of the items (revision 0011).
Index("ix_items_list", items.c.status, items.c.duplicate_of, items.c.published_at)
Index(
    "ix_items_outlet_list",
    items.c.outlet,
    items.c.status,
    items.c.duplicate_of,
    items.c.published_at,
)
# The tracker reads classified items only (partial index, no scan of the others).
Index(
    "ix_items_contract_classified",
    items.c.id,
    sqlite_where=items.c.contract.isnot(None),
    postgresql_where=items.c.contract.isnot(None),
)

# One row per territory of an item (items.territories, a JSON list), with a copy of
# the item's status, duplicate_of and published_at, so that a territory filter and
# its total read one index range instead of every item's JSON. Filled and kept in
# step by triggers on items (revision 0011), whichever code writes the item.
item_territories = Table(
    "item_territories",
    metadata,
    Column("item_id", Integer, ForeignKey("items.id", ondelete="CASCADE"), primary_key=True),
    Column("territory", Text, primary_key=True),
    Column("status", String(20), nullable=False),
    Column("duplicate_of", Integer),
    Column("published_at", UTCDateTime, nullable=False),
    Index(
        "ix_item_territories_list",
        "territory",
        "status",
        "duplicate_of",
        "published_at",
        "item_id",
    ),
)

# How many items have each status, leads (not another outlet of a story) apart:
# rows of +n / -n added by triggers on items and folded together every 1,000
# rows (revision 0011); a total by status is the sum of a few rows.
item_totals = Table(
    "item_totals",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("status", String(20), nullable=False),
    Column("is_lead", Boolean, nullable=False),
    Column("n", Integer, nullable=False),
)

# Staff decisions on the status of a contrat de ville (newest per SIREN in force;
# status NULL: cleared, the classifier's evidence speaks again).
contract_decisions = Table(
    "contract_decisions",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("siren", String(9), nullable=False),
    Column("status", String(20)),
    Column("decided_on", Date),
    Column("item_id", Integer, ForeignKey("items.id", ondelete="SET NULL")),
    Column("note", Text),
    Column("actor", Text, nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Index(None, "siren", "at"),
)

# QPV imported from ANCT's national file, attributed to a contract by SIREN.
contract_qpv = Table(
    "contract_qpv",
    metadata,
    Column("code", String(12), primary_key=True),
    Column("name", Text, nullable=False),
    Column("siren", String(9), nullable=False),
    Column("department", String(3), nullable=False),
    Column("communes", JSON, nullable=False),
    Column("imported_at", UTCDateTime, nullable=False),
    Index(None, "siren"),
)

# Title fingerprints for near-duplicate detection (looked up by key, never scanned).
item_keys = Table(
    "item_keys",
    metadata,
    Column("key", String(32), primary_key=True),
    Column("item_id", Integer, ForeignKey("items.id", ondelete="CASCADE"), primary_key=True),
    Column("seen_at", UTCDateTime, nullable=False),
    Index(None, "item_id"),
)

subscribers = Table(
    "subscribers",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("email", Text, nullable=False),
    Column("email_key", Text, nullable=False, unique=True),
    Column("name", Text),
    Column("status", String(20), nullable=False, default="pending"),
    Column("consent_at", UTCDateTime),
    Column("consent_method", String(20)),
    Column("consent_detail", Text),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("confirmed_at", UTCDateTime),
    Column("unsubscribed_at", UTCDateTime),
    Column("last_error", Text),
    Index(None, "status"),
)

# One row per (issue, subscriber): what makes sending resumable and never double.
deliveries = Table(
    "deliveries",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("issue_id", Integer, ForeignKey("issues.id", ondelete="CASCADE"), nullable=False),
    Column("subscriber_id", Integer, ForeignKey("subscribers.id", ondelete="SET NULL")),
    Column("email", Text),
    Column("status", String(20), nullable=False, default="queued"),
    Column("attempts", Integer, nullable=False, default=0),
    Column("last_error", Text),
    Column("message_id", Text),
    # "host/pid/run" of the send run working on the row (status sending); see docs/delivery.md.
    Column("claimed_by", Text),
    Column("queued_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("sent_at", UTCDateTime),
    # A queued row deferred after a temporary (4xx) failure is not claimed before this time.
    Column("not_before", UTCDateTime),
    UniqueConstraint("issue_id", "subscriber_id"),
    Index(None, "issue_id", "status"),
)

# The audit trail: who changed what, when (details hold before/after).
events = Table(
    "events",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("at", UTCDateTime, nullable=False),
    Column("actor", Text, nullable=False),
    Column("action", String(50), nullable=False),
    Column("item_id", Integer),
    Column("issue_id", Integer),
    Column("subscriber_id", Integer),
    Column("details", JSON, nullable=False, default=dict),
    Index(None, "item_id"),
    Index(None, "at"),
)

# The subscription form's requests, drained by a worker that sends the confirmation
# emails with retries (docs/delivery.md, "The sign-up queue").
confirmation_queue = Table(
    "confirmation_queue",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("email", Text),  # cleared once the request is done with
    Column("email_key", Text),
    Column("name", Text),
    Column("throttled", Boolean, nullable=False, default=False),
    Column("status", String(20), nullable=False, default="new"),
    Column("subscriber_id", Integer, ForeignKey("subscribers.id", ondelete="CASCADE")),
    Column("attempts", Integer, nullable=False, default=0),
    Column("requested_at", UTCDateTime, nullable=False),
    Column("next_attempt_at", UTCDateTime, nullable=False),
    Column("claimed_by", Text),
    Column("claimed_at", UTCDateTime),
    Column("sent_at", UTCDateTime),
    Column("last_error", Text),
    Index(None, "status", "next_attempt_at"),
)

# The consent history of each subscriber: appended, never rewritten.
consent_events = Table(
    "consent_events",
    metadata,
    Column("id", Integer, primary_key=True),
    Column(
        "subscriber_id",
        Integer,
        ForeignKey("subscribers.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("at", UTCDateTime, nullable=False),
    Column("event", String(30), nullable=False),
    Column("method", String(20), nullable=False),
    Column("detail", Text),
    Column("actor", Text, nullable=False),
    Index(None, "subscriber_id"),
)

# Fixed-window hit counters of the web form (keys are hashed: no address in clear).
rate_limits = Table(
    "rate_limits",
    metadata,
    Column("key", String(80), primary_key=True),
    Column("window_start", UTCDateTime, primary_key=True),
    Column("hits", Integer, nullable=False),
)

# Every scheduled or manual job run with its outcome.
job_runs = Table(
    "job_runs",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("job", String(50), nullable=False),
    Column("started_at", UTCDateTime, nullable=False),
    Column("finished_at", UTCDateTime),
    Column("outcome", String(20), nullable=False, default="running"),
    Column("summary", JSON, nullable=False, default=dict),
    Column("error", Text),
    Index(None, "job", "started_at"),
)

# Which scheduler instance runs a job now: a lease renewed while the job runs,
# taken over by another instance once it expires (see docs/scheduling.md).
job_leases = Table(
    "job_leases",
    metadata,
    Column("job", String(50), primary_key=True),
    Column("holder", Text, nullable=False),
    Column("acquired_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
)

# The agenda: upcoming events from calendars (iCalendar sources), detected in
# items (proposed until staff accept them) and added by staff.
agenda_events = Table(
    "agenda_events",
    metadata,
    Column("id", Integer, primary_key=True),
    # Stable identity: the calendar's UID (plus RECURRENCE-ID), or one we make.
    Column("uid", Text, nullable=False, unique=True),
    Column("origin", String(10), nullable=False),  # ical | item | staff
    Column("status", String(12), nullable=False),  # proposed | confirmed | dismissed | cancelled
    Column("source_id", Integer, ForeignKey("sources.id", ondelete="SET NULL")),
    Column("item_id", Integer, ForeignKey("items.id", ondelete="SET NULL")),
    Column("title", Text, nullable=False),
    Column("description", Text, nullable=False, default=""),
    Column("starts_at", UTCDateTime, nullable=False),
    Column("ends_at", UTCDateTime),
    Column("all_day", Boolean, nullable=False, default=False),
    Column("place", Text),
    Column("online", Boolean, nullable=False, default=False),
    Column("url", Text),
    Column("territory", Text),
    Column("sequence", Integer, nullable=False, default=0),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("version", Integer, nullable=False, default=1),
    Index(None, "status", "starts_at"),
    Index(None, "item_id"),
    Index(None, "source_id"),
)
