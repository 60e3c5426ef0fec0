"""Curation: the state changes staff make on items, and the audit trail.

Select (into a section), reject (with a reason), reset (back to new), edit
the title or summary (the original is kept beside the edit), order inside a
section, add a story no feed carried. Every change:

- is refused with one clear message when it is not allowed (unknown id,
  item of a published issue, empty title, unknown section);
- is written as ``UPDATE ... WHERE id = ? AND version = ?``: a change based
  on a stale read (someone else changed the item meanwhile) is refused with
  a message saying what changed, by whom, and nothing is overwritten;
- records an event (who, when, what changed: before and after).

Functions return items as plain dicts (every column of ``items`` plus
``source``, ``issue_number`` and ``issue_status``).
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from itertools import pairwise
from typing import Any, cast

import httpx

from pressreview.collect.classify import Classifier
from pressreview.config import Config
from pressreview.errors import Conflict, NotFound, Refused, UsageError
from pressreview.model import Item
from pressreview.pageinfo import fetch_page_info
from pressreview.store import Connection, Store
from pressreview.store import items as q
from pressreview.store.schema import now
from pressreview.text import canonical_url, clean_text, excerpt, host_of, safe_url, words

__all__ = [
    "STATUSES",
    "AddResult",
    "ItemList",
    "ItemQuery",
    "ReviewSession",
    "add_item_by_url",
    "count_items",
    "display_title",
    "edit_item",
    "format_changes",
    "get_item",
    "list_items",
    "move_item",
    "parse_ids",
    "parse_when",
    "read_log",
    "reject_items",
    "reset_items",
    "restore_item",
    "review_queue",
    "search_items",
    "select_items",
    "show_item",
]

STATUSES = ("new", "selected", "rejected", "filtered", "published")
#: The orders of a listing (``ItemQuery.sort``).
SORTS = q.SORTS
MAX_IDS = 10_000
#: Closest two positions inside a section may get before the section is renumbered.
MIN_GAP = 1e-6


# -- ids and dates ----------------------------------------------------------------

_ID_RE = re.compile(r"^\s*(\d+)\s*(?:-\s*(\d+)\s*)?$")


def parse_ids(values: Iterable[str | int]) -> list[int]:
    """Ids from ``["42", "43", "50-57", "60,61"]``: in order given, each once."""
    result: list[int] = []
    seen: set[int] = set()
    for value in values:
        for part in str(value).split(","):
            if not part.strip():
                continue
            match = _ID_RE.match(part)
            if not match:
                raise UsageError(f"not an item id or range: {part.strip()!r} (e.g. 42 or 50-57)")
            start = int(match.group(1))
            end = int(match.group(2) or start)
            if end < start:
                raise UsageError(f"range {part.strip()!r} runs backwards (write {end}-{start})")
            if end - start + len(result) > MAX_IDS:
                raise UsageError(f"too many ids (more than {MAX_IDS}); use a filter instead")
            for i in range(start, end + 1):
                if i not in seen:
                    seen.add(i)
                    result.append(i)
    return result


_RELATIVE_RE = re.compile(r"^(\d+)\s*([dwh])$")


def parse_when(
    value: str, tz: tzinfo, *, end: bool = False, now_: datetime | None = None
) -> datetime:
    """A date for filters: ``2024-05-01`` (a local day), an ISO datetime, or ``7d`` ago.

    With ``end`` a bare date means the end of that day (for ``--until``).
    """
    value = value.strip()
    match = _RELATIVE_RE.match(value.lower())
    if match:
        n, unit = int(match.group(1)), match.group(2)
        delta = {"d": timedelta(days=n), "w": timedelta(weeks=n), "h": timedelta(hours=n)}[unit]
        return (now_ or now()) - delta
    try:
        day = date.fromisoformat(value)
    except ValueError:
        pass
    else:
        if end:
            day = day + timedelta(days=1)
        return datetime.combine(day, time(0), tz).astimezone(UTC)
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise UsageError(
            f"not a date: {value!r} (use 2024-05-01, 2024-05-01T14:00 or 7d for seven days ago)"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=tz)
    return moment.astimezone(UTC)


# -- listing ----------------------------------------------------------------------


@dataclass
class ItemQuery:
    """What a list, a count or a bulk change is about (values as the user gives them)."""

    status: Sequence[str] = ("new",)
    since: datetime | None = None
    until: datetime | None = None
    source: Sequence[str] = ()
    outlet: str | None = None
    section: Sequence[str] = ()
    territory: Sequence[str] = ()
    search: str | None = None
    duplicates: bool = False
    ids: Sequence[int] = ()
    limit: int | None = None
    offset: int = 0
    sort: str = "date"


@dataclass
class ItemList:
    """A page of items and how many match in all."""

    items: list[Item]
    total: int


def _resolve_territory(config: Config, value: str) -> list[str]:
    wanted = " ".join(words(value))
    exact = [
        t.name
        for t in config.territories
        if any(" ".join(words(label)) == wanted for label in (t.name, *t.aliases))
    ]
    if exact:
        return exact
    partial = [
        t.name
        for t in config.territories
        if any(wanted in " ".join(words(label)) for label in (t.name, *t.aliases))
    ]
    if partial:
        return partial
    if not config.territories:
        return [value]
    names = [t.name for t in config.territories]
    known = ", ".join(names[:8]) + (f" and {len(names) - 8} more" if len(names) > 8 else "")
    raise UsageError(
        f"unknown territory {value!r} (territories in the config: {known}; "
        "a part of a name or alias is enough)"
    )


def _check_section(config: Config | None, section: str) -> None:
    if config is None or not config.sections:
        return
    if config.section(section) is None:
        known = ", ".join(s.key for s in config.ordered_sections())
        raise Refused(f"unknown section {section!r} (sections in the config: {known})")


def _filter(config: Config, query: ItemQuery) -> q.ItemFilter:
    statuses: tuple[str, ...] = ()
    for status in query.status:
        if status == "all":
            statuses = ()
            break
        if status not in STATUSES:
            raise UsageError(f"unknown status {status!r} (one of {', '.join(STATUSES)}, or all)")
        statuses += (status,)
    sections: list[str] = []
    for section in query.section:
        if section in ("none", "-", ""):
            sections.append("")
            continue
        if config.sections and config.section(section) is None:
            known = ", ".join(s.key for s in config.ordered_sections())
            raise UsageError(f"unknown section {section!r} (sections in the config: {known}, none)")
        sections.append(section)
    territories: list[str] = []
    for territory in query.territory:
        territories += _resolve_territory(config, territory)
    if query.search is not None and query.search.strip() and not q.search_terms(query.search):
        raise UsageError(f"nothing to search for in {query.search!r} (give words)")
    if query.sort not in SORTS:
        raise UsageError(f"unknown sort {query.sort!r} (one of {', '.join(SORTS)})")
    if query.limit is not None and query.limit < 0:
        raise UsageError("--limit must be 0 or more")
    return q.ItemFilter(
        statuses=statuses,
        since=query.since,
        until=query.until,
        sources=tuple(query.source),
        outlet=query.outlet or None,
        sections=tuple(sections),
        territories=tuple(territories),
        search=query.search or None,
        duplicates=query.duplicates or bool(query.ids),
        ids=tuple(query.ids),
        limit=query.limit,
        offset=query.offset,
        sort=query.sort,
    )


def list_items(config: Config, store: Store, query: ItemQuery | None = None) -> ItemList:
    """Items matching the query (default: new, not other outlets, newest first) and their total."""
    f = _filter(config, query or ItemQuery())
    with store.connect() as conn:
        rows, total = q.list_and_count(conn, f)
    return ItemList(rows, total)


def count_items(config: Config, store: Store, query: ItemQuery) -> int:
    f = _filter(config, query)
    with store.connect() as conn:
        return q.count_items(conn, f)


def search_items(
    config: Config,
    store: Store,
    text: str,
    *,
    status: Sequence[str] = ("all",),
    limit: int | None = 50,
) -> list[Item]:
    """Full-text search (accent- and case-insensitive, every word as a prefix)."""
    return list_items(config, store, ItemQuery(status=status, search=text, limit=limit)).items


def get_item(store: Store, item_id: int, *, expected_version: int | None = None) -> Item:
    """One item; with ``expected_version``, :class:`Conflict` if it is at another version."""
    with store.connect() as conn:
        item = _get(conn, item_id)
        if expected_version is not None and expected_version != item["version"]:
            raise Conflict(_conflict_message(conn, item, expected_version))
    return item


def item_to_edit(store: Store, item_id: int, *, expected_version: int | None = None) -> Item:
    """:func:`get_item`, refused (:class:`Refused`) when the item is in a published issue:
    what ``items edit`` checks before it opens the editor."""
    item = get_item(store, item_id, expected_version=expected_version)
    _refuse_published(item, "edited")
    return item


def _get(conn: Connection, item_id: int) -> Item:
    row = q.get_item(conn, item_id)
    if row is None:
        raise NotFound(f"no item {item_id} (see `pressreview items list --status all`)")
    return row


def show_item(store: Store, item_id: int, *, events: int = 20) -> Item:
    """One item with ``also`` (other outlets), ``lead`` (when it is itself one) and ``events``."""
    with store.connect() as conn:
        item = _get(conn, item_id)
        item["also"] = q.other_outlets(conn, item_id)
        item["lead"] = q.get_item(conn, item["duplicate_of"]) if item["duplicate_of"] else None
        item["events"] = q.list_events(conn, item_id=item_id, limit=events)
    return item


def display_title(item: Mapping[str, Any]) -> str:
    """The title readers will see: the edited one when there is one."""
    return str(item.get("title_edited") or item["title"])


def review_queue(config: Config, store: Store, query: ItemQuery | None = None) -> list[int]:
    """Ids of the items to triage (default: new, not other outlets), newest first."""
    f = _filter(config, query or ItemQuery())
    f.limit = None
    with store.connect() as conn:
        return [row["id"] for row in q.list_items(conn, f)]


# -- changes ----------------------------------------------------------------------


def _published(item: Mapping[str, Any]) -> bool:
    return item["status"] == "published" or item.get("issue_status") == "published"


def _refuse_published(item: Mapping[str, Any], verb: str) -> None:
    if _published(item):
        number = item.get("issue_number")
        where = f"published issue n° {number}" if number else "a published issue"
        raise Refused(f"item {item['id']} belongs to {where}: it cannot be {verb} any more")


def _load(conn: Connection, ids: Sequence[int]) -> list[Item]:
    if not ids:
        raise UsageError("no item ids given (e.g. 42 43 50-57)")
    found = q.get_items(conn, ids)
    missing = [i for i in ids if i not in found]
    if missing:
        listed = ", ".join(str(i) for i in missing[:10]) + (", ..." if len(missing) > 10 else "")
        noun = "item" if len(missing) == 1 else "items"
        raise NotFound(f"no {noun} {listed}; nothing was changed")
    return [found[i] for i in ids]


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def _apply(
    conn: Connection,
    item: Item,
    values: Mapping[str, Any],
    *,
    action: str,
    actor: str,
    expected_version: int | None = None,
    extra: Mapping[str, Any] | None = None,
    stamp: datetime | None = None,
) -> Item | None:
    """Change one item (version-checked) and record the event; None when nothing changes."""
    stamp = stamp or now()
    if expected_version is not None and expected_version != item["version"]:
        raise Conflict(_conflict_message(conn, item, expected_version))
    fields: Mapping[str, Any] = item
    changes = {
        k: [_json_value(fields[k]), _json_value(v)] for k, v in values.items() if fields[k] != v
    }
    if not changes:
        return None
    update = {k: v for k, v in values.items() if k in changes}
    if "title_edited" in update or "summary_edited" in update:
        update["search_text"] = q.item_search_text({**item, **update})
    if not q.update_item(conn, item["id"], item["version"], update, stamp=stamp):
        current = _get(conn, item["id"])
        raise Conflict(_conflict_message(conn, current, item["version"]))
    details: dict[str, Any] = {"changes": changes, "version": item["version"] + 1}
    if extra:
        details.update(extra)
    q.add_event(conn, actor=actor, action=action, item_id=item["id"], details=details, at=stamp)
    # The same keys as ``item``, some with new values.
    return cast(Item, {**item, **update, "version": item["version"] + 1, "updated_at": stamp})


FIELD_NAMES = {
    "status": "status",
    "section": "section",
    "position": "position",
    "reject_reason": "reject reason",
    "title_edited": "title",
    "summary_edited": "summary",
    "contract": "contract",
    "contract_source": "contract set by",
    "link": "link",
}


def _short(value: Any, limit: int = 60) -> str:
    if value is None:
        return "(none)"
    if isinstance(value, float):
        return f"{value:g}"
    text = str(value)
    return repr(text if len(text) <= limit else text[: limit - 1] + "…")


def format_changes(changes: Mapping[str, Any]) -> str:
    """``title set to 'b'; new → selected; section: 'a' → 'b'`` from an event's changes."""
    parts = []
    for name, pair in changes.items():
        label = FIELD_NAMES.get(name, name)
        before, after = ([*pair, None, None])[:2] if isinstance(pair, list) else (None, pair)
        if name == "title_edited" or name == "summary_edited":
            done = "reverted to the original" if after is None else "set to " + _short(after)
            parts.append(f"{label} {done}")
        elif name == "status":
            parts.append(f"{before} → {after}")
        else:
            parts.append(f"{label}: {_short(before, 30)} → {_short(after)}")
    return "; ".join(parts)


def _conflict_message(conn: Connection, current: Mapping[str, Any], seen_version: int) -> str:
    """Say who changed what since the version the caller read."""
    if seen_version > current["version"] or seen_version < 1:
        return (
            f"item {current['id']} is at version {current['version']}, not {seen_version}; "
            f"nothing was saved (see `pressreview items show {current['id']}`)"
        )
    later = [
        e
        for e in q.list_events(conn, item_id=current["id"], newest_first=False)
        if isinstance(e["details"], dict) and int(e["details"].get("version") or 0) > seen_version
    ]
    if later:
        what = "; ".join(
            f"{format_changes(e['details'].get('changes', {})) or e['action']} "
            f"by {e['actor']} at {e['at'].astimezone(UTC):%Y-%m-%d %H:%M} UTC"
            for e in later[-3:]
        )
    else:
        what = "its feed's text was updated by a collect"
    return (
        f"item {current['id']} changed since you read it (version {seen_version}, "
        f"now {current['version']}): {what}; nothing was saved: look at "
        f"`pressreview items show {current['id']}` and try again"
    )


def _versions_check(
    items: Sequence[Item], expected: Mapping[int, int] | None, conn: Connection
) -> None:
    if not expected:
        return
    for item in items:
        seen = expected.get(item["id"])
        if seen is not None and seen != item["version"]:
            raise Conflict(_conflict_message(conn, item, seen))


def _change_items(
    store: Store,
    ids: Sequence[int],
    values_for: Callable[[Connection, Item], dict[str, Any]],
    *,
    verb: str,
    action: str,
    actor: str,
    expected_versions: Mapping[int, int] | None,
) -> list[Item]:
    """Apply ``values_for(conn, item)`` to every item, all or nothing, in one transaction."""
    result: list[Item] = []
    with store.begin() as conn:
        loaded = _load(conn, ids)
        for item in loaded:
            _refuse_published(item, verb)
        _versions_check(loaded, expected_versions, conn)
        stamp = now()
        for item in loaded:
            values = values_for(conn, item)
            changed = _apply(conn, item, values, action=action, actor=actor, stamp=stamp)
            result.append(changed or item)
    return result


def select_items(
    store: Store,
    ids: Sequence[int],
    *,
    section: str | None = None,
    actor: str,
    config: Config | None = None,
    expected_versions: Mapping[int, int] | None = None,
) -> list[Item]:
    """Select items for the next issue, into ``section`` (default: the item's own section).

    All or nothing: an unknown id, an item of a published issue, an unknown
    section (checked when ``config`` is given) or a stale version refuses
    the whole call. Newly selected items go last in their section. Returns
    the items after the change (unchanged ones included).
    """
    if section is not None:
        _check_section(config, section)

    def values_for(conn: Connection, item: Item) -> dict[str, Any]:
        target = section if section is not None else item["section"]
        values: dict[str, Any] = {"status": "selected", "section": target, "reject_reason": None}
        if item["status"] != "selected" or item["section"] != target or item["position"] is None:
            values["position"] = (q.max_position(conn, target) or 0.0) + 1.0
        return values

    return _change_items(
        store,
        ids,
        values_for,
        verb="selected",
        action="item.select",
        actor=actor,
        expected_versions=expected_versions,
    )


def reject_items(
    store: Store,
    ids: Sequence[int],
    *,
    reason: str | None = None,
    actor: str,
    expected_versions: Mapping[int, int] | None = None,
) -> list[Item]:
    """Reject items (kept, with the reason, so that a re-fetch does not bring them back)."""
    values = {"status": "rejected", "reject_reason": clean_text(reason) or None, "position": None}
    return _change_items(
        store,
        ids,
        lambda _conn, _item: values,
        verb="rejected",
        action="item.reject",
        actor=actor,
        expected_versions=expected_versions,
    )


def reset_items(
    store: Store,
    ids: Sequence[int],
    *,
    actor: str,
    expected_versions: Mapping[int, int] | None = None,
) -> list[Item]:
    """Put items back to ``new`` (undecided); their section and edits are kept."""
    values = {"status": "new", "reject_reason": None, "position": None}
    return _change_items(
        store,
        ids,
        lambda _conn, _item: values,
        verb="reset",
        action="item.reset",
        actor=actor,
        expected_versions=expected_versions,
    )


def edit_item(
    store: Store,
    item_id: int,
    *,
    title: str | None = None,
    summary: str | None = None,
    revert: bool = False,
    link: str | None = None,
    expected_version: int | None = None,
    actor: str,
) -> Item:
    """Edit the title and/or summary shown to readers; the original stays beside it.

    ``link`` sets the item's web address (an absolute http or https URL), for
    an item whose feed gave none or a wrong one; a later collect keeps it
    unless the feed then gives a link of its own.

    ``revert`` goes back to the original title and summary. A text equal to
    the original clears the edit. ``expected_version`` (the version the
    editor read) makes a stale edit fail with :class:`Conflict`.
    """
    if revert and (title is not None or summary is not None):
        raise UsageError(
            "--revert goes back to the original text: give it without --title/--summary"
        )
    if not revert and title is None and summary is None and link is None:
        raise UsageError("nothing to edit: give --title, --summary or --link (or --revert)")
    if link is not None and not safe_url(link):
        raise UsageError(f"--link: {link!r} is not a web address (http:// or https://...)")
    with store.begin() as conn:
        item = _get(conn, item_id)
        _refuse_published(item, "edited")
        values: dict[str, Any] = {}
        if revert:
            values = {"title_edited": None, "summary_edited": None}
        if title is not None:
            title = clean_text(title)
            if not title:
                raise Refused(
                    f"item {item_id}: the title cannot be empty (use --revert for the original)"
                )
            values["title_edited"] = None if title == clean_text(item["title"]) else title
        if summary is not None:
            summary = clean_text(summary)
            values["summary_edited"] = None if summary == clean_text(item["excerpt"]) else summary
        if link is not None:
            values["link"] = link.strip()
        changed = _apply(
            conn, item, values, action="item.edit", actor=actor, expected_version=expected_version
        )
    return changed or item


#: ``edit_contract`` leaves a field as it is when given this.
KEEP: Any = object()


def edit_contract(
    store: Store,
    item_id: int,
    *,
    generation: str | None = KEEP,
    region: str = KEEP,
    carriers: Sequence[str] | None = None,
    event: str | None = KEEP,
    event_date: date | None = KEEP,
    clear: bool = False,
    expected_version: int | None = None,
    actor: str,
) -> Item:
    """Correct the contrat de ville classification of an item (audited).

    Fields not given keep their value; ``carriers`` (EPCI SIRENs) replaces the
    list; ``clear`` says the item is not about a contrat de ville. The result
    is marked ``contract_source = "staff"``: a later collect never overwrites it.
    """
    from pressreview.contract import EVENTS, GENERATIONS, REGIONS
    from pressreview.geo import load_geography

    given = [x is not KEEP for x in (generation, region, event, event_date)] + [
        carriers is not None
    ]
    if clear and any(given):
        raise UsageError("--no-contract clears the classification: give it alone")
    if not clear and not any(given):
        raise UsageError(
            "nothing to change: give --carrier, --generation, --region, --event "
            "and/or --event-date (or --no-contract)"
        )
    if generation is not KEEP and generation is not None and generation not in GENERATIONS:
        raise UsageError(f"generation: {generation!r} is not one of {', '.join(GENERATIONS)}")
    if region is not KEEP and region not in REGIONS:
        raise UsageError(f"region: {region!r} is not one of {', '.join(REGIONS)}")
    if event is not KEEP and event is not None and event not in EVENTS:
        raise UsageError(f"event: {event!r} is not one of {', '.join(EVENTS)}")
    named: list[dict[str, str]] = []
    if carriers is not None:
        epcis = load_geography().epcis
        for siren in carriers:
            siren = siren.strip().replace(" ", "")
            if siren not in epcis:
                raise UsageError(
                    f"carrier: {siren!r} is not the SIREN of an EPCI of the region "
                    "(nine digits, e.g. 200093201 for the Métropole européenne de Lille)"
                )
            if siren not in [c["siren"] for c in named]:
                named.append({"siren": siren, "name": epcis[siren].name})
    with store.begin() as conn:
        item = _get(conn, item_id)
        if clear:
            contract = None
        else:
            contract = dict(
                item["contract"]
                or {
                    "generation": None,
                    "region": "hdf",
                    "carriers": [],
                    "event": None,
                    "event_date": None,
                }
            )
            if generation is not KEEP:
                contract["generation"] = generation
            if region is not KEEP:
                contract["region"] = region
            if carriers is not None:
                contract["carriers"] = named
            if event is not KEEP:
                contract["event"] = event
            if event_date is not KEEP:
                contract["event_date"] = event_date.isoformat() if event_date else None
        changed = _apply(
            conn,
            item,
            {"contract": contract, "contract_source": "staff"},
            action="item.contract",
            actor=actor,
            expected_version=expected_version,
        )
    return changed or item


def move_item(
    store: Store,
    item_id: int,
    *,
    before: int | None = None,
    after: int | None = None,
    expected_version: int | None = None,
    actor: str,
) -> Item:
    """Order a selected item inside its section: just before or just after another one."""
    if (before is None) == (after is None):
        raise UsageError("say where to move the item: --before ID or --after ID")
    target_id = before if before is not None else after
    assert target_id is not None
    if target_id == item_id:
        raise UsageError("an item cannot be moved next to itself")
    with store.begin() as conn:
        item = _get(conn, item_id)
        target = _get(conn, target_id)
        _refuse_published(item, "moved")
        if item["status"] != "selected":
            raise Refused(
                f"item {item_id} is {item['status']}, not selected: only selected items are ordered"
                " "
                f"(select it first: `pressreview items select {item_id}`)"
            )
        if target["status"] != "selected" or _published(target):
            raise Refused(f"item {target_id} is not a selected item of the next issue")
        if target["section"] != item["section"]:
            raise Refused(
                f"item {target_id} is in section {target['section'] or 'none'}, item {item_id} in "
                f"{item['section'] or 'none'}: move it to that section first "
                f"(`pressreview items select {item_id} --section {target['section'] or '...'}`)"
            )
        if expected_version is not None and expected_version != item["version"]:
            raise Conflict(_conflict_message(conn, item, expected_version))
        stamp = now()
        ordered = q.section_items(conn, item["section"])
        positions = [row["position"] for row in ordered]
        # Renumber 1, 2, 3... when a position is missing, or when repeated moves into
        # one gap (each halves it) have brought two positions too close to split again.
        known = [p for p in positions if p is not None]
        if len(known) < len(positions) or any(b - a < MIN_GAP for a, b in pairwise(known)):
            ordered = _renumber(conn, ordered, actor=actor, stamp=stamp)
            item = next((row for row in ordered if row["id"] == item_id), item)
        others = [row for row in ordered if row["id"] != item_id]
        index = next((i for i, row in enumerate(others) if row["id"] == target_id), None)
        if index is None or all(row["id"] != item_id for row in ordered):
            # Another session moved the target (or the item) out of the section since
            # they were read above.
            current = _get(conn, target_id if index is None else item_id)
            raise Conflict(_conflict_message(conn, current, max(current["version"] - 1, 1)))
        if after is not None:
            index += 1
        prev_pos = others[index - 1]["position"] if index > 0 else None
        next_pos = others[index]["position"] if index < len(others) else None
        if prev_pos is None and next_pos is None:
            position = 1.0
        elif prev_pos is None:
            position = float(next_pos) - 1.0  # type: ignore[arg-type]
        elif next_pos is None:
            position = float(prev_pos) + 1.0
        else:
            position = (float(prev_pos) + float(next_pos)) / 2
        where = {"before": before} if before is not None else {"after": after}
        changed = _apply(
            conn,
            item,
            {"position": position},
            action="item.move",
            actor=actor,
            extra=where,
            stamp=stamp,
        )
    return changed or item


def _renumber(conn: Connection, ordered: list[Item], *, actor: str, stamp: datetime) -> list[Item]:
    """Give every item of a section a position 1, 2, 3... in its current order."""
    result = []
    for i, row in enumerate(ordered, start=1):
        changed = _apply(
            conn,
            row,
            {"position": float(i)},
            action="item.move",
            actor=actor,
            stamp=stamp,
            extra={"renumbered": True},
        )
        result.append(changed or row)
    return result


#: The fields an undo may restore.
RESTORABLE = ("status", "section", "position", "reject_reason", "title_edited", "summary_edited")


def restore_item(
    store: Store,
    item_id: int,
    previous: Mapping[str, Any],
    *,
    expected_version: int | None = None,
    actor: str,
) -> Item:
    """Put back the curation fields of an item as they were (undo of a decision)."""
    values = {k: previous[k] for k in RESTORABLE if k in previous}
    with store.begin() as conn:
        item = _get(conn, item_id)
        _refuse_published(item, "changed")
        changed = _apply(
            conn, item, values, action="item.undo", actor=actor, expected_version=expected_version
        )
    return changed or item


# -- the audit trail ------------------------------------------------------------------


def read_log(
    store: Store,
    *,
    item_id: int | None = None,
    since: datetime | None = None,
    actor: str | None = None,
    action: str | None = None,
    limit: int | None = 100,
) -> list[dict[str, Any]]:
    """Events, newest first: ``at``, ``actor``, ``action``, ``item_id``, ``details``..."""
    with store.connect() as conn:
        if item_id is not None:
            _get(conn, item_id)
        return q.list_events(
            conn, item_id=item_id, since=since, actor=actor, action=action, limit=limit
        )


# -- adding a story by URL ------------------------------------------------------------


@dataclass
class AddResult:
    item: Item
    #: The page was fetched and read (False: stored from the given fields only).
    fetched: bool
    #: Why the page could not be fetched or read, when it could not.
    fetch_error: str | None = None


def add_item_by_url(
    config: Config,
    store: Store,
    url: str,
    *,
    title: str | None = None,
    summary: str | None = None,
    published_at: datetime | None = None,
    outlet: str | None = None,
    section: str | None = None,
    select: bool = True,
    fetch: bool = True,
    actor: str,
    transport: httpx.AsyncBaseTransport | None = None,
) -> AddResult:
    """Add a story no feed carried, from its page's metadata (OpenGraph, meta, JSON-LD).

    Given fields override what the page says. When the page cannot be
    fetched, the item is stored with the given fields (a title is then
    required). A URL already stored is refused with the id of its item.
    The item is selected (into ``section`` or the detected one) unless
    ``select`` is false.
    """
    url = url.strip()
    canonical = canonical_url(url)
    if not canonical.startswith(("http://", "https://")):
        raise UsageError(f"not a web address: {url!r} (give an http:// or https:// URL)")
    if section is not None:
        _check_section(config, section)
    if title is not None and not clean_text(title):
        raise Refused("the title cannot be empty")
    with store.connect() as conn:
        _refuse_known(conn, canonical)
    info = fetch_page_info(config, url, transport=transport) if fetch else None
    fetch_error = info.error if info is not None else "not fetched (--no-fetch)"
    fetched = info is not None and info.error is None
    if info is not None and fetched:
        for candidate in (info.canonical_url, info.final_url):
            if candidate and canonical_url(candidate) != canonical:
                with store.connect() as conn:
                    _refuse_known(conn, canonical_url(candidate))
        if info.final_url:
            # Where the address led (a short link, http → https): what feeds will carry.
            url, canonical = info.final_url, canonical_url(info.final_url)
    final_title = clean_text(title) if title else clean_text(info.title if info else "")
    if not final_title:
        if fetched:
            raise Refused(f"{url}: the page has no title; give one with --title")
        raise Refused(f"cannot fetch {url}: {fetch_error}; give at least --title to add it anyway")
    description = (
        clean_text(summary) if summary is not None else clean_text(info.description if info else "")
    )
    stamp = now()
    when = published_at or (info.published_at if info else None)
    site = clean_text(outlet) if outlet else clean_text(info.site_name if info else "")
    if not site:
        site = host_of(canonical).removeprefix("www.")
    classification = Classifier(config).classify(
        final_title, description, published=when or stamp, outlet=site
    )
    target = section if section is not None else classification.section
    values: dict[str, Any] = {
        "source_id": None,
        "guid": None,
        "url": canonical,
        "link": url,
        "title": final_title,
        "summary_html": f"<p>{html.escape(description, quote=False)}</p>" if description else "",
        "excerpt": excerpt(description, config.collect.excerpt_chars),
        "outlet": site,
        "language": (info.language if info else None) or None,
        "published_at": when or stamp,
        "date_is_fallback": when is None,
        "first_seen_at": stamp,
        "updated_at": stamp,
        "tags": list(info.tags if info else []),
        "territories": classification.territories,
        "score": classification.score,
        "status": "new",
        "section": target,
        "position": None,
        "content_hash": "",
        "origin": "manual",
        "version": 1,
        "contract": classification.contract,
        "contract_source": "auto" if classification.contract is not None else None,
    }
    values["search_text"] = q.item_search_text(values)
    with store.begin() as conn:
        _refuse_known(conn, canonical)
        item_id = q.insert_item(conn, values, stamp=stamp)
        q.add_event(
            conn,
            actor=actor,
            action="item.add",
            item_id=item_id,
            at=stamp,
            details={
                "url": canonical,
                "title": final_title,
                "fetched": fetched,
                **({"fetch_error": fetch_error} if not fetched else {}),
                "version": 1,
            },
        )
    if select:
        item = select_items(store, [item_id], section=target, actor=actor, config=config)[0]
    else:
        item = get_item(store, item_id)
    return AddResult(item=item, fetched=fetched, fetch_error=None if fetched else fetch_error)


def _refuse_known(conn: Connection, url: str) -> None:
    known = q.find_by_url(conn, url)
    if known is not None:
        raise Refused(
            f"already stored as item {known['id']} ({known['status']}): {display_title(known)!r}; "
            f"nothing added (see `pressreview items show {known['id']}`)"
        )


# -- review: triage one item at a time ------------------------------------------------


@dataclass
class _Step:
    index: int
    item_id: int
    kind: str  # selected | rejected | edited | skipped
    previous: dict[str, Any] | None = None
    version_after: int | None = None


class ReviewSession:
    """The state of a ``review``: a queue of item ids, a cursor and an undo history.

    The command line shows :meth:`current` and calls one method per key.
    Every decision goes through the version-checked functions above, so an
    item someone else decided meanwhile is reported, never overwritten.
    """

    def __init__(self, config: Config, store: Store, ids: Sequence[int], *, actor: str) -> None:
        self.config, self.store, self.actor = config, store, actor
        self.ids = list(ids)
        self.index = 0
        self.history: list[_Step] = []
        self._seen: dict[int, int] = {}
        self.passed: list[Item] = []
        with store.connect() as conn:
            #: Status of each item when the queue was built: an item whose status
            #: changed since (decided by someone else) is passed over.
            self._status = {i: row["status"] for i, row in q.get_items(conn, self.ids).items()}

    @property
    def total(self) -> int:
        return len(self.ids)

    @property
    def done(self) -> bool:
        return self.index >= len(self.ids)

    def counts(self) -> dict[str, int]:
        result = {"selected": 0, "rejected": 0, "edited": 0, "skipped": 0}
        for step in self.history:
            result[step.kind] += 1
        return result

    def current(self) -> Item | None:
        """The item under the cursor (with ``also``), skipping items decided elsewhere meanwhile.

        Items whose status changed since the queue was built (decided by
        someone else) are passed over; they are in :attr:`passed` (cleared on
        each call).
        """
        self.passed = []
        while not self.done:
            item_id = self.ids[self.index]
            try:
                item = show_item(self.store, item_id, events=0)
            except NotFound:
                self.index += 1
                continue
            decided_here = any(s.item_id == item_id and s.kind != "skipped" for s in self.history)
            if item["status"] != self._status.get(item_id) and not decided_here:
                self.passed.append(item)
                self.index += 1
                continue
            self._seen[item_id] = item["version"]
            return item
        return None

    def _record(self, kind: str, before: Item, after: Item) -> None:
        fields: Mapping[str, Any] = before
        previous = {k: fields[k] for k in RESTORABLE}
        self.history.append(_Step(self.index, before["id"], kind, previous, after["version"]))

    def select(self, section: str | None = None) -> Item:
        item = self._item()
        after = select_items(
            self.store,
            [item["id"]],
            section=section,
            actor=self.actor,
            config=self.config,
            expected_versions={item["id"]: item["version"]},
        )[0]
        self._record("selected", item, after)
        self.index += 1
        return after

    def reject(self, reason: str | None = None) -> Item:
        item = self._item()
        after = reject_items(
            self.store,
            [item["id"]],
            reason=reason,
            actor=self.actor,
            expected_versions={item["id"]: item["version"]},
        )[0]
        self._record("rejected", item, after)
        self.index += 1
        return after

    def edit(self, *, title: str | None = None, summary: str | None = None) -> Item:
        """Edit the current item; the cursor stays on it."""
        item = self._item()
        after = edit_item(
            self.store,
            item["id"],
            title=title,
            summary=summary,
            expected_version=item["version"],
            actor=self.actor,
        )
        if after["version"] != item["version"]:
            self._record("edited", item, after)
        return after

    def skip(self) -> None:
        self.history.append(_Step(self.index, self.ids[self.index], "skipped"))
        self.index += 1

    def undo(self) -> _Step | None:
        """Undo the last step (a skip just goes back); None when there is nothing to undo.

        A decision someone else has changed since (or that a published issue
        now holds) is not undone: it leaves the history, so that the next undo
        reaches the step before it, and the refusal says why.
        """
        if not self.history:
            return None
        step = self.history.pop()
        if step.kind != "skipped":
            assert step.previous is not None
            try:
                restore_item(
                    self.store,
                    step.item_id,
                    step.previous,
                    expected_version=step.version_after,
                    actor=self.actor,
                )
            except Refused as exc:
                raise type(exc)(f"cannot undo {step.kind} #{step.item_id}: {exc}") from None
        self.index = step.index
        return step

    def _item(self) -> Item:
        if self.done:
            raise UsageError("the review is over: no item to act on")
        item = get_item(self.store, self.ids[self.index])
        seen = self._seen.get(item["id"])
        if seen is not None and seen != item["version"]:
            with self.store.connect() as conn:
                raise Conflict(_conflict_message(conn, item, seen))
        return item
