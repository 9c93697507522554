"""File bytes in the store: exact round trips, deduplication, retention, and on SQLite the bytes
written and read in place (never bound as one value), all in one transaction."""

from __future__ import annotations

import hashlib
import random
import sqlite3
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import event, func, select

from bot.store import Store, StoreError
from bot.store import blobs as store_blobs
from bot.store.models import Blob, BlobBytes, utcnow

# Fixtures shared by the store tests (pytest finds them as module attributes).

SLICE = store_blobs._BLOB_SLICE


def _file(size: int, seed: int = 1) -> tuple[str, bytes]:
    data = random.Random(seed).randbytes(size)
    return hashlib.sha256(data).hexdigest(), data


async def _rows(store: Store) -> tuple[int, int]:
    async with store.engine.connect() as conn:
        blobs = (await conn.execute(select(func.count()).select_from(Blob))).scalar_one()
        blob_bytes = (await conn.execute(select(func.count()).select_from(BlobBytes))).scalar_one()
    return blobs, blob_bytes


def _largest_bound_value(store: Store) -> list[int]:
    """A one-item list holding the size of the largest bytes value bound to any statement since."""
    largest = [0]

    def watch(_conn: Any, _cursor: Any, _statement: str, parameters: Any, *_rest: Any) -> None:
        rows = parameters if isinstance(parameters, list) else [parameters]
        for row in rows:
            values = row.values() if isinstance(row, dict) else row or ()
            for value in values:
                if isinstance(value, bytes | bytearray | memoryview):
                    largest[0] = max(largest[0], len(value))

    event.listen(store.engine.sync_engine, "before_cursor_execute", watch)
    return largest


@pytest.mark.parametrize("size", [0, 1, SLICE, 3 * SLICE + 12345])
async def test_bytes_round_trip_exactly(store: Store, size: int) -> None:
    digest, data = _file(size)
    await store.blobs.put(digest, data, extracted_text="text")
    blob = await store.blobs.get(digest)
    assert blob is not None
    assert (blob.sha256, blob.size, blob.extracted_text) == (digest, size, "text")
    assert blob.data == data
    assert await store.blobs.text(digest) == "text"


async def test_same_bytes_are_stored_once(store: Store) -> None:
    digest, data = _file(2 * SLICE + 1)
    other_digest, other = _file(100, seed=2)
    await store.blobs.put(digest, data)
    await store.blobs.put(digest, data, extracted_text="added")
    await store.blobs.put(other_digest, other)
    assert await _rows(store) == (2, 2)
    blob = await store.blobs.get(digest)
    assert blob is not None and (blob.data, blob.extracted_text) == (data, "added")
    assert (await store.blobs.get(other_digest)).data == other  # type: ignore[union-attr]


async def test_pruning_removes_the_bytes_with_the_blob(store: Store) -> None:
    digest, data = _file(SLICE + 7)
    await store.blobs.put(digest, data)
    assert await store.blobs.prune(utcnow() - timedelta(days=1)) == 0
    assert await _rows(store) == (1, 1)
    assert await store.blobs.prune(utcnow() + timedelta(seconds=1)) == 1
    assert await _rows(store) == (0, 0)
    assert await store.blobs.get(digest) is None
    await store.blobs.put(digest, data)  # stored again after the retention period
    assert (await store.blobs.get(digest)).data == data  # type: ignore[union-attr]


async def test_sqlite_never_binds_the_file_as_one_value(tmp_path: Any) -> None:
    store = await Store.open(f"sqlite+aiosqlite:///{tmp_path / 'p.db'}")
    try:
        digest, data = _file(3 * SLICE + 5)
        largest = _largest_bound_value(store)
        await store.blobs.put(digest, data)
        blob = await store.blobs.get(digest)
        assert blob is not None and blob.data == data
        assert largest[0] < 1024  # digests and numbers only: the bytes go through blobopen
    finally:
        await store.close()


class _FailingBlob:
    """A sqlite3.Blob whose second slice write fails, as a full disk would make it."""

    def __init__(self, blob: sqlite3.Blob) -> None:
        self._blob = blob
        self.writes = 0

    def __enter__(self) -> _FailingBlob:
        self._blob.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._blob.__exit__(*exc)

    def write(self, data: Any) -> None:
        self.writes += 1
        if self.writes == 2:
            raise sqlite3.OperationalError("database or disk is full")
        self._blob.write(data)


async def test_a_failed_slice_write_leaves_no_blob(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    store = await Store.open(f"sqlite+aiosqlite:///{tmp_path / 'p.db'}")
    try:
        digest, data = _file(3 * SLICE)
        opened: list[_FailingBlob] = []
        real_open = store_blobs._open_blob

        def failing_open(raw: sqlite3.Connection, rowid: int, *, readonly: bool) -> Any:
            opened.append(_FailingBlob(real_open(raw, rowid, readonly=readonly)))
            return opened[-1]

        monkeypatch.setattr(store_blobs, "_open_blob", failing_open)
        with pytest.raises(StoreError, match=r"^database: database or disk is full$"):
            await store.blobs.put(digest, data, extracted_text="text")
        assert [b.writes for b in opened] == [2]  # the first slice was written, then it failed
        monkeypatch.undo()

        assert await _rows(store) == (0, 0)
        assert not await store.blobs.exists(digest)
        assert await store.blobs.get(digest) is None
        assert await store.blobs.text(digest) is None

        await store.blobs.put(digest, data)  # nothing half-written is in the way
        assert (await store.blobs.get(digest)).data == data  # type: ignore[union-attr]
    finally:
        await store.close()
