"""Dates and times of events written in French, read relative to a reference date.

Pure functions, no I/O. ``find_dates`` reads the expressions announcements
use ("le 1er mars à 17h", "mercredi 5 avril de 17h00 à 19h00", "du 3 au 5 juin
2027", "Mardi 1 octobre 2024 - 09:30", "1er mars, 5 avril, 3 mai et 7 juin",
"03/06/2024 à 08h00", "demain à 10h", "mardi prochain") and returns one
``DateSpan`` per event date; a cycle of dates gives one span per date, sharing
the time range written once ("Un rendez-vous par mois, de 17h00 à 19h00 : 1er
mars, 5 avril").

A date written without its year is the next occurrence from the reference
date (the publication date of the announcement); a date less than two months
before the reference stays in the reference's year (an event that has just
happened). When a weekday is written with the date, the year whose calendar
agrees wins.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, time, timedelta

from pressreview.text import fold

MONTHS: dict[str, int] = {
    "janvier": 1,
    "janv": 1,
    "jan": 1,
    "fevrier": 2,
    "fevr": 2,
    "fev": 2,
    "mars": 3,
    "avril": 4,
    "avr": 4,
    "mai": 5,
    "juin": 6,
    "juillet": 7,
    "juil": 7,
    "aout": 8,
    "septembre": 9,
    "sept": 9,
    "sep": 9,
    "octobre": 10,
    "oct": 10,
    "novembre": 11,
    "nov": 11,
    "decembre": 12,
    "dec": 12,
}
WEEKDAYS: dict[str, int] = {
    "lundi": 0,
    "mardi": 1,
    "mercredi": 2,
    "jeudi": 3,
    "vendredi": 4,
    "samedi": 5,
    "dimanche": 6,
}

_MONTH = r"(?P<{name}>" + "|".join(sorted(MONTHS, key=len, reverse=True)) + r")\.?"
_WEEKDAY = r"(?:(?P<{name}>" + "|".join(WEEKDAYS) + r")\s+)"
_DAY = r"(?P<{name}>1er|premier|[0-3]?\d)(?:er)?"
_YEAR = r"(?:\s+(?P<{name}>20\d\d))"

# A time: 17h, 17 h 30, 17h00, 17:30, 9 heures, 9 h.
_TIME = r"(?P<{name}h>[01]?\d|2[0-3])\s*(?:h|heures?|:)\s*(?P<{name}m>[0-5]\d)?(?![0-9])"


def _p(template: str, **names: str) -> str:
    return template.format(**names)


def _time_re(name: str) -> str:
    return _TIME.replace("{name}", name)


_ONE_DATE = (
    r"(?:"
    + _p(_WEEKDAY, name="wd")
    + r")?"
    + _p(_DAY, name="d")
    + r"\s+"
    + _p(_MONTH, name="m")
    + r"(?:"
    + _p(_YEAR, name="y")
    + r")?"
)

# "du [lundi] 3 [juin] au [mercredi] 5 juin [2027]" / "du 3 au 5 juin"; "du" starts a
# word (\bdu), written as a look-behind after it so that the scan searches for "du".
_RANGE_RE = re.compile(
    r"du(?<!\wdu)\s+"
    + r"(?:"
    + _p(_WEEKDAY, name="wd1")
    + r")?"
    + _p(_DAY, name="d1")
    + r"(?:\s+"
    + _p(_MONTH, name="m1")
    + r"(?:"
    + _p(_YEAR, name="y1")
    + r")?)?"
    + r"\s+(?:au|jusqu'au)\s+"
    + r"(?:"
    + _p(_WEEKDAY, name="wd2")
    + r")?"
    + _p(_DAY, name="d2")
    + r"\s+"
    + _p(_MONTH, name="m2")
    + r"(?:"
    + _p(_YEAR, name="y2")
    + r")?"
)

_DATE_RE = re.compile(r"\b" + _ONE_DATE + r"\b")
_NUMERIC_RE = re.compile(
    r"\b(?:(?P<wd>" + "|".join(WEEKDAYS) + r")\s+)?"
    r"(?P<d>[0-3]?\d)/(?P<m>[01]?\d)/(?P<y>20\d\d)\b"
    r"|\b(?P<iy>20\d\d)-(?P<im>[01]\d)-(?P<id>[0-3]\d)\b"
)
_RELATIVE_RE = re.compile(
    r"\b(?P<rel>aujourd'hui|aujourd’hui|demain|apres-demain)\b"
    r"|\b(?P<this>ce|cette)\s+(?P<rwd>" + "|".join(WEEKDAYS) + r")\b"
    r"|\b(?P<nwd>" + "|".join(WEEKDAYS) + r")\s+prochain\b"
)
# A time range or a single time right after a date (within a few words).
_TIME_RANGE_RE = re.compile(
    r"(?:de\s+|entre\s+)?" + _time_re("t1") + r"\s*(?:a|-|–|—|et|jusqu'a)\s*" + _time_re("t2")
)
_TIME_ONE_RE = re.compile(r"(?:a\s+|des\s+|-\s*|–\s*|,\s*)?" + _time_re("t1"))
_LIST_SEP_RE = re.compile(r"^\s*(?:,|;|et|puis|ou)\s*")
_TIME_LEAD_RE = re.compile(r"\.?\s*(?:,|-|–)?\s*(?:a|des|de)?\s*")

# What every match of an expression above contains, found by a cheaper scan (a
# pattern that starts with a character class is searched for in C, position by
# position): a text without it cannot match, and most texts skip the costly scan.
# "03/06/2024" and "2024-06-03" hold a digit then a slash or dash (searched for
# the slash or dash) and the rest of the date; "demain", "ce mardi", "mardi
# prochain" name a day; a time range holds the last digit of its first hour, up
# to the first digit of the next.
_NUMERIC_HINT_RE = re.compile(r"[/-](?<=\d[/-])(?:[01]?\d/20\d\d|[01]\d-[0-3]\d)")
_RELATIVE_HINT_RE = re.compile(r"aujourd|demain|" + "|".join(WEEKDAYS))
_TIME_RANGE_HINT_RE = re.compile(
    r"\d\s*(?:h|heures?|:)\s*(?:[0-5]\d)?(?![0-9])\s*(?:a|-|–|—|et|jusqu'a)\s*\d"
)
# A date ("[mardi] 5 avril") holds the last character of its day (a digit, or the r
# of "1er", "premier") followed by spaces and a month; before that character, only
# letters, digits and spaces. One character per hint: finditer finds every one.
_DATE_HINT_RE = re.compile(r"[\dr](?=\s+(?:jan|fev|mars|avr|mai|juin|juil|aout|sep|oct|nov|dec))")
_WORD_SPACES_WORD_RE = re.compile(r"\w*\s*\w*")


@dataclass(frozen=True)
class DateSpan:
    """One event date: a day (or days), with a start and end time when written."""

    start: date
    end: date | None = None  # last day of a multi-day event
    start_time: time | None = None
    end_time: time | None = None
    #: Where the expression starts and ends in the folded text.
    position: tuple[int, int] = (0, 0)

    @property
    def all_day(self) -> bool:
        return self.start_time is None


def normalize(text: str) -> str:
    """The text matched against: folded, typographic spaces and apostrophes made plain."""
    text = text.replace("\u202f", " ").replace("\u00a0", " ").replace("’", "'")
    return fold(text)


def _day(value: str) -> int:
    return 1 if value in ("1er", "premier") else int(value)


def _month(value: str) -> int:
    return MONTHS[value.rstrip(".")]


_RECENT, _AHEAD = timedelta(days=60), timedelta(days=400)


def _resolve_year(
    day: int, month: int, year: str | None, weekday: str | None, ref: date
) -> date | None:
    if year:
        try:
            return date(int(year), month, day)
        except ValueError:
            return None
    # Announcements speak of the coming year at most (and of a recent past).
    earliest, latest = ref - _RECENT, ref + _AHEAD
    candidates: list[date] = []
    for y in (ref.year - 1, ref.year, ref.year + 1):
        try:
            c = date(y, month, day)
        except ValueError:
            continue
        if earliest <= c <= latest:
            if not weekday:  # the next occurrence (the earliest one in the window)
                return c
            candidates.append(c)
    if weekday:
        agreeing = [c for c in candidates if c.weekday() == WEEKDAYS[weekday]]
        if len(agreeing) == 1:
            return agreeing[0]
        if agreeing:
            candidates = agreeing
    # The next occurrence, allowing two months back (an event just past).
    for c in candidates:
        if c >= earliest:
            return c
    return candidates[-1] if candidates else None


def _times(text: str, at: int) -> tuple[time | None, time | None, int]:
    """A time or time range starting within a few characters of ``at``."""
    window = text[at : at + 40]
    stripped = window.lstrip(" ,-–à")
    m = _TIME_RANGE_RE.match(stripped)
    offset = len(window) - len(stripped)
    if m is None:
        lead = _TIME_LEAD_RE.match(window)
        skip = lead.end() if lead else 0
        m = _TIME_RANGE_RE.match(window, skip)
        if m is None:
            m1 = _TIME_ONE_RE.match(window, skip) or _TIME_ONE_RE.match(window.lstrip(" "))
            if m1 is None or not _is_time_context(window, m1):
                return None, None, at
            return _clock(m1, "t1"), None, at + m1.end()
        return _clock(m, "t1"), _clock(m, "t2"), at + m.end()
    return _clock(m, "t1"), _clock(m, "t2"), at + offset + m.end()


def _is_time_context(window: str, m: re.Match[str]) -> bool:
    # "9 h" needs its "h"; a bare number after a date is not a time (it is a list).
    return "h" in m.group(0) or ":" in m.group(0)


def _clock(m: re.Match[str], name: str) -> time | None:
    hours = m.group(name + "h")
    if hours is None:
        return None
    minutes = m.group(name + "m") or "0"
    return time(int(hours), int(minutes))


def _may_be_relative(folded: str) -> bool:
    """False when ``_RELATIVE_RE`` cannot match: every weekday holds "di"."""
    return (
        "di" in folded or "demain" in folded or "aujourd" in folded
    ) and _RELATIVE_HINT_RE.search(folded) is not None


def _date_matches(folded: str) -> Iterator[re.Match[str]]:
    """``_DATE_RE.finditer(folded)``, scanning only the stretch that can hold a match.

    Every match holds a hint (``_DATE_HINT_RE``), the last character of its day,
    and no other before that one; the day is a whole word, the weekday (if any)
    the word before it, with only spaces between. So no match starts before
    the day word of the first hint and the word before it, and none follows a
    match after which no hint is left. The scan of ``_DATE_RE`` (a try at every
    position) is the costliest of an announcement's reading.
    """
    hint = _DATE_HINT_RE.search(folded)
    if hint is None:
        return
    first = hint.start()
    # No match starts before the word that holds the first hint (its day) and the
    # word just before it, when only spaces part them (its weekday): read backwards.
    back = _WORD_SPACES_WORD_RE.match(folded[first::-1])
    start = first + 1 - back.end() if back else 0
    ahead = first  # a hint at or after the end of the last match, while there is one
    for m in _DATE_RE.finditer(folded, start):
        yield m
        if ahead < m.end():
            hint = _DATE_HINT_RE.search(folded, m.end())
            if hint is None:
                return
            ahead = hint.start()


def find_dates(text: str, ref: date, *, folded: str | None = None) -> list[DateSpan]:
    """Every event date the text gives, in reading order (see the module's docstring).

    ``folded`` is ``normalize(text)`` when the caller has it already (positions
    are in that text).
    """
    if folded is None:
        folded = normalize(text)
    found: list[DateSpan] = []
    taken: list[tuple[int, int]] = []

    def free(start: int, end: int) -> bool:
        return all(end <= a or start >= b for a, b in taken)

    for m in _RANGE_RE.finditer(folded):
        m2, y2 = _month(m["m2"]), m["y2"]
        end = _resolve_year(_day(m["d2"]), m2, y2, m["wd2"], ref)
        if end is None:
            continue
        m1 = _month(m["m1"]) if m["m1"] else m2
        y1 = m["y1"] or (str(end.year) if not m["m1"] or m1 <= m2 else str(end.year - 1))
        start = _resolve_year(_day(m["d1"]), m1, y1, m["wd1"], ref)
        if start is None or start > end:
            continue
        t1, t2, stop = _times(folded, m.end())
        found.append(DateSpan(start, end, t1, t2, (m.start(), stop)))
        taken.append((m.start(), stop))

    for m in _date_matches(folded):
        if not free(m.start(), m.end()):
            continue
        d = _resolve_year(_day(m["d"]), _month(m["m"]), m["y"], m["wd"], ref)
        if d is None:
            continue
        t1, t2, stop = _times(folded, m.end())
        found.append(DateSpan(d, None, t1, t2, (m.start(), stop)))
        taken.append((m.start(), stop))

    for m in _NUMERIC_RE.finditer(folded) if _NUMERIC_HINT_RE.search(folded) else ():
        if not free(m.start(), m.end()):
            continue
        try:
            if m["iy"]:
                d = date(int(m["iy"]), int(m["im"]), int(m["id"]))
            else:
                d = date(int(m["y"]), int(m["m"]), int(m["d"]))
        except ValueError:
            continue
        t1, t2, stop = _times(folded, m.end())
        found.append(DateSpan(d, None, t1, t2, (m.start(), stop)))
        taken.append((m.start(), stop))

    for m in _RELATIVE_RE.finditer(folded) if _may_be_relative(folded) else ():
        if not free(m.start(), m.end()):
            continue
        if m["rel"]:
            shift = {"demain": 1, "apres-demain": 2}.get(m["rel"], 0)
            d = ref + timedelta(days=shift)
        else:
            wd = WEEKDAYS[m["rwd"] or m["nwd"]]
            ahead = (wd - ref.weekday()) % 7
            if m["nwd"] and ahead == 0:
                ahead = 7
            d = ref + timedelta(days=ahead)
        t1, t2, stop = _times(folded, m.end())
        found.append(DateSpan(d, None, t1, t2, (m.start(), stop)))
        taken.append((m.start(), stop))

    found.sort(key=lambda s: s.position)
    found = _bare_days(folded, found, ref)
    return _share_times(folded, found)


_BARE_DAY_RE = re.compile(r"(?P<d>1er|[0-3]?\d)\s*(?:,|et)\s*$")


def _bare_days(folded: str, spans: list[DateSpan], ref: date) -> list[DateSpan]:
    """Days listed before a full date share its month: "les 3, 4 et 5 juin"."""
    out: list[DateSpan] = []
    for span in spans:
        extra: list[DateSpan] = []
        cursor = span.position[0]
        while True:
            before = folded[max(0, cursor - 8) : cursor]
            m = _BARE_DAY_RE.search(before)
            if m is None:
                break
            start = cursor - (len(before) - m.start())
            try:
                day = date(span.start.year, span.start.month, _day(m["d"]))
            except ValueError:
                break
            extra.insert(0, DateSpan(day, None, span.start_time, span.end_time, (start, start)))
            cursor = start
        if extra and span.end is None:
            days = [e.start for e in extra] + [span.start]
            if all((b - a).days == 1 for a, b in itertools.pairwise(days)):
                # Consecutive days: one event over several days.
                out.append(
                    DateSpan(
                        days[0],
                        days[-1],
                        span.start_time,
                        span.end_time,
                        (extra[0].position[0], span.position[1]),
                    )
                )
                continue
        out.extend(extra)
        out.append(span)
    return out


def _share_times(folded: str, spans: list[DateSpan]) -> list[DateSpan]:
    """A time range written once for a list of dates applies to each of them."""
    if not spans:
        return spans
    if any(s.start_time for s in spans):
        if len(spans) >= 2:
            timed = [s for s in spans if s.start_time]
            # "1er mars, 5 avril et 3 mai de 17h à 19h": the last date carries the time.
            if len(timed) == 1 and timed[0] is spans[-1]:
                t = timed[0]
                return [
                    DateSpan(s.start, s.end, t.start_time, t.end_time, s.position)
                    if s.start_time is None
                    else s
                    for s in spans
                ]
        return spans
    # No time next to any date: look for one time range in the whole text.
    m = _TIME_RANGE_RE.search(folded) if _TIME_RANGE_HINT_RE.search(folded) else None
    if m is None:
        return spans
    return [DateSpan(s.start, s.end, _clock(m, "t1"), _clock(m, "t2"), s.position) for s in spans]
