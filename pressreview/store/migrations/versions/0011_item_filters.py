"""Item lists at scale: indexes for totals and outlets, the item_territories table.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01

``item_territories`` holds one row per territory of an item, with a copy of
the item's status, duplicate_of and published_at: a territory filter and its
total read one index range instead of the JSON of every item. Triggers on
``items`` keep it in step with every insert and update (whichever code writes),
a foreign key with ON DELETE CASCADE with deletes; existing items are copied in.

``item_totals`` holds the number of items by status and lead (not another
outlet of a story) as rows of changes: triggers on ``items`` add +1 / -1 rows
(inserts only: two writers never wait for each other nor deadlock on one
counter row), and every 1,000th row folds the rows before it into one per
status and lead (on PostgreSQL under a try-lock, so never waiting either).
A total by status is then the sum of a few rows.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

_COPY = "status, duplicate_of, published_at"

SQLITE_TRIGGERS = [
    "CREATE TRIGGER items_territories_ai AFTER INSERT ON items BEGIN "
    f"INSERT OR IGNORE INTO item_territories (item_id, territory, {_COPY}) "
    "SELECT new.id, value, new.status, new.duplicate_of, new.published_at "
    "FROM json_each(new.territories) WHERE type = 'text'; END",
    # A change of the list: its rows again.
    "CREATE TRIGGER items_territories_au AFTER UPDATE OF territories ON items BEGIN "
    "DELETE FROM item_territories WHERE item_id = new.id; "
    f"INSERT OR IGNORE INTO item_territories (item_id, territory, {_COPY}) "
    "SELECT new.id, value, new.status, new.duplicate_of, new.published_at "
    "FROM json_each(new.territories) WHERE type = 'text'; END",
    # A change of the copied columns (the list itself unchanged).
    "CREATE TRIGGER items_territories_au_copy "
    "AFTER UPDATE OF status, duplicate_of, published_at ON items "
    "WHEN new.status IS NOT old.status OR new.duplicate_of IS NOT old.duplicate_of "
    "OR new.published_at IS NOT old.published_at BEGIN "
    "UPDATE item_territories SET status = new.status, duplicate_of = new.duplicate_of, "
    "published_at = new.published_at WHERE item_id = new.id; END",
]
#: Every this many rows of item_totals, the rows before are folded together.
FOLD_EVERY = 1000
SQLITE_TOTALS = [
    "CREATE TRIGGER items_totals_ai AFTER INSERT ON items BEGIN "
    "INSERT INTO item_totals (status, is_lead, n) "
    "VALUES (new.status, new.duplicate_of IS NULL, 1); END",
    "CREATE TRIGGER items_totals_ad AFTER DELETE ON items BEGIN "
    "INSERT INTO item_totals (status, is_lead, n) "
    "VALUES (old.status, old.duplicate_of IS NULL, -1); END",
    "CREATE TRIGGER items_totals_au AFTER UPDATE OF status, duplicate_of ON items "
    "WHEN new.status IS NOT old.status "
    "OR (new.duplicate_of IS NULL) IS NOT (old.duplicate_of IS NULL) BEGIN "
    "INSERT INTO item_totals (status, is_lead, n) "
    "VALUES (old.status, old.duplicate_of IS NULL, -1), "
    "(new.status, new.duplicate_of IS NULL, 1); END",
    # SQLite has one writer at a time, and a trigger does not fire itself again.
    f"CREATE TRIGGER item_totals_fold AFTER INSERT ON item_totals "
    f"WHEN new.id % {FOLD_EVERY} = 0 BEGIN "
    "INSERT INTO item_totals (status, is_lead, n) "
    "SELECT status, is_lead, sum(n) FROM item_totals WHERE id <= new.id "
    "GROUP BY status, is_lead HAVING sum(n) <> 0; "
    "DELETE FROM item_totals WHERE id <= new.id; END",
]
SQLITE_DROP = [
    "DROP TRIGGER IF EXISTS items_totals_ai",
    "DROP TRIGGER IF EXISTS items_totals_ad",
    "DROP TRIGGER IF EXISTS items_totals_au",
    "DROP TRIGGER IF EXISTS item_totals_fold",
    "DROP TRIGGER IF EXISTS items_territories_ai",
    "DROP TRIGGER IF EXISTS items_territories_au",
    "DROP TRIGGER IF EXISTS items_territories_au_copy",
]

POSTGRESQL_TRIGGERS = [
    """
CREATE FUNCTION items_territories_sync() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' OR NEW.territories::text IS DISTINCT FROM OLD.territories::text THEN
        IF TG_OP = 'UPDATE' THEN
            DELETE FROM item_territories WHERE item_id = NEW.id;
        END IF;
        IF json_typeof(NEW.territories) = 'array' THEN
            INSERT INTO item_territories (item_id, territory, status, duplicate_of, published_at)
            SELECT DISTINCT NEW.id, t.value, NEW.status, NEW.duplicate_of, NEW.published_at
            FROM json_array_elements_text(NEW.territories) AS t(value)
            WHERE t.value IS NOT NULL;
        END IF;
    ELSIF NEW.status IS DISTINCT FROM OLD.status
        OR NEW.duplicate_of IS DISTINCT FROM OLD.duplicate_of
        OR NEW.published_at IS DISTINCT FROM OLD.published_at THEN
        UPDATE item_territories
        SET status = NEW.status, duplicate_of = NEW.duplicate_of,
            published_at = NEW.published_at
        WHERE item_id = NEW.id;
    END IF;
    RETURN NULL;
END
$$
""",
    "CREATE TRIGGER items_territories_sync AFTER INSERT OR UPDATE ON items "
    "FOR EACH ROW EXECUTE FUNCTION items_territories_sync()",
]
POSTGRESQL_TOTALS = [
    """
CREATE FUNCTION items_totals_sync() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        INSERT INTO item_totals (status, is_lead, n)
        VALUES (OLD.status, OLD.duplicate_of IS NULL, -1);
    ELSIF TG_OP = 'INSERT' THEN
        INSERT INTO item_totals (status, is_lead, n)
        VALUES (NEW.status, NEW.duplicate_of IS NULL, 1);
    ELSIF NEW.status IS DISTINCT FROM OLD.status
        OR (NEW.duplicate_of IS NULL) <> (OLD.duplicate_of IS NULL) THEN
        INSERT INTO item_totals (status, is_lead, n)
        VALUES (OLD.status, OLD.duplicate_of IS NULL, -1),
               (NEW.status, NEW.duplicate_of IS NULL, 1);
    END IF;
    RETURN NULL;
END
$$
""",
    "CREATE TRIGGER items_totals_sync AFTER INSERT OR UPDATE OR DELETE ON items "
    "FOR EACH ROW EXECUTE FUNCTION items_totals_sync()",
    # The rows this transaction sees are folded in one statement; rows of
    # transactions not committed yet stay as they are. One folder at a time
    # (a try-lock: the others skip), never from its own inserts (trigger depth).
    f"""
CREATE FUNCTION item_totals_fold() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF pg_trigger_depth() <= 2 AND pg_try_advisory_xact_lock({0x70727374}) THEN
        WITH folded AS (
            DELETE FROM item_totals WHERE id <= NEW.id RETURNING status, is_lead, n
        )
        INSERT INTO item_totals (status, is_lead, n)
        SELECT status, is_lead, sum(n) FROM folded
        GROUP BY status, is_lead HAVING sum(n) <> 0;
    END IF;
    RETURN NULL;
END
$$
""",
    "CREATE TRIGGER item_totals_fold AFTER INSERT ON item_totals FOR EACH ROW "
    f"WHEN (NEW.id % {FOLD_EVERY} = 0) EXECUTE FUNCTION item_totals_fold()",
]
POSTGRESQL_DROP = [
    "DROP TRIGGER IF EXISTS item_totals_fold ON item_totals",
    "DROP FUNCTION IF EXISTS item_totals_fold()",
    "DROP TRIGGER IF EXISTS items_totals_sync ON items",
    "DROP FUNCTION IF EXISTS items_totals_sync()",
    "DROP TRIGGER IF EXISTS items_territories_sync ON items",
    "DROP FUNCTION IF EXISTS items_territories_sync()",
]

SQLITE_BACKFILL = (
    f"INSERT OR IGNORE INTO item_territories (item_id, territory, {_COPY}) "
    "SELECT items.id, j.value, items.status, items.duplicate_of, items.published_at "
    "FROM items, json_each(items.territories) AS j WHERE j.type = 'text'"
)
POSTGRESQL_BACKFILL = (
    f"INSERT INTO item_territories (item_id, territory, {_COPY}) "
    "SELECT DISTINCT i.id, t.value, i.status, i.duplicate_of, i.published_at "
    "FROM items AS i CROSS JOIN LATERAL json_array_elements_text("
    "CASE WHEN json_typeof(i.territories) = 'array' THEN i.territories ELSE '[]'::json END"
    ") AS t(value) WHERE t.value IS NOT NULL"
)

TOTALS_BACKFILL = (
    "INSERT INTO item_totals (status, is_lead, n) "
    "SELECT status, duplicate_of IS NULL, count(*) FROM items GROUP BY status, duplicate_of IS NULL"
)


def upgrade() -> None:
    op.create_table(
        "item_totals",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("is_lead", sa.Boolean(), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_item_totals")),
    )
    op.create_table(
        "item_territories",
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.Column("territory", sa.Text(), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("duplicate_of", sa.Integer(), nullable=True),
        sa.Column("published_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["item_id"],
            ["items.id"],
            name=op.f("fk_item_territories_item_id_items"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("item_id", "territory", name=op.f("pk_item_territories")),
    )
    op.create_index(
        "ix_item_territories_list",
        "item_territories",
        ["territory", "status", "duplicate_of", "published_at", "item_id"],
    )
    op.create_index("ix_items_list", "items", ["status", "duplicate_of", "published_at"])
    op.create_index(
        "ix_items_outlet_list", "items", ["outlet", "status", "duplicate_of", "published_at"]
    )
    sqlite = op.get_bind().dialect.name == "sqlite"
    op.execute(SQLITE_BACKFILL if sqlite else POSTGRESQL_BACKFILL)
    op.execute(TOTALS_BACKFILL)
    for statement in (
        SQLITE_TRIGGERS + SQLITE_TOTALS if sqlite else POSTGRESQL_TRIGGERS + POSTGRESQL_TOTALS
    ):
        op.execute(statement)


def downgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    for statement in SQLITE_DROP if sqlite else POSTGRESQL_DROP:
        op.execute(statement)
    op.drop_index("ix_items_outlet_list", table_name="items")
    op.drop_index("ix_items_list", table_name="items")
    op.drop_index("ix_item_territories_list", table_name="item_territories")
    op.drop_table("item_territories")
    op.drop_table("item_totals")
