from bot.access import admitted
from bot.settings import load_settings


def settings(tmp_path, **env):
    return load_settings({k.upper(): v for k, v in env.items()}, cwd=tmp_path)


def test_open_by_default_except_other_bots(tmp_path):
    s = settings(tmp_path)
    assert admitted(s, user_id="U1", channel_id="C1")
    assert admitted(s, user_id="U1", channel_id="D1", is_dm=True)
    assert not admitted(s, user_id="B1", channel_id="C1", is_bot=True)
    assert admitted(settings(tmp_path, parley_allow_bots="B1"), user_id="B1", channel_id="C1", is_bot=True)


def test_deny_wins_over_allow(tmp_path):
    s = settings(tmp_path, parley_allow_users="U1,U2", parley_deny_users="U2")
    assert admitted(s, user_id="U1", channel_id="C1")
    assert not admitted(s, user_id="U2", channel_id="C1")
    assert not admitted(s, user_id="U3", channel_id="C1")


def test_channel_guild_and_role_lists(tmp_path):
    s = settings(
        tmp_path,
        parley_allow_channels="C1",
        parley_discord_deny_guilds="G9",
        parley_discord_allow_roles="R1",
        parley_discord_deny_roles="R2",
    )
    assert admitted(s, user_id="U", channel_id="C1", guild_id="G1", role_ids=["R1"])
    assert not admitted(s, user_id="U", channel_id="C2", guild_id="G1", role_ids=["R1"])
    assert not admitted(s, user_id="U", channel_id="C1", guild_id="G9", role_ids=["R1"])
    assert not admitted(s, user_id="U", channel_id="C1", guild_id="G1", role_ids=["R1", "R2"])
    assert not admitted(s, user_id="U", channel_id="C1", guild_id="G1", role_ids=[])


def test_dm_switch(tmp_path):
    assert not admitted(settings(tmp_path, parley_allow_dms="false"), user_id="U", channel_id="D", is_dm=True)


def test_discord_role_lists_do_not_shut_out_slack(tmp_path):
    s = settings(tmp_path, parley_discord_allow_roles="R1")
    assert admitted(s, user_id="U", channel_id="C1")
    assert not admitted(s, user_id="U", channel_id="C1", guild_id="G1")
