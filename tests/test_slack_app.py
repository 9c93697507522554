"""The Slack adapter's life: which mode, start-up failures in one clear line, health, manifest, doctor."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import aiohttp
import pytest

import adapters.slack as slack
from adapters.slack import doctor
from adapters.slack.app import SlackAdapter
from adapters.slack.events import MESSAGE_EVENTS
from adapters.slack.manifest import BOT_EVENTS, SCOPES, document
from bot.context import AdapterContext
from bot.errors import UserFacingError
from bot.options import SlackAgentOptions
from bot.runtime import Runtime
from bot.settings import Settings, SettingsError, load_settings
from tests.cli_harness import parley
from tests.fakes.gateway import FakeGateway
from tests.fakes.slack_api import DEFAULT_SCOPES, FakeSlack
from tests.slack_harness import RecordingFiles, bench_env, slack_bench

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
async def fs() -> AsyncIterator[FakeSlack]:
    async with FakeSlack() as fake:
        yield fake


def fake_context(env: dict[str, str], tmp_path: Path) -> Any:
    return SimpleNamespace(settings=load_settings(env, cwd=tmp_path))


def context(runtime: Runtime, settings: Settings) -> AdapterContext:
    """The adapter context ``parley run`` would give an adapter started with ``settings``."""
    return AdapterContext(
        settings, runtime.service, runtime.store, runtime.gateway.list_models, runtime.http_routes
    )


def test_create_picks_the_mode_from_the_credentials(tmp_path: Path) -> None:
    assert slack.create(fake_context({}, tmp_path)) is None
    with pytest.raises(SettingsError) as err:
        slack.create(fake_context({"SLACK_BOT_TOKEN": "xoxb-1"}, tmp_path))
    assert err.value.problems[0].startswith("SLACK_SIGNING_SECRET: needed for Slack's HTTP mode")


async def test_modes_and_routes(tmp_path: Path) -> None:
    async with FakeGateway() as gw, FakeSlack() as fs:
        settings = load_settings(bench_env(fs, gw, tmp_path, "http", None), cwd=tmp_path)
        runtime = await Runtime.create(settings, files=RecordingFiles())
        try:
            adapter = slack.create(runtime.adapter_context())
            assert isinstance(adapter, SlackAdapter) and adapter.mode == "http"
            assert runtime.http_routes == [("POST", "/slack/events", adapter.handle_http)]
            assert not adapter.connected
            await adapter.start()
            assert adapter.connected  # HTTP mode: auth.test passed
            await adapter.stop()
            assert not adapter.connected
        finally:
            await runtime.aclose()


async def test_bad_tokens_fail_start_with_one_clear_line(tmp_path: Path) -> None:
    async with FakeGateway() as gw, FakeSlack() as fs:
        fs.auth_error = "invalid_auth"
        settings = load_settings(bench_env(fs, gw, tmp_path, "socket", None), cwd=tmp_path)
        runtime = await Runtime.create(settings, files=RecordingFiles())
        try:
            adapter = SlackAdapter(runtime.adapter_context())
            with pytest.raises(
                UserFacingError, match=r"^SLACK_BOT_TOKEN: Slack rejected the token \(invalid_auth\)$"
            ):
                await adapter.start()
            fs.auth_error = None
            env = bench_env(fs, gw, tmp_path, "socket", {"SLACK_APP_TOKEN": "xapp-wrong"})
            adapter = SlackAdapter(context(runtime, load_settings(env, cwd=tmp_path)))
            with pytest.raises(
                UserFacingError, match=r"^SLACK_APP_TOKEN: Slack refused Socket Mode \(invalid_auth\)$"
            ):
                await adapter.start()
            assert not adapter.connected
            unreachable = load_settings({**env, "SLACK_API_URL": "http://127.0.0.1:9/api/"}, cwd=tmp_path)
            with pytest.raises(UserFacingError, match=r"^cannot reach Slack at http://127.0.0.1:9/api/ "):
                await SlackAdapter(context(runtime, unreachable)).start()
        finally:
            await runtime.aclose()


def test_parley_run_with_a_revoked_token_says_so_in_one_line(tmp_path: Path) -> None:
    with FakeGateway.in_thread() as gw, FakeSlack.in_thread() as fs:
        fs.auth_error = "token_revoked"
        env = bench_env(fs, gw, tmp_path, "socket", {"PARLEY_HTTP_PORT": "0"})
        result = parley("run", cwd=tmp_path, env=env, timeout=60)
    # `run` logs its progress to stderr; the failure is its one last line, with no traceback.
    assert result.returncode == 1
    assert "Traceback" not in result.stderr and "As you gave" not in result.stderr
    assert (
        result.stderr.splitlines()[-1] == "parley: SLACK_BOT_TOKEN: Slack rejected the token (token_revoked)"
    )


async def test_socket_mode_health_follows_the_connection(tmp_path: Path) -> None:
    async with slack_bench(tmp_path, "socket") as bench:
        adapter = bench.adapter
        assert adapter.connected
        await bench.fs.drop_sockets(abrupt=True)
        await bench.fs.wait_for(lambda: not adapter.connected, within=10)
        await bench.fs.wait_for(lambda: adapter.connected, within=10)  # it reconnects by itself


async def test_http_mode_health_endpoint(tmp_path: Path) -> None:
    async with slack_bench(tmp_path, "http") as bench:
        assert bench.server is not None
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"http://127.0.0.1:{bench.server.port}/healthz") as response,
        ):
            assert response.status == 200
            assert (await response.json())["slack"] == "connected"


def test_manifest_is_what_the_adapter_uses() -> None:
    # docs/ holds the default: the agent view with [slack.agent]'s defaults.
    docs = (ROOT / "docs" / "slack-manifest.yaml").read_text(encoding="utf-8")
    assert docs == document(agent=SlackAgentOptions())
    assert set(SCOPES) <= DEFAULT_SCOPES  # the fake grants what real Slack would for this manifest
    assert BOT_EVENTS == ("app_mention", *MESSAGE_EVENTS, "app_home_opened", "app_context_changed")
    http = document(http_base="https://parley.example.com/")
    assert http.count("request_url: https://parley.example.com/slack/events") == 2
    assert "socket_mode_enabled: false" in http


async def test_doctor_names_missing_scopes(fs: FakeSlack, tmp_path: Path) -> None:
    env = {"SLACK_BOT_TOKEN": fs.bot_token, "SLACK_APP_TOKEN": fs.app_token, "SLACK_API_URL": fs.api_url}
    settings = load_settings(env, cwd=tmp_path)
    assert all(f.ok for f in await doctor.check(settings))
    fs.scopes.discard("files:read")
    bad = [f for f in await doctor.check(settings) if not f.ok]
    assert len(bad) == 1 and "files:read" in bad[0].what
    fs.auth_error = "token_revoked"
    (refused,) = await doctor.check(settings)
    assert not refused.ok and "token_revoked" in refused.what
