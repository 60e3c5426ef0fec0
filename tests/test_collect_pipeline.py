"""The collection pipeline: parse worker processes, lots written together."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from fixtures_collect import FAST_COLLECT, rss, snapshot
from pytest_httpserver import HTTPServer

from pressreview.collect import collect
from pressreview.store import Store

VOLATILE = {"id", "source_id", "duplicate_of", "first_seen_at", "updated_at", "published_at"}


def _feeds(httpserver: HTTPServer, count: int) -> list[dict[str, str]]:
    feeds = []
    for i in range(count):
        entries = [
            (f"g{i}-{j}", f"https://site{i}.example.fr/{j}?utm_source=x", title)
            for j, title in enumerate(
                [
                    f"Contrat de ville numéro {i} signé à Creil",
                    f"Quartiers 2030 : la ville {i} présente son plan",
                    "Le même titre repris par toutes les rédactions de la région",
                ]
            )
        ]
        httpserver.expect_request(f"/f{i}.xml").respond_with_data(
            rss(f"Journal {i}", entries), content_type="application/rss+xml"
        )
        feeds.append({"name": f"Journal {i}", "url": httpserver.url_for(f"/f{i}.xml")})
    return feeds


def test_worker_processes_store_what_threads_store(
    httpserver: HTTPServer, make_config: Callable[..., Any], tmp_path: Path,
    store_for: Callable[[Any], Store],
) -> None:  # fmt: skip
    feeds = _feeds(httpserver, 6)
    results = []
    for workers in (2, 0):
        config = make_config(
            database_url=f"sqlite:///{tmp_path / f'w{workers}.db'}",
            feeds=feeds,
            collect=FAST_COLLECT,
        )
        store = store_for(config)
        report = collect(config, store, workers=workers)
        assert [s.status for s in report.sources] == ["ok"] * 6
        assert report.total("new") == 18 and report.total("duplicates") == 5
        rows = snapshot(store)
        results.append(
            sorted(
                (tuple((k, str(v)) for k, v in sorted(r.items()) if k not in VOLATILE))
                for r in rows
            )
        )
        # Other outlets of the repeated story all point to one lead item.
        leads = {r["duplicate_of"] for r in rows if r["title"].startswith("Le même titre")}
        assert len(leads - {None}) == 1
    assert results[0] == results[1]


def test_many_sources_in_one_run_are_all_recorded(
    httpserver: HTTPServer, make_config: Callable[..., Any], store_for: Callable[[Any], Store]
) -> None:
    feeds = _feeds(httpserver, 40)  # above the pool threshold: worker processes, lots
    config = make_config(feeds=feeds, collect={**FAST_COLLECT, "concurrency": 8, "per_host": 8})
    store = store_for(config)
    seen: list[str] = []
    report = collect(config, store, progress=lambda rep: seen.append(rep.name))
    assert sorted(seen) == sorted(f["name"] for f in feeds)
    assert [s.name for s in report.sources] == [f["name"] for f in feeds]  # config order
    assert report.total("new") == 120 and not report.failed
    again = collect(config, store)
    assert {s.status for s in again.sources} == {"unchanged"}
