"""The agenda: calendars collected over HTTP, events read in items, staff commands."""

from __future__ import annotations

import json
import multiprocessing
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime
from typing import Any

import icalendar
import pytest
from click.testing import Result
from sqlalchemy import delete, select
from werkzeug import Response

from pressreview import agenda
from pressreview.agenda.ical import NotACalendar, parse_calendar, plan_calendar
from pressreview.collect import collect
from pressreview.config import Config
from pressreview.store import Store
from pressreview.store.schema import agenda_events, events
from tests.fixtures_collect import FAST_COLLECT, rss

NOW = datetime(2027, 1, 10, 9, 0, tzinfo=UTC)
PARIS = "Europe/Paris"

VTIMEZONE = """BEGIN:VTIMEZONE
TZID:Europe/Paris
BEGIN:DAYLIGHT
TZOFFSETFROM:+0100
TZOFFSETTO:+0200
TZNAME:CEST
DTSTART:19700329T020000
RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU
END:DAYLIGHT
BEGIN:STANDARD
TZOFFSETFROM:+0200
TZOFFSETTO:+0100
TZNAME:CET
DTSTART:19701025T030000
RRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU
END:STANDARD
END:VTIMEZONE
"""


def vevent(
    uid: str,
    start: str,
    end: str | None = None,
    *,
    summary: str = "Réunion",
    extra: str = "",
    tzid: str | None = PARIS,
) -> str:
    if len(start) == 8:  # all day
        dt = f"DTSTART;VALUE=DATE:{start}\n" + (f"DTEND;VALUE=DATE:{end}\n" if end else "")
    else:
        zone = f";TZID={tzid}" if tzid else ""
        dt = f"DTSTART{zone}:{start}\n" + (f"DTEND{zone}:{end}\n" if end else "")
    return (
        f"BEGIN:VEVENT\nUID:{uid}\nDTSTAMP:20270101T000000Z\n{dt}SUMMARY:{summary}\n{extra}"
        "END:VEVENT\n"
    )


def calendar(*events_: str) -> bytes:
    body = (
        "BEGIN:VCALENDAR\nVERSION:2.0\nPRODID:-//Centre de ressources//Agenda//FR\n"
        + VTIMEZONE
        + "".join(events_)
        + "END:VCALENDAR\n"
    )
    return body.replace("\n", "\r\n").encode("utf-8")


FIRST = calendar(
    vevent(
        "seminaire@crpv",
        "20270204T093000",
        "20270204T163000",
        summary="Séminaire régional Quartiers 2030",
        extra="LOCATION:Lille\\, Maison de la région\nURL:https://crpv.example.org/seminaire\n",
    ),
    # Weekly, across the change to summer time (28 March 2027).
    vevent(
        "reseau@crpv",
        "20270317T170000",
        "20270317T190000",
        summary="Réseau des chefs de projet (visio)",
        extra="RRULE:FREQ=WEEKLY;COUNT=3\n",
    ),
    vevent("forum@crpv", "20270310", "20270312", summary="Forum des quartiers"),
    vevent("annule@crpv", "20270220T100000", "20270220T120000", summary="Atelier GUSP"),
    vevent("retire@crpv", "20270225T100000", "20270225T120000", summary="Atelier retiré"),
)

SECOND = calendar(
    vevent(
        "seminaire@crpv",
        "20270204T100000",
        "20270204T170000",
        summary="Séminaire régional Quartiers 2030 (horaires modifiés)",
        extra="SEQUENCE:1\nLOCATION:Lille\nURL:https://crpv.example.org/seminaire\n",
    ),
    vevent(
        "reseau@crpv",
        "20270317T170000",
        "20270317T190000",
        summary="Réseau des chefs de projet (visio)",
        extra="RRULE:FREQ=WEEKLY;COUNT=3\n",
    ),
    vevent("forum@crpv", "20270310", "20270312", summary="Forum des quartiers"),
    vevent(
        "annule@crpv",
        "20270220T100000",
        "20270220T120000",
        summary="Atelier GUSP",
        extra="SEQUENCE:1\nSTATUS:CANCELLED\n",
    ),
)


def _events(store: Store) -> dict[str, dict[str, Any]]:
    with store.connect() as conn:
        rows = conn.execute(select(agenda_events).order_by(agenda_events.c.starts_at)).mappings()
        return {r["uid"]: dict(r) for r in rows}


def _calendar_config(make_config: Callable[..., Config], url: str, **extra: Any) -> Config:
    return make_config(
        feeds=[{"name": "Agenda du centre", "url": url, "kind": "ical"}, *extra.pop("feeds", [])],
        collect=FAST_COLLECT,
        **extra,
    )


def test_calendar_collected_updated_and_cancelled(
    httpserver: Any, make_config: Callable[..., Config], store_for: Callable[[Config], Store]
) -> None:
    httpserver.expect_ordered_request("/agenda.ics").respond_with_data(
        FIRST, content_type="text/calendar"
    )
    httpserver.expect_ordered_request("/agenda.ics").respond_with_data(
        SECOND, content_type="text/calendar"
    )
    config = _calendar_config(make_config, httpserver.url_for("/agenda.ics"))
    store = store_for(config)

    report = collect(config, store, now=NOW, workers=0)
    [source] = report.sources
    assert source.status == "ok", source.error
    stored = _events(store)
    # 1 + 3 occurrences + 1 all-day + 2 = 7
    assert source.new == 7 and len(stored) == 7
    seminar = stored["seminaire@crpv"]
    assert seminar["place"] == "Lille, Maison de la région"
    assert seminar["url"] == "https://crpv.example.org/seminaire"
    assert seminar["starts_at"] == datetime(2027, 2, 4, 8, 30, tzinfo=UTC)  # 9:30 in winter
    weekly = sorted(v["starts_at"] for k, v in stored.items() if k.startswith("reseau@crpv#"))
    # 17:00 in Paris: 16:00 UTC before the change to summer time, 15:00 UTC after it.
    assert weekly == [
        datetime(2027, 3, 17, 16, 0, tzinfo=UTC),
        datetime(2027, 3, 24, 16, 0, tzinfo=UTC),
        datetime(2027, 3, 31, 15, 0, tzinfo=UTC),
    ]
    assert all(stored[k]["online"] for k in stored if k.startswith("reseau@crpv#"))
    forum = stored["forum@crpv"]
    assert forum["all_day"] and forum["starts_at"] == datetime(2027, 3, 9, 23, 0, tzinfo=UTC)

    report = collect(config, store, now=NOW, workers=0)
    [source] = report.sources
    assert source.status == "ok", source.error
    stored = _events(store)
    assert stored["seminaire@crpv"]["title"].endswith("(horaires modifiés)")
    assert stored["seminaire@crpv"]["starts_at"] == datetime(2027, 2, 4, 9, 0, tzinfo=UTC)
    assert stored["annule@crpv"]["status"] == "cancelled"
    assert stored["retire@crpv"]["status"] == "cancelled"  # no longer listed
    assert stored["forum@crpv"]["status"] == "confirmed"
    upcoming = agenda.list_events(store, start=NOW)
    assert "annule@crpv" not in {e.uid for e in upcoming}


BAD_CALENDARS: dict[str, tuple[bytes, str]] = {
    "html": (b"<!doctype html><html><body>Agenda</body></html>", "not an iCalendar file"),
    "broken": (b"BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nDTSTART:zzz\r\n", "iCalendar"),
}


@pytest.mark.parametrize("case", sorted(BAD_CALENDARS))
def test_bad_calendar_fails_alone_and_loses_nothing(
    case: str,
    httpserver: Any,
    make_config: Callable[..., Config],
    store_for: Callable[[Config], Store],
) -> None:
    body, message = BAD_CALENDARS[case]
    bodies = [FIRST, body]
    httpserver.expect_request("/agenda.ics").respond_with_handler(
        lambda request: Response(bodies.pop(0), content_type="text/calendar")
    )
    news = rss("Presse", [("g1", "https://presse.example.fr/a", "Le contrat de ville signé")])
    httpserver.expect_request("/news.xml").respond_with_data(
        news, content_type="application/rss+xml"
    )
    config = _calendar_config(
        make_config,
        httpserver.url_for("/agenda.ics"),
        feeds=[{"name": "Presse", "url": httpserver.url_for("/news.xml")}],
    )
    store = store_for(config)
    collect(config, store, now=NOW, workers=0)
    before = _events(store)
    report = collect(config, store, now=NOW, workers=0, force=True)
    calendar_report = next(s for s in report.sources if s.name == "Agenda du centre")
    assert calendar_report.status == "failed"
    assert message in (calendar_report.error or "")
    assert "\n" not in (calendar_report.error or "")
    assert _events(store) == before  # nothing stored is lost


def test_bad_events_left_out_one_line_each() -> None:
    body = calendar(
        vevent("ok@x", "20270204T093000", "20270204T103000", summary="Bon"),
        vevent("reverse@x", "20270204T093000", "20270204T083000", summary="À l'envers"),
        vevent("zone@x", "20270205T093000", "20270205T103000", summary="Zone", tzid="Mars/Olympus"),
        "BEGIN:VEVENT\nUID:malformed@x\nDTSTAMP:20270101T000000Z\nDTSTART:2027-02-31 aa\n"
        "SUMMARY:Date illisible\nEND:VEVENT\n",
        vevent(
            "forever@x",
            "20270101T090000",
            "20270101T100000",
            summary="Chaque jour",
            extra="RRULE:FREQ=DAILY\n",
        ),
    )
    start, end = datetime(2027, 1, 10, tzinfo=UTC), datetime(2027, 7, 10, tzinfo=UTC)
    parsed = parse_calendar(body, tz=_tz(), start=start, end=end, max_events=100)
    uids = [e.uid for e in parsed.events]
    assert "ok@x" in uids and "reverse@x" not in uids and "zone@x" not in uids
    assert any("ends before it starts" in s for s in parsed.skipped)
    assert any("unknown time zone 'Mars/Olympus'" in s for s in parsed.skipped)
    assert "event malformed@x: unreadable DTSTART" in parsed.skipped
    # A rule that never ends: bounded by the window and the cap.
    assert parsed.truncated and len(parsed.events) == 100
    assert parsed.warning is not None and "\n" not in parsed.warning


def test_huge_calendar_is_refused_by_the_size_cap(
    httpserver: Any, make_config: Callable[..., Config], store_for: Callable[[Config], Store]
) -> None:
    one = vevent("big@x", "20270204T093000", "20270204T103000", summary="x" * 900)
    body = calendar(*(one.replace("big@x", f"big{i}@x") for i in range(3000)))  # ~3 MB
    assert len(body) > FAST_COLLECT["max_bytes"]
    httpserver.expect_request("/agenda.ics").respond_with_data(body, content_type="text/calendar")
    config = _calendar_config(make_config, httpserver.url_for("/agenda.ics"))
    store = store_for(config)
    [source] = collect(config, store, now=NOW, workers=0).sources
    assert source.status == "failed" and _events(store) == {}


def test_not_a_calendar() -> None:
    with pytest.raises(NotACalendar):
        parse_calendar(b"hello", tz=_tz(), start=NOW, end=NOW)


def _tz() -> Any:
    from zoneinfo import ZoneInfo

    return ZoneInfo(PARIS)


class _Stored:
    def __init__(self, id: int, uid: str, sequence: int, status: str, starts_at: datetime):
        self.id, self.uid, self.sequence, self.status, self.starts_at = (
            id,
            uid,
            sequence,
            status,
            starts_at,
        )


def test_plan_ignores_older_sequences() -> None:
    parsed = parse_calendar(
        calendar(vevent("a@x", "20270204T093000", "20270204T103000", extra="SEQUENCE:1\n")),
        tz=_tz(),
        start=NOW,
        end=datetime(2027, 6, 1, tzinfo=UTC),
    )
    stored = {"a@x": _Stored(1, "a@x", 2, "confirmed", NOW)}
    plan = plan_calendar(stored, parsed.events, window_start=NOW)
    assert plan.updated == [] and plan.new == [] and plan.cancelled == []
    stored = {"a@x": _Stored(1, "a@x", 0, "confirmed", NOW)}
    assert [i for i, _ in plan_calendar(stored, parsed.events, window_start=NOW).updated] == [1]


# -- events announced in items --------------------------------------------------------


ANNOUNCE = (
    '<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel><title>Centre</title>'
    "<link>https://crpv.example.org/</link>"
    "<item><title>Cycle de webinaires Quartiers 2030</title>"
    "<link>https://crpv.example.org/webinaires</link><guid>w1</guid>"
    "<pubDate>Mon, 04 Jan 2027 10:00:00 +0100</pubDate>"
    "<description>&lt;p&gt;Un rendez-vous par mois, en visio, le mercredi, de 17h00 à 19h00. "
    "Premier semestre : 3 février, 3 mars et 7 avril. "
    '&lt;a href="https://crpv.example.org/inscription"&gt;Inscription&lt;/a&gt;&lt;/p&gt;'
    "</description></item>"
    "<item><title>Le contrat de ville de Creil signé</title>"
    "<link>https://presse.example.fr/creil</link><guid>w2</guid>"
    "<pubDate>Mon, 04 Jan 2027 11:00:00 +0100</pubDate>"
    "<description>Signé le 19 décembre en préfecture.</description></item>"
    "</channel></rss>"
)


@pytest.fixture
def announced(
    httpserver: Any,
    make_config: Callable[..., Config],
    store_for: Callable[[Config], Store],
) -> tuple[Config, Store]:
    httpserver.expect_request("/centre.xml").respond_with_data(
        ANNOUNCE, content_type="application/rss+xml"
    )
    config = make_config(
        feeds=[{"name": "Centre", "url": httpserver.url_for("/centre.xml")}], collect=FAST_COLLECT
    )
    store = store_for(config)
    report = collect(config, store, now=NOW, workers=0)
    assert report.proposed_events == 3
    return config, store


def test_items_announcing_events_get_proposals(announced: tuple[Config, Store]) -> None:
    _config, store = announced
    proposed = agenda.list_events(store, statuses=("proposed",))
    assert [e.starts_at for e in proposed] == [
        datetime(2027, 2, 3, 16, 0, tzinfo=UTC),
        datetime(2027, 3, 3, 16, 0, tzinfo=UTC),
        datetime(2027, 4, 7, 15, 0, tzinfo=UTC),
    ]
    assert all(e.online and e.url == "https://crpv.example.org/inscription" for e in proposed)
    assert agenda.list_events(store) == []  # nothing confirmed yet


def test_from_item_and_dismiss_through_the_cli(
    announced: tuple[Config, Store], cli: Callable[..., Result]
) -> None:
    config, store = announced
    [item_id] = {e.item_id for e in agenda.list_events(store, statuses=("proposed",))}
    result = cli(config, "--as", "alice", "events", "from-item", str(item_id), "--json")
    assert result.exit_code == 0, result.output
    accepted = json.loads(result.output)
    assert [e["status"] for e in accepted] == ["confirmed"] * 3
    result = cli(config, "events", "list", "--from", "2027-01-01", "--json")
    assert [e["start"] for e in json.loads(result.output)] == [
        "2027-02-03T16:00:00+00:00",
        "2027-03-03T16:00:00+00:00",
        "2027-04-07T15:00:00+00:00",
    ]
    result = cli(config, "--as", "bob", "events", "dismiss", str(accepted[0]["id"]))
    assert result.exit_code == 0
    with store.connect() as conn:
        actions = [(r.actor, r.action) for r in conn.execute(select(events).order_by(events.c.id))]
    assert ("alice", "agenda.accept") in actions and ("bob", "agenda.edit") in actions
    # The item that reports a past signing announces nothing.
    other = item_id + 1
    result = cli(config, "events", "from-item", str(other))
    assert result.exit_code == 2 and "announces no event" in result.output


def test_staff_add_edit_remove(
    make_config: Callable[..., Config],
    store_for: Callable[[Config], Store],
    cli: Callable[..., Result],
) -> None:
    config = make_config()
    result = cli(
        config,
        "events",
        "add",
        "--title",
        "Réunion publique NPNRU",
        "--start",
        "2027-03-01 18:00",
        "--end",
        "2027-03-01 20:00",
        "--place",
        "Amiens, salle Dewailly",
        "--territory",
        "Amiens",
        "--url",
        "https://amiens.example.fr/npnru",
        "--json",
    )
    assert result.exit_code == 0, result.output
    event = json.loads(result.output)
    assert event["territory"] == "Amiens Métropole"
    assert event["start"] == "2027-03-01T17:00:00+00:00"
    result = cli(config, "events", "edit", str(event["id"]), "--start", "2027-03-01 18:30")
    assert result.exit_code == 0
    result = cli(config, "events", "list", "--from", "2027-03-01", "--to", "2027-03-01")
    assert "lundi 1er mars 2027, 18\u00a0h\u00a030" in result.output
    result = cli(config, "events", "remove", str(event["id"]))
    assert result.exit_code == 0
    assert cli(config, "events", "list", "--all").output.strip() == "No event."


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--start", "2027-03-01 18:00", "--end", "2027-03-01 17:00"], "end before it starts"),
        (["--start", "1er mars"], "not a date"),
        (["--start", "2027-03-01", "--url", "javascript:alert(1)"], "only http and https"),
        (["--start", "2027-03-01", "--territory", "Gotham"], "unknown territory"),
    ],
)
def test_bad_staff_input_one_line(
    args: list[str], message: str, make_config: Callable[..., Config], cli: Callable[..., Result]
) -> None:
    config = make_config()
    result = cli(config, "events", "add", "--title", "X", *args)
    assert result.exit_code == 2
    assert message in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_format_when() -> None:
    from zoneinfo import ZoneInfo

    from pressreview.config import parse_config

    config = parse_config({})
    paris = ZoneInfo(PARIS)
    start = datetime(2027, 4, 7, 17, 0, tzinfo=paris)
    end = datetime(2027, 4, 7, 19, 0, tzinfo=paris)
    assert (
        agenda.format_when(start, end, False, config) == "mercredi 7 avril, 17\u00a0h – 19\u00a0h"
    )
    day = datetime(2027, 6, 1, 0, 0, tzinfo=paris)
    three = datetime(2027, 6, 4, 0, 0, tzinfo=paris)
    assert agenda.format_when(day, three, True, config) == "du mardi 1er juin au jeudi 3 juin"


# -- in the email --------------------------------------------------------------------


def _entries(config: Config) -> list[dict[str, Any]]:
    from zoneinfo import ZoneInfo

    paris = ZoneInfo(PARIS)
    views = [
        agenda.EventView(
            id=1, uid="a@x", origin="staff", status="confirmed", title="Webinaire Quartiers 2030",
            description="", starts_at=datetime(2027, 1, 12, 17, 0, tzinfo=paris),
            ends_at=datetime(2027, 1, 12, 19, 0, tzinfo=paris), all_day=False, place=None,
            online=True, url="https://crpv.example.org/inscription", territory=None,
            item_id=None, source=None, version=1,
        ),
        agenda.EventView(
            id=2, uid="b@x", origin="staff", status="confirmed", title="Forum des quartiers",
            description="", starts_at=datetime(2027, 2, 3, 0, 0, tzinfo=paris),
            ends_at=datetime(2027, 2, 5, 0, 0, tzinfo=paris), all_day=True,
            place="Amiens, Mégacité", online=False, url=None, territory="Amiens Métropole",
            item_id=None, source=None, version=1,
        ),
    ]  # fmt: skip
    return [agenda.event_entry(config, v) for v in views]


def test_email_agenda_leaves_out_events_over_at_sending() -> None:
    from pressreview.render import render_email
    from tests.fixtures_issues import fixed_config, fixed_snapshot

    config = fixed_config()
    snapshot = fixed_snapshot(4)
    snapshot["agenda"] = _entries(config)
    before = render_email(config, snapshot, now=datetime(2027, 1, 11, 8, 0, tzinfo=UTC))
    assert "Agenda" in before.html and "AGENDA" in before.text
    # A line of its own: the day's name in capitals.
    assert "* Mardi 12\u00a0janvier, 17\u00a0h – 19\u00a0h" in before.text
    assert "Webinaire Quartiers 2030" in before.html and "En visio" in before.html
    assert "Du mercredi 3\u00a0février au jeudi 4\u00a0février" in before.text
    # The text part names the place and the territory, as the HTML does.
    assert "  Amiens, Mégacité · Amiens Métropole" in before.text
    # The news first, then the agenda (default position).
    assert before.text.index("AGENDA") > before.text.index(
        snapshot["sections"][-1]["title"].upper()
    )

    after = render_email(config, snapshot, now=datetime(2027, 1, 13, 8, 0, tzinfo=UTC))
    assert "Webinaire Quartiers 2030" not in after.html + after.text
    assert "Forum des quartiers" in after.text

    over = render_email(config, snapshot, now=datetime(2027, 3, 1, 8, 0, tzinfo=UTC))
    assert "AGENDA" not in over.text and 'id="agenda"' not in over.html


def test_published_issue_freezes_its_agenda(
    announced: tuple[Config, Store], cli: Callable[..., Result]
) -> None:
    from pressreview import issues

    config, store = announced
    [item_id] = {e.item_id for e in agenda.list_events(store, statuses=("proposed",))}
    agenda.accept_from_item(config, store, item_id, actor="alice")
    assert cli(config, "items", "select", str(item_id)).exit_code == 0
    issues.new_draft(config, store, title="Revue", actor="alice")
    snapshot = issues.publish(config, store, actor="alice", now=NOW)
    # The horizon (6 weeks) holds the 3 February session only.
    assert [e["start"] for e in snapshot["agenda"]] == ["2027-02-03T16:00:00+00:00"]
    agenda.add_event(config, store, title="Ajouté après", start="2027-01-20 10:00", actor="bob")
    assert [e["title"] for e in issues.get_snapshot(store, snapshot["number"])["agenda"]] == [
        "Cycle de webinaires Quartiers 2030"
    ]


# -- in the archive -----------------------------------------------------------------------


def test_archive_agenda_page_and_ics(
    make_config: Callable[..., Config], store_for: Callable[[Config], Store], tmp_path: Any
) -> None:
    from pressreview.archive import build_archive

    config = make_config(archive={"base_url": "https://veille.example.org/", "out_dir": "site"})
    store = store_for(config)
    future = agenda.add_event(
        config, store, title="Réunion publique NPNRU", start="2099-03-01 18:00",
        end="2099-03-01 20:00", place="Amiens, salle Dewailly", territory="Amiens",
        url="https://amiens.example.fr/npnru", actor="alice",
    )  # fmt: skip
    agenda.add_event(config, store, title="Forum des quartiers", start="2099-06-01",
                     end="2099-06-03", territory="Creil", actor="alice")  # fmt: skip
    agenda.add_event(config, store, title="Rencontre passée", start="2026-01-15 10:00",
                     online=True, actor="alice")  # fmt: skip
    build_archive(config, store, search_index=False)
    site = config.resolve("site")
    page = (site / "agenda" / "index.html").read_text("utf-8")
    assert f'id="evenement-{future.id}"' in page
    assert "Dimanche 1er\u00a0mars 2099, 18\u00a0h – 20\u00a0h" in page
    assert page.index("Réunion publique NPNRU") < page.index("Rendez-vous passés")
    assert page.index("Rendez-vous passés") < page.index("Rencontre passée")
    assert "Janvier 2026" in page
    assert '<option value="Amiens Métropole">' in page and 'data-territory="Creil Sud Oise"' in page

    first = (site / "agenda.ics").read_bytes()
    cal = icalendar.Calendar.from_ical(first)
    [zone] = cal.walk("VTIMEZONE")
    assert str(zone["TZID"]) == "Europe/Paris"
    vevents = {str(e["SUMMARY"]): e for e in cal.walk("VEVENT")}
    assert set(vevents) == {"Réunion publique NPNRU", "Forum des quartiers", "Rencontre passée"}
    npnru = vevents["Réunion publique NPNRU"]
    assert npnru["DTSTART"].params["TZID"] == "Europe/Paris"
    assert npnru.decoded("DTSTART") == datetime(2099, 3, 1, 17, 0, tzinfo=UTC)
    assert str(npnru["LOCATION"]) == "Amiens, salle Dewailly"
    forum = vevents["Forum des quartiers"]
    assert (
        str(forum.decoded("DTSTART")) == "2099-06-01"
        and str(forum.decoded("DTEND")) == "2099-06-04"
    )
    uids = {str(e["UID"]) for e in cal.walk("VEVENT")}
    # Rebuilt unchanged: the same bytes (stable UIDs and stamps); edited: same UID.
    build_archive(config, store, search_index=False)
    assert (site / "agenda.ics").read_bytes() == first
    agenda.edit_event(config, store, future.id, start="2099-03-01 18:30", actor="bob")
    build_archive(config, store, search_index=False)
    again = icalendar.Calendar.from_ical((site / "agenda.ics").read_bytes())
    assert {str(e["UID"]) for e in again.walk("VEVENT")} == uids


def test_review_shows_proposed_events(
    announced: tuple[Config, Store], cli: Callable[..., Result]
) -> None:
    config, _store = announced
    result = cli(config, "review", input="k" * 2 + "q")
    assert result.exit_code == 0, result.output
    assert "agenda (proposed): mercredi 3 février, 17\u00a0h – 19\u00a0h;" in result.output
    assert "accept: pressreview events from-item" in result.output


def test_many_new_items_read_for_events_in_the_workers(
    httpserver: Any,
    make_config: Callable[..., Config],
    store_for: Callable[[Config], Store],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Collect proposes as it stores; the store-read path, past DETECT_CHUNK x 2 items, in
    worker processes: the same proposals.

    Read by pages of 1,000 items there: the first in the workers, the rest (150) in-process.
    """
    monkeypatch.setattr(agenda, "DETECT_PAGE", 2 * agenda.DETECT_CHUNK)
    n = 2 * agenda.DETECT_CHUNK + 150
    entries = "".join(
        f"<item><title>Réunion publique {i} : le quartier {i % 7} en débat</title>"
        f"<link>https://presse.example.fr/r{i}</link><guid>r{i}</guid>"
        "<pubDate>Mon, 04 Jan 2027 10:00:00 +0100</pubDate>"
        f"<description>Rendez-vous le {1 + i % 27} mars à 18h00, salle Jean Jaurès."
        f"{' Et le 12 avril.' if i % 3 == 0 else ''}</description></item>"
        for i in range(n)
    )
    httpserver.expect_request("/many.xml").respond_with_data(
        '<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel><title>Presse</title>'
        f"<link>https://presse.example.fr/</link>{entries}</channel></rss>",
        content_type="application/rss+xml",
    )
    config = make_config(
        feeds=[{"name": "Presse", "url": httpserver.url_for("/many.xml")}], collect=FAST_COLLECT
    )
    store = store_for(config)
    report = collect(config, store, now=NOW, workers=2)
    with store.begin() as conn:
        stored = conn.execute(
            select(agenda_events.c.uid, agenda_events.c.starts_at).where(
                agenda_events.c.origin == "item"
            )
        ).all()
        found = agenda.q.items_seen_since(conn, datetime(2000, 1, 1, tzinfo=UTC))
    # What detection gives for each item, read here in this process, one item at a time.
    expected = {
        (e["uid"], e["starts_at"]) for row in found for e in agenda._proposals(row, config.tz)
    }
    assert len(found) == n
    assert report.proposed_events == len(stored) == len(expected) == n + n // 3 + 1
    assert {(uid, starts_at) for uid, starts_at in stored} == expected
    with store.begin() as conn:
        conn.execute(delete(agenda_events))
    since = datetime(2000, 1, 1, tzinfo=UTC)
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("fork")) as pool:
        assert agenda.propose_from_new_items(config, store, since, executor=pool) == len(stored)
    with store.begin() as conn:
        again = conn.execute(select(agenda_events.c.uid, agenda_events.c.starts_at)).all()
    assert {(uid, starts_at) for uid, starts_at in again} == expected
