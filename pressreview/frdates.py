"""French date expressions of the press, read against the publication date.

"signé le 19 mars", "ce mardi", "le 7 mai dernier", "vendredi 12 avril",
"hier", "19/03/2024": :func:`find_dates` gives each expression found in a
(folded) text with the day it means. A small parser rather than a general
one: it knows the few forms news items use, and runs in microseconds.

It reads reports of acts, so a date without a year is the *last* such day
(not well after the publication) and a bare weekday the last one on or before
it; ``pressreview.agenda.dates`` reads announcements of events to come (the
*next* occurrence, times, ranges and cycles of dates).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta

MONTHS = {
    "janvier": 1, "fevrier": 2, "mars": 3, "avril": 4, "mai": 5, "juin": 6, "juillet": 7,
    "aout": 8, "septembre": 9, "octobre": 10, "novembre": 11, "decembre": 12,
}  # fmt: skip
WEEKDAYS = {
    "lundi": 0, "mardi": 1, "mercredi": 2, "jeudi": 3, "vendredi": 4, "samedi": 5, "dimanche": 6,
}  # fmt: skip
_WD = "|".join(WEEKDAYS)
_MO = "|".join(MONTHS)
_DATE_RE = re.compile(
    # 19/03/2024, 19.03.2024
    r"\b(?P<d1>\d{1,2})[/.](?P<m1>\d{1,2})[/.](?P<y1>\d{4})\b"
    # (le) (mardi) 19 mars (2024) (dernier)
    rf"|\b(?:(?P<wd2>{_WD})\s+)?(?P<d2>1er|\d{{1,2}})\s+(?P<m2>{_MO})\b(?:\s+(?P<y2>\d{{4}})\b)?"
    r"(?:\s+(?P<last2>dernier))?"
    # (ce) mardi (dernier | prochain | soir | matin)
    rf"|\b(?P<ce>ce\s+)?(?P<wd3>{_WD})\b(?:\s+(?P<rel3>dernier|prochain))?"
    r"|\b(?P<rel4>avant-hier|avant hier|hier|aujourd'hui|aujourd hui|ce matin|ce soir)\b"
)


@dataclass(frozen=True)
class DateMention:
    start: int
    end: int
    day: date


def find_dates(folded: str, published: date) -> list[DateMention]:
    """Every date expression of a folded text, resolved against ``published``."""
    found: list[DateMention] = []
    for m in _DATE_RE.finditer(folded):
        day = _resolve(m, published)
        if day is not None:
            found.append(DateMention(m.start(), m.end(), day))
    return found


def _resolve(m: re.Match[str], published: date) -> date | None:
    g = m.groupdict()
    try:
        if g["d1"]:
            return date(int(g["y1"]), int(g["m1"]), int(g["d1"]))
        if g["d2"]:
            day = 1 if g["d2"] == "1er" else int(g["d2"])
            month = MONTHS[g["m2"]]
            if g["y2"]:
                return date(int(g["y2"]), month, day)
            candidate = date(published.year, month, day)
            # Without a year: the latest such day that is not well after the
            # publication ("le 18 decembre" read in January is last year's).
            if candidate > published + timedelta(days=0 if g["last2"] else 31):
                candidate = date(published.year - 1, month, day)
            return candidate
        if g["wd3"]:
            target = WEEKDAYS[g["wd3"]]
            back = (published.weekday() - target) % 7
            if g["rel3"] == "dernier":
                return published - timedelta(days=back or 7)
            if g["rel3"] == "prochain":
                return published + timedelta(days=(target - published.weekday()) % 7 or 7)
            return published - timedelta(days=back)
        rel = g["rel4"]
        if rel in ("hier",):
            return published - timedelta(days=1)
        if rel in ("avant-hier", "avant hier"):
            return published - timedelta(days=2)
        if rel:
            return published
    except ValueError:  # 31 février, 45/13/2024
        return None
    return None
