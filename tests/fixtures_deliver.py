"""Helpers of the delivery, subscriber and web tests: a published issue, an SMTP sink."""

from __future__ import annotations

import asyncio
import email
import email.policy
import socket
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import insert

from pressreview.config import Config
from pressreview.store import Store
from pressreview.store.schema import issues
from pressreview.subscribers import add_subscriber
from tests.fixtures_issues import fixed_snapshot

SECRET = "test-secret-key-0123456789abcdef"


def publish_fixed_issue(store: Store, number: int = 12, items: int = 6) -> dict[str, Any]:
    """A published issue row with a fixed snapshot (as the issues stage would leave it)."""
    snapshot = fixed_snapshot(items)
    snapshot["number"] = number
    snapshot["archive_url"] = f"https://veille.example.org/numeros/{number}/"
    stamp = datetime(2026, 11, 23, 7, 0, tzinfo=UTC)
    with store.begin() as conn:
        conn.execute(
            insert(issues).values(
                number=number,
                title=snapshot["title"],
                intro_md=snapshot["intro_md"],
                status="published",
                created_at=stamp,
                updated_at=stamp,
                published_at=stamp,
                snapshot=snapshot,
                version=1,
            )
        )
    return snapshot


@dataclass
class Received:
    sender: str
    recipients: list[str]
    data: bytes
    peer: Any = None

    @property
    def message(self) -> email.message.EmailMessage:
        msg = email.message_from_bytes(self.data, policy=email.policy.default)
        assert isinstance(msg, email.message.EmailMessage)
        return msg

    @property
    def message_id(self) -> str:
        return str(self.message["Message-ID"])


@dataclass
class SinkHandler:
    """An aiosmtpd handler that keeps what it accepts; hooks let tests fail or kill."""

    received: list[Received] = field(default_factory=list)
    #: recipient -> SMTP reply for RCPT (e.g. "550 5.1.1 no such user")
    rcpt_replies: dict[str, str] = field(default_factory=dict)
    #: replies given to the next DATA commands, in order (then 250)
    data_replies: list[str] = field(default_factory=list)
    #: replies given to the next MAIL FROM commands, in order (then 250)
    mail_replies: list[str] = field(default_factory=list)
    #: called with the number of messages received so far, before answering DATA
    on_data: Callable[[int], None] | None = None
    #: called with the RCPT address, before answering RCPT
    on_rcpt: Callable[[str], None] | None = None
    #: advertise PIPELINING (RFC 2920): the client then sends MAIL, RCPT and DATA at once
    pipelining: bool = False
    #: per MAIL FROM: whether the RCPT and DATA that follow had already arrived with it
    pipelined: list[bool] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_EHLO(
        self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        session.host_name = hostname
        if self.pipelining:
            responses.insert(len(responses) - 1, "250-PIPELINING")
        return responses

    async def handle_MAIL(
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        await asyncio.sleep(0.001)  # let what the client wrote with MAIL reach the reader
        waiting = bytes(getattr(server._reader, "_buffer", b""))
        with self.lock:
            self.pipelined.append(b"RCPT" in waiting.upper() and b"DATA" in waiting.upper())
            if self.mail_replies:
                return self.mail_replies.pop(0)
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        if self.on_rcpt:
            self.on_rcpt(address)
        reply = self.rcpt_replies.get(address)
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.lock:
            if self.data_replies:
                return self.data_replies.pop(0)
            self.received.append(
                Received(
                    envelope.mail_from,
                    list(envelope.rcpt_tos),
                    envelope.original_content,
                    session.peer,
                )
            )
            count = len(self.received)
        if self.on_data:
            self.on_data(count)
        return "250 Message accepted for delivery"

    def per_recipient(self) -> Counter[str]:
        with self.lock:
            return Counter(r for m in self.received for r in m.recipients)

    def connections(self) -> set[Any]:
        with self.lock:
            return {m.peer for m in self.received}

    def message_ids(self) -> Counter[str]:
        with self.lock:
            return Counter(m.message_id for m in self.received)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Sink:
    """A real SMTP server (aiosmtpd) on a free local port."""

    def __init__(self, *, server_options: dict[str, Any] | None = None, **handler_options: Any):
        self.handler = SinkHandler(**handler_options)
        self.controller = Controller(
            self.handler,
            hostname="127.0.0.1",
            port=free_port(),
            data_size_limit=0,
            **(server_options or {}),
        )

    def __enter__(self) -> Sink:
        self.controller.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.controller.stop()

    @property
    def port(self) -> int:
        return int(self.controller.port)

    def delivery_config(self, **extra: Any) -> dict[str, Any]:
        return {
            "transport": "smtp",
            "smtp": {"host": "127.0.0.1", "port": self.port, "security": "none", "timeout": 10},
            "rate_per_second": 0,
            "retry_backoff_seconds": 0.01,
            **extra,
        }


def body_of(message: email.message.EmailMessage, subtype: str) -> str:
    """The decoded text/<subtype> part of a message."""
    part = message.get_body((subtype,))
    assert part is not None, f"no text/{subtype} part"
    return str(part.get_content())


def rsa_key() -> tuple[bytes, bytes]:
    """A fresh RSA key: (private PEM, public DER) for DKIM tests."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private, public


# -- a store with an issue and subscribers ---------------------------------------------

#: ``setup(delivery_settings, addresses=..., issues=(12,))`` -> (config, store)
Setup = Callable[..., tuple[Config, Store]]


def delivery_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The signing key set, no SMTP credentials from the developer's environment."""
    monkeypatch.setenv("PRESSREVIEW_SECRET_KEY", SECRET)
    monkeypatch.delenv("PRESSREVIEW_SMTP_USERNAME", raising=False)
    monkeypatch.delenv("PRESSREVIEW_SMTP_PASSWORD", raising=False)


def store_setup(
    make_config: Callable[..., Config],
    store_for: Callable[[Config], Store],
    store_url: str,
    addresses: list[str],
) -> Setup:
    """A factory: a config with these delivery settings, its store, the published
    fixed issue(s) and ``addresses`` subscribed."""

    def make(
        delivery: dict[str, Any], addresses: list[str] = addresses, issues: tuple[int, ...] = (12,)
    ) -> tuple[Config, Store]:
        config = make_config(database_url=store_url, delivery=delivery)
        store = store_for(config)
        for number in issues:
            publish_fixed_issue(store, number)
        for address in addresses:
            add_subscriber(store, address, actor="test")
        return config, store

    return make
