"""Replies that are not answers, in one place: the database is down, a turn over a limit ("busy"),
a bare mention, only unusable files, a turn that came after shutdown began, and a turn that
failed before its reply started. Each is short, honest, and never leaves a placeholder up."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from bot import notes as say
from bot.files import PreparedFiles
from bot.generation import Generation
from bot.hygiene import clean_author, question
from bot.limits import Refusal
from bot.render import Pacer, ReplyStream
from bot.render.surface import ReplySurface
from bot.settings import Settings
from bot.store import Store, StoreError
from bot.types import IncomingMessage, Outcome, ReplyResult

log = logging.getLogger("parley.conversation")


async def post(pacer: Pacer, surface: ReplySurface, text: str, platform: str) -> str:
    """Post one short finished message, paced like any reply; returns what was shown."""
    try:
        stream = pacer.reply(surface, platform=platform)
        await stream.finish(text)
    except Exception as exc:
        log.error("could not post a short reply: %r", exc)
        return ""
    return "" if stream.failed else text


async def database_down(pacer: Pacer, msg: IncomingMessage, exc: StoreError) -> ReplyResult:
    """The event could not even be claimed: without the store there is no exactly-once and no
    history, so say so rather than guess."""
    log.error("cannot take %s on %s: %s", msg.event_id, msg.key.platform, exc)
    shown = await post(pacer, msg.surface, say.DATABASE_DOWN, msg.key.platform)
    return ReplyResult(Outcome.ERROR, "", shown, "", error=say.DATABASE_DOWN)


async def refuse(
    store: Store, pacer: Pacer, settings: Settings, instance_id: str, msg: IncomingMessage, refusal: Refusal
) -> ReplyResult | None:
    """A turn over a limit: a polite "busy" reply, stored with the question like any turn (a bot
    over the loop breaker's limit gets none)."""
    platform = msg.key.platform
    if refusal is Refusal.BOT_LOOP:
        log.warning("not answering bot %s in %s again this minute (loop breaker)", msg.author.id, msg.key)
        await store.events.done(platform, msg.event_id)
        return None
    text = say.BUSY[refusal.value]
    log.info("turn in %s from %s refused: %s", msg.key, msg.author.id, refusal.value)
    asked, _ = question(msg, settings.parley_max_input_chars)
    # "process" keeps this process's recovery sweep off the row while the note is posted.
    info = {"refs": [], "busy": refusal.value, "process": instance_id}
    conversation = await store.conversations.find_or_create(msg.key)
    reply_id = await store.replies.begin(
        conversation.id,
        clean_author(msg.author),
        asked,
        model="",
        surface_info=info,
        platform_id=msg.platform_message_id,
        event=(platform, msg.event_id),
    )
    shown = await post(pacer, msg.surface, text, platform)
    await store.replies.finish(reply_id, text=text, outcome=Outcome.COMPLETE, author_id=msg.author.id)
    return ReplyResult(Outcome.COMPLETE, text, shown, "")


def without_model(files: PreparedFiles, accepting: bool) -> Generation | None:
    """The whole reply of a turn that asks no model; None when the model is to be asked."""
    if files.nothing_to_ask:
        # Only unusable files and no question: the notes are the whole reply.
        return Generation(outcome=Outcome.COMPLETE)
    if not files.question.strip() and not files.parts:
        # A bare mention: a short hint, not a guess at what was meant.
        return Generation(answer=say.MENTION_ONLY, outcome=Outcome.COMPLETE)
    if not accepting:
        # Its turn came after shutdown interrupted the replies: say so rather than start one.
        return Generation(outcome=Outcome.INTERRUPTED)
    return None


async def failed_before_reply(
    store: Store,
    instance_id: str,
    msg: IncomingMessage,
    stream: ReplyStream,
    placeholder: asyncio.Task[None],
    model: str,
    exc: Exception,
) -> ReplyResult:
    """The store (or a bug) failed before the reply started: never leave the placeholder up."""
    trace = not isinstance(exc, StoreError)
    log.error("turn in %s failed before its reply: %r", msg.key, exc, exc_info=trace)
    text = say.DATABASE_DOWN if isinstance(exc, StoreError) else f"⚠️ {say.FAILED}"
    with contextlib.suppress(Exception):
        await placeholder
    shown = ""
    if stream.refs:
        await stream.finish(text)
        shown = "" if stream.failed else text
    if not shown:
        # Nothing was shown: give the claim back, so a redelivery can answer.
        with contextlib.suppress(Exception):
            await store.events.release(msg.key.platform, msg.event_id, instance_id)
    return ReplyResult(Outcome.ERROR, "", shown, model, error=text)
