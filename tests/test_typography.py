"""French typography: a table of cases, HTML safety, dates and plain-text wrapping."""

from __future__ import annotations

import re
from datetime import date, datetime
from pathlib import Path

import pytest

from pressreview.typography import format_date, typeset, typeset_html, wrap

N = "\u00a0"  # no-break space
T = "\u202f"  # narrow no-break space

CASES: list[tuple[str, str]] = [
    # guillemets
    ("« Quartiers 2030 »", f"«{T}Quartiers 2030{T}»"),
    ("«Quartiers 2030»", f"«{T}Quartiers 2030{T}»"),
    ("«\u00a0Quartiers\u00a0»", f"«{T}Quartiers{T}»"),
    ("contrat de ville « Quartiers 2030 » signé", f"contrat de ville «{T}Quartiers 2030{T}» signé"),
    # high signs
    ("mars 2026 ?", f"mars 2026{T}?"),
    ("Pourquoi?", f"Pourquoi{T}?"),
    ("Enfin !", f"Enfin{T}!"),
    ("Enfin!", f"Enfin{T}!"),
    ("Vraiment?!", f"Vraiment{T}?!"),
    ("un point ; un autre", f"un point{T}; un autre"),
    ("premier;second", "premier;second"),
    # colon: a full no-break space
    ("Quartiers 2030 : le bilan", f"Quartiers 2030{N}: le bilan"),
    ("Lille: le bilan", f"Lille{N}: le bilan"),
    ("à 10:30 précises", "à 10:30 précises"),
    ("Public :", f"Public{N}:"),
    # apostrophes
    ("l'IREV", "l’IREV"),
    ("aujourd'hui l'agglomération", "aujourd’hui l’agglomération"),
    ("d'Anzin à Condé-sur-l'Escaut", "d’Anzin à Condé-sur-l’Escaut"),
    ("déjà l’IREV", "déjà l’IREV"),
    # numbers
    ("n° 12", f"n°{N}12"),
    ("N°12", f"N°{N}12"),
    ("40 millions d'euros", f"40{N}millions{N}d’euros"),
    ("3 milliards", f"3{N}milliards"),
    ("les 204 QPV", f"les 204{N}QPV"),
    ("1 200 actions", f"1{T}200{N}actions"),
    ("90 000 habitants", f"90{T}000{N}habitants"),
    ("1 609 QPV", f"1{T}609{N}QPV"),
    ("15 000 euros", f"15{T}000{N}euros"),
    ("420 logements", f"420{N}logements"),
    ("10 %", f"10{N}%"),
    ("10%", f"10{N}%"),
    ("50 €", f"50{N}€"),
    ("de 10 h à 11 h 30", f"de 10{N}h à 11{N}h{N}30"),
    ("le 22 octobre", f"le 22{N}octobre"),
    ("le 1er décembre", f"le 1er{N}décembre"),
    ("Revue du 1 décembre 2026", f"Revue du 1er{N}décembre 2026"),
    ("les 11 mars", f"les 11{N}mars"),
    ("en 2026 dans les quartiers", "en 2026 dans les quartiers"),
    ("de 16 à 20 ans", f"de 16 à 20{N}ans"),
    ("mars 2026 100 logements", f"mars 2026 100{N}logements"),
    # ellipsis
    ("Au...", "Au…"),
    # addresses are never touched
    ("https://x.fr/a?b=c;d!e", "https://x.fr/a?b=c;d!e"),
    ("voir https://ex.fr/l'article : ici", f"voir https://ex.fr/l'article{N}: ici"),
    ("écrire à contact@irev.fr : merci", f"écrire à contact@irev.fr{N}: merci"),
    ("www.irev.fr/a:b", "www.irev.fr/a:b"),
    # nothing to do
    ("", ""),
    ("CA de Lens-Liévin", "CA de Lens-Liévin"),
]


@pytest.mark.parametrize(("raw", "expected"), CASES)
def test_typeset(raw: str, expected: str) -> None:
    assert typeset(raw) == expected


@pytest.mark.parametrize(("raw", "expected"), CASES)
def test_typeset_is_idempotent(raw: str, expected: str) -> None:
    assert typeset(typeset(raw)) == expected


def test_at_least_forty_cases() -> None:
    assert len(CASES) >= 40


def test_html_attributes_and_code_are_untouched() -> None:
    fragment = (
        '<p title="l\'IREV : n° 1">Lire l\'article : <a href="https://x.fr/?a=1;b=2">ici !</a></p>'
        "<pre>x : y</pre><p>l&#x27;IREV &amp; co</p>"
    )
    out = typeset_html(fragment)
    assert '<p title="l\'IREV : n° 1">' in out
    assert f"Lire l’article{N}: " in out
    assert 'href="https://x.fr/?a=1;b=2"' in out
    assert f"ici{T}!</a>" in out
    assert "<pre>x : y</pre>" in out
    assert "<p>l’IREV &amp; co</p>" in out


@pytest.mark.parametrize(
    ("value", "fmt", "expected"),
    [
        (date(2026, 12, 1), "long", f"1er{N}décembre 2026"),
        ("2026-12-01", "full", f"mardi 1er{N}décembre 2026"),
        (datetime(2026, 12, 1, 9, 30), "d MMMM y", f"1er{N}décembre 2026"),
        (date(2026, 11, 21), "long", f"21{N}novembre 2026"),
        (date(2026, 11, 11), "long", f"11{N}novembre 2026"),
        (None, "long", ""),
    ],
)
def test_format_date(value: object, fmt: str, expected: str) -> None:
    assert format_date(value, fmt, "fr_FR") == expected


def test_format_date_other_locale_has_no_premier() -> None:
    assert format_date(date(2026, 12, 1), "long", "en_GB") == "1 December 2026"


def test_wrap_never_breaks_inside_pairs_nor_at_hyphens() -> None:
    text = typeset(
        "Amiens Métropole signe enfin l'avenant de son contrat de ville « Quartiers 2030 » "
        "après les municipales de mars 2026 ? Portrait de la CA de Lens-Liévin et ses 204 QPV "
        "pour 40 millions d'euros."
    )
    for width in range(20, 80):
        lines = wrap(text, width, indent="  ").split("\n")
        for line in lines:
            assert not line.rstrip().endswith(("«", "-", "Lens-")), (width, line)
            assert not line.lstrip().startswith(("»", "?", ":", "Liévin", "QPV", "millions")), (
                width,
                line,
            )
        assert "".join(lines).replace("  ", " ").count("Lens-Liévin") == 1


def test_wrap_keeps_long_addresses_whole() -> None:
    url = "https://news.example.fr/rss/articles/" + "CBMi" + "x" * 90
    out = wrap(f"Lire\u00a0: {url}", 40)
    assert url in out.split("\n")[-1]


def test_the_default_templates_space_punctuation_as_typeset_does() -> None:
    """The templates' own text: a no-break space before ``:``, a narrow one before
    ``;``, ``!`` and ``?`` and inside « » (what :func:`typeset` gives), never the
    other way round."""
    templates = Path(__file__).resolve().parent.parent / "templates"
    wrong = re.compile(
        r"(?:&nbsp;|&#160;|\u00a0)[;!?»]|(?:&#8239;|\u202f):|«(?:&nbsp;|&#160;|\u00a0| )"
        r"|[^\s>] »"
    )
    found = [
        f"{path.relative_to(templates)}:{number}: {match.group(0)!r}"
        for path in sorted(templates.rglob("*.j2"))
        for number, line in enumerate(path.read_text("utf-8").splitlines(), 1)
        for match in wrong.finditer(line)
    ]
    assert found == []
    assert typeset("a ; b ! c ? d : e") == "a\u202f; b\u202f! c\u202f? d\u00a0: e"
    assert typeset("« Quartiers 2030 »") == "«\u202fQuartiers 2030\u202f»"
