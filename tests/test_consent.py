"""Consent, state by state: who may be written to, and the record that proves it.

Each way in (staff, import, the form and its confirmation) and out (the
unsubscribe page, one-click, staff, erasure) against each status, with what the
consent history, the audit log and the GDPR export then hold.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from pressreview.config import Config
from pressreview.errors import NotFound, Refused, UsageError
from pressreview.store import Store
from pressreview.store import subscribers as db
from pressreview.subscribers import (
    CONFIRMATION_RESEND_AFTER,
    EXPORT_COLUMNS,
    InvalidAddress,
    add_subscriber,
    confirm_subscription,
    count_subscribers,
    export_csv,
    export_subscribers,
    get_subscriber,
    import_subscribers,
    list_subscribers,
    normalize_email,
    prepare_confirmation,
    remove_subscriber,
    subscription_status,
    unsubscribe,
)
from pressreview.tokens import address_digest

DIGEST = address_digest("marie@example.fr")


@pytest.fixture
def store(
    make_config: Callable[..., Config], store_for: Callable[[Config], Store], store_url: str
) -> Store:
    return store_for(make_config(database_url=store_url))


def _history(store: Store, address: str) -> list[tuple[str, str, str, str]]:
    (record,) = export_subscribers(store, address)
    return [(e["event"], e["method"], e["detail"], e["actor"]) for e in record["consent_history"]]


def _events(store: Store, address: str) -> list[tuple[str, Any]]:
    (record,) = export_subscribers(store, address)
    return [(e["action"], e["details"]) for e in record["events"]]


def _set_status(store: Store, address: str, status: str) -> int:
    sid = get_subscriber(store, address).id
    with store.begin() as conn:
        db.update_subscriber(conn, sid, status=status)
    return sid


def _request(store: Store, address: str, at: datetime | None = None) -> int | None:
    with store.begin() as conn:
        return prepare_confirmation(
            conn, email=address, name=" Marie  Dupont ", at=at or datetime.now(UTC)
        )


def _pending(store: Store, address: str = "marie@example.fr") -> int:
    sid = _request(store, address)
    assert sid is not None
    return sid


# -- ways in ---------------------------------------------------------------------------


def test_staff_adds_with_consent_given(store: Store) -> None:
    marie = add_subscriber(store, "marie@example.fr", actor="claire")
    karim = add_subscriber(
        store, "karim@example.org", actor="claire", method="import", detail="salon 2026"
    )
    assert (marie.status, marie.consent_method, marie.consent_detail) == (
        "active",
        "staff",
        "added by claire",
    )
    assert marie.consent_at is not None and marie.confirmed_at == marie.consent_at
    assert _history(store, "marie@example.fr") == [("given", "staff", "added by claire", "claire")]
    assert _history(store, "karim@example.org") == [("given", "import", "salon 2026", "claire")]
    assert (karim.consent_method, karim.consent_detail) == ("import", "salon 2026")
    assert _events(store, "marie@example.fr") == [("subscriber.add", {"method": "staff"})]
    assert _events(store, "karim@example.org") == [("subscriber.add", {"method": "import"})]


@pytest.mark.parametrize("status", ["active", "pending", "bounced"])
def test_staff_cannot_add_someone_already_known(store: Store, status: str) -> None:
    add_subscriber(store, "marie@example.fr", actor="claire")
    _set_status(store, "marie@example.fr", status)
    with pytest.raises(Refused) as refused:
        add_subscriber(store, "MARIE@example.fr", actor="claire")
    assert str(refused.value) == f"marie@example.fr is already a subscriber ({status})"


def test_staff_cannot_add_back_someone_who_left(store: Store) -> None:
    add_subscriber(store, "marie@example.fr", actor="claire")
    gone = remove_subscriber(store, "marie@example.fr", actor="claire")
    day = get_subscriber(store, "marie@example.fr").unsubscribed_at
    assert gone.status == "active" and day is not None  # what was removed
    with pytest.raises(Refused) as refused:
        add_subscriber(store, "marie@example.fr", actor="claire")
    assert str(refused.value) == (
        f"marie@example.fr unsubscribed on {day:%Y-%m-%d}; "
        "they can subscribe again through the form (their consent is needed)"
    )


def test_the_form_makes_a_pending_request_then_waits(store: Store) -> None:
    now = datetime.now(UTC)
    sid = _request(store, "marie@example.fr", now)
    assert sid is not None
    marie = get_subscriber(store, "marie@example.fr")
    assert (marie.status, marie.name, marie.consent_at) == ("pending", "Marie Dupont", None)
    assert _history(store, "marie@example.fr") == [
        ("requested", "form", "web form, awaiting confirmation", "web")
    ]
    assert _events(store, "marie@example.fr") == [("subscriber.request", {})]
    # asked again within the resend delay: nothing; after it: a new confirmation
    assert _request(store, "marie@example.fr", now + timedelta(minutes=1)) is None
    later = now + CONFIRMATION_RESEND_AFTER + timedelta(minutes=1)
    assert _request(store, "marie@example.fr", later) == sid
    assert [e[0] for e in _history(store, "marie@example.fr")] == ["requested", "requested"]
    assert timedelta(minutes=10) == CONFIRMATION_RESEND_AFTER


@pytest.mark.parametrize(
    ("status", "asks_again"),
    [("active", False), ("unsubscribed", True), ("bounced", True)],
)
def test_the_form_for_a_known_address(store: Store, status: str, asks_again: bool) -> None:
    added = add_subscriber(store, "marie@example.fr", actor="claire", detail="salon 2026")
    _set_status(store, "marie@example.fr", status)
    later = datetime.now(UTC) + timedelta(hours=1)
    assert (_request(store, "marie@example.fr", later) is not None) is asks_again
    after = get_subscriber(store, "marie@example.fr")
    assert after.status == ("pending" if asks_again else status)
    # the consent given earlier stays on record
    assert (after.consent_method, after.consent_detail) == ("staff", "salon 2026")
    assert after.consent_at == added.consent_at
    assert len(_history(store, "marie@example.fr")) == (2 if asks_again else 1)


def test_the_confirmation_link_activates_a_pending_request_once(store: Store) -> None:
    sid = _pending(store)
    assert subscription_status(store, sid, DIGEST) == "pending"
    assert confirm_subscription(store, sid, DIGEST) is True
    marie = get_subscriber(store, "marie@example.fr")
    assert marie.status == "active" and marie.confirmed_at is not None
    assert marie.consent_at == marie.confirmed_at and marie.unsubscribed_at is None
    assert (marie.consent_method, marie.consent_detail) == (
        "form",
        "web form, confirmed by the emailed link",
    )
    assert confirm_subscription(store, sid, DIGEST) is True  # again: nothing new
    assert subscription_status(store, sid, DIGEST) == "active"
    assert _history(store, "marie@example.fr")[-1] == (
        "confirmed",
        "form",
        "web form, confirmed by the emailed link",
        "web",
    )
    assert [e[0] for e in _history(store, "marie@example.fr")] == ["requested", "confirmed"]
    assert [e[0] for e in _events(store, "marie@example.fr")] == [
        "subscriber.request",
        "subscriber.confirm",
    ]


@pytest.mark.parametrize("status", ["unsubscribed", "bounced"])
def test_an_old_confirmation_link_does_not_bring_back_someone_who_left(
    store: Store, status: str
) -> None:
    sid = _pending(store)
    _set_status(store, "marie@example.fr", status)
    assert confirm_subscription(store, sid, DIGEST) is False
    assert get_subscriber(store, "marie@example.fr").status == status
    assert [e[0] for e in _history(store, "marie@example.fr")] == ["requested"]


def test_links_name_a_person_not_only_a_number(store: Store) -> None:
    sid = _pending(store)
    other = address_digest("karim@example.org")
    assert subscription_status(store, sid, other) is None
    assert subscription_status(store, sid + 1000, DIGEST) is None
    assert confirm_subscription(store, sid, other) is False
    assert confirm_subscription(store, sid + 1000, DIGEST) is False
    assert unsubscribe(store, sid, other) is False
    assert unsubscribe(store, sid + 1000, DIGEST) is False
    assert get_subscriber(store, "marie@example.fr").status == "pending"
    assert len(_history(store, "marie@example.fr")) == 1


# -- ways out --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "detail"),
    [
        ("link", "unsubscribe page of an email"),
        ("one-click", "RFC 8058 one-click unsubscribe (List-Unsubscribe-Post)"),
        ("mailbox", "mailbox"),
    ],
)
@pytest.mark.parametrize("status", ["active", "pending", "bounced"])
def test_unsubscribing_is_immediate_and_recorded_once(
    store: Store, method: str, detail: str, status: str
) -> None:
    sid = add_subscriber(store, "marie@example.fr", actor="claire").id
    _set_status(store, "marie@example.fr", status)
    assert unsubscribe(store, sid, DIGEST, method=method) is True
    marie = get_subscriber(store, "marie@example.fr")
    assert marie.status == "unsubscribed" and marie.unsubscribed_at is not None
    assert _history(store, "marie@example.fr")[-1] == ("withdrawn", method, detail, "web")
    assert _events(store, "marie@example.fr")[-1] == (
        "subscriber.unsubscribe",
        {"method": method},
    )
    (record,) = export_subscribers(store, "marie@example.fr")
    assert record["events"][-1]["actor"] == "web"
    assert record["consent_history"][-1]["at"] == marie.unsubscribed_at
    assert unsubscribe(store, sid, DIGEST, method=method) is True  # again: nothing new
    assert [e[0] for e in _history(store, "marie@example.fr")] == ["given", "withdrawn"]
    assert get_subscriber(store, "marie@example.fr").unsubscribed_at == marie.unsubscribed_at


def test_the_link_is_the_default_way_out(store: Store) -> None:
    sid = add_subscriber(store, "marie@example.fr", actor="claire").id
    unsubscribe(store, sid, DIGEST)
    assert _history(store, "marie@example.fr")[-1][1] == "link"


def test_staff_removal_is_recorded_once(store: Store) -> None:
    add_subscriber(store, "marie@example.fr", actor="claire")
    remove_subscriber(store, "marie@example.fr", actor="karim")
    left = get_subscriber(store, "marie@example.fr").unsubscribed_at
    remove_subscriber(store, "marie@example.fr", actor="karim")
    assert get_subscriber(store, "marie@example.fr").unsubscribed_at == left  # the first date
    assert _history(store, "marie@example.fr") == [
        ("given", "staff", "added by claire", "claire"),
        ("withdrawn", "staff", "removed by karim", "karim"),
    ]
    assert _events(store, "marie@example.fr") == [
        ("subscriber.add", {"method": "staff"}),
        ("subscriber.remove", {}),
        ("subscriber.remove", {}),
    ]
    marie = get_subscriber(store, "marie@example.fr")
    assert marie.status == "unsubscribed"
    (record,) = export_subscribers(store, "marie@example.fr")
    assert record["consent_history"][-1]["at"] == marie.unsubscribed_at


def test_erasure_leaves_only_an_anonymous_event(store: Store) -> None:
    add_subscriber(store, "marie@example.fr", name="Marie Dupont", actor="claire")
    karim = add_subscriber(store, "karim@example.org", actor="claire")
    erased = remove_subscriber(store, "marie@example.fr", actor="claire", forget=True)
    assert erased.email == "marie@example.fr"  # what was erased, for the report
    with pytest.raises(NotFound) as missing:
        get_subscriber(store, "marie@example.fr")
    assert str(missing.value) == (
        "marie@example.fr: no such subscriber (see `pressreview subscribers list`)"
    )
    with store.connect() as conn:
        log = db.subscriber_events(conn, 0)
        from sqlalchemy import select

        from pressreview.store.schema import events

        rows = [dict(r) for r in conn.execute(select(events)).mappings()]
    assert log == []
    forget = [r for r in rows if r["action"] == "subscriber.forget"]
    assert len(forget) == 1 and forget[0]["subscriber_id"] is None
    assert forget[0]["actor"] == "claire"
    assert "deliveries_anonymized" in str(forget[0]["details"])
    assert "marie" not in str(rows).lower()
    assert get_subscriber(store, "karim@example.org").id == karim.id


# -- what is given back (GDPR access) --------------------------------------------------


def test_the_export_of_one_person_holds_everything_about_them(store: Store) -> None:
    sid = _pending(store)
    confirm_subscription(store, sid, DIGEST)
    add_subscriber(store, "karim@example.org", actor="claire")
    (record,) = export_subscribers(store, "Marie@Example.fr")
    assert record["email"] == "marie@example.fr" and record["id"] == sid
    assert set(record) >= {
        "name",
        "status",
        "consent_at",
        "consent_method",
        "consent_detail",
        "created_at",
        "updated_at",
        "confirmed_at",
        "unsubscribed_at",
        "last_error",
        "consent_history",
        "confirmation_emails",
        "deliveries",
        "events",
    }
    assert [e["event"] for e in record["consent_history"]] == ["requested", "confirmed"]
    assert record["confirmation_emails"] == [] and record["deliveries"] == []
    assert [set(e) for e in record["events"]] == [{"at", "actor", "action", "details"}] * 2
    assert [e["actor"] for e in record["events"]] == ["web", "web"]
    everyone = export_subscribers(store)
    assert sorted(r["email"] for r in everyone) == ["karim@example.org", "marie@example.fr"]
    assert "consent_history" not in everyone[0]


def test_the_csv_export(store: Store) -> None:
    add_subscriber(store, "marie@example.fr", name="Marie, Dupont", actor="claire")
    text = export_csv(export_subscribers(store))
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == list(EXPORT_COLUMNS) and len(rows) == 2
    assert text.count("\n") == 2 and "\r" not in text
    row = dict(zip(rows[0], rows[1], strict=True))
    marie = get_subscriber(store, "marie@example.fr")
    assert (row["email"], row["name"], row["status"]) == (
        "marie@example.fr",
        "Marie, Dupont",
        "active",
    )
    assert row["consent_at"] == marie.consent_at.isoformat()  # type: ignore[union-attr]
    assert row["confirmed_at"] == marie.confirmed_at.isoformat()  # type: ignore[union-attr]
    assert (row["unsubscribed_at"], row["last_error"]) == ("", "")
    assert export_csv([]) == ",".join(EXPORT_COLUMNS) + "\n"
    assert export_csv([{"email": "a@b.fr", "name": 7}]).splitlines()[1].startswith("a@b.fr,7,")


def test_lists_and_counts_by_status(store: Store) -> None:
    add_subscriber(store, "a@example.fr", actor="claire")
    add_subscriber(store, "b@example.fr", actor="claire")
    remove_subscriber(store, "b@example.fr", actor="claire")
    _pending(store, "c@example.fr")
    assert count_subscribers(store) == {"pending": 1, "active": 1, "unsubscribed": 1, "bounced": 0}
    assert [s.email for s in list_subscribers(store, status="unsubscribed")] == ["b@example.fr"]
    assert len(list_subscribers(store)) == 3
    with pytest.raises(UsageError) as bad:
        list_subscribers(store, status="gone")
    assert str(bad.value) == "unknown status 'gone' (one of pending, active, unsubscribed, bounced)"


# -- addresses and files ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "message"),
    [
        ("", "empty address"),
        ("   ", "empty address"),
        ("marie", "'marie' is not a valid email address: "),
        ("élodie@example.fr", "'élodie@example.fr' is not a valid email address: "),
    ],
)
def test_bad_addresses_say_why(address: str, message: str) -> None:
    with pytest.raises(InvalidAddress) as bad:
        normalize_email(address)
    assert str(bad.value).startswith(message)


@pytest.mark.parametrize(
    ("content", "encoding", "emails", "names"),
    [
        (
            "\ufeffE-mail;Nom complet\nmarie@example.fr;Marie Dupont\n",
            "utf-8",
            ["marie@example.fr"],
            ["Marie Dupont"],
        ),
        ("Adresse\tNom\nmarie@example.fr\tMarie\n", "utf-8", ["marie@example.fr"], ["Marie"]),
        ("nom,mail\nMarie,marie@example.fr\n", "utf-8", ["marie@example.fr"], ["Marie"]),
        ("Courriel\nmarie@example.fr\n", "utf-8", ["marie@example.fr"], [None]),
        (
            "marie@example.fr\nkarim@example.org\n",
            "utf-8",
            ["karim@example.org", "marie@example.fr"],
            [None, None],
        ),
        ("email,name\nmarie@example.fr,   \n", "utf-8", ["marie@example.fr"], [None]),
        (
            "email,name\nmarie@example.fr,José " + "x" * 300 + "\n",
            "utf-8",
            ["marie@example.fr"],
            ["José " + "x" * 195],
        ),
        ("email;nom\nmarie@example.fr;Jérôme\n", "cp1252", ["marie@example.fr"], ["Jérôme"]),
    ],
)
def test_import_reads_the_usual_files(
    store: Store,
    tmp_path: Path,
    content: str,
    encoding: str,
    emails: list[str],
    names: list[str | None],
) -> None:
    path = tmp_path / "contacts.csv"
    path.write_bytes(content.encode(encoding))
    report = import_subscribers(store, path, actor="claire")
    assert (report.added, report.bad, report.encoding) == (len(emails), [], encoding)
    found = list_subscribers(store)
    assert sorted(s.email for s in found) == emails
    assert [s.name for s in sorted(found, key=lambda s: s.email)] == names
    assert all(s.consent_method == "import" and s.status == "active" for s in found)
    assert found[0].consent_detail is not None
    assert found[0].consent_detail.startswith("imported by claire from contacts.csv, line ")


def test_import_goes_on_after_a_repeated_address(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "c.csv"
    path.write_text("email\na@example.fr\nA@example.fr\nb@example.fr\n", "utf-8")
    report = import_subscribers(store, path, actor="claire")
    assert report.added == 2
    assert report.bad == [(3, "A@example.fr is a repeat of line 2")]
    assert [s.email for s in list_subscribers(store)] == ["a@example.fr", "b@example.fr"]


def test_import_leaves_out_the_bounced_and_reports_as_dict(store: Store, tmp_path: Path) -> None:
    add_subscriber(store, "marie@example.fr", actor="claire")
    _set_status(store, "marie@example.fr", "bounced")
    add_subscriber(store, "karim@example.org", actor="claire")
    path = tmp_path / "c.csv"
    path.write_text("email\nmarie@example.fr\nkarim@example.org\nx\n", "utf-8")
    report = import_subscribers(store, path, actor="claire")
    assert report.as_dict() == {
        "added": 0,
        "already": 1,
        "refused": [{"line": 2, "reason": "marie@example.fr: bounced, not re-added"}],
        "bad": [{"line": 4, "reason": report.bad[0][1]}],
        "encoding": "utf-8",
    }
    assert get_subscriber(store, "marie@example.fr").status == "bounced"


@pytest.mark.parametrize(
    ("make", "error", "message"),
    [
        (lambda p: p.write_text("\n \n", "utf-8"), UsageError, "the file is empty"),
        (lambda p: None, NotFound, "file not found"),
        (lambda p: p.mkdir(), UsageError, "cannot read: Is a directory"),
    ],
)
def test_import_of_a_bad_file(
    store: Store, tmp_path: Path, make: Callable[[Path], Any], error: type, message: str
) -> None:
    path = tmp_path / "c.csv"
    make(path)
    with pytest.raises(error) as raised:
        import_subscribers(store, path, actor="claire")
    assert str(raised.value) == f"{path}: {message}"
    assert list_subscribers(store) == []
