"""The files of ``issue preview`` and ``issue render``: email parts, a MIME copy, the page.

``write_email_files`` writes what an issue's email looks like (HTML, text and,
for ``issue render``, a complete .eml); ``write_preview`` adds the issue's
archive page, so staff see a draft as readers will. Both work on a snapshot
(a draft's or a published issue's) and render everything before writing.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pressreview.archive import render_issue_page
from pressreview.config import Config
from pressreview.deliver.message import build_message
from pressreview.errors import RenderError
from pressreview.model import Snapshot
from pressreview.render import (
    UNSUBSCRIBE_PLACEHOLDER,
    RenderedEmail,
    check_email_html,
    render_email,
    size_warning,
)


@dataclass
class EmailFiles:
    """What ``issue render`` / ``issue preview`` wrote, and what to warn about."""

    rendered: RenderedEmail
    paths: list[Path]
    warnings: list[str]


def write_email_files(
    config: Config, snapshot: Snapshot, out_dir: Path, *, eml: bool = True
) -> EmailFiles:
    """Write email.html, email.txt and (``eml``) email.eml, a complete MIME message.

    The MIME message is addressed to ``email.from_address`` and keeps the
    unsubscribe placeholder: it is for looking at, not for sending.
    """
    rendered = render_email(config, snapshot)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        paths = [out_dir / "email.html", out_dir / "email.txt"]
        paths[0].write_text(rendered.html, encoding="utf-8")
        paths[1].write_text(rendered.text, encoding="utf-8")
        if eml:
            message = build_message(
                config,
                rendered,
                to=config.email.from_address,
                unsubscribe_url=UNSUBSCRIBE_PLACEHOLDER,
            )
            paths.append(out_dir / "email.eml")
            paths[-1].write_bytes(message.as_bytes())
    except OSError as exc:
        raise RenderError(f"cannot write into {out_dir}: {exc.strerror or exc}") from None
    warnings = [w for w in [size_warning(config, rendered)] if w]
    warnings.extend(check_email_html(rendered.html))
    return EmailFiles(rendered, paths, warnings)


def write_preview(config: Config, snapshot: Snapshot, out_dir: Path) -> EmailFiles:
    """Write email.html, email.txt and page.html (the issue's archive page) of a snapshot.

    The snapshot is a draft's (``issues.draft_snapshot``) or a published
    issue's. Both renders happen before anything is written: a broken template
    leaves no half-made preview.
    """
    page_html = render_issue_page(config, snapshot)
    files = write_email_files(config, snapshot, out_dir, eml=False)
    page = out_dir / "page.html"
    try:
        page.write_text(page_html, encoding="utf-8")
    except OSError as exc:
        raise RenderError(f"cannot write into {out_dir}: {exc.strerror or exc}") from None
    files.paths.append(page)
    return files
