"""The archive's legal pages, their links from every page, and what it shows of articles."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

import lxml.html
from fixtures_archive import html_pages, insert_published, item_entry, make_snapshot

from pressreview.archive import build_archive
from pressreview.config import Config
from pressreview.store import Store

LEGAL = {
    "publisher": "Centre de ressources test, association loi 1901",
    "publication_director": "Camille Martin, directrice",
    "host": "Hébergeur Exemple, 2 rue du Serveur, 75000 Paris",
    "dpo_contact": "dpo@crpv.example.org",
}


def _build(make_config: Callable[..., Config], store_for: Callable[[Config], Store], **values):
    config = make_config(
        archive={"base_url": "https://veille.example.org/", "excerpt_chars": 80},
        legal=LEGAL,
        **values,
    )
    store = store_for(config)
    long_text = "Mot " * 200
    feed_item = item_entry(1, date(2026, 11, 20))
    feed_item.update(excerpt="", summary_html=f"<p>{long_text}</p>")
    staff_item = item_entry(2, date(2026, 11, 20))
    staff_item.update(excerpt="Résumé de l'équipe. " * 10, summary_by_staff=True)
    snapshot = make_snapshot(1, date(2026, 11, 23), items_per_issue=3)
    snapshot["sections"][0]["items"][:0] = [feed_item, staff_item]
    insert_published(store, [snapshot])
    build_archive(config, store, search_index=False)
    return config, config.resolve(config.archive.out_dir)


def test_legal_pages_from_the_configuration(make_config, store_for) -> None:
    _, site = _build(make_config, store_for)
    legal = (site / "mentions-legales/index.html").read_text("utf-8")
    for value in ("Camille Martin, directrice", "Hébergeur Exemple", "association loi 1901"):
        assert value in legal
    privacy = (site / "donnees-personnelles/index.html").read_text("utf-8")
    assert 'href="mailto:dpo@crpv.example.org"' in privacy
    for words in ("adresse électronique", "Combien de temps", "Vos droits", "CNIL", "désabonner"):
        assert words in privacy
    assert "trois ans après le désabonnement" in privacy


def test_every_page_links_the_legal_pages(make_config, store_for) -> None:
    _, site = _build(make_config, store_for)
    pages = html_pages(site)
    assert len(pages) > 5
    for path in pages:
        doc = lxml.html.document_fromstring(path.read_bytes())
        hrefs = [a.get("href", "") for a in doc.xpath("//footer//a")]
        targets = {h.rstrip("/").rsplit("/", 1)[-1] for h in hrefs}
        assert {"mentions-legales", "donnees-personnelles"} <= targets, path
    about = (site / "a-propos/index.html").read_text("utf-8")
    assert "donnees-personnelles/" in about.split('id="abonnement"')[1]


def test_archive_shows_a_short_extract_never_the_full_text(make_config, store_for) -> None:
    _, site = _build(make_config, store_for)
    doc = lxml.html.document_fromstring((site / "numeros/1/index.html").read_bytes())
    excerpts = {
        h.get("id"): h.getparent().xpath("string(.//*[@class='item-excerpt'])")
        for h in doc.xpath("//*[@class='item-title']")
    }
    feed = excerpts["article-1"].strip()
    assert len(feed) <= 81 and feed.endswith("…") and "Mot Mot" in feed
    staff = excerpts["article-2"].strip()
    assert staff.count("Résumé de l’équipe.") == 10  # the staff's own summary, whole
    assert '<div class="item-excerpt"><p>' not in (site / "numeros/1/index.html").read_text()
