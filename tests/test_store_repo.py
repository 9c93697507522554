"""Every Store method, on SQLite (and PostgreSQL when PARLEY_TEST_POSTGRES_URL is set)."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import pytest

from bot.store import AttachmentRecord, ModelTotals, Store, StoreError, Totals
from bot.store.repo import clean_error
from bot.types import Author, ConversationKey, Outcome, Usage

# Fixtures shared by the store tests (pytest finds them as module attributes).

KEY = ConversationKey("slack", "T1", "C1", "1700000000.000100")
ANN = Author("U1", "Ann")
BOB = Author("U2", "Bob")


async def _turn(store: Store, conversation_id: int, question: str, answer: str, user: Author = ANN) -> int:
    await store.add_user_message(conversation_id, user, question)
    reply = await store.start_reply(conversation_id, "gemini-2.5-flash", {"channel": "C1"})
    await store.finish_reply(reply, answer, Outcome.COMPLETE, author_id=user.id)
    return reply


# --- conversations -----------------------------------------------------------------------------


async def test_get_or_create_conversation_is_stable(store: Store) -> None:
    assert not await store.conversation_exists(KEY)
    created = await store.get_or_create_conversation(KEY)
    again = await store.get_or_create_conversation(KEY)
    assert again.id == created.id
    assert again.key == KEY
    assert created.created_at.tzinfo is UTC and abs(created.created_at - datetime.now(UTC)) < timedelta(
        minutes=1
    )
    assert await store.conversation_exists(KEY)
    other = await store.get_or_create_conversation(ConversationKey("slack", "T1", "C1", ""))
    assert other.id != created.id
    assert await store.get_conversation(ConversationKey("discord", "G", "C1")) is None


async def test_has_assistant_reply_only_after_a_reply(store: Store) -> None:
    assert not await store.has_assistant_reply(KEY)
    conversation = await store.get_or_create_conversation(KEY)
    await store.add_user_message(conversation.id, ANN, "hello?")
    assert not await store.has_assistant_reply(KEY)
    await store.start_reply(conversation.id, "m", {})
    assert await store.has_assistant_reply(KEY)
    assert not await store.has_assistant_reply(ConversationKey("slack", "T1", "C1", "other"))


async def test_overrides_conversation_wins_over_channel(store: Store) -> None:
    conversation = await store.get_or_create_conversation(KEY)
    sibling = await store.get_or_create_conversation(ConversationKey("slack", "T1", "C1", "2.0"))
    elsewhere = await store.get_or_create_conversation(ConversationKey("slack", "T1", "C9", "2.0"))
    assert await store.effective_model_and_system(conversation) == (None, None)

    await store.set_channel_model(KEY, "claude-sonnet-4")
    await store.set_channel_system(KEY, "Be terse.")
    assert await store.effective_model_and_system(conversation) == ("claude-sonnet-4", "Be terse.")
    assert await store.effective_model_and_system(sibling.id) == ("claude-sonnet-4", "Be terse.")
    assert await store.effective_model_and_system(elsewhere) == (None, None)

    await store.set_conversation_model(conversation.id, "gpt-5")
    assert await store.effective_model_and_system(conversation) == ("gpt-5", "Be terse.")
    await store.set_conversation_system(conversation.id, "Be verbose.")
    assert await store.effective_model_and_system(conversation) == ("gpt-5", "Be verbose.")
    assert await store.effective_model_and_system(sibling) == ("claude-sonnet-4", "Be terse.")

    await store.set_channel_model(KEY, "gemini-2.5-pro")  # an update of the existing row
    await store.set_conversation_model(conversation.id, None)
    assert await store.effective_model_and_system(conversation) == ("gemini-2.5-pro", "Be verbose.")
    await store.set_channel_model(KEY, None)
    await store.set_channel_system(KEY, None)
    assert await store.effective_model_and_system(sibling) == (None, None)
    assert await store.effective_model_and_system(999_999) == (None, None)


# --- messages and context ----------------------------------------------------------------------


async def test_load_context_returns_newest_messages_oldest_first(store: Store) -> None:
    conversation = await store.get_or_create_conversation(KEY)
    for n in range(5):
        await _turn(store, conversation.id, f"q{n}", f"a{n}", user=ANN if n % 2 else BOB)
    context = await store.load_context(conversation.id, 4)
    assert [(m.role, m.text) for m in context] == [
        ("user", "q3"),
        ("assistant", "a3"),
        ("user", "q4"),
        ("assistant", "a4"),
    ]
    assert [m.id for m in context] == sorted(m.id for m in context)
    assert context[2].author_id == "U2" and context[2].author_name == "Bob"
    assert context[3].status is Outcome.COMPLETE and context[3].model == "gemini-2.5-flash"
    assert context[3].finished_at is not None and context[3].finished_at.tzinfo is UTC
    assert await store.load_context(conversation.id, 0) == []
    assert len(await store.load_context(conversation.id, 100)) == 10


async def test_load_context_is_one_statement(store: Store) -> None:
    conversation = await store.get_or_create_conversation(KEY)
    await _turn(store, conversation.id, "q", "a")
    before = store.statements
    await store.load_context(conversation.id, 50)
    assert store.statements - before == 1


async def test_reset_starts_context_over_but_keeps_history(store: Store) -> None:
    conversation = await store.get_or_create_conversation(KEY)
    other = await store.get_or_create_conversation(ConversationKey("slack", "T1", "C2", ""))
    await _turn(store, conversation.id, "old question", "old answer")
    await _turn(store, other.id, "unrelated", "unrelated")
    await store.reset(conversation.id)
    assert await store.load_context(conversation.id, 10) == []
    assert len(await store.load_context(other.id, 10)) == 2  # only the one conversation resets
    await _turn(store, conversation.id, "new question", "new answer")
    assert [m.text for m in await store.load_context(conversation.id, 10)] == ["new question", "new answer"]
    refreshed = await store.get_or_create_conversation(KEY)
    assert refreshed.reset_after_message_id > 0
    assert await store.has_assistant_reply(KEY)  # history is still there
    await store.reset(other.id)
    await store.reset(other.id)  # idempotent
    assert await store.load_context(other.id, 10) == []


async def test_reset_of_an_empty_conversation(store: Store) -> None:
    conversation = await store.get_or_create_conversation(KEY)
    await store.reset(conversation.id)
    await store.add_user_message(conversation.id, ANN, "first")
    assert [m.text for m in await store.load_context(conversation.id, 10)] == ["first"]


async def test_user_message_dedup_by_platform_id(store: Store) -> None:
    conversation = await store.get_or_create_conversation(KEY)
    other = await store.get_or_create_conversation(ConversationKey("slack", "T1", "C2", ""))
    await store.add_user_message(conversation.id, ANN, "hi", platform_id="1700000000.000200")
    assert await store.user_message_exists(conversation.id, "1700000000.000200")
    assert not await store.user_message_exists(conversation.id, "1700000000.000300")
    assert not await store.user_message_exists(other.id, "1700000000.000200")
    assert not await store.user_message_exists(conversation.id, "")
    await store.add_context_message(
        conversation.id, Author("B", "Parley"), "old", role="assistant", platform_id="p9"
    )
    found = await store.known_platform_ids(conversation.id, ["1700000000.000200", "p9", "nope", ""])
    assert found == {"1700000000.000200", "p9"}
    many = [f"x{n}" for n in range(1200)]  # more than one IN (...) chunk
    assert await store.known_platform_ids(conversation.id, many) == set()


async def test_attachments_are_stored_with_the_message(store: Store) -> None:
    conversation = await store.get_or_create_conversation(KEY)
    digest = hashlib.sha256(b"%PDF-1.7").hexdigest()
    with_files = await store.add_user_message(
        conversation.id,
        ANN,
        "see attached",
        attachments=[
            AttachmentRecord("report.pdf", "application/pdf", 8, digest),
            AttachmentRecord("notes.txt", None, None),
        ],
    )
    plain = await store.add_user_message(conversation.id, ANN, "no files")
    found = await store.attachments_for([with_files, plain])
    assert list(found) == [with_files]
    assert [(a.name, a.media_type, a.size, a.sha256) for a in found[with_files]] == [
        ("report.pdf", "application/pdf", 8, digest),
        ("notes.txt", None, None, None),
    ]
    assert await store.attachments_for([]) == {}


# --- replies -----------------------------------------------------------------------------------


async def test_reply_lifecycle_and_usage_row(store: Store) -> None:
    conversation = await store.get_or_create_conversation(KEY)
    await store.add_user_message(conversation.id, ANN, "question")
    reply = await store.start_reply(conversation.id, "claude-sonnet-4", {"channel": "C1"})
    [streaming] = await store.load_context(conversation.id, 1)
    assert streaming.status is Outcome.STREAMING and streaming.text == ""

    await store.set_reply_refs(reply, ["1.1", "1.2"], {"channel": "C1", "thread": KEY.thread})
    [recovering] = await store.streaming_replies()
    assert recovering.id == reply and recovering.key == KEY
    assert recovering.reply_refs == ("1.1", "1.2")
    assert recovering.surface == {"channel": "C1", "thread": KEY.thread}

    await store.finish_reply(
        reply,
        "the answer",
        Outcome.LENGTH,
        usage=Usage(input_tokens=100, output_tokens=40, thinking_tokens=7),
        author_id="U1",
        refs=["1.1", "1.2", "1.3"],
    )
    [finished] = await store.load_context(conversation.id, 1)
    assert (finished.text, finished.status, finished.model) == (
        "the answer",
        Outcome.LENGTH,
        "claude-sonnet-4",
    )
    assert await store.streaming_replies() == []
    totals = await store.usage_totals(user_id="U1")
    assert (totals.requests, totals.input_tokens, totals.output_tokens, totals.thinking_tokens) == (
        1,
        100,
        40,
        7,
    )
    assert totals.total_tokens == 140


async def test_finish_reply_rejects_streaming_and_unknown_ids(store: Store) -> None:
    conversation = await store.get_or_create_conversation(KEY)
    reply = await store.start_reply(conversation.id, "m", None)
    with pytest.raises(ValueError, match="STREAMING"):
        await store.finish_reply(reply, "x", Outcome.STREAMING)
    with pytest.raises(StoreError, match="no reply"):
        await store.finish_reply(reply + 1000, "x", Outcome.COMPLETE)
    assert await store.usage_totals() == await store.usage_totals(model="nothing")  # no rows written


async def test_error_detail_is_stored_without_credentials(store: Store) -> None:
    conversation = await store.get_or_create_conversation(KEY)
    reply = await store.start_reply(conversation.id, "m", {})
    detail = "401 from gateway: Authorization: Bearer sk-abcdefghijklmnop rejected"
    await store.finish_reply(reply, "", Outcome.ERROR, error=detail, model="gpt-5")
    async with store.engine.connect() as conn:
        stored = (await conn.exec_driver_sql(f"SELECT error, model FROM messages WHERE id = {reply}")).one()
    assert "sk-abcdefghijklmnop" not in stored.error and "401 from gateway" in stored.error
    assert stored.model == "gpt-5"
    assert clean_error("x" * 5000) == "x" * 2000
    assert clean_error("token=xoxb-123-456 and xapp-1-A-2") == "*** and ***"
    assert clean_error(None) is None


async def test_crash_recovery_marks_streaming_replies_interrupted(store: Store) -> None:
    conversation = await store.get_or_create_conversation(KEY)
    first = await store.start_reply(conversation.id, "m", {"channel": "C1", "refs": ["1"]})
    second = await store.start_reply(conversation.id, "m", {"channel": "C1", "refs": ["2"]})
    done = await store.start_reply(conversation.id, "m", {})
    await store.finish_reply(done, "ok", Outcome.COMPLETE)

    assert [r.id for r in await store.streaming_replies()] == [first, second]
    assert [r.id for r in await store.streaming_replies(limit=1)] == [first]
    assert await store.streaming_replies(started_before=datetime.now(UTC) - timedelta(hours=1)) == []
    assert await store.mark_interrupted(first)
    assert not await store.mark_interrupted(first)
    assert not await store.mark_interrupted(done)  # a finished reply keeps its outcome
    assert [r.id for r in await store.streaming_replies()] == [second]
    statuses = {m.id: m.status for m in await store.load_context(conversation.id, 10)}
    assert statuses == {first: Outcome.INTERRUPTED, second: Outcome.STREAMING, done: Outcome.COMPLETE}


# --- usage -------------------------------------------------------------------------------------


async def test_usage_totals_and_by_model(store: Store) -> None:
    slack = await store.get_or_create_conversation(KEY)
    discord = await store.get_or_create_conversation(ConversationKey("discord", "G1", "C5", "T5"))
    plan = [
        (slack, "U1", "gpt-5", Usage(10, 5, 0)),
        (slack, "U2", "gpt-5", Usage(20, 10, 0)),
        (slack, "U1", "claude-sonnet-4", Usage(30, 15, 4)),
        (discord, "U1", "claude-sonnet-4", Usage(40, 20, 8)),
    ]
    for conversation, user, model, usage in plan:
        reply = await store.start_reply(conversation.id, model, {})
        await store.finish_reply(reply, "ok", Outcome.COMPLETE, usage=usage, author_id=user)

    assert await store.usage_totals() == _t(4, 100, 50, 12)
    assert await store.usage_totals(user_id="U1") == _t(3, 80, 40, 12)
    assert await store.usage_totals(conversation_id=slack.id) == _t(3, 60, 30, 4)
    assert await store.usage_totals(workspace="G1") == _t(1, 40, 20, 8)
    assert await store.usage_totals(model="gpt-5") == _t(2, 30, 15, 0)
    assert await store.usage_totals(platform="discord", user_id="U1") == _t(1, 40, 20, 8)
    assert await store.usage_totals(user_id="nobody") == _t(0, 0, 0, 0)
    assert await store.usage_totals(since=datetime.now(UTC) + timedelta(minutes=1)) == _t(0, 0, 0, 0)

    by_model = await store.usage_by_model()
    assert by_model == [
        ModelTotals(2, 70, 35, 12, model="claude-sonnet-4"),
        ModelTotals(2, 30, 15, 0, model="gpt-5"),
    ]
    assert by_model[1].thinking_tokens == 0 and by_model[0].total_tokens == 105
    assert [m.model for m in await store.usage_by_model(workspace="G1")] == ["claude-sonnet-4"]


def _t(requests: int, inp: int, out: int, thinking: int) -> Totals:
    return Totals(requests, inp, out, thinking)


# --- blobs, events, health ---------------------------------------------------------------------


async def test_blobs_are_content_addressed(store: Store) -> None:
    data = bytes(range(256)) * 100
    digest = hashlib.sha256(data).hexdigest()
    assert await store.get_blob(digest) is None
    assert not await store.has_blob(digest)
    await store.put_blob(digest, data)
    await store.put_blob(digest, data, extracted_text="page one")  # again: only adds the text
    await store.put_blob(digest, data, extracted_text="ignored: text is already there")
    blob = await store.get_blob(digest)
    assert blob is not None
    assert (blob.data, blob.size, blob.extracted_text) == (data, len(data), "page one")
    assert blob.created_at.tzinfo is UTC
    assert await store.has_blob(digest)
    await store.set_blob_text(digest, "re-extracted")
    assert (await store.get_blob(digest)).extracted_text == "re-extracted"  # type: ignore[union-attr]
    with pytest.raises(ValueError, match="sha256"):
        await store.put_blob("0" * 64, data)


async def test_claim_event_once_then_done(store: Store) -> None:
    assert await store.claim_event("slack", "Ev1", "instance-a")
    assert not await store.claim_event("slack", "Ev1", "instance-b")
    assert not await store.claim_event("slack", "Ev1", "instance-a")  # a redelivery to the same owner
    assert await store.claim_event("discord", "Ev1", "instance-b")  # event ids are per platform
    await store.mark_event_done("slack", "Ev1")
    assert not await store.claim_event("slack", "Ev1", "instance-b", lease_seconds=0)


async def test_claim_event_lease_expiry_lets_another_owner_take_over(store: Store) -> None:
    assert await store.claim_event("slack", "Ev2", "crashed")
    assert not await store.claim_event("slack", "Ev2", "survivor", lease_seconds=300)
    assert await store.claim_event("slack", "Ev2", "survivor", lease_seconds=0)  # the claim has expired
    assert not await store.claim_event("slack", "Ev2", "third", lease_seconds=300)  # the new claim is fresh


async def test_release_and_prune_events(store: Store) -> None:
    assert await store.claim_event("slack", "Ev3", "a")
    await store.release_event("slack", "Ev3", "someone-else")  # not theirs to release
    assert not await store.claim_event("slack", "Ev3", "b")
    await store.release_event("slack", "Ev3", "a")
    assert await store.claim_event("slack", "Ev3", "b")
    await store.mark_event_done("slack", "Ev3")
    assert await store.claim_event("slack", "Ev4", "b")  # still claimed: never pruned
    assert await store.prune_events(datetime.now(UTC) - timedelta(hours=1)) == 0
    assert await store.prune_events(datetime.now(UTC) + timedelta(seconds=1)) == 1
    assert await store.claim_event("slack", "Ev3", "c")  # forgotten, so claimable again
    assert not await store.claim_event("slack", "Ev4", "c")


async def test_ping_and_statement_counter(store: Store) -> None:
    before = store.statements
    await store.ping()
    assert store.statements == before + 1
