"""When Parley answers (bot/routing.py): the rules as a table, and the one followed-thread cache."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from bot.routing import FollowedThreads, Reason, Route, Routing, Seen
from bot.settings import load_settings
from bot.types import ConversationKey

THREAD = ConversationKey("slack", "T1", "C1", "111.1")
OTHER = ConversationKey("slack", "T1", "C1", "222.2")


class Lookups:
    """The store's "has Parley answered here" and the service's "answering now", recorded."""

    def __init__(
        self, answered: set[ConversationKey] = frozenset(), answering: set[ConversationKey] = frozenset()
    ):
        self.answered = set(answered)
        self.answering = set(answering)
        self.asked: list[ConversationKey] = []
        self.now = 1000.0

    async def has_reply(self, key: ConversationKey) -> bool:
        self.asked.append(key)
        return key in self.answered

    def followed(self, *, remember_misses: bool = False, max_entries: int = 10_000) -> FollowedThreads:
        return FollowedThreads(
            answering=lambda key: key in self.answering,
            has_reply=self.has_reply,
            remember_misses=remember_misses,
            miss_ttl=30.0,
            max_entries=max_entries,
            clock=lambda: self.now,
        )


def routing(tmp_path: Path, lookups: Lookups, **env: str) -> Routing:
    settings = load_settings({k.upper(): v for k, v in env.items()}, cwd=tmp_path)
    return Routing(settings, lookups.followed())


# (what was seen, Parley answered in the thread before, require mention) → the route
CASES: list[tuple[str, Seen, bool, bool, Route]] = [
    ("dm", Seen(THREAD, "U1", is_dm=True), False, False, Route(Reason.DM)),
    (
        "dm in a thread, unseen",
        Seen(THREAD, "U1", is_dm=True, in_thread=True),
        False,
        False,
        Route(Reason.DM, followed=False, read_back=True),
    ),
    ("mention at top level", Seen(THREAD, "U1", mentioned=True), False, False, Route(Reason.MENTIONED)),
    (
        "mention in an unseen thread",
        Seen(THREAD, "U1", mentioned=True, in_thread=True),
        False,
        False,
        Route(Reason.MENTIONED, followed=False, read_back=True),
    ),
    (
        "mention in a followed thread",
        Seen(THREAD, "U1", mentioned=True, in_thread=True),
        True,
        False,
        Route(Reason.MENTIONED, followed=True, read_back=False),
    ),
    (
        "mention in a followed thread, mentions required",
        Seen(THREAD, "U1", mentioned=True, in_thread=True),
        True,
        True,
        Route(Reason.MENTIONED, followed=True, read_back=True),
    ),
    (
        "follow-up in a followed thread",
        Seen(THREAD, "U1", in_thread=True),
        True,
        False,
        Route(Reason.FOLLOWED, followed=True),
    ),
    (
        "follow-up, mentions required",
        Seen(THREAD, "U1", in_thread=True),
        True,
        True,
        Route(Reason.MENTION_REQUIRED),
    ),
    (
        "chatter in someone else's thread",
        Seen(THREAD, "U1", in_thread=True),
        False,
        False,
        Route(Reason.NOT_FOLLOWED),
    ),
    ("channel message without a mention", Seen(THREAD, "U1"), True, False, Route(Reason.NOT_ADDRESSED)),
    ("another bot", Seen(THREAD, "B1", mentioned=True, is_bot=True), False, False, Route(Reason.OTHER_BOT)),
    (
        "an allowed bot",
        Seen(THREAD, "B2", mentioned=True, is_bot=True),
        False,
        False,
        Route(Reason.MENTIONED),
    ),
    (
        "denied by the access policy",
        Seen(THREAD, "U1", is_dm=True, admitted=False),
        False,
        False,
        Route(Reason.DENIED),
    ),
]


@pytest.mark.parametrize(
    ("seen", "followed", "require", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
async def test_the_rules(tmp_path: Path, seen: Seen, followed: bool, require: bool, expected: Route) -> None:
    lookups = Lookups(answered={THREAD} if followed else set())
    route = await routing(
        tmp_path, lookups, parley_require_mention=str(require).lower(), parley_allow_bots="B2"
    ).route(seen)
    assert route == expected
    assert route.answer == (expected.reason in {Reason.DM, Reason.MENTIONED, Reason.FOLLOWED})
    assert route.include_own == (not expected.followed)


async def test_nothing_is_looked_up_for_what_is_decided_without_it(tmp_path: Path) -> None:
    lookups = Lookups(answered={THREAD})
    rules = routing(tmp_path, lookups, parley_require_mention="true")
    for seen in (
        Seen(THREAD, "U1", is_dm=True),
        Seen(THREAD, "U1", mentioned=True),
        Seen(THREAD, "U1"),
        Seen(THREAD, "U1", in_thread=True),  # mentions required: no need to know
        Seen(THREAD, "U1", in_thread=True, admitted=False),
        Seen(THREAD, "B1", in_thread=True, is_bot=True),
    ):
        await rules.route(seen)
    assert lookups.asked == []


async def test_a_turn_under_way_counts_as_followed_before_its_reply_is_stored(tmp_path: Path) -> None:
    lookups = Lookups(answering={THREAD})
    route = await routing(tmp_path, lookups).route(Seen(THREAD, "U1", in_thread=True))
    assert route.reason is Reason.FOLLOWED and lookups.asked == []


async def test_a_yes_is_remembered_and_a_no_is_asked_again_when_the_database_is_shared() -> None:
    lookups = Lookups(answered={THREAD})
    followed = lookups.followed(remember_misses=False)
    assert [await followed.check(THREAD) for _ in range(3)] == [True, True, True]
    assert [await followed.check(OTHER) for _ in range(3)] == [False, False, False]
    assert lookups.asked == [THREAD, OTHER, OTHER, OTHER]


async def test_a_no_is_remembered_for_a_while_when_parley_is_alone_on_the_database() -> None:
    lookups = Lookups()
    followed = lookups.followed(remember_misses=True)
    assert not await followed.check(OTHER)
    lookups.answered.add(OTHER)  # e.g. written by hand: this process did not answer there
    lookups.now += 29
    assert not await followed.check(OTHER)
    lookups.now += 2
    assert await followed.check(OTHER)
    assert lookups.asked == [OTHER, OTHER]


async def test_answering_somewhere_forgets_the_no_at_once() -> None:
    lookups = Lookups()
    followed = lookups.followed(remember_misses=True)
    assert not await followed.check(THREAD)
    followed.follow(THREAD)  # Parley answered a mention there, or opened the thread
    assert await followed.check(THREAD)
    assert lookups.asked == [THREAD]


async def test_the_cache_is_bounded() -> None:
    lookups = Lookups()
    followed = lookups.followed(max_entries=2)
    keys = [ConversationKey("discord", "G", "C", str(i)) for i in range(3)]
    for key in keys:
        followed.follow(key)
    assert not await followed.check(keys[0])  # the oldest was dropped, so the store was asked
    assert await followed.check(keys[2])
    assert lookups.asked == [keys[0]]


async def test_messages_arriving_together_share_one_question() -> None:
    lookups = Lookups()
    followed = lookups.followed(remember_misses=False)
    assert await asyncio.gather(*(followed.check(OTHER) for _ in range(5))) == [False] * 5
    assert lookups.asked == [OTHER]
    assert not await followed.check(OTHER)
    assert lookups.asked == [OTHER, OTHER]  # a later message asks again (no remembered misses)
