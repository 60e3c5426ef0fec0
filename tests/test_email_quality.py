"""The email as a proof-reader and a spam filter read it, and the placeholder guard."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result
from fixtures_issues import fixed_config, fixed_snapshot

from pressreview import preview, render
from pressreview.config import Config, check_placeholders, placeholder_problems
from pressreview.errors import Refused
from pressreview.typography import with_preposition

N = "\u00a0"


@pytest.mark.parametrize(
    ("preposition", "name", "expected"),
    [
        ("de", "l'IREV", "de l’IREV"),
        ("par", "l'IREV", "par l’IREV"),
        ("de", "le Centre de ressources", "du Centre de ressources"),
        ("de", "les Ateliers", "des Ateliers"),
        ("à", "le Centre", "au Centre"),
        ("de", "la Maison de l'habitat", "de la Maison de l’habitat"),
        ("par", "le Centre", "par le Centre"),
    ],
)
def test_name_in_sentences(preposition: str, name: str, expected: str) -> None:
    assert with_preposition(preposition, name) == expected


def _with_org(**org: str) -> dict:
    snapshot = fixed_snapshot(6)
    snapshot["organisation"] = {**snapshot["organisation"], **org}
    return snapshot


def test_short_name_is_used_in_the_footer_sentence() -> None:
    snapshot = _with_org(short_name="l'IREV", reason="")
    rendered = render.render_email(fixed_config(), snapshot)
    sentence = "à la revue de presse de l’IREV."
    assert sentence in rendered.html
    assert "revue de presse de l’IREV." in " ".join(rendered.text.split())
    masculine = render.render_email(fixed_config(), _with_org(short_name="le Centre", reason=""))
    assert "revue de presse du Centre." in " ".join(masculine.text.split())


def test_default_subject_says_number_and_date_once() -> None:
    snapshot = fixed_snapshot(6)
    snapshot["date"] = "2026-12-01"
    subject = render.format_subject("Revue de presse n° {number} – {date}", snapshot)
    assert subject == f"Revue de presse n°{N}12 – 1er{N}décembre 2026"
    assert Config().email.subject == "Revue de presse n° {number} – {date}"


def test_header_does_not_repeat_the_title_nor_the_date() -> None:
    snapshot = fixed_snapshot(6)
    snapshot["date"] = "2026-12-01"
    snapshot["title"] = "Revue de presse du 1 décembre 2026"
    rendered = render.render_email(fixed_config(), snapshot)
    body = rendered.html.split("<body", 1)[1]
    assert body.count("1er\u00a0décembre 2026") == 1  # the title, not the line under it
    head = rendered.text.split("_" * 72)[0]
    assert head.count("décembre") == 1 and "1er\u00a0décembre" in head


def test_au_sommaire_only_past_a_handful_of_items() -> None:
    big = render.render_email(fixed_config(), fixed_snapshot(40))
    assert "Au sommaire" in big.html and "AU SOMMAIRE" in big.text
    for index in range(1, 4):
        assert f'href="#rubrique-{index}"' in big.html and f'id="rubrique-{index}"' in big.html
    counts = re.findall(r"\((\d+)\)</span></li>", big.html)
    assert sum(int(c) for c in counts) == 40
    small = render.render_email(fixed_config(), fixed_snapshot(3))
    assert "Au sommaire" not in small.html and "AU SOMMAIRE" not in small.text


def test_preheader_is_hidden_without_low_contrast_text() -> None:
    rendered = render.render_email(fixed_config(), fixed_snapshot(6))
    div = re.search(r'<div class="pr-preheader" style="([^"]*)">([^<]*)</div>', rendered.html)
    assert div is not None and div.group(2) == rendered.preheader
    assert "display:none" in div.group(1) and "color" not in div.group(1)
    assert "font-size:1px" not in rendered.html and "opacity:0" not in rendered.html
    # The design does not depend on prefers-color-scheme: the light colours are inline.
    assert "color:#1f2328" in rendered.html and "background-color:#ffffff" in rendered.html


def test_logo_has_alt_text() -> None:
    rendered = render.render_email(fixed_config(), fixed_snapshot(2))
    assert 'src="https://crpv.example.org/static/logo.png" alt="Centre de ressources' in (
        rendered.html
    )


def test_long_links_are_numbered_references_in_the_text_part() -> None:
    snapshot = fixed_snapshot(3)
    google = "https://news.google.com/rss/articles/CBMiWszQT8w4t40kbm88I5VI6-YKFBD3LObAE?oc=5"
    long_url = "https://www.example-presse.fr/" + "a" * 90
    first = snapshot["sections"][0]["items"][0]
    first["url"] = google
    first["also"] = [{"outlet": "Autre", "url": long_url, "title": "t"}]
    text = render.render_email(fixed_config(), snapshot).text
    assert google not in text.split("Liens")[0]
    assert f"  Lire{N}: [1]" in text and f"  - Autre{N}: [2]" in text
    assert f"  [1] {google}" in text and f"  [2] {long_url}" in text
    # References come at the end of their section, before the next section's title.
    section_end = text.index(f"  [2] {long_url}")
    second_title = snapshot["sections"][1]["title"].upper()
    assert section_end < text.index(second_title)
    assert max(len(line) for line in text.splitlines() if "http" not in line) <= 72


SPAMASSASSIN = shutil.which("spamassassin")


@pytest.mark.skipif(SPAMASSASSIN is None, reason="spamassassin is not installed")
def test_no_spamassassin_html_rule_fires_on_an_issue(tmp_path: Path) -> None:
    config = fixed_config()
    files = preview.write_email_files(config, fixed_snapshot(40), tmp_path, eml=True)
    message = files.paths[-1].read_bytes()
    assert SPAMASSASSIN is not None
    report = subprocess.run(
        [SPAMASSASSIN, "-L", "-t"], input=message, capture_output=True, check=False, timeout=120
    ).stdout.decode("utf-8", "replace")
    details = report.split("Content analysis details:", 1)[1]
    rules = re.findall(r"^\s*-?\d+\.\d+\s+([A-Z0-9_]+)", details, re.M)
    assert "HTML_FONT_LOW_CONTRAST" not in rules
    score = float(re.search(r"\((-?\d+\.\d+) points", details).group(1))  # type: ignore[union-attr]
    assert score <= 0.0, rules


# -- nothing goes out with a placeholder --------------------------------------------


def test_placeholder_problems() -> None:
    ok = fixed_config()
    assert placeholder_problems(ok) == []
    check_placeholders(ok)
    bad = fixed_config(
        organisation={
            "name": "X",
            "url": "https://x.example.org/",
            "postal_address": "[À MODIFIER] adresse postale",
            "contact_email": "",
        }
    )
    assert placeholder_problems(bad) == [
        "organisation.postal_address is still a placeholder ('[À MODIFIER] adresse postale')",
        "organisation.contact_email is empty",
    ]
    with pytest.raises(Refused) as info:
        check_placeholders(bad)
    assert "--allow-placeholders" in str(info.value) and "\n" not in str(info.value)
    check_placeholders(bad, allow=True)
    assert placeholder_problems(Config()) == [
        "organisation.postal_address is empty",
        "organisation.contact_email is still a placeholder ('contact@example.org')",
    ]


def test_publish_send_and_archive_build_refuse_placeholders(
    make_config: Callable[..., Config],
    store_url: str,
    cli: Callable[..., Result],
    tmp_path: Path,
) -> None:
    base = make_config(database_url=store_url)
    organisation = {
        "name": "Centre",
        "url": "https://crpv.example.org/",
        "contact_email": "c@crpv.fr",
    }
    config = make_config(
        database_url=store_url,
        organisation={**organisation, "postal_address": "[À MODIFIER] adresse"},
    )
    assert base.path == config.path  # same file, rewritten with the placeholder
    for args in (
        ["issue", "publish"],
        ["send", "1"],
        ["archive", "build", "--out", str(tmp_path / "site"), "--no-search"],
    ):
        result = cli(config, *args)
        assert result.exit_code == 1, (args, result.output)
        lines = result.output.strip().splitlines()
        assert len(lines) == 1 and "organisation.postal_address" in lines[0], args
        assert "--allow-placeholders" in lines[0]
    built = cli(
        config, "archive", "build", "--out", str(tmp_path / "site"), "--no-search",
        "--allow-placeholders",
    )  # fmt: skip
    assert built.exit_code == 0, built.output
    publish = cli(config, "issue", "publish", "--allow-placeholders")
    assert "organisation.postal_address" not in publish.output


def test_confirmation_email_names_the_organisation_in_sentences() -> None:
    from pressreview.deliver.single import confirmation_message

    config = fixed_config(
        organisation={
            "name": "IREV – Centre de ressources",
            "short_name": "l'IREV",
            "url": "https://irev.example.org/",
            "postal_address": "1 rue de l'Exemple, 59000 Lille",
            "contact_email": "contact@irev.example.org",
        }
    )
    link = "https://veille.example.org/abonnement/confirmer/abc?x=1:2"
    message = confirmation_message(config, to="marie@example.fr", confirm_url=link)
    assert str(message["Subject"]) == "Confirmez votre abonnement à la revue de presse de l’IREV"
    body = message.get_content()
    unwrapped = " ".join(body.split())
    assert "la revue de presse de l’IREV à cette adresse" in unwrapped
    assert f"ouvrez ce lien{N}:\n{link}\n" in body and "Quelqu’un" in body
    # Wrapped like the newsletter's text part; the link stays whole on its line.
    assert max(len(line) for line in body.splitlines() if line != link) <= 72
