"""Every mistake in feeds.yaml (or the contracts file), and the exact line that says it.

One ConfigError, one line, the path of the key at fault; the CLI turns it into
exit code 2. Tables of (configuration, message): what the staff reads.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from pressreview.config import (
    check_placeholders,
    insee_ok,
    load_config,
    parse_config,
    placeholder_problems,
    qpv_code_ok,
    siren_ok,
)
from pressreview.errors import ConfigError, Refused

LILLE = "200093201"  # Métropole européenne de Lille
LAON = "200043495"  # CA du Pays de Laon


def _feed(**values: Any) -> dict[str, Any]:
    return {"name": "A", "url": "https://a.fr/", **values}


HOSTS_HINT = "is not a host name with an optional port (e.g. veille.example.org or 127.0.0.1:8080)"

MISTAKES: list[tuple[Any, str]] = [
    # the file's shape
    ([], "feeds.yaml: must be a mapping of keys to values, not a list"),
    ("x", "feeds.yaml: must be a mapping of keys to values, not 'x'"),
    ({"feeds": "x"}, "feeds: must be a list, not 'x'"),
    ({"feeds": None}, "feeds: must be a list, not empty"),
    ({"feeds": [3]}, "feeds[0]: must be a mapping of keys to values, not 3"),
    ({"organisation": []}, "organisation: must be a mapping of keys to values, not a list"),
    ({"feeds": [_feed(tags={"a": 1})]}, "feeds[0].tags: must be a list, not a mapping"),
    # types of values
    ({"collect": {"concurrency": True}}, "collect.concurrency: must be an integer, not True"),
    ({"collect": {"concurrency": 1.5}}, "collect.concurrency: must be an integer, not 1.5"),
    ({"collect": {"concurrency": None}}, "collect.concurrency: must be an integer, not empty"),
    ({"collect": {"total_timeout": "1"}}, "collect.total_timeout: must be a number, not '1'"),
    ({"collect": {"total_timeout": False}}, "collect.total_timeout: must be a number, not False"),
    ({"feeds": [_feed(enabled=1)]}, "feeds[0].enabled: must be true or false, not 1"),
    ({"feeds": [_feed(name=True)]}, "feeds[0].name: must be a string, not True"),
    ({"feeds": [_feed(name=[1])]}, "feeds[0].name: must be a string, not a list"),
    ({"feeds": [_feed(name={"a": 1})]}, "feeds[0].name: must be a string, not a mapping"),
    ({"feeds": [_feed(name=None)]}, "feeds[0].name: must be a string, not empty"),
    (  # an optional key: its path too
        {"territories": [{"name": "L", "siren": [1]}]},
        "territories[0].siren: must be a string, not a list",
    ),
    (
        {"delivery": {"transport": None}},
        "delivery.transport: must be one of 'outbox', 'smtp', not None",
    ),
    (
        {"agenda": {"position": "middle"}},
        "agenda.position: must be one of 'after', 'before', not 'middle'",
    ),
    # unknown and missing keys
    (
        {"web": {"bogus": 1}},
        "web.bogus: unknown key (known keys here: allowed_hosts, base_url, client_limit, "
        "mailbox_limit, proxy_hops)",
    ),
    ({"bogus": 1}, "bogus: unknown key (known keys here: agenda, archive, classification,"),
    ({"feeds": [{"url": "https://a.fr/"}]}, "feeds[0].name: missing (this key is required)"),
    # feeds
    ({"feeds": [_feed(name="  ")]}, "feeds[0].name: must not be empty"),
    (
        {"feeds": [_feed(url="ftp://a.fr/")]},
        "feeds[0].url: not a URL ('ftp://a.fr/'); use http://, https:// or file://",
    ),
    (
        {"feeds": [_feed(url="https:///x")]},
        "feeds[0].url: not a URL ('https:///x'); use http://, https:// or file://",
    ),
    (
        {"feeds": [_feed(name="Élan"), _feed(name="B"), _feed(name="elan")]},
        "feeds[2].name: duplicate source name 'elan' (also feeds[0]); "
        "give each source its own name",
    ),
    (
        {"territories": [{"name": "Lens"}], "feeds": [_feed(territory="Arras")]},
        "feeds[0].territory: 'Arras' is not one of the territories",
    ),
    # sections, territories, classification
    (
        {"sections": [{"key": "-a", "title": "x"}]},
        "sections[0].key: '-a' must be lower-case letters, digits, - or _",
    ),
    (
        {"sections": [{"key": "a", "title": "x"}, {"key": "Vie", "title": "y"}]},
        "sections[1].key: 'Vie' must be lower-case letters, digits, - or _",
    ),
    (
        {"sections": [{"key": "a", "title": "x"}, {"key": "a", "title": "y"}]},
        "sections[1].key: duplicate section key 'a'",
    ),
    ({"territories": [{"name": " "}]}, "territories[0].name: must not be empty"),
    (
        {"territories": [{"name": "L", "siren": "12345678"}]},
        "territories[0].siren: '12345678' is not a SIREN (nine digits)",
    ),
    (
        {"classification": {"contracts_section": "nope"}},
        "classification.contracts_section: 'nope' is not the key of a section",
    ),
    (
        {"classification": {"national_section": "nope"}},
        "classification.national_section: 'nope' is not the key of a section",
    ),
    # places, languages and addresses
    ({"timezone": "Europe/Lile"}, "timezone: unknown time zone 'Europe/Lile' (e.g. Europe/Paris)"),
    ({"timezone": ""}, "timezone: unknown time zone '' (e.g. Europe/Paris)"),
    ({"locale": "zz"}, "locale: unknown locale 'zz' (e.g. fr_FR)"),
    ({"locale": ""}, "locale: unknown locale '' (e.g. fr_FR)"),
    ({"organisation": {"url": "nope"}}, "organisation.url: not an http(s) URL ('nope')"),
    ({"archive": {"base_url": "file:///srv/"}}, "archive.base_url: not an http(s) URL"),
    ({"web": {"base_url": "https://"}}, "web.base_url: not an http(s) URL ('https://')"),
    (
        {"collect": {"contact_url": "mailto:a@b.fr"}},
        "collect.contact_url: not an http(s) URL ('mailto:a@b.fr')",
    ),
    (
        {"web": {"base_url": "https://x.fr/#f"}},
        "web.base_url: must not have a query or a fragment ('https://x.fr/#f')",
    ),
    (
        {"archive": {"base_url": "https://x.fr/?a"}},
        "archive.base_url: must not have a query or a fragment ('https://x.fr/?a')",
    ),
    # the web endpoints
    ({"web": {"client_limit": 0}}, "web.client_limit and web.mailbox_limit: must be at least 1"),
    ({"web": {"mailbox_limit": 0}}, "web.client_limit and web.mailbox_limit: must be at least 1"),
    ({"web": {"proxy_hops": -1}}, "web.proxy_hops: must be 0 or more"),
    (
        {"web": {"allowed_hosts": ["ok.fr", "bad host"]}},
        f"web.allowed_hosts[1]: 'bad host' {HOSTS_HINT}",
    ),
    (
        {"web": {"allowed_hosts": ["a.fr:123456"]}},
        f"web.allowed_hosts[0]: 'a.fr:123456' {HOSTS_HINT}",
    ),
    (
        {"web": {"allowed_hosts": ["https://a.fr"]}},
        f"web.allowed_hosts[0]: 'https://a.fr' {HOSTS_HINT}",
    ),
    ({"web": {"allowed_hosts": ["[::1"]}}, f"web.allowed_hosts[0]: '[::1' {HOSTS_HINT}"),
    # delivery, agenda, collection
    (
        {"delivery": {"dkim_domain": "x.fr"}},
        "delivery.dkim_selector and delivery.dkim_domain: set both or neither",
    ),
    (
        {"delivery": {"dkim_selector": "pr"}},
        "delivery.dkim_selector and delivery.dkim_domain: set both or neither",
    ),
    (
        {"agenda": {"horizon_weeks": 0}},
        "agenda.horizon_weeks and agenda.calendar_months: must be at least 1",
    ),
    (
        {"agenda": {"calendar_months": 0}},
        "agenda.horizon_weeks and agenda.calendar_months: must be at least 1",
    ),
    (
        {"agenda": {"max_events_per_calendar": 0}},
        "agenda.max_events_per_calendar: must be at least 1",
    ),
    (
        {"collect": {"concurrency": 0}},
        "collect.concurrency and collect.per_host: must be at least 1",
    ),
    ({"collect": {"per_host": 0}}, "collect.concurrency and collect.per_host: must be at least 1"),
    (
        {"collect": {"near_duplicate_threshold": 0}},
        "collect.near_duplicate_threshold: must be between 0 and 1",
    ),
    (
        {"collect": {"near_duplicate_threshold": 1.01}},
        "collect.near_duplicate_threshold: must be between 0 and 1",
    ),
]


@pytest.mark.parametrize(("data", "message"), MISTAKES)
def test_each_mistake_is_one_line_naming_the_key(data: Any, message: str) -> None:
    with pytest.raises(ConfigError) as error:
        parse_config(data, environ={})
    text = str(error.value)
    assert text.startswith(message), text
    assert "\n" not in text


# The smallest values each rule accepts (one step further is refused above).
LIMITS: list[dict[str, Any]] = [
    {"web": {"client_limit": 1, "mailbox_limit": 1, "proxy_hops": 0}},
    {"web": {"allowed_hosts": ["127.0.0.1:8080", "[::1]:8081", "[::1]", "a-b.example.org"]}},
    {"web": {"allowed_hosts": "abonnement.example.org"}},  # one host: a list of one
    {"web": {"allowed_hosts": ["Veille.Example.ORG:8443", "[2001:DB8::A]:8080"]}},
    {"agenda": {"horizon_weeks": 1, "calendar_months": 1, "max_events_per_calendar": 1}},
    {"collect": {"concurrency": 1, "per_host": 1, "near_duplicate_threshold": 1}},
    {"collect": {"near_duplicate_threshold": 0.01, "total_timeout": 3}},
    {"delivery": {"dkim_selector": "pr", "dkim_domain": "x.fr"}},
    {"sections": [{"key": "a_b-1", "title": "x"}, {"key": "9", "title": "y"}]},
    {"territories": [{"name": "L", "siren": 123456789}]},  # a number, read as text
    {"feeds": [_feed(name=12, url="file:///tmp/a.xml")]},
    {"feeds": [_feed(territory=None)]},
    {
        "territories": [{"name": "Cœur d'Ostrevent"}],
        "feeds": [_feed(territory="coeur d'ostrevent")],
    },
    {"organisation": None, "timezone": "America/Cayenne", "locale": "fr"},
    {"sections": [{"key": "a", "title": "x"}], "classification": {"contracts_section": "a"}},
]


@pytest.mark.parametrize("data", LIMITS)
def test_the_limits_themselves_are_accepted(data: dict[str, Any]) -> None:
    parse_config(data, environ={})


def test_values_are_converted_as_documented() -> None:
    config = parse_config(
        {
            "collect": {"total_timeout": 3},
            "territories": [{"name": "L", "siren": 123456789}],
            "web": {"allowed_hosts": "abonnement.example.org"},
            "agenda": {"in_email": False, "horizon_weeks": 3},
        },
        environ={},
    )
    assert config.collect.total_timeout == 3.0 and isinstance(config.collect.total_timeout, float)
    assert config.territories[0].siren == "123456789"
    assert config.web.allowed_hosts == ("abonnement.example.org",)
    assert (config.agenda.in_email, config.agenda.horizon_weeks) == (False, 3)
    assert config.agenda.calendar_months == 6  # the default of a key not given
    assert parse_config(None, environ={}) == parse_config({}, environ={})


# -- the file itself ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"feeds: [\n  - name: A\n", "invalid YAML (line 2, column 3): expected the node content"),
        (b"a: b: c\n", "invalid YAML (line 1, column 5): mapping values are not allowed here"),
        (b"\xff\xfe", "cannot read configuration: 'utf-8' codec can't decode byte 0xff"),
        (b"- a\n- b\n", "must be a mapping of keys to values, not a list"),
        # no line nor column for an unacceptable character
        (b"locale: fr\x00\n", "invalid YAML: unacceptable character #x0000: special characters"),
        (b"feeds:\n  - {name: A, url: nope}\n", None),  # the key's path, without the file's
    ],
)
def test_an_unreadable_file_is_named_with_the_reason(
    tmp_path: Path, content: bytes, message: str | None
) -> None:
    path = tmp_path / "feeds.yaml"
    path.write_bytes(content)
    with pytest.raises(ConfigError) as error:
        load_config(path)
    text = str(error.value)
    if message is None:
        assert text == "feeds[0].url: not a URL ('nope'); use http://, https:// or file://"
    else:
        assert text.startswith(f"{path}: {message}") and "\n" not in text


def test_a_missing_file_says_how_to_name_one(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as error:
        load_config(tmp_path / "absent.yaml")
    assert str(error.value) == (
        f"{tmp_path / 'absent.yaml'}: configuration file not found "
        "(give --config PATH or set PRESSREVIEW_CONFIG)"
    )
    with pytest.raises(ConfigError, match="cannot read configuration"):
        load_config(tmp_path)  # a folder


def test_relative_paths_are_read_from_the_file_s_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "conf").mkdir()
    path = tmp_path / "conf" / "feeds.yaml"
    path.write_text("locale: fr_FR\n", "utf-8")
    monkeypatch.chdir(tmp_path)
    config = load_config(Path("conf/feeds.yaml"), {"locale": None, "timezone": "Europe/Paris"})
    assert config.base_dir == tmp_path / "conf" and config.path == Path("conf/feeds.yaml")
    assert config.resolve("x.db") == tmp_path / "conf" / "x.db"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("feeds: [\n  - name: A\n", "invalid YAML (line 2, column 3)"),
        ("web: {client_limit: 0}\n", "web.client_limit and web.mailbox_limit: must be at least 1"),
        ("agenda: {horizon_weeks: 0}\n", "agenda.horizon_weeks and agenda.calendar_months"),
        ("locale: zz\n", "locale: unknown locale 'zz' (e.g. fr_FR)"),
    ],
)
def test_the_command_line_exits_2_with_the_one_line(
    cli: Callable[..., Any], tmp_path: Path, text: str, message: str
) -> None:
    path = tmp_path / "feeds.yaml"
    path.write_text(text, "utf-8")
    result = cli(path, "feeds", "list")
    assert result.exit_code == 2
    assert message in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1


# -- the legal values of the footer ------------------------------------------------------


@pytest.mark.parametrize(
    ("organisation", "problems"),
    [
        (
            {"postal_address": "12 rue Nationale, 59000 Lille", "contact_email": "veille@crpv.fr"},
            [],
        ),
        (
            {},
            [
                "organisation.postal_address is empty",
                "organisation.contact_email is still a placeholder ('contact@example.org')",
            ],
        ),
        (
            {"postal_address": "[À MODIFIER]", "contact_email": "  "},
            [
                "organisation.postal_address is still a placeholder ('[À MODIFIER]')",
                "organisation.contact_email is empty",
            ],
        ),
        (
            {"postal_address": "TODO", "contact_email": "x@y.fr"},
            ["organisation.postal_address is still a placeholder ('TODO')"],
        ),
        (
            {"postal_address": "XXX", "contact_email": "x@y.fr"},
            ["organisation.postal_address is still a placeholder ('XXX')"],
        ),
        (
            {"postal_address": "à compléter", "contact_email": "x@y.fr"},
            ["organisation.postal_address is still a placeholder ('à compléter')"],
        ),
        (
            {"postal_address": "Rue à définir", "contact_email": "x@y.fr"},
            ["organisation.postal_address is still a placeholder ('Rue à définir')"],
        ),
        (
            {"postal_address": "1 rue A", "contact_email": "FIXME@x.fr"},
            ["organisation.contact_email is still a placeholder ('FIXME@x.fr')"],
        ),
        (
            {"postal_address": "1 rue A", "contact_email": "a remplir"},
            ["organisation.contact_email is still a placeholder ('a remplir')"],
        ),
    ],
)
def test_footer_placeholders_are_found(organisation: dict[str, str], problems: list[str]) -> None:
    config = parse_config({"organisation": organisation}, environ={})
    assert placeholder_problems(config) == problems
    check_placeholders(config, allow=True)  # --allow-placeholders
    if problems:
        with pytest.raises(Refused) as refused:
            check_placeholders(config)
        assert str(refused.value) == (
            f"the configuration: {'; '.join(problems)}: fill it in before anything goes out "
            "(or give --allow-placeholders)"
        )
    else:
        check_placeholders(config)


def test_placeholders_name_the_configuration_file(tmp_path: Path) -> None:
    path = tmp_path / "veille.yaml"
    path.write_text("organisation: {postal_address: TBD}\n", "utf-8")
    with pytest.raises(Refused, match=r"^veille\.yaml: organisation\.postal_address is still"):
        check_placeholders(load_config(path))


# -- codes: SIREN, INSEE, QPV ------------------------------------------------------------


@pytest.mark.parametrize(
    ("check", "value", "ok"),
    [
        (siren_ok, LILLE, True),
        (siren_ok, LAON, True),
        (siren_ok, "000000000", True),
        (siren_ok, "200093202", False),  # one digit off: the checksum
        (siren_ok, "200093210", False),  # two digits swapped
        (siren_ok, "20009320", False),
        (siren_ok, "2000932010", False),
        (siren_ok, "20009320A", False),
        (siren_ok, " 200093201", False),
        (insee_ok, "59350", True),
        (insee_ok, "2A004", True),
        (insee_ok, "2B033", True),
        (insee_ok, "97101", True),
        (insee_ok, "5935", False),
        (insee_ok, "593500", False),
        (insee_ok, "2C004", False),
        (qpv_code_ok, "QN05901M", True),
        (qpv_code_ok, "QN059012M", True),
        (qpv_code_ok, "QN02A01M", True),
        (qpv_code_ok, "QN0590123M", False),
        (qpv_code_ok, "QN05901", False),
        (qpv_code_ok, "qn05901m", False),
        (qpv_code_ok, "QN05901MM", False),
    ],
)
def test_codes(check: Callable[[str], bool], value: str, ok: bool) -> None:
    assert check(value) is ok


# -- the contracts file ------------------------------------------------------------------


def _contracts(tmp_path: Path, content: Any, **settings: Any) -> dict[str, Any]:
    path = tmp_path / "contrats.yaml"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(yaml.safe_dump(content, allow_unicode=True), "utf-8")
    return {"contracts": {"file": "contrats.yaml", **settings}}


def _contract(siren: str = LILLE, **values: Any) -> dict[str, Any]:
    return {"siren": siren, "name": "MEL", "department": "59", **values}


CONTRACT_MISTAKES: list[tuple[Any, str]] = [
    (b"- a\n- b\n", "must be a mapping of keys to values, not a list"),
    (b"contracts: [\n", "invalid YAML (line 2, column 1)"),
    (
        {"contracts": [{"siren": "200093202", "name": "X", "department": "59"}]},
        "contracts[0].siren: '200093202' is not a SIREN (9 digits, checksum)",
    ),
    (
        {"contracts": [_contract(), _contract(name="B")]},
        "contracts[1].siren: 200093201 is listed twice (also contracts[0]); one contract per EPCI",
    ),
    ({"contracts": [_contract(name=" ")]}, "contracts[0].name: must not be empty"),
    (
        {"contracts": [_contract(department="5")]},
        "contracts[0].department: '5' is not a département code",
    ),
    (
        {"contracts": [_contract(department="62", commune="59350")]},
        "contracts[0].commune: '59350' is not an INSEE code of département 62",
    ),
    (
        {"contracts": [_contract(commune="62041")]},
        "contracts[0].commune: 62041 is not a member of Métropole Européenne de Lille "
        "(200093201); its EPCI is 200033579",
    ),
    (
        {"contracts": [_contract(commune="75056")]},
        "contracts[0].commune: 75056 is not a member of Métropole Européenne de Lille "
        "(200093201); no such commune in the region",
    ),
    (
        {"contracts": [_contract(qpv=[{"code": "Q1", "name": "n"}])]},
        "contracts[0].qpv[0].code: 'Q1' is not a QPV code",
    ),
    (
        {"contracts": [_contract(qpv=[{"code": "QN05901M", "name": "n", "communes": ["5935"]}])]},
        "contracts[0].qpv[0].communes: '5935' is not an INSEE code",
    ),
    (
        {
            "contracts": [
                _contract(qpv=[{"code": "QN05901M", "name": "n"}]),
                _contract(LAON, department="02", qpv=[{"code": "QN05901M", "name": "m"}]),
            ]
        },
        "contracts[1].qpv[0].code: QN05901M also in 200093201",
    ),
    (
        {"expected": 1, "contracts": [_contract(), _contract(LAON, department="02")]},
        "expected: 1 contracts expected but 2 listed",
    ),
]


@pytest.mark.parametrize(("content", "message"), CONTRACT_MISTAKES)
def test_each_contracts_file_mistake_names_the_file_and_the_key(
    tmp_path: Path, content: Any, message: str
) -> None:
    with pytest.raises(ConfigError) as error:
        parse_config(_contracts(tmp_path, content), base_dir=tmp_path, environ={})
    text = str(error.value)
    assert text.startswith(f"{tmp_path / 'contrats.yaml'}: {message}"), text
    assert "\n" not in text and "feeds.yaml" not in text


def test_an_unreadable_contracts_file(tmp_path: Path) -> None:
    data = _contracts(tmp_path, b"\xff\xfe")
    with pytest.raises(ConfigError) as error:
        parse_config(data, base_dir=tmp_path, environ={})
    assert str(error.value).startswith(
        f"contracts.file: {tmp_path / 'contrats.yaml'}: cannot read: 'utf-8' codec"
    )
    with pytest.raises(ConfigError, match=r"^contracts\.file: .*: cannot read: "):
        parse_config({"contracts": {"file": "."}}, base_dir=tmp_path, environ={})
    (tmp_path / "notes.txt").write_text("x", "utf-8")
    with pytest.raises(ConfigError) as through_a_file:
        parse_config({"contracts": {"file": "notes.txt/c.yaml"}}, base_dir=tmp_path, environ={})
    assert str(through_a_file.value).startswith(
        f"contracts.file: {tmp_path / 'notes.txt' / 'c.yaml'}: cannot read: [Errno 20] Not a dir"
    )
    with pytest.raises(ConfigError) as missing:
        parse_config({"contracts": {"file": "absent.yaml"}}, base_dir=tmp_path, environ={})
    assert str(missing.value) == f"contracts.file: {tmp_path / 'absent.yaml'}: file not found"


def test_the_expected_total_and_the_file_read(tmp_path: Path) -> None:
    two = {"contracts": [_contract(), _contract(LAON, department="02", commune="02408")]}
    config = parse_config(_contracts(tmp_path, two), base_dir=tmp_path, environ={})
    assert (config.contracts.total, len(config.contracts.listed)) == (2, 2)
    assert config.contracts.path == tmp_path / "contrats.yaml"
    assert config.contracts.contract(LAON) is not None
    more = parse_config(_contracts(tmp_path, two, expected=39), base_dir=tmp_path, environ={})
    assert more.contracts.total == 39
    from_file = parse_config(
        _contracts(tmp_path, {**two, "expected": 5}), base_dir=tmp_path, environ={}
    )
    assert from_file.contracts.total == 5
    empty = parse_config(_contracts(tmp_path, b""), base_dir=tmp_path, environ={})
    assert (empty.contracts.total, empty.contracts.listed) == (0, ())
    off = parse_config({"contracts": {"enabled": False, "file": "absent.yaml"}}, environ={})
    assert (off.contracts.listed, off.contracts.path) == ((), None)
    shipped = parse_config({}, environ={})
    assert shipped.contracts.total == 39 and shipped.contracts.path is not None


def test_an_edited_contracts_file_is_read_again(tmp_path: Path) -> None:
    """A long-running process (the scheduler) sees the staff's edit, even one that
    keeps the file's size, or its modification time."""
    path = tmp_path / "contrats.yaml"
    data = {"contracts": {"file": "contrats.yaml"}}

    def listed() -> list[str]:
        config = parse_config(data, base_dir=tmp_path, environ={})
        return [c.name for c in config.contracts.listed]

    path.write_text(yaml.safe_dump({"contracts": [_contract(name="AAA")]}), "utf-8")
    assert listed() == ["AAA"]
    before = path.stat()
    path.write_text(yaml.safe_dump({"contracts": [_contract(name="BBB")]}), "utf-8")
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns + 1_000_000))
    assert path.stat().st_size == before.st_size
    assert listed() == ["BBB"]  # same size, another time
    again = path.stat()
    path.write_text(yaml.safe_dump({"contracts": [_contract(name="CCCC")]}), "utf-8")
    os.utime(path, ns=(again.st_atime_ns, again.st_mtime_ns))
    assert listed() == ["CCCC"]  # same time, another size


def test_without_a_file_relative_paths_are_read_from_the_current_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "contrats.yaml").write_text(yaml.safe_dump({"contracts": [_contract()]}), "utf-8")
    config = parse_config({"contracts": {"file": "contrats.yaml"}}, environ={})
    assert [c.siren for c in config.contracts.listed] == [LILLE]
    assert config.resolve("x.db").resolve() == tmp_path.resolve() / "x.db"
