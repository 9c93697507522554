"""Tool history: a reply's tool steps stored with it and replayed in later prompts of the thread,
where they happened, inside the history budget (old steps go first); pictures counted per image
model without counting as replies; the migration's column and its way back."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import column, insert, select, table

from bot.files import PreparedFiles
from bot.prompt import HistoryEntry, ToolStep, build_turns
from bot.providers.base import TextPart, ToolCall, ToolCallPart, ToolResultPart, Turn
from bot.request import Question, build, replayed, stored
from bot.settings import Settings
from bot.store import ModelTotals, Overrides, Store, StoredMessage, db, downgrade_async, upgrade_async
from bot.store.rows import StoredCall, StoredStep
from bot.store.tool_steps import CUT_MARK, decode, encode
from bot.types import Author, ConversationKey, Outcome, Usage

KEY = ConversationKey("slack", "T1", "C1", "171.1")
ANN = Author("U1", "Ann")
CALL = ToolCall("call_1", "read_url", '{"url": "https://example.com/news"}')
RESULT = ToolResultPart("call_1", "read_url", "<tool_output>The harbour opens in May.</tool_output>")
STEP = ToolStep("Let me read it.", (CALL,), (RESULT,))


def roles(turns: list[Turn]) -> list[str]:
    return [t.role for t in turns]


# --- the store --------------------------------------------------------------------------------


async def test_a_replys_tool_steps_are_stored_with_it_and_loaded_with_the_history(store: Store) -> None:
    conversation = await store.conversations.find_or_create(KEY)
    reply = await store.replies.begin(conversation.id, ANN, "what does it say?", model="m")
    failed = ToolCall("call_2", "read_url", "{not json")
    steps = (STEP, ToolStep("", (failed,), (ToolResultPart("call_2", "read_url", "bad arguments", True),)))
    await store.replies.finish(
        reply, "Let me read it.\n\nIt opens in May.", Outcome.COMPLETE, tool_steps=stored(steps)
    )

    question, answer = await store.history.load(conversation.id, 10)
    assert question.tool_steps == ()
    assert replayed(answer.tool_steps) == steps  # calls, results, errors and text, as they were


async def test_pictures_are_counted_per_image_model_and_are_no_replies(store: Store) -> None:
    conversation = await store.conversations.find_or_create(KEY)
    for _ in range(2):
        reply = await store.replies.begin(conversation.id, ANN, "draw", model="gpt-4o")
        await store.replies.finish(
            reply, "Here.", Outcome.COMPLETE, usage=Usage(10, 5), author_id="U1", images={"gpt-image-1": 1}
        )
    totals = await store.usage.totals(user_id="U1")
    assert (totals.requests, totals.input_tokens, totals.images) == (2, 20, 2)
    assert await store.usage.by_model() == [
        ModelTotals(2, 20, 10, 0, 0, model="gpt-4o"),
        ModelTotals(0, 0, 0, 0, 2, model="gpt-image-1"),
    ]


def test_stored_steps_are_capped_and_unreadable_ones_left_out() -> None:
    huge = StoredCall("c", "read_url", '{"url": "' + "x" * 50 + '"}', "y" * 100)
    [kept] = encode([StoredStep("t", (huge,))], max_chars=40) or []
    assert kept["calls"][0]["arguments"] == "{}"  # cut JSON would be no JSON: an empty object
    assert kept["calls"][0]["result"] == "y" * 40 + CUT_MARK
    assert encode([], max_chars=40) is None
    assert decode([{"text": "t", "calls": [{"id": 1}]}, "junk", {"calls": []}]) == ()
    assert decode("not a list") == ()


async def test_the_migration_adds_and_removes_the_columns(db_url: str) -> None:
    await upgrade_async(db_url, "0002")
    engine = await db.open_engine(db_url)
    names = ("platform", "workspace", "user_id", "model", "input_tokens", "output_tokens", "thinking_tokens")
    usage = table("usage", *(column(name) for name in (*names, "created_at")))
    row = dict(zip(names, ("slack", "T1", "U1", "m", 1, 2, 0), strict=True))

    async def column_of(name: str) -> list[object]:
        async with engine.connect() as conn:
            return list((await conn.execute(select(column(name)).select_from(table("usage")))).scalars())

    try:
        async with engine.begin() as conn:
            await conn.execute(insert(usage).values(**row, created_at=datetime.now(UTC)))
        await upgrade_async(db_url, "0003")
        assert await column_of("images") == [0]  # rows from before count no pictures
        await downgrade_async(db_url, "0002")
        assert await column_of("model") == ["m"]
    finally:
        await engine.dispose()


# --- the prompt -------------------------------------------------------------------------------


def test_a_follow_up_sees_the_calls_and_results_where_they_happened() -> None:
    history = [
        HistoryEntry("user", "Ann", "what does https://example.com/news say?"),
        HistoryEntry("assistant", "", "Let me read it.\n\nIt says the harbour opens in May.", steps=(STEP,)),
    ]
    turns = build_turns(history, HistoryEntry("user", "Ann", "and when does it close?"), budget_chars=10_000)
    assert roles(turns) == ["user", "assistant", "user", "assistant", "user"]
    assert turns[1].parts == (TextPart("Let me read it."), ToolCallPart(CALL))
    assert turns[2].parts == (RESULT,)
    assert turns[3].parts == (TextPart("It says the harbour opens in May."),)  # not the step's text again


def test_a_reply_stopped_during_its_tools_keeps_its_steps_before_the_next_question() -> None:
    history = [
        HistoryEntry("user", "Ann", "read it"),
        HistoryEntry("assistant", "", "", Outcome.STOPPED, steps=(ToolStep("", (CALL,), (RESULT,)),)),
    ]
    turns = build_turns(history, HistoryEntry("user", "Ann", "go on"), budget_chars=10_000)
    assert roles(turns) == ["user", "assistant", "user"]
    assert turns[2].parts == (RESULT, TextPart("go on"))  # results lead the next user turn


def test_over_budget_old_tool_steps_go_before_any_exchange() -> None:
    page = ToolResultPart("call_1", "read_url", "p" * 3000)
    old = ToolStep("", (CALL,), (page,))
    new = ToolStep("", (CALL,), (ToolResultPart("call_1", "read_url", "n" * 3000),))
    history = [
        HistoryEntry("user", "Ann", "first"),
        HistoryEntry("assistant", "", "first answer", steps=(old,)),
        HistoryEntry("user", "Ann", "second"),
        HistoryEntry("assistant", "", "second answer", steps=(new,)),
    ]
    turns = build_turns(history, HistoryEntry("user", "Ann", "third"), budget_chars=4000)
    parts = [p for t in turns for p in t.parts]
    assert roles(turns) == ["user", "assistant", "user", "assistant", "user", "assistant", "user"]
    assert TextPart("first answer") in parts  # both exchanges kept
    assert page not in parts  # the old page went
    assert new.results[0] in parts  # the newest stays
    tight = build_turns(history, HistoryEntry("user", "Ann", "third"), budget_chars=500)
    assert not any(isinstance(p, ToolResultPart) for t in tight for p in t.parts)
    assert roles(tight) == ["user", "assistant", "user", "assistant", "user"]


def test_the_request_replays_stored_steps_and_offers_the_tools() -> None:
    now = datetime.now(UTC)
    history = [
        StoredMessage(1, 1, "user", "U1", "Ann", "read it", Outcome.COMPLETE, None, "", now, now),
        StoredMessage(
            2,
            1,
            "assistant",
            "",
            "",
            "It opens in May.",
            Outcome.COMPLETE,
            "m",
            "",
            now,
            now,
            stored((STEP,)),
        ),
    ]
    spec_request = build(
        Settings(),
        Question("slack", "Ann", "and closes?", "m"),
        Overrides(),
        history,
        PreparedFiles(question="and closes?"),
        tools=(),
        last_step=True,
    )
    assert ToolCallPart(CALL) in spec_request.turns[1].parts
    assert spec_request.turns[2].parts == (RESULT,)
    assert spec_request.tool_choice == "none"
