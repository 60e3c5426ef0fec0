"""``agenda.ics``: the agenda as an iCalendar feed (RFC 5545) that calendar apps subscribe to.

Stable UIDs (an event keeps its UID across builds and edits), DTSTAMP from
the event's last change (so an unchanged agenda gives the same bytes), times
in the configured zone with its VTIMEZONE, all-day events as dates.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta

import icalendar

from pressreview.agenda import EventView
from pressreview.config import Config


def agenda_ics(config: Config, events: Sequence[EventView], *, page_url: str) -> bytes:
    """The calendar of ``events``; each links to its anchor on the agenda page."""
    tz = config.tz
    cal = icalendar.Calendar()
    cal.add("prodid", "-//pressreview//Agenda//FR")
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    cal.add("method", "PUBLISH")
    cal.add("x-wr-calname", f"Agenda – {config.archive.title}")
    cal.add("x-wr-timezone", config.timezone)
    if events:
        first = min(e.starts_at for e in events).astimezone(tz).date() - timedelta(days=1)
        last = max((e.ends_at or e.starts_at) for e in events).astimezone(tz).date()
    else:
        first = last = date(2000, 1, 1)
    cal.add_component(
        icalendar.Timezone.from_tzid(
            config.timezone, first_date=first, last_date=last + timedelta(days=1)
        )
    )
    for e in events:
        ev = icalendar.Event()
        ev.add("uid", e.uid)
        ev.add("dtstamp", e.updated_at)
        ev.add("sequence", e.version)
        ev.add("summary", e.title)
        if e.all_day:
            start = e.starts_at.astimezone(tz).date()
            end = (e.ends_at or e.starts_at + timedelta(days=1)).astimezone(tz).date()
            ev.add("dtstart", start)
            ev.add("dtend", max(end, start + timedelta(days=1)))
        else:
            ev.add("dtstart", e.starts_at.astimezone(tz))
            if e.ends_at is not None:
                ev.add("dtend", e.ends_at.astimezone(tz))
        if e.online:
            ev.add("location", "En visio")
        elif e.place:
            ev.add("location", e.place)
        if e.url:
            ev.add("url", e.url)
        anchor = f"{page_url}#evenement-{e.id}"
        ev.add("description", "\n\n".join(filter(None, [e.description, e.url or anchor])))
        if e.territory:
            ev.add("categories", [e.territory])
        ev.add("status", "CONFIRMED")
        cal.add_component(ev)
    return bytes(cal.to_ical())
