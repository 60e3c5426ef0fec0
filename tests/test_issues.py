"""Drafts, publishing and frozen snapshots, on a store filled by collecting the demo feeds."""

from __future__ import annotations

import dataclasses
import email
import email.policy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update

from pressreview import curate, issues, render
from pressreview.collect import collect
from pressreview.config import Config
from pressreview.errors import NotFound, Refused, UsageError
from pressreview.store import Store
from pressreview.store.schema import events, items

DEMO = ["google-actualites.xml", "presse-hdf.xml", "courrier-picardie.xml", "prefecture-hdf.xml"]


def select_items(store: Store, ids: list[int], section: str | None = None) -> None:
    """The curation stage's selection (the one line to change if its API moves)."""
    curate.select_items(store, ids, section=section, actor="test")


def item_id(store: Store, title_start: str) -> int:
    with store.connect() as conn:
        rows = conn.execute(select(items.c.id, items.c.title)).all()
    matches = [r.id for r in rows if r.title.startswith(title_start)]
    assert len(matches) == 1, f"{title_start!r}: {len(matches)} items"
    return int(matches[0])


@pytest.fixture
def filled(
    make_config: Callable[..., Config],
    store_url: str,
    demo_feed_url: Callable[[str], str],
    store_for: Callable[[Config], Store],
) -> tuple[Config, Store]:
    feeds = [{"name": name.removesuffix(".xml"), "url": demo_feed_url(name)} for name in DEMO]
    config = make_config(database_url=store_url, feeds=feeds)
    store = store_for(config)
    for feed in feeds:  # one at a time: which copy of a story leads is then fixed
        report = collect(config, store, only=[feed["name"]])
        assert [s.status for s in report.sources] == ["ok"]
    return config, store


def ids_of(store: Store) -> dict[str, int]:
    """A few demo stories by a short name."""
    return {
        "amiens": item_id(
            store, "Amiens Métropole signe l’avenant de son contrat de ville Quartiers 2030 avec"
        ),
        "amiens-courrier": item_id(store, "Amiens Métropole signe enfin"),
        "amiens-prefecture": item_id(store, "Signature de l’avenant au contrat de ville"),
        "compiegne": item_id(store, "Compiègne : le Clos-des-Roses"),
        "dunkerque": item_id(store, "Dunkerque : la CUD lance"),
        "creil": item_id(store, "Creil : l'abattement TFPB"),
        "emplois": item_id(store, "Emplois francs : le dispositif"),
        "soissons": item_id(store, "Soissons : GrandSoissons"),
    }  # fmt: skip


def outline_ids(snapshot: dict[str, Any]) -> list[tuple[str, list[int]]]:
    return [(s["key"], [i["id"] for i in s["items"]]) for s in snapshot["sections"]]


def test_draft_gathers_selected_items_by_section_then_position(filled) -> None:
    config, store = filled
    ids = ids_of(store)
    select_items(store, [ids["amiens-prefecture"], ids["amiens"]], section="signatures")
    select_items(store, [ids["dunkerque"], ids["compiegne"]], section="renouvellement")
    select_items(store, [ids["creil"]], section="vie-des-quartiers")
    select_items(store, [ids["emplois"]])  # no section: "autres", last
    issues.new_draft(
        config, store, title="Quartiers 2030 : où en sont les signatures ?", actor="ed"
    )
    snap = issues.draft_snapshot(config, store)
    assert outline_ids(snap) == [
        ("signatures", [ids["amiens-prefecture"], ids["amiens"]]),
        ("renouvellement", [ids["dunkerque"], ids["compiegne"]]),
        ("vie-des-quartiers", [ids["creil"]]),
        ("autres", [ids["emplois"]]),
    ]
    assert snap["draft"] is True and snap["number"] == 1 and snap["item_count"] == 6
    assert [s["title"] for s in snap["sections"]][-1] == "Autres actualités"
    amiens = snap["sections"][0]["items"][1]
    # The other outlet of the story (collected as a near-duplicate) is listed once.
    assert [a["outlet"] for a in amiens["also"]] == ["presse-hdf", "courrier-picardie"]
    assert amiens["also"][0]["url"].startswith("https://")
    assert amiens["outlet"] and amiens["date"] and amiens["published_at"].endswith("+00:00")
    assert amiens["territories"] == ["Amiens Métropole"]


def test_refresh_gathers_new_selections_and_lets_go_of_others(filled) -> None:
    config, store = filled
    ids = ids_of(store)
    select_items(store, [ids["amiens"]], section="signatures")
    issues.new_draft(config, store, title="Numéro", actor="ed")
    select_items(store, [ids["creil"]], section="vie-des-quartiers")
    report = issues.refresh_draft(config, store, actor="ed")
    assert (report.joined, report.left, report.item_count) == (1, 0, 2)
    curate.reset_items(store, [ids["amiens"]], actor="test")
    report = issues.refresh_draft(config, store, actor="ed")
    assert (report.joined, report.left, report.item_count) == (0, 1, 1)
    assert outline_ids(issues.draft_snapshot(config, store)) == [
        ("vie-des-quartiers", [ids["creil"]])
    ]


def test_publish_freezes_the_snapshot_and_rerenders_identically(filled) -> None:
    config, store = filled
    ids = ids_of(store)
    select_items(store, [ids["amiens"], ids["amiens-courrier"]], section="signatures")
    select_items(store, [ids["creil"]])
    curate.edit_item(store, ids["creil"], title="Creil : des gardiens grâce à la TFPB",
                     summary="Résumé rédigé par l'équipe.", actor="ed")  # fmt: skip
    issues.new_draft(
        config, store, title="Quartiers 2030", intro_md="Bonjour **à tous**.", actor="ed"
    )
    snap = issues.publish(config, store, actor="ed")
    assert snap["number"] == 1 and snap["schema"] == 1 and "draft" not in snap
    assert snap["intro_html"] == "<p>Bonjour <strong>à tous</strong>.</p>"
    assert snap["archive_url"] == "https://veille.example.org/numeros/1/"
    assert snap["organisation"]["name"] == "Centre de ressources test"
    creil = next(i for s in snap["sections"] for i in s["items"] if i["id"] == ids["creil"])
    assert creil["title"] == "Creil : des gardiens grâce à la TFPB"
    assert creil["excerpt"] == "Résumé rédigé par l'équipe."
    assert creil["summary_html"] == "<p>Résumé rédigé par l'équipe.</p>"
    assert issues.get_snapshot(store, 1) == snap
    with store.connect() as conn:
        rows = {r.id: r for r in conn.execute(select(items)).mappings()}
        log = (
            conn.execute(select(events).where(events.c.action == "issue.publish")).mappings().all()
        )
    for key in ("amiens", "amiens-courrier", "creil"):
        assert rows[ids[key]].status == "published" and rows[ids[key]].issue_id is not None
    assert len(log) == 1 and log[0].actor == "ed" and log[0].details["number"] == 1
    first = render.render_email(config, issues.get_snapshot(store, 1))

    # Everything changes in the store afterwards: the issue's email does not.
    with store.begin() as conn:
        conn.execute(update(items).values(title="Changé", title_edited=None, outlet="Autre",
                                          excerpt="Autre texte", summary_edited=None))  # fmt: skip
    select_items(store, [ids["dunkerque"]], section="renouvellement")
    issues.new_draft(config, store, title="Suivant", actor="ed")
    again = render.render_email(config, issues.get_snapshot(store, 1))
    assert again == first
    # The organisation's details are frozen too: a later config change does not alter it.
    renamed = dataclasses.replace(
        config, organisation=dataclasses.replace(config.organisation, name="Nouveau nom")
    )
    assert render.render_email(renamed, issues.get_snapshot(store, 1)) == first
    assert again.html.encode() == first.html.encode() and again.text == first.text


def test_publish_refuses_an_empty_draft_and_a_second_publish(filled) -> None:
    config, store = filled
    with pytest.raises(Refused, match="no draft in progress"):
        issues.publish(config, store, actor="ed")
    issues.new_draft(config, store, title="Vide", actor="ed")
    with pytest.raises(Refused, match="the draft is empty"):
        issues.publish(config, store, actor="ed")
    select_items(store, [ids_of(store)["soissons"]])
    assert issues.publish(config, store, actor="ed")["number"] == 1
    with pytest.raises(Refused, match="issue n° 1 is published; no draft in progress"):
        issues.publish(config, store, actor="ed")


def test_issues_are_numbered_in_sequence_and_listed(filled) -> None:
    config, store = filled
    ids = ids_of(store)
    for n, key in enumerate(["amiens", "creil", "soissons"], start=1):
        select_items(store, [ids[key]])
        issues.new_draft(config, store, title=f"Numéro {n}", actor="ed")
        assert issues.publish(config, store, actor="ed")["number"] == n
    listed = issues.list_issues(store)
    assert [(i.number, i.title, i.item_count) for i in listed] == [
        (3, "Numéro 3", 1), (2, "Numéro 2", 1), (1, "Numéro 1", 1),
    ]  # fmt: skip
    with pytest.raises(NotFound, match="no published issue n° 9"):
        issues.get_snapshot(store, 9)


def test_one_draft_at_a_time_and_edits(filled) -> None:
    config, store = filled
    issues.new_draft(config, store, title="Premier", actor="ed")
    with pytest.raises(Refused, match="already in progress"):
        issues.new_draft(config, store, title="Second", actor="ed")
    with pytest.raises(UsageError, match="title is empty"):
        issues.edit_draft(config, store, title="   ", actor="ed")
    draft = issues.edit_draft(config, store, title="Premier numéro", intro_md="Édito", actor="ed")
    assert (draft.title, draft.intro_md, draft.version) == ("Premier numéro", "Édito", 2)
    issues.discard_draft(config, store, actor="ed")
    assert issues.current_draft(config, store) is None


def test_a_broken_template_refuses_to_publish(filled, tmp_path: Path) -> None:
    config, store = filled
    themes = tmp_path / "themes" / "email"
    themes.mkdir(parents=True)
    (themes / "issue.txt.j2").write_text("{{ issue.title }}\n{{ oops }}\n", encoding="utf-8")
    broken = dataclasses.replace(config, templates_dir=str(tmp_path / "themes"))
    select_items(store, [ids_of(store)["soissons"]])
    issues.new_draft(broken, store, title="Numéro", actor="ed")
    with pytest.raises(Exception, match=r"issue.txt.j2, line 2"):
        issues.publish(broken, store, actor="ed")
    assert issues.current_draft(config, store) is not None  # nothing frozen
    assert issues.list_issues(store) == []


def test_outline_warns_about_size_missing_sections_and_doubles(filled) -> None:
    config, store = filled
    ids = ids_of(store)
    select_items(store, [ids["amiens"], ids["emplois"]])
    with store.begin() as conn:  # no date from the feed, no outlet
        conn.execute(update(items).where(items.c.id == ids["amiens"]).values(date_is_fallback=True))
        conn.execute(update(items).where(items.c.id == ids["emplois"]).values(outlet=None))
    issues.new_draft(config, store, title="Numéro", actor="ed")
    tight = dataclasses.replace(
        config, email=dataclasses.replace(config.email, max_html_bytes=20_000)
    )
    outline = issues.draft_outline(tight, store)
    text = "\n".join(outline.warnings)
    assert "without a publication date" in text and str(ids["amiens"]) in text
    assert "in no configured section" in text and str(ids["emplois"]) in text
    assert "Gmail clips" in text
    assert "without an outlet" in text
    assert outline.html_bytes and outline.html_bytes > 17_000
    entries = {i["id"]: i for s in outline.snapshot["sections"] for i in s["items"]}
    assert entries[ids["amiens"]]["date"] is None
    assert entries[ids["emplois"]]["outlet"] == "prefecture-hdf"  # the source's name


# -- the command line ------------------------------------------------------------


def test_cli_end_to_end(filled, cli, tmp_path: Path) -> None:
    config, store = filled
    ids = ids_of(store)
    select_items(store, [ids["amiens"], ids["amiens-courrier"]], section="signatures")
    select_items(store, [ids["compiegne"]], section="renouvellement")

    missing = cli(config, "issue", "new", "--title", "X", "--intro", str(tmp_path / "nope.md"))
    assert missing.exit_code == 2 and "nope.md: no such file" in missing.output

    intro = tmp_path / "intro.md"
    intro.write_text("Bonjour,\n\nvoici **la revue** de la semaine.", encoding="utf-8")
    new = cli(config, "issue", "new", "--title", "Quartiers 2030 : où en sont les signatures ?",
              "--intro", str(intro))  # fmt: skip
    assert new.exit_code == 0, new.output
    assert "3 selected item(s)" in new.output

    shown = cli(config, "issue", "show")
    assert shown.exit_code == 0, shown.output
    assert "Signatures (2)" in shown.output and "Renouvellement urbain (1)" in shown.output
    assert "email HTML:" in shown.output
    as_json = json.loads(cli(config, "issue", "show", "--json").output)
    assert as_json["snapshot"]["item_count"] == 3
    doubles = f"{ids['amiens-courrier']} (other outlet of {ids['amiens']})"
    assert [w for w in as_json["warnings"] if "selected twice" in w] == [
        f"the same story is selected twice: {doubles}"
    ]

    preview = cli(config, "issue", "preview", "--out", str(tmp_path / "preview"))
    assert preview.exit_code == 0, preview.output
    assert "voici <strong>la revue</strong>" in (tmp_path / "preview" / "email.html").read_text()

    published = cli(config, "issue", "publish")
    assert published.exit_code == 0, published.output
    assert "Published n° 1" in published.output
    again = cli(config, "issue", "publish")
    assert again.exit_code == 1 and "no draft in progress" in again.output

    listed = cli(config, "issue", "list")
    assert listed.exit_code == 0 and "Quartiers 2030" in listed.output

    out = tmp_path / "out"
    rendered = cli(config, "issue", "render", "1", "--out", str(out))
    assert rendered.exit_code == 0, rendered.output
    assert sorted(p.name for p in out.iterdir()) == ["email.eml", "email.html", "email.txt"]
    message = email.message_from_bytes(
        (out / "email.eml").read_bytes(), policy=email.policy.default
    )
    assert message.get_content_type() == "multipart/alternative"
    parts = list(message.iter_parts())
    assert [p.get_content_type() for p in parts] == ["text/plain", "text/html"]
    assert all(p.get_content_charset() == "utf-8" for p in parts)
    html = parts[1].get_content()
    assert render.check_email_html(html) == []
    assert "Quartiers 2030\u00a0: où en sont les signatures\u202f?" in html
    assert "Se désabonner" in html and render.UNSUBSCRIBE_PLACEHOLDER in html

    unknown = cli(config, "issue", "render", "7", "--out", str(out))
    assert unknown.exit_code == 1 and "no published issue n° 7" in unknown.output
    shown_published = cli(config, "issue", "show", "1")
    assert shown_published.exit_code == 0 and "published · n° 1" in shown_published.output


def test_cli_refuses_empty_publish(filled, cli) -> None:
    config, _store = filled
    assert cli(config, "issue", "new", "--title", "Vide").exit_code == 0
    shown = cli(config, "issue", "show")
    assert "the draft is empty" in shown.output
    result = cli(config, "issue", "publish")
    assert result.exit_code == 1
    assert "the draft is empty" in result.output and "Traceback" not in result.output


def test_stale_changes_of_a_draft_are_not_applied(filled) -> None:
    config, store = filled
    issues.new_draft(config, store, title="Numéro", actor="ed")
    from pressreview.store import issues as q

    with store.begin() as conn:
        row = q.current_draft(conn)
        assert row is not None
        assert q.update_draft(conn, row["id"], row["version"], title="Par quelqu'un d'autre")
        assert not q.update_draft(conn, row["id"], row["version"], title="Version périmée")
        stale = q.publish_issue(
            conn, row["id"], version=row["version"], number=1, title="x", snapshot={}, at=q.now()
        )
        assert not stale
    draft = issues.current_draft(config, store)
    assert draft is not None and (draft.title, draft.version) == ("Par quelqu'un d'autre", 2)


def test_an_excerpt_that_only_repeats_title_and_outlet_is_left_out(filled) -> None:
    config, store = filled
    google = item_id(store, "Beauvais : le conseil citoyen")  # description: title + outlet
    real = ids_of(store)["compiegne"]
    select_items(store, [google, real], section="signatures")
    issues.new_draft(config, store, title="Numéro", actor="ed")
    entries = {
        i["id"]: i for s in issues.draft_snapshot(config, store)["sections"] for i in s["items"]
    }
    assert entries[google]["excerpt"] == "" and entries[google]["summary_html"] == ""
    assert entries[real]["excerpt"] and entries[real]["summary_html"]
    text = render.render_email(config, issues.draft_snapshot(config, store)).text
    assert "bailleurs sociaux Oise Hebdo Info" not in text


@pytest.mark.parametrize(
    ("excerpt", "redundant"),
    [
        ("Lille : la MEL adopte un avenant Lille Actu", True),
        ("Lille : la MEL adop…", True),
        ("", True),
        ("Lille : la MEL adopte un avenant signé mardi", False),
        ("Lille : la MEL adopte un avenant sign…", False),
    ],
)
def test_adds_nothing(excerpt: str, redundant: bool) -> None:
    assert (
        issues.adds_nothing(excerpt, "Lille : la MEL adopte un avenant", "Lille Actu") is redundant
    )


def test_preview_open_without_a_display_says_where_the_files_are(
    filled, cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config, store = filled
    select_items(store, [ids_of(store)["compiegne"]], section="renouvellement")
    issues.new_draft(config, store, title="Numéro", actor="ed")
    for name in ("DISPLAY", "WAYLAND_DISPLAY"):
        monkeypatch.delenv(name, raising=False)
    result = cli(config, "issue", "preview", "--open", "--out", str(tmp_path / "p"))
    assert result.exit_code == 0, result.output
    assert f"open {(tmp_path / 'p' / 'email.html').resolve().as_uri()}" in result.output


def test_the_lead_outlet_is_not_listed_again_under_another_spelling(
    make_config: Callable[..., Config],
) -> None:
    """A source named with ' and a Google News copy spelt with ’ are one outlet."""
    from datetime import UTC, datetime

    def row(item_id: int, outlet: str, url: str) -> Any:
        stamp = datetime(2026, 11, 20, 9, tzinfo=UTC)
        return {
            "id": item_id, "url": url, "link": url, "title": "Arras signe son contrat de ville",
            "title_edited": None, "summary_html": "", "summary_edited": None, "excerpt": "",
            "outlet": outlet, "author": None, "published_at": stamp, "date_is_fallback": False,
            "tags": [], "territories": [], "status": "selected", "section": None,
            "position": None, "duplicate_of": None, "issue_id": None, "version": 1,
            "first_seen_at": stamp, "source_name": outlet,
        }  # fmt: skip

    lead = row(1, "L'Écho des Hauts-de-France", "https://echo.example.fr/arras")
    also = [
        row(2, "L’écho des Hauts–de–France", "https://news.example.com/echo-arras"),
        row(3, "La Voix du Nord", "https://lavoix.example.fr/arras"),
        row(4, "la voix  du nord", "https://lavoix.example.fr/arras-bis"),
    ]
    entry = issues.item_entry(make_config(), lead, also)
    assert [a["outlet"] for a in entry["also"]] == ["La Voix du Nord"]
