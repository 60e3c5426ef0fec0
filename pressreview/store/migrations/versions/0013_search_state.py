"""Full-text search at scale on SQLite: each item's status and lead in the FTS5 index.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-02

The FTS5 table ``items_fts`` gets a second column, ``state``: the item's
status (``new``, ``selected``...) and ``lead`` or ``other`` (another outlet
of a story). A search's total is then counted by FTS5 alone
(``search_text : (...) AND state : (new AND lead)``), where it walked the
index of statuses testing each item among the matches, or looked each match
up: for a common word at 600,000 items, 25 ms instead of about 90. Search
words are matched in ``search_text`` only (a column filter), so a search for
``new`` finds the word, not the status.

The index reads its content through the view ``items_fts_source`` (the
items' id, search text and state), so that ``rebuild`` and ``delete`` see
exactly what was indexed. It records in which column a word is, not where
(``detail=column``): a search is words, each a prefix, never a phrase, and
without the positions the two columns cost an insert less (SQLite alone,
50,000 collected items into an empty store, six runs of each alternated:
median 76 µs an item with the one column, 86 with the two, 96 with the
two and the positions). Triggers keep it in step with every insert,
delete, and change of the search text, the status or the lead. PostgreSQL
has had the same words in its GIN index since revision 0012: nothing
changes there.

The view depends on ``items``: a later revision that rebuilds ``items`` (a
batch copy-and-rename on SQLite) must drop the view first and create it again.
"""

from __future__ import annotations

from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

_STATE = "{t}.status || ' ' || CASE WHEN {t}.duplicate_of IS NULL THEN 'lead' ELSE 'other' END"
_NEW, _OLD = _STATE.format(t="new"), _STATE.format(t="old")
_TOKENIZE = "tokenize='unicode61 remove_diacritics 2'"

_DROP_TRIGGERS = [
    "DROP TRIGGER IF EXISTS items_fts_ai",
    "DROP TRIGGER IF EXISTS items_fts_ad",
    "DROP TRIGGER IF EXISTS items_fts_au",
]

SQLITE_UP = [
    *_DROP_TRIGGERS,
    "DROP TABLE IF EXISTS items_fts",
    "CREATE VIEW items_fts_source AS SELECT id, search_text, "
    f"{_STATE.format(t='items')} AS state FROM items",
    "CREATE VIRTUAL TABLE items_fts USING fts5(search_text, state, "
    f"content='items_fts_source', content_rowid='id', detail=column, {_TOKENIZE})",
    "INSERT INTO items_fts(items_fts) VALUES ('rebuild')",
    "CREATE TRIGGER items_fts_ai AFTER INSERT ON items BEGIN "
    f"INSERT INTO items_fts(rowid, search_text, state) VALUES (new.id, new.search_text, {_NEW}); "
    "END",
    "CREATE TRIGGER items_fts_ad AFTER DELETE ON items BEGIN "
    "INSERT INTO items_fts(items_fts, rowid, search_text, state) "
    f"VALUES ('delete', old.id, old.search_text, {_OLD}); END",
    "CREATE TRIGGER items_fts_au AFTER UPDATE OF search_text, status, duplicate_of ON items "
    "WHEN new.search_text IS NOT old.search_text OR new.status IS NOT old.status "
    "OR (new.duplicate_of IS NULL) IS NOT (old.duplicate_of IS NULL) BEGIN "
    "INSERT INTO items_fts(items_fts, rowid, search_text, state) "
    f"VALUES ('delete', old.id, old.search_text, {_OLD}); "
    f"INSERT INTO items_fts(rowid, search_text, state) VALUES (new.id, new.search_text, {_NEW}); "
    "END",
]

SQLITE_DOWN = [
    *_DROP_TRIGGERS,
    "DROP TABLE IF EXISTS items_fts",
    "DROP VIEW IF EXISTS items_fts_source",
    f"CREATE VIRTUAL TABLE items_fts USING fts5(search_text, content='items', "
    f"content_rowid='id', {_TOKENIZE})",
    "INSERT INTO items_fts(items_fts) VALUES ('rebuild')",
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


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for statement in SQLITE_UP:
            op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for statement in SQLITE_DOWN:
            op.execute(statement)
