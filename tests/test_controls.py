"""The controls behind the slash commands (bot/controls.py), on the real store.

Who may change settings and stop replies as tables; model and system prompt set, shown and
cleared per channel, thread and DM; the one model list with its TTL and lock.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from bot.controls import (
    NOTHING_TO_RESET,
    RESET_DONE,
    Controls,
    ModelList,
    Place,
    PlaceKind,
    StopAnswer,
    StopResult,
    Wording,
    known,
)
from bot.settings import load_settings
from bot.store import Store, Totals
from bot.store.rows import Overrides
from bot.types import Author, ConversationKey

CHANNEL = Place(ConversationKey("discord", "G1", "C1", ""), "#general", PlaceKind.CHANNEL)
THREAD = Place(ConversationKey("discord", "G1", "C1", "T1"), "this thread", PlaceKind.THREAD)
OTHER_THREAD = Place(ConversationKey("discord", "G1", "C1", "T2"), "this thread", PlaceKind.THREAD)
DM = Place(ConversationKey("discord", "", "D1", ""), "this DM", PlaceKind.DM)
WORDS = Wording("people with Manage Server", "someone with Manage Messages", "server")
MODELS = ["gemini-2.5-flash", "gemini-2.5-pro", "claude-sonnet-4-5"]
ADMIN = known(True)
NOBODY = known(False)


class Gateway:
    """``GET /v1/models``, counted; ``fail`` makes it raise, ``delay`` makes it slow."""

    def __init__(self, names: Sequence[str] = MODELS) -> None:
        self.names = list(names)
        self.calls = 0
        self.fail = False
        self.delay = 0.0

    async def list_models(self) -> list[str]:
        self.calls += 1
        await asyncio.sleep(self.delay)
        if self.fail:
            raise OSError("gateway unreachable")
        return self.names


@dataclass
class Replies:
    owners: dict[str, str] = field(default_factory=dict)
    stopped: list[str] = field(default_factory=list)

    def reply_owner(self, ref: str) -> str | None:
        return self.owners.get(ref)

    def stop(self, ref: str) -> bool:
        self.stopped.append(ref)
        return True


def make(store: Store, tmp_path: Path, gateway: Gateway | None = None, **env: str) -> Controls:
    settings = load_settings({k.upper(): v for k, v in env.items()}, cwd=tmp_path)
    models = ModelList((gateway or Gateway()).list_models)
    return Controls(settings, store, Replies(), models, WORDS)


async def test_model_is_shown_set_and_cleared_where_it_is_used(store: Store, tmp_path: Path) -> None:
    controls = make(store, tmp_path, parley_admin_only_settings="false")
    assert await controls.model(CHANNEL, "", is_admin=NOBODY) == (
        "Parley answers with **gemini-2.5-flash** in #general."
    )
    assert await controls.model(CHANNEL, "gemini-2.5-pro", is_admin=NOBODY) == (
        "Parley now answers with **gemini-2.5-pro** in #general."
    )
    assert await controls.model(THREAD, "claude-sonnet-4-5", is_admin=NOBODY) == (
        "Parley now answers with **claude-sonnet-4-5** in this thread."
    )
    # A thread's own choice wins; another thread of the channel follows the channel.
    assert "**claude-sonnet-4-5**" in await controls.model(THREAD, "", is_admin=NOBODY)
    assert "**gemini-2.5-pro**" in await controls.model(OTHER_THREAD, "", is_admin=NOBODY)
    assert await controls.model(CHANNEL, "Default", is_admin=NOBODY) == (
        "#general is back to the default model, **gemini-2.5-flash**."
    )
    assert "**gemini-2.5-flash**" in await controls.model(OTHER_THREAD, "", is_admin=NOBODY)
    # The store agrees: the next turn in the thread is asked with its own model.
    assert await store.conversations.overrides(THREAD.key) == Overrides("claude-sonnet-4-5", None)


async def test_an_unknown_model_is_refused_with_names_the_gateway_offers(
    store: Store, tmp_path: Path
) -> None:
    controls = make(store, tmp_path, parley_admin_only_settings="false")
    assert await controls.model(CHANNEL, "gemini", is_admin=NOBODY) == (
        "The gateway has no model `gemini`. Some it offers: `gemini-2.5-flash`, `gemini-2.5-pro`"
    )
    assert await controls.model(CHANNEL, "gpt-9", is_admin=NOBODY) == (
        "The gateway has no model `gpt-9`. Some it offers: "
        "`gemini-2.5-flash`, `gemini-2.5-pro`, `claude-sonnet-4-5`"
    )
    assert "**gemini-2.5-flash**" in await controls.model(CHANNEL, "", is_admin=NOBODY)  # unchanged


async def test_a_model_is_set_unchecked_when_the_list_cannot_be_read(store: Store, tmp_path: Path) -> None:
    gateway = Gateway()
    gateway.fail = True
    controls = make(store, tmp_path, gateway, parley_admin_only_settings="false")
    assert await controls.model(CHANNEL, "my-model", is_admin=NOBODY) == (
        "Parley now answers with **my-model** in #general "
        "(the gateway's model list could not be read to check the name)."
    )


# admin only, where, the asker is an admin → may change; the admin check is asked only if needed
SETTINGS_RULE = [
    (False, CHANNEL, False, True, False),
    (True, CHANNEL, False, False, True),
    (True, CHANNEL, True, True, True),
    (True, THREAD, False, False, True),
    (True, DM, False, True, False),  # a DM concerns nobody else
]


@pytest.mark.parametrize(("admin_only", "place", "is_admin", "may", "asked"), SETTINGS_RULE)
async def test_who_may_change_settings(
    store: Store, tmp_path: Path, admin_only: bool, place: Place, is_admin: bool, may: bool, asked: bool
) -> None:
    controls = make(store, tmp_path, parley_admin_only_settings=str(admin_only).lower())
    calls: list[bool] = []

    async def check() -> bool:
        calls.append(is_admin)
        return is_admin

    assert await controls.may_change_settings(place, check) is may
    assert bool(calls) is asked
    model = await controls.model(place, "gemini-2.5-pro", is_admin=known(is_admin))
    refusal = "Only people with Manage Server can change Parley's model."
    assert (model == refusal) is not may
    system = await controls.system(place, "Be brief.", is_admin=known(is_admin))
    assert (system == "Only people with Manage Server can change Parley's system prompt.") is not may


async def test_looking_needs_no_rights(store: Store, tmp_path: Path) -> None:
    controls = make(store, tmp_path)  # admin-only is the default
    assert "gemini-2.5-flash" in await controls.model(CHANNEL, "", is_admin=NOBODY)
    assert (
        await controls.system(CHANNEL, "", is_admin=NOBODY) == "#general uses Parley's default system prompt."
    )


async def test_system_prompt_is_set_shown_quoted_and_cleared(store: Store, tmp_path: Path) -> None:
    controls = make(store, tmp_path)
    assert await controls.system(DM, "Be brief.\nAnswer in French.", is_admin=NOBODY) == (
        "Parley will follow this system prompt in this DM."
    )
    assert await controls.system(DM, "", is_admin=NOBODY) == (
        "The system prompt in this DM:\n> Be brief.\n> Answer in French."
    )
    assert (
        await controls.system(DM, "none", is_admin=NOBODY) == "This DM is back to the default system prompt."
    )
    assert await controls.system(DM, "", is_admin=NOBODY) == "This DM uses Parley's default system prompt."


async def test_reset_forgets_a_conversation_that_exists(store: Store, tmp_path: Path) -> None:
    controls = make(store, tmp_path)
    assert await controls.reset(THREAD.key) == NOTHING_TO_RESET
    assert await store.conversations.find(THREAD.key) is None  # asking created nothing
    conversation = await store.conversations.find_or_create(THREAD.key)
    await store.history.add(conversation.id, Author("U1", "Alice"), "the secret is mango")
    assert await controls.reset(THREAD.key) == RESET_DONE
    assert await store.history.load(conversation.id, 10) == []


@dataclass
class UsageLedger:
    """The store's usage totals, by (user, workspace) filter."""

    by_filter: dict[tuple[str | None, str | None], Totals]
    asked: list[tuple[str | None, str | None, str | None]] = field(default_factory=list)

    async def totals(
        self, *, user_id: str | None = None, workspace: str | None = None, platform: str | None = None
    ) -> Totals:
        self.asked.append((user_id, workspace, platform))
        return self.by_filter[(user_id, workspace)]


@dataclass
class UsageStore:
    """A store with only its usage ledger."""

    usage: UsageLedger


async def test_usage_names_the_person_and_the_workspace(tmp_path: Path) -> None:
    usage = UsageLedger(
        {("U1", None): Totals(1, 1200, 34), (None, "G1"): Totals(5, 10_000, 2_000, thinking_tokens=1_500)}
    )
    settings = load_settings({}, cwd=tmp_path)
    controls = Controls(settings, UsageStore(usage), Replies(), ModelList(Gateway().list_models), WORDS)  # type: ignore[arg-type]
    assert await controls.usage("U1", CHANNEL) == (
        "**You:** 1 reply, 1,200 input and 34 output tokens\n"
        "**This server:** 5 replies, 10,000 input and 2,000 output tokens (1,500 of them thinking)"
    )
    assert await controls.usage("U1", DM) == "**You:** 1 reply, 1,200 input and 34 output tokens"
    assert usage.asked == [("U1", None, "discord"), (None, "G1", "discord"), ("U1", None, "discord")]


async def test_usage_counts_the_pictures_tools_made(tmp_path: Path) -> None:
    usage = UsageLedger({("U1", None): Totals(2, 100, 20, images=3)})
    settings = load_settings({}, cwd=tmp_path)
    controls = Controls(settings, UsageStore(usage), Replies(), ModelList(Gateway().list_models), WORDS)  # type: ignore[arg-type]
    assert await controls.usage("U1", DM) == "**You:** 2 replies, 100 input and 20 output tokens, 3 pictures"


# the reply's owner, who clicked, is an admin → what happens
STOP_RULE = [
    (None, "U1", False, StopAnswer(StopResult.GONE)),
    ("U1", "U1", False, StopAnswer(StopResult.STOPPED)),
    ("U1", "U2", True, StopAnswer(StopResult.STOPPED)),
    (
        "U1",
        "U2",
        False,
        StopAnswer(
            StopResult.REFUSED, "Only <@U1>, who asked, or someone with Manage Messages can stop this reply."
        ),
    ),
]


@pytest.mark.parametrize(("owner", "clicker", "is_admin", "expected"), STOP_RULE)
async def test_who_may_stop_a_reply(
    store: Store, tmp_path: Path, owner: str | None, clicker: str, is_admin: bool, expected: StopAnswer
) -> None:
    replies = Replies({"C1:m1": owner} if owner else {})
    settings = load_settings({}, cwd=tmp_path)
    controls = Controls(settings, store, replies, ModelList(Gateway().list_models), WORDS)
    asked: list[str] = []

    async def check() -> bool:
        asked.append(clicker)
        return is_admin

    assert await controls.stop("C1:m1", clicker, is_admin=check) == expected
    assert replies.stopped == (["C1:m1"] if expected.result is StopResult.STOPPED else [])
    assert asked == ([clicker] if owner not in (None, clicker) else [])  # no look-up for the asker


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def test_the_model_list_is_fetched_once_within_its_ttl() -> None:
    gateway, clock = Gateway(), Clock()
    models = ModelList(gateway.list_models, ttl=300, clock=clock)
    assert await models.get() == MODELS
    clock.now = 299
    assert await models.get() == MODELS
    assert gateway.calls == 1
    clock.now = 301
    gateway.names = ["new-model"]
    assert await models.get() == ["new-model"]
    assert gateway.calls == 2


async def test_concurrent_askers_share_one_request() -> None:
    gateway = Gateway()
    gateway.delay = 0.05
    models = ModelList(gateway.list_models)
    results = await asyncio.gather(*(models.get() for _ in range(10)))
    assert results == [MODELS] * 10 and gateway.calls == 1


async def test_a_failed_refresh_keeps_the_old_list_and_is_tried_again() -> None:
    gateway, clock = Gateway(), Clock()
    models = ModelList(gateway.list_models, ttl=300, clock=clock)
    gateway.fail = True
    assert await models.get() is None
    gateway.fail = False
    assert await models.get() == MODELS
    clock.now = 400
    gateway.fail = True
    assert await models.get() == MODELS  # stale, but better than nothing
    assert gateway.calls == 3


async def test_a_caller_that_cannot_wait_gets_what_there_is_and_the_refresh_goes_on() -> None:
    gateway, clock = Gateway(), Clock()
    models = ModelList(gateway.list_models, ttl=300, clock=clock)
    gateway.delay = 0.3
    assert await models.get(wait=0.01) is None
    await asyncio.sleep(0.4)
    assert await models.get(wait=0.01) == MODELS  # the refresh finished meanwhile
    assert gateway.calls == 1
