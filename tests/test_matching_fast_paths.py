"""The shortcuts of the classification stage give what the general code gives."""

from __future__ import annotations

import re
import zlib

from hypothesis import given, settings
from hypothesis import strategies as st

from pressreview.places import Words
from pressreview.store.collect import MASK_BITS, shingle_mask
from pressreview.text import (
    _FOLD,
    PhraseIndex,
    keys_of_hashes,
    keys_of_shingles,
    shingle_hashes,
    unaccent,
)

#: Latin-1, a few letters beyond it, the typographic apostrophe, a combining mark, a
#: non-BMP digit: both sides of every shortcut.
_CHARS = st.characters(max_codepoint=0x17F) | st.sampled_from("’Ωİı\u0307\U0001d7d8")
_TEXTS = st.text(alphabet=_CHARS, max_size=60)


def _unaccent_by_table(text: str) -> str:
    return text.translate(_FOLD)


def test_unaccent_of_every_latin1_character_is_the_table() -> None:
    for code in range(0x100):
        assert unaccent(chr(code)) == _unaccent_by_table(chr(code)), hex(code)


@settings(max_examples=500, deadline=None)
@given(_TEXTS)
def test_unaccent_by_bytes_matches_the_table(text: str) -> None:
    assert unaccent(text) == _unaccent_by_table(text)


@settings(max_examples=500, deadline=None)
@given(_TEXTS)
def test_words_split_latin1_text_as_the_unicode_word_pattern(text: str) -> None:
    """The explicit Latin-1 set of word characters splits as ``\\w`` does."""
    found = Words(text)
    assert found.parts == re.split(r"(\w+)", text)
    assert found.folded == [w.casefold() for w in re.findall(r"\w+", text)]
    # Offsets asked in any order.
    matches = list(re.finditer(r"\w+", text))
    for k in [*range(len(matches) - 1, -1, -1), *range(len(matches))]:
        assert (found.start(k), found.end(k)) == matches[k].span()


def test_words_of_every_latin1_character() -> None:
    for code in range(0x100):
        text = f"a{chr(code)}b {chr(code)}"
        assert Words(text).parts == re.split(r"(\w+)", text), hex(code)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(["la", "ville", "de", "lille", "quartier", "x"]), max_size=12))
def test_phrase_index_with_candidates_finds_what_a_full_scan_finds(text: list[str]) -> None:
    index = PhraseIndex([("ville",), ("la", "ville"), ("ville", "de", "lille"), ("quartier",)])
    # Candidates may hold other words too (another matcher's): they are skipped.
    candidates = [k for k, w in enumerate(text) if w in index.first_words or w == "x"]
    assert index.find(text, candidates) == index.find(text)


@settings(max_examples=200, deadline=None)
@given(st.sets(st.text("abcdé ", min_size=1, max_size=8), max_size=8))
def test_title_keys_and_mask_from_hashes(shingles: set[str]) -> None:
    """One CRC-32 per shingle serves the keys and the mask (bottom-4 sketch, bit set)."""
    crcs = sorted(zlib.crc32(s.encode()) for s in shingles)
    expected = [f"{h:08x}" for h in crcs[:4]] if len(shingles) >= 2 else []
    hashes = shingle_hashes(shingles)
    assert keys_of_hashes(hashes) == keys_of_shingles(shingles) == expected
    mask = 0
    for h in crcs:
        mask |= 1 << (h % MASK_BITS)
    assert shingle_mask(shingles) == shingle_mask(shingles, hashes) == mask
