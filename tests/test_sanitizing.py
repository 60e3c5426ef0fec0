"""Hostile feed content, case by case: what reaches a reader after cleaning.

Inputs and the exact outputs promised: text without tags, entities or control
characters; HTML reduced to a safe subset (no script, event handler, style,
image, nor javascript:/data: link); links without tracking parameters and in
one stable canonical form; hrefs checked before any template writes them.
"""

from __future__ import annotations

import pytest

from pressreview.text import canonical_url, clean_text, host_of, safe_url, sanitize_html, valid_text

REL = 'rel="noopener noreferrer nofollow"'

# -- plain text ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        (None, ""),
        ("", ""),
        ("  Lens \n\t Liévin  ", "Lens Liévin"),
        ("<b>Creil</b> signe", "Creil signe"),
        ("&lt;b&gt;Creil&lt;/b&gt;", "Creil"),  # escaped tags are tags too
        ("&amp;lt;b&amp;gt;Creil&amp;lt;/b&amp;gt;", "Creil"),  # escaped twice
        ("&amp;amp;amp;amp;lt;b&amp;amp;amp;amp;gt;Creil", "Creil"),  # many times
        ("&lt;script&gt;alert(1)&lt;/script&gt;Texte", "Texte"),
        ("<script>alert(1)</script><style>p{}</style>Texte", "Texte"),
        ('<p onclick="alert(1)">Texte</p>', "Texte"),
        ("<li>204 QPV</li><li>700 000 habitants</li>", "204 QPV ; 700 000 habitants"),
        ("Bilan<br>2026", "Bilan 2026"),
        ("R&amp;D &eacute;t&eacute;", "R&D été"),
        ("3 < 4 & 5 > 2", "3 < 4 & 5 > 2"),  # not tags, not entities: kept
        ("a\x00b\x08c\x0bd\x1fe\x7ff\ufffeg\uffff", "abcdefg"),
        ("a\ud800b", "a\ufffdb"),
        ("&#0;x&#x1f;y", "\ufffdxy"),  # a NUL reference is a replacement character
    ],
)
def test_clean_text_leaves_words_only(raw: str | None, clean: str) -> None:
    assert clean_text(raw) == clean
    assert clean_text(clean) == clean  # and stays so


@pytest.mark.parametrize(
    ("raw", "valid"),
    [
        ("Lens\tLiévin\nCreil\r", "Lens\tLiévin\nCreil\r"),  # tabs and line breaks stay
        ("a\x00\x01\x08\x0b\x0c\x0e\x1f\x7fb", "ab"),
        ("a\ufffe\uffffb", "ab"),
        ("a\ud800\udfffb", "a\ufffd\ufffdb"),
        ("<b>&amp;</b>", "<b>&amp;</b>"),  # markup is not its business
        # C1 controls (\x9b starts a terminal sequence), directional overrides and
        # isolates ("gnp.exe" reversed to read "exe.png"); the marks LRM and RLM stay
        ("a\x80\x85\x9b[31mb", "a[31mb"),
        ("photo \u202egnp.exe\u202c et \u2066iso\u2069", "photo gnp.exe et iso"),
        ("\u202a\u202b\u202d\u2067\u2068x", "x"),
        ("a\u200eb\u200fc", "a\u200eb\u200fc"),
    ],
)
def test_valid_text_drops_only_what_cannot_be_stored(raw: str, valid: str) -> None:
    assert valid_text(raw) == valid


# -- HTML ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fragment", "safe"),
    [
        (None, ""),
        ("", ""),
        ("<script>alert(1)</script>ok", "ok"),
        ("<style>p{color:red}</style><p>ok</p>", "<p>ok</p>"),
        ('<p onclick="x()" onmouseover="y()">a</p>', "<p>a</p>"),
        ('<img src="x" onerror="alert(1)">', ""),
        ('<svg onload="alert(1)"><circle/></svg>z', "z"),
        ('<iframe src="https://e.fr"></iframe><form action="x"><input name="a"></form>t', "t"),
        ("<!-- commentaire -->a", "a"),
        ('<p class="c" id="i" style="color:red">a</p>', "<p>a</p>"),
        ('<a href="javascript:alert(1)">x</a>', f"<a {REL}>x</a>"),
        ('<a href="JaVaScRiPt:alert(1)">x</a>', f"<a {REL}>x</a>"),
        ('<a href="  javascript:alert(1)">x</a>', f"<a {REL}>x</a>"),
        ('<a href="java&#x09;script:alert(1)">x</a>', f"<a {REL}>x</a>"),
        ('<a href="data:text/html;base64,PHNjcmlwdD4=">x</a>', f"<a {REL}>x</a>"),
        ('<a href="vbscript:msgbox(1)">x</a>', f"<a {REL}>x</a>"),
        ('<a href="ftp://example.fr/f">x</a>', f"<a {REL}>x</a>"),
        ('<a href="https://ex.fr/">x</a>', f'<a href="https://ex.fr/" {REL}>x</a>'),
        ('<a href="http://ex.fr/">x</a>', f'<a href="http://ex.fr/" {REL}>x</a>'),
        ('<a href="mailto:a@ex.fr">x</a>', f'<a href="mailto:a@ex.fr" {REL}>x</a>'),
        (
            '<a href="https://ex.fr/" title="t" target="_blank" rel="opener">x</a>',
            f'<a href="https://ex.fr/" title="t" {REL}>x</a>',
        ),
        (
            '<abbr title="Quartier prioritaire">QPV</abbr>',
            '<abbr title="Quartier prioritaire">QPV</abbr>',
        ),
        ("<ul><li>a</li></ul><ol><li>b</li></ol>", "<ul><li>a</li></ul><ol><li>b</li></ol>"),
        # only a link's href and title, an abbreviation's title (and a language) are kept
        ('<blockquote cite="https://x.fr/">q</blockquote>', "<blockquote>q</blockquote>"),
        (
            '<q cite="https://x.fr/">q</q><ol start="3"><li>a</li></ol>',
            "<q>q</q><ol><li>a</li></ol>",
        ),
        ('<a href="https://x.fr/" hreflang="fr">x</a>', f'<a href="https://x.fr/" {REL}>x</a>'),
        ('<p lang="fr" dir="rtl">a</p>', '<p lang="fr">a</p>'),
        (
            "<strong>s</strong><em>e</em><b>b</b><i>i</i><code>c</code><q>q</q><br>",
            "<strong>s</strong><em>e</em><b>b</b><i>i</i><code>c</code><q>q</q><br>",
        ),
        ("<p>a \n\n\t b</p>\n<p>c</p>", "<p>a b</p> <p>c</p>"),
        ("   <b>x</b>  \n", "<b>x</b>"),
        # a dropped block leaves a space: words on either side stay apart
        ("<h2>Titre</h2>Texte", "Titre Texte"),
        ("<div>Contrat de ville</div><div>signé</div>", "Contrat de ville signé"),
        ("<table><tr><td>204</td><td>QPV</td></tr></table>", "204 QPV"),
        ("<figure><figcaption>Légende</figcaption></figure>Texte", "Légende Texte"),
        ("a<hr>b<HR/>c", "a b c"),
        ("<span>in</span><b>line</b>", "in<b>line</b>"),  # inline: no space added
        # a no-break space between dropped blocks, or beside a space, is one space
        ("<div>a</div>&nbsp;<div>b</div>", "a b"),
        ("<p>a &nbsp;&nbsp; b</p>", "<p>a b</p>"),
        ("a&nbsp; b &nbsp;c", "a b c"),
        ("&nbsp;<div>début</div>", "début"),
        # alone, it is the author's: kept
        ("Lille&nbsp;: la ville", "Lille&nbsp;: la ville"),
        ("<p>a</p>&nbsp;<p>b</p>", "<p>a</p>&nbsp;<p>b</p>"),
        ("1\u00a0000 logements", "1&nbsp;000 logements"),
        ("a\x00b\x1fc", "abc"),
        ("\ud800x", "\ufffdx"),
    ],
)
def test_sanitize_html_keeps_a_safe_subset(fragment: str | None, safe: str) -> None:
    assert sanitize_html(fragment) == safe
    assert sanitize_html(safe) == safe


# -- links ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "canonical"),
    [
        (
            "HTTPS://Example.FR:443/a/b?utm_source=x&id=3&fbclid=y#frag",
            "https://example.fr/a/b?id=3",
        ),
        ("HTTP://EXAMPLE.FR", "http://example.fr/"),
        ("http://example.fr:80", "http://example.fr/"),
        ("  https://example.fr/x  ", "https://example.fr/x"),
        ("https://example.fr/?x=1#", "https://example.fr/?x=1"),
        # only the scheme's own default port goes
        ("http://example.fr:8080/", "http://example.fr:8080/"),
        ("https://example.fr:80/", "https://example.fr:80/"),
        ("http://example.fr:443/", "http://example.fr:443/"),
        ("https://Example.fr./x", "https://example.fr/x"),  # the root's dot
        ("https://bücher.example/", "https://xn--bcher-kva.example/"),
        # a host the IDNA codec refuses: kept as it is (lower-cased), never an error
        ("https://" + "É" * 70 + ".fr/x", "https://" + "é" * 70 + ".fr/x"),
        ("https://Exémple..fr/", "https://exémple..fr/"),
        ("http://[::1]:8080/x", "http://[::1]:8080/x"),
        ("http://[::1]:80/x", "http://[::1]/x"),
        ("https://user:pw@example.fr/", "https://user:pw@example.fr/"),
        ("https://user@example.fr/", "https://user@example.fr/"),
        # one percent-encoding
        ("https://example.fr/café", "https://example.fr/caf%C3%A9"),
        ("https://example.fr/caf%C3%A9", "https://example.fr/caf%C3%A9"),
        ("https://example.fr/%7Euser", "https://example.fr/~user"),
        ("https://example.fr/a b", "https://example.fr/a%20b"),
        ("https://example.fr/café(1)!", "https://example.fr/caf%C3%A9(1)!"),
        ("https://example.fr/a(b)'c!$*,;=:@~-._", "https://example.fr/a(b)'c!$*,;=:@~-._"),
        # the rest of the query: kept, in its order
        ("https://example.fr/?b=2&a=1&a=0", "https://example.fr/?b=2&a=1&a=0"),
        ("https://example.fr/?q=a+b&flag", "https://example.fr/?q=a+b&flag="),
        ("https://example.fr/?a=%C3%A9&b=%20", "https://example.fr/?a=%C3%A9&b=+"),
        ("https://ex.fr/?u=http://y.fr/a?b%26c", "https://ex.fr/?u=http://y.fr/a%3Fb%26c"),
        # escapes whose decoding would change the link, or merge two links, stay
        ("https://ex.fr/rapport%2F2026", "https://ex.fr/rapport%2F2026"),
        ("https://ex.fr/actualit%e9s/a", "https://ex.fr/actualit%E9s/a"),  # Latin-1
        ("https://ex.fr/actualit%E8s/a", "https://ex.fr/actualit%E8s/a"),
        ("https://ex.fr/50%2541", "https://ex.fr/50%2541"),
        ("https://ex.fr/a%zz", "https://ex.fr/a%25zz"),
        ("https://ex.fr/s?q=C%2B%2B", "https://ex.fr/s?q=C%2B%2B"),  # not "C++": "C  "
        ("https://ex.fr/s?q=%E9t%e9&utm_source=x", "https://ex.fr/s?q=%E9t%E9"),
        # a site's own fields that begin like a tracker's
        ("https://ex.fr/fiche.php?pk_id=80021", "https://ex.fr/fiche.php?pk_id=80021"),
        ("https://ex.fr/f?at_id=3&pk_campaign=x&at_medium=y", "https://ex.fr/f?at_id=3"),
        # a one-page site's route names the article: kept
        ("https://spa.example/#!/actualites/lens", "https://spa.example/#!/actualites/lens"),
        (
            "https://spa.example/x?a=1#/actualites/douai",
            "https://spa.example/x?a=1#/actualites/douai",
        ),
        ("https://ex.fr/a#!", "https://ex.fr/a"),
        # not an absolute http(s) URL: stripped, otherwise unchanged
        ("  mailto:a@b.fr ", "mailto:a@b.fr"),
        ("ftp://example.fr/x", "ftp://example.fr/x"),
        ("javascript:alert(1)", "javascript:alert(1)"),
        ("https:///path", "https:///path"),
        ("http://example.fr:99999/", "http://example.fr:99999/"),
        ("/relative?utm_source=x", "/relative?utm_source=x"),
    ],
)
def test_canonical_url(url: str, canonical: str) -> None:
    assert canonical_url(url) == canonical
    assert canonical_url(canonical) == canonical  # stable


@pytest.mark.parametrize(
    "key",
    [
        "utm_source", "utm_medium", "UTM_Campaign", "utm_", "fbclid", "FBCLID", "gclid",
        "dclid", "msclkid", "igshid", "mc_cid", "mc_eid", "_hsenc", "_hsmi", "mkt_tok", "xtor",
        "XTOR", "at_medium", "at_xtor", "pk_kwd", "PK_campaign", "mtm_source", "oly_anon_id",
        "ref_src", "spm", "ocid", "cmpid", "__twitter_impression", "yclid", "gbraid", "wbraid",
        "ns_source", "ns_mchannel", "ns_campaign",
    ],
)  # fmt: skip
def test_tracking_parameters_are_stripped(key: str) -> None:
    assert canonical_url(f"https://example.fr/a?{key}=x") == "https://example.fr/a"
    assert (
        canonical_url(f"https://example.fr/a?id=7&{key}=x&p=2") == "https://example.fr/a?id=7&p=2"
    )


@pytest.mark.parametrize(
    "key",
    ["utm", "pk", "mtm", "oly", "at", "atx", "spam", "ref", "source", "id", "page", "xutm_source"],
)
def test_other_parameters_are_kept(key: str) -> None:
    url = f"https://example.fr/a?{key}=x"
    assert canonical_url(url) == url


def test_the_same_article_has_one_canonical_link() -> None:
    variants = [
        "https://www.example.fr/article?id=7",
        "HTTPS://WWW.EXAMPLE.FR/article?id=7",
        "https://www.example.fr:443/article?id=7#commentaires",
        "https://www.example.fr/article?utm_source=rss&id=7&utm_medium=feed",
        "https://www.example.fr./article?id=7&fbclid=abc",
        "  https://www.example.fr/%61rticle?id=7 ",
    ]
    assert {canonical_url(v) for v in variants} == {"https://www.example.fr/article?id=7"}
    different = ["https://www.example.fr/article?id=8", "http://www.example.fr/article?id=7"]
    assert all(canonical_url(d) != "https://www.example.fr/article?id=7" for d in different)


@pytest.mark.parametrize(
    "value",
    [
        "https://example.fr:8080/ok",
        "http://example.fr",
        "https://example.fr?x=1",
        "https://example.fr#top",
        "https://[::1]:8443/x",
    ],
)
def test_safe_url_keeps_absolute_web_links(value: str) -> None:
    assert safe_url(value) == value
    assert safe_url(f"  {value}\n") == value  # surrounding space is trimmed


@pytest.mark.parametrize(
    "value",
    [
        "https://example.fr/a\x7fb",
        "https://example.fr/a\rb",
        "https://[::1/x",
        "https://:80/x",
        "https://example.fr:port/",
        "mailto:a@example.fr",
        "https:example.fr",
    ],
)
def test_safe_url_refuses_broken_links(value: str) -> None:
    assert safe_url(value) == ""


@pytest.mark.parametrize(
    ("url", "host"),
    [
        ("https://Example.FR/x", "example.fr"),
        ("https://u:p@Host.fr:8080/", "host.fr"),
        ("http://[::1]/", "::1"),
        ("not a url", ""),
        ("http://[::1", ""),
        ("", ""),
    ],
)
def test_host_of(url: str, host: str) -> None:
    assert host_of(url) == host


def test_deep_nesting_is_cut_before_the_html_parser() -> None:
    """The HTML parser's work grows with the square of the nesting depth: a feed
    summary of 100,000 nested ``<div>`` took over a minute. Beyond MAX_DEPTH, the
    tags go (their text stays), so the parser reads a shallow fragment."""
    from pressreview.text import MAX_DEPTH, _shallow, clean_text

    deep = "<blockquote>" * 50_000 + "Texte" + "</blockquote>" * 50_000 + "<p>Suite</p>"
    out = sanitize_html(deep)
    assert out.count("<blockquote>") == out.count("</blockquote>") == MAX_DEPTH
    assert out.endswith("Texte" + "</blockquote>" * MAX_DEPTH + "<p>Suite</p>")
    assert clean_text("<div>" * 50_000 + "Texte" + "</div>" * 50_000 + "<p>Suite</p>") == (
        "Texte Suite"
    )
    assert clean_text("&lt;li&gt;&lt;ul&gt;" * 50_000 + "x") == "x"
    # Elements that a sibling closes, and void ones, do not count as nesting.
    flat = "<p>a" * 500 + "<br>" * 500 + "<li>b" * 500
    assert _shallow(flat) == flat
    assert _shallow("<div>" * (MAX_DEPTH + 3) + "x").count("<div>") == MAX_DEPTH
    shallow = "<div><b>x</b></div>" * 1_000
    assert _shallow(shallow) == shallow
