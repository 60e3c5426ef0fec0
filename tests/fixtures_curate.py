"""Shared fixtures of the curation tests: a real store filled by a real collect.

The bundled demo feeds are served by the real test HTTP server and collected
with the project's own ``collect``; tests then curate what it stored.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from pressreview.collect import collect
from pressreview.config import Config
from pressreview.store import Store
from pressreview.store import items as q
from pressreview.text import fold

DEMO_FILES = (
    "presse-hdf.xml",
    "courrier-picardie.xml",
    "google-actualites.xml",
    "habitat-hdf.xml",
    "centre-ressources.xml",
)


@dataclass
class Collected:
    config: Config
    store: Store

    def rows(self, **where: Any) -> list[dict[str, Any]]:
        """Every item (all statuses, duplicates included), filtered on exact column values."""
        with self.store.connect() as conn:
            rows = q.list_items(conn, q.ItemFilter(statuses=(), duplicates=True, sort="id"))
        return [r for r in rows if all(r[k] == v for k, v in where.items())]

    def amiens_story(self) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """The Amiens avenant story, carried by three feeds: (lead item, other outlets).

        Which feed's item leads depends on which feed was stored first.
        """
        story = [
            r
            for r in self.rows()
            if "amiens metropole signe" in fold(r["title"]) and "avenant" in r["title"]
        ]
        assert len(story) == 3, [r["title"] for r in story]
        leads = [r for r in story if r["duplicate_of"] is None]
        assert len(leads) == 1
        return leads[0], [r for r in story if r is not leads[0]]

    def publish(self, ids: list[int]) -> int:
        """Select these items, gather them in a draft and publish it (the issue stage's own
        functions); returns the issue number."""
        from pressreview import curate, issues

        curate.select_items(self.store, ids, actor="editor")
        issues.new_draft(self.config, self.store, title="Revue de test", actor="editor")
        return int(issues.publish(self.config, self.store, actor="editor")["number"])

    def store_entries(self, entries: list[Any], stamp: Any) -> list[int]:
        """Store items as the collection does, in lots of 500 from the first item's
        source (``store.collect.NewItem``s seen at ``stamp``); their new ids."""
        from datetime import timedelta

        from pressreview.store import collect as qc

        source_id = self.rows()[0]["source_id"]
        new_ids: list[int] = []
        for start in range(0, len(entries), 500):
            with self.store.begin() as conn:
                counts = qc.store_items(
                    conn, source_id, entries[start : start + 500], default_outlet=None,
                    dedupe_window=timedelta(days=14), threshold=0.6, stamp=stamp,
                )  # fmt: skip
            new_ids += counts.new_ids
        return new_ids

    def find(self, words: str, **where: Any) -> dict[str, Any]:
        """The one item whose title contains these words."""
        found = [r for r in self.rows(**where) if words.lower() in r["title"].lower()]
        assert len(found) == 1, (words, [r["title"] for r in found])
        return found[0]


@pytest.fixture(name="collected")
def collected_fixture(
    demo_feed_url: Callable[..., str],
    make_config: Callable[..., Config],
    store_for: Callable[[Config], Store],
    store_url: str,
) -> Collected:
    """The demo feeds collected into a fresh store (SQLite, and PostgreSQL when configured)."""
    feeds = [{"name": name.removesuffix(".xml"), "url": demo_feed_url(name)} for name in DEMO_FILES]
    config = make_config(database_url=store_url, feeds=feeds)
    store = store_for(config)
    report = collect(config, store)
    assert not report.failed, [(s.name, s.error) for s in report.failed]
    assert report.total("new") > 20
    return Collected(config, store)
