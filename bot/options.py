"""The values behind settings that are more than one word: the list-valued settings' parsers
(comma lists from the environment, arrays from parley.toml) and the tables of ``parley.toml``
(``[models."NAME"]``, ``[mcp.NAME]``, ``[slack.agent]``). ``bot/settings.py`` reads them."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, SecretStr, model_validator

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


class SuggestedPrompt(BaseModel):
    """One of the suggested prompts in Slack's Messages tab: a short ``title`` on the button, the
    ``message`` it sends."""

    model_config = ConfigDict(extra="forbid")

    title: str = Field(min_length=1, max_length=75)
    message: str = Field(min_length=1, max_length=2000)


class SlackAgentOptions(BaseModel):
    """``[slack.agent]`` in parley.toml: what Slack's Agent messaging experience shows.

    ``description`` and ``prompts`` also go into the app manifest (``agent_view``); the loading
    messages rotate under a thread's status while the model works (Slack takes 1-10 of at most
    50 characters).
    """

    model_config = ConfigDict(extra="forbid")

    description: str = Field(
        default=(
            "Parley answers questions with the team's LLM. Ask it anything, share a file, "
            "or ask about the channel you are looking at."
        ),
        min_length=1,
        max_length=1000,
    )
    prompts_title: str = Field(default="Try asking", min_length=1, max_length=75)
    prompts: list[SuggestedPrompt] = Field(
        default_factory=lambda: [
            SuggestedPrompt(
                title="Summarise this channel", message="Summarise the recent messages in this channel."
            ),
            SuggestedPrompt(title="Explain a file", message="I'll attach a file: explain what it says."),
            SuggestedPrompt(
                title="Draft a message", message="Help me draft a short, friendly message to my team."
            ),
        ],
        min_length=1,
        max_length=4,
    )
    status: str = Field(default="is thinking…", min_length=1, max_length=50)
    loading_messages: list[Annotated[str, Field(min_length=1, max_length=50)]] = Field(
        default_factory=lambda: ["Reading your message…", "Thinking it over…", "Finding the words…"],
        min_length=1,
        max_length=10,
    )


class SlackOptions(BaseModel):
    """``[slack.*]`` tables in parley.toml."""

    model_config = ConfigDict(extra="forbid")

    agent: SlackAgentOptions = Field(default_factory=SlackAgentOptions)
