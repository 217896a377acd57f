"""The database engine: SQLite (WAL) embedded by default, PostgreSQL through asyncpg."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from core.settings import SettingsError
from core.startup import StartupFailure

if TYPE_CHECKING:
    from contextlib import AbstractAsyncContextManager

_ASYNC_DRIVERS = {
    "sqlite": "sqlite+aiosqlite",
    "sqlite+pysqlite": "sqlite+aiosqlite",
    "postgres": "postgresql+asyncpg",
    "postgresql": "postgresql+asyncpg",
    "postgresql+psycopg2": "postgresql+asyncpg",
}

log = logging.getLogger("qatysu")

# Each attempt to reach the database at start-up takes at most this, so a host that drops
# packets costs seconds, not the driver's own minute; and at least a second, however little of
# the wait is left.
ATTEMPT_TIMEOUT = 5.0
MIN_ATTEMPT_TIMEOUT = 1.0
# Seconds between attempts while start-up waits for the database.
ATTEMPT_PAUSE = 0.5


def async_url(url: str) -> str:
    """The async-driver form of a URL as users write it (``sqlite:///``, ``postgresql://``)."""
    try:
        parsed = make_url(url)
        port = parsed.port  # a port that is not a number fails here, as a ValueError
    except (ArgumentError, ValueError):
        raise SettingsError(f"database.url {url!r} is not a database URL") from None
    if port is not None and not 0 < port < 65536:
        raise SettingsError(f"database.url: port {port} is not between 1 and 65535")
    driver = _ASYNC_DRIVERS.get(parsed.drivername, parsed.drivername)
    if driver not in ("sqlite+aiosqlite", "postgresql+asyncpg"):
        raise SettingsError(
            f"database.url: {parsed.drivername!r} is not supported; use sqlite:/// or postgresql://"
        )
    return parsed.set(drivername=driver).render_as_string(hide_password=False)


class Database:
    """One engine for reads and for the writer, with the dialect's durability settings."""

    def __init__(
        self, url: str, *, pool_size: int = 8, statement_timeout: float | None = None
    ) -> None:
        """``statement_timeout`` bounds every statement, reads and writes, and the wait for a
        pooled connection: a stalled database then fails requests fast and frees their
        admission slots instead of holding them. None (migrations) bounds nothing."""
        self.url = async_url(url)
        self.display_url = make_url(url).render_as_string(hide_password=True)
        self.dialect = "sqlite" if self.url.startswith("sqlite") else "postgresql"
        # Bound parameters (names, texts, hashes) never reach an error message or a log line.
        kwargs: dict[str, Any] = {"hide_parameters": True}
        if self.dialect == "sqlite":
            database = make_url(self.url).database
            if database and database != ":memory:":
                _make_directory(Path(database).parent)
            kwargs["connect_args"] = {"timeout": 30}
        else:
            kwargs.update(pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True)
            if statement_timeout is not None:
                milliseconds = max(1, round(statement_timeout * 1000))
                kwargs["pool_timeout"] = statement_timeout
                kwargs["connect_args"] = {
                    "server_settings": {"statement_timeout": str(milliseconds)},
                    "timeout": statement_timeout,
                }
        self.engine: AsyncEngine = create_async_engine(self.url, **kwargs)
        self._write_engine = self.engine.execution_options(qatysu_write=True)
        # A synchronous engine on the same SQLite file, for the writer's own thread: a batch
        # run there costs the event loop one thread hop instead of one per statement.
        self.sync_engine: Engine | None = None
        if self.dialect == "sqlite":
            _configure_sqlite(self.engine.sync_engine)
            database = make_url(self.url).database
            if database and database != ":memory:":
                sync_url = make_url(self.url).set(drivername="sqlite+pysqlite")
                self.sync_engine = create_engine(
                    sync_url, connect_args={"timeout": 30}, hide_parameters=True
                ).execution_options(qatysu_write=True)
                _configure_sqlite(self.sync_engine)

    @property
    def is_sqlite(self) -> bool:
        return self.dialect == "sqlite"

    def read(self) -> AbstractAsyncContextManager[AsyncConnection]:
        """A connection for reads; it sees only committed data."""
        return self.engine.connect()

    def transaction(self) -> AbstractAsyncContextManager[AsyncConnection]:
        """A connection in a transaction that commits on exit (the writer's, and migrations')."""
        return self._write_engine.begin()

    async def ping(self) -> None:
        async with self.engine.connect() as conn:
            await conn.exec_driver_sql("SELECT 1")

    async def dispose(self) -> None:
        await self.engine.dispose()
        if self.sync_engine is not None:
            self.sync_engine.dispose()


class DatabaseUnreachable(StartupFailure):
    """The database did not answer within the start-up wait."""


async def wait_until_reachable(
    database: Database,
    *,
    wait: float,
    clock: Callable[[], float] = time.monotonic,
    pause: float = ATTEMPT_PAUSE,
) -> None:
    """Return once ``database`` answers. While it does not, log one warning and try again for
    up to ``wait`` seconds (a database started beside the server may take a few), then raise
    DatabaseUnreachable with the last error: a server that cannot store anything must not
    say it is serving."""
    deadline = clock() + wait
    warned = False
    while True:
        try:
            remaining = deadline - clock()
            async with asyncio.timeout(min(ATTEMPT_TIMEOUT, max(MIN_ATTEMPT_TIMEOUT, remaining))):
                await database.ping()
            return
        # Whatever stops a connection: refused, unknown host, a password or database that is
        # wrong, a timeout. Each is the operator's to fix, and each is named.
        except Exception as exc:
            reason = describe_failure(exc)
            if clock() >= deadline:
                raise DatabaseUnreachable(
                    f"cannot reach the database at {database.display_url}: {reason}"
                ) from None
            if not warned:
                log.warning(
                    "the database at %s does not answer (%s); waiting up to %g s for it",
                    database.display_url,
                    reason,
                    wait,
                )
                warned = True
        await asyncio.sleep(max(0.0, min(pause, deadline - clock())))


def describe_failure(exc: BaseException) -> str:
    """The driver's own error in one line, without SQLAlchemy's wrapping and links."""
    if isinstance(exc, sa_exc.DBAPIError) and exc.orig is not None:
        # The driver's message names the problem ('database "x" does not exist'); the class
        # is SQLAlchemy's adapter, which says nothing more.
        return " ".join(str(exc.orig).split())
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _make_directory(path: Path) -> None:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DatabaseUnreachable(
            f"cannot create {path} for the SQLite database: {exc.strerror}"
        ) from None


# PostgreSQL's SQLSTATE classes that say the database as a whole is failing: connection (08),
# a read-only transaction (25), transaction rollback (40), insufficient resources such as a
# full disk (53), lock not available (55), operator intervention such as statement_timeout
# (57) and system errors (58).
_STORAGE_SQLSTATE_CLASSES = frozenset({"08", "25", "40", "53", "55", "57", "58"})


def storage_failure(exc: BaseException) -> bool:
    """Whether ``exc`` says the database as a whole failed (too slow, locked, unreachable, full
    or read-only) rather than one statement: the answer is then 503, not a 500 or a 4xx."""
    if isinstance(exc, (TimeoutError, OSError, sa_exc.DisconnectionError, sa_exc.TimeoutError)):
        return True
    if not isinstance(exc, sa_exc.DBAPIError):
        return False
    if exc.connection_invalidated:
        return True
    sqlstate = getattr(exc.orig, "sqlstate", None)
    if isinstance(sqlstate, str):
        return sqlstate[:2] in _STORAGE_SQLSTATE_CLASSES
    # SQLite: locked, read-only, full or failing storage are all OperationalError.
    return isinstance(exc, sa_exc.OperationalError)


def _configure_sqlite(engine: Engine) -> None:
    # pysqlite's own transaction handling breaks SAVEPOINT; SQLAlchemy's documented recipe is to
    # turn it off and emit BEGIN ourselves. Write transactions BEGIN IMMEDIATE so they take the
    # write lock up front and never deadlock upgrading a read lock; reads stay deferred so they
    # never wait on a writer (WAL).
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        # FULL: a commit is on disk before the writer acknowledges it, even across power loss.
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        write = conn.get_execution_options().get("qatysu_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")
