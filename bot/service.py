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

On a shared database (PostgreSQL, several instances) the claim, the admission and the queue are
every instance's: one transaction claims the event, counts every instance's turns against the
limits and queues the turn (``store.turns``); the turn then waits for its conversation's lease
(``bot/queue.py: SharedTurnQueue``), in the order the events were claimed. Each tick of the
heartbeat (``bot/instances.py``) takes over from instances that stopped beating: their replies
are closed, and their waiting turns are rebuilt by the adapter (``revive_with``) and answered
here, in their place in the queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta

from bot.instances import Membership
from bot.intake import Burst, Bursts, Fate, IntakeObserver, record_merged, says_stop
from bot.limits import Admission, Refusal, shared_rules
from bot.live import LiveReplies
from bot.queue import SharedTurnQueue, TurnQueue
from bot.recovery import Recovery, SurfaceFor
from bot.render import Pacer
from bot.reporting import ReplyObserver
from bot.settings import Settings
from bot.short_replies import database_down, refuse
from bot.store import Store, StoreError
from bot.store.leases import TurnEntry
from bot.store.models import utcnow
from bot.takeover import Rebuild, TakeOver
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
        # Several instances on one database: the queue is the database's (None on SQLite).
        self._shared = SharedTurnQueue(store.turns, self.instance_id) if store.shared else None
        self._takeover = self._take_over_from_others(self._shared)
        self.membership = Membership(
            store,
            self.instance_id,
            name=settings.parley_instance_id,
            timeout=settings.parley_instance_timeout,
            on_tick=self._takeover.tick if self._takeover is not None else None,
        )
        self._started = False
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
        return self._queue.waiting + (self._shared.waiting if self._shared is not None else 0)

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
        return self._queue.holds(key) or (self._shared is not None and self._shared.holds(key))

    def reply_owner(self, ref: str) -> str | None:
        """The author id of the person whose question the live message ``ref`` answers."""
        live = self.live.writing(ref)
        return live.author_id if live else None

    def stop(self, ref: str) -> bool:
        """Stop the generation that is writing message ``ref``; what was written stays."""
        live = self.live.writing(ref)
        return live is not None and live.stop()

    async def owner_elsewhere(self, ref: str) -> str | None:
        """On a shared database: the author of the question whose reply another instance writes
        in message ``ref`` (a Stop button clicked here, in Slack's HTTP mode)."""
        return None if self._takeover is None else await self._takeover.owner_elsewhere(ref)

    async def stop_elsewhere(self, ref: str) -> bool:
        """Ask the instance writing message ``ref`` to stop it (what was written stays)."""
        return self._takeover is not None and await self._takeover.stop_elsewhere(ref)

    async def drain(self, deadline: float) -> None:
        """Let replies in flight finish for ``deadline`` seconds, then interrupt the rest.

        Adapters stop taking events first; a turn that still arrives meanwhile is answered
        (or interrupted with the others), never dropped after its platform was told "got it".
        """
        await self._stop_sweeper()
        if self._takeover is not None and self._started:
            await self._takeover.hand_back()
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

    async def start(self) -> None:
        """The first heartbeat and, on a shared database, the notifications; before any turn."""
        if self._started:
            return
        self._started = True
        await self.membership.start()
        if self._takeover is not None:
            await self._takeover.start()

    async def aclose(self) -> None:
        """Stop background work (the sweep, the heartbeat); replies are drained by :meth:`drain`."""
        await self._stop_sweeper()
        await self.membership.stop()
        if self._takeover is not None:
            await self._takeover.aclose()

    async def recover(self, platform: str, surface_for: SurfaceFor) -> int:
        """Close the replies a crashed process left streaming on ``platform``; returns how many.

        An adapter calls this once it is connected (see :mod:`bot.recovery`). From then on the
        sweep runs every ``PARLEY_RECOVER_INTERVAL`` seconds.
        """
        self.membership.platforms.add(platform)
        closed = await self.recovery.recover(platform, surface_for)
        if self._sweeper is None or self._sweeper.done():
            self._sweeper = asyncio.create_task(self._sweep(), name="parley recovery sweep")
        return closed

    async def once(self, platform: str, event_id: str) -> bool:
        """Whether this is the first delivery of ``event_id`` to any instance (a slash command, a
        button click, a shortcut: work without a reply row). A database out of reach answers
        True: a control is better done twice than lost."""
        try:
            return await self.store.events.once(platform, event_id, self.instance_id)
        except StoreError as exc:
            log.warning("could not claim %s on %s: %s", event_id, platform, exc)
            return True

    def peers(self, platform: str) -> int:
        """Live instances running ``platform`` on this database, this one included (at least 1)."""
        return self.membership.running(platform)

    def revive_with(self, platform: str, rebuild: Rebuild) -> None:
        """How ``platform``'s adapter rebuilds a message from its ``origin``: on a shared database,
        turns a stopped instance left waiting on ``platform`` are answered here."""
        self.membership.platforms.add(platform)  # the next heartbeat tells the others
        if self._takeover is not None:
            self._takeover.rebuilders[platform] = rebuild

    # -- intake ----------------------------------------------------------------------------------

    async def _handle(
        self, msg: IncomingMessage, *, merge: bool, in_line: Callable[[], None]
    ) -> ReplyResult | None:
        if self._shared is not None:
            return await self._handle_shared(msg, self._shared, merge=merge, in_line=in_line)
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
        """The merged messages' handlers get the turn's result, and the store learns their fate."""
        self.bursts.close(burst)
        burst.settle(result)
        await record_merged(self.store, burst, result, self.instance_id)

    def _count(self, msg: IncomingMessage, fate: Fate) -> None:
        if self.counts is not None:
            self.counts.message_seen(msg.key.platform, fate.value)

    async def _handle_shared(
        self, msg: IncomingMessage, queue: SharedTurnQueue, *, merge: bool, in_line: Callable[[], None]
    ) -> ReplyResult | None:
        """:meth:`_handle` with every instance's claims, limits and queue (one transaction)."""
        await self.start()
        try:
            claim = await self.store.turns.claim(
                msg.key,
                msg.event_id,
                self.instance_id,
                author=msg.author.id,
                is_bot=msg.author.is_bot,
                origin=msg.origin,
                decide=shared_rules(self.settings, msg),
            )
        except StoreError as exc:
            self._count(msg, Fate.REFUSED)
            return await database_down(self.pacer, msg, exc)
        if not claim.claimed:
            log.info("duplicate event %s on %s ignored", msg.event_id, msg.key.platform)
            self._count(msg, Fate.DUPLICATE)
            return None
        if claim.refusal is not None or claim.entry is None:
            refusal = Refusal(claim.refusal or Refusal.GLOBAL_BUSY)
            self._count(msg, Fate.LOOP_BREAKER if refusal is Refusal.BOT_LOOP else Fate.REFUSED)
            return await refuse(self.store, self.pacer, self.settings, self.instance_id, msg, refusal)
        return await self._line_up_shared(msg, claim.entry, queue, merge, in_line, running=claim.running)

    async def _line_up_shared(
        self,
        msg: IncomingMessage,
        entry: TurnEntry,
        queue: SharedTurnQueue,
        merge: bool,
        in_line: Callable[[], None],
        *,
        running: bool,
    ) -> ReplyResult | None:
        """The intake's steps before the queue (a "stop", a burst) on a shared database: a message
        that gets no turn of its own ends its queued row at once, or it would block the next."""
        merge = merge and not msg.author.is_bot
        if merge and await self._stops_a_reply(msg):
            await self.store.turns.finish(entry)
            return None
        joined = self.bursts.join(msg) if merge else None
        if joined is not None:
            await self.store.turns.finish(entry)
            self._count(msg, Fate.MERGED)
            in_line()
            return await _outcome(joined)
        burst = self.bursts.start(msg) if merge else None
        result: ReplyResult | None = None
        try:
            in_line()
            result = await self._run_shared(msg, entry, queue, running=running, burst=burst)
            if result is not None:  # None: another instance took the turn over
                self._count(msg, Fate.ANSWERED if result.shown else Fate.FAILED)
            return result
        finally:
            if burst is not None:
                await self._after_burst(burst, result)

    async def _run_shared(
        self,
        msg: IncomingMessage,
        entry: TurnEntry,
        queue: SharedTurnQueue,
        *,
        running: bool = False,
        burst: Burst | None = None,
    ) -> ReplyResult | None:
        async with queue.turn(msg.key, entry, running=running) as ours:
            if not ours:
                # Taken over meanwhile (this process was silent too long, or it is stopping).
                log.info("turn %s in %s is answered by another instance", entry.event_id, msg.key)
                return None
            turn_msg = msg if burst is None else await self.bursts.gather(burst)
            return await Turn(self, turn_msg).run()

    def _take_over_from_others(self, queue: SharedTurnQueue | None) -> TakeOver | None:
        if queue is None:
            return None

        async def run(msg: IncomingMessage, entry: TurnEntry) -> object:
            return await self._run_shared(msg, entry, queue)

        return TakeOver(
            self.settings,
            self.store,
            self.instance_id,
            queue,
            self.recovery,
            run=run,
            track=self._handling,
            stop=self.stop,
        )

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
