"""Static full-text search with Pagefind (no server, nothing from a CDN).

Only issue pages are indexed (their ``<main data-pagefind-body>``); each item
is a heading with an id, so a result points at the item inside its issue.
Pagefind picks French stemming from ``<html lang="fr">``.

The index is split into one volume per year of issues (``pagefind/2026/``),
merged in the browser by the search page. Publishing an issue re-indexes only
the volume of its year; the others are reused from the previous build.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from pressreview.errors import RenderError

BINARY_ENV = "PAGEFIND_BINARY_PATH"
TIMEOUT_SECONDS = 600


def find_pagefind() -> Path | None:
    """The Pagefind executable ($PAGEFIND_BINARY_PATH, the pagefind[bin] package, PATH)."""
    try:
        from pagefind.service import get_executable
    except ImportError:  # pragma: no cover - the package is a dependency
        found = os.environ.get(BINARY_ENV) or shutil.which("pagefind")
        return Path(found) if found and Path(found).is_file() else None
    try:
        binary = get_executable()
    except (FileNotFoundError, OSError):
        return None
    if binary is None or not binary.is_file() or not os.access(binary, os.X_OK):
        return None
    return binary


def pagefind_version(binary: Path) -> str:
    """``pagefind 1.5.2``: part of the search volumes' input hash."""
    try:
        done = subprocess.run(
            [str(binary), "--version"], capture_output=True, text=True, timeout=60, check=False
        )
    except OSError as exc:
        raise RenderError(f"cannot run the search indexer {binary}: {exc}") from None
    return done.stdout.strip() or done.stderr.strip()


def _link_or_copy(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def index_volume(binary: Path, site_dir: Path, pages: list[str], output: Path, stage: Path) -> None:
    """Index ``pages`` (paths relative to ``site_dir``) into the bundle folder ``output``.

    The pages are linked into ``stage`` (same relative paths, so result URLs
    are the site's) and Pagefind runs there; ``stage`` is removed afterwards.
    """
    if stage.exists():
        shutil.rmtree(stage)
    try:
        for page in pages:
            _link_or_copy(site_dir / page, stage / page)
        done = subprocess.run(
            [str(binary), "--site", str(stage), "--output-path", str(output), "--quiet"],
            capture_output=True,
            text=True,
            timeout=TIMEOUT_SECONDS,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise RenderError(f"the search indexer took more than {TIMEOUT_SECONDS} s") from None
    except OSError as exc:
        raise RenderError(f"cannot run the search indexer {binary}: {exc}") from None
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    if done.returncode != 0 or not (output / "pagefind-ui.js").is_file():
        detail = (done.stderr or done.stdout).strip().splitlines()
        raise RenderError(
            "the search indexer failed"
            + (f": {detail[-1]}" if detail else f" (exit code {done.returncode})")
        )
