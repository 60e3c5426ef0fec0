"""What every command may need (configuration, store, actor), loaded on first use."""

from __future__ import annotations

import getpass
import os

from pressreview.config import Config, load_config
from pressreview.store import Store, open_store


class AppContext:
    """What every command may need, loaded on first use."""

    def __init__(self, config_path: str | None, database_url: str | None, actor: str | None):
        self.config_path = config_path
        self.database_url = database_url
        self.actor = actor or os.environ.get("USER") or _login_name()
        self._config: Config | None = None
        self._store: Store | None = None

    @property
    def config(self) -> Config:
        if self._config is None:
            overrides = {"database_url": self.database_url} if self.database_url else None
            self._config = load_config(self.config_path, overrides)
        return self._config

    @property
    def store(self) -> Store:
        if self._store is None:
            self._store = open_store(self.config)
        return self._store

    def close(self) -> None:
        if self._store is not None:
            self._store.close()


def _login_name() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return "unknown"
