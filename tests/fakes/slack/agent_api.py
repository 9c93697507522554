"""Slack's agent surface: ``assistant.threads.setStatus``, ``setTitle`` and ``setSuggestedPrompts``.

Validated as Slack documents them (reference JSON of 2026-04; see the package docstring):

- ``setStatus``: ``channel_id``, ``thread_ts``, ``status`` required (``""`` clears), optional
  ``loading_messages`` (1–10 strings of 1–50 characters); scope ``chat:write`` or, for now, the
  older ``assistant:write``. The status also goes when the app posts in the thread, and two
  minutes after it was set if nothing came.
- ``setTitle``: ``channel_id``, ``thread_ts``, ``title`` required; scope ``assistant:write``.
- ``setSuggestedPrompts``: ``channel_id`` and ``prompts`` (1–4 of ``{title, message}``) required,
  optional ``title`` and ``thread_ts``; scope ``assistant:write``. An app without an agent or
  assistant view gets ``not_agent_app``. For an ``agent_view`` app Slack's migration guide says a
  ``thread_ts`` makes the call "silently fail": ``ok`` but nothing shown (``applied=False``).

Everything is recorded with its time: ``fs.status_log`` (calls), ``fs.status_changes`` (what the
thread showed, including clears by a reply or the timeout), ``fs.thread_status(ch, ts)``,
``fs.title_calls`` / ``fs.thread_titles``, ``fs.prompt_calls`` / ``fs.suggested_prompts``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .api_group import ApiGroup
from .model import Channel
from .records import ApiError, Handler, Params, invalid_arguments, json_field, require

MAX_PROMPTS = 4
MAX_LOADING_MESSAGES = 10
LOADING_MESSAGE_CHARS = 50


@dataclass(frozen=True)
class StatusCall:
    """One ``assistant.threads.setStatus`` call (an empty status clears the indicator)."""

    t: float
    channel: str
    thread_ts: str
    status: str
    loading_messages: Any


@dataclass(frozen=True)
class StatusChange:
    """What a thread's status line showed from ``t`` on. ``cause``: ``set`` (a call with a status),
    ``clear`` (a call with ``""``), ``reply`` (the app posted in the thread), ``timeout``."""

    t: float
    channel: str
    thread_ts: str
    status: str
    loading_messages: tuple[str, ...]
    cause: str


@dataclass(frozen=True)
class TitleCall:
    t: float
    channel: str
    thread_ts: str
    title: str


@dataclass(frozen=True)
class PromptsCall:
    """One ``setSuggestedPrompts`` call; ``applied`` False when Slack ignores it silently."""

    t: float
    channel: str
    thread_ts: str | None
    title: str | None
    prompts: tuple[tuple[str, str], ...]  # (title, message)
    applied: bool


def _loading_messages(params: Params) -> tuple[str, ...]:
    value = json_field(params, "loading_messages", "invalid_arguments")
    if value is None:
        return ()
    if not isinstance(value, list) or not 1 <= len(value) <= MAX_LOADING_MESSAGES:
        raise invalid_arguments(
            f"must provide between 1 and {MAX_LOADING_MESSAGES} items [json-pointer:/loading_messages]"
        )
    for i, item in enumerate(value):
        if not isinstance(item, str) or not 1 <= len(item) <= LOADING_MESSAGE_CHARS:
            raise invalid_arguments(
                f"must be between 1 and {LOADING_MESSAGE_CHARS} characters "
                f"[json-pointer:/loading_messages/{i}]"
            )
    return tuple(value)


def _prompts(params: Params) -> tuple[tuple[str, str], ...]:
    value = json_field(params, "prompts", "invalid_arguments")
    if value is None:
        require(params, "prompts")
    if not isinstance(value, list) or not 1 <= len(value) <= MAX_PROMPTS:
        raise invalid_arguments(f"must provide between 1 and {MAX_PROMPTS} items [json-pointer:/prompts]")
    out = []
    for i, prompt in enumerate(value):
        if not isinstance(prompt, dict) or not prompt.get("title") or not prompt.get("message"):
            raise invalid_arguments(f"each prompt needs a title and a message [json-pointer:/prompts/{i}]")
        out.append((str(prompt["title"]), str(prompt["message"])))
    return tuple(out)


class AgentApi(ApiGroup):
    def handlers(self) -> dict[str, Handler]:
        return {
            "assistant.threads.setStatus": self.set_status,
            "assistant.threads.setTitle": self.set_title,
            "assistant.threads.setSuggestedPrompts": self.set_suggested_prompts,
        }

    def _thread(self, params: Params) -> tuple[Channel, str]:
        channel = self.channel(params, "channel_id")
        thread_ts = require(params, "thread_ts")
        if (channel.id, thread_ts) not in self.fs.messages:
            raise ApiError("invalid_thread_ts")
        return channel, thread_ts

    async def set_status(self, params: Params) -> dict[str, Any]:
        fs = self.fs
        if "status" not in params:
            raise invalid_arguments("missing required field: status")
        channel, thread_ts = self._thread(params)
        status = str(params["status"])
        loading = _loading_messages(params)
        now = fs.now()
        fs.status_log.append(StatusCall(now, channel.id, thread_ts, status, list(loading) or None))
        cause = "set" if status else "clear"
        fs.change_status(StatusChange(now, channel.id, thread_ts, status, loading, cause))
        return {}

    async def set_title(self, params: Params) -> dict[str, Any]:
        fs = self.fs
        title = require(params, "title")
        channel, thread_ts = self._thread(params)
        fs.title_calls.append(TitleCall(fs.now(), channel.id, thread_ts, title))
        fs.thread_titles[(channel.id, thread_ts)] = title
        return {}

    async def set_suggested_prompts(self, params: Params) -> dict[str, Any]:
        fs = self.fs
        view = fs.agent.view
        if view is None:
            raise ApiError("not_agent_app")
        channel = self.channel(params, "channel_id")
        prompts = _prompts(params)
        thread_ts = str(params["thread_ts"]) if params.get("thread_ts") else None
        if view == "assistant_view" and thread_ts is None:
            raise invalid_arguments("missing required field: thread_ts")
        if thread_ts is not None and (channel.id, thread_ts) not in fs.messages:
            raise ApiError("invalid_thread_ts")
        applied = not (view == "agent_view" and thread_ts is not None)
        title = str(params["title"]) if params.get("title") else None
        call = PromptsCall(fs.now(), channel.id, thread_ts, title, prompts, applied)
        fs.prompt_calls.append(call)
        if applied:
            fs.suggested_prompts[channel.id] = call
        return {}
