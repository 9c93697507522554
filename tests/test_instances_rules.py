"""The rules several instances add, as pure functions: which reply is orphaned when its writer
stopped heart-beating, and the admission limits over every instance's counts."""

from __future__ import annotations

from datetime import timedelta

from bot.limits import Refusal, decide, shared_rules
from bot.recovery import Writers, is_orphaned
from bot.settings import Settings
from bot.store import Store, StreamingReply
from bot.store.leases import TurnCounts
from bot.store.models import utcnow
from bot.types import Author, ConversationKey, IncomingMessage

KEY = ConversationKey("slack", "T1", "C1", "1.0")


def _reply(process: str, age: float = 1.0, instance: str | None = None) -> StreamingReply:
    info = {"refs": ["C1:2.0"], "process": process, **({"instance": instance} if instance else {})}
    return StreamingReply(1, 1, KEY, "m", ("C1:2.0",), info, utcnow() - timedelta(seconds=age))


def test_on_a_shared_database_a_reply_is_orphaned_once_its_writer_is_silent() -> None:
    alive = frozenset({"me", "other"})
    writers = Writers("me", None, shared=True, reply_timeout=600, alive=alive)
    assert not is_orphaned(_reply("other"), writers, set())  # another live instance writes it
    assert is_orphaned(_reply("gone"), writers, set())  # its writer stopped beating
    assert not is_orphaned(_reply("me"), writers, set())
    assert not is_orphaned(_reply("gone"), writers, {1})  # this process writes it (live rows)
    unknown = Writers("me", None, shared=True, reply_timeout=600, alive=None)
    assert not is_orphaned(_reply("gone"), unknown, set())  # who is alive is unknown: wait
    assert is_orphaned(_reply("other", age=700), writers, set())  # past the reply timeout
    named = Writers("me", "pod-1", shared=True, reply_timeout=600, alive=None)
    assert is_orphaned(_reply("earlier", instance="pod-1"), named, set())


def _settings(**values: object) -> Settings:
    return Settings(**values)  # type: ignore[arg-type]


def _message(*, bot: bool = False) -> IncomingMessage:
    from tests.fakes.surface import RecordingSurface

    return IncomingMessage(KEY, "e1", Author("U1", "u", is_bot=bot), "hi", RecordingSurface())


def test_the_limits_read_every_instance_s_counts() -> None:
    counts = TurnCounts(user_open=1, user_last_minute=4, channel_open=3, all_open=9, bot_last_minute=3)
    assert decide(_settings(), counts, is_bot=False) is None
    assert decide(_settings(), counts, is_bot=True) is Refusal.BOT_LOOP  # 3 a minute by default
    assert decide(_settings(parley_user_rate=4), counts, is_bot=False) is Refusal.USER_RATE
    assert decide(_settings(parley_max_concurrent_per_user=1), counts, is_bot=False) is Refusal.USER_BUSY
    busy = decide(_settings(parley_max_concurrent_per_channel=3), counts, is_bot=False)
    assert busy is Refusal.CHANNEL_BUSY
    assert decide(_settings(parley_max_concurrent_global=10), counts, is_bot=False) is None


def test_nothing_is_counted_when_no_limit_applies() -> None:
    assert shared_rules(_settings(), _message()) is None  # people, default limits: no lock, no count
    rule = shared_rules(_settings(), _message(bot=True))
    assert rule is not None
    assert rule(TurnCounts(0, 0, 0, 0, bot_last_minute=3)) == "bot_loop"
    rule = shared_rules(_settings(parley_max_concurrent_global=2), _message())
    assert rule is not None and rule(TurnCounts(0, 0, 0, all_open=2, bot_last_minute=0)) == "global_busy"


async def test_a_thread_another_instance_is_answering_is_followed(store: Store) -> None:
    from bot.context import _has_reply

    has_reply = _has_reply(store)
    assert not await has_reply(KEY)
    await store.turns.claim(KEY, "e1", "elsewhere", author="U1", is_bot=False)
    # Its reply is not stored yet, but on a shared database the turn under way counts.
    assert await has_reply(KEY) is store.shared
