"""The archive's contrats de ville tracker: a page and its CSV and JSON exports.

They show the tracker as the newest published issue froze it
(``snapshot["contracts"]``, see docs/contracts.md): like every page of the
archive, they are made from published snapshots only.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any

from pressreview.archive.model import PageSpec
from pressreview.config import Config
from pressreview.contracts import export_csv, export_json, page_groups
from pressreview.urls import CONTRACTS_CSV_PATH as CSV_FILE
from pressreview.urls import CONTRACTS_JSON_PATH as JSON_FILE
from pressreview.urls import CONTRACTS_PATH as PAGE_DIR


def latest_block(config: Config, texts: Sequence[tuple[int, str]]) -> dict[str, Any] | None:
    """The tracker block of the newest published issue, with its number and date.

    None when the tracker is off or the newest issue froze no tracker.
    """
    if not config.contracts.enabled or not texts:
        return None
    number, text = texts[-1]
    snapshot = json.loads(text)
    block = snapshot.get("contracts") if isinstance(snapshot, dict) else None
    if not isinstance(block, dict):
        return None
    return {**block, "issue": {"number": number, "date": snapshot.get("date")}}


def _digest(block: dict[str, Any]) -> str:
    text = json.dumps(block, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def pages(block: dict[str, Any] | None) -> list[PageSpec]:
    """The tracker page (none without a block)."""
    if block is None:
        return []

    def context() -> dict[str, Any]:
        return {
            "tracker": block,
            "groups": page_groups(block),
            "csv_path": CSV_FILE.removeprefix(PAGE_DIR),
            "json_path": JSON_FILE.removeprefix(PAGE_DIR),
        }

    return [
        PageSpec(
            path=PAGE_DIR + "index.html",
            kind="html",
            template="contracts.html.j2",
            key=_digest(block),
            make_context=context,
            url_path=PAGE_DIR,
        )
    ]


def files(block: dict[str, Any] | None) -> list[tuple[str, str, bytes]]:
    """(path, input key, content) of the exports."""
    if block is None:
        return []
    key = _digest(block)
    return [
        (CSV_FILE, key, export_csv(block).encode("utf-8")),
        (JSON_FILE, key, export_json(block).encode("utf-8")),
    ]
