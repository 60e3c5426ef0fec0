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
