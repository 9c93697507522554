"""Every repository of the Store, on SQLite (and PostgreSQL when PARLEY_TEST_POSTGRES_URL is set)."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import pytest

from bot.store import AttachmentRecord, KnownMessage, ModelTotals, Overrides, Store, StoreError, Totals
from bot.store.replies import clean_error
from bot.types import Author, ConversationKey, Outcome, Usage
from tests.store_fixtures import stored_attachments

# Fixtures shared by the store tests (pytest finds them as module attributes).

KEY = ConversationKey("slack", "T1", "C1", "1700000000.000100")
ANN = Author("U1", "Ann")
BOB = Author("U2", "Bob")


async def _turn(store: Store, conversation_id: int, question: str, answer: str, user: Author = ANN) -> int:
    reply = await store.replies.begin(
        conversation_id, user, question, model="gemini-2.5-flash", surface_info={"channel": "C1"}
    )
    await store.replies.finish(reply, answer, Outcome.COMPLETE, author_id=user.id)
    return reply


# --- conversations -----------------------------------------------------------------------------


async def test_get_or_create_conversation_is_stable(store: Store) -> None:
    assert await store.conversations.find(KEY) is None
    created = await store.conversations.find_or_create(KEY)
    again = await store.conversations.find_or_create(KEY)
    assert again.id == created.id
    assert again.key == KEY
    assert created.created_at.tzinfo is UTC and abs(created.created_at - datetime.now(UTC)) < timedelta(
        minutes=1
    )
    assert await store.conversations.find(KEY) == created
    other = await store.conversations.find_or_create(ConversationKey("slack", "T1", "C1", ""))
    assert other.id != created.id
    assert await store.conversations.find(ConversationKey("discord", "G", "C1")) is None


async def test_has_assistant_reply_only_after_a_reply(store: Store) -> None:
    assert not await store.conversations.has_reply(KEY)
    conversation = await store.conversations.find_or_create(KEY)
    await store.history.add(conversation.id, ANN, "hello?")
    assert not await store.conversations.has_reply(KEY)
    await store.replies.begin(conversation.id, ANN, "and now?", model="m")
    assert await store.conversations.has_reply(KEY)
    assert not await store.conversations.has_reply(ConversationKey("slack", "T1", "C1", "other"))


async def test_overrides_conversation_wins_over_channel(store: Store) -> None:
    conversation = await store.conversations.find_or_create(KEY)
    sibling = await store.conversations.find_or_create(ConversationKey("slack", "T1", "C1", "2.0"))
    elsewhere = await store.conversations.find_or_create(ConversationKey("slack", "T1", "C9", "2.0"))
    assert await store.conversations.overrides(KEY) == Overrides(None, None)

    await store.conversations.set_channel_model(KEY, "claude-sonnet-4")
    await store.conversations.set_channel_system(KEY, "Be terse.")
    assert await store.conversations.overrides(KEY) == Overrides("claude-sonnet-4", "Be terse.")
    assert await store.conversations.overrides(sibling.key) == Overrides("claude-sonnet-4", "Be terse.")
    assert await store.conversations.overrides(elsewhere.key) == Overrides(None, None)

    await store.conversations.set_model(conversation.id, "gpt-5")
    assert await store.conversations.overrides(KEY) == Overrides("gpt-5", "Be terse.")
    await store.conversations.set_system(conversation.id, "Be verbose.")
    assert await store.conversations.overrides(KEY) == Overrides("gpt-5", "Be verbose.")
    assert await store.conversations.overrides(sibling.key) == Overrides("claude-sonnet-4", "Be terse.")

    await store.conversations.set_channel_model(KEY, "gemini-2.5-pro")  # an update of the existing row
    await store.conversations.set_model(conversation.id, None)
    assert await store.conversations.overrides(KEY) == Overrides("gemini-2.5-pro", "Be verbose.")
    await store.conversations.set_channel_model(KEY, None)
    await store.conversations.set_channel_system(KEY, None)
    assert await store.conversations.overrides(sibling.key) == Overrides(None, None)


async def test_a_channels_overrides_are_read_without_creating_a_conversation(store: Store) -> None:
    channel = ConversationKey("discord", "G1", "C7", "")
    assert await store.conversations.overrides(channel) == Overrides(None, None)
    await store.conversations.set_channel_model(channel, "gpt-5")
    thread = ConversationKey("discord", "G1", "C7", "T70")
    assert await store.conversations.overrides(thread) == Overrides("gpt-5", None)
    assert await store.conversations.overrides(channel) == Overrides("gpt-5", None)
    assert await store.conversations.find(channel) is None
    assert await store.conversations.find(thread) is None


# --- messages and context ----------------------------------------------------------------------


async def test_load_context_returns_newest_messages_oldest_first(store: Store) -> None:
    conversation = await store.conversations.find_or_create(KEY)
    for n in range(5):
        await _turn(store, conversation.id, f"q{n}", f"a{n}", user=ANN if n % 2 else BOB)
    context = await store.history.load(conversation.id, 4)
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
    assert await store.history.load(conversation.id, 0) == []
    assert len(await store.history.load(conversation.id, 100)) == 10


async def test_load_context_is_one_statement(store: Store) -> None:
    conversation = await store.conversations.find_or_create(KEY)
    await _turn(store, conversation.id, "q", "a")
    before = store.statements
    await store.history.load(conversation.id, 50)
    assert store.statements - before == 1


async def test_reset_starts_context_over_but_keeps_history(store: Store) -> None:
    conversation = await store.conversations.find_or_create(KEY)
    other = await store.conversations.find_or_create(ConversationKey("slack", "T1", "C2", ""))
    await _turn(store, conversation.id, "old question", "old answer")
    await _turn(store, other.id, "unrelated", "unrelated")
    await store.conversations.reset(conversation.id)
    assert await store.history.load(conversation.id, 10) == []
    assert len(await store.history.load(other.id, 10)) == 2  # only the one conversation resets
    await _turn(store, conversation.id, "new question", "new answer")
    assert [m.text for m in await store.history.load(conversation.id, 10)] == ["new question", "new answer"]
    refreshed = await store.conversations.find_or_create(KEY)
    assert refreshed.reset_after_message_id > 0
    assert await store.conversations.has_reply(KEY)  # history is still there
    await store.conversations.reset(other.id)
    await store.conversations.reset(other.id)  # idempotent
    assert await store.history.load(other.id, 10) == []


async def test_reset_of_an_empty_conversation(store: Store) -> None:
    conversation = await store.conversations.find_or_create(KEY)
    await store.conversations.reset(conversation.id)
    await store.history.add(conversation.id, ANN, "first")
    assert [m.text for m in await store.history.load(conversation.id, 10)] == ["first"]


async def test_stored_platform_messages_are_known_by_id(store: Store) -> None:
    conversation = await store.conversations.find_or_create(KEY)
    other = await store.conversations.find_or_create(ConversationKey("slack", "T1", "C2", ""))
    hi = await store.history.add(conversation.id, ANN, "hi", platform_id="1700000000.000200")
    assert set(await store.history.known(conversation.id, ["1700000000.000200"])) == {"1700000000.000200"}
    assert await store.history.known(conversation.id, ["1700000000.000300"]) == {}
    assert await store.history.known(other.id, ["1700000000.000200"]) == {}
    assert await store.history.known(conversation.id, [""]) == {}
    old = await store.history.add(
        conversation.id, Author("B", "Parley"), "old", role="assistant", platform_id="p9"
    )
    await store.blobs.attach(old, [AttachmentRecord("a.txt"), AttachmentRecord("b.txt")])
    found = await store.history.known(conversation.id, ["1700000000.000200", "p9", "nope", ""])
    assert found == {"1700000000.000200": KnownMessage(hi, 0), "p9": KnownMessage(old, 2)}
    [stored] = [m for m in await store.history.load(conversation.id, 10) if m.id == old]
    assert (stored.role, stored.author_name, stored.status) == ("assistant", "Parley", Outcome.COMPLETE)
    many = [f"x{n}" for n in range(1200)]  # more than one IN (...) chunk
    assert await store.history.known(conversation.id, many) == {}


async def test_attachments_are_stored_with_the_message(store: Store) -> None:
    conversation = await store.conversations.find_or_create(KEY)
    digest = hashlib.sha256(b"%PDF-1.7").hexdigest()
    await store.replies.begin(
        conversation.id,
        ANN,
        "see attached",
        model="m",
        attachments=[
            AttachmentRecord("report.pdf", "application/pdf", 8, digest),
            AttachmentRecord("notes.txt", None, None),
        ],
    )
    await store.replies.begin(conversation.id, ANN, "no files", model="m")
    with_files, _, plain, _ = [m.id for m in await store.history.load(conversation.id, 10)]
    found = await stored_attachments(store, [with_files, plain])
    assert list(found) == [with_files]
    assert [(a.name, a.media_type, a.size, a.sha256) for a in found[with_files]] == [
        ("report.pdf", "application/pdf", 8, digest),
        ("notes.txt", None, None, None),
    ]
    # Only files whose bytes are kept are files a follow-up may refer to.
    assert [(a.message_id, a.name) for a in await store.blobs.files(conversation.id, 10)] == [
        (with_files, "report.pdf")
    ]


async def test_a_reset_also_ends_the_files_a_follow_up_may_refer_to(store: Store) -> None:
    conversation = await store.conversations.find_or_create(KEY)
    pdf = AttachmentRecord("report.pdf", "application/pdf", 8, hashlib.sha256(b"%PDF-1.7").hexdigest())
    await store.replies.begin(conversation.id, ANN, "see attached", model="m", attachments=[pdf])
    assert [a.name for a in await store.blobs.files(conversation.id, 10)] == ["report.pdf"]
    await store.conversations.reset(conversation.id)
    assert await store.blobs.files(conversation.id, 10) == []
    await store.replies.begin(conversation.id, ANN, "again", model="m", attachments=[pdf])
    assert [a.name for a in await store.blobs.files(conversation.id, 10)] == ["report.pdf"]


# --- replies -----------------------------------------------------------------------------------


async def test_reply_lifecycle_and_usage_row(store: Store) -> None:
    conversation = await store.conversations.find_or_create(KEY)
    reply = await store.replies.begin(
        conversation.id, ANN, "question", model="claude-sonnet-4", surface_info={"channel": "C1"}
    )
    [streaming] = await store.history.load(conversation.id, 1)
    assert streaming.status is Outcome.STREAMING and streaming.text == ""

    await store.replies.set_refs(reply, ["1.1", "1.2"], {"channel": "C1", "thread": KEY.thread})
    [recovering] = await store.replies.streaming(platform="slack")
    assert recovering.id == reply and recovering.key == KEY
    assert recovering.reply_refs == ("1.1", "1.2")
    assert recovering.surface == {"channel": "C1", "thread": KEY.thread}

    await store.replies.finish(
        reply,
        "the answer",
        Outcome.LENGTH,
        usage=Usage(input_tokens=100, output_tokens=40, thinking_tokens=7),
        author_id="U1",
        refs=["1.1", "1.2", "1.3"],
    )
    [finished] = await store.history.load(conversation.id, 1)
    assert (finished.text, finished.status, finished.model) == (
        "the answer",
        Outcome.LENGTH,
        "claude-sonnet-4",
    )
    assert await store.replies.streaming(platform="slack") == []
    totals = await store.usage.totals(user_id="U1")
    assert (totals.requests, totals.input_tokens, totals.output_tokens, totals.thinking_tokens) == (
        1,
        100,
        40,
        7,
    )
    assert totals.total_tokens == 140


async def test_finish_reply_rejects_streaming_and_unknown_ids(store: Store) -> None:
    conversation = await store.conversations.find_or_create(KEY)
    reply = await store.replies.begin(conversation.id, ANN, "q", model="m")
    with pytest.raises(ValueError, match="STREAMING"):
        await store.replies.finish(reply, "x", Outcome.STREAMING)
    with pytest.raises(StoreError, match="no reply"):
        await store.replies.finish(reply + 1000, "x", Outcome.COMPLETE)
    assert await store.usage.totals() == await store.usage.totals(model="nothing")  # no rows written


async def test_error_detail_is_stored_without_credentials(store: Store) -> None:
    conversation = await store.conversations.find_or_create(KEY)
    reply = await store.replies.begin(conversation.id, ANN, "q", model="gpt-5")
    detail = "401 from gateway: Authorization: Bearer sk-abcdefghijklmnop rejected"
    await store.replies.finish(reply, "", Outcome.ERROR, error=detail)
    async with store.engine.connect() as conn:
        stored = (await conn.exec_driver_sql(f"SELECT error, model FROM messages WHERE id = {reply}")).one()
    assert "sk-abcdefghijklmnop" not in stored.error and "401 from gateway" in stored.error
    assert stored.model == "gpt-5"
    assert clean_error("x" * 5000) == "x" * 2000
    assert clean_error("token=xoxb-123-456 and xapp-1-A-2") == "*** and ***"
    assert clean_error(None) is None


async def test_crash_recovery_marks_streaming_replies_interrupted(store: Store) -> None:
    conversation = await store.conversations.find_or_create(KEY)
    first = await store.replies.begin(conversation.id, ANN, "q1", model="m", surface_info={"refs": ["1"]})
    second = await store.replies.begin(conversation.id, ANN, "q2", model="m", surface_info={"refs": ["2"]})
    done = await store.replies.begin(conversation.id, ANN, "q3", model="m", surface_info={})
    await store.replies.finish(done, "ok", Outcome.COMPLETE)

    assert [r.id for r in await store.replies.streaming(platform="slack")] == [first, second]
    assert [r.id for r in await store.replies.streaming(platform="slack", limit=1)] == [first]
    assert await store.replies.streaming(platform="discord") == []
    assert await store.replies.mark_interrupted(first)
    assert not await store.replies.mark_interrupted(first)
    assert not await store.replies.mark_interrupted(done)  # a finished reply keeps its outcome
    assert [r.id for r in await store.replies.streaming(platform="slack")] == [second]
    statuses = {
        m.id: m.status for m in await store.history.load(conversation.id, 10) if m.role == "assistant"
    }
    assert statuses == {first: Outcome.INTERRUPTED, second: Outcome.STREAMING, done: Outcome.COMPLETE}


# --- usage -------------------------------------------------------------------------------------


async def test_usage_totals_and_by_model(store: Store) -> None:
    slack = await store.conversations.find_or_create(KEY)
    discord = await store.conversations.find_or_create(ConversationKey("discord", "G1", "C5", "T5"))
    plan = [
        (slack, "U1", "gpt-5", Usage(10, 5, 0)),
        (slack, "U2", "gpt-5", Usage(20, 10, 0)),
        (slack, "U1", "claude-sonnet-4", Usage(30, 15, 4)),
        (discord, "U1", "claude-sonnet-4", Usage(40, 20, 8)),
    ]
    for conversation, user, model, usage in plan:
        reply = await store.replies.begin(conversation.id, Author(user, user), "q", model=model)
        await store.replies.finish(reply, "ok", Outcome.COMPLETE, usage=usage, author_id=user)

    assert await store.usage.totals() == _t(4, 100, 50, 12)
    assert await store.usage.totals(user_id="U1") == _t(3, 80, 40, 12)
    assert await store.usage.totals(conversation_id=slack.id) == _t(3, 60, 30, 4)
    assert await store.usage.totals(workspace="G1") == _t(1, 40, 20, 8)
    assert await store.usage.totals(model="gpt-5") == _t(2, 30, 15, 0)
    assert await store.usage.totals(platform="discord", user_id="U1") == _t(1, 40, 20, 8)
    assert await store.usage.totals(user_id="nobody") == _t(0, 0, 0, 0)
    assert await store.usage.totals(since=datetime.now(UTC) + timedelta(minutes=1)) == _t(0, 0, 0, 0)

    by_model = await store.usage.by_model()
    assert by_model == [
        ModelTotals(2, 70, 35, 12, model="claude-sonnet-4"),
        ModelTotals(2, 30, 15, 0, model="gpt-5"),
    ]
    assert by_model[1].thinking_tokens == 0 and by_model[0].total_tokens == 105
    assert [m.model for m in await store.usage.by_model(workspace="G1")] == ["claude-sonnet-4"]


def _t(requests: int, inp: int, out: int, thinking: int) -> Totals:
    return Totals(requests, inp, out, thinking)


# --- blobs, events, health ---------------------------------------------------------------------


async def test_blobs_are_content_addressed(store: Store) -> None:
    data = bytes(range(256)) * 100
    digest = hashlib.sha256(data).hexdigest()
    assert await store.blobs.get(digest) is None
    assert not await store.blobs.exists(digest)
    await store.blobs.put(digest, data)
    await store.blobs.put(digest, data, extracted_text="page one")  # again: only adds the text
    await store.blobs.put(digest, data, extracted_text="ignored: text is already there")
    blob = await store.blobs.get(digest)
    assert blob is not None
    assert (blob.data, blob.size, blob.extracted_text) == (data, len(data), "page one")
    assert blob.created_at.tzinfo is UTC
    assert await store.blobs.exists(digest)
    other = b"other bytes"
    other_digest = hashlib.sha256(other).hexdigest()
    await store.blobs.put(other_digest, other)
    assert await store.blobs.text(other_digest) is None
    await store.blobs.add_text(other_digest, "extracted later")
    await store.blobs.add_text(other_digest, "never replaces it")
    assert await store.blobs.text(other_digest) == "extracted later"
    with pytest.raises(ValueError, match="sha256"):
        await store.blobs.put("0" * 64, data)


async def test_claim_event_once_then_done(store: Store) -> None:
    assert await store.events.claim("slack", "Ev1", "instance-a")
    assert not await store.events.claim("slack", "Ev1", "instance-b")
    assert not await store.events.claim("slack", "Ev1", "instance-a")  # a redelivery to the same owner
    assert await store.events.claim("discord", "Ev1", "instance-b")  # event ids are per platform
    await store.events.done("slack", "Ev1")
    assert not await store.events.claim("slack", "Ev1", "instance-b", lease_seconds=0)


async def test_claim_event_lease_expiry_lets_another_owner_take_over(store: Store) -> None:
    assert await store.events.claim("slack", "Ev2", "crashed")
    assert not await store.events.claim("slack", "Ev2", "survivor", lease_seconds=300)
    assert await store.events.claim("slack", "Ev2", "survivor", lease_seconds=0)  # the claim has expired
    assert not await store.events.claim("slack", "Ev2", "third", lease_seconds=300)  # the new claim is fresh


async def test_release_and_prune_events(store: Store) -> None:
    assert await store.events.claim("slack", "Ev3", "a")
    await store.events.release("slack", "Ev3", "someone-else")  # not theirs to release
    assert not await store.events.claim("slack", "Ev3", "b")
    await store.events.release("slack", "Ev3", "a")
    assert await store.events.claim("slack", "Ev3", "b")
    await store.events.done("slack", "Ev3")
    assert await store.events.claim("slack", "Ev4", "b")  # still claimed: never pruned
    assert await store.events.prune(datetime.now(UTC) - timedelta(hours=1)) == 0
    assert await store.events.prune(datetime.now(UTC) + timedelta(seconds=1)) == 1
    assert await store.events.claim("slack", "Ev3", "c")  # forgotten, so claimable again
    assert not await store.events.claim("slack", "Ev4", "c")


async def test_ping_and_statement_counter(store: Store) -> None:
    before = store.statements
    await store.ping()
    assert store.statements == before + 1


async def test_a_turns_store_calls_take_few_statements(store: Store) -> None:
    """The statements a turn in a new conversation sends (transaction control not counted): the
    create inserts first, the usage row is filled from the reply's row in the same statement."""
    counts: list[int] = []

    def step() -> None:
        counts.append(store.statements - sum(counts) - start)

    start = store.statements
    assert await store.events.claim("slack", "Ev9", "c")
    step()
    conversation = await store.conversations.find_or_create(KEY)  # a read that finds none, an insert
    step()
    await store.conversations.overrides(KEY)
    await store.history.load(conversation.id, 50)
    step()
    reply = await store.replies.begin(conversation.id, ANN, "q", model="m", event=("slack", "Ev9"))
    step()
    await store.replies.finish(reply, "a", Outcome.COMPLETE, usage=Usage(3, 4), author_id="U1")
    step()
    assert counts == [1, 2, 2, 4, 2]
    assert (await store.conversations.find_or_create(KEY)).id == conversation.id
    totals = await store.usage.totals(user_id="U1")
    assert (totals.requests, totals.input_tokens, totals.output_tokens) == (1, 3, 4)
    assert (await store.usage.by_model())[0].model == "m"
