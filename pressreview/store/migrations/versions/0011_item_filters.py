"""Item lists at scale: indexes for totals and outlets, the item_territories table.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01

``item_territories`` holds one row per territory of an item, with a copy of
the item's status, duplicate_of and published_at: a territory filter and its
total read one index range instead of the JSON of every item. Triggers on
``items`` keep it in step with every insert and update (whichever code writes),
a foreign key with ON DELETE CASCADE with deletes; existing items are copied in.
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
SQLITE_DROP = [
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
POSTGRESQL_DROP = [
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


def upgrade() -> None:
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
        ["territory", "status", "duplicate_of", "published_at"],
    )
    op.create_index("ix_items_list", "items", ["status", "duplicate_of", "published_at"])
    op.create_index(
        "ix_items_outlet_list", "items", ["outlet", "status", "duplicate_of", "published_at"]
    )
    sqlite = op.get_bind().dialect.name == "sqlite"
    op.execute(SQLITE_BACKFILL if sqlite else POSTGRESQL_BACKFILL)
    for statement in SQLITE_TRIGGERS if sqlite else POSTGRESQL_TRIGGERS:
        op.execute(statement)


def downgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    for statement in SQLITE_DROP if sqlite else POSTGRESQL_DROP:
        op.execute(statement)
    op.drop_index("ix_items_outlet_list", table_name="items")
    op.drop_index("ix_items_list", table_name="items")
    op.drop_index("ix_item_territories_list", table_name="item_territories")
    op.drop_table("item_territories")
