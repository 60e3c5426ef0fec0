"""The documents the stages hand each other: an issue snapshot and an item.

Types only (no behaviour), so every layer may import them, the store included.

- :class:`Snapshot`: a published issue frozen as JSON (schema 1, docs/email.md).
  ``issues.build_snapshot`` makes it, the store keeps it, ``render``,
  ``archive`` and ``deliver`` read only it. A draft's snapshot has the same
  shape with ``"draft": true``.
- :class:`Item`: an item as curation sees it (``store.items`` returns it): the
  ``items`` row, with the name of its source and the number and status of the
  issue that holds it; ``curate.get_item`` adds the other outlets, the lead
  story and the history.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal, NotRequired, TypedDict

#: The version of the snapshot document (``Snapshot["schema"]``).
SNAPSHOT_SCHEMA: Literal[1] = 1


class SnapshotOrganisation(TypedDict):
    name: str
    short_name: NotRequired[str]  # absent from snapshots made before it was frozen
    url: str
    logo_url: str | None
    postal_address: str
    contact_email: str
    reason: str


class OtherOutlet(TypedDict):
    """Another outlet that covered the same story."""

    outlet: str
    url: str
    title: str


class SnapshotItem(TypedDict):
    id: int
    title: str
    url: str
    outlet: str
    author: NotRequired[str | None]  # the author's name, when the feed gave one
    published_at: str  # ISO 8601, UTC
    date: str | None  # ISO date in the configured time zone; None when undated
    territories: list[str]
    excerpt: str
    summary_by_staff: NotRequired[bool]  # a staff summary (the archive shows it whole)
    summary_html: str  # sanitized
    tags: list[str]
    also: list[OtherOutlet]


class SnapshotSection(TypedDict):
    key: str
    title: str
    items: list[SnapshotItem]


class SnapshotEvent(TypedDict):
    """An event of the agenda, as an issue freezes it (pressreview.agenda.event_entry)."""

    id: int
    uid: str
    title: str
    start: str  # ISO 8601
    end: str | None
    all_day: bool
    when: str  # in French words: "mercredi 5 avril, 17 h – 19 h"
    place: str | None
    online: bool
    url: str | None
    territory: str | None
    anchor: str


class Snapshot(TypedDict):
    """Schema 1 of a frozen issue: everything rendering needs, nothing read from elsewhere."""

    schema: Literal[1]
    number: int
    title: str
    intro_md: str
    intro_html: str
    published_at: str  # ISO 8601, UTC
    date: str  # ISO date in the configured time zone
    locale: str
    organisation: SnapshotOrganisation
    archive_url: str
    item_count: int
    sections: list[SnapshotSection]
    subject: NotRequired[str]  # absent from snapshots made before subjects were frozen
    agenda: NotRequired[list[SnapshotEvent]]  # the coming weeks' events (absent before agendas)
    draft: NotRequired[bool]  # a draft's snapshot (issue preview, the digest's preview)
    # The contrats de ville tracker as the issue froze it (pressreview.contracts.issue_block;
    # docs/contracts.md); absent when the tracker is off or before it existed.
    contracts: NotRequired[dict[str, Any]]


class Item(TypedDict):
    """An item as curation sees it: the ``items`` row with its source and issue."""

    id: int
    source_id: int | None
    guid: str | None
    url: str
    link: str
    title: str
    summary_html: str
    excerpt: str
    outlet: str | None
    author: str | None
    language: str | None
    published_at: datetime
    date_is_fallback: bool
    first_seen_at: datetime
    updated_at: datetime
    tags: list[str]
    territories: list[str]
    score: int
    status: str
    section: str | None
    position: float | None
    reject_reason: str | None
    title_edited: str | None
    summary_edited: str | None
    duplicate_of: int | None
    content_hash: str
    issue_id: int | None
    origin: str
    search_text: str
    version: int
    contract: dict[str, Any] | None  # the contrat de ville classification, or None
    contract_source: str | None  # "auto" (the classifier) or "staff"
    source: str | None  # the source's name
    issue_number: int | None
    issue_status: str | None
    also: NotRequired[list[Item]]  # other outlets of the story (curate.get_item)
    lead: NotRequired[Item | None]  # the story this item is another outlet of
    events: NotRequired[list[dict[str, Any]]]  # its history (curate.get_item)
