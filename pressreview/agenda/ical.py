"""iCalendar sources: read a calendar, expand its recurrences, decide what changes.

``parse_calendar`` turns the bytes of an ``.ics`` file into plain
``CalendarEvent`` values over a bounded window (recurring events expanded with
``recurring-ical-events``; a rule that never ends yields only the occurrences
inside the window, and at most ``max_events`` in all). ``plan_calendar`` is the
pure decision of what a fetch changes in the store: new events, updates (a
higher or equal SEQUENCE), cancellations (STATUS:CANCELLED, or an upcoming
event that the calendar no longer lists).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Any, Protocol
from urllib.parse import urlsplit

import icalendar
import recurring_ical_events

from pressreview.errors import PressreviewError
from pressreview.text import clean_text


class NotACalendar(PressreviewError):
    """The body of an iCalendar source is not a calendar."""


@dataclass(frozen=True)
class CalendarEvent:
    """One occurrence read from a calendar (times aware, UTC)."""

    uid: str
    title: str
    starts_at: datetime
    ends_at: datetime | None
    all_day: bool
    sequence: int = 0
    cancelled: bool = False
    description: str = ""
    place: str | None = None
    url: str | None = None
    online: bool = False


@dataclass
class CalendarParse:
    events: list[CalendarEvent] = field(default_factory=list)
    #: Events left out, each with why (one line each, shown in the run's report).
    skipped: list[str] = field(default_factory=list)
    truncated: bool = False

    @property
    def warning(self) -> str | None:
        parts: list[str] = []
        if self.skipped:
            parts.append(f"{len(self.skipped)} event(s) left out ({self.skipped[0]})")
        if self.truncated:
            parts.append("too many occurrences: only the first ones were kept")
        return "; ".join(parts) or None


def http_url(value: str | None) -> str | None:
    """An absolute http(s) URL, or None: nothing else becomes a link."""
    if not value:
        return None
    value = value.strip()
    parts = urlsplit(value)
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return None
    return value


ONLINE_WORDS = ("visio", "en ligne", "webinaire", "webinar", "zoom", "teams", "distanciel")


def _as_utc(value: date | datetime, tz: tzinfo) -> tuple[datetime, bool]:
    if isinstance(value, datetime):
        if value.tzinfo is None:  # floating time: the calendar's or our zone
            value = value.replace(tzinfo=tz)
        return value.astimezone(UTC), False
    return datetime.combine(value, time(0), tz).astimezone(UTC), True


def _text(component: Any, name: str) -> str:
    value = component.get(name)
    return clean_text(str(value)) if value is not None else ""


def _read(component: Any, tz: tzinfo, recurring: bool) -> CalendarEvent:
    uid = _text(component, "UID")
    if not uid:
        raise ValueError("an event has no UID")
    start_prop = component.get("DTSTART")
    if start_prop is None:
        raise ValueError(f"event {uid[:60]}: no DTSTART")
    starts_at, all_day = _as_utc(start_prop.dt, tz)
    end_prop = component.get("DTEND")
    ends_at: datetime | None = None
    if end_prop is not None:
        ends_at, _ = _as_utc(end_prop.dt, tz)
    elif component.get("DURATION") is not None:
        ends_at = starts_at + component.get("DURATION").dt
    if ends_at is not None and ends_at < starts_at:
        raise ValueError(f"event {uid[:60]}: ends before it starts")
    if recurring:
        uid = f"{uid}#{starts_at.strftime('%Y%m%dT%H%M%SZ')}"
    title = _text(component, "SUMMARY") or "(sans titre)"
    place = _text(component, "LOCATION") or None
    description = _text(component, "DESCRIPTION")
    url = http_url(_text(component, "URL")) or None
    blob = f"{title} {place or ''} {description}".casefold()
    return CalendarEvent(
        uid=uid,
        title=title,
        starts_at=starts_at,
        ends_at=ends_at,
        all_day=all_day,
        sequence=int(component.get("SEQUENCE", 0) or 0),
        cancelled=str(component.get("STATUS", "")).upper() == "CANCELLED",
        description=description[:2000],
        place=place,
        url=url,
        online=any(word in blob for word in ONLINE_WORDS),
    )


def parse_calendar(
    body: bytes,
    *,
    tz: tzinfo,
    start: datetime,
    end: datetime,
    max_events: int = 2000,
) -> CalendarParse:
    """The events of an ``.ics`` body between ``start`` and ``end`` (recurrences expanded)."""
    head = body[:2048].lstrip(b"\xef\xbb\xbf \t\r\n")
    if not head.upper().startswith(b"BEGIN:VCALENDAR"):
        raise NotACalendar("not an iCalendar file (no BEGIN:VCALENDAR)")
    try:
        calendar = icalendar.Calendar.from_ical(body.decode("utf-8", errors="replace"))
    except Exception as exc:
        raise NotACalendar(f"unreadable iCalendar file ({_first_line(exc)})") from None
    out = CalendarParse()
    bad = _bad_events(calendar, tz, out.skipped)
    try:
        occurrences = recurring_ical_events.of(calendar, skip_bad_series=True).between(start, end)
    except Exception as exc:
        raise NotACalendar(f"cannot expand the calendar's events ({_first_line(exc)})") from None
    recurring_uids = {
        str(c.get("UID"))
        for c in calendar.walk("VEVENT")
        if c.get("RRULE") is not None
        or c.get("RDATE") is not None
        or c.get("RECURRENCE-ID") is not None
    }
    for component in occurrences:
        if component.name != "VEVENT":
            continue
        if len(out.events) >= max_events:
            out.truncated = True
            break
        if str(component.get("UID")) in bad:
            continue
        try:
            recurring = str(component.get("UID")) in recurring_uids
            out.events.append(_read(component, tz, recurring))
        except Exception as exc:
            out.skipped.append(_first_line(exc))
    # Cancelled single events are not returned by the expansion: read them directly.
    seen = {e.uid for e in out.events}
    for component in calendar.walk("VEVENT"):
        if str(component.get("STATUS", "")).upper() != "CANCELLED":
            continue
        if str(component.get("UID")) in bad:
            continue
        try:
            event = _read(component, tz, component.get("RECURRENCE-ID") is not None)
        except Exception as exc:
            out.skipped.append(_first_line(exc))
            continue
        if event.uid not in seen:
            out.events.append(event)
    return out


def _bad_events(calendar: Any, tz: tzinfo, skipped: list[str]) -> set[str]:
    """UIDs of events that cannot be placed in time: unknown zone, end before start."""
    bad: set[str] = set()
    for component in calendar.walk("VEVENT"):
        uid = str(component.get("UID", ""))
        start, end = component.get("DTSTART"), component.get("DTEND")
        errors = getattr(component, "errors", None)
        if errors:  # icalendar keeps what it could not read beside the event
            prop, _message = errors[0]
            skipped.append(f"event {uid[:60]}: unreadable {prop}")
            bad.add(uid)
            continue
        try:
            for prop in (start, end):
                if prop is None:
                    continue
                zone = prop.params.get("TZID")
                if zone and isinstance(prop.dt, datetime) and prop.dt.tzinfo is None:
                    raise ValueError(f"event {uid[:60]}: unknown time zone {zone!r}")
            if start is not None and end is not None:
                s, _ = _as_utc(start.dt, tz)
                e, _ = _as_utc(end.dt, tz)
                if e < s:
                    raise ValueError(f"event {uid[:60]}: ends before it starts")
        except ValueError as exc:
            skipped.append(str(exc))
            bad.add(uid)
        except Exception as exc:
            skipped.append(f"event {uid[:60]}: {_first_line(exc)}")
            bad.add(uid)
    return bad


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:200] if text else type(exc).__name__


class StoredEvent(Protocol):
    """What ``plan_calendar`` reads of a stored event."""

    @property
    def id(self) -> int: ...
    @property
    def uid(self) -> str: ...
    @property
    def sequence(self) -> int: ...
    @property
    def status(self) -> str: ...
    @property
    def starts_at(self) -> datetime: ...


@dataclass
class CalendarPlan:
    """What one fetch of a calendar changes in the store."""

    new: list[CalendarEvent] = field(default_factory=list)
    #: (stored event id, the new values)
    updated: list[tuple[int, CalendarEvent]] = field(default_factory=list)
    #: ids of stored events now cancelled
    cancelled: list[int] = field(default_factory=list)


def plan_calendar(
    stored: Mapping[str, StoredEvent],
    incoming: Sequence[CalendarEvent],
    *,
    upcoming: Sequence[StoredEvent] = (),
    window_start: datetime,
) -> CalendarPlan:
    """Decide the changes: pure, fed with what the store holds and what the calendar says.

    ``stored`` maps the incoming UIDs to stored events; ``upcoming`` are the
    source's stored events from ``window_start`` on: those the calendar no
    longer lists are cancelled (the calendar removed them).
    """
    plan = CalendarPlan()
    listed: set[str] = set()
    for event in incoming:
        listed.add(event.uid)
        row = stored.get(event.uid)
        if row is None:
            if not event.cancelled:
                plan.new.append(event)
            continue
        if event.sequence < row.sequence:
            continue  # an older copy of the event
        if event.cancelled:
            if row.status != "cancelled":
                plan.cancelled.append(row.id)
            continue
        plan.updated.append((row.id, event))
    for row in upcoming:
        if row.uid not in listed and row.starts_at >= window_start and row.status != "cancelled":
            plan.cancelled.append(row.id)
    return plan


def window(now: datetime, months: int) -> tuple[datetime, datetime]:
    """The span a calendar is read over: from yesterday to ``months`` ahead."""
    return now - timedelta(days=1), now + timedelta(days=31 * months)
