"""Signed tokens for the links of emails (confirm a subscription, unsubscribe).

Signed with itsdangerous and the key in the environment variable
PRESSREVIEW_SECRET_KEY (never the configuration file nor the store). A token
names a subscriber by id AND by a short digest of the address, so a token
stays bound to the person it was made for even if an id is reused after a
subscriber was forgotten. Each purpose has its own salt: a confirmation
token is not an unsubscribe token. Unsubscribe tokens do not expire (old
emails must keep working); confirmation tokens expire after a week.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass

from itsdangerous import BadData, SignatureExpired, Signer, TimestampSigner

from pressreview.errors import ConfigError, Refused

SECRET_ENV = "PRESSREVIEW_SECRET_KEY"
MIN_SECRET_LENGTH = 16
CONFIRM_MAX_AGE = 7 * 24 * 3600
_UNSUBSCRIBE = "pressreview.unsubscribe"
_CONFIRM = "pressreview.confirm"


class BadToken(Refused):
    """A token that is forged, altered, expired or made for another purpose."""


def secret_key(environ: Mapping[str, str] | None = None) -> str:
    """The signing key, from the environment; a clear error when it is missing or short."""
    env = os.environ if environ is None else environ
    key = env.get(SECRET_ENV, "")
    if len(key) < MIN_SECRET_LENGTH:
        raise ConfigError(
            f"{SECRET_ENV}: set it to a random secret of at least {MIN_SECRET_LENGTH} characters "
            '(e.g. python -c "import secrets; print(secrets.token_urlsafe(32))")'
        )
    return key


def address_digest(email_key: str) -> str:
    return hashlib.sha256(email_key.encode("utf-8")).hexdigest()[:10]


@dataclass(frozen=True)
class TokenSubject:
    subscriber_id: int
    digest: str


class Tokens:
    """Makes and checks the tokens of one secret key.

    A token is ``<id>.<digest>.<signature>`` (HMAC-SHA256, URL-safe), the
    confirmation token also carries a timestamp: short, and cheap to make for
    every message of a campaign.
    """

    def __init__(self, key: str):
        self._unsubscribe = Signer(key, salt=_UNSUBSCRIBE, digest_method=hashlib.sha256)
        self._confirm = TimestampSigner(key, salt=_CONFIRM, digest_method=hashlib.sha256)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Tokens:
        return cls(secret_key(environ))

    def unsubscribe(self, subscriber_id: int, email_key: str) -> str:
        return self._unsubscribe.sign(f"{subscriber_id}.{address_digest(email_key)}").decode(
            "ascii"
        )

    def confirm(self, subscriber_id: int, email_key: str) -> str:
        return self._confirm.sign(f"{subscriber_id}.{address_digest(email_key)}").decode("ascii")

    def read_unsubscribe(self, token: str) -> TokenSubject:
        try:
            value = self._unsubscribe.unsign(token)
        except BadData:
            raise BadToken("this unsubscribe link is not valid") from None
        return _subject(value)

    def read_confirm(self, token: str, *, max_age: int = CONFIRM_MAX_AGE) -> TokenSubject:
        try:
            value = self._confirm.unsign(token, max_age=max_age)
        except SignatureExpired:
            raise BadToken("this confirmation link has expired") from None
        except BadData:
            raise BadToken("this confirmation link is not valid") from None
        return _subject(value)


def _subject(value: bytes) -> TokenSubject:
    ident, _, digest = value.decode("ascii", "replace").partition(".")
    if not ident.isdigit() or len(digest) != 10:
        raise BadToken("this link is not valid")
    return TokenSubject(int(ident), digest)
