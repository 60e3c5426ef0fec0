"""The store: the only code that speaks SQL.

``Store`` wraps one SQLAlchemy engine (SQLite file by default, PostgreSQL by
URL). The schema is created and migrated by Alembic revisions kept in
``migrations/``, recorded in the database's ``alembic_version`` table and
applied by ``pressreview db upgrade`` or automatically on first use.
Query functions live in the sibling modules, one per stage.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, inspect
from sqlalchemy.engine import ExceptionContext, make_url
from sqlalchemy.exc import ArgumentError, IntegrityError, OperationalError, SQLAlchemyError
from sqlalchemy.pool import NullPool

from pressreview.config import Config
from pressreview.errors import DuplicateKey, StoreError

__all__ = ["Connection", "Store", "open_store", "transaction"]
# ``Connection`` is re-exported: the handle the core receives from Store.begin() /
# Store.connect() and passes back to the query functions of store/; it never runs SQL.

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
#: How long a write waits for another process's lock before giving up with a clear message.
SQLITE_BUSY_TIMEOUT_MS = 5_000
#: SQLite's page cache per connection, in KiB (its default is 2 MiB). Inserts land
#: on random pages of the large indexes (an item's URL, its title keys): with the
#: default cache, a store of 500,000 items reads most of those pages from the file
#: again on every batch; the memory is only taken as pages are read. 64 MiB cost
#: no less CPU per item than 32 at 500,000 items (benchmarks/scale.py), and 40 MB
#: more of peak memory in a collect of 50,000 items.
SQLITE_CACHE_KIB = 32 * 1024
#: The PostgreSQL advisory lock taken while the schema changes ("prsc").
SCHEMA_LOCK_KEY = 0x70727363


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute(f"PRAGMA cache_size=-{SQLITE_CACHE_KIB}")
    cursor.close()


def normalize_url(url: str, base_dir: Path | None = None) -> str:
    """Accept ``postgres://`` and relative SQLite paths; pick the psycopg 3 driver."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise StoreError(
            f"database_url: cannot parse {url!r} "
            "(e.g. sqlite:///pressreview.db or postgresql://user@host/dbname)"
        ) from None
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        db = Path(parsed.database)
        if not db.is_absolute() and base_dir is not None:
            parsed = parsed.set(database=str(base_dir / db))
    return parsed.render_as_string(hide_password=False)


class Store:
    """A database holding pressreview's data."""

    def __init__(self, url: str, *, base_dir: Path | None = None, auto_upgrade: bool = True):
        self.url = normalize_url(url, base_dir)
        backend = make_url(self.url).get_backend_name()
        self.dialect = backend
        try:
            if backend == "sqlite":
                database = make_url(self.url).database
                if database and database != ":memory:":
                    Path(database).parent.mkdir(parents=True, exist_ok=True)
                self.engine: Engine = create_engine(
                    self.url,
                    poolclass=NullPool,
                    connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
                )
                event.listen(self.engine, "connect", _sqlite_pragmas)
            elif backend == "postgresql":
                self.engine = create_engine(self.url, pool_pre_ping=True)
            else:
                raise StoreError(
                    f"database_url: unsupported database {backend!r} (use sqlite or postgresql)"
                )
        except ImportError as exc:
            raise StoreError(f"database_url: missing database driver: {exc}") from None
        event.listen(self.engine, "handle_error", self._translate_error)
        self._checked = False
        self.auto_upgrade = auto_upgrade

    @property
    def is_sqlite(self) -> bool:
        return self.dialect == "sqlite"

    def describe(self) -> str:
        """The URL without its password, for messages."""
        return make_url(self.url).render_as_string(hide_password=True)

    # -- migrations -------------------------------------------------------
    # Alembic is imported in the methods that use it: importing it costs about 0.9 s
    # (python -X importtime), which every command would pay at start-up otherwise.

    def _alembic_config(self, connection: Connection) -> Any:
        from alembic.config import Config as AlembicConfig

        cfg = AlembicConfig()
        cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
        cfg.attributes["connection"] = connection
        return cfg

    def head_revision(self) -> str | None:
        from alembic.script import ScriptDirectory

        cfg = self._alembic_config(None)  # type: ignore[arg-type]
        return ScriptDirectory.from_config(cfg).get_current_head()

    def current_revision(self) -> str | None:
        from alembic.runtime.migration import MigrationContext

        with self.engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()

    def upgrade(self) -> tuple[str | None, str | None]:
        """Apply every pending migration. Returns (revision before, revision after)."""
        from alembic import command

        try:
            before = self.current_revision()
            with self.schema_lock() as conn:  # two processes starting at once: one migrates
                command.upgrade(self._alembic_config(conn), "head")
            after = self.current_revision()
        except OperationalError as exc:
            raise StoreError(
                f"cannot open the database {self.describe()}: {_first_line(exc)}"
            ) from None
        except SQLAlchemyError as exc:
            raise StoreError(
                f"cannot migrate the database {self.describe()}: {_first_line(exc)}"
            ) from None
        self._checked = True
        return before, after

    @contextmanager
    def schema_lock(self) -> Iterator[Connection]:
        """A transaction holding the database-wide lock under which schema changes run.

        PostgreSQL: a transaction-scoped advisory lock; SQLite: the write lock
        (BEGIN IMMEDIATE). A second process waits, then finds the work done
        (so concurrent first starts on a fresh database do not race to create tables).
        """
        with self.engine.begin() as conn:
            if self.dialect == "postgresql":
                conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({SCHEMA_LOCK_KEY})")
            elif self.dialect == "sqlite":
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            yield conn

    def ensure_schema(self) -> None:
        """Migrate on first use (when auto_upgrade) or refuse an out-of-date store."""
        if self._checked:
            return
        try:
            current = self.current_revision()
        except OperationalError as exc:
            raise StoreError(
                f"cannot open the database {self.describe()}: {_first_line(exc)}"
            ) from None
        if current != self.head_revision():
            if not self.auto_upgrade:
                raise StoreError(
                    f"the database {self.describe()} is at schema {current or 'none'}; "
                    "run `pressreview db upgrade`"
                )
            self.upgrade()
        self._checked = True

    # -- connections ------------------------------------------------------

    @contextmanager
    def begin(self) -> Iterator[Connection]:
        """A connection inside one transaction (committed on success).

        A unique key taken meanwhile (a concurrent run) is raised as DuplicateKey.
        """
        self.ensure_schema()
        try:
            with self.engine.begin() as conn:
                yield conn
        except IntegrityError as exc:
            raise DuplicateKey(_first_line(exc)) from exc

    @contextmanager
    def connect(self) -> Iterator[Connection]:
        """A connection for reads (or for callers managing transactions)."""
        self.ensure_schema()
        with self.engine.connect() as conn:
            yield conn

    def _translate_error(self, context: ExceptionContext) -> None:
        """Turn a database that cannot be used at all into one clear StoreError.

        Registered on the engine, so every command and every query gets the
        same message for a damaged file, a lock held too long by another
        process or a PostgreSQL database that does not exist; other errors
        (a constraint, a bug) stay SQLAlchemy's.
        """
        if context.is_pre_ping:
            return
        problem = database_problem(context.original_exception, self.describe())
        if problem is not None:
            raise problem from None

    def _error(self, verb: str, exc: BaseException) -> StoreError:
        return StoreError(f"cannot {verb} the database {self.describe()}: {_first_line(exc)}")

    def table_names(self) -> list[str]:
        return sorted(inspect(self.engine).get_table_names())

    def refresh_statistics(self) -> None:
        """Refresh the planner's statistics of the item tables after a large load.

        Without them PostgreSQL plans a freshly loaded table as if it held a few
        rows (a list or a search then takes seconds instead of milliseconds)
        until autovacuum gets round to it. Both read a sample, not the tables
        (``analysis_limit`` on SQLite).
        """
        with self.engine.connect() as conn:
            if self.is_sqlite:
                conn.exec_driver_sql("PRAGMA analysis_limit = 1000")
                for table in ("items", "item_territories"):
                    conn.exec_driver_sql(f"ANALYZE {table}")
            else:
                conn.exec_driver_sql("ANALYZE items, item_territories, item_totals")
            conn.commit()

    def close(self) -> None:
        self.engine.dispose()


_SQLITE_DAMAGED = ("file is not a database", "database disk image is malformed",
                   "file is encrypted")  # fmt: skip
_SQLITE_LOCKED = ("database is locked", "database table is locked", "database schema is locked")


def database_problem(exc: BaseException, where: str) -> StoreError | None:
    """A one-line StoreError for a database that cannot be used, or None for other errors."""
    text = str(exc).strip()
    lowered = text.lower()
    if any(m in lowered for m in _SQLITE_DAMAGED):
        return StoreError(
            f"the database {where} is damaged or is not a pressreview database ({text}); "
            "restore it from a backup, or set database_url to another file"
        )
    if any(m in lowered for m in _SQLITE_LOCKED):
        return StoreError(
            f"the database {where} is locked by another process; retry, "
            "or see `pressreview db status`"
        )
    if "unable to open database file" in lowered:
        return StoreError(
            f"cannot open the database {where}: check that its folder exists and is writable"
        )
    if "disk i/o error" in lowered or "database or disk is full" in lowered:
        return StoreError(f"the database {where} cannot be written ({text}); check the disk")
    if "does not exist" in lowered and "database" in lowered and "connection" in lowered:
        return StoreError(
            f"the database {where} does not exist on its server; create it "
            "(e.g. `createdb NAME`), then run `pressreview db upgrade`"
        )
    module = type(exc).__module__
    if module.startswith("psycopg") and type(exc).__name__ == "OperationalError":
        first = text.splitlines()[0] if text else type(exc).__name__
        return StoreError(
            f"cannot open the database {where}: {first}; check that its server "
            "runs and database_url"
        )
    return None


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc)
    return text.strip().splitlines()[0] if text.strip() else type(exc).__name__


@contextmanager
def transaction(conn: Connection) -> Iterator[None]:
    """One transaction on a connection the caller keeps open (the collect run's writer).

    Committed on success; any database error rolls it back and is raised as
    StoreError, whose message is the first line of the driver's.
    """
    try:
        with conn.begin():
            yield
    except SQLAlchemyError as exc:
        raise StoreError(str(exc)) from exc


def open_store(config: Config, *, auto_upgrade: bool = True) -> Store:
    """The store named by a Config (``database_url``, relative to the config's folder)."""
    return Store(config.database_url, base_dir=config.base_dir, auto_upgrade=auto_upgrade)
