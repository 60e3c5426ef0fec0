"""The contrats de ville tracker: which listed contract is signed, when, on what evidence.

The contracts are configuration that staff own (``contracts.file``, see
docs/contracts.md). A contract's status comes from the classified items
(``items.contract``: generation 2024-2030, region hdf, the contract's SIREN
among the carriers, event signing / adoption / preparation), unless staff
decided otherwise (``contracts set``): a staff decision wins until it is
cleared. :func:`build_tracker` and :func:`derive_status` are pure functions
fed with plain values; :func:`load_tracker` reads them from the store (the
classified items only, through a partial index: nothing scans the store at
collect time).
"""

from __future__ import annotations

import csv
import io
import json
import shutil
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pressreview import urls
from pressreview.config import (
    DEFAULT_CONTRACTS_FILE,
    Config,
    Contract,
    ContractsSettings,
    Qpv,
    qpv_code_ok,
    siren_ok,
)
from pressreview.errors import NotFound, Refused, UsageError
from pressreview.geo import load_geography
from pressreview.store import Connection, Store
from pressreview.store import contracts as q
from pressreview.store.items import add_event
from pressreview.store.schema import now as utc_now

Status = Literal["signed", "adopted", "in_preparation", "no_news"]
STATUSES: tuple[Status, ...] = ("signed", "adopted", "in_preparation", "no_news")
#: The classifier's events that give a status, and the status they give.
EVENT_STATUS: dict[str, Status] = {
    "signing": "signed",
    "adoption": "adopted",
    "preparation": "in_preparation",
}
#: A later stage wins over an earlier one (a signed contract stays signed).
RANK: dict[str, int] = {"signed": 3, "adopted": 2, "in_preparation": 1, "no_news": 0}
#: Reader-facing labels (French).
STATUS_LABELS: dict[str, str] = {
    "signed": "signé",
    "adopted": "adopté",
    "in_preparation": "en préparation",
    "no_news": "sans nouvelles",
}
GENERATION = "2024-2030"
REGION = "hdf"
#: Columns of ANCT's national QPV file (GeoJSON feature properties).
QPV_COLUMNS = ("code_qp", "lib_qp", "insee_dep", "insee_com", "lib_com", "siren_epci")


def http_url(value: Any) -> str | None:
    """``value`` when it is an absolute http(s) URL, else None (evidence links only)."""
    if not isinstance(value, str):
        return None
    parts = urlsplit(value.strip())
    if parts.scheme.lower() in ("http", "https") and parts.netloc:
        return value.strip()
    return None


def _as_date(value: Any) -> date | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value)[:10])
    except ValueError:
        return None


@dataclass(frozen=True)
class Evidence:
    """An item that says something about a contract."""

    item_id: int
    title: str
    outlet: str | None
    #: The item's link (http or https only; None otherwise).
    url: str | None
    published: date | None
    event: str | None
    event_date: date | None
    #: "classifier" (the item's classification) or "staff" (given with ``contracts set``).
    origin: str = "classifier"

    @property
    def when(self) -> date | None:
        return self.event_date or self.published

    def as_dict(self) -> dict[str, Any]:
        return {
            "item_id": self.item_id,
            "title": self.title,
            "outlet": self.outlet,
            "url": self.url,
            "published": _iso(self.published),
            "event": self.event,
            "event_date": _iso(self.event_date),
            "origin": self.origin,
        }


@dataclass(frozen=True)
class Decision:
    """A staff decision on a contract (status None: a previous decision was cleared)."""

    id: int
    siren: str
    status: str | None
    date: date | None
    item_id: int | None
    note: str | None
    actor: str
    at: datetime

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "siren": self.siren,
            "status": self.status,
            "date": _iso(self.date),
            "item_id": self.item_id,
            "note": self.note,
            "actor": self.actor,
            "at": self.at.isoformat(),
        }


@dataclass
class ContractStatus:
    """One contract in the tracker."""

    contract: Contract
    status: Status
    date: date | None
    #: Who says so: "staff", "classifier", or None (no news).
    source: str | None
    #: Newest first.
    evidence: list[Evidence] = field(default_factory=list)
    decision: Decision | None = None
    qpv: list[Qpv] = field(default_factory=list)

    @property
    def label(self) -> str:
        return STATUS_LABELS[self.status]

    def evidence_urls(self) -> list[str]:
        seen: list[str] = []
        for ev in self.evidence:
            if ev.url and ev.url not in seen:
                seen.append(ev.url)
        return seen

    def as_dict(self) -> dict[str, Any]:
        c = self.contract
        return {
            "siren": c.siren,
            "commune": c.commune,
            "name": c.name,
            "department": c.department,
            "status": self.status,
            "date": _iso(self.date),
            "source": self.source,
            "note": self.decision.note if self.decision else None,
            "evidence": [ev.as_dict() for ev in self.evidence],
            "qpv": [
                {"code": p.code, "name": p.name, "communes": list(p.communes)} for p in self.qpv
            ],
        }


@dataclass
class Tracker:
    """Every listed contract with its status."""

    title: str
    #: How many contracts the region expects (``expected``).
    total: int
    contracts: list[ContractStatus]

    @property
    def listed(self) -> int:
        return len(self.contracts)

    def count(self, status: str) -> int:
        return sum(1 for c in self.contracts if c.status == status)

    def counts(self) -> dict[str, int]:
        return {s: self.count(s) for s in STATUSES}

    def as_dict(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "expected": self.total,
            "listed": self.listed,
            "counts": self.counts(),
            "contracts": [c.as_dict() for c in self.contracts],
        }


def _iso(value: date | None) -> str | None:
    return value.isoformat() if value else None


# -- pure functions ------------------------------------------------------------------


def evidence_by_carrier(rows: Iterable[Mapping[str, Any]]) -> dict[str, list[Evidence]]:
    """Classified items (id, title, outlet, link, published_at, contract) by carrier SIREN.

    Only 2024-2030 Hauts-de-France news with a status-giving event counts.
    """
    out: dict[str, list[Evidence]] = {}
    for row in rows:
        contract = row.get("contract")
        if not isinstance(contract, Mapping):
            continue
        event = contract.get("event")
        if (
            contract.get("generation") != GENERATION
            or contract.get("region") != REGION
            or event not in EVENT_STATUS
        ):
            continue
        ev = _evidence(row, event=str(event), event_date=_as_date(contract.get("event_date")))
        carriers = contract.get("carriers") or []
        sirens = {str(c.get("siren")) for c in carriers if isinstance(c, Mapping)}
        for siren in sorted(sirens):
            out.setdefault(siren, []).append(ev)
    return out


def _evidence(
    row: Mapping[str, Any],
    *,
    event: str | None,
    event_date: date | None,
    origin: str = "classifier",
) -> Evidence:
    return Evidence(
        item_id=int(row["id"]),
        title=str(row.get("title_edited") or row.get("title") or ""),
        outlet=row.get("outlet"),
        url=http_url(row.get("link")) or http_url(row.get("url")),
        published=_as_date(row.get("published_at")),
        event=event,
        event_date=event_date,
        origin=origin,
    )


def _newest_first(evidence: Iterable[Evidence]) -> list[Evidence]:
    return sorted(evidence, key=lambda e: (e.when or date.min, e.item_id), reverse=True)


def derive_status(
    contract: Contract,
    evidence: Sequence[Evidence],
    decision: Decision | None = None,
    staff_evidence: Evidence | None = None,
    qpv: Sequence[Qpv] = (),
) -> ContractStatus:
    """The status of one contract from its evidence and the staff decision in force.

    A staff decision (status not None) wins. Otherwise the most advanced stage
    among the evidence (signed > adopted > in preparation) gives the status,
    and its date is the earliest event date the items of that stage give (the
    earliest publication date when none gives one); no evidence: ``no_news``.
    """
    ordered = _newest_first(evidence)
    if staff_evidence is not None:
        ordered = [staff_evidence, *[e for e in ordered if e.item_id != staff_evidence.item_id]]
    if decision is not None and decision.status is not None:
        status = _status(decision.status)
        return ContractStatus(
            contract, status, decision.date, "staff", ordered, decision, list(qpv)
        )
    if not evidence:
        return ContractStatus(contract, "no_news", None, None, ordered, decision, list(qpv))
    best = max((EVENT_STATUS[e.event] for e in evidence if e.event), key=lambda s: RANK[s])
    stage = [e for e in evidence if e.event and EVENT_STATUS[e.event] == best]
    dates = [e.event_date for e in stage if e.event_date]
    when = min(dates) if dates else min((e.published for e in stage if e.published), default=None)
    return ContractStatus(contract, best, when, "classifier", ordered, decision, list(qpv))


def _status(value: str) -> Status:
    for status in STATUSES:
        if status == value:
            return status
    return "no_news"


def merge_qpv(contract: Contract, imported: Iterable[Mapping[str, Any]]) -> list[Qpv]:
    """The contract's QPV: those written in the file, then the imported ones (by code)."""
    by_code = {p.code: p for p in contract.qpv}
    for row in imported:
        by_code[str(row["code"])] = Qpv(
            code=str(row["code"]),
            name=str(row["name"]),
            communes=tuple(str(c) for c in row.get("communes") or ()),
        )
    return [by_code[k] for k in sorted(by_code)]


def build_tracker(
    settings: ContractsSettings,
    rows: Iterable[Mapping[str, Any]],
    decisions: Iterable[Decision] = (),
    *,
    staff_items: Mapping[int, Mapping[str, Any]] | None = None,
    qpv_rows: Iterable[Mapping[str, Any]] = (),
    department: str | None = None,
) -> Tracker:
    """The tracker from plain values: classified item rows, decisions (oldest first), QPV rows."""
    evidence = evidence_by_carrier(rows)
    in_force: dict[str, Decision] = {}
    for d in decisions:
        in_force[d.siren] = d
    qpv_by_siren: dict[str, list[Mapping[str, Any]]] = {}
    for row in qpv_rows:
        qpv_by_siren.setdefault(str(row["siren"]), []).append(row)
    out: list[ContractStatus] = []
    for contract in settings.listed:
        if department and contract.department != department:
            continue
        decision = in_force.get(contract.siren)
        staff_ev = None
        if decision is not None and decision.status and decision.item_id is not None:
            item = (staff_items or {}).get(decision.item_id)
            if item is not None:
                staff_ev = _evidence(item, event=None, event_date=decision.date, origin="staff")
        out.append(
            derive_status(
                contract,
                evidence.get(contract.siren, []),
                decision,
                staff_ev,
                merge_qpv(contract, qpv_by_siren.get(contract.siren, [])),
            )
        )
    return Tracker(title=settings.title, total=settings.total, contracts=out)


def _decision(row: Mapping[str, Any]) -> Decision:
    return Decision(
        id=int(row["id"]),
        siren=str(row["siren"]),
        status=row["status"],
        date=_as_date(row["decided_on"]),
        item_id=row["item_id"],
        note=row["note"],
        actor=str(row["actor"]),
        at=row["at"],
    )


# -- with the store ----------------------------------------------------------------------


def _require_enabled(config: Config) -> ContractsSettings:
    if not config.contracts.enabled:
        raise Refused("the contracts tracker is off (contracts.enabled: false in feeds.yaml)")
    return config.contracts


def load_tracker(config: Config, store: Store, *, department: str | None = None) -> Tracker:
    """The tracker as the store says now."""
    settings = _require_enabled(config)
    with store.connect() as conn:
        return tracker_from(conn, settings, department=department)


def tracker_from(
    conn: Connection, settings: ContractsSettings, *, department: str | None = None
) -> Tracker:
    """The tracker read on an open connection (the classified items only)."""
    rows = q.classified_items(conn)
    decision_rows = [_decision(r) for r in q.decisions(conn)]
    wanted = {d.item_id for d in decision_rows if d.item_id is not None}
    staff_items = {i: r for i in wanted if (r := q.item_brief(conn, i)) is not None}
    return build_tracker(
        settings,
        rows,
        decision_rows,
        staff_items=staff_items,
        qpv_rows=q.qpv_rows(conn),
        department=department,
    )


def _require_contract(settings: ContractsSettings, siren: str) -> Contract:
    contract = settings.contract(siren.strip())
    if contract is None:
        raise NotFound(
            f"{siren}: no listed contract has this SIREN (see `pressreview contracts list`)"
        )
    return contract


def set_status(
    config: Config,
    store: Store,
    siren: str,
    *,
    status: str | None,
    on: date | None = None,
    evidence_item: int | None = None,
    note: str | None = None,
    actor: str,
) -> ContractStatus:
    """Record a staff decision (``status`` None clears the decision in force); audited."""
    settings = _require_enabled(config)
    contract = _require_contract(settings, siren)
    if status is not None and status not in STATUSES:
        raise UsageError(f"--status: {status!r} is not one of {', '.join(STATUSES)}")
    if status is None and (on or evidence_item or note):
        raise UsageError("--clear takes no --date, --evidence or --note")
    stamp = utc_now()
    with store.begin() as conn:
        previous = [_decision(r) for r in q.decisions(conn, contract.siren)]
        if status is None and (not previous or previous[-1].status is None):
            raise Refused(f"{contract.siren}: no staff decision in force to clear")
        if evidence_item is not None and q.item_brief(conn, evidence_item) is None:
            raise NotFound(f"--evidence: no item {evidence_item} (see `pressreview items list`)")
        q.add_decision(
            conn,
            siren=contract.siren,
            status=status,
            decided_on=on,
            item_id=evidence_item,
            note=note,
            actor=actor,
            at=stamp,
        )
        add_event(
            conn,
            actor=actor,
            action="contract.clear" if status is None else "contract.set",
            item_id=evidence_item,
            at=stamp,
            details={
                "siren": contract.siren,
                "name": contract.name,
                "status": status,
                "date": _iso(on),
                "note": note,
                "before": previous[-1].status if previous else None,
            },
        )
    tracker = load_tracker(config, store)
    return next(c for c in tracker.contracts if c.contract.siren == contract.siren)


@dataclass
class History:
    """A contract's status, with every piece of evidence and every staff decision."""

    current: ContractStatus
    #: Every classified item about the contract (2024-2030, Hauts-de-France), newest first.
    items: list[Evidence]
    #: Staff decisions, oldest first.
    decisions: list[Decision]

    def as_dict(self) -> dict[str, Any]:
        return {
            **self.current.as_dict(),
            "items": [e.as_dict() for e in self.items],
            "decisions": [d.as_dict() for d in self.decisions],
        }


def history(config: Config, store: Store, siren: str) -> History:
    """What the classifier found and what staff decided about one contract."""
    settings = _require_enabled(config)
    contract = _require_contract(settings, siren)
    tracker = load_tracker(config, store)
    current = next(c for c in tracker.contracts if c.contract.siren == contract.siren)
    with store.connect() as conn:
        rows = q.classified_items(conn)
        decision_rows = [_decision(r) for r in q.decisions(conn, contract.siren)]
    related: list[Evidence] = []
    for row in rows:
        cls = row.get("contract")
        if not isinstance(cls, Mapping):
            continue
        sirens = {str(c.get("siren")) for c in cls.get("carriers") or [] if isinstance(c, Mapping)}
        if contract.siren not in sirens:
            continue
        if cls.get("generation") != GENERATION or cls.get("region") != REGION:
            continue
        event = cls.get("event")
        related.append(
            _evidence(
                row,
                event=str(event) if event else None,
                event_date=_as_date(cls.get("event_date")),
            )
        )
    return History(current=current, items=_newest_first(related), decisions=decision_rows)


# -- the snapshot block and the exports ----------------------------------------------------


def tracker_url(config: Config) -> str:
    """The archive's tracker page."""
    return urls.contracts_url(config)


#: Names of the départements of Hauts-de-France (others are shown by code).
DEPARTMENT_NAMES = {
    "02": "Aisne",
    "59": "Nord",
    "60": "Oise",
    "62": "Pas-de-Calais",
    "80": "Somme",
}


def snapshot_block(
    config: Config, tracker: Tracker, previous: Mapping[str, Any] | None
) -> dict[str, Any]:
    """The tracker as an issue freezes it (``snapshot["contracts"]``, docs/contracts.md).

    Counts, every contract with its status, date and evidence links, and what
    changed since ``previous`` (the block of the previous published issue;
    None: nothing to compare, every signed or adopted contract is new).
    """
    before = (previous or {}).get("states") or {}
    changes: list[dict[str, Any]] = []
    rows: list[dict[str, Any]] = []
    for c in tracker.contracts:
        links: list[dict[str, Any]] = [
            {
                "item_id": e.item_id,
                "title": e.title,
                "outlet": e.outlet,
                "url": e.url,
                "event": e.event,
            }
            for e in c.evidence
            if e.url
        ]
        row = {
            "siren": c.contract.siren,
            "commune": c.contract.commune,
            "name": c.contract.name,
            "department": c.contract.department,
            "status": c.status,
            "label": c.label,
            "date": _iso(c.date),
            "source": c.source,
            "evidence": links,
        }
        rows.append(row)
        old = before.get(c.contract.siren) or {}
        if (
            c.status in ("signed", "adopted")
            and RANK.get(str(old.get("status")), 0) < RANK[c.status]
        ):
            # The link of the change: evidence of that very stage (staff's first), else any.
            first = next(
                (
                    link
                    for link in links
                    if link["event"] is None or EVENT_STATUS.get(str(link["event"])) == c.status
                ),
                links[0] if links else {},
            )
            changes.append(
                {
                    **{k: row[k] for k in ("siren", "name", "department", "status", "label")},
                    "date": row["date"],
                    "url": first.get("url"),
                    "outlet": first.get("outlet"),
                }
            )
    changes.sort(key=lambda ch: (ch["status"] != "signed", ch["date"] or "", ch["name"]))
    return {
        "title": tracker.title,
        "email": config.contracts.email_block,
        "expected": tracker.total,
        "listed": tracker.listed,
        "counts": tracker.counts(),
        "states": {r["siren"]: {"status": r["status"], "date": r["date"]} for r in rows},
        "changes": changes,
        # The first issue with the block lists what is signed so far, not a change.
        "first": previous is None,
        "contracts": rows,
        "url": tracker_url(config),
    }


def issue_block(config: Config, conn: Connection) -> dict[str, Any] | None:
    """The block an issue published now freezes (None when the tracker is off)."""
    settings = config.contracts
    if not settings.enabled or not settings.listed:
        return None
    return snapshot_block(config, tracker_from(conn, settings), q.previous_block(conn))


def page_groups(block: Mapping[str, Any]) -> list[dict[str, Any]]:
    """A frozen block's contracts grouped by département (the archive page)."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for row in block.get("contracts") or []:
        safe = dict(row)
        safe["evidence"] = [e for e in row.get("evidence") or [] if http_url(e.get("url"))]
        groups.setdefault(str(row.get("department")), []).append(safe)
    return [
        {"code": code, "name": DEPARTMENT_NAMES.get(code, code), "contracts": rows}
        for code, rows in sorted(groups.items())
    ]


EXPORT_FIELDS = ("siren", "commune", "name", "department", "status", "date", "evidence_urls")


def export_rows(block: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One flat row per contract of a frozen block (the CSV and JSON exports)."""
    return [
        {
            "siren": row["siren"],
            "commune": row.get("commune") or "",
            "name": row["name"],
            "department": row["department"],
            "status": row["status"],
            "date": row.get("date") or "",
            "evidence_urls": list(
                dict.fromkeys(u for e in row.get("evidence") or [] if (u := http_url(e.get("url"))))
            ),
        }
        for row in block.get("contracts") or []
    ]


def export_csv(block: Mapping[str, Any]) -> str:
    """CSV for spreadsheets: evidence URLs separated by spaces in one column."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=EXPORT_FIELDS, lineterminator="\r\n")
    writer.writeheader()
    for row in export_rows(block):
        writer.writerow({**row, "evidence_urls": " ".join(row["evidence_urls"])})
    return buffer.getvalue()


def export_json(block: Mapping[str, Any]) -> str:
    """JSON for map tools and scripts."""
    data = {
        "title": block.get("title"),
        "expected": block.get("expected"),
        "listed": block.get("listed"),
        "counts": block.get("counts"),
        "contracts": export_rows(block),
    }
    return json.dumps(data, ensure_ascii=False, indent=2) + "\n"


# -- the contracts file and the QPV import ----------------------------------------------------


def init_file(config: Config, target: str | None) -> Path:
    """Copy the shipped list to ``target`` (default: contracts.yaml beside feeds.yaml)."""
    path = config.resolve(target or "contracts.yaml")
    if path.exists():
        raise Refused(f"{path}: exists already; give another path")
    try:
        shutil.copyfile(DEFAULT_CONTRACTS_FILE, path)
    except OSError as exc:
        raise UsageError(f"{path}: cannot write: {exc.strerror or exc}") from None
    return path


@dataclass
class QpvImport:
    """What an import of ANCT's QPV file did (or would do, with dry_run)."""

    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    #: One line per QPV of the contracts' départements that no listed contract carries.
    unattributed: list[str] = field(default_factory=list)
    #: QPV of other départements (not read further).
    elsewhere: int = 0
    dry_run: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "added": self.added,
            "changed": self.changed,
            "removed": self.removed,
            "unattributed": self.unattributed,
            "elsewhere": self.elsewhere,
            "dry_run": self.dry_run,
        }


def _read_geojson(path: Path) -> list[Mapping[str, Any]]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(f"{path}: file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: cannot read: {exc}") from None
    except json.JSONDecodeError as exc:
        raise UsageError(f"{path}: not JSON (line {exc.lineno}: {exc.msg})") from None
    if not isinstance(data, Mapping) or data.get("type") != "FeatureCollection":
        raise UsageError(f"{path}: not a GeoJSON FeatureCollection")
    features = data.get("features")
    if not isinstance(features, list):
        raise UsageError(f"{path}: features: must be a list")
    props: list[Mapping[str, Any]] = []
    for i, feature in enumerate(features):
        p = feature.get("properties") if isinstance(feature, Mapping) else None
        if not isinstance(p, Mapping):
            raise UsageError(f"{path}: features[{i}]: no properties")
        missing = [c for c in QPV_COLUMNS if c not in p]
        if missing:
            raise UsageError(
                f"{path}: features[{i}]: missing column(s) {', '.join(missing)} "
                f"(ANCT's file has {', '.join(QPV_COLUMNS)})"
            )
        props.append(p)
    return props


def _text(value: Any) -> str:
    return "" if value is None else str(value).strip()


def import_qpv(
    config: Config,
    store: Store,
    path: Path,
    *,
    actor: str,
    dry_run: bool = False,
    strict: bool = False,
) -> QpvImport:
    """Attribute the QPV of ANCT's national file to the listed contracts; all or nothing.

    A QPV goes to the contract whose SIREN is its ``siren_epci``, else to the
    contract carried by one of its communes (``insee_com``, codes separated by
    commas) or by one of its communes' EPCI (official division). QPV of
    départements without a listed contract are skipped; QPV of those
    départements that no contract carries are reported (and refuse the whole
    import with ``strict``). A malformed file or column, an unknown SIREN or
    commune refuses the whole import: nothing is written.
    """
    settings = _require_enabled(config)
    geo = load_geography()
    props = _read_geojson(path)
    departments = {c.department for c in settings.listed}
    by_siren = {c.siren: c for c in settings.listed}
    by_commune = {c.commune: c for c in settings.listed if c.commune}
    report = QpvImport(dry_run=dry_run)
    wanted: dict[str, dict[str, Any]] = {}
    for i, p in enumerate(props):
        where = f"{path}: features[{i}]"
        department = _text(p["insee_dep"])
        if department not in departments:
            report.elsewhere += 1
            continue
        code = _text(p["code_qp"])
        if not qpv_code_ok(code):
            raise UsageError(f"{where}.code_qp: {code!r} is not a QPV code (like QN05901M)")
        if code in wanted:
            raise UsageError(f"{where}.code_qp: {code} appears twice in the file")
        name = _text(p["lib_qp"])
        if not name:
            raise UsageError(f"{where}.lib_qp: empty name for {code}")
        siren = _text(p["siren_epci"])
        if not siren_ok(siren):
            raise UsageError(f"{where}.siren_epci: {siren!r} is not a SIREN (9 digits, checksum)")
        if siren not in geo.epcis:
            raise UsageError(
                f"{where}.siren_epci: unknown SIREN {siren}: no EPCI of {geo.region_name} "
                f"has it in the official division ({geo.source} {geo.version})"
            )
        communes = tuple(c.strip() for c in _text(p["insee_com"]).split(",") if c.strip())
        if not communes:
            raise UsageError(f"{where}.insee_com: no commune for {code}")
        unknown = [c for c in communes if c not in geo.communes]
        if unknown:
            raise UsageError(
                f"{where}.insee_com: {', '.join(unknown)} is no commune of {geo.region_name}"
            )
        # By the QPV's EPCI, else by a commune that carries a contract or whose EPCI does.
        contract = by_siren.get(siren) or next(
            (
                found
                for c in communes
                if (found := by_commune.get(c) or by_siren.get(geo.communes[c].epci or ""))
            ),
            None,
        )
        if contract is None:
            report.unattributed.append(
                f"{code} {name} ({_text(p['lib_com'])}, {department}): its EPCI {siren} "
                "carries no listed contract, nor does any of its communes"
            )
            continue
        wanted[code] = {
            "code": code,
            "name": name,
            "siren": contract.siren,
            "department": department,
            "communes": list(communes),
        }
    if strict and report.unattributed:
        raise Refused(
            f"{path}: {len(report.unattributed)} QPV attributed to no listed contract "
            f"(first: {report.unattributed[0]}); nothing imported"
        )
    stamp = utc_now()
    with store.begin() as conn:
        existing = {str(r["code"]): r for r in q.qpv_rows(conn)}
        added = [dict(v, imported_at=stamp) for k, v in wanted.items() if k not in existing]
        changed = [
            dict(v, imported_at=stamp)
            for k, v in wanted.items()
            if k in existing
            and any(existing[k][f] != v[f] for f in ("name", "siren", "department", "communes"))
        ]
        removed = sorted(k for k in existing if k not in wanted)
        report.added = sorted(r["code"] for r in added)
        report.changed = sorted(r["code"] for r in changed)
        report.removed = removed
        if not dry_run:
            q.replace_qpv(conn, added, changed, removed)
            add_event(
                conn,
                actor=actor,
                action="contract.import_qpv",
                at=stamp,
                details={
                    "file": str(path),
                    "added": len(added),
                    "changed": len(changed),
                    "removed": len(removed),
                    "unattributed": len(report.unattributed),
                },
            )
    return report
