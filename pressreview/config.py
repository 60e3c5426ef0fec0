"""Load and validate feeds.yaml into one frozen Config object.

The schema is the set of frozen dataclasses below: each field's type hint is
what the YAML value must be, its default is used when the key is absent.
A generic validator walks the YAML against the dataclasses and reports the
first problem with the key's path (``feeds[4].url: not a URL``).
Every rule that spans fields is checked here too (``_check``: the DKIM pair,
territory names, base URLs); nothing downstream re-checks them. Two checks
live where the value is used, on purpose: ``schedule.*`` is checked when the
scheduler's triggers are built (only APScheduler can parse the cron fields,
and a configuration without a scheduler need not have a valid schedule), and
``digest.editors`` is required only when a ``review`` digest runs.

Order of precedence: defaults, then feeds.yaml, then ``overrides`` (CLI
options), then the environment for the few values that may come from it
(``PRESSREVIEW_DATABASE_URL``). Secrets are never read from the file.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import re
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Union
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from babel import Locale, UnknownLocaleError

from pressreview.errors import ConfigError, Refused
from pressreview.geo import load_geography
from pressreview.text import fold

CONFIG_ENV = "PRESSREVIEW_CONFIG"
DATABASE_ENV = "PRESSREVIEW_DATABASE_URL"
DEFAULT_CONFIG = "feeds.yaml"


@dataclass(frozen=True)
class Organisation:
    """Who publishes the newsletter (shown in headers and footers)."""

    name: str = "Centre de ressources politique de la ville"
    #: The name used inside sentences, with its article: "l'IREV", "le Centre de
    #: ressources" ("de" + "le" gives "du"). Empty: the full name, without article.
    short_name: str = ""
    url: str = "https://www.example.org/"
    logo_url: str | None = None
    #: A small PNG (about 180 px wide) published with the archive as ``logo.png``;
    #: without logo_url, the email shows it from ``<archive.base_url>logo.png``.
    logo_file: str | None = None
    postal_address: str = ""
    contact_email: str = "contact@example.org"
    #: Why subscribers receive the email (footer text); empty: a sentence made
    #: from short_name.
    reason: str = ""


@dataclass(frozen=True)
class LegalSettings:
    """What the "Mentions légales" and "Données personnelles" pages say.

    Empty values fall back on the organisation (publisher, contact); the
    placeholder check of ``issue publish``, ``send`` and ``archive build``
    looks at the organisation's postal address and contact.
    """

    #: The publisher: legal name and status (default: organisation.name).
    publisher: str = ""
    #: The director of publication (name and role).
    publication_director: str = ""
    #: The host of the web archive: name, address, telephone.
    host: str = ""
    #: How to reach the data protection officer (e-mail or postal address).
    dpo_contact: str = ""
    #: How long a former subscriber's address is kept, as the privacy page says it
    #: (the staff erase it with ``pressreview subscribers remove --forget``).
    retention: str = "trois ans après le désabonnement, comme preuve du consentement"


@dataclass(frozen=True)
class CollectSettings:
    """How sources are fetched."""

    concurrency: int = 64
    per_host: int = 4
    connect_timeout: float = 10.0
    read_timeout: float = 20.0
    total_timeout: float = 60.0
    max_bytes: int = 15_000_000
    #: Entries read per feed at most, the newest first (bounds memory and time).
    max_entries: int = 2_000
    max_redirects: int = 5
    #: First back-off after a failure, doubled for each consecutive failure.
    backoff_minutes: float = 30.0
    backoff_max_hours: float = 24.0
    #: Near-duplicate titles are looked for among items first seen this recently.
    dedupe_window_days: int = 14
    #: Jaccard similarity of title word-shingles above which two titles are one story.
    near_duplicate_threshold: float = 0.6
    excerpt_chars: int = 300
    #: Contact URL sent in the User-Agent header.
    contact_url: str = "https://www.example.org/"


@dataclass(frozen=True)
class Feed:
    """One source of news."""

    name: str
    url: str
    territory: str | None = None
    tags: tuple[str, ...] = ()
    enabled: bool = True
    #: "feed" (RSS, Atom, JSON Feed) or "ical" (an iCalendar .ics of events for the agenda).
    kind: Literal["feed", "ical"] = "feed"


@dataclass(frozen=True)
class Filters:
    """Relevance rules: case- and accent-insensitive whole words and phrases."""

    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    #: Items scoring below this are kept with status ``filtered``.
    min_score: int = 1


@dataclass(frozen=True)
class Section:
    """A theme of the newsletter."""

    key: str
    title: str
    match: tuple[str, ...] = ()
    order: int | None = None


@dataclass(frozen=True)
class Territory:
    """A place items are tagged with when its name or an alias appears."""

    name: str
    aliases: tuple[str, ...] = ()
    department: str | None = None
    #: SIREN of the EPCI this territory stands for (a commune's EPCI for a
    #: commune-carried contract); names of communes and EPCI found in the
    #: official division need none.
    siren: str | None = None
    #: Acronyms that count only written in capitals ("CAPH").
    acronyms: tuple[str, ...] = ()
    #: Acronyms that are also words or other bodies ("MEL", "ARC", "CAB", "CUA"):
    #: they count only in capitals and when the item also names a place of
    #: the same département.
    context_acronyms: tuple[str, ...] = ()
    #: False: the name is only displayed, matching uses the aliases ("Nord").
    match_name: bool = True


@dataclass(frozen=True)
class ClassificationSettings:
    """What the contrat de ville classification does with the sections."""

    #: The section that receives 2024-2030 Hauts-de-France contract news only
    #: (~ when no section is reserved for them).
    contracts_section: str | None = None
    #: Contract news of another region: moved to ``national_section`` or filtered.
    other_regions: Literal["national", "filter"] = "national"
    national_section: str | None = None
    #: Pages about the 2015-2023 (or an earlier) generation are kept as ``filtered``.
    filter_old_generations: bool = True
    #: Names of outlets: never a territory of the story ("La Voix du Nord").
    #: The names of the configured feeds are outlets too.
    outlets: tuple[str, ...] = ()
    #: Place names of the official division that are ordinary words here
    #: (never matched as places): "Rue", "Manche", "Orange"...
    ignore_places: tuple[str, ...] = ()


@dataclass(frozen=True)
class EmailSettings:
    """The newsletter email."""

    from_address: str = "veille@example.org"
    from_name: str = "Revue de presse"
    reply_to: str | None = None
    subject: str = "Revue de presse n° {number} – {date}"
    #: Gmail clips messages whose HTML passes about 102 KB.
    max_html_bytes: int = 102_000


@dataclass(frozen=True)
class ArchiveSettings:
    """The public web archive."""

    out_dir: str = "site"
    base_url: str = "https://veille.example.org/"
    title: str = "Revue de presse politique de la ville"
    per_page: int = 20
    #: Longest extract of an article the public archive shows (cut at a word, with "…").
    excerpt_chars: int = 300


@dataclass(frozen=True)
class SmtpSettings:
    """SMTP server; credentials come from PRESSREVIEW_SMTP_USERNAME/PASSWORD."""

    host: str = "localhost"
    port: int = 587
    security: Literal["starttls", "ssl", "none"] = "starttls"
    timeout: float = 30.0


@dataclass(frozen=True)
class DeliverySettings:
    """How messages leave: written to an outbox folder or sent over SMTP."""

    transport: Literal["outbox", "smtp"] = "outbox"
    outbox_dir: str = "outbox"
    smtp: SmtpSettings = field(default_factory=SmtpSettings)
    rate_per_second: float = 10.0
    pool_size: int = 2
    max_attempts: int = 5
    #: First wait after a temporary (4xx) failure, doubled at each new attempt.
    retry_backoff_seconds: float = 2.0
    #: Consecutive connection failures or timeouts after which a run stops (the server is down).
    max_connection_failures: int = 3
    #: Where each run notes, just before the SMTP end of data, which row it hands over.
    journal_dir: str = "delivery-journal"
    list_id: str = "revue-de-presse.example.org"
    unsubscribe_mailto: str | None = None
    dkim_selector: str | None = None
    dkim_domain: str | None = None


@dataclass(frozen=True)
class WebSettings:
    """The subscription endpoints (``pressreview serve``)."""

    base_url: str = "http://localhost:8080/"
    #: Other ``host[:port]`` the endpoints answer to (the host of base_url always is).
    allowed_hosts: tuple[str, ...] = ()
    #: Subscription requests accepted per client address (IPv6: per /64) and hour.
    client_limit: int = 10
    #: Requests per mailbox (case and +tag ignored) and day that may send a confirmation.
    mailbox_limit: int = 3
    #: Reverse proxies in front of the app whose X-Forwarded-For is trusted (0: none).
    proxy_hops: int = 0


@dataclass(frozen=True)
class ScheduleSettings:
    """When the scheduler runs the jobs (in ``timezone``)."""

    collect_every_hours: float = 3.0
    digest_day_of_week: str = "mon"
    digest_hour: int = 8
    digest_minute: int = 0
    misfire_grace_minutes: int = 60


@dataclass(frozen=True)
class DigestSettings:
    """What the weekly digest does."""

    policy: Literal["review", "auto"] = "review"
    editors: tuple[str, ...] = ()
    per_section_limit: int = 5


@dataclass(frozen=True)
class Qpv:
    """A quartier prioritaire of a contract (2024 geography)."""

    #: ANCT code, e.g. ``QN05901M``.
    code: str
    name: str
    #: INSEE codes of its communes.
    communes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Contract:
    """One contrat de ville, keyed by the SIREN of the EPCI that carries it."""

    siren: str
    name: str
    department: str
    #: INSEE code of the commune when a commune carries the contract.
    commune: str | None = None
    qpv: tuple[Qpv, ...] = ()


@dataclass(frozen=True)
class ContractList:
    """The contracts file (staff-owned data)."""

    expected: int | None = None
    contracts: tuple[Contract, ...] = ()


#: The list shipped with the package (Hauts-de-France, Quartiers 2030).
DEFAULT_CONTRACTS_FILE = Path(__file__).resolve().parent / "data" / "contracts_hdf.yaml"


@dataclass(frozen=True)
class ContractsSettings:
    """The contrats de ville tracker (docs/contracts.md)."""

    enabled: bool = True
    #: The contracts file; unset: the list shipped with pressreview.
    file: str | None = None
    #: How many contracts the region expects (overrides the file's ``expected``).
    expected: int | None = None
    #: The compact tracker block in the email.
    email_block: bool = True
    title: str = "Contrats de ville Quartiers 2030"
    #: The contracts, read from ``file`` at load time.
    listed: tuple[Contract, ...] = field(default=(), metadata={"internal": True})
    #: The expected total (``expected``, else the file's, else the number listed).
    total: int = field(default=0, metadata={"internal": True})
    #: The file the contracts were read from.
    path: Path | None = field(default=None, metadata={"internal": True})

    def contract(self, siren: str) -> Contract | None:
        return next((c for c in self.listed if c.siren == siren), None)


@dataclass(frozen=True)
class AgendaSettings:
    """Upcoming events: in the email, the archive and agenda.ics."""

    #: Show an "Agenda" section in the email (when it has events).
    in_email: bool = True
    #: Where the section stands in the email: after the news (default) or before.
    position: Literal["after", "before"] = "after"
    #: How far ahead the email's agenda looks.
    horizon_weeks: int = 6
    #: How far ahead recurring events of calendars are expanded.
    calendar_months: int = 6
    #: At most this many occurrences are read from one calendar.
    max_events_per_calendar: int = 2000


@dataclass(frozen=True)
class Config:
    """The whole validated configuration."""

    feeds: tuple[Feed, ...] = ()
    organisation: Organisation = field(default_factory=Organisation)
    legal: LegalSettings = field(default_factory=LegalSettings)
    locale: str = "fr_FR"
    timezone: str = "Europe/Paris"
    database_url: str = "sqlite:///pressreview.db"
    templates_dir: str | None = None
    collect: CollectSettings = field(default_factory=CollectSettings)
    filters: Filters = field(default_factory=Filters)
    sections: tuple[Section, ...] = ()
    territories: tuple[Territory, ...] = ()
    classification: ClassificationSettings = field(default_factory=ClassificationSettings)
    email: EmailSettings = field(default_factory=EmailSettings)
    archive: ArchiveSettings = field(default_factory=ArchiveSettings)
    delivery: DeliverySettings = field(default_factory=DeliverySettings)
    web: WebSettings = field(default_factory=WebSettings)
    schedule: ScheduleSettings = field(default_factory=ScheduleSettings)
    digest: DigestSettings = field(default_factory=DigestSettings)
    contracts: ContractsSettings = field(default_factory=ContractsSettings)
    agenda: AgendaSettings = field(default_factory=AgendaSettings)
    #: Folder of the configuration file: relative paths are resolved against it.
    base_dir: Path = field(default=Path("."), metadata={"internal": True})
    #: The file the configuration was read from (None when built in code).
    path: Path | None = field(default=None, metadata={"internal": True})

    def resolve(self, value: str | os.PathLike[str]) -> Path:
        """A path from the configuration, relative to the config file's folder."""
        p = Path(value).expanduser()
        return p if p.is_absolute() else self.base_dir / p

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def ordered_sections(self) -> list[Section]:
        """Sections in newsletter order (explicit ``order`` first, then file order)."""
        indexed = list(enumerate(self.sections))
        indexed.sort(key=lambda p: (p[1].order if p[1].order is not None else p[0], p[0]))
        return [s for _, s in indexed]

    def section(self, key: str) -> Section | None:
        return next((s for s in self.sections if s.key == key), None)

    def feed(self, name: str) -> Feed | None:
        return next((f for f in self.feeds if f.name == name), None)


# --------------------------------------------------------------------------
# Generic validation of YAML data against the dataclasses above.


def _is_url(value: str, schemes: tuple[str, ...] = ("http", "https")) -> bool:
    parts = urlsplit(value)
    if parts.scheme not in schemes:
        return False
    return parts.scheme == "file" or bool(parts.netloc)


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(tp))
    if origin in (Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return " or ".join(_type_name(a) for a in args)
    if origin is tuple:
        return "a list"
    if dataclasses.is_dataclass(tp):
        return "a mapping"
    return {str: "a string", int: "an integer", float: "a number", bool: "true or false"}.get(
        tp, getattr(tp, "__name__", str(tp))
    )


def _convert(value: Any, tp: Any, path: str) -> Any:
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        non_none = [a for a in args if a is not type(None)]
        if len(non_none) == 1:
            return _convert(value, non_none[0], path)
        raise ConfigError(f"{path}: unsupported union in schema")  # pragma: no cover
    if origin is Literal:
        if value not in typing.get_args(tp):
            raise ConfigError(f"{path}: must be {_type_name(tp)}, not {value!r}")
        return value
    if origin is tuple:
        (item_tp, _ellipsis) = typing.get_args(tp)
        if isinstance(value, str) and item_tp is str:
            value = [value]
        if not isinstance(value, list):
            raise ConfigError(f"{path}: must be a list, not {_describe(value)}")
        return tuple(_convert(v, item_tp, f"{path}[{i}]") for i, v in enumerate(value))
    if dataclasses.is_dataclass(tp):
        return _build(tp, value, path)
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{path}: must be true or false, not {_describe(value)}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{path}: must be an integer, not {_describe(value)}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{path}: must be a number, not {_describe(value)}")
        return float(value)
    if tp is str:
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise ConfigError(f"{path}: must be a string, not {_describe(value)}")
        return str(value)
    raise ConfigError(f"{path}: unsupported type in schema")  # pragma: no cover


def _describe(value: Any) -> str:
    if value is None:
        return "empty"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return repr(value)


def _build(cls: Any, data: Any, path: str) -> Any:
    where = path or "feeds.yaml"
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where}: must be a mapping of keys to values, not {_describe(data)}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if not f.metadata.get("internal")}
    for key in data:
        if key not in fields:
            known = ", ".join(sorted(fields))
            prefix = f"{path}." if path else ""
            raise ConfigError(f"{prefix}{key}: unknown key (known keys here: {known})")
    kwargs: dict[str, Any] = {}
    for name, f in fields.items():
        key_path = f"{path}.{name}" if path else name
        if name in data:
            kwargs[name] = _convert(data[name], hints[name], key_path)
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ConfigError(f"{key_path}: missing (this key is required)")
    return cls(**kwargs)


def _check_sender(config: Config) -> None:
    """The sender's addresses must make valid headers: every message (issues,
    confirmations, one-off sends) is built from them."""
    from email.errors import MessageError
    from email.headerregistry import Address
    from email.message import EmailMessage

    e = config.email
    try:
        Address(e.from_name, addr_spec=e.from_address)
    except (ValueError, TypeError, IndexError, MessageError) as exc:
        raise ConfigError(
            f"email.from_address: not a usable sender ({e.from_address!r}, "
            f"name {e.from_name!r}): {exc}"
        ) from None
    if "@" not in e.from_address:
        raise ConfigError(f"email.from_address: not an address ({e.from_address!r})")
    if e.reply_to:
        try:
            EmailMessage()["Reply-To"] = e.reply_to
        except (ValueError, TypeError, IndexError, MessageError) as exc:
            raise ConfigError(f"email.reply_to: not an address ({e.reply_to!r}): {exc}") from None


def _check(config: Config) -> None:
    """Rules that span fields or need more than a type."""
    _check_sender(config)
    seen: dict[str, int] = {}
    for i, feed in enumerate(config.feeds):
        if not feed.name.strip():
            raise ConfigError(f"feeds[{i}].name: must not be empty")
        if not _is_url(feed.url, ("http", "https", "file")):
            raise ConfigError(
                f"feeds[{i}].url: not a URL ({feed.url!r}); use http://, https:// or file://"
            )
        folded = fold(feed.name)
        if folded in seen:
            raise ConfigError(
                f"feeds[{i}].name: duplicate source name {feed.name!r} "
                f"(also feeds[{seen[folded]}]); give each source its own name"
            )
        seen[folded] = i
        if feed.territory is not None and config.territories:
            names = {fold(t.name) for t in config.territories}
            if fold(feed.territory) not in names:
                raise ConfigError(
                    f"feeds[{i}].territory: {feed.territory!r} is not one of the territories"
                )
    keys: set[str] = set()
    for i, section in enumerate(config.sections):
        if not re.fullmatch(r"[a-z0-9][a-z0-9_-]*", section.key):
            raise ConfigError(
                f"sections[{i}].key: {section.key!r} must be lower-case letters, digits, - or _"
            )
        if section.key in keys:
            raise ConfigError(f"sections[{i}].key: duplicate section key {section.key!r}")
        keys.add(section.key)
    for i, territory in enumerate(config.territories):
        if not territory.name.strip():
            raise ConfigError(f"territories[{i}].name: must not be empty")
        if territory.siren is not None and not re.fullmatch(r"\d{9}", territory.siren):
            raise ConfigError(
                f"territories[{i}].siren: {territory.siren!r} is not a SIREN (nine digits)"
            )
    cls = config.classification
    for name, key in (
        ("contracts_section", cls.contracts_section),
        ("national_section", cls.national_section),
    ):
        if key is not None and config.section(key) is None:
            raise ConfigError(f"classification.{name}: {key!r} is not the key of a section")
    try:
        ZoneInfo(config.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(
            f"timezone: unknown time zone {config.timezone!r} (e.g. Europe/Paris)"
        ) from None
    try:
        Locale.parse(config.locale)
    except (UnknownLocaleError, ValueError):
        raise ConfigError(f"locale: unknown locale {config.locale!r} (e.g. fr_FR)") from None
    for name, value in (
        ("organisation.url", config.organisation.url),
        ("archive.base_url", config.archive.base_url),
        ("web.base_url", config.web.base_url),
        ("collect.contact_url", config.collect.contact_url),
    ):
        if not _is_url(value):
            raise ConfigError(f"{name}: not an http(s) URL ({value!r})")
    if config.web.client_limit < 1 or config.web.mailbox_limit < 1:
        raise ConfigError("web.client_limit and web.mailbox_limit: must be at least 1")
    if config.web.proxy_hops < 0:
        raise ConfigError("web.proxy_hops: must be 0 or more")
    for i, host in enumerate(config.web.allowed_hosts):
        if not re.fullmatch(r"[A-Za-z0-9.-]+(:[0-9]{1,5})?|\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?", host):
            raise ConfigError(
                f"web.allowed_hosts[{i}]: {host!r} is not a host name with an optional port "
                "(e.g. veille.example.org or 127.0.0.1:8080)"
            )
    for name, value in (
        ("archive.base_url", config.archive.base_url),
        ("web.base_url", config.web.base_url),
    ):
        parts = urlsplit(value)
        if parts.query or parts.fragment:
            raise ConfigError(f"{name}: must not have a query or a fragment ({value!r})")
    if bool(config.delivery.dkim_selector) != bool(config.delivery.dkim_domain):
        raise ConfigError("delivery.dkim_selector and delivery.dkim_domain: set both or neither")
    agenda = config.agenda
    if agenda.horizon_weeks < 1 or agenda.calendar_months < 1:
        raise ConfigError("agenda.horizon_weeks and agenda.calendar_months: must be at least 1")
    if agenda.max_events_per_calendar < 1:
        raise ConfigError("agenda.max_events_per_calendar: must be at least 1")
    if config.collect.concurrency < 1 or config.collect.per_host < 1:
        raise ConfigError("collect.concurrency and collect.per_host: must be at least 1")
    if not 0 < config.collect.near_duplicate_threshold <= 1:
        raise ConfigError("collect.near_duplicate_threshold: must be between 0 and 1")


#: What an unfilled value looks like: "[À MODIFIER]", "TODO", "à compléter"...
_PLACEHOLDER_RE = re.compile(
    r"\[[^\]]*\]|\b(?:TODO|TBD|XXX|FIXME)\b|\b[àa]\s+(?:modifier|compl[ée]ter|remplir|d[ée]finir)\b",
    re.I,
)


def placeholder_problems(config: Config) -> list[str]:
    """The legal values of the footer still empty or placeholders (postal address, contact)."""
    org = config.organisation
    problems: list[str] = []
    for key, value, default in (
        ("organisation.postal_address", org.postal_address, ""),
        ("organisation.contact_email", org.contact_email, Organisation.contact_email),
    ):
        if not value.strip():
            problems.append(f"{key} is empty")
        elif _PLACEHOLDER_RE.search(value) or (default and value == default):
            problems.append(f"{key} is still a placeholder ({value!r})")
    return problems


def check_placeholders(config: Config, *, allow: bool = False) -> None:
    """Refuse (exit 1) while the footer's legal values are empty or placeholders.

    ``issue publish``, ``send`` and ``archive build`` call it; ``allow`` is
    their ``--allow-placeholders``.
    """
    problems = placeholder_problems(config)
    if problems and not allow:
        where = config.path.name if config.path else "the configuration"
        raise Refused(
            f"{where}: {'; '.join(problems)}: fill it in before anything goes out "
            "(or give --allow-placeholders)"
        )


def parse_config(
    data: Any,
    *,
    base_dir: Path | None = None,
    path: Path | None = None,
    overrides: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Config:
    """Validate already-loaded YAML data (a mapping) into a Config."""
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise ConfigError(
            f"{path or 'feeds.yaml'}: must be a mapping of keys to values, not {_describe(data)}"
        )
    merged = dict(data)
    for key, value in (overrides or {}).items():
        if value is not None:
            merged[key] = value
    env = os.environ if environ is None else environ
    if env.get(DATABASE_ENV):
        merged["database_url"] = env[DATABASE_ENV]
    config: Config = _build(Config, merged, "")
    config = dataclasses.replace(config, base_dir=base_dir or Path("."), path=path)
    _check(config)
    return dataclasses.replace(config, contracts=_load_contracts(config))


_SIREN_RE = re.compile(r"\d{9}")
_INSEE_RE = re.compile(r"(\d{2}|2A|2B)\d{3}")
_DEPARTMENT_RE = re.compile(r"\d{2}|2A|2B|97\d")
_QPV_CODE_RE = re.compile(r"QN(\d{3}|02A|02B)\d{2,3}[A-Z]")


def siren_ok(value: str) -> bool:
    """A SIREN: nine digits whose Luhn checksum holds."""
    if not _SIREN_RE.fullmatch(value):
        return False
    total = 0
    for i, ch in enumerate(reversed(value)):
        digit = int(ch) * (2 if i % 2 else 1)
        total += digit - 9 if digit > 9 else digit
    return total % 10 == 0


def qpv_code_ok(value: str) -> bool:
    """An ANCT QPV code of the 2024 geography (``QN05901M``)."""
    return bool(_QPV_CODE_RE.fullmatch(value))


def insee_ok(value: str) -> bool:
    return bool(_INSEE_RE.fullmatch(value))


def _load_contracts(config: Config) -> ContractsSettings:
    """Read and check the contracts file named by ``contracts.file`` (or the shipped one)."""
    settings = config.contracts
    if not settings.enabled:
        return settings
    path = config.resolve(settings.file) if settings.file else DEFAULT_CONTRACTS_FILE
    try:
        stat = path.stat()
    except FileNotFoundError:
        raise ConfigError(f"contracts.file: {path}: file not found") from None
    except OSError as exc:
        raise ConfigError(f"contracts.file: {path}: cannot read: {exc}") from None
    listing = _read_contracts(str(path), stat.st_mtime_ns, stat.st_size)
    total = settings.expected or listing.expected or len(listing.contracts)
    if total < len(listing.contracts):
        raise ConfigError(
            f"{path}: expected: {total} contracts expected but {len(listing.contracts)} listed"
        )
    return dataclasses.replace(settings, listed=listing.contracts, total=total, path=path)


@functools.lru_cache(maxsize=8)
def _read_contracts(where: str, _mtime_ns: int, _size: int) -> ContractList:
    """The parsed and checked contracts file (cached while the file is unchanged)."""
    try:
        data = yaml.safe_load(Path(where).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"contracts.file: {where}: cannot read: {exc}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        raise ConfigError(f"{where}: invalid YAML{at}") from None
    if data is not None and not isinstance(data, Mapping):
        raise ConfigError(f"{where}: must be a mapping of keys to values, not {_describe(data)}")
    try:
        listing: ContractList = _build(ContractList, data, "")
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    check_contracts(listing.contracts, where)
    return listing


def _check_in_division(c: Contract, key: str) -> None:
    """The carrier is an EPCI of the official division, the commune one of its members."""
    geo = load_geography()
    epci = geo.epcis.get(c.siren)
    if epci is None:
        raise ConfigError(
            f"{key}.siren: {c.siren} is no EPCI of {geo.region_name} in the official division "
            f"({geo.source} {geo.version})"
        )
    if c.commune is not None and c.commune not in epci.members:
        commune = geo.communes.get(c.commune)
        where = f"its EPCI is {commune.epci}" if commune else "no such commune in the region"
        raise ConfigError(
            f"{key}.commune: {c.commune} is not a member of {epci.name} ({c.siren}); {where}"
        )


def check_contracts(contracts: tuple[Contract, ...], where: str) -> None:
    """Formats and uniqueness of the contracts (ConfigError with the key path)."""
    sirens: dict[str, int] = {}
    codes: dict[str, str] = {}
    for i, c in enumerate(contracts):
        key = f"{where}: contracts[{i}]"
        if not siren_ok(c.siren):
            raise ConfigError(f"{key}.siren: {c.siren!r} is not a SIREN (9 digits, checksum)")
        if c.siren in sirens:
            raise ConfigError(
                f"{key}.siren: {c.siren} is listed twice (also contracts[{sirens[c.siren]}]); "
                "one contract per EPCI"
            )
        sirens[c.siren] = i
        _check_in_division(c, key)
        if not c.name.strip():
            raise ConfigError(f"{key}.name: must not be empty")
        if not _DEPARTMENT_RE.fullmatch(c.department):
            raise ConfigError(f"{key}.department: {c.department!r} is not a département code")
        if c.commune is not None and (
            not insee_ok(c.commune) or not c.commune.startswith(c.department[:2])
        ):
            raise ConfigError(
                f"{key}.commune: {c.commune!r} is not an INSEE code of département {c.department}"
            )
        for j, qpv in enumerate(c.qpv):
            if not qpv_code_ok(qpv.code):
                raise ConfigError(f"{key}.qpv[{j}].code: {qpv.code!r} is not a QPV code")
            if qpv.code in codes:
                raise ConfigError(f"{key}.qpv[{j}].code: {qpv.code} also in {codes[qpv.code]}")
            codes[qpv.code] = c.siren
            for commune in qpv.communes:
                if not insee_ok(commune):
                    raise ConfigError(f"{key}.qpv[{j}].communes: {commune!r} is not an INSEE code")


def find_config_path(path: str | os.PathLike[str] | None = None) -> Path:
    """The configuration file: the given path, $PRESSREVIEW_CONFIG, or ./feeds.yaml."""
    if path:
        return Path(path)
    if os.environ.get(CONFIG_ENV):
        return Path(os.environ[CONFIG_ENV])
    return Path(DEFAULT_CONFIG)


def load_config(
    path: str | os.PathLike[str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Config:
    """Read, validate and freeze the configuration.

    Raises ConfigError with the path of the bad key when anything is wrong.
    """
    config_path = find_config_path(path)
    try:
        text = config_path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            f"{config_path}: configuration file not found (give --config PATH or set {CONFIG_ENV})"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{config_path}: cannot read configuration: {exc}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{config_path}: invalid YAML{where}: {problem}") from None
    base_dir = config_path.resolve().parent
    return parse_config(data, base_dir=base_dir, path=config_path, overrides=overrides)
