"""Initial schema.

Revision ID: 0001
Revises:
Create Date: 2026-11-22

Provisional while the first release is prepared: creates the tables of
schema.py. Frozen into explicit operations before the first release.
"""

from __future__ import annotations

from alembic import op

from pressreview.store.schema import metadata

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

SEARCH_SQLITE = [
    "CREATE VIRTUAL TABLE items_fts USING fts5(search_text, content='items', "
    "content_rowid='id', tokenize='unicode61 remove_diacritics 2')",
    "CREATE TRIGGER items_fts_ai AFTER INSERT ON items BEGIN "
    "INSERT INTO items_fts(rowid, search_text) VALUES (new.id, new.search_text); END",
    "CREATE TRIGGER items_fts_ad AFTER DELETE ON items BEGIN "
    "INSERT INTO items_fts(items_fts, rowid, search_text) "
    "VALUES ('delete', old.id, old.search_text); END",
    "CREATE TRIGGER items_fts_au AFTER UPDATE OF search_text ON items BEGIN "
    "INSERT INTO items_fts(items_fts, rowid, search_text) "
    "VALUES ('delete', old.id, old.search_text); "
    "INSERT INTO items_fts(rowid, search_text) VALUES (new.id, new.search_text); END",
]
SEARCH_POSTGRESQL = [
    "CREATE INDEX ix_items_search ON items USING gin (to_tsvector('simple', search_text))",
]


def upgrade() -> None:
    bind = op.get_bind()
    metadata.create_all(bind)
    for statement in SEARCH_SQLITE if bind.dialect.name == "sqlite" else SEARCH_POSTGRESQL:
        op.execute(statement)


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        op.execute("DROP TABLE IF EXISTS items_fts")
    metadata.drop_all(bind)
