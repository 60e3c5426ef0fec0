"""One-off messages: confirmation emails, test copies of an issue, previews of a draft.

They leave through the same transport as campaigns (``delivery.transport``,
:func:`~pressreview.deliver.transports.open_transport`), each on its own
connection, and a failure is one DeliveryError naming the message and the
recipient. They are recorded for nobody: no delivery row, no subscriber.

- :func:`send_test_copies`: "[TEST]" copies of a rendered issue (``send N
  --to``, the digest's preview to the editors), made like a campaign's
  messages (MessageTemplate, DKIM when configured) with a sample unsubscribe link;
- :func:`confirmation_sender`: what the sign-up queue's worker
  (``signup.drain_confirmations``) sends the double opt-in email with;
- :func:`send_single`: any EmailMessage, as built.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime

from pressreview import urls
from pressreview.config import Config
from pressreview.deliver.message import DkimSigner, MessageTemplate, make_message_id
from pressreview.deliver.transports import (
    Envelope,
    HandoverUnknown,
    PermanentFailure,
    TemporaryFailure,
    Transport,
    open_transport,
)
from pressreview.errors import DeliveryError
from pressreview.render import RenderedEmail
from pressreview.store.schema import now
from pressreview.subscribers import ConfirmationSender, normalize_email
from pressreview.typography import typeset, with_preposition, wrap


def send_bytes(
    config: Config, data: bytes, *, to: str, transport: Transport, what: str = "message"
) -> None:
    """Hand one message (wire bytes, CRLF) to the transport on a connection of its own."""
    connection = transport.open()
    try:
        connection.send(Envelope(config.email.from_address, to), data, lambda: True)
    except (TemporaryFailure, PermanentFailure, HandoverUnknown) as exc:
        # The transport's failure stays the cause: a queue tells a refusal from a retry.
        raise DeliveryError(f"{what} to {to} not sent: {exc}") from exc
    finally:
        connection.close()


def send_single(
    config: Config,
    message: EmailMessage,
    *,
    to: str,
    transport: Transport,
    what: str = "message",
) -> None:
    """Send one EmailMessage outside any campaign."""
    # The message's own policy with CRLF line ends: a message from build_message keeps its
    # headers exactly as made (policy=email.policy.SMTP would refold the long URL header).
    data = message.as_bytes(policy=message.policy.clone(linesep="\r\n"))
    send_bytes(config, data, to=to, transport=transport, what=what)


def send_test_copies(
    config: Config,
    rendered: RenderedEmail,
    recipients: Sequence[str],
    *,
    transport: Transport,
    signer: DkimSigner | None,
    message_id: Callable[[int], str],
) -> list[str]:
    """Send a "[TEST]" copy of ``rendered`` to each recipient (1-based ``message_id(index)``).

    The unsubscribe link is a sample (urls.sample_unsubscribe_url). Returns the
    normalized addresses, in order. Raises InvalidAddress or DeliveryError.
    """
    template = MessageTemplate(config, rendered, test=True)
    link = urls.sample_unsubscribe_url(config)
    sent: list[str] = []
    for index, recipient in enumerate(recipients, start=1):
        address = normalize_email(recipient)
        data = template.render(to=address, unsubscribe_url=link, message_id=message_id(index))
        if signer:
            data = signer.sign(data)
        send_bytes(config, data, to=address, transport=transport, what="test copy")
        sent.append(address)
    return sent


def confirmation_message(config: Config, *, to: str, confirm_url: str) -> EmailMessage:
    """The double opt-in email (French, plain text)."""
    org = config.organisation
    of = with_preposition("de", org.short_name or org.name)  # "de l’IREV"
    msg = EmailMessage()
    msg["Subject"] = f"Confirmez votre abonnement à la revue de presse {of}"
    msg["From"] = Address(config.email.from_name, addr_spec=config.email.from_address)
    msg["To"] = to
    msg["Date"] = format_datetime(now())
    msg["Message-ID"] = make_message_id(config, "confirm")
    msg["Auto-Submitted"] = "auto-generated"
    # Wrapped at 72 like the newsletter's text part (the link stays whole on its line).
    body = wrap(
        typeset(
            "Bonjour,\n\n"
            f"Quelqu'un (vous, sans doute) a demandé à recevoir la revue de presse {of} "
            "à cette adresse.\n\n"
            "Pour confirmer votre abonnement, ouvrez ce lien :\n"
        )
    )
    body += f"{confirm_url}\n\n" + wrap(
        typeset(
            "Si vous n'êtes pas à l'origine de cette demande, ignorez ce message : "
            "vous ne recevrez rien.\n\n"
        )
    )
    msg.set_content(body + f"-- \n{org.name}\n{org.url}\n", cte="quoted-printable")
    return msg


def confirmation_sender(
    config: Config, *, environ: Mapping[str, str] | None = None
) -> ConfirmationSender:
    """Sends the double opt-in email through ``delivery.transport`` (opened when needed)."""

    def send(to: str, confirm_url: str) -> None:
        message = confirmation_message(config, to=to, confirm_url=confirm_url)
        transport = open_transport(config, environ=environ)
        send_single(config, message, to=to, transport=transport, what="confirmation email")

    return send
