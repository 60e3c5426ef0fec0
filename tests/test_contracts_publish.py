"""The tracker in published issues: the email block, frozen snapshots, the archive page."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from pressreview import contracts, curate, issues, render
from pressreview.archive import build_archive
from pressreview.config import Config
from pressreview.store import Store
from pressreview.store.items import insert_item, set_item_contract
from pressreview.store.schema import now
from tests.test_contracts import AMIENS, LAON, LILLE, cls

NBSP = "\u00a0"


def add(store: Store, n: int, contract: dict[str, Any] | None, link: str | None = None) -> int:
    stamp = now()
    # A hostile link is the item's canonical URL too (so no http fallback).
    url = f"{link}#{n}" if link else f"https://www.example-presse.fr/contrat-{n}"
    values = {
        "url": url,
        "link": link or url,
        "title": f"Contrat de ville Quartiers 2030, article {n}",
        "outlet": f"Journal {n}",
        "published_at": stamp,
        "first_seen_at": stamp,
        "updated_at": stamp,
        "origin": "manual",
    }
    with store.begin() as conn:
        item_id = insert_item(conn, values, stamp=stamp)
        set_item_contract(conn, item_id, contract, "auto")
    return item_id


def publish(config: Config, store: Store, ids: list[int], title: str) -> dict[str, Any]:
    curate.select_items(store, ids, actor="test")
    issues.new_draft(config, store, title=title, actor="test")
    return issues.publish(config, store, actor="test")


@pytest.fixture
def tracked(
    make_config: Callable[..., Config],
    store_url: str,
    store_for: Callable[[Config], Store],
    tmp_path: Path,
) -> tuple[Config, Store]:
    config = make_config(
        database_url=store_url, archive={"base_url": "https://veille.example.org/",
                                         "out_dir": str(tmp_path / "site")},
    )  # fmt: skip
    return config, store_for(config)


def test_issues_freeze_the_tracker_and_the_email_shows_what_changed(
    tracked: tuple[Config, Store],
) -> None:
    config, store = tracked
    mel = add(store, 1, cls(LILLE, "signing", "2024-05-07"))
    add(store, 2, cls(LAON, "adoption", "2024-03-12"))
    first = publish(config, store, [mel], "Numéro un")
    block = first["contracts"]
    assert block["counts"]["signed"] == 1 and block["expected"] == 39 and block["email"]
    assert [(c["siren"], c["status"]) for c in block["changes"]] == [
        (LILLE, "signed"),
        (LAON, "adopted"),
    ]
    email = render.render_email(config, first)
    assert f"Contrats de ville Quartiers 2030{NBSP}: 1 signé sur 39" in email.text
    assert f"À ce jour{NBSP}:" in email.text
    assert "Métropole européenne de Lille – signé le 7\u00a0mai 2024" in email.text
    assert "https://www.example-presse.fr/contrat-1" in email.text
    assert "https://veille.example.org/contrats-de-ville/" in email.text
    html = email.html.replace("&#160;", NBSP).replace("&nbsp;", NBSP)
    assert f"Contrats de ville Quartiers 2030{NBSP}: 1 signé sur 39" in html
    assert 'href="https://www.example-presse.fr/contrat-1"' in html
    # Re-rendering the frozen snapshot gives the same email, whatever the store says now.
    add(store, 3, cls(AMIENS, "signing", "2024-12-18"))
    again = render.render_email(config, issues.get_snapshot(store, first["number"]))
    assert (again.text, again.html) == (email.text, email.html)

    add(store, 4, cls(LAON, "signing", "2024-03-19"), link="javascript:alert(1)")
    other = add(store, 5, None)
    second = publish(config, store, [other], "Numéro deux")
    changes = second["contracts"]["changes"]
    assert [(c["siren"], c["status"]) for c in changes] == [(LAON, "signed"), (AMIENS, "signed")]
    # The signing's own link is javascript: (never shown): the adoption's link stands in.
    assert changes[0]["url"] == "https://www.example-presse.fr/contrat-2"
    text = render.render_email(config, second).text
    assert f"{NBSP}: 3 signés sur 39" in text
    assert f"Depuis le numéro précédent{NBSP}:" in text and "À ce jour" not in text
    assert "Métropole européenne de Lille – signé" not in text  # not new since n° 1
    assert "javascript:" not in text


def test_the_email_block_can_be_switched_off(
    make_config: Callable[..., Config], store_url: str, store_for: Callable[[Config], Store]
) -> None:
    config = make_config(database_url=store_url, contracts={"email_block": False})
    store = store_for(config)
    item = add(store, 1, cls(LILLE, "signing", "2024-05-07"))
    snapshot = publish(config, store, [item], "Sans bloc")
    assert snapshot["contracts"]["email"] is False
    email = render.render_email(config, snapshot)
    assert "signé sur 39" not in email.text and "signé sur 39" not in email.html
    off = make_config(database_url=store_url, contracts={"enabled": False})
    curate.select_items(store, [add(store, 2, None)], actor="test")
    issues.new_draft(off, store, title="Sans suivi", actor="test")
    assert "contracts" not in issues.draft_snapshot(off, store)
    assert "contracts" in issues.draft_snapshot(config, store)


def test_archive_tracker_page_and_exports(tracked: tuple[Config, Store]) -> None:
    config, store = tracked
    mel = add(store, 1, cls(LILLE, "signing", "2024-05-07"))
    add(store, 2, cls(LAON, "adoption", "2024-03-12"), link="javascript:alert(1)")
    add(store, 3, cls(AMIENS, "preparation"))
    publish(config, store, [mel], "Numéro un")
    report = build_archive(config, store, search_index=False)
    site = report.out_dir
    page = (site / "contrats-de-ville" / "index.html").read_text("utf-8")
    assert "1 signé sur 39" in page and "37 contrats suivis sur 39 attendus" in page
    headings = re.findall(r'<h2 id="dep-(\w+)">([^<]+)', page)
    assert headings == [
        ("02", "Aisne "),
        ("59", "Nord "),
        ("60", "Oise "),
        ("62", "Pas-de-Calais "),
        ("80", "Somme "),
    ]
    lille_row = page[page.index("Métropole européenne de Lille") :].split("</tr>")[0]
    assert "signé" in lille_row and 'datetime="2024-05-07"' in lille_row
    assert 'href="https://www.example-presse.fr/contrat-1"' in lille_row
    assert "javascript:" not in page
    assert 'href="../numeros/1/"' in page
    home = (site / "index.html").read_text("utf-8")
    assert 'href="contrats-de-ville/"' in home
    assert "contrats-de-ville/" in (site / "sitemap.xml").read_text("utf-8")

    rows = list(csv.DictReader(io.StringIO((site / "contrats-de-ville" / "contrats-de-ville.csv")
                                           .read_text("utf-8"))))  # fmt: skip
    assert len(rows) == 37 and list(rows[0]) == [
        "siren", "commune", "name", "department", "status", "date", "evidence_urls",
    ]  # fmt: skip
    by_siren = {r["siren"]: r for r in rows}
    assert by_siren[LILLE]["status"] == "signed" and by_siren[LILLE]["date"] == "2024-05-07"
    assert by_siren[LILLE]["evidence_urls"] == "https://www.example-presse.fr/contrat-1"
    assert by_siren[LAON]["status"] == "adopted" and by_siren[LAON]["evidence_urls"] == ""
    data = json.loads((site / "contrats-de-ville" / "contrats-de-ville.json").read_text("utf-8"))
    assert data["expected"] == 39 and data["counts"]["in_preparation"] == 1
    assert {c["siren"]: c["status"] for c in data["contracts"]}[AMIENS] == "in_preparation"


def test_collected_items_feed_the_tracker(
    make_config: Callable[..., Config],
    store_url: str,
    store_for: Callable[[Config], Store],
    demo_feed_url: Callable[[str], str],
) -> None:
    """Collect classifies the sample stories; the tracker reads them (no hand-set contract)."""
    from pressreview.collect import collect

    feeds = [{"name": "centre", "url": demo_feed_url("centre-ressources.xml")}]
    config = make_config(database_url=store_url, feeds=feeds)
    store = store_for(config)
    collect(config, store)
    by_name = {c.contract.name: c for c in contracts.load_tracker(config, store).contracts}
    meru, noyon, psm = by_name["Méru"], by_name["Noyon"], by_name["Pont-Sainte-Maxence"]
    assert (meru.status, meru.date, meru.source) == ("signed", date(2026, 11, 12), "classifier")
    assert meru.evidence[0].url == (
        "https://www.example-centre-ressources.fr/actualites/"
        "meru-signe-contrat-de-ville-quartiers-2030"
    )
    assert (noyon.status, noyon.date) == ("adopted", date(2026, 11, 4))
    assert psm.status == "in_preparation"
