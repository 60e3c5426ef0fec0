"""The message on the wire, for bodies and settings the newsletter does not always have.

Complements tests/test_deliver_message.py: Message-IDs, bodies with CRLF line
ends or without a final line break, the link zero or several times, links and
addresses with characters that need care, the errors a bad setting gives, and
what exactly the DKIM signature covers.
"""

from __future__ import annotations

import base64
import email
import email.policy
import re
from collections.abc import Callable
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from pressreview.config import Config
from pressreview.deliver.message import (
    DKIM_KEY_ENV,
    DKIM_KEY_FILE_ENV,
    MessageTemplate,
    build_message,
    dkim_signer,
    make_message_id,
)
from pressreview.errors import ConfigError, DeliveryError
from pressreview.render import UNSUBSCRIBE_PLACEHOLDER, RenderedEmail
from tests.fixtures_deliver import body_of, rsa_key
from tests.fixtures_issues import fixed_config

LINK = "https://veille.example.org/abonnement/desabonnement/MTIz.X9-yZ_w"


def _config(**email_values: str) -> Config:
    values = {"from_address": "veille@crpv.example.org", "from_name": "Revue CRPV"}
    return fixed_config(email={**values, **email_values})


def _wire(
    config: Config,
    rendered: RenderedEmail,
    *,
    to: str = "marie@example.fr",
    unsubscribe_url: str = LINK,
    message_id: str | None = None,
) -> bytes:
    return MessageTemplate(config, rendered).render(
        to=to, unsubscribe_url=unsubscribe_url, message_id=message_id
    )


def _parse(data: bytes) -> EmailMessage:
    msg = email.message_from_bytes(data.replace(b"\r\n", b"\n"), policy=email.policy.default)
    assert isinstance(msg, EmailMessage)
    return msg


def _assert_crlf_only(data: bytes) -> None:
    assert b"\r" not in data.replace(b"\r\n", b""), "a bare CR"
    assert b"\n" not in data.replace(b"\r\n", b""), "a bare LF"


# -- Message-ID ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("from_address", "domain"),
    [
        ("veille@crpv.example.org", "crpv.example.org"),
        ("Veille@CRPV.Example.org", "crpv.example.org"),
        ('"veille@crpv"@example.org', "example.org"),
    ],
)
def test_message_id_names_issue_and_subscriber_on_the_sender_domain(
    from_address: str, domain: str
) -> None:
    """docs/delivery.md: <pr.12.345.5f1c0a2b9e7d@example.org> (issue, subscriber, random)."""
    config = _config(from_address=from_address)
    first = make_message_id(config, 12, 345)
    assert re.fullmatch(rf"<pr\.12\.345\.[0-9a-f]{{12}}@{re.escape(domain)}>", first), first
    assert make_message_id(config, 12, 345) != first  # globally unique, even for a resend
    assert re.fullmatch(rf"<pr\.[0-9a-f]{{12}}@{re.escape(domain)}>", make_message_id(config))


# -- bodies ---------------------------------------------------------------------------


def test_bodies_with_crlf_line_ends_stay_crlf_on_the_wire() -> None:
    text = "ligne 1\r\nligne 2\r\n" + UNSUBSCRIBE_PLACEHOLDER + "\r\nfin\r\n"
    html = "<p>un</p>\r\n<a href='" + UNSUBSCRIBE_PLACEHOLDER + "'>x</a>\r\n"
    data = _wire(_config(), RenderedEmail("Sujet", html, text, ""))
    _assert_crlf_only(data)
    msg = _parse(data)
    assert body_of(msg, "plain") == f"ligne 1\nligne 2\n{LINK}\nfin\n"
    assert body_of(msg, "html") == f"<p>un</p>\n<a href='{LINK}'>x</a>\n"


def test_a_body_without_a_final_line_break_keeps_its_last_line() -> None:
    rendered = RenderedEmail("Sujet", "<p>x</p>", "texte sans fin", "")
    msg = build_message(_config(), rendered, to="marie@example.fr", unsubscribe_url=LINK)
    assert body_of(msg, "plain") == "texte sans fin\n"
    assert body_of(msg, "html") == "<p>x</p>\n"
    assert [p.get_content_type() for p in msg.iter_parts()] == ["text/plain", "text/html"]


def test_a_body_ending_with_a_line_break_gets_no_extra_line() -> None:
    rendered = RenderedEmail("Sujet", "<p>x</p>\n", "texte\n", "")
    msg = build_message(_config(), rendered, to="marie@example.fr", unsubscribe_url=LINK)
    assert body_of(msg, "plain") == "texte\n"
    assert body_of(msg, "html") == "<p>x</p>\n"


def test_the_link_replaces_every_placeholder_and_a_body_may_have_none() -> None:
    html = (
        f"<p><a href='{UNSUBSCRIBE_PLACEHOLDER}'>haut</a></p>\n<p>milieu</p>\n"
        f"<p><a href='{UNSUBSCRIBE_PLACEHOLDER}'>bas</a></p>\n<p>fin</p>\n"
    )
    text = "Sans lien personnel.\nSeconde ligne.\n"
    msg = _parse(_wire(_config(), RenderedEmail("Sujet", html, text, "")))
    assert body_of(msg, "html") == html.replace(UNSUBSCRIBE_PLACEHOLDER, LINK)
    assert body_of(msg, "plain") == text


def test_the_link_is_escaped_in_the_html_part_only() -> None:
    link = "https://veille.example.org/d?a=1&b='2'&c=\"3\""
    html = f'<a href="{UNSUBSCRIBE_PLACEHOLDER}">se désabonner</a>\n'
    text = f"Se désabonner : {UNSUBSCRIBE_PLACEHOLDER}\n"
    msg = _parse(_wire(_config(), RenderedEmail("Sujet", html, text, ""), unsubscribe_url=link))
    assert body_of(msg, "html") == (
        '<a href="https://veille.example.org/d?a=1&amp;b=&#x27;2&#x27;&amp;c=&quot;3&quot;">'
        "se désabonner</a>\n"
    )
    assert body_of(msg, "plain") == f"Se désabonner : {link}\n"


def test_addresses_and_links_with_any_plain_ascii_letter_are_accepted() -> None:
    rendered = RenderedEmail("Sujet", "<p>x</p>\n", f"{UNSUBSCRIBE_PLACEHOLDER}\n", "")
    msg = _parse(_wire(_config(), rendered, to="Xavier.X@example.fr"))
    assert msg["To"] == "Xavier.X@example.fr"
    assert msg["List-Unsubscribe"] == f"<{LINK}>" and "X9" in LINK
    assert body_of(msg, "plain") == f"{LINK}\n"


@pytest.mark.parametrize(
    ("values", "says"),
    [
        ({"to": "pas une adresse"}, "cannot send to 'pas une adresse': not a plain ASCII address"),
        ({"unsubscribe_url": LINK + " x"}, f"unsubscribe link '{LINK} x' is not a plain URL"),
        ({"message_id": "sans-crochets@x.org"}, "Message-ID 'sans-crochets@x.org' must look like"),
    ],
)
def test_a_refused_value_is_named_in_the_error(values: dict[str, str], says: str) -> None:
    rendered = RenderedEmail("Sujet", "<p>x</p>\n", "x\n", "")
    with pytest.raises(DeliveryError, match=re.escape(says)):
        _wire(_config(), rendered, **values)


# -- settings -------------------------------------------------------------------------


def test_list_id_accepts_capitals_and_refuses_what_is_not_a_list_id() -> None:
    rendered = RenderedEmail("Sujet", "<p>x</p>\n", "x\n", "")
    config = fixed_config(
        email={"from_address": "veille@crpv.example.org", "from_name": "Revue CRPV"},
        delivery={"list_id": "Revue.CRPV.example.org"},
    )
    assert _parse(_wire(config, rendered))["List-Id"] == '"Revue CRPV" <Revue.CRPV.example.org>'
    bad = fixed_config(delivery={"list_id": "revue crpv"})
    with pytest.raises(ConfigError, match=r"delivery\.list_id 'revue crpv' is not a valid list id"):
        _wire(bad, rendered)


@pytest.mark.parametrize(
    "values",
    [
        {"from_address": "veille@crpv.example.org>"},
        {"from_address": "veille@crpv.example.org, autre@example.org"},
        {"reply_to": "contact@crpv.example.org\nBcc: x@example.org"},
    ],
)
def test_an_unusable_sender_address_is_one_clear_configuration_error(
    values: dict[str, str],
    make_config: Callable[..., Config],
    cli: Callable[..., Any],
    tmp_path: Path,
) -> None:
    """Refused when the configuration is read, before any command (issue, confirmation
    or test send) builds a message with it."""
    make_config()  # the same file with a good sender loads
    email_values = {"from_address": "veille@crpv.example.org", "from_name": "Revue", **values}
    with pytest.raises(ConfigError, match=r"email\.(from_address|reply_to): not a"):
        make_config(email=email_values)
    result = cli(tmp_path / "feeds.yaml", "send", "12")
    assert result.exit_code == 2, result.output
    assert result.output.count("\n") == 1 and "Traceback" not in result.output
    assert "email." in result.output


# -- DKIM -----------------------------------------------------------------------------


def _dkim_config() -> Config:
    return fixed_config(
        email={
            "from_address": "veille@crpv.example.org",
            "from_name": "Revue CRPV",
            "reply_to": "contact@crpv.example.org",
        },
        delivery={"dkim_selector": "pr2026", "dkim_domain": "crpv.example.org"},
    )


def _tags(signed: bytes) -> dict[str, str]:
    header = signed.split(b"\r\n\r\n", 1)[0].decode("ascii")
    field = re.match(r"DKIM-Signature:(.*?)\r\n(?=\S)", header, re.S)
    assert field is not None
    unfolded = re.sub(r"\s+", "", field.group(1))
    return dict(tag.split("=", 1) for tag in unfolded.split(";") if tag)


def test_dkim_signs_the_documented_headers_relaxed_and_keeps_the_wire_crlf() -> None:
    import dkim

    private, public = rsa_key()
    config = _dkim_config()
    signer = dkim_signer(config, {DKIM_KEY_ENV: private.decode()})
    assert signer is not None
    signed = signer.sign(_wire(config, RenderedEmail("Sujet", "<p>x</p>\n", "x\n", "")))
    _assert_crlf_only(signed)
    tags = _tags(signed)
    assert tags["c"] == "relaxed/relaxed"
    assert (tags["s"], tags["d"]) == ("pr2026", "crpv.example.org")
    assert tags["h"].split(":") == [
        "from", "to", "subject", "date", "message-id", "reply-to", "list-id",
        "list-unsubscribe", "list-unsubscribe-post", "mime-version", "content-type",
    ]  # fmt: skip

    def dns(name: bytes, timeout: int = 5) -> bytes:
        return b"v=DKIM1; k=rsa; p=" + base64.b64encode(public)

    assert dkim.verify(signed, dnsfunc=dns)


def test_dkim_key_from_a_file_or_the_process_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    private, _ = rsa_key()
    config = _dkim_config()
    key_file = tmp_path / "dkim.pem"
    key_file.write_bytes(private)
    signer = dkim_signer(config, {DKIM_KEY_FILE_ENV: str(key_file)})
    assert signer is not None and signer.key == private
    missing = tmp_path / "absent.pem"
    with pytest.raises(
        ConfigError, match=rf"{DKIM_KEY_FILE_ENV}: cannot read {re.escape(str(missing))}: No such"
    ):
        dkim_signer(config, {DKIM_KEY_FILE_ENV: str(missing)})
    # without an explicit mapping the process environment is read (what `send` does)
    monkeypatch.delenv(DKIM_KEY_ENV, raising=False)
    monkeypatch.setenv(DKIM_KEY_FILE_ENV, str(key_file))
    from_env = dkim_signer(config)
    assert from_env is not None and from_env.key == private
