"""Transports: where messages go. One seam, :func:`open_transport`, picks one from the config.

- ``outbox`` (the embedded default): each message is written as an .eml file
  named after its Message-ID in ``delivery.outbox_dir`` (atomic rename).
- ``smtp``: ``delivery.smtp`` host/port, STARTTLS, implicit TLS or none;
  credentials from PRESSREVIEW_SMTP_USERNAME / PRESSREVIEW_SMTP_PASSWORD.
  A campaign opens ``delivery.pool_size`` connections and reuses them; MAIL
  FROM, RCPT TO and DATA go in one write when the server offers PIPELINING.
- ``null`` (benchmarks): accepts and discards.

A connection's ``send(envelope, data, handing_over)`` calls ``handing_over()``
at the last moment before the message can be delivered (for SMTP: after the
whole body was transmitted, before the final "."); it must not wait on the
network (the campaign writes one line to its local journal); if it returns
False the message is abandoned and not delivered. Failures raise
:class:`TemporaryFailure` (4xx, or the connection failed before the point of no
return: retried; ``connection=True`` for the latter), :class:`PermanentFailure`
(5xx), :class:`HandoverUnknown` (the "." was fully written and the answer was
lost) or :class:`TransportUnavailable` (nothing can be sent: server down, login
refused).
"""

from __future__ import annotations

import contextlib
import os
import re
import select
import smtplib
import socket
import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from pressreview.config import Config
from pressreview.deliver.message import dot_stuff
from pressreview.errors import DeliveryError

USERNAME_ENV = "PRESSREVIEW_SMTP_USERNAME"
PASSWORD_ENV = "PRESSREVIEW_SMTP_PASSWORD"
#: A PEM file of extra certificate authorities to trust (a private CA, or a test server).
CA_FILE_ENV = "PRESSREVIEW_SMTP_CA_FILE"


@dataclass(frozen=True)
class Envelope:
    sender: str
    recipient: str


class TransportUnavailable(DeliveryError):
    """Nothing can be sent now (server unreachable, TLS or login refused...)."""


class SendFailure(DeliveryError):
    def __init__(
        self,
        message: str,
        *,
        code: int | None = None,
        recipient_refused: bool = False,
        connection: bool = False,
    ):
        super().__init__(message)
        self.code = code
        self.recipient_refused = recipient_refused
        #: The connection failed or timed out (no answer from the server).
        self.connection = connection


class TemporaryFailure(SendFailure):
    """4xx or a broken connection before the point of no return: retry later."""


class PermanentFailure(SendFailure):
    """5xx: the server will never take this message for this recipient."""


class HandoverUnknown(SendFailure):
    """The connection broke after the point of no return: maybe delivered."""


class ClaimLost(DeliveryError):
    """handing_over() said no: the row is no longer ours; nothing was delivered."""


HandingOver = Callable[[], bool]


class Connection(Protocol):
    def send(
        self,
        envelope: Envelope,
        data: bytes,
        handing_over: HandingOver,
        *,
        stuffed: bytes | None = None,
    ) -> None: ...

    def close(self) -> None: ...


class Transport(Protocol):
    name: str
    #: How many connections a campaign uses in parallel.
    workers: int

    def open(self) -> Connection: ...

    def describe(self) -> str: ...


# -- null ---------------------------------------------------------------------------


class NullConnection:
    def __init__(self, sink: NullTransport):
        self.sink = sink

    def send(
        self,
        envelope: Envelope,
        data: bytes,
        handing_over: HandingOver,
        *,
        stuffed: bytes | None = None,
    ) -> None:
        if not handing_over():
            raise ClaimLost("delivery row taken by another run")
        self.sink.count += 1
        self.sink.bytes += len(data)

    def close(self) -> None:
        pass


class NullTransport:
    """Accepts everything, keeps nothing (benchmarks)."""

    name = "null"

    def __init__(self, workers: int = 1):
        self.workers = workers
        self.count = 0
        self.bytes = 0

    def open(self) -> NullConnection:
        return NullConnection(self)

    def describe(self) -> str:
        return "null transport"


# -- outbox -------------------------------------------------------------------------


def _file_name(data: bytes) -> str:
    match = re.search(rb"^Message-ID:\s*<([^>\r\n]+)>", data, re.MULTILINE | re.IGNORECASE)
    stem = match.group(1).decode("ascii", "replace") if match else os.urandom(8).hex()
    return re.sub(r"[^A-Za-z0-9._@-]", "_", stem) + ".eml"


class OutboxConnection:
    def __init__(self, folder: Path):
        self.folder = folder

    def send(
        self,
        envelope: Envelope,
        data: bytes,
        handing_over: HandingOver,
        *,
        stuffed: bytes | None = None,
    ) -> None:
        final = self.folder / _file_name(data)
        tmp = self.folder / f".{final.name}.{os.getpid()}.tmp"
        try:
            tmp.write_bytes(f"X-Envelope-To: {envelope.recipient}\r\n".encode("ascii") + data)
        except OSError as exc:
            raise TransportUnavailable(
                f"cannot write to the outbox {self.folder}: {exc.strerror}"
            ) from None
        if not handing_over():
            tmp.unlink(missing_ok=True)
            raise ClaimLost("delivery row taken by another run")
        try:
            os.replace(tmp, final)
        except OSError as exc:
            raise HandoverUnknown(f"outbox rename failed: {exc.strerror}") from None

    def close(self) -> None:
        pass


class OutboxTransport:
    """Writes each message as ``<Message-ID>.eml`` (same name when written again)."""

    name = "outbox"
    workers = 1

    def __init__(self, folder: Path):
        self.folder = folder

    def open(self) -> OutboxConnection:
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise TransportUnavailable(
                f"cannot create the outbox {self.folder}: {exc.strerror}"
            ) from None
        return OutboxConnection(self.folder)

    def describe(self) -> str:
        return f"outbox {self.folder}"


# -- SMTP ---------------------------------------------------------------------------


def _reply(resp: bytes | str) -> str:
    text = resp.decode("utf-8", "replace") if isinstance(resp, bytes) else str(resp)
    return " ".join(text.split())


def _failure(code: int, resp: bytes | str, stage: str, *, recipient: bool = False) -> SendFailure:
    message = f"{stage}: {code} {_reply(resp)}".strip()
    if 400 <= code < 500:
        return TemporaryFailure(message, code=code, recipient_refused=recipient)
    return PermanentFailure(message, code=code, recipient_refused=recipient)


class SmtpConnection:
    """One SMTP session, reused for many messages; reconnects when the server hangs up."""

    def __init__(self, transport: SmtpTransport):
        self.transport = transport
        self.smtp: smtplib.SMTP | None = None
        self.connect()

    def connect(self) -> None:
        self.close()
        self.smtp = self.transport.connect()

    def close(self) -> None:
        if self.smtp is not None:
            try:
                self.smtp.quit()
            except (smtplib.SMTPException, OSError):
                _close(self.smtp)
            self.smtp = None

    def _abort(self) -> None:
        _close(self.smtp)
        self.smtp = None

    def send(
        self,
        envelope: Envelope,
        data: bytes,
        handing_over: HandingOver,
        *,
        stuffed: bytes | None = None,
    ) -> None:
        """``stuffed``: the same message already dot-stuffed (saves a pass over 100 kB)."""
        try:
            started = self._envelope(envelope)
        except (TimeoutError, smtplib.SMTPServerDisconnected, ConnectionError):
            # The server hung up an idle connection: one new session, then give up.
            self._abort()
            self.connect()
            try:
                started = self._envelope(envelope)
            except (smtplib.SMTPServerDisconnected, OSError) as exc:
                self._abort()
                raise TemporaryFailure(f"connection lost: {_why(exc)}", connection=True) from None
        except OSError as exc:
            self._abort()
            raise TemporaryFailure(f"connection lost: {_why(exc)}", connection=True) from None
        self._data(stuffed if stuffed is not None else dot_stuff(data), handing_over, started)

    def _rset(self) -> None:
        try:
            assert self.smtp is not None
            self.smtp.rset()
        except (smtplib.SMTPException, OSError):
            self._abort()

    def _envelope(self, envelope: Envelope) -> bool:
        """MAIL FROM and RCPT TO; also DATA when the server pipelines (RFC 2920).

        Returns True when DATA was sent and answered 354 (the body comes next).
        The commands are written as bytes (the addresses were checked when the
        message was built; smtplib's address parser runs only for unusual ones).
        """
        if self.smtp is None:
            self.connect()
        smtp = self.smtp
        assert smtp is not None
        smtp.ehlo_or_helo_if_needed()
        mail = b"mail FROM:" + _path(envelope.sender) + b"\r\n"
        rcpt = b"rcpt TO:" + _path(envelope.recipient) + b"\r\n"
        pipelining = smtp.does_esmtp and smtp.has_extn("pipelining")
        if pipelining:  # one write, then the three answers in order
            smtp.send(mail + rcpt + b"data\r\n")
        else:
            smtp.send(mail)
        code, resp = smtp.getreply()
        if code == 421:
            self._abort()
            raise smtplib.SMTPServerDisconnected("421 " + _reply(resp))
        if code != 250:
            if pipelining:
                self._drain(2)
            else:
                self._rset()
            failure = _failure(code, resp, "MAIL FROM")
            if isinstance(failure, PermanentFailure):
                raise TransportUnavailable(
                    f"the SMTP server refuses the sender {envelope.sender}: {failure} "
                    "(check email.from_address)"
                )
            raise failure
        if not pipelining:
            smtp.send(rcpt)
        code, resp = smtp.getreply()
        if code not in (250, 251):
            if pipelining:
                self._drain(1)
            else:
                self._rset()
            raise _failure(code, resp, "RCPT TO", recipient=True)
        if not pipelining:
            return False
        code, resp = smtp.getreply()
        if code != 354:
            self._rset()
            raise _failure(code, resp, "DATA")
        return True

    def _drain(self, answers: int) -> None:
        """After a refusal in a pipelined envelope: read the answers still due, then RSET.

        A DATA that a server accepted in spite of the refusal is ended by hanging up
        (never by a "."), so that nothing is delivered.
        """
        assert self.smtp is not None
        try:
            codes = [self.smtp.getreply()[0] for _ in range(answers)]
        except (smtplib.SMTPException, OSError):
            self._abort()
            return
        if 354 in codes:
            self._abort()
        else:
            self._rset()

    def _data(self, data: bytes, handing_over: HandingOver, started: bool = False) -> None:
        smtp = self.smtp
        assert smtp is not None
        try:
            if not started:
                smtp.send(b"data\r\n")
                code, resp = smtp.getreply()
                if code != 354:
                    self._rset()
                    raise _failure(code, resp, "DATA")
            body = data
            if not body.endswith(b"\r\n"):
                body += b"\r\n"
            smtp.send(body)
        except (smtplib.SMTPServerDisconnected, OSError) as exc:
            self._abort()
            raise TemporaryFailure(
                f"connection lost while sending: {_why(exc)}", connection=True
            ) from None
        # A server that hung up (or answered) before the "." did not take the message.
        if _peer_spoke(smtp):
            self._abort()
            raise TemporaryFailure(
                "connection lost while sending: the server closed the connection "
                "before the end of data",
                connection=True,
            )
        # Point of no return: until the "." below the server discards a partial message.
        if not handing_over():
            self._abort()  # hang up mid-DATA: the server drops the message
            raise ClaimLost("delivery row taken by another run")
        try:
            smtp.send(b".\r\n")
        except (smtplib.SMTPServerDisconnected, OSError) as exc:
            # The end of data was not (fully) written: the server drops the message.
            self._abort()
            raise TemporaryFailure(
                f"connection lost before the end of data: {_why(exc)}", connection=True
            ) from None
        try:
            code, resp = smtp.getreply()
        except (smtplib.SMTPServerDisconnected, OSError) as exc:
            self._abort()
            if _was_reset(exc):
                # A reset, not an end of stream: the server's socket was closed with our
                # data unread (or our "." arrived after it closed): it did not take the
                # message. A server that read the "." and then died would have closed
                # cleanly (nothing unread), which stays unconfirmed below.
                raise TemporaryFailure(
                    "connection lost: the server reset the connection before it took the "
                    f"end of data ({_why(exc)})",
                    connection=True,
                ) from None
            raise HandoverUnknown(
                f"connection lost waiting for the server's answer: {_why(exc)}", connection=True
            ) from None
        if code != 250:
            raise _failure(code, resp, "end of DATA")


_PLAIN_ADDRESS = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+@[A-Za-z0-9.-]+")


def _path(address: str) -> bytes:
    """``<address>`` for MAIL FROM / RCPT TO (smtplib's parser only for unusual forms)."""
    if _PLAIN_ADDRESS.fullmatch(address):
        return b"<" + address.encode("ascii") + b">"
    path = smtplib.quoteaddr(address)
    if "\r" in path or "\n" in path:
        raise PermanentFailure(f"address {address!r} cannot be written in SMTP")
    return path.encode("ascii")


def _was_reset(exc: BaseException) -> bool:
    """ECONNRESET / EPIPE, raised directly or wrapped by smtplib."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ConnectionResetError | BrokenPipeError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _why(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timed out"
    return str(exc) or type(exc).__name__


def _peer_spoke(smtp: smtplib.SMTP) -> bool:
    """Whether the server closed the connection or sent something while we sent DATA."""
    sock = smtp.sock
    if sock is None:
        return True
    if isinstance(sock, ssl.SSLSocket):  # no peeking under TLS: the "." write will tell
        return False
    try:
        readable, _, _ = select.select([sock], [], [], 0)
    except (OSError, ValueError):
        return True
    return bool(readable)  # end of stream, a reset or an unsolicited reply


class SmtpTransport:
    """SMTP with credentials from the environment; ``workers`` = delivery.pool_size."""

    name = "smtp"

    def __init__(
        self,
        host: str,
        port: int,
        *,
        security: str = "starttls",
        timeout: float = 30.0,
        username: str | None = None,
        password: str | None = None,
        workers: int = 2,
        cafile: str | None = None,
        local_hostname: str | None = None,
    ):
        self.host = host
        self.port = port
        self.security = security
        self.timeout = timeout
        self.username = username
        self.password = password
        self.workers = max(1, workers)
        self.cafile = cafile
        self.local_hostname = local_hostname

    def describe(self) -> str:
        return f"SMTP server {self.host}:{self.port}"

    def _tls(self) -> ssl.SSLContext:
        context = ssl.create_default_context()
        if self.cafile:
            context.load_verify_locations(cafile=self.cafile)
        return context

    def connect(self) -> smtplib.SMTP:
        where = self.describe()
        smtp: smtplib.SMTP | None = None
        try:
            if self.security == "ssl":
                smtp = smtplib.SMTP_SSL(
                    self.host,
                    self.port,
                    timeout=self.timeout,
                    context=self._tls(),
                    local_hostname=self.local_hostname,
                )
            else:
                smtp = smtplib.SMTP(
                    self.host, self.port, timeout=self.timeout, local_hostname=self.local_hostname
                )
            # The final "." follows the body in a separate small write (after the point of no
            # return is committed): without TCP_NODELAY, Nagle's algorithm would hold it back
            # until the server acknowledges the body (up to a delayed-ACK timeout per message).
            if smtp.sock is not None:
                smtp.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            smtp.ehlo()
            if self.security == "starttls":
                if not smtp.has_extn("starttls"):
                    raise TransportUnavailable(
                        f"{where} does not offer STARTTLS "
                        "(set delivery.smtp.security to ssl or none)"
                    )
                smtp.starttls(context=self._tls())
                smtp.ehlo()
            if self.username:
                smtp.login(self.username, self.password or "")
            return smtp
        except TransportUnavailable:
            _close(smtp)
            raise
        except smtplib.SMTPAuthenticationError as exc:
            _close(smtp)
            raise TransportUnavailable(
                f"{where} refused the login of {self.username!r}: "
                f"{exc.smtp_code} {_reply(exc.smtp_error)} "
                f"(check {USERNAME_ENV} and {PASSWORD_ENV})"
            ) from None
        except smtplib.SMTPNotSupportedError:
            _close(smtp)
            raise TransportUnavailable(
                f"{where} does not accept a login; unset {USERNAME_ENV} or use another server"
            ) from None
        except ssl.SSLError as exc:
            _close(smtp)
            raise TransportUnavailable(f"{where}: TLS failed: {exc.reason or exc}") from None
        except (smtplib.SMTPException, OSError) as exc:
            _close(smtp)
            reason = (
                exc.strerror
                if isinstance(exc, OSError) and exc.strerror
                else str(exc) or type(exc).__name__
            )
            raise TransportUnavailable(f"cannot connect to {where}: {reason}") from None

    def open(self) -> SmtpConnection:
        return SmtpConnection(self)


def _close(smtp: smtplib.SMTP | None) -> None:
    if smtp is not None:
        with contextlib.suppress(OSError):
            smtp.close()


def open_transport(config: Config, *, environ: Mapping[str, str] | None = None) -> Transport:
    """The transport named by ``delivery.transport`` (the one seam every sender goes through)."""
    env = os.environ if environ is None else environ
    delivery = config.delivery
    if delivery.transport == "outbox":
        return OutboxTransport(config.resolve(delivery.outbox_dir))
    smtp = delivery.smtp
    return SmtpTransport(
        smtp.host,
        smtp.port,
        security=smtp.security,
        timeout=smtp.timeout,
        username=env.get(USERNAME_ENV) or None,
        password=env.get(PASSWORD_ENV) or None,
        workers=delivery.pool_size,
        cafile=env.get(CA_FILE_ENV) or None,
    )
