"""Property tests (hypothesis) for URL canonicalization and title normalization."""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import parse_qsl, urlsplit

from hypothesis import given, settings
from hypothesis import strategies as st

from pressreview.text import (
    TRACKING_PARAMS,
    TermMatcher,
    canonical_url,
    clean_text,
    excerpt,
    fold,
    sanitize_html,
    split_publisher,
    valid_text,
)

CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff\ufffe\uffff]")

# -- URLs ------------------------------------------------------------------------

label = st.text(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", min_size=1, max_size=12
)
hosts = st.lists(label, min_size=1, max_size=3).map(lambda parts: ".".join([*parts, "fr"]))
path_segment = st.text(
    st.characters(blacklist_categories=["Cs", "Cc"], blacklist_characters="/?#%"), max_size=10
)
paths = st.lists(path_segment, max_size=4).map(lambda segs: "/" + "/".join(segs))
param_key = st.text("abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=8).filter(
    lambda k: (
        not k.lower().startswith(("utm_", "pk_", "at_", "mtm_", "oly_"))
        and k.lower() not in TRACKING_PARAMS
    )
)
param_value = st.text("abcdefghijklmnopqrstuvwxyz0123456789-é.~", max_size=8)
tracking_key = st.sampled_from(
    ["utm_source", "utm_medium", "UTM_Campaign", "fbclid", "gclid", "xtor", "mc_cid", "pk_kwd"]
)


@st.composite
def urls(draw: st.DrawFn) -> tuple[str, list[tuple[str, str]], list[tuple[str, str]]]:
    """(url, kept params, tracking params)."""
    kept = draw(st.lists(st.tuples(param_key, param_value), max_size=4))
    tracking = draw(st.lists(st.tuples(tracking_key, param_value), max_size=3))
    params = draw(st.permutations(kept + tracking))
    scheme = draw(st.sampled_from(["http", "https", "HTTP", "Https"]))
    host = draw(hosts)
    port = draw(st.sampled_from(["", ":80", ":443", ":8080"]))
    query = "&".join(f"{k}={v}" for k, v in params)
    fragment = draw(st.sampled_from(["", "#", "#section-2", "#top?x=1"]))
    url = f"{scheme}://{host}{port}{draw(paths)}" + (f"?{query}" if query else "") + fragment
    in_order = [p for p in params if p[0] not in {k for k, _ in tracking}]
    return url, in_order, tracking


@given(urls())
def test_canonical_url_is_idempotent(case: tuple[str, list, list]) -> None:
    url = case[0]
    once = canonical_url(url)
    assert canonical_url(once) == once


@given(urls())
def test_canonical_url_drops_tracking_and_fragment_keeps_the_rest(
    case: tuple[str, list, list],
) -> None:
    url, kept, _tracking = case
    canon = canonical_url(url)
    parts = urlsplit(canon)
    assert parts.fragment == "" and "#" not in canon
    keys = [k for k, _ in parse_qsl(parts.query, keep_blank_values=True)]
    assert not any(k.lower() in TRACKING_PARAMS or k.lower().startswith("utm_") for k in keys)
    # Non-tracking parameters stay, values and order included.
    assert parse_qsl(parts.query, keep_blank_values=True) == [(k, v) for k, v in kept]


@given(urls())
def test_canonical_url_lower_cases_scheme_and_host(case: tuple[str, list, list]) -> None:
    url = case[0]
    parts = urlsplit(canonical_url(url))
    original = urlsplit(url)
    assert parts.scheme == original.scheme.lower()
    assert parts.hostname == (original.hostname or "").lower()
    assert parts.netloc == parts.netloc.lower()
    # Default ports go, others stay.
    if original.port in (80, 443) and original.port == {"http": 80, "https": 443}[parts.scheme]:
        assert parts.port is None
    if original.port == 8080:
        assert parts.port == 8080


@given(urls(), urls())
def test_canonical_url_only_merges_what_differs_by_tracking_case_or_fragment(
    a: tuple[str, list, list], b: tuple[str, list, list]
) -> None:
    ua, ub = urlsplit(a[0]), urlsplit(b[0])
    same_page = (ua.hostname, ua.port or 0, ua.path, a[1]) == (
        ub.hostname,
        ub.port or 0,
        ub.path,
        b[1],
    )
    if canonical_url(a[0]) == canonical_url(b[0]):
        default = {"http": 80, "https": 443}
        pa = ua.port or default[ua.scheme.lower()]
        pb = ub.port or default[ub.scheme.lower()]
        assert (ua.hostname.lower(), ua.path, a[1]) == (ub.hostname.lower(), ub.path, b[1])  # type: ignore[union-attr]
        assert ua.scheme.lower() == ub.scheme.lower() and pa == pb
    elif same_page and ua.scheme.lower() == ub.scheme.lower():
        assert ua.port != ub.port  # only an explicit non-default port can tell them apart


@given(st.text(max_size=80))
def test_canonical_url_never_raises(text: str) -> None:
    result = canonical_url(text)
    assert isinstance(result, str)
    assert canonical_url(result) == result


# -- titles ------------------------------------------------------------------------

messy = st.lists(
    st.characters(blacklist_categories=["Cs"]) | st.sampled_from(
        ["&amp;", "&eacute;", "&#233;", "&nbsp;", "<b>", "</b>", "<br/>", "\t", "\n", "\x00",
         "\x1b", "\u200b", "«", "»", "’", "&lt;script&gt;", "<script>x</script>", "&amp;lt;"]
    ),
    max_size=30,
).map("".join)  # fmt: skip


@given(messy)
def test_clean_text_is_idempotent(text: str) -> None:
    once = clean_text(text)
    assert clean_text(once) == once


@given(messy)
def test_clean_text_has_no_control_characters_or_surrounding_space(text: str) -> None:
    cleaned = clean_text(text)
    assert not CONTROL.search(cleaned)
    assert cleaned == cleaned.strip()
    assert "  " not in cleaned and "\n" not in cleaned and "\t" not in cleaned


@given(st.text(max_size=60))
def test_valid_text_removes_only_invalid_characters(text: str) -> None:
    out = valid_text(text)
    assert not CONTROL.search(out.replace("\ufffd", ""))
    assert valid_text(out) == out


title_words = st.text("abcdefghijklmnopqrstuvwxyzéèàçô'0123456789", min_size=1, max_size=10)
publishers = st.lists(
    st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyzé'", min_size=1, max_size=10),
    min_size=1, max_size=4,
).map(" ".join)  # fmt: skip


@given(st.lists(title_words, min_size=1, max_size=8).map(" ".join), publishers,
       st.sampled_from([" - ", " – ", " — "]))  # fmt: skip
def test_split_publisher_with_known_source(head: str, publisher: str, sep: str) -> None:
    title, outlet = split_publisher(f"{head}{sep}{publisher}", publisher)
    assert (title, outlet) == (head, publisher)
    # Without the suffix, the title stays whole and the known outlet is kept.
    assert split_publisher(head, publisher) == (head, publisher)


@given(st.lists(title_words, min_size=1, max_size=8).map(" ".join), publishers)
def test_split_publisher_guesses_a_short_trailing_name(head: str, publisher: str) -> None:
    title, outlet = split_publisher(f"{head} - {publisher}")
    assert outlet == publisher and title == head
    # Splitting again what has been split only splits further " - " segments.
    again, _ = split_publisher(title)
    assert again == title or " - " in title


@given(st.lists(title_words, min_size=1, max_size=8).map(" ".join))
def test_split_publisher_leaves_titles_without_separator(title: str) -> None:
    assert split_publisher(title) == (title, None)


@given(st.text(max_size=400), st.integers(min_value=10, max_value=300))
def test_excerpt_is_bounded_clean_text(text: str, limit: int) -> None:
    cut = excerpt(text, limit)
    assert len(cut) <= limit + 1
    assert not CONTROL.search(cut)
    if len(clean_text(text)) <= limit:
        assert cut == clean_text(text)


@given(st.text(max_size=200) | st.sampled_from(
    ['<p onclick="x()">a</p>', '<a href="javascript:alert(1)">x</a>', "<script>alert(1)</script>",
     '<img src=x onerror=alert(1)>', "<style>p{}</style><p>ok</p>", '<a href="/rel">r</a>']
))  # fmt: skip
def test_sanitize_html_is_a_fixed_point_and_safe(fragment: str) -> None:
    once = sanitize_html(fragment)
    assert sanitize_html(once) == once
    lowered = once.lower()
    assert "<script" not in lowered and "javascript:" not in lowered
    assert not re.search(r"<[^>]*\son\w+\s*=", lowered)


@settings(max_examples=300)
@given(st.text(max_size=40))
def test_fold_is_idempotent_and_accent_free(text: str) -> None:
    folded = fold(text)
    assert fold(folded) == folded
    assert not any(unicodedata.combining(c) for c in unicodedata.normalize("NFKD", folded))


@given(
    st.sampled_from(["Creil", "CREIL", "créil", "Créil"]),
    st.sampled_from(["", "À ", "la ville de "]),
    st.sampled_from(["", ".", " signe", "-Sud"]),
)
def test_term_matcher_is_case_and_accent_insensitive_whole_words(
    word: str, before: str, after: str
) -> None:
    matcher = TermMatcher(["Creil"])
    assert matcher.matches(f"{before}{word}{after}") == ["Creil"]
    assert matcher.matches(f"{before}{word}x{after}") == []


def test_block_tags_separate_words() -> None:
    from pressreview.text import clean_text, excerpt

    html = "<p>Bilan publié.</p><ul><li>204 quartiers</li><li>près de 700 000 habitants</li></ul>"
    assert clean_text(html) == "Bilan publié. 204 quartiers ; près de 700 000 habitants"
    # List items read as an enumeration; none is added after an item's own mark,
    # nor for an empty item.
    items = (
        "<ol><li>Signature.</li><li></li><li>Avenant ;</li>\n<LI>Bilan :</li ><li>Suite</li></ol>"
    )
    assert clean_text(items) == "Signature. Avenant ; Bilan : Suite"
    assert excerpt(html, 40) == "Bilan publié. 204 quartiers ; près de…"
    assert clean_text("a<br/>b<strong>c</strong>d") == "a bcd"
    assert excerpt("<p>Un.</p><p>Deux.</p>", 300) == "Un. Deux."


def test_fold_is_idempotent_on_every_code_point() -> None:
    """Exhaustive, not sampled: a compatibility form that decomposes to a
    ligature (U+A7F9 MODIFIER SMALL LIGATURE OE -> œ) must be folded in one go."""
    assert fold("\ua7f9") == "oe"
    unstable = [
        hex(code) for code in range(0x80, 0x30000) if fold(fold(chr(code))) != fold(chr(code))
    ]
    assert unstable == []


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet=st.characters(max_codepoint=0x17F), max_size=40))
def test_fold_of_latin1_text_by_bytes_matches_the_table_of_every_character(text: str) -> None:
    """Latin-1 text is folded by a byte table: the same as through the full table."""
    from pressreview.text import _fold_slowly

    assert fold(text) == (text.casefold() if text.isascii() else _fold_slowly(text))
    for code in range(0x100):
        assert fold(chr(code)) == _fold_slowly(chr(code))


def test_french_alphabetical_order_passes_over_apostrophes_case_and_accents() -> None:
    from pressreview.text import sort_key

    names = [
        "CU de Dunkerque", "CA du Saint-Quentinois", "CU d’Arras", "CA d'Hénin-Carvin",
        "Écourt", "Creil", "ecole", "CA de la Baie de Somme",
    ]  # fmt: skip
    assert sorted(names, key=sort_key) == [
        "CA de la Baie de Somme", "CA d'Hénin-Carvin", "CA du Saint-Quentinois", "Creil",
        "CU d’Arras", "CU de Dunkerque", "ecole", "Écourt",
    ]  # fmt: skip
