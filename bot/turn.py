"""One turn: a message in, a streamed and stored reply out, in four named steps.

- **prepare** — the message made safe (hygiene), its conversation and the overrides in force, the
  thread's context stored, its files read, and the request built; or, for a turn that needs no
  model (a bare mention, only unusable files, shutdown under way), its whole reply.
- **begin** — the placeholder, the reply row and the model's request go out at once: the request
  leaves while the placeholder is posted and the row written, so a post held back by the
  platform's budget never holds back the model.
- **generate** — wait for the answer within ``PARLEY_REPLY_TIMEOUT`` (with tools, the whole loop of
  model requests and tool calls: ``bot/generation.py``); Stop, shutdown and the timeout each end
  it with their own outcome.
- **finish** — pictures the tools made stored and added to the reply, the final edit (with a note
  when the answer did not end normally), stale messages removed, the row stored with its tool
  steps and usage, and the one report line.

The service (``bot/service.py``) runs each turn after claiming its event and queueing it behind
the conversation's earlier turns.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from bot import notes as say
from bot import pictures
from bot.feedback import last_message, offer
from bot.files import PreparedFiles
from bot.generation import Generation, generate
from bot.hygiene import tidy
from bot.live import LiveReplies, LiveReply
from bot.notes import with_note
from bot.providers.base import ChatRequest, Provider
from bot.providers.errors import ProviderError
from bot.render import Pacer, ReplyStream
from bot.render.surface import Deletable, Recoverable, ReplySurface
from bot.reporting import ReplyObserver, ReplyReport, error_detail, report, since
from bot.request import Question, build, history_rows, stored
from bot.settings import Settings
from bot.short_replies import failed_before_reply, without_model
from bot.store import AttachmentRecord, Store, StoreError
from bot.tool_loop import Tools, ToolUse
from bot.types import Attachment, ContextMessage, IncomingMessage, Outcome, ReplyResult

log = logging.getLogger("parley.conversation")


class ProviderSource(Protocol):
    def provider_for(self, model: str) -> Provider: ...


class FilePipeline(Protocol):
    """Turns attachments into the parts the model receives, plus notes for the user.

    Called on every turn, with or without attachments: files from earlier in the conversation
    (and on ``context`` messages, already stored by the backfill) are re-sent on follow-ups.
    """

    async def prepare(
        self,
        conversation_id: int,
        attachments: Sequence[Attachment],
        model: str,
        *,
        question: str,
        context: Sequence[ContextMessage] = (),
    ) -> PreparedFiles:
        """Parts, notes for the user, the question (possibly replaced, e.g. "summarize"), the
        attachment records to store with the user message, and the earlier files."""
        ...


class TurnHost(Protocol):
    """What a turn needs from the service that runs it."""

    settings: Settings
    store: Store
    providers: ProviderSource
    pacer: Pacer
    files: FilePipeline | None
    instance_id: str
    observer: ReplyObserver | None
    live: LiveReplies
    tools: Tools | None  # what the model may call (None: nothing)

    @property
    def accepting(self) -> bool: ...


@dataclass(frozen=True, slots=True)
class Plan:
    """A prepared turn."""

    msg: IncomingMessage  # cleaned and trimmed
    conversation_id: int
    model: str
    question: str  # as stored with the reply
    records: Sequence[AttachmentRecord]  # stored with the question
    prefix: str  # notes shown before the answer
    request: ChatRequest | None = None  # with its provider, when the model is asked
    provider: Provider | None = None
    whole_reply: Generation | None = None  # when it is not
    tools: Tools | None = None  # when the request offers any


@dataclass(frozen=True, slots=True)
class Started:
    """A turn whose reply row is written and whose first message is up."""

    reply_id: int
    info: dict[str, Any]  # what the row keeps for recovery


class Turn:
    def __init__(self, host: TurnHost, msg: IncomingMessage) -> None:
        self._host = host
        self._msg = msg
        self._model = msg.model or host.settings.parley_model  # until the overrides are read

    async def run(self) -> ReplyResult:
        host = self._host
        arrived = time.monotonic()
        msg, length = tidy(self._msg, host.settings.parley_max_input_chars)
        stream = host.pacer.reply(msg.surface, platform=msg.key.platform)
        placeholder = asyncio.create_task(stream.start())
        try:
            plan = await self._prepare(msg, length)
        except Exception as exc:
            return await failed_before_reply(
                host.store, host.instance_id, msg, stream, placeholder, self._model, exc
            )
        live = LiveReply(msg.key, msg.author.id, stream)
        # Counted in flight until its row is stored: the final edit and the store write too.
        number = host.live.add(live)
        try:
            generation = plan.whole_reply or Generation()
            deadline = time.monotonic() + host.settings.parley_reply_timeout
            started = await self._begin(plan, live, generation, placeholder, deadline)
            if isinstance(started, ReplyResult):
                return started
            await self._generate(live, generation, deadline)
            return await self._finish(plan, live, generation, started, arrived)
        finally:
            if live.task is not None and not live.task.done():
                live.task.cancel()  # only when the turn itself failed or was cancelled early
            host.live.remove(number)

    # -- the steps -------------------------------------------------------------------------------

    async def _prepare(self, msg: IncomingMessage, length: int) -> Plan:
        host, settings = self._host, self._host.settings
        conversation = await host.store.conversations.find_or_create(msg.key)
        overrides = await host.store.conversations.overrides(msg.key)
        self._model = model = msg.model or overrides.model or settings.parley_model
        await _backfill(host.store, conversation.id, msg)
        files = PreparedFiles(question=msg.text)
        if host.files is not None:
            files = await host.files.prepare(
                conversation.id, msg.attachments, model, question=msg.text, context=msg.context
            )
        notes = list(files.notes)
        limit = settings.parley_max_input_chars
        if length > limit:
            notes.insert(0, say.trimmed(length, limit))
        prefix = "".join(f"{note}\n\n" for note in notes)
        whole_reply = without_model(files, host.accepting)
        if whole_reply is not None:
            if files.nothing_to_ask:
                prefix = prefix.rstrip()  # the notes are the whole reply
            return Plan(
                msg, conversation.id, model, files.question, files.records, prefix, whole_reply=whole_reply
            )
        history = await host.store.history.load(conversation.id, history_rows(settings))
        question = Question(msg.key.platform, msg.author.name, files.question, model)
        specs = host.tools.specs() if host.tools is not None else ()
        last = settings.parley_tool_steps <= 1
        request = build(settings, question, overrides, history, files, tools=specs, last_step=last)
        provider = host.providers.provider_for(model)
        tools = host.tools if specs else None
        return Plan(
            msg, conversation.id, model, files.question, files.records, prefix, request, provider, tools=tools
        )

    async def _begin(
        self,
        plan: Plan,
        live: LiveReply,
        generation: Generation,
        placeholder: asyncio.Task[None],
        deadline: float,
    ) -> Started | ReplyResult:
        host, msg = self._host, plan.msg
        sink = ReplySink(host.store, live.stream, plan.prefix)
        if plan.provider is not None and plan.request is not None:
            # The request goes out now, while the placeholder is posted and the row written: in
            # a channel out of posts the model has been answering meanwhile, and the renderer
            # shows the text that came in the first post instead of the placeholder.
            show_thinking = host.settings.parley_show_thinking
            tools = None
            if plan.tools is not None:
                # Every call is on behalf of the asking user, admitted like the message itself.
                steps = host.settings.parley_tool_steps
                tools = ToolUse(plan.tools, msg.key, msg.author, steps, deadline)
            live.task = asyncio.create_task(
                generate(
                    plan.provider,
                    plan.request,
                    sink,
                    show_thinking=show_thinking,
                    into=generation,
                    tools=tools,
                )
            )
        try:
            info = self._surface_info(live.stream, msg.surface)
            reply_id = await host.store.replies.begin(
                plan.conversation_id,
                msg.author,
                plan.question,
                model=plan.model if plan.whole_reply is None else "",  # no model said it
                surface_info=info,
                platform_id=msg.platform_message_id,
                attachments=plan.records,
                event=(msg.key.platform, msg.event_id),
            )
        except Exception as exc:
            await live.cancel()
            return await failed_before_reply(
                host.store, host.instance_id, msg, live.stream, placeholder, plan.model, exc
            )
        # From here a crash leaves a "streaming" row that recovery closes; a retried delivery
        # must not answer a second time.
        live.reply_id = reply_id
        sink.attach(reply_id, info)
        if host.observer is not None:
            host.observer.reply_started(msg.key.platform, plan.model)
        try:
            await placeholder
        except Exception as exc:
            log.error("could not post a placeholder for %s: %s", msg.key, exc)
            await live.cancel()
            await host.store.replies.finish(
                reply_id, text="", outcome=Outcome.ERROR, error=error_detail(exc), author_id=msg.author.id
            )
            return ReplyResult(Outcome.ERROR, "", "", plan.model, error=str(exc))
        # The row was written before the first message was up: store where it is now. Until
        # then a crash leaves a row without refs, which recovery closes without an edit.
        await sink.save()
        return Started(reply_id, info)

    async def _generate(self, live: LiveReply, generation: Generation, deadline: float) -> None:
        task = live.task
        if task is None:
            return
        try:
            # asyncio.wait never cancels the task itself: a cancelled handler only stops waiting.
            done, _ = await asyncio.wait([task], timeout=max(0.0, deadline - time.monotonic()))
            if not done:
                log.warning("reply in %s passed PARLEY_REPLY_TIMEOUT; cutting it off", live.key)
                live.time_out()
                await asyncio.wait([task])
        except asyncio.CancelledError:
            # Our own handler was cancelled (shutdown): interrupt the generation too.
            live.interrupt()
            await asyncio.wait([task])
        if task.cancelled():
            if live.timed_out:
                generation.outcome = Outcome.TRUNCATED
            else:
                generation.outcome = Outcome.INTERRUPTED if live.interrupted else Outcome.STOPPED

    async def _finish(
        self, plan: Plan, live: LiveReply, generation: Generation, started: Started, arrived: float
    ) -> ReplyResult:
        host, msg, stream = self._host, plan.msg, live.stream
        await msg.surface.set_status(None)
        if generation.files:
            await pictures.keep(host.store, started.reply_id, generation.files)
        extra = [*await pictures.show(msg.surface, generation.files), *filter(None, [generation.note])]
        error_text = _error_text(generation.error)
        shown = _final_text(plan.prefix, generation, error_text, timed_out=live.timed_out, extra=extra)
        # An answer's final edit swaps its Stop button for the feedback buttons.
        rated = host.settings.parley_feedback and plan.request is not None and bool(generation.answer.strip())
        offer(msg.surface, started.reply_id, last_message(stream), enabled=rated)
        await stream.finish(shown)
        await _drop_abandoned(stream, msg.surface)
        refs = list(stream.refs)
        await host.store.replies.finish(
            started.reply_id,
            text=generation.answer,
            outcome=generation.outcome,
            usage=generation.usage,
            error=error_detail(generation.error) or ("reply timeout" if live.timed_out else None),
            author_id=msg.author.id,
            refs=refs,
            surface_info={**started.info, "refs": refs},
            tool_steps=stored(generation.steps),
            images=generation.images,
        )
        figures = ReplyReport(
            conversation_id=plan.conversation_id,
            key=msg.key,
            model=plan.model,
            outcome=generation.outcome,
            usage=generation.usage,
            first_token=since(arrived, generation.first_token_at),
            first_visible=since(arrived, stream.first_text_at),
            total=time.monotonic() - arrived,
        )
        report(host.observer, figures)
        return ReplyResult(
            generation.outcome, generation.answer, shown, plan.model, generation.usage, error_text
        )

    def _surface_info(self, stream: ReplyStream, surface: ReplySurface) -> dict[str, Any]:
        """What the reply row keeps so that a later process can close it after a crash."""
        info: dict[str, Any] = {"refs": list(stream.refs), "process": self._host.instance_id}
        if self._host.settings.parley_instance_id:
            info["instance"] = self._host.settings.parley_instance_id
        if isinstance(surface, Recoverable):
            try:
                info["surface"] = surface.describe()
            except Exception:
                log.exception("surface.describe() failed")
        return info


class ReplySink:
    """Where a generation's text goes: the live reply, after the turn's notes. And as the reply
    continues in a new message (or its first is posted after its row was written), the refs go
    into its row, so that recovery after a crash finds its last message (the one showing Stop)."""

    def __init__(self, store: Store, stream: ReplyStream, prefix: str) -> None:
        self._store = store
        self._stream = stream
        self._prefix = prefix
        self._reply_id: int | None = None  # nothing to save into before the row exists
        self._info: dict[str, Any] = {}
        self._saved = 0

    def show(self, text: str) -> None:
        self._stream.update(self._prefix + text)

    async def checkpoint(self) -> None:
        if self._due():
            await self.save()

    def attach(self, reply_id: int, info: dict[str, Any]) -> None:
        """The row now exists, with ``info`` (and the refs in it) stored."""
        self._reply_id = reply_id
        self._info = info
        self._saved = len(info.get("refs") or ())

    async def save(self) -> None:
        if self._reply_id is None or not self._due():
            return
        refs = list(self._stream.refs)
        self._saved = len(refs)  # before the write, so a concurrent caller does not write it again
        try:
            await self._store.replies.set_refs(self._reply_id, refs, {**self._info, "refs": refs})
        except StoreError as exc:
            log.warning("could not store the reply's new message: %s", exc)

    def _due(self) -> bool:
        return self._reply_id is not None and self._stream.message_count > self._saved


async def _backfill(store: Store, conversation_id: int, msg: IncomingMessage) -> None:
    """Store the platform context (thread history, reply chain) not already stored."""
    if not msg.context:
        return
    known = await store.history.known(conversation_id, [c.platform_id for c in msg.context])
    for item in msg.context:
        if item.platform_id and (item.platform_id in known or item.platform_id == msg.platform_message_id):
            continue
        await store.history.add(
            conversation_id,
            item.author,
            item.text,
            role="assistant" if item.from_assistant else "user",
            platform_id=item.platform_id,
        )


def _error_text(error: Exception | None) -> str | None:
    """What the user is told about the error that ended the answer, if one did."""
    if error is None:
        return None
    return error.user_message if isinstance(error, ProviderError) else say.FAILED


def _final_text(
    prefix: str, generation: Generation, error_text: str | None, *, timed_out: bool, extra: Sequence[str] = ()
) -> str:
    """The reply as it finally shows: the notes, the answer, ``extra`` notes about it (pictures),
    and a note when it did not end well."""
    text = generation.answer
    if extra:
        text = "\n\n".join(part for part in (text.rstrip(), *extra) if part)
    if timed_out:
        return f"{(prefix + text).rstrip()}\n\n{say.TOO_SLOW_NOTE}".lstrip()
    return with_note(prefix + text, generation.outcome, error_text)


async def _drop_abandoned(stream: ReplyStream, surface: ReplySurface) -> None:
    """Delete messages the renderer replaced after their edits kept failing (stale copies)."""
    if not stream.abandoned_refs or not isinstance(surface, Deletable):
        return
    for ref in stream.abandoned_refs:
        try:
            await surface.delete(ref)
        except Exception as exc:
            log.warning("could not delete the abandoned message %s: %r", ref, exc)
