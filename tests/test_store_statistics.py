"""A large collect refreshes the planner's statistics (docs/curation.md, *Lists at scale*).

A freshly loaded PostgreSQL table is planned as if it held a handful of rows
until autovacuum analyses it; lists and searches then take seconds.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from sqlalchemy import text

import pressreview.collect as collect_module
from pressreview.collect import collect


def _feed(n: int) -> str:
    start = datetime(2026, 11, 2, 8, tzinfo=UTC)
    items = "".join(
        f"<item><title>Quartier {i} : un projet de renouvellement urbain numéro {i}</title>"
        f"<link>https://journal.example.fr/articles/{i}</link><guid>g-{i}</guid>"
        f"<pubDate>{format_datetime(start + timedelta(minutes=i))}</pubDate></item>"
        for i in range(n)
    )
    return (
        f'<?xml version="1.0"?><rss version="2.0"><channel><title>J</title>{items}</channel></rss>'
    )


def _analysed(conn: Any, postgres: bool) -> bool:
    if postgres:
        row = conn.execute(
            text("SELECT last_analyze FROM pg_stat_user_tables WHERE relname = 'items'")
        ).one()
        return row[0] is not None
    stat = conn.execute(
        text("SELECT count(*) FROM sqlite_master WHERE name = 'sqlite_stat1'")
    ).scalar_one()
    return bool(stat) and bool(
        conn.execute(text("SELECT count(*) FROM sqlite_stat1 WHERE tbl = 'items'")).scalar_one()
    )


@pytest.mark.parametrize(("threshold", "expected"), [(40, True), (1_000, False)])
def test_a_large_collect_analyses_the_item_tables(
    httpserver: HTTPServer,
    make_config: Any,
    store_url: str,
    store_for: Any,
    monkeypatch: pytest.MonkeyPatch,
    threshold: int,
    expected: bool,
) -> None:
    httpserver.expect_request("/j.xml").respond_with_data(
        _feed(60), content_type="application/rss+xml"
    )
    monkeypatch.setattr(collect_module, "ANALYZE_AFTER", threshold)
    config = make_config(
        database_url=store_url, feeds=[{"name": "J", "url": httpserver.url_for("/j.xml")}]
    )
    store = store_for(config)
    postgres = not store.is_sqlite
    report = collect(config, store)
    assert report.total("new") == 60
    with store.connect() as conn:
        assert _analysed(conn, postgres) is expected


def test_the_collect_writer_checkpoints_its_log_when_the_run_ends(
    httpserver: HTTPServer,
    make_config: Any,
    tmp_path: Any,
    store_for: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The writer lets SQLite's write-ahead log grow (fewer copies of the same
    pages) and keeps statement journals in memory while it writes, and copies
    the log into the database when it is done."""
    from pressreview.store import collect as q

    settings: list[int] = []
    begin, end = q.begin_bulk_writes, q.end_bulk_writes

    def spy(conn: Any) -> None:
        begin(conn)
        settings.append(int(conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar_one()))
        # Statement journals in memory (2), not in temporary files.
        settings.append(int(conn.exec_driver_sql("PRAGMA temp_store").scalar_one()))
        conn.commit()

    def end_spy(conn: Any) -> None:
        end(conn)
        settings.append(int(conn.exec_driver_sql("PRAGMA temp_store").scalar_one()))
        conn.commit()

    monkeypatch.setattr(q, "begin_bulk_writes", spy)
    monkeypatch.setattr(q, "end_bulk_writes", end_spy)
    httpserver.expect_request("/j.xml").respond_with_data(
        _feed(300), content_type="application/rss+xml"
    )
    db = tmp_path / "store.db"
    config = make_config(
        database_url=f"sqlite:///{db}", feeds=[{"name": "J", "url": httpserver.url_for("/j.xml")}]
    )
    store = store_for(config)
    store.ensure_schema()
    import sqlite3

    # Another process has the database open (a web server): the log is not
    # copied and removed when the run's last connection closes.
    other = sqlite3.connect(db)
    try:
        other.execute("SELECT count(*) FROM items").fetchone()
        assert collect(config, store).total("new") == 300
        assert settings == [q.BULK_WAL_PAGES, 2, 0]
        # What the log held is in the database file already.
        pages = other.execute("PRAGMA page_count").fetchone()[0]
        page_size = other.execute("PRAGMA page_size").fetchone()[0]
        assert db.stat().st_size == pages * page_size
        assert (tmp_path / "store.db-wal").stat().st_size > 0
    finally:
        other.close()
