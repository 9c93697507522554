"""Operating several instances: ``parley doctor`` warns when several ``parley run`` share one
SQLite file, and a second ``parley run`` on one says so in its log."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from bot.doctor import check_instances
from bot.settings import Settings, load_settings
from bot.store import Store
from tests.fakes.gateway import FakeGateway
from tests.stack import open_runtime, parley_env


def _settings(url: str) -> Settings:
    return Settings(database_url=url)  # type: ignore[call-arg]


async def test_doctor_warns_when_several_instances_share_a_sqlite_file(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'parley.db'}"
    store = await Store.open(url)
    try:
        assert await check_instances(_settings(url)) == []  # nothing runs on it
        await store.instances.beat("p1", name="pod-1", host="h1", pid=11, platforms=["slack"])
        await store.instances.beat("console", name=None, host="h1", pid=12, platforms=[])
        (one,) = await check_instances(_settings(url))
        assert one.ok and "pod-1 (h1, pid 11)" in one.what
        await store.instances.beat("p2", name=None, host="h2", pid=21, platforms=["discord"])
        (two,) = await check_instances(_settings(url))
    finally:
        await store.close()
    assert two.warns and not two.failure  # WARN, not FAIL
    assert two.what.startswith("instances: 2 `parley run` processes share this SQLite file")
    assert "p2 (h2, pid 21)" in two.what and "PostgreSQL" in two.fix


async def test_doctor_lists_the_instances_on_a_shared_database(store: Store) -> None:
    url = store.engine.url.render_as_string(hide_password=False)
    for process in ("a", "b"):
        await store.instances.beat(process, name=None, host="h", pid=1, platforms=["slack"])
    (found,) = await check_instances(_settings(url))
    if store.shared:
        assert found.ok and found.what.startswith("instances: 2 instances of `parley run`")
    else:
        assert found.warns


async def test_a_second_run_on_one_sqlite_file_says_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with FakeGateway() as gw:
        env = parley_env(gw, tmp_path, {})
        first = await open_runtime(env, tmp_path)
        try:
            first.service.membership.platforms.add("slack")  # as its adapter does
            await first.service.membership._beat()
            with caplog.at_level(logging.WARNING, logger="parley.instances"):
                second = await open_runtime(env, tmp_path)
                try:
                    second.service.membership.platforms.add("discord")
                    # What its heartbeat does once its adapter runs (a console never does).
                    assert not await second.service.membership.check_alone()
                finally:
                    await second.aclose()
        finally:
            await first.aclose()
    assert "another Parley" in caplog.text and "is using this SQLite database" in caplog.text
    settings = load_settings(env, cwd=tmp_path)
    assert await check_instances(settings) == []  # both stopped cleanly: their rows are gone
