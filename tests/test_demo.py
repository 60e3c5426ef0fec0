"""`pressreview demo`: the whole pipeline offline, checked end to end in a temporary folder."""

from __future__ import annotations

import csv
import email
import email.policy
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from pressreview.cli import main
from pressreview.config import load_config
from pressreview.demo import run_demo
from pressreview.demo.runner import MARKER, SUBSCRIBERS_CSV, prepare_folder, serve_feeds
from pressreview.errors import Refused
from pressreview.issues import list_issues
from pressreview.store import jobs, open_store
from pressreview.subscribers import list_subscribers


def _sample_addresses() -> set[str]:
    with SUBSCRIBERS_CSV.open(encoding="utf-8") as f:
        return {row["email"] for row in csv.DictReader(f)}


@pytest.mark.slow
def test_demo_runs_the_whole_pipeline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PRESSREVIEW_SECRET_KEY", raising=False)
    monkeypatch.setenv("PRESSREVIEW_DATABASE_URL", "sqlite:////nonexistent/ignored.db")
    result = CliRunner().invoke(main, ["demo", "--dir", "out"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    folder = tmp_path / "out"

    # The printed guide points at what exists.
    assert "Email:   out/issue/email.html" in result.output
    assert "Archive: out/site/index.html" in result.output
    assert "pressreview --config out/feeds.yaml archive serve" in result.output
    assert "Outbox:  out/outbox (5 messages" in result.output

    # An issue was published in the demo's own database.
    monkeypatch.delenv("PRESSREVIEW_DATABASE_URL")
    config = load_config(folder / "feeds.yaml")
    assert all(f.url.startswith("http://127.0.0.1:") for f in config.feeds)
    store = open_store(config)
    try:
        published = list_issues(store)
        assert [i.number for i in published] == [1]
        assert published[0].item_count > 5
        subscribers = list_subscribers(store, status="active")
        assert {s.email for s in subscribers} == _sample_addresses()
        assert {s.consent_method for s in subscribers} == {"import"}
        # The sample feeds hold off-topic items and other outlets of the same stories.
        with store.connect() as conn:
            (collect,) = jobs.recent_runs(conn, "collect")
        assert collect.outcome == "ok"
        assert collect.summary["filtered"] > 0 and collect.summary["duplicates"] > 0
    finally:
        store.close()

    # The email files, the archive, one message per subscriber.
    for name in ("email.html", "email.txt", "email.eml"):
        assert (folder / "issue" / name).stat().st_size > 0
    assert (folder / "site" / "index.html").is_file()
    assert (folder / "site" / "numeros" / "1" / "index.html").is_file()
    # The demo's logo is published with the archive and shown, with alt text, in the email.
    assert (folder / "site" / "logo.png").read_bytes().startswith(b"\x89PNG")
    email_html = (folder / "issue" / "email.html").read_text("utf-8")
    assert '<img src="https://veille.irev.fr/logo.png" alt="IREV' in email_html
    messages = sorted((folder / "outbox").glob("*.eml"))
    assert len(messages) == len(_sample_addresses())
    recipients = set()
    for path in messages:
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        recipients.add(str(message["To"]))
        assert message["List-Unsubscribe"]
    assert recipients == _sample_addresses()

    # Feed content was sanitized on its way to the email.
    html = (folder / "issue" / "email.html").read_text("utf-8")
    assert "<script" not in html

    # The contrats de ville tracker: in the email and on its archive page.
    assert "Contrats de ville: out/site/contrats-de-ville/index.html" in result.output
    text = (folder / "issue" / "email.txt").read_text("utf-8")
    # The sample feeds' signing at Méru, classified at collect time, is the evidence.
    assert "Contrats de ville Quartiers 2030\u00a0: 1 signé sur 39" in text
    meru = "- Méru – signé le 12\u00a0novembre 2026\u00a0: https://www.example-centre-ressources"
    assert meru in text
    tracker = folder / "site" / "contrats-de-ville"
    page = (tracker / "index.html").read_text("utf-8")
    meru = page[page.index('<th scope="row">Méru</th>') :].split("</tr>")[0]
    assert "signé" in meru and 'datetime="2026-11-12"' in meru
    assert "meru-signe-contrat-de-ville-quartiers-2030" in meru
    assert (tracker / "contrats-de-ville.csv").read_text("utf-8").count("\n") == 38
    assert 'href="contrats-de-ville/"' in (folder / "site" / "index.html").read_text("utf-8")

    # The folder is not reused by accident; --force replaces a demo folder.
    again = CliRunner().invoke(main, ["demo", "--dir", "out"])
    assert again.exit_code == 1
    assert "--force" in again.output
    forced = CliRunner().invoke(main, ["demo", "--dir", "out", "--force"])
    assert forced.exit_code == 0, forced.output
    assert len(list((folder / "outbox").glob("*.eml"))) == len(messages)


def test_demo_refuses_a_folder_it_did_not_make(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine", "utf-8")
    for force in (False, True):
        with pytest.raises(Refused, match="not made by the demo"):
            prepare_folder(tmp_path, force=force)
    assert (tmp_path / "notes.txt").read_text("utf-8") == "mine"


def test_demo_uses_an_empty_folder(tmp_path: Path) -> None:
    folder = prepare_folder(tmp_path / "new")
    assert (folder / MARKER).is_file()
    assert prepare_folder(tmp_path / "new", force=True) == folder


def test_the_feed_server_serves_the_sample_feeds_on_loopback() -> None:
    import httpx

    with serve_feeds() as port:
        response = httpx.get(f"http://127.0.0.1:{port}/courrier-picardie.xml")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/xml"
    assert b"iso-8859-1" in response.content[:100].lower()


def test_the_demo_clock_puts_every_sample_date_in_the_week_before_the_issue() -> None:
    import re

    import feedparser
    import httpx

    from pressreview.demo.runner import DEMO_DATE, FEEDS_DIR, FeedClock

    clock = FeedClock(FEEDS_DIR)
    week_start = DEMO_DATE - timedelta(days=7)
    with serve_feeds(clock=clock) as port:
        for path in sorted(FEEDS_DIR.glob("*.xml")):
            body = httpx.get(f"http://127.0.0.1:{port}/{path.name}").content
            original = feedparser.parse(path.read_bytes()).entries
            moved = feedparser.parse(body).entries
            assert len(moved) == len(original) and moved, path.name
            for before, after in zip(original, moved, strict=True):
                stamp = after.get("published_parsed") or after.get("updated_parsed")
                if stamp is None:
                    continue
                when = datetime(*stamp[:6], tzinfo=UTC)
                assert week_start <= when < DEMO_DATE, (path.name, after.title, when)
                assert after.title == before.title
            # The encoding and everything but the dates are as in the file.
            assert body[:60] == path.read_bytes()[:60]
            assert re.sub(rb"<(pubDate|updated|published|lastBuildDate)>[^<]*", b"", body) == (
                re.sub(rb"<(pubDate|updated|published|lastBuildDate)>[^<]*", b"", path.read_bytes())
            )


def test_run_demo_reports_where_things_are(tmp_path: Path) -> None:
    lines: list[str] = []
    say: Callable[[str], Any] = lines.append
    report = run_demo(tmp_path / "d", say=say, environ={})
    assert report.issue == 1
    assert report.site_index is not None and report.site_index.is_file()
    assert report.issue_page is not None and report.issue_page.is_file()
    assert report.outbox_dir is not None and len(report.messages) == report.subscribers == 5
    assert any(line.startswith("Collect: ") for line in lines)
    assert any(line.startswith("Digest: week ") for line in lines)
    # The issue is dated on the demo's Monday and holds the news of the week before it.
    from pressreview.demo.runner import DEMO_DATE
    from pressreview.issues import get_snapshot

    config = load_config(report.config_path)
    store = open_store(config)
    try:
        snapshot = get_snapshot(store, 1)
    finally:
        store.close()
    assert snapshot["date"] == DEMO_DATE.date().isoformat()
    week = (DEMO_DATE - timedelta(days=7)).date().isoformat()
    dates = [i["date"] for s in snapshot["sections"] for i in s["items"] if i["date"]]
    assert dates and all(week <= d < snapshot["date"] for d in dates), dates
