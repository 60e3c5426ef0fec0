"""The email in a real headless Chromium: screenshots at phone and desktop widths.

The PNGs are kept in the test's tmp folder (and copied to
$PRESSREVIEW_SCREENSHOT_DIR when set, to look at them).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from fixtures_issues import distinct_colours, fixed_config, fixed_snapshot, png_pixels

from pressreview import render

CHROMIUM = shutil.which("chromium") or (
    "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None
)

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium (chromium) is not installed"),
]


def screenshot(html_file: Path, png: Path, width: int, height: int, tmp_path: Path) -> None:
    assert CHROMIUM is not None
    profile = tmp_path / f"profile-{width}"
    command = [
        CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars",
        f"--user-data-dir={profile}", f"--window-size={width},{height}",
        f"--screenshot={png}", html_file.resolve().as_uri(),
    ]  # fmt: skip
    subprocess.run(command, check=True, capture_output=True, timeout=120)
    assert png.exists(), f"chromium wrote no screenshot for width {width}"


def _white_share(png: Path) -> float:
    width, _height, rows = png_pixels(png)
    channels = len(rows[0]) // width
    light = total = 0
    for row in rows[::8]:
        for x in range(0, width, 8):
            px = row[x * channels : x * channels + 3]
            total += 1
            light += all(v > 245 for v in px)
    return light / total


@pytest.mark.parametrize("width", [375, 800])
def test_email_screenshot_is_not_blank(tmp_path: Path, width: int) -> None:
    rendered = render.render_email(fixed_config(), fixed_snapshot(8))
    page = tmp_path / "email.html"
    page.write_text(rendered.html, encoding="utf-8")
    png = tmp_path / f"email-{width}.png"
    screenshot(page, png, width, 1400, tmp_path)
    got_width, height, _rows = png_pixels(png)
    assert (got_width, height) == (width, 1400)
    # Text, links, the title band and the canvas: many colours, not a blank page.
    assert distinct_colours(png) > 50
    assert _white_share(png) < 0.9
    keep = os.environ.get("PRESSREVIEW_SCREENSHOT_DIR")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copy(png, Path(keep) / png.name)


def test_blank_page_is_detected(tmp_path: Path) -> None:
    """The non-blank check above can fail: an empty page does not pass it."""
    page = tmp_path / "blank.html"
    page.write_text("<!doctype html><html><body></body></html>", encoding="utf-8")
    png = tmp_path / "blank.png"
    screenshot(page, png, 375, 600, tmp_path)
    assert distinct_colours(png) <= 2
    assert _white_share(png) > 0.99
