"""The store: migrations on SQLite and PostgreSQL, schema in step with the model."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import insert, select, text

from pressreview.errors import StoreError
from pressreview.store import Store, normalize_url
from pressreview.store.schema import metadata, now, sources


def test_migrations_match_the_model(store_url: str) -> None:
    store = Store(store_url)
    try:
        before, after = store.upgrade()
        assert before is None and after == store.head_revision()
        with store.engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), metadata)
        # Only the full-text search objects are outside the model.
        search_objects = ("items_fts", "ix_items_search")
        assert [d for d in diff if not any(n in str(d) for n in search_objects)] == []
    finally:
        store.close()


def test_upgrade_is_idempotent_and_keeps_rows(store_url: str) -> None:
    store = Store(store_url)
    try:
        store.upgrade()
        stamp = now()
        with store.begin() as conn:
            conn.execute(
                insert(sources).values(
                    name="A",
                    config_url="https://a.fr/",
                    url="https://a.fr/",
                    status="ok",
                    failures=0,
                    entries_seen=0,
                    created_at=stamp,
                    updated_at=stamp,
                )
            )
        assert store.upgrade()[0] == store.upgrade()[1]
        with store.connect() as conn:
            row = conn.execute(select(sources)).mappings().one()
        assert row.name == "A"
        assert row.created_at == stamp.replace(microsecond=row.created_at.microsecond)
        assert row.created_at.tzinfo is not None
    finally:
        store.close()


def test_store_is_migrated_on_first_use(sqlite_url: str) -> None:
    store = Store(sqlite_url)
    try:
        with store.connect() as conn:
            assert conn.execute(select(sources)).all() == []
        assert store.current_revision() == store.head_revision()
    finally:
        store.close()


def test_refuses_an_old_schema_without_auto_upgrade(sqlite_url: str) -> None:
    store = Store(sqlite_url, auto_upgrade=False)
    try:
        with pytest.raises(StoreError, match="run `pressreview db upgrade`"), store.connect():
            pass
    finally:
        store.close()


def test_sqlite_uses_wal_and_foreign_keys(sqlite_url: str) -> None:
    store = Store(sqlite_url)
    try:
        with store.connect() as conn:
            assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
            assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
            assert conn.execute(text("PRAGMA busy_timeout")).scalar() >= 1000
    finally:
        store.close()


def test_naive_datetimes_are_refused(sqlite_url: str) -> None:
    from datetime import datetime

    store = Store(sqlite_url)
    try:
        with pytest.raises(Exception, match="naive datetime"), store.begin() as conn:
            conn.execute(
                insert(sources).values(
                    name="A",
                    config_url="x",
                    url="x",
                    status="ok",
                    failures=0,
                    entries_seen=0,
                    created_at=datetime(2024, 1, 1),
                    updated_at=now(),
                )
            )
    finally:
        store.close()


def test_url_normalization(tmp_path: Path) -> None:
    assert normalize_url("postgres://u@h/db").startswith("postgresql+psycopg://u@h/db")
    assert normalize_url("sqlite:///rel.db", tmp_path) == f"sqlite:///{tmp_path / 'rel.db'}"
    with pytest.raises(StoreError, match="cannot parse"):
        normalize_url("not a url")
    with pytest.raises(StoreError, match="unsupported database"):
        Store("mysql://u@h/db")


def test_unreachable_database_is_one_line(cli, make_config) -> None:  # type: ignore[no-untyped-def]
    config = make_config(database_url="postgresql://nobody@127.0.0.1:1/none")
    result = cli(config, "db", "upgrade")
    assert result.exit_code == 1
    assert "cannot open the database" in result.output
    assert "Traceback" not in result.output


def test_db_commands(cli, make_config) -> None:  # type: ignore[no-untyped-def]
    config = make_config()
    status = cli(config, "db", "status")
    assert "schema none" in status.output and "run `pressreview db upgrade`" in status.output
    first = cli(config, "db", "upgrade")
    assert first.exit_code == 0 and "upgraded from empty" in first.output
    again = cli(config, "db", "upgrade")
    assert "already at schema" in again.output
    assert "up to date" in cli(config, "db", "status").output
