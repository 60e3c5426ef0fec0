"""Agenda proposals made by collect from the items it holds, against the store-read path.

Collect proposes events as it stores each source's new items, from the texts
at hand (``agenda.propose_for_items``); ``agenda.propose_from_new_items``
reads the new items back from the store, as collect did before. Both must
give the same rows, on the benchmark's generated French feeds and on a feed
of edge cases (other outlets, dates in the future, no date, typographic
spaces). The shortcuts of the detection itself (text folded once, by a byte
table; hints that skip the scans that cannot match; the words checked before
the text is read) are held to the plain expressions on the same texts and on
random ones. Collect reads the events in its parse workers and the writer
proposes what they read: the same rows as when the writer reads them itself.
"""

from __future__ import annotations

import random
import re
import sqlite3
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any
from xml.sax.saxutils import escape
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import delete, insert, select
from werkzeug import Request, Response

from benchmarks.collect import generate
from pressreview import agenda
from pressreview.agenda import dates
from pressreview.collect import collect
from pressreview.collect.parse import parse_body
from pressreview.config import Config
from pressreview.store import Store
from pressreview.store.schema import agenda_events, items
from pressreview.text import fold, search_text
from tests.fixtures_collect import FAST_COLLECT

NOW = datetime(2027, 1, 10, 9, 0, tzinfo=UTC)
GENERATED_FEEDS = 8
GENERATED_ENTRIES = 40

# (guid, title, description, pubDate or None). Publication dates in the past, so that
# dates are read against them whatever the day the tests run; the others (none, or in
# the future: the time the item is stored) go with days named relative to it.
EDGE: list[tuple[str, str, str, str | None]] = [
    ("e1", "Cycle de webinaires Quartiers 2030",
     "<p>Un rendez-vous par mois, en visio, le mercredi, de 17h00 à 19h00. Premier semestre : "
     "5 février, 5 mars et 2 avril. <a href=\"https://crpv.example.org/inscription\">"
     "Inscription</a></p>", "Mon, 06 Jan 2025 10:00:00 +0100"),
    ("e2", "Rencontres régionales du renouvellement urbain",
     "Du 3 au 5 juin 2025, salle Jean Jaurès, à Lens.", "Mon, 06 Jan 2025 10:00:00 +0100"),
    ("e3", "Réunion publique sur le NPNRU",
     "Réunion publique le 03/06/2025 à 18h00 à la mairie de Denain.",
     "Tue, 07 Jan 2025 09:00:00 +0100"),
    ("e4", "Atelier du conseil citoyen", "Atelier demain à 10h, salle des fêtes.",
     "Wed, 08 Jan 2025 09:00:00 +0100"),
    ("e5", "Le contrat de ville de Creil signé", "Signé le 19 décembre en préfecture.",
     "Thu, 09 Jan 2025 09:00:00 +0100"),
    ("e6", "Retour sur la journée des conseils citoyens", "La journée du 12 décembre a réuni "
     "200 habitants.", "Thu, 09 Jan 2025 11:00:00 +0100"),
    ("e7", "Rencontre avec les bailleurs", "Rencontre mardi prochain à 14 h à Amiens.",
     "Fri, 01 Jan 2099 09:00:00 +0100"),
    ("e8", "Forum des associations", "Forum demain, en ligne.", None),
    ("e9", "Journée d’étude le 5 avril 2025",
     "Journée d’étude le 5\u202favril 2025 de 9\u202fh\u202f30 à 12\u00a0h. "
     "Inscriptions : https://www.helloasso.com/associations/crpv/evenements/etude.",
     "Fri, 10 Jan 2025 09:00:00 +0100"),
    ("e10", "WEBINAIRE : LE 7 AVRIL À 14H, LES QUARTIERS PRIORITAIRES", "",
     "Fri, 10 Jan 2025 10:00:00 +0100"),
    ("e11", "Café-débat mardi prochain à 18h30 au centre social", "Entrée libre.",
     "Fri, 10 Jan 2025 11:00:00 +0100"),
    ("e12", "Assises de la politique de la ville", "Les 3, 4 et 5 février à Lille, "
     "puis le 12/03/2025.", "Sat, 11 Jan 2025 08:00:00 +0100"),
]  # fmt: skip
# The same story as e2 from another outlet: one of the two is stored as another outlet
# of the other (whichever is stored second), which gets no proposals.
OTHER_OUTLET = [("o1", EDGE[1][1], EDGE[1][2], EDGE[1][3])]


def _rss(channel: str, entries: list[tuple[str, str, str, str | None]]) -> bytes:
    body = "".join(
        f"<item><title>{escape(title)}</title>"
        f"<link>https://{channel}.example.fr/{guid}</link><guid>{guid}</guid>"
        + (f"<pubDate>{when}</pubDate>" if when else "")
        + f"<description>{escape(text)}</description></item>"
        for guid, title, text, when in entries
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel>'
        f"<title>{channel}</title><link>https://{channel}.example.fr/</link>{body}"
        "</channel></rss>"
    ).encode()


def _proposed(store: Store) -> list[tuple[Any, ...]]:
    """Every proposal made from an item, as the columns that must not differ."""
    c = agenda_events.c
    with store.connect() as conn:
        rows = conn.execute(
            select(c.uid, c.item_id, c.status, c.title, c.starts_at, c.ends_at, c.all_day,
                   c.place, c.online, c.url, c.territory).where(c.origin == "item")
        ).all()  # fmt: skip
    return sorted(tuple(r) for r in rows)


def _serve(httpserver: Any, bodies: dict[str, bytes]) -> list[dict[str, str]]:
    """Serve ``bodies`` (path → RSS) and give one source of the config for each."""

    def serve(request: Request) -> Response:
        return Response(bodies[request.path], content_type="application/rss+xml")

    httpserver.expect_request(re.compile(r"/.*\.xml")).respond_with_handler(serve)
    return [{"name": f"Journal {i}", "url": httpserver.url_for(path)}
            for i, path in enumerate(sorted(bodies))]  # fmt: skip


def test_collect_proposes_what_the_store_read_proposes(
    httpserver: Any,
    make_config: Callable[..., Config],
    store_url: str,
    store_for: Callable[[Config], Store],
) -> None:
    bodies = generate(GENERATED_FEEDS, GENERATED_ENTRIES)
    bodies["/edge.xml"] = _rss("edge", EDGE)
    bodies["/other.xml"] = _rss("other", OTHER_OUTLET)

    feeds = _serve(httpserver, bodies)
    config = make_config(database_url=store_url, feeds=feeds, collect=FAST_COLLECT)
    store = store_for(config)

    report = collect(config, store, now=NOW, workers=0)
    fast = _proposed(store)
    assert report.proposed_events == len(fast) > 100
    assert report.proposed_events == sum(s.proposed_events for s in report.sources)
    # The edge cases gave what they should.
    with store.connect() as conn:
        ids = dict(conn.execute(select(items.c.guid, items.c.id)).all())
    by_item: dict[int, list[tuple[Any, ...]]] = {}
    for row in fast:
        by_item.setdefault(row[1], []).append(row)
    assert [len(by_item.get(ids[g], [])) for g in ("e1", "e3", "e4", "e5", "e6")] == [
        3, 1, 1, 0, 0,
    ]  # fmt: skip
    assert [len(by_item.get(ids[g], [])) for g in ("e7", "e8", "e9", "e10", "e11", "e12")] == [
        1, 1, 1, 1, 1, 2,
    ]  # fmt: skip
    story = [r for g in ("e2", "o1") for r in by_item.get(ids[g], [])]
    assert len(story) == 1 and story[0][7] == "Jean Jaurès"  # one outlet, its place
    assert {r[9] for r in by_item[ids["e9"]]} == {
        "https://www.helloasso.com/associations/crpv/evenements/etude"
    }
    assert all(r[8] and r[9] == "https://crpv.example.org/inscription" for r in by_item[ids["e1"]])

    # The store-read path, on the same items, gives the same rows.
    with store.begin() as conn:
        conn.execute(delete(agenda_events))
    added = agenda.propose_from_new_items(config, store, datetime(2000, 1, 1, tzinfo=UTC))
    assert added == len(fast)
    assert _proposed(store) == fast

    # A second run: an updated item is not read again; a new one is.
    changed = [(g, t, x, w) for g, t, x, w in EDGE if g != "e5"]
    changed.append(("e5", EDGE[4][1], "Signé. Réunion publique le 2 mars 2025.", EDGE[4][3]))
    changed.append(("e13", "Séminaire des délégués du préfet", "Le 9 mars 2025 à Arras.",
                    "Sat, 11 Jan 2025 10:00:00 +0100"))  # fmt: skip
    bodies["/edge.xml"] = _rss("edge", changed)
    report = collect(config, store, now=NOW, workers=0)
    edge = next(s for s in report.sources if s.new or s.updated)
    assert (edge.new, edge.updated) == (1, 1)
    assert report.proposed_events == 1
    again = _proposed(store)
    assert len(again) == len(fast) + 1
    with store.connect() as conn:
        e13 = conn.execute(select(items.c.id).where(items.c.guid == "e13")).scalar_one()
    assert [r[1] for r in again if r not in fast] == [e13]


# -- the detection's shortcuts against the plain expressions ----------------------------

ATOMS = [
    "mardi", "Lundi ", " ", "  ", "\n", "\u202f", "\u00a0", "1er", "premier", "12", "3", "٣",
    "er", "mars", "avr", "Avril", "mai", "dec.", "2027", "20", ",", ".", "(", "/", "-", "–",
    "du", "Du ", "au", "le", "x", "r", "é", "É", "œ", "ß", "’", "demain", "aujourd'hui",
    "ce", "prochain", "juin", "17h", "h", "30", ":", "à", "de", "et", "jusqu'à", "salle",
    "Réunion publique", "réunion", "publique", "rendez-vous", "Rendez", "table ronde", "café",
    "-débat", "Webinaire", "inscription", "½", "µ", "ﬁ",
]  # fmt: skip
# Expressions at the edges of the hints (each one a way a shortcut could go wrong).
TRICKY = [
    "le 2025-06-03 à 18h", "le 03/06/2025 de 9h à 12h", "le 1er mars", "le premier mars 2026",
    "le 1erer mars", "mardi 5 avril de 17h à 19h", "mercredi  12   mars", "Lundi\n3 juin",
    "les 12 dec.5 mars", "le 5 avr. 2025", "(12 mars)", "x12 mars", "12mars", "fondu 3 au 5 juin",
    "du 3 au 5 juin", "DU 3 AU 5 JUIN", "du 30 mars jusqu'au 2 avril",
    "du lundi 29 novembre au mercredi 1er décembre 2027", "ce mardi à 10h", "mardi prochain",
    "aujourd’hui à 18h", "après-demain", "dimanche prochain", "de 17h00 à 19h00",
    "entre 9 h et 12 h 30", "13152 habitants", "à 9 heures - 11 heures", "le ٣ mars",
    "le ١٢/٠٣/٢٠٢٥", "les 3, 4 et 5 février", "le 31 février", "Mardi 1 octobre 2024 - 09:30",
]  # fmt: skip
# "\bdu" as first written; the module writes the word boundary after "du".
RANGE_START = r"du(?<!\wdu)\s+"
PLAIN_RANGE_RE = re.compile(r"\bdu\s+" + dates._RANGE_RE.pattern.removeprefix(RANGE_START))


def _texts() -> list[tuple[str, str]]:
    """(title, excerpt) of the generated feeds and the edge cases, then random ones."""
    pairs = [(title, text) for _, title, text, _ in EDGE]
    pairs += [("Réunion publique", text) for text in TRICKY] + [(text, "") for text in TRICKY]
    for body in generate(4, 50).values():
        parsed = parse_body(body, {}, base_url="https://example.fr/", excerpt_chars=300)
        pairs += [(e.title, e.excerpt) for e in parsed.entries]
    rng = random.Random(2027)
    for _ in range(4000):
        pairs.append(
            ("".join(rng.choice(ATOMS) for _ in range(rng.randint(1, 6))),
             "".join(rng.choice(ATOMS) for _ in range(rng.randint(0, 16))))
        )  # fmt: skip
    return pairs


def _matches(found: Any) -> list[tuple[tuple[int, int], dict[str, str | None]]]:
    return [(m.span(), m.groupdict()) for m in found]


def test_detection_shortcuts_agree_with_the_plain_expressions() -> None:
    pairs = _texts()
    for code in range(0x3000):  # every character of the Latin scripts and more
        pairs.append((f"Ab{chr(code)}é", ""))
    assert dates._RANGE_RE.pattern.startswith(RANGE_START)
    for title, text in pairs:
        body = f"{title}. {text}"
        plain = fold(body.replace("\u202f", " ").replace("\u00a0", " ").replace("’", "'"))
        folded = dates.normalize(body)
        assert folded == plain, body
        assert _matches(dates._RANGE_RE.finditer(folded)) == _matches(
            PLAIN_RANGE_RE.finditer(folded)
        ), body
        assert _matches(dates._date_matches(folded)) == _matches(dates._DATE_RE.finditer(folded)), (
            body
        )
        # A hint missing: the expression cannot match.
        if dates._NUMERIC_RE.search(folded):
            assert dates._NUMERIC_HINT_RE.search(folded), body
        if dates._RELATIVE_RE.search(folded):
            assert dates._may_be_relative(folded), body
        if dates._TIME_RANGE_RE.search(folded):
            assert dates._TIME_RANGE_HINT_RE.search(folded), body
        ref = date(2027, 2, 10)
        assert dates.find_dates(body, ref) == dates.find_dates(body, ref, folded=folded)
        # The words before the text: an announcement always has one of them.
        if agenda._ANNOUNCE_RE.search(folded):
            item = agenda.ItemText(1, title, text, "", None, NOW, None, search_text(title, text))
            assert agenda._may_announce(item), body
        if agenda._ONLINE_RE.search(folded):
            assert any(h in folded for h in agenda._ONLINE_HINTS), body
        # The words looked for one by one (those whose first word is the item's) in a
        # worker: what the whole expression finds, and the same events.
        ahead = agenda.detect_ahead(
            title=title, text=text, summary_html="", link=None, published_at=NOW,
            search_text=search_text(title, text), tz=UTC, now=NOW,
        )  # fmt: skip
        assert (ahead != ()) == bool(agenda._ANNOUNCE_RE.search(folded)), body
        events = agenda.detect_events(
            title=title, text=text, link=None, published_at=NOW, tz=UTC
        )  # fmt: skip
        assert (list(ahead.proposals) if ahead else []) == events, body


@pytest.mark.parametrize(
    ("title", "text", "found"),
    [
        ("Réunion publique", "le 3 mars à 18h", 1),
        ("RÉUNION PUBLIQUE", "LE 3 MARS À 18H", 1),
        ("Rendez-vous", "du 3 au 5 juin", 1),
        ("Le rendez", "vous du 3 au 5 juin", 0),  # "rendez vous" is not "rendez-vous"
        ("Tables rondes", "le 3 mars", 0),
        ("Table ronde", "le 3 mars", 1),
        ("Conférences", "le 3 mars", 0),  # not a word of the list
    ],
)
def test_words_checked_before_the_text(title: str, text: str, found: int) -> None:
    """With or without the item's words at hand, the same proposals."""
    published = datetime(2027, 2, 1, 9, 0, tzinfo=UTC)
    tz = ZoneInfo("Europe/Paris")
    plain = agenda.ItemText(1, title, text, "", None, published, ["Lens"])
    with_words = plain._replace(search_text=search_text(title, text, "Journal"))
    assert len(agenda._proposals_of([plain], tz)) == found
    assert agenda._proposals_of([with_words], tz) == agenda._proposals_of([plain], tz)


def test_proposals_stored_as_the_expression_language_stores_them(
    make_config: Callable[..., Config], store_for: Callable[[Config], Store]
) -> None:
    """SQLite: the driver-level insert of proposals writes the bytes SQLAlchemy would."""
    store = store_for(make_config())
    start = datetime(2027, 3, 1, 16, 30, 15, 250, tzinfo=UTC)
    rows = [
        {"uid": f"x-{n}", "origin": "item", "status": "proposed", "item_id": None,
         "title": "Réunion publique", "starts_at": start, "ends_at": end, "all_day": n == 1,
         "place": None if n else "Lens", "online": n == 2, "url": None, "territory": "Lens"}
        for n, end in enumerate([None, start, datetime(2027, 3, 2, tzinfo=UTC)])
    ]  # fmt: skip
    columns = "uid, origin, status, source_id, item_id, title, description, starts_at, " \
        "ends_at, all_day, place, online, url, territory, sequence, version"  # fmt: skip
    with store.begin() as conn:
        agenda.q.insert_events(conn, rows)
        fast = conn.exec_driver_sql(f"SELECT {columns}, created_at FROM agenda_events").all()
        stamp = conn.execute(select(agenda_events.c.created_at)).scalar()
        conn.execute(delete(agenda_events))
        conn.execute(insert(agenda_events), [
            {"description": "", "source_id": None, "sequence": 0, "version": 1,
             "created_at": stamp, "updated_at": stamp, **row} for row in rows
        ])  # fmt: skip
        plain = conn.exec_driver_sql(f"SELECT {columns}, created_at FROM agenda_events").all()
    assert fast == plain


def test_a_new_item_with_events_left_by_hand_gets_no_proposals(
    httpserver: Any,
    make_config: Callable[..., Config],
    store_for: Callable[[Config], Store],
    tmp_path: Any,
) -> None:
    """An event edited in by hand for an item id not yet given: that item is left alone."""
    httpserver.expect_request("/edge.xml").respond_with_data(
        _rss("edge", EDGE[:1]), content_type="application/rss+xml"
    )
    config = make_config(feeds=[{"name": "Edge", "url": httpserver.url_for("/edge.xml")}])
    store = store_for(config)
    store.ensure_schema()
    # As the sqlite3 shell would (no foreign keys): an event of item 1, before it exists.
    db = sqlite3.connect(tmp_path / "store.db")
    with db:
        db.execute(
            "INSERT INTO agenda_events (uid, origin, status, item_id, title, description, "
            "starts_at, all_day, online, sequence, created_at, updated_at, version) VALUES "
            "('hand', 'staff', 'dismissed', 1, 'x', '', '2025-01-01 00:00:00.000000', 0, 0, 0, "
            "'2025-01-01 00:00:00.000000', '2025-01-01 00:00:00.000000', 1)"
        )
    db.close()
    report = collect(config, store, now=NOW, workers=0)
    assert report.total("new") == 1 and report.proposed_events == 0
    assert [r[0] for r in _proposed(store)] == []


# -- detection in the parse workers -----------------------------------------------------


def _proposed_by_item(store: Store) -> list[tuple[Any, ...]]:
    """``_proposed`` with each item named by its guid and URL (ids depend on the order
    in which sources are stored)."""
    with store.connect() as conn:
        keys = {i: (g, u) for i, g, u in conn.execute(select(items.c.id, items.c.guid,
                                                             items.c.url)).all()}  # fmt: skip
    return sorted((*keys[row[1]], row[0].split("-")[2], *row[2:]) for row in _proposed(store))


def test_workers_read_the_events_and_the_writer_proposes_the_same(
    httpserver: Any,
    make_config: Callable[..., Config],
    store_for: Callable[[Config], Store],
    tmp_path: Any,
) -> None:
    """Events read in forked parse workers (carried back on each item) give the
    proposals that the writer's own reading gives."""
    from pressreview.collect import _LazyClassifier, _parse_and_classify, _parse_pool

    bodies = generate(4, GENERATED_ENTRIES)
    bodies["/edge.xml"] = _rss("edge", EDGE)

    feeds = _serve(httpserver, bodies)
    found = []
    for workers in (2, 0):
        config = make_config(database_url=f"sqlite:///{tmp_path / f'w{workers}.db'}",
                             feeds=feeds, collect=FAST_COLLECT)  # fmt: skip
        store = store_for(config)
        report = collect(config, store, now=NOW, workers=workers)
        assert report.proposed_events == len(_proposed(store)) > 20
        found.append(_proposed_by_item(store))
    assert found[0] == found[1]

    # In a worker: each item comes back with what it announces.
    feed = config.feeds[-1]
    pool = _parse_pool(_LazyClassifier(config), 1, 1)
    assert pool is not None
    try:
        _, batch = pool.submit(_parse_and_classify, bodies["/edge.xml"], {},
                               feed.url, 300, feed, 100).result()  # fmt: skip
    finally:
        pool.shutdown()
    by_guid = {n.guid: n.agenda for n in batch}
    assert by_guid["e5"] == ()  # no announcement: nothing else to send back
    assert by_guid["e6"] == agenda.Detected(date(2025, 1, 9), ())  # a journée, but past
    assert by_guid["e2"] == agenda.Detected(date(2025, 1, 6), by_guid["e2"].proposals)
    assert [p.place for p in by_guid["e2"].proposals] == ["Jean Jaurès"]
    assert len(by_guid["e1"].proposals) == 3

    # The writer uses what was read, or reads again when the day it was read for is not
    # the item's (no date: the item is dated when it is stored).
    tz = config.tz
    for n in batch:
        stored_at = n.published_at or datetime(2027, 5, 1, tzinfo=UTC)
        item = agenda.ItemText(7, n.title, n.excerpt, n.summary_html, n.link, stored_at,
                               ["Lens"], n.search_text)  # fmt: skip
        expected = agenda._proposals_of([item], tz)
        assert agenda._proposals_of([item._replace(detected=n.agenda)], tz) == expected
        if n.agenda:
            stale = agenda.Detected(date(1999, 1, 1), ())
            assert agenda._proposals_of([item._replace(detected=stale)], tz) == expected
    e8 = next(n for n in batch if n.guid == "e8")  # "Forum demain", no date
    assert e8.published_at is None and isinstance(e8.agenda, agenda.Detected)
    # What was read is what is proposed (not read again).
    e2 = next(n for n in batch if n.guid == "e2")
    read = agenda.Proposal("Lu", NOW, None, False, None, False, None)
    item = agenda.ItemText(7, e2.title, e2.excerpt, e2.summary_html, e2.link,
                           e2.published_at or NOW, None, e2.search_text,
                           agenda.Detected(date(2025, 1, 6), (read,)))  # fmt: skip
    assert [row["title"] for row in agenda._proposals_of([item], tz)] == ["Lu"]
