"""``parley doctor`` as a user runs it: a subprocess against the fake gateway, Slack and Discord
(each in a thread of its own).

Each failure is one broken thing in an otherwise healthy setup; the doctor must name exactly
that one, with its fix, exit 1, and never print a secret. What only an optional feature needs is
a warning that names the feature and its fix, and the exit status stays 0.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from adapters.discord.doctor import NEEDED, can_answer, missing_permissions
from adapters.slack.doctor import SCOPE_NEEDS, scope_findings
from adapters.slack.manifest import SCOPES
from bot import doctor
from bot.doctor import Finding, render, summary
from bot.settings import load_settings
from bot.store import upgrade
from tests.cli_harness import parley
from tests.fakes.discord import AppFlag, FakeDiscord
from tests.fakes.discord.models import DEFAULT_BOT_PERMISSIONS, DEFAULT_EVERYONE_PERMISSIONS, Perm
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
        return self._problems("FAIL")

    @property
    def warnings(self) -> list[tuple[str, str]]:
        return self._problems("WARN")

    @property
    def summary(self) -> str:
        return self.stderr.strip().splitlines()[-1]

    def _problems(self, label: str) -> list[tuple[str, str]]:
        lines = self.stdout.splitlines()
        found = []
        for i, line in enumerate(lines):
            if line.startswith(label + " "):
                fix = lines[i + 1].strip() if i + 1 < len(lines) else ""
                assert fix.startswith("fix: "), f"no fix under {line!r}"
                found.append((line.removeprefix(label + " "), fix.removeprefix("fix: ")))
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
        fd.create_guild("Parley Test")
        yield Setup(gw, fs, fd, tmp_path, env)


def test_after_db_upgrade_a_healthy_setup_passes_every_check(setup: Setup) -> None:
    # The fix the doctor gives for an empty database (see CASES) is what makes it pass.
    upgraded = parley("db", "upgrade", cwd=setup.tmp, env=setup.env)
    assert upgraded.returncode == 0, upgraded.stderr
    report = setup.doctor()
    assert report.code == 0, report.stdout + report.stderr
    assert report.failures == [] and report.warnings == []
    assert report.summary == "parley doctor: no warnings, no failures: everything Parley uses is in place"
    for text in (
        "settings: valid",
        "database: reachable and migrated",
        "gateway: key accepted",
        "gateway: the default model gemini-2.5-flash is offered",
        "slack: bot token accepted in workspace Fake Workspace (T0FAKE0001) as U0BOT00001",
        "slack: the bot token has all 13 scopes Parley uses",
        "slack: app token opens Socket Mode",
        f"discord: token accepted for Parley ({setup.fd.application_id})",
        f"discord: application Parley ({setup.fd.application_id})",
        "discord: Message Content intent enabled",
        f"discord: gateway {setup.fd.gateway_url} (1 shard(s) recommended)",
        "discord: invite Parley with https://discord.com/oauth2/authorize?"
        f"client_id={setup.fd.application_id}&scope=bot+applications.commands&permissions=309237713920 "
        "(permissions 309237713920: View Channels, Send Messages, Send Messages in Threads, "
        "Create Public Threads, Read Message History)",
        "discord: Parley's role has every permission it uses in 1 of 1 server(s)",
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


def _drop_required_scope(setup: Setup) -> None:
    setup.fs.scopes.discard("chat:write")


def _server_without_sending(setup: Setup) -> None:
    cannot_send = ~(Perm.SEND_MESSAGES | Perm.SEND_MESSAGES_IN_THREADS)
    setup.fd.create_guild(
        "Read Only",
        bot_permissions=DEFAULT_BOT_PERMISSIONS & cannot_send,
        everyone_permissions=DEFAULT_EVERYONE_PERMISSIONS & cannot_send,
    )


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
    "slack required scope missing": Case(
        {},
        _drop_required_scope,
        "slack: the bot token lacks chat:write (posting and streaming replies), "
        "which Parley's main job needs",
        "add chat:write under OAuth & Permissions → Bot Token Scopes, then reinstall the app",
    ),
    "discord server where Parley cannot send": Case(
        {},
        _server_without_sending,
        "discord: in server Read Only (",
        "give Parley's role Send Messages, Send Messages in Threads under Server Settings → Roles, "
        "or invite it with https://discord.com/oauth2/authorize?",
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
    assert report.summary.endswith(
        (
            "1 failure: Parley cannot do its job until the failures are fixed",
            "2 failures: Parley cannot do its job until the failures are fixed",
        )
    )


@dataclass(frozen=True)
class Gap:
    """Something only an optional feature needs, taken away from a healthy setup."""

    mutate: Callable[[Setup], None]
    warning: str  # how the WARN line starts
    costs: str  # ... and what it says is lost
    fix: str
    migrate: bool = True


def _drop(*scopes: str) -> Callable[[Setup], None]:
    def drop(setup: Setup) -> None:
        setup.fs.scopes.difference_update(scopes)

    return drop


def _server_without_threads(setup: Setup) -> None:
    no_threads = ~Perm.CREATE_PUBLIC_THREADS
    setup.fd.create_guild(
        "No Threads",
        bot_permissions=DEFAULT_BOT_PERMISSIONS & no_threads,
        everyone_permissions=DEFAULT_EVERYONE_PERMISSIONS & no_threads,
    )


_ADD = "under OAuth & Permissions → Bot Token Scopes, then reinstall the app to the workspace"
GAPS = {
    "commands": Gap(
        _drop("commands"),
        "slack: the bot token lacks commands, needed for /parley and the message shortcuts",
        "(the rest of Parley works without it)",
        f"add commands {_ADD}",
    ),
    "files:read": Gap(
        _drop("files:read"),
        "slack: the bot token lacks files:read, needed for reading files shared with Parley",
        "(the rest of Parley works without it)",
        f"add files:read {_ADD}",
    ),
    "files:write": Gap(
        _drop("files:write"),
        "slack: the bot token lacks files:write, needed for pictures in replies",
        "(the rest of Parley works without it)",
        f"add files:write {_ADD}",
    ),
    "assistant:write": Gap(
        _drop("assistant:write"),
        "slack: the bot token lacks assistant:write, needed for Slack's agent experience: "
        "suggested prompts and thread titles in the Messages tab",
        "(the rest of Parley works without it)",
        "turn on Agents & AI Apps in the app settings (agent_view) and subscribe to the "
        f"app_home_opened and app_context_changed events; add assistant:write {_ADD}",
    ),
    "channels:read": Gap(
        _drop("channels:read"),
        'slack: the bot token lacks channels:read, needed for answering about "this channel"',
        "(the rest of Parley works without it)",
        f"add channels:read {_ADD}",
    ),
    "users:read": Gap(
        _drop("users:read"),
        "slack: the bot token lacks users:read, needed for people's names in the model's context",
        "admin rights for /parley settings",
        f"add users:read {_ADD}",
    ),
    "groups:history": Gap(
        _drop("groups:history"),
        "slack: the bot token lacks groups:history, needed for answering in private channels",
        "(the rest of Parley works without it)",
        f"add groups:history {_ADD}",
    ),
    "discord server without threads": Gap(
        _server_without_threads,
        "discord: in server No Threads (",
        "Parley's role lacks Create Public Threads: "
        "Parley answers in the channel instead of opening a thread",
        "give Parley's role Create Public Threads under Server Settings → Roles, or invite it with "
        "https://discord.com/oauth2/authorize?",
    ),
    "database not migrated": Gap(
        _nothing,
        "database: reachable but empty (no migrations applied)",
        "`parley run` applies the migrations when it starts",
        "`parley db upgrade` applies them now",
        migrate=False,
    ),
}


@pytest.mark.parametrize("gap", GAPS.values(), ids=list(GAPS))
def test_what_only_an_optional_feature_needs_is_a_warning_and_exit_0(setup: Setup, gap: Gap) -> None:
    if gap.migrate:
        setup.migrate()
    gap.mutate(setup)
    report = setup.doctor()
    assert report.code == 0, report.stdout + report.stderr
    assert report.failures == []
    ((warning, fix),) = report.warnings
    assert warning.startswith(gap.warning) and gap.costs in warning, warning
    assert gap.fix in fix, fix
    assert (
        report.summary
        == "parley doctor: 1 warning, no failures: Parley works; each warning names what it costs"
    )


def test_the_summary_counts_warnings_and_failures(setup: Setup) -> None:
    setup.migrate()
    setup.fs.scopes.difference_update({"commands", "mpim:history"})
    report = setup.doctor()
    assert report.code == 0
    assert [w.split(",")[0] for w, _ in report.warnings] == [
        "slack: the bot token lacks mpim:history",
        "slack: the bot token lacks commands",
    ]
    assert report.ok("slack: the bot token has the 4 scopes Parley's main job needs")
    assert report.summary.startswith("parley doctor: 2 warnings, no failures")

    setup.fs.scopes.difference_update({"im:history", "app_mentions:read"})
    report = setup.doctor()
    assert report.code == 1
    ((problem, fix),) = report.failures
    assert problem == (
        "slack: the bot token lacks app_mentions:read (hearing @mentions), im:history (answering DMs), "
        "which Parley's main job needs"
    )
    assert fix.startswith("add app_mentions:read, im:history under OAuth & Permissions")
    assert len(report.warnings) == 2
    assert report.summary == (
        "parley doctor: 2 warnings, 1 failure: Parley cannot do its job until the failures are fixed"
    )


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


def test_render_and_summary_of_each_kind_of_finding() -> None:
    findings = [
        Finding(True, "a: fine"),
        Finding.warning("b: no extras", "add them"),
        Finding(False, "c: broken", "mend it"),
    ]
    assert render(findings) == (
        "ok   a: fine\nWARN b: no extras\n     fix: add them\nFAIL c: broken\n     fix: mend it"
    )
    assert summary(findings) == (
        "parley doctor: 1 warning, 1 failure: Parley cannot do its job until the failures are fixed",
        1,
    )
    assert summary(findings[:2]) == (
        "parley doctor: 1 warning, no failures: Parley works; each warning names what it costs",
        0,
    )
    assert summary(findings[:1])[1] == 0


def test_every_scope_in_the_manifest_is_classified() -> None:
    # A scope added to the manifest without a line in the doctor's table would still be checked,
    # but only as optional: the table is where someone decides whether the main job needs it.
    assert set(SCOPES) <= set(SCOPE_NEEDS)
    assert {s for s, need in SCOPE_NEEDS.items() if need.required} == {
        "app_mentions:read",
        "chat:write",
        "channels:history",
        "im:history",
    }


def test_scope_findings_without_a_scope_list_check_nothing() -> None:
    assert scope_findings(frozenset()) == [
        Finding(True, "slack: Slack did not report the token's scopes; not checked")
    ]


@pytest.mark.parametrize(
    ("missing", "answers"),
    [
        ([], True),
        (["create_public_threads"], True),  # in the channel instead
        (["send_messages"], True),  # in the thread it opens
        (["send_messages_in_threads"], False),  # it opens a thread, then may not post in it
        (["send_messages_in_threads", "create_public_threads"], True),  # in the channel
        (["read_message_history"], True),
        (["view_channel"], False),
        (["send_messages", "create_public_threads"], False),
        (["send_messages", "send_messages_in_threads"], False),
    ],
)
def test_can_parley_still_answer_in_a_server(missing: list[str], answers: bool) -> None:
    assert can_answer(missing) is answers


def test_administrator_grants_every_permission() -> None:
    assert missing_permissions(Perm.ADMINISTRATOR) == []
    assert missing_permissions(0) == list(NEEDED)
    assert missing_permissions(DEFAULT_BOT_PERMISSIONS & ~Perm.READ_MESSAGE_HISTORY) == [
        "read_message_history"
    ]
