"""``parley doctor`` as a user runs it: a subprocess against the fake gateway, Slack and Discord
(each in a thread of its own).

Each failure is one broken thing in an otherwise healthy setup; the doctor must name exactly
that one, with its fix, exit 1, and never print a secret.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from bot import doctor
from bot.doctor import Finding, render
from bot.settings import load_settings
from bot.store import upgrade
from tests.cli_harness import parley
from tests.fakes.discord import AppFlag, FakeDiscord
from tests.fakes.gateway import FakeGateway
from tests.fakes.slack_api import FakeSlack


@dataclass
class Setup:
    gw: FakeGateway
    fs: FakeSlack
    fd: FakeDiscord
    tmp: Path
    env: dict[str, str]

    def migrate(self) -> None:
        upgrade(self.env["DATABASE_URL"])

    def doctor(self, **overrides: str) -> Report:
        env = {**self.env, **overrides}
        result = parley("doctor", cwd=self.tmp, env=env, timeout=60)
        for name, value in env.items():
            if name.endswith(("_KEY", "_TOKEN", "_SECRET")):
                assert value not in result.stdout + result.stderr, f"{name} was printed"
        assert "Traceback" not in result.stderr, result.stderr
        return Report(result.returncode, result.stdout, result.stderr)


@dataclass
class Report:
    code: int
    stdout: str
    stderr: str

    @property
    def failures(self) -> list[tuple[str, str]]:
        """(problem, fix) for every FAIL line, the fix being the line under it."""
        lines = self.stdout.splitlines()
        found = []
        for i, line in enumerate(lines):
            if line.startswith("FAIL "):
                fix = lines[i + 1].strip() if i + 1 < len(lines) else ""
                assert fix.startswith("fix: "), f"no fix under {line!r}"
                found.append((line.removeprefix("FAIL "), fix.removeprefix("fix: ")))
        return found

    def ok(self, text: str) -> bool:
        return any(line.startswith("ok ") and text in line for line in self.stdout.splitlines())


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[Setup]:
    with FakeGateway.in_thread() as gw, FakeSlack.in_thread() as fs, FakeDiscord.in_thread() as fd:
        env = {
            "APICORE_API_KEY": gw.api_key or "",
            "APICORE_BASE_URL": gw.url,
            "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'data' / 'parley.db'}",
            "SLACK_BOT_TOKEN": fs.bot_token,
            "SLACK_APP_TOKEN": fs.app_token,
            "SLACK_API_URL": fs.api_url,
            "DISCORD_BOT_TOKEN": fd.token,
            "DISCORD_API_URL": fd.api_url,
        }
        yield Setup(gw, fs, fd, tmp_path, env)


def test_after_db_upgrade_a_healthy_setup_passes_every_check(setup: Setup) -> None:
    # The fix the doctor gives for an empty database (see CASES) is what makes it pass.
    upgraded = parley("db", "upgrade", cwd=setup.tmp, env=setup.env)
    assert upgraded.returncode == 0, upgraded.stderr
    report = setup.doctor()
    assert report.code == 0, report.stdout + report.stderr
    assert report.failures == []
    for text in (
        "settings: valid",
        "database: reachable and migrated",
        "gateway: key accepted",
        "gateway: the default model gemini-2.5-flash is offered",
        "slack: bot token accepted in workspace Fake Workspace (T0FAKE0001) as U0BOT00001",
        "slack: the bot token has all 9 scopes Parley needs",
        "slack: app token opens Socket Mode",
        f"discord: token accepted for Parley ({setup.fd.application_id})",
        f"discord: application Parley ({setup.fd.application_id})",
        "discord: Message Content intent enabled",
        f"discord: gateway {setup.fd.gateway_url} (1 shard(s) recommended)",
        "discord: invite Parley with https://discord.com/oauth2/authorize?"
        f"client_id={setup.fd.application_id}&scope=bot+applications.commands&permissions=309237713920 "
        "(permissions 309237713920: View Channels, Send Messages, Send Messages in Threads, "
        "Create Public Threads, Read Message History)",
    ):
        assert report.ok(text), f"{text!r} missing from\n{report.stdout}"


@dataclass(frozen=True)
class Case:
    env: dict[str, str]
    mutate: Callable[[Setup], None]
    problem: str
    fix: str
    migrate: bool = True


def _nothing(setup: Setup) -> None:
    return None


def _drop_scope(setup: Setup) -> None:
    setup.fs.scopes.discard("files:read")


def _revoke(setup: Setup) -> None:
    setup.fs.auth_error = "token_revoked"


def _disable_intent(setup: Setup) -> None:
    setup.fd.app_flags &= ~AppFlag.GATEWAY_MESSAGE_CONTENT


CASES = {
    "bad gateway key": Case(
        {"APICORE_API_KEY": "wrong-key-0000"},
        _nothing,
        "gateway: http://127.0.0.1:{port} refused APICORE_API_KEY (HTTP 401)",
        "set APICORE_API_KEY to a valid key",
    ),
    "model not offered": Case(
        {"PARLEY_MODEL": "gemini-9-ultra"},
        _nothing,
        "gateway: the default model gemini-9-ultra is not offered",
        "set PARLEY_MODEL to one of the models `parley models` lists (gemini-2.5-flash, gemini-2.5-pro, ",
    ),
    "database not migrated": Case(
        {},
        _nothing,
        "database: reachable but empty (no migrations applied)",
        "run `parley db upgrade`",
        migrate=False,
    ),
    "slack scope missing": Case(
        {},
        _drop_scope,
        "slack: the bot token lacks files:read (downloading url_private of files shared with Parley)",
        "add them under OAuth & Permissions → Bot Token Scopes",
    ),
    "slack token refused": Case(
        {},
        _revoke,
        "slack: auth.test refused SLACK_BOT_TOKEN (token_revoked)",
        "copy the Bot User OAuth Token",
    ),
    "discord token refused": Case(
        {"DISCORD_BOT_TOKEN": "wrong-discord-token"},
        _nothing,
        "discord: DISCORD_BOT_TOKEN was rejected (401)",
        "copy the token again from the Bot page",
    ),
    "discord intent disabled": Case(
        {},
        _disable_intent,
        "discord: the Message Content intent is not enabled",
        "→ Bot → Privileged Gateway Intents → enable Message Content Intent",
    ),
    "slack tokens swapped": Case(
        {"SLACK_BOT_TOKEN": "xapp-1-A0APP00001-fake-app-token"},
        _nothing,
        "settings: SLACK_BOT_TOKEN is not a bot token (xoxb-…) (it looks like the app-level token",
        "use the Bot User OAuth Token",
    ),
}


@pytest.mark.parametrize("case", CASES.values(), ids=list(CASES))
def test_each_problem_is_named_with_its_fix(setup: Setup, case: Case) -> None:
    if case.migrate:
        setup.migrate()
    case.mutate(setup)
    report = setup.doctor(**case.env)
    assert report.code == 1
    problems = [p for p, _ in report.failures]
    if case.env.get("SLACK_BOT_TOKEN"):
        # Slack refuses a token of the wrong kind too; the settings line says which it is.
        problems = [p for p in problems if not p.startswith("slack: auth.test")]
    (problem,) = problems
    expected = case.problem.format(port=setup.gw.url.rsplit(":", 1)[1])
    assert problem.startswith(expected), problem
    fix = dict(report.failures)[problem]
    assert case.fix in fix, fix
    assert "1 problem(s)" in report.stderr or "2 problem(s)" in report.stderr


def test_invalid_settings_are_findings_too(setup: Setup) -> None:
    report = setup.doctor(PARLEY_HTTP_PORT="eighty", APICORE_BASE_URL="api.apicore.ai")
    assert report.code == 2
    problems = sorted(p for p, _ in report.failures)
    assert problems[0].startswith("settings: APICORE_BASE_URL: must be an http(s) URL")
    assert problems[1].startswith("settings: PARLEY_HTTP_PORT: Input should be a valid integer")


def test_no_platform_is_a_problem_for_run(setup: Setup) -> None:
    setup.migrate()
    env = {k: v for k, v in setup.env.items() if not k.startswith(("SLACK_", "DISCORD_"))}
    result = parley("doctor", cwd=setup.tmp, env=env)
    assert result.returncode == 1
    assert "FAIL settings: no Slack or Discord credentials" in result.stdout


def test_render_masks_secrets_whatever_a_check_says() -> None:
    text = render(
        [Finding(False, "server said: bad token xoxb-secret-1234", "retry with xoxb-secret-1234")],
        ["xoxb-secret-1234"],
    )
    assert "xoxb-secret-1234" not in text
    assert text == "FAIL server said: bad token ***\n     fix: retry with ***"


async def test_a_platform_check_that_crashes_or_hangs_is_a_finding(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = load_settings({}, cwd=tmp_path)

    async def crashes(_: object) -> list[Finding]:
        raise KeyError("flags")

    async def hangs(_: object) -> list[Finding]:
        await asyncio.sleep(60)
        return []

    (crashed,) = await doctor._guarded(crashes, settings)
    assert not crashed.ok and crashed.what == f"{__name__}: the check itself failed (KeyError: 'flags')"
    monkeypatch.setattr(doctor, "CHECK_TIMEOUT", 0.05)
    (hung,) = await doctor._guarded(hangs, settings)
    assert not hung.ok and "no answer within" in hung.what
