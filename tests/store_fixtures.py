"""Fixtures for the store tests: every test runs on SQLite, and on PostgreSQL too when
``PARLEY_TEST_POSTGRES_URL`` names a server (e.g. postgresql+asyncpg://postgres@127.0.0.1:5432/postgres).

Each PostgreSQL test gets a database of its own, created empty and dropped afterwards, so tests
never see each other's rows and migration tests start from nothing: ``db_url`` (either backend),
``pg_url`` (PostgreSQL only) and ``pg_database`` (the same for tests that are not coroutines).
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterable, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

import pytest
from sqlalchemy import select, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from bot.store import Store, StoredAttachment
from bot.store.models import AttachmentRow

POSTGRES_URL = os.environ.get("PARLEY_TEST_POSTGRES_URL", "")
BACKENDS = ["sqlite", *(["postgres"] if POSTGRES_URL else [])]


async def _postgres_admin(sql: str) -> None:
    engine = create_async_engine(make_url(POSTGRES_URL), isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            await conn.execute(text(sql))
    finally:
        await engine.dispose()


def _fresh() -> tuple[str, str, str]:
    """A new database's name on the test server, and the SQL that creates and drops it."""
    name = f"parley_test_{uuid.uuid4().hex[:12]}"
    return name, f'CREATE DATABASE "{name}"', f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'


def _url(name: str) -> str:
    return make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)


@asynccontextmanager
async def postgres_database() -> AsyncIterator[str]:
    """A database of its own on the test server, created empty and dropped afterwards; its URL."""
    name, create, drop = _fresh()
    await _postgres_admin(create)
    try:
        yield _url(name)
    finally:
        await _postgres_admin(drop)


@contextmanager
def postgres_database_sync() -> Iterator[str]:
    """:func:`postgres_database` for code that is not a coroutine."""
    name, create, drop = _fresh()
    asyncio.run(_postgres_admin(create))
    try:
        yield _url(name)
    finally:
        asyncio.run(_postgres_admin(drop))


@pytest.fixture(params=BACKENDS)
async def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """An empty database's URL (no tables): a SQLite file under tmp_path, or a fresh PG database."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'store' / 'parley.db'}"
        return
    async with postgres_database() as url:
        yield url


@pytest.fixture
async def pg_url() -> AsyncIterator[str]:
    """A fresh, empty PostgreSQL database's URL, dropped afterwards (the test is skipped without
    ``PARLEY_TEST_POSTGRES_URL``)."""
    if not POSTGRES_URL:
        pytest.skip("PARLEY_TEST_POSTGRES_URL is not set")
    async with postgres_database() as url:
        yield url


@pytest.fixture
def pg_database() -> Iterator[str]:
    """:func:`pg_url` for tests that are not coroutines (``parley run`` in subprocesses)."""
    if not POSTGRES_URL:
        pytest.skip("PARLEY_TEST_POSTGRES_URL is not set")
    with postgres_database_sync() as url:
        yield url


@pytest.fixture
async def store(db_url: str) -> AsyncIterator[Store]:
    opened = await Store.open(db_url)
    try:
        yield opened
    finally:
        await opened.close()


async def stored_attachments(store: Store, message_ids: Iterable[int]) -> dict[int, list[StoredAttachment]]:
    """The attachment rows of these messages, by message id, in the order they were stored.

    Parley itself only reads the attachments whose bytes it kept (``store.blobs.files``); tests
    look at every row.
    """
    query = (
        select(AttachmentRow)
        .where(AttachmentRow.message_id.in_(sorted(set(message_ids))))
        .order_by(AttachmentRow.id)
    )
    found: dict[int, list[StoredAttachment]] = {}
    async with store.engine.connect() as conn:
        for row in (await conn.execute(query)).all():
            found.setdefault(row.message_id, []).append(
                StoredAttachment(row.id, row.message_id, row.name, row.media_type, row.size, row.sha256)
            )
    return found
