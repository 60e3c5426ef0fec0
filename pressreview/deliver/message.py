"""MIME messages of the newsletter: one per recipient, from one rendered email.

``build_message`` is the public, one-off entry point (``issue render`` writes
its result as email.eml). Campaigns use :class:`MessageTemplate`: the email
package builds the message ONCE per campaign with sentinel values (recipient,
Message-ID, Date, unsubscribe link) and quoted-printable bodies; each
recipient's message is then a join of pre-encoded byte segments with that
recipient's values, so building a message costs microseconds instead of the
milliseconds the email generator needs for a 70 KB newsletter.
``build_message`` parses exactly those bytes, so there is one way to make a
message and the two cannot drift apart.

Quoted-printable bodies are made of chunks encoded once (binascii), each
chunk ending with a soft line break, so the personal link can be inserted
between them without ever passing the 76-character line limit.
"""

from __future__ import annotations

import binascii
import email
import email.errors
import email.policy
import email.utils
import html as html_lib
import os
import re
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email import _header_value_parser as header_parser
from email.headerregistry import Address, BaseHeader, HeaderRegistry
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path
from typing import Any, cast

from pressreview.config import Config
from pressreview.errors import ConfigError, DeliveryError
from pressreview.render import RenderedEmail

DKIM_KEY_ENV = "PRESSREVIEW_DKIM_PRIVATE_KEY"
DKIM_KEY_FILE_ENV = "PRESSREVIEW_DKIM_KEY_FILE"
TEST_PREFIX = "[TEST] "
ONE_CLICK = "List-Unsubscribe=One-Click"
#: Headers covered by the DKIM signature (Gmail and Yahoo want List-Unsubscribe* signed).
DKIM_HEADERS = (
    b"from",
    b"to",
    b"subject",
    b"date",
    b"message-id",
    b"reply-to",
    b"list-id",
    b"list-unsubscribe",
    b"list-unsubscribe-post",
    b"mime-version",
    b"content-type",
)

# Sentinels put into the template message and replaced per recipient. They are
# plain ASCII words without spaces, so header folding never splits them.
_S_TO = "pressreview-sentinel-recipient@sentinel.invalid"
_S_MID = "<pressreview-sentinel-message-id@sentinel.invalid>"
_S_URL = "https://sentinel.invalid/pressreview-sentinel-unsubscribe"
_S_DATE = "Fri, 01 Jan 2038 00:00:00 +0000"
_S_TEXT = "PRESSREVIEWSENTINELTEXTBODY"
_S_HTML = "PRESSREVIEWSENTINELHTMLBODY"
_SLOTS = {
    _S_TO.encode(): "to",
    _S_MID.encode(): "message_id",
    _S_URL.encode(): "url",
    _S_DATE.encode(): "date",
    (_S_TEXT + "\r\n").encode(): "text",
    (_S_HTML + "\r\n").encode(): "html",
}
_SLOT_RE = re.compile(b"|".join(re.escape(s) for s in _SLOTS))
_SOFT_BREAK = b"=\r\n"
#: CRLF line ends; refold_source="none" keeps the headers exactly as made (no encoded-words
#: in URLs): write a built message with ``message.as_bytes()`` (no policy argument).
PARSE_POLICY = email.policy.SMTP.clone(refold_source="none")


def sender_domain(config: Config) -> str:
    """The domain of the From address (Message-IDs are made on it)."""
    return config.email.from_address.rpartition("@")[2].lower() or "localhost"


def make_message_id(config: Config, *parts: object) -> str:
    """A globally unique Message-ID on the sender's domain: ``<pr.12.345.x1y2@domain>``."""
    stem = ".".join(str(p) for p in ("pr", *parts, secrets.token_hex(6)))
    return f"<{stem}@{sender_domain(config)}>"


def list_unsubscribe(config: Config, unsubscribe_url: str) -> str:
    """The List-Unsubscribe value: the personal https link, then mailto when configured."""
    values = [f"<{unsubscribe_url}>"]
    if config.delivery.unsubscribe_mailto:
        values.append(f"<mailto:{config.delivery.unsubscribe_mailto}?subject=unsubscribe>")
    return ", ".join(values)


def _qp(data: str) -> bytes:
    """Quoted-printable with CRLF line ends (binascii: C speed)."""
    raw = data.replace("\r\n", "\n").encode("utf-8")
    return binascii.b2a_qp(raw, istext=True).replace(b"\n", b"\r\n")


def _qp_chunk(data: str) -> bytes:
    """A chunk that may be followed by another: ends at a line start (soft break if needed)."""
    encoded = _qp(data)
    if encoded and not encoded.endswith(b"\r\n"):
        encoded += _SOFT_BREAK
    return encoded


def dot_stuff(data: bytes, *, at_line_start: bool = True) -> bytes:
    """SMTP transparency (RFC 5321 4.5.2): a line starting with "." gets another one."""
    data = data.replace(b"\n.", b"\n..")
    return b"." + data if at_line_start and data.startswith(b".") else data


@dataclass(frozen=True)
class _Body:
    """A body split at the unsubscribe placeholder, chunks pre-encoded (and pre-stuffed).

    Every chunk starts at the beginning of a line (the previous one ends with
    CRLF or a soft line break), so each can be dot-stuffed on its own, once.
    """

    chunks: tuple[bytes, ...]
    escape_url: bool
    stuffed: tuple[bytes, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "stuffed", tuple(dot_stuff(c) for c in self.chunks))

    @classmethod
    def of(cls, text: str, placeholder: str, *, escape_url: bool) -> _Body:
        pieces = text.split(placeholder)
        chunks = [_qp_chunk(p) for p in pieces[:-1]]
        last = _qp(pieces[-1])
        if not last.endswith(b"\r\n"):
            last += b"\r\n"
        return cls((*chunks, last), escape_url)

    def encode(self, url: str, *, stuffed: bool = False) -> Iterable[bytes]:
        chunks = self.stuffed if stuffed else self.chunks
        if len(chunks) == 1:
            yield chunks[0]
            return
        link = _qp_chunk(html_lib.escape(url, quote=True) if self.escape_url else url)
        if stuffed:
            link = dot_stuff(link)
        for chunk in chunks[:-1]:
            yield chunk
            yield link
        yield chunks[-1]


class MessageTemplate:
    """One rendered email made ready to be personalized many times, fast.

    ``render(to=..., unsubscribe_url=..., message_id=...)`` returns the wire
    bytes (CRLF line ends, 7-bit clean) of one recipient's message; with
    ``stuffed=True`` they are also dot-stuffed for SMTP DATA (the static parts
    were stuffed once, here).
    """

    def __init__(self, config: Config, rendered: RenderedEmail, *, test: bool = False):
        self.config = config
        self.test = test
        self.subject = (TEST_PREFIX if test else "") + rendered.subject
        skeleton = _skeleton(config, self.subject)
        self._segments: list[bytes | str] = []
        pos = 0
        for match in _SLOT_RE.finditer(skeleton):
            self._segments.append(skeleton[pos : match.start()])
            self._segments.append(_SLOTS[match.group()])
            pos = match.end()
        self._segments.append(skeleton[pos:])
        # Header values never end a line and the bodies end with CRLF: whether each static
        # segment starts a line is known now.
        self._stuffed: list[bytes | str] = []
        at_line_start = True
        for segment in self._segments:
            if isinstance(segment, bytes):
                self._stuffed.append(dot_stuff(segment, at_line_start=at_line_start))
                at_line_start = segment.endswith(b"\n")
            else:
                self._stuffed.append(segment)
                at_line_start = segment in ("text", "html")
        slots = [s for s in self._segments if isinstance(s, str)]
        if sorted(slots) != sorted(["to", "message_id", "url", "date", "text", "html"]):
            raise DeliveryError(f"internal error: unexpected message skeleton slots {slots}")
        placeholder = rendered.unsubscribe_placeholder
        self._text = _Body.of(rendered.text, placeholder, escape_url=False)
        self._html = _Body.of(rendered.html, placeholder, escape_url=True)

    def render(
        self,
        *,
        to: str,
        unsubscribe_url: str,
        message_id: str | None = None,
        date: datetime | None = None,
        stuffed: bool = False,
    ) -> bytes:
        if not to.isascii() or any(c in to for c in '\r\n<>, "') or "@" not in to:
            raise DeliveryError(f"cannot send to {to!r}: not a plain ASCII address")
        if not unsubscribe_url.isascii() or any(c in unsubscribe_url for c in "\r\n <>"):
            raise DeliveryError(f"unsubscribe link {unsubscribe_url!r} is not a plain URL")
        mid = message_id or make_message_id(self.config)
        if not re.fullmatch(r"<[^<>\s@]+@[^<>\s@]+>", mid):
            raise DeliveryError(f"Message-ID {mid!r} must look like <left@domain>")
        values = {
            "to": to.encode("ascii"),
            "message_id": mid.encode("ascii"),
            "url": unsubscribe_url.encode("ascii"),
            "date": format_datetime(date or datetime.now(UTC)).encode("ascii"),
        }
        out: list[bytes] = []
        for segment in self._stuffed if stuffed else self._segments:
            if isinstance(segment, bytes):
                out.append(segment)
            elif segment == "text":
                out.extend(self._text.encode(unsubscribe_url, stuffed=stuffed))
            elif segment == "html":
                out.extend(self._html.encode(unsubscribe_url, stuffed=stuffed))
            else:
                out.append(values[segment])
        return b"".join(out)


class ListIdHeader:
    """``List-Id: phrase <list-label.namespace>`` (RFC 2919) for the email header registry.

    The registry has no class for it: as an unstructured header, a quoted
    display name with non-ASCII characters came out as encoded words inside a
    quoted string, which readers show as is. Here the phrase is a display name
    (folded and RFC 2047-encoded as in an address header), the id is kept verbatim.
    """

    max_count = 1

    @classmethod
    def parse(cls, value: str, kwds: dict[str, Any]) -> None:
        phrase, _, rest = value.rpartition("<")
        tree = header_parser.TokenList()
        if phrase.strip():
            name, _ = header_parser.get_display_name(phrase.strip())
            tree.append(name)
            tree.append(header_parser.WhiteSpaceTerminal(" ", "fws"))
        tree.append(header_parser.ValueTerminal("<" + rest.strip(), "list-id"))
        kwds["parse_tree"] = tree
        kwds["decoded"] = str(tree)

    def init(self, *args: Any, **kw: Any) -> None:
        super().init(*args, **kw)  # type: ignore[misc]


def _header_registry() -> HeaderRegistry:
    registry = HeaderRegistry()
    registry.map_to_type("list-id", cast("type[BaseHeader]", ListIdHeader))
    return registry


#: The policy every header of a message is built with (the registry, plus List-Id).
BUILD_POLICY = email.policy.SMTP.clone(header_factory=_header_registry())


def list_id(config: Config) -> str:
    """The List-Id value as given to the header registry: quoted display name, then the id."""
    if not re.fullmatch(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+", config.delivery.list_id):
        raise ConfigError(f"delivery.list_id {config.delivery.list_id!r} is not a valid list id")
    return f'"{email.utils.quote(config.email.from_name)}" <{config.delivery.list_id}>'


def _skeleton(config: Config, subject: str) -> bytes:
    """The whole message, made by the email package, with sentinels for per-recipient values."""
    msg = EmailMessage(policy=BUILD_POLICY)
    msg["Subject"] = subject
    try:  # a bad configured address is a configuration error, not a traceback
        msg["From"] = Address(config.email.from_name, addr_spec=config.email.from_address)
        msg["To"] = _S_TO
        if config.email.reply_to:
            msg["Reply-To"] = config.email.reply_to
    except (ValueError, TypeError, email.errors.MessageError) as exc:
        raise ConfigError(
            f"email.from_address / email.from_name / email.reply_to: cannot build a message: {exc}"
        ) from None
    msg["Date"] = _S_DATE
    msg["Message-ID"] = _S_MID
    msg["List-Id"] = list_id(config)
    msg["List-Unsubscribe"] = list_unsubscribe(config, _S_URL)
    msg["List-Unsubscribe-Post"] = ONE_CLICK
    msg.set_content(_S_TEXT + "\n", subtype="plain", charset="utf-8", cte="quoted-printable")
    msg.add_alternative(_S_HTML + "\n", subtype="html", charset="utf-8", cte="quoted-printable")
    try:
        return msg.as_bytes()
    except (ValueError, TypeError) as exc:  # pragma: no cover - bad address in config
        raise ConfigError(
            f"email.from_address / email.from_name: cannot build a message: {exc}"
        ) from None


def build_message(
    config: Config,
    rendered: RenderedEmail,
    *,
    to: str,
    unsubscribe_url: str,
    message_id: str | None = None,
    test: bool = False,
) -> EmailMessage:
    """One recipient's newsletter as an EmailMessage.

    multipart/alternative (text/plain then text/html), UTF-8 quoted-printable,
    encoded subject ("[TEST] " prefixed when ``test``), Date, Message-ID on the
    sender's domain (made when not given), List-Id, List-Unsubscribe (the
    personal https link, and mailto when ``delivery.unsubscribe_mailto`` is
    set) and List-Unsubscribe-Post (RFC 8058 one-click). The personal link
    replaces ``render.UNSUBSCRIBE_PLACEHOLDER`` in both bodies.
    """
    data = MessageTemplate(config, rendered, test=test).render(
        to=to, unsubscribe_url=unsubscribe_url, message_id=message_id
    )
    parsed = email.message_from_bytes(data.replace(b"\r\n", b"\n"), policy=PARSE_POLICY)
    assert isinstance(parsed, EmailMessage)
    return parsed


# -- DKIM ------------------------------------------------------------------------


def dkim_key(environ: Mapping[str, str] | None = None) -> bytes | None:
    """The DKIM private key (PEM) from the environment, or None."""
    env = os.environ if environ is None else environ
    if env.get(DKIM_KEY_ENV):
        return str(env[DKIM_KEY_ENV]).encode("ascii")
    if env.get(DKIM_KEY_FILE_ENV):
        path = Path(env[DKIM_KEY_FILE_ENV])
        try:
            return path.read_bytes()
        except OSError as exc:
            raise ConfigError(f"{DKIM_KEY_FILE_ENV}: cannot read {path}: {exc.strerror}") from None
    return None


class DkimSigner:
    """Signs wire bytes with dkimpy (relaxed/relaxed, rsa-sha256 or ed25519)."""

    def __init__(self, selector: str, domain: str, private_key: bytes):
        import dkim  # imported when DKIM is configured: about 100 ms of start-up otherwise

        self._dkim = dkim
        self.selector = selector.encode("ascii")
        self.domain = domain.encode("ascii")
        self.key = private_key
        try:  # sign once now so that a bad key fails before anything is sent
            self.sign(b"From: a@b.invalid\r\nSubject: x\r\n\r\nx\r\n")
        except Exception as exc:  # dkimpy raises several unrelated types for bad keys
            raise ConfigError(f"DKIM key from the environment is unusable: {exc}") from None

    def sign(self, message: bytes) -> bytes:
        signature = self._dkim.sign(
            message,
            self.selector,
            self.domain,
            self.key,
            canonicalize=(b"relaxed", b"relaxed"),
            include_headers=list(DKIM_HEADERS),
        )
        return bytes(signature).replace(b"\r\n", b"\n").replace(b"\n", b"\r\n") + message


def dkim_signer(config: Config, environ: Mapping[str, str] | None = None) -> DkimSigner | None:
    """A signer when delivery.dkim_selector and dkim_domain are set (config.py checks
    that both or neither are), else None."""
    selector, domain = config.delivery.dkim_selector, config.delivery.dkim_domain
    if not (selector and domain):
        return None
    key = dkim_key(environ)
    if key is None:
        raise ConfigError(
            f"DKIM is configured (delivery.dkim_selector) but no key is set: "
            f"put the PEM key in {DKIM_KEY_ENV} or its path in {DKIM_KEY_FILE_ENV}"
        )
    return DkimSigner(selector, domain, key)
