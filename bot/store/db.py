"""Engines and migrations: one async engine per store, Alembic configured in code.

Alembic needs no ``alembic.ini``: :func:`alembic_config` points it at the ``migrations``
package wherever it is installed, so ``parley db upgrade`` works from any directory.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import event, text
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

import migrations

# Alembic is imported only where a migration runs or is inspected: a process whose database is
# already at head never loads it (see at_head()).
if TYPE_CHECKING:
    from alembic.config import Config

SQLITE_BUSY_TIMEOUT_MS = 5000
# Execution option read by the SQLite "begin" hook: writers take the write lock up front.
BEGIN_MODE = "parley_begin"
# Any constant works; it only has to be the same for every Parley instance sharing a database.
_MIGRATION_LOCK_KEY = 0x7061726C6579  # "parley"


class StoreError(Exception):
    """A database problem a user can fix, as one line that names DATABASE_URL and never a password."""


def parse_url(url: str) -> URL:
    try:
        return make_url(url)
    except ArgumentError:
        raise StoreError(
            "DATABASE_URL: not a database URL (expected e.g. sqlite+aiosqlite:///parley.db "
            "or postgresql+asyncpg://user:pass@host/db)"
        ) from None


def describe(exc: BaseException, url: URL | None = None) -> str:
    """The cause of ``exc`` on one line, with the URL's password removed wherever it appears."""
    cause: BaseException = exc
    if isinstance(exc, DBAPIError) and exc.orig is not None:
        cause = exc.orig  # the driver's message, without SQLAlchemy's SQL dump and help link
    message = str(cause).strip() or type(cause).__name__
    message = " ".join(message.split())
    if url is not None and url.password:
        message = message.replace(str(url.password), "***")
    return message[:300]


def _is_sqlite(url: URL) -> bool:
    return url.get_backend_name() == "sqlite"


def _sqlite_path(url: URL) -> Path | None:
    database = url.database or ""
    if database in ("", ":memory:") or database.startswith("file:") or url.query.get("mode") == "memory":
        return None
    return Path(database)


_CONNECT_ATTEMPTS = 6


def _install_sqlite_hooks(engine: AsyncEngine) -> None:
    sync_engine = engine.sync_engine

    @event.listens_for(sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # The driver's own transaction handling would delay BEGIN until the first write;
        # SQLAlchemy's "begin" hook below issues it instead (the documented pysqlite recipe).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")  # first: WAL switch may wait
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")  # safe with WAL; a crash loses no commit
            cursor.execute("PRAGMA foreign_keys=ON")
        finally:
            cursor.close()

    @event.listens_for(sync_engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # A deferred transaction that reads and then writes cannot wait for the lock (SQLite
        # fails it at once with "database is locked"), so write transactions start IMMEDIATE
        # and queue on busy_timeout instead.
        mode = conn.get_execution_options().get(BEGIN_MODE, "DEFERRED")
        conn.exec_driver_sql(f"BEGIN {mode}")


def _engine_options(url: URL) -> dict[str, Any]:
    if _is_sqlite(url):
        # SQLAlchemy picks the pool: a queue pool for files, one shared connection for :memory:.
        return {}
    options: dict[str, Any] = {
        "pool_pre_ping": True,  # servers drop idle connections; find out before a query does
        "pool_size": 5,
        "max_overflow": 10,
        "pool_timeout": 30,
        "pool_recycle": 1800,
    }
    if url.get_driver_name() == "asyncpg":
        options["connect_args"] = {"timeout": 10}  # asyncpg would wait 60 s for a dead host
    return options


_THREAD_PATIENCE = 1.0  # seconds a failed connection's worker thread gets to end


def _sqlite_workers() -> set[threading.Thread]:
    """aiosqlite's worker threads, one per connection (Python names them after their target)."""
    return {t for t in threading.enumerate() if t.name.endswith("(_connection_worker_thread)")}


async def _settle_sqlite_threads(started_before: set[threading.Thread]) -> None:
    """Wait for the worker threads of connections that failed to open.

    aiosqlite stops such a thread without waiting for it; if the caller then exits (a clear line,
    exit 1) before the thread has answered, the thread finds the event loop closed and prints a
    traceback of its own under our one line.
    """
    for worker in _sqlite_workers() - started_before:
        await asyncio.to_thread(worker.join, _THREAD_PATIENCE)


async def open_engine(url: str, *, check: bool = True) -> AsyncEngine:
    """An engine for ``url``; with ``check``, also connects once so a bad URL fails here."""
    parsed = parse_url(url)
    if _is_sqlite(parsed):
        path = _sqlite_path(parsed)
        if path is not None:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreError(f"DATABASE_URL: cannot create {path.parent}: {describe(exc)}") from None
    try:
        engine = create_async_engine(parsed, **_engine_options(parsed))
    except (NoSuchModuleError, ModuleNotFoundError, ArgumentError, SQLAlchemyError) as exc:
        raise StoreError(f"DATABASE_URL: unsupported database driver ({describe(exc, parsed)})") from None
    if _is_sqlite(parsed):
        _install_sqlite_hooks(engine)
    if check:
        workers = _sqlite_workers()
        for attempt in range(_CONNECT_ATTEMPTS):
            try:
                async with engine.connect() as conn:
                    await conn.execute(text("SELECT 1"))
                break
            except Exception as exc:
                # Several processes opening a new SQLite file race to switch it to WAL, and
                # SQLite may refuse that switch at once instead of waiting: try again shortly.
                if "locked" in str(exc) and attempt + 1 < _CONNECT_ATTEMPTS:
                    await asyncio.sleep(0.1 * (attempt + 1))
                    continue
                await engine.dispose()
                if _is_sqlite(parsed):
                    await _settle_sqlite_threads(workers)
                where = parsed.render_as_string(hide_password=True)
                raise StoreError(
                    f"DATABASE_URL: cannot connect to {where}: {describe(exc, parsed)}"
                ) from None
    return engine


def writer(engine: AsyncEngine) -> AsyncEngine:
    """The same engine and pool, but its transactions take SQLite's write lock at BEGIN."""
    return engine.execution_options(**{BEGIN_MODE: "IMMEDIATE"})


# --- migrations ----------------------------------------------------------------------------


def migrations_dir() -> Path:
    return Path(migrations.__file__).resolve().parent


def alembic_config(url: str | None = None, connection: Connection | None = None) -> Config:
    """Alembic's config without an ini file.

    ``connection`` (a sync connection, e.g. from ``AsyncConnection.run_sync``) makes env.py
    migrate through it; otherwise env.py opens its own engine on ``url``. The URL travels in
    ``attributes``, not the ini options, so a ``%`` in a password needs no escaping.
    """
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(migrations_dir()).replace("%", "%%"))
    config.attributes["url"] = url
    config.attributes["connection"] = connection
    return config


def _run(connection: Connection, action: Callable[[Config], None]) -> None:
    if connection.dialect.name == "postgresql":
        # Instances starting together migrate one at a time; the later ones find nothing to do.
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK_KEY})
    action(alembic_config(connection=connection))


async def migrate(engine: AsyncEngine, revision: str = "head", *, down: bool = False) -> None:
    """Upgrade (or downgrade) through ``engine`` in one transaction, from inside the event loop.

    On SQLite the transaction holds the write lock from the start, which serialises
    concurrent migrators the same way the advisory lock does on PostgreSQL.
    """

    if revision == "head" and not down and await at_head(engine):
        return
    from alembic import command
    from alembic.util.exc import CommandError

    def action(config: Config) -> None:
        if down:
            command.downgrade(config, revision)
        else:
            command.upgrade(config, revision)

    try:
        async with writer(engine).begin() as conn:
            await conn.run_sync(_run, action)
    except (SQLAlchemyError, CommandError) as exc:
        hint = " (is the database from a newer Parley?)" if "Can't locate revision" in str(exc) else ""
        raise StoreError(f"DATABASE_URL: migration failed: {describe(exc, engine.url)}{hint}") from None


async def at_head(engine: AsyncEngine) -> bool:
    """Whether the schema is at :data:`migrations.HEAD`, read without Alembic.

    Any doubt (no version table yet, an unreadable database) answers False, and the caller
    migrates, which re-checks under the migration lock.
    """
    try:
        async with engine.connect() as conn:
            rows = (await conn.execute(text("SELECT version_num FROM alembic_version"))).all()
    except SQLAlchemyError:
        return False
    return [r[0] for r in rows] == [migrations.HEAD]


async def _with_engine(url: str, revision: str, down: bool) -> None:
    engine = await open_engine(url)
    try:
        await migrate(engine, revision, down=down)
    finally:
        await engine.dispose()


async def upgrade_async(url: str, revision: str = "head") -> None:
    await _with_engine(url, revision, down=False)


async def downgrade_async(url: str, revision: str = "base") -> None:
    await _with_engine(url, revision, down=True)


def _run_sync(coro_factory: Callable[[], Any]) -> None:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        asyncio.run(coro_factory())
        return
    # Called from inside a loop (a sync caller in async code): asyncio.run would refuse, so
    # the migration gets its own loop in a worker thread.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="parley-migrate") as pool:
        pool.submit(lambda: asyncio.run(coro_factory())).result()


def upgrade(url: str, revision: str = "head") -> None:
    """``alembic upgrade`` for ``url``; blocks. From async code prefer :func:`upgrade_async`."""
    _run_sync(lambda: upgrade_async(url, revision))


def downgrade(url: str, revision: str = "base") -> None:
    _run_sync(lambda: downgrade_async(url, revision))


def current_revision(connection: Connection) -> str | None:
    from alembic.runtime.migration import MigrationContext

    return MigrationContext.configure(connection).get_current_revision()


async def current_revision_async(conn: AsyncConnection) -> str | None:
    return await conn.run_sync(current_revision)


def head_revision() -> str | None:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config()).get_current_head()
