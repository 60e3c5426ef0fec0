"""Signed tokens, kind by kind: what each accepts, refuses, and for how long.

The links of emails carry them (confirm a subscription, unsubscribe) and the
subscription form carries one: each kind is refused when altered, signed with
another key, made for another kind, or (confirmation, form) too old.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
from itsdangerous import Signer, TimestampSigner

from pressreview.errors import ConfigError
from pressreview.tokens import (
    CONFIRM_MAX_AGE,
    FORM_MAX_AGE,
    SECRET_ENV,
    BadToken,
    Tokens,
    address_digest,
    secret_key,
    secret_weakness,
)
from tests.fixtures_deliver import SECRET

OTHER = "another-secret-key-0123456789"
DAY = 24 * 3600


@contextmanager
def made_ago(seconds: int) -> Iterator[None]:
    """Tokens made inside this block carry a time ``seconds`` in the past."""
    real = TimestampSigner.get_timestamp
    TimestampSigner.get_timestamp = lambda self: int(time.time()) - seconds  # type: ignore[method-assign]
    try:
        yield
    finally:
        TimestampSigner.get_timestamp = real  # type: ignore[method-assign]


def _tamper(token: str) -> str:
    payload, signature = token.rsplit(".", 1)
    return payload + "." + ("A" if signature[0] != "A" else "B") + signature[1:]


# -- each kind reads back what it was made for -------------------------------------


def test_each_kind_names_the_subscriber_and_the_address() -> None:
    tokens = Tokens(SECRET)
    for read, make in [
        (tokens.read_unsubscribe, tokens.unsubscribe),
        (tokens.read_confirm, tokens.confirm),
    ]:
        subject = read(make(4012, "marie@example.fr"))
        assert (subject.subscriber_id, subject.digest) == (4012, address_digest("marie@example.fr"))
        other = read(make(4012, "karim@example.org"))
        assert other.digest != subject.digest  # bound to the address, not only the id
    assert (
        address_digest("marie@example.fr") == hashlib.sha256(b"marie@example.fr").hexdigest()[:10]
    )
    assert tokens.check_form(tokens.form()) is True


def test_tokens_are_short_url_safe_and_the_same_for_everyone_with_the_key() -> None:
    """A campaign makes one per message: the same key gives the same link anywhere."""
    a, b = Tokens(SECRET), Tokens(SECRET)
    token = a.unsubscribe(7, "marie@example.fr")
    assert token == b.unsubscribe(7, "marie@example.fr")
    assert token.startswith("7.") and len(token) < 80
    assert all(c.isalnum() or c in "-_." for c in token)
    assert b.read_unsubscribe(token).subscriber_id == 7
    assert b.read_confirm(a.confirm(7, "marie@example.fr")).subscriber_id == 7
    assert b.check_form(a.form())


def test_links_already_sent_keep_working_after_an_upgrade() -> None:
    """The format is a promise: links in emails sent by an earlier version (same key)."""
    sent_in_2025 = "7.ba7eba2a21.whfQaqINo6DZysj4oHeyFhcramNO5pzn6oeMAu0jaXU"
    assert Tokens(SECRET).unsubscribe(7, "marie@example.fr") == sent_in_2025
    subject = Tokens(SECRET).read_unsubscribe(sent_in_2025)
    assert (subject.subscriber_id, subject.digest) == (7, "ba7eba2a21")
    # made on 2025-12-01 00:00 UTC: valid for whoever accepts its age
    confirm = "7.ba7eba2a21.aSzagA.iC9vZXjq5GshqKbBDnojrCptMhLY2T7pGZUW0iozh8A"
    assert Tokens(SECRET).read_confirm(confirm, max_age=10**10).subscriber_id == 7
    form = "form.aSzagA.rkF3Nradie84TBcWIbPbg9EoEVNsCvZdmpSCb7YF1J8"
    assert Tokens(SECRET).check_form(form, max_age=10**10) is True
    with pytest.raises(BadToken, match="expired"):
        Tokens(SECRET).read_confirm(confirm)
    assert Tokens(SECRET).check_form(form) is False


# -- refused: altered, foreign key, another kind, garbage --------------------------

Kind = tuple[Callable[[Tokens], str], Callable[[Tokens, str], object]]


def _unsubscribe(t: Tokens) -> str:
    return t.unsubscribe(7, "marie@example.fr")


def _confirm(t: Tokens) -> str:
    return t.confirm(7, "marie@example.fr")


def _form(t: Tokens) -> str:
    return t.form()


READERS: dict[str, Callable[[Tokens, str], object]] = {
    "unsubscribe": lambda t, s: t.read_unsubscribe(s),
    "confirm": lambda t, s: t.read_confirm(s),
}
MAKERS: dict[str, Callable[[Tokens], str]] = {
    "unsubscribe": _unsubscribe,
    "confirm": _confirm,
    "form": _form,
}


@pytest.mark.parametrize("kind", ["unsubscribe", "confirm"])
@pytest.mark.parametrize(
    "forge",
    [
        pytest.param(lambda kind: _tamper(MAKERS[kind](Tokens(SECRET))), id="altered signature"),
        pytest.param(lambda kind: MAKERS[kind](Tokens(OTHER)), id="another key"),
        pytest.param(
            lambda kind: MAKERS["confirm" if kind == "unsubscribe" else "unsubscribe"](
                Tokens(SECRET)
            ),
            id="another kind",
        ),
        pytest.param(lambda kind: MAKERS["form"](Tokens(SECRET)), id="a form token"),
        pytest.param(
            lambda kind: MAKERS[kind](Tokens(SECRET)).replace("7.", "8.", 1), id="another id"
        ),
        pytest.param(lambda kind: "rien", id="garbage"),
        pytest.param(lambda kind: "", id="empty"),
    ],
)
def test_links_are_refused_unless_made_with_our_key_for_their_kind(
    kind: str, forge: Callable[[str], str]
) -> None:
    with pytest.raises(BadToken, match="link is not valid"):
        READERS[kind](Tokens(SECRET), forge(kind))


@pytest.mark.parametrize(
    "token",
    [
        pytest.param(_tamper(Tokens(SECRET).form()), id="altered"),
        pytest.param(Tokens(OTHER).form(), id="another key"),
        pytest.param(_confirm(Tokens(SECRET)), id="a confirmation token"),
        pytest.param(_unsubscribe(Tokens(SECRET)), id="an unsubscribe token"),
        pytest.param(
            TimestampSigner(SECRET, salt="pressreview.form", digest_method=hashlib.sha256)
            .sign(b"other")
            .decode(),
            id="signed, another content",
        ),
        pytest.param("rien", id="garbage"),
    ],
)
def test_a_form_token_is_refused_unless_ours(token: str) -> None:
    assert Tokens(SECRET).check_form(token) is False


@pytest.mark.parametrize("kind", ["unsubscribe", "confirm"])
@pytest.mark.parametrize(
    "payload",
    [
        "abc.0123456789",
        "7",
        "7.",
        "7.012345678",
        "7.0123456789a",
        "-7.0123456789",
        ".0123456789",
        "é.0123456789",  # not ASCII
    ],
)
def test_a_well_signed_but_malformed_subject_is_refused(kind: str, payload: str) -> None:
    """Whoever holds the key cannot make a link that names no subscriber properly."""
    salt = f"pressreview.{kind}"
    signer = (Signer if kind == "unsubscribe" else TimestampSigner)(
        SECRET, salt=salt, digest_method=hashlib.sha256
    )
    good = signer.sign("7.0123456789").decode()
    assert READERS[kind](Tokens(SECRET), good) is not None  # the control: well formed
    with pytest.raises(BadToken, match="not valid"):
        READERS[kind](Tokens(SECRET), signer.sign(payload).decode())


# -- how long each kind lives ------------------------------------------------------


@pytest.mark.parametrize(
    ("age", "works"),
    [(0, True), (CONFIRM_MAX_AGE - 3600, True), (CONFIRM_MAX_AGE + 60, False), (30 * DAY, False)],
)
def test_confirmation_links_expire_after_a_week(age: int, works: bool) -> None:
    assert CONFIRM_MAX_AGE == 7 * DAY
    with made_ago(age):
        token = Tokens(SECRET).confirm(7, "marie@example.fr")
    if works:
        assert Tokens(SECRET).read_confirm(token).subscriber_id == 7
    else:
        with pytest.raises(BadToken, match="this confirmation link has expired"):
            Tokens(SECRET).read_confirm(token)


def test_an_expired_and_altered_confirmation_link_is_not_called_expired() -> None:
    with made_ago(30 * DAY):
        token = Tokens(SECRET).confirm(7, "marie@example.fr")
    with pytest.raises(BadToken, match="this confirmation link is not valid"):
        Tokens(SECRET).read_confirm(_tamper(token))


def test_unsubscribe_links_never_expire() -> None:
    with made_ago(10 * 365 * DAY):
        token = Tokens(SECRET).unsubscribe(7, "marie@example.fr")
    assert Tokens(SECRET).read_unsubscribe(token).subscriber_id == 7
    with pytest.raises(BadToken, match="this unsubscribe link is not valid"):
        Tokens(SECRET).read_unsubscribe(_tamper(token))


@pytest.mark.parametrize(
    ("age", "works"), [(0, True), (FORM_MAX_AGE - 60, True), (FORM_MAX_AGE + 60, False)]
)
def test_a_form_may_be_posted_for_six_hours(age: int, works: bool) -> None:
    assert FORM_MAX_AGE == 6 * 3600
    with made_ago(age):
        token = Tokens(SECRET).form()
    assert Tokens(SECRET).check_form(token) is works
    assert Tokens(SECRET).check_form(token, max_age=age + 3600) is True


# -- the signing key ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({}, "set it to a random secret of at least 16 characters"),
        ({SECRET_ENV: ""}, "set it to a random secret of at least 16 characters"),
        ({SECRET_ENV: "x7Kq2mZp9Lw4Rt8"}, "set it to a random secret of at least 16 characters"),
        ({SECRET_ENV: "aaaaaaaaaaaaaaaaaaaa"}, "refused, it has fewer than 8 different characters"),
    ],
)
def test_a_missing_short_or_weak_key_is_a_clear_configuration_error(
    environ: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError) as excinfo:
        secret_key(environ)
    text = str(excinfo.value)
    assert text.startswith(f"{SECRET_ENV}: ") and message in text and "\n" not in text
    assert "secrets.token_urlsafe(32)" in text  # how to make a good one
    with pytest.raises(ConfigError):
        Tokens.from_env(environ)


def test_the_key_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    key = "aQ3zR8kWaQ3zR8Wk"  # as short and as little random as accepted
    assert secret_key({SECRET_ENV: key}) == key
    monkeypatch.setenv(SECRET_ENV, key)
    assert secret_key() == key
    from_env = Tokens.from_env()
    assert from_env.key == key
    assert Tokens(key).read_unsubscribe(from_env.unsubscribe(3, "a@b.fr")).subscriber_id == 3
    monkeypatch.delenv(SECRET_ENV)
    with pytest.raises(ConfigError, match=SECRET_ENV):
        secret_key()


@pytest.mark.parametrize(
    ("key", "why"),
    [
        # seven different characters, however long
        ("abcdefgabcdefgabcdefgg", "it has fewer than 8 different characters"),
        ("q7Zk2mXpq7Zk2mXp", "it repeats a pattern"),  # period: half the length
        ("q7Zk2mXpAq7Zk2mXpAq7Zk2mXpA", "it repeats a pattern"),  # period: a third
        ("abcdefghijklmnopqrstuvwxyz", "it is a sequence of characters"),
        ("0123456789abcdef", "it is a sequence of characters"),
        ("zyxwvutsrqponmlkjihg", "it is a sequence of characters"),
        ("passwordpassword", "it has fewer than 8 different characters"),
        ("efghijklWYWtkYtW", "it is a sequence of characters"),  # nine changes of step
        ("aQaaZaa3aRa8akaa7Wa", "it is too predictable (about 43 bits, 48 needed)"),
        ("kQp3ppW8aRaWaaa3R", "it is too predictable (about 47 bits, 48 needed)"),
    ],
)
def test_long_but_guessable_keys_are_refused_with_the_reason(key: str, why: str) -> None:
    assert len(key) >= 16
    assert secret_weakness(key) == why
    with pytest.raises(
        ConfigError, match=f"refused, {why}".replace("(", r"\(").replace(")", r"\)")
    ):
        secret_key({SECRET_ENV: key})


@pytest.mark.parametrize(
    "key",
    [
        "aQ3zR8kWaQ3zR8Wk",  # eight different characters, each twice: 48 bits, no pattern
        "bcdefgh3pMp3k3Wz",  # a run, then ten changes of step in all
        "Tr0ub4dor&3-horse-battery",
        "test-secret-key-0123456789abcdef",
    ],
)
def test_the_least_random_keys_that_pass(key: str) -> None:
    assert secret_weakness(key) is None
    assert secret_key({SECRET_ENV: key}) == key
