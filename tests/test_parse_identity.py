"""What parse_body makes of an entry's link, id, author and date, on both parsers.

Found on other projects' feed corpora: a licence link taken for the article's
link merged distinct entries, an id that is not a web address was lost (a
corrected title then made a second item), "Name (address)" authors were
dropped, and a zero timestamp (1970) was taken for a date.
"""

from __future__ import annotations

import pytest

from pressreview.collect.parse import parse_body

ATOM = "application/atom+xml; charset=utf-8"
RSS = "application/rss+xml; charset=utf-8"


def _atom(entries: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="utf-8"?>'
        '<feed xmlns="http://www.w3.org/2005/Atom"><title>Veille</title>'
        "<id>urn:feed</id><updated>2026-11-20T08:00:00Z</updated>"
        f"{entries}</feed>"
    ).encode()


def _rss(items: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
        f"<title>Veille</title><link>https://veille.example.fr/</link>{items}</channel></rss>"
    ).encode()


@pytest.mark.parametrize("fast", [True, False], ids=["fastfeedparser", "feedparser"])
def test_a_licence_link_is_not_the_article(fast: bool) -> None:
    body = _atom("".join(
        f"<entry><title>Article {i}</title><id>urn:lic:{i}</id>"
        "<updated>2026-11-20T08:00:00Z</updated>"
        '<link rel="license" href="http://creativecommons.org/licenses/by/4.0/"/></entry>'
        for i in (1, 2, 3)
    ))  # fmt: skip
    entries = parse_body(body, {"content-type": ATOM}, fast=fast).entries
    assert sorted((e.title, e.link, e.guid) for e in entries) == [
        (f"Article {i}", "", f"urn:lic:{i}") for i in (1, 2, 3)
    ]
    assert len({e.url for e in entries}) == 3


@pytest.mark.parametrize("fast", [True, False], ids=["fastfeedparser", "feedparser"])
def test_an_id_that_is_no_web_address_stays_the_identity(fast: bool) -> None:
    def url_of(title: str) -> str:
        body = _atom(
            f"<entry><title>{title}</title><id>urn:uuid:6f1c-1</id>"
            "<updated>2026-11-20T08:00:00Z</updated></entry>"
        )
        (entry,) = parse_body(body, {"content-type": ATOM}, fast=fast).entries
        assert entry.guid == "urn:uuid:6f1c-1" and entry.link == ""
        return entry.url

    # A corrected title is the same item, not a second one.
    assert url_of("Titre initial") == url_of("Titre corrigé") == "urn:pressreview:urn:uuid:6f1c-1"


@pytest.mark.parametrize("fast", [True, False], ids=["fastfeedparser", "feedparser"])
@pytest.mark.parametrize(
    ("author", "name"),
    [
        ("Jeanne Doe (jdoe@example.fr)", "Jeanne Doe"),
        ("jdoe@example.fr (Jeanne Doe)", "Jeanne Doe"),
        ("Jeanne Doe &lt;jdoe@example.fr&gt;", "Jeanne Doe"),
        ("jdoe@example.fr", None),  # an address alone tells readers nothing
    ],
)
def test_the_author_is_the_name_without_the_address(
    fast: bool, author: str, name: str | None
) -> None:
    body = _rss(
        "<item><title>Titre</title><link>https://veille.example.fr/1</link>"
        f"<author>{author}</author></item>"
    )
    (entry,) = parse_body(body, {"content-type": RSS}, fast=fast).entries
    assert entry.author == name


@pytest.mark.parametrize("fast", [True, False], ids=["fastfeedparser", "feedparser"])
@pytest.mark.parametrize(
    "date", ["Thu, 01 Jan 1970 00:00:00 GMT", "1970-01-01T00:00:00Z", "0001-01-01T00:00:00Z"]
)
def test_a_placeholder_date_is_no_date(fast: bool, date: str) -> None:
    body = _rss(
        "<item><title>Titre</title><link>https://veille.example.fr/1</link>"
        f"<pubDate>{date}</pubDate></item>"
    )
    (entry,) = parse_body(body, {"content-type": RSS}, fast=fast).entries
    assert entry.published_at is None  # the store then dates it when first seen
