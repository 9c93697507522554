"""The conversation service: one incoming message in, one streamed and stored reply out.

Adapters call :meth:`ConversationService.handle` with a neutral message; the service de-duplicates
the event, waits its turn in the conversation, builds the prompt from the store, streams the
model's answer through the shared renderer and stores the outcome. It never raises to the
adapter: every failure ends as an honest note in the reply.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from bot.files import PreparedFiles
from bot.notes import with_note
from bot.prompt import HistoryEntry, build_turns, system_prompt
from bot.providers.base import (
    ChatRequest,
    Finish,
    Part,
    Provider,
    TextDelta,
    ThinkingDelta,
    Usage,
    UsageReport,
)
from bot.providers.errors import ProviderError
from bot.render import Pacer, ReplyStream
from bot.settings import Settings
from bot.store import Store
from bot.types import Attachment, ContextMessage, ConversationKey, IncomingMessage, Outcome

log = logging.getLogger("parley.conversation")

THINKING_PLACEHOLDER = "_thinking…_"


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


class ReplyObserver(Protocol):
    """What the service reports as replies run (metrics implement it)."""

    def reply_started(self, platform: str, model: str) -> None: ...

    def reply_finished(
        self,
        platform: str,
        model: str,
        outcome: Outcome,
        usage: Usage,
        *,
        first_token: float | None,
        first_visible: float | None,
    ) -> None:
        """``first_token`` and ``first_visible`` are seconds since the message arrived."""
        ...


class _NoObserver:
    def reply_started(self, platform: str, model: str) -> None:
        return None

    def reply_finished(
        self,
        platform: str,
        model: str,
        outcome: Outcome,
        usage: Usage,
        *,
        first_token: float | None,
        first_visible: float | None,
    ) -> None:
        return None


@dataclass(slots=True)
class ReplyResult:
    outcome: Outcome
    text: str  # the model's answer (no notes)
    shown: str  # what the user finally saw
    model: str
    usage: Usage = field(default_factory=Usage)
    error: str | None = None


@dataclass(slots=True)
class _Active:
    key: ConversationKey
    author_id: str
    stream: ReplyStream
    task: asyncio.Task[None] | None = None
    stop_requested: bool = False
    interrupted: bool = False


@dataclass(slots=True)
class _Generation:
    answer: str = ""
    thinking: str = ""
    outcome: Outcome = Outcome.ERROR
    usage: Usage = field(default_factory=Usage)
    error: Exception | None = None
    first_token_at: float | None = None


class ConversationService:
    def __init__(
        self,
        settings: Settings,
        store: Store,
        providers: ProviderSource,
        pacer: Pacer,
        *,
        files: FilePipeline | None = None,
        instance_id: str | None = None,
        observer: ReplyObserver | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.providers = providers
        self.pacer = pacer
        self.files = files
        self.instance_id = instance_id or uuid.uuid4().hex[:12]
        self.observer: ReplyObserver = observer or _NoObserver()
        from bot.queue import TurnQueue

        self._queue = TurnQueue()
        self._active: dict[int, _Active] = {}
        self._handlers: set[asyncio.Task[object]] = set()
        self._accepting = True

    # -- what adapters call -------------------------------------------------------------------

    @property
    def in_flight(self) -> int:
        return len(self._active)

    @property
    def waiting(self) -> int:
        return self._queue.waiting

    @property
    def accepting(self) -> bool:
        return self._accepting

    async def handle(self, msg: IncomingMessage) -> ReplyResult | None:
        """Answer ``msg`` once. Returns None when it was a duplicate or Parley is shutting down."""
        if not self._accepting:
            # Not claimed, so a platform retry (or another instance) can still answer it.
            return None
        task = asyncio.current_task()
        if task is not None:
            self._handlers.add(task)
        try:
            if not await self.store.claim_event(msg.key.platform, msg.event_id, self.instance_id):
                log.info("duplicate event %s on %s ignored", msg.event_id, msg.key.platform)
                return None
            async with self._queue.turn(msg.key):
                return await self._answer(msg)
        except Exception:
            log.exception("turn for %s failed outside the reply", msg.key)
            return None
        finally:
            if task is not None:
                self._handlers.discard(task)

    def reply_owner(self, ref: str) -> str | None:
        """The author id of the person whose question the live message ``ref`` answers."""
        active = self._find(ref)
        return active.author_id if active else None

    def stop(self, ref: str) -> bool:
        """Stop the generation that is writing message ``ref``; what was written stays."""
        active = self._find(ref)
        if active is None or active.task is None or active.task.done():
            return False
        active.stop_requested = True
        active.task.cancel()
        return True

    async def drain(self, deadline: float) -> None:
        """Let replies in flight finish for ``deadline`` seconds, then interrupt the rest.

        Adapters stop taking events first; a turn that still arrives meanwhile is answered
        (or interrupted with the others), never dropped after its platform was told "got it".
        """
        pending = [t for t in self._handlers if not t.done()]
        if pending:
            await asyncio.wait(pending, timeout=deadline)
        self._accepting = False
        for active in list(self._active.values()):
            if active.task is not None and not active.task.done():
                active.interrupted = True
                active.task.cancel()
        pending = [t for t in self._handlers if not t.done()]
        if pending:
            # Interrupted replies still get their final edit ("interrupted …") and their row.
            await asyncio.wait(pending, timeout=10)

    # -- the turn ------------------------------------------------------------------------------

    def _find(self, ref: str) -> _Active | None:
        for active in self._active.values():
            if ref in active.stream.refs:
                return active
        return None

    async def _answer(self, msg: IncomingMessage) -> ReplyResult:
        arrived = time.monotonic()
        stream = self.pacer.reply(msg.surface)
        placeholder = asyncio.create_task(stream.start())
        conversation = await self.store.get_or_create_conversation(msg.key)
        model_override, system_override = await self.store.effective_model_and_system(conversation)
        model = msg.model or model_override or self.settings.parley_model
        await self._backfill(conversation.id, msg)

        prepared = PreparedFiles(question=msg.text)
        if self.files is not None:
            prepared = await self.files.prepare(
                conversation.id, msg.attachments, model, question=msg.text, context=msg.context
            )
        question = prepared.question
        parts: list[Part] = prepared.parts
        notes = prepared.notes
        # The question actually asked is stored, so a bare "summarize" keeps its meaning in history.
        await self.store.add_user_message(
            conversation.id,
            msg.author,
            question,
            platform_id=msg.platform_message_id,
            attachments=prepared.records,
        )
        history = await self.store.load_context(conversation.id, self.settings.parley_history_turns)
        entries = [HistoryEntry(m.role, m.author_name, m.text, m.status) for m in history[:-1]]
        turns = build_turns(
            entries,
            HistoryEntry("user", msg.author.name, question),
            budget_chars=self.settings.parley_history_chars,
            current_parts=parts,
        )
        turns = prepared.lead(turns)  # earlier files go first, where prompt caching pays off
        options = self.settings.options_for(model)
        request = ChatRequest(
            model=model,
            system=system_prompt(
                system_override or self.settings.parley_system_prompt, platform=msg.key.platform
            ),
            turns=turns,
            max_tokens=options.max_tokens or self.settings.parley_max_tokens,
            temperature=options.temperature,
            thinking_budget=options.thinking_budget,
            extra=dict(options.extra),
        )

        try:
            await placeholder
        except Exception as exc:
            log.error("could not post a placeholder for %s: %s", msg.key, exc)
            await self.store.mark_event_done(msg.key.platform, msg.event_id)
            return ReplyResult(Outcome.ERROR, "", "", model, error=str(exc))
        reply_id = await self.store.start_reply(conversation.id, model, {"refs": list(stream.refs)})
        # From here a crash leaves a "streaming" row that recovery closes; a retried delivery
        # must not answer a second time.
        await self.store.mark_event_done(msg.key.platform, msg.event_id)

        self.observer.reply_started(msg.key.platform, model)
        active = _Active(msg.key, msg.author.id, stream)
        self._active[reply_id] = active
        generation = _Generation()
        prefix = "".join(f"{note}\n\n" for note in notes)
        ask_model = not prepared.nothing_to_ask and self._accepting
        if prepared.nothing_to_ask:
            # Only unusable files and no question: the notes are the whole reply, no model call.
            prefix = prefix.rstrip()
            generation.outcome = Outcome.COMPLETE
        elif not self._accepting:
            # Its turn came after shutdown interrupted the replies: say so rather than start one.
            generation.outcome = Outcome.INTERRUPTED
        try:
            if ask_model:
                provider = self.providers.provider_for(model)
                active.task = asyncio.create_task(
                    self._generate(provider, request, stream, generation, prefix)
                )
                try:
                    await asyncio.shield(active.task)
                except asyncio.CancelledError:
                    # Our own handler was cancelled (shutdown): interrupt the generation too.
                    if not active.task.done():
                        active.interrupted = True
                        active.task.cancel()
                        await asyncio.wait([active.task])
                if active.task.cancelled():
                    generation.outcome = Outcome.INTERRUPTED if active.interrupted else Outcome.STOPPED
        finally:
            del self._active[reply_id]
        await msg.surface.set_status(None)

        error_text = None
        if generation.error is not None:
            error_text = (
                generation.error.user_message
                if isinstance(generation.error, ProviderError)
                else "Something went wrong while answering."
            )
        shown = with_note(prefix + generation.answer, generation.outcome, error_text)
        await stream.finish(shown)
        await self.store.set_reply_refs(reply_id, list(stream.refs), {"refs": list(stream.refs)})
        await self.store.finish_reply(
            reply_id,
            text=generation.answer,
            outcome=generation.outcome,
            usage=generation.usage,
            error=_log_detail(generation.error),
            author_id=msg.author.id,
        )
        first_token = _since(arrived, generation.first_token_at)
        first_visible = _since(arrived, stream.first_text_at)
        self.observer.reply_finished(
            msg.key.platform,
            model,
            generation.outcome,
            generation.usage,
            first_token=first_token,
            first_visible=first_visible,
        )
        log.info(
            "reply conversation=%s platform=%s model=%s outcome=%s in=%d out=%d "
            "first_token=%s first_visible=%s total=%.2fs",
            conversation.id,
            msg.key.platform,
            model,
            generation.outcome,
            generation.usage.input_tokens,
            generation.usage.output_tokens,
            _seconds(first_token),
            _seconds(first_visible),
            time.monotonic() - arrived,
        )
        return ReplyResult(generation.outcome, generation.answer, shown, model, generation.usage, error_text)

    async def _generate(
        self,
        provider: Provider,
        request: ChatRequest,
        stream: ReplyStream,
        state: _Generation,
        prefix: str,
    ) -> None:
        show_thinking = self.settings.parley_show_thinking
        try:
            async for event in provider.stream(request):
                if isinstance(event, TextDelta):
                    if state.first_token_at is None:
                        state.first_token_at = time.monotonic()
                    state.answer += event.text
                    stream.update(prefix + _with_thinking(state, show_thinking))
                elif isinstance(event, ThinkingDelta):
                    state.thinking += event.text
                    if show_thinking:
                        stream.update(prefix + _with_thinking(state, show_thinking))
                    elif not state.answer:
                        stream.update(prefix + THINKING_PLACEHOLDER)
                elif isinstance(event, UsageReport):
                    state.usage = event.usage
                elif isinstance(event, Finish):
                    state.outcome = event.outcome
                    state.usage = event.usage
                    state.error = event.error
        except ProviderError as exc:
            state.outcome = Outcome.ERROR
            state.error = exc
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("provider stream failed")
            state.outcome = Outcome.ERROR
            state.error = exc

    async def _backfill(self, conversation_id: int, msg: IncomingMessage) -> None:
        """Store the platform context (thread history, reply chain) not already stored."""
        if not msg.context:
            return
        ids = [c.platform_id for c in msg.context if c.platform_id]
        known = await self.store.known_platform_ids(conversation_id, ids)
        for item in msg.context:
            if item.platform_id and item.platform_id in known:
                continue
            if item.platform_id and item.platform_id == msg.platform_message_id:
                continue
            await self.store.add_context_message(
                conversation_id,
                item.author,
                item.text,
                role="assistant" if item.from_assistant else "user",
                platform_id=item.platform_id,
            )


def _with_thinking(state: _Generation, show: bool) -> str:
    if not (show and state.thinking):
        return state.answer
    quoted = "\n".join(f"> {line}" if line else ">" for line in state.thinking.strip().splitlines())
    return f"{quoted}\n\n{state.answer}" if state.answer else quoted


def _since(start: float, moment: float | None) -> float | None:
    return None if moment is None else max(0.0, moment - start)


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}s"


def _log_detail(error: Exception | None) -> str | None:
    if error is None:
        return None
    detail = getattr(error, "detail", "") or str(error)
    return f"{type(error).__name__}: {detail}"[:500]
