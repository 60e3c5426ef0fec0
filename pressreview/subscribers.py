"""Subscribers: who receives the newsletter, with the proof of their consent.

Statuses: ``pending`` (asked through the form, awaiting the confirmation link),
``active``, ``unsubscribed``, ``bounced`` (a server said the address does not
exist). Addresses are checked for syntax only (email-validator, no DNS) and are
unique case-insensitively (``email_key``). Consent is recorded: when and how
(``form``, ``import``, ``staff``) with a short detail, and every change of consent
is appended to the consent history (``consent_events``). ``export_subscribers``
gives a person's data (GDPR right of access); ``remove_subscriber(forget=True)``
erases it (the row is deleted, delivery rows keep only counts).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from email_validator import EmailNotValidError, validate_email

from pressreview.errors import DuplicateKey, NotFound, Refused, UsageError
from pressreview.store import Connection, Store
from pressreview.store import signup as queue_db
from pressreview.store import subscribers as db
from pressreview.store.schema import now
from pressreview.text import valid_text
from pressreview.tokens import address_digest

STATUSES = db.STATUSES
CONSENT_METHODS = ("form", "import", "staff")
#: A pending address gets at most one confirmation email in this time.
CONFIRMATION_RESEND_AFTER = timedelta(minutes=10)
#: ``consent_events.detail`` of a withdrawal, by the way it was made.
WITHDRAWAL_DETAILS = {
    "link": "unsubscribe page of an email",
    "one-click": "RFC 8058 one-click unsubscribe (List-Unsubscribe-Post)",
}


class InvalidAddress(UsageError):
    """An address that is not a valid email address."""


@dataclass(frozen=True)
class Subscriber:
    id: int
    email: str
    name: str | None
    status: str
    consent_at: datetime | None
    consent_method: str | None
    consent_detail: str | None
    created_at: datetime
    updated_at: datetime
    confirmed_at: datetime | None
    unsubscribed_at: datetime | None
    last_error: str | None

    @property
    def email_key(self) -> str:
        return email_key(self.email)

    @classmethod
    def of(cls, row: db.SubscriberRow) -> Subscriber:
        return cls(
            id=row["id"],
            email=row["email"],
            name=row["name"],
            status=row["status"],
            consent_at=row["consent_at"],
            consent_method=row["consent_method"],
            consent_detail=row["consent_detail"],
            created_at=row["created_at"],
            updated_at=row["updated_at"],
            confirmed_at=row["confirmed_at"],
            unsubscribed_at=row["unsubscribed_at"],
            last_error=row["last_error"],
        )

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def normalize_email(address: str) -> str:
    """The address as stored: syntax-checked, domain lower-cased (IDN as ASCII).

    Raises InvalidAddress with the reason. Addresses whose local part is not
    ASCII (they need SMTPUTF8) are refused: few servers accept them.
    """
    candidate = (address or "").strip()
    if not candidate:
        raise InvalidAddress("empty address")
    try:
        result = validate_email(candidate, check_deliverability=False, allow_smtputf8=False)
    except EmailNotValidError as exc:
        raise InvalidAddress(f"{candidate!r} is not a valid email address: {exc}") from None
    return str(result.ascii_email or result.normalized)


def email_key(address: str) -> str:
    """The unique, case-insensitive form of a stored address."""
    return address.strip().casefold()


def _clean_name(name: str | None) -> str | None:
    """A name as stored: one line, no control character (a terminal would obey an
    escape sequence in it when the staff list subscribers), at most 200 characters."""
    if name is None:
        return None
    name = " ".join(valid_text(name).split())
    return name[:200] or None


# -- reading ---------------------------------------------------------------------------


def get_subscriber(store: Store, address: str) -> Subscriber:
    key = email_key(normalize_email(address))
    with store.connect() as conn:
        row = db.get_by_key(conn, key)
    if row is None:
        raise NotFound(f"{address}: no such subscriber (see `pressreview subscribers list`)")
    return Subscriber.of(row)


def list_subscribers(store: Store, *, status: str | None = None) -> list[Subscriber]:
    if status is not None and status not in STATUSES:
        raise UsageError(f"unknown status {status!r} (one of {', '.join(STATUSES)})")
    with store.connect() as conn:
        return [Subscriber.of(row) for row in db.list_subscribers(conn, status)]


def count_subscribers(store: Store) -> dict[str, int]:
    with store.connect() as conn:
        counts = db.count_by_status(conn)
    return {status: counts.get(status, 0) for status in STATUSES}


def export_subscribers(store: Store, address: str | None = None) -> list[dict[str, Any]]:
    """Everything stored about one subscriber (GDPR access) or about everyone.

    For one subscriber the result also holds the delivery history and the
    events of the audit log about them.
    """
    if address is None:
        return [s.as_dict() for s in list_subscribers(store)]
    subscriber = get_subscriber(store, address)
    with store.connect() as conn:
        history = [dict(row) for row in db.delivery_history(conn, subscriber.id)]
        events = [
            {
                "at": row["at"],
                "actor": row["actor"],
                "action": row["action"],
                "details": row["details"],
            }
            for row in db.subscriber_events(conn, subscriber.id)
        ]
        consent = [dict(row) for row in db.consent_history(conn, subscriber.id)]
        confirmations = [dict(row) for row in queue_db.of_subscriber(conn, subscriber.id)]
    return [
        {
            **subscriber.as_dict(),
            "consent_history": consent,
            "confirmation_emails": confirmations,
            "deliveries": history,
            "events": events,
        }
    ]


EXPORT_COLUMNS = (
    "email",
    "name",
    "status",
    "consent_at",
    "consent_method",
    "consent_detail",
    "created_at",
    "confirmed_at",
    "unsubscribed_at",
    "last_error",
)


def export_csv(records: Iterable[dict[str, Any]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(EXPORT_COLUMNS)
    for record in records:
        writer.writerow(
            ["" if record.get(c) is None else _csv_value(record[c]) for c in EXPORT_COLUMNS]
        )
    return out.getvalue()


#: A cell starting with one of these is read as a formula by spreadsheets
#: (``=HYPERLINK(...)`` in a name typed into the public form).
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _csv_value(value: Any) -> str:
    text = value.isoformat() if isinstance(value, datetime) else str(value)
    # Quoted so that a spreadsheet shows it as text (import_subscribers removes the quote).
    return "'" + text if text.startswith(_FORMULA_STARTS) else text


def _csv_cell(cell: str) -> str:
    """A cell of an imported file, without the quote that export_csv put before a formula."""
    cell = cell.strip()
    if cell.startswith("'") and cell[1:].startswith(_FORMULA_STARTS):
        return cell[1:]
    return cell


# -- staff changes ---------------------------------------------------------------------


def add_subscriber(
    store: Store,
    address: str,
    *,
    name: str | None = None,
    actor: str,
    method: str = "staff",
    detail: str | None = None,
) -> Subscriber:
    """Add an active subscriber on the staff's word (consent recorded as ``method``)."""
    email = normalize_email(address)
    key = email_key(email)
    stamp = now()
    with store.begin() as conn:
        existing = db.get_by_key(conn, key)
        if existing is not None:
            raise Refused(_already(existing))
        try:
            sid = db.insert_subscriber(
                conn,
                email=email,
                email_key=key,
                name=_clean_name(name),
                status="active",
                consent_method=method,
                consent_detail=detail or f"added by {actor}",
                consent_at=stamp,
                at=stamp,
            )
        except DuplicateKey:
            raise Refused(f"{email} is already a subscriber") from None
        db.record_consent(
            conn,
            sid,
            event="given",
            method=method,
            detail=detail or f"added by {actor}",
            actor=actor,
            at=stamp,
        )
        db.record_event(
            conn,
            actor=actor,
            action="subscriber.add",
            subscriber_id=sid,
            details={"method": method},
        )
        row = db.get_by_id(conn, sid)
    assert row is not None
    return Subscriber.of(row)


def _already(row: db.SubscriberRow) -> str:
    status = row["status"]
    if status == "unsubscribed":
        return (
            f"{row['email']} unsubscribed on {row['unsubscribed_at']:%Y-%m-%d}; "
            "they can subscribe again through the form (their consent is needed)"
        )
    return f"{row['email']} is already a subscriber ({status})"


@dataclass
class ImportReport:
    added: int = 0
    already: int = 0
    refused: list[tuple[int, str]] = field(
        default_factory=list
    )  # (line, reason) for left-out addresses
    bad: list[tuple[int, str]] = field(default_factory=list)  # (line, reason)
    encoding: str = "utf-8"

    def as_dict(self) -> dict[str, Any]:
        return {
            "added": self.added,
            "already": self.already,
            "refused": [{"line": n, "reason": r} for n, r in self.refused],
            "bad": [{"line": n, "reason": r} for n, r in self.bad],
            "encoding": self.encoding,
        }


def _read_text(path: Path) -> tuple[str, str]:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise NotFound(f"{path}: file not found") from None
    except OSError as exc:
        raise UsageError(f"{path}: cannot read: {exc.strerror}") from None
    try:
        return raw.decode("utf-8-sig"), "utf-8"
    except UnicodeDecodeError:
        return raw.decode("cp1252", errors="replace"), "cp1252"  # Excel's French default


def import_subscribers(store: Store, path: str | Path, *, actor: str) -> ImportReport:
    """Import a CSV file (``email`` column, optional ``name``; ``,`` or ``;``).

    Bad lines are reported with their line number and the reason; good lines
    are imported as active subscribers (consent: ``import``). Importing the
    same file again adds nothing. Addresses that unsubscribed are left out.
    A file without a header line is read as email[,name].
    """
    path = Path(path)
    text, encoding = _read_text(path)
    report = ImportReport(encoding=encoding)
    lines = text.splitlines()
    if not any(line.strip() for line in lines):
        raise UsageError(f"{path}: the file is empty")
    try:
        dialect: Any = csv.Sniffer().sniff(text[:4096], delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    reader = csv.reader(io.StringIO(text), dialect)
    email_col, name_col = 0, 1
    candidates: list[tuple[int, str, str | None]] = []
    seen: dict[str, int] = {}
    first = True
    for cells_raw in reader:
        line = reader.line_num
        cells = [_csv_cell(c) for c in cells_raw]
        if not any(cells):
            continue
        if first:
            first = False
            lowered = [c.casefold() for c in cells]
            header = next(
                (
                    i
                    for i, c in enumerate(lowered)
                    if c in ("email", "e-mail", "courriel", "mail", "adresse")
                ),
                None,
            )
            if header is not None:
                email_col = header
                name_col = next(
                    (i for i, c in enumerate(lowered) if c in ("name", "nom", "nom complet")), -1
                )
                continue
        value = cells[email_col] if email_col < len(cells) else ""
        try:
            email = normalize_email(value)
        except InvalidAddress as exc:
            report.bad.append((line, str(exc)))
            continue
        key = email_key(email)
        if key in seen:
            report.bad.append((line, f"{email} is a repeat of line {seen[key]}"))
            continue
        seen[key] = line
        name = cells[name_col] if 0 <= name_col < len(cells) else None
        candidates.append((line, email, _clean_name(name)))
    stamp = now()
    detail = f"imported by {actor} from {path.name}"
    new_rows: list[dict[str, Any]] = []
    with store.begin() as conn:
        existing = db.existing_keys(conn, [email_key(e) for _, e, _ in candidates])
        for line, email, name in candidates:
            known = existing.get(email_key(email))
            if known is not None:
                if known["status"] in ("unsubscribed", "bounced"):
                    report.refused.append((line, f"{email}: {known['status']}, not re-added"))
                else:
                    report.already += 1
                continue
            new_rows.append(
                {
                    "email": email,
                    "email_key": email_key(email),
                    "name": name,
                    "status": "active",
                    "consent_at": stamp,
                    "consent_method": "import",
                    "consent_detail": f"{detail}, line {line}",
                    "created_at": stamp,
                    "updated_at": stamp,
                    "confirmed_at": stamp,
                }
            )
        ids = db.insert_many(conn, new_rows, actor=actor, action="subscriber.import")
        db.record_consent_many(
            conn,
            [
                {
                    "subscriber_id": ids[r["email_key"]],
                    "at": stamp,
                    "event": "given",
                    "method": "import",
                    "detail": r["consent_detail"],
                    "actor": actor,
                }
                for r in new_rows
            ],
        )
        report.added = len(new_rows)
    return report


def remove_subscriber(
    store: Store, address: str, *, actor: str, forget: bool = False
) -> Subscriber:
    """Unsubscribe someone (the row stays as the record of consent and withdrawal),
    or with ``forget`` erase their personal data (GDPR right to erasure)."""
    subscriber = get_subscriber(store, address)
    with store.begin() as conn:
        if forget:
            anonymized = db.forget_subscriber(conn, subscriber.id)
            db.record_event(
                conn,
                actor=actor,
                action="subscriber.forget",
                subscriber_id=None,
                details={"deliveries_anonymized": anonymized},
            )
        else:
            stamp = now()
            if subscriber.status != "unsubscribed":  # the date of withdrawal stays the first
                db.update_subscriber(
                    conn,
                    subscriber.id,
                    status="unsubscribed",
                    unsubscribed_at=stamp,
                    updated_at=stamp,
                )
                db.record_consent(
                    conn,
                    subscriber.id,
                    event="withdrawn",
                    method="staff",
                    detail=f"removed by {actor}",
                    actor=actor,
                    at=stamp,
                )
            db.record_event(
                conn, actor=actor, action="subscriber.remove", subscriber_id=subscriber.id
            )
    return subscriber


# -- the web's double opt-in -----------------------------------------------------------


class ConfirmationSender(Protocol):
    """Sends the double opt-in email (deliver.single.confirmation_sender makes one).

    Passed in by the caller (the sign-up queue's worker), so that this stage
    decides *when* a confirmation is due and the delivery stage *how* it leaves.
    """

    def __call__(self, to: str, confirm_url: str) -> None: ...


def prepare_confirmation(
    conn: Connection, *, email: str, name: str | None, at: datetime, actor: str = "web"
) -> int | None:
    """Decide what a request of the form does; the id to send a confirmation to, or None.

    Unknown address: created ``pending``. Unsubscribed or bounced: back to
    ``pending`` (the consent columns and history are kept). Pending: a new
    confirmation only if none was asked for within CONFIRMATION_RESEND_AFTER and
    none waits in the queue. Active: nothing. Every change is one conditional
    statement, so parallel requests for one address make at most one
    confirmation. Runs inside the caller's transaction (the sign-up queue's).
    """
    key = email_key(email)
    name = _clean_name(name)
    sid = db.insert_pending_if_absent(conn, email=email, email_key=key, name=name, at=at)
    if sid is None:
        row = db.get_by_key(conn, key)
        if row is None or row["status"] == "active":
            return None
        sid = int(row["id"])
        if queue_db.open_for(conn, sid):
            return None
        if not db.request_again(
            conn, sid, name=name, at=at, resend_after=CONFIRMATION_RESEND_AFTER
        ):
            return None
    db.record_consent(
        conn,
        sid,
        event="requested",
        method="form",
        detail="web form, awaiting confirmation",
        actor=actor,
        at=at,
    )
    db.record_event(conn, actor=actor, action="subscriber.request", subscriber_id=sid)
    return sid


def subscription_status(store: Store, subscriber_id: int, digest: str) -> str | None:
    """The status of the subscriber a signed link names ("pending", "active", ...),
    None when it no longer exists or the address changed since the link was made."""
    with store.connect() as conn:
        row = db.get_by_id(conn, subscriber_id)
    if row is None or address_digest(row["email_key"]) != digest:
        return None
    return str(row["status"])


def confirm_subscription(store: Store, subscriber_id: int, digest: str) -> bool:
    """The confirmation link's POST: pending -> active with consent recorded. Idempotent.

    Returns True when the subscriber is active afterwards.
    """
    stamp = now()
    with store.begin() as conn:
        row = db.get_by_id(conn, subscriber_id)
        if row is None or address_digest(row["email_key"]) != digest:
            return False
        if row["status"] == "active":
            return True
        changed = db.set_status_if(
            conn,
            subscriber_id,
            ["pending"],
            status="active",
            confirmed_at=stamp,
            consent_at=stamp,
            consent_detail="web form, confirmed by the emailed link",
            unsubscribed_at=None,
        )
        if changed:
            db.record_consent(
                conn,
                subscriber_id,
                event="confirmed",
                method="form",
                detail="web form, confirmed by the emailed link",
                actor="web",
                at=stamp,
            )
            db.record_event(
                conn, actor="web", action="subscriber.confirm", subscriber_id=subscriber_id
            )
        return changed


def unsubscribe(store: Store, subscriber_id: int, digest: str, *, method: str = "link") -> bool:
    """Unsubscribe at once (link page or RFC 8058 one-click). Idempotent; False for a stranger."""
    stamp = now()
    with store.begin() as conn:
        row = db.get_by_id(conn, subscriber_id)
        if row is None or address_digest(row["email_key"]) != digest:
            return False
        if db.set_status_if(
            conn,
            subscriber_id,
            ["active", "pending", "bounced"],
            status="unsubscribed",
            unsubscribed_at=stamp,
        ):
            db.record_consent(
                conn,
                subscriber_id,
                event="withdrawn",
                method=method,
                detail=WITHDRAWAL_DETAILS.get(method, method),
                actor="web",
                at=stamp,
            )
            db.record_event(
                conn,
                actor="web",
                action="subscriber.unsubscribe",
                subscriber_id=subscriber_id,
                details={"method": method},
            )
        return True
