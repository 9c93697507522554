"""What the tests of several instances share: a fresh PostgreSQL database per test, and a
check of a platform's sliding-window budget against calls as they were sent and answered."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterable

import pytest
from sqlalchemy.engine import make_url

from tests.store_fixtures import POSTGRES_URL, _postgres_admin

needs_postgres = pytest.mark.skipif(not POSTGRES_URL, reason="PARLEY_TEST_POSTGRES_URL is not set")


@pytest.fixture
async def pg_url() -> AsyncIterator[str]:
    """A fresh, empty PostgreSQL database's URL, dropped afterwards."""
    name = f"parley_test_{uuid.uuid4().hex[:12]}"
    await _postgres_admin(f'CREATE DATABASE "{name}"')
    try:
        yield make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        await _postgres_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def most_in_any_window(times: Iterable[float], window: float) -> int:
    """The most of ``times`` that fall in any half-open interval ``window`` seconds long."""
    ordered = sorted(times)
    most = start = 0
    for end, t in enumerate(ordered):
        while ordered[start] <= t - window:
            start += 1
        most = max(most, end - start + 1)
    return most
