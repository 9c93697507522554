"""The conversation service: one incoming message in, one streamed and stored reply out.

Adapters call :meth:`ConversationService.handle` with a neutral message; the service de-duplicates
the event, waits its turn in the conversation, builds the prompt from the store, streams the
model's answer through the shared renderer and stores the outcome. It never raises to the
adapter: every failure ends as an honest note in the reply.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import re
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any, Protocol

from bot import notes as say
from bot.files import PreparedFiles
from bot.limits import Admission, Refusal
from bot.notes import with_note
from bot.prompt import HistoryEntry, build_turns, system_prompt
from bot.providers.base import (
    ChatRequest,
    Finish,
    Part,
    Provider,
    TextDelta,
    ThinkingDelta,
    UsageReport,
)
from bot.providers.errors import ProviderError
from bot.render import Pacer, RateLimited, ReplyStream, SurfaceError
from bot.render.surface import PLACEHOLDER, THINKING_PLACEHOLDER, Deletable, Recoverable, ReplySurface
from bot.settings import Settings
from bot.store import Store, StoreError, StreamingReply
from bot.store.models import utcnow
from bot.types import Attachment, Author, ContextMessage, ConversationKey, IncomingMessage, Outcome, Usage

log = logging.getLogger("parley.conversation")


# What an adapter hands recover(): a surface rebuilt from a reply's stored row, or None.
SurfaceFor = Callable[[StreamingReply], Recoverable | None]

# Control characters other than tab and newlines: PostgreSQL refuses NUL in text, the rest is noise.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
# An answer (with its thinking) longer than max_tokens times this, or this floor, is cut off.
CHARS_PER_TOKEN_CAP = 16
MIN_ANSWER_CAP = 100_000
# A recovery pass leaves a reply for the next pass after a 429 longer than this.
_RECOVERY_MAX_WAIT = 30.0


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
    reply_id: int | None = None  # once its row is stored
    task: asyncio.Task[None] | None = None
    stop_requested: bool = False
    interrupted: bool = False
    timed_out: bool = False


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
        # This process, whatever it is called: it never recovers a reply it may still be writing.
        self.instance_id = instance_id or uuid.uuid4().hex[:12]
        self.observer: ReplyObserver | None = observer
        from bot.queue import TurnQueue

        self._queue = TurnQueue()
        self.admission = Admission(settings)
        self._active: dict[int, _Active] = {}  # by turn number: a reply runs before its row exists
        self._turns = itertools.count()
        self._handlers: set[asyncio.Task[object]] = set()
        self._accepting = True
        self._recoverers: dict[str, SurfaceFor] = {}
        self._sweeper: asyncio.Task[None] | None = None

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
        """Answer ``msg`` once. Returns None when it was a duplicate, a bot turn dropped by the loop
        breaker, or Parley is shutting down."""
        if not self._accepting:
            # Not claimed, so a platform retry (or another instance) can still answer it.
            return None
        task = asyncio.current_task()
        if task is not None:
            self._handlers.add(task)
        try:
            try:
                # Only the claim comes before the placeholder: in a burst of questions every claim
                # waits for the ones before it, so it is kept to one statement.
                claimed = await self.store.events.claim(msg.key.platform, msg.event_id, self.instance_id)
            except StoreError as exc:
                # Without the store there is no exactly-once and no history: say so, don't guess.
                log.error("cannot take %s on %s: %s", msg.event_id, msg.key.platform, exc)
                shown = await self._say(msg.surface, say.DATABASE_DOWN, msg.key.platform)
                return ReplyResult(Outcome.ERROR, "", shown, "", error=say.DATABASE_DOWN)
            if not claimed:
                log.info("duplicate event %s on %s ignored", msg.event_id, msg.key.platform)
                return None
            ticket = self.admission.admit(msg)
            if isinstance(ticket, Refusal):
                return await self._refuse(msg, ticket)
            try:
                async with self._queue.turn(msg.key):
                    return await self._answer(msg)
            finally:
                self.admission.release(ticket)
        except Exception:
            log.exception("turn for %s failed outside the reply", msg.key)
            return None
        finally:
            if task is not None:
                self._handlers.discard(task)

    def answering(self, key: ConversationKey) -> bool:
        """Whether this process has a turn of ``key`` under way (its reply may not be stored yet:
        a follow-up written while the placeholder shows belongs to a followed thread)."""
        return self._queue.holds(key)

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
        await self._stop_sweeper()
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

    async def aclose(self) -> None:
        """Stop background work (the recovery sweep); replies are drained by :meth:`drain`."""
        await self._stop_sweeper()

    # -- crash recovery ------------------------------------------------------------------------

    async def recover(self, platform: str, surface_for: SurfaceFor) -> int:
        """Close the replies a crashed process left streaming on ``platform``; returns how many.

        An adapter calls this once it is connected. Each orphaned reply's last message gets the
        interrupted note after what it showed (read back from the platform; the note alone if it
        cannot be read), its Stop control goes, and its row is marked interrupted with that text.
        Afterwards the store is swept every ``PARLEY_RECOVER_INTERVAL`` seconds (see
        :meth:`_orphaned` for which replies count as orphaned).
        """
        self._recoverers[platform] = surface_for
        closed = await self._recover_pass(platform)
        if self._sweeper is None or self._sweeper.done():
            self._sweeper = asyncio.create_task(self._sweep(), name="parley recovery sweep")
        return closed

    def _orphaned(self, reply: StreamingReply) -> bool:
        """Whether no live process can still be writing ``reply``.

        - This process's own replies only once past ``PARLEY_REPLY_TIMEOUT``: no reply runs longer.
        - On SQLite (one process per database) every other process's reply: that process is gone.
        - On a shared database another instance may be writing it, so only replies past the
          timeout, or left by a previous process of the same ``PARLEY_INSTANCE_ID``.
        """
        if any(active.reply_id == reply.id for active in self._active.values()):
            return False
        info = reply.surface or {}
        margin = self.settings.parley_reply_timeout + 30
        if reply.created_at < utcnow() - timedelta(seconds=margin):
            return True
        if info.get("process") == self.instance_id:
            return False
        if not self.store.shared:
            return True
        name = self.settings.parley_instance_id
        return bool(name) and info.get("instance") == name

    async def _recover_pass(self, platform: str) -> int:
        surface_for = self._recoverers.get(platform)
        if surface_for is None:
            return 0
        try:
            replies = await self.store.replies.streaming(platform=platform, limit=100)
        except StoreError as exc:
            log.warning("recovery: cannot read the store: %s", exc)
            return 0
        closed = 0
        for reply in replies:
            if not self._orphaned(reply):
                continue
            try:
                if await self._close_orphan(reply, surface_for):
                    closed += 1
            except Exception:
                log.exception("recovery of reply %s failed; trying again later", reply.id)
        if closed:
            log.info("recovery: closed %d interrupted %s replies", closed, platform)
        return closed

    async def _close_orphan(self, reply: StreamingReply, surface_for: SurfaceFor) -> bool:
        """Edit the reply's messages to say it was interrupted, then mark its row; False to retry later."""
        surface = surface_for(reply)
        refs = list(reply.reply_refs or (reply.surface or {}).get("refs") or ())
        texts: list[str] = []
        if surface is not None and refs:
            for index, ref in enumerate(refs):
                last = index == len(refs) - 1
                try:
                    shown = await surface.read(ref)
                except RateLimited:
                    return False  # read it in a later pass rather than overwrite it unread
                except SurfaceError:
                    shown = None  # refused: the message or its channel is gone
                text = "" if shown is None else _unplaceheld(shown.text, surface)
                texts.append(text)
                if shown is not None and not shown.live:
                    continue  # finished on the platform (a frozen part, or the end was not stored)
                if not last and shown is None:
                    continue  # unknown text: leave an earlier part as it is
                new = _with_interrupted(text, surface) if last else text or surface.render(PLACEHOLDER)
                if not await _recovery_edit(surface, ref, new):
                    return False
        elif refs:
            log.warning("recovery: reply %s on %s cannot be edited (no surface)", reply.id, reply.key)
        await self.store.replies.mark_interrupted(reply.id, text="".join(texts) if texts else None)
        return True

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(self.settings.parley_recover_interval)
            for platform in list(self._recoverers):
                try:
                    await self._recover_pass(platform)
                except Exception:
                    log.exception("recovery sweep failed")

    async def _stop_sweeper(self) -> None:
        sweeper, self._sweeper = self._sweeper, None
        if sweeper is not None and not sweeper.done():
            sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sweeper

    # -- replies that are not answers ----------------------------------------------------------

    async def _say(self, surface: ReplySurface, text: str, platform: str) -> str:
        """Post one short finished message, paced like any reply; returns what was shown."""
        try:
            stream = self.pacer.reply(surface, platform=platform)
            await stream.finish(text)
        except Exception as exc:
            log.error("could not post a short reply: %r", exc)
            return ""
        return "" if stream.failed else text

    async def _refuse(self, msg: IncomingMessage, refusal: Refusal) -> ReplyResult | None:
        """A turn over a limit: a polite "busy" reply, stored with the question like any turn."""
        platform = msg.key.platform
        if refusal is Refusal.BOT_LOOP:
            log.warning("not answering bot %s in %s again this minute (loop breaker)", msg.author.id, msg.key)
            await self.store.events.done(platform, msg.event_id)
            return None
        text = say.BUSY[refusal.value]
        log.info("turn in %s from %s refused: %s", msg.key, msg.author.id, refusal.value)
        question, _ = _trimmed(_clean(msg.text), self.settings.parley_max_input_chars)
        # "process" keeps this process's recovery sweep off the row while the note is posted.
        info = {"refs": [], "busy": refusal.value, "process": self.instance_id}
        conversation = await self.store.conversations.find_or_create(msg.key)
        reply_id = await self.store.replies.begin(
            conversation.id,
            _clean_author(msg.author),
            question,
            model="",
            surface_info=info,
            platform_id=msg.platform_message_id,
            event=(platform, msg.event_id),
        )
        shown = await self._say(msg.surface, text, msg.key.platform)
        await self.store.replies.finish(
            reply_id, text=text, outcome=Outcome.COMPLETE, author_id=msg.author.id
        )
        return ReplyResult(Outcome.COMPLETE, text, shown, "")

    # -- the turn ------------------------------------------------------------------------------

    def _find(self, ref: str) -> _Active | None:
        for active in self._active.values():
            if ref in active.stream.refs:
                return active
        return None

    def _surface_info(self, stream: ReplyStream, surface: ReplySurface) -> dict[str, Any]:
        """What the reply row keeps so that a later process can close it after a crash."""
        info: dict[str, Any] = {"refs": list(stream.refs), "process": self.instance_id}
        if self.settings.parley_instance_id:
            info["instance"] = self.settings.parley_instance_id
        if isinstance(surface, Recoverable):
            try:
                info["surface"] = surface.describe()
            except Exception:
                log.exception("surface.describe() failed")
        return info

    async def _answer(self, msg: IncomingMessage) -> ReplyResult:
        arrived = time.monotonic()
        limit = self.settings.parley_max_input_chars
        asked, length = _trimmed(_clean(msg.text), limit)
        msg = replace(
            msg,
            text=asked,
            author=_clean_author(msg.author),
            context=[
                replace(c, text=_trimmed(_clean(c.text), limit)[0], author=_clean_author(c.author))
                for c in msg.context
            ],
        )
        stream = self.pacer.reply(msg.surface, platform=msg.key.platform)
        placeholder = asyncio.create_task(stream.start())
        model = msg.model or self.settings.parley_model
        try:
            conversation = await self.store.conversations.find_or_create(msg.key)
            overrides = await self.store.conversations.overrides(msg.key)
            model_override, system_override = overrides.model, overrides.system
            model = msg.model or model_override or self.settings.parley_model
            await self._backfill(conversation.id, msg)

            prepared = PreparedFiles(question=msg.text)
            if self.files is not None:
                prepared = await self.files.prepare(
                    conversation.id, msg.attachments, model, question=msg.text, context=msg.context
                )
            question = prepared.question
            parts: list[Part] = prepared.parts
            notes = list(prepared.notes)
            if length > limit:
                notes.insert(0, say.trimmed(length, limit))
            # The question is stored with the reply row (begin_reply below), so this is all history
            # before it: the question's own slot of PARLEY_HISTORY_TURNS stays unused, as before.
            history = await self.store.history.load(conversation.id, self.settings.parley_history_turns - 1)
            entries = [HistoryEntry(m.role, m.author_name, m.text, m.status) for m in history]
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
            generation = _Generation()
            prefix = "".join(f"{note}\n\n" for note in notes)
            mention_only = not question.strip() and not parts and not prepared.nothing_to_ask
            ask_model = not (prepared.nothing_to_ask or mention_only) and self._accepting
            provider = self.providers.provider_for(model) if ask_model else None
        except Exception as exc:
            return await self._failed_before_reply(msg, stream, placeholder, model, exc)

        if prepared.nothing_to_ask:
            # Only unusable files and no question: the notes are the whole reply, no model call.
            prefix = prefix.rstrip()
            generation.outcome = Outcome.COMPLETE
        elif mention_only:
            # A bare mention: a short hint, not a guess at what was meant (and no model call).
            generation.answer = say.MENTION_ONLY
            generation.outcome = Outcome.COMPLETE
        elif not self._accepting:
            # Its turn came after shutdown interrupted the replies: say so rather than start one.
            generation.outcome = Outcome.INTERRUPTED

        turn = next(self._turns)
        active = _Active(msg.key, msg.author.id, stream)
        # Counted in flight until its row is stored: the final edit and the store write too.
        self._active[turn] = active
        try:
            saver = _RefSaver(self.store, stream)
            deadline = time.monotonic() + self.settings.parley_reply_timeout
            if provider is not None:
                # The request goes out now, while the placeholder is posted and the row written:
                # in a channel out of posts the model has been answering meanwhile, and the
                # renderer shows the text that came in the first post instead of the placeholder.
                active.task = asyncio.create_task(
                    self._generate(provider, request, stream, generation, prefix, saver)
                )
            try:
                info = self._surface_info(stream, msg.surface)
                reply_id = await self.store.replies.begin(
                    conversation.id,
                    msg.author,
                    question,
                    model=model,
                    surface_info=info,
                    platform_id=msg.platform_message_id,
                    attachments=prepared.records,
                    event=(msg.key.platform, msg.event_id),
                )
            except Exception as exc:
                await _cancelled(active.task)
                return await self._failed_before_reply(msg, stream, placeholder, model, exc)
            # From here a crash leaves a "streaming" row that recovery closes; a retried delivery
            # must not answer a second time.
            active.reply_id = reply_id
            saver.attach(reply_id, info)
            if self.observer is not None:
                self.observer.reply_started(msg.key.platform, model)
            try:
                await placeholder
            except Exception as exc:
                log.error("could not post a placeholder for %s: %s", msg.key, exc)
                await _cancelled(active.task)
                await self.store.replies.finish(
                    reply_id, text="", outcome=Outcome.ERROR, error=_log_detail(exc), author_id=msg.author.id
                )
                return ReplyResult(Outcome.ERROR, "", "", model, error=str(exc))
            # The row was written before the first message was up: store where it is now. Until
            # then a crash leaves a row without refs, which recovery closes without an edit.
            await saver.save()
            if active.task is not None:
                try:
                    # asyncio.wait never cancels the task itself: a cancelled handler only stops waiting.
                    timeout = max(0.0, deadline - time.monotonic())
                    done, _ = await asyncio.wait([active.task], timeout=timeout)
                    if not done:
                        log.warning("reply in %s passed PARLEY_REPLY_TIMEOUT; cutting it off", msg.key)
                        active.timed_out = True
                        active.task.cancel()
                        await asyncio.wait([active.task])
                except asyncio.CancelledError:
                    # Our own handler was cancelled (shutdown): interrupt the generation too.
                    if not active.task.done():
                        active.interrupted = True
                        active.task.cancel()
                        await asyncio.wait([active.task])
                if active.task.cancelled():
                    if active.timed_out:
                        generation.outcome = Outcome.TRUNCATED
                    else:
                        generation.outcome = Outcome.INTERRUPTED if active.interrupted else Outcome.STOPPED
            await msg.surface.set_status(None)

            error_text = None
            if generation.error is not None:
                error_text = (
                    generation.error.user_message
                    if isinstance(generation.error, ProviderError)
                    else say.FAILED
                )
            if active.timed_out:
                shown = f"{(prefix + generation.answer).rstrip()}\n\n{say.TOO_SLOW_NOTE}".lstrip()
            else:
                shown = with_note(prefix + generation.answer, generation.outcome, error_text)
            await stream.finish(shown)
            await self._drop_abandoned(stream, msg.surface)
            refs = list(stream.refs)
            await self.store.replies.finish(
                reply_id,
                text=generation.answer,
                outcome=generation.outcome,
                usage=generation.usage,
                error=_log_detail(generation.error) or ("reply timeout" if active.timed_out else None),
                author_id=msg.author.id,
                refs=refs,
                surface_info={**info, "refs": refs},
            )
            first_token = _since(arrived, generation.first_token_at)
            first_visible = _since(arrived, stream.first_text_at)
            if self.observer is not None:
                self.observer.reply_finished(
                    msg.key.platform,
                    model,
                    generation.outcome,
                    generation.usage,
                    first_token=first_token,
                    first_visible=first_visible,
                )
            total = time.monotonic() - arrived
            # One line per reply; in JSON logs (PARLEY_LOG_JSON) the same figures are fields of their own.
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
                total,
                extra={
                    "event": "reply",
                    "conversation_id": conversation.id,
                    "conversation": str(msg.key),
                    "platform": msg.key.platform,
                    "model": model,
                    "outcome": str(generation.outcome),
                    "tokens_in": generation.usage.input_tokens,
                    "tokens_out": generation.usage.output_tokens,
                    "first_token_s": _rounded(first_token),
                    "first_visible_s": _rounded(first_visible),
                    "total_s": round(total, 3),
                },
            )
            return ReplyResult(
                generation.outcome, generation.answer, shown, model, generation.usage, error_text
            )
        finally:
            if active.task is not None and not active.task.done():
                active.task.cancel()  # only when the turn itself failed or was cancelled early
            del self._active[turn]

    async def _failed_before_reply(
        self,
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
                await self.store.events.release(msg.key.platform, msg.event_id, self.instance_id)
        return ReplyResult(Outcome.ERROR, "", shown, model, error=text)

    async def _drop_abandoned(self, stream: ReplyStream, surface: ReplySurface) -> None:
        """Delete messages the renderer replaced after their edits kept failing (stale copies)."""
        if not stream.abandoned_refs or not isinstance(surface, Deletable):
            return
        for ref in stream.abandoned_refs:
            try:
                await surface.delete(ref)
            except Exception as exc:
                log.warning("could not delete the abandoned message %s: %r", ref, exc)

    async def _generate(
        self,
        provider: Provider,
        request: ChatRequest,
        stream: ReplyStream,
        state: _Generation,
        prefix: str,
        saver: _RefSaver | None = None,
    ) -> None:
        show_thinking = self.settings.parley_show_thinking
        # A model keeps to max_tokens; a gateway that streams on regardless is cut off here.
        cap = max(MIN_ANSWER_CAP, request.max_tokens * CHARS_PER_TOKEN_CAP)
        events = provider.stream(request)
        try:
            async for event in events:
                if isinstance(event, TextDelta):
                    if state.first_token_at is None:
                        state.first_token_at = time.monotonic()
                    state.answer += event.text
                    if len(state.answer) + len(state.thinking) > cap:
                        _cut(state, cap)
                        stream.update(prefix + _with_thinking(state, show_thinking))
                        break
                    stream.update(prefix + _with_thinking(state, show_thinking))
                elif isinstance(event, ThinkingDelta):
                    state.thinking += event.text
                    if len(state.answer) + len(state.thinking) > cap:
                        _cut(state, cap)
                        break
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
                if saver is not None and saver.due():
                    await saver.save()
        except ProviderError as exc:
            state.outcome = Outcome.ERROR
            state.error = exc
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("provider stream failed")
            state.outcome = Outcome.ERROR
            state.error = exc
        finally:
            close = getattr(events, "aclose", None)
            if close is not None:
                with contextlib.suppress(Exception):
                    await close()  # a cut-off answer closes its connection now, not when collected

    async def _backfill(self, conversation_id: int, msg: IncomingMessage) -> None:
        """Store the platform context (thread history, reply chain) not already stored."""
        if not msg.context:
            return
        ids = [c.platform_id for c in msg.context if c.platform_id]
        known = await self.store.history.known(conversation_id, ids)
        for item in msg.context:
            if item.platform_id and item.platform_id in known:
                continue
            if item.platform_id and item.platform_id == msg.platform_message_id:
                continue
            await self.store.history.add(
                conversation_id,
                item.author,
                item.text,
                role="assistant" if item.from_assistant else "user",
                platform_id=item.platform_id,
            )


class _RefSaver:
    """Stores a reply's message refs as soon as it continues in a new message (or its first
    message is posted after its row was written), so that recovery after a crash finds its last
    message (the one still showing Stop)."""

    def __init__(self, store: Store, stream: ReplyStream) -> None:
        self._store = store
        self._stream = stream
        self._reply_id: int | None = None  # nothing to save into before the row exists
        self._info: dict[str, Any] = {}
        self.saved = 0

    def attach(self, reply_id: int, info: dict[str, Any]) -> None:
        """The row now exists, with ``info`` (and the refs in it) stored."""
        self._reply_id = reply_id
        self._info = info
        self.saved = len(info.get("refs") or ())

    def due(self) -> bool:
        return self._reply_id is not None and self._stream.message_count > self.saved

    async def save(self) -> None:
        if self._reply_id is None or not self.due():
            return
        refs = list(self._stream.refs)
        self.saved = len(refs)  # before the write, so a concurrent caller does not write it again
        try:
            await self._store.replies.set_refs(self._reply_id, refs, {**self._info, "refs": refs})
        except StoreError as exc:
            log.warning("could not store the reply's new message: %s", exc)


async def _cancelled(task: asyncio.Task[None] | None) -> None:
    """Cancel a generation that must not go on, and wait until it has let go of its stream."""
    if task is not None and not task.done():
        task.cancel()
        await asyncio.wait([task])


def _cut(state: _Generation, cap: int) -> None:
    log.warning("the gateway passed %d characters for one answer; cutting it off", cap)
    state.thinking = state.thinking[:cap]
    state.answer = state.answer[: max(0, cap - len(state.thinking))]
    state.outcome = Outcome.LENGTH


def _clean(text: str) -> str:
    """Text safe to store and send: no control characters, no lone surrogates."""
    text = _CONTROL.sub("", text)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-8", "replace").decode("utf-8")  # lone surrogates become "?"
    return text


def _clean_author(author: Author) -> Author:
    name = _clean(author.name)
    return author if name == author.name else replace(author, name=name)


def _trimmed(text: str, limit: int) -> tuple[str, int]:
    """``text`` cut to ``limit`` characters, and its full length."""
    return (text if len(text) <= limit else text[:limit]), len(text)


def _unplaceheld(text: str, surface: ReplySurface) -> str:
    """What a message shows, without the renderer's placeholders (they are not an answer)."""
    placeholders = {PLACEHOLDER, THINKING_PLACEHOLDER}
    with contextlib.suppress(Exception):
        placeholders |= {surface.render(PLACEHOLDER), surface.render(THINKING_PLACEHOLDER)}
    return "" if text.strip() in placeholders else text


def _with_interrupted(text: str, surface: ReplySurface) -> str:
    note = say.INTERRUPTED
    with contextlib.suppress(Exception):
        note = surface.render(note)
    if not text.strip():
        return note
    room = surface.limits.max_chars - len(note) - 3
    body = text.rstrip()
    if len(body) > room:
        body = body[: max(0, room - 1)] + "…"
    return f"{body}\n\n{note}"


async def _recovery_edit(surface: Recoverable, ref: str, text: str) -> bool:
    """One edit after a crash, outside the renderer (nothing else is writing these messages).

    True when done or when the platform refuses for good (the message is gone); False when it
    is worth trying again in a later pass (rate limited for long, the network failed).
    """
    for _ in range(2):
        try:
            await surface.edit(ref, text, live=False)
            return True
        except RateLimited as exc:
            if exc.retry_after > _RECOVERY_MAX_WAIT:
                return False
            await asyncio.sleep(exc.retry_after)
        except SurfaceError as exc:
            log.warning("recovery: the platform refused to edit %s (%s); leaving it", ref, exc)
            return True
        except Exception as exc:
            log.warning("recovery: editing %s failed (%r); trying again later", ref, exc)
            return False
    return False


def _with_thinking(state: _Generation, show: bool) -> str:
    if not (show and state.thinking):
        return state.answer
    quoted = "\n".join(f"> {line}" if line else ">" for line in state.thinking.strip().splitlines())
    return f"{quoted}\n\n{state.answer}" if state.answer else quoted


def _since(start: float, moment: float | None) -> float | None:
    return None if moment is None else max(0.0, moment - start)


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}s"


def _log_detail(error: Exception | None) -> str | None:
    if error is None:
        return None
    detail = getattr(error, "detail", "") or str(error)
    return f"{type(error).__name__}: {detail}"[:500]
