"""The console's line protocol, end to end: a subprocess against the fake gateway."""

from __future__ import annotations

from tests.cli_harness import one_clear_line, parley
from tests.fakes.gateway import Reply


def test_two_turns_then_a_second_process_remembers_the_thread(gateway, env, tmp_path):
    first = parley("console", "--thread", "plans", cwd=tmp_path, env=env, stdin="hello there\nand more\n")
    assert first.returncode == 0, first.stderr
    assert first.stdout == "You said: hello there\n\nYou said: and more\n\n"
    assert len(gateway.stream_requests) == 2  # one gateway request per turn, no hidden calls

    second = parley("console", "--thread", "plans", cwd=tmp_path, env=env, stdin="what did I say?\n")
    assert second.returncode == 0, second.stderr
    assert second.stdout == "You said: what did I say?\n\n"
    messages = gateway.last.json["messages"]
    said = [
        (m["role"], m["content"] if isinstance(m["content"], str) else m["content"][-1]["text"])
        for m in messages
        if m["role"] != "system"
    ]
    assert said == [
        ("user", "hello there"),
        ("assistant", "You said: hello there"),
        ("user", "and more"),
        ("assistant", "You said: and more"),
        ("user", "what did I say?"),
    ]


def test_another_thread_does_not_see_it(gateway, env, tmp_path):
    parley("console", "--thread", "a", cwd=tmp_path, env=env, stdin="secret plan\n")
    result = parley("console", "--thread", "b", cwd=tmp_path, env=env, stdin="hi\n")
    assert result.returncode == 0
    assert "secret plan" not in str(gateway.last.json)


def test_claude_goes_to_the_messages_endpoint(gateway, env, tmp_path):
    result = parley("console", "--model", "claude-sonnet-4-5", cwd=tmp_path, env=env, stdin="hi\n")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "You said: hi\n\n"
    assert gateway.last.path == "/v1/messages"
    assert gateway.last.json["model"] == "claude-sonnet-4-5"
    assert gateway.last.json["stream"] is True


def test_a_cut_off_answer_says_so_on_stdout(gateway, env, tmp_path):
    gateway.script(Reply(text="The answer is", finish=None))
    result = parley("console", cwd=tmp_path, env=env, stdin="q\n")
    assert result.stdout == "The answer is\n\n_(The answer was cut off: the model's stream ended early.)_\n\n"
    assert result.returncode == 0


def test_unknown_model_is_a_clear_reply_and_exit_1(gateway, env, tmp_path):
    gateway.script(Reply.http_error(503, "no available channel for model nope", code="model_not_found"))
    result = parley("console", "--model", "nope", cwd=tmp_path, env=env, stdin="hi\n")
    assert result.returncode == 1
    assert result.stdout == "⚠️ That model is not available on the gateway.\n\n"
    assert "Traceback" not in result.stderr


def test_missing_key_is_one_line(env, tmp_path):
    del env["APICORE_API_KEY"]
    result = parley("console", cwd=tmp_path, env=env, stdin="hi\n")
    assert result.returncode != 0
    assert "APICORE_API_KEY" in one_clear_line(result.stderr)
    assert result.stdout == ""


def test_malformed_database_url_is_one_line(env, tmp_path):
    env["DATABASE_URL"] = "definitely not a url"
    result = parley("console", cwd=tmp_path, env=env, stdin="hi\n")
    assert result.returncode != 0
    assert one_clear_line(result.stderr).startswith("parley: DATABASE_URL:")


def test_unreachable_gateway_for_models_is_one_line(env, tmp_path):
    env["APICORE_BASE_URL"] = "http://127.0.0.1:9"  # discard port: nothing listens
    result = parley("models", cwd=tmp_path, env=env)
    assert result.returncode == 1
    line = one_clear_line(result.stderr)
    assert "could not reach" in line.lower() and "127.0.0.1:9" in line


def test_models_lists_the_gateway_models(gateway, env, tmp_path):
    result = parley("models", cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == list(gateway.models)


def test_run_without_platform_credentials_fails_clearly(env, tmp_path):
    result = parley("run", cwd=tmp_path, env=env)
    assert result.returncode != 0
    assert "DISCORD_BOT_TOKEN" in one_clear_line(result.stderr)


def test_db_upgrade_creates_the_database(env, tmp_path):
    result = parley("db", "upgrade", cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "data" / "parley.db").exists()
