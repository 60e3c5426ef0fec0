"""Signed tokens for the links of emails (confirm a subscription, unsubscribe).

Signed with itsdangerous and the key in the environment variable
PRESSREVIEW_SECRET_KEY (never the configuration file nor the store). A token
names a subscriber by id AND by a short digest of the address, so a token
stays bound to the person it was made for even if an id is reused after a
subscriber was forgotten. Each purpose has its own salt: a confirmation
token is not an unsubscribe token (nor a subscription form's token, which only
proves the form was shown by this site recently). Unsubscribe tokens do not expire (old
emails must keep working); confirmation tokens expire after a week.
"""

from __future__ import annotations

import hashlib
import itertools
import math
import os
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass

from itsdangerous import BadData, SignatureExpired, Signer, TimestampSigner

from pressreview.errors import ConfigError, Refused

SECRET_ENV = "PRESSREVIEW_SECRET_KEY"
MIN_SECRET_LENGTH = 16
MIN_DISTINCT_CHARACTERS = 8
MIN_STEP_CHANGES = 10
MIN_SECRET_BITS = 48
#: How long the subscription form (its signed token) may be posted after it was shown.
FORM_MAX_AGE = 6 * 3600
_FORM = "pressreview.form"
CONFIRM_MAX_AGE = 7 * 24 * 3600
_UNSUBSCRIBE = "pressreview.unsubscribe"
_CONFIRM = "pressreview.confirm"


class BadToken(Refused):
    """A token that is forged, altered, expired or made for another purpose."""


def secret_key(environ: Mapping[str, str] | None = None) -> str:
    """The signing key, from the environment; a clear error when it is missing or short."""
    env = os.environ if environ is None else environ
    key = env.get(SECRET_ENV, "")
    hint = '(e.g. python -c "import secrets; print(secrets.token_urlsafe(32))")'
    if len(key) < MIN_SECRET_LENGTH:
        raise ConfigError(
            f"{SECRET_ENV}: set it to a random secret of at least {MIN_SECRET_LENGTH} characters "
            + hint
        )
    weakness = secret_weakness(key)
    if weakness:
        raise ConfigError(f"{SECRET_ENV}: refused, {weakness}; use a random secret {hint}")
    return key


def secret_weakness(key: str) -> str | None:
    """Why a long enough key is still guessable (None when it looks random enough).

    Refused: few different characters, a repeated pattern (``abcabc...``), a run
    of steps (``abcdef...``, ``0123...``), or less than 48 bits of estimated
    entropy (Shannon estimate over the characters used).
    """
    n = len(key)
    if len(set(key)) < MIN_DISTINCT_CHARACTERS:
        return f"it has fewer than {MIN_DISTINCT_CHARACTERS} different characters"
    for period in range(1, n // 2 + 1):
        if all(key[i] == key[i % period] for i in range(n)):
            return "it repeats a pattern"
    steps = [ord(b) - ord(a) for a, b in itertools.pairwise(key)]
    changes = 1 + sum(1 for a, b in itertools.pairwise(steps) if a != b)
    if changes < MIN_STEP_CHANGES:
        return "it is a sequence of characters"
    counts = Counter(key)
    bits = -sum(c * math.log2(c / n) for c in counts.values())
    if bits < MIN_SECRET_BITS:
        return f"it is too predictable (about {bits:.0f} bits, {MIN_SECRET_BITS} needed)"
    return None


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
        self._form = TimestampSigner(key, salt=_FORM, digest_method=hashlib.sha256)
        self.key = key

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Tokens:
        return cls(secret_key(environ))

    def unsubscribe(self, subscriber_id: int, email_key: str) -> str:
        return self._unsubscribe.sign(f"{subscriber_id}.{address_digest(email_key)}").decode(
            "ascii"
        )

    def confirm(self, subscriber_id: int, email_key: str) -> str:
        return self._confirm.sign(f"{subscriber_id}.{address_digest(email_key)}").decode("ascii")

    def form(self) -> str:
        """The token of a freshly shown subscription form (signed time)."""
        return self._form.sign(b"form").decode("ascii")

    def check_form(self, token: str, *, max_age: int = FORM_MAX_AGE) -> bool:
        """Whether the form was shown by us, less than ``max_age`` seconds ago."""
        try:
            return self._form.unsign(token, max_age=max_age) == b"form"
        except BadData:
            return False

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
