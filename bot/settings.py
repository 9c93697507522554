"""Settings: the environment first, then ``parley.toml`` (or the file ``PARLEY_CONFIG`` names).

Every problem becomes one line naming the setting, so a wrong value never ends in a traceback.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

WireFormat = Literal["openai", "anthropic"]


def _names(value: object) -> object:
    """Lists come as comma-separated strings from the environment, or as TOML arrays."""
    if isinstance(value, str):
        return frozenset(part.strip() for part in value.split(",") if part.strip())
    return value


# A set of platform ids (users, channels, guilds, roles, bots); empty means "no restriction".
IdSet = Annotated[frozenset[str], BeforeValidator(_names)]


def _numbers(value: object) -> object:
    """ "0,1,2" or "0-3" (or both: "0-3,8") from the environment; a TOML array as it is."""
    if isinstance(value, int):
        return (value,)
    if not isinstance(value, str):
        return value
    numbers: list[int] = []
    for part in (p.strip() for p in value.split(",")):
        if not part:
            continue
        low, dash, high = part.partition("-")
        if not (low.strip().isdigit() and (not dash or high.strip().isdigit())):
            raise ValueError(f"expected numbers or ranges like 0,1 or 0-3, got {part!r}")
        numbers.extend(range(int(low), int(high) + 1) if dash else [int(low)])
    return tuple(sorted(set(numbers)))


# Discord shard ids this process runs.
ShardIds = Annotated[tuple[int, ...], BeforeValidator(_numbers)]


class SettingsError(Exception):
    """One line per problem, each naming the setting."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


class ModelOptions(BaseModel):
    """Per-model overrides from ``[models."NAME"]`` tables in parley.toml."""

    model_config = ConfigDict(extra="forbid")

    format: WireFormat | None = None  # explicit wire format; by default claude* → anthropic
    max_tokens: int | None = Field(default=None, gt=0)
    temperature: float | None = Field(default=None, ge=0, le=2)
    thinking_budget: int | None = Field(default=None, ge=1024)  # Anthropic budget_tokens
    extra: dict[str, Any] = Field(default_factory=dict)  # gateway-specific body fields
    documents: bool = True  # whether the model accepts PDF documents natively
    max_pdf_pages: int = Field(default=100, gt=0)
    max_pdf_bytes: int = Field(default=32 * 1024 * 1024, gt=0)


# The built-in tools (bot/tools); PARLEY_TOOLS picks among them.
BUILT_IN_TOOLS = ("read_url", "generate_image")


def _tool_names(value: object) -> object:
    """PARLEY_TOOLS: a comma list (or TOML array) of built-in tool names, or "none"."""
    if isinstance(value, str):
        value = [part.strip() for part in value.split(",") if part.strip()]
    if not isinstance(value, list | tuple):
        return value
    names = [str(name).lower() for name in value]
    if names == ["none"]:
        return ()
    unknown = [name for name in names if name not in BUILT_IN_TOOLS]
    if unknown:
        known = ", ".join(BUILT_IN_TOOLS)
        raise ValueError(f"unknown tool {unknown[0]!r} (the built-ins are {known}, or none)")
    return tuple(dict.fromkeys(names))  # in the order given, once each


ToolNames = Annotated[tuple[str, ...], BeforeValidator(_tool_names)]


def _host_names(value: object) -> object:
    """PARLEY_FETCH_ALLOW_HOSTS: ``name`` or ``name:port`` entries, compared exactly (lower case)."""
    names = _names(value)
    if isinstance(names, list | tuple | set | frozenset):
        return frozenset(str(name).strip().lower().rstrip(".") for name in names if str(name).strip())
    return names


HostSet = Annotated[frozenset[str], BeforeValidator(_host_names)]


class McpServerOptions(BaseModel):
    """One ``[mcp.NAME]`` table in parley.toml: a stdio server Parley starts (``command``, ``args``,
    ``env``) or a streamable-HTTP server (``url``, ``headers``); ``tools`` optionally names which
    of the server's own tools are offered. ``env`` and ``headers`` usually hold credentials."""

    model_config = ConfigDict(extra="forbid")

    command: str | None = None
    args: list[str] = Field(default_factory=list)
    env: dict[str, SecretStr] = Field(default_factory=dict)
    url: str | None = None
    headers: dict[str, SecretStr] = Field(default_factory=dict)
    tools: list[str] | None = None

    @model_validator(mode="after")
    def _one_transport(self) -> McpServerOptions:
        if (self.command is None) == (self.url is None):
            raise ValueError("needs either command (a stdio server) or url (a streamable-HTTP server)")
        if self.url is not None:
            if not self.url.startswith(("http://", "https://")):
                raise ValueError(f"url must be an http(s) URL, got {self.url[:60]!r}")
            if self.args or self.env:
                raise ValueError("args and env are for stdio servers (command); an HTTP server takes headers")
        elif self.headers:
            raise ValueError("headers are for HTTP servers (url); a stdio server takes env")
        return self

    @property
    def transport(self) -> Literal["stdio", "http"]:
        return "stdio" if self.command is not None else "http"

    def secrets(self) -> list[str]:
        """The secret values of the table: env and header values (and a header's token on its
        own), the password and query of the URL; longest first, so masking one never leaves the
        rest of a longer one visible."""
        from urllib.parse import urlsplit

        found: list[str] = []
        for secret in (*self.env.values(), *self.headers.values()):
            value = secret.get_secret_value()
            found.append(value)
            scheme, _, token = value.partition(" ")
            if token and scheme.isalpha():  # "Bearer abc…": the token may appear on its own
                found.append(token)
        if self.url:
            parts = urlsplit(self.url)
            found.extend(part for part in (parts.password, parts.query) if part)
        return sorted({v for v in found if len(v) >= 4}, key=len, reverse=True)


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


# Tables in parley.toml that are not environment settings: [models."NAME"], [mcp.NAME].
_TABLES = {"models": "parley_models", "mcp": "parley_mcp"}


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
