"""The one link filter: what ``safe_url`` lets through, and every template using it."""

from __future__ import annotations

import re

import pytest
from conftest import PROJECT_ROOT

from pressreview.text import safe_url

VECTORS = [
    "javascript:alert(1)",
    "JaVaScRiPt:alert(1)",
    " javascript:alert(1)",
    "java\tscript:alert(1)",
    "java\nscript:alert(1)",
    "&#106;avascript:alert(1)",
    "data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==",
    "vbscript:msgbox(1)",
    "//evil.example/x",
    "/relative/path",
    "foo",
    "ftp://example.fr/file",
    "http://",
    "https://exa mple.fr/",
    "https://example.fr/\x00",
    "https://user@evil.example@good.example/",
    "https://example.fr:99999/",
    "",
]


@pytest.mark.parametrize("value", VECTORS)
def test_safe_url_refuses(value: str) -> None:
    assert safe_url(value) == ""


@pytest.mark.parametrize(
    "value",
    ["https://example.fr/", "HTTP://EXAMPLE.FR/a?b=c#d", "https://example.fr/a(b)'c@d",
     "http://127.0.0.1:8080/x"],
)  # fmt: skip
def test_safe_url_keeps_web_links(value: str) -> None:
    assert safe_url(value) == value


def test_safe_url_takes_anything() -> None:
    assert safe_url(None) == "" and safe_url(42) == ""


# Variables whose URL comes from feed, calendar or form data.
DATA_URL_RE = re.compile(r"""(?:href|src)="\{\{\s*(?:item|other|event|a)\.url\s*(\}\}|\|)""")
FILTERED_RE = re.compile(r"""(?:href|src)="\{\{\s*(?:item|other|event|a)\.url\s*\|\s*safe_url""")


def test_every_template_filters_links_from_item_data() -> None:
    """A template writing an item's, an other outlet's or an event's URL uses ``safe_url``."""
    checked = 0
    for template in sorted((PROJECT_ROOT / "templates").rglob("*.j2")):
        text = template.read_text("utf-8")
        for match in DATA_URL_RE.finditer(text):
            checked += 1
            line = text.count("\n", 0, match.start()) + 1
            assert FILTERED_RE.match(text, match.start()), f"{template.name}:{line}: {match[0]}"
    assert checked >= 6
