"""`send N` against a real SMTP server (aiosmtpd on a free port) and the outbox."""

from __future__ import annotations

import email
import email.policy
import json
import smtplib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.smtp import AuthResult
from sqlalchemy import event

from pressreview.config import Config
from pressreview.deliver.campaign import deliveries_for, send_issue
from pressreview.deliver.transports import _path
from pressreview.errors import DeliveryError
from pressreview.store import Store
from pressreview.subscribers import add_subscriber, get_subscriber, remove_subscriber
from pressreview.tokens import Tokens
from tests.fixtures_deliver import (
    SECRET,
    Setup,
    Sink,
    body_of,
    delivery_env,
    free_port,
    store_setup,
)

ENV = {"PRESSREVIEW_SECRET_KEY": SECRET}
ADDRESSES = [f"abonne{i}@example.fr" for i in range(7)]


@pytest.fixture(autouse=True)
def _secret(monkeypatch: pytest.MonkeyPatch) -> None:
    delivery_env(monkeypatch)


@pytest.fixture(params=[False, True], ids=["lockstep", "pipelined"])
def sink(request: pytest.FixtureRequest) -> Iterator[Sink]:
    """The server answers each command in turn, or advertises PIPELINING (RFC 2920)."""
    with Sink(pipelining=request.param) as s:
        yield s
    # the client pipelines exactly when the server offers it
    assert set(s.handler.pipelined) <= {request.param}


@pytest.fixture
def setup(
    make_config: Callable[..., Config], store_for: Callable[[Config], Store], store_url: str
) -> Setup:
    return store_setup(make_config, store_for, store_url, ADDRESSES)


def test_one_message_per_active_subscriber_and_never_twice(setup: Setup, sink: Sink) -> None:
    config, store = setup(sink.delivery_config(pool_size=2))
    remove_subscriber(store, ADDRESSES[0], actor="test")
    report = send_issue(config, store, 12)
    assert (report.sent, report.failed, report.skipped) == (6, 0, 0)
    assert sink.handler.per_recipient() == {a: 1 for a in ADDRESSES[1:]}
    assert len(sink.handler.pipelined) == 6  # (the fixture checks how they came)
    # messages went over reused connections (at most pool_size of them)
    assert 1 <= len(sink.handler.connections()) <= 2
    again = send_issue(config, store, 12)
    assert (again.sent, again.skipped) == (0, 6)
    assert len(sink.handler.received) == 6
    rows = deliveries_for(store, 12)
    assert {r["status"] for r in rows} == {"sent"} and all(r["attempts"] == 1 for r in rows)
    # each message carries its recipient's own, valid unsubscribe link, and the stored Message-ID
    tokens = Tokens(SECRET)
    by_mid = {r["message_id"]: r for r in rows}
    for received in sink.handler.received:
        msg = received.message
        row = by_mid[msg["Message-ID"]]
        assert msg["To"] == received.recipients[0] == row["email"]
        link = msg["List-Unsubscribe"].split(">")[0].lstrip("<")
        assert link.startswith("https://veille.example.org/abonnement/desabonnement/")
        subject = tokens.read_unsubscribe(link.rsplit("/", 1)[1])
        assert subject.subscriber_id == row["subscriber_id"]
        assert link in body_of(msg, "plain")


def test_new_subscribers_get_the_issue_on_the_next_run(setup: Setup, sink: Sink) -> None:
    config, store = setup(sink.delivery_config(), ADDRESSES[:2])
    send_issue(config, store, 12)
    add_subscriber(store, "nouvelle@example.fr", actor="test")
    report = send_issue(config, store, 12)
    assert (report.sent, report.skipped) == (1, 2)
    assert sink.handler.per_recipient() == {
        ADDRESSES[0]: 1,
        ADDRESSES[1]: 1,
        "nouvelle@example.fr": 1,
    }


def test_permanent_failure_is_recorded_against_the_subscriber(setup: Setup, sink: Sink) -> None:
    config, store = setup(sink.delivery_config())
    sink.handler.rcpt_replies[ADDRESSES[2]] = "550 5.1.1 <abonne2@example.fr>: user unknown"
    report = send_issue(config, store, 12)
    assert (report.sent, report.failed) == (6, 1)
    assert report.errors == [
        (ADDRESSES[2], "RCPT TO: 550 5.1.1 <abonne2@example.fr>: user unknown")
    ]
    row = next(r for r in deliveries_for(store, 12) if r["email"] == ADDRESSES[2])
    assert row["status"] == "failed" and "550" in row["last_error"]
    bounced = get_subscriber(store, ADDRESSES[2])
    assert bounced.status == "bounced" and "user unknown" in (bounced.last_error or "")
    # a re-run does not try again; --retry-failed does (and the subscriber is no longer active)
    assert send_issue(config, store, 12).sent == 0
    assert send_issue(config, store, 12, retry_failed=True).sent == 0


def test_temporary_failures_are_retried_with_backoff(setup: Setup, sink: Sink) -> None:
    config, store = setup(sink.delivery_config(max_attempts=3), ADDRESSES[:1])
    sink.handler.data_replies = ["451 4.3.0 try again later", "452 4.2.2 mailbox full"]
    report = send_issue(config, store, 12)
    assert (report.sent, report.failed) == (1, 0)
    (row,) = deliveries_for(store, 12)
    assert (row["status"], row["attempts"]) == ("sent", 3)
    assert sink.handler.per_recipient() == {ADDRESSES[0]: 1}


def test_temporary_failures_give_up_after_max_attempts(setup: Setup, sink: Sink) -> None:
    config, store = setup(sink.delivery_config(max_attempts=2), ADDRESSES[:2])
    sink.handler.rcpt_replies[ADDRESSES[1]] = "450 4.2.1 greylisted"
    report = send_issue(config, store, 12)
    assert (report.sent, report.failed) == (1, 1)
    row = next(r for r in deliveries_for(store, 12) if r["email"] == ADDRESSES[1])
    assert row["status"] == "failed" and row["attempts"] == 2 and "greylisted" in row["last_error"]
    assert get_subscriber(store, ADDRESSES[1]).status == "active"  # not a bounce
    del sink.handler.rcpt_replies[ADDRESSES[1]]
    report = send_issue(config, store, 12, retry_failed=True)
    assert report.sent == 1
    assert sink.handler.per_recipient() == {ADDRESSES[0]: 1, ADDRESSES[1]: 1}


def test_server_down_then_up_sends_everything(setup: Setup, tmp_path: Path) -> None:
    port = free_port()
    delivery = {
        "transport": "smtp",
        "smtp": {"host": "127.0.0.1", "port": port, "security": "none"},
        "rate_per_second": 0,
    }
    config, store = setup(delivery)
    with pytest.raises(
        DeliveryError, match=rf"cannot connect to SMTP server 127.0.0.1:{port}.*send 12` again"
    ):
        send_issue(config, store, 12)
    rows = deliveries_for(store, 12)
    assert rows and {r["status"] for r in rows} == {"queued"}
    assert all(r["sent_at"] is None and r["claimed_by"] is None for r in rows)
    from aiosmtpd.controller import Controller

    from tests.fixtures_deliver import SinkHandler

    handler = SinkHandler()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        report = send_issue(config, store, 12)
    finally:
        controller.stop()
    assert report.sent == len(ADDRESSES)
    assert handler.per_recipient() == {a: 1 for a in ADDRESSES}


def _refuse(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
    ok = (auth_data.login, auth_data.password) in (
        (b"veille", b"bon-mot-de-passe"),
        ("veille", b"bon-mot-de-passe"),
    )
    return AuthResult(success=ok, handled=False)


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_login_refused_is_one_clear_error_and_nothing_is_sent(
    setup: Setup, monkeypatch: pytest.MonkeyPatch, cli: Callable[..., Any]
) -> None:
    options = {"authenticator": _refuse, "auth_require_tls": False, "auth_required": True}
    with Sink(server_options=options) as sink:
        config, store = setup(sink.delivery_config())
        monkeypatch.setenv("PRESSREVIEW_SMTP_USERNAME", "veille")
        monkeypatch.setenv("PRESSREVIEW_SMTP_PASSWORD", "mauvais")
        result = cli(config, "send", "12")
        assert result.exit_code == 1
        assert result.output.count("\n") == 1 and "Traceback" not in result.output
        assert (
            "refused the login of 'veille'" in result.output
            and "PRESSREVIEW_SMTP_PASSWORD" in result.output
        )
        assert {r["status"] for r in deliveries_for(store, 12)} == {"queued"}
        assert sink.handler.received == []
        monkeypatch.setenv("PRESSREVIEW_SMTP_PASSWORD", "bon-mot-de-passe")
        result = cli(config, "send", "12")
        assert result.exit_code == 0, result.output
        assert f"{len(ADDRESSES)} sent, 0 failed, 0 skipped" in result.output
        assert sink.handler.per_recipient() == {a: 1 for a in ADDRESSES}


def test_test_copy_counts_for_nobody(setup: Setup, sink: Sink, cli: Callable[..., Any]) -> None:
    config, store = setup(sink.delivery_config())
    result = cli(config, "send", "12", "--test-to", "Moi@Example.fr")
    assert (
        result.exit_code == 0 and "Test copy of issue n° 12 sent to Moi@example.fr" in result.output
    )
    (received,) = sink.handler.received
    assert received.recipients == ["Moi@example.fr"]
    assert received.message["Subject"].startswith("[TEST] ")
    assert deliveries_for(store, 12) == []
    result = cli(config, "send", "12")
    assert f"{len(ADDRESSES)} sent" in result.output


def test_dry_run_lists_recipients_and_sends_nothing(
    setup: Setup, sink: Sink, cli: Callable[..., Any]
) -> None:
    config, store = setup(sink.delivery_config(), ADDRESSES[:3])
    send_issue(config, store, 12, limit=1)
    result = cli(config, "send", "12", "--dry-run")
    assert result.exit_code == 0
    assert result.output.splitlines()[:2] == ADDRESSES[1:3]
    assert (
        "2 subscriber(s) would receive issue n° 12; 1 already have it. Nothing sent."
        in result.output
    )
    assert len(sink.handler.received) == 1


def test_unknown_issue_and_missing_secret(
    setup: Setup, sink: Sink, cli: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    config, _ = setup(sink.delivery_config())
    result = cli(config, "send", "99")
    assert result.exit_code == 1 and "no published issue n° 99" in result.output
    monkeypatch.delenv("PRESSREVIEW_SECRET_KEY")
    result = cli(config, "send", "12")
    assert result.exit_code == 2 and "PRESSREVIEW_SECRET_KEY" in result.output
    assert sink.handler.received == []


def test_outbox_transport_writes_one_file_per_message(
    setup: Setup, tmp_path: Path, cli: Callable[..., Any]
) -> None:
    outbox = tmp_path / "boite"
    config, store = setup({"transport": "outbox", "outbox_dir": str(outbox), "rate_per_second": 0})
    result = cli(config, "send", "12", "--json")
    report = json.loads(result.output)
    assert (report["sent"], report["failed"], report["skipped"]) == (len(ADDRESSES), 0, 0)
    files = sorted(outbox.glob("*.eml"))
    assert len(files) == len(ADDRESSES)
    recipients = set()
    # each file carries the Message-ID stored with its delivery row (the one a resend
    # or a bounce is matched by)
    stored = {r["email"]: r["message_id"] for r in deliveries_for(store, 12)}
    for path in files:
        msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        recipients.add(str(msg["To"]))
        assert path.name == msg["Message-ID"].strip("<>") + ".eml"
        assert msg["Message-ID"] == stored[str(msg["To"])]
    assert recipients == set(ADDRESSES)
    assert not list(outbox.glob(".*.tmp"))
    assert json.loads(cli(config, "send", "12", "--json").output)["sent"] == 0


def test_unsubscribed_between_runs_is_skipped(setup: Setup, sink: Sink) -> None:
    config, store = setup(sink.delivery_config(), ADDRESSES[:3])
    send_issue(config, store, 12, limit=1)
    remove_subscriber(store, ADDRESSES[2], actor="test")
    report = send_issue(config, store, 12)
    assert report.sent == 1
    assert sink.handler.per_recipient() == {ADDRESSES[0]: 1, ADDRESSES[1]: 1}
    statuses = {r["email"]: r["status"] for r in deliveries_for(store, 12)}
    assert statuses[ADDRESSES[2]] == "cancelled"


def test_progress_is_reported(setup: Setup, sink: Sink) -> None:
    config, store = setup(sink.delivery_config(pool_size=3))
    seen: list[tuple[str, int, int]] = []
    send_issue(
        config, store, 12, progress=lambda outcome, done, total: seen.append((outcome, done, total))
    )
    assert sorted(done for _, done, _ in seen) == list(range(1, len(ADDRESSES) + 1))
    assert {total for _, _, total in seen} == {len(ADDRESSES)}


def test_one_commit_per_message_and_none_left_behind(setup: Setup, sink: Sink) -> None:
    """Without a rate limit a row's "sent" is committed with the next row's attempt.

    Every message still has its attempt committed before MAIL FROM (the server
    sees the row "sending" with sent_at set) and its "sent" committed by the end.
    """
    addresses = [f"lecteur{i:02d}@example.fr" for i in range(40)]
    config, store = setup(sink.delivery_config(pool_size=1), addresses)
    send_issue(config, store, 12, limit=0)  # queue the rows
    commits: list[int] = []
    seen_open: list[bool] = []

    def on_rcpt(address: str) -> None:
        row = next(r for r in deliveries_for(store, 12) if r["email"] == address)
        seen_open.append(row["status"] == "sending" and row["sent_at"] is not None)

    sink.handler.on_rcpt = on_rcpt
    event.listen(store.engine, "commit", lambda _conn: commits.append(1))
    report = send_issue(config, store, 12)
    assert report.sent == 40 and seen_open == [True] * 40
    rows = deliveries_for(store, 12)
    assert {r["status"] for r in rows} == {"sent"} and all(r["claimed_by"] is None for r in rows)
    # two commits a message before (attempt, then sent): 80 and more
    assert len(commits) < 60, len(commits)


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_a_sent_held_for_the_next_commit_survives_an_error_between_messages(
    setup: Setup, sink: Sink
) -> None:
    config, store = setup(sink.delivery_config(pool_size=1))

    def progress(outcome: str, done: int, total: int) -> None:
        if done == 3:
            raise RuntimeError("progress display broke")

    send_issue(config, store, 12, progress=progress)
    statuses = [r["status"] for r in deliveries_for(store, 12)]
    assert statuses[:3] == ["sent"] * 3  # the third was held for the fourth's commit
    assert sink.handler.per_recipient() == {a: 1 for a in ADDRESSES[:3]}


@pytest.mark.parametrize(
    "address",
    [
        "abonne@example.fr",
        "o'neil+veille@quartiers.example.fr",
        "a.b-c_d{x}@x-y.example",
        "Marie Dupont <marie@example.fr>",
        '"local part"@example.fr',
    ],
)
def test_envelope_paths_are_what_smtplib_writes(address: str) -> None:
    """MAIL FROM / RCPT TO are written as bytes now: the same paths as smtplib's."""
    assert _path(address) == smtplib.quoteaddr(address).encode("ascii")


def _certificate(tmp_path: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (the CA file the client is told to trust)."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@pytest.mark.parametrize("security", ["starttls", "ssl"])
def test_tls_starttls_and_implicit(
    security: str, setup: Setup, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import ssl

    cert, key = _certificate(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    options = {"tls_context": context, "require_starttls": True}
    if security == "ssl":
        options = {"ssl_context": context}
    with Sink(server_options=options) as sink:
        delivery = sink.delivery_config()
        delivery["smtp"]["security"] = security
        config, store = setup(delivery, ADDRESSES[:2])
        # the server's certificate is not trusted: a clear error, nothing sent
        with pytest.raises(DeliveryError, match=r"TLS failed: CERTIFICATE_VERIFY_FAILED"):
            send_issue(config, store, 12)
        assert {r["status"] for r in deliveries_for(store, 12)} == {"queued"}
        monkeypatch.setenv("PRESSREVIEW_SMTP_CA_FILE", str(cert))
        report = send_issue(config, store, 12)
        assert report.sent == 2
        assert sink.handler.per_recipient() == {ADDRESSES[0]: 1, ADDRESSES[1]: 1}


def test_send_single_keeps_the_headers_of_build_message(
    sink: Sink, make_config: Callable[..., Config]
) -> None:
    """Test copies sent outside a campaign: List-Unsubscribe is not refolded into encoded words."""
    from pressreview.deliver.message import build_message
    from pressreview.deliver.single import send_single
    from pressreview.deliver.transports import open_transport
    from pressreview.render import render_email
    from tests.fixtures_issues import fixed_snapshot

    config = make_config(delivery=sink.delivery_config())
    link = "https://veille.example.org/abonnement/desabonnement/" + "x" * 90
    message = build_message(
        config, render_email(config, fixed_snapshot(3)), to="moi@example.fr", unsubscribe_url=link
    )
    send_single(config, message, to="moi@example.fr", transport=open_transport(config))
    (received,) = sink.handler.received
    assert f"List-Unsubscribe: <{link}>".encode() in received.data
    assert b"=?utf-8?" not in received.data.split(b"List-Unsubscribe:")[1].split(b"\r\n")[0]


def test_messages_are_dkim_signed_when_configured(
    setup: Setup, sink: Sink, monkeypatch: pytest.MonkeyPatch
) -> None:
    import base64

    import dkim

    from tests.fixtures_deliver import rsa_key

    private, public = rsa_key()
    monkeypatch.setenv("PRESSREVIEW_DKIM_PRIVATE_KEY", private.decode())
    config, store = setup(
        sink.delivery_config(dkim_selector="pr2026", dkim_domain="example.org"), ADDRESSES[:2]
    )
    assert send_issue(config, store, 12).sent == 2

    def dns(name: bytes, timeout: int = 5) -> bytes:
        assert name == b"pr2026._domainkey.example.org."
        return b"v=DKIM1; k=rsa; p=" + base64.b64encode(public)

    for received in sink.handler.received:
        assert received.data.startswith(b"DKIM-Signature:")
        assert dkim.verify(received.data, dnsfunc=dns)


def test_rate_limit_spaces_messages_across_workers() -> None:
    from pressreview.deliver.campaign import RateLimiter

    now = [100.0]
    waits: list[float] = []
    limiter = RateLimiter(4, clock=lambda: now[0], sleep=waits.append)
    for _ in range(3):
        limiter.wait()
    assert waits == [0.25, 0.5]  # the first goes at once, then one slot every 1/4 s
    now[0] = 200.0  # after a long pause the budget does not pile up
    limiter.wait()
    assert waits == [0.25, 0.5]
    unlimited = RateLimiter(0, clock=lambda: now[0], sleep=waits.append)
    for _ in range(5):
        unlimited.wait()
    assert waits == [0.25, 0.5]


def test_dry_run_lists_active_subscribers_only_and_ids_name_issue_and_subscriber(
    setup: Setup, sink: Sink
) -> None:
    config, store = setup(sink.delivery_config(), ADDRESSES[:4])
    remove_subscriber(store, ADDRESSES[0], actor="test")  # unsubscribed: the row stays
    dry = send_issue(config, store, 12, dry_run=True)
    assert sorted(dry.recipients) == sorted(ADDRESSES[1:4])
    assert sink.handler.received == [] and deliveries_for(store, 12) == []
    send_issue(config, store, 12)
    assert sink.handler.per_recipient() == {a: 1 for a in ADDRESSES[1:4]}
    # docs/delivery.md: <pr.ISSUE.SUBSCRIBER.RANDOM@domain>
    for row in deliveries_for(store, 12):
        subscriber = get_subscriber(store, row["email"])
        assert row["message_id"].startswith(f"<pr.12.{subscriber.id}."), row["message_id"]
