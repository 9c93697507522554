"""Settings: the environment first, then ``parley.toml`` (or the file ``PARLEY_CONFIG`` names).

Every problem becomes one line naming the setting, so a wrong value never ends in a traceback.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from bot.options import (
    BUILT_IN_TOOLS,
    HostSet,
    IdSet,
    McpServerOptions,
    ModelOptions,
    ShardIds,
    SlackOptions,
    ToolNames,
    WireFormat,
)


class SettingsError(Exception):
    """One line per problem, each naming the setting."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


class Settings(BaseSettings):
    model_config = SettingsConfigDict(case_sensitive=False, extra="ignore", env_ignore_empty=True)

    # The contract's settings.
    apicore_api_key: SecretStr | None = None
    apicore_base_url: str = "https://api.apicore.ai"
    parley_model: str = "gemini-2.5-flash"
    database_url: str = "sqlite+aiosqlite:///parley.db"
    slack_bot_token: SecretStr | None = None
    slack_app_token: SecretStr | None = None
    slack_signing_secret: SecretStr | None = None
    slack_api_url: str = "https://slack.com/api/"
    discord_bot_token: SecretStr | None = None
    discord_api_url: str = "https://discord.com/api/v10"
    parley_http_host: str = "127.0.0.1"
    parley_http_port: int = Field(default=8080, ge=0, le=65535)
    parley_log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"

    # Parley's own knobs, with defaults that suit a team.
    parley_system_prompt: str = (
        "You are Parley, a helpful assistant in a team chat. Answer clearly and concisely, "
        "using Markdown where it helps."
    )
    parley_max_tokens: int = Field(default=4096, gt=0)
    parley_history_chars: int = Field(default=60_000, gt=0)  # prompt history budget
    parley_history_turns: int = Field(default=200, gt=0)  # rows loaded per context, at most
    parley_show_thinking: bool = False
    parley_log_json: bool = False
    parley_connect_timeout: float = Field(default=10.0, gt=0)
    parley_first_token_timeout: float = Field(default=120.0, gt=0)
    parley_idle_timeout: float = Field(default=60.0, gt=0)
    parley_max_retries: int = Field(default=3, ge=0, le=10)
    # Every reply in flight holds one gateway connection for its whole stream: past this many,
    # replies wait for one, and after PARLEY_CONNECT_TIMEOUT fail (a retry waits again).
    parley_gateway_max_connections: int = Field(default=1000, ge=1)
    # `parley run` on uvloop when it is installed (less CPU per streamed token); false keeps
    # asyncio's own loop, should uvloop misbehave somewhere.
    parley_uvloop: bool = True
    parley_retry_deadline: float = Field(default=30.0, gt=0)
    parley_shutdown_deadline: float = Field(default=20.0, ge=0)
    parley_require_mention: bool = False
    parley_models: dict[str, ModelOptions] = Field(default_factory=dict)

    # Who may talk to Parley, on every entry point (mentions, DMs, slash commands, buttons).
    # An allow list, when set, admits only its members; a deny list always wins.
    parley_allow_users: IdSet = frozenset()
    parley_deny_users: IdSet = frozenset()
    parley_allow_channels: IdSet = frozenset()
    parley_deny_channels: IdSet = frozenset()
    parley_allow_bots: IdSet = frozenset()  # bot user ids whose messages Parley answers
    parley_allow_dms: bool = True
    parley_discord_allow_guilds: IdSet = frozenset()
    parley_discord_deny_guilds: IdSet = frozenset()
    parley_discord_allow_roles: IdSet = frozenset()
    parley_discord_deny_roles: IdSet = frozenset()
    # Discord sharding over several processes (docs/deploy.md): each process runs its own shard
    # ids, every process the same count. Unset, one process runs all the shards Discord advises.
    parley_discord_shard_count: int | None = Field(default=None, gt=0)
    parley_discord_shard_ids: ShardIds = ()
    parley_admin_only_settings: bool = True  # /model and /system need admin rights
    parley_context_messages: int = Field(default=50, ge=0, le=1000)  # thread backfill, at most
    parley_slack_native_streaming: bool = False  # chat.startStream/appendStream where Slack allows
    # Slack's Agent messaging experience (docs/slack.md): in the Messages tab each new question
    # starts a thread of its own, titled after it; suggested prompts, a status while the model
    # works, "this channel" as context. False: a DM is one conversation answered at its top level.
    parley_slack_agent: bool = True
    parley_slack: SlackOptions = Field(default_factory=SlackOptions)  # [slack.agent] in parley.toml

    # Feedback: 👍 / 👎 on every finished answer (Slack and Discord); a 👎 asks what was wrong.
    parley_feedback: bool = True
    parley_feedback_ask_why: bool = True
    # Follow-ups typed in a burst: a person's messages in one conversation that arrive within this
    # many seconds of each other, before the model is called, are answered as one turn. 0: off.
    parley_merge_window: float = Field(default=1.0, ge=0, le=30)

    # Limits that keep one user, channel or bot from taking Parley over (docs/reliability.md).
    # 0 switches a limit off (the default: sizes depend on the team and the gateway's quota). A
    # turn over a limit gets a short "busy" reply instead of an answer.
    parley_max_input_chars: int = Field(default=20_000, gt=0)  # of one question; longer is trimmed
    parley_user_rate: int = Field(default=0, ge=0)  # turns per user per minute
    parley_max_concurrent_per_user: int = Field(default=0, ge=0)  # replies running or waiting
    parley_max_concurrent_per_channel: int = Field(default=0, ge=0)
    parley_max_concurrent_global: int = Field(default=0, ge=0)
    parley_bot_turns_per_minute: int = Field(default=3, ge=0)  # answers to allowed bots, per thread
    # Crash recovery: no reply streams longer than this (it is cut off), so a reply still marked
    # streaming after it is surely orphaned, whichever instance wrote it.
    parley_reply_timeout: float = Field(default=600.0, gt=0)
    parley_recover_interval: float = Field(default=60.0, gt=0)  # how often orphans are looked for
    # A name that survives restarts (e.g. a StatefulSet pod name): replies a crashed predecessor
    # of the same name left streaming are then closed at once, even on a shared database.
    parley_instance_id: str | None = None
    # Several instances on one PostgreSQL: an instance whose heartbeat (every fifth of this) has
    # been silent this long is taken for dead; its replies are closed as interrupted and the
    # turns it left waiting are answered by another instance, in their place in the queue.
    parley_instance_timeout: float = Field(default=15.0, ge=1.0, le=600.0)

    # Files in chat (bot/files; each is described in docs/files.md).
    parley_file_max_bytes: int = Field(default=32 * 1024 * 1024, gt=0)  # one file, downloaded
    parley_file_request_max_bytes: int = Field(default=64 * 1024 * 1024, gt=0)  # all files of a message
    parley_files_max_count: int = Field(default=10, gt=0)  # files read from one message
    parley_file_timeout: float = Field(default=60.0, gt=0)  # seconds per download
    parley_file_text_chars: int = Field(default=100_000, gt=0)  # file text (extracted or inline) per request
    parley_file_store_max_bytes: int = Field(default=32 * 1024 * 1024, ge=0)  # larger files aren't kept
    parley_file_retention_days: float = Field(default=30.0, gt=0)  # kept files are deleted after this
    parley_summarize_instruction: str = "Summarize this document."  # the question of a bare mention

    # Tools the model may call (bot/tools; README "Tools").
    parley_tools: ToolNames = BUILT_IN_TOOLS  # built-ins offered; "none" offers none
    parley_tool_steps: int = Field(default=6, ge=1, le=50)  # model requests per turn, the last without tools
    parley_tool_timeout: float = Field(default=30.0, gt=0)  # seconds one tool call may take
    parley_tool_result_chars: int = Field(default=20_000, ge=500)  # a result longer than this is cut
    # read_url (and a generated picture's URL): any public http(s) address, within these caps.
    parley_fetch_max_bytes: int = Field(default=5 * 1024 * 1024, gt=0)
    parley_fetch_timeout: float = Field(default=15.0, gt=0)
    # Hosts read_url may fetch although they are (or resolve to) private, loopback or link-local
    # addresses: `name` (any port) or `name:port`, matched exactly.
    parley_fetch_allow_hosts: HostSet = frozenset()
    parley_image_model: str = "gpt-image-1"  # generate_image
    parley_image_size: str = "1024x1024"  # when the model names none
    parley_image_timeout: float = Field(default=120.0, gt=0)  # pictures take longer than other tools
    # MCP servers from [mcp.NAME] tables in parley.toml; their tools are offered as NAME__tool.
    parley_mcp: dict[str, McpServerOptions] = Field(default_factory=dict)
    parley_mcp_connect_timeout: float = Field(default=30.0, gt=0)  # start (or restart) and list tools

    # Voice notes and audio files, transcribed by the gateway (bot/files/voice.py; docs/files.md).
    parley_transcribe_model: str = "whisper-1"  # POST /v1/audio/transcriptions
    parley_audio_max_bytes: int = Field(default=25 * 1024 * 1024, gt=0)  # the transcription API's cap
    parley_audio_max_seconds: float = Field(default=1800.0, gt=0)  # from the container's headers

    @field_validator("apicore_base_url", "slack_api_url", "discord_api_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"must be an http(s) URL, got {value!r}")
        return value

    @field_validator("parley_mcp")
    @classmethod
    def _mcp_names(cls, value: dict[str, McpServerOptions]) -> dict[str, McpServerOptions]:
        for name in value:
            # The name prefixes its tools' names, which the wire formats limit to these characters.
            if not re.fullmatch(r"[A-Za-z0-9-]{1,24}", name):
                raise ValueError(f"the server name in [mcp.{name}] must be 1-24 letters, digits or hyphens")
        return value

    @field_validator("parley_discord_shard_ids")
    @classmethod
    def _shard_ids(cls, value: tuple[int, ...], info: ValidationInfo) -> tuple[int, ...]:
        if not value:
            return value
        count = info.data.get("parley_discord_shard_count")
        if count is None:
            raise ValueError("needs PARLEY_DISCORD_SHARD_COUNT, the number of shards over all processes")
        if value[-1] >= count:
            raise ValueError(f"shard ids run from 0 to {count - 1} with PARLEY_DISCORD_SHARD_COUNT={count}")
        return value

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str) -> str:
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError

        try:
            url = make_url(value)
        except ArgumentError:
            raise ValueError(
                "is not a database URL (expected e.g. sqlite+aiosqlite:///parley.db "
                "or postgresql+asyncpg://user:pass@host/db)"
            ) from None
        async_driver = {
            "sqlite": "sqlite+aiosqlite",
            "postgresql": "postgresql+asyncpg",
            "postgres": "postgresql+asyncpg",
        }.get(url.drivername)
        if async_driver:
            raise ValueError(f"needs an async driver: use {async_driver}://…")
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # load_settings merges the environment over the file itself, so one explicit mapping
        # (tests pass their own) is the only source.
        return (init_settings,)

    # Helpers the core uses.
    def options_for(self, model: str) -> ModelOptions:
        return self.parley_models.get(model) or ModelOptions()

    def wire_format(self, model: str) -> WireFormat:
        explicit = self.options_for(model).format
        if explicit:
            return explicit
        return "anthropic" if model.lower().startswith("claude") else "openai"

    def require_api_key(self) -> str:
        if self.apicore_api_key is None or not self.apicore_api_key.get_secret_value():
            raise SettingsError(["APICORE_API_KEY is not set: get a key from your APICore gateway"])
        return self.apicore_api_key.get_secret_value()

    def discord_enabled(self) -> bool:
        return self.discord_bot_token is not None

    def slack_enabled(self) -> bool:
        return self.slack_bot_token is not None


def _config_path(environ: Mapping[str, str], cwd: Path) -> Path | None:
    named = environ.get("PARLEY_CONFIG")
    if named:
        return Path(named) if Path(named).is_absolute() else cwd / named
    default = cwd / "parley.toml"
    return default if default.exists() else None


# Tables in parley.toml that are not environment settings: [models."NAME"], [mcp.NAME], [slack.agent].
_TABLES = {"models": "parley_models", "mcp": "parley_mcp", "slack": "parley_slack"}


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SettingsError([f"PARLEY_CONFIG: no such file {path}"]) from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise SettingsError([f"{path.name}: not valid TOML ({exc})"]) from None
    values: dict[str, Any] = {}
    for key, value in raw.items():
        name = key.lower()
        values[_TABLES.get(name, name)] = value
    return values


def _describe(error: Mapping[str, Any]) -> str:
    loc = [str(part) for part in error.get("loc", ())]
    name = loc[0].upper() if loc else "settings"
    if name == "PARLEY_MODELS" and len(loc) > 1:
        name = f'[models."{loc[1]}"]' + (f".{loc[2]}" if len(loc) > 2 else "")
    if name == "PARLEY_MCP" and len(loc) > 1:
        name = f"[mcp.{loc[1]}]" + (f".{loc[2]}" if len(loc) > 2 else "")
    if name == "PARLEY_SLACK" and len(loc) > 1:
        name = f"[slack.{loc[1]}]" + "".join(f".{part}" for part in loc[2:3])
    message = str(error.get("msg", "invalid value"))
    message = message.removeprefix("Value error, ")
    if error.get("type") not in ("value_error", "missing", "extra_forbidden") and "input" in error:
        given = error["input"]
        # An [mcp.NAME] table's env and headers hold credentials: never echo them.
        secret = name.endswith(("TOKEN", "KEY", "SECRET")) or name.startswith("[mcp.")
        if not (isinstance(given, dict) or secret):
            message += f" (got {str(given)[:60]!r})"
    return f"{name}: {message}"


def load_settings(environ: Mapping[str, str] | None = None, cwd: Path | None = None) -> Settings:
    """Read and validate the settings; raise :class:`SettingsError` listing every problem."""
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    path = _config_path(env, cwd or Path.cwd())
    if path is not None:
        values = _read_toml(path)
    fields = set(Settings.model_fields) - set(_TABLES.values())  # these tables live in the file
    for name, value in env.items():
        key = name.lower()
        if key in fields and value != "":
            values[key] = value
    try:
        return Settings(**values)
    except ValidationError as exc:
        raise SettingsError([_describe(e) for e in exc.errors()]) from None
