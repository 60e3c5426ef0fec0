"""The newsletter email rendered from a fixed snapshot: snapshots, checks, templates, errors.

Expected files live in tests/snapshots/email/; regenerate them with
PRESSREVIEW_UPDATE_SNAPSHOTS=1 python -m pytest tests/test_render.py and review the diff.
"""

from __future__ import annotations

import copy
import email
import email.policy
import os
import re
from pathlib import Path

import pytest
from fixtures_issues import SNAPSHOT_DIR, UPDATE_ENV, fixed_config, fixed_snapshot, mask

from pressreview import preview, render, templating
from pressreview.deliver.message import build_message
from pressreview.errors import RenderError
from pressreview.issues import render_intro


def _compare(name: str, actual: str) -> None:
    path = SNAPSHOT_DIR / name
    if os.environ.get(UPDATE_ENV) or not path.exists():
        if not os.environ.get(UPDATE_ENV):
            pytest.fail(f"{path} is missing: run with {UPDATE_ENV}=1 to create it")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(actual, encoding="utf-8")
    expected = path.read_text(encoding="utf-8")
    assert actual == expected, f"{name} differs from its snapshot (regenerate with {UPDATE_ENV}=1)"


def test_email_html_and_text_match_snapshots() -> None:
    rendered = render.render_email(fixed_config(), fixed_snapshot(6))
    # Formatted for reviewable diffs: one tag boundary per line.
    _compare("issue-12.html", mask(rendered.html).replace("><", ">\n<") + "\n")
    _compare("issue-12.txt", mask(rendered.text))
    assert rendered.subject == (
        "Quartiers 2030\u00a0: où en sont les signatures\u202f? (revue de presse n°\u00a012)"
    )
    assert rendered.preheader == "Bonjour, Cette semaine, trois signatures et un rapport."


def _variants() -> list[tuple[str, dict]]:
    base = fixed_snapshot(6)
    no_logo = copy.deepcopy(base)
    no_logo["organisation"]["logo_url"] = None
    no_intro = copy.deepcopy(base)
    no_intro["intro_md"] = no_intro["intro_html"] = ""
    bare = copy.deepcopy(base)
    bare["organisation"].update(postal_address="", contact_email="")
    for section in bare["sections"]:
        for item in section["items"]:
            item.update(territories=[], excerpt="", also=[], date=None)
    return [
        ("6 items", base), ("40 items", fixed_snapshot(40)), ("1 item", fixed_snapshot(1)),
        ("no logo", no_logo), ("no intro", no_intro), ("bare items", bare),
    ]  # fmt: skip


@pytest.mark.parametrize(("label", "snapshot"), _variants(), ids=[v[0] for v in _variants()])
def test_every_render_passes_the_checks(label: str, snapshot: dict) -> None:
    config = fixed_config()
    rendered = render.render_email(config, snapshot)
    html = rendered.html
    assert "<mj-" not in html
    assert render.check_email_html(html) == []
    assert '<html lang="fr"' in html
    assert '<meta name="color-scheme" content="light dark"' in html
    assert "<script" not in html and "<link" not in html
    assert rendered.html_bytes < config.email.max_html_bytes
    assert (
        render.UNSUBSCRIBE_PLACEHOLDER in html and render.UNSUBSCRIBE_PLACEHOLDER in rendered.text
    )
    assert snapshot["archive_url"] in html and snapshot["archive_url"] in rendered.text
    for section in snapshot["sections"]:
        for item in section["items"]:
            assert item["url"] in rendered.text
            assert item["url"].replace("&", "&amp;") in html
    if snapshot["organisation"]["logo_url"]:
        assert f'alt="{snapshot["organisation"]["name"]}"' in html
    else:
        assert "<img" not in html


def test_check_email_html_finds_problems() -> None:
    bad = '<a href="/relative">x</a><img src="https://e.org/i.png"><mj-text>'
    problems = render.check_email_html(bad)
    assert len(problems) == 3


def test_forty_items_with_long_texts_stay_under_gmail_limit() -> None:
    snapshot = fixed_snapshot(40, excerpt_chars=300)
    for section in snapshot["sections"]:
        for item in section["items"]:
            item["excerpt"] = (item["excerpt"] + " " + "Texte de remplissage. " * 20)[:300]
            item["also"] = item["also"] or [
                {
                    "outlet": "La Voix du Nord",
                    "url": "https://www.example-lavoix.fr/a/1",
                    "title": "x",
                }
            ]
    config = fixed_config()
    rendered = render.render_email(config, snapshot)
    assert rendered.html_bytes < config.email.max_html_bytes
    assert render.size_warning(config, rendered) is None
    tight = fixed_config(email={"max_html_bytes": rendered.html_bytes})
    warning = render.size_warning(tight, rendered)
    assert warning is not None and "close to" in warning and "Gmail" in warning


def test_french_dates_and_escaping() -> None:
    snapshot = fixed_snapshot(2)
    item = snapshot["sections"][0]["items"][0]
    item["title"] = "Tom & Jerry <script>alert(1)</script> à Lille"
    item["outlet"] = "L'Écho & Cie"
    rendered = render.render_email(fixed_config(), snapshot)
    assert "lundi 23\u00a0novembre 2026" in rendered.html
    assert "lundi 23\u00a0novembre 2026" in rendered.text
    assert "10\u00a0novembre 2026" in rendered.html
    assert "Tom &amp; Jerry &lt;script&gt;alert(1)&lt;/script&gt; à Lille" in rendered.html
    assert "<script>" not in rendered.html
    assert "Tom & Jerry <script>alert(1)</script> à Lille" in rendered.text  # text is not HTML
    assert "L’Écho & Cie" in rendered.text


def test_also_covered_by_in_both_parts() -> None:
    rendered = render.render_email(fixed_config(), fixed_snapshot(1))
    assert "Également couvert par" in rendered.html
    assert 'href="https://autre.example.fr/a/0"' in rendered.html
    assert "L’Écho des Hauts-de-France\u00a0: https://autre.example.fr/a/0" in rendered.text


def test_personalize_substitutes_and_escapes() -> None:
    rendered = render.render_email(fixed_config(), fixed_snapshot(1))
    url = "https://veille.example.org/desabonnement?t=abc&u=1"
    message = build_message(fixed_config(), rendered, to="moi@example.fr", unsubscribe_url=url)
    plain, html = (part.get_content() for part in message.iter_parts())
    assert render.UNSUBSCRIBE_PLACEHOLDER not in html + plain
    assert 'href="https://veille.example.org/desabonnement?t=abc&amp;u=1"' in html
    assert f"Se désabonner\u00a0: {url}" in plain


def test_intro_markdown_is_safe() -> None:
    intro = (
        "# Édito\n\nBonjour **à tous**.\n\n<script>alert(1)</script>\n\n"
        "- [rapport](https://example.org/r?a=1&b=2)\n- [relatif](/page)\n"
        "- [js](javascript:alert(1))\n"
    )
    out = render_intro(intro)
    assert out.startswith("<h2>Édito</h2>")
    assert "<strong>à tous</strong>" in out
    assert "<script" not in out and "&lt;script&gt;" in out
    assert '<a href="https://example.org/r?a=1&amp;b=2">rapport</a>' in out
    assert 'href="/page"' not in out and "javascript:" not in out.split("[js]")[0]
    assert 'href="javascript' not in out
    snapshot = fixed_snapshot(1)
    snapshot["intro_html"] = out
    rendered = render.render_email(fixed_config(), snapshot)
    assert render.check_email_html(rendered.html) == []
    assert "rapport (https://example.org/r?a=1&b=2)" in rendered.text


def test_preheader_falls_back_to_titles() -> None:
    snapshot = fixed_snapshot(3)
    snapshot["intro_html"] = ""
    pre = render.preheader_for(snapshot)
    assert pre.startswith("Amiens Métropole signe son contrat")
    assert len(pre) <= 140


# -- templates_dir override and errors -------------------------------------------


def _override(tmp_path: Path, name: str, text: str) -> Path:
    folder = tmp_path / "themes" / "email"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(text, encoding="utf-8")
    return tmp_path / "themes"


def test_templates_dir_is_searched_first(tmp_path: Path) -> None:
    themes = _override(tmp_path, "issue.txt.j2", "Numéro {{ issue.number }} : {{ issue.title }}\n")
    config = fixed_config(templates_dir=str(themes))
    rendered = render.render_email(config, fixed_snapshot(2))
    # Texts of the snapshot reach the templates typeset (French spaces).
    assert rendered.text == "Numéro 12 : Quartiers 2030\u00a0: où en sont les signatures\u202f?\n"
    assert "Signatures des contrats de ville" in rendered.html  # the default HTML template


def test_relative_templates_dir_resolves_against_config(tmp_path: Path, make_config) -> None:
    _override(tmp_path, "issue.txt.j2", "Personnalisé {{ issue.number|format_number }}\n")
    config = make_config(templates_dir="themes")
    assert render.render_email(config, fixed_snapshot(1)).text == "Personnalisé 12\n"


def test_missing_variable_names_template_and_line(tmp_path: Path) -> None:
    themes = _override(tmp_path, "issue.txt.j2", "Titre\n{{ issue.title }}\n{{ issue.nope }}\n")
    with pytest.raises(RenderError) as info:
        render.render_email(fixed_config(templates_dir=str(themes)), fixed_snapshot(1))
    message = str(info.value)
    assert "issue.txt.j2, line 3" in message and "nope" in message


def test_syntax_error_names_template_and_line(tmp_path: Path) -> None:
    themes = _override(
        tmp_path, "issue.mjml.j2", "<mjml>\n<mj-body>\n{% if %}\n</mj-body></mjml>\n"
    )
    with pytest.raises(RenderError) as info:
        render.render_email(fixed_config(templates_dir=str(themes)), fixed_snapshot(1))
    assert "issue.mjml.j2, line 3" in str(info.value)


@pytest.mark.parametrize(
    "body",
    [
        "<mjml><mj-body><mj-section><mj-column><mj-text>x</mj-body></mjml>",
        "<mjml><mj-body><mj-bogus>x</mj-bogus></mj-body></mjml>",
    ],
    ids=["unclosed", "unknown element"],
)
def test_mjml_errors_are_render_errors(tmp_path: Path, body: str) -> None:
    themes = _override(tmp_path, "issue.mjml.j2", body)
    with pytest.raises(RenderError) as info:
        render.render_email(fixed_config(templates_dir=str(themes)), fixed_snapshot(1))
    assert "issue.mjml.j2" in str(info.value) and "MJML" in str(info.value)


def test_unknown_snapshot_schema_is_refused() -> None:
    snapshot = fixed_snapshot(1)
    snapshot["schema"] = 99
    with pytest.raises(RenderError, match="schema"):
        render.render_email(fixed_config(), snapshot)


def test_template_env_filters_for_other_stages(tmp_path: Path) -> None:
    env = templating.template_env(fixed_config(), "email")
    template = env.from_string("{{ d|format_date('full') }} · {{ n|format_number }} · {{ t }}")
    out = template.render(d="2024-06-03", n=1234567, t="<b>")
    assert out == "lundi 3\u00a0juin 2024 · 1\u202f234\u202f567 · &lt;b&gt;"
    capitals = env.from_string("{{ w|capfirst }}|{{ m|capfirst }}|{{ e|capfirst }}")
    assert capitals.render(w="mercredi 2 décembre", m="du lundi au Jeudi", e="") == (
        "Mercredi 2 décembre|Du lundi au Jeudi|"
    )
    says = env.from_string("{{ t|names_date(d) }}")
    assert says.render(t="Revue de presse du 23 novembre 2026", d="2026-11-23") == "True"
    assert says.render(t="Revue du 23\u00a0Novembre 2026", d="2026-11-23") == "True"
    assert says.render(t="Revue de presse du 23 novembre", d="2026-11-23") == "False"
    assert says.render(t="Quartiers 2030", d=None) == "False"


@pytest.mark.parametrize(
    "title", ["Revue de presse du 23 novembre 2026", "Revue du 23\u00a0Novembre\u00a02026"]
)
def test_the_header_leaves_out_a_date_the_title_already_says(title: str) -> None:
    snapshot = fixed_snapshot(3)
    rendered = render.render_email(fixed_config(), snapshot)
    assert "N°\u00a012 · lundi 23\u00a0novembre 2026 ·" in rendered.text
    snapshot["title"] = title
    said = render.render_email(fixed_config(), snapshot)
    assert "lundi 23" not in said.text and "N°\u00a012 · 3\u00a0articles" in said.text


# -- the MIME message -------------------------------------------------------------


def test_email_files_and_eml_structure(tmp_path: Path) -> None:
    files = preview.write_email_files(fixed_config(), fixed_snapshot(3), tmp_path / "out")
    assert [p.name for p in files.paths] == ["email.html", "email.txt", "email.eml"]
    assert files.warnings == []
    message = email.message_from_bytes(
        (tmp_path / "out" / "email.eml").read_bytes(), policy=email.policy.default
    )
    assert message.get_content_type() == "multipart/alternative"
    parts = list(message.iter_parts())
    assert [p.get_content_type() for p in parts] == ["text/plain", "text/html"]
    assert all(p.get_content_charset() == "utf-8" for p in parts)
    assert "Quartiers 2030\u00a0: où en sont les signatures\u202f?" in str(message["Subject"])
    assert parts[0].get_content().replace("\r\n", "\n") == files.rendered.text
    assert "lundi 23\u00a0novembre 2026" in parts[1].get_content()
    assert render.check_email_html(parts[1].get_content()) == []


def _luminance(hex_colour: str) -> float:
    channels = [int(hex_colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(a: str, b: str) -> float:
    la, lb = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def test_default_palette_meets_wcag_aa() -> None:
    source = (templating.TEMPLATES_ROOT / "email" / "issue.mjml.j2").read_text(encoding="utf-8")
    palette = dict(re.findall(r'{% set (\w+) = "(#[0-9a-fA-F]{6})" %}', source))
    assert set(palette) >= {"brand", "link", "ink", "muted", "paper", "canvas"}
    pairs = [
        (palette["ink"], palette["paper"]), (palette["muted"], palette["paper"]),
        (palette["muted"], palette["canvas"]), (palette["link"], palette["paper"]),
        (palette["link"], palette["canvas"]), ("#ffffff", palette["brand"]),
        ("#dce6f2", palette["brand"]), (palette["brand"], palette["paper"]),
        # dark mode (prefers-color-scheme) colours
        ("#e6edf3", "#161b22"), ("#b1bac4", "#161b22"), ("#9ecbff", "#161b22"),
    ]  # fmt: skip
    for fg, bg in pairs:
        assert contrast(fg, bg) >= 4.5, f"{fg} on {bg}: {contrast(fg, bg):.2f}"
    assert contrast("#777777", "#ffffff") < 4.5  # the check can fail
