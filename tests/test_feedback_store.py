"""Feedback in the store and the core: one vote per person and reply, a vote counted only when
cast, a click seen twice counted once, the counts per model, and "what was wrong?"."""

from __future__ import annotations

import asyncio

import pytest

from bot.feedback import Feedback, Vote, VoteResult
from bot.store import FeedbackTotals, Store
from bot.types import Author, ConversationKey, Outcome

KEY = ConversationKey("discord", "G1", "C1", "T1")
ANN = Author("U1", "Ann")


class Counted:
    def __init__(self) -> None:
        self.cast: list[tuple[str, str, str]] = []

    def vote_cast(self, platform: str, model: str, value: str) -> None:
        self.cast.append((platform, model, value))


async def _reply(store: Store, model: str = "gemini-2.5-flash", key: ConversationKey = KEY) -> int:
    conversation = await store.conversations.find_or_create(key)
    reply = await store.replies.begin(conversation.id, ANN, "question", model=model)
    await store.replies.finish(reply, "answer", Outcome.COMPLETE, author_id=ANN.id)
    return reply


async def test_one_vote_per_person_changeable_and_counted_once(store: Store) -> None:
    reply = await _reply(store)
    counted = Counted()
    feedback = Feedback(store, ask_why=True, observer=counted)
    first = await feedback.vote("discord", reply, "U1", Vote.UP, click_id="i1")
    assert (first.result, first.ask_why) == (VoteResult.CAST, False)
    assert (
        await feedback.vote("discord", reply, "U1", Vote.UP, click_id="i2")
    ).result is VoteResult.UNCHANGED
    changed = await feedback.vote("discord", reply, "U1", Vote.DOWN, click_id="i3")
    assert (changed.result, changed.ask_why) == (VoteResult.CAST, True)
    # The first click delivered again after the change: a duplicate, not a change back.
    assert (
        await feedback.vote("discord", reply, "U1", Vote.UP, click_id="i1")
    ).result is VoteResult.UNCHANGED
    await feedback.vote("discord", reply, "U2", Vote.UP, click_id="i4")
    assert counted.cast == [
        ("discord", "gemini-2.5-flash", "up"),
        ("discord", "gemini-2.5-flash", "down"),
        ("discord", "gemini-2.5-flash", "up"),
    ]
    assert await store.feedback.of_reply(reply) == {"U1": ("down", None), "U2": ("up", None)}
    assert await store.feedback.by_model() == [FeedbackTotals("gemini-2.5-flash", 1, 1)]
    assert await feedback.explain(reply, "U1", "  It was wrong.  ")
    assert not await feedback.explain(reply, "U9", "never voted")
    assert (await store.feedback.of_reply(reply))["U1"] == ("down", "It was wrong.")


async def test_votes_racing_from_two_instances_count_once(store: Store) -> None:
    reply = await _reply(store)
    counted = Counted()
    feedback = Feedback(store, ask_why=False, observer=counted)
    # The same click reaching two instances, and two clicks of the same vote, at once.
    results = await asyncio.gather(
        feedback.vote("discord", reply, "U1", Vote.UP, click_id="same"),
        feedback.vote("discord", reply, "U1", Vote.UP, click_id="same"),
        feedback.vote("discord", reply, "U2", Vote.DOWN, click_id="a"),
        feedback.vote("discord", reply, "U2", Vote.DOWN, click_id="b"),
    )
    assert sorted(r.result.value for r in results) == ["cast", "cast", "unchanged", "unchanged"]
    assert sorted(counted.cast) == [
        ("discord", "gemini-2.5-flash", "down"),
        ("discord", "gemini-2.5-flash", "up"),
    ]


async def test_a_vote_names_a_reply_of_parley_on_that_platform(store: Store) -> None:
    reply = await _reply(store)
    feedback = Feedback(store, ask_why=True)
    assert (await feedback.vote("slack", reply, "U1", Vote.UP)).result is VoteResult.GONE
    assert (await feedback.vote("discord", reply + 999, "U1", Vote.UP)).result is VoteResult.GONE
    question_id = reply - 1  # the user's own message is not a reply
    assert (await feedback.vote("discord", question_id, "U1", Vote.UP)).result is VoteResult.GONE
    with pytest.raises(ValueError):
        await store.feedback.vote(reply, "U1", "sideways", platform="discord")
    gone = await feedback.vote("discord", 10**9, "U1", Vote.DOWN)
    assert gone.text.startswith("That answer is no longer")


async def test_counts_per_model_take_each_persons_current_vote(store: Store) -> None:
    claude = await _reply(store, "claude-sonnet-4-5")
    gemini = await _reply(store, "gemini-2.5-flash", ConversationKey("slack", "T1", "C1", "1.1"))
    for user, value in (("U1", "up"), ("U2", "up"), ("U3", "down")):
        await store.feedback.vote(claude, user, value, platform="discord")
    await store.feedback.vote(claude, "U2", "down", platform="discord")
    await store.feedback.vote(gemini, "U1", "up", platform="slack")
    assert await store.feedback.by_model() == [
        FeedbackTotals("claude-sonnet-4-5", 1, 2),
        FeedbackTotals("gemini-2.5-flash", 1, 0),
    ]
    assert await store.feedback.by_model(platform="slack") == [FeedbackTotals("gemini-2.5-flash", 1, 0)]


async def test_merged_messages_point_at_the_message_they_were_answered_with(store: Store) -> None:
    conversation = await store.conversations.find_or_create(KEY)
    await store.history.add(conversation.id, ANN, "hey", platform_id="m1")
    await store.history.add(conversation.id, ANN, "quick question", platform_id="m2")
    reply = await store.replies.begin(conversation.id, ANN, "the question", model="m", platform_id="m3")
    assert await store.history.mark_merged(conversation.id, ["m1", "m2", "m3", ""], "m3") == 2
    assert await store.history.mark_merged(conversation.id, ["m1"], "") == 0
    stored = await store.history.load(conversation.id, 10)
    assert [(m.text, m.merged_into) for m in stored] == [
        ("hey", reply - 1),
        ("quick question", reply - 1),
        ("the question", None),
        ("", None),
    ]
