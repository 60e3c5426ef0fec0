"""Newsletter issues: a draft gathers the selected items; publishing freezes a snapshot.

There is at most one draft at a time. It gathers the items whose status is
``selected`` and that are not in a published issue yet, grouped by section in
the configured order, then by their position. ``refresh_draft`` records the
newly selected items as gathered by the draft (``items.issue_id``) and lets go
of those that were unselected; the outline and previews always show what
publishing would freeze now.

Publishing numbers the issue in sequence, renders it once (a broken template
refuses the publish instead of freezing something that cannot be sent), stores
the *snapshot* (a JSON document holding everything any later render needs:
edited titles and summaries, outlets, other outlets of each story, sections,
rendered intro, organisation) and marks the items ``published``. Every later
render (email, archive, delivery) reads only the snapshot: re-rendering a
published issue years later gives the same email.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import nh3
from markdown_it import MarkdownIt

from pressreview import agenda, render, urls
from pressreview import contracts as contract_tracker
from pressreview.config import Config
from pressreview.errors import Conflict, DuplicateKey, NotFound, Refused, UsageError
from pressreview.model import (
    SNAPSHOT_SCHEMA,
    OtherOutlet,
    Snapshot,
    SnapshotEvent,
    SnapshotItem,
    SnapshotSection,
)
from pressreview.store import Connection, Store
from pressreview.store import issues as q
from pressreview.store.schema import now as store_now
from pressreview.text import clean_text, host_of, sanitize_html, words

#: Section of the items whose section is not (or no longer) configured.
OTHER_SECTION_KEY = "autres"
OTHER_SECTION_TITLE = "Autres actualités"
MAX_TITLE_CHARS = 200

# -- intro (Markdown) ------------------------------------------------------------

_INTRO_TAGS = {
    "a",
    "abbr",
    "b",
    "blockquote",
    "br",
    "code",
    "em",
    "h2",
    "h3",
    "h4",
    "i",
    "li",
    "ol",
    "p",
    "s",
    "strong",
    "sub",
    "sup",
    "u",
    "ul",
}


def _absolute_link(url: str) -> bool:
    return bool(re.match(r"(https?://[^/\s]+|mailto:[^\s]+)", url.strip(), re.I))


def render_intro(intro_md: str) -> str:
    """The editorial intro as safe HTML.

    markdown-it-py in its safe preset (raw HTML shown as text), links kept
    only when absolute (http, https, mailto), headings shifted under the
    issue's title, then sanitized with nh3.
    """
    if not intro_md.strip():
        return ""
    md = MarkdownIt("js-default", {"html": False, "linkify": False, "typographer": False})
    md.validateLink = _absolute_link  # type: ignore[method-assign]
    out = md.render(intro_md)
    out = re.sub(r"<(/?)h1>", r"<\1h2>", out)
    out = re.sub(r"<(/?)h[56]>", r"<\1h4>", out)
    cleaned = nh3.clean(
        out,
        tags=_INTRO_TAGS,
        attributes={"a": {"href", "title"}, "abbr": {"title"}},
        url_schemes={"http", "https", "mailto"},
        link_rel=None,
        strip_comments=True,
    )
    return str(cleaned).strip()


# -- drafts ----------------------------------------------------------------------


@dataclass(frozen=True)
class Draft:
    """The issue in preparation."""

    id: int
    title: str
    intro_md: str
    created_at: datetime
    updated_at: datetime
    version: int


@dataclass(frozen=True)
class IssueSummary:
    """One published issue, for lists."""

    number: int
    title: str
    published_at: datetime
    date: str
    item_count: int
    archive_url: str


@dataclass
class Outline:
    """What ``issue show`` prints: the snapshot publishing would freeze now, and warnings."""

    draft: Draft | None
    snapshot: Snapshot
    warnings: list[str] = field(default_factory=list)
    html_bytes: int | None = None
    max_html_bytes: int = 0
    published: bool = False


@dataclass(frozen=True)
class RefreshReport:
    joined: int
    left: int
    item_count: int


def _draft(row: q.IssueRow) -> Draft:
    return Draft(
        id=row["id"],
        title=row["title"],
        intro_md=row["intro_md"] or "",
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        version=row["version"],
    )


def _check_title(title: str) -> str:
    title = " ".join(title.split())
    if not title:
        raise UsageError('the issue title is empty: give --title "..."')
    if len(title) > MAX_TITLE_CHARS:
        raise UsageError(
            f"the issue title is too long ({len(title)} characters, at most {MAX_TITLE_CHARS})"
        )
    return title


def new_draft(config: Config, store: Store, *, title: str, intro_md: str = "", actor: str) -> Draft:
    """Start the next issue. Refused while another draft is in progress."""
    title = _check_title(title)
    stamp = store_now()
    with store.begin() as conn:
        existing = q.current_draft(conn)
        if existing is not None:
            raise Refused(
                f"a draft is already in progress ({existing['title']!r}); change it with "
                "`pressreview issue edit`, publish it, or drop it with `pressreview issue discard`"
            )
        draft_id = q.insert_draft(conn, title=title, intro_md=intro_md, at=stamp)
        gathered = q.draft_items(conn, draft_id)
        joined = q.claim_items(conn, draft_id, [r["id"] for r in gathered])
        q.add_event(
            conn,
            actor=actor,
            action="issue.new",
            issue_id=draft_id,
            at=stamp,
            details={"title": title, "items": joined},
        )
        row = q.current_draft(conn)
    assert row is not None
    return _draft(row)


def current_draft(config: Config, store: Store) -> Draft | None:
    """The draft in progress, or None."""
    with store.connect() as conn:
        row = q.current_draft(conn)
    return _draft(row) if row is not None else None


def _require_draft(conn: Connection) -> q.IssueRow:
    row = q.current_draft(conn)
    if row is None:
        last = q.last_published(conn)
        after = f"issue n° {last['number']} is published; " if last is not None else ""
        raise Refused(
            f'{after}no draft in progress: start one with `pressreview issue new --title "..."`'
        )
    return row


def edit_draft(
    config: Config,
    store: Store,
    *,
    title: str | None = None,
    intro_md: str | None = None,
    actor: str,
) -> Draft:
    """Change the title or intro of the draft."""
    values: dict[str, Any] = {}
    if title is not None:
        values["title"] = _check_title(title)
    if intro_md is not None:
        values["intro_md"] = intro_md
    if not values:
        raise UsageError("nothing to change: give --title or --intro")
    with store.begin() as conn:
        row = _require_draft(conn)
        before: Mapping[str, object] = row
        if not q.update_draft(conn, row["id"], row["version"], **values):
            raise Conflict("the draft changed meanwhile; run the command again")
        q.add_event(
            conn,
            actor=actor,
            action="issue.edit",
            issue_id=row["id"],
            details={k: {"before": before[k], "after": v} for k, v in values.items()},
        )
        new = q.current_draft(conn)
    assert new is not None
    return _draft(new)


def discard_draft(config: Config, store: Store, *, actor: str) -> Draft:
    """Drop the draft; its items stay selected for the next one."""
    with store.begin() as conn:
        row = _require_draft(conn)
        q.delete_draft(conn, row["id"])
        q.add_event(
            conn,
            actor=actor,
            action="issue.discard",
            issue_id=row["id"],
            details={"title": row["title"]},
        )
    return _draft(row)


def refresh_draft(config: Config, store: Store, *, actor: str) -> RefreshReport:
    """Newly selected items join the draft; items no longer selected leave it."""
    with store.begin() as conn:
        row = _require_draft(conn)
        left = q.release_items(conn, row["id"])
        gathered = q.draft_items(conn, row["id"])
        joined = q.claim_items(conn, row["id"], [r["id"] for r in gathered])
        if joined or left:
            q.add_event(
                conn,
                actor=actor,
                action="issue.refresh",
                issue_id=row["id"],
                details={"joined": joined, "left": left},
            )
    return RefreshReport(joined=joined, left=left, item_count=len(gathered))


# -- snapshots -------------------------------------------------------------------


def _iso_utc(value: datetime) -> str:
    return value.astimezone(UTC).replace(microsecond=0).isoformat()


def _outlet(row: q.IssueItemRow) -> str:
    outlet = clean_text(row["outlet"] or "") or clean_text(row["source_name"] or "")
    return outlet or host_of(row["url"]) or "Source inconnue"


def _summary_html(row: q.IssueItemRow) -> str:
    if row["summary_edited"] is not None and row["summary_edited"].strip():
        paragraphs = [p.strip() for p in re.split(r"\n\s*\n", row["summary_edited"]) if p.strip()]
        return "".join(
            f"<p>{html.escape(' '.join(p.split()), quote=False)}</p>" for p in paragraphs
        )
    return sanitize_html(row["summary_html"] or "")


def _outlet_key(outlet: str) -> str:
    """An outlet name as compared, by its folded words (as ``items list --outlet``
    matches them): ``L'Écho des Hauts-de-France`` and ``L’écho des Hauts–de–France``
    are one outlet."""
    return " ".join(words(outlet))


def _item_url(row: q.IssueItemRow) -> str:
    for candidate in (row["url"], row["link"]):
        if candidate and re.match(r"https?://[^/\s]+", candidate, re.I):
            return str(candidate)
    return str(row["url"])


def adds_nothing(excerpt: str, *known: str) -> bool:
    """True when every word of ``excerpt`` is already in ``known`` (the title, the outlet).

    Aggregators such as Google News give as description the title followed by
    the outlet: shown under the title, such an excerpt only repeats it. A
    trailing word cut by "…" counts when it begins a known word.
    """
    found = words(excerpt)
    if not found:
        return True
    vocabulary = {w for text in known for w in words(text)}
    if excerpt.rstrip().endswith(("…", "...")) and found[-1] not in vocabulary:
        last = found.pop()
        if not any(w.startswith(last) for w in vocabulary):
            return False
    return all(w in vocabulary for w in found)


def item_entry(config: Config, row: q.IssueItemRow, also: Sequence[q.IssueItemRow]) -> SnapshotItem:
    """One item of a snapshot (edited title and summary win over the originals).

    An original excerpt that only repeats the title and outlet is left out.
    """
    title = clean_text(row["title_edited"] or "") or clean_text(row["title"]) or _item_url(row)
    if row["summary_edited"] is not None and row["summary_edited"].strip():
        text = " ".join(row["summary_edited"].split())
    else:
        text = clean_text(row["excerpt"] or "")
    summary_html = _summary_html(row)
    if row["summary_edited"] is None or not row["summary_edited"].strip():
        known = (title, clean_text(row["title"]), row["outlet"] or "", row["source_name"] or "")
        if adds_nothing(text, *known):
            text = ""
            if adds_nothing(clean_text(summary_html), *known):
                summary_html = ""
    date = None if row["date_is_fallback"] else row["published_at"].astimezone(config.tz).date()
    lead_outlet = _outlet(row)
    others: list[OtherOutlet] = []
    seen = {_outlet_key(lead_outlet)}
    for other in also:
        outlet = _outlet(other)
        if _outlet_key(outlet) in seen:
            continue
        seen.add(_outlet_key(outlet))
        others.append(
            {
                "outlet": outlet,
                "url": _item_url(other),
                "title": clean_text(other["title_edited"] or "") or clean_text(other["title"]),
            }
        )
    return {
        "id": row["id"],
        "title": title,
        "url": _item_url(row),
        "outlet": lead_outlet,
        "author": row["author"],
        "published_at": _iso_utc(row["published_at"]),
        "date": date.isoformat() if date else None,
        "territories": list(row["territories"] or []),
        "excerpt": text,
        # The public archive shows a staff summary whole, a feed's extract capped.
        "summary_by_staff": bool(row["summary_edited"] and row["summary_edited"].strip()),
        "summary_html": summary_html,
        "tags": list(row["tags"] or []),
        "also": others,
    }


def _sort_key(row: q.IssueItemRow) -> tuple[Any, ...]:
    position = row["position"]
    return (
        position is None,
        position if position is not None else 0.0,
        row["published_at"],
        row["id"],
    )


def build_sections(
    config: Config, rows: Sequence[q.IssueItemRow], also: Sequence[q.IssueItemRow]
) -> list[SnapshotSection]:
    """Items grouped by section in the configured order (unknown sections last, "autres")."""
    in_issue = {r["id"] for r in rows}
    also_by_lead: dict[int, list[q.IssueItemRow]] = {}
    for other in also:
        lead = other["duplicate_of"]  # set: other_outlets() selects by it
        if other["id"] in in_issue or lead is None:
            continue
        also_by_lead.setdefault(lead, []).append(other)
    buckets: dict[str, list[q.IssueItemRow]] = {}
    known = {s.key for s in config.sections}
    for row in rows:
        key = row["section"] if row["section"] in known else OTHER_SECTION_KEY
        buckets.setdefault(key, []).append(row)
    sections = [(s.key, s.title) for s in config.ordered_sections()]
    if OTHER_SECTION_KEY not in known:
        sections.append((OTHER_SECTION_KEY, OTHER_SECTION_TITLE))
    out: list[SnapshotSection] = []
    for key, title in sections:
        bucket = sorted(buckets.get(key, []), key=_sort_key)
        if bucket:
            out.append(
                {
                    "key": key,
                    "title": title,
                    "items": [item_entry(config, r, also_by_lead.get(r["id"], [])) for r in bucket],
                }
            )
    return out


def build_snapshot(
    config: Config,
    *,
    number: int,
    title: str,
    intro_md: str,
    published_at: datetime,
    rows: Sequence[q.IssueItemRow],
    also: Sequence[q.IssueItemRow],
    contracts: Mapping[str, Any] | None = None,
    agenda_events: Sequence[SnapshotEvent] = (),
) -> Snapshot:
    """The frozen document every later render reads (schema 1, see docs/email.md).

    ``contracts``: the contrats de ville tracker as this issue freezes it
    (``contracts.issue_block``; docs/contracts.md), or None.
    """
    org = config.organisation
    sections = build_sections(config, rows, also)
    snapshot: Snapshot = {
        "schema": SNAPSHOT_SCHEMA,
        "number": number,
        "title": title,
        "intro_md": intro_md,
        "intro_html": render_intro(intro_md),
        "published_at": _iso_utc(published_at),
        "date": published_at.astimezone(config.tz).date().isoformat(),
        "locale": config.locale,
        "organisation": {
            "name": org.name,
            "short_name": org.short_name,
            "url": org.url,
            "logo_url": urls.email_logo_url(config),
            "postal_address": org.postal_address,
            "contact_email": org.contact_email,
            "reason": org.reason,
        },
        "archive_url": urls.archive_issue_url(config, number),
        "item_count": sum(len(s["items"]) for s in sections),
        "sections": sections,
        # The agenda of the coming weeks, as it stood when the issue was frozen.
        "agenda": [e.copy() for e in agenda_events],
    }
    if contracts is not None:
        snapshot["contracts"] = dict(contracts)
    snapshot["subject"] = render.format_subject(config.email.subject, snapshot)
    return snapshot


def _gather(
    conn: Connection, draft_id: int | None
) -> tuple[list[q.IssueItemRow], list[q.IssueItemRow]]:
    rows = q.draft_items(conn, draft_id)
    also = q.other_outlets(conn, [r["id"] for r in rows]) if rows else []
    return rows, also


def _draft_state(
    config: Config, store: Store, now: datetime | None
) -> tuple[q.IssueRow, list[q.IssueItemRow], Snapshot]:
    """The draft's row, its items and the snapshot publishing would freeze at ``now``."""
    with store.connect() as conn:
        row = _require_draft(conn)
        rows, also = _gather(conn, row["id"])
        number = q.next_number(conn)
        tracker = contract_tracker.issue_block(config, conn)
    at = now or store_now()
    snapshot = build_snapshot(
        config,
        number=number,
        title=row["title"],
        intro_md=row["intro_md"] or "",
        published_at=at,
        rows=rows,
        also=also,
        contracts=tracker,
        agenda_events=agenda.snapshot_events(config, store, at=at),
    )
    snapshot["draft"] = True
    return row, rows, snapshot


def draft_snapshot(config: Config, store: Store, *, now: datetime | None = None) -> Snapshot:
    """What publishing would freeze now (same shape, ``"draft": true``, provisional number)."""
    return _draft_state(config, store, now)[2]


def _warnings(config: Config, rows: Sequence[q.IssueItemRow], snapshot: Snapshot) -> list[str]:
    warnings: list[str] = []
    if not rows:
        warnings.append(
            "the draft is empty: select items (`pressreview items select ID...`), then "
            "`pressreview issue refresh`"
        )
    known = {s.key for s in config.sections}
    undated = [r["id"] for r in rows if r["date_is_fallback"]]
    if undated:
        warnings.append(
            f"{len(undated)} item(s) without a publication date, shown undated: "
            + ", ".join(map(str, undated))
        )
    no_outlet = [r["id"] for r in rows if not clean_text(r["outlet"] or "")]
    if no_outlet:
        warnings.append(
            f"{len(no_outlet)} item(s) without an outlet, shown with the source's name: "
            + ", ".join(map(str, no_outlet))
        )
    unsorted = [r["id"] for r in rows if r["section"] not in known]
    if unsorted and config.sections:
        warnings.append(
            f"{len(unsorted)} item(s) in no configured section, shown under "
            f'"{OTHER_SECTION_TITLE}": ' + ", ".join(map(str, unsorted))
        )
    ids = {r["id"] for r in rows}
    doubles = [
        f"{r['id']} (other outlet of {r['duplicate_of']})" for r in rows if r["duplicate_of"] in ids
    ]
    if doubles:
        warnings.append("the same story is selected twice: " + ", ".join(doubles))
    return warnings


def draft_outline(config: Config, store: Store, *, now: datetime | None = None) -> Outline:
    """The draft as it would be published now, its warnings and the email's HTML size."""
    row, rows, snapshot = _draft_state(config, store, now)
    outline = Outline(
        draft=_draft(row),
        snapshot=snapshot,
        warnings=_warnings(config, rows, snapshot),
        max_html_bytes=config.email.max_html_bytes,
    )
    if rows:
        rendered = render.render_email(config, snapshot)
        outline.html_bytes = rendered.html_bytes
        size = render.size_warning(config, rendered)
        if size:
            outline.warnings.append(size)
    return outline


def issue_outline(config: Config, store: Store, number: int) -> Outline:
    """A published issue, shown like a draft outline (from its snapshot)."""
    snapshot = get_snapshot(store, number)
    rendered = render.render_email(config, snapshot)
    warnings = [w for w in [render.size_warning(config, rendered)] if w]
    return Outline(
        draft=None,
        snapshot=snapshot,
        warnings=warnings,
        html_bytes=rendered.html_bytes,
        max_html_bytes=config.email.max_html_bytes,
        published=True,
    )


def publish(config: Config, store: Store, *, actor: str, now: datetime | None = None) -> Snapshot:
    """Freeze the draft into the next numbered issue; returns its snapshot.

    Refused when there is no draft (which is also what a second publish
    meets) or when the draft is empty. The email is rendered before anything
    is written: a broken template fails here, not at sending time.
    """
    stamp = now or store_now()
    if stamp.tzinfo is None:
        raise UsageError("publish: `now` must be an aware datetime")
    upcoming = agenda.snapshot_events(config, store, at=stamp)
    try:
        with store.begin() as conn:
            row = _require_draft(conn)
            rows, also = _gather(conn, row["id"])
            if not rows:
                raise Refused(
                    "the draft is empty: nothing is selected. Select items first "
                    "(`pressreview items select ID...`), then publish"
                )
            number = q.next_number(conn)
            snapshot = build_snapshot(
                config,
                number=number,
                title=row["title"],
                intro_md=row["intro_md"] or "",
                published_at=stamp,
                rows=rows,
                also=also,
                contracts=contract_tracker.issue_block(config, conn),
                agenda_events=upcoming,
            )
            render.render_email(config, snapshot)  # fails before anything is frozen
            if not q.publish_issue(
                conn,
                row["id"],
                version=row["version"],
                number=number,
                title=row["title"],
                snapshot=snapshot,
                at=stamp,
            ):
                raise Conflict("the draft changed or was published meanwhile; run `issue show`")
            ids = [r["id"] for r in rows]
            changed = q.mark_published(conn, row["id"], row["id"], ids, stamp)
            if changed != len(ids):
                raise Conflict(
                    "items changed while publishing; check `pressreview issue show`, publish again"
                )
            q.add_event(
                conn,
                actor=actor,
                action="issue.publish",
                issue_id=row["id"],
                at=stamp,
                details={"number": number, "items": ids, "title": row["title"]},
            )
    except DuplicateKey:
        raise Conflict(
            "another issue was published at the same time; run `pressreview issue list`"
        ) from None
    return snapshot


# -- published issues ------------------------------------------------------------


def get_snapshot(store: Store, number: int) -> Snapshot:
    """The frozen snapshot of published issue ``number``."""
    with store.connect() as conn:
        row = q.issue_by_number(conn, number)
    if row is None or row["snapshot"] is None:
        raise NotFound(f"no published issue n° {number} (see `pressreview issue list`)")
    return row["snapshot"].copy()


def list_issues(store: Store) -> list[IssueSummary]:
    """Published issues, newest first."""
    with store.connect() as conn:
        rows = q.published_issues(conn)
    return [
        IssueSummary(
            number=r["number"],
            title=r["title"],
            published_at=r["published_at"],
            date=r["snapshot"]["date"],
            item_count=r["snapshot"]["item_count"],
            archive_url=r["snapshot"]["archive_url"],
        )
        for r in rows
    ]
