"""French event-date expressions, read against a publication date (table-driven)."""

from __future__ import annotations

from datetime import date, time

import pytest

from pressreview.agenda.dates import find_dates

REF = date(2027, 2, 10)  # a Wednesday

# (text, reference date, expected [(start, end, start time, end time)])
CASES: list[tuple[str, date, list[tuple[str, str | None, str | None, str | None]]]] = [
    ("le 1er mars à 17h", REF, [("2027-03-01", None, "17:00", None)]),
    ("Le 1er mars à 17 h", REF, [("2027-03-01", None, "17:00", None)]),
    (
        "mercredi 5 avril de 17h00 à 19h00",
        date(2023, 2, 1),
        [("2023-04-05", None, "17:00", "19:00")],
    ),
    ("mercredi 5 avril de 17h00 à 19h00", REF, [("2027-04-05", None, "17:00", "19:00")]),
    ("du 3 au 5 juin 2027", REF, [("2027-06-03", "2027-06-05", None, None)]),
    ("du 3 au 5 juin", REF, [("2027-06-03", "2027-06-05", None, None)]),
    ("du 30 mars au 2 avril", REF, [("2027-03-30", "2027-04-02", None, None)]),
    (
        "du lundi 29 novembre au mercredi 1er décembre 2027",
        REF,
        [("2027-11-29", "2027-12-01", None, None)],
    ),
    (
        "du 28 décembre 2026 au 3 janvier 2027",
        date(2026, 12, 1),
        [("2026-12-28", "2027-01-03", None, None)],
    ),
    (
        "Dates: Mardi 1 octobre 2024 - 09:30",
        date(2024, 9, 1),
        [("2024-10-01", None, "09:30", None)],
    ),
    ("Mardi 1er octobre 2024 – 9h30", date(2024, 9, 1), [("2024-10-01", None, "09:30", None)]),
    (
        "Un rendez-vous par mois, en visio, le mercredi, de 17h00 à 19h00. "
        "Premier semestre : 1er mars, 5 avril, 3 mai, 7 juin, 5 juillet",
        date(2023, 2, 1),
        [
            ("2023-03-01", None, "17:00", "19:00"),
            ("2023-04-05", None, "17:00", "19:00"),
            ("2023-05-03", None, "17:00", "19:00"),
            ("2023-06-07", None, "17:00", "19:00"),
            ("2023-07-05", None, "17:00", "19:00"),
        ],
    ),
    (
        "les 1er mars, 5 avril et 3 mai de 17h à 19h",
        REF,
        [
            ("2027-03-01", None, "17:00", "19:00"),
            ("2027-04-05", None, "17:00", "19:00"),
            ("2027-05-03", None, "17:00", "19:00"),
        ],
    ),
    ("03/06/2024 à 08h00", date(2024, 5, 1), [("2024-06-03", None, "08:00", None)]),
    ("le 3/6/2024", date(2024, 5, 1), [("2024-06-03", None, None, None)]),
    ("rendez-vous le 2027-03-15 à 14:00", REF, [("2027-03-15", None, "14:00", None)]),
    ("demain à 10h", REF, [("2027-02-11", None, "10:00", None)]),
    ("aujourd'hui à 18h30", REF, [("2027-02-10", None, "18:30", None)]),
    ("après-demain", REF, [("2027-02-12", None, None, None)]),
    ("ce vendredi à 14h", REF, [("2027-02-12", None, "14:00", None)]),
    ("ce mercredi", REF, [("2027-02-10", None, None, None)]),
    ("mardi prochain", REF, [("2027-02-16", None, None, None)]),
    ("mercredi prochain à 9h", REF, [("2027-02-17", None, "09:00", None)]),
    ("les 3, 4 et 5 juin", REF, [("2027-06-03", "2027-06-05", None, None)]),
    ("les 3 et 4 juin", REF, [("2027-06-03", "2027-06-04", None, None)]),
    ("les 3 et 10 juin", REF, [("2027-06-03", None, None, None), ("2027-06-10", None, None, None)]),
    ("le 12 mars 2027 de 9 h 30 à 12 h", REF, [("2027-03-12", None, "09:30", "12:00")]),
    ("le 12 mars 2027 de 9h30 à 12h30", REF, [("2027-03-12", None, "09:30", "12:30")]),
    ("le 12 mars, 14h-16h", REF, [("2027-03-12", None, "14:00", "16:00")]),
    ("jeudi 18 mars à 9 heures", REF, [("2027-03-18", None, "09:00", None)]),
    ("le 20 janvier", date(2026, 12, 15), [("2027-01-20", None, None, None)]),
    ("le 2 décembre", date(2026, 12, 20), [("2026-12-02", None, None, None)]),
    ("le 15 févr. 2027", REF, [("2027-02-15", None, None, None)]),
    ("le 4 sept. à 10h", REF, [("2027-09-04", None, "10:00", None)]),
    ("le 10 déc.", date(2027, 11, 1), [("2027-12-10", None, None, None)]),
    ("le 1er JUILLET 2027", REF, [("2027-07-01", None, None, None)]),
    ("le 14\u00a0juillet à 21\u202fh", REF, [("2027-07-14", None, "21:00", None)]),
    ("le 31 février", REF, []),
    ("le 32 mars", REF, []),
    ("Aucune date ici, juste 17 personnes.", REF, []),
    ("Il y avait 2 000 participants en 2024.", REF, []),
    (
        "Webinaire le 8 avril 2027 de 11h à 12h30, inscription obligatoire",
        REF,
        [("2027-04-08", None, "11:00", "12:30")],
    ),
    (
        "Séminaire régional : mardi 6 avril 2027, de 9h30 à 16h30, à Lille",
        REF,
        [("2027-04-06", None, "09:30", "16:30")],
    ),
    ("Journée d'étude le 25 mai, 9h30 – 17h", REF, [("2027-05-25", None, "09:30", "17:00")]),
    (
        "Réunion publique lundi 22 février à 18h30 en mairie",
        REF,
        [("2027-02-22", None, "18:30", None)],
    ),
]


@pytest.mark.parametrize(("text", "ref", "expected"), CASES, ids=[c[0][:40] for c in CASES])
def test_french_dates(
    text: str, ref: date, expected: list[tuple[str, str | None, str | None, str | None]]
) -> None:
    got = [
        (
            s.start.isoformat(),
            s.end.isoformat() if s.end else None,
            s.start_time.strftime("%H:%M") if s.start_time else None,
            s.end_time.strftime("%H:%M") if s.end_time else None,
        )
        for s in find_dates(text, ref)
    ]
    assert got == expected


def test_at_least_forty_cases() -> None:
    assert len(CASES) >= 40


def test_all_day_flag() -> None:
    [span] = find_dates("le 3 juin", REF)
    assert span.all_day
    [timed] = find_dates("le 3 juin à 9h", REF)
    assert not timed.all_day and timed.start_time == time(9, 0)
