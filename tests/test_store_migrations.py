"""Migrations: up, down and up again; the models match the migrated schema; errors are one clean line."""

from __future__ import annotations

import asyncio
import hashlib
import io
import random
import socket
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import LargeBinary, column, insert, inspect, select, table
from sqlalchemy.engine import Connection

import migrations
from bot.store import Store, StoreError, db, downgrade, downgrade_async, upgrade, upgrade_async
from bot.store.models import Base, UTCDateTime, utcnow
from bot.types import Author, ConversationKey

# Fixtures shared by the store tests (pytest finds them as module attributes).

TABLES = {
    "conversations",
    "channel_settings",
    "messages",
    "attachments",
    "blobs",
    "blob_bytes",
    "processed_events",
    "usage",
    "feedback",
    "instances",
    "turns",
    "budget_slots",
}
# What revision 0003 added (several instances on one database).
TABLES_0005 = {"instances", "turns", "budget_slots"}


async def _tables_and_revision(url: str) -> tuple[set[str], str | None]:
    engine = await db.open_engine(url)
    try:
        async with engine.connect() as conn:
            names = await conn.run_sync(lambda sync: set(inspect(sync).get_table_names()))
            revision = await db.current_revision_async(conn)
    finally:
        await engine.dispose()
    return names - {"alembic_version"}, revision


async def test_upgrade_downgrade_upgrade(db_url: str) -> None:
    await upgrade_async(db_url)
    assert await _tables_and_revision(db_url) == (TABLES, db.head_revision())

    await downgrade_async(db_url, "base")
    assert await _tables_and_revision(db_url) == (set(), None)

    await upgrade_async(db_url)
    assert await _tables_and_revision(db_url) == (TABLES, migrations.HEAD)


async def test_models_match_the_migrated_schema(db_url: str) -> None:
    await upgrade_async(db_url)
    engine = await db.open_engine(db_url)

    def diff(conn: Connection) -> list[object]:
        context = MigrationContext.configure(
            conn, opts={"compare_type": True, "compare_server_default": True}
        )
        return list(compare_metadata(context, Base.metadata))

    try:
        async with engine.connect() as conn:
            assert await conn.run_sync(diff) == []
    finally:
        await engine.dispose()


# blobs as 0001 made it: the bytes in the row.
_BLOBS_0001 = table(
    "blobs",
    column("sha256"),
    column("data", LargeBinary()),
    column("size"),
    column("extracted_text"),
    column("created_at", UTCDateTime()),
)


async def test_0002_moves_stored_bytes_out_of_blobs_and_back(db_url: str) -> None:
    data = random.Random(2).randbytes(3 * 1024 * 1024 + 17)
    digest = hashlib.sha256(data).hexdigest()
    created = utcnow().replace(microsecond=0)
    await upgrade_async(db_url, "0001")
    engine = await db.open_engine(db_url)
    try:
        async with engine.begin() as conn:
            row = {"sha256": digest, "data": data, "size": len(data), "created_at": created}
            await conn.execute(insert(_BLOBS_0001).values(extracted_text="the text", **row))

        await upgrade_async(db_url)
        store = await Store.open(db_url)
        try:
            blob = await store.blobs.get(digest)
            assert blob is not None
            assert (blob.data, blob.size, blob.extracted_text, blob.created_at) == (
                data,
                len(data),
                "the text",
                created,
            )
        finally:
            await store.close()

        await downgrade_async(db_url, "0001")
        async with engine.connect() as conn:
            columns = await conn.run_sync(lambda sync: inspect(sync).get_columns("blobs"))
            kept = (await conn.execute(select(_BLOBS_0001))).one()
        after_0001 = TABLES - {"blob_bytes", "feedback"} - TABLES_0005
        assert await _tables_and_revision(db_url) == (after_0001, "0001")
        # PostgreSQL appends the restored column; the order matters to no query.
        assert {c["name"]: c["nullable"] for c in columns} == {
            "sha256": False,
            "data": False,
            "size": False,
            "extracted_text": True,
            "created_at": False,
        }
        assert tuple(kept) == (digest, data, len(data), "the text", created)

        await upgrade_async(db_url)  # and up again, with the same bytes
        store = await Store.open(db_url)
        try:
            assert (await store.blobs.get(digest)).data == data  # type: ignore[union-attr]
        finally:
            await store.close()
    finally:
        await engine.dispose()


def test_sync_upgrade_and_downgrade_outside_a_loop(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'a' / 'b' / 'sync.db'}"
    upgrade(url)
    assert (tmp_path / "a" / "b" / "sync.db").exists()
    assert asyncio.run(_tables_and_revision(url)) == (TABLES, migrations.HEAD)
    downgrade(url, "base")
    assert asyncio.run(_tables_and_revision(url)) == (set(), None)


async def test_sync_upgrade_works_inside_a_running_loop(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'inloop.db'}"
    upgrade(url)  # blocks this loop, but must not fail with "asyncio.run() cannot be called"
    assert await _tables_and_revision(url) == (TABLES, migrations.HEAD)


def test_alembic_commands_without_a_connection_use_their_own_engine(tmp_path: Path) -> None:
    """Hand-driven Alembic (what a developer runs for ``revision --autogenerate``) goes through env.py."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"
    config = db.alembic_config(url)
    command.upgrade(config, "head")
    assert asyncio.run(_tables_and_revision(url)) == (TABLES, migrations.HEAD)
    command.check(config)  # raises if the models would autogenerate any change


def test_offline_sql_renders_the_schema() -> None:
    config = db.alembic_config("postgresql+asyncpg://u:p@localhost/db")
    config.output_buffer = io.StringIO()
    command.upgrade(config, "head", sql=True)
    sql = config.output_buffer.getvalue()
    assert "CREATE TABLE messages" in sql
    assert "CREATE INDEX ix_messages_conversation_id_id ON messages (conversation_id, id)" in sql


def test_migrations_are_found_from_any_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert (db.migrations_dir() / "env.py").exists()
    assert db.head_revision() == "0005"


async def test_concurrent_opens_of_a_new_database_migrate_once(db_url: str) -> None:
    stores = await asyncio.gather(*(Store.open(db_url) for _ in range(4)))
    try:
        conversation = await stores[0].conversations.find_or_create(ConversationKey("console", "", "c"))
        await stores[3].history.add(conversation.id, Author("u", "U"), "hi")
        assert [m.text for m in await stores[1].history.load(conversation.id, 5)] == ["hi"]
    finally:
        for store in stores:
            await store.close()


async def test_open_without_migrate_changes_nothing_and_reports_the_schema(db_url: str) -> None:
    store = await Store.open(db_url, migrate=False)
    try:
        await store.ping()
        assert not await db.at_head(store.engine)
        assert await _tables_and_revision(db_url) == (set(), None)
        await upgrade_async(db_url)
        assert await db.at_head(store.engine)
    finally:
        await store.close()


async def test_relative_sqlite_path_creates_folders_in_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    store = await Store.open("sqlite+aiosqlite:///data/nested/parley.db")
    await store.close()
    assert (tmp_path / "data" / "nested" / "parley.db").exists()


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("not a url", "DATABASE_URL: not a database URL"),
        ("nosuchdb+driver://x/y", "DATABASE_URL: unsupported database driver"),
    ],
)
async def test_malformed_urls_raise_one_line(url: str, expected: str) -> None:
    with pytest.raises(StoreError) as caught:
        await Store.open(url)
    assert str(caught.value).startswith(expected)
    assert "\n" not in str(caught.value)


async def test_unreachable_database_names_the_setting_but_not_the_password() -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(StoreError) as caught:
        await Store.open(f"postgresql+asyncpg://parley:hunter2secret@127.0.0.1:{port}/parley")
    message = str(caught.value)
    assert message.startswith("DATABASE_URL: cannot connect to postgresql+asyncpg://parley:***@127.0.0.1")
    assert "hunter2secret" not in message
    assert "\n" not in message


async def test_uncreatable_sqlite_path_is_a_store_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a folder")
    with pytest.raises(StoreError, match=r"^DATABASE_URL: "):
        await Store.open(f"sqlite+aiosqlite:///{tmp_path / 'file' / 'db' / 'parley.db'}")


async def test_sqlite_pragmas_are_set(tmp_path: Path) -> None:
    engine = await db.open_engine(f"sqlite+aiosqlite:///{tmp_path / 'p.db'}")
    try:
        async with engine.connect() as conn:
            values = {}
            for pragma in ("journal_mode", "busy_timeout", "foreign_keys", "synchronous"):
                values[pragma] = (await conn.exec_driver_sql(f"PRAGMA {pragma}")).scalar()
    finally:
        await engine.dispose()
    assert values == {"journal_mode": "wal", "busy_timeout": 5000, "foreign_keys": 1, "synchronous": 1}


async def test_a_database_from_a_newer_parley_is_a_clear_error(db_url: str) -> None:
    await upgrade_async(db_url)
    engine = await db.open_engine(db_url)
    try:
        async with engine.begin() as conn:
            await conn.exec_driver_sql("UPDATE alembic_version SET version_num = '9999'")
    finally:
        await engine.dispose()
    with pytest.raises(StoreError, match="newer Parley"):
        await Store.open(db_url)


async def test_a_file_that_is_not_a_database_is_a_store_error(tmp_path: Path) -> None:
    (tmp_path / "junk.db").write_bytes(b"this is not SQLite" * 100)
    with pytest.raises(StoreError) as caught:
        await Store.open(f"sqlite+aiosqlite:///{tmp_path / 'junk.db'}")
    assert str(caught.value).startswith("DATABASE_URL: cannot connect to sqlite+aiosqlite:///")
    assert str(caught.value).endswith("file is not a database")


async def test_in_memory_sqlite_works_with_concurrent_use() -> None:
    memory = await Store.open("sqlite+aiosqlite://")
    try:
        conversation = await memory.conversations.find_or_create(ConversationKey("console", "", "m"))
        await asyncio.gather(
            *(memory.history.add(conversation.id, Author("u", "U"), str(n)) for n in range(20)),
            *(memory.history.load(conversation.id, 5) for _ in range(20)),
        )
        assert len(await memory.history.load(conversation.id, 50)) == 20
    finally:
        await memory.close()
