"""The MIME message of one recipient: headers, structure, encodings, DKIM."""

from __future__ import annotations

import email
import email.policy
import email.utils
import re

import pytest

from pressreview.config import Config
from pressreview.deliver.message import (
    DKIM_KEY_ENV,
    DkimSigner,
    MessageTemplate,
    build_message,
    dkim_signer,
)
from pressreview.errors import ConfigError, DeliveryError
from pressreview.render import UNSUBSCRIBE_PLACEHOLDER, RenderedEmail, render_email
from tests.fixtures_deliver import body_of, rsa_key
from tests.fixtures_issues import fixed_config, fixed_snapshot

LINK = "https://veille.example.org/abonnement/desabonnement/WzEsImFiYyJd.sig-nature_x"


def _config(**delivery: object) -> Config:
    return fixed_config(
        email={"from_address": "veille@crpv.example.org", "from_name": "Revue de presse « CRPV »"},
        delivery={"list_id": "revue.crpv.example.org", **delivery},
    )


def _rendered(config: Config) -> RenderedEmail:
    return render_email(config, fixed_snapshot(40))


def test_headers_and_structure() -> None:
    config = _config(unsubscribe_mailto="desinscription@crpv.example.org")
    msg = build_message(config, _rendered(config), to="marie@example.fr", unsubscribe_url=LINK)
    assert msg["Subject"] == (
        "Quartiers 2030\u00a0: où en sont les signatures\u202f? (revue de presse n°\u00a012)"
    )
    assert msg["To"] == "marie@example.fr"
    assert msg["From"].addresses[0].addr_spec == "veille@crpv.example.org"
    assert msg["From"].addresses[0].display_name == "Revue de presse « CRPV »"
    assert msg["Date"].datetime.tzinfo is not None
    assert re.fullmatch(r"<[^@]+@crpv\.example\.org>", msg["Message-ID"])
    assert "<revue.crpv.example.org>" in msg["List-Id"]
    assert msg["List-Unsubscribe"] == (
        f"<{LINK}>, <mailto:desinscription@crpv.example.org?subject=unsubscribe>"
    )
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert msg.get_content_type() == "multipart/alternative"
    parts = list(msg.iter_parts())
    assert [p.get_content_type() for p in parts] == ["text/plain", "text/html"]
    for part in parts:
        assert part.get_content_charset() == "utf-8"
        assert part["Content-Transfer-Encoding"] == "quoted-printable"


def test_wire_form_is_7bit_crlf_and_short_lines() -> None:
    config = _config()
    data = build_message(
        config, _rendered(config), to="marie@example.fr", unsubscribe_url=LINK
    ).as_bytes()
    assert data.isascii()
    assert b"\n" not in data.replace(b"\r\n", b"")
    head, _, body = data.partition(b"\r\n\r\n")
    assert b"=?utf-8?" in head  # the French subject is encoded
    assert max(len(line) for line in body.split(b"\r\n")) <= 76
    # the URL in List-Unsubscribe is never turned into encoded words
    assert f"List-Unsubscribe: <{LINK}>".encode() in head


def test_personal_link_replaces_the_placeholder_in_both_parts() -> None:
    config = _config()
    rendered = _rendered(config)
    assert UNSUBSCRIBE_PLACEHOLDER in rendered.html and UNSUBSCRIBE_PLACEHOLDER in rendered.text
    msg = build_message(config, rendered, to="marie@example.fr", unsubscribe_url=LINK + "&x=1")
    text = body_of(msg, "plain")
    html = body_of(msg, "html")
    assert UNSUBSCRIBE_PLACEHOLDER not in text + html
    assert LINK + "&x=1" in text
    assert LINK + "&amp;x=1" in html  # escaped in HTML
    # everything else is byte for byte the rendered body
    # (a MIME body always ends with a line break)
    assert html.replace(LINK + "&amp;x=1", UNSUBSCRIBE_PLACEHOLDER).rstrip(
        "\n"
    ) == rendered.html.rstrip("\n")
    assert text.replace(LINK + "&x=1", UNSUBSCRIBE_PLACEHOLDER).rstrip(
        "\n"
    ) == rendered.text.rstrip("\n")


def test_a_feed_cannot_spell_the_placeholder_and_collect_the_links() -> None:
    """Delivery puts each subscriber's link wherever the placeholder appears: a
    feed's link or title that spelt it would send every subscriber's link to the
    feed's own address. The placeholder is drawn at random for each process."""
    config = _config()
    snapshot = fixed_snapshot(3)
    item = snapshot["sections"][0]["items"][0]
    guesses = [
        "https://desabonnement.invalid/pressreview-unsubscribe-placeholder",
        UNSUBSCRIBE_PLACEHOLDER.rsplit("-", 1)[0] + "-0000000000000000",
    ]
    item["url"] = "https://evil.example/collect?u=" + guesses[0]
    item["title"] = "Lire " + " ".join(guesses)
    rendered = render_email(config, snapshot)
    assert rendered.unsubscribe_placeholder == UNSUBSCRIBE_PLACEHOLDER
    assert UNSUBSCRIBE_PLACEHOLDER not in item["url"] + item["title"]
    plain = render_email(config, fixed_snapshot(3))
    msg = build_message(config, rendered, to="marie@example.fr", unsubscribe_url=LINK)
    text, html = body_of(msg, "plain"), body_of(msg, "html")
    # The link goes where the template puts it, and nowhere else.
    assert text.count(LINK) == plain.text.count(UNSUBSCRIBE_PLACEHOLDER) >= 1
    assert html.count(LINK) == plain.html.count(UNSUBSCRIBE_PLACEHOLDER) >= 1
    assert "https://evil.example/collect?u=" + guesses[0] in html
    assert all(guess in text for guess in guesses)


def test_a_rendered_email_keeps_its_own_placeholder() -> None:
    """An email rendered by another process (another placeholder) is still personalized."""
    config = _config()
    rendered = _rendered(config)
    other = "https://desabonnement.invalid/pressreview-unsubscribe-from-elsewhere"
    moved = RenderedEmail(
        rendered.subject,
        rendered.html.replace(UNSUBSCRIBE_PLACEHOLDER, other),
        rendered.text.replace(UNSUBSCRIBE_PLACEHOLDER, other),
        rendered.preheader,
        unsubscribe_placeholder=other,
    )
    msg = build_message(config, moved, to="marie@example.fr", unsubscribe_url=LINK)
    assert other not in body_of(msg, "plain") + body_of(msg, "html")
    assert LINK in body_of(msg, "plain")


def test_template_gives_each_recipient_their_own_message() -> None:
    config = _config()
    template = MessageTemplate(config, _rendered(config))
    first = template.render(
        to="a@example.fr", unsubscribe_url=LINK + "A", message_id="<1@crpv.example.org>"
    )
    second = template.render(
        to="b@example.fr", unsubscribe_url=LINK + "B", message_id="<2@crpv.example.org>"
    )
    for data, who, mid in (
        (first, "a@example.fr", "<1@crpv.example.org>"),
        (second, "b@example.fr", "<2@crpv.example.org>"),
    ):
        msg = email.message_from_bytes(data, policy=email.policy.default)
        assert msg["To"] == who and msg["Message-ID"] == mid
        assert body_of(msg, "plain").count(LINK + ("A" if who[0] == "a" else "B")) >= 1


def test_test_copy_is_marked_in_the_subject() -> None:
    config = _config()
    msg = build_message(
        config, _rendered(config), to="moi@example.fr", unsubscribe_url=LINK, test=True
    )
    assert msg["Subject"].startswith("[TEST] Quartiers 2030")


@pytest.mark.parametrize(
    ("to", "url", "mid"),
    [
        ("pas une adresse", LINK, None),
        ("a@example.fr\r\nBcc: x@example.org", LINK, None),
        ("a@example.fr", LINK + "\r\nX: y", None),
        ("a@example.fr", LINK, "no-brackets@example.org"),
    ],
)
def test_header_injection_is_refused(to: str, url: str, mid: str | None) -> None:
    config = _config()
    with pytest.raises(DeliveryError):
        build_message(config, _rendered(config), to=to, unsubscribe_url=url, message_id=mid)


def test_dkim_signature_verifies() -> None:
    import base64

    import dkim

    private, public = rsa_key()
    config = _config(dkim_selector="pr2026", dkim_domain="crpv.example.org")
    signer = dkim_signer(config, {DKIM_KEY_ENV: private.decode()})
    assert isinstance(signer, DkimSigner)
    data = MessageTemplate(config, _rendered(config)).render(
        to="marie@example.fr", unsubscribe_url=LINK
    )
    signed = signer.sign(data)
    assert signed.startswith(b"DKIM-Signature:")
    header = signed.split(b"\r\n\r\n", 1)[0].decode()
    assert (
        "list-unsubscribe-post" in header.lower()
        and "s=pr2026" in header
        and "d=crpv.example.org" in header
    )

    def dns(name: bytes, timeout: int = 5) -> bytes:
        assert name == b"pr2026._domainkey.crpv.example.org."
        return b"v=DKIM1; k=rsa; p=" + base64.b64encode(public)

    assert dkim.verify(signed, dnsfunc=dns)
    tampered = signed.replace(b"marie@example.fr", b"pirate@example.fr", 1)
    assert not dkim.verify(tampered, dnsfunc=dns)


def test_dkim_needs_a_key_from_the_environment() -> None:
    config = _config(dkim_selector="pr2026", dkim_domain="crpv.example.org")
    with pytest.raises(ConfigError, match="PRESSREVIEW_DKIM_PRIVATE_KEY"):
        dkim_signer(config, {})
    with pytest.raises(ConfigError, match="unusable"):
        dkim_signer(config, {DKIM_KEY_ENV: "not a key"})
    assert dkim_signer(_config(), {}) is None


def test_prestuffed_wire_form_equals_stuffing_the_message() -> None:
    """The SMTP form made from pre-stuffed parts is exactly the message, dot-stuffed."""
    from pressreview.deliver.message import dot_stuff

    config = _config()
    body = ".mj-column { width: 100% }\n.\n..deux\n" + UNSUBSCRIBE_PLACEHOLDER + "\n.fin\n"
    rendered = RenderedEmail("Sujet", "<style>\n" + body + "</style>", body, "")
    template = MessageTemplate(config, rendered)
    # a link whose quoted-printable continuation line starts with "."
    link = "https://veille.example.org/abonnement/desabonnement/" + "x" * 23 + "." + "y" * 40
    plain = template.render(
        to="a@example.fr", unsubscribe_url=link, message_id="<1@crpv.example.org>", date=None
    )
    assert b"=\r\n.yyy" in plain and b"\r\n.fin" in plain
    stuffed = template.render(
        to="a@example.fr", unsubscribe_url=link, message_id="<1@crpv.example.org>", stuffed=True
    )
    strip_date = re.compile(rb"Date: [^\r]*")
    assert strip_date.sub(b"", stuffed) == strip_date.sub(b"", dot_stuff(plain))
    assert re.search(rb"(?m)^\.[^.\r]", stuffed) is None
    assert b"=\r\n..yyy" in stuffed


@pytest.mark.parametrize(
    "name",
    ["IREV – Centre de ressources", 'Revue "CRPV" <veille>, Hauts-de-France', "Revue de presse"],
)
def test_every_header_parses_back_to_what_was_meant(name: str) -> None:
    """Each header of the wire form, read back by the standard parser, gives the value meant."""
    config = fixed_config(
        email={
            "from_address": "veille@irev.fr",
            "from_name": name,
            "reply_to": "contact@irev.fr",
        },
        delivery={"list_id": "revue-de-presse.irev.fr"},
    )
    data = MessageTemplate(config, _rendered(config)).render(
        to="marie@example.fr", unsubscribe_url=LINK, message_id="<pr.12.1.ab@irev.fr>"
    )
    head = data.split(b"\r\n\r\n", 1)[0].decode("ascii")
    # RFC 2047: an encoded word never sits inside a quoted string
    assert not re.search(r'"[^"]*=\?utf-8\?', head, re.IGNORECASE), head
    msg = email.message_from_bytes(data, policy=email.policy.default)
    raw_list_id = " ".join(str(msg["List-Id"]).split())
    phrase, _, list_id = raw_list_id.rpartition(" <")
    assert list_id == "revue-de-presse.irev.fr>"
    if phrase.startswith('"'):
        phrase = email.utils.unquote(phrase)
    assert phrase == name
    assert msg["From"].addresses[0].display_name == name
    assert msg["From"].addresses[0].addr_spec == "veille@irev.fr"
    assert msg["Reply-To"].addresses[0].addr_spec == "contact@irev.fr"
    assert msg["To"].addresses[0].addr_spec == "marie@example.fr"
    assert msg["Subject"] == _rendered(config).subject
    assert msg["Message-ID"] == "<pr.12.1.ab@irev.fr>"
    assert msg["Date"].datetime.tzinfo is not None
    assert msg["List-Unsubscribe"] == f"<{LINK}>"
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert msg["MIME-Version"] == "1.0"
    for header, value in msg.items():
        assert not getattr(value, "defects", ()), (header, value.defects)
