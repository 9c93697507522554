"""The history store: the engine, and one repository per job.

::

    store = await Store.open(settings.database_url)
    store.events         # exactly-once claims of platform events, pruned once past redelivery
    store.conversations  # find / find-or-create, overrides and channel settings, reset, followed?
    store.history        # a conversation's context, and platform messages stored once
    store.replies        # begin, where its messages are, finish, streaming ones, interrupted
    store.blobs          # file bytes and extracted text, attachment rows
    store.usage          # token totals, overall and per model
    store.feedback       # 👍 / 👎 per person and reply, "what was wrong?", counts per model
    store.instances      # which parley run processes are alive (a heartbeat each)
    store.turns          # on a shared database: each conversation's turns in order, its lease

Every call is one short, index-bounded transaction (see ``bot/store/tx.py``) and returns frozen
values (``bot/store/rows.py``).
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from bot.store import db
from bot.store.blobs import Blobs
from bot.store.conversations import Conversations
from bot.store.events import Events
from bot.store.feedback import FeedbackLedger
from bot.store.history import History
from bot.store.instances import Instances
from bot.store.leases import Turns
from bot.store.replies import Replies
from bot.store.tx import Transactions
from bot.store.usage import UsageLedger


class Store:
    def __init__(self, engine: AsyncEngine) -> None:
        self._tx = Transactions(engine)
        self.events = Events(self._tx)
        self.conversations = Conversations(self._tx)
        self.history = History(self._tx)
        self.replies = Replies(self._tx)
        self.blobs = Blobs(self._tx)
        self.usage = UsageLedger(self._tx)
        self.feedback = FeedbackLedger(self._tx)
        self.instances = Instances(self._tx)
        self.turns = Turns(self._tx)

    @classmethod
    async def open(cls, url: str, *, migrate: bool = True) -> Store:
        """Connect (creating a SQLite file and its folder if needed) and bring the schema to head.

        Raises :class:`StoreError` naming DATABASE_URL if the database is unusable. With
        ``migrate=False`` nothing is changed (``parley doctor``).
        """
        engine = await db.open_engine(url)
        if migrate:
            try:
                await db.migrate(engine)
            except BaseException:
                await engine.dispose()
                raise
        return cls(engine)

    async def close(self) -> None:
        await self._tx.engine.dispose()

    @property
    def engine(self) -> AsyncEngine:
        return self._tx.engine

    @property
    def shared(self) -> bool:
        """Whether other Parley processes may use this database too (PostgreSQL).

        A SQLite file belongs to one ``parley run``; several instances need PostgreSQL.
        """
        return self._tx.engine.dialect.name != "sqlite"

    @property
    def statements(self) -> int:
        """SQL statements sent so far (transaction control excluded), for benchmarks."""
        return self._tx.statements

    async def ping(self) -> None:
        """One trivial query: whether the database answers (``/healthz``)."""

        async def work(conn: AsyncConnection) -> None:
            await conn.execute(text("SELECT 1"))

        await self._tx.read(work)
