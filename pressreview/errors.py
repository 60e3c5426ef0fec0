"""The project's exceptions.

The core raises these; only the command line turns them into messages and
exit codes. Every message says what is wrong and, where it can, how to fix it.
"""

from __future__ import annotations


class PressreviewError(Exception):
    """Base class: a problem the user can act on (shown as one line)."""

    exit_code = 1


class ConfigError(PressreviewError):
    """feeds.yaml (or an override) is invalid."""

    exit_code = 2


class UsageError(PressreviewError):
    """A command was given arguments it cannot act on."""

    exit_code = 2


class StoreError(PressreviewError):
    """The database cannot be opened or migrated."""


class NotFound(PressreviewError):
    """An id, name or address that does not exist."""


class Refused(PressreviewError):
    """A change that the rules forbid (published item, empty title, ...)."""


class Conflict(Refused):
    """A change based on a stale version of a row."""


class DuplicateKey(Conflict):
    """A write the database refused because a unique key is taken (by a concurrent run).

    Raised by the store in place of the driver's integrity error.
    """


class RenderError(PressreviewError):
    """A template or MJML document could not be rendered."""


class DeliveryError(PressreviewError):
    """Messages could not be handed to the transport."""
