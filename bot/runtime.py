"""The composition root: settings, store, gateway, renderer and the conversation service."""

from __future__ import annotations

import socket
import uuid
from dataclasses import dataclass, field
from typing import Any

from bot.context import AdapterContext
from bot.metrics import Metrics
from bot.providers import Gateway
from bot.render import Pacer
from bot.service import ConversationService
from bot.settings import Settings
from bot.store import Store
from bot.store.budgets import PostgresBudgets
from bot.tools import ToolBox, build_toolbox
from bot.turn import FilePipeline

_TOOLS_START_WAIT = 10.0  # seconds start-up waits for MCP servers, at most


@dataclass
class Runtime:
    settings: Settings
    store: Store
    gateway: Gateway
    pacer: Pacer
    service: ConversationService
    metrics: Metrics
    tools: ToolBox  # what the model may call; MCP servers run until aclose()
    # The platforms' budgets shared with other instances (PostgreSQL), or None.
    budgets: PostgresBudgets | None = field(default=None, init=False)
    # Adapters add their HTTP routes here (Slack's /slack/events) before the server starts.
    http_routes: list[tuple[str, str, Any]] = field(default_factory=list)
    _adapter_context: AdapterContext | None = field(default=None, init=False, repr=False)

    @classmethod
    async def create(cls, settings: Settings, *, files: FilePipeline | None = None) -> Runtime:
        store = await Store.open(settings.database_url, migrate=True)
        service: ConversationService | None = None
        process = uuid.uuid4().hex[:12]  # this process, whatever PARLEY_INSTANCE_ID calls it
        # Several instances on one database share the platforms' budgets through it.
        budgets = PostgresBudgets(store.engine, process) if store.shared else None
        try:
            gateway = Gateway(settings)
            pacer = Pacer(shared=budgets)
            if files is None:
                from bot.files import FileService

                files = FileService(settings, store, transcriber=gateway)
            tools = build_toolbox(settings, gateway)
            service = created = ConversationService(
                settings, store, gateway, pacer, files=files, tools=tools, instance_id=process
            )
            # Live figures are read from the service and the renderer at each scrape.
            metrics = Metrics(
                in_flight=lambda: created.in_flight,
                waiting=lambda: created.waiting,
                by_platform=lambda: pacer.stats.by_platform,
                instance=settings.parley_instance_id or process,
                process=process,
                host=socket.gethostname(),
            )
            created.observer = metrics
            created.counts = metrics
            # The heartbeat before any turn: other instances must know this one is alive.
            await created.start()
        except BaseException:
            if service is not None:
                await service.aclose()
            if budgets is not None:
                await budgets.aclose()
            await store.close()
            raise
        try:
            # A server that cannot be reached is reported and retried in the background; a slow
            # one joins when it is ready rather than holding up start-up.
            await tools.start(within=_TOOLS_START_WAIT)
        except BaseException:
            await tools.aclose()
            await created.aclose()
            await gateway.aclose()
            if budgets is not None:
                await budgets.aclose()
            await store.close()
            raise
        runtime = cls(settings, store, gateway, pacer, created, metrics, tools)
        runtime.budgets = budgets
        return runtime

    def adapter_context(self) -> AdapterContext:
        """What adapters get instead of this object; one for all of them (they share its caches)."""
        if self._adapter_context is None:
            gateway = self.gateway
            self._adapter_context = AdapterContext(
                self.settings,
                self.service,
                self.store,
                # Looked up at each call, so the gateway's method can be swapped (tests do).
                lambda: gateway.list_models(),
                self.http_routes,
                self.metrics,
            )
        return self._adapter_context

    async def aclose(self) -> None:
        await self.tools.aclose()
        await self.service.aclose()
        await self.pacer.aclose()
        if self.budgets is not None:
            await self.budgets.aclose()
        await self.gateway.aclose()
        await self.store.close()
