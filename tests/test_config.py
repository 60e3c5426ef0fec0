"""feeds.yaml validation: every mistake is one line with the key's path, exit code 2."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from pressreview.config import load_config, parse_config
from pressreview.errors import ConfigError
from pressreview.text import fold

ROOT = Path(__file__).resolve().parent.parent


def test_shipped_feeds_yaml_is_valid() -> None:
    config = load_config(ROOT / "feeds.yaml")
    assert len(config.feeds) >= 10
    assert config.locale.startswith("fr") and config.timezone == "Europe/Paris"
    assert [s.key for s in config.ordered_sections()]
    assert all(f.url.startswith(("http://", "https://")) for f in config.feeds)


def test_demo_config_is_valid() -> None:
    text = (ROOT / "pressreview" / "demo" / "demo.yaml").read_text("utf-8")
    config = parse_config(yaml.safe_load(text.replace("{port}", "8000")))
    assert config.feeds and config.digest.policy == "auto"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"feeds": [{"name": "A", "url": "x"}]}, "feeds[0].url: not a URL"),
        ({"feeds": [{"name": "A"}]}, "feeds[0].url: missing"),
        (
            {"feeds": [{"name": "A", "url": "https://a.fr/"}, {"name": "a", "url": "https://b.fr/"}]},
            "feeds[1].name: duplicate source name",
        ),
        (
            {"feeds": [{"name": "A", "url": "https://a.fr/", "colour": 1}]},
            "feeds[0].colour: unknown key",
        ),
        ({"feed": []}, "feed: unknown key"),
        ({"feeds": {"name": "A"}}, "feeds: must be a list"),
        ({"collect": {"concurrency": "many"}}, "collect.concurrency: must be an integer"),
        ({"collect": {"total_timeout": True}}, "collect.total_timeout: must be a number"),
        ({"feeds": [{"name": "A", "url": "https://a.fr/", "enabled": "yes"}]},
         "feeds[0].enabled: must be true or false"),
        ({"delivery": {"transport": "pigeon"}}, "delivery.transport: must be one of"),
        ({"sections": [{"key": "Bad Key", "title": "x"}]}, "sections[0].key:"),
        ({"sections": [{"key": "a", "title": "x"}, {"key": "a", "title": "y"}]},
         "sections[1].key: duplicate"),
        ({"timezone": "Europe/Lile"}, "timezone: unknown time zone"),
        ({"locale": "xx_YY"}, "locale: unknown locale"),
        ({"archive": {"base_url": "veille"}}, "archive.base_url: not an http(s) URL"),
        ({"territories": [{"name": "Lille"}],
          "feeds": [{"name": "A", "url": "https://a.fr/", "territory": "Lens"}]},
         "feeds[0].territory: 'Lens' is not one of the territories"),
        (["a", "list"], "must be a mapping"),
        ({"delivery": {"dkim_selector": "pr2026"}},
         "delivery.dkim_selector and delivery.dkim_domain: set both or neither"),
        ({"web": {"base_url": "https://veille.example.org/abonnement/?x=1"}},
         "web.base_url: must not have a query or a fragment"),
        ({"email": {"from_address": "veille"}}, "email.from_address: not a usable sender"),
        ({"email": {"from_address": "a@b@c.org"}}, "email.from_address: not a usable sender"),
        ({"email": {"from_address": "veille@exemple.org\r\nBcc: x@y.org"}},
         "email.from_address: not a usable sender"),
        ({"email": {"from_name": "Revue\nBcc: x@y.org"}},
         "email.from_address: not a usable sender"),
        ({"email": {"reply_to": "contact@exemple.org\nBcc: x@y.org"}},
         "email.reply_to: not an address"),
    ],
)  # fmt: skip
def test_invalid_config_names_the_key(data: object, message: str) -> None:
    with pytest.raises(ConfigError) as error:
        parse_config(data, environ={})
    assert message in str(error.value)
    assert "\n" not in str(error.value)


def test_defaults_and_single_string_lists() -> None:
    config = parse_config(
        {"feeds": [{"name": "A", "url": "file:///tmp/a.xml", "tags": "presse"}]}, environ={}
    )
    assert config.feeds[0].tags == ("presse",)
    assert config.delivery.transport == "outbox"
    assert config.collect.max_bytes == 15_000_000


def test_database_url_precedence(tmp_path: Path) -> None:
    path = tmp_path / "feeds.yaml"
    path.write_text("database_url: sqlite:///file.db\n", "utf-8")
    assert load_config(path).database_url == "sqlite:///file.db"
    assert (
        load_config(path, {"database_url": "sqlite:///cli.db"}).database_url == "sqlite:///cli.db"
    )
    env = {"PRESSREVIEW_DATABASE_URL": "sqlite:///env.db"}
    assert parse_config({}, environ=env, overrides={"database_url": "x"}).database_url == (
        "sqlite:///env.db"
    )


def test_config_file_path_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "elsewhere.yaml"
    path.write_text("locale: fr_FR\n", "utf-8")
    monkeypatch.setenv("PRESSREVIEW_CONFIG", str(path))
    assert load_config().path == path
    assert load_config().base_dir == tmp_path.resolve()


def test_config_is_frozen(make_config) -> None:  # type: ignore[no-untyped-def]
    config = make_config()
    with pytest.raises(AttributeError):
        config.locale = "en"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("feeds: [\n  - name: A\n", "invalid YAML (line"),
        ("feeds:\n  - {name: A, url: nope}\n", "feeds[0].url: not a URL"),
    ],
)
def test_cli_reports_config_errors_in_one_line(
    cli, tmp_path: Path, text: str, message: str
) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "feeds.yaml"
    path.write_text(text, "utf-8")
    result = cli(path, "collect")
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_cli_missing_config_file(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    result = cli(tmp_path / "nope.yaml", "feeds", "list")
    assert result.exit_code == 2
    assert "configuration file not found" in result.output


def test_territories_are_matched_with_the_classifier_s_folding() -> None:
    """ "Coeur" names the territory "Cœur" (œ folds to oe here as in the classifier)."""
    config = parse_config(
        {
            "territories": [{"name": "Cœur d'Ostrevent"}, {"name": "Læ"}],
            "feeds": [
                {"name": "A", "url": "https://a.fr/", "territory": "COEUR D'OSTREVENT"},
                {"name": "B", "url": "https://b.fr/", "territory": "lae"},
            ],
        },
        environ={},
    )
    assert [f.territory for f in config.feeds] == ["COEUR D'OSTREVENT", "lae"]
    assert fold("Cœur") == "coeur" and fold("Æ") == "ae"
