"""``parley doctor``: checks each thing Parley needs and says how to fix what is wrong.

The core checks the settings, the database and the gateway; each adapter adds its platform's
checks through the ``parley.doctor`` entry point group (a function ``(settings) -> findings``).
Findings go to stdout, one per line, a ``fix:`` line under each problem. A problem is a FAIL when
Parley's main job needs the thing (answering where it is asked), and a WARN when only an optional
feature does; the exit status is 1 when anything FAILs, 0 with warnings alone. Every configured
secret is masked in the output, whatever a check or a server put into a message.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass

from bot.settings import Settings

log = logging.getLogger("parley.doctor")

# A check that hangs (a server that accepts and never answers) must not hang the doctor.
CHECK_TIMEOUT = 45.0


@dataclass(frozen=True, slots=True)
class Finding:
    """One line of the report. ``ok`` False is a problem: a FAIL, or a WARN when ``optional``
    (it costs only an optional feature, which ``what`` names). ``fix`` says how to put it right."""

    ok: bool
    what: str
    fix: str = ""
    optional: bool = False

    @classmethod
    def warning(cls, what: str, fix: str) -> Finding:
        return cls(False, what, fix, optional=True)

    @property
    def failure(self) -> bool:
        return not self.ok and not self.optional

    @property
    def warns(self) -> bool:
        return not self.ok and self.optional

    @property
    def label(self) -> str:
        return "ok" if self.ok else "WARN" if self.optional else "FAIL"


Check = Callable[[Settings], Awaitable[list[Finding]]]

_PLATFORMS = (
    "set DISCORD_BOT_TOKEN, or SLACK_BOT_TOKEN with SLACK_APP_TOKEN (Socket Mode) or "
    "SLACK_SIGNING_SECRET (HTTP mode)"
)


async def check_settings(settings: Settings) -> list[Finding]:
    """What validation cannot see: tokens in the wrong variable, nothing for ``run`` to start."""
    found = [Finding(True, "settings: valid")]
    if not (settings.slack_enabled() or settings.discord_enabled()):
        found.append(
            Finding(
                False,
                "settings: no Slack or Discord credentials, so `parley run` has nothing to start",
                _PLATFORMS,
            )
        )
    # Slack's two tokens are easily swapped; their prefixes tell them apart.
    bot_token = settings.slack_bot_token.get_secret_value() if settings.slack_bot_token else None
    app_token = settings.slack_app_token.get_secret_value() if settings.slack_app_token else None
    if bot_token is not None and not bot_token.startswith("xoxb-"):
        swapped = bot_token.startswith("xapp-")
        hint = " (it looks like the app-level token, which belongs in SLACK_APP_TOKEN)" if swapped else ""
        found.append(
            Finding(
                False,
                f"settings: SLACK_BOT_TOKEN is not a bot token (xoxb-…){hint}",
                "use the Bot User OAuth Token from your Slack app's OAuth & Permissions page",
            )
        )
    if app_token is not None and not app_token.startswith("xapp-"):
        found.append(
            Finding(
                False,
                "settings: SLACK_APP_TOKEN is not an app-level token (xapp-…)",
                "create one under Basic Information → App-Level Tokens with the connections:write scope",
            )
        )
    return found


async def check_database(settings: Settings) -> list[Finding]:
    from bot.store import Store, StoreError, db

    try:
        store = await Store.open(settings.database_url, migrate=False)
    except StoreError as exc:
        return [Finding(False, f"database: {exc}", "check DATABASE_URL and that the database server is up")]
    try:
        async with store.engine.connect() as conn:
            revision = await db.current_revision_async(conn)
    except Exception as exc:
        problem = f"database: cannot read the schema version ({db.describe(exc)})"
        return [Finding(False, problem, "check DATABASE_URL")]
    finally:
        await store.close()
    head = db.head_revision()
    if revision == head:
        return [Finding(True, f"database: reachable and migrated (revision {head})")]
    if revision is not None and not _known_revision(revision):
        return [
            Finding(
                False,
                f"database: its schema (revision {revision}) is from a newer Parley than this one",
                "upgrade Parley to the version that migrated it, or point DATABASE_URL at another database",
            )
        ]
    # Not a failure: `parley run` and `parley console` apply pending migrations when they start.
    state = "empty (no migrations applied)" if revision is None else f"at revision {revision}, not {head}"
    return [
        Finding.warning(
            f"database: reachable but {state}; `parley run` applies the migrations when it starts",
            "none needed; `parley db upgrade` applies them now if you would rather not wait",
        )
    ]


def _known_revision(revision: str) -> bool:
    from alembic.script import ScriptDirectory
    from alembic.util.exc import CommandError

    from bot.store import db

    try:
        return ScriptDirectory.from_config(db.alembic_config()).get_revision(revision) is not None
    except CommandError:
        return False


async def check_gateway(settings: Settings) -> list[Finding]:
    from bot.providers import errors
    from bot.providers.gateway import list_models

    base = settings.apicore_base_url
    if settings.apicore_api_key is None:
        return [
            Finding(False, "gateway: APICORE_API_KEY is not set", "set APICORE_API_KEY to your gateway key")
        ]
    try:
        names = await list_models(settings)
    except errors.AuthError as exc:
        return [
            Finding(
                False,
                f"gateway: {base} refused APICORE_API_KEY{_status(exc)}",
                "set APICORE_API_KEY to a valid key from your APICore account (this one is wrong, "
                "revoked or expired)",
            )
        ]
    except errors.QuotaError as exc:
        return [
            Finding(
                False,
                f"gateway: the quota is used up{_status(exc)}",
                "top up the gateway account (`parley usage` shows the quota)",
            )
        ]
    except (errors.ConnectError, errors.GatewayTimeout) as exc:
        return [
            Finding(
                False,
                f"gateway: cannot reach {base} ({exc.detail or exc.user_message})",
                "check APICORE_BASE_URL and the network (HTTPS_PROXY is used when set)",
            )
        ]
    except errors.ProviderError as exc:
        return [
            Finding(
                False,
                f"gateway: GET {base}/v1/models failed: {exc.user_message.rstrip('.')}{_status(exc)}",
                "check APICORE_BASE_URL: it should be the gateway root, without /v1",
            )
        ]
    found = [Finding(True, f"gateway: key accepted by {base}, {len(names)} models offered")]
    if settings.parley_model in names:
        found.append(Finding(True, f"gateway: the default model {settings.parley_model} is offered"))
    else:
        listed = ", ".join(names[:8]) + (", …" if len(names) > 8 else "")
        found.append(
            Finding(
                False,
                f"gateway: the default model {settings.parley_model} is not offered",
                f"set PARLEY_MODEL to one of the models `parley models` lists ({listed or 'none'})",
            )
        )
    return found


async def check_mcp(settings: Settings) -> list[Finding]:
    """One finding per ``[mcp.NAME]`` server: reached, and how many tools it offers, or why not.

    A server that cannot be reached is a warning, not a failure: the bot answers without its
    tools.
    """
    if not settings.parley_mcp:
        return []
    from bot.tools import probe

    _, servers = await probe(settings)
    found = []
    for server in servers:
        where = f"MCP server {server.name} ({server.transport})"
        if server.up:
            found.append(Finding(True, f"tools: {where}: reached, {server.tools} tools offered"))
        else:
            fix = (
                f"check [mcp.{server.name}] in parley.toml: "
                + ("the command and its args" if server.transport == "stdio" else "the url and headers")
                + "; the bot answers without this server's tools meanwhile"
            )
            found.append(Finding.warning(f"tools: {where}: cannot be reached ({server.error})", fix))
    return found


async def check_instances(settings: Settings) -> list[Finding]:
    """Which ``parley run`` processes use this database now (their heartbeats). Several on one
    SQLite file is a warning: SQLite suits one instance (each would pace, queue and recover as
    if it were alone); several instances need PostgreSQL."""
    from bot.store import Store, StoreError

    try:
        store = await Store.open(settings.database_url, migrate=False)
    except StoreError:
        return []  # check_database has said why
    try:
        rows = await store.instances.alive(settings.parley_instance_timeout)
    except StoreError:
        return []  # not migrated yet: nothing runs on it
    finally:
        await store.close()
    running = [r for r in rows if r.platforms]
    if not running:
        return []
    names = ", ".join(f"{r.name or r.process} ({r.host}, pid {r.pid})" for r in running)
    if store.shared:
        noun = "instance" if len(running) == 1 else "instances"
        return [Finding(True, f"instances: {len(running)} {noun} of `parley run` on this database: {names}")]
    if len(running) == 1:
        return [Finding(True, f"instances: `parley run` is running on this SQLite file: {names}")]
    return [
        Finding.warning(
            f"instances: {len(running)} `parley run` processes share this SQLite file ({names}); "
            "each paces, queues and recovers replies as if it were alone",
            "run one `parley run` per SQLite file, or use PostgreSQL for several instances "
            "(DATABASE_URL=postgresql+asyncpg://…; docs/deploy.md, Scaling out)",
        )
    ]


def _status(exc: Exception) -> str:
    status = getattr(exc, "status", None)
    return f" (HTTP {status})" if status else ""


# The core's own checks, in the order they print. A new one is an async ``(settings) -> findings``
# added here; a platform's checks come through the ``parley.doctor`` entry points instead.
CORE_CHECKS: tuple[Check, ...] = (check_settings, check_database, check_instances, check_gateway, check_mcp)


async def _guarded(check: Check, settings: Settings) -> list[Finding]:
    """A platform check is a plug-in: its crash or hang is a finding, not the end of the doctor."""
    name = getattr(check, "__module__", "?")
    try:
        return await asyncio.wait_for(check(settings), CHECK_TIMEOUT)
    except TimeoutError:
        return [Finding(False, f"{name}: no answer within {CHECK_TIMEOUT:.0f} s", "check the network")]
    except Exception as exc:
        log.debug("doctor check %s crashed", name, exc_info=True)
        return [
            Finding(
                False,
                f"{name}: the check itself failed ({type(exc).__name__}: {exc})",
                "run with PARLEY_LOG_LEVEL=DEBUG for details, and report it",
            )
        ]


def render(findings: Iterable[Finding], secrets: Sequence[str] = ()) -> str:
    from bot.logs import RedactSecrets

    redact = RedactSecrets(secrets).redact
    lines = []
    for finding in findings:
        lines.append(f"{finding.label:<4} {redact(finding.what)}")
        if not finding.ok and finding.fix:
            lines.append(f"     fix: {redact(finding.fix)}")
    return "\n".join(lines)


def summary(findings: Sequence[Finding]) -> tuple[str, int]:
    """The last line ("2 warnings, no failures: …") and the exit status: 1 if anything FAILs."""
    failures = sum(f.failure for f in findings)
    warnings = sum(f.warns for f in findings)
    counts = f"{_count(warnings, 'warning')}, {_count(failures, 'failure')}"
    if failures:
        return f"parley doctor: {counts}: Parley cannot do its job until the failures are fixed", 1
    if warnings:
        return f"parley doctor: {counts}: Parley works; each warning names what it costs", 0
    return f"parley doctor: {counts}: everything Parley uses is in place", 0


def _count(n: int, noun: str) -> str:
    return f"no {noun}s" if n == 0 else f"1 {noun}" if n == 1 else f"{n} {noun}s"


def _secrets(settings: Settings) -> list[str]:
    from sqlalchemy.engine import make_url

    from bot.logs import secrets_of

    found = secrets_of(settings)
    password = make_url(settings.database_url).password
    if password:
        found.append(str(password))
    return found


async def run_checks(settings: Settings, extra: tuple[Check, ...] = ()) -> int:
    from bot.plugins import doctor_checks

    findings: list[Finding] = []
    for check in (*CORE_CHECKS, *doctor_checks(), *extra):
        findings.extend(await _guarded(check, settings))
    print(render(findings, _secrets(settings)), flush=True)
    line, code = summary(findings)
    print(line, file=sys.stderr)
    return code


def report_invalid_settings(problems: Sequence[str]) -> int:
    """Settings that do not validate stop the doctor before any check: list them as findings."""
    print(
        render(
            Finding(False, f"settings: {problem}", "correct it in the environment or in parley.toml")
            for problem in problems
        )
    )
    print("parley doctor: the settings are invalid; fix them and run it again", file=sys.stderr)
    return 2
