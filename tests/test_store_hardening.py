"""Old, damaged, locked and missing databases: repaired, or one clear line and nothing changed."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from click.testing import Result
from sqlalchemy import create_engine, inspect, text

from pressreview.config import Config
from pressreview.store import Store, normalize_url
from pressreview.store import collect as q
from pressreview.store.schema import metadata


def _first_release_store(url: str) -> None:
    """What the first release's 0001 left: its tables without deliveries.claimed_by, at 0001.

    The frozen 0001 creates exactly the first release's schema plus that column
    (it was frozen from schema.py once the column had been added).
    """
    from alembic import command

    store = Store(url, auto_upgrade=False)
    try:
        with store.engine.begin() as conn:
            command.upgrade(store._alembic_config(conn), "0001")
            conn.execute(text("ALTER TABLE deliveries DROP COLUMN claimed_by"))
            columns = {c["name"] for c in inspect(conn).get_columns("deliveries")}
            assert "claimed_by" not in columns
        assert store.current_revision() == "0001"
    finally:
        store.close()


def _diff(url: str) -> list[Any]:
    engine = create_engine(normalize_url(url))
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(
                conn, opts={"compare_type": True, "include_name": _ours}
            )
            return list(compare_metadata(context, metadata))
    finally:
        engine.dispose()


def _ours(name: str | None, type_: str, parent: dict[str, str | None]) -> bool:
    # The full-text search objects are built by the migrations beside schema.py.
    return not (name or "").startswith(("items_fts", "alembic_version", "ix_items_search"))


def test_store_of_the_first_release_is_repaired_by_db_upgrade(
    store_url: str, make_config: Callable[..., Config], cli: Callable[..., Result]
) -> None:
    _first_release_store(store_url)
    assert _diff(store_url), "the first release's schema should differ from schema.py"
    config = make_config(database_url=store_url)
    result = cli(config, "db", "upgrade")
    assert result.exit_code == 0, result.output
    assert "upgraded from 0001 to schema" in result.output
    assert _diff(store_url) == []
    # And what crashed before now works: the delivery log reads claimed_by.
    status = cli(config, "send", "--dry-run", "1")
    assert "claimed_by" not in status.output


def test_migrations_and_schema_py_agree(store_url: str) -> None:
    """Fails whenever schema.py changes without a revision (or a revision without schema.py).

    Stricter than test_store's check: column types are compared too.
    """
    store = Store(store_url)
    try:
        store.upgrade()
    finally:
        store.close()
    assert _diff(store_url) == []


# -- damaged, locked, missing ----------------------------------------------------------------

COMMANDS = [
    ("items", "list"),
    ("collect",),
    ("issue", "list"),
    ("send", "--dry-run", "1"),
    ("db", "status"),
]


def _damaged(kind: str, path: Path) -> None:
    if kind == "random":
        path.write_bytes(os.urandom(40_000))
        return
    store = Store(f"sqlite:///{path}")
    store.upgrade()
    with store.engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    store.close()
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])


def _one_line(result: Result) -> str:
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    assert "Traceback" not in result.output
    return lines[0]


@pytest.mark.parametrize("kind", ["random", "truncated"])
@pytest.mark.parametrize("command", COMMANDS, ids=[" ".join(c) for c in COMMANDS])
def test_damaged_sqlite_file_is_one_line(
    kind: str, command: tuple[str, ...], tmp_path: Path, make_config: Callable[..., Config],
    cli: Callable[..., Result],
) -> None:  # fmt: skip
    path = tmp_path / "damaged.db"
    _damaged(kind, path)
    before = path.read_bytes()
    config = make_config(database_url=f"sqlite:///{path}", feeds=[
        {"name": "Flux", "url": "http://127.0.0.1:9/feed.xml"}])  # fmt: skip
    result = cli(config, *command)
    line = _one_line(result)
    assert result.exit_code == 1
    assert "is damaged or is not a pressreview database" in line
    assert "restore it from a backup" in line
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.glob("damaged.db*")) == ["damaged.db"]


LOCKER = """
import sqlite3, sys, time
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
time.sleep(60)
"""


@pytest.fixture
def one_item_store(tmp_path: Path) -> Iterator[tuple[str, int]]:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    store = Store(url)
    with store.begin() as conn:
        item = q.NewItem(
            guid="g", url="https://example.fr/a", link="https://example.fr/a",
            title="Creil signe son contrat de ville", summary_html="", excerpt="", outlet=None,
            language="fr", published_at=datetime.now(UTC) - timedelta(hours=1), tags=[],
            territories=[], score=1, relevant=True, section=None,
        )  # fmt: skip
        q.store_items(conn, None, [item], default_outlet="x", dedupe_window=timedelta(days=1),
                      threshold=0.6)  # fmt: skip
        (item_id,) = conn.execute(text("SELECT id FROM items")).scalars()
    store.close()
    yield url, int(item_id)


def test_database_locked_by_another_process_is_one_line_after_a_few_seconds(
    one_item_store: tuple[str, int], make_config: Callable[..., Config],
    cli: Callable[..., Result],
) -> None:  # fmt: skip
    url, item_id = one_item_store
    path = url.removeprefix("sqlite:///")
    locker = subprocess.Popen([sys.executable, "-c", LOCKER, path], stdout=subprocess.PIPE,
                              text=True)  # fmt: skip
    try:
        assert locker.stdout is not None and locker.stdout.readline().strip() == "locked"
        config = make_config(database_url=url)
        started = time.monotonic()
        result = cli(config, "items", "select", str(item_id))
        elapsed = time.monotonic() - started
    finally:
        locker.kill()
        locker.wait()
    line = _one_line(result)
    assert result.exit_code == 1
    assert "is locked by another process; retry, or see `pressreview db status`" in line
    assert elapsed < 15, elapsed
    # Nothing changed: the item is still new.
    store = Store(url)
    with store.connect() as conn:
        assert conn.execute(text("SELECT status FROM items")).scalar() == "new"
    store.close()


@pytest.mark.postgres
def test_db_status_against_a_missing_postgresql_database(
    make_config: Callable[..., Config], cli: Callable[..., Result]
) -> None:
    admin = os.environ.get("PRESSREVIEW_TEST_POSTGRES_URL")
    if not admin:
        pytest.skip("PostgreSQL: set PRESSREVIEW_TEST_POSTGRES_URL to run")
    missing = admin.rsplit("/", 1)[0] + "/pressreview_no_such_database"
    config = make_config(database_url=missing)
    for command in (("db", "status"), ("items", "list")):
        result = cli(config, *command)
        line = _one_line(result)
        assert result.exit_code == 1
        assert "does not exist on its server" in line and "createdb" in line
