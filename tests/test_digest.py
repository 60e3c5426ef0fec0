"""The weekly digest: auto and review policies, empty weeks, never twice in a week."""

from __future__ import annotations

import email
import email.policy
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from pressreview import curate, issues, scheduling
from pressreview.config import Config
from pressreview.errors import ConfigError, DeliveryError
from pressreview.store import Store
from pressreview.store import jobs as q
from pressreview.store.schema import events, items
from pressreview.subscribers import import_subscribers

DEMO_SUBSCRIBERS = (
    Path(__file__).resolve().parent.parent / "pressreview" / "demo" / "subscribers.csv"
)
SECRET = {"PRESSREVIEW_SECRET_KEY": "a-test-secret-of-enough-length-123"}
MONDAY = datetime(2026, 11, 23, 7, 0, tzinfo=UTC)  # Monday 08:00 in Paris


def _auto(make_config: Callable[..., Config], feeds: list[dict[str, str]], **values: Any) -> Config:
    values.setdefault("digest", {"policy": "auto", "per_section_limit": 5})
    return make_config(feeds=feeds, **values)


def _outbox(config: Config) -> list[Path]:
    folder = config.resolve(config.delivery.outbox_dir)
    return sorted(folder.glob("*.eml")) if folder.is_dir() else []


def _rows(store: Store, *where: Any) -> list[Any]:
    with store.connect() as conn:
        return list(conn.execute(select(items).where(*where)).mappings())


def _digest_runs(store: Store) -> list[q.JobRunRow]:
    with store.connect() as conn:
        return q.recent_runs(conn, "digest", limit=100)


@pytest.fixture
def presse(demo_feed_url: Callable[[str], str]) -> list[dict[str, str]]:
    return [
        {"name": "Presse", "url": demo_feed_url("presse-hdf.xml")},
        {"name": "Google", "url": demo_feed_url("google-actualites.xml")},
    ]


def test_auto_digest_picks_publishes_archives_and_sends(
    make_config: Callable[..., Config], store_url: str, presse: list[dict[str, str]],
    store_for: Callable[[Config], Store],
) -> None:  # fmt: skip
    config = _auto(make_config, presse, database_url=store_url,
                   digest={"policy": "auto", "per_section_limit": 2})  # fmt: skip
    store = store_for(config)
    scheduling.run_collect(config, store)
    import_subscribers(store, DEMO_SUBSCRIBERS, actor="test")
    candidates = _rows(store, items.c.status == "new", items.c.duplicate_of.is_(None))
    assert candidates

    result = scheduling.run_digest(config, store, now=MONDAY, environ=SECRET)

    assert result.outcome == "published", result.message
    assert result.summary["week"] == "2026-W48"
    assert result.summary["issue"] == 1 and result.summary["picked_by"] == "digest"
    snapshot = issues.get_snapshot(store, 1)
    assert snapshot["published_at"].startswith("2026-11-23T07:00")
    per_section = {s["key"]: len(s["items"]) for s in snapshot["sections"]}
    assert per_section and max(per_section.values()) <= 2
    # The best-scored lead items of each section were taken, no other outlet of a story.
    published = _rows(store, items.c.status == "published")
    assert {r.id for r in published} == {i["id"] for s in snapshot["sections"] for i in s["items"]}
    assert all(r.duplicate_of is None for r in published)
    for row in published:
        left = [r for r in candidates if r.section == row.section and r.id not in
                {p.id for p in published}]  # fmt: skip
        assert all(r.score <= row.score for r in left)
    # Selections went through curation, in the audit trail as "digest".
    with store.connect() as conn:
        actors = {
            r.actor for r in conn.execute(select(events).where(events.c.action == "item.select"))
        }
    assert actors == {"digest"}
    # Archive and delivery.
    site = config.resolve(config.archive.out_dir)
    assert (site / "index.html").is_file() and (site / "numeros" / "1" / "index.html").is_file()
    messages = _outbox(config)
    assert len(messages) == 5
    assert "5 message(s) sent" in result.message
    (run,) = _digest_runs(store)
    assert run.outcome == "published" and run.summary["issue"] == 1


def test_the_same_week_never_publishes_or_sends_twice(
    make_config: Callable[..., Config], presse: list[dict[str, str]],
    store_for: Callable[[Config], Store],
) -> None:  # fmt: skip
    config = _auto(make_config, presse)
    store = store_for(config)
    scheduling.run_collect(config, store)
    import_subscribers(store, DEMO_SUBSCRIBERS, actor="test")
    first = scheduling.run_digest(config, store, now=MONDAY, environ=SECRET)
    assert first.outcome == "published"
    sent = _outbox(config)
    # Staff select something afterwards: still nothing more this week.
    leftover = _rows(store, items.c.status == "new")[0]
    curate.select_items(store, [leftover.id], actor="alice")

    again = scheduling.run_digest(config, store, now=MONDAY + timedelta(hours=30), environ=SECRET)

    assert again.outcome == "skipped"
    assert "already published (issue n° 1)" in again.message
    assert [i.number for i in issues.list_issues(store)] == [1]
    assert _outbox(config) == sent
    assert [r.outcome for r in _digest_runs(store)] == ["skipped", "published"]


def test_an_empty_week_publishes_nothing_and_says_so(
    make_config: Callable[..., Config], presse: list[dict[str, str]],
    demo_feed_url: Callable[[str], str], store_for: Callable[[Config], Store],
) -> None:  # fmt: skip
    config = _auto(make_config, presse)
    store = store_for(config)
    scheduling.run_collect(config, store)
    import_subscribers(store, DEMO_SUBSCRIBERS, actor="test")
    published_at = datetime.now(UTC)
    assert scheduling.run_digest(config, store, now=published_at, environ=SECRET).outcome == (
        "published"
    )
    sent = _outbox(config)
    next_week = published_at + timedelta(days=7)

    empty = scheduling.run_digest(config, store, now=next_week, environ=SECRET)

    assert empty.outcome == "empty"
    assert "nothing to publish" in empty.message and "since issue n° 1" in empty.message
    assert [i.number for i in issues.list_issues(store)] == [1]
    assert _outbox(config) == sent

    # New items arrive later that week: the digest may then publish them (and only them).
    more = make_config(
        feeds=[*presse, {"name": "Habitat", "url": demo_feed_url("habitat-hdf.xml")}],
        digest={"policy": "auto", "per_section_limit": 5},
    )
    scheduling.run_collect(more, store)
    fresh = {
        r.id for r in _rows(store, items.c.status == "new", items.c.first_seen_at > published_at)
    }
    assert fresh
    second = scheduling.run_digest(more, store, now=next_week + timedelta(hours=2), environ=SECRET)
    assert second.outcome == "published" and second.summary["issue"] == 2
    snapshot = issues.get_snapshot(store, 2)
    ids = {i["id"] for s in snapshot["sections"] for i in s["items"]}
    assert ids and ids <= fresh
    assert len(_outbox(config)) == 10


def test_staff_selection_wins_over_the_automatic_pick(
    make_config: Callable[..., Config], presse: list[dict[str, str]],
    store_for: Callable[[Config], Store],
) -> None:  # fmt: skip
    config = _auto(make_config, presse)
    store = store_for(config)
    scheduling.run_collect(config, store)
    chosen = [r.id for r in _rows(store, items.c.status == "new")[:2]]
    curate.select_items(store, chosen, actor="alice")

    result = scheduling.run_digest(config, store, now=MONDAY, environ=SECRET)

    assert result.outcome == "published" and result.summary["picked_by"] == "staff"
    snapshot = issues.get_snapshot(store, 1)
    assert sorted(i["id"] for s in snapshot["sections"] for i in s["items"]) == sorted(chosen)


def test_no_signing_key_fails_before_publishing(
    make_config: Callable[..., Config], presse: list[dict[str, str]],
    store_for: Callable[[Config], Store],
) -> None:  # fmt: skip
    config = _auto(make_config, presse)
    store = store_for(config)
    scheduling.run_collect(config, store)
    with pytest.raises(ConfigError, match=r"PRESSREVIEW_SECRET_KEY"):
        scheduling.run_digest(config, store, now=MONDAY, environ={})
    assert issues.list_issues(store) == []
    assert _rows(store, items.c.status == "selected") == []
    assert _digest_runs(store)[0].outcome == "error"


def test_a_failed_send_is_resumed_without_publishing_again(
    make_config: Callable[..., Config], presse: list[dict[str, str]],
    store_for: Callable[[Config], Store],
) -> None:  # fmt: skip
    # SMTP on a port where nothing listens: publishing succeeds, sending fails.
    broken = _auto(make_config, presse, delivery={
        "transport": "smtp", "smtp": {"host": "127.0.0.1", "port": 9, "security": "none",
                                      "timeout": 5}})  # fmt: skip
    store = store_for(broken)
    scheduling.run_collect(broken, store)
    import_subscribers(store, DEMO_SUBSCRIBERS, actor="test")
    with pytest.raises(DeliveryError):
        scheduling.run_digest(broken, store, now=MONDAY, environ=SECRET)
    (failed,) = _digest_runs(store)
    assert failed.outcome == "error" and failed.summary["issue"] == 1

    fixed = _auto(make_config, presse)  # outbox transport
    result = scheduling.run_digest(fixed, store, now=MONDAY + timedelta(hours=1), environ=SECRET)

    assert result.outcome == "published"
    assert result.summary["issue"] == 1 and result.summary["resumed"] is True
    assert [i.number for i in issues.list_issues(store)] == [1]
    assert len(_outbox(fixed)) == 5


def test_review_digest_previews_the_draft_to_the_editors(
    make_config: Callable[..., Config], presse: list[dict[str, str]],
    store_for: Callable[[Config], Store],
) -> None:  # fmt: skip
    config = make_config(
        feeds=presse,
        digest={"policy": "review", "editors": ["redaction@example.org", "chef@example.org"]},
    )
    store = store_for(config)
    scheduling.run_collect(config, store)
    import_subscribers(store, DEMO_SUBSCRIBERS, actor="test")

    empty = scheduling.run_digest(config, store, now=MONDAY, environ=SECRET)
    assert empty.outcome == "empty" and "no preview sent" in empty.message
    assert _outbox(config) == []
    assert issues.current_draft(config, store) is not None

    chosen = [r.id for r in _rows(store, items.c.status == "new")[:3]]
    curate.select_items(store, chosen, actor="alice")
    result = scheduling.run_digest(config, store, now=MONDAY + timedelta(hours=1), environ=SECRET)

    assert result.outcome == "previewed", result.message
    assert "waiting for `pressreview issue publish`" in result.message
    previews = _outbox(config)
    assert len(previews) == 2
    parsed = [
        email.message_from_bytes(p.read_bytes(), policy=email.policy.default) for p in previews
    ]
    assert {str(m["To"]) for m in parsed} == {"redaction@example.org", "chef@example.org"}
    assert all(str(m["Subject"]).startswith("[TEST] ") for m in parsed)
    assert issues.list_issues(store) == []  # a person publishes
    assert {r.id for r in _rows(store, items.c.status == "selected")} == set(chosen)

    again = scheduling.run_digest(config, store, now=MONDAY + timedelta(hours=2), environ=SECRET)
    assert again.outcome == "skipped" and "already previewed" in again.message
    assert len(_outbox(config)) == 2


def test_pick_items_orders_sections_and_limits(
    make_config: Callable[..., Config], presse: list[dict[str, str]],
    store_for: Callable[[Config], Store],
) -> None:  # fmt: skip
    config = _auto(make_config, presse, digest={"policy": "auto", "per_section_limit": 1})
    store = store_for(config)
    scheduling.run_collect(config, store)
    ids = scheduling.pick_items(config, store, since=None)
    rows = {r.id: r for r in _rows(store, items.c.id.in_(ids))}
    sections = [rows[i].section for i in ids]
    assert len(sections) == len(set(sections))  # one per section
    order = [s.key for s in config.ordered_sections()]
    keyed = [s for s in sections if s is not None]
    assert keyed == sorted(keyed, key=order.index)
    if None in sections:
        assert sections[-1] is None
    # Nothing first seen after a future instant.
    assert scheduling.pick_items(config, store, since=datetime.now(UTC) + timedelta(days=1)) == []


def test_schedule_run_digest_from_the_command_line(
    make_config: Callable[..., Config], presse: list[dict[str, str]],
    cli: Callable[..., Any], monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    config = _auto(make_config, presse)
    monkeypatch.setenv("PRESSREVIEW_SECRET_KEY", SECRET["PRESSREVIEW_SECRET_KEY"])
    assert cli(config, "schedule", "run", "collect").exit_code == 0
    result = cli(config, "schedule", "run", "digest")
    assert result.exit_code == 0, result.output
    assert result.output.startswith("digest: published: week ")
    again = cli(config, "schedule", "run", "digest")
    assert again.exit_code == 0
    assert again.output.startswith("digest: skipped: ")
