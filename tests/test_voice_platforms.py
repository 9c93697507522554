"""Voice notes and documents through the real platform clients: discord.py and slack-bolt against
the loopback fakes, the real file pipeline, and the fake gateway's transcription route.

What a user sends is what the platforms send: a Discord voice message (flag IS_VOICE_MESSAGE, no
text, one Ogg/Opus attachment on the CDN), a Slack audio clip (``subtype: "slack_audio"`` in a
``file_share`` message), an uploaded recording or DOCX. Each test follows the bytes: downloaded
from the platform's file host, sent byte-exact to ``/v1/audio/transcriptions``, the words asked
as the user's question, the answer in the platform's timeline.
"""

from __future__ import annotations

from pathlib import Path

from bot.types import ConversationKey
from tests.audio_helpers import m4a, ogg_opus, webm
from tests.discord_harness import DiscordBench, discord_bench
from tests.document_helpers import SENTENCE, docx
from tests.fakes.discord import Overwrite, Perm
from tests.fakes.slack_api import DEFAULT_CHANNEL, DEFAULT_DM
from tests.files_turns import sent_texts
from tests.slack_harness import slack_bench

QUESTION = "What did the board decide about the harbour budget?"
NO_WORDS = "I couldn't hear any words in {name}."
DOCX_TYPE = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"


async def stored_texts(bench: DiscordBench, key: ConversationKey) -> list[str]:
    store = bench.runtime.store
    conversation = await store.conversations.find(key)
    assert conversation is not None, f"no conversation {key}"
    return [m.text for m in await store.history.load(conversation.id, 100)]


# --- Discord -------------------------------------------------------------------------------------


async def test_a_discord_voice_message_in_a_dm_is_transcribed_and_answered(tmp_path: Path) -> None:
    async with discord_bench(tmp_path, real_files=True) as bench:
        fd, gw = bench.fd, bench.gw
        gw.transcript = QUESTION
        dm = fd.create_dm(bench.alice)
        note = ogg_opus(7)

        # No text and no mention: in a DM, the voice message alone is the question.
        sent = await fd.user_sends_voice(dm, bench.alice, note, duration_secs=7)
        await bench.settle(answered=1)

        (heard,) = gw.transcriptions
        assert heard.data == note  # byte-exact, as the CDN served it
        assert (heard.filename, heard.content_type, heard.model) == (
            "voice-message.ogg",
            "audio/ogg",
            "whisper-1",
        )
        assert fd.attachment_downloads[sent.attachments[0].id] == 1
        assert sent_texts(gw)[-1] == QUESTION  # the words are the user's turn
        assert bench.reply_text(dm) == f"You said: {QUESTION}"
        key = ConversationKey("discord", "", str(dm.id), "")
        assert QUESTION in await stored_texts(bench, key)  # the history reads as text


async def test_a_discord_voice_message_in_a_followed_thread_is_answered_there(tmp_path: Path) -> None:
    async with discord_bench(tmp_path, real_files=True) as bench:
        fd, gw = bench.fd, bench.gw
        question = await bench.mention(bench.channel, bench.alice, "Minutes of the harbour board, please.")
        await bench.settle(answered=1)
        thread = bench.thread_of(question)

        gw.transcript = QUESTION
        note = ogg_opus(4, seed=11)
        await fd.user_sends_voice(thread, bench.alice, note, duration_secs=4)
        await bench.settle(answered=2)
        assert gw.transcriptions[-1].data == note
        assert sent_texts(gw)[-1] == QUESTION
        assert bench.replies(thread)[-1].content == f"You said: {QUESTION}"

        # A recording with no words: one sentence, and the model is not asked.
        gw.transcript = ""
        chats = len(gw.stream_requests)
        await fd.user_sends_voice(thread, bench.alice, ogg_opus(2, seed=12), duration_secs=2)
        await bench.settle(answered=3)
        assert len(gw.transcriptions) == 2 and len(gw.stream_requests) == chats
        assert bench.replies(thread)[-1].content == NO_WORDS.format(name="voice-message.ogg")


async def test_a_discord_voice_reply_to_parley_counts_as_a_mention(tmp_path: Path) -> None:
    # A voice message can carry no text, so no <@mention>; a reply to Parley's message pings it.
    env = {"PARLEY_REQUIRE_MENTION": "true"}
    async with discord_bench(tmp_path, real_files=True, env=env) as bench:
        fd, gw = bench.fd, bench.gw
        question = await bench.mention(bench.channel, bench.alice, "Minutes of the harbour board, please.")
        await bench.settle(answered=1)
        thread = bench.thread_of(question)
        (answer,) = bench.replies(thread)

        ignored = await fd.user_sends_voice(thread, bench.alice, ogg_opus(3, seed=21))
        await bench.settle()
        assert len(bench.replies(thread)) == 1  # mentions are required here: not for Parley
        assert fd.attachment_downloads[ignored.attachments[0].id] == 0 and gw.transcriptions == []

        gw.transcript = QUESTION
        note = ogg_opus(3, seed=22)
        await fd.user_sends_voice(thread, bench.alice, note, reference=answer)
        await bench.settle(answered=2)
        assert [t.data for t in gw.transcriptions] == [note]
        assert bench.replies(thread)[-1].content == f"You said: {QUESTION}"


async def test_a_discord_voice_message_nobody_addressed_is_not_downloaded(tmp_path: Path) -> None:
    async with discord_bench(tmp_path, real_files=True) as bench:
        fd = bench.fd
        sent = await fd.user_sends_voice(bench.channel, bench.bob, ogg_opus(3))
        await bench.settle()
        assert bench.adapter.events.ignored == 1
        assert fd.attachment_downloads[sent.attachments[0].id] == 0
        assert bench.gw.requests == [] and bench.replies(bench.channel) == []


async def test_a_discord_voice_reply_in_a_channel_without_threads_is_answered_in_the_channel(
    tmp_path: Path,
) -> None:
    async with discord_bench(tmp_path, real_files=True) as bench:
        fd, gw = bench.fd, bench.gw
        # Parley may post here but not open threads: it answers a mention as a reply in the channel.
        no_threads = Overwrite(bench.guild.id, 0, deny=Perm.CREATE_PUBLIC_THREADS)
        channel = fd.create_channel(bench.guild, "announcements", overwrites=[no_threads])
        await bench.mention(channel, bench.alice, "hello")
        await bench.settle(answered=1)
        (answer,) = bench.replies(channel)

        gw.transcript = QUESTION
        sent = await fd.user_sends_voice(channel, bench.alice, ogg_opus(3), reference=answer)
        await bench.settle(answered=2)
        reply = bench.replies(channel)[-1]
        assert reply.content == f"You said: {QUESTION}"
        assert reply.reference is not None and reply.reference["message_id"] == str(sent.id)


async def test_a_discord_voice_reply_to_parley_in_a_channel_opens_a_thread_named_for_it(
    tmp_path: Path,
) -> None:
    async with discord_bench(tmp_path, real_files=True) as bench:
        fd, gw = bench.fd, bench.gw
        # One of Parley's messages in the channel itself (from before it could open threads here).
        earlier = await fd.user_says(bench.channel, fd.bot, "The harbour board meets on Monday.")
        gw.transcript = QUESTION
        sent = await fd.user_sends_voice(bench.channel, bench.alice, ogg_opus(3), reference=earlier)
        await bench.settle(answered=1)
        thread = bench.thread_of(sent)
        assert thread.name == "Voice message"  # no words to name it from until it is transcribed
        # The fake model echoes the user turn: Parley's message replied to, then the words.
        echoed = bench.reply_text(thread)
        assert "The harbour board meets on Monday." in echoed and echoed.endswith(QUESTION)


async def test_a_docx_on_discord_reaches_the_model_and_names_the_thread(tmp_path: Path) -> None:
    async with discord_bench(tmp_path, real_files=True) as bench:
        fd, gw = bench.fd, bench.gw
        report = docx()
        attachment = fd.add_file("report.docx", report, DOCX_TYPE)
        question = await bench.mention(bench.channel, bench.alice, "", attachments=[attachment])
        await bench.settle(answered=1)

        # One user turn (the OpenAI format's plain string): the document's text, then the question.
        (turn,) = sent_texts(gw)
        assert turn.startswith("Text of report.docx (as Markdown; images not included):\n```\n")
        assert SENTENCE in turn and turn.endswith("```\n\n\nSummarize this document.")
        thread = bench.thread_of(question)
        assert thread.name == "report.docx"  # not a placeholder: the thread list shows what it is about
        assert bench.reply_text(thread).startswith("Summary of report.docx:")


# --- Slack ---------------------------------------------------------------------------------------


async def test_a_slack_audio_clip_in_a_dm_is_transcribed_and_answered(tmp_path: Path) -> None:
    async with slack_bench(tmp_path, real_files=True) as bench:
        fs, gw = bench.fs, bench.gw
        gw.transcript = QUESTION
        clip_bytes = m4a(3000)
        clip = fs.audio_clip(clip_bytes, duration_ms=4200, recorded_on="mobile")

        event = fs.dm_message("", files=[clip])  # subtype file_share, no text
        assert event["subtype"] == "file_share" and event["files"][0]["subtype"] == "slack_audio"
        await bench.deliver(event)
        # Slack's agent experience: a message in the Messages tab is answered in its own thread.
        (reply,) = await bench.reply_in(DEFAULT_DM, event["ts"])

        (heard,) = gw.transcriptions
        assert heard.data == clip_bytes
        assert (heard.filename, heard.content_type) == ("audio_message.m4a", "audio/mp4")
        assert [d.authorized for d in fs.file_downloads] == [True]  # with the bot token
        assert sent_texts(gw)[-1] == QUESTION
        assert fs.visible_text(DEFAULT_DM, reply.ts) == f"You said: {QUESTION}"
        key = ConversationKey("slack", fs.identity.team_id, DEFAULT_DM, event["ts"])
        assert QUESTION in [m.text for m in await bench.stored(key)]

        # A later change to the message (message_changed) is not a second question.
        await bench.deliver(fs.edit_user_message(DEFAULT_DM, event["ts"], ""))
        await bench.settle()
        assert len(bench.bot_messages(DEFAULT_DM, event["ts"])) == 1 and len(gw.transcriptions) == 1


async def test_a_slack_audio_clip_in_a_followed_thread_and_one_without_words(tmp_path: Path) -> None:
    async with slack_bench(tmp_path, real_files=True) as bench:
        fs, gw = bench.fs, bench.gw
        first = fs.app_mention("Minutes of the harbour board, please.")
        await bench.deliver(first)
        await bench.reply_in(DEFAULT_CHANNEL, first["ts"])

        gw.transcript = QUESTION
        recording = webm(6.5)
        clip = fs.audio_clip(recording, duration_ms=6500, recorded_on="desktop")
        await bench.deliver(fs.channel_message("", thread_ts=first["ts"], files=[clip]))
        replies = await bench.reply_in(DEFAULT_CHANNEL, first["ts"], count=2)
        assert gw.transcriptions[-1].data == recording
        assert gw.transcriptions[-1].filename == "audio_message.webm"
        assert fs.visible_text(DEFAULT_CHANNEL, replies[-1].ts) == f"You said: {QUESTION}"

        gw.transcript = "   "
        chats = len(gw.stream_requests)
        silent = fs.audio_clip(ogg_opus(2), duration_ms=2000)
        await bench.deliver(fs.channel_message("", thread_ts=first["ts"], files=[silent]))
        replies = await bench.reply_in(DEFAULT_CHANNEL, first["ts"], count=3)
        assert len(gw.stream_requests) == chats  # no model call
        assert fs.visible_text(DEFAULT_CHANNEL, replies[-1].ts) == NO_WORDS.format(name="audio_message.m4a")


async def test_an_uploaded_recording_with_a_mention_is_asked_after_the_typed_text(tmp_path: Path) -> None:
    async with slack_bench(tmp_path, real_files=True) as bench:
        fs, gw = bench.fs, bench.gw
        gw.transcript = QUESTION
        recording = m4a(5000)
        upload = fs.add_file(recording, "board meeting.m4a", mimetype="audio/mp4", filetype="m4a")
        event = fs.app_mention("Quick one from the meeting:", files=[upload])
        await bench.deliver(event)
        (reply,) = await bench.reply_in(DEFAULT_CHANNEL, event["ts"])

        (heard,) = gw.transcriptions
        assert (heard.data, heard.filename) == (recording, "board_meeting.m4a")
        asked = f"Quick one from the meeting:\n\n{QUESTION}"
        assert sent_texts(gw)[-1] == asked
        assert fs.visible_text(DEFAULT_CHANNEL, reply.ts) == f"You said: {asked}"


async def test_a_slack_clip_nobody_addressed_is_not_downloaded(tmp_path: Path) -> None:
    async with slack_bench(tmp_path, real_files=True) as bench:
        fs = bench.fs
        clip = fs.audio_clip(m4a(), duration_ms=3000)
        await bench.deliver(fs.channel_message("", files=[clip]))
        await bench.settle()
        assert bench.adapter.ws.stats.ignored == 1
        assert fs.file_downloads == [] and bench.gw.requests == []


async def test_a_docx_on_slack_reaches_the_model(tmp_path: Path) -> None:
    async with slack_bench(tmp_path, real_files=True) as bench:
        fs, gw = bench.fs, bench.gw
        upload = fs.add_file(docx(), "report.docx", mimetype=DOCX_TYPE, filetype="docx")
        event = fs.app_mention("What opens at dawn?", files=[upload])
        await bench.deliver(event)
        (reply,) = await bench.reply_in(DEFAULT_CHANNEL, event["ts"])

        (turn,) = sent_texts(gw)
        assert turn.startswith("Text of report.docx (as Markdown; images not included):\n```\n")
        assert SENTENCE in turn and turn.endswith("```\n\n\nWhat opens at dawn?")
        assert fs.visible_text(DEFAULT_CHANNEL, reply.ts).endswith("What opens at dawn?")  # the echo
