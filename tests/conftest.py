"""Shared fixtures: real stores (SQLite file, PostgreSQL when configured), configs, CLI.

PostgreSQL: set PRESSREVIEW_TEST_POSTGRES_URL to a server where the user may
create databases (.ci/run starts one); each test using the ``store_url``
fixture then also runs against a fresh database there.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner, Result

from pressreview.cli import main
from pressreview.config import Config, load_config
from pressreview.store import Store

POSTGRES_ENV = "PRESSREVIEW_TEST_POSTGRES_URL"
PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEMO_FEEDS = PROJECT_ROOT / "pressreview" / "demo" / "feeds"
SHARED = PROJECT_ROOT.parent / "shared"
CORPORA = SHARED / "corpora"


def _postgres_database() -> Iterator[str]:
    """A fresh PostgreSQL database, dropped afterwards."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    from pressreview.store import normalize_url

    admin_url = normalize_url(os.environ[POSTGRES_ENV])
    name = f"pressreview_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _backends() -> list[Any]:
    params: list[Any] = ["sqlite"]
    marks = [pytest.mark.postgres]
    if not os.environ.get(POSTGRES_ENV):
        marks.append(pytest.mark.skip(reason=f"PostgreSQL: set {POSTGRES_ENV} to run"))
    params.append(pytest.param("postgresql", marks=marks))
    return params


@pytest.fixture(params=_backends())
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database URL: a SQLite file, and (second run) a fresh PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'store.db'}"
    else:
        yield from _postgres_database()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'store.db'}"


BASE_CONFIG: dict[str, Any] = {
    "organisation": {
        "name": "Centre de ressources test",
        "url": "https://crpv.example.org/",
        "postal_address": "1 rue de l'Exemple, 59000 Lille",
        "contact_email": "contact@crpv.example.org",
    },
    "filters": {
        "include": [
            "contrat de ville",
            "contrats de ville",
            "Quartiers 2030",
            "QPV",
            "quartier prioritaire",
            "politique de la ville",
            "renouvellement urbain",
        ],
        "exclude": ["Val-d'Oise", "football"],
    },
    "sections": [
        {"key": "signatures", "title": "Signatures", "match": ["signe", "signé", "signature"]},
        {
            "key": "renouvellement",
            "title": "Renouvellement urbain",
            "match": ["renouvellement urbain", "ANRU", "NPNRU"],
        },
        {"key": "vie-des-quartiers", "title": "Vie des quartiers", "match": ["quartier"]},
    ],
    "territories": [
        {"name": "Amiens Métropole", "aliases": ["Amiens"], "department": "80"},
        {"name": "Métropole européenne de Lille", "aliases": ["MEL", "Lille"], "department": "59"},
        {"name": "Creil Sud Oise", "aliases": ["Creil", "ACSO"], "department": "60"},
    ],
    "archive": {"base_url": "https://veille.example.org/"},
    "web": {"base_url": "https://veille.example.org/abonnement/"},
}


@pytest.fixture
def make_config(tmp_path: Path) -> Callable[..., Config]:
    """Write a feeds.yaml into tmp_path and load it: make_config(feeds=[...], database_url=...)."""

    def make(**values: Any) -> Config:
        data = {**BASE_CONFIG, **values}
        data.setdefault("database_url", f"sqlite:///{tmp_path / 'store.db'}")
        path = tmp_path / "feeds.yaml"
        path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), "utf-8")
        return load_config(path)

    return make


@pytest.fixture
def store_for() -> Iterator[Callable[[Config], Store]]:
    """Open (and later close) the store of a config."""
    opened: list[Store] = []

    def open_(config: Config) -> Store:
        from pressreview.store import open_store

        store = open_store(config)
        opened.append(store)
        return store

    yield open_
    for store in opened:
        store.close()


@pytest.fixture
def cli() -> Callable[..., Result]:
    """Run the CLI like a user: cli(config, "collect", "--json", input=...)."""

    def run(config: Config | Path | str | None, *args: str, input: str | None = None,
            env: dict[str, str] | None = None) -> Result:  # fmt: skip
        argv: list[str] = []
        if config is not None:
            path = config.path if isinstance(config, Config) else config
            argv += ["--config", str(path)]
        runner = CliRunner()
        return runner.invoke(main, [*argv, *args], input=input, env=env, catch_exceptions=False)

    return run


@pytest.fixture
def demo_feed_url(httpserver: Any) -> Callable[[str], str]:
    """Serve a bundled demo feed from the real test HTTP server; returns its URL."""

    def serve(filename: str, **headers: str) -> str:
        body = (DEMO_FEEDS / filename).read_bytes()
        httpserver.expect_request(f"/{filename}").respond_with_data(
            body, content_type=headers.pop("content_type", "application/rss+xml"), headers=headers
        )
        return httpserver.url_for(f"/{filename}")

    return serve
