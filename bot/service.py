"""The conversation service: what adapters call. One incoming message in, one reply out.

:meth:`ConversationService.handle` is claim → admit → queue → turn: the event is claimed once
(``store.events``), admitted or refused under the limits (``bot/limits.py``), queued behind the
conversation's earlier turns (``bot/queue.py``) and answered (``bot/turn.py``). It never raises
to the adapter: every failure ends as an honest note in the reply. For adapters' messages one
step comes before the queue (``bot/intake.py``): a burst of one person's messages is merged into
one turn, and a message that only says "stop" stops its author's live reply.

Besides: Stop and "whose reply is this" for live replies, draining at shutdown, and a sweep that
closes replies a crashed process left open (``bot/recovery.py``) and forgets event claims once
no platform redelivers them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta

from bot.intake import Burst, Bursts, Fate, IntakeObserver, says_stop
from bot.limits import Admission, Refusal
from bot.live import LiveReplies
from bot.queue import TurnQueue
from bot.recovery import Recovery, SurfaceFor
from bot.render import Pacer
from bot.reporting import ReplyObserver
from bot.settings import Settings
from bot.short_replies import database_down, refuse
from bot.store import Store, StoreError
from bot.store.models import utcnow
from bot.tool_loop import Tools
from bot.turn import FilePipeline, ProviderSource, Turn
from bot.types import ConversationKey, IncomingMessage, ReplyResult

log = logging.getLogger("parley.conversation")

# Event claims are kept this long once done. Slack retries an event it got no 200 for up to three
# times within about five minutes; Discord does not redeliver (a resumed gateway session replays
# only the events it missed, minutes at most). A day is far past both, and past any turn still
# running (PARLEY_REPLY_TIMEOUT), so a forgotten claim is one no delivery can ask about again.
EVENT_RETENTION = timedelta(days=1)
# How often the sweep forgets old claims: one indexed DELETE, so an hour is plenty.
PRUNE_EVERY = timedelta(hours=1)


class ConversationService:
    def __init__(
        self,
        settings: Settings,
        store: Store,
        providers: ProviderSource,
        pacer: Pacer,
        *,
        files: FilePipeline | None = None,
        tools: Tools | None = None,
        instance_id: str | None = None,
        observer: ReplyObserver | None = None,
        event_retention: timedelta = EVENT_RETENTION,
    ) -> None:
        self.settings = settings
        self.store = store
        self.providers = providers
        self.pacer = pacer
        self.files = files
        self.tools = tools  # what the model may call in a turn
        # This process, whatever it is called: it never recovers a reply it may still be writing.
        self.instance_id = instance_id or uuid.uuid4().hex[:12]
        self.observer = observer
        self.admission = Admission(settings)
        self.live = LiveReplies()
        self.recovery = Recovery(settings, store, self.instance_id, self.live.reply_ids)
        self._queue = TurnQueue()
        self.bursts = Bursts(settings.parley_merge_window)
        self.counts: IntakeObserver | None = None  # what became of each message (metrics)
        self._handlers: set[asyncio.Task[object]] = set()
        self._accepting = True
        self._event_retention = event_retention
        self._pruned_at: float | None = None  # loop time of the last prune
        self._sweeper: asyncio.Task[None] | None = None

    # -- what adapters call ----------------------------------------------------------------------

    @property
    def in_flight(self) -> int:
        return len(self.live)

    @property
    def waiting(self) -> int:
        return self._queue.waiting

    @property
    def accepting(self) -> bool:
        return self._accepting

    async def handle(
        self, msg: IncomingMessage, *, merge: bool = False, in_line: Callable[[], None] | None = None
    ) -> ReplyResult | None:
        """Answer ``msg`` once. Returns None when it was a duplicate, a bot turn dropped by the loop
        breaker, a "stop" that stopped a reply, or Parley is shutting down.

        ``merge``: a person's burst of messages is answered as one turn (``PARLEY_MERGE_WINDOW``;
        each merged message returns its turn's result). ``in_line`` is called once ``msg`` has its
        place: queued in its conversation behind the messages that came before it (or merged,
        or done with), so an adapter may hand over the next message of the conversation.
        """
        lined_up = _once(in_line)
        if not self._accepting:
            # Not claimed, so a platform retry (or another instance) can still answer it.
            self._count(msg, Fate.SHUTTING_DOWN)
            lined_up()
            return None
        with self._handling():
            try:
                return await self._handle(msg, merge=merge, in_line=lined_up)
            except Exception:
                log.exception("turn for %s failed outside the reply", msg.key)
                self._count(msg, Fate.FAILED)
                return None
            finally:
                lined_up()

    def answering(self, key: ConversationKey) -> bool:
        """Whether this process has a turn of ``key`` under way (its reply may not be stored yet:
        a follow-up written while the placeholder shows belongs to a followed thread)."""
        return self._queue.holds(key)

    def reply_owner(self, ref: str) -> str | None:
        """The author id of the person whose question the live message ``ref`` answers."""
        live = self.live.writing(ref)
        return live.author_id if live else None

    def stop(self, ref: str) -> bool:
        """Stop the generation that is writing message ``ref``; what was written stays."""
        live = self.live.writing(ref)
        return live is not None and live.stop()

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
        for live in self.live:
            live.interrupt()
        pending = [t for t in self._handlers if not t.done()]
        if pending:
            # Interrupted replies still get their final edit ("interrupted …") and their row.
            await asyncio.wait(pending, timeout=10)

    async def aclose(self) -> None:
        """Stop background work (the sweep); replies are drained by :meth:`drain`."""
        await self._stop_sweeper()

    async def recover(self, platform: str, surface_for: SurfaceFor) -> int:
        """Close the replies a crashed process left streaming on ``platform``; returns how many.

        An adapter calls this once it is connected (see :mod:`bot.recovery`). From then on the
        sweep runs every ``PARLEY_RECOVER_INTERVAL`` seconds.
        """
        closed = await self.recovery.recover(platform, surface_for)
        if self._sweeper is None or self._sweeper.done():
            self._sweeper = asyncio.create_task(self._sweep(), name="parley recovery sweep")
        return closed

    # -- intake ----------------------------------------------------------------------------------

    async def _handle(
        self, msg: IncomingMessage, *, merge: bool, in_line: Callable[[], None]
    ) -> ReplyResult | None:
        try:
            # Only the claim comes before the placeholder: in a burst of questions every claim
            # waits for the ones before it, so it is kept to one statement.
            claimed = await self.store.events.claim(msg.key.platform, msg.event_id, self.instance_id)
        except StoreError as exc:
            self._count(msg, Fate.REFUSED)
            return await database_down(self.pacer, msg, exc)
        if not claimed:
            log.info("duplicate event %s on %s ignored", msg.event_id, msg.key.platform)
            self._count(msg, Fate.DUPLICATE)
            return None
        # People type in bursts; another bot's messages are each a turn of their own.
        merge = merge and not msg.author.is_bot
        if merge and await self._stops_a_reply(msg):
            return None
        joined = self.bursts.join(msg) if merge else None
        if joined is not None:
            self._count(msg, Fate.MERGED)
            in_line()
            return await _outcome(joined)
        ticket = self.admission.admit(msg)
        if isinstance(ticket, Refusal):
            self._count(msg, Fate.LOOP_BREAKER if ticket is Refusal.BOT_LOOP else Fate.REFUSED)
            return await refuse(self.store, self.pacer, self.settings, self.instance_id, msg, ticket)
        burst = self.bursts.start(msg) if merge else None
        result: ReplyResult | None = None
        try:
            # Nothing may wait between saying "in line" and taking the queue's place (the lock's
            # waiters are served in order): the adapter hands over the next message meanwhile.
            in_line()
            async with self._queue.turn(msg.key):
                turn_msg = msg if burst is None else await self.bursts.gather(burst)
                result = await Turn(self, turn_msg).run()
            # Nothing shown: the turn failed before its reply and gave the claim back.
            self._count(msg, Fate.ANSWERED if result.shown else Fate.FAILED)
            return result
        finally:
            self.admission.release(ticket)
            if burst is not None:
                await self._after_burst(burst, result)

    async def _stops_a_reply(self, msg: IncomingMessage) -> bool:
        """A message that only says "stop" while its author's reply in this conversation is being
        written stops that reply, and gets no answer of its own."""
        if not says_stop(msg.text):
            return False
        stopped = [
            live
            for live in self.live
            if live.key == msg.key and live.author_id == msg.author.id and live.stop()
        ]
        if not stopped:
            return False
        log.info("a reply in %s stopped by its author's %r", msg.key, msg.text.strip())
        self._count(msg, Fate.STOPPED_REPLY)
        try:
            await self.store.events.done(msg.key.platform, msg.event_id)
        except StoreError as exc:
            log.warning("could not mark the stop message %s done: %s", msg.event_id, exc)
        return True

    async def _after_burst(self, burst: Burst, result: ReplyResult | None) -> None:
        """The merged messages' handlers get the turn's result; their events are done (or, when
        the turn showed nothing, free again for a redelivery) and their rows marked merged."""
        self.bursts.close(burst)
        burst.settle(result)
        merged = burst.merged
        if not merged:
            return
        shown = result is not None and bool(result.shown)
        try:
            for m in merged:
                if shown:
                    await self.store.events.done(m.key.platform, m.event_id)
                else:
                    await self.store.events.release(m.key.platform, m.event_id, self.instance_id)
            conversation = await self.store.conversations.find(burst.leader.key)
            if conversation is not None:
                into = burst.messages[-1].platform_message_id
                await self.store.history.mark_merged(
                    conversation.id, [m.platform_message_id for m in merged], into
                )
        except StoreError as exc:
            log.warning("could not record the messages merged in %s: %s", burst.leader.key, exc)

    def _count(self, msg: IncomingMessage, fate: Fate) -> None:
        if self.counts is not None:
            self.counts.message_seen(msg.key.platform, fate.value)

    @contextlib.contextmanager
    def _handling(self) -> Iterator[None]:
        """Count the current task as a handler, which :meth:`drain` waits for."""
        task = asyncio.current_task()
        if task is not None:
            self._handlers.add(task)
        try:
            yield
        finally:
            if task is not None:
                self._handlers.discard(task)

    # -- the sweep -------------------------------------------------------------------------------

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(self.settings.parley_recover_interval)
            await self.recovery.sweep()
            try:
                await self._prune_events()
            except Exception:
                log.exception("forgetting old event claims failed")

    async def _prune_events(self) -> None:
        """Forget done event claims past :data:`EVENT_RETENTION`, at most every :data:`PRUNE_EVERY`
        (and more often when the retention is shorter); claims still held stay."""
        now = asyncio.get_running_loop().time()
        every = min(PRUNE_EVERY, self._event_retention).total_seconds()
        if self._pruned_at is not None and now - self._pruned_at < every:
            return
        self._pruned_at = now
        try:
            pruned = await self.store.events.prune(utcnow() - self._event_retention)
        except StoreError as exc:
            log.warning("could not prune old event claims: %s", exc)
            return
        if pruned:
            log.info("forgot %d event claims older than %s", pruned, self._event_retention)

    async def _stop_sweeper(self) -> None:
        sweeper, self._sweeper = self._sweeper, None
        if sweeper is not None and not sweeper.done():
            sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sweeper


def _once(callback: Callable[[], None] | None) -> Callable[[], None]:
    """``callback`` made safe to call any number of times (it runs at the first)."""
    called = False

    def call() -> None:
        nonlocal called
        if not called and callback is not None:
            called = True
            try:
                callback()
            except Exception:
                log.exception("an adapter's in-line callback failed")

    return call


async def _outcome(burst: Burst) -> ReplyResult | None:
    """What the turn a merged message joined ended with (None if it ended without a result)."""
    try:
        return await asyncio.shield(burst.result)
    except Exception:
        return None
