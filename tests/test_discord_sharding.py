"""Discord sharding over processes: PARLEY_DISCORD_SHARD_COUNT / PARLEY_DISCORD_SHARD_IDS."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.settings import SettingsError, load_settings
from tests.discord_harness import discord_bench, guild_on_each_shard


async def test_a_process_runs_only_its_shards_and_answers_their_guilds(tmp_path: Path) -> None:
    env = {"PARLEY_DISCORD_SHARD_COUNT": "2", "PARLEY_DISCORD_SHARD_IDS": "1"}
    async with discord_bench(tmp_path, env=env, shards=2, start=False) as bench:
        fd = bench.fd
        guilds = guild_on_each_shard(fd)
        channels = {}
        for shard, guild in guilds.items():
            fd.add_member(guild, bench.alice)
            channels[shard] = fd.create_channel(guild, "general")
        await bench.start()
        assert sorted(bench.adapter.client.shards) == [1]
        assert {s.shard for s in fd.gateway.live_sessions()} == {(1, 2)}  # it identified as 1 of 2

        mine = await bench.mention(channels[1], bench.alice, "on my shard")
        theirs = await bench.mention(channels[0], bench.alice, "on the other shard")
        await bench.settle(answered=1)
        assert bench.reply_text(bench.thread_of(mine)) == "You said: on my shard"
        # Shard 0's guild is another process's: its events never reach this one.
        assert fd.messages[theirs.id].thread_id is None
        assert len(bench.gw.stream_requests) == 1


@pytest.mark.parametrize(
    ("env", "problem"),
    [
        ({"PARLEY_DISCORD_SHARD_IDS": "0"}, "PARLEY_DISCORD_SHARD_IDS: needs PARLEY_DISCORD_SHARD_COUNT"),
        (
            {"PARLEY_DISCORD_SHARD_COUNT": "4", "PARLEY_DISCORD_SHARD_IDS": "2-4"},
            "PARLEY_DISCORD_SHARD_IDS: shard ids run from 0 to 3",
        ),
        (
            {"PARLEY_DISCORD_SHARD_COUNT": "4", "PARLEY_DISCORD_SHARD_IDS": "one"},
            "PARLEY_DISCORD_SHARD_IDS: expected numbers or ranges",
        ),
    ],
)
def test_shard_settings_are_checked(tmp_path: Path, env: dict[str, str], problem: str) -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings(env, cwd=tmp_path)
    assert caught.value.problems[0].startswith(problem)


def test_shard_ids_take_lists_and_ranges(tmp_path: Path) -> None:
    env = {"PARLEY_DISCORD_SHARD_COUNT": "16", "PARLEY_DISCORD_SHARD_IDS": "8-11, 3,3"}
    assert load_settings(env, cwd=tmp_path).parley_discord_shard_ids == (3, 8, 9, 10, 11)
