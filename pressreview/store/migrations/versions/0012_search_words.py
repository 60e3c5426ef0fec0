"""Full-text search at scale on PostgreSQL: the words of the index, for exact terms.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-01

A search word is a prefix (``contrat`` also finds ``contrats``). Given as a
prefix (``'contrat':*``), PostgreSQL's GIN index reads every key beginning
with it and loads their whole lists of items before intersecting them, a
cost that follows how frequent the words are. ``items_fts_words`` holds every
word of the index (on PostgreSQL only; SQLite's FTS5 index is left as it is),
so that a search word is turned into the few indexed words it begins
(``'contrat' | 'contrats'``), which the index intersects without reading them
whole. A trigger on ``items`` adds the words of every new or changed
``search_text``; words are never removed (one that no item holds any more
only adds a term that matches nothing). It only inserts, without a unique
key: two writers never wait for each other on a word (a word both add
is there twice, which the search reads as one).

The GIN index ``ix_items_search`` indexes, beside the words, each item's
status (``_new``, ``_selected``...) and whether it leads its story (``_lead``)
or is another outlet of it (``_other``): a search then reads the rows of the
items in the list's range only (no search word begins with ``_``).
"""

from __future__ import annotations

from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

# The words of an item, as the GIN index ix_items_search finds them.
_WORDS = "unnest(tsvector_to_array(to_tsvector('simple', {text})))"
_INDEXED = (
    "(to_tsvector('simple'::regconfig, search_text) || array_to_tsvector(ARRAY["
    "'_'::text || status::text, "
    "CASE WHEN duplicate_of IS NULL THEN '_lead'::text ELSE '_other'::text END]))"
)

POSTGRESQL_UP = [
    # Byte order: a prefix is one range of the index whatever the database's collation.
    'CREATE TABLE items_fts_words (word text COLLATE "C" NOT NULL)',
    "INSERT INTO items_fts_words (word) "
    f"SELECT DISTINCT w FROM items, {_WORDS.format(text='items.search_text')} AS w",
    "CREATE INDEX items_fts_words_word ON items_fts_words (word)",
    f"""
CREATE FUNCTION items_fts_words_add() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' OR NEW.search_text IS DISTINCT FROM OLD.search_text THEN
        INSERT INTO items_fts_words (word)
        SELECT w FROM {_WORDS.format(text="NEW.search_text")} AS w
        WHERE NOT EXISTS (SELECT 1 FROM items_fts_words AS v WHERE v.word = w);
    END IF;
    RETURN NULL;
END
$$
""",
    "CREATE TRIGGER items_fts_words_add AFTER INSERT OR UPDATE OF search_text ON items "
    "FOR EACH ROW EXECUTE FUNCTION items_fts_words_add()",
    "DROP INDEX IF EXISTS ix_items_search",
    f"CREATE INDEX ix_items_search ON items USING gin ({_INDEXED})",
    "ANALYZE items_fts_words",
    # The statistics of the new index's words, for a store that holds items already
    # (an empty one is analysed when a collect has filled it).
    "DO $$ BEGIN IF EXISTS (SELECT 1 FROM items) THEN ANALYZE items; END IF; END $$",
]
POSTGRESQL_DOWN = [
    "DROP INDEX IF EXISTS ix_items_search",
    "CREATE INDEX ix_items_search ON items USING gin (to_tsvector('simple', search_text))",
    "DROP TRIGGER IF EXISTS items_fts_words_add ON items",
    "DROP FUNCTION IF EXISTS items_fts_words_add()",
    "DROP TABLE IF EXISTS items_fts_words",
]


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for statement in POSTGRESQL_UP:
            op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for statement in POSTGRESQL_DOWN:
            op.execute(statement)
