import pytest

from bot.settings import SettingsError, load_settings


def test_defaults_follow_the_contract(tmp_path):
    s = load_settings({}, cwd=tmp_path)
    assert s.apicore_base_url == "https://api.apicore.ai"
    assert s.parley_model == "gemini-2.5-flash"
    assert s.database_url == "sqlite+aiosqlite:///parley.db"
    assert s.slack_api_url == "https://slack.com/api/"
    assert s.discord_api_url == "https://discord.com/api/v10"
    assert (s.parley_http_host, s.parley_http_port, s.parley_log_level) == ("127.0.0.1", 8080, "INFO")


def test_environment_wins_over_the_file(tmp_path):
    (tmp_path / "parley.toml").write_text(
        'PARLEY_MODEL = "from-file"\nparley_http_port = 9000\n'
        '[models."gemini-x"]\nformat = "anthropic"\nmax_tokens = 100\n'
    )
    s = load_settings({"PARLEY_MODEL": "from-env"}, cwd=tmp_path)
    assert s.parley_model == "from-env"
    assert s.parley_http_port == 9000
    assert s.wire_format("gemini-x") == "anthropic"
    assert s.options_for("gemini-x").max_tokens == 100


def test_routing_by_model_name(tmp_path):
    s = load_settings({}, cwd=tmp_path)
    assert s.wire_format("claude-sonnet-4") == "anthropic"
    assert s.wire_format("Claude-3") == "anthropic"
    assert s.wire_format("gemini-2.5-flash") == "openai"
    assert s.wire_format("gpt-4o") == "openai"


def test_parley_config_names_another_file(tmp_path):
    other = tmp_path / "conf" / "x.toml"
    other.parent.mkdir()
    other.write_text('parley_model = "m"\n')
    assert load_settings({"PARLEY_CONFIG": str(other)}, cwd=tmp_path).parley_model == "m"
    with pytest.raises(SettingsError, match="PARLEY_CONFIG: no such file"):
        load_settings({"PARLEY_CONFIG": "missing.toml"}, cwd=tmp_path)


def test_every_problem_is_one_line_naming_the_setting(tmp_path):
    with pytest.raises(SettingsError) as caught:
        load_settings(
            {"DATABASE_URL": "not a url", "PARLEY_HTTP_PORT": "eighty", "PARLEY_LOG_LEVEL": "LOUD"},
            cwd=tmp_path,
        )
    problems = caught.value.problems
    assert len(problems) == 3
    assert any(p.startswith("DATABASE_URL:") for p in problems)
    assert any(p.startswith("PARLEY_HTTP_PORT:") for p in problems)
    assert any(p.startswith("PARLEY_LOG_LEVEL:") for p in problems)
    assert all("\n" not in p for p in problems)


def test_sync_driver_urls_are_refused_with_the_fix(tmp_path):
    with pytest.raises(SettingsError, match=r"postgresql\+asyncpg"):
        load_settings({"DATABASE_URL": "postgresql://u@h/db"}, cwd=tmp_path)


def test_bad_toml_is_one_line(tmp_path):
    (tmp_path / "parley.toml").write_text("this is = = not toml")
    with pytest.raises(SettingsError, match=r"parley.toml: not valid TOML"):
        load_settings({}, cwd=tmp_path)


def test_secrets_are_not_echoed(tmp_path):
    s = load_settings({"APICORE_API_KEY": "sk-very-secret-value"}, cwd=tmp_path)
    assert "sk-very-secret-value" not in repr(s)
    assert s.require_api_key() == "sk-very-secret-value"
    with pytest.raises(SettingsError, match="APICORE_API_KEY"):
        load_settings({}, cwd=tmp_path).require_api_key()


def test_id_lists_come_comma_separated_or_as_toml_arrays(tmp_path):
    (tmp_path / "parley.toml").write_text('parley_deny_users = ["U1", "U2"]\n')
    s = load_settings({"PARLEY_ALLOW_CHANNELS": " C1, C2 ,,"}, cwd=tmp_path)
    assert s.parley_allow_channels == frozenset({"C1", "C2"})
    assert s.parley_deny_users == frozenset({"U1", "U2"})
    assert s.parley_allow_bots == frozenset()
