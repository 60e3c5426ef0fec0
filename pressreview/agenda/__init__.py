"""The agenda: upcoming events from calendars, detected in items, and added by staff.

Three origins, one table (``agenda_events``):

- ``ical``: a source of kind ``ical`` in feeds.yaml; collect reads it (see
  :mod:`pressreview.agenda.ical`) and its events are ``confirmed`` at once;
- ``item``: an item that announces an event (webinaire, rencontre, réunion
  publique, ... with a date) gets ``proposed`` events, one per date; staff
  accept them (``events from-item``), correct or dismiss them;
- ``staff``: ``events add``.

Only ``confirmed`` events appear in the email, the archive's agenda page and
``agenda.ics``. Every change by staff is written to the audit trail.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping, Sequence
from concurrent.futures import BrokenExecutor, Executor
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, NamedTuple

from babel.dates import format_date

from pressreview.agenda.dates import DateSpan, find_dates, normalize
from pressreview.agenda.ical import CalendarEvent, http_url, plan_calendar
from pressreview.config import Config
from pressreview.errors import NotFound, UsageError
from pressreview.model import SnapshotEvent
from pressreview.store import Store
from pressreview.store import agenda as q
from pressreview.store.items import add_event as audit
from pressreview.text import clean_text, fold, sort_key

__all__ = [
    "Detected",
    "EventView",
    "ItemText",
    "Proposal",
    "accept_from_item",
    "add_event",
    "detect_ahead",
    "detect_events",
    "edit_event",
    "events_for_item",
    "format_when",
    "list_events",
    "propose_for_items",
    "propose_from_new_items",
    "remove_event",
    "snapshot_events",
    "store_calendar",
    "upcoming_in_snapshot",
]

#: Words that make an item an announcement (folded; whole words or phrases).
ANNOUNCE_WORDS = (
    "journee",
    "journees",
    "rencontre",
    "rencontres",
    "webinaire",
    "webinar",
    "seminaire",
    "reunion publique",
    "atelier",
    "ateliers",
    "formation",
    "inscription",
    "inscriptions",
    "rendez-vous",
    "conference",
    "colloque",
    "forum",
    "table ronde",
    "visioconference",
    "matinale",
    "cafe-debat",
    "cine-debat",
    "assises",
    "permanence",
)
_ANNOUNCE_RE = re.compile(r"\b(?:" + "|".join(re.escape(w) for w in ANNOUNCE_WORDS) + r")\b")
#: The first word of each ("reunion" for "reunion publique", "rendez" for "rendez-vous"):
#: a text whose words include none of them is no announcement.
_ANNOUNCE_FIRST_WORDS = frozenset(m[0] for w in ANNOUNCE_WORDS if (m := re.match(r"\w+", w)))


def _announce_by_first_word() -> dict[str, list[re.Pattern[str]]]:
    """``_ANNOUNCE_RE``'s words by their first word, each a pattern that starts with its
    letters (searched for as a string, where ``\\b(?:...)`` tries every position): the
    word boundary before it is a look-behind at its end."""
    out: dict[str, list[re.Pattern[str]]] = {}
    for word in ANNOUNCE_WORDS:
        first = re.match(r"\w+", word)
        assert first is not None
        escaped = re.escape(word)
        out.setdefault(first[0], []).append(re.compile(rf"{escaped}(?<!\w{escaped})\b"))
    return out


_ANNOUNCE_BY_FIRST = _announce_by_first_word()
_ONLINE_RE = re.compile(r"\b(?:en visio|visio|en ligne|webinaire|webinar|distanciel|zoom)\b")
#: What every match of ``_ONLINE_RE`` holds.
_ONLINE_HINTS = ("visio", "ligne", "webina", "distanciel", "zoom")
_URL_RE = re.compile(r"https?://\S+")
_PLACE_RE = re.compile(
    r"(?:\blieu\s*:\s*|\bsalle\s+|\b(?:a|au|a la|a l')\s+(?=[A-ZÉÈÀÂ]))"
    r"(?P<place>[A-ZÉÈÀÂ0-9][^.;:()\n]{1,60}?)(?=[.;()\n]|,\s|\s+(?:de|le|du|a|à)\s+\d|$)"
)
_REGISTER_HINTS = (
    "inscri",
    "register",
    "billetterie",
    "weezevent",
    "helloasso",
    "framaforms",
    "eventbrite",
    "sympla",
    "formulaire",
)
_HREF_RE = re.compile(r"<a\s[^>]*href=\"(?P<href>[^\"]+)\"[^>]*>(?P<text>.*?)</a>", re.I | re.S)
DEFAULT_DURATION = timedelta(hours=2)


@dataclass(frozen=True)
class Proposal:
    """An event read from an item's text."""

    title: str
    starts_at: datetime
    ends_at: datetime | None
    all_day: bool
    place: str | None
    online: bool
    url: str | None


@dataclass(frozen=True)
class EventView:
    """An event as commands and templates see it."""

    id: int
    uid: str
    origin: str
    status: str
    title: str
    description: str
    starts_at: datetime
    ends_at: datetime | None
    all_day: bool
    place: str | None
    online: bool
    url: str | None
    territory: str | None
    item_id: int | None
    source: str | None
    version: int
    updated_at: datetime | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "uid": self.uid,
            "origin": self.origin,
            "status": self.status,
            "title": self.title,
            "description": self.description,
            "start": self.starts_at.isoformat(),
            "end": self.ends_at.isoformat() if self.ends_at else None,
            "all_day": self.all_day,
            "place": self.place,
            "online": self.online,
            "url": self.url,
            "territory": self.territory,
            "item_id": self.item_id,
            "source": self.source,
            "version": self.version,
        }


def _view(row: q.EventRow) -> EventView:
    return EventView(
        id=row.id,
        uid=row.uid,
        origin=row.origin,
        status=row.status,
        title=row.title,
        description=row.description,
        starts_at=row.starts_at,
        ends_at=row.ends_at,
        all_day=row.all_day,
        place=row.place,
        online=row.online,
        url=row.url,
        territory=row.territory,
        item_id=row.item_id,
        source=row.source,
        version=row.version,
        updated_at=row.updated_at,
    )


# -- detection in items -------------------------------------------------------------------


def _registration_link(summary_html: str, text: str, fallback: str | None) -> str | None:
    for m in _HREF_RE.finditer(summary_html or ""):
        href, label = m["href"], fold(m["text"])
        folded_href = href.casefold()
        if any(h in folded_href or h in label for h in _REGISTER_HINTS):
            url = http_url(href.replace("&amp;", "&"))
            if url:
                return url
    for word in _URL_RE.findall(text):
        if any(h in word.casefold() for h in _REGISTER_HINTS):
            url = http_url(word.rstrip(".,;)"))
            if url:
                return url
    return http_url(fallback)


def _place(text: str) -> str | None:
    m = _PLACE_RE.search(text)
    if m is None:
        return None
    place = m["place"].strip(" ,-–")
    return place or None


def _span_times(span: DateSpan, tz: Any) -> tuple[datetime, datetime | None, bool]:
    last = span.end or span.start
    if span.start_time is None:
        start = datetime.combine(span.start, time(0), tz)
        end = datetime.combine(last + timedelta(days=1), time(0), tz)
        return start.astimezone(UTC), end.astimezone(UTC), True
    start = datetime.combine(span.start, span.start_time, tz)
    if span.end_time is not None:
        end = datetime.combine(last, span.end_time, tz)
        if end <= start:
            end = start + DEFAULT_DURATION
    elif span.end is not None:
        end = datetime.combine(span.end + timedelta(days=1), time(0), tz)
    else:
        end = start + DEFAULT_DURATION
    return start.astimezone(UTC), end.astimezone(UTC), False


def detect_events(
    *,
    title: str,
    text: str,
    summary_html: str = "",
    link: str | None,
    published_at: datetime,
    tz: Any,
) -> list[Proposal]:
    """The events an item announces: none unless it reads as an announcement with a date.

    Dates are read relative to the publication date; only dates on or after
    the publication day are events to come (a report on a past meeting is not
    an announcement).
    """
    body = f"{title}. {text}"
    folded = normalize(body)
    if not _ANNOUNCE_RE.search(folded):
        return []
    published_day = published_at.astimezone(tz).date()
    return _read_events(title, text, summary_html, link, published_day, tz, body, folded)


def _read_events(
    title: str,
    text: str,
    summary_html: str,
    link: str | None,
    published_day: date,
    tz: Any,
    body: str,
    folded: str,
) -> list[Proposal]:
    """``detect_events`` of an announcement (``folded`` is ``normalize(body)``)."""
    dates = find_dates(body, published_day, folded=folded)  # folded once
    spans = [s for s in dates if (s.end or s.start) >= published_day]
    if not spans:
        return []
    online = any(h in folded for h in _ONLINE_HINTS) and _ONLINE_RE.search(folded) is not None
    place = None if online else _place(clean_text(text))
    url = _registration_link(summary_html, text, link)
    name = clean_text(title)[:300]
    out: list[Proposal] = []
    seen: set[tuple[datetime, datetime | None]] = set()
    for span in spans[:24]:
        start, end, all_day = _span_times(span, tz)
        if (start, end) in seen:  # the same date said twice (title and text)
            continue
        seen.add((start, end))
        out.append(Proposal(name, start, end, all_day, place, online, url))
    return out


class Detected(NamedTuple):
    """The events read in an item before it is stored (in a parse worker), relative
    to ``day``, the publication day (in the config's zone) the item had then."""

    day: date
    proposals: tuple[Proposal, ...]


def detect_ahead(
    *,
    title: str,
    text: str,
    summary_html: str,
    link: str | None,
    published_at: datetime | None,
    search_text: str | None,
    tz: Any,
    now: datetime,
) -> Detected | tuple[()]:
    """``detect_events`` of an item not stored yet, for ``propose_for_items`` to use.

    ``()`` when the item announces nothing, whatever its date (most items: little
    to send back from a worker); else what it announces relative to its
    publication day, or to ``now``'s day when it has no date (the store dates
    it when it is stored: ``propose_for_items`` reads it again if that day is
    another one, or if the store dropped a date in the future).
    """
    if search_text is None:
        body = f"{title}. {text}"
        folded = normalize(body)
        if not _ANNOUNCE_RE.search(folded):
            return ()
    else:
        # Only the words whose first word is one of the item's can be there.
        first = _ANNOUNCE_FIRST_WORDS.intersection(search_text.split())
        if not first:
            return ()
        body = f"{title}. {text}"
        folded = normalize(body)
        if not any(p.search(folded) for w in first for p in _ANNOUNCE_BY_FIRST[w]):
            return ()
    day = (published_at or now).astimezone(tz).date()
    proposals = _read_events(title, text, summary_html, link, day, tz, body, folded)
    return Detected(day, tuple(proposals))


def _proposals(item: Any, tz: Any, detected: Detected | None = None) -> list[dict[str, Any]]:
    """The proposed events an item announces, as ``insert_events`` rows (``detected``:
    what ``detect_ahead`` found, used when the item's publication day is the same)."""
    if detected is not None and detected.day == item.published_at.astimezone(tz).date():
        proposals: Sequence[Proposal] = detected.proposals
    else:
        proposals = detect_events(
            title=item.title,
            text=item.excerpt or "",
            summary_html=item.summary_html or "",
            link=item.link,
            published_at=item.published_at,
            tz=tz,
        )
    if not proposals:  # most items
        return []
    territories = list(item.territories or [])
    return [
        {
            "uid": f"item-{item.id}-{n}@pressreview",
            "origin": "item",
            "status": "proposed",
            "item_id": item.id,
            "title": p.title,
            "starts_at": p.starts_at,
            "ends_at": p.ends_at,
            "all_day": p.all_day,
            "place": p.place,
            "online": p.online,
            "url": p.url,
            "territory": territories[0] if territories else None,
        }
        for n, p in enumerate(proposals)
    ]


def _propose(conn: Any, item: Any, tz: Any) -> int:
    """Store the events an item announces as proposals; returns how many."""
    rows = _proposals(item, tz)
    q.insert_events(conn, rows)
    return len(rows)


def propose_from_new_items(
    config: Config, store: Store, since: datetime, *, executor: Executor | None = None
) -> int:
    """Proposed events for the items first seen since ``since``; returns how many were added.

    The items are read back from the store (collect itself proposes events as
    it stores the items: see ``propose_for_items``). With ``executor`` (worker
    processes), many items are read for events in parallel.
    """
    with store.begin() as conn:
        ids = q.item_ids_seen_since(conn, since)
        # Items with events already (proposed, accepted or dismissed): one query for all.
        known = q.items_with_events(conn, ids)
        todo = [i for i in ids if i not in known]
        added = 0
        # By pages: the texts of a large run's items would fill memory at once.
        for start in range(0, len(todo), DETECT_PAGE):
            page = [
                ItemText(
                    row.id,
                    row.title,
                    row.excerpt,
                    row.summary_html,
                    row.link,
                    row.published_at,
                    row.territories,
                )
                for row in q.items_for_events(conn, todo[start : start + DETECT_PAGE])
            ]
            rows = _detect_all(page, config.tz, executor)
            q.insert_events(conn, rows)
            added += len(rows)
    return added


def propose_for_items(conn: Any, items: Sequence[ItemText], tz: Any) -> int:
    """Proposed events for items just stored (in the caller's transaction); returns how many.

    Collect calls it with each source's new items (the first outlet of each
    story) while it holds them, so nothing is read back from the store and
    the proposals are committed, or rolled back, with the items. An item that
    has events already is left alone, as in ``propose_from_new_items`` (a new
    item has none, unless the database was edited by hand without its foreign
    keys: an event left pointing at an item id given again).
    """
    rows = _proposals_of(items, tz)
    if not rows:
        return 0
    known = q.items_with_events(conn, sorted({row["item_id"] for row in rows}))
    if known:
        rows = [row for row in rows if row["item_id"] not in known]
    q.insert_events(conn, rows)
    return len(rows)


class ItemText(NamedTuple):
    """What event detection reads of an item (sent to worker processes).

    As stored: ``published_at`` is the date the item is stored with (the time
    it was first seen when the feed gives none).
    """

    id: int
    title: str
    excerpt: str | None
    summary_html: str | None
    link: str | None
    published_at: datetime
    territories: list[str] | None
    #: The item's folded words (``pressreview.text.search_text`` of its title and
    #: excerpt, and maybe more), when at hand: an item none of whose words starts
    #: an announcement is passed over without reading (folding) its text.
    search_text: str | None = None
    #: What ``detect_ahead`` found before the item was stored (collect reads items in
    #: its parse workers), or None: detected here.
    detected: Detected | tuple[()] | None = None


def _may_announce(item: ItemText) -> bool:
    """False when the item's words show that it announces nothing (exact: every word
    of ``_ANNOUNCE_RE`` matches whole words of the folded text, so their first word
    is one of the item's words)."""
    if item.detected is not None:
        return bool(item.detected)
    words = item.search_text
    return words is None or not _ANNOUNCE_FIRST_WORDS.isdisjoint(words.split())


#: Items per task when detection runs in worker processes.
DETECT_CHUNK = 500
#: Items read from the store at a time.
DETECT_PAGE = 8 * DETECT_CHUNK


def _proposals_of(items: Sequence[ItemText], tz: Any) -> list[dict[str, Any]]:
    return [
        e
        for item in items
        if _may_announce(item)
        for e in _proposals(item, tz, item.detected or None)
    ]


def _detect_all(
    items: Sequence[ItemText], tz: Any, executor: Executor | None
) -> list[dict[str, Any]]:
    """The proposals of many items, shared among the executor's workers when there are many."""
    if executor is None or len(items) < 2 * DETECT_CHUNK:
        return _proposals_of(items, tz)
    chunks = [items[i : i + DETECT_CHUNK] for i in range(0, len(items), DETECT_CHUNK)]
    try:
        parts = list(executor.map(_proposals_of, chunks, [tz] * len(chunks)))
    except BrokenExecutor:  # a worker died: do it here
        return _proposals_of(items, tz)
    return [e for part in parts for e in part]


# -- calendars --------------------------------------------------------------------------


def store_calendar(
    conn: Any, source_id: int, events: Sequence[CalendarEvent], *, window_start: datetime
) -> tuple[int, int, int]:
    """Apply one fetch of a calendar source (inside the caller's transaction).

    Returns (new, updated, cancelled).
    """
    stored = q.events_by_uid(conn, (e.uid for e in events))
    upcoming = q.source_events_from(conn, source_id, window_start)
    plan = plan_calendar(stored, events, upcoming=upcoming, window_start=window_start)
    for event in plan.new:
        q.insert_event(
            conn,
            uid=event.uid,
            origin="ical",
            status="confirmed",
            source_id=source_id,
            sequence=event.sequence,
            **_values(event),
        )
    for event_id, event in plan.updated:
        q.update_event(
            conn,
            event_id,
            None,
            {**_values(event), "sequence": event.sequence, "status": "confirmed"},
        )
    for event_id in plan.cancelled:
        q.update_event(conn, event_id, None, {"status": "cancelled"})
    return len(plan.new), len(plan.updated), len(plan.cancelled)


def _values(event: CalendarEvent) -> dict[str, Any]:
    return {
        "title": event.title[:300],
        "description": event.description,
        "starts_at": event.starts_at,
        "ends_at": event.ends_at,
        "all_day": event.all_day,
        "place": event.place,
        "online": event.online,
        "url": event.url,
    }


# -- staff ------------------------------------------------------------------------------


def parse_when(value: str, tz: Any) -> tuple[datetime, bool]:
    """ "2027-03-01 17:00" (local time) or "2027-03-01" (all day) → (aware UTC, all_day)."""
    text = value.strip().replace("T", " ")
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            d = date.fromisoformat(text)
            return datetime.combine(d, time(0), tz).astimezone(UTC), True
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise UsageError(
            f"{value!r}: not a date; write 2027-03-01 17:00 (or 2027-03-01 for all day)"
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=tz)
    return parsed.astimezone(UTC), False


def parse_end(value: str, tz: Any) -> datetime:
    """The end of an event: a date alone is its last day (included), so the next midnight."""
    end, whole_day = parse_when(value, tz)
    if whole_day:
        local = end.astimezone(tz).date() + timedelta(days=1)
        return datetime.combine(local, time(0), tz).astimezone(UTC)
    return end


def _check_span(start: datetime, end: datetime | None) -> None:
    if end is not None and end < start:
        raise UsageError("the event would end before it starts; check --start and --end")


def _check_territory(config: Config, territory: str | None) -> str | None:
    if territory is None:
        return None
    for t in config.territories:
        if fold(t.name) == fold(territory) or any(fold(a) == fold(territory) for a in t.aliases):
            return t.name
    names = ", ".join(t.name for t in config.territories[:5])
    raise UsageError(f"unknown territory {territory!r} (territories of feeds.yaml: {names}, ...)")


def _check_url(url: str | None) -> str | None:
    if url is None or url == "":
        return None
    checked = http_url(url)
    if checked is None:
        raise UsageError(f"{url!r}: only http and https links are accepted")
    return checked


def add_event(
    config: Config,
    store: Store,
    *,
    title: str,
    start: str,
    end: str | None = None,
    place: str | None = None,
    online: bool = False,
    url: str | None = None,
    territory: str | None = None,
    description: str = "",
    actor: str,
) -> EventView:
    title = clean_text(title)
    if not title:
        raise UsageError("an event needs a title")
    starts_at, all_day = parse_when(start, config.tz)
    ends_at = parse_end(end, config.tz) if end else None
    if all_day and ends_at is None:
        ends_at = starts_at + timedelta(days=1)
    _check_span(starts_at, ends_at)
    values = {
        "title": title,
        "description": description,
        "starts_at": starts_at,
        "ends_at": ends_at,
        "all_day": all_day,
        "place": place or None,
        "online": online,
        "url": _check_url(url),
        "territory": _check_territory(config, territory),
    }
    with store.begin() as conn:
        event_id = q.insert_event(
            conn, uid=f"{uuid.uuid4()}@pressreview", origin="staff", status="confirmed", **values
        )
        audit(
            conn,
            actor=actor,
            action="agenda.add",
            details={"event_id": event_id, "after": _jsonable(values)},
        )
        row = q.get_event(conn, event_id)
    assert row is not None
    return _view(row)


def _jsonable(values: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in values.items()}


def _get(conn: Any, event_id: int) -> q.EventRow:
    row = q.get_event(conn, event_id)
    if row is None:
        raise NotFound(f"no event {event_id} (see `pressreview events list --all`)")
    return row


def edit_event(
    config: Config,
    store: Store,
    event_id: int,
    *,
    actor: str,
    title: str | None = None,
    start: str | None = None,
    end: str | None = None,
    place: str | None = None,
    online: bool | None = None,
    url: str | None = None,
    territory: str | None = None,
    status: str | None = None,
) -> EventView:
    """Change an event; a proposed event edited by staff becomes confirmed."""
    with store.begin() as conn:
        row = _get(conn, event_id)
        changes: dict[str, Any] = {}
        if title is not None:
            if not clean_text(title):
                raise UsageError("an event needs a title")
            changes["title"] = clean_text(title)
        if start is not None:
            changes["starts_at"], changes["all_day"] = parse_when(start, config.tz)
        if end is not None:
            changes["ends_at"] = parse_end(end, config.tz) if end else None
        if place is not None:
            changes["place"] = place or None
        if online is not None:
            changes["online"] = online
        if url is not None:
            changes["url"] = _check_url(url)
        if territory is not None:
            changes["territory"] = _check_territory(config, territory) if territory else None
        if status is not None:
            if status not in ("confirmed", "dismissed", "cancelled", "proposed"):
                raise UsageError(f"unknown status {status!r}")
            changes["status"] = status
        elif row.status == "proposed" and changes:
            changes["status"] = "confirmed"
        if not changes:
            raise UsageError("nothing to change: give at least one option")
        _check_span(changes.get("starts_at", row.starts_at), changes.get("ends_at", row.ends_at))
        before = {k: getattr(row, k) for k in changes}
        q.update_event(conn, event_id, row.version, changes)
        audit(
            conn,
            actor=actor,
            action="agenda.edit",
            item_id=row.item_id,
            details={
                "event_id": event_id,
                "before": _jsonable(before),
                "after": _jsonable(changes),
            },
        )
        return _view(_get(conn, event_id))


def remove_event(store: Store, event_id: int, *, actor: str) -> EventView:
    with store.begin() as conn:
        row = _get(conn, event_id)
        q.delete_event(conn, event_id)
        audit(
            conn,
            actor=actor,
            action="agenda.remove",
            item_id=row.item_id,
            details={
                "event_id": event_id,
                "title": row.title,
                "uid": row.uid,
                "start": row.starts_at.isoformat(),
            },
        )
    return _view(row)


def accept_from_item(config: Config, store: Store, item_id: int, *, actor: str) -> list[EventView]:
    """Confirm the events proposed for an item (detecting them now if collect did not)."""
    with store.begin() as conn:
        item = q.item_for_event(conn, item_id)
        if item is None:
            raise NotFound(f"no item {item_id}")
        rows = q.list_events(conn, statuses=(), item_id=item_id)
        if not rows:
            if not _propose(conn, item, config.tz):
                raise UsageError(
                    f"item {item_id} announces no event with a date to come; "
                    "add it with `pressreview events add`"
                )
            rows = q.list_events(conn, statuses=(), item_id=item_id)
        accepted: list[EventView] = []
        for row in rows:
            if row.status in ("proposed", "dismissed"):
                q.update_event(conn, row.id, row.version, {"status": "confirmed"})
                audit(
                    conn,
                    actor=actor,
                    action="agenda.accept",
                    item_id=item_id,
                    details={"event_id": row.id, "start": row.starts_at.isoformat()},
                )
            accepted.append(_view(_get(conn, row.id)))
        return accepted


def list_events(
    store: Store,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    statuses: Sequence[str] = ("confirmed",),
) -> list[EventView]:
    with store.connect() as conn:
        return [_view(r) for r in q.list_events(conn, start=start, end=end, statuses=statuses)]


def events_for_item(store: Store, item_id: int) -> list[EventView]:
    """The events read in an item (proposed, accepted or dismissed)."""
    with store.connect() as conn:
        return [_view(r) for r in q.list_events(conn, statuses=(), item_id=item_id)]


# -- in issues and pages ---------------------------------------------------------------


def snapshot_events(
    config: Config, store: Store, *, at: datetime, weeks: int | None = None
) -> list[SnapshotEvent]:
    """The confirmed events of the coming weeks, as a published issue freezes them."""
    horizon = timedelta(weeks=weeks if weeks is not None else config.agenda.horizon_weeks)
    events = list_events(store, start=at, end=at + horizon)
    return [event_entry(config, e) for e in events]


def event_entry(config: Config, event: EventView, *, with_year: bool = False) -> SnapshotEvent:
    """An event in a snapshot or a page: its data and its French wording."""
    return {
        "id": event.id,
        "uid": event.uid,
        "title": event.title,
        "start": event.starts_at.isoformat(),
        "end": event.ends_at.isoformat() if event.ends_at else None,
        "all_day": event.all_day,
        "when": format_when(
            event.starts_at, event.ends_at, event.all_day, config, with_year=with_year
        ),
        "place": event.place,
        "online": event.online,
        "url": event.url,
        "territory": event.territory,
        "anchor": f"evenement-{event.id}",
    }


def archive_agenda(config: Config, events: Sequence[EventView], now: datetime) -> dict[str, Any]:
    """The agenda page's content: upcoming events, then past ones by month (newest first)."""
    upcoming: list[SnapshotEvent] = []
    past: dict[str, list[SnapshotEvent]] = {}
    for e in events:
        entry = event_entry(config, e, with_year=True)
        if (e.ends_at or e.starts_at + DEFAULT_DURATION) > now:
            upcoming.append(entry)
        else:
            local = e.starts_at.astimezone(config.tz)
            month = format_date(local.date(), "MMMM y", locale=config.locale)
            past.setdefault(month, []).append(entry)
    months = [{"month": m, "events": list(reversed(v))} for m, v in reversed(list(past.items()))]
    territories = sorted({e.territory for e in events if e.territory}, key=sort_key)
    return {"upcoming": upcoming, "past": months, "territories": territories}


def upcoming_in_snapshot(
    entries: Sequence[Mapping[str, Any]], now: datetime
) -> list[Mapping[str, Any]]:
    """The snapshot's events not yet over at ``now`` (the time of sending or rendering)."""
    out = []
    for e in entries:
        end = datetime.fromisoformat(e["end"]) if e.get("end") else None
        start = datetime.fromisoformat(e["start"])
        over = end if end is not None else start + DEFAULT_DURATION
        if over > now:
            out.append(e)
    return out


def _day(d: date, locale: str, with_year: bool) -> str:
    text = format_date(d, "EEEE d MMMM y" if with_year else "EEEE d MMMM", locale=locale)
    if locale.startswith("fr") and d.day == 1:
        text = re.sub(r"\b1 ", "1er ", text, count=1)
    return text


def _clock(t: time) -> str:
    return f"{t.hour}\u00a0h" if t.minute == 0 else f"{t.hour}\u00a0h\u00a0{t.minute:02d}"


def format_when(
    start: datetime,
    end: datetime | None,
    all_day: bool,
    config: Config,
    *,
    with_year: bool = False,
) -> str:
    """ "mercredi 5 avril, 17 h – 19 h", "du lundi 3 au mercredi 5 juin", in the config's zone."""
    tz, locale = config.tz, config.locale
    s = start.astimezone(tz)
    e = end.astimezone(tz) if end else None
    if all_day:
        last = (e - timedelta(days=1)).date() if e else s.date()
        if last <= s.date():
            return _day(s.date(), locale, with_year)
        return f"du {_day(s.date(), locale, with_year)} au {_day(last, locale, with_year)}"
    if e is None or e == s:
        return f"{_day(s.date(), locale, with_year)}, {_clock(s.time())}"
    if e.date() == s.date():
        return f"{_day(s.date(), locale, with_year)}, {_clock(s.time())} – {_clock(e.time())}"
    return (
        f"du {_day(s.date(), locale, with_year)}, {_clock(s.time())}, "
        f"au {_day(e.date(), locale, with_year)}, {_clock(e.time())}"
    )
